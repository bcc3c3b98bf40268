// The timeline of dispatch over NCCL's symmetric memory, one process per GPU:
//   npm run build && HOTPATHS_EP_TRACE=1 hotpaths launch --nproc N bench/moe-nccl-trace.mjs [--tokens 4096] [--hidden 7168] [--topk 8] [--experts 256]
// A group with maxTokensPerRank = --tokens and maxHidden = --hidden; FP8 dispatch of the same inputs as
// bench/moe-nccl.mjs at 1, 2 and 4 pieces, 6 calls each after a barrier. With HOTPATHS_EP_TRACE=1 every
// call prints each stream's marks (src/ops/moe.ts's dispatchWindows: GPU time and the time the host
// queued them, ms after the start); the last call of each piece count also prints its wall time (the
// marks and the printing slow each call: these are not the bench's times, bench/moe-nccl.mjs has those).
// With HOTPATHS_EP_TRACE=host each call prints the host's times alone (no events on the streams).
import { init, moe } from '../dist/src/index.js';
import { seededInputs, shapeOptions } from './moe-nccl-common.mjs';

const { T, H, k, E } = shapeOptions(process.argv.slice(2));
const rank = Number(process.env.HOTPATHS_RANK);
const rt = await init({ backend: 'cuda', verbose: false });
const b = rt.backend;
const g = await moe.ncclGroup({ maxTokensPerRank: T, maxHidden: H });
if (!g.windows) console.log(`rank ${rank}: no symmetric windows here (HOTPATHS_VERBOSE=1 says why): the send/recv path runs and prints no timeline`);
const { x, indices, weights } = seededInputs(rt, rank, { T, H, k, E });
const barrier = () => g.exchangeCounts([new Int32Array(g.size)]);
for (const chunks of [1, 2, 4]) {
  for (let i = 0; i < 6; i++) {
    await barrier();
    await b.sync();
    const t0 = performance.now();
    const [d] = await moe.dispatch(g, [{ x, indices, weights }], { numExperts: E, fp8: true, chunks });
    await b.sync();
    if (i === 5) console.log(`rank ${rank}: dispatch, ${chunks} piece(s): ${(performance.now() - t0).toFixed(3)} ms wall`);
    moe.disposeDispatched([d]);
  }
}
g.destroy?.();
