// Where dispatch's and combine's device path spend their time, one stage at a time, over NCCL:
//   npm run build && hotpaths launch --nproc N bench/moe-nccl-parts.mjs [--tokens 4096] [--hidden 7168]
//     [--topk 8] [--experts 256] [--iters 100] [--warmup 30]
// The stages are the kernels and group calls src/ops/moe.ts makes (same shapes and arguments, one
// piece), each timed alone with CUDA events on the addon's stream (median of --iters after --warmup calls,
// each after a barrier); the counts gather, which the host waits for, by wall clock. Same inputs as
// bench/moe-nccl.mjs (FP8 dispatch of bf16 x, bf16 combine of identity experts; bench/moe-nccl-common.mjs).
// Fixed slots (a second group of the communicator with maxTokensPerRank = --tokens): the plan with
// slotRows, the whole-slot transfer, and dispatch/combine end to end next to the counts-first ones.
import { init, moe } from '../dist/src/index.js';
import { alignRowsMax } from '../dist/src/reference/moe.js';
import { dispatchRowLayout } from '../dist/src/runtime/backend.js';
import { seededInputs, shapeOptions, sum, timers } from './moe-nccl-common.mjs';

const argv = process.argv.slice(2);
const { T, H, k, E, iters, warmup } = shapeOptions(argv);
const rank = Number(process.env.HOTPATHS_RANK);
const rt = await init({ backend: 'cuda', verbose: false });
const b = rt.backend, K = b.moe;
const group = await moe.ncclGroup();
const slotGroup = await moe.ncclGroup({ maxTokensPerRank: T }); // the same communicator, fixed slots of T rows
const winGroup = await moe.ncclGroup({ maxTokensPerRank: T, maxHidden: H }); // symmetric windows (NCCL's device API), where it works
const R = group.size, per = E / R, W = R + E + 1, bs = 128;

const { x, indices, weights } = seededInputs(rt, rank, { T, H, k, E });
const { events, wall } = timers(group, b, iters, warmup);
const starts = (c) => Int32Array.from(c, (_, i) => c.slice(0, i).reduce((p, v) => p + v, 0));
const times = {};

// ---- dispatch's stages
const sendRow = b.empty('i32', [T, R]), pairRank = b.empty('i32', [T, k]), table = b.empty('i32', [1, W]);
times.plan = await events(() => K.dispatchPlan(indices, E, sendRow, pairRank, table));
times['plan (fixed slots)'] = await events(() => K.dispatchPlan(indices, E, sendRow, pairRank, table, T));
await K.dispatchPlan(indices, E, sendRow, pairRank, table); // (the stages below use the packed plan)
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
// the fixed slots' transfer: the whole slot (T rows) to every other rank
const slotSend = b.empty('u8', [R * T, L.stride]), slotRecv = b.empty('u8', [R * T, L.stride]);
const swin = {
  sendStart: Int32Array.from({ length: R }, (_, d) => d * T), sendRows: Int32Array.from({ length: R }, (_, d) => (d === rank ? 0 : T)),
  recvStart: Int32Array.from({ length: R }, (_, d) => d * T), recvRows: Int32Array.from({ length: R }, (_, d) => (d === rank ? 0 : T)),
};
times['transfer (fixed slots, T rows a peer)'] = await events(() => group.startMoveRows([{ send: [slotSend], recv: [slotRecv] }], [swin]).wait());
slotSend.dispose();
slotRecv.dispose();
for (const [how, g] of [['', group], [' (fixed slots)', slotGroup]]) {
  for (const c of [1, 2]) times[`dispatch${how}, ${c} piece${c > 1 ? 's' : ''}`] = await events(async () => moe.disposeDispatched(await moe.dispatch(g, [{ x, indices, weights }], { numExperts: E, fp8: true, chunks: c })));
}

// ---- the symmetric windows' stages (fixed slots of T rows; the plan with slots)
const sw = winGroup.windows;
if (sw) {
  const C = 2, Wt = W + C * R;
  const tbl = b.empty('i32', [1, Wt]), sendRowS = b.empty('i32', [T, R]);
  times['windows: plan with the pieces\' ends'] = await events(() => K.dispatchPlan(indices, E, sendRowS, pairRank, tbl, T, Int32Array.of(T >> 1, T)));
  // (the windows dispatch gathers these tables itself, inside its first native call: HOTPATHS_EP_TRACE=1
  // with bench/moe-nccl-trace.mjs times that; here the group's counts all-gather fills them)
  const g = b.empty('i32', [R, Wt]);
  const [wt] = await group.startAllGather([tbl], [g]).read();
  times['windows: barrier alone'] = await events(() => sw.landed().wait());
  const slots = Array.from({ length: R }, (_, q) => sw.rows(0, q, rank * T, T, 'u8', L.stride));
  times['windows: pack into every rank\'s slot (side) + barrier'] = await events(() => {
    sw.onSide(() => K.dispatchPack(x, indices, weights, sendRowS, pairRank, E, true, null, { rows: slots, slotRows: T }));
    return sw.landed().wait();
  });
  times['windows: pack into a local buffer (main)'] = await events(() => K.dispatchPack(x, indices, weights, sendRowS, pairRank, E, true, null, { rows: Array.from({ length: R }, () => slots[rank]), slotRows: T }));
  const rc = Int32Array.from({ length: R }, (_, q) => wt[q * Wt + rank]), rsw = starts(rc);
  const mineW = Array.from({ length: R }, (_, q) => sw.rows(0, rank, q * T, T, 'u8', L.stride));
  await K.dispatchRecvLayout(g, rank, E, bs, k, base, a.counts, a.sortedPairs, a.blockExpert, a.rowExpert, exRows, exScales);
  times['windows: scatter every source\'s rows (main)'] = await events(async () => {
    for (let q = 0; q < R; q++) await sc(mineW[q], 0, Math.min(rc[q], n - rsw[q]), rsw[q], q);
  });
  for (const c of [1, 2, 4]) times[`windows: dispatch, ${c} piece${c > 1 ? 's' : ''}`] = await events(async () => moe.disposeDispatched(await moe.dispatch(winGroup, [{ x, indices, weights }], { numExperts: E, fp8: true, chunks: c })));
  for (const c of [1, 2, 4]) times[`windows: dispatch, ${c} piece${c > 1 ? 's' : ''} (wall)`] = await wall(async () => moe.disposeDispatched(await moe.dispatch(winGroup, [{ x, indices, weights }], { numExperts: E, fp8: true, chunks: c })));
  tbl.dispose();
  g.dispose();
  sendRowS.dispose();
}

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
times['combine: final sum of half the tokens'] = await events(() => K.unpermuteRows(back, sendRow, null, 0, T >> 1, out, 0));
times['combine: transfer ‖ reduce own rows'] = await events(async () => {
  const m = group.startMoveRows([{ send: [partial], recv: [back] }], [cwin]);
  await K.unpermuteRows(y, d.alignment.pairPos, d.recvWeights, rs[rank], recvCounts[rank], back, ss[rank]);
  await m.wait();
});
for (const c of [1, 2]) times[`combine, ${c} piece${c > 1 ? 's' : ''}`] = await events(async () => (await moe.combine(group, [y], [d], { chunks: c })).forEach((o) => o.dispose()));
const [ds] = await moe.dispatch(slotGroup, [{ x, indices, weights }], { numExperts: E, fp8: false });
for (const c of [1, 2]) times[`combine (fixed slots), ${c} piece${c > 1 ? 's' : ''}`] = await events(async () => (await moe.combine(slotGroup, [ds.expertX], [ds], { chunks: c })).forEach((o) => o.dispose()));
if (sw) {
  const [dw] = await moe.dispatch(winGroup, [{ x, indices, weights }], { numExperts: E, fp8: false });
  for (const c of [1, 2, 4]) times[`windows: combine, ${c} piece${c > 1 ? 's' : ''}`] = await events(async () => (await moe.combine(winGroup, [dw.expertX], [dw], { chunks: c })).forEach((o) => o.dispose()));
  // combine's windows stages, one piece: the reductions into the peers' buffers (side stream) and the
  // barrier that lands them; the own rows into this rank's buffer; the final sum out of it
  const h = dw.handle, rcw = h.recvCounts, rsw = starts(rcw), pos = dw.alignment.pairPos, wts = dw.recvWeights;
  times['windows: combine, reductions into the peers\' buffers (side, peer rank + i at step i) + barrier'] = await events(() => {
    sw.onSide(() => {
      for (let i = 1; i < R; i++) {
        const q = (rank + i) % R;
        if (rcw[q] > 0) K.unpermuteRows(dw.expertX, pos, wts, rsw[q], rcw[q], sw.rows(0, q, rank * T, rcw[q], 'bf16', H), 0);
      }
    });
    return sw.landed().wait();
  });
  const backW = sw.rows(0, rank, 0, R * T, 'bf16', H);
  times['windows: combine, own rows into this rank\'s buffer (main)'] = await events(() => K.unpermuteRows(dw.expertX, pos, wts, rsw[rank], rcw[rank], backW, rank * T));
  const outW = b.empty('bf16', [T, H]);
  times['windows: combine, final sum (main)'] = await events(() => K.unpermute(backW, h.backPos, null, outW));
  outW.dispose();
  moe.disposeDispatched([dw]);
}
moe.disposeDispatched([d, ds]);
console.log(`rank ${rank}: stages, ms (events; median of ${iters}): ` + Object.entries(times).map(([name, ms]) => `${name} ${ms.toFixed(3)}`).join(' | '));
winGroup.destroy?.();
slotGroup.destroy?.();
group.destroy?.();
