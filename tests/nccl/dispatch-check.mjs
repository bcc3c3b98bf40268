// Run by tests/moe-nccl.test.ts through `hotpaths launch --nproc N` (one process per GPU): checks the
// NCCL expert group and moe.dispatch / moe.combine across real ranks. Every rank builds every rank's
// inputs from one shared seed (cheap, on the host), so it knows exactly which rows it must receive:
//   - exchangeCounts and allToAllRows move tagged rows (source, destination, index) to the right place
//   - dispatch: each rank receives exactly the tokens routed to it, as the sender's rows bit for bit
//     (bf16, f32, or FP8 codes and scales equal to the sender's quantization), ordered by source
//     rank then token, with the right local expert ids and weights
//   - combine with identity experts returns x·Σ_j w_j (FP8: dequantized x·Σ_j w_j)
//   - scenarios: random routing with ragged T, one hot expert (every other rank receives nothing), an
//     empty source rank (T = 0), k = 1
//   - the device path (plan, pack, scatter on the GPU; transfers on NCCL's side stream in pieces: the
//     default 2, and 1 and 3 for random routing) gives the same bits as the host path (the same group
//     seen through exchangeCounts/allToAllRows only), for dispatch's outputs and combine's
//   - symmetric windows with FP8 rows lend recv's codes from a receive region (with expand, expertX's
//     codes of the sources stored there are read from it): four dispatches whose results are held (all
//     four on rank 0, the first alone elsewhere) find none free after two, take the pool's, and still
//     give the same bits, read after the later calls; with expand false and true
//   - fixed slots: a second group on the same communicator with maxTokensPerRank M (the largest T of
//     the random scenario: T == M on the last rank) gives the same bits too; a rank with T > M makes
//     every rank's dispatch throw the same E_ARG, and the group works afterwards; ranks passing
//     different M (or one a bad value) all get E_ARG from moe.ncclGroup(), none hangs
// Prints "ok …" lines; any mismatch throws (exit 1: launch stops the other ranks).
// Usage: hotpaths launch --nproc N tests/nccl/dispatch-check.mjs [seed]
import { fp8, init, moe, setPoison, toBf16, fromBf16 } from '../../dist/src/index.js';
import { unpaddedBytes } from './padding.mjs';

const rank = Number(process.env.HOTPATHS_RANK);
const R = Number(process.env.HOTPATHS_WORLD_SIZE);
const seed = Number(process.argv[2] ?? 12345);
setPoison(true);
const cuda = await init({ backend: 'cuda', verbose: false });
const ref = await init({ backend: 'reference', verbose: false });
const group = await moe.ncclGroup();
if (group.size !== R || group.ranks.length !== 1 || group.ranks[0] !== rank) throw new Error(`group: size ${group.size}, ranks ${group.ranks}`);
// fixed slots on the same communicator: M = the random scenario's largest T (see scenario())
const M = 48 + 13 * (R - 1);
const slotGroup = await moe.ncclGroup({ maxTokensPerRank: M });
if (slotGroup.maxTokensPerRank !== M) throw new Error(`slot group: maxTokensPerRank ${slotGroup.maxTokensPerRank}, expected ${M}`);
// symmetric windows (NCCL's device API) on the same communicator: fixed slots of M rows, rows up to
// H = 256; without the device API the group has no windows and its runs are the fixed-slot path again
const winGroup = await moe.ncclGroup({ maxTokensPerRank: M, maxHidden: 256 });
const windows = winGroup.windows !== undefined;
if (!windows && (process.env.HOTPATHS_REQUIRE ?? '').split(',').includes('nccl-windows')) fail('HOTPATHS_REQUIRE=nccl-windows, but the group has no symmetric windows (run with HOTPATHS_VERBOSE=1 for why)');
const info = cuda.backend.details ?? {};
console.log(`rank ${rank}/${R} on cuda device ${info.device} (${info.name}); symmetric windows: ${windows ? 'yes' : 'no'}`);

function fail(msg) {
  throw new Error(`rank ${rank}: ${msg}`);
}
function rngOf(s) {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function sameBits(got, want, what) {
  if (got.length !== want.length) fail(`${what}: ${got.length} elements, expected ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== want[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) fail(`${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
  }
}

// ---------------------------------------------------------------- the group's two collectives
{
  const send = Int32Array.from({ length: R }, (_, d) => rank * 10 + d + 1);
  const [recv] = await group.exchangeCounts([send]);
  for (let s = 0; s < R; s++) if (recv[s] !== s * 10 + rank + 1) fail(`exchangeCounts: from ${s} got ${recv[s]}, expected ${s * 10 + rank + 1}`);
  // rows of 3 i32: (source, destination, index); rank s sends (s + d) % 3 + 1 rows to d
  const n = (s, d) => ((s + d) % 3) + 1;
  const rows = [];
  for (let d = 0; d < R; d++) for (let i = 0; i < n(rank, d); i++) rows.push(rank, d, i);
  const sendT = cuda.tensor(Int32Array.from(rows), [rows.length / 3, 3], 'i32');
  const total = Array.from({ length: R }, (_, s) => n(s, rank)).reduce((a, b) => a + b, 0);
  const recvT = cuda.backend.empty('i32', [total, 3]);
  await group.allToAllRows([sendT], [Int32Array.from({ length: R }, (_, d) => n(rank, d))], [recvT], [Int32Array.from({ length: R }, (_, s) => n(s, rank))]);
  const got = await recvT.read();
  const want = [];
  for (let s = 0; s < R; s++) for (let i = 0; i < n(s, rank); i++) want.push(s, rank, i);
  sameBits(got, Int32Array.from(want), 'allToAllRows tagged rows');
  console.log('ok exchangeCounts and allToAllRows move tagged rows to the right ranks and places');
}

// ---------------------------------------------------------------- dispatch / combine
function distinct(r, k, E, pick) {
  const s = new Set();
  while (s.size < k) s.add(pick(r, E));
  return [...s];
}

/** Every rank's inputs of one scenario, the same on every rank. */
function scenario(name, s) {
  const r = rngOf(seed * 7919 + s);
  const E = 8 * R, H = 256;
  const spec = {
    random: { k: 4, T: (q) => 48 + 13 * q, pick: (rr, E) => Math.floor(rr() * E) },
    'one hot expert (other ranks receive nothing)': { k: 2, T: (q) => 32 + q, pick: (rr) => Math.floor(rr() * 2) },
    'empty source rank': { k: 3, T: (q) => (q === R - 1 ? 0 : 40), pick: (rr, E) => Math.floor(rr() * E) },
    'k = 1': { k: 1, T: (q) => 30 + 5 * q, pick: (rr, E) => Math.floor(rr() * E) },
  }[name];
  const ranks = [];
  for (let q = 0; q < R; q++) {
    const T = spec.T(q);
    const x = Float32Array.from({ length: T * H }, () => (r() - 0.5) * 4);
    const idx = new Int32Array(T * spec.k);
    for (let t = 0; t < T; t++) distinct(r, spec.k, E, spec.pick).forEach((e, j) => (idx[t * spec.k + j] = e));
    const w = Float32Array.from({ length: T * spec.k }, () => r());
    ranks.push({ T, x, idx, w });
  }
  return { name, E, H, k: spec.k, ranks };
}

/** The group's two collectives only: dispatch and combine then take the host path. */
const hostOnly = {
  size: group.size, ranks: group.ranks, backend: group.backend,
  exchangeCounts: (c) => group.exchangeCounts(c), allToAllRows: (a, b, c, d) => group.allToAllRows(a, b, c, d),
};
const partsOf = (q) => ('data' in q ? [q.data, q.scales] : [q]);
const bytesOf = async (t) => new Uint8Array((await t.read()).buffer, 0, t.bytes);
// expertX's bytes without its padding rows (unspecified: the windows path does not write them)
const exBytes = async (t, al) => unpaddedBytes(t, await al.rowExpert.read());

const names = ['random', 'one hot expert (other ranks receive nothing)', 'empty source rank', 'k = 1'];
for (let s = 0; s < names.length; s++) {
  const sc = scenario(names[s], s);
  const { E, H, k } = sc;
  const per = E / R;
  const mine = sc.ranks[rank];
  // what this rank must receive: rows by source rank, then token, for tokens with an expert here
  const expect = [];
  for (let q = 0; q < R; q++) {
    const src = sc.ranks[q];
    for (let t = 0; t < src.T; t++) {
      const local = [], ws = [];
      for (let j = 0; j < k; j++) {
        const e = src.idx[t * k + j];
        const here = Math.floor(e / per) === rank;
        local.push(here ? e - rank * per : -1);
        ws.push(here ? src.w[t * k + j] : 0);
      }
      if (local.some((v) => v >= 0)) expect.push({ q, t, local, ws });
    }
  }
  for (const dtype of ['bf16', 'f32']) {
    for (const useFp8 of dtype === 'bf16' ? [false, true] : [false]) {
      const tag = `${sc.name}, ${dtype}${useFp8 ? ' as fp8' : ''}`;
      const xHost = dtype === 'bf16' ? toBf16(mine.x) : mine.x;
      const x = cuda.tensor(xHost, [mine.T, H], dtype);
      const indices = cuda.tensor(mine.idx, [mine.T, k], 'i32');
      const weights = cuda.tensor(mine.w, [mine.T, k], 'f32');
      const [d] = await moe.dispatch(group, [{ x, indices, weights }], { numExperts: E, fp8: useFp8 });
      // the host path, and other piece counts, give the same bits
      const runs = [['host path', hostOnly, {}], ['fixed slots', slotGroup, {}], ...(s === 0 ? [['1 piece', group, { chunks: 1 }], ['3 pieces', group, { chunks: 3 }], ['fixed slots, 3 pieces', slotGroup, { chunks: 3 }]] : [])];
      if (windows) runs.push(['windows', winGroup, {}], ...(s === 0 ? [['windows, 1 piece', winGroup, { chunks: 1 }], ['windows, 3 pieces', winGroup, { chunks: 3 }]] : []));
      // expand: false (no expertX; the grouped GEMM gathers recv through sortedPairs) on every path
      runs.push(['expand false', group, { expand: false }], ['host path, expand false', hostOnly, { expand: false }], ['fixed slots, expand false', slotGroup, { expand: false }]);
      if (windows) runs.push(['windows, expand false', winGroup, { expand: false }], ...(s === 0 ? [['windows, 3 pieces, expand false', winGroup, { chunks: 3, expand: false }]] : []));
      // one run's outputs against the device path's, bit for bit (and its combine, with bf16/f32 rows)
      const check = async (how, h, g, opts) => {
        const lean = opts.expand === false;
        if (h.alignment.padded !== d.alignment.padded) fail(`${tag}: ${how}: P ${h.alignment.padded}, device path ${d.alignment.padded}`);
        if (lean !== (h.expertX === null)) fail(`${tag}: ${how}: expertX ${h.expertX === null ? 'null' : 'given'}`);
        const pairs = [
          ['recvIndices', h.recvIndices, d.recvIndices], ['recvWeights', h.recvWeights, d.recvWeights],
          ...['sortedPairs', 'blockExpert', 'rowExpert', 'pairPos', 'counts'].map((n) => [n, h.alignment[n], d.alignment[n]]),
          ...partsOf(h.recv).map((t, j) => [`recv ${j}`, t, partsOf(d.recv)[j]]),
        ];
        for (const [n, a, b] of pairs) sameBits(await bytesOf(a), await bytesOf(b), `${tag}: ${how}: ${n}`);
        if (!lean) for (const [j, t] of partsOf(h.expertX).entries()) sameBits(await exBytes(t, h.alignment), await exBytes(partsOf(d.expertX)[j], d.alignment), `${tag}: ${how}: expertX ${j}`);
        if (lean) {
          // recv gathered through sortedPairs (what the GEMM reads) is the device path's expertX
          const P = h.alignment.padded, nr = h.alignment.tokens, sorted = await h.alignment.sortedPairs.read();
          const rp = partsOf(h.recv), ep = partsOf(d.expertX);
          for (let j = 0; j < rp.length; j++) {
            const src = await bytesOf(rp[j]), w = nr > 0 ? src.length / nr : 0, want = new Uint8Array(P * w);
            for (let q = 0; q < P; q++) if (sorted[q] < nr * k) want.set(src.subarray(Math.floor(sorted[q] / k) * w, (Math.floor(sorted[q] / k) + 1) * w), q * w);
            sameBits(await exBytes(ep[j], d.alignment), want, `${tag}: ${how}: recv gathered by sortedPairs, part ${j}`);
          }
        }
        if (!useFp8) {
          const [oh] = await moe.combine(g, [lean ? d.expertX : h.expertX], [h], opts.chunks ? { chunks: opts.chunks } : {});
          const [od] = await moe.combine(group, [d.expertX], [d]);
          sameBits(await bytesOf(oh), await bytesOf(od), `${tag}: ${how}: combine`);
          oh.dispose();
          od.dispose();
        }
      };
      for (const [how, g, opts] of runs) {
        const [h] = await moe.dispatch(g, [{ x, indices, weights }], { numExperts: E, fp8: useFp8, ...opts });
        await check(how, h, g, opts);
        moe.disposeDispatched([h]);
      }
      // the windows with FP8 rows lend recv's codes from a receive region: results held keep theirs,
      // so later dispatches find none free and take the pool's. Rank 0 holds all four results (regions
      // 0, 1, then none, none) while the others give back all but the first (0, 1, 1, 1), so that in
      // calls 3 and 4 the ranks' choices differ; with expand false and (expertX read from recv) true
      for (const expand of windows && useFp8 ? [false, true] : []) {
        const held = [];
        for (let i = 0; i < 4; i++) {
          const [h] = await moe.dispatch(winGroup, [{ x, indices, weights }], { numExperts: E, fp8: true, expand });
          const how = `windows, expand ${expand}, receive regions held (call ${i + 1})`;
          if (rank === 0 || i === 0) held.push([how, h]);
          else {
            await check(how, h, winGroup, { expand });
            moe.disposeDispatched([h]);
          }
        }
        for (const [how, h] of held) await check(how, h, winGroup, { expand });
        moe.disposeDispatched(held.map(([, h]) => h));
      }
      // the received rows, bit for bit the senders' (FP8: the senders' quantization of them)
      const n = expect.length;
      const recvIdx = await d.recvIndices.read(), recvW = await d.recvWeights.read();
      if (d.recvIndices.shape[0] !== n) fail(`${tag}: received ${d.recvIndices.shape[0]} rows, expected ${n}`);
      sameBits(recvIdx, Int32Array.from(expect.flatMap((e) => e.local)), `${tag}: recvIndices`);
      sameBits(recvW, Float32Array.from(expect.flatMap((e) => e.ws)), `${tag}: recvWeights`);
      const rowsOf = (q) => (dtype === 'bf16' ? toBf16(sc.ranks[q].x) : sc.ranks[q].x);
      const wantRows = new (dtype === 'bf16' ? Uint16Array : Float32Array)(n * H);
      expect.forEach((e, i) => wantRows.set(rowsOf(e.q).subarray(e.t * H, (e.t + 1) * H), i * H));
      if (useFp8) {
        if (d.recv.data.shape[0] !== n || d.recv.scales.shape[0] !== n) fail(`${tag}: FP8 rows ${d.recv.data.shape[0]} and scales ${d.recv.scales.shape[0]}, expected ${n}`);
        if (n > 0) {
          const q = await fp8.quantize(ref.tensor(wantRows, [n, H], 'bf16'), { block: [1, 128] });
          sameBits(await d.recv.data.read(), await q.data.read(), `${tag}: received FP8 codes`);
          sameBits(await d.recv.scales.read(), await q.scales.read(), `${tag}: received FP8 scales`);
        }
      } else {
        sameBits(await d.recv.read(), wantRows, `${tag}: received rows`);
      }
      // identity experts: combine(expertX) = x·Σ_j w_j (FP8: the dequantized rows)
      let expertOut = d.expertX;
      let xEff = dtype === 'bf16' ? fromBf16(xHost) : mine.x;
      if (useFp8) {
        // (fp8 ops take no empty tensor: a rank that received nothing has an empty expertX)
        const P = d.expertX.data.shape[0];
        const deqHost = P > 0 ? await (await fp8.dequantize(d.expertX)).read() : new Float32Array(0);
        expertOut = cuda.tensor(toBf16(deqHost), [P, H], 'bf16');
        if (mine.T > 0) xEff = await (await fp8.dequantize(await fp8.quantize(ref.tensor(xHost, [mine.T, H], 'bf16'), { block: [1, 128] }))).read();
      }
      const [out] = await moe.combine(group, [expertOut], [d]);
      const got = dtype === 'bf16' ? fromBf16(await out.read()) : await out.read();
      const tol = dtype === 'bf16' ? 2e-2 : 1e-5;
      for (let t = 0; t < mine.T; t++) {
        let sw = 0;
        for (let j = 0; j < k; j++) sw += mine.w[t * k + j];
        for (let h = 0; h < H; h++) {
          const want = xEff[t * H + h] * sw;
          const g = got[t * H + h];
          if (!(Math.abs(g - want) <= tol * (Math.abs(want) + 0.05))) fail(`${tag}: combine[${t}, ${h}] = ${g}, expected x·Σw = ${want}`);
        }
      }
      console.log(`ok ${tag}: received ${n} rows exactly (from ${R} ranks); combine of identity experts = x·Σw for ${mine.T} tokens; the host path, fixed slots${windows ? ', symmetric windows' : ''} and other piece counts give the same bits, and with expand: false recv gathered through sortedPairs is expertX`);
      for (const t of [x, indices, weights, out]) t.dispose();
    }
  }
}
// ---------------------------------------------------------------- fixed slots: errors every rank sees alike
{
  const E = 8 * R, H = 128, k = 2;
  const r = rngOf(seed * 31 + 7);
  const inputsOf = (T) => {
    const idx = new Int32Array(T * k);
    for (let t = 0; t < T; t++) distinct(r, k, E, (rr, e) => Math.floor(rr() * e)).forEach((e, j) => (idx[t * k + j] = e));
    return [{ x: cuda.tensor(toBf16(Float32Array.from({ length: T * H }, () => r() - 0.5)), [T, H], 'bf16'), indices: cuda.tensor(idx, [T, k], 'i32'), weights: cuda.tensor(Float32Array.from({ length: T * k }, () => r()), [T, k], 'f32') }];
  };
  // the last rank has T = M + 1: every rank throws the same E_ARG after the transfers
  // (and the windows with expand: false: its error path frees recv and the alignment, none of expertX)
  for (const [useFp8, g, expand] of [[false, slotGroup, true], [true, slotGroup, true], ...(windows ? [[false, winGroup, true], [true, winGroup, true], [true, winGroup, false]] : [])]) {
    const before = cuda.backend.memoryStats?.().inUse;
    const big = inputsOf(rank === R - 1 ? M + 1 : 10 + rank);
    let err;
    try {
      moe.disposeDispatched(await moe.dispatch(g, big, { numExperts: E, fp8: useFp8, expand }));
    } catch (e) {
      err = e;
    }
    if (err?.code !== 'E_ARG' || !new RegExp(`rank ${R - 1} dispatches T = ${M + 1} tokens, more than the group's maxTokensPerRank = ${M}`).test(err.message)) fail(`T > M (fp8 ${useFp8}, expand ${expand}): expected the same E_ARG on every rank, got ${err?.code} ${err?.message}`);
    for (const t of Object.values(big[0])) t.dispose();
    if (before !== undefined && cuda.backend.memoryStats().inUse !== before) fail(`T > M: ${cuda.backend.memoryStats().inUse - before} bytes left behind`);
  }
  // the group still works: T == M on the last rank, the host path's bits
  const fit = inputsOf(rank === R - 1 ? M : 5 * rank);
  const [ds] = await moe.dispatch(slotGroup, fit, { numExperts: E });
  const [dh] = await moe.dispatch(hostOnly, fit, { numExperts: E });
  sameBits(await exBytes(ds.expertX, ds.alignment), await exBytes(dh.expertX, dh.alignment), 'after T > M: expertX');
  const [os] = await moe.combine(slotGroup, [ds.expertX], [ds]);
  const [oh] = await moe.combine(hostOnly, [dh.expertX], [dh]);
  sameBits(await bytesOf(os), await bytesOf(oh), 'after T > M: combine');
  if (windows) {
    const [dw] = await moe.dispatch(winGroup, fit, { numExperts: E });
    sameBits(await exBytes(dw.expertX, dw.alignment), await exBytes(dh.expertX, dh.alignment), 'windows, after T > M: expertX');
    const [ow] = await moe.combine(winGroup, [dw.expertX], [dw]);
    sameBits(await bytesOf(ow), await bytesOf(oh), 'windows, after T > M: combine');
    moe.disposeDispatched([dw]);
    // expand's expertX is sized before the read by the largest P the group has had: blockSize 1024 pads
    // every local expert to 1024 rows, far past it, so the first such call gathers expertX from recv
    // after the read, and the next ones fit the capacity it leaves; the host path's bits every time
    for (const [i, useFp8] of [[1, false], [2, false], [3, true]]) {
      const o = { numExperts: E, blockSize: 1024, fp8: useFp8 };
      const [dw2] = await moe.dispatch(winGroup, fit, o);
      const [dh2] = await moe.dispatch(hostOnly, fit, o);
      for (const [n, a, b] of [['pairPos', dw2.alignment.pairPos, dh2.alignment.pairPos], ['sortedPairs', dw2.alignment.sortedPairs, dh2.alignment.sortedPairs]]) {
        sameBits(await bytesOf(a), await bytesOf(b), `windows, blockSize 1024 (call ${i}${useFp8 ? ', fp8' : ''}): ${n}`);
      }
      for (const [j, t] of partsOf(dw2.expertX).entries()) sameBits(await exBytes(t, dw2.alignment), await exBytes(partsOf(dh2.expertX)[j], dh2.alignment), `windows, blockSize 1024 (call ${i}${useFp8 ? ', fp8' : ''}): expertX ${j}`);
      moe.disposeDispatched([dw2, dh2]);
    }
  }
  moe.disposeDispatched([ds, dh]);
  console.log(`ok fixed slots: a rank with T = M + 1 = ${M + 1} makes every rank's dispatch throw the same E_ARG (fp8 and bf16; windows with expand: false too), nothing is left behind, and the group works afterwards (T == M)${windows ? "; the windows' expertX past the capacity the group had, and within the one it then has, the host path's bits" : ''}`);
  // ranks that disagree on M all get E_ARG at creation (and a bad value on one rank too)
  for (const [what, m] of [['different M', rank === 0 ? 8 : 16], ['a bad M on one rank', rank === R - 1 ? 1.5 : 8], ['M on some ranks only', rank === 0 ? undefined : 8]]) {
    let err;
    try {
      const g = await moe.ncclGroup(m === undefined ? {} : { maxTokensPerRank: m });
      g.destroy?.();
    } catch (e) {
      err = e;
    }
    if (err?.code !== 'E_ARG' || !/maxTokensPerRank/.test(err.message)) fail(`${what}: expected E_ARG naming maxTokensPerRank on every rank, got ${err?.code} ${err?.message}`);
  }
  // (the communicator is still there and in step)
  const [back] = await group.exchangeCounts([Int32Array.from({ length: R }, (_, d) => rank * R + d)]);
  for (let q = 0; q < R; q++) if (back[q] !== q * R + rank) fail(`after the rejected groups: exchangeCounts from ${q} got ${back[q]}`);
  console.log('ok ranks passing different maxTokensPerRank (or a bad one) all get E_ARG from moe.ncclGroup(), and the communicator stays usable');
}
// a recv lent from a receive region outlives its group only as an error: after destroy() using it
// throws E_ARG (its memory is gone), and disposing it is harmless
if (windows) {
  const E = 8 * R, H = 256, k = 2, T = 8;
  const x = cuda.tensor(toBf16(Float32Array.from({ length: T * H }, (_, i) => ((i * 7) % 13) - 6)), [T, H], 'bf16');
  const indices = cuda.tensor(Int32Array.from({ length: T * k }, (_, i) => (i * 5 + rank) % E), [T, k], 'i32');
  const weights = cuda.tensor(new Float32Array(T * k).fill(0.5), [T, k], 'f32');
  const [held] = await moe.dispatch(winGroup, [{ x, indices, weights }], { numExperts: E, fp8: true, expand: false });
  winGroup.destroy();
  let err;
  try {
    await held.recv.data.read();
  } catch (e) {
    err = e;
  }
  if (err?.code !== 'E_ARG') fail(`a lent recv read after its group's destroy(): expected E_ARG, got ${err?.code} ${err?.message}`);
  moe.disposeDispatched([held]);
  for (const t of [x, indices, weights]) t.dispose();
  console.log('ok a recv lent from a destroyed group\'s receive region throws E_ARG when used, and disposes quietly');
}
winGroup.destroy?.();
slotGroup.destroy?.();
group.destroy?.();
console.log('ok all');
