// logprob: per-token log-probs of chosen tokens from logits (one online pass over the vocab, never a
// full log-softmax), their backward, entropy, and the KL estimators of GRPO. Validates once here, then
// runs on the tensors' backend. Exact semantics: docs/API.md "## logprob".

import { HotpathsError, show } from '../errors.js';
import type { KlEstimator } from '../runtime/backend.js';
import type { Tensor } from '../tensor.js';
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
