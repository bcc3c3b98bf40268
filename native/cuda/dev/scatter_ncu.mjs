// ncu harness: dispatch's scatter kernel alone, one process on one GPU, on rank 0's shapes of the bench
// (4096 tokens, H 7168, top-8 of 256 experts over R = 2; both sources are rank 0's own packed rows).
// After npm run build: ncu --kernel-name regex:scatter --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum node native/cuda/dev/scatter_ncu.mjs
import { init } from '../../../dist/src/index.js';
import { alignRowsMax } from '../../../dist/src/reference/moe.js';
import { dispatchRowLayout } from '../../../dist/src/runtime/backend.js';
import { seededInputs } from '../../../bench/moe-nccl-common.mjs';
const T = 4096, H = 7168, k = 8, E = 256, R = 2, per = E / R, bs = 128, M = T, C = 2;
const rt = await init({ backend: 'cuda', verbose: false });
const b = rt.backend, K = b.moe;
const { x, indices, weights } = seededInputs(rt, 0, { T, H, k, E });
const W = R + E + 1, Wt = W + C * R;
const sendRow = b.empty('i32', [T, R]), pairRank = b.empty('i32', [T, k]), table = b.empty('i32', [1, Wt]);
const L = dispatchRowLayout(H, H / 128, k);
const slots = Array.from({ length: R }, () => b.empty('u8', [M, L.stride]));
const PmaxAll = alignRowsMax(R * M * k, per, bs);
const sorted = b.empty('i32', [PmaxAll]), blockExpert = b.empty('i32', [PmaxAll / bs]), rowExpert = b.empty('i32', [PmaxAll]), counts = b.empty('i32', [per]), base = b.empty('i32', [R, per]);
await K.dispatchPlan(indices, E, sendRow, pairRank, table, M, Int32Array.of(T / 2, T));
await K.dispatchPack(x, indices, weights, sendRow, pairRank, E, true, null, { rows: slots, slotRows: M });
const th = await table.read();
const both = new Int32Array(R * Wt); both.set(th, 0); both.set(th, Wt);
const tb = b.fromHost(both, 'i32', [R, Wt]);
await K.dispatchRecvLayout(tb, 0, E, bs, k, base, counts, sorted, blockExpert, rowExpert, null, null);
const ch = await counts.read();
let P = 0; for (const c of ch) P += Math.ceil(c / bs) * bs;
const n0 = th[0], n = 2 * n0;
const ex = b.empty('fp8e4m3', [P, H]), exs = b.empty('f32', [P, H / 128]);
const recv = b.empty('fp8e4m3', [n, H]), recvs = b.empty('f32', [n, H / 128]);
const pairPos = b.empty('i32', [n, k]), ri = b.empty('i32', [n, k]), rw = b.empty('f32', [n, k]);
for (let it = 0; it < 3; it++) {
  for (let s = 0; s < 2; s++) await K.dispatchScatter({ src: slots[0], srcRow: 0, rows: n0, recvRow: s * n0, base, source: s, k, expertX: ex, expertScales: exs, sortedPairs: sorted, pairPos, recvIndices: ri, recvWeights: rw, recv, recvScales: recvs });
  await b.sync();
}
console.log(`done: ${n} rows received (${n0} from each source), P = ${P} expertX rows with padding; three rounds of two scatter launches`);
