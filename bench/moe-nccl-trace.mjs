// The timeline of dispatch over NCCL's symmetric memory, one process per GPU:
//   npm run build && HOTPATHS_EP_TRACE=1 hotpaths launch --nproc N bench/moe-nccl-trace.mjs [--tokens 4096] [--hidden 7168] [--topk 8] [--experts 256]
//     [--calls 6] [--chunks 1,2,4] [--expand false]
// A group with maxTokensPerRank = --tokens and maxHidden = --hidden; FP8 dispatch of the same inputs as
// bench/moe-nccl.mjs at each --chunks piece count, --calls calls each started at one instant on every rank. With HOTPATHS_EP_TRACE=1 every
// call prints each stream's marks (src/ops/moe.ts's dispatchWindows: GPU time and the time the host
// queued them, ms after the start); the last call of each piece count also prints its wall time, and the median of the later half of the calls' (the
// marks and the printing slow each call: these are not the bench's times, bench/moe-nccl.mjs has those).
// With HOTPATHS_EP_TRACE=host each call prints the host's times alone (no events on the streams).
import { init, moe } from '../dist/src/index.js';
import { option, seededInputs, shapeOptions, timers } from './moe-nccl-common.mjs';

const argv = process.argv.slice(2);
const { T, H, k, E } = shapeOptions(argv);
const calls = Number(option(argv, 'calls', '6'));
const chunkList = option(argv, 'chunks', '1,2,4').split(',').map(Number);
const expand = option(argv, 'expand', 'true') !== 'false'; // dispatch's expand option
const rank = Number(process.env.HOTPATHS_RANK);
const rt = await init({ backend: 'cuda', verbose: false });
const b = rt.backend;
const g = await moe.ncclGroup({ maxTokensPerRank: T, maxHidden: H });
if (!g.windows) console.log(`rank ${rank}: no symmetric windows here (HOTPATHS_VERBOSE=1 says why): the send/recv path runs and prints no timeline`);
const { x, indices, weights } = seededInputs(rt, rank, { T, H, k, E });
const { alignedStart } = timers(g, b, 0);
for (const chunks of chunkList) {
  const wall = [];
  for (let i = 0; i < calls; i++) {
    await b.sync();
    await alignedStart(); // every rank starts at one instant (bench/moe-nccl-common.mjs)
    const t0 = performance.now();
    const [d] = await moe.dispatch(g, [{ x, indices, weights }], { numExperts: E, fp8: true, chunks, expand });
    await b.sync();
    wall.push(performance.now() - t0);
    if (i === calls - 1) {
      const late = wall.slice(Math.floor(calls / 2)).sort((a, b) => a - b);
      console.log(`rank ${rank}: dispatch${expand ? '' : ' (expand: false)'}, ${chunks} piece(s): ${wall[i].toFixed(3)} ms wall; median of calls ${Math.floor(calls / 2)}–${calls - 1}: ${late[Math.floor(late.length / 2)].toFixed(3)} ms`);
    }
    moe.disposeDispatched([d]);
  }
}
g.destroy?.();
