// Reference log-prob kernels: plain loops, the oracle every backend must match.
// Semantics (../REFERENCE.md "Log-probs, KL, GRPO", docs/API.md "## logprob"):
//   x[t, v]   = z[t, v] / T                         (z: logits, T: temperature; bf16 widened exactly)
//   lse[t]    = logsumexp_v x[t, v]
//   logp[t]   = x[t, y_t] − lse[t]
//   H[t]      = −Σ_v p log p = lse[t] − Σ_v p·x      (p = softmax(x[t, :]))
//   dz[t, v]  = (onehot(y_t)[v] − p[t, v]) · g[t] / T
//   KL with d = ref − logp: k1 = −d, k2 = ½d², k3 = exp(d) − d − 1, k3_clamped = clamp(k3(clamp(d, ±20)), ±10).
//
// The forward makes ONE pass over each row, a chunk of `chunk` vocab entries at a time, as a GPU
// kernel does with one chunk in registers or shared memory: it takes the chunk's own max and its sum of
// exp relative to that max, then merges them into the row's running (max, sum) by rescaling whichever
// side had the smaller max. It never holds a row's probabilities.
//
// Precision: the reference computes in f64 (JS numbers) from the f32 (or exactly widened bf16) logits
// and rounds each output to f32 once. Other backends use f32 with the same online scheme, so they
// agree with this to f32 rounding of the intermediate steps, not bit for bit.

import type { KlEstimator } from '../runtime/backend.js';

/** Vocab entries per chunk of the online logsumexp (a kernel's tile width along V). */
export const DEFAULT_VOCAB_CHUNK = 4096;

/** The d clamp and the result clamp of verl's low-variance KL ('k3_clamped'). */
export const K3_CLAMP_D = 20;
export const K3_CLAMP_KL = 10;

/** Writable f32 or f64 output (tests pass Float64Array to take finite differences in f64). */
export type OutArray = Float32Array | Float64Array;

/** Row-major logits [N, V]: f32 (or f64) values, or bf16 bit patterns (`bf16: true`). */
export interface LogitsView {
  data: ArrayLike<number>;
  bf16: boolean;
}

const widenU32 = new Uint32Array(1);
const widenF32 = new Float32Array(widenU32.buffer);

/** Loads logits[base + c0, base + c1) divided by T into x[0, c1 − c0): the chunk's "registers". */
function loadChunk(logits: LogitsView, base: number, c0: number, c1: number, T: number, x: Float64Array): void {
  const { data } = logits;
  if (logits.bf16) {
    for (let v = c0; v < c1; v++) {
      widenU32[0] = (data[base + v]! & 0xffff) << 16; // bf16 -> f32 is exact: the top 16 bits
      x[v - c0] = widenF32[0]! / T;
    }
  } else {
    for (let v = c0; v < c1; v++) x[v - c0] = data[base + v]! / T;
  }
}

/**
 * logits: [N, V] (f32 or bf16 bits), targets: i32 [N] (each in [0, V)), T > 0
 * -> logp: [N], lse: [N] (of z/T), entropy: [N] or null (not computed).
 * A target outside [0, V) gives logp = NaN (the ops layer rejects it before it gets here).
 */
export function logprobForward(
  logits: LogitsView,
  targets: ArrayLike<number>,
  N: number,
  V: number,
  T: number,
  logp: OutArray,
  lse: OutArray,
  entropy: OutArray | null,
  chunk = DEFAULT_VOCAB_CHUNK,
): void {
  const x = new Float64Array(Math.min(chunk, V)); // one chunk of z/T
  for (let t = 0; t < N; t++) {
    const base = t * V;
    const y = targets[t]!;
    // Running state of the row, all relative to the running max m:
    //   s = Σ exp(x − m),  w = Σ exp(x − m)·(x − m)   (w feeds the entropy: Σ p·x = m + w/s)
    let m = -Infinity;
    let s = 0;
    let w = 0;
    let xTarget = NaN;
    for (let c0 = 0; c0 < V; c0 += chunk) {
      const c1 = Math.min(V, c0 + chunk);
      loadChunk(logits, base, c0, c1, T, x);
      const len = c1 - c0;
      if (y >= c0 && y < c1) xTarget = x[y - c0]!;
      // the chunk's own max, then its sums relative to it
      let mc = -Infinity;
      for (let i = 0; i < len; i++) if (x[i]! > mc || Number.isNaN(x[i]!)) mc = x[i]!;
      let sc = 0;
      let wc = 0;
      if (mc !== -Infinity) {
        for (let i = 0; i < len; i++) {
          const e = Math.exp(x[i]! - mc);
          sc += e;
          if (e !== 0) wc += e * (x[i]! - mc); // p = 0 (x = −inf) adds nothing to Σ p·x
        }
      }
      // merge (m, s, w) with (mc, sc, wc) at the new max M: a side with max m' is scaled by
      // a = exp(m' − M), and its w picks up (m' − M)·s because x − M = (x − m') + (m' − M)
      if (Number.isNaN(mc)) m = s = w = NaN;
      else if (mc > m) {
        if (m !== -Infinity) {
          const a = Math.exp(m - mc);
          w = a * (w + (m - mc) * s);
          s = a * s;
        }
        m = mc;
        s += sc;
        w += wc;
      } else if (mc !== -Infinity) {
        const a = Math.exp(mc - m);
        s += a * sc;
        w += a * (wc + (mc - m) * sc);
      }
    }
    // a row of all −inf has s = 0: lse = −inf, logp = NaN (−inf − −inf), entropy NaN
    const rowLse = s > 0 ? m + Math.log(s) : m === -Infinity ? -Infinity : NaN;
    lse[t] = rowLse;
    logp[t] = xTarget - rowLse;
    // H = lse − Σ p·x = (m + log s) − (m + w/s) = log s − w/s, both terms ≥ 0 (no cancellation at large |x|)
    if (entropy) entropy[t] = s > 0 ? Math.log(s) - w / s : NaN;
  }
}

/**
 * logits: [N, V] (f32 or bf16 bits), targets: i32 [N], lse: [N] from the forward (of z/T), g: [N]
 * (d loss / d logp), T > 0 -> dlogits: [N, V] = (onehot(y) − exp(z/T − lse)) · g / T.
 * Recomputed chunk by chunk from the saved lse; `dlogits` may be `logits.data` itself (in place):
 * each element is read before it is written.
 */
export function logprobBackward(
  logits: LogitsView,
  targets: ArrayLike<number>,
  lse: ArrayLike<number>,
  g: ArrayLike<number>,
  N: number,
  V: number,
  T: number,
  dlogits: OutArray,
  chunk = DEFAULT_VOCAB_CHUNK,
): void {
  const x = new Float64Array(Math.min(chunk, V));
  for (let t = 0; t < N; t++) {
    const base = t * V;
    const y = targets[t]!;
    const rowLse = lse[t]!;
    const scale = g[t]! / T;
    for (let c0 = 0; c0 < V; c0 += chunk) {
      const c1 = Math.min(V, c0 + chunk);
      loadChunk(logits, base, c0, c1, T, x);
      for (let v = c0; v < c1; v++) {
        const p = Math.exp(x[v - c0]! - rowLse);
        dlogits[base + v] = ((v === y ? 1 : 0) - p) * scale;
      }
    }
  }
}

/**
 * logp, ref: [n] -> kl: [n], dlogp: [n] = d kl / d logp, with d = ref − logp.
 *   k1 = −d                      dlogp = 1
 *   k2 = ½ d²                    dlogp = −d
 *   k3 = exp(d) − d − 1          dlogp = 1 − exp(d)
 *   k3_clamped: dc = clamp(d, −20, 20), k = clamp(exp(dc) − dc − 1, −10, 10);
 *               dlogp = 1 − exp(d) where neither clamp is active, else 0 (a clamp is active only
 *               strictly outside its range, as PyTorch's clamp passes the gradient at the bounds).
 * k3 is computed as expm1(d) − d so that small d (the usual case) keeps its precision.
 */
export function klForward(logp: ArrayLike<number>, ref: ArrayLike<number>, n: number, estimator: KlEstimator, kl: OutArray, dlogp: OutArray): void {
  for (let i = 0; i < n; i++) {
    const d = ref[i]! - logp[i]!;
    switch (estimator) {
      case 'k1':
        kl[i] = -d;
        dlogp[i] = 1;
        break;
      case 'k2':
        kl[i] = 0.5 * d * d;
        dlogp[i] = -d;
        break;
      case 'k3':
        kl[i] = Math.expm1(d) - d;
        dlogp[i] = -Math.expm1(d);
        break;
      case 'k3_clamped': {
        const dClamped = d < -K3_CLAMP_D || d > K3_CLAMP_D;
        const dc = Math.min(Math.max(d, -K3_CLAMP_D), K3_CLAMP_D);
        const k = Math.expm1(dc) - dc;
        const kClamped = k < -K3_CLAMP_KL || k > K3_CLAMP_KL;
        kl[i] = Math.min(Math.max(k, -K3_CLAMP_KL), K3_CLAMP_KL);
        dlogp[i] = dClamped || kClamped ? 0 : -Math.expm1(d);
        break;
      }
    }
  }
}
