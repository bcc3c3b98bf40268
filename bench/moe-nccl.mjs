// Expert-parallel dispatch/combine bandwidth over NCCL, one process per GPU:
//   npm run build && hotpaths launch --nproc N bench/moe-nccl.mjs [--tokens 4096] [--hidden 7168]
//     [--topk 8] [--experts 256] [--iters 100] [--warmup 30] [--chunks 1,2,3,4] [--save-counts DIR] [--json FILE]
//     [--no-host-path] [--slots M] [--groups counts,slots,windows]
// Random routing (k distinct experts per token, uniform), bf16 x. Measures on every rank, in one run:
//   dispatch (FP8)   moe.dispatch(fp8: true) end to end (plan, counts, quantize and pack, payload,
//                    receive layout and scatter into expert order), for each --chunks value (the
//                    pieces each peer's rows travel in); wall clock with a synchronize before and
//                    after, and CUDA events on the addon's stream (which waits for the side stream)
//   dispatch, expand: false   the same with expand: false: recv and the alignment only, no expertX (the
//                    grouped GEMM gathers recv's rows through sortedPairs: gemm.fp8GroupedContiguous's
//                    gather option), so the rows are never written a second time in expert order
//   combine (bf16)   moe.combine of the bf16 dispatch's expertX (identity experts), likewise
//   fixed slots      the same two ops on a second group of the communicator made with
//                    maxTokensPerRank = --slots (default --tokens): the payload leaves before the
//                    counts are read, M rows a peer (the bytes counted stay the routed rows')
//   windows          the same two ops on a third group made with maxTokensPerRank = --slots and
//                    maxHidden = --hidden: where NCCL's device API works (symmetric memory, LSA), the
//                    pack kernel writes each row straight into its destination's memory and combine's
//                    reduction straight into its source's; no send/recv (else the group is left out)
//   fresh routing    dispatch (FP8, the breakdown's piece count) counts first and with fixed slots,
//                    with new random indices every iteration (made before timing), so that neither is
//                    flattered by the same routing every time; bytes = the mean over those routings
//   host path        the same ops through the group's two collectives only (the plan on the host,
//                    one allToAllRows a buffer): what dispatch/combine did before the device path
//   raw a2a          ncclGroup().allToAllRows of one u8 buffer with the same per-peer byte counts
//                    (grouped ncclSend/ncclRecv, nothing else), for each of the two payloads; wall
//                    clock like the ops, and CUDA events. Timed twice: beside every op (each timed
//                    call of the op paired with one of the raw all-to-all of its payload, the pair's
//                    order alternating), which gives the op's ratio, and alone at the end (the "raw
//                    a2a" column, and the host path's ratio)
// Bytes counted ("payload"): the rows this rank receives, from every rank including itself, times
// the row's payload bytes: FP8 dispatch H + 4·H/128 (codes and 1×128 f32 scales), bf16 combine 2·H.
// The 12·k bytes a row of ids, weights and pair ranks that dispatch also moves are not counted. The
// raw a2a moves exactly the counted bytes (its self part too, which the device path copies locally).
// GB/s per rank = its bytes / its median time; aggregate = Σ bytes over ranks / the slowest rank's
// median time; an op's ratio (the "x") = its GB/s over the raw all-to-all's timed beside it, likewise
// aggregated (the host path's: over the raw a2a column). Every rank starts each timed call at one instant (agreed in a counts exchange: the
// ranks share the host's clock); inputs, barrier and timers: bench/moe-nccl-common.mjs. With --save-counts, each rank
// writes DIR/counts-<rank>.json (per-peer send/recv bytes of both payloads) for
// bench/peers/torch_alltoall.py (torch.distributed.all_to_all_single, same bytes).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { init, moe } from '../dist/src/index.js';
import { aggregate, disposeAll, disposeDispatched, hostOnly as hostOnlyOf, option, randomRouting, rowsPerRank, seededInputs, shapeOptions, sum, timers } from './moe-nccl-common.mjs';

const argv = process.argv.slice(2);
const opt = (name, d) => option(argv, name, d);
const { T, H, k, E, iters, warmup } = shapeOptions(argv);
const chunkList = opt('chunks', '1,2,3,4').split(',').map(Number);
const hostPath = !argv.includes('--no-host-path');
const saveDir = opt('save-counts', '');
const jsonOut = opt('json', '');
const M = Number(opt('slots', T));
const rank = Number(process.env.HOTPATHS_RANK);

const rt = await init({ backend: 'cuda', verbose: false });
const b = rt.backend;
const group = await moe.ncclGroup();
const slotGroup = await moe.ncclGroup({ maxTokensPerRank: M }); // the same communicator, fixed slots
const winGroup = await moe.ncclGroup({ maxTokensPerRank: M, maxHidden: H }); // symmetric windows, where NCCL's device API works
const groupsWanted = opt('groups', 'counts,slots,windows').split(',');
const useWindows = winGroup.windows !== undefined && groupsWanted.includes('windows');
if (groupsWanted.includes('windows') && !winGroup.windows) console.log(`rank ${rank}: no symmetric windows here (HOTPATHS_VERBOSE=1 says why): the windows rows are left out`);
const R = group.size;
if (E % R !== 0) throw new Error(`--experts ${E} must be a multiple of the ${R} ranks`);

// seeded inputs, different on every rank
const { x, indices, weights, idxH, rand } = seededInputs(rt, rank, { T, H, k, E });

// rows to each rank (a token once per rank), and from each rank
const sendRows = rowsPerRank(idxH, T, k, E, R);
const { barrier, wall: timeWall, beside: timeBeside, events: timeEvents } = timers(group, b, iters, warmup);
const [recvRows] = await group.exchangeCounts([sendRows]);
const fp8Row = H + (4 * H) / 128, bf16Row = 2 * H;

// raw all-to-all buffers: rows of `rowBytes` u8, same per-peer counts as the op
async function raw(rowBytes, sc, rc) {
  const send = b.empty('u8', [sum(sc), rowBytes]), recv = b.empty('u8', [sum(rc), rowBytes]);
  const fn = () => group.allToAllRows([send], [sc], [recv], [rc]);
  const wallMs = await timeWall(fn), eventMs = await timeEvents(fn);
  send.dispose();
  recv.dispose();
  return { wallMs, eventMs };
}

// the raw all-to-all of each payload, timed beside every op (its buffers held for the run)
const rawBuffers = [];
function rawOf(rowBytes, sc, rc) {
  const send = b.empty('u8', [sum(sc), rowBytes]), recv = b.empty('u8', [sum(rc), rowBytes]);
  rawBuffers.push(send, recv);
  return () => group.allToAllRows([send], [sc], [recv], [rc]);
}
const rawBeside = { dispatch: rawOf(fp8Row, sendRows, recvRows), combine: rawOf(bf16Row, recvRows, sendRows) }; // combine sends back what dispatch received
// an op's wall clock with the raw all-to-all of its payload beside it, then its events
async function timeOp(fn, after, payload, eventFn) {
  const { ms, peerMs } = await timeBeside(fn, after, rawBeside[payload]);
  return { ms, rawMs: peerMs, eventMs: await timeEvents(eventFn) };
}

// the group's two collectives only: the host path
const hostOnly = hostOnlyOf(group);

const inputs = [{ x, indices, weights }];
// (the same piece count on every rank: each rank's transfers must pair up with the others')
const bc = chunkList.includes(2) ? 2 : chunkList[0];
const [dBf16] = await moe.dispatch(group, inputs, { numExperts: E, fp8: false });
const [sBf16] = await moe.dispatch(slotGroup, inputs, { numExperts: E, fp8: false });
const [wBf16] = useWindows ? await moe.dispatch(winGroup, inputs, { numExperts: E, fp8: false }) : [undefined];
const ops = {};
const timedGroups = [['', group, dBf16, 'counts'], ['slots/', slotGroup, sBf16, 'slots'], ['windows/', winGroup, wBf16, 'windows']].filter(([, , d, w]) => d && groupsWanted.includes(w));
for (const [name, g, d] of timedGroups) {
  for (const c of chunkList) {
    const dispatch = () => moe.dispatch(g, inputs, { numExperts: E, fp8: true, chunks: c });
    const lean = () => moe.dispatch(g, inputs, { numExperts: E, fp8: true, chunks: c, expand: false });
    const combine = () => moe.combine(g, [d.expertX], [d], { chunks: c });
    ops[`dispatch/${name}${c}`] = await timeOp(dispatch, disposeDispatched, 'dispatch', async () => disposeDispatched(await dispatch()));
    ops[`dispatch/${name}lean/${c}`] = await timeOp(lean, disposeDispatched, 'dispatch', async () => disposeDispatched(await lean()));
    ops[`combine/${name}${c}`] = await timeOp(combine, disposeAll, 'combine', async () => disposeAll(await combine()));
  }
}
// fresh routing: new indices every iteration (uploaded before timing), the same x and weights
const fresh = [];
let freshBytes = 0;
for (let i = 0; i < iters + 2; i++) {
  const idx = randomRouting(rand, T, k, E);
  const [rr] = await group.exchangeCounts([rowsPerRank(idx, T, k, E, R)]);
  if (i >= 2) freshBytes += (sum(rr) * fp8Row) / iters;
  fresh.push(rt.tensor(idx, [T, k], 'i32'));
}
for (const [name, g] of timedGroups) {
  const dispatch = (i) => moe.dispatch(g, [{ x, indices: fresh[i], weights }], { numExperts: E, fp8: true, chunks: bc });
  ops[`dispatch/fresh/${name}${bc}`] = await timeOp(dispatch, disposeDispatched, 'dispatch', async (i) => disposeDispatched(await dispatch(i)));
  const lean = (i) => moe.dispatch(g, [{ x, indices: fresh[i], weights }], { numExperts: E, fp8: true, chunks: bc, expand: false });
  ops[`dispatch/fresh/${name}lean/${bc}`] = await timeOp(lean, disposeDispatched, 'dispatch', async (i) => disposeDispatched(await lean(i)));
}
if (hostPath) {
  const [hBf16] = await moe.dispatch(hostOnly, inputs, { numExperts: E, fp8: false });
  ops['dispatch/host'] = { ms: await timeWall(() => moe.dispatch(hostOnly, inputs, { numExperts: E, fp8: true }), disposeDispatched), eventMs: NaN };
  ops['combine/host'] = { ms: await timeWall(() => moe.combine(hostOnly, [hBf16.expertX], [hBf16]), disposeAll), eventMs: NaN };
  moe.disposeDispatched([hBf16]);
}
const rawFp8 = await raw(fp8Row, sendRows, recvRows);
const rawBf16 = await raw(bf16Row, recvRows, sendRows); // combine sends back what dispatch received

// where the ops' time goes: wrap the calls they make (host time from call to settle; group calls
// include their own reads and uploads), 5 calls of each after the timed ones
async function breakdown(label, fn, after, g = group) {
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
  wrap(g, ['exchangeCounts', 'allToAllRows', 'startAllGather', 'startMoveRows'], 'group');
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
// --profile: a CPU profile (node:inspector) of 5 dispatches (the windows group's where it has them, else
// the counts-first group's); prints the functions with the most self time
if (argv.includes('--profile')) {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 50 });
  await session.post('Profiler.start');
  const pg = useWindows ? winGroup : group; // the windows path where it runs, else the counts-first one
  for (let i = 0; i < 5; i++) disposeDispatched(await moe.dispatch(pg, [{ x, indices, weights }], { numExperts: E, fp8: true, chunks: bc }));
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
  console.log(`rank ${rank}: dispatch CPU profile (${useWindows ? 'windows' : 'counts first'}, ${bc} pieces), self ms per call: ` + top.map(([k, us]) => `${k} ${(us / 5000).toFixed(2)}`).join(' | '));
}

await breakdown(`dispatch fp8 (${bc} pieces)`, () => moe.dispatch(group, inputs, { numExperts: E, fp8: true, chunks: bc }), disposeDispatched);
await breakdown(`dispatch fp8 fixed slots (${bc} pieces)`, () => moe.dispatch(slotGroup, inputs, { numExperts: E, fp8: true, chunks: bc }), disposeDispatched, slotGroup);
await breakdown(`combine bf16 (${bc} pieces)`, () => moe.combine(group, [dBf16.expertX], [dBf16], { chunks: bc }), disposeAll);

const bytes = { dispatch: sum(recvRows) * fp8Row, combine: sum(sendRows) * bf16Row, fresh: freshBytes };
// an op's counted bytes: the fresh-routing runs count their own routings' (mean)
const bytesOf = (n) => (n.startsWith('dispatch/fresh/') ? bytes.fresh : bytes[n.split('/')[0]]);
const gbps = (by, ms) => by / ms / 1e6;
const mine = {
  rank, R, T, H, k, E, M, chunks: chunkList,
  sendRows: [...sendRows], recvRows: [...recvRows], bytes,
  ops: Object.fromEntries(Object.entries(ops).map(([n, v]) => [n, { ...v, gbps: gbps(bytesOf(n), v.ms), eventGbps: gbps(bytesOf(n), v.eventMs), rawGbps: v.rawMs ? gbps(bytes[n.split('/')[0]], v.rawMs) : undefined }])),
  rawDispatchBytes: { ms: rawFp8.wallMs, eventMs: rawFp8.eventMs, gbps: gbps(bytes.dispatch, rawFp8.wallMs), eventGbps: gbps(bytes.dispatch, rawFp8.eventMs) },
  rawCombineBytes: { ms: rawBf16.wallMs, eventMs: rawBf16.eventMs, gbps: gbps(bytes.combine, rawBf16.wallMs), eventGbps: gbps(bytes.combine, rawBf16.eventMs) },
};
const f = (v) => v.toFixed(1);
console.log(`rank ${rank}: rows sent ${[...sendRows]} received ${[...recvRows]}; dispatch ${(bytes.dispatch / 1e6).toFixed(1)} MB, combine ${(bytes.combine / 1e6).toFixed(1)} MB received`);
// the printed rows: [label, op, [column label, op key]…]
const colName = (c) => (c === 'host' ? 'host path' : `${c} pieces`);
const rows = [
  ['dispatch fp8', 'dispatch', [...chunkList.map((c) => [colName(c), `dispatch/${c}`]), ...(hostPath ? [['host path', 'dispatch/host']] : [])]],
  [`dispatch fp8 fixed slots (M = ${M})`, 'dispatch', chunkList.map((c) => [colName(c), `dispatch/slots/${c}`])],
  [`dispatch fp8 symmetric windows (M = ${M})`, 'dispatch', chunkList.map((c) => [colName(c), `dispatch/windows/${c}`])],
  ['dispatch fp8, expand: false', 'dispatch', chunkList.map((c) => [colName(c), `dispatch/lean/${c}`])],
  [`dispatch fp8 fixed slots, expand: false (M = ${M})`, 'dispatch', chunkList.map((c) => [colName(c), `dispatch/slots/lean/${c}`])],
  [`dispatch fp8 symmetric windows, expand: false (M = ${M})`, 'dispatch', chunkList.map((c) => [colName(c), `dispatch/windows/lean/${c}`])],
  [`dispatch fp8 fresh routing (${bc} pieces)`, 'dispatch', [['counts first', `dispatch/fresh/${bc}`], [`fixed slots (M = ${M})`, `dispatch/fresh/slots/${bc}`], ['windows', `dispatch/fresh/windows/${bc}`], ['windows, expand: false', `dispatch/fresh/windows/lean/${bc}`]]],
  ['combine bf16', 'combine', [...chunkList.map((c) => [colName(c), `combine/${c}`]), ...(hostPath ? [['host path', 'combine/host']] : [])]],
  [`combine bf16 fixed slots (M = ${M})`, 'combine', chunkList.map((c) => [colName(c), `combine/slots/${c}`])],
  [`combine bf16 symmetric windows (M = ${M})`, 'combine', chunkList.map((c) => [colName(c), `combine/windows/${c}`])],
].map(([label, op, cols]) => [label, op, cols.filter(([, key]) => ops[key] !== undefined)]).filter(([, , cols]) => cols.length > 0);
for (const [label, op, cols] of rows) {
  const rawOp = op === 'dispatch' ? mine.rawDispatchBytes : mine.rawCombineBytes;
  const text = cols.map(([name, key]) => {
    const o = mine.ops[key];
    const raw = o.rawGbps ?? rawOp.gbps;
    return `${name} ${f(o.gbps)} GB/s (${o.ms.toFixed(3)} ms${Number.isNaN(o.eventMs) ? '' : `, events ${o.eventMs.toFixed(3)}`}; raw beside ${f(raw)} GB/s) ${(o.gbps / raw).toFixed(2)}x`;
  });
  console.log(`rank ${rank}: ${label}: ${text.join(' | ')} | raw a2a same bytes ${f(rawOp.gbps)} GB/s wall (${rawOp.ms.toFixed(3)} ms), ${f(rawOp.eventGbps)} events`);
}

// aggregate on every rank: Σ bytes / the slowest rank's time (each op's raw beside it likewise)
const agg = {};
const named = [
  ...Object.entries(mine.ops).flatMap(([n, v]) => [[n, v.ms, bytesOf(n)], ...(v.rawMs ? [[`${n}/raw`, v.rawMs, bytes[n.split('/')[0]]]] : [])]),
  ['rawDispatchBytes', mine.rawDispatchBytes.ms, bytes.dispatch], ['rawCombineBytes', mine.rawCombineBytes.ms, bytes.combine],
];
for (const [name, ms, by] of named) agg[name] = await aggregate(group, ms, by);
if (rank === 0) {
  for (const [label, op, cols] of rows) {
    const rawAgg = agg[op === 'dispatch' ? 'rawDispatchBytes' : 'rawCombineBytes'];
    const text = cols.map(([name, key]) => `${name} ${f(agg[key].gbps)} GB/s ${(agg[key].gbps / (agg[`${key}/raw`] ?? rawAgg).gbps).toFixed(2)}x`);
    console.log(`aggregate over ${R} ranks: ${label}: ${text.join(' | ')} | raw a2a ${f(rawAgg.gbps)} GB/s`);
  }
}
if (saveDir) {
  mkdirSync(saveDir, { recursive: true });
  writeFileSync(join(saveDir, `counts-${rank}.json`), JSON.stringify({ dispatch: { send: [...sendRows].map((r) => r * fp8Row), recv: [...recvRows].map((r) => r * fp8Row) }, combine: { send: [...recvRows].map((r) => r * bf16Row), recv: [...sendRows].map((r) => r * bf16Row) } }));
}
if (jsonOut) writeFileSync(`${jsonOut}.${rank}.json`, JSON.stringify({ ...mine, aggregate: rank === 0 ? agg : undefined }, null, 1));
moe.disposeDispatched([dBf16, sBf16, ...(wBf16 ? [wBf16] : [])]);
rawBuffers.forEach((t) => t.dispose());
fresh.forEach((t) => t.dispose());
winGroup.destroy?.();
slotGroup.destroy?.();
group.destroy?.();
