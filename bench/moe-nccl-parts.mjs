// Where dispatch's and combine's device path spend their time, one stage at a time, over NCCL:
//   npm run build && hotpaths launch --nproc N bench/moe-nccl-parts.mjs [--tokens 4096] [--hidden 7168]
//     [--topk 8] [--experts 256] [--iters 20]
// The stages are the kernels and group calls src/ops/moe.ts makes (same shapes and arguments, one
// piece), each timed alone with CUDA events on the addon's stream (median of --iters after 2 warm-ups,
// each after a barrier); the counts gather, which the host waits for, by wall clock. Same inputs as
// bench/moe-nccl.mjs (FP8 dispatch of bf16 x, bf16 combine of identity experts).
import { init, moe, toBf16 } from '../dist/src/index.js';
import { alignRowsMax } from '../dist/src/reference/moe.js';
import { dispatchRowLayout } from '../dist/src/runtime/backend.js';

const argv = process.argv.slice(2);
const opt = (name, d) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : d;
};
const T = Number(opt('tokens', 4096)), H = Number(opt('hidden', 7168)), k = Number(opt('topk', 8)), E = Number(opt('experts', 256));
const iters = Number(opt('iters', 20));
const rank = Number(process.env.HOTPATHS_RANK);
const rt = await init({ backend: 'cuda', verbose: false });
const b = rt.backend, K = b.moe;
const group = await moe.ncclGroup();
const R = group.size, per = E / R, W = R + E + 1, bs = 128;

let s = (rank + 1) * 0x9e3779b9;
const rand = () => {
  s = (s + 0x6d2b79f5) >>> 0;
  let t = Math.imul(s ^ (s >>> 15), s | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const idxH = new Int32Array(T * k);
for (let t = 0; t < T; t++) {
  const chosen = new Set();
  while (chosen.size < k) chosen.add(Math.floor(rand() * E));
  [...chosen].forEach((e, j) => (idxH[t * k + j] = e));
}
const x = rt.tensor(toBf16(Float32Array.from({ length: T * H }, () => rand() * 2 - 1)), [T, H], 'bf16');
const indices = rt.tensor(idxH, [T, k], 'i32');
const weights = rt.tensor(Float32Array.from({ length: T * k }, () => rand()), [T, k], 'f32');

const barrier = () => group.exchangeCounts([new Int32Array(R)]);
const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
async function events(fn) {
  const out = [];
  for (let i = 0; i < iters + 2; i++) {
    await barrier();
    b.deviceTimer.start();
    await fn();
    const ms = await b.deviceTimer.stop();
    if (i >= 2) out.push(ms);
  }
  return median(out);
}
async function wall(fn) {
  const out = [];
  for (let i = 0; i < iters + 2; i++) {
    await barrier();
    await b.sync();
    const t0 = performance.now();
    await fn();
    await b.sync();
    if (i >= 2) out.push(performance.now() - t0);
  }
  return median(out);
}
const starts = (c) => Int32Array.from(c, (_, i) => c.slice(0, i).reduce((p, v) => p + v, 0));
const sum = (a) => a.reduce((p, v) => p + v, 0);
const times = {};

// ---- dispatch's stages
const sendRow = b.empty('i32', [T, R]), pairRank = b.empty('i32', [T, k]), table = b.empty('i32', [1, W]);
times.plan = await events(() => K.dispatchPlan(indices, E, sendRow, pairRank, table));
const gathered = b.empty('i32', [R, W]);
let tables;
times['gather (wall)'] = await wall(async () => ([tables] = await group.startAllGather([table], [gathered]).read()));
const S = T * Math.min(R, k);
const L = dispatchRowLayout(H, H / 128, k);
const packed = b.empty('u8', [S, L.stride]);
times['pack fp8'] = await events(() => K.dispatchPack(x, indices, weights, sendRow, pairRank, E, true, packed));
const sendCounts = Int32Array.from({ length: R }, (_, d) => tables[rank * W + d]);
const recvCounts = Int32Array.from({ length: R }, (_, q) => tables[q * W + rank]);
const n = sum(recvCounts);
let P = 0;
for (let l = 0; l < per; l++) {
  let c = 0;
  for (let q = 0; q < R; q++) c += tables[q * W + R + rank * per + l];
  P += Math.ceil(c / bs) * bs;
}
const Pmax = alignRowsMax(n * k, per, bs);
const recvRows = b.empty('fp8e4m3', [n, H]), recvScales = b.empty('f32', [n, H / 128]), recvPacked = b.empty('u8', [n, L.stride]);
const exRows = b.empty('fp8e4m3', [P, H]), exScales = b.empty('f32', [P, H / 128]);
const a = { sortedPairs: b.empty('i32', [Pmax]), blockExpert: b.empty('i32', [Pmax / bs]), rowExpert: b.empty('i32', [Pmax]), pairPos: b.empty('i32', [n, k]), counts: b.empty('i32', [per]) };
const recvIndices = b.empty('i32', [n, k]), recvWeights = b.empty('f32', [n, k]), base = b.empty('i32', [R, per]);
times['receive layout'] = await events(() => K.dispatchRecvLayout(gathered, rank, E, bs, k, base, a.counts, a.sortedPairs, a.blockExpert, a.rowExpert, exRows, exScales));
const ss = starts(sendCounts), rs = starts(recvCounts);
const zero = new Int32Array(R);
const win = {
  sendStart: ss, sendRows: Int32Array.from(sendCounts, (c, d) => (d === rank ? 0 : c)),
  recvStart: rs, recvRows: Int32Array.from(recvCounts, (c, q) => (q === rank ? 0 : c)),
};
const parts = [{ send: [packed], recv: [recvPacked] }];
times['transfer (packed rows)'] = await events(() => group.startMoveRows(parts, [win]).wait());
const sc = (src, srcRow, nr, recvRow, source) => K.dispatchScatter({
  src, srcRow, rows: nr, recvRow, base, source, k, expertX: exRows, expertScales: exScales, sortedPairs: a.sortedPairs, pairPos: a.pairPos,
  recvIndices, recvWeights, recv: recvRows, recvScales,
});
times['scatter own rows'] = await events(() => sc(packed, ss[rank], sendCounts[rank], rs[rank], rank));
times['scatter the peers\' rows'] = await events(async () => {
  for (let q = 0; q < R; q++) if (q !== rank) await sc(recvPacked, rs[q], recvCounts[q], rs[q], q);
});
for (const c of [1, 2]) times[`dispatch, ${c} piece${c > 1 ? 's' : ''}`] = await events(async () => moe.disposeDispatched(await moe.dispatch(group, [{ x, indices, weights }], { numExperts: E, fp8: true, chunks: c })));

// ---- combine's stages (bf16 expert outputs of the bf16 dispatch's shape)
const [d] = await moe.dispatch(group, [{ x, indices, weights }], { numExperts: E, fp8: false });
const y = d.expertX;
const partial = b.empty('bf16', [n, H]), back = b.empty('bf16', [sum(sendCounts), H]), out = b.empty('bf16', [T, H]);
times['combine: reduce the peers\' rows'] = await events(async () => {
  for (let q = 0; q < R; q++) if (q !== rank) await K.unpermuteRows(y, d.alignment.pairPos, d.recvWeights, rs[q], recvCounts[q], partial, rs[q]);
});
const cwin = {
  sendStart: rs, sendRows: Int32Array.from(recvCounts, (c, q) => (q === rank ? 0 : c)),
  recvStart: ss, recvRows: Int32Array.from(sendCounts, (c, q) => (q === rank ? 0 : c)),
};
times['combine: transfer'] = await events(() => group.startMoveRows([{ send: [partial], recv: [back] }], [cwin]).wait());
times['combine: reduce own rows'] = await events(() => K.unpermuteRows(y, d.alignment.pairPos, d.recvWeights, rs[rank], recvCounts[rank], back, ss[rank]));
times['combine: final sum'] = await events(() => K.unpermute(back, sendRow, null, out));
times['combine: transfer ‖ reduce own rows'] = await events(async () => {
  const m = group.startMoveRows([{ send: [partial], recv: [back] }], [cwin]);
  await K.unpermuteRows(y, d.alignment.pairPos, d.recvWeights, rs[rank], recvCounts[rank], back, ss[rank]);
  await m.wait();
});
for (const c of [1, 2]) times[`combine, ${c} piece${c > 1 ? 's' : ''}`] = await events(async () => (await moe.combine(group, [y], [d], { chunks: c })).forEach((o) => o.dispose()));
void zero;
console.log(`rank ${rank}: stages, ms (events; median of ${iters}): ` + Object.entries(times).map(([name, ms]) => `${name} ${ms.toFixed(3)}`).join(' | '));
group.destroy?.();
