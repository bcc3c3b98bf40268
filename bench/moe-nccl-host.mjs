// Host time of each call the windows dispatch makes, one process per GPU:
//   npm run build && hotpaths launch --nproc N bench/moe-nccl-host.mjs [--tokens 4096] [--hidden 7168] [--topk 8] [--experts 256]
// The GPU runs what is queued; this measures only how long the host takes to queue it: each call made
// 50 times back to back after a synchronize (the GPU has room to take them), µs a call, median of 5
// such rounds. Shapes and arguments as src/ops/moe.ts's dispatchWindows (2 pieces). Then whole windows
// dispatches: host time from the call to its return, next to the wall time to the synchronize after.
import { init, moe } from '../dist/src/index.js';
import { dispatchRowLayout } from '../dist/src/runtime/backend.js';
import { median, seededInputs, shapeOptions } from './moe-nccl-common.mjs';

const { T, H, k, E } = shapeOptions(process.argv.slice(2));
const rank = Number(process.env.HOTPATHS_RANK);
const rt = await init({ backend: 'cuda', verbose: false });
const b = rt.backend, K = b.moe;
const g = await moe.ncclGroup({ maxTokensPerRank: T, maxHidden: H });
const sw = g.windows;
const R = g.size, W = R + E + 1, C = 2, Wt = W + C * R, bs = 128, per = E / R;
const { x, indices, weights } = seededInputs(rt, rank, { T, H, k, E });
const L = dispatchRowLayout(H, H / 128, k);
const us = {};
async function cost(name, fn, n = 50) {
  const rounds = [];
  for (let r = 0; r < 6; r++) {
    await b.sync();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await fn();
    const t = ((performance.now() - t0) * 1000) / n;
    if (r > 0) rounds.push(t);
  }
  await b.sync();
  us[name] = median(rounds);
}
const sendRow = b.empty('i32', [T, R]), pairRank = b.empty('i32', [T, k]), table = b.empty('i32', [1, Wt]);
await cost('empty + dispose (i32 [T, R])', () => b.empty('i32', [T, R]).dispose());
await cost('dispatchPlan', () => K.dispatchPlan(indices, E, sendRow, pairRank, table, T, Int32Array.of(T >> 1, T)));
if (sw) {
  const gathered = sw.tables(0, Wt);
  await cost('windows.allGather + ticket wait', () => sw.allGather(table, 0).wait(), 20);
  const pending = [];
  await cost('windows.landed', () => { pending.push(sw.landed()); }, 20);
  pending.forEach((m) => m.wait()); // (each ticket is waited once, after the timing)
  await cost('windows.landed + ticket wait', () => sw.landed().wait(), 20);
  await cost('windows.onSide (nothing in it)', () => sw.onSide(() => undefined));
  await cost('windows.rows (a view)', () => sw.rows(0, 0, 0, T, 'u8', L.stride));
  const slots = Array.from({ length: R }, (_, d) => sw.rows(0, d, rank * T, T, 'u8', L.stride));
  await cost('dispatchPack (side), one piece of T/2', () => sw.onSide(() => K.dispatchPack(x, indices, weights, sendRow, pairRank, E, true, null, { rows: slots, slotRows: T })), 10);
  await cost('startRead + finish (tables)', () => sw.startRead(gathered).finish(), 20);
  const Pmax = 4 * T * k;
  const sorted = b.empty('i32', [Pmax]), be = b.empty('i32', [Pmax / bs]), re = b.empty('i32', [Pmax]), counts = b.empty('i32', [per]), base = b.empty('i32', [R, per]);
  await cost('dispatchRecvLayout', () => K.dispatchRecvLayout(gathered, rank, E, bs, k, base, counts, sorted, be, re, null, null), 20);
  const n = T, P = T * 2;
  const exRows = b.empty('fp8e4m3', [P, H]), exScales = b.empty('f32', [P, H / 128]);
  await cost('dispatchZeroPadding', () => K.dispatchZeroPadding(counts, bs, exRows, exScales), 20);
  const recv = b.empty('fp8e4m3', [n, H]), recvScales = b.empty('f32', [n, H / 128]);
  const pairPos = b.empty('i32', [n, k]), recvIndices = b.empty('i32', [n, k]), recvWeights = b.empty('f32', [n, k]);
  const mine = sw.rows(0, rank, 0, T, 'u8', L.stride);
  await cost('dispatchScatter (16 rows)', () => K.dispatchScatter({
    src: mine, srcRow: 0, rows: 16, recvRow: 0, base, source: rank, k, expertX: exRows, expertScales: exScales,
    sortedPairs: sorted, pairPos, recvIndices, recvWeights, recv, recvScales,
  }), 20);
  for (let i = 0; i < 5; i++) moe.disposeDispatched(await moe.dispatch(g, [{ x, indices, weights }], { numExperts: E, fp8: true, chunks: C }));
  const host = [], wall = [];
  for (let i = 0; i < 10; i++) {
    await g.exchangeCounts([new Int32Array(R)]);
    await b.sync();
    const t0 = performance.now();
    const [d] = await moe.dispatch(g, [{ x, indices, weights }], { numExperts: E, fp8: true, chunks: C });
    host.push(performance.now() - t0);
    await b.sync();
    wall.push(performance.now() - t0);
    moe.disposeDispatched([d]);
  }
  us['windows dispatch (2 pieces): host to return'] = median(host) * 1000;
  us['windows dispatch (2 pieces): wall to synchronize'] = median(wall) * 1000;
} else console.log(`rank ${rank}: no symmetric windows here (HOTPATHS_VERBOSE=1 says why)`);
console.log(`rank ${rank}: host µs a call: ` + Object.entries(us).map(([n, v]) => `${n} ${v.toFixed(1)}`).join(' | '));
g.destroy?.();
