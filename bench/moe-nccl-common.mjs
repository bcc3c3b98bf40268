// What bench/moe-nccl.mjs, moe-nccl-parts.mjs, moe-nccl-ab.mjs and moe-nccl-trace.mjs (and the dev
// harnesses native/cuda/dev/pack_time.mjs and scatter_ncu.mjs) share: their options and A/B modes,
// the seeded inputs (the same on every script, different on every rank), the barrier and the timers.
// The benches run under `hotpaths launch`.
import { moe, toBf16 } from '../dist/src/index.js';

/** --name value from the command line, else d. */
export function option(argv, name, d) {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : d;
}

/**
 * The A/B variants of --modes base,NAME=VAR[+VAR]... (default: base alone): each a name and the
 * environment variables set to 1 around its calls, for a try branch whose code reads switches at each
 * call. setMode(m) unsets every mode's variables, then sets m's (setMode(null): none).
 */
export function switchModes(argv) {
  const modes = option(argv, 'modes', 'base').split(',').map((m) => {
    const [name, vars] = m.split('=');
    return { name, vars: vars ? vars.split('+') : [] };
  });
  const all = [...new Set(modes.flatMap((m) => m.vars))];
  const setMode = (m) => {
    for (const v of all) delete process.env[v];
    for (const v of m?.vars ?? []) process.env[v] = '1';
  };
  return { modes, setMode };
}

/**
 * The shape options the benches take: --tokens, --hidden, --topk, --experts, --iters (timed calls a
 * measurement: 100; at 20, two runs of the same code in one device call differed by up to 0.09x in an
 * op's ratio), --warmup (calls before the timed ones, so that V8 has compiled the ops' JS as a training
 * loop would have).
 */
export function shapeOptions(argv) {
  const n = (name, d) => Number(option(argv, name, d));
  return { T: n('tokens', 4096), H: n('hidden', 7168), k: n('topk', 8), E: n('experts', 256), iters: n('iters', 100), warmup: n('warmup', 30) };
}

/** A small seeded generator of uniform [0, 1) numbers (mulberry32). */
export function seeded(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform random routing: k distinct experts of E per token, i32 [T, k] on the host. */
export function randomRouting(rand, T, k, E) {
  const idx = new Int32Array(T * k);
  for (let t = 0; t < T; t++) {
    const chosen = new Set();
    while (chosen.size < k) chosen.add(Math.floor(rand() * E));
    [...chosen].forEach((e, j) => (idx[t * k + j] = e));
  }
  return idx;
}

/** Tokens this rank sends each rank (a token once per rank holding one of its experts). */
export function rowsPerRank(idx, T, k, E, R) {
  const per = E / R;
  const rows = new Int32Array(R);
  for (let t = 0; t < T; t++) {
    const seen = new Set();
    for (let j = 0; j < k; j++) seen.add(Math.floor(idx[t * k + j] / per));
    for (const d of seen) rows[d]++;
  }
  return rows;
}

/** This rank's inputs: bf16 x [T, H] in [-1, 1), the routing (host and device), f32 weights; and the generator, for more. */
export function seededInputs(rt, rank, { T, H, k, E }) {
  const rand = seeded((rank + 1) * 0x9e3779b9);
  const idxH = randomRouting(rand, T, k, E);
  const x = rt.tensor(toBf16(Float32Array.from({ length: T * H }, () => rand() * 2 - 1)), [T, H], 'bf16');
  const indices = rt.tensor(idxH, [T, k], 'i32');
  const weights = rt.tensor(Float32Array.from({ length: T * k }, () => rand()), [T, k], 'f32');
  return { x, indices, weights, idxH, rand };
}

export const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
export const sum = (a) => a.reduce((p, v) => p + v, 0);

/**
 * The barrier and the timers. The barrier is a counts exchange, which synchronizes every rank; but the
 * ranks leave it up to ~0.2 ms apart (each wakes when its own read of the counts lands), and a
 * collective op then waits for the last rank. So every timed call starts at one instant instead: in the
 * barrier each rank proposes its clock + 0.3 ms (µs since the epoch, mod 2^31: the ranks of one host
 * share the clock), and each spins until the latest proposal. The `warmup` calls get the index 0 or 1
 * (the warm-ups' inputs), the `iters` timed ones 2, 3, …
 *   wall(fn, after?)  median wall clock of the timed calls, with a synchronize before and after
 *   beside(fn, after, peer)  the same, each call paired with a call of `peer` (the raw all-to-all) timed
 *                     alike, the pair's order alternating: { ms, peerMs }, both medians, so that an op
 *                     and its peer see the same machine (between runs minutes apart the raw all-to-all
 *                     moved by 20%)
 *   events(fn)        median of CUDA events on the addon's stream (which waits for the side stream)
 */
export function timers(group, b, iters, warmup = 2) {
  const R = group.size;
  const barrier = () => group.exchangeCounts([new Int32Array(R)]);
  const WRAP = 2 ** 31;
  const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
  async function alignedStart() {
    const proposal = nowUs() + 300, mine = proposal % WRAP;
    const [got] = await group.exchangeCounts([new Int32Array(R).fill(mine)]);
    let ahead = 0; // the latest proposal's lead over mine (proposals lie within ms of each other)
    for (const t of got) ahead = Math.max(ahead, ((t - mine + WRAP + WRAP / 2) % WRAP) - WRAP / 2);
    const until = proposal + ahead;
    while (nowUs() < until);
  }
  const index = (j) => (j < warmup ? j % 2 : j - warmup + 2);
  // one call's wall-clock ms: synchronized, started at one instant on every rank; after(result) untimed
  async function once(fn, after, i) {
    await b.sync();
    await alignedStart();
    const t0 = performance.now();
    const r = await fn(i);
    await b.sync();
    const ms = performance.now() - t0;
    if (after) await after(r);
    return ms;
  }
  async function wall(fn, after) {
    const out = [];
    for (let j = 0; j < warmup + iters; j++) {
      const ms = await once(fn, after, index(j));
      if (j >= warmup) out.push(ms);
    }
    return median(out);
  }
  async function beside(fn, after, peer) {
    const out = [], peerOut = [];
    for (let j = 0; j < warmup + iters; j++) {
      const first = j % 2 === 0;
      const a = first ? await once(fn, after, index(j)) : 0;
      const p = await once(peer, null, index(j));
      const c = first ? a : await once(fn, after, index(j));
      if (j >= warmup) {
        out.push(c);
        peerOut.push(p);
      }
    }
    return { ms: median(out), peerMs: median(peerOut) };
  }
  async function events(fn) {
    const out = [];
    for (let j = 0; j < warmup + iters; j++) {
      await b.sync();
      await alignedStart();
      b.deviceTimer.start();
      await fn(index(j));
      const ms = await b.deviceTimer.stop();
      if (j >= warmup) out.push(ms);
    }
    return median(out);
  }
  return { barrier, wall, beside, events, alignedStart, once };
}

/**
 * Aggregate over the group's ranks: Σ bytes / the slowest rank's ms (each rank's values gathered with
 * the counts exchange, in µs and KB: it sends entry d to rank d, so the same value to every rank).
 */
export async function aggregate(group, ms, bytes) {
  const gather = async (v) => [...(await group.exchangeCounts([new Int32Array(group.size).fill(Math.round(v))]))[0]];
  const us = await gather(ms * 1000), kb = await gather(bytes / 1000);
  const slowestMs = Math.max(...us) / 1000;
  return { gbps: (sum(kb) * 1000) / slowestMs / 1e6, slowestMs };
}

/** The group seen through its two collectives only: dispatch and combine then take the host path. */
export function hostOnly(group) {
  return { size: group.size, ranks: group.ranks, backend: group.backend, exchangeCounts: (c) => group.exchangeCounts(c), allToAllRows: (a, b, c, d) => group.allToAllRows(a, b, c, d) };
}

export const disposeDispatched = (ds) => moe.disposeDispatched(ds);
export const disposeAll = (outs) => outs.forEach((o) => o.dispose());
