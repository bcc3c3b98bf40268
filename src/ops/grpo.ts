// grpo: group advantages and the clipped policy loss (GRPO, DAPO, Dr. GRPO, GSPO variants) with its
// gradient w.r.t. the policy's log-probs. Validates once here, then runs on the tensors' backend.
// Exact semantics: docs/API.md "## grpo".

import { HotpathsError, show } from '../errors.js';
import { grpoFusedWorkBytes, type AdvantageScale, type GrpoAgg, type GrpoLevel, type GrpoLossParams, type GrpoLossStats } from '../runtime/backend.js';
import { aggregationWeights } from '../reference/grpo.js';
import { sliceRows, viewAs, type Tensor } from '../tensor.js';
import { checkHidden, defaultTokenChunk, fromHidden, fromHiddenBackward } from './logprob.js';
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
  MAX_ELEMENTS,
  notImplemented,
} from './validate.js';

export type { AdvantageScale, GrpoAgg, GrpoLevel, GrpoLossStats } from '../runtime/backend.js';

const SCALES = ['group', 'batch', 'none'] as const;
const LEVELS = ['token', 'sequence'] as const;
const AGGS = ['grpo', 'bnpo', 'dr_grpo', 'dapo'] as const;

export interface AdvantagesOptions {
  /** Divide the centred rewards by the unbiased std of the group (default), of the batch, or not ('none', Dr. GRPO). */
  scale?: AdvantageScale;
  /** Added to the std before dividing. Default 1e-4 (TRL; verl uses 1e-6). */
  eps?: number;
}

/**
 * rewards: f32 [B], groups of `groupSize` consecutive completions of one prompt (groupSize divides B)
 * -> advantages: f32 [B], A_i = (r_i − mean of i's group) / (std + eps), std the unbiased std of the
 * group ('group'), of all B rewards ('batch'), or no division ('none'). A group whose rewards are all
 * equal gets exactly 0. NaN or ±inf in rewards throws E_NONFINITE (the rewards are read to check:
 * a device sync on GPU backends).
 */
export async function advantages(rewards: Tensor, groupSize: number, opts: AdvantagesOptions = {}): Promise<Tensor> {
  const op = 'grpo.advantages()';
  assertTensor(`${op}: rewards`, rewards);
  assertDTypeIn(`${op}: rewards`, rewards, ['f32']);
  assertRank(`${op}: rewards`, rewards, 1);
  assertNonEmpty(`${op}: rewards`, rewards);
  const B = rewards.shape[0]!;
  assertNumber(`${op}: groupSize`, groupSize, { min: 1, integer: true });
  if (B % groupSize !== 0) {
    throw new HotpathsError('E_SHAPE', `${op}: groupSize: expected a divisor of the batch size B = ${B} (rewards ${rewards.describe()}), got ${groupSize}`);
  }
  assertOptions(`${op}: options`, opts);
  const scale = opts.scale ?? 'group';
  assertOneOf(`${op}: scale`, scale, SCALES);
  const eps = opts.eps ?? 1e-4;
  assertNumber(`${op}: eps`, eps, { min: 0 });
  if (scale === 'group' && groupSize < 2) {
    throw new HotpathsError('E_ARG', `${op}: groupSize: expected at least 2 with scale 'group' (the unbiased std of one reward is undefined), got ${groupSize}; use scale 'batch' or 'none'`);
  }
  if (scale === 'batch' && B < 2) {
    throw new HotpathsError('E_ARG', `${op}: rewards: expected at least 2 rewards with scale 'batch' (the unbiased std of one reward is undefined), got ${rewards.describe()}`);
  }
  const kernels = rewards.backend.grpo;
  if (!kernels) throw notImplemented(op, rewards);
  const r = hostValues(rewards) ?? ((await rewards.read()) as Float32Array);
  for (let i = 0; i < B; i++) {
    if (!Number.isFinite(r[i]!)) throw new HotpathsError('E_NONFINITE', `${op}: rewards: expected finite values, got ${r[i]} at index ${i}`);
  }
  const out = rewards.backend.empty('f32', [B]);
  await kernels.advantages(rewards, groupSize, scale, eps, out);
  return out;
}

export interface LossArgs {
  /** f32 [B, T]: the policy's log-probs of the sampled tokens (the loss is differentiated w.r.t. these). */
  logp: Tensor;
  /** f32 [B, T]: log-probs under the policy that sampled (ρ = exp(logp − oldLogp)). */
  oldLogp: Tensor;
  /** f32 [B, T]: the reference model's log-probs; may be absent when beta = 0. */
  refLogp?: Tensor | null;
  /** f32 [B]: one advantage per sequence. */
  advantages: Tensor;
  /** f32 (0 or 1) or u8 (0 or 1) [B, T]: 1 on completion tokens. */
  mask: Tensor;
  /** Lower clip: ρ ≥ 1 − epsLow. Default 0.2. */
  epsLow?: number;
  /** Upper clip: ρ ≤ 1 + epsHigh. Default 0.2 (DAPO's clip-higher: 0.28). */
  epsHigh?: number;
  /** Two-sided clip: ρ ← min(ρ, delta) first. Default off. */
  delta?: number | null;
  /** Weight of the k3 KL to the reference model; 0 skips it. Default 0.04. */
  beta?: number;
  /** 'token' (default): ρ per token; 'sequence' (GSPO): ρ from the mean log-ratio over each sequence's masked tokens. */
  level?: GrpoLevel;
  /** How token losses are combined; default 'grpo'. */
  agg?: GrpoAgg;
  /** dr_grpo's divisor is B · maxLen; default T. Ignored by the other aggregations. */
  maxLen?: number;
  /** dapo's divisor (tokens in the whole global batch, across ranks); default Σ mask. Ignored by the others. */
  globalTokens?: number;
}

export interface LossResult {
  /** The aggregated loss. */
  loss: number;
  /** f32 [B, T]: d loss / d logp (0 where the mask is 0). */
  dlogp: Tensor;
  stats: GrpoLossStats;
}

/**
 * The GRPO policy loss and its gradient. Per masked token, with ρ = exp(logp − oldLogp) (or GSPO's
 * per-sequence ratio), ρ ← min(ρ, delta) when delta is given:
 *   l = −min(ρ·A, clip(ρ, 1 − epsLow, 1 + epsHigh)·A) + beta · k3(refLogp − logp)
 * aggregated over the mask m (n_b = Σ_t m[b, t]):
 *   'grpo'    mean over sequences of (Σ_t l·m / n_b); a sequence with an empty mask is left out of
 *             the mean (it has no tokens to average), so it neither adds 0 nor counts in B;
 *   'bnpo'    Σ l·m / Σ m;   'dr_grpo'  Σ l·m / (B · maxLen);   'dapo'  Σ l·m / globalTokens.
 * An empty-mask sequence contributes 0 everywhere, and an all-empty mask gives loss 0 (never NaN).
 * Masked-out positions are never read (padding may hold anything); their dlogp is 0.
 * stats: means over the masked tokens (0 without any): clipFraction (tokens whose policy gradient the
 * ε clip zeroes: A > 0 and ρ > 1 + epsHigh, or A < 0 and ρ < 1 − epsLow), meanKl (k3, whenever
 * refLogp is given, even with beta = 0), meanRatio (ρ after the delta cap).
 */
export async function loss(args: LossArgs): Promise<LossResult> {
  const op = 'grpo.loss()';
  if (typeof args !== 'object' || args === null) throw new HotpathsError('E_ARG', `${op}: expected { logp, oldLogp, advantages, mask, … }, got ${show(args)}`);
  const { logp } = args;
  assertTensor(`${op}: logp`, logp);
  assertDTypeIn(`${op}: logp`, logp, ['f32']);
  assertRank(`${op}: logp`, logp, 2);
  assertNonEmpty(`${op}: logp`, logp);
  const [B, T] = logp.shape as [number, number];
  const { oldLogp, refLogp, advantages: adv, mask, params } = checkLossInputs(op, args, logp, B, T, `to match logp ${logp.describe()}`);
  return runLoss(op, { logp, oldLogp, refLogp, advantages: adv, mask }, params);
}

/** The loss kernel on checked inputs (logp [B, T] and the rest as checkLossInputs returns them). */
async function runLoss(op: string, x: { logp: Tensor; oldLogp: Tensor; refLogp: Tensor | null; advantages: Tensor; mask: Tensor }, params: GrpoLossParams): Promise<LossResult> {
  const kernels = x.logp.backend.grpo;
  if (!kernels) throw notImplemented(op, x.logp);
  const dlogp = x.logp.backend.empty('f32', x.logp.shape);
  const r = await kernels.loss(x, params, dlogp);
  return { loss: r.loss, dlogp, stats: { clipFraction: r.clipFraction, meanKl: r.meanKl, meanRatio: r.meanRatio } };
}

/**
 * Checks everything but logp: oldLogp/refLogp/mask [B, T], advantages [B], on `anchor`'s device, and
 * the options; reads a host mask to check it holds only 0 and 1. Returns the tensors and the resolved
 * parameters.
 */
function checkLossInputs(op: string, args: Omit<LossArgs, 'logp'>, anchor: Tensor, B: number, T: number, like: string) {
  const { oldLogp, advantages: adv, mask } = args;
  const refLogp = args.refLogp ?? null;
  for (const [name, t] of [['oldLogp', oldLogp], ['refLogp', refLogp]] as const) {
    if (name === 'refLogp' && t === null) continue;
    assertTensor(`${op}: ${name}`, t);
    assertSameDevice(op, anchor, t);
    assertDTypeIn(`${op}: ${name}`, t, ['f32']);
    assertShapeEquals(`${op}: ${name}`, t, [B, T], like);
  }
  assertTensor(`${op}: advantages`, adv);
  assertSameDevice(op, anchor, adv);
  assertDTypeIn(`${op}: advantages`, adv, ['f32']);
  assertShapeEquals(`${op}: advantages`, adv, [B], `([B]) ${like}`);
  assertTensor(`${op}: mask`, mask);
  assertSameDevice(op, anchor, mask);
  assertDTypeIn(`${op}: mask`, mask, ['f32', 'u8']);
  assertShapeEquals(`${op}: mask`, mask, [B, T], like);

  const epsLow = args.epsLow ?? 0.2;
  assertNumber(`${op}: epsLow`, epsLow, { min: 0, max: 1 });
  const epsHigh = args.epsHigh ?? 0.2;
  assertNumber(`${op}: epsHigh`, epsHigh, { min: 0 });
  const delta = args.delta ?? null;
  if (delta !== null) assertNumber(`${op}: delta`, delta, { min: 0, minExclusive: true });
  const beta = args.beta ?? 0.04;
  assertNumber(`${op}: beta`, beta, { min: 0 });
  if (beta > 0 && refLogp === null) {
    throw new HotpathsError('E_ARG', `${op}: refLogp: expected a tensor ${like} since beta = ${beta} > 0, got ${show(args.refLogp)}; pass refLogp, or beta: 0 to skip the KL term`);
  }
  const level = args.level ?? 'token';
  assertOneOf(`${op}: level`, level, LEVELS);
  const agg = args.agg ?? 'grpo';
  assertOneOf(`${op}: agg`, agg, AGGS);
  const maxLen = args.maxLen ?? T;
  assertNumber(`${op}: maxLen`, maxLen, { min: 1, integer: true });
  const globalTokens = args.globalTokens ?? null;
  if (globalTokens !== null) assertNumber(`${op}: globalTokens`, globalTokens, { min: 0, minExclusive: true });

  const m = hostValues(mask);
  if (m) {
    for (let i = 0; i < m.length; i++) {
      if (m[i] !== 0 && m[i] !== 1) {
        throw new HotpathsError('E_ARG', `${op}: mask: expected 0 or 1, got ${m[i]} at [${Math.floor(i / T)}, ${i % T}]`);
      }
    }
  }
  const params: GrpoLossParams = { epsLow, epsHigh, delta, beta, level, agg, maxLen, globalTokens };
  return { oldLogp, refLogp, advantages: adv, mask, params };
}

export interface FusedLossArgs extends Omit<LossArgs, 'logp'> {
  /** f32|bf16 [B, T, V] (or [B·T, V]): the policy's logits at the sampled positions. */
  logits: Tensor;
  /** i32 [B, T]: the sampled tokens. */
  targets: Tensor;
  /** Sampling temperature T > 0 (logits are divided by it). Default 1. */
  temperature?: number;
  /**
   * Write d loss / d logits over the logits (same dtype, bf16 rounded to nearest even) instead of a
   * new f32 tensor: no second [N, V] buffer. Needs a fused kernel for bf16 logits (cuda, webgpu,
   * cpu, reference at level 'token'); f32 logits work everywhere.
   */
  inPlace?: boolean;
}

export interface FusedHiddenLossArgs extends Omit<LossArgs, 'logp'> {
  /** f32 [B·T, H]: the last hidden states at the sampled positions. */
  hidden: Tensor;
  /** f32 [V, H]: the LM head. */
  headWeight: Tensor;
  /** i32 [B, T]: the sampled tokens. */
  targets: Tensor;
  /** Sampling temperature (default 1). */
  temperature?: number;
  /**
   * Token rows per chunk. Single pass: rounded down to whole sequences (at least one); default N/18
   * rows, at least 512. Two passes: logprob.fromHidden's chunk (a multiple of 64).
   */
  chunk?: number;
  /** Vocabulary entries per backward chunk of the two-pass path (see logprob.fromHiddenBackward). */
  vocabChunk?: number;
  /**
   * Force the two-pass path (fromHidden, loss, fromHiddenBackward) even where the single pass exists.
   * Default false. The single pass runs at level 'token' on backends with the fused token-level kernel
   * (reference, cpu, cuda, webgpu); the two passes everywhere else.
   */
  twoPass?: boolean;
}

export interface FusedHiddenLossResult extends Omit<LossResult, 'dlogp'> {
  /** f32 [B, T] */
  logp: Tensor;
  /** f32 [B·T, H]: d loss / d hidden. */
  dHidden: Tensor;
  /** f32 [V, H]: d loss / d headWeight. */
  dHeadWeight: Tensor;
}

/**
 * The GRPO loss from hidden states and the LM head, never holding the [N, V] logits (N = B·T), so the
 * peak extra memory is one chunk of logits, about 1/16 of [N, V] f32 by default. Returns the loss, its
 * stats and the gradients of hidden and headWeight. Every option of grpo.loss applies.
 * - Single pass (level 'token' on a backend with the fused token-level kernel: reference, cpu, cuda,
 *   webgpu):
 *   chunks of whole sequences; per chunk logits = h·Wᵀ, the fused kernel turns them into their gradient
 *   in place (a token's dlogp needs only its own log-prob and its sequence's aggregation weight, which
 *   the mask gives up front), then dHidden = dz·W and dHeadWeight += dzᵀ·h: three GEMMs, as many as
 *   the unfused path.
 * - Two passes (otherwise): logprob.fromHidden (token chunks) → grpo.loss → logprob.fromHiddenBackward
 *   (vocabulary chunks), which recomputes the logits: four GEMMs.
 */
export async function fusedLossFromHidden(args: FusedHiddenLossArgs): Promise<FusedHiddenLossResult> {
  const op = 'grpo.fusedLossFromHidden()';
  if (typeof args !== 'object' || args === null) throw new HotpathsError('E_ARG', `${op}: expected { hidden, headWeight, targets, oldLogp, advantages, mask, … }, got ${show(args)}`);
  const { hidden, headWeight, targets } = args;
  assertTensor(`${op}: targets`, targets);
  assertDTypeIn(`${op}: targets`, targets, ['i32']);
  assertRank(`${op}: targets`, targets, 2);
  const [B, T] = targets.shape as [number, number];
  assertTensor(`${op}: hidden`, hidden);
  if (hidden.shape.length !== 2 || hidden.shape[0] !== B * T) {
    throw new HotpathsError('E_SHAPE', `${op}: hidden: expected [B·T, H] = [${B * T}, H] to match targets ${targets.describe()}, got ${hidden.describe()}`);
  }
  const { oldLogp, refLogp, advantages: adv, mask, params } = checkLossInputs(op, args, hidden, B, T, `to match targets ${targets.describe()}`);
  const temperature = args.temperature ?? 1;
  const backend = hidden.backend;
  // one pass per chunk of whole sequences where the token-level kernel exists
  const fused = backend.grpo?.fusedTokenLoss;
  if (params.level === 'token' && fused && backend.gemm && !(args.twoPass ?? false)) {
    assertNumber(`${op}: temperature`, temperature, { min: 0, minExclusive: true });
    return fusedFromHiddenSinglePass(op, { hidden, headWeight, targets, oldLogp, refLogp, advantages: adv, mask }, params, temperature, args.chunk);
  }
  const flatTargets = viewAs(targets, [B * T]);
  const fwd = await fromHidden(hidden, headWeight, flatTargets, { temperature, ...(args.chunk !== undefined ? { chunk: args.chunk } : {}) });
  let dlogp: Tensor | undefined;
  try {
    const logp = viewAs(fwd.logp, [B, T]);
    const r = await runLoss(op, { logp, oldLogp, refLogp, advantages: adv, mask }, params);
    dlogp = r.dlogp;
    const grads = await fromHiddenBackward(hidden, headWeight, flatTargets, fwd.lse, viewAs(dlogp, [B * T]), { temperature, ...(args.vocabChunk !== undefined ? { vocabChunk: args.vocabChunk } : {}) });
    const logpOut = hidden.backend.copy(logp);
    return { loss: r.loss, stats: r.stats, logp: logpOut, ...grads };
  } finally {
    fwd.logp.dispose();
    fwd.lse.dispose();
    dlogp?.dispose();
  }
}

/** The single pass of fusedLossFromHidden (see there); inputs checked by the caller. */
async function fusedFromHiddenSinglePass(
  op: string,
  x: { hidden: Tensor; headWeight: Tensor; targets: Tensor; oldLogp: Tensor; refLogp: Tensor | null; advantages: Tensor; mask: Tensor },
  params: GrpoLossParams,
  temperature: number,
  chunkOpt: number | undefined,
): Promise<FusedHiddenLossResult> {
  const { hidden, headWeight } = x;
  const backend = hidden.backend;
  const [B, T] = x.targets.shape as [number, number];
  const N = B * T;
  const { H, V } = checkHidden(op, hidden, headWeight, viewAs(x.targets, [N]));
  const want = chunkOpt ?? defaultTokenChunk(N);
  assertNumber(`${op}: chunk`, want, { min: 1, integer: true });
  // whole sequences per chunk; on GPUs a chunk's rows of hidden must start 256-byte aligned
  let seqs = Math.max(1, Math.floor(want / T));
  const host = backend.name === 'reference' || backend.name === 'cpu';
  if (!host) {
    const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
    const step = 64 / gcd((T * H) % 64 || 64, 64);
    seqs = Math.ceil(seqs / step) * step;
  }
  seqs = Math.min(seqs, B);
  const rows = seqs * T;

  // The aggregation weights need only the mask: it is read once, and the advantages with it (both
  // small). The per-token inputs and outputs of a chunk are views of the whole-call tensors when every
  // chunk starts 64 rows apart (256-byte aligned f32/i32 rows on GPU backends; always on host ones),
  // so that the call reads back nothing else but the stats, once, at the end (each read is a round
  // trip that leaves the GPU idle). Otherwise the per-token inputs are read once and uploaded chunk
  // by chunk, and logp goes back through the host.
  // both reads in flight together: on GPU backends each is a round trip that leaves the device idle
  const [mRead, advRead] = await Promise.all([x.mask.read(), x.advantages.read()]);
  const m = mRead as Float32Array | Uint8Array;
  const { totalTokens, weights } = aggregationWeights(m, B, T, params);
  const advHost = advRead as Float32Array;
  const views = host || rows % 64 === 0;
  const maskViews = host || rows % 256 === 0 || x.mask.dtype !== 'u8';
  const small = async (t: Tensor) => (await t.read()) as Float32Array | Int32Array | Uint8Array;
  const hostIn = views ? null : { targets: await small(x.targets), oldLogp: await small(x.oldLogp), refLogp: x.refLogp ? await small(x.refLogp) : null };
  const upload = (a: Float32Array | Int32Array | Uint8Array, i0: number, i1: number, dtype: 'f32' | 'i32' | 'u8') => backend.fromHost(a.slice(i0, i1), dtype, [i1 - i0]);
  const flat = (t: Tensor) => viewAs(t, [N]);
  const maskType = x.mask.dtype === 'u8' ? 'u8' : 'f32';

  const gemm = backend.gemm!;
  const logits = backend.empty('f32', [rows, V]);
  const dHidden = backend.empty('f32', [N, H]);
  const dHeadWeight = backend.empty('f32', [V, H]);
  const logp = views ? backend.empty('f32', [B, T]) : null;
  const stats = views ? backend.empty('f32', [N, 4]) : null;
  // without views: each chunk's logp and stats, read once every chunk is queued
  const perChunk: { r0: number; logp: Tensor; stats: Tensor }[] = [];
  try {
    for (let b0 = 0; b0 < B; b0 += seqs) {
      const b1 = Math.min(B, b0 + seqs);
      const r0 = b0 * T, r1 = b1 * T;
      const n = r1 - r0;
      const h = sliceRows(hidden, r0, r1);
      const z = n === rows ? logits : sliceRows(logits, 0, n);
      await gemm.matmul(h, headWeight, false, true, null, z);
      // the chunk's per-token tensors: views, or uploads (owned: disposed after the chunk)
      const owned: Tensor[] = [];
      const own = (t: Tensor) => (owned.push(t), t);
      const tok = (t: Tensor, hostArr: Float32Array | Int32Array | Uint8Array | null | undefined, dtype: 'f32' | 'i32') =>
        (views ? sliceRows(flat(t), r0, r1) : own(upload(hostArr!, r0, r1, dtype)));
      const out = views
        ? { r0, logp: sliceRows(flat(logp!), r0, r1), stats: sliceRows(stats!, r0, r1) }
        : { r0, logp: backend.empty('f32', [n]), stats: backend.empty('f32', [n, 4]) };
      if (!views) perChunk.push(out);
      try {
        await backend.grpo!.fusedTokenLoss!(
          {
            logits: z, targets: tok(x.targets, hostIn?.targets, 'i32'), oldLogp: tok(x.oldLogp, hostIn?.oldLogp, 'f32'),
            refLogp: x.refLogp ? tok(x.refLogp, hostIn?.refLogp, 'f32') : null,
            advantages: own(upload(advHost, b0, b1, 'f32')), mask: views && maskViews ? sliceRows(flat(x.mask), r0, r1) : own(upload(m, r0, r1, maskType)),
            seqWeight: own(backend.fromHost(Float32Array.from(weights.slice(b0, b1)), 'f32', [b1 - b0])), T, temperature,
            epsLow: params.epsLow, epsHigh: params.epsHigh, delta: params.delta, beta: params.beta,
          },
          { logp: out.logp, dlogits: z, stats: out.stats },
        );
        // dHidden rows = dz·W; dHeadWeight (+)= dzᵀ·h (C and the output are one tensor from the second chunk on)
        await gemm.matmul(z, headWeight, false, false, null, sliceRows(dHidden, r0, r1));
        await gemm.matmul(z, h, true, false, b0 === 0 ? null : dHeadWeight, dHeadWeight);
      } finally {
        owned.forEach((t) => t.dispose());
      }
    }
    const sums = new FusedStatSums();
    if (logp && stats) {
      sums.add((await stats.read()) as Float32Array);
      return { ...sums.result(totalTokens, x.refLogp !== null), logp, dHidden, dHeadWeight };
    }
    const logpHost = new Float32Array(N);
    for (const r of perChunk) {
      logpHost.set((await r.logp.read()) as Float32Array, r.r0);
      sums.add((await r.stats.read()) as Float32Array);
    }
    return { ...sums.result(totalTokens, x.refLogp !== null), logp: backend.fromHost(logpHost, 'f32', [B, T]), dHidden, dHeadWeight };
  } catch (e) {
    dHidden.dispose();
    dHeadWeight.dispose();
    logp?.dispose();
    throw e;
  } finally {
    logits.dispose();
    stats?.dispose();
    for (const r of perChunk) {
      r.logp.dispose();
      r.stats.dispose();
    }
  }
}

/** The loss and stats of fused token-level calls: sums of their per-row stats [n, 4] (w_b·l, clipped, k3, ρ). */
class FusedStatSums {
  loss = 0;
  clipped = 0;
  kl = 0;
  ratio = 0;
  /** Sums already taken (GrpoKernels.fusedStatSums). */
  addSums(s: readonly [number, number, number, number]): void {
    this.loss += s[0];
    this.clipped += s[1];
    this.kl += s[2];
    this.ratio += s[3];
  }
  add(s: Float32Array): void {
    for (let t = 0; 4 * t < s.length; t++) {
      this.loss += s[4 * t]!;
      this.clipped += s[4 * t + 1]!;
      this.kl += s[4 * t + 2]!;
      this.ratio += s[4 * t + 3]!;
    }
  }
  /** The loss and the means over the batch's `totalTokens` masked tokens (0 when there are none). */
  result(totalTokens: number, hasRef: boolean): { loss: number; stats: GrpoLossStats } {
    const per = (v: number) => (totalTokens > 0 ? v / totalTokens : 0);
    return { loss: this.loss, stats: { clipFraction: per(this.clipped), meanKl: hasRef ? per(this.kl) : 0, meanRatio: per(this.ratio) } };
  }
}

export interface FusedLossResult extends Omit<LossResult, 'dlogp'> {
  /** f32 [B, T]: the policy's log-probs (0 where the mask is 0 on the fused path). */
  logp: Tensor;
  /** d loss / d logits, the shape of `logits`: f32, or the logits themselves with inPlace. */
  dlogits: Tensor;
}

/**
 * The GRPO loss straight from logits, forward and backward in one call: what a trainer calls per
 * micro-batch. At level 'token' on a backend with the fused kernel each row of logits is swept by one
 * kernel — log-prob (online over the vocab), ratio, clip, KL, aggregation weight, and the row's
 * gradient — with no [N, V] intermediate; the mask is read to the host first for the aggregation
 * weights (a small sync on GPU backends), and masked-out rows are not read at all. Otherwise (level
 * 'sequence', or no fused kernel) it runs logprob.fromLogits, grpo.loss and
 * logprob.fromLogitsBackward. Both give the same loss, stats and gradient as those three calls.
 */
export async function fusedLoss(args: FusedLossArgs): Promise<FusedLossResult> {
  const op = 'grpo.fusedLoss()';
  if (typeof args !== 'object' || args === null) throw new HotpathsError('E_ARG', `${op}: expected { logits, targets, oldLogp, advantages, mask, … }, got ${show(args)}`);
  const { logits, targets } = args;
  // the fused kernels of cpu and cuda index with 64 bits: their token path takes more than 2^31 logits
  assertTensor(`${op}: logits`, logits, Number.MAX_SAFE_INTEGER);
  assertDTypeIn(`${op}: logits`, logits, ['f32', 'bf16']);
  assertTensor(`${op}: targets`, targets);
  assertDTypeIn(`${op}: targets`, targets, ['i32']);
  assertRank(`${op}: targets`, targets, 2);
  assertNonEmpty(`${op}: targets`, targets);
  assertSameDevice(op, logits, targets);
  const [B, T] = targets.shape as [number, number];
  const N = B * T;
  if (logits.shape.length === 3 ? logits.shape[0] !== B || logits.shape[1] !== T : logits.shape.length !== 2 || logits.shape[0] !== N) {
    throw new HotpathsError('E_SHAPE', `${op}: logits: expected [B, T, V] = [${B}, ${T}, V] or [B·T, V] = [${N}, V] to match targets ${targets.describe()}, got ${logits.describe()}`);
  }
  const V = logits.shape[logits.shape.length - 1]!;
  assertNonEmpty(`${op}: logits`, logits);
  const like = `to match targets ${targets.describe()}`;
  const { oldLogp, refLogp, advantages: adv, mask, params } = checkLossInputs(op, args, logits, B, T, like);
  const temperature = args.temperature ?? 1;
  assertNumber(`${op}: temperature`, temperature, { min: 0, minExclusive: true });
  const inPlace = args.inPlace ?? false;
  assertBoolean(`${op}: inPlace`, inPlace);
  const backend = logits.backend;
  const y = hostValues(targets);
  if (y) {
    const bad = Array.prototype.findIndex.call(y, (v: number) => v < 0 || v >= V);
    if (bad >= 0) throw new HotpathsError('E_ARG', `${op}: targets[${Math.floor(bad / T)}, ${bad % T}] = ${y[bad]} is outside [0, V = ${V})`);
  }
  const flat = (t: Tensor) => (t.shape.length === 2 ? t : viewAs(t, [N, V]));

  const kernels = backend.grpo;
  const fused = kernels?.fusedTokenLoss;
  const wide = params.level === 'token' && !!fused && (backend.name === 'cpu' || backend.name === 'cuda');
  if (logits.size > MAX_ELEMENTS && !wide) {
    throw new HotpathsError('E_TOO_LARGE', `${op}: logits: ${logits.describe()} has ${logits.size} elements; at most ${MAX_ELEMENTS} are supported here (more only at level 'token' on cpu or cuda, whose fused kernels index with 64 bits): split the batch into micro-batches`);
  }
  if (params.level === 'token' && kernels && fused) {
    // on the device where the backend can (one 48-byte read after the kernel), else on the host
    const onDevice = kernels.fusedWeights && kernels.fusedStatSums;
    let totalTokens = 0;
    let seqWeight: Tensor;
    let work: Tensor | null = null;
    if (onDevice) {
      seqWeight = backend.empty('f32', [B]);
      work = backend.empty('u8', [grpoFusedWorkBytes(B)]);
      await kernels.fusedWeights!(mask, params.agg, params.maxLen, params.globalTokens, seqWeight, work);
    } else {
      const m = (await mask.read()) as Float32Array | Uint8Array;
      const agg = aggregationWeights(m, B, T, params);
      totalTokens = agg.totalTokens;
      seqWeight = backend.fromHost(Float32Array.from(agg.weights), 'f32', [B]);
    }
    const logp = backend.empty('f32', [B, T]);
    const dlogits = inPlace ? logits : backend.empty('f32', logits.shape);
    const stats = backend.empty('f32', [N, 4]);
    try {
      await fused.call(kernels,
        { logits: flat(logits), targets: viewAs(targets, [N]), oldLogp: viewAs(oldLogp, [N]), refLogp: refLogp ? viewAs(refLogp, [N]) : null, advantages: adv,
          mask: viewAs(mask, [N]), seqWeight, T, temperature, epsLow: params.epsLow, epsHigh: params.epsHigh, delta: params.delta, beta: params.beta },
        { logp: viewAs(logp, [N]), dlogits: flat(dlogits), stats });
      const sums = new FusedStatSums();
      if (work) {
        const r = await kernels.fusedStatSums!(stats, B, work);
        totalTokens = r.tokens;
        sums.addSums(r.sums);
      } else {
        sums.add((await stats.read()) as Float32Array);
      }
      return { ...sums.result(totalTokens, refLogp !== null), logp, dlogits };
    } finally {
      seqWeight.dispose();
      work?.dispose();
      stats.dispose();
    }
  }

  if (inPlace && logits.dtype !== 'f32') {
    throw new HotpathsError('E_NOT_IMPLEMENTED', `${op}: inPlace with ${logits.dtype} logits needs the fused kernel (level 'token' on a backend that has it; ${backend.name} at level '${params.level}' does not)`);
  }
  if (!backend.logprob || !backend.grpo) throw notImplemented(op, logits);
  const lse = backend.empty('f32', [N]);
  const logp = backend.empty('f32', [B, T]);
  let dlogp: Tensor | undefined;
  try {
    await backend.logprob.fromLogits(flat(logits), viewAs(targets, [N]), temperature, viewAs(logp, [N]), lse, null);
    const r = await runLoss(op, { logp, oldLogp, refLogp, advantages: adv, mask }, params);
    dlogp = r.dlogp;
    const dlogits = inPlace ? logits : backend.empty('f32', logits.shape);
    await backend.logprob.fromLogitsBackward(flat(logits), viewAs(targets, [N]), lse, viewAs(dlogp, [N]), temperature, flat(dlogits));
    return { loss: r.loss, logp, dlogits, stats: r.stats };
  } finally {
    lse.dispose();
    dlogp?.dispose();
  }
}
