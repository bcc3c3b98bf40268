// Interleaved A/B of the windows dispatch's variants, one process per GPU:
//   npm run build && hotpaths launch --nproc N bench/moe-nccl-ab.mjs [--tokens 4096] [--hidden 7168] [--topk 8]
//     [--experts 256] [--iters 300] [--warmup 30] [--chunks 1] [--expand false] [--modes base,NAME=VAR[+VAR]...]
// Each mode is a set of environment variables set to 1 around its calls ("base": none), for a try
// branch whose code reads switches at each call (e.g. try/sparse-pack-early-scatter's HOTPATHS_AB_*;
// main reads none, so there every mode times the same code: the method's own spread). Every iteration
// times the raw grouped send/recv of the same bytes and then each mode once, in an order that rotates
// from one iteration to the next, each call started at one instant on every rank
// (bench/moe-nccl-common.mjs), so that the machine's drift (the same code's ratio moved by 0.2× between
// runs minutes apart) falls on every mode alike. Prints per mode the aggregate GB/s (Σ payload bytes /
// the slowest rank's median) and its ratio to the raw all-to-all's, as bench/moe-nccl.mjs counts them
// (FP8 dispatch: H + 4·H/128 bytes a received row).
import { init, moe } from '../dist/src/index.js';
import { aggregate, median, option, rowsPerRank, seededInputs, shapeOptions, sum, switchModes, timers } from './moe-nccl-common.mjs';

const argv = process.argv.slice(2);
const { T, H, k, E, warmup } = shapeOptions(argv);
// (300 by default: at 80, two copies of the same code differed by up to 0.05x within a run; at 300, by 0.02)
const iters = Number(option(argv, 'iters', '300'));
const chunks = Number(option(argv, 'chunks', '1'));
const expand = option(argv, 'expand', 'false') !== 'false';
const { modes, setMode } = switchModes(argv);
const rank = Number(process.env.HOTPATHS_RANK);

const rt = await init({ backend: 'cuda', verbose: false });
const b = rt.backend;
const group = await moe.ncclGroup({ maxTokensPerRank: T, maxHidden: H });
if (!group.windows) throw new Error('no symmetric windows here (HOTPATHS_VERBOSE=1 says why)');
const R = group.size;
const { x, indices, weights, idxH } = seededInputs(rt, rank, { T, H, k, E });
const sendRows = rowsPerRank(idxH, T, k, E, R);
const [recvRows] = await group.exchangeCounts([sendRows]);
const rowBytes = H + (4 * H) / 128;
const bytes = sum(recvRows) * rowBytes;
const send = b.empty('u8', [sum(sendRows), rowBytes]), recv = b.empty('u8', [sum(recvRows), rowBytes]);
const { once } = timers(group, b, 0);

const timeOne = (fn) => once(fn, (out) => out && moe.disposeDispatched(out));
const rawFn = async () => void (await group.allToAllRows([send], [sendRows], [recv], [recvRows]));
const opFn = () => moe.dispatch(group, [{ x, indices, weights }], { numExperts: E, fp8: true, chunks, expand });
const times = { raw: [], ...Object.fromEntries(modes.map((m) => [m.name, []])) };
for (let j = 0; j < warmup + iters; j++) {
  const rawMs = await timeOne(rawFn);
  if (j >= warmup) times.raw.push(rawMs);
  // (the modes' order rotates from call to call: what runs right after the raw all-to-all, or last,
  // would otherwise always be the same mode)
  for (let i = 0; i < modes.length; i++) {
    const m = modes[(i + j) % modes.length];
    setMode(m);
    const ms = await timeOne(opFn);
    if (j >= warmup) times[m.name].push(ms);
  }
}
setMode(null);
// aggregate: Σ bytes over ranks / the slowest rank's median
const agg = [];
for (const t of Object.values(times)) agg.push(await aggregate(group, median(t), bytes));
if (rank === 0) {
  const line = Object.keys(times).map((n, i) => `${n} ${agg[i].slowestMs.toFixed(3)} ms ${agg[i].gbps.toFixed(1)} GB/s${i ? ` ${(agg[i].gbps / agg[0].gbps).toFixed(2)}x` : ''}`).join(' | ');
  console.log(`A/B over ${R} ranks, ${chunks} piece(s), expand ${expand}, ${iters} interleaved calls: ${line}`);
}
send.dispose();
recv.dispose();
group.destroy?.();
