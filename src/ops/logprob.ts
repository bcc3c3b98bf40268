// logprob: per-token log-probs of chosen tokens from logits (one online pass over the vocab, never a
// full log-softmax), their backward, entropy, and the KL estimators of GRPO. Validates once here, then
// runs on the tensors' backend. Exact semantics: docs/API.md "## logprob".

import { HotpathsError, show } from '../errors.js';
import type { Backend, GemmKernels, KlEstimator, LogprobKernels } from '../runtime/backend.js';
import { sliceRows, viewAs, type Tensor } from '../tensor.js';
import {
  assertBoolean,
  assertDTypeIn,
  assertNonEmpty,
  assertNumber,
  assertOneOf,
  assertOptions,
  assertRank,
  assertSameDevice,
  assertShapeEquals,
  assertTensor,
  hostValues,
  notImplemented,
} from './validate.js';

export type { KlEstimator } from '../runtime/backend.js';

const KL_ESTIMATORS = ['k1', 'k2', 'k3', 'k3_clamped'] as const;

export interface FromLogitsOptions {
  /** Sampling temperature T > 0: log-probs are of softmax(z / T). Default 1. */
  temperature?: number;
  /** Also return the entropy of softmax(z / T) per row. Default false. */
  entropy?: boolean;
}

export interface FromLogitsResult {
  /** f32 [N]: z[t, y_t]/T − lse[t]. */
  logp: Tensor;
  /** f32 [N]: logsumexp over the vocab of z[t, :]/T (save it for the backward). */
  lse: Tensor;
  /** f32 [N]: −Σ_v p log p, present when asked for. */
  entropy?: Tensor;
}

export interface FromLogitsBackwardOptions {
  /** The forward's temperature (required: lse is of z/T, and a wrong T gives wrong gradients silently). */
  temperature: number;
  /** Write dlogits into `logits` and return it (f32 logits only). Default false. */
  inPlace?: boolean;
}

/**
 * logits: f32|bf16 [N, V], targets: i32 [N] with values in [0, V)
 * -> { logp, lse, entropy? }: f32 [N]. One pass over the logits with a running max and sum over vocab
 * chunks; f32 math (or better) for bf16 input too. −inf logits (banned tokens) get probability 0; a NaN
 * or +inf logit makes its row's outputs NaN.
 */
export async function fromLogits(logits: Tensor, targets: Tensor, opts: FromLogitsOptions = {}): Promise<FromLogitsResult> {
  const op = 'logprob.fromLogits()';
  const [N, V] = checkLogitsAndTargets(op, logits, targets);
  assertOptions(`${op}: options`, opts);
  const temperature = opts.temperature ?? 1;
  assertNumber(`${op}: temperature`, temperature, { min: 0, minExclusive: true });
  const wantEntropy = opts.entropy ?? false;
  assertBoolean(`${op}: entropy`, wantEntropy);
  const kernels = logits.backend.logprob;
  if (!kernels) throw notImplemented(op, logits);
  checkTargetRange(op, targets, logits, V);

  const logp = logits.backend.empty('f32', [N]);
  const lse = logits.backend.empty('f32', [N]);
  const entropy = wantEntropy ? logits.backend.empty('f32', [N]) : null;
  await kernels.fromLogits(logits, targets, temperature, logp, lse, entropy);
  return entropy ? { logp, lse, entropy } : { logp, lse };
}

/**
 * Backward of `fromLogits`' logp: logits, targets as in the forward, lse: f32 [N] from the forward,
 * gLogp: f32 [N] (d loss / d logp) -> dlogits: f32 [N, V] = (onehot(y) − softmax(z/T)) · g / T,
 * recomputed chunk by chunk from lse. With `inPlace` the result is written over `logits` (which must
 * be f32) and `logits` itself is returned.
 */
export async function fromLogitsBackward(logits: Tensor, targets: Tensor, lse: Tensor, gLogp: Tensor, opts: FromLogitsBackwardOptions): Promise<Tensor> {
  const op = 'logprob.fromLogitsBackward()';
  const [N, V] = checkLogitsAndTargets(op, logits, targets);
  for (const [name, t] of [['lse', lse], ['gLogp', gLogp]] as const) {
    assertTensor(`${op}: ${name}`, t);
    assertSameDevice(op, logits, t);
    assertDTypeIn(`${op}: ${name}`, t, ['f32']);
    assertShapeEquals(`${op}: ${name}`, t, [N], `(N) to match logits ${logits.describe()}`);
  }
  if (typeof opts !== 'object' || opts === null) {
    throw new HotpathsError('E_ARG', `${op}: options: expected { temperature } with the forward's temperature, got ${show(opts)}`);
  }
  assertNumber(`${op}: temperature (the forward's)`, opts.temperature, { min: 0, minExclusive: true });
  const inPlace = opts.inPlace ?? false;
  assertBoolean(`${op}: inPlace`, inPlace);
  if (inPlace && logits.dtype !== 'f32') {
    throw new HotpathsError('E_DTYPE', `${op}: inPlace: needs f32 logits (dlogits is f32), got ${logits.describe()}; drop inPlace to get a new tensor`);
  }
  const kernels = logits.backend.logprob;
  if (!kernels) throw notImplemented(op, logits);
  checkTargetRange(op, targets, logits, V);

  const dlogits = inPlace ? logits : logits.backend.empty('f32', [N, V]);
  await kernels.fromLogitsBackward(logits, targets, lse, gLogp, opts.temperature, dlogits);
  return dlogits;
}

/**
 * KL estimators, element-wise with d = ref − logp: logp, ref: f32, same shape -> { kl, dlogp } (f32, that
 * shape; dlogp = d kl / d logp).
 *   'k1' = −d;  'k2' = ½ d²;  'k3' = exp(d) − d − 1 (GRPO's, unbiased, ≥ 0; the default);
 *   'k3_clamped' (verl's low-variance KL): d clamped to [−20, 20], the result to [−10, 10], and
 *   dlogp = 0 where either clamp is active (strictly outside its range).
 */
export async function kl(logp: Tensor, ref: Tensor, estimator: KlEstimator = 'k3'): Promise<{ kl: Tensor; dlogp: Tensor }> {
  const op = 'logprob.kl()';
  assertTensor(`${op}: logp`, logp);
  assertTensor(`${op}: ref`, ref);
  assertSameDevice(op, logp, ref);
  assertDTypeIn(`${op}: logp`, logp, ['f32']);
  assertDTypeIn(`${op}: ref`, ref, ['f32']);
  assertShapeEquals(`${op}: ref`, ref, logp.shape, `to match logp ${logp.describe()}`);
  assertOneOf(`${op}: estimator`, estimator, KL_ESTIMATORS);
  const kernels = logp.backend.logprob;
  if (!kernels) throw notImplemented(op, logp);
  const out = logp.backend.empty('f32', logp.shape);
  const dlogp = logp.backend.empty('f32', logp.shape);
  if (logp.size > 0) await kernels.kl(logp, ref, estimator, out, dlogp);
  return { kl: out, dlogp };
}

/** logits f32|bf16 [N, V] non-empty, targets i32 [N], one backend; returns [N, V]. */
function checkLogitsAndTargets(op: string, logits: Tensor, targets: Tensor): [number, number] {
  assertTensor(`${op}: logits`, logits);
  assertTensor(`${op}: targets`, targets);
  assertSameDevice(op, logits, targets);
  assertDTypeIn(`${op}: logits`, logits, ['f32', 'bf16']);
  assertRank(`${op}: logits`, logits, 2);
  assertNonEmpty(`${op}: logits`, logits);
  assertDTypeIn(`${op}: targets`, targets, ['i32']);
  const [N, V] = logits.shape as [number, number];
  assertShapeEquals(`${op}: targets`, targets, [N], `(N) to match logits ${logits.describe()}`);
  return [N, V];
}

/** Token ids in [0, V), checked where the values are on the host (device kernels give NaN instead). */
function checkTargetRange(op: string, targets: Tensor, logits: Tensor, V: number): void {
  const y = hostValues(targets);
  if (!y) return;
  for (let i = 0; i < y.length; i++) {
    const v = y[i]!;
    if (v < 0 || v >= V) {
      throw new HotpathsError('E_ARG', `${op}: targets: expected token ids in [0, ${V}) (V of logits ${logits.describe()}), got ${v} at index ${i}`);
    }
  }
}

// ---------------------------------------------------------------- from hidden states

export interface FromHiddenOptions {
  /** Sampling temperature T > 0. Default 1. */
  temperature?: number;
  /** Also return the entropy per row. Default false. */
  entropy?: boolean;
  /**
   * Token rows per chunk, a multiple of 64 (default: N/18 rounded down to 64s — a chunk's f32 logits
   * [chunk, V], rounded up to the pool's size class, then stay within 1/16 of the full [N, V] — but at
   * least 512 rows, or all of them, so that each chunk's GEMM stays efficient). Peak extra memory ≈
   * chunk·V·4 bytes.
   */
  chunk?: number;
}

export interface FromHiddenBackwardOptions {
  /** The forward's temperature (required, as for fromLogitsBackward). */
  temperature: number;
  /**
   * Vocabulary entries per chunk, a multiple of 64 (default: the most that keeps the chunk's f32
   * logits [N, chunk] plus a second dHidden [N, H] within 1/16 of the full [N, V], at least 64).
   */
  vocabChunk?: number;
}

/**
 * Log-probs from hidden states and the LM head, never holding the [N, V] logits: hidden f32 [N, H],
 * headWeight f32 [V, H], targets i32 [N] -> { logp, lse, entropy? } f32 [N], equal to
 * fromLogits(hidden · headWeightᵀ). Token rows go chunk by chunk: the chunk's logits come from
 * gemm.matmul and are consumed by the fromLogits kernel at once.
 */
export async function fromHidden(hidden: Tensor, headWeight: Tensor, targets: Tensor, opts: FromHiddenOptions = {}): Promise<FromLogitsResult> {
  const op = 'logprob.fromHidden()';
  const { N, H, V } = checkHidden(op, hidden, headWeight, targets);
  assertOptions(`${op}: options`, opts);
  const temperature = opts.temperature ?? 1;
  assertNumber(`${op}: temperature`, temperature, { min: 0, minExclusive: true });
  const wantEntropy = opts.entropy ?? false;
  assertBoolean(`${op}: entropy`, wantEntropy);
  const chunk = opts.chunk ?? defaultTokenChunk(N);
  assertNumber(`${op}: chunk`, chunk, { min: 64, integer: true });
  if (chunk % 64 !== 0) throw new HotpathsError('E_ARG', `${op}: chunk: expected a multiple of 64 (row views must start 256-byte aligned), got ${chunk}`);
  const backend = hidden.backend;
  const { logprob: lk, gemm: gk } = kernelsFor(op, backend);
  const logp = backend.empty('f32', [N]);
  const lse = backend.empty('f32', [N]);
  const entropy = wantEntropy ? backend.empty('f32', [N]) : null;
  const logits = backend.empty('f32', [Math.min(chunk, N), V]);
  try {
    for (let r0 = 0; r0 < N; r0 += chunk) {
      const r1 = Math.min(N, r0 + chunk);
      const z = r1 - r0 === logits.shape[0] ? logits : sliceRows(logits, 0, r1 - r0);
      await gk.matmul(sliceRows(hidden, r0, r1), headWeight, false, true, null, z); // [rows, V] = h · Wᵀ
      await lk.fromLogits(z, sliceRows(targets, r0, r1), temperature, sliceRows(logp, r0, r1), sliceRows(lse, r0, r1), entropy ? sliceRows(entropy, r0, r1) : null);
    }
  } finally {
    logits.dispose();
  }
  return entropy ? { logp, lse, entropy } : { logp, lse };
}

/**
 * The backward of fromHidden: gLogp f32 [N] (d loss / d logp) and the forward's lse -> dHidden f32
 * [N, H] and dHeadWeight f32 [V, H], never holding [N, V]: vocabulary chunk by chunk, the chunk's
 * logits z = hidden · W[v0:v1]ᵀ are recomputed, turned into dz = (onehot − softmax)·g/T in place,
 * then dW[v0:v1] = dzᵀ · hidden (written straight into its rows) and dHidden += dz · W[v0:v1].
 * The targets are read to the host once (to shift them into each chunk's columns).
 */
export async function fromHiddenBackward(hidden: Tensor, headWeight: Tensor, targets: Tensor, lse: Tensor, gLogp: Tensor, opts: FromHiddenBackwardOptions): Promise<{ dHidden: Tensor; dHeadWeight: Tensor }> {
  const op = 'logprob.fromHiddenBackward()';
  const { N, H, V } = checkHidden(op, hidden, headWeight, targets);
  assertOptions(`${op}: options`, opts);
  for (const [name, t] of [['lse', lse], ['gLogp', gLogp]] as const) {
    assertTensor(`${op}: ${name}`, t);
    assertSameDevice(op, hidden, t);
    assertDTypeIn(`${op}: ${name}`, t, ['f32']);
    assertShapeEquals(`${op}: ${name}`, t, [N], `([N]) to match hidden ${hidden.describe()}`);
  }
  if (typeof opts !== 'object' || opts === null) throw new HotpathsError('E_ARG', `${op}: options: expected { temperature }, got ${show(opts)}`);
  assertNumber(`${op}: temperature (the forward's)`, opts.temperature, { min: 0, minExclusive: true });
  // the chunk's logits [N, vocabChunk] and the second dHidden [N, H], each rounded up to its size
  // class (≤ 12.5% more), within 1/16 of [N, V]
  const vocabChunk = opts.vocabChunk ?? Math.max(64, Math.floor((V / 16 / 1.125 - H) / 64) * 64);
  assertNumber(`${op}: vocabChunk`, vocabChunk, { min: 64, integer: true });
  if (vocabChunk % 64 !== 0) throw new HotpathsError('E_ARG', `${op}: vocabChunk: expected a multiple of 64, got ${vocabChunk}`);
  const backend = hidden.backend;
  const { logprob: lk, gemm: gk } = kernelsFor(op, backend);
  const y = Int32Array.from((await targets.read()) as Int32Array);
  const dW = backend.empty('f32', [V, H]);
  // dHidden accumulates over the chunks; WebGPU cannot read and write one buffer in a dispatch, so
  // the running sum ping-pongs between two [N, H] buffers (c = one, out = the other)
  let dH = backend.empty('f32', [N, H]);
  let dHNext = backend.empty('f32', [N, H]);
  const z = backend.empty('f32', [N, Math.min(vocabChunk, V)]);
  const shifted = new Int32Array(N);
  let first = true;
  try {
    for (let v0 = 0; v0 < V; v0 += vocabChunk) {
      const v1 = Math.min(V, v0 + vocabChunk);
      const cols = v1 - v0;
      // the last, narrower chunk reuses the front of z's storage as [N, cols] (no second buffer)
      const zc = cols === z.shape[1] ? z : viewAs(sliceRows(viewAs(z, [z.size, 1]), 0, N * cols), [N, cols]);
      try {
        const Wc = sliceRows(headWeight, v0, v1); // [cols, H]
        await gk.matmul(hidden, Wc, false, true, null, zc); // [N, cols] = h · W[v0:v1]ᵀ
        for (let t = 0; t < N; t++) shifted[t] = y[t]! - v0; // outside [0, cols): no onehot in this chunk
        const yc = backend.fromHost(shifted, 'i32', [N]);
        try {
          await lk.fromLogitsBackward(zc, yc, lse, gLogp, opts.temperature, zc);
        } finally {
          yc.dispose();
        }
        await gk.matmul(zc, hidden, true, false, null, sliceRows(dW, v0, v1)); // [cols, H] = dzᵀ · h
        await gk.matmul(zc, Wc, false, false, first ? null : dH, dHNext); // [N, H] (+)= dz · W[v0:v1]
        [dH, dHNext] = [dHNext, dH];
        first = false;
      } finally {
        if (zc !== z) zc.dispose(); // a view: releases nothing
      }
    }
  } finally {
    z.dispose();
    dHNext.dispose();
  }
  return { dHidden: dH, dHeadWeight: dW };
}

/**
 * Token rows per chunk of the from-hidden ops when the caller gives none: N/18 rows keeps a chunk's
 * logits, rounded up to the pools' size class (≤ 12.5% more), within 1/16 of [N, V]; at least 512
 * rows (or all) so that the GEMM of a chunk stays efficient when N is small. A multiple of 64.
 */
export function defaultTokenChunk(N: number): number {
  return Math.max(64, Math.floor(N / 18 / 64) * 64, Math.min(512, Math.ceil(N / 64) * 64));
}

/** The shared checks of the from-hidden ops (also grpo.fusedLossFromHidden's single pass). */
export function checkHidden(op: string, hidden: Tensor, headWeight: Tensor, targets: Tensor): { N: number; H: number; V: number } {
  assertTensor(`${op}: hidden`, hidden);
  assertTensor(`${op}: headWeight`, headWeight);
  assertTensor(`${op}: targets`, targets);
  assertSameDevice(op, hidden, headWeight, targets);
  assertDTypeIn(`${op}: hidden`, hidden, ['f32']);
  assertDTypeIn(`${op}: headWeight`, headWeight, ['f32']);
  assertDTypeIn(`${op}: targets`, targets, ['i32']);
  assertRank(`${op}: hidden`, hidden, 2);
  assertRank(`${op}: headWeight`, headWeight, 2);
  assertNonEmpty(`${op}: hidden`, hidden);
  assertNonEmpty(`${op}: headWeight`, headWeight);
  const [N, H] = hidden.shape as [number, number];
  const V = headWeight.shape[0]!;
  assertShapeEquals(`${op}: headWeight`, headWeight, [V, H], `([V, H]) to match hidden ${hidden.describe()}`);
  assertShapeEquals(`${op}: targets`, targets, [N], `([N]) to match hidden ${hidden.describe()}`);
  const y = hostValues(targets);
  if (y) {
    for (let i = 0; i < N; i++) {
      if (!(y[i]! >= 0 && y[i]! < V)) throw new HotpathsError('E_ARG', `${op}: targets[${i}] = ${y[i]} is outside [0, V = ${V})`);
    }
  }
  return { N, H, V };
}

function kernelsFor(op: string, backend: Backend): { logprob: LogprobKernels; gemm: GemmKernels } {
  if (!backend.logprob) throw new HotpathsError('E_NOT_IMPLEMENTED', `${op}: the ${backend.name} backend has no logprob kernels yet`);
  if (!backend.gemm) throw new HotpathsError('E_NOT_IMPLEMENTED', `${op}: the ${backend.name} backend has no GEMM kernels yet`);
  return { logprob: backend.logprob, gemm: backend.gemm };
}
