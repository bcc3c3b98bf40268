// nn: the reference against f64 central finite differences for every backward (embedding, RMSNorm,
// RoPE, attention, SwiGLU), AdamW against hand-computed PyTorch steps, sampling against hand-worked
// cases and a histogram; the KV-cache decode form against full causal attention; bad inputs; then
// every backend that has nn kernels against the reference on seeded inputs with poisoned outputs.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HotpathsError, init, nn, setPoison, Tensor } from '../src/index.js';
import type { AdamWParams, Backend } from '../src/runtime/backend.js';
import * as R from '../src/reference/nn.js';
import { backendsUnderTest, freshSeed, randomF32, readF32 as read, rng, thrown } from './helpers.js';

const ref = await init({ backend: 'reference' });

beforeAll(() => setPoison(true));
afterAll(() => setPoison(false));

const f32 = (a: ArrayLike<number>, shape: number[]): Tensor => ref.tensor(Float32Array.from(a), shape);
const i32 = (a: ArrayLike<number>, shape: number[]): Tensor => ref.tensor(Int32Array.from(a), shape, 'i32');
const f64 = (n: number, r: () => number, scale = 1): Float64Array => Float64Array.from(randomF32(n, r, scale));
const maxAbs = (a: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
};
const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/**
 * |got − want| ≤ rel·|want| + abs·top elementwise, top = max|want| unless given (abs is relative to
 * the largest element, or to the size of the terms that cancel into `want`).
 */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs: number, tag: string, top = maxAbs(want)): void {
  expect(got.length, `${tag}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    if (!(Math.abs(g - w) <= rel * Math.abs(w) + abs * top)) {
      expect.fail(`${tag}[${i}]: got ${g}, want ${w} (rel ${rel}, abs ${abs}·${top})`);
    }
  }
}

/**
 * Central differences of L(x) = Σ g·f(x) in f64, over every element of `x` (changed in place and
 * restored): d L / d x_i ≈ (L(x + h e_i) − L(x − h e_i)) / 2h.
 */
function numericGrad(x: Float64Array, loss: () => number, h = 1e-6): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i]!;
    x[i] = x0 + h;
    const lp = loss();
    x[i] = x0 - h;
    const lm = loss();
    x[i] = x0;
    out[i] = (lp - lm) / (2 * h);
  }
  return out;
}

// f64 finite differences have error ~h² · f''' + ε/h ≈ 1e-9 here; the analytic gradients are exact f64
const FD_REL = 1e-6, FD_ABS = 1e-7;

// ---------------------------------------------------------------- reference: backward vs finite differences

describe('nn reference: every backward equals f64 central finite differences', () => {
  it('embedding (repeated ids accumulate; dTable is added to)', () => {
    const seed = freshSeed(), r = rng(seed);
    const [V, D, N] = [5, 3, 9];
    const table = f64(V * D, r), g = f64(N * D, r);
    const ids = Int32Array.from({ length: N }, (_, i) => [0, 3, 3, 1, 0, 3, 4, 3, 0][i]!);
    const out = new Float64Array(N * D);
    const loss = () => (R.embedding(table, ids, N, D, out), dot(out, g));
    const start = f64(V * D, r);
    const dTable = Float64Array.from(start);
    R.embeddingBackward(g, ids, N, D, dTable);
    const fd = numericGrad(table, loss);
    expectClose(dTable.map((v, i) => v - start[i]!), fd, FD_REL, FD_ABS, `seed ${seed} dTable`);
    // row 2 never appears: its gradient is exactly the starting value
    for (let d = 0; d < D; d++) expect(dTable[2 * D + d]).toBe(start[2 * D + d]);
  });

  it('rmsnorm: dx and dWeight (+=), eps 1e-6 and 0.1', () => {
    const seed = freshSeed(), r = rng(seed);
    // (D = 1 with a tiny eps is ill-conditioned: dx = r·w·g·eps/(x² + eps) is a near-total cancellation)
    for (const [N, D, eps] of [[3, 7, 1e-6], [2, 16, 0.1], [1, 1, 0.1]] as const) {
      const x = f64(N * D, r), w = f64(D, r), g = f64(N * D, r);
      const out = new Float64Array(N * D), rstd = new Float64Array(N);
      const loss = () => (R.rmsnorm(x, w, N, D, eps, out, rstd), dot(out, g));
      loss();
      const dx = new Float64Array(N * D), start = f64(D, r), dw = Float64Array.from(start);
      R.rmsnormBackward(g, x, w, rstd, N, D, dx, dw);
      expectClose(dx, numericGrad(x, loss), FD_REL, FD_ABS, `seed ${seed} N=${N} D=${D} dx`);
      expectClose(dw.map((v, i) => v - start[i]!), numericGrad(w, loss), FD_REL, FD_ABS, `seed ${seed} N=${N} D=${D} dWeight`);
    }
  });

  it('rope: the backward is the inverse rotation; the inverse undoes the forward; position 0 is the identity', () => {
    const seed = freshSeed(), r = rng(seed);
    const [N, nH, Dh] = [4, 3, 8];
    const x = f64(N * nH * Dh, r), g = f64(N * nH * Dh, r);
    const pos = Int32Array.from([0, 5, 17, 255]);
    const out = new Float64Array(x.length);
    const loss = () => (R.rope(x, pos, N, nH, Dh, 10000, false, out), dot(out, g));
    const dx = new Float64Array(x.length);
    R.rope(g, pos, N, nH, Dh, 10000, true, dx);
    expectClose(dx, numericGrad(x, loss), FD_REL, FD_ABS, `seed ${seed} dx`);
    loss();
    const back = new Float64Array(x.length);
    R.rope(out, pos, N, nH, Dh, 10000, true, back);
    expectClose(back, x, 1e-12, 1e-14, 'inverse(rope(x))');
    expect([...out.subarray(0, nH * Dh)]).toEqual([...x.subarray(0, nH * Dh)]);
    // hand-worked: position 1, pair 0 turns by 1 rad; pair 1 (Dh = 4) by 10000^(−1/2) = 0.01 rad
    const one = new Float64Array(4);
    R.rope(Float64Array.from([1, 0, 0, 1]), Int32Array.from([1]), 1, 1, 4, 10000, false, one);
    expectClose(one, [Math.cos(1), Math.sin(1), -Math.sin(0.01), Math.cos(0.01)], 1e-15, 0, 'hand-worked');
  });

  it('attention: dq, dk, dv (several shapes, a non-default scale)', () => {
    const seed = freshSeed(), r = rng(seed);
    for (const [B, T, nH, Dh, scale] of [[1, 5, 2, 4, 0.5], [2, 3, 1, 6, 1 / Math.sqrt(6)], [1, 1, 1, 2, 1]] as const) {
      const n = B * T * nH * Dh;
      const q = f64(n, r), k = f64(n, r), v = f64(n, r), g = f64(n, r);
      const dims = { B, Tq: T, S: T, nH, Dh };
      const out = new Float64Array(n), lse = new Float64Array(B * nH * T);
      const loss = () => (R.attention(q, k, v, dims, 0, T, scale, out, lse), dot(out, g));
      loss();
      const dq = new Float64Array(n), dk = new Float64Array(n), dv = new Float64Array(n);
      R.attentionBackward(q, k, v, out, lse, g, dims, scale, dq, dk, dv);
      const tag = `seed ${seed} B=${B} T=${T} nH=${nH} Dh=${Dh}`;
      expectClose(dq, numericGrad(q, loss), FD_REL, FD_ABS, `${tag} dq`);
      expectClose(dk, numericGrad(k, loss), FD_REL, FD_ABS, `${tag} dk`);
      expectClose(dv, numericGrad(v, loss), FD_REL, FD_ABS, `${tag} dv`);
    }
  });

  it('attention forward: hand-worked causal rows and lse', () => {
    // T = 2, Dh = 2, scale 1
    const q = Float64Array.from([1, 0, 0, 1]), k = Float64Array.from([2, 5, 7, Math.log(3)]), v = Float64Array.from([1, 2, 5, 10]);
    const out = new Float64Array(4), lse = new Float64Array(2);
    R.attention(q, k, v, { B: 1, Tq: 2, S: 2, nH: 1, Dh: 2 }, 0, 2, 1, out, lse);
    // row 0 sees k0 only: out0 = v0, lse0 = q0·k0 = 2; row 1 scores q1·k0 = 5, q1·k1 = ln 3 -> weights e⁵ : 3, lse1 = ln(e⁵ + 3)
    const e5 = Math.exp(5);
    expectClose(out, [1, 2, (e5 * 1 + 3 * 5) / (e5 + 3), (e5 * 2 + 3 * 10) / (e5 + 3)], 1e-14, 0, 'out');
    expectClose(lse, [2, Math.log(Math.exp(5) + 3)], 1e-14, 0, 'lse');
  });

  it('swiglu: dGate and dUp', () => {
    const seed = freshSeed(), r = rng(seed);
    const n = 40;
    const gate = f64(n, r, 3), up = f64(n, r), g = f64(n, r);
    const out = new Float64Array(n);
    const loss = () => (R.swiglu(gate, up, n, out), dot(out, g));
    const dGate = new Float64Array(n), dUp = new Float64Array(n);
    R.swigluBackward(gate, up, g, n, dGate, dUp);
    expectClose(dGate, numericGrad(gate, loss), FD_REL, FD_ABS, `seed ${seed} dGate`);
    expectClose(dUp, numericGrad(up, loss), FD_REL, FD_ABS, `seed ${seed} dUp`);
  });
});

// ---------------------------------------------------------------- AdamW

/** PyTorch's _single_tensor_adamw written out for one element, in its own order of operations. */
function torchAdamw(p: number, g: number, m: number, v: number, o: AdamWParams): [number, number, number] {
  p = p * (1 - o.lr * o.weightDecay);
  m = m + (g - m) * (1 - o.beta1); // exp_avg.lerp_(grad, 1 - beta1)
  v = v * o.beta2 + (1 - o.beta2) * g * g;
  const bc1 = 1 - o.beta1 ** o.step, bc2 = 1 - o.beta2 ** o.step;
  const denom = Math.sqrt(v) / Math.sqrt(bc2) + o.eps;
  p = p - (o.lr / bc1) * (m / denom);
  return [p, m, v];
}

describe('nn.adamw (reference)', () => {
  it('matches a hand-computed first step', async () => {
    // p = 1, g = 0.5, lr 0.1, wd 0.01: p·(1 − 0.001) = 0.999; m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25;
    // p = 0.999 − 0.1·0.5/(0.5 + 1e-8) = 0.899000002
    const p = f32([1], [1]), m = f32([0], [1]), v = f32([0], [1]);
    await nn.adamw(p, f32([0.5], [1]), m, v, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1 });
    expect((await read(p))[0]).toBe(Math.fround(0.899000002));
    expect((await read(m))[0]).toBe(Math.fround(0.05));
    expect((await read(v))[0]).toBe(Math.fround(0.00025));
  });

  it('follows PyTorch\'s formula over 5 steps (bias correction, decoupled decay), within f32 rounding', async () => {
    const seed = freshSeed(), r = rng(seed);
    const n = 37;
    const o = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
    const p0 = randomF32(n, r);
    const P = f32(p0, [n]), M = f32(new Float32Array(n), [n]), Vt = f32(new Float32Array(n), [n]);
    const want = Array.from(p0, (x) => [x, 0, 0] as [number, number, number]);
    for (let step = 1; step <= 5; step++) {
      const g = randomF32(n, r, 0.1, 2);
      await nn.adamw(P, f32(g, [n]), M, Vt, { ...o, step });
      const [pp, mm, vv] = [await read(P), await read(M), await read(Vt)];
      for (let i = 0; i < n; i++) {
        // start each step from the f32 state the kernel holds, so only one step's rounding is compared
        want[i] = torchAdamw(want[i]![0], g[i]!, want[i]![1], want[i]![2], { ...o, step });
        expect(Math.abs(pp[i]! - want[i]![0]), `seed ${seed} step ${step} p[${i}]`).toBeLessThanOrEqual(1e-6 * Math.abs(want[i]![0]) + 1e-9);
        expect(Math.abs(mm[i]! - want[i]![1]), `m[${i}]`).toBeLessThanOrEqual(1e-6 * Math.abs(want[i]![1]) + 1e-12);
        expect(Math.abs(vv[i]! - want[i]![2]), `v[${i}]`).toBeLessThanOrEqual(1e-6 * Math.abs(want[i]![2]) + 1e-15);
        want[i] = [pp[i]!, mm[i]!, vv[i]!];
      }
    }
  });
});

// ---------------------------------------------------------------- sampling

async function sampleIds(logits: number[], V: number, us: number[], opts: nn.SampleOptions): Promise<number[]> {
  const B = logits.length / V;
  const ids = await nn.sample(f32(logits, [B, V]), f32(us, [B]), opts);
  return [...((await ids.read()) as Int32Array)];
}

describe('nn.sample (reference)', () => {
  it('hand-worked: ties sorted by id, the top-p boundary (mass ≥ topP keeps the prefix), u·mass with a strict >', async () => {
    // four equal logits: p = 1/4 exactly, order 0, 1, 2, 3
    const eq = [0, 0, 0, 0];
    // topP 0.5: the prefix {0, 1} has mass exactly 0.5 ≥ 0.5 -> kept mass 0.5
    expect(await sampleIds([...eq, ...eq, ...eq], 4, [0, 0.49, 0.5], { topP: 0.5 })).toEqual([0, 0, 1]); // targets 0, 0.245, 0.25 (0.25 > 0.25 fails -> 1)
    expect(await sampleIds(eq, 4, [0.99], { topP: 0.5 })).toEqual([1]);
    expect(await sampleIds(eq, 4, [0.99], { topP: 0.5000001 })).toEqual([2]); // three kept: target 0.7425
    expect(await sampleIds(eq, 4, [0.99], {})).toEqual([3]);
    // logits [1, 3, 2, 3]: p ∝ e, e³, e², e³ -> order 1, 3 (tie: lower id first), 2, 0
    const S = Math.E + Math.E ** 2 + 2 * Math.E ** 3;
    const p3 = Math.E ** 3 / S; // 0.3995
    expect(p3).toBeCloseTo(0.39949, 4);
    const z = [1, 3, 2, 3];
    expect(await sampleIds([...z, ...z, ...z, ...z], 4, [0, 0.5, 0.85, 0.99], {})).toEqual([1, 3, 2, 0]);
    // topP 0.5: ids 1 and 3 are kept (mass 0.799); u = 0.49 -> target 0.39 < p3 -> 1; u = 0.99 -> 3
    expect(await sampleIds([...z, ...z], 4, [0.49, 0.99], { topP: 0.5 })).toEqual([1, 3]);
    // a tiny topP keeps only the most probable token
    expect(await sampleIds([...z, ...z], 4, [0, 0.999], { topP: 1e-6 })).toEqual([1, 1]);
  });

  it('temperature 0 is the argmax with the lowest id on ties; u and topP do not matter', async () => {
    expect(await sampleIds([1, 3, 2, 3, -5, -1, -1, -7], 4, [0.9, 0.1], { temperature: 0, topP: 0.3 })).toEqual([1, 1]);
    expect(await sampleIds([0, 0, 0], 3, [0.7], { temperature: 0 })).toEqual([0]);
  });

  it('a histogram over many uniforms follows softmax(z/T), renormalised over the top-p set (5σ bounds)', async () => {
    const seed = freshSeed(), r = rng(seed);
    const V = 8, n = 20000;
    const z = Array.from({ length: V }, () => r() * 4 - 2);
    for (const [T, topP] of [[0.7, 1], [1.3, 0.8]] as const) {
      const e = z.map((x) => Math.exp(x / T));
      const s = e.reduce((a, b) => a + b, 0);
      const p = e.map((x) => x / s);
      const order = [...p.keys()].sort((a, b) => p[b]! - p[a]! || a - b);
      const keep = new Set<number>();
      let mass = 0;
      for (const j of order) {
        keep.add(j);
        mass += p[j]!;
        if (mass >= topP) break;
      }
      const want = p.map((x, j) => (keep.has(j) ? x / mass : 0));
      const logits = new Float32Array(n * V);
      for (let b = 0; b < n; b++) logits.set(z, b * V);
      const us = Float32Array.from({ length: n }, () => Math.fround(r()) % 1);
      const ids = (await (await nn.sample(f32(logits, [n, V]), f32(us, [n]), { temperature: T, topP })).read()) as Int32Array;
      const hist = new Array<number>(V).fill(0);
      for (const id of ids) hist[id]!++;
      for (let j = 0; j < V; j++) {
        const sd = Math.sqrt((want[j]! * (1 - want[j]!)) / n);
        expect(Math.abs(hist[j]! / n - want[j]!), `seed ${seed} T=${T} topP=${topP} token ${j}: ${hist[j]! / n} vs ${want[j]}`).toBeLessThanOrEqual(5 * sd + 1e-12);
      }
    }
  });
});

// ---------------------------------------------------------------- KV-cache decoding

/** Row t of full causal attention equals the decode form at qOffset t, kvLen t + 1, on a cache longer than kvLen holding NaN past it. */
async function checkDecode(backend: Backend, seed: number, rel: number, abs: number): Promise<void> {
  const r = rng(seed);
  const [B, T, nH, Dh, Smax] = [2, 9, 3, 16, 12];
  const n = B * T * nH * Dh;
  const q = randomF32(n, r), k = randomF32(n, r), v = randomF32(n, r);
  const full = await nn.attention(await f32(q, [B, T, nH, Dh]).to('reference'), f32(k, [B, T, nH, Dh]), f32(v, [B, T, nH, Dh]));
  const fullOut = await read(full.out), fullLse = await read(full.lse);
  // one lse at a time: abs scales with the largest lse, as when the whole tensor is compared (a lone lse
  // near 0 — at t = 0 it is a single score — carries the rounding of its terms, not of its value)
  const lseTop = maxAbs(fullLse);
  const kc = new Float32Array(B * Smax * nH * Dh).fill(NaN), vc = new Float32Array(B * Smax * nH * Dh).fill(NaN);
  const row = nH * Dh;
  for (let t = 0; t < T; t++) {
    const qt = new Float32Array(B * row);
    for (let b = 0; b < B; b++) {
      qt.set(q.subarray((b * T + t) * row, (b * T + t + 1) * row), b * row);
      kc.set(k.subarray((b * T + t) * row, (b * T + t + 1) * row), (b * Smax + t) * row);
      vc.set(v.subarray((b * T + t) * row, (b * T + t + 1) * row), (b * Smax + t) * row);
    }
    const on = (a: Float32Array, shape: number[]) => f32(a, shape).to(backend.name);
    const step = await nn.attention(await on(qt, [B, 1, nH, Dh]), await on(kc, [B, Smax, nH, Dh]), await on(vc, [B, Smax, nH, Dh]), { qOffset: t, kvLen: t + 1 });
    const out = await read(step.out), lse = await read(step.lse);
    for (let b = 0; b < B; b++) {
      expectClose(out.subarray(b * row, (b + 1) * row), fullOut.subarray((b * T + t) * row, (b * T + t + 1) * row), rel, abs, `seed ${seed} ${backend.name} t=${t} b=${b} out`);
      for (let h = 0; h < nH; h++) expectClose([lse[b * nH + h]!], [fullLse[(b * nH + h) * T + t]!], rel, abs, `seed ${seed} ${backend.name} t=${t} lse`, lseTop);
    }
  }
}

describe('nn.attention KV-cache decode form (reference)', () => {
  it('equals each row of full causal attention; cache rows past kvLen are never read', async () => {
    await checkDecode(ref.backend, freshSeed(), 1e-6, 1e-7);
  });
});

// ---------------------------------------------------------------- bad inputs

describe('nn: bad inputs', () => {
  it('rejects each with the right code and a message naming the argument', async () => {
    const table = f32(new Float32Array(12), [4, 3]);
    const ids = i32([0, 3, 1], [3]);
    const x = f32(new Float32Array(12), [3, 4]);
    const w4 = f32(new Float32Array(4), [4]);
    const q = f32(new Float32Array(2 * 3 * 2 * 4), [2, 3, 2, 4]);
    const kv = f32(new Float32Array(2 * 5 * 2 * 4), [2, 5, 2, 4]);
    const lse = f32(new Float32Array(12), [2, 2, 3]);
    const qkv3 = f32(new Float32Array(2 * 3 * 2 * 4), [2, 3, 2, 4]);
    const pos = i32([0, 1, 2], [3]);
    const opt: AdamWParams = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 };
    const p4 = () => f32(new Float32Array(4), [4]);
    const logits = f32(new Float32Array(6), [2, 3]);
    const cases: [() => Promise<unknown>, string, RegExp][] = [
      [() => nn.embedding([1] as never, ids), 'E_ARG', /table: expected a Tensor/],
      [() => nn.embedding(f32([1, 2], [2]), ids), 'E_SHAPE', /table: expected a 2-D tensor/],
      [() => nn.embedding(table, f32([0, 1], [2])), 'E_DTYPE', /ids: expected dtype i32/],
      [() => nn.embedding(table, i32([0, 4], [2])), 'E_ARG', /ids: expected token ids in \[0, 4\).*got 4 at index 1/],
      [() => nn.embedding(table, i32([-1], [1])), 'E_ARG', /ids: .*got -1 at index 0/],
      [() => nn.embedding(table, i32([], [0])), 'E_EMPTY', /ids/],
      [() => nn.embeddingBackward(f32(new Float32Array(6), [3, 2]), ids, table), 'E_SHAPE', /dOut: expected shape \[3, 3\]/],
      [() => nn.embeddingBackward(f32(new Float32Array(9), [3, 3]), i32([0, 9, 1], [3]), table), 'E_ARG', /ids: .*got 9/],
      [() => nn.rmsnorm(x, f32([1, 2, 3], [3])), 'E_SHAPE', /weight: expected shape \[4\]/],
      [() => nn.rmsnorm(x, w4, { eps: -1 }), 'E_ARG', /eps: expected a finite number ≥ 0, got -1/],
      [() => nn.rmsnorm(ref.tensor(new Uint16Array(4), [1, 4], 'bf16'), w4), 'E_DTYPE', /x: expected dtype f32/],
      [() => nn.rmsnormBackward(x, x, w4, f32([1, 1], [2]), p4()), 'E_SHAPE', /rstd: expected shape \[3\]/],
      [() => nn.rmsnormBackward(f32(new Float32Array(4), [1, 4]), x, w4, f32([1, 1, 1], [3]), p4()), 'E_SHAPE', /dOut: expected shape \[3, 4\]/],
      [() => nn.rope(f32(new Float32Array(9), [3, 1, 3]), pos), 'E_SHAPE', /even head dimension Dh.*Dh = 3/],
      [() => nn.rope(f32(new Float32Array(12), [3, 4]), pos), 'E_SHAPE', /x: expected a 3-D \[N, nH, Dh\] or 4-D/],
      [() => nn.rope(f32(new Float32Array(12), [3, 1, 4]), i32([0, 1], [2])), 'E_SHAPE', /positions: expected shape \[3\]/],
      [() => nn.rope(f32(new Float32Array(12), [3, 1, 4]), f32([0, 1, 2], [3])), 'E_DTYPE', /positions: expected dtype i32/],
      [() => nn.rope(f32(new Float32Array(12), [3, 1, 4]), pos, { theta: 0 }), 'E_ARG', /theta: expected a finite number > 0, got 0/],
      [() => nn.rope(f32(new Float32Array(12), [3, 1, 4]), pos, { inverse: 1 as never }), 'E_ARG', /inverse: expected a boolean/],
      [() => nn.attention(q, kv, f32(new Float32Array(2 * 5 * 2 * 2), [2, 5, 2, 2])), 'E_SHAPE', /v: expected shape \[2, 5, 2, 4\]/],
      [() => nn.attention(q, f32(new Float32Array(5 * 2 * 4), [1, 5, 2, 4]), kv), 'E_SHAPE', /k: expected shape \[2, 5, 2, 4\]/],
      [() => nn.attention(f32(new Float32Array(8), [2, 4]), kv, kv), 'E_SHAPE', /q: expected a 4-D tensor/],
      [() => nn.attention(q, kv, kv, { kvLen: 6 }), 'E_ARG', /kvLen: expected an integer ≥ 1 and ≤ 5, got 6/],
      [() => nn.attention(q, kv, kv, { kvLen: 0 }), 'E_ARG', /kvLen: .*got 0/],
      [() => nn.attention(q, kv, kv, { qOffset: 3 }), 'E_ARG', /qOffset \+ Tq = 3 \+ 3 must be ≤ kvLen = 5/],
      [() => nn.attention(q, kv, kv, { qOffset: -1 }), 'E_ARG', /qOffset: expected an integer ≥ 0, got -1/],
      [() => nn.attention(q, kv, kv, { qOffset: 1.5 }), 'E_ARG', /qOffset: expected an integer/],
      [() => nn.attention(q, kv, kv, { scale: NaN }), 'E_ARG', /scale: expected a finite number > 0, got NaN/],
      [() => nn.attentionBackward(q, kv, kv, q, lse, q), 'E_SHAPE', /k: expected S = Tq = 3/],
      [() => nn.attentionBackward(q, qkv3, qkv3, q, f32(new Float32Array(6), [2, 3]), q), 'E_SHAPE', /lse: expected shape \[2, 2, 3\]/],
      [() => nn.attentionBackward(q, qkv3, qkv3, q, lse, f32(new Float32Array(4), [4])), 'E_SHAPE', /dOut: expected shape \[2, 3, 2, 4\]/],
      [() => nn.swiglu(x, f32(new Float32Array(12), [4, 3])), 'E_SHAPE', /up: expected shape \[3, 4\]/],
      [() => nn.swigluBackward(x, x, f32(new Float32Array(4), [4])), 'E_SHAPE', /dOut: expected shape \[3, 4\]/],
      [() => nn.addScaled(x, x, NaN), 'E_ARG', /alpha: expected a finite number, got NaN/],
      [() => nn.addScaled(x, w4), 'E_SHAPE', /b: expected shape \[3, 4\]/],
      [() => nn.addScaled(x, x, 1, { out: w4 }), 'E_SHAPE', /out: expected shape \[3, 4\]/],
      [() => nn.sumSquares(i32([1], [1])), 'E_DTYPE', /x: expected dtype f32/],
      [() => nn.adamw(p4(), p4(), p4(), f32(new Float32Array(3), [3]), opt), 'E_SHAPE', /v: expected shape \[4\]/],
      [() => nn.adamw(x, x, f32(new Float32Array(12), [3, 4]), f32(new Float32Array(12), [3, 4]), opt), 'E_ARG', /param and grad are the same tensor/],
      [() => nn.adamw(p4(), p4(), p4(), p4(), { ...opt, lr: -1 }), 'E_ARG', /p.lr: expected a finite number ≥ 0, got -1/],
      [() => nn.adamw(p4(), p4(), p4(), p4(), { ...opt, beta1: 1 }), 'E_ARG', /p.beta1: expected a number in \[0, 1\), got 1/],
      [() => nn.adamw(p4(), p4(), p4(), p4(), { ...opt, beta2: NaN }), 'E_ARG', /p.beta2: .*got NaN/],
      [() => nn.adamw(p4(), p4(), p4(), p4(), { ...opt, eps: 0 }), 'E_ARG', /p.eps: expected a finite number > 0, got 0/],
      [() => nn.adamw(p4(), p4(), p4(), p4(), { ...opt, step: 0 }), 'E_ARG', /p.step: expected an integer ≥ 1, got 0/],
      [() => nn.adamw(p4(), p4(), p4(), p4(), { ...opt, lr: 10, weightDecay: 0.5 }), 'E_ARG', /lr · p.weightDecay = 5 must be ≤ 1/],
      [() => nn.adamw(p4(), p4(), p4(), p4(), null as never), 'E_ARG', /p: expected \{ lr, beta1/],
      [() => nn.sample(logits, f32([0.5], [1])), 'E_SHAPE', /uniforms: expected shape \[2\]/],
      [() => nn.sample(logits, f32([0.5, 1], [2])), 'E_ARG', /uniforms: expected values in \[0, 1\), got 1 at index 1/],
      [() => nn.sample(logits, f32([-0.1, 0.5], [2])), 'E_ARG', /uniforms: .*index 0/],
      [() => nn.sample(logits, f32([0, 0], [2]), { topP: 0 }), 'E_ARG', /topP: expected a finite number > 0 and ≤ 1, got 0/],
      [() => nn.sample(logits, f32([0, 0], [2]), { topP: 1.5 }), 'E_ARG', /topP: .*got 1.5/],
      [() => nn.sample(logits, f32([0, 0], [2]), { temperature: -1 }), 'E_ARG', /temperature: expected a finite number ≥ 0, got -1/],
      [() => nn.sample(f32([1, 2], [2]), f32([0], [1])), 'E_SHAPE', /logits: expected a 2-D tensor/],
    ];
    for (const [fn, code, msg] of cases) {
      const err = await thrown(fn);
      expect(err, String(fn)).toBeInstanceOf(HotpathsError);
      expect((err as HotpathsError).code, String(fn)).toBe(code);
      expect((err as HotpathsError).message, String(fn)).toMatch(msg);
    }
  });

  it('tensors on two backends give E_DEVICE; a backend without nn kernels gives E_NOT_IMPLEMENTED', async () => {
    const { nn: _drop, ...rest } = ref.backend;
    const bare: Backend = { ...rest, name: 'cpu' };
    const onBare = new Tensor(bare, 'f32', [2, 2], new Float32Array(4));
    expect(await thrown(() => nn.swiglu(onBare, onBare))).toMatchObject({ code: 'E_NOT_IMPLEMENTED', message: /^nn.swiglu\(\): not implemented on the cpu backend/ });
    expect(await thrown(() => nn.swiglu(f32([1, 2, 3, 4], [2, 2]), onBare))).toMatchObject({ code: 'E_DEVICE' });
  });
});

// ---------------------------------------------------------------- every backend against the reference
// The reference computes in f64 and rounds once; the kernels compute in f32 (sums, dot products), so
// they are held to 2e-5 relative plus 2e-6 of the output's largest element (attention's backward:
// 1e-4 / 1e-5: its sums run over T·Dh products). Integer outputs (sample) must match exactly. Each
// kernel runs at a size under the cpu addon's inline threshold (2^16 operations, the calling thread)
// and one over it (the thread pool).

const under = await backendsUnderTest();
for (const u of under) {
  const has = !u.skip && !!u.backend?.nn;
  if (!has) console.warn(`[skip] nn on ${u.name}: ${u.skip ?? `the ${u.name} backend has no nn kernels yet (issue 6)`}`);
  (has ? describe : describe.skip)(`nn on ${u.name} against the reference`, () => {
    const name = u.name;
    const REL = 2e-5, ABS = 2e-6;
    const on = (t: Tensor): Promise<Tensor> => t.to(name);
    const both = async (a: Float32Array, shape: number[]): Promise<[Tensor, Tensor]> => [f32(a, shape), await on(f32(a, shape))];
    const bothI = async (a: Int32Array, shape: number[]): Promise<[Tensor, Tensor]> => [i32(a, shape), await on(i32(a, shape))];

    it('embedding and its backward (repeated ids, ragged D)', async () => {
      const seed = freshSeed(), r = rng(seed);
      for (const [V, D, N] of [[1, 1, 1], [7, 3, 20], [50, 64, 33], [300, 129, 700]] as const) {
        const tag = `seed ${seed} V=${V} D=${D} N=${N}`;
        const [tr, tg] = await both(randomF32(V * D, r), [V, D]);
        const [ir, ig] = await bothI(Int32Array.from({ length: N }, () => Math.floor(r() * r() * V)), [N]);
        expectClose(await read(await nn.embedding(tg, ig)), await read(await nn.embedding(tr, ir)), 0, 0, `${tag} embedding`);
        const [gr, gg] = await both(randomF32(N * D, r), [N, D]);
        const [dr, dg] = await both(randomF32(V * D, r), [V, D]);
        await nn.embeddingBackward(gr, ir, dr);
        await nn.embeddingBackward(gg, ig, dg);
        expectClose(await read(dg), await read(dr), REL, ABS, `${tag} embeddingBackward`);
      }
    });

    it('rmsnorm and its backward (ragged shapes, 3-D input)', async () => {
      const seed = freshSeed(), r = rng(seed);
      for (const shape of [[1, 1], [7, 3], [33, 64], [2, 5, 129], [300, 257]]) {
        const D = shape[shape.length - 1]!, n = shape.reduce((a, b) => a * b, 1);
        const tag = `seed ${seed} ${shape}`;
        const [xr, xg] = await both(randomF32(n, r, 1, 2), shape);
        const [wr, wg] = await both(randomF32(D, r), [D]);
        const a = await nn.rmsnorm(xr, wr, { eps: 1e-5 }), b = await nn.rmsnorm(xg, wg, { eps: 1e-5 });
        expectClose(await read(b.out), await read(a.out), REL, ABS, `${tag} out`);
        expectClose(await read(b.rstd), await read(a.rstd), REL, 0, `${tag} rstd`);
        const [gr, gg] = await both(randomF32(n, r), shape);
        const [dwr, dwg] = await both(randomF32(D, r), [D]);
        const dxa = await nn.rmsnormBackward(gr, xr, wr, a.rstd, dwr);
        const dxb = await nn.rmsnormBackward(gg, xg, wg, await on(a.rstd), dwg);
        // dx = r·w·g − x·c cancels (fully when D = 1): its error is relative to the terms' size, r·w·g
        const termScale = maxAbs(await read(gr)) * maxAbs(await read(wr)) * maxAbs(await read(a.rstd));
        expectClose(await read(dxb), await read(dxa), REL, ABS, `${tag} dx`, termScale);
        expectClose(await read(dwg), await read(dwr), REL, ABS, `${tag} dWeight`);
      }
    });

    it('rope forward, inverse and in place (4-D input, positions up to 4095, negative ones and ±2^31)', async () => {
      const seed = freshSeed(), r = rng(seed);
      for (const [B, T, nH, Dh] of [[1, 1, 1, 2], [2, 7, 3, 16], [3, 33, 4, 64], [1, 5, 2, 6], [2, 70, 8, 64]] as const) {
        const n = B * T * nH * Dh;
        const [xr, xg] = await both(randomF32(n, r), [B, T, nH, Dh]);
        const pos = Int32Array.from({ length: B * T }, () => Math.floor(r() * 4096));
        // a negative position, and ones past the tables (cpu tables up to 2^16; webgpu splits |pos| into 11-bit digits)
        [-37, 1000003, 2147483647, -2147483648].forEach((p, i) => i < pos.length && B * T > 4 && (pos[pos.length - 1 - i] = p));
        const [pr, pg] = await bothI(pos, [B, T]);
        for (const inverse of [false, true]) {
          const tag = `seed ${seed} ${[B, T, nH, Dh]} inverse ${inverse}`;
          const want = await read(await nn.rope(xr, pr, { inverse }));
          expectClose(await read(await nn.rope(xg, pg, { inverse })), want, REL, ABS, tag);
          const xg2 = await on(xr);
          expect(await nn.rope(xg2, pg, { inverse, inPlace: true, theta: 10000 })).toBe(xg2);
          expectClose(await read(xg2), want, REL, ABS, `${tag} in place`);
        }
      }
    });

    it('attention forward and backward (ragged T, Dh 2–64, several heads)', async () => {
      const seed = freshSeed(), r = rng(seed);
      for (const [B, T, nH, Dh] of [[1, 1, 1, 2], [2, 7, 3, 16], [1, 33, 2, 64], [2, 65, 4, 32], [1, 130, 1, 24]] as const) {
        const n = B * T * nH * Dh, shape = [B, T, nH, Dh];
        const tag = `seed ${seed} ${shape}`;
        const [qr, qg] = await both(randomF32(n, r, 1.5), shape);
        const [kr, kg] = await both(randomF32(n, r, 1.5), shape);
        const [vr, vg] = await both(randomF32(n, r), shape);
        const a = await nn.attention(qr, kr, vr), b = await nn.attention(qg, kg, vg);
        expectClose(await read(b.out), await read(a.out), REL, ABS, `${tag} out`);
        expectClose(await read(b.lse), await read(a.lse), REL, ABS, `${tag} lse`);
        const [gr, gg] = await both(randomF32(n, r), shape);
        const da = await nn.attentionBackward(qr, kr, vr, a.out, a.lse, gr);
        const db = await nn.attentionBackward(qg, kg, vg, b.out, b.lse, gg);
        // dq and dk are sums of terms that cancel (exactly 0 where a row sees one key, T = 1): the
        // absolute tolerance scales with the largest gradient of the three, not with dq's own
        const want = { dq: await read(da.dq), dk: await read(da.dk), dv: await read(da.dv) };
        const top = Math.max(maxAbs(want.dq), maxAbs(want.dk), maxAbs(want.dv));
        for (const key of ['dq', 'dk', 'dv'] as const) expectClose(await read(db[key]), want[key], 1e-4, 1e-5, `${tag} ${key}`, top);
      }
    });

    it('attention: the KV-cache decode form equals the rows of full causal attention', async () => {
      await checkDecode(u.backend!, freshSeed(), REL, ABS);
    });

    it('swiglu and its backward, addScaled (in place too), sumSquares', async () => {
      const seed = freshSeed(), r = rng(seed);
      for (const shape of [[1], [7, 3], [33, 100], [4, 5, 67], [301, 300]]) {
        const n = shape.reduce((a, b) => a * b, 1);
        const tag = `seed ${seed} ${shape}`;
        const [gr, gg] = await both(randomF32(n, r, 4), shape);
        const [ur, ug] = await both(randomF32(n, r), shape);
        expectClose(await read(await nn.swiglu(gg, ug)), await read(await nn.swiglu(gr, ur)), REL, ABS, `${tag} swiglu`);
        const [dr, dg] = await both(randomF32(n, r), shape);
        const a = await nn.swigluBackward(gr, ur, dr), b = await nn.swigluBackward(gg, ug, dg);
        expectClose(await read(b.dGate), await read(a.dGate), REL, ABS, `${tag} dGate`);
        expectClose(await read(b.dUp), await read(a.dUp), REL, ABS, `${tag} dUp`);
        const want = await read(await nn.addScaled(gr, ur, -0.37));
        expectClose(await read(await nn.addScaled(gg, ug, -0.37)), want, REL, ABS, `${tag} addScaled`);
        expect(await nn.addScaled(gg, ug, -0.37, { out: ug })).toBe(ug);
        expectClose(await read(ug), want, REL, ABS, `${tag} addScaled into b`);
        const ss = await nn.sumSquares(gr);
        expect(Math.abs((await nn.sumSquares(gg)) - ss), `${tag} sumSquares`).toBeLessThanOrEqual(1e-6 * ss);
      }
    });

    it('adamw: three steps on ragged sizes', async () => {
      const seed = freshSeed(), r = rng(seed);
      for (const n of [1, 7, 1000, 70001]) {
        const [pr, pg] = await both(randomF32(n, r), [n]);
        const [mr, mg] = await both(new Float32Array(n), [n]);
        const [vr, vg] = await both(new Float32Array(n), [n]);
        for (let step = 1; step <= 3; step++) {
          const [grr, grg] = await both(randomF32(n, r, 0.1, 3), [n]);
          const p = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step };
          await nn.adamw(pr, grr, mr, vr, p);
          await nn.adamw(pg, grg, mg, vg, p);
        }
        const tag = `seed ${seed} n=${n}`;
        expectClose(await read(pg), await read(pr), REL, 1e-7, `${tag} param`);
        expectClose(await read(mg), await read(mr), REL, 1e-7, `${tag} m`);
        expectClose(await read(vg), await read(vr), REL, 1e-7, `${tag} v`);
      }
    });

    it('an id outside [0, V): host backends throw E_ARG; device backends write a NaN row and never read past the table (webgpu: Dh > 128 refused)', async () => {
      const table = await on(f32([1, 2, 3, 4, 5, 6], [3, 2]));
      const ids = await on(i32([2, 3, -1, 0], [4]));
      if (name === 'cpu') {
        expect(await thrown(() => nn.embedding(table, ids))).toMatchObject({ code: 'E_ARG' });
        return;
      }
      if (name === 'webgpu') {
        // the attention kernels keep a head row in private arrays of 128
        const big = await on(f32(new Float32Array(130), [1, 1, 1, 130]));
        expect(await thrown(() => nn.attention(big, big, big))).toMatchObject({ code: 'E_NOT_IMPLEMENTED', message: /Dh ≤ 128, got 130/ });
      }
      const out = await read(await nn.embedding(table, ids));
      expect([...out.subarray(0, 2)]).toEqual([5, 6]);
      expect([...out.subarray(2, 6)].every(Number.isNaN)).toBe(true);
      expect([...out.subarray(6)]).toEqual([1, 2]);
      // the scatter ignores them (rows 0 and 2 get their one row each, row 1 nothing)
      const dTable = await on(f32(new Float32Array(6), [3, 2]));
      await nn.embeddingBackward(await on(f32([1, 1, 2, 2, 3, 3, 4, 4], [4, 2])), ids, dTable);
      expect([...(await read(dTable))]).toEqual([4, 4, 0, 0, 1, 1]);
    });

    it('sample: the same ids as the reference for the same uniforms (temperatures, top-p, ties)', async () => {
      const seed = freshSeed(), r = rng(seed);
      for (const [B, V] of [[1, 1], [5, 3], [64, 67], [16, 1000]] as const) {
        const z = randomF32(B * V, r, 3);
        for (let i = 0; i < B * V; i += 7) z[i] = z[0]!; // ties
        const [zr, zg] = await both(z, [B, V]);
        const [ur, ug] = await both(Float32Array.from({ length: B }, () => Math.fround(r()) % 1), [B]);
        for (const [temperature, topP] of [[0, 1], [1, 1], [0.7, 0.9], [1.5, 0.3]] as const) {
          const want = (await (await nn.sample(zr, ur, { temperature, topP })).read()) as Int32Array;
          const got = (await (await nn.sample(zg, ug, { temperature, topP })).read()) as Int32Array;
          expect([...got], `seed ${seed} B=${B} V=${V} T=${temperature} topP=${topP}`).toEqual([...want]);
        }
      }
    });
  });
}
