// Reference GRPO kernels: group advantages and the clipped policy loss with its gradient. Plain loops
// in f64 (the oracle); outputs rounded to f32 once where they are tensors.
// Semantics (../REFERENCE.md "Log-probs, KL, GRPO", docs/API.md "## grpo"):
//   advantages: A_i = (r_i − mean_g(r)) / (std + eps), std the unbiased std of the group ('group'), of
//               the whole batch ('batch'), or no division ('none', Dr. GRPO). A group whose rewards are
//               all equal gets exactly 0.
//   loss, per masked token (b, t):
//     ρ  = exp(logp − oldLogp)            (level 'token')
//        = exp(mean over b's masked tokens of (logp − oldLogp))   (level 'sequence', GSPO; one ρ per b)
//     ρ ← min(ρ, δ)                       (two-sided clip, when δ is given)
//     l  = −min(ρ·A_b, clip(ρ, 1 − εlow, 1 + εhigh)·A_b) + β·k3(refLogp − logp)
//   loss = Σ_{b,t} w_{b,t} · l_{b,t} with the aggregation's weight w for masked tokens (0 elsewhere):
//     grpo     w = 1 / (n_b · B')     n_b = masked tokens of b, B' = sequences with n_b > 0
//     bnpo     w = 1 / Σ_b n_b
//     dr_grpo  w = 1 / (B · maxLen)
//     dapo     w = 1 / globalTokens   (default Σ_b n_b)
//   A token is "clipped" when the clip zeroes its policy gradient: (A > 0 and ρ > 1 + εhigh) or
//   (A < 0 and ρ < 1 − εlow), with ρ after the δ cap. Then d l / d ρ = 0; otherwise it is −A (at a
//   tie of the two terms both have this derivative). The δ cap, where active (ρ > δ), zeroes dρ.

import type { AdvantageScale, GrpoLossParams, GrpoLossResult } from '../runtime/backend.js';
import { f32ToBf16Bits } from '../dtype.js';
import { logprobBackward, logprobForward, type LogitsView, type OutArray } from './logprob.js';

/**
 * rewards: [B] -> out: [B], groups of `G` consecutive rewards (B % G == 0).
 * 'group' needs G ≥ 2 and 'batch' needs B ≥ 2 (unbiased std); the ops layer checks both.
 */
export function grpoAdvantages(rewards: ArrayLike<number>, B: number, G: number, scale: AdvantageScale, eps: number, out: OutArray): void {
  let batchStd = NaN;
  if (scale === 'batch') {
    let sum = 0;
    for (let i = 0; i < B; i++) sum += rewards[i]!;
    const mean = sum / B;
    let ss = 0;
    for (let i = 0; i < B; i++) ss += (rewards[i]! - mean) ** 2;
    batchStd = Math.sqrt(ss / (B - 1));
  }
  for (let g0 = 0; g0 < B; g0 += G) {
    let sum = 0;
    let allEqual = true;
    for (let i = g0; i < g0 + G; i++) {
      sum += rewards[i]!;
      if (rewards[i] !== rewards[g0]) allEqual = false;
    }
    if (allEqual) {
      // exactly 0: std + eps is 0 when eps = 0, and an f32 mean (other backends) can miss the
      // common value by rounding
      for (let i = g0; i < g0 + G; i++) out[i] = 0;
      continue;
    }
    const mean = sum / G;
    let divisor = 1;
    if (scale === 'group') {
      let ss = 0;
      for (let i = g0; i < g0 + G; i++) ss += (rewards[i]! - mean) ** 2;
      divisor = Math.sqrt(ss / (G - 1)) + eps;
    } else if (scale === 'batch') {
      divisor = batchStd + eps;
    }
    for (let i = g0; i < g0 + G; i++) out[i] = (rewards[i]! - mean) / divisor;
  }
}

/**
 * Masked tokens per sequence n [B], their total, and each sequence's aggregation weight w_b (the
 * weight of every masked token of b): grpo 1/(n_b·B'), bnpo 1/Σn, dr_grpo 1/(B·maxLen), dapo
 * 1/globalTokens (default Σn); 0 where the divisor is 0.
 */
export function aggregationWeights(mask: ArrayLike<number>, B: number, T: number, p: Pick<GrpoLossParams, 'agg' | 'maxLen' | 'globalTokens'>): { n: Float64Array; totalTokens: number; weights: Float64Array } {
  const n = new Float64Array(B);
  let totalTokens = 0;
  let nonEmpty = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) if (mask[b * T + t] !== 0) n[b]!++;
    totalTokens += n[b]!;
    if (n[b]! > 0) nonEmpty++;
  }
  const globalTokens = p.globalTokens ?? totalTokens;
  const weights = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    switch (p.agg) {
      case 'grpo':
        weights[b] = n[b]! > 0 ? 1 / (n[b]! * nonEmpty) : 0;
        break;
      case 'bnpo':
        weights[b] = totalTokens > 0 ? 1 / totalTokens : 0;
        break;
      case 'dr_grpo':
        weights[b] = 1 / (B * p.maxLen);
        break;
      case 'dapo':
        weights[b] = globalTokens > 0 ? 1 / globalTokens : 0;
        break;
    }
  }
  return { n, totalTokens, weights };
}

/** One masked token's loss term and its parts (unweighted). */
export interface TokenLoss {
  /** −min(ρA, clip(ρ)A) + β·k3 */
  l: number;
  /** d (policy term) / d logRatio (0 where the clip or the δ cap acts) */
  gPolicy: number;
  /** d (β·k3) / d logp */
  gKl: number;
  clipped: boolean;
  /** ρ after the δ cap */
  rho: number;
  /** k3(ref − logp), 0 without ref */
  k3: number;
}

/** The per-token rules of the loss (see the header), for a token with log-ratio `logRatio`. */
export function tokenLoss(logRatio: number, logp: number, ref: number | null, A: number, p: Pick<GrpoLossParams, 'epsLow' | 'epsHigh' | 'delta' | 'beta'>): TokenLoss {
  const lo = 1 - p.epsLow;
  const hi = 1 + p.epsHigh;
  let rho = Math.exp(logRatio);
  let dRho = rho; // d ρ / d logRatio
  if (p.delta !== null && rho > p.delta) {
    rho = p.delta;
    dRho = 0;
  }
  const clipped = (A > 0 && rho > hi) || (A < 0 && rho < lo);
  const rhoClipped = Math.min(Math.max(rho, lo), hi);
  let l = -Math.min(rho * A, rhoClipped * A);
  const gPolicy = clipped ? 0 : -A * dRho;
  let gKl = 0;
  let k3 = 0;
  if (ref !== null) {
    const d = ref - logp;
    k3 = Math.expm1(d) - d;
    if (p.beta !== 0) {
      l += p.beta * k3;
      gKl = -p.beta * Math.expm1(d);
    }
  }
  return { l, gPolicy, gKl, clipped, rho, k3 };
}

/** The loss's inputs as host arrays, all [B, T] row-major except advantages [B]. */
export interface GrpoLossArrays {
  logp: ArrayLike<number>;
  oldLogp: ArrayLike<number>;
  /** null: no reference model (β must then be 0). */
  refLogp: ArrayLike<number> | null;
  advantages: ArrayLike<number>;
  /** 1 (or any non-zero) for completion tokens, 0 for prompt/padding. */
  mask: ArrayLike<number>;
}

/**
 * logp, oldLogp, refLogp, mask: [B, T]; advantages: [B] -> dlogp: [B, T] = d loss / d logp, and the
 * loss with its stats. Masked-out positions are never read (padding may hold anything) and get
 * dlogp = 0. Stats are means over the masked tokens (0 when there are none): clipFraction of clipped
 * tokens, meanKl of k3 (computed whenever refLogp is given, even with β = 0), meanRatio of ρ as used
 * in the loss (after the δ cap; at level 'sequence' each token carries its sequence's ρ).
 */
export function grpoLoss(a: GrpoLossArrays, B: number, T: number, p: GrpoLossParams, dlogp: OutArray): GrpoLossResult {
  const { logp, oldLogp, refLogp, advantages, mask } = a;
  const { n, totalTokens, weights } = aggregationWeights(mask, B, T, p);
  const weight = (b: number): number => weights[b]!;
  let loss = 0;
  let clippedTokens = 0;
  let klSum = 0;
  let ratioSum = 0;
  const rowGrad = new Float64Array(T); // one row of dlogp in f64, rounded once when written out
  for (let b = 0; b < B; b++) {
    const row = b * T;
    const A = advantages[b]!;
    const w = weight(b);
    // GSPO: one log-ratio per sequence, the mean over its masked tokens
    let seqLogRatio = 0;
    if (p.level === 'sequence' && n[b]! > 0) {
      for (let t = 0; t < T; t++) if (mask[row + t] !== 0) seqLogRatio += logp[row + t]! - oldLogp[row + t]!;
      seqLogRatio /= n[b]!;
    }
    let seqGrad = 0; // sequence level: d loss / d seqLogRatio, summed over b's tokens
    for (let t = 0; t < T; t++) {
      const i = row + t;
      rowGrad[t] = 0;
      if (mask[i] === 0) continue;
      const logRatio = p.level === 'token' ? logp[i]! - oldLogp[i]! : seqLogRatio;
      const k = tokenLoss(logRatio, logp[i]!, refLogp ? refLogp[i]! : null, A, p);
      klSum += k.k3;
      loss += w * k.l;
      if (k.clipped) clippedTokens++;
      ratioSum += k.rho;
      if (p.level === 'token') rowGrad[t] = w * (k.gPolicy + k.gKl);
      else {
        seqGrad += w * k.gPolicy;
        rowGrad[t] = w * k.gKl;
      }
    }
    if (p.level === 'sequence' && n[b]! > 0) {
      // d seqLogRatio / d logp[b, t] = 1 / n_b for each masked token
      for (let t = 0; t < T; t++) if (mask[row + t] !== 0) rowGrad[t] = rowGrad[t]! + seqGrad / n[b]!;
    }
    for (let t = 0; t < T; t++) dlogp[row + t] = rowGrad[t]!;
  }
  const perToken = (x: number): number => (totalTokens > 0 ? x / totalTokens : 0);
  return {
    loss,
    clipFraction: perToken(clippedTokens),
    meanKl: refLogp ? perToken(klSum) : 0,
    meanRatio: perToken(ratioSum),
  };
}

/** The fused kernel's inputs as host arrays (GrpoFusedArgs in src/runtime/backend.ts). */
export interface GrpoFusedArrays {
  /** [N, V]: f32 values or bf16 bit patterns */
  logits: LogitsView;
  targets: ArrayLike<number>;
  oldLogp: ArrayLike<number>;
  refLogp: ArrayLike<number> | null;
  advantages: ArrayLike<number>;
  mask: ArrayLike<number>;
  seqWeight: ArrayLike<number>;
}

/**
 * Fused token-level GRPO, row by row (the oracle of GrpoKernels.fusedTokenLoss): logits [N, V] ->
 * logp [N], dlogits [N, V] (f32 values, or bf16 bits when `dlogitsBf16`; may be the logits array),
 * stats [N, 4] = (w·l, clipped, k3, ρ). A masked-out row is never read: logp 0, dlogits 0, stats 0.
 * Each row: logprobForward, then tokenLoss with log-ratio logp − oldLogp, dlogp = w_b·(gPolicy + gKl),
 * then logprobBackward with g = dlogp.
 */
export function grpoFusedTokenLoss(
  a: GrpoFusedArrays, N: number, V: number, T: number, temperature: number,
  p: Pick<GrpoLossParams, 'epsLow' | 'epsHigh' | 'delta' | 'beta'>,
  logp: OutArray, dlogits: OutArray | Uint16Array, dlogitsBf16: boolean, stats: OutArray,
): void {
  const lp = new Float64Array(1), lse = new Float64Array(1);
  const row = new Float64Array(V);
  for (let t = 0; t < N; t++) {
    const base = t * V;
    if (a.mask[t] === 0) {
      logp[t] = 0;
      dlogits.fill(0, base, base + V);
      stats.fill(0, 4 * t, 4 * t + 4);
      continue;
    }
    const one: LogitsView = { data: (a.logits.data as Float32Array | Uint16Array).subarray(base, base + V), bf16: a.logits.bf16 };
    const y = [a.targets[t]!];
    logprobForward(one, y, 1, V, temperature, lp, lse, null);
    const b = Math.floor(t / T);
    const w = a.seqWeight[b]!;
    const k = tokenLoss(lp[0]! - a.oldLogp[t]!, lp[0]!, a.refLogp ? a.refLogp[t]! : null, a.advantages[b]!, p);
    const g = w * (k.gPolicy + k.gKl);
    logprobBackward(one, y, lse, [g], 1, V, temperature, row);
    for (let v = 0; v < V; v++) dlogits[base + v] = dlogitsBf16 ? f32ToBf16Bits(row[v]!) : row[v]!;
    logp[t] = lp[0]!;
    stats[4 * t] = w * k.l;
    stats[4 * t + 1] = k.clipped ? 1 : 0;
    stats[4 * t + 2] = k.k3;
    stats[4 * t + 3] = k.rho;
  }
}
