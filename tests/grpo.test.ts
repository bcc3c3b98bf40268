// grpo: advantages against hand-worked values and a naive implementation, the policy loss against
// hand-worked values, f64 finite differences of its gradient for every aggregation, both levels, with
// and without β and δ, the clip flags, empty masks, and bad inputs.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromBf16, grpo, HotpathsError, init, logprob, setPoison, Tensor, toBf16 } from '../src/index.js';
import type { Backend, GrpoAgg, GrpoLevel, GrpoLossParams } from '../src/runtime/backend.js';
import type { WebGPUBackend } from '../src/webgpu/backend.js';
import { aggregationWeights, grpoLoss, type GrpoLossArrays } from '../src/reference/grpo.js';
import { loadAddon } from '../src/native/addon.js';
import { sliceRows } from '../src/tensor.js';
import { backendsUnderTest, firstBitDiff, freshSeed, readF32 as read, rng, thrown } from './helpers.js';

const ref = await init({ backend: 'reference' });
const AGGS: GrpoAgg[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo'];
const LEVELS: GrpoLevel[] = ['token', 'sequence'];

beforeAll(() => setPoison(true));
afterAll(() => setPoison(false));

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs: number, tag: string): void {
  expect(got.length, `${tag}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    expect(Math.abs(g - w) <= rel * Math.abs(w) + abs, `${tag}[${i}]: got ${g}, want ${w} (rel ${rel}, abs ${abs})`).toBe(true);
  }
}


const f32 = (a: number[], shape: number[]): Tensor => ref.tensor(new Float32Array(a), shape);

/** A standard normal from two uniforms (Box–Muller). */
function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

// ---------------------------------------------------------------- advantages

/** The textbook version: mean and unbiased std with plain loops, in f64. */
function naiveAdvantages(r: ArrayLike<number>, G: number, scale: 'group' | 'batch' | 'none', eps: number): number[] {
  const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / a.length;
  const std = (a: number[]): number => Math.sqrt(a.reduce((s, v) => s + (v - mean(a)) ** 2, 0) / (a.length - 1));
  const all = Array.from(r);
  const out: number[] = [];
  for (let g = 0; g < all.length; g += G) {
    const grp = all.slice(g, g + G);
    const div = scale === 'group' ? std(grp) + eps : scale === 'batch' ? std(all) + eps : 1;
    for (const v of grp) out.push(grp.every((x) => x === grp[0]) ? 0 : (v - mean(grp)) / div);
  }
  return out;
}

describe('grpo.advantages (reference)', () => {
  it('matches hand-worked values for each scale', async () => {
    // group 0 = [1, 0, 0, 1]: mean 0.5, unbiased std √(1/3) = 0.5773502692 -> ±0.5 / (0.5773502692 + 1e-4) = ±0.8658754298
    // group 1 = [0.5 × 4]: all equal -> 0
    // batch std of all 8: √((4 · 0.25) / 7) = 0.3779644730 -> ±0.5 / (0.3779644730 + 1e-4) = ±1.3225257481
    const rw = f32([1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5], [8]);
    const s = [1, -1, -1, 1, 0, 0, 0, 0];
    expectClose(await read(await grpo.advantages(rw, 4)), s.map((v) => v * 0.8658754297607016), 1e-6, 0, 'group');
    expectClose(await read(await grpo.advantages(rw, 4, { scale: 'batch' })), s.map((v) => v * 1.3225257481090975), 1e-6, 0, 'batch');
    expectClose(await read(await grpo.advantages(rw, 4, { scale: 'none' })), s.map((v) => v * 0.5), 0, 0, 'none');
    expectClose(await read(await grpo.advantages(rw, 4, { eps: 0 })), s.map((v) => v * Math.sqrt(0.75)), 1e-6, 0, 'eps 0');
    expectClose(await read(await grpo.advantages(rw, 4, { eps: 1e-6 })), s.map((v) => v * 0.5 / (Math.sqrt(1 / 3) + 1e-6)), 1e-6, 0, 'eps 1e-6 (verl)');
  });

  it('a group of equal rewards gives exactly 0, never NaN (with eps = 0 the std is 0 too)', async () => {
    const v = Math.fround(0.1);
    for (const scale of ['group', 'batch', 'none'] as const) {
      for (const eps of [1e-4, 0]) {
        const out = await read(await grpo.advantages(f32([v, v, v, 2, 2, 2], [6]), 3, { scale, eps }));
        expect([...out], `${scale} eps ${eps}`).toEqual([0, 0, 0, 0, 0, 0]);
      }
    }
    // one spread group beside an equal one: the equal one stays 0 under 'batch' too
    const out = await read(await grpo.advantages(f32([v, v, v, 0, 1, 2], [6]), 3, { scale: 'batch', eps: 0 }));
    expect([...out.slice(0, 3)]).toEqual([0, 0, 0]);
  });

  it('equals a naive mean/std implementation on random rewards (several group sizes, each scale)', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    for (const [B, G] of [[2, 2], [6, 3], [64, 8], [48, 16], [7, 1]] as const) {
      // binary rewards (the usual case, so equal groups occur) and continuous ones
      for (const kind of ['binary', 'continuous']) {
        const rw = Float32Array.from({ length: B }, () => (kind === 'binary' ? (r() < 0.5 ? 1 : 0) : normal(r) * 3));
        for (const scale of ['group', 'batch', 'none'] as const) {
          if (scale === 'group' && G === 1) continue;
          const got = await read(await grpo.advantages(ref.tensor(rw, [B]), G, { scale }));
          expectClose(got, naiveAdvantages(rw, G, scale, 1e-4), 1e-6, 1e-7, `seed ${seed} B=${B} G=${G} ${kind} ${scale}`);
        }
      }
    }
  });
});

// ---------------------------------------------------------------- loss

const DEFAULTS: GrpoLossParams = { epsLow: 0.2, epsHigh: 0.2, delta: null, beta: 0.04, level: 'token', agg: 'grpo', maxLen: 0, globalTokens: null };

/**
 * The hand-worked batch, B = 2, T = 2 (ratios from logp − oldLogp, d = refLogp − logp):
 *   seq 0: A = +1, mask [1, 1], ρ = [1.5, 0.9], d = [0, −0.5]
 *   seq 1: A = −2, mask [1, 0], ρ = [0.5, —],   d = [0.5, —]   (the masked slot holds NaN: never read)
 * Token losses (ε = 0.2, β = 0.04): (0,0) ρ = 1.5 > 1.2 with A > 0: clipped, −1.2 + β·k3(0) = −1.2;
 * (0,1) −0.9 + β·(e^−0.5 + 0.5 − 1); (1,0) ρ = 0.5 < 0.8 with A < 0: clipped, −min(−1, −1.6) = 1.6,
 * plus β·(e^0.5 − 1.5).
 */
function handBatch(): { logp: Tensor; oldLogp: Tensor; refLogp: Tensor; advantages: Tensor; mask: Tensor } {
  return {
    logp: f32([-1, -2, -3, NaN], [2, 2]),
    oldLogp: f32([-1 - Math.log(1.5), -2 - Math.log(0.9), -3 - Math.log(0.5), NaN], [2, 2]),
    refLogp: f32([-1, -2.5, -2.5, NaN], [2, 2]),
    advantages: f32([1, -2], [2]),
    mask: f32([1, 1, 1, 0], [2, 2]),
  };
}

describe('grpo.loss (reference)', () => {
  it('matches the hand-worked batch for every aggregation, both levels', async () => {
    const x = handBatch();
    // per-token gradients before the aggregation weight: (0,1) −A·ρ + β(1 − e^−0.5) = −0.8842612264, (1,0) β(1 − e^0.5) = −0.0259488508
    const g01 = -0.9 + 0.04 * (1 - Math.exp(-0.5)), g10 = 0.04 * (1 - Math.exp(0.5));
    const cases: [Partial<Parameters<typeof grpo.loss>[0]>, number, number[]][] = [
      // grpo: weights 1/(2·2) for seq 0 and 1/(1·2) for seq 1
      [{ agg: 'grpo' }, 0.27903973201112897, [0, 0.25 * g01, 0.5 * g10, 0]],
      [{ agg: 'bnpo' }, -0.16326330759449648, [0, g01 / 3, g10 / 3, 0]], // 1/3 tokens
      [{ agg: 'dr_grpo', maxLen: 4 }, -0.06122374034793618, [0, g01 / 8, g10 / 8, 0]], // 1/(B·maxLen) = 1/8
      [{ agg: 'dapo', globalTokens: 10 }, -0.04897899227834894, [0, g01 / 10, g10 / 10, 0]],
      [{ agg: 'dapo' }, -0.16326330759449648, [0, g01 / 3, g10 / 3, 0]], // default: Σ mask = 3
      [{ agg: 'dr_grpo' }, -0.06122374034793618 * 8 / 4, [0, g01 / 4, g10 / 4, 0]], // default maxLen T = 2
      // GSPO: seq 0's ratio = exp(mean(ln 1.5, ln 0.9)) = √1.35 = 1.1618950039 (inside the clip), seq 1 as before;
      // seq 0's policy gradient −A·ρ · (1/4 per token) · 2 tokens, spread as 1/2 to each token
      [{ agg: 'grpo', level: 'sequence' }, 0.22309223008001644, [-0.2904737509655563, -0.2865390575626826, 0.5 * g10, 0]],
    ];
    for (const [opts, wantLoss, wantGrad] of cases) {
      const out = await grpo.loss({ ...x, ...opts });
      const tag = JSON.stringify(opts);
      expect(Math.abs(out.loss - wantLoss), `${tag} loss ${out.loss} want ${wantLoss}`).toBeLessThan(1e-6);
      expectClose(await read(out.dlogp), wantGrad, 1e-6, 1e-9, `${tag} dlogp`);
    }
    const tokenStats = (await grpo.loss(x)).stats;
    expect(tokenStats.clipFraction).toBe(2 / 3);
    expect(tokenStats.meanRatio).toBeCloseTo((1.5 + 0.9 + 0.5) / 3, 6);
    expect(tokenStats.meanKl).toBeCloseTo((Math.exp(-0.5) + 0.5 - 1 + Math.exp(0.5) - 1.5) / 3, 7);
    const seqStats = (await grpo.loss({ ...x, level: 'sequence' })).stats;
    expect(seqStats.clipFraction).toBe(1 / 3); // only seq 1's token is clipped
    expect(seqStats.meanRatio).toBeCloseTo((2 * Math.sqrt(1.35) + 0.5) / 3, 6);
    // β = 0 drops the KL from loss and gradient, and refLogp may then be absent (meanKl 0)
    const noKl = await grpo.loss({ ...x, refLogp: undefined, beta: 0 });
    expect(noKl.loss).toBeCloseTo(0.25 * (-1.2 - 0.9) + 0.5 * 1.6, 6);
    expectClose(await read(noKl.dlogp), [0, -0.25 * 0.9, 0, 0], 1e-6, 1e-9, 'beta 0');
    expect(noKl.stats.meanKl).toBe(0);
    expect((await grpo.loss({ ...x, beta: 0 })).stats.meanKl).toBeCloseTo(tokenStats.meanKl, 9);
  });

  it('δ caps the ratio: A = −1, ρ = 3 gives loss 3 and gradient 3 without it, loss δ = 2 and gradient 0 with it', async () => {
    const x = { logp: f32([Math.log(3)], [1, 1]), oldLogp: f32([0], [1, 1]), advantages: f32([-1], [1]), mask: f32([1], [1, 1]), beta: 0 };
    const plain = await grpo.loss(x);
    expect(plain.loss).toBeCloseTo(3, 6);
    expectClose(await read(plain.dlogp), [3], 1e-6, 0, 'no delta');
    const capped = await grpo.loss({ ...x, delta: 2 });
    expect(capped.loss).toBe(2);
    expect([...(await read(capped.dlogp))]).toEqual([0]);
    expect(capped.stats).toEqual({ clipFraction: 0, meanKl: 0, meanRatio: 2 });
  });

  it('clip flags sit exactly where the formula puts them (A > 0 and ρ > 1 + εhigh, A < 0 and ρ < 1 − εlow)', async () => {
    const rhos = [0.5, 0.79, 0.81, 1.0, 1.19, 1.21, 1.27, 1.29, 2];
    const T = rhos.length;
    const A = [1, -1, 0];
    const logp = new Float32Array(3 * T);
    for (let b = 0; b < 3; b++) rhos.forEach((r, t) => (logp[b * T + t] = Math.log(r)));
    const x = { logp: ref.tensor(logp, [3, T]), oldLogp: ref.tensor(new Float32Array(3 * T), [3, T]), advantages: f32(A, [3]), mask: ref.tensor(new Float32Array(3 * T).fill(1), [3, T]), beta: 0, agg: 'bnpo' as const };
    for (const [epsLow, epsHigh] of [[0.2, 0.2], [0.2, 0.28], [0.1, 0.5]] as const) {
      const out = await grpo.loss({ ...x, epsLow, epsHigh });
      const d = await read(out.dlogp);
      let clipped = 0;
      for (let b = 0; b < 3; b++) {
        for (let t = 0; t < T; t++) {
          const r = rhos[t]!;
          const isClipped = (A[b]! > 0 && r > 1 + epsHigh) || (A[b]! < 0 && r < 1 - epsLow);
          if (isClipped) clipped++;
          // clipped: gradient exactly 0; otherwise −A·ρ / (tokens)
          const want = isClipped ? 0 : (-A[b]! * Math.exp(Math.fround(Math.log(r)))) / (3 * T);
          expect(Math.abs(d[b * T + t]! - want), `ε ${epsLow}/${epsHigh} A=${A[b]} ρ=${r}: ${d[b * T + t]} want ${want}`).toBeLessThan(1e-7);
          if (isClipped) expect(d[b * T + t]).toBe(0);
        }
      }
      expect(out.stats.clipFraction, `ε ${epsLow}/${epsHigh}`).toBe(clipped / (3 * T));
    }
    // the counts by hand for ε = 0.2/0.2: A = +1 clips 1.21, 1.27, 1.29, 2; A = −1 clips 0.5, 0.79 -> 6 of 27
    expect((await grpo.loss(x)).stats.clipFraction).toBe(6 / 27);
    // DAPO's clip-higher 0.28: A = +1 clips 1.29, 2 only -> 4 of 27
    expect((await grpo.loss({ ...x, epsHigh: 0.28 })).stats.clipFraction).toBe(4 / 27);

    // ρ exactly on a bound is not clipped (the clamp leaves it unchanged: gradient −A·ρ, as PyTorch's
    // clamp passes it there); ε is chosen so that 1 ± ε equals the computed ρ exactly
    const up = Math.fround(Math.log(1.2)), down = Math.fround(Math.log(0.8));
    const [rUp, rDown] = [Math.exp(up), Math.exp(down)];
    const onBound = await grpo.loss({
      logp: f32([up, down], [2, 1]), oldLogp: f32([0, 0], [2, 1]), advantages: f32([1, -1], [2]), mask: f32([1, 1], [2, 1]),
      beta: 0, agg: 'bnpo', epsHigh: rUp - 1, epsLow: 1 - rDown,
    });
    expect(1 + (rUp - 1)).toBe(rUp);
    expect(1 - (1 - rDown)).toBe(rDown);
    expect(onBound.stats.clipFraction).toBe(0);
    expectClose(await read(onBound.dlogp), [-rUp / 2, rDown / 2], 1e-7, 0, 'on the bounds');
  });

  it('an empty-mask sequence contributes 0 and is left out of the grpo mean; an all-empty mask gives 0, never NaN', async () => {
    const x = handBatch();
    // add a third sequence with an empty mask and garbage everywhere
    const logp = f32([-1, -2, -3, NaN, NaN, Infinity], [3, 2]);
    const old = f32([-1 - Math.log(1.5), -2 - Math.log(0.9), -3 - Math.log(0.5), NaN, NaN, -Infinity], [3, 2]);
    const refLp = f32([-1, -2.5, -2.5, NaN, NaN, NaN], [3, 2]);
    const adv = f32([1, -2, 5], [3]);
    for (const maskDtype of ['f32', 'u8'] as const) {
      const m = [1, 1, 1, 0, 0, 0];
      const mask = maskDtype === 'f32' ? f32(m, [3, 2]) : ref.tensor(new Uint8Array(m), [3, 2]);
      for (const level of LEVELS) {
        const three = await grpo.loss({ logp, oldLogp: old, refLogp: refLp, advantages: adv, mask, level });
        const two = await grpo.loss({ ...x, level });
        expect(three.loss, `${maskDtype} ${level}`).toBeCloseTo(two.loss, 9); // the same mean over 2 sequences
        expect([...(await read(three.dlogp))]).toEqual([...(await read(two.dlogp)), 0, 0]);
        expect(three.stats).toEqual(two.stats);
      }
    }
    for (const agg of AGGS) {
      for (const level of LEVELS) {
        const out = await grpo.loss({ logp, oldLogp: old, refLogp: refLp, advantages: adv, mask: f32([0, 0, 0, 0, 0, 0], [3, 2]), agg, level });
        expect(out.loss, `${agg} ${level}`).toBe(0);
        expect([...(await read(out.dlogp))]).toEqual([0, 0, 0, 0, 0, 0]);
        expect(out.stats).toEqual({ clipFraction: 0, meanKl: 0, meanRatio: 0 });
      }
    }
  });

  it('dlogp equals f64 central finite differences: every aggregation, both levels, with and without β and δ', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    const B = 4, T = 6;
    let checked = 0;
    for (const level of LEVELS) {
      for (const agg of AGGS) {
        for (const [beta, delta] of [[0, null], [0.04, null], [0, 1.3], [0.04, 1.3]] as const) {
          for (const [epsHigh, maxLen, globalTokens] of [[0.2, T, null], [0.28, 9, 17]] as const) {
            const p: GrpoLossParams = { ...DEFAULTS, level, agg, beta, delta, epsHigh, maxLen, globalTokens };
            const a = randomBatch(r, B, T, p);
            const objective = (logp: Float64Array): number => grpoLoss({ ...a, logp }, B, T, p, new Float64Array(B * T)).loss;
            const d = new Float64Array(B * T);
            grpoLoss(a, B, T, p, d);
            const h = 1e-6;
            const tag = `seed ${seed} ${level} ${agg} β=${beta} δ=${delta} εh=${epsHigh} maxLen=${maxLen} globalTokens=${globalTokens}`;
            for (let i = 0; i < B * T; i++) {
              const lp = a.logp.slice(), lm = a.logp.slice();
              lp[i] = lp[i]! + h;
              lm[i] = lm[i]! - h;
              const fd = (objective(lp) - objective(lm)) / (2 * h);
              if (Number.isNaN(a.logp[i]!)) expect(d[i], `${tag} masked i=${i}`).toBe(0);
              else expect(Math.abs(d[i]! - fd), `${tag} i=${i}: analytic ${d[i]}, fd ${fd}`).toBeLessThan(1e-8);
              checked++;
            }
            // the public op (f32 tensors) against the f64 kernel on the same f32 values
            const f = (v: Float64Array): Tensor => ref.tensor(Float32Array.from(v), [B, T]);
            const out = await grpo.loss({ logp: f(a.logp), oldLogp: f(a.oldLogp), refLogp: beta > 0 ? f(a.refLogp!) : null, advantages: ref.tensor(Float32Array.from(a.advantages), [B]), mask: f(a.mask), level, agg, beta, delta, epsHigh, maxLen, globalTokens: globalTokens ?? undefined });
            const a32 = { logp: Float32Array.from(a.logp), oldLogp: Float32Array.from(a.oldLogp), refLogp: beta > 0 ? Float32Array.from(a.refLogp!) : null, advantages: Float32Array.from(a.advantages), mask: a.mask };
            const want = new Float64Array(B * T);
            const wantLoss = grpoLoss(a32, B, T, p, want);
            expect(out.loss, tag).toBe(wantLoss.loss);
            expectClose(await read(out.dlogp), want, 1e-6, 1e-12, `${tag} dlogp`);
            expect(out.stats.clipFraction, tag).toBe(wantLoss.clipFraction);
          }
        }
      }
    }
    expect(checked).toBe(2 * 4 * 4 * 2 * B * T);
  });
});

/**
 * Random logp/old/ref [B, T] (f32-representable) with sequence 1's mask empty and the masked-out
 * slots of logp holding NaN; advantages of both signs and one 0. Drawn again until no ratio lies
 * within 1e-3 of a kink (1 − εlow, 1 + εhigh, δ), where a finite difference would straddle it.
 */
function randomBatch(r: () => number, B: number, T: number, p: GrpoLossParams): GrpoLossArrays & { logp: Float64Array; oldLogp: Float64Array; refLogp: Float64Array; advantages: Float64Array; mask: Float64Array } {
  for (;;) {
    const mask = Float64Array.from({ length: B * T }, (_, i) => (Math.floor(i / T) === 1 ? 0 : r() < 0.75 ? 1 : 0));
    const oldLogp = Float64Array.from({ length: B * T }, () => Math.fround(-0.1 - 3 * r()));
    const logp = Float64Array.from(oldLogp, (o, i) => (mask[i] ? Math.fround(o + 0.4 * normal(r)) : NaN));
    const refLogp = Float64Array.from(logp, (l) => Math.fround(l + 0.5 * normal(r)));
    const advantages = Float64Array.from({ length: B }, (_, b) => (b === 2 ? 0 : Math.fround(normal(r))));
    const ratios: number[] = [];
    for (let b = 0; b < B; b++) {
      let s = 0, n = 0;
      for (let t = 0; t < T; t++) {
        if (!mask[b * T + t]) continue;
        const lr = logp[b * T + t]! - oldLogp[b * T + t]!;
        if (p.level === 'token') ratios.push(Math.exp(lr));
        s += lr;
        n++;
      }
      if (p.level === 'sequence' && n > 0) ratios.push(Math.exp(s / n));
    }
    const kinks = [1 - p.epsLow, 1 + p.epsHigh, ...(p.delta === null ? [] : [p.delta])];
    if (ratios.every((q) => kinks.every((k) => Math.abs(q - k) > 1e-3))) return { logp, oldLogp, refLogp, advantages, mask };
  }
}

describe('grpo: bad inputs', () => {
  it('rejects each with the right code and a message naming the argument', async () => {
    const rw = f32([1, 0, 1, 0, 1, 1], [6]);
    const x = handBatch();
    const cases: [() => Promise<unknown>, string, RegExp][] = [
      [() => grpo.advantages([1, 0] as never, 2), 'E_ARG', /rewards: expected a Tensor/],
      [() => grpo.advantages(ref.tensor(new Int32Array(4), [4]), 2), 'E_DTYPE', /rewards: expected dtype f32/],
      [() => grpo.advantages(f32([1, 2, 3, 4], [2, 2]), 2), 'E_SHAPE', /rewards: expected a 1-D tensor/],
      [() => grpo.advantages(f32([], [0]), 2), 'E_EMPTY', /rewards/],
      [() => grpo.advantages(rw, 4), 'E_SHAPE', /groupSize: expected a divisor of the batch size B = 6.*got 4/],
      [() => grpo.advantages(rw, 0), 'E_ARG', /groupSize: expected an integer ≥ 1, got 0/],
      [() => grpo.advantages(rw, 1.5), 'E_ARG', /groupSize: expected an integer ≥ 1, got 1.5/],
      [() => grpo.advantages(rw, 1), 'E_ARG', /groupSize: expected at least 2 with scale 'group'.*got 1/],
      [() => grpo.advantages(f32([1], [1]), 1, { scale: 'batch' }), 'E_ARG', /at least 2 rewards with scale 'batch'/],
      [() => grpo.advantages(rw, 3, { scale: 'std' as never }), 'E_ARG', /scale: expected 'group' or 'batch' or 'none', got 'std'/],
      [() => grpo.advantages(rw, 3, { eps: -1 }), 'E_ARG', /eps: expected a finite number ≥ 0, got -1/],
      [() => grpo.advantages(f32([1, NaN, 0, 1], [4]), 2), 'E_NONFINITE', /rewards: expected finite values, got NaN at index 1/],
      [() => grpo.advantages(f32([1, 0, Infinity, 1], [4]), 2, { scale: 'none' }), 'E_NONFINITE', /got Infinity at index 2/],
      [() => grpo.loss(null as never), 'E_ARG', /expected \{ logp, oldLogp, advantages, mask/],
      [() => grpo.loss({ ...x, logp: f32([1, 2], [2]) }), 'E_SHAPE', /logp: expected a 2-D tensor/],
      [() => grpo.loss({ ...x, logp: ref.tensor(new Uint16Array(4), [2, 2], 'bf16') }), 'E_DTYPE', /logp: expected dtype f32/],
      [() => grpo.loss({ ...x, oldLogp: f32([1, 2, 3], [1, 3]) }), 'E_SHAPE', /oldLogp: expected shape \[2, 2\] to match logp f32\[2, 2\].*got f32\[1, 3\]/],
      [() => grpo.loss({ ...x, refLogp: f32([1, 2], [2, 1]) }), 'E_SHAPE', /refLogp: expected shape \[2, 2\]/],
      [() => grpo.loss({ ...x, refLogp: undefined }), 'E_ARG', /refLogp: expected a tensor .*since beta = 0.04 > 0, got undefined; pass refLogp, or beta: 0/],
      [() => grpo.loss({ ...x, advantages: f32([1, 2, 3], [3]) }), 'E_SHAPE', /advantages: expected shape \[2\]/],
      [() => grpo.loss({ ...x, mask: ref.tensor(new Int32Array(4), [2, 2]) }), 'E_DTYPE', /mask: expected dtype f32 or u8/],
      [() => grpo.loss({ ...x, mask: f32([1, 0.5, 1, 0], [2, 2]) }), 'E_ARG', /mask: expected 0 or 1, got 0.5 at \[0, 1\]/],
      [() => grpo.loss({ ...x, mask: ref.tensor(new Uint8Array([1, 1, 2, 0]), [2, 2]) }), 'E_ARG', /mask: expected 0 or 1, got 2 at \[1, 0\]/],
      [() => grpo.loss({ ...x, epsLow: 1.5 }), 'E_ARG', /epsLow: expected a finite number ≥ 0 and ≤ 1, got 1.5/],
      [() => grpo.loss({ ...x, epsHigh: -0.1 }), 'E_ARG', /epsHigh: .*got -0.1/],
      [() => grpo.loss({ ...x, delta: 0 }), 'E_ARG', /delta: expected a finite number > 0, got 0/],
      [() => grpo.loss({ ...x, beta: NaN }), 'E_ARG', /beta: .*got NaN/],
      [() => grpo.loss({ ...x, level: 'seq' as never }), 'E_ARG', /level: expected 'token' or 'sequence', got 'seq'/],
      [() => grpo.loss({ ...x, agg: 'mean' as never }), 'E_ARG', /agg: expected 'grpo' or 'bnpo' or 'dr_grpo' or 'dapo', got 'mean'/],
      [() => grpo.loss({ ...x, agg: 'dr_grpo', maxLen: 0 }), 'E_ARG', /maxLen: expected an integer ≥ 1, got 0/],
      [() => grpo.loss({ ...x, agg: 'dapo', globalTokens: 0 }), 'E_ARG', /globalTokens: expected a finite number > 0, got 0/],
    ];
    for (const [fn, code, msg] of cases) {
      const err = await thrown(fn);
      expect(err, String(fn)).toBeInstanceOf(HotpathsError);
      expect((err as HotpathsError).code, String(fn)).toBe(code);
      expect((err as HotpathsError).message, String(fn)).toMatch(msg);
    }
  });

  it('tensors on two backends give E_DEVICE; a backend without the kernels gives E_NOT_IMPLEMENTED', async () => {
    const { grpo: _drop, ...rest } = ref.backend;
    const bare: Backend = { ...rest, name: 'cpu' };
    const onBare = (a: number[], shape: number[]): Tensor => new Tensor(bare, 'f32', shape, new Float32Array(a));
    expect(await thrown(() => grpo.advantages(onBare([1, 0], [2]), 2))).toMatchObject({
      code: 'E_NOT_IMPLEMENTED',
      message: "grpo.advantages(): not implemented on the cpu backend yet; move the tensors with await t.to('reference')",
    });
    const m = onBare([1, 1], [1, 2]);
    expect(await thrown(() => grpo.loss({ logp: m, oldLogp: m, advantages: onBare([1], [1]), mask: m, beta: 0 }))).toMatchObject({ code: 'E_NOT_IMPLEMENTED', message: /^grpo.loss\(\): not implemented on the cpu/ });
    const x = handBatch();
    expect(await thrown(() => grpo.loss({ ...x, mask: onBare([1, 1, 1, 1], [2, 2]) }))).toMatchObject({ code: 'E_DEVICE' });
  });
});

// ---------------------------------------------------------------- every backend against the reference
// Tolerances: the cpu kernels use f64 like the reference (sums in another order): 1e-9 relative. GPU
// kernels use f32: loss and stats within 1e-5 relative (+1e-7), dlogp within 1e-5 of its row's scale.

const under = await backendsUnderTest();
for (const u of under) {
  const has = !u.skip && !!u.backend?.grpo;
  if (!has) console.warn(`[skip] grpo on ${u.name}: ${u.skip ?? `the ${u.name} backend has no grpo kernels yet (issue 5)`}`);
  (has ? describe : describe.skip)(`grpo on ${u.name} against the reference`, () => {
    const name = u.name;
    const rel = name === 'cpu' ? 1e-9 : 1e-5;

    it('advantages: every scale, an all-equal group, eps', async () => {
      const r = rng(freshSeed());
      const rewards = Float32Array.from({ length: 24 }, () => Math.round(r() * 4) / 2);
      rewards.fill(1, 4, 8); // an all-equal group
      for (const scale of ['group', 'batch', 'none'] as const) {
        const want = await read(await grpo.advantages(ref.tensor(rewards, [24]), 4, { scale, eps: 1e-4 }));
        const got = await read(await grpo.advantages(await ref.tensor(rewards, [24]).to(name), 4, { scale, eps: 1e-4 }));
        expectClose(got, want, rel, 1e-7, `${name} ${scale}`);
        for (let i = 4; i < 8; i++) expect(got[i]).toBe(0);
      }
    });

    it('loss: every aggregation and level, with and without β and δ, f32 and u8 masks, an empty sequence', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const [B, T] = [12, 37];
      const logp = Float32Array.from({ length: B * T }, () => -3 * r());
      const oldLogp = logp.map((v) => v + 0.4 * normal(r));
      const refLogp = logp.map((v) => v + 0.3 * normal(r));
      const adv = Float32Array.from({ length: B }, () => normal(r));
      const mask = Float32Array.from({ length: B * T }, (_, i) => (i % T < 5 + ((i / T) | 0) * 3 ? 1 : 0));
      mask.fill(0, 3 * T, 4 * T); // an empty sequence
      for (const agg of AGGS) for (const level of LEVELS) for (const [beta, delta, u8] of [[0.04, undefined, false], [0, 1.5, true]] as const) {
        const m = u8 ? Uint8Array.from(mask) : mask;
        const mk = (x: Float32Array | Uint8Array, shape: number[]) => ref.tensor(x, shape, x instanceof Uint8Array ? 'u8' : 'f32');
        const args = (move: (t: Tensor) => Promise<Tensor>) => Promise.all([mk(logp, [B, T]), mk(oldLogp, [B, T]), mk(refLogp, [B, T]), mk(adv, [B]), mk(m, [B, T])].map(move));
        const [a0, a1, a2, a3, a4] = await args(async (t) => t);
        const [b0, b1, b2, b3, b4] = await args((t) => t.to(name));
        const opts = { epsLow: 0.2, epsHigh: 0.28, beta, level, agg, ...(delta ? { delta } : {}) };
        const want = await grpo.loss({ logp: a0!, oldLogp: a1!, refLogp: a2!, advantages: a3!, mask: a4!, ...opts });
        const got = await grpo.loss({ logp: b0!, oldLogp: b1!, refLogp: b2!, advantages: b3!, mask: b4!, ...opts });
        const tag = `seed ${seed} ${agg} ${level} beta ${beta} delta ${delta} u8 ${u8}`;
        expectClose([got.loss, got.stats.clipFraction, got.stats.meanKl, got.stats.meanRatio], [want.loss, want.stats.clipFraction, want.stats.meanKl, want.stats.meanRatio], rel, 1e-7, tag);
        const wd = await read(want.dlogp);
        const scale = wd.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
        expectClose(await read(got.dlogp), wd, rel, rel * scale, `${tag} dlogp`);
      }
    });
  });
}

// ---------------------------------------------------------------- fusedLoss

/** Random inputs of a fused call: logits [B, T, V], targets, old/ref log-probs near the policy's, a ragged mask. */
function fusedInputs(r: () => number, B: number, T: number, V: number) {
  const logits = Float32Array.from({ length: B * T * V }, () => 3 * normal(r));
  const targets = Int32Array.from({ length: B * T }, () => Math.floor(r() * V));
  const oldLogp = Float32Array.from({ length: B * T }, () => -Math.log(V) + 0.5 * normal(r));
  const refLogp = oldLogp.map((v) => v + 0.3 * normal(r));
  const adv = Float32Array.from({ length: B }, () => normal(r));
  const mask = Float32Array.from({ length: B * T }, (_, i) => (i % T < 2 + ((i / T) | 0) % T ? 1 : 0));
  mask.fill(0, 0, T); // an empty sequence
  return { logits, targets, oldLogp, refLogp, adv, mask };
}

describe('grpo.fusedLoss (reference)', () => {
  it('equals logprob.fromLogits → grpo.loss → logprob.fromLogitsBackward, for every aggregation, with and without KL and δ, T ≠ 1', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    const [B, T, V] = [6, 5, 300];
    const x = fusedInputs(r, B, T, V);
    for (const agg of AGGS) for (const [beta, delta, temperature] of [[0.04, undefined, 1], [0, 1.3, 0.7]] as const) {
      const z = ref.tensor(x.logits, [B, T, V]);
      const y = ref.tensor(x.targets, [B, T], 'i32');
      const common = { oldLogp: f32([...x.oldLogp], [B, T]), refLogp: f32([...x.refLogp], [B, T]), advantages: f32([...x.adv], [B]), mask: f32([...x.mask], [B, T]), agg, beta, epsHigh: 0.28, ...(delta ? { delta } : {}) };
      const fused = await grpo.fusedLoss({ logits: z, targets: y, temperature, ...common });
      const { logp, lse } = await logprob.fromLogits(ref.tensor(x.logits, [B * T, V]), ref.tensor(x.targets, [B * T], 'i32'), { temperature });
      const want = await grpo.loss({ logp: ref.tensor(await read(logp), [B, T]), ...common });
      const dz = await read(await logprob.fromLogitsBackward(ref.tensor(x.logits, [B * T, V]), ref.tensor(x.targets, [B * T], 'i32'), lse, ref.tensor(await read(want.dlogp), [B * T]), { temperature }));
      const tag = `seed ${seed} ${agg} beta ${beta} delta ${delta}`;
      expectClose([fused.loss, fused.stats.clipFraction, fused.stats.meanKl, fused.stats.meanRatio], [want.loss, want.stats.clipFraction, want.stats.meanKl, want.stats.meanRatio], 1e-5, 1e-7, tag);
      const lpF = await read(fused.logp), lpW = await read(logp);
      for (let i = 0; i < B * T; i++) if (x.mask[i]) expect(Math.abs(lpF[i]! - lpW[i]!), `${tag} logp[${i}]`).toBeLessThan(1e-5);
      const scale = dz.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expectClose(await read(fused.dlogits), dz, 1e-4, 1e-5 * scale, `${tag} dlogits`);
    }
  });

  it('level sequence takes the composed path; inPlace writes over f32 and bf16 logits (bf16 rounded)', async () => {
    const r = rng(freshSeed());
    const [B, T, V] = [4, 3, 50];
    const x = fusedInputs(r, B, T, V);
    const common = { oldLogp: f32([...x.oldLogp], [B, T]), refLogp: f32([...x.refLogp], [B, T]), advantages: f32([...x.adv], [B]), mask: f32([...x.mask], [B, T]) };
    const y = () => ref.tensor(x.targets, [B, T], 'i32');
    const seq = await grpo.fusedLoss({ logits: ref.tensor(x.logits, [B * T, V]), targets: y(), level: 'sequence', ...common });
    const { logp } = await logprob.fromLogits(ref.tensor(x.logits, [B * T, V]), ref.tensor(x.targets, [B * T], 'i32'));
    const want = await grpo.loss({ logp: ref.tensor(await read(logp), [B, T]), level: 'sequence', ...common });
    expect(seq.loss).toBeCloseTo(want.loss, 6);
    const zf = ref.tensor(x.logits, [B * T, V]);
    const out = await grpo.fusedLoss({ logits: zf, targets: y(), inPlace: true, ...common });
    expect(out.dlogits).toBe(zf);
    const plain = await grpo.fusedLoss({ logits: ref.tensor(x.logits, [B * T, V]), targets: y(), ...common });
    expect([...(await read(zf))]).toEqual([...(await read(plain.dlogits))]);
    const zb = ref.tensor(toBf16(x.logits), [B * T, V], 'bf16');
    const outB = await grpo.fusedLoss({ logits: zb, targets: y(), inPlace: true, ...common });
    expect(outB.dlogits).toBe(zb);
    const plainB = await grpo.fusedLoss({ logits: ref.tensor(toBf16(x.logits), [B * T, V], 'bf16'), targets: y(), ...common });
    expect([...((await zb.read()) as Uint16Array)]).toEqual([...toBf16(await read(plainB.dlogits))]);
    await expect(grpo.fusedLoss({ logits: ref.tensor(toBf16(x.logits), [B * T, V], 'bf16'), targets: y(), inPlace: true, level: 'sequence', ...common })).rejects.toMatchObject({ code: 'E_NOT_IMPLEMENTED' });
    await expect(grpo.fusedLoss({ logits: ref.tensor(x.logits, [B * T, V]), targets: ref.tensor(x.targets.map(() => V), [B, T], 'i32'), ...common })).rejects.toMatchObject({ code: 'E_ARG', message: /targets\[0, 0\] = 50 is outside/ });
    await expect(grpo.fusedLoss({ logits: ref.tensor(x.logits, [B * T, V]), targets: ref.tensor(x.targets, [B * T], 'i32'), ...common })).rejects.toMatchObject({ code: 'E_SHAPE' });
  });
});

for (const u of under) {
  const has = !u.skip && !!u.backend?.grpo && !!u.backend?.logprob;
  (has ? describe : describe.skip)(`grpo.fusedLoss on ${u.name} against the reference${u.backend?.grpo?.fusedTokenLoss ? ' (fused kernel)' : ' (composed)'}`, () => {
    const name = u.name;
    for (const [dt, V, inPlace] of [['f32', 1000, false], ['bf16', 4099, false], ['bf16', 3000, true]] as const) {
      const noKernel = inPlace && !u.backend?.grpo?.fusedTokenLoss;
      if (noKernel && has) console.warn(`[skip] fusedLoss in place over bf16 on ${name}: no fused kernel yet`);
      (noKernel ? it.skip : it)(`${dt} logits, V = ${V}${inPlace ? ', in place' : ''}`, async () => {
        const seed = freshSeed();
        const r = rng(seed);
        const [B, T] = [4, 6];
        const x = fusedInputs(r, B, T, V);
        const mk = async (move: boolean) => {
          const t = (v: Float32Array | Int32Array | Uint16Array, shape: number[], d: 'f32' | 'i32' | 'bf16') => (move ? ref.tensor(v, shape, d).to(name) : Promise.resolve(ref.tensor(v, shape, d)));
          return {
            logits: await (dt === 'bf16' ? t(toBf16(x.logits), [B * T, V], 'bf16') : t(x.logits, [B * T, V], 'f32')),
            targets: await t(x.targets, [B, T], 'i32'), oldLogp: await t(x.oldLogp, [B, T], 'f32'), refLogp: await t(x.refLogp, [B, T], 'f32'),
            advantages: await t(x.adv, [B], 'f32'), mask: await t(x.mask, [B, T], 'f32'), temperature: 0.9, inPlace,
          };
        };
        const want = await grpo.fusedLoss(await mk(false));
        const got = await grpo.fusedLoss(await mk(true));
        const tag = `seed ${seed}`;
        expectClose([got.loss, got.stats.clipFraction, got.stats.meanKl, got.stats.meanRatio], [want.loss, want.stats.clipFraction, want.stats.meanKl, want.stats.meanRatio], 1e-4, 1e-6, tag);
        const lw = await read(want.logp), lg = await read(got.logp);
        for (let i = 0; i < B * T; i++) if (x.mask[i]) expect(Math.abs(lg[i]! - lw[i]!), `${tag} logp[${i}]`).toBeLessThan(1e-4);
        const val = async (t: Tensor) => (t.dtype === 'bf16' ? fromBf16((await t.read()) as Uint16Array) : read(t));
        const dw = await val(want.dlogits);
        const scale = dw.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        expectClose(await val(got.dlogits), dw, inPlace ? 1e-2 : 1e-4, 1e-4 * scale, `${tag} dlogits`);
      }, 60_000);
    }
  });
}

// ---------------------------------------------------------------- the fused kernel itself
// GrpoKernels.fusedTokenLoss on each backend that has it against the reference's, called directly on
// fresh random inputs with its outputs poisoned (in place: the logits themselves, so an unwritten
// element keeps its logit). Tolerances: logp within 1e-5 (+ 1e-5 relative); stats w·l, k3 and ρ within
// 1e-4 relative + 1e-7 (f32 token math against f64); `clipped` equal except within 1e-5 of a clip
// bound; f32 dlogits within 1e-4 relative + 1e-5 of the row's largest |dlogit|, bf16 within one bf16
// ulp (2⁻⁷ relative: f32 then rounded, against f64 then rounded) + the same. Masked rows exactly 0.

interface KernelCase { B: number; T: number; V: number; dt: 'f32' | 'bf16'; out: 'f32' | 'bf16' | 'inplace'; u8: boolean; ref: boolean; delta: number | null; temperature: number }

const kernelVariants: { name: string; skip?: string | undefined; backend?: Backend | undefined; folded?: boolean }[] = [...under];
const webgpuUnder = under.find((u) => u.name === 'webgpu' && !u.skip);
if (webgpuUnder) {
  // the same device with workgroup counts folded into 2-D past 5 per dimension (rows, packing and the
  // shared-word pass index their workgroups linearly; the single pass's split GEMMs too)
  const { createWebGPUBackend } = await import('../src/webgpu/backend.js');
  kernelVariants.push({ name: 'webgpu (2-D folded grids)', folded: true, backend: await createWebGPUBackend({ device: (webgpuUnder.backend as WebGPUBackend).device, maxWorkgroupsPerDim: 5 }) });
}

for (const u of kernelVariants) {
  const has = !u.skip && !!u.backend?.grpo?.fusedTokenLoss;
  if (!u.skip && !has) console.warn(`[skip] grpo.fusedTokenLoss on ${u.name}: no fused kernel`);
  (has ? describe : describe.skip)(`grpo.fusedTokenLoss (the kernel) on ${u.name} against the reference`, () => {
    const name = u.name;
    const dev = u.backend as Backend;
    const cases: KernelCase[] = [
      { B: 3, T: 7, V: 257, dt: 'f32', out: 'f32', u8: false, ref: true, delta: null, temperature: 1 },
      { B: 2, T: 5, V: 1001, dt: 'bf16', out: 'f32', u8: true, ref: false, delta: 1.5, temperature: 0.7 },
      { B: 4, T: 3, V: 999, dt: 'bf16', out: 'inplace', u8: false, ref: true, delta: null, temperature: 1.3 }, // V odd: rows share words
      { B: 3, T: 4, V: 1000, dt: 'bf16', out: 'inplace', u8: true, ref: true, delta: 2, temperature: 1 },
      { B: 2, T: 9, V: 2600, dt: 'f32', out: 'inplace', u8: false, ref: true, delta: null, temperature: 0.9 }, // several sweeps of 4 × 256 per row
      { B: 5, T: 1, V: 7, dt: 'bf16', out: 'inplace', u8: false, ref: true, delta: null, temperature: 1 }, // N·V odd: the last word's high half is padding
      { B: 3, T: 3, V: 4301, dt: 'bf16', out: 'bf16', u8: false, ref: true, delta: null, temperature: 1.1 }, // bf16 out, its own buffer; 3 sweeps of 4 × 256 words
      { B: 2, T: 2, V: 77, dt: 'f32', out: 'bf16', u8: true, ref: false, delta: null, temperature: 1 },
    ];
    for (const c of u.folded ? [cases[0]!, cases[2]!] : cases) {
      it(`B ${c.B} T ${c.T} V ${c.V}: ${c.dt} logits -> ${c.out} dlogits, ${c.u8 ? 'u8' : 'f32'} mask, ${c.ref ? 'β 0.04' : 'no ref'}, δ ${c.delta}, temperature ${c.temperature}`, async () => {
        const seed = freshSeed();
        const r = rng(seed);
        const { B, T, V } = c;
        const N = B * T;
        const x = fusedInputs(r, B, T, V);
        // an empty sequence (fusedInputs' first), a full one, and ragged ones between
        if (B > 2) x.mask.fill(1, T, 2 * T);
        const m = c.u8 ? Uint8Array.from(x.mask) : x.mask;
        const w = aggregationWeights(m, B, T, { agg: 'grpo', maxLen: T, globalTokens: null }).weights;
        const zHost = c.dt === 'bf16' ? toBf16(x.logits) : x.logits;
        const args = (on: Backend, logits: Tensor) => ({
          logits, targets: on.fromHost(x.targets, 'i32', [N]), oldLogp: on.fromHost(x.oldLogp, 'f32', [N]), refLogp: c.ref ? on.fromHost(x.refLogp, 'f32', [N]) : null,
          advantages: on.fromHost(x.adv, 'f32', [B]), mask: c.u8 ? on.fromHost(m as Uint8Array, 'u8', [N]) : on.fromHost(m as Float32Array, 'f32', [N]),
          seqWeight: on.fromHost(Float32Array.from(w), 'f32', [B]), T, temperature: c.temperature, epsLow: 0.2, epsHigh: 0.28, delta: c.delta, beta: c.ref ? 0.04 : 0,
        });
        const run = async (on: Backend) => {
          const z = on.fromHost(zHost, c.dt, [N, V]);
          const out = { logp: on.empty('f32', [N]), stats: on.empty('f32', [N, 4]), dlogits: c.out === 'inplace' ? z : on.empty(c.out, [N, V]) };
          await on.grpo!.fusedTokenLoss!(args(on, z), out);
          const d = await out.dlogits.read();
          return { logp: await read(out.logp), stats: await read(out.stats), dlogits: out.dlogits.dtype === 'bf16' ? fromBf16(d as Uint16Array) : (d as Float32Array) };
        };
        const want = await run(ref.backend);
        const got = await run(dev);
        const tag = `seed ${seed}`;
        const bf16Out = c.out === 'bf16' || (c.out === 'inplace' && c.dt === 'bf16');
        for (let t = 0; t < N; t++) {
          const rt = `${tag} row ${t}`;
          if (!x.mask[t]) {
            expect(got.logp[t], `${rt} logp`).toBe(0);
            expect([...got.stats.subarray(4 * t, 4 * t + 4)], `${rt} stats`).toEqual([0, 0, 0, 0]);
            expect(got.dlogits.subarray(t * V, (t + 1) * V).every((v) => v === 0), `${rt} dlogits`).toBe(true);
            continue;
          }
          expect(Math.abs(got.logp[t]! - want.logp[t]!), `${rt} logp ${got.logp[t]} vs ${want.logp[t]}`).toBeLessThanOrEqual(1e-5 + 1e-5 * Math.abs(want.logp[t]!));
          for (const j of [0, 2, 3]) {
            const g = got.stats[4 * t + j]!, e = want.stats[4 * t + j]!;
            expect(Math.abs(g - e), `${rt} stats[${j}] ${g} vs ${e}`).toBeLessThanOrEqual(1e-4 * Math.abs(e) + 1e-7);
          }
          const rho = want.stats[4 * t + 3]!;
          if (Math.abs(rho - 0.8) > 1e-5 && Math.abs(rho - 1.28) > 1e-5) expect(got.stats[4 * t + 1], `${rt} clipped`).toBe(want.stats[4 * t + 1]);
          let scale = 0;
          for (let v = 0; v < V; v++) scale = Math.max(scale, Math.abs(want.dlogits[t * V + v]!));
          for (let v = 0; v < V; v++) {
            const g = got.dlogits[t * V + v]!, e = want.dlogits[t * V + v]!;
            const bound = (bf16Out ? 2 ** -7 : 1e-4) * Math.abs(e) + 1e-5 * scale;
            if (!(Math.abs(g - e) <= bound)) expect.fail(`${rt} dlogits[${v}]: got ${g}, want ${e} (bound ${bound})`);
          }
        }
      }, 60_000);
    }

    if (name === 'webgpu') {
      it('GPU: a NaN logit, an all −inf row or a target outside [0, V) gives NaN for that row; the others are right', async () => {
        const r = rng(freshSeed());
        const [B, T, V] = [2, 3, 130];
        const N = B * T;
        const x = fusedInputs(r, B, T, V);
        x.mask.fill(1);
        x.logits[1 * V + 17] = NaN;
        x.logits.fill(-Infinity, 2 * V, 3 * V);
        x.targets[3] = V + 5;
        const w = Float32Array.from(aggregationWeights(x.mask, B, T, { agg: 'grpo', maxLen: T, globalTokens: null }).weights);
        const run = async (on: Backend, targets: Int32Array) => {
          const out = { logp: on.empty('f32', [N]), stats: on.empty('f32', [N, 4]), dlogits: on.empty('f32', [N, V]) };
          await on.grpo!.fusedTokenLoss!({
            logits: on.fromHost(x.logits, 'f32', [N, V]), targets: on.fromHost(targets, 'i32', [N]), oldLogp: on.fromHost(x.oldLogp, 'f32', [N]),
            refLogp: on.fromHost(x.refLogp, 'f32', [N]), advantages: on.fromHost(x.adv, 'f32', [B]), mask: on.fromHost(x.mask, 'f32', [N]),
            seqWeight: on.fromHost(w, 'f32', [B]), T, temperature: 1, epsLow: 0.2, epsHigh: 0.2, delta: null, beta: 0.04,
          }, out);
          return { logp: await read(out.logp), dlogits: await read(out.dlogits) };
        };
        const got = await run(dev, x.targets);
        const okTargets = x.targets.map((y) => (y >= V ? 0 : y));
        const want = await run(ref.backend, okTargets);
        for (const t of [1, 2, 3]) {
          expect(got.logp[t], `row ${t} logp`).toBeNaN();
          expect(got.dlogits.subarray(t * V, (t + 1) * V).every(Number.isNaN), `row ${t} dlogits all NaN`).toBe(true);
        }
        for (const t of [0, 4, 5]) {
          expect(Math.abs(got.logp[t]! - want.logp[t]!)).toBeLessThan(1e-4);
          const row = want.dlogits.subarray(t * V, (t + 1) * V);
          const scale = row.reduce((mx, v) => Math.max(mx, Math.abs(v)), 0);
          expectClose(got.dlogits.subarray(t * V, (t + 1) * V), row, 1e-4, 1e-5 * scale, `row ${t} dlogits`);
        }
      });
    }
  });
}

// fusedLoss's aggregation weights and stat sums come from the device where the backend has
// fusedWeights/fusedStatSums (cuda): every rule, f32 and u8 masks, an empty sequence, globalTokens.
for (const u of under) {
  const has = !u.skip && !!u.backend?.grpo?.fusedTokenLoss;
  (has ? describe : describe.skip)(`grpo.fusedLoss on ${u.name}: every aggregation, f32 and u8 masks${u.backend?.grpo?.fusedWeights ? ' (weights and sums on the device)' : ''}`, () => {
    it('loss, stats, logp and dlogits against the reference', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const [B, T, V] = [5, 7, 700];
      const x = fusedInputs(r, B, T, V);
      for (const agg of AGGS) for (const maskU8 of [false, true]) for (const globalTokens of agg === 'dapo' ? [undefined, 40] : [undefined]) {
        const tag = `seed ${seed} ${agg}${maskU8 ? ' u8 mask' : ''}${globalTokens ? ` globalTokens ${globalTokens}` : ''}`;
        const mk = async (move: boolean) => {
          const t = (v: Float32Array | Int32Array | Uint8Array, shape: number[], d: 'f32' | 'i32' | 'u8') => (move ? ref.tensor(v, shape, d).to(u.name) : Promise.resolve(ref.tensor(v, shape, d)));
          return {
            logits: await t(x.logits, [B * T, V], 'f32'), targets: await t(x.targets, [B, T], 'i32'), oldLogp: await t(x.oldLogp, [B, T], 'f32'),
            refLogp: await t(x.refLogp, [B, T], 'f32'), advantages: await t(x.adv, [B], 'f32'),
            mask: await (maskU8 ? t(Uint8Array.from(x.mask), [B, T], 'u8') : t(x.mask, [B, T], 'f32')),
            agg, beta: 0.04, maxLen: T + 3, ...(globalTokens ? { globalTokens } : {}),
          };
        };
        const want = await grpo.fusedLoss(await mk(false));
        const got = await grpo.fusedLoss(await mk(true));
        expectClose([got.loss, got.stats.clipFraction, got.stats.meanKl, got.stats.meanRatio], [want.loss, want.stats.clipFraction, want.stats.meanKl, want.stats.meanRatio], 1e-4, 1e-6, tag);
        const dw = await read(want.dlogits);
        const scale = dw.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        expect(scale, `${tag}: a gradient to compare`).toBeGreaterThan(0);
        expectClose(await read(got.dlogits), dw, 1e-4, 1e-4 * scale, `${tag} dlogits`);
        expectClose(await read(got.logp), await read(want.logp), 1e-5, 1e-4, `${tag} logp`);
      }
    });
  });
}

// Past 2^31 logits (cuda: 64-bit indexing in the fused kernel). Rows repeat with period P, so a row
// past the 2^31st element must give the bits its twin gives in a call of P rows alone (the 'dapo'
// rule with a fixed globalTokens makes every row's weight the same in both calls).
{
  const cu = under.find((u) => u.name === 'cuda');
  const why = !cu || cu.skip ? `no cuda (${cu?.skip ?? 'not probed'})` : !cu.backend!.moe?.copyRows ? 'no moe.copyRows on cuda' : null;
  if (why) console.warn(`[skip] grpo.fusedLoss past 2^31 logits: ${why}`);
  (why ? it.skip : it)('grpo.fusedLoss on cuda past 2^31 logits (bf16, 14336 × 151936): rows past the 2^31st element equal their twins', async () => {
    const b = cu!.backend!;
    const [P, V, T] = [2048, 151936, 2048];
    const N = 7 * P; // 2.18e9 logits
    expect(N * V).toBeGreaterThan(2 ** 31);
    const seed = freshSeed();
    const r = rng(seed);
    const block = Float32Array.from({ length: P * V }, () => 4 * normal(r));
    const y = Int32Array.from({ length: P }, () => Math.floor(r() * V));
    const old = Float32Array.from({ length: P }, () => -Math.log(V) + 0.5 * normal(r));
    const tile = <A extends Float32Array | Int32Array>(a: A, n: number): A => {
      const out = new (a.constructor as new (n: number) => A)(n);
      for (let i = 0; i < n; i += a.length) out.set(a.subarray(0, Math.min(a.length, n - i)) as never, i);
      return out;
    };
    const small = b.fromHost(toBf16(block), 'bf16', [P, V]);
    const big = b.empty('bf16', [N, V]);
    for (let r0 = 0; r0 < N; r0 += P) await b.moe!.copyRows!(small, 0, big, r0, P);
    const args = (n: number) => ({
      targets: b.fromHost(tile(y, n), 'i32', [n / T, T]), oldLogp: b.fromHost(tile(old, n), 'f32', [n / T, T]),
      refLogp: b.fromHost(tile(old, n).map((v) => v + 0.1), 'f32', [n / T, T]), advantages: b.fromHost(new Float32Array(n / T).fill(0.7), 'f32', [n / T]),
      mask: b.fromHost(new Float32Array(n).fill(1), 'f32', [n / T, T]), agg: 'dapo' as const, globalTokens: 1000, beta: 0.04, epsHigh: 0.28,
    });
    const one = await grpo.fusedLoss({ logits: small, ...args(P) });
    const all = await grpo.fusedLoss({ logits: big, ...args(N) });
    expect(all.loss, `seed ${seed}: loss is 7 blocks'`).toBeCloseTo(7 * one.loss, 4);
    const lOne = await read(one.logp), lAll = await read(all.logp);
    const straddle = Math.floor(2 ** 31 / V); // the row holding the 2^31st element
    for (const row of [straddle, straddle + 1, N - P, N - 1]) {
      expect(lAll[row], `seed ${seed}: logp[${row}]`).toBe(lOne[row % P]);
      const got = await read(sliceRows(all.dlogits, row, row + 1));
      const want = await read(sliceRows(one.dlogits, row % P, row % P + 1));
      expect(firstBitDiff(got, want), `seed ${seed}: dlogits row ${row} vs its twin ${row % P}`).toBe(-1);
    }
    for (const t of [small, big, one.dlogits, all.dlogits, one.logp, all.logp]) t.dispose();
  }, 120_000);
}

describe('grpo.fusedLossFromHidden', () => {
  const backends = [{ name: 'reference' as const, skip: undefined as string | undefined, b: ref.backend as Backend }, ...under.map((u) => ({ name: u.name, skip: u.skip, b: u.backend }))];
  for (const x of backends) {
    const skip = x.skip ?? (x.b?.gemm && x.b.logprob && x.b.grpo ? undefined : `the ${x.name} backend lacks gemm, logprob or grpo kernels`);
    // T 40, chunks of one sequence: the per-token inputs go up chunk by chunk on GPU backends; T 64,
    // chunks of 2 sequences (128 rows) and a u8 mask: views of the whole-call tensors
    for (const [twoPass, T, chunk, u8] of [[false, 40, 64, false], [false, 64, 128, true], [true, 40, 64, false]] as const)
    (skip ? it.skip : it)(`${x.name}${twoPass ? ' (two passes)' : x.b?.grpo?.fusedTokenLoss ? ' (single pass)' : ''}, T ${T}, chunk ${chunk}${u8 ? ', u8 mask' : ''}: equals grpo.fusedLoss on hidden · Wᵀ, chained through the head (dHidden = dz·W, dW = dzᵀ·h)`, async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const [B, H, V] = [4, 24, 500];
      const N = B * T;
      const h = Float32Array.from({ length: N * H }, () => normal(r));
      const w = Float32Array.from({ length: V * H }, () => 0.3 * normal(r));
      const inp = fusedInputs(r, B, T, 1);
      const y = Int32Array.from({ length: N }, () => Math.floor(r() * V));
      const z = new Float32Array(N * V);
      for (let t = 0; t < N; t++) for (let v = 0; v < V; v++) {
        let s = 0;
        for (let k = 0; k < H; k++) s += h[t * H + k]! * w[v * H + k]!;
        z[t * V + v] = s;
      }
      const common = (on: (a: Float32Array | Uint8Array, shape: number[], dtype?: 'u8') => Promise<Tensor>) =>
        Promise.all([on(inp.oldLogp, [B, T]), on(inp.refLogp, [B, T]), on(inp.adv, [B]), u8 ? on(Uint8Array.from(inp.mask), [B, T], 'u8') : on(inp.mask, [B, T])]);
      const [o, rf, a, m] = await common(async (v, s, d) => ref.tensor(v, s, d));
      const want = await grpo.fusedLoss({ logits: ref.tensor(z, [N, V]), targets: ref.tensor(y, [B, T], 'i32'), oldLogp: o!, refLogp: rf!, advantages: a!, mask: m!, temperature: 0.9 });
      const [o2, rf2, a2, m2] = await common((v, s, d) => ref.tensor(v, s, d).to(x.name));
      const got = await grpo.fusedLossFromHidden({
        hidden: await ref.tensor(h, [N, H]).to(x.name), headWeight: await ref.tensor(w, [V, H]).to(x.name), targets: await ref.tensor(y, [B, T], 'i32').to(x.name),
        oldLogp: o2!, refLogp: rf2!, advantages: a2!, mask: m2!, temperature: 0.9, chunk, vocabChunk: 128, twoPass,
      });
      const tag = `seed ${seed}`;
      expectClose([got.loss, got.stats.clipFraction, got.stats.meanKl, got.stats.meanRatio], [want.loss, want.stats.clipFraction, want.stats.meanKl, want.stats.meanRatio], 1e-4, 1e-6, tag);
      const lw = await read(want.logp), lg = await read(got.logp);
      for (let i = 0; i < N; i++) if (inp.mask[i]) expect(Math.abs(lg[i]! - lw[i]!), `${tag} logp[${i}]`).toBeLessThan(1e-4);
      const dz = await read(want.dlogits);
      const dh = new Float64Array(N * H), dw = new Float64Array(V * H);
      for (let t = 0; t < N; t++) for (let v = 0; v < V; v++) {
        const d = dz[t * V + v]!;
        if (d === 0) continue;
        for (let k = 0; k < H; k++) {
          dh[t * H + k] = dh[t * H + k]! + d * w[v * H + k]!;
          dw[v * H + k] = dw[v * H + k]! + d * h[t * H + k]!;
        }
      }
      const max = (arr: ArrayLike<number>) => Array.from(arr).reduce((s, v) => Math.max(s, Math.abs(v)), 0);
      expectClose(await read(got.dHidden), dh, 1e-3, 1e-4 * max(dh), `${tag} dHidden`);
      expectClose(await read(got.dHeadWeight), dw, 1e-3, 1e-4 * max(dw), `${tag} dHeadWeight`);
    });
  }
});

describe('cpuGrpoFusedTokenLoss (the addon entry point) rejects bad calls without crashing', () => {
  const addon = loadAddon();
  (addon ? it : it.skip)('sizes, dtypes, overlap, T ∤ N', async () => {
    if (!addon) return;
    const [N, V, T] = [6, 10, 3];
    const ok = () => [new Float32Array(N * V), new Int32Array(N), new Float32Array(N), null, new Float32Array(N / T), new Float32Array(N).fill(1),
      new Float32Array(N / T), N, V, T, 1, 0.2, 0.2, 0, 0, new Float32Array(N), new Float32Array(N * V), new Float32Array(N * 4)] as unknown[];
    const call = (args: unknown[]) => thrown(() => (addon.cpuGrpoFusedTokenLoss as (...a: unknown[]) => Promise<void>)(...args));
    await expect((addon.cpuGrpoFusedTokenLoss as (...a: unknown[]) => Promise<void>)(...ok())).resolves.toBeUndefined();
    const bad: [string, (a: unknown[]) => void, string][] = [
      ['short logits', (a) => (a[0] = new Float32Array(N * V - 1)), 'E_'],
      ['logits of the wrong type', (a) => (a[0] = new Int32Array(N * V)), 'E_ARG'],
      ['T does not divide N', (a) => (a[9] = 4), 'E_SHAPE'],
      ['short seqWeight', (a) => (a[6] = new Float32Array(1)), 'E_'],
      ['beta without refLogp', (a) => (a[14] = 0.1), 'E_ARG'],
      ['zero temperature', (a) => (a[10] = 0), 'E_ARG'],
      ['dlogits overlapping the logits at another offset', (a) => {
        const buf = new Float32Array(N * V + 4);
        a[0] = buf.subarray(0, N * V);
        a[16] = buf.subarray(4, N * V + 4);
      }, 'E_ARG'],
      ['short stats', (a) => (a[17] = new Float32Array(N)), 'E_'],
    ];
    for (const [what, edit, code] of bad) {
      const args = ok();
      edit(args);
      const e = (await call(args)) as { code?: string } | undefined;
      expect(e, what).toBeDefined();
      expect(String(e?.code), what).toMatch(new RegExp(`^${code}`));
    }
  });
});
