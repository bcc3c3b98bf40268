// Expert-parallel dispatch/combine bandwidth over NCCL, one process per GPU:
//   npm run build && hotpaths launch --nproc N bench/moe-nccl.mjs [--tokens 4096] [--hidden 7168]
//     [--topk 8] [--experts 256] [--iters 20] [--save-counts DIR] [--json FILE]
// Random routing (k distinct experts per token, uniform), bf16 x. Measures on every rank, in one run:
//   dispatch (FP8)   moe.dispatch(fp8: true), end to end (host planning, counts exchange, quantize,
//                    payload, align and permute on the receiver): wall clock, synchronized
//   combine (bf16)   moe.combine of the bf16 dispatch's expertX (identity experts), end to end
//   raw a2a          ncclGroup().allToAllRows of one u8 buffer with the same per-peer byte counts
//                    (grouped ncclSend/ncclRecv, nothing else), for each of the two payloads; wall
//                    clock like the ops, and CUDA events
//   dispatch's transfers  the four allToAllRows calls dispatch makes (codes, scales, ids, weights)
// Bytes counted ("payload"): the rows this rank receives, from every rank including itself, times
// the row's payload bytes: FP8 dispatch H + 4·H/128 (codes and 1×128 f32 scales), bf16 combine 2·H.
// Expert ids and weights (8·k bytes a row) are moved too and not counted. GB/s per rank = its bytes /
// its median time; aggregate = Σ bytes over ranks / the slowest rank's median time.
// Each timed iteration starts after a barrier (a counts exchange, which synchronizes every rank).
// With --save-counts, each rank writes DIR/counts-<rank>.json (per-peer send/recv bytes of both
// payloads) for bench/peers/torch_alltoall.py (torch.distributed.all_to_all_single, same bytes).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { init, moe, toBf16 } from '../dist/src/index.js';

const argv = process.argv.slice(2);
const opt = (name, d) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : d;
};
const T = Number(opt('tokens', 4096)), H = Number(opt('hidden', 7168)), k = Number(opt('topk', 8)), E = Number(opt('experts', 256));
const iters = Number(opt('iters', 20));
const saveDir = opt('save-counts', '');
const jsonOut = opt('json', '');
const rank = Number(process.env.HOTPATHS_RANK);

const rt = await init({ backend: 'cuda', verbose: false });
const b = rt.backend;
const group = await moe.ncclGroup();
const R = group.size;
if (E % R !== 0) throw new Error(`--experts ${E} must be a multiple of the ${R} ranks`);

// seeded inputs, different on every rank
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

// rows to each rank (a token once per rank), and from each rank
const per = E / R;
const sendRows = new Int32Array(R);
for (let t = 0; t < T; t++) {
  const seen = new Set();
  for (let j = 0; j < k; j++) seen.add(Math.floor(idxH[t * k + j] / per));
  for (const d of seen) sendRows[d]++;
}
const barrier = () => group.exchangeCounts([new Int32Array(R)]);
const [recvRows] = await group.exchangeCounts([sendRows]);
const sum = (a) => a.reduce((p, v) => p + v, 0);
const fp8Row = H + (4 * H) / 128, bf16Row = 2 * H;

const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
async function wall(fn) {
  await barrier();
  await b.sync();
  const t0 = performance.now();
  const r = await fn();
  await b.sync();
  const ms = performance.now() - t0;
  return { ms, r };
}
async function timeWall(fn, after) {
  const out = [];
  for (let i = 0; i < iters + 2; i++) {
    const { ms, r } = await wall(fn);
    if (after) await after(r);
    if (i >= 2) out.push(ms); // two warm-ups
  }
  return median(out);
}
async function timeEvents(fn) {
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

// raw all-to-all buffers: rows of `rowBytes` u8, same per-peer counts as the op
async function raw(rowBytes, sc, rc) {
  const send = b.empty('u8', [sum(sc), rowBytes]), recv = b.empty('u8', [sum(rc), rowBytes]);
  const fn = () => group.allToAllRows([send], [sc], [recv], [rc]);
  const wallMs = await timeWall(fn), eventMs = await timeEvents(fn);
  send.dispose();
  recv.dispose();
  return { wallMs, eventMs };
}

const disposeDispatched = (ds) => moe.disposeDispatched(ds);

const dispatchMs = await timeWall(() => moe.dispatch(group, [{ x, indices, weights }], { numExperts: E, fp8: true }), disposeDispatched);
const [dBf16] = await moe.dispatch(group, [{ x, indices, weights }], { numExperts: E, fp8: false });
const expertOut = dBf16.expertX;
const combineMs = await timeWall(() => moe.combine(group, [expertOut], [dBf16]), (outs) => outs.forEach((o) => o.dispose()));
const rawFp8 = await raw(fp8Row, sendRows, recvRows);
const rawBf16 = await raw(bf16Row, recvRows, sendRows); // combine sends back what dispatch received

// dispatch's own four transfers (codes, scales, ids, weights) with the same counts
const parts = [[H, 'fp8e4m3'], [H / 128, 'f32'], [k, 'i32'], [k, 'f32']].map(([w, dt]) => [b.empty(dt, [sum(sendRows), w]), b.empty(dt, [sum(recvRows), w])]);
const transfersMs = await timeWall(async () => {
  for (const [sd, rv] of parts) await group.allToAllRows([sd], [sendRows], [rv], [recvRows]);
});

// where the ops' time goes: wrap the calls they make (host time from call to settle; group calls
// include their own reads and uploads), 5 calls of each after the timed ones
async function breakdown(label, fn, after) {
  const spent = {};
  const restore = [];
  const wrap = (obj, names, tag) => {
    for (const n of names) {
      const f = obj[n];
      if (typeof f !== 'function') continue;
      restore.push(() => (obj[n] = f));
      obj[n] = function (...a) {
        const t0 = performance.now();
        const add = () => (spent[`${tag}.${n}`] = (spent[`${tag}.${n}`] ?? 0) + performance.now() - t0);
        const r = f.apply(this, a);
        if (r && typeof r.then === 'function') return r.then((v) => (add(), v));
        add();
        return r;
      };
    }
  };
  wrap(group, ['exchangeCounts', 'allToAllRows'], 'group');
  wrap(b, ['read', 'fromHost', 'empty', 'sync'], 'backend');
  wrap(b.moe, Object.keys(b.moe), 'moe');
  wrap(b.fp8, ['quantize'], 'fp8');
  let total = 0;
  for (let i = 0; i < 5; i++) {
    await barrier();
    await b.sync();
    const t0 = performance.now();
    const r = await fn();
    await b.sync();
    total += performance.now() - t0;
    after(r);
  }
  restore.forEach((f) => f());
  console.log(`rank ${rank}: ${label} breakdown, ms per call (host time to settle; nested calls counted in each): total ${(total / 5).toFixed(3)} | ` +
    Object.entries(spent).filter(([, v]) => v / 5 >= 0.005).sort((p, q) => q[1] - p[1]).map(([n, v]) => `${n} ${(v / 5).toFixed(3)}`).join(', '));
}
// --profile: a CPU profile (node:inspector) of 5 dispatches; prints the functions with the most self time
if (argv.includes('--profile')) {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 50 });
  await session.post('Profiler.start');
  for (let i = 0; i < 5; i++) disposeDispatched(await moe.dispatch(group, [{ x, indices, weights }], { numExperts: E, fp8: true }));
  const { profile } = await session.post('Profiler.stop');
  const self = new Map();
  const dt = new Map();
  profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  for (const n of profile.nodes) {
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (dt.get(n.id) ?? 0));
  }
  const top = [...self].sort((p, q) => q[1] - p[1]).slice(0, 14);
  console.log(`rank ${rank}: dispatch CPU profile, self ms per call: ` + top.map(([k, us]) => `${k} ${(us / 5000).toFixed(2)}`).join(' | '));
}

await breakdown('dispatch fp8', () => moe.dispatch(group, [{ x, indices, weights }], { numExperts: E, fp8: true }), disposeDispatched);
await breakdown('combine bf16', () => moe.combine(group, [expertOut], [dBf16]), (outs) => outs.forEach((o) => o.dispose()));

const bytes = { dispatch: sum(recvRows) * fp8Row, combine: sum(sendRows) * bf16Row };
const mine = {
  rank, R, T, H, k, E,
  sendRows: [...sendRows], recvRows: [...recvRows],
  dispatch: { ms: dispatchMs, bytes: bytes.dispatch, gbps: bytes.dispatch / dispatchMs / 1e6 },
  dispatchTransfers: { ms: transfersMs, gbps: bytes.dispatch / transfersMs / 1e6 },
  rawDispatchBytes: { ms: rawFp8.wallMs, eventMs: rawFp8.eventMs, gbps: bytes.dispatch / rawFp8.wallMs / 1e6, eventGbps: bytes.dispatch / rawFp8.eventMs / 1e6 },
  combine: { ms: combineMs, bytes: bytes.combine, gbps: bytes.combine / combineMs / 1e6 },
  rawCombineBytes: { ms: rawBf16.wallMs, eventMs: rawBf16.eventMs, gbps: bytes.combine / rawBf16.wallMs / 1e6, eventGbps: bytes.combine / rawBf16.eventMs / 1e6 },
};
const f = (v) => v.toFixed(1);
console.log(`rank ${rank}: rows sent ${[...sendRows]} received ${[...recvRows]}`);
console.log(`rank ${rank}: dispatch fp8 ${f(mine.dispatch.gbps)} GB/s (${mine.dispatch.ms.toFixed(3)} ms, ${(bytes.dispatch / 1e6).toFixed(1)} MB) | its 4 transfers ${f(mine.dispatchTransfers.gbps)} GB/s | raw a2a same bytes ${f(mine.rawDispatchBytes.gbps)} GB/s wall, ${f(mine.rawDispatchBytes.eventGbps)} GB/s events | op/raw ${(mine.dispatch.gbps / mine.rawDispatchBytes.gbps).toFixed(2)}`);
console.log(`rank ${rank}: combine bf16 ${f(mine.combine.gbps)} GB/s (${mine.combine.ms.toFixed(3)} ms, ${(bytes.combine / 1e6).toFixed(1)} MB) | raw a2a same bytes ${f(mine.rawCombineBytes.gbps)} GB/s wall, ${f(mine.rawCombineBytes.eventGbps)} GB/s events | op/raw ${(mine.combine.gbps / mine.rawCombineBytes.gbps).toFixed(2)}`);

// aggregate on every rank: Σ bytes / the slowest rank's time (gathered with the counts exchange, in µs and KB)
async function gather(v) {
  const [got] = await group.exchangeCounts([new Int32Array(R).fill(Math.round(v))]);
  return [...got];
}
const agg = {};
for (const [name, ms, by] of [
  ['dispatch', mine.dispatch.ms, bytes.dispatch],
  ['dispatchTransfers', mine.dispatchTransfers.ms, bytes.dispatch],
  ['rawDispatchBytes', mine.rawDispatchBytes.ms, bytes.dispatch],
  ['combine', mine.combine.ms, bytes.combine],
  ['rawCombineBytes', mine.rawCombineBytes.ms, bytes.combine],
]) {
  const us = await gather(ms * 1000), kb = await gather(by / 1000);
  agg[name] = { gbps: (sum(kb) * 1000) / (Math.max(...us) / 1000) / 1e6, slowestMs: Math.max(...us) / 1000 };
}
if (rank === 0) {
  console.log(`aggregate over ${R} ranks: dispatch fp8 ${f(agg.dispatch.gbps)} GB/s vs raw ${f(agg.rawDispatchBytes.gbps)} (${(agg.dispatch.gbps / agg.rawDispatchBytes.gbps).toFixed(2)}x; its transfers alone ${f(agg.dispatchTransfers.gbps)}); combine bf16 ${f(agg.combine.gbps)} GB/s vs raw ${f(agg.rawCombineBytes.gbps)} (${(agg.combine.gbps / agg.rawCombineBytes.gbps).toFixed(2)}x)`);
}
if (saveDir) {
  mkdirSync(saveDir, { recursive: true });
  writeFileSync(join(saveDir, `counts-${rank}.json`), JSON.stringify({ dispatch: { send: [...sendRows].map((r) => r * fp8Row), recv: [...recvRows].map((r) => r * fp8Row) }, combine: { send: [...recvRows].map((r) => r * bf16Row), recv: [...sendRows].map((r) => r * bf16Row) } }));
}
if (jsonOut) writeFileSync(`${jsonOut}.${rank}.json`, JSON.stringify({ ...mine, aggregate: rank === 0 ? agg : undefined }, null, 1));
group.destroy?.();
