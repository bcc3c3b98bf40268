// The FP8 pack alone, one process on one GPU, on rank 0's shapes of the bench (4096 tokens, H 7168,
// top-8 of 256 experts over R ranks, default 2; every destination slot a local buffer): CUDA events
// around each launch, median of 50 after 10 warm-ups, the variants interleaved call by call. Variants
// are environment switches a try branch's addon reads at each call (--modes base,old=SOME_SWITCH; main
// reads none). Checks that the first mode writes every payload byte of the rows sent (the slots start
// as 0xFF) and that every other mode writes the same bytes as the first.
//   npm run build && node native/cuda/dev/pack_time.mjs [--ranks 2] [--modes ...]
import { init, setPoison } from '../../../dist/src/index.js';
import { dispatchRowLayout } from '../../../dist/src/runtime/backend.js';
import { median, option, seededInputs, switchModes } from '../../../bench/moe-nccl-common.mjs';
const argv = process.argv.slice(2);
const R = Number(option(argv, 'ranks', '2'));
const { modes, setMode } = switchModes(argv);
const T = 4096, H = 7168, k = 8, E = 256, M = T;
const rt = await init({ backend: 'cuda', verbose: false });
const b = rt.backend, K = b.moe;
const { x, indices, weights } = seededInputs(rt, 0, { T, H, k, E });
const sendRow = b.empty('i32', [T, R]), pairRank = b.empty('i32', [T, k]), table = b.empty('i32', [1, R + E + 1 + R]);
const L = dispatchRowLayout(H, H / 128, k);
const newSlots = () => Array.from({ length: R }, () => b.empty('u8', [M, L.stride]));
let slots;
await K.dispatchPlan(indices, E, sendRow, pairRank, table, M, Int32Array.of(T));
const th = await table.read();
const bytes = (Array.from(th.subarray(0, R)).reduce((a, v) => a + v, 0)) * L.stride + T * H * 2;
const times = Object.fromEntries(modes.map((m) => [m.name, []]));
let first;
for (const m of modes) {
  setMode(m);
  // fresh slots filled with 0xFF (poison) each mode: a byte a mode leaves unwritten differs
  setPoison(true);
  slots = newSlots();
  setPoison(false);
  await K.dispatchPack(x, indices, weights, sendRow, pairRank, E, true, null, { rows: slots, slotRows: M });
  await b.sync();
  const got = await Promise.all(slots.map((s) => s.read()));
  if (!first) {
    first = got;
    let unwritten = 0; // every payload byte is written, and 0xFF (an E4M3 NaN) is no code of this data (the scales: by the diff below)
    for (let d = 0; d < R; d++) for (let r = 0; r < th[d]; r++) for (let i = 0; i < H; i++) if (got[d][r * L.stride + i] === 0xff) unwritten++;
    console.log(`${m.name}: ${unwritten} payload bytes left at 0xFF`);
  } else {
    let diff = 0;
    for (let d = 0; d < R; d++) for (let i = 0; i < th[d] * L.stride; i++) if (got[d][i] !== first[d][i]) diff++;
    console.log(`${m.name}: ${diff} bytes differ from ${modes[0].name}'s rows`);
  }
  if (m !== modes[modes.length - 1]) slots.forEach((s) => s.dispose());
}
for (let it = 0; it < 60; it++) {
  for (let i = 0; i < modes.length; i++) {
    const m = modes[(i + it) % modes.length];
    setMode(m);
    await b.sync();
    b.deviceTimer.start();
    await K.dispatchPack(x, indices, weights, sendRow, pairRank, E, true, null, { rows: slots, slotRows: M });
    const ms = await b.deviceTimer.stop();
    if (it >= 10) times[m.name].push(ms);
  }
}
console.log(`FP8 pack, ${T} tokens, H ${H}, top-${k} of ${E} over ${R} local slots (${(bytes / 1e6).toFixed(1)} MB read + written):`);
for (const m of modes) {
  const ms = median(times[m.name]);
  console.log(`  ${m.name}: ${(ms * 1000).toFixed(1)} µs, ${(bytes / ms / 1e6).toFixed(0)} GB/s`);
}
