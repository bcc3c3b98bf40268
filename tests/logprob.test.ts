// logprob: the reference against hand-worked values, a naive two-pass log-softmax in f64, f64 finite
// differences for every gradient, bf16 logits at ±1e4 over a 151,936-token vocab, non-finite logits,
// and bad inputs; then every backend that has the kernels against the reference.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromBf16, HotpathsError, init, logprob, setPoison, Tensor, toBf16 } from '../src/index.js';
import type { Backend, KlEstimator } from '../src/runtime/backend.js';
import { klForward, logprobBackward, logprobForward } from '../src/reference/logprob.js';
import { backendsUnderTest, freshSeed, randomF32, readF32 as read, rng, thrown } from './helpers.js';

const ref = await init({ backend: 'reference' });
const ESTIMATORS: KlEstimator[] = ['k1', 'k2', 'k3', 'k3_clamped'];

beforeAll(() => setPoison(true));
afterAll(() => setPoison(false));

/** |got − want| ≤ rel·|want| + abs, elementwise; NaN matches NaN and ±inf must match exactly. */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs: number, tag: string): void {
  expect(got.length, `${tag}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    if (Number.isNaN(w) || !Number.isFinite(w)) {
      expect(Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w)), `${tag}[${i}]: got ${g}, want ${w}`).toBe(true);
      continue;
    }
    expect(Math.abs(g - w) <= rel * Math.abs(w) + abs, `${tag}[${i}]: got ${g}, want ${w} (rel ${rel}, abs ${abs})`).toBe(true);
  }
}

/** The textbook two-pass log-softmax in f64 (max, then sum), independent of the chunked kernel. */
function naive(z: ArrayLike<number>, y: ArrayLike<number>, N: number, V: number, T: number): { logp: Float64Array; lse: Float64Array; entropy: Float64Array } {
  const logp = new Float64Array(N), lse = new Float64Array(N), entropy = new Float64Array(N);
  for (let t = 0; t < N; t++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, z[t * V + v]! / T);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(z[t * V + v]! / T - m);
    lse[t] = m + Math.log(s);
    logp[t] = z[t * V + y[t]!]! / T - lse[t]!;
    let h = 0;
    for (let v = 0; v < V; v++) {
      const x = z[t * V + v]! / T;
      const p = Math.exp(x - lse[t]!);
      if (p > 0) h += p * (lse[t]! - x);
    }
    entropy[t] = h;
  }
  return { logp, lse, entropy };
}

function randomTargets(N: number, V: number, r: () => number): Int32Array {
  return Int32Array.from({ length: N }, () => Math.floor(r() * V));
}


describe('logprob.fromLogits (reference)', () => {
  it('matches hand-worked values: z = [1, 2, 3], T = 1 and T = 2', async () => {
    // T = 1: lse = log(e + e² + e³) = 3 + log(1 + e⁻¹ + e⁻²) = 3.40760596444438
    //        p = [0.0900305732, 0.2447284711, 0.6652409558], H = −Σ p log p = 0.8323955818
    // T = 2: x = [0.5, 1, 1.5], lse = 2.1802696706417346, H = 1.0201913367268314
    const z = ref.tensor(new Float32Array([1, 2, 3, 1, 2, 3]), [2, 3]);
    const y = ref.tensor(new Int32Array([2, 0]), [2]);
    const one = await logprob.fromLogits(z, y, { entropy: true });
    expectClose(await read(one.lse), [3.40760596444438, 3.40760596444438], 1e-7, 0, 'lse T=1');
    expectClose(await read(one.logp), [-0.40760596444438013, -2.40760596444438], 1e-7, 0, 'logp T=1');
    expectClose(await read(one.entropy!), [0.8323955818399389, 0.8323955818399389], 1e-7, 0, 'entropy T=1');
    const two = await logprob.fromLogits(z, y, { temperature: 2, entropy: true });
    expectClose(await read(two.lse), [2.1802696706417346, 2.1802696706417346], 1e-7, 0, 'lse T=2');
    expectClose(await read(two.logp), [1.5 - 2.1802696706417346, 0.5 - 2.1802696706417346], 1e-7, 0, 'logp T=2');
    expectClose(await read(two.entropy!), [1.0201913367268314, 1.0201913367268314], 1e-7, 0, 'entropy T=2');
    expect(two.entropy).toBeDefined();
    expect((await logprob.fromLogits(z, y)).entropy).toBeUndefined();
    // a single-token vocab: p = 1, logp = 0, lse = z/T, entropy 0
    const single = await logprob.fromLogits(ref.tensor(new Float32Array([3]), [1, 1]), ref.tensor(new Int32Array([0]), [1]), { temperature: 0.5, entropy: true });
    expect([...(await read(single.logp)), ...(await read(single.lse)), ...(await read(single.entropy!))]).toEqual([0, 6, 0]);
  });

  it('the online chunked pass equals a naive two-pass log-softmax (ragged chunks, max early or late, T ≠ 1)', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    for (const [N, V] of [[1, 1], [3, 7], [4, 4096], [3, 4097], [2, 10_000]] as const) {
      const z = randomF32(N * V, r, 3, 2);
      // row 0 rises (the max is in the last chunk: every merge rescales the running sum), row 1 falls
      if (N > 1) for (let v = 0; v < V; v++) z[v] = v * 0.01 - 20;
      if (N > 1) for (let v = 0; v < V; v++) z[V + v] = 30 - v * 0.01;
      if (N > 2) z.fill(0.25, 2 * V, 3 * V); // a flat row: lse = 0.25/T + log V, entropy log V
      const y = randomTargets(N, V, r);
      for (const T of [1, 0.7, 1.3]) {
        const want = naive(z, y, N, V, T);
        // the public op (f32 outputs) with the default chunk of 4096
        const res = await logprob.fromLogits(ref.tensor(z, [N, V]), ref.tensor(y, [N]), { temperature: T, entropy: true });
        const tag = `seed ${seed} [${N},${V}] T=${T}`;
        expectClose(await read(res.logp), want.logp, 1e-6, 1e-12, `${tag} logp`);
        expectClose(await read(res.lse), want.lse, 1e-6, 1e-12, `${tag} lse`);
        expectClose(await read(res.entropy!), want.entropy, 1e-6, 1e-12, `${tag} entropy`);
        // the kernel itself in f64 with chunk sizes that do and do not divide V
        for (const chunk of [1, 3, 64, V]) {
          const [logp, lse, ent] = [new Float64Array(N), new Float64Array(N), new Float64Array(N)];
          logprobForward({ data: z, bf16: false }, y, N, V, T, logp, lse, ent, chunk);
          expectClose(logp, want.logp, 1e-12, 1e-13, `${tag} chunk ${chunk} logp`);
          expectClose(lse, want.lse, 1e-12, 1e-13, `${tag} chunk ${chunk} lse`);
          expectClose(ent, want.entropy, 1e-10, 1e-13, `${tag} chunk ${chunk} entropy`);
        }
      }
    }
  });

  it('bf16 logits of magnitude up to 1e4 over V = 151,936: no overflow, no NaN, equal to the naive f64 result', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    const N = 3, V = 151_936;
    const raw = new Float32Array(N * V);
    for (let v = 0; v < V; v++) raw[v] = (r() * 2 - 1) * 1e4; // uniform in ±1e4
    raw.fill(1e4, V, 2 * V); // a flat row at 1e4 (exp(1e4) overflows even f64)
    raw.fill(-1e4, 2 * V, 3 * V);
    raw[2 * V + 777] = 1e4; // one token at +1e4 among −1e4s
    const bits = toBf16(raw);
    const widened = fromBf16(bits);
    const y = new Int32Array([Math.floor(r() * V), 5, 3]);
    for (const T of [1, 0.6]) {
      const res = await logprob.fromLogits(ref.tensor(bits, [N, V], 'bf16'), ref.tensor(y, [N]), { temperature: T, entropy: true });
      const [logp, lse, ent] = [await read(res.logp), await read(res.lse), await read(res.entropy!)];
      for (const a of [logp, lse, ent]) expect(a.every(Number.isFinite), `seed ${seed} T=${T}: ${[...a]}`).toBe(true);
      const want = naive(widened, y, N, V, T);
      expectClose(logp, want.logp, 1e-6, 1e-12, `seed ${seed} T=${T} logp`);
      expectClose(lse, want.lse, 1e-6, 1e-12, `seed ${seed} T=${T} lse`);
      expectClose(ent, want.entropy, 1e-6, 1e-12, `seed ${seed} T=${T} entropy`);
      expect(Math.abs(ent[1]! - Math.log(V))).toBeLessThan(1e-5); // flat row: entropy log V
      // −1e4 vs the lone +1e4 (bf16: ∓9984): logp ≈ −2·9984/T, the rest of the row adds e^(−2·9984/T) to p
      expect(widened[2 * V + 777]).toBe(9984);
      expect(logp[2]).toBe(Math.fround(-2 * 9984 / T));
      // bf16 and its exact f32 widening give the same result
      const f = await logprob.fromLogits(ref.tensor(widened, [N, V]), ref.tensor(y, [N]), { temperature: T, entropy: true });
      expect([...(await read(f.logp))]).toEqual([...logp]);
      expect([...(await read(f.entropy!))]).toEqual([...ent]);
    }
  });

  it('−inf logits get probability 0; NaN or +inf poisons only its own row', async () => {
    const V = 5;
    const z = new Float32Array([
      0, -Infinity, 1, -Infinity, 2, // banned tokens: as if V were 3
      0, -Infinity, 1, -Infinity, 2, // target is banned: logp = −inf
      -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, // nothing allowed: lse −inf, logp NaN
      0, NaN, 1, 2, 3,
      0, Infinity, 1, 2, 3,
      1, 2, 3, 4, 5, // a normal row after the bad ones
    ]);
    const y = new Int32Array([4, 1, 0, 0, 0, 2]);
    const res = await logprob.fromLogits(ref.tensor(z, [6, V]), ref.tensor(y, [6]), { entropy: true });
    const [logp, lse, ent] = [await read(res.logp), await read(res.lse), await read(res.entropy!)];
    const three = naive([0, 1, 2], [2], 1, 3, 1);
    const five = naive([1, 2, 3, 4, 5], [2], 1, 5, 1);
    expectClose(logp, [three.logp[0]!, -Infinity, NaN, NaN, NaN, five.logp[0]!], 1e-6, 0, 'logp');
    expectClose(lse, [three.lse[0]!, three.lse[0]!, -Infinity, NaN, NaN, five.lse[0]!], 1e-6, 0, 'lse');
    expectClose(ent, [three.entropy[0]!, three.entropy[0]!, NaN, NaN, NaN, five.entropy[0]!], 1e-6, 0, 'entropy');
  });
});

describe('logprob.fromLogitsBackward (reference)', () => {
  it('matches a hand-worked case: z = [1, 2, 3], y = 0, T = 2, g = 1.5', async () => {
    // p = softmax([0.5, 1, 1.5]) = [0.1863237232, 0.3071958857, 0.5064803911]
    // dz = (onehot(0) − p) · 1.5 / 2 = [0.6102572076, −0.2303969143, −0.3798602933]
    const z = ref.tensor(new Float32Array([1, 2, 3]), [1, 3]);
    const y = ref.tensor(new Int32Array([0]), [1]);
    const { lse } = await logprob.fromLogits(z, y, { temperature: 2 });
    const dz = await logprob.fromLogitsBackward(z, y, lse, ref.tensor(new Float32Array([1.5]), [1]), { temperature: 2 });
    expectClose(await read(dz), [0.6102572075806143, -0.23039691428887377, -0.37986029329174054], 1e-6, 0, 'dz');
  });

  it('equals f64 central finite differences of Σ g·logp for T = 0.7, 1, 2.5, f32 and bf16 logits', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    const N = 3, V = 37, chunk = 8;
    const z = Float64Array.from(randomF32(N * V, r, 2));
    const y = randomTargets(N, V, r);
    const g = Float64Array.from(randomF32(N, r, 1));
    for (const T of [0.7, 1, 2.5]) {
      const objective = (zz: Float64Array): number => {
        const [logp, lse] = [new Float64Array(N), new Float64Array(N)];
        logprobForward({ data: zz, bf16: false }, y, N, V, T, logp, lse, null, chunk);
        return logp.reduce((s, l, t) => s + g[t]! * l, 0);
      };
      const [logp, lse] = [new Float64Array(N), new Float64Array(N)];
      logprobForward({ data: z, bf16: false }, y, N, V, T, logp, lse, null, chunk);
      const dz = new Float64Array(N * V);
      logprobBackward({ data: z, bf16: false }, y, lse, g, N, V, T, dz, chunk);
      const h = 1e-5;
      for (let i = 0; i < N * V; i++) {
        const zp = z.slice(), zm = z.slice();
        zp[i] = zp[i]! + h;
        zm[i] = zm[i]! - h;
        const fd = (objective(zp) - objective(zm)) / (2 * h);
        expect(Math.abs(dz[i]! - fd), `seed ${seed} T=${T} i=${i}: analytic ${dz[i]}, fd ${fd}`).toBeLessThan(1e-8);
      }
      // each row of dz sums to (1 − Σ p) · g / T = 0
      for (let t = 0; t < N; t++) expect(Math.abs(dz.subarray(t * V, (t + 1) * V).reduce((s, v) => s + v, 0))).toBeLessThan(1e-12);

      // the public op (f32) against the f64 kernel, fresh and in place; bf16 against its widening
      const z32 = Float32Array.from(z);
      const want = new Float64Array(N * V);
      const lse32 = new Float64Array(N);
      logprobForward({ data: z32, bf16: false }, y, N, V, T, new Float64Array(N), lse32, null);
      logprobBackward({ data: z32, bf16: false }, y, Float32Array.from(lse32), g, N, V, T, want);
      const zt = ref.tensor(z32, [N, V]);
      const yt = ref.tensor(y, [N]);
      const gt = ref.tensor(Float32Array.from(g), [N]);
      const fwd = await logprob.fromLogits(zt, yt, { temperature: T });
      const fresh = await logprob.fromLogitsBackward(zt, yt, fwd.lse, gt, { temperature: T });
      expectClose(await read(fresh), want, 1e-6, 1e-9, `seed ${seed} T=${T} dlogits`);
      const inPlace = await logprob.fromLogitsBackward(zt, yt, fwd.lse, gt, { temperature: T, inPlace: true });
      expect(inPlace).toBe(zt);
      expect([...(await read(inPlace))]).toEqual([...(await read(fresh))]);

      const bits = toBf16(z32);
      const zb = ref.tensor(bits, [N, V], 'bf16');
      const zw = ref.tensor(fromBf16(bits), [N, V]);
      const lb = (await logprob.fromLogits(zb, yt, { temperature: T })).lse;
      const db = await logprob.fromLogitsBackward(zb, yt, lb, gt, { temperature: T });
      const dw = await logprob.fromLogitsBackward(zw, yt, lb, gt, { temperature: T });
      expect([...(await read(db))]).toEqual([...(await read(dw))]);
    }
  });
});

describe('logprob.kl (reference)', () => {
  it('matches hand-worked values (d = ref − logp = −0.5) and the clamps of k3_clamped', async () => {
    // d = −0.5: k1 = 0.5, k2 = 0.125, k3 = e^−0.5 + 0.5 − 1 = 0.10653065971263342,
    // dlogp: k1 1, k2 −d = 0.5, k3 1 − e^−0.5 = 0.3934693402873666
    const logp = ref.tensor(new Float32Array([-1]), [1]);
    const r = ref.tensor(new Float32Array([-1.5]), [1]);
    const want: Record<KlEstimator, [number, number]> = {
      k1: [0.5, 1],
      k2: [0.125, 0.5],
      k3: [0.10653065971263342, 0.3934693402873666],
      k3_clamped: [0.10653065971263342, 0.3934693402873666],
    };
    for (const e of ESTIMATORS) {
      const out = await logprob.kl(logp, r, e);
      expectClose([...(await read(out.kl)), ...(await read(out.dlogp))], want[e], 1e-7, 0, e);
    }
    // k3_clamped with logp = 0 and ref = d:
    //   d = 2:     k = e² − 3 = 4.38905609893065 (no clamp), dlogp = 1 − e² = −6.38905609893065
    //   d = 3:     k = e³ − 4 = 16.0855… → 10, dlogp 0
    //   d = −10:   k = e^−10 + 9 = 9.0000453999 (no clamp), dlogp = 1 − e^−10 = 0.9999546000702375
    //   d = −15:   k = e^−15 + 14 → 10, dlogp 0
    //   d = 30:    d → 20, k = e²⁰ − 21 → 10, dlogp 0;   d = −30: d → −20, k = e^−20 + 19 → 10, dlogp 0
    const d = [2, 3, -10, -15, 30, -30];
    const out = await logprob.kl(ref.tensor(new Float32Array(6), [6]), ref.tensor(new Float32Array(d), [6]), 'k3_clamped');
    expectClose(await read(out.kl), [4.38905609893065, 10, 9.000045399929762, 10, 10, 10], 1e-7, 0, 'k3_clamped kl');
    expectClose(await read(out.dlogp), [-6.38905609893065, 0, 0.9999546000702375, 0, 0, 0], 1e-7, 0, 'k3_clamped dlogp');
    // k3 of a tiny d keeps its precision (≈ d²/2 + d³/6, which exp(d) − d − 1 in f32 would lose)
    const lp = Math.fround(-1), rf = Math.fround(-1 + 1e-4), dd = rf - lp;
    const tiny = await logprob.kl(ref.tensor(new Float32Array([lp]), [1]), ref.tensor(new Float32Array([rf]), [1]), 'k3');
    expectClose(await read(tiny.kl), [dd * dd / 2 + dd ** 3 / 6], 1e-6, 0, 'k3 tiny d');
  });

  it('every estimator equals f64 central finite differences, clamp regions included; shapes are kept', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    // d values in every region of k3_clamped, away from its kinks (|d| = 20, k = 10 at d ≈ 2.611 and ≈ −11.0)
    const ds = [-30, -25, -15, -10, -3, -0.5, -1e-3, 0, 1e-3, 0.7, 2, 2.5, 2.7, 5, 25, 30];
    const n = ds.length;
    const logp = Float64Array.from(ds, () => -r() * 5);
    const refLp = Float64Array.from(ds, (d, i) => logp[i]! + d);
    for (const e of ESTIMATORS) {
      const kl = new Float64Array(n), dlogp = new Float64Array(n);
      klForward(logp, refLp, n, e, kl, dlogp);
      const h = 1e-6;
      for (let i = 0; i < n; i++) {
        const f = (x: number): number => {
          const k = new Float64Array(1);
          klForward([x], [refLp[i]!], 1, e, k, new Float64Array(1));
          return k[0]!;
        };
        const fd = (f(logp[i]! + h) - f(logp[i]! - h)) / (2 * h);
        expect(Math.abs(dlogp[i]! - fd), `seed ${seed} ${e} d=${ds[i]}: analytic ${dlogp[i]}, fd ${fd}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
      }
      // the public op: f32 outputs of the same values, any shape
      const lt = ref.tensor(Float32Array.from(logp), [4, 4]);
      const rt = ref.tensor(Float32Array.from(refLp), [4, 4]);
      const out = await logprob.kl(lt, rt, e);
      expect(out.kl.shape).toEqual([4, 4]);
      const [wk, wd] = [new Float64Array(n), new Float64Array(n)];
      klForward(Float32Array.from(logp), Float32Array.from(refLp), n, e, wk, wd);
      expectClose(await read(out.kl), wk, 1e-6, 0, `${e} kl`);
      expectClose(await read(out.dlogp), wd, 1e-6, 0, `${e} dlogp`);
    }
    // the default estimator is k3; empty tensors give empty results
    const k3 = await logprob.kl(ref.tensor(new Float32Array([-1]), [1]), ref.tensor(new Float32Array([-1.5]), [1]));
    expectClose(await read(k3.kl), [0.10653065971263342], 1e-7, 0, 'default');
    expect((await logprob.kl(ref.tensor(new Float32Array(0), [0]), ref.tensor(new Float32Array(0), [0]))).kl.size).toBe(0);
  });
});

describe('logprob: bad inputs', () => {
  it('rejects each with the right code and a message naming the argument', async () => {
    const z = ref.tensor(new Float32Array(10), [2, 5]);
    const y = ref.tensor(new Int32Array([0, 4]), [2]);
    const lse = ref.tensor(new Float32Array(2), [2]);
    const g = ref.tensor(new Float32Array(2), [2]);
    const zb = ref.tensor(new Uint16Array(10), [2, 5], 'bf16');
    const v3 = ref.tensor(new Float32Array(3), [3]);
    const cases: [() => Promise<unknown>, string, RegExp][] = [
      [() => logprob.fromLogits(new Float32Array(10) as never, y), 'E_ARG', /logits: expected a Tensor/],
      [() => logprob.fromLogits(ref.tensor(new Int32Array(10), [2, 5]), y), 'E_DTYPE', /logits: expected dtype f32 or bf16, got i32\[2, 5\]/],
      [() => logprob.fromLogits(ref.tensor(new Float32Array(10), [10]), y), 'E_SHAPE', /logits: expected a 2-D tensor/],
      [() => logprob.fromLogits(ref.tensor(new Float32Array(0), [2, 0]), y), 'E_EMPTY', /logits: expected at least one element/],
      [() => logprob.fromLogits(z, ref.tensor(new Float32Array(2), [2])), 'E_DTYPE', /targets: expected dtype i32/],
      [() => logprob.fromLogits(z, ref.tensor(new Int32Array(3), [3])), 'E_SHAPE', /targets: expected shape \[2\] \(N\) to match logits f32\[2, 5\].*got i32\[3\]/],
      [() => logprob.fromLogits(z, ref.tensor(new Int32Array([0, 5]), [2])), 'E_ARG', /targets: expected token ids in \[0, 5\).*got 5 at index 1/],
      [() => logprob.fromLogits(z, ref.tensor(new Int32Array([-1, 0]), [2])), 'E_ARG', /targets: .*got -1 at index 0/],
      [() => logprob.fromLogits(z, y, { temperature: 0 }), 'E_ARG', /temperature: expected a finite number > 0, got 0/],
      [() => logprob.fromLogits(z, y, { temperature: -1 }), 'E_ARG', /temperature: .*got -1/],
      [() => logprob.fromLogits(z, y, { temperature: NaN }), 'E_ARG', /temperature: .*got NaN/],
      [() => logprob.fromLogits(z, y, { temperature: Infinity }), 'E_ARG', /temperature: .*got Infinity/],
      [() => logprob.fromLogits(z, y, { temperature: '1' as never }), 'E_ARG', /temperature: .*got '1'/],
      [() => logprob.fromLogits(z, y, { entropy: 1 as never }), 'E_ARG', /entropy: expected a boolean, got 1/],
      [() => logprob.fromLogits(z, y, 3 as never), 'E_ARG', /options: expected an options object/],
      [() => logprob.fromLogitsBackward(z, y, lse, g, undefined as never), 'E_ARG', /options: expected \{ temperature \}/],
      [() => logprob.fromLogitsBackward(z, y, lse, g, {} as never), 'E_ARG', /temperature \(the forward's\): expected a finite number > 0, got undefined/],
      [() => logprob.fromLogitsBackward(z, y, v3, g, { temperature: 1 }), 'E_SHAPE', /lse: expected shape \[2\]/],
      [() => logprob.fromLogitsBackward(z, y, lse, ref.tensor(new Uint16Array(2), [2], 'bf16'), { temperature: 1 }), 'E_DTYPE', /gLogp: expected dtype f32/],
      [() => logprob.fromLogitsBackward(zb, y, lse, g, { temperature: 1, inPlace: true }), 'E_DTYPE', /inPlace: needs f32 logits.*got bf16\[2, 5\]/],
      [() => logprob.fromLogitsBackward(z, y, lse, g, { temperature: 1, inPlace: 'yes' as never }), 'E_ARG', /inPlace: expected a boolean/],
      [() => logprob.fromLogitsBackward(z, ref.tensor(new Int32Array([7, 0]), [2]), lse, g, { temperature: 1 }), 'E_ARG', /targets: .*got 7 at index 0/],
      [() => logprob.kl(lse, v3), 'E_SHAPE', /ref: expected shape \[2\] to match logp f32\[2\].*got f32\[3\]/],
      [() => logprob.kl(lse, g, 'k4' as never), 'E_ARG', /estimator: expected 'k1' or 'k2' or 'k3' or 'k3_clamped', got 'k4'/],
      [() => logprob.kl(ref.tensor(new Uint16Array(2), [2], 'bf16'), g), 'E_DTYPE', /logp: expected dtype f32/],
    ];
    for (const [fn, code, msg] of cases) {
      const err = await thrown(fn);
      expect(err, String(fn)).toBeInstanceOf(HotpathsError);
      expect((err as HotpathsError).code, String(fn)).toBe(code);
      expect((err as HotpathsError).message, String(fn)).toMatch(msg);
    }
  });

  it('tensors on two backends give E_DEVICE; a backend without the kernels gives E_NOT_IMPLEMENTED', async () => {
    // a host backend like cpu that has no logprob kernels yet (independent of whether the addon is built)
    const { logprob: _drop, ...rest } = ref.backend;
    const bare: Backend = { ...rest, name: 'cpu' };
    const onBare = (data: Float32Array | Int32Array, shape: number[], dtype: 'f32' | 'i32'): Tensor => new Tensor(bare, dtype, shape, data.slice());
    const z = onBare(new Float32Array(10), [2, 5], 'f32');
    const y = onBare(new Int32Array(2), [2], 'i32');
    const l = onBare(new Float32Array(2), [2], 'f32');
    const err = await thrown(() => logprob.fromLogits(z, y));
    expect(err).toMatchObject({ code: 'E_NOT_IMPLEMENTED', message: "logprob.fromLogits(): not implemented on the cpu backend yet; move the tensors with await t.to('reference')" });
    expect(await thrown(() => logprob.fromLogitsBackward(z, y, l, l, { temperature: 1 }))).toMatchObject({ code: 'E_NOT_IMPLEMENTED', message: /^logprob.fromLogitsBackward\(\): not implemented on the cpu/ });
    expect(await thrown(() => logprob.kl(l, l))).toMatchObject({ code: 'E_NOT_IMPLEMENTED', message: /^logprob.kl\(\): not implemented/ });
    expect(await thrown(() => logprob.fromLogits(ref.tensor(new Float32Array(10), [2, 5]), y))).toMatchObject({ code: 'E_DEVICE' });
    const gone = ref.tensor(new Float32Array(2), [2]);
    gone.dispose();
    expect(await thrown(() => logprob.kl(gone, l))).toMatchObject({ code: 'E_DISPOSED' });
  });
});

// ---------------------------------------------------------------- every backend against the reference
// Tolerances (f32 kernels vs the f64 reference): lse and logp within 2e-6·(1 + |lse|) + 1e-6 (a few f32
// ulps of the row's scale), entropy within 1e-4·(1 + H), dlogits within 2e-6·|g/T|·(1 + |lse|), KL
// within 1e-5 relative + 1e-7.

const under = await backendsUnderTest();
for (const u of under) {
  const has = !u.skip && !!u.backend?.logprob;
  const why = u.skip ?? `the ${u.name} backend has no logprob kernels yet (issue 5)`;
  if (!has) console.warn(`[skip] logprob on ${u.name}: ${why}`);
  (has ? describe : describe.skip)(`logprob on ${u.name} against the reference`, () => {
    const name = u.name;
    const cases: [number, number, number, 'f32' | 'bf16', number][] = [
      [1, 1, 1, 'f32', 1], [3, 7, 1, 'f32', 0.7], [5, 4097, 1, 'bf16', 1.3], [64, 1000, 0.5, 'f32', 1], [2, 151936, 1e4, 'bf16', 1], [3, 6000, 30, 'f32', 2.5],
    ];
    for (const [N, V, scale, dt, T] of cases) {
      it(`fromLogits + backward [${N}, ${V}] ${dt}, |z| ~ ${scale}, T = ${T}`, async () => {
        const seed = freshSeed();
        const r = rng(seed);
        const z = randomF32(N * V, r, scale);
        if (N >= 3 && V >= 7) {
          z[V + 3] = -Infinity; // a masked-out entry
          z.fill(-Infinity, 2 * V + 1, 3 * V); // a row with one finite entry
        }
        const y = randomTargets(N, V, r);
        const mk = (host: Float32Array) => (dt === 'bf16' ? ref.tensor(toBf16(host), [N, V], 'bf16') : ref.tensor(host, [N, V]));
        const zr = mk(z);
        const yr = ref.tensor(y, [N], 'i32');
        const want = await logprob.fromLogits(zr, yr, { temperature: T, entropy: true });
        const got = await logprob.fromLogits(await zr.to(name), await yr.to(name), { temperature: T, entropy: true });
        const wl = await read(want.lse);
        const tagged = `seed ${seed}`;
        const bound = (i: number) => 2e-6 * (1 + Math.abs(wl[i]!)) + 1e-6;
        const gl = await read(got.lse), gp = await read(got.logp), wp = await read(want.logp);
        for (let i = 0; i < N; i++) {
          expect(gl[i] === wl[i] || Math.abs(gl[i]! - wl[i]!) <= bound(i), `${tagged} lse[${i}] ${gl[i]} vs ${wl[i]}`).toBe(true);
          expect(gp[i] === wp[i] || Math.abs(gp[i]! - wp[i]!) <= 2 * bound(i), `${tagged} logp[${i}] ${gp[i]} vs ${wp[i]}`).toBe(true);
        }
        expectClose(await read(got.entropy!), await read(want.entropy!), 1e-4, 1e-4, `${tagged} entropy`);
        const g = randomF32(N, r);
        const gr = ref.tensor(g, [N]);
        const dWant = await read(await logprob.fromLogitsBackward(zr, yr, want.lse, gr, { temperature: T }));
        const zb = await zr.to(name);
        const dGot = await read(await logprob.fromLogitsBackward(zb, await yr.to(name), await want.lse.to(name), await gr.to(name), { temperature: T, inPlace: dt === 'f32' }));
        for (let i = 0; i < N * V; i++) {
          const t = Math.floor(i / V);
          const tol = 2e-6 * Math.abs(g[t]! / T) * (1 + Math.abs(wl[t]!)) + 1e-30;
          if (!(Math.abs(dGot[i]! - dWant[i]!) <= tol)) expect.fail(`${tagged} dlogits[${i}] ${dGot[i]} vs ${dWant[i]} (tol ${tol})`);
        }
      });
    }

    // The native kernels find a row's max over the raw logits with NaNs passed over and detect NaN from
    // the sum afterwards (a chunk of only −inf and NaN by a separate scan): each row below takes one
    // of those paths, in f32 and bf16 (V = 3000: one full 2048-entry chunk and one of 952, whose last 8
    // entries fall outside the 16-wide vector loop).
    for (const dt of ['f32', 'bf16'] as const) {
      it(`non-finite logits (${dt}): NaN anywhere makes its row NaN, +inf too, an all −inf row gives lse −inf, other rows stay right`, async () => {
        const [N, V] = [8, 3000];
        const z = randomF32(N * V, rng(5));
        z[2500] = NaN; // row 0: in a vector block
        z[2 * V - 3] = NaN; // row 1: in the scalar tail of the last chunk
        z.fill(-Infinity, 2 * V, 3 * V); // row 2: all −inf
        z[3 * V + 1000] = Infinity; // row 3: +inf
        z.fill(-Infinity, 4 * V, 4 * V + 2048); // row 4: first chunk −inf but for one NaN, the rest finite
        z[4 * V + 100] = NaN;
        z.fill(-Infinity, 5 * V, 5 * V + 2048); // row 5: first chunk all −inf, the rest finite
        z[6 * V] = NaN; // row 6: NaN as the very first entry
        const y = new Int32Array([1, 2, 3, 4, 2100, 2999, 5, 6]);
        const zr = dt === 'bf16' ? ref.tensor(toBf16(z), [N, V], 'bf16') : ref.tensor(z, [N, V]);
        const yr = ref.tensor(y, [N], 'i32');
        const want = await logprob.fromLogits(zr, yr, { entropy: true });
        const got = await logprob.fromLogits(await zr.to(name), await yr.to(name), { entropy: true });
        const wl = await read(want.lse);
        expect([0, 1, 3, 4, 6].every((i) => Number.isNaN(wl[i]!)) && wl[2] === -Infinity && Number.isFinite(wl[5]!), 'the reference itself').toBe(true);
        expectClose(await read(got.lse), wl, 1e-6, 1e-6, 'lse');
        expectClose(await read(got.logp), await read(want.logp), 1e-6, 1e-6, 'logp');
        expectClose(await read(got.entropy!), await read(want.entropy!), 1e-4, 1e-4, 'entropy');
      });
    }

    it('kl: every estimator, clamp regions included', async () => {
      const r = rng(freshSeed());
      const n = 5000;
      const logp = randomF32(n, r, 3), refLogp = randomF32(n, r, 3);
      for (let i = 0; i < 20; i++) refLogp[i] = logp[i]! + (i - 10) * 3; // d from −30 to 27
      for (const est of ESTIMATORS) {
        const want = await logprob.kl(ref.tensor(logp, [n]), ref.tensor(refLogp, [n]), est);
        const got = await logprob.kl(await ref.tensor(logp, [n]).to(name), await ref.tensor(refLogp, [n]).to(name), est);
        expectClose(await read(got.kl), await read(want.kl), 1e-5, 1e-7, `${est} kl`);
        expectClose(await read(got.dlogp), await read(want.dlogp), 1e-5, 1e-7, `${est} dlogp`);
      }
    });
  });
}

// ---------------------------------------------------------------- from hidden states

describe('logprob.fromHidden and fromHiddenBackward', () => {
  const backends = [{ name: 'reference' as const, skip: undefined as string | undefined, has: true }, ...under.map((u) => ({ name: u.name, skip: u.skip, has: !!u.backend?.logprob && !!u.backend?.gemm }))];
  for (const b of backends) {
    const skip = b.skip ?? (b.has ? undefined : `the ${b.name} backend lacks logprob or gemm kernels`);
    (skip ? it.skip : it)(`${b.name}: equal to fromLogits(hidden · Wᵀ) and its backward through the GEMM, ragged token and vocabulary chunks, T = 0.8`, async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const [N, H, V, T] = [200, 40, 1000, 0.8];
      const h = randomF32(N * H, r), w = randomF32(V * H, r, 0.3), g = randomF32(N, r);
      const y = randomTargets(N, V, r);
      const on = async (x: Float32Array | Int32Array, shape: number[], dt: 'f32' | 'i32') => ref.tensor(x, shape, dt).to(b.name);
      const [ht, wt, yt, gt] = [await on(h, [N, H], 'f32'), await on(w, [V, H], 'f32'), await on(y, [N], 'i32'), await on(g, [N], 'f32')];
      const got = await logprob.fromHidden(ht, wt, yt, { temperature: T, entropy: true, chunk: 64 });
      // the oracle: full logits on the reference
      const z = new Float32Array(N * V);
      for (let t = 0; t < N; t++) for (let v = 0; v < V; v++) {
        let s = 0;
        for (let k = 0; k < H; k++) s += h[t * H + k]! * w[v * H + k]!;
        z[t * V + v] = s;
      }
      const want = await logprob.fromLogits(ref.tensor(z, [N, V]), ref.tensor(y, [N], 'i32'), { temperature: T, entropy: true });
      const tag = `seed ${seed}`;
      expectClose(await read(got.logp), await read(want.logp), 1e-4, 1e-4, `${tag} logp`);
      expectClose(await read(got.lse), await read(want.lse), 1e-5, 1e-5, `${tag} lse`);
      expectClose(await read(got.entropy!), await read(want.entropy!), 1e-4, 1e-4, `${tag} entropy`);
      const { dHidden, dHeadWeight } = await logprob.fromHiddenBackward(ht, wt, yt, got.lse, gt, { temperature: T, vocabChunk: 256 });
      const dz = await read(await logprob.fromLogitsBackward(ref.tensor(z, [N, V]), ref.tensor(y, [N], 'i32'), want.lse, ref.tensor(g, [N]), { temperature: T }));
      const dh = new Float64Array(N * H), dw = new Float64Array(V * H);
      for (let t = 0; t < N; t++) for (let v = 0; v < V; v++) {
        const d = dz[t * V + v]!;
        for (let k = 0; k < H; k++) {
          dh[t * H + k] = dh[t * H + k]! + d * w[v * H + k]!;
          dw[v * H + k] = dw[v * H + k]! + d * h[t * H + k]!;
        }
      }
      const scale = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expectClose(await read(dHidden), dh, 1e-3, 1e-4 * scale(dh), `${tag} dHidden`);
      expectClose(await read(dHeadWeight), dw, 1e-3, 1e-4 * scale(dw), `${tag} dHeadWeight`);
    });
  }

  it('rejects a chunk that is not a multiple of 64, bf16 inputs, and mismatched shapes', async () => {
    const h = ref.tensor(new Float32Array(8), [2, 4]), w = ref.tensor(new Float32Array(12), [3, 4]), y = ref.tensor(new Int32Array([0, 2]), [2], 'i32');
    expect(await thrown(() => logprob.fromHidden(h, w, y, { chunk: 100 }))).toMatchObject({ code: 'E_ARG', message: /multiple of 64/ });
    expect(await thrown(() => logprob.fromHidden(h, ref.tensor(new Float32Array(15), [3, 5]), y))).toMatchObject({ code: 'E_SHAPE', message: /headWeight/ });
    expect(await thrown(() => logprob.fromHidden(ref.tensor(toBf16(new Float32Array(8)), [2, 4], 'bf16'), w, y))).toMatchObject({ code: 'E_DTYPE' });
    expect(await thrown(() => logprob.fromHidden(h, w, ref.tensor(new Int32Array([0, 3]), [2], 'i32')))).toMatchObject({ code: 'E_ARG', message: /targets\[1\] = 3/ });
  });
});
