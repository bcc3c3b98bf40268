// The cpu and webgpu MoE kernels called directly (backend.moe), against the reference kernels of
// src/reference/moe.ts on inputs the ops tests (tests/moe.test.ts) do not reach: the hot routing
// shape (E = 256, 8 groups, 4 kept, top-8), many align chunks, index values the ops layer would
// reject (GPU kernels must skip them; the cpu entry points do the same), ragged rows, mixed dtypes,
// odd byte rows, copies within one buffer, and (webgpu) workgroup counts folded into 2-D.
// Integers are compared exactly; floats with the tolerance stated at each check. Outputs are
// poisoned before every run (setPoison), so an element a kernel forgets to write fails.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromBf16, setPoison, toBf16 } from '../src/index.js';
import type { Backend, MoeRouteParams } from '../src/runtime/backend.js';
import type { DType, HostArray } from '../src/dtype.js';
import * as R from '../src/reference/moe.js';
import type { WebGPUBackend } from '../src/webgpu/backend.js';
import { backendsUnderTest, freshSeed, rng, thrown } from './helpers.js';

const under = await backendsUnderTest();

beforeAll(() => setPoison(true));
afterAll(() => {
  setPoison(false);
  for (const v of variants) if (v.name.startsWith('webgpu (')) v.backend.destroy?.();
});

const fround = Math.fround;

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

function expectEqual(got: ArrayLike<number>, want: ArrayLike<number>, tag: string): void {
  expect(got.length, `${tag}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) expect.fail(`${tag}[${i}]: got ${got[i]}, want ${want[i]}`);
}

/** |got − want| ≤ rel·|want| + abs everywhere (NaN only where want is NaN). */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs: number, tag: string): void {
  expect(got.length, `${tag}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    if (!(Math.abs(g - w) <= rel * Math.abs(w) + abs)) expect.fail(`${tag}[${i}]: got ${g}, want ${w} (rel ${rel}, abs ${abs})`);
  }
}

/**
 * The V3 selection rule applied to given f32 scores (the reference's rule, restated): keys fround(s + b)
 * (NaN -> −∞), group scores fround(top1 + top2) or top1, kept groups and top-k by (key desc, index asc).
 * A GPU's scores differ from the reference's by a few ulps (f32 exp); its indices must still be
 * exactly this rule applied to the scores it wrote.
 */
function selectFromScores(s: Float32Array, bias: Float32Array | null, T: number, E: number, p: MoeRouteParams): Int32Array {
  const G = E / p.nGroup;
  const out = new Int32Array(T * p.topk);
  const before = (ka: number, a: number, kb: number, b: number) => ka > kb || (ka === kb && a < b);
  for (let t = 0; t < T; t++) {
    const key = Array.from({ length: E }, (_, e) => {
      const v = bias ? fround(s[t * E + e]! + bias[e]!) : s[t * E + e]!;
      return Number.isNaN(v) ? -Infinity : v;
    });
    const kept = new Array<boolean>(p.nGroup).fill(true);
    if (p.topkGroup < p.nGroup) {
      const gk = Array.from({ length: p.nGroup }, (_, g) => {
        const m = key.slice(g * G, g * G + G).sort((a, b) => b - a);
        const v = p.groupScore === 'top2' ? fround(m[0]! + (m[1] ?? -Infinity)) : m[0]!;
        return Number.isNaN(v) ? -Infinity : v;
      });
      kept.fill(false);
      for (let n = 0; n < p.topkGroup; n++) {
        let best = -1;
        for (let g = 0; g < p.nGroup; g++) if (!kept[g] && (best < 0 || before(gk[g]!, g, gk[best]!, best))) best = g;
        kept[best] = true;
      }
    }
    const taken = new Array<boolean>(E).fill(false);
    for (let j = 0; j < p.topk; j++) {
      let best = -1;
      for (let e = 0; e < E; e++) if (!taken[e] && kept[Math.floor(e / G)] && (best < 0 || before(key[e]!, e, key[best]!, best))) best = e;
      taken[best] = true;
      out[t * p.topk + j] = best;
    }
  }
  return out;
}

/** How many elements differ in their bits, and by how many ulps at most (NaN = NaN). */
function ulpDiffs(got: Float32Array, want: Float32Array): { count: number; max: number } {
  const g = new Int32Array(got.buffer, got.byteOffset, got.length), w = new Int32Array(want.buffer, want.byteOffset, want.length);
  let count = 0, max = 0;
  for (let i = 0; i < w.length; i++) {
    if (g[i] === w[i] || (Number.isNaN(got[i]!) && Number.isNaN(want[i]!))) continue;
    count++;
    max = Math.max(max, (got[i]! < 0) === (want[i]! < 0) ? Math.abs(g[i]! - w[i]!) : Infinity);
  }
  return { count, max };
}

const HOT: MoeRouteParams = { scoring: 'sigmoid', topk: 8, nGroup: 8, topkGroup: 4, groupScore: 'top2', normTopkProb: true, routedScalingFactor: 2.5 };

/** Random pair indices in [0, E) with one hot expert and a share of bad ones (−1, −7, E, E + 5) when `bad`. */
function pairIndices(r: () => number, n: number, E: number, bad: boolean): Int32Array {
  return Int32Array.from({ length: n }, () => {
    const u = r();
    if (bad && u < 0.03) return [-1, -7, E, E + 5][(r() * 4) | 0]!;
    return u < 0.25 ? 1 % E : (r() * E) | 0;
  });
}

function rowsData(r: () => number, n: number, dt: 'f32' | 'bf16'): Float32Array | Uint16Array {
  const f = Float32Array.from({ length: n }, () => normal(r));
  return dt === 'bf16' ? toBf16(f) : f;
}
const asF32 = (a: HostArray, dt: DType): Float32Array => (dt === 'bf16' ? fromBf16(a as Uint16Array) : (a as Float32Array));

interface Variant {
  name: string;
  backend: Backend;
}

const variants: Variant[] = [];
for (const u of under) {
  if (u.skip || !u.backend?.moe || u.name === 'cuda') continue;
  variants.push({ name: u.name, backend: u.backend });
  if (u.name === 'webgpu') {
    // the same device with workgroup counts folded into 2-D past 31 per dimension: every kernel's linear index
    const { createWebGPUBackend } = await import('../src/webgpu/backend.js');
    variants.push({ name: 'webgpu (2-D folded grids)', backend: await createWebGPUBackend({ device: (u.backend as WebGPUBackend).device, maxWorkgroupsPerDim: 31 }) });
  }
}
if (variants.length === 0) console.warn('[skip] moe kernels: neither the cpu nor the webgpu backend runs here');

for (const { name, backend: b } of variants) {
  describe(`moe kernels on ${name} against the reference kernels`, () => {
    const moe = b.moe!;
    const readF = async (t: ReturnType<Backend['empty']>) => (await b.read(t)) as Float32Array;
    const readI = async (t: ReturnType<Backend['empty']>) => (await b.read(t)) as Int32Array;

    it('route at the hot shape (E = 256, 8 groups, 4 kept, top-8), gridded ties and random logits, NaN tokens; backward and aux loss', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const T = 96, E = 256;
      for (const [grid, p] of [
        [true, HOT],
        [false, HOT],
        [true, { ...HOT, scoring: 'softmax', groupScore: 'max', normTopkProb: false, routedScalingFactor: 1 }],
        [false, { ...HOT, nGroup: 1, topkGroup: 1, topk: 6 }],
        // k > 8: webgpu's repeated-argmax path (k ≤ 8 merges per-invocation lists)
        [true, { ...HOT, nGroup: 4, topkGroup: 2, topk: 12 }],
      ] as const) {
        const tag = `seed ${seed} ${name} ${p.scoring} grid ${grid} nGroup ${p.nGroup}`;
        // gridded: logits on multiples of 1/4 in [−2, 2] and biases on multiples of 1/16: many exact ties
        const logits = Float32Array.from({ length: T * E }, () => (grid ? Math.round((r() - 0.5) * 16) / 4 : normal(r) * 2));
        logits[5 * E + 17] = NaN;
        const bias = Float32Array.from({ length: E }, () => (grid ? Math.round((r() - 0.5) * 4) / 16 : (r() - 0.5) * 0.2));
        const s1 = new Float32Array(T * E), w1 = new Float32Array(T * p.topk), i1 = new Int32Array(T * p.topk);
        R.moeRoute(logits, bias, T, E, p, s1, w1, i1);
        const s2 = b.empty('f32', [T, E]), w2 = b.empty('f32', [T, p.topk]), i2 = b.empty('i32', [T, p.topk]);
        await moe.route(b.fromHost(logits, 'f32', [T, E]), b.fromHost(bias, 'f32', [E]), p, s2, w2, i2);
        const S = await readF(s2), W = await readF(w2), I = await readI(i2);
        // scores: correctly rounded on every backend (cpu: f64 math; webgpu: fixed point, exact.wgsl), so
        // bit-exact but where the exact value lies within ~2^−50 of a rounding midpoint: allow 2 such, 1 ulp
        const diffs = ulpDiffs(S, s1);
        expect(diffs.count, `${tag} scores differing from the reference (max ${diffs.max} ulp)`).toBeLessThanOrEqual(2);
        expect(diffs.max, `${tag} scores: ulps`).toBeLessThanOrEqual(1);
        // weights: f32 sum, division (WGSL's within 2.5 ulp) and scaling
        expectClose(W, w1, 1e-6, 1e-30, `${tag} weights`);
        for (let j = 0; j < p.topk; j++) expect(Number.isNaN(W[5 * p.topk + j]!), `${tag} NaN token weight ${j}`).toBe(true);
        // indices: exactly the rule on the scores the kernel wrote, which (scores equal) are the reference's
        expectEqual(I, selectFromScores(S, bias, T, E, p), `${tag} indices (rule on own scores)`);
        if (diffs.count === 0) expectEqual(I, i1, `${tag} indices`);

        const dW = Float32Array.from({ length: T * p.topk }, () => normal(r));
        const dS = Float32Array.from({ length: T * E }, () => normal(r) * 0.1);
        const dl1 = new Float32Array(T * E);
        R.moeRouteBackward(s1, i1, dW, dS, T, E, p, dl1);
        const dl2 = b.empty('f32', [T, E]);
        await moe.routeBackward(b.fromHost(s1, 'f32', [T, E]), b.fromHost(i1, 'i32', [T, p.topk]), b.fromHost(dW, 'f32', [T, p.topk]), b.fromHost(dS, 'f32', [T, E]), p, dl2);
        // f32 math against f64: 1e-5 relative plus 1e-7 absolute (terms of size ~0.1–2.5 cancel)
        expectClose(await readF(dl2), dl1, 1e-5, 1e-7, `${tag} routeBackward`);

        const finite = s1.map((v) => (Number.isNaN(v) ? 0.5 : v));
        for (const L of [T, 8]) {
          const a1 = new Float32Array(T * E);
          const l1 = R.moeAuxLoss(finite, i1, T, E, p.topk, L, 0.001, a1);
          const a2 = b.empty('f32', [T, E]);
          const l2 = await moe.auxLoss(b.fromHost(finite, 'f32', [T, E]), b.fromHost(i1, 'i32', [T, p.topk]), L, 0.001, a2);
          expect(Math.abs(l2 - l1), `${tag} aux loss L=${L}: ${l2} vs ${l1}`).toBeLessThan(1e-5 * Math.abs(l1));
          // dScores = a·(f/S − F/S²): cancellation, so an absolute bound of 1e-6 of the largest term
          const big = a1.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          expectClose(await readF(a2), a1, 1e-5, 1e-6 * big, `${tag} aux dScores L=${L}`);
        }
      }
    });

    it('scores are correctly rounded: sigmoid and softmax at ±0, tiny, large, subnormal-result and infinite logits', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const T = 64, E = 128;
      const special = [0, -0, 1e-30, -1e-30, 1e-7, -1e-7, 0.5, -0.5, 17.3, 16.6, -87.5, -95, -103.2, -103.9, -104.5, 88, 127.9, -127.9, 130, -130, Infinity, -Infinity];
      for (const scoring of ['sigmoid', 'softmax'] as const) {
        const p: MoeRouteParams = { ...HOT, scoring, nGroup: 1, topkGroup: 1 };
        const logits = Float32Array.from({ length: T * E }, (_, i) => {
          const t = Math.floor(i / E);
          // softmax: an infinite logit makes its row NaN (inf − inf), so those rows get finite specials only
          if (t % 4 === 0) return scoring === 'softmax' && !Number.isFinite(special[i % special.length]!) ? 1e-3 : special[i % special.length]!;
          if (t === 7 && scoring === 'softmax') return i % E === 3 ? Infinity : 0;
          if (t % 4 === 1) return (r() - 0.5) * 240;
          return normal(r) * 4;
        });
        const s1 = new Float32Array(T * E), w1 = new Float32Array(T * p.topk), i1 = new Int32Array(T * p.topk);
        R.moeRoute(logits, null, T, E, p, s1, w1, i1);
        const s2 = b.empty('f32', [T, E]), w2 = b.empty('f32', [T, p.topk]), i2 = b.empty('i32', [T, p.topk]);
        await moe.route(b.fromHost(logits, 'f32', [T, E]), null, p, s2, w2, i2);
        const diffs = ulpDiffs(await readF(s2), s1);
        expect(diffs.count, `seed ${seed} ${name} ${scoring}: scores differing from the reference (max ${diffs.max} ulp)`).toBeLessThanOrEqual(2);
        expect(diffs.max).toBeLessThanOrEqual(1);
      }
    });

    it('layout and align with many chunks, capacity, one hot expert and bad indices (skipped, counted in info[2])', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      for (const [T, k, E, Rk, bs, cap] of [[700, 8, 256, 8, 128, 0], [1500, 4, 32, 4, 16, 90], [9, 3, 512, 512, 4, 0], [257, 1, 3, 3, 1, 1], [0, 2, 8, 2, 4, 0]] as const) {
        const tag = `seed ${seed} ${name} T=${T} k=${k} E=${E} bs=${bs} cap=${cap}`;
        const idx = pairIndices(r, T * k, E, true);
        if (T > 0) [idx[0], idx[T * k - 1]] = [-1, E]; // at least two bad ones
        const it_ = b.fromHost(idx, 'i32', [T, k]);
        const tr1 = new Int32Array(Rk), te1 = new Int32Array(E), m1 = new Uint8Array(T * Rk);
        R.moeLayout(idx, T, k, E, Rk, tr1, te1, m1);
        const tr2 = b.empty('i32', [Rk]), te2 = b.empty('i32', [E]), m2 = b.empty('u8', [T, Rk]);
        await moe.layout(it_, E, Rk, tr2, te2, m2);
        expectEqual(await readI(tr2), tr1, `${tag} tokensPerRank`);
        expectEqual(await readI(te2), te1, `${tag} tokensPerExpert`);
        expectEqual((await b.read(m2)) as Uint8Array, m1, `${tag} isTokenInRank`);

        const Pmax = R.alignRowsMax(T * k, E, bs);
        const want = { sortedPairs: new Int32Array(Pmax), blockExpert: new Int32Array(Pmax / bs), rowExpert: new Int32Array(Pmax), pairPos: new Int32Array(T * k), counts: new Int32Array(E), info: new Int32Array(4) };
        R.moeAlign(idx, T, k, E, bs, cap, want.sortedPairs, want.blockExpert, want.rowExpert, want.pairPos, want.counts, want.info);
        const got = { sortedPairs: b.empty('i32', [Pmax]), blockExpert: b.empty('i32', [Pmax / bs]), rowExpert: b.empty('i32', [Pmax]), pairPos: b.empty('i32', [T, k]), counts: b.empty('i32', [E]), info: b.empty('i32', [4]) };
        await moe.align(it_, E, bs, cap, got.sortedPairs, got.blockExpert, got.rowExpert, got.pairPos, got.counts, got.info);
        for (const n of Object.keys(want) as (keyof typeof want)[]) expectEqual(await readI(got[n]), want[n], `${tag} ${n}`);
        if (T > 0) expect(want.info[2], `${tag}: some bad indices`).toBeGreaterThanOrEqual(2);
      }
    });

    it('permute / unpermute / weight grad: ragged rows, f32 and bf16, mixed dtypes, positions outside [0, P) skipped', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      for (const [T, k, E, bs, H, dt, outDt] of [
        [120, 4, 16, 8, 13, 'f32', 'f32'], [64, 8, 32, 16, 1, 'bf16', 'bf16'], [33, 2, 5, 4, 64, 'bf16', 'f32'], [40, 3, 7, 1, 9, 'f32', 'bf16'],
        // whole 16-byte rows (the webgpu row kernels), and bf16 rows of whole 4-element groups only
        [50, 2, 6, 4, 32, 'f32', 'bf16'], [30, 4, 9, 8, 12, 'bf16', 'bf16'],
      ] as const) {
        const tag = `seed ${seed} ${name} T=${T} H=${H} ${dt}->${outDt}`;
        const idx = pairIndices(r, T * k, E, false);
        const Pmax = R.alignRowsMax(T * k, E, bs);
        const a = { sp: new Int32Array(Pmax), be: new Int32Array(Pmax / bs), re: new Int32Array(Pmax), pp: new Int32Array(T * k), c: new Int32Array(E), info: new Int32Array(4) };
        R.moeAlign(idx, T, k, E, bs, 0, a.sp, a.be, a.re, a.pp, a.c, a.info);
        const P = a.info[0]!;
        // a few rows point past the pairs (sentinel-like, and past i32 pairs), a few positions past P
        const rows = a.sp.slice(0, P);
        for (let i = 0; i < 3 && i < P; i++) rows[(r() * P) | 0] = [T * k + 3, -2, 2 ** 31 - 1][i]!;
        const pp = a.pp.slice();
        for (let i = 0; i < 3; i++) pp[(r() * T * k) | 0] = [P, P + 100, -5][i]!;
        const x = rowsData(r, T * H, dt);
        const w = Float32Array.from({ length: T * k }, () => r());
        for (const weights of [null, w]) {
          const wt = weights ? b.fromHost(weights, 'f32', [T * k]) : null;
          const p1 = dt === 'bf16' ? new Uint16Array(P * H) : new Float32Array(P * H);
          R.moePermute({ data: x, bf16: dt === 'bf16' }, T, H, rows, k, weights, { data: p1, bf16: dt === 'bf16' }, P);
          const p2 = b.empty(dt, [P, H]);
          await moe.permute(b.fromHost(x, dt, [T, H]), b.fromHost(rows, 'i32', [P]), k, wt, p2);
          expectEqual(await b.read(p2), p1, `${tag} permute weighted ${!!weights} (bit-exact)`);

          const u1 = outDt === 'bf16' ? new Uint16Array(T * H) : new Float32Array(T * H);
          R.moeUnpermute({ data: p1, bf16: dt === 'bf16' }, H, pp.map((v) => (v >= P ? -1 : v)), T, k, weights, { data: u1, bf16: outDt === 'bf16' });
          const u2 = b.empty(outDt, [T, H]);
          await moe.unpermute(p2, b.fromHost(pp, 'i32', [T, k]), weights ? b.fromHost(weights, 'f32', [T, k]) : null, u2);
          // f32 sums of ≤ k terms (bit-exact on cpu: one FMA a step like the reference; WGSL's fma need
          // not be fused): 1e-6 relative; bf16 outputs: one bf16 ulp (2^-7 relative)
          expectClose(asF32(await b.read(u2), outDt), asF32(u1, outDt), outDt === 'bf16' ? 2 ** -7 : 1e-6, 1e-6, `${tag} unpermute weighted ${!!weights}`);
        }
        const dOut = rowsData(r, T * H, dt);
        const g1 = new Float32Array(T * k);
        R.moeUnpermuteWeightGrad({ data: dOut, bf16: dt === 'bf16' }, { data: p1Of(), bf16: dt === 'bf16' }, H, pp.map((v) => (v >= P ? -1 : v)), T, k, g1);
        function p1Of(): Float32Array | Uint16Array {
          const o = dt === 'bf16' ? new Uint16Array(P * H) : new Float32Array(P * H);
          R.moePermute({ data: x, bf16: dt === 'bf16' }, T, H, rows, k, null, { data: o, bf16: dt === 'bf16' }, P);
          return o;
        }
        const yT = b.empty(dt, [P, H]);
        await moe.permute(b.fromHost(x, dt, [T, H]), b.fromHost(rows, 'i32', [P]), k, null, yT);
        const g2 = b.empty('f32', [T, k]);
        await moe.unpermuteWeightGrad(b.fromHost(dOut, dt, [T, H]), yT, b.fromHost(pp, 'i32', [T, k]), g2);
        // dot products of H normal products: f32 sums (webgpu) against f64, 1e-6·(Σ|terms| ≈ H)
        expectClose(await readF(g2), g1, 1e-6, 1e-6 * H, `${tag} unpermuteWeightGrad`);
      }
    });

    it('permuteBytes (odd and whole-word rows, any dtype) and copyRows (odd bytes, one buffer, overlapping) move bytes exactly', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      for (const [dt, W, T, k, P] of [['u8', 5, 30, 2, 70], ['fp8e4m3', 128, 11, 3, 40], ['bf16', 3, 17, 1, 25], ['f32', 2, 9, 4, 37], ['u8', 4, 3, 1, 0]] as const) {
        const tag = `seed ${seed} ${name} ${dt} W=${W}`;
        const n = T * W;
        const x: HostArray = dt === 'u8' || dt === 'fp8e4m3' ? Uint8Array.from({ length: n }, () => (r() * 256) | 0) : dt === 'bf16' ? Uint16Array.from({ length: n }, () => (r() * 65536) | 0) : Float32Array.from({ length: n }, () => normal(r));
        const rows = Int32Array.from({ length: P }, () => (r() < 0.15 ? [-1, T * k, 2 ** 31 - 1][(r() * 3) | 0]! : (r() * T * k) | 0));
        const want = new (x.constructor as new (n: number) => HostArray)(P * W);
        R.moePermuteBytes(x as Uint8Array, T, W, rows, k, want as Uint8Array, P);
        if (moe.permuteBytes) {
          const got = b.empty(dt, [P, W]);
          await moe.permuteBytes(b.fromHost(x, dt, [T, W]), b.fromHost(rows, 'i32', [P]), k, got);
          expectEqual(await b.read(got), want, `${tag} permuteBytes`);
        }
        if (T < 4) continue;
        // copyRows: rows [1, 3) of src into rows [T − 3, T − 1) of another tensor, then within src overlapping
        const src = b.fromHost(x, dt, [T, W]);
        const dst = b.fromHost(x.map(() => 0) as HostArray, dt, [T, W]);
        await moe.copyRows(src, 1, dst, T - 3, 2);
        const d1 = x.map(() => 0) as HostArray;
        d1.set(x.subarray(W, 3 * W) as never, (T - 3) * W);
        expectEqual(await b.read(dst), d1, `${tag} copyRows`);
        await moe.copyRows(src, 0, src, 1, T - 2);
        const d2 = x.slice();
        d2.set(x.subarray(0, (T - 2) * W) as never, W);
        expectEqual(await b.read(src), d2, `${tag} copyRows within one tensor (overlapping)`);
      }
    });
  });
}

describe.skipIf(!variants.some((v) => v.name === 'webgpu'))('moe kernels: webgpu limits', () => {
  it('route throws E_TOO_LARGE past the experts its workgroup storage holds, and past 256 groups', async () => {
    const b = variants.find((v) => v.name === 'webgpu')!.backend;
    const limit = (b as WebGPUBackend).limits.maxComputeWorkgroupStorageSize;
    const E = 2 * limit; // keys of 4 bytes each: twice the storage
    const T = 1;
    const e1 = await thrown(() => b.moe!.route(b.empty('f32', [T, E]), null, { ...HOT, nGroup: 1, topkGroup: 1 }, b.empty('f32', [T, E]), b.empty('f32', [T, 8]), b.empty('i32', [T, 8])));
    expect((e1 as { code?: string }).code).toBe('E_TOO_LARGE');
    const e2 = await thrown(() => b.moe!.route(b.empty('f32', [T, 512]), null, { ...HOT, nGroup: 512, topkGroup: 8 }, b.empty('f32', [T, 512]), b.empty('f32', [T, 8]), b.empty('i32', [T, 8])));
    expect((e2 as { code?: string }).code).toBe('E_TOO_LARGE');
  });
});
