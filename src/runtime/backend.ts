// The contract every backend implements. Ops in src/ops/ validate their arguments once, allocate
// outputs with `empty`, and call the backend's kernels; kernels trust the ops layer for shapes and
// dtypes (native code still re-checks sizes before touching memory).

import type { DType, HostArray } from '../dtype.js';
import type { Tensor } from '../tensor.js';

export type BackendName = 'reference' | 'cpu' | 'webgpu' | 'cuda';
export const BACKEND_NAMES: readonly BackendName[] = ['reference', 'cpu', 'webgpu', 'cuda'];

export type Fp8Format = 'e4m3' | 'e5m2';

/** How `fp8.quantize` groups elements: one scale per `rows × cols` block (cols is always 128). */
export interface QuantizeSpec {
  format: Fp8Format;
  /** [1, 128]: per-token groups along K (activations). [128, 128]: per-block (weights). */
  block: readonly [1 | 128, 128];
  /** Round each scale up to a power of two (UE8M0 scales). */
  ue8m0: boolean;
}

/** FP8 kernels. All tensors are contiguous row-major; shapes were checked by src/ops/fp8.ts. */
export interface Fp8Kernels {
  /** out[i] = fp8(x[i]); x: f32 [n], out: fp8 [n]. Saturating RNE, NaN -> 0x7F, e5m2 keeps ±inf. */
  encode(x: Tensor, format: Fp8Format, out: Tensor): Promise<void> | void;
  /** out[i] = f32(q[i]); q: fp8 [n], out: f32 [n]. Exact. */
  decode(q: Tensor, format: Fp8Format, out: Tensor): Promise<void> | void;
  /** x: f32|bf16 [M, K] -> data: fp8 [M, K], scales: f32 [ceil(M/br), ceil(K/128)]. */
  quantize(x: Tensor, spec: QuantizeSpec, data: Tensor, scales: Tensor): Promise<void> | void;
  /** data: fp8 [M, K], scales as above -> out: f32 [M, K] = decode(data) * scale. */
  dequantize(data: Tensor, scales: Tensor, spec: QuantizeSpec, out: Tensor): Promise<void> | void;
}

/**
 * How the rows of A meet the matrices of B in an FP8 GEMM (mode codes in the addon: 0, 1, 2).
 * - 'none': A [M, K], B [N, K] (G = 1).
 * - 'contiguous': A [M, K] (M = M_sum), B [G, N, K], `rowGroups` = groupIndex i32 [M]: row m uses
 *   B[groupIndex[m]]; −1 = padding row, written as zeros. Rows of one 128-row-aligned block must share
 *   one group (or be −1). Host backends never see a bad index (src/ops/gemm.ts checks); GPU kernels
 *   write NaN rows for an index ≥ G or < −1, or a row whose group differs from its block's first
 *   non-padding row.
 * - 'masked': A [G, Mmax, K], B [G, N, K], `rowGroups` = maskedM i32 [G]: rows m < maskedM[g] of group
 *   g are computed, the rest written as zeros. GPU kernels write a whole group NaN when maskedM[g] is
 *   outside [0, Mmax] (host backends: checked by src/ops/gemm.ts).
 */
export type GemmGrouping = 'none' | 'contiguous' | 'masked';

/**
 * Gathered A rows ('contiguous' only): A is [rowsA, K] and row m of the product reads A row
 * floor(pairs[m] / k) (codes and scales), an all-zero row (codes 0, scales 0, so a zero product) for
 * a pair id outside [0, rowsA·k). pairs: i32 [≥ M] (moe's sortedPairs: pair id = row·k + slot, the
 * sentinel rowsA·k for padding); only its first M elements are read. k ≥ 1.
 */
export interface GemmGather {
  pairs: Tensor;
  k: number;
  rowsA: number;
}

/** One FP8 GEMM call with every shape resolved (src/ops/gemm.ts checked them all). */
export interface GemmFp8Args {
  /** E4M3 codes, [M, K] ('none', 'contiguous') or [G, Mmax, K] ('masked'); [rowsA, K] with a gather. */
  a: Tensor;
  /** f32 [rows of a, KB] with KB = ceil(K/128): one scale per row and 128-wide K block (1×128). */
  aScales: Tensor;
  /** E4M3 codes, [N, K] ('none') or [G, N, K]. */
  b: Tensor;
  /** f32 [G·ceil(N/128), KB] when bBlockRows = 128 (128×128 blocks), [G·N, KB] when 1 (1×128, wgrad). */
  bScales: Tensor;
  bBlockRows: 1 | 128;
  grouping: GemmGrouping;
  /** i32: groupIndex [M] ('contiguous'), maskedM [G] ('masked'), null ('none'). */
  rowGroups: Tensor | null;
  /**
   * Rows of the product (M, M_sum, or G·Mmax: A's rows, or with a gather pairs' first M), N, K, the
   * number of B matrices G, rows per group (Mmax; M for 'none'/'contiguous').
   */
  M: number;
  N: number;
  K: number;
  G: number;
  Mmax: number;
  /** f32 [M, N] added to the product ('none' only), or null. */
  c: Tensor | null;
  /** f32 or bf16 (round to nearest even) [M, N] / [G, Mmax, N]. */
  out: Tensor;
  /**
   * Gathered A rows, or null (row m reads A row m). Only a backend whose GemmKernels.gathers is true
   * gets one: for the others src/ops/gemm.ts materialises the gathered A (moe's permute kernels) first.
   */
  gather: GemmGather | null;
}

/**
 * GEMM kernels (REFERENCE.md, "FP8 block-scaled GEMM"). All tensors contiguous row-major; shapes and
 * dtypes were checked by src/ops/gemm.ts.
 */
export interface GemmKernels {
  /** fp8 reads gathered A rows itself (GemmFp8Args.gather); absent: it never gets a gather. */
  readonly gathers?: true;
  /**
   * D[m, n] = Σ_kb (Σ_{k in block kb} a[m,k]·b[n,k]) · aScale[m,kb] · bScale[n,kb] (+ C[m, n]):
   * each 128-wide K block's partial sum is scaled and added into an f32 accumulator (promotion every
   * 128 K); the last block may be shorter than 128 (K need not be a multiple of 128).
   */
  fp8(args: GemmFp8Args): Promise<void> | void;
  /**
   * D = op(A)·op(B) (+ C), f32 accumulation. a, b: both f32 or both bf16; op(A) is [M, K] (a is
   * [K, M] when transA), op(B) is [K, N] given as b [N, K] when transB, [K, N] otherwise.
   * c: f32 [M, N] or null; out: f32 or bf16 [M, N]. c may be out itself (f32): out += op(A)·op(B)
   * (grpo.fusedLossFromHidden accumulates dHeadWeight so); otherwise c must not overlap out (webgpu
   * rejects that with E_ARG).
   */
  matmul(a: Tensor, b: Tensor, transA: boolean, transB: boolean, c: Tensor | null, out: Tensor): Promise<void> | void;
  /** x [R, C] -> out [C, R], any dtype (moves bytes: 1, 2 or 4 per element). */
  transpose(x: Tensor, out: Tensor): Promise<void> | void;
}

/** KL estimators of `logprob.kl`, with d = ref − logp (REFERENCE.md). */
export type KlEstimator = 'k1' | 'k2' | 'k3' | 'k3_clamped';

/**
 * Log-prob kernels. All tensors are contiguous row-major; shapes, dtypes and option values were
 * checked by src/ops/logprob.ts (targets in [0, V) only on host backends: a kernel must give NaN for
 * a target outside that range, never read past the row).
 */
export interface LogprobKernels {
  /**
   * logits: f32|bf16 [N, V], targets: i32 [N], temperature T > 0 -> logp, lse: f32 [N] (lse of z/T);
   * entropy: f32 [N] or null (not wanted). One pass over the logits with an online max/sum over vocab
   * chunks; f32 math (or better) for bf16 input too.
   */
  fromLogits(logits: Tensor, targets: Tensor, temperature: number, logp: Tensor, lse: Tensor, entropy: Tensor | null): Promise<void> | void;
  /**
   * logits: f32|bf16 [N, V], targets: i32 [N], lse, gLogp: f32 [N] -> dlogits: f32 [N, V] =
   * (onehot(y) − exp(z/T − lse)) · g / T. `dlogits` may be `logits` itself (f32, in place). A target
   * outside [0, V) adds no onehot (fromHiddenBackward passes targets shifted into a vocabulary chunk).
   */
  fromLogitsBackward(logits: Tensor, targets: Tensor, lse: Tensor, gLogp: Tensor, temperature: number, dlogits: Tensor): Promise<void> | void;
  /** logp, ref: f32 [n] -> kl, dlogp: f32 [n] (d kl / d logp). */
  kl(logp: Tensor, ref: Tensor, estimator: KlEstimator, kl: Tensor, dlogp: Tensor): Promise<void> | void;
}

/** How `grpo.advantages` scales the centred rewards: by the group's std, the batch's std, or not at all. */
export type AdvantageScale = 'group' | 'batch' | 'none';
/** Policy-ratio level: per token (GRPO) or per sequence (GSPO). */
export type GrpoLevel = 'token' | 'sequence';
/** Loss aggregation over the completion mask. */
export type GrpoAgg = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo';

/** `grpo.loss` parameters with every default resolved by src/ops/grpo.ts. */
export interface GrpoLossParams {
  epsLow: number;
  epsHigh: number;
  /** Two-sided clip ρ ← min(ρ, δ); null when off. */
  delta: number | null;
  /** KL weight; 0 skips the KL term. */
  beta: number;
  level: GrpoLevel;
  agg: GrpoAgg;
  /** dr_grpo's length divisor (defaults to T before it gets here). */
  maxLen: number;
  /** dapo's divisor; null: the mask's own token count. */
  globalTokens: number | null;
}

/** Statistics of one `grpo.loss` call, means over the masked tokens (0 when there are none). */
export interface GrpoLossStats {
  /** Fraction of masked tokens whose policy gradient the ε clip zeroes. */
  clipFraction: number;
  /** Mean k3(refLogp − logp); 0 without refLogp. */
  meanKl: number;
  /** Mean ρ as used in the loss (after the δ cap). */
  meanRatio: number;
}

/** What the loss kernel returns (f64 on host backends). */
export interface GrpoLossResult extends GrpoLossStats {
  loss: number;
}

/**
 * The inputs of the fused token-level GRPO kernel (grpo.fusedLoss): N = B·T rows of logits, each one
 * completion token. Shapes were checked by src/ops/grpo.ts.
 */
export interface GrpoFusedArgs {
  /** f32|bf16 [N, V] */
  logits: Tensor;
  /** i32 [N] (in [0, V) on host backends; a kernel gives NaN for one outside, never reads past the row) */
  targets: Tensor;
  /** f32 [N] */
  oldLogp: Tensor;
  /** f32 [N] or null (then beta is 0) */
  refLogp: Tensor | null;
  /** f32 [B] */
  advantages: Tensor;
  /** f32|u8 [N]: 1 for completion tokens; a 0 row is never read and gets logp 0, dlogits 0, stats 0 */
  mask: Tensor;
  /** f32 [B]: each sequence's aggregation weight w_b (src/ops/grpo.ts computes it from the mask) */
  seqWeight: Tensor;
  /** Tokens per sequence (row t belongs to sequence floor(t / T)). */
  T: number;
  temperature: number;
  epsLow: number;
  epsHigh: number;
  /** Two-sided clip ρ ← min(ρ, δ); null when off. */
  delta: number | null;
  beta: number;
}

/** The outputs of the fused kernel. */
export interface GrpoFusedOutputs {
  /** f32 [N]: log-prob of each target at temperature T (0 for masked-out rows). */
  logp: Tensor;
  /**
   * f32|bf16 [N, V] (bf16: rounded to nearest even): d loss / d logits = (onehot(y) − softmax(z/T)) ·
   * dlogp / T, with dlogp = w_b · (d l / d logp). May be `logits` itself (same dtype: in place).
   */
  dlogits: Tensor;
  /** f32 [N, 4] per row: w_b·l, clipped (0/1), k3(ref − logp) (0 without ref), ρ; zeros for masked-out rows. */
  stats: Tensor;
}

/** GRPO kernels; shapes, dtypes and options were checked by src/ops/grpo.ts. */
export interface GrpoKernels {
  /** rewards: f32 [B] -> out: f32 [B]; groups of `groupSize` consecutive rewards. */
  advantages(rewards: Tensor, groupSize: number, scale: AdvantageScale, eps: number, out: Tensor): Promise<void> | void;
  /**
   * logp, oldLogp, refLogp (or null): f32 [B, T], advantages: f32 [B], mask: f32|u8 [B, T]
   * -> dlogp: f32 [B, T] (d loss / d logp), and the loss with its stats.
   */
  loss(
    inputs: { logp: Tensor; oldLogp: Tensor; refLogp: Tensor | null; advantages: Tensor; mask: Tensor },
    params: GrpoLossParams,
    dlogp: Tensor,
  ): Promise<GrpoLossResult> | GrpoLossResult;
  /**
   * Fused token-level GRPO from logits, one row at a time: lse and logp (online over the vocab), the
   * row's loss term and dlogp (the rules of `loss` at level 'token'), then the row's dlogits — the
   * forward and the backward in one kernel, the row read from memory once where the hardware allows
   * (its second sweep hits the cache). Optional: without it src/ops/grpo.ts composes fromLogits,
   * loss and fromLogitsBackward.
   */
  fusedTokenLoss?(args: GrpoFusedArgs, out: GrpoFusedOutputs): Promise<void> | void;
  /**
   * Optional, for GPU backends, with fusedStatSums: fusedLoss's bookkeeping on the device, so that a
   * call reads nothing back before its kernel and 48 bytes after it (instead of the mask before and
   * the [N, 4] stats after). mask: f32|u8 [B, T] -> seqWeight: f32 [B], each sequence's aggregation
   * weight (the rule of aggregationWeights in src/reference/grpo.ts, in f64, rounded to f32 once);
   * work: u8 [grpoFusedWorkBytes(B)], which keeps the mask's counts for fusedStatSums.
   */
  fusedWeights?(mask: Tensor, agg: GrpoAgg, maxLen: number, globalTokens: number | null, seqWeight: Tensor, work: Tensor): Promise<void> | void;
  /**
   * stats: f32 [N, 4] from fusedTokenLoss, work from fusedWeights for the same B sequences -> the sums of the four
   * stats columns (f64, a fixed order) and the mask's token count, read back together.
   */
  fusedStatSums?(stats: Tensor, B: number, work: Tensor): Promise<{ tokens: number; sums: [number, number, number, number] }>;
}

/** Bytes of the work buffer of GrpoKernels.fusedWeights / fusedStatSums for B sequences (f64 [6 + B + 256]). */
export function grpoFusedWorkBytes(B: number): number {
  return 8 * (6 + B + 4 * 64);
}

/** How the MoE gate turns logits into scores: sigmoid (DeepSeek-V3) or softmax over the experts (V2). */
export type MoeScoring = 'sigmoid' | 'softmax';
/** A group's score in group-limited routing: the sum of its top-2 biased scores (V3) or its max (V2). */
export type MoeGroupScore = 'top2' | 'max';

/** `moe.gate` routing parameters with every default resolved by src/ops/moe.ts. */
export interface MoeRouteParams {
  scoring: MoeScoring;
  /** Experts chosen per token (k ≤ experts in the kept groups). */
  topk: number;
  /** Groups the E experts are split into (E % nGroup == 0); 1 = no group limit. */
  nGroup: number;
  /** Groups kept per token (≤ nGroup). */
  topkGroup: number;
  groupScore: MoeGroupScore;
  /** Divide the chosen weights by their sum (+1e-20). */
  normTopkProb: boolean;
  /** Multiplies the final weights (V3: 2.5). */
  routedScalingFactor: number;
}

/**
 * MoE kernels (REFERENCE.md, "MoE routing"). All tensors contiguous row-major; shapes, dtypes and
 * options were checked by src/ops/moe.ts (index values only on host backends: a GPU kernel must never
 * read or write out of bounds for a bad index; it skips the pair and counts it in `info[2]` of align,
 * and layout ignores it).
 */
export interface MoeKernels {
  /**
   * logits: f32 [T, E] (x·Wᵀ), bias: f32 [E] or null (selection only)
   * -> scores: f32 [T, E] = sigmoid(logits) or softmax over E (unbiased; saved for the backward);
   *    weights: f32 [T, k] from the unbiased scores of the chosen experts (normalised, scaled);
   *    indices: i32 [T, k], in descending order of biased score s' = s + b.
   * Selection: group score per p.groupScore over s', keep the p.topkGroup best groups, top-k of s'
   * among their experts. Every comparison breaks ties by the lower group / expert index. A NaN logit
   * makes its token's weights NaN (indices stay valid experts).
   */
  route(logits: Tensor, bias: Tensor | null, p: MoeRouteParams, scores: Tensor, weights: Tensor, indices: Tensor): Promise<void> | void;
  /**
   * Backward of route through the chosen weights (the selection is piecewise constant):
   * scores: f32 [T, E], indices: i32 [T, k], dWeights: f32 [T, k], dScores: f32 [T, E] or null (an
   * extra gradient on the scores, e.g. from the aux loss) -> dLogits: f32 [T, E].
   */
  routeBackward(scores: Tensor, indices: Tensor, dWeights: Tensor, dScores: Tensor | null, p: MoeRouteParams, dLogits: Tensor): Promise<void> | void;
  /** bias: f32 [E], load: i32 [E] (tokens per expert) -> out: f32 [E] = bias + gamma·sign(mean(load) − load). */
  updateBias(bias: Tensor, load: Tensor, gamma: number, out: Tensor): Promise<void> | void;
  /**
   * Sequence-wise balance loss over sequences of `seqLen` consecutive tokens (T % seqLen == 0):
   * scores: f32 [T, E] (unbiased), indices: i32 [T, k] -> dScores: f32 [T, E] (d loss / d scores);
   * returns the loss, the mean over sequences of α Σ_i f_i P_i (REFERENCE.md; P_i uses s/Σ_j s_j).
   */
  auxLoss(scores: Tensor, indices: Tensor, seqLen: number, alpha: number, dScores: Tensor): Promise<number> | number;
  /**
   * indices: i32 [T, k] -> tokensPerRank: i32 [R], tokensPerExpert: i32 [E], isTokenInRank: u8 [T, R].
   * Rank r holds experts [r·E/R, (r+1)·E/R); a token counts once per rank however many of its k
   * experts live there.
   */
  layout(indices: Tensor, numExperts: number, numRanks: number, tokensPerRank: Tensor, tokensPerExpert: Tensor, isTokenInRank: Tensor): Promise<void> | void;
  /**
   * indices: i32 [T, k] -> the (token, slot) pairs grouped by expert, each expert padded to a multiple
   * of blockSize (moe_align_block_size):
   * - sortedPairs: i32 [Pmax]: pair id t·k + j; padding (and everything past the padded total P) is the
   *   sentinel T·k. Within an expert pairs are in ascending pair id (deterministic).
   * - blockExpert: i32 [Pmax / blockSize]: the expert of each block, −1 past P.
   * - rowExpert: i32 [Pmax]: the expert of each row, −1 for padding and past P (the grouped-contiguous
   *   FP8 GEMM's groupIndex when blockSize is a multiple of 128).
   * - pairPos: i32 [T, k]: where each pair sits in sortedPairs, −1 for a dropped pair.
   * - counts: i32 [E]: pairs kept per expert (before padding).
   * - info: i32 [4] = { P (padded total), dropped pairs, bad indices, 0 }.
   * capacity > 0 keeps at most `capacity` pairs per expert (the lowest pair ids) and counts the rest
   * as dropped; 0 keeps all. Pmax = T·k + E·(blockSize − 1) rounded up to blockSize (ops allocate it).
   */
  align(indices: Tensor, numExperts: number, blockSize: number, capacity: number, sortedPairs: Tensor, blockExpert: Tensor, rowExpert: Tensor, pairPos: Tensor, counts: Tensor, info: Tensor): Promise<void> | void;
  /**
   * x: f32|bf16 [T, H], rows: i32 [≥ P] (pair ids; row = id / k), weights: f32 [T·k] or null
   * -> out: same dtype [P, H] (P = out's rows; rows past P are not read), out[p] = w[id]·x[id / k] (w = 1 without weights); a row id ≥ T·k (the
   * sentinel) or < 0 gives a zero row. With k = 1 it is a plain row gather.
   */
  permute(x: Tensor, rows: Tensor, k: number, weights: Tensor | null, out: Tensor): Promise<void> | void;
  /**
   * y: f32|bf16 [P, H], pairPos: i32 [T, k], weights: f32 [T, k] or null (1)
   * -> out: f32|bf16 [T, H], out[t] = Σ_j w[t,j]·y[pairPos[t,j]], summed in f32 in slot order j = 0..k−1;
   * pairs with pairPos −1 (dropped) add nothing. out's dtype need not be y's: combine reduces bf16 rows
   * into an f32 x's rows (and src/ops/moe.ts widens bf16 to f32 with k = 1, pairPos = row, no weights).
   */
  unpermute(y: Tensor, pairPos: Tensor, weights: Tensor | null, out: Tensor): Promise<void> | void;
  /**
   * Optional: a row gather of any dtype, bytes moved as they are (no weights): x [T, W] (1, 2 or 4 bytes
   * an element), rows: i32 [≥ P] pair ids -> out [P, W] (same dtype), out[p] = x[rows[p] / k], zero
   * bytes for a sentinel (≥ T·k) or negative id. dispatch uses it to put received FP8 codes into expert
   * order; without it src/ops/moe.ts does decode → permute (f32) → encode, which is exact but moves about
   * 18 bytes an element instead of 2.
   */
  permuteBytes?(x: Tensor, rows: Tensor, k: number, out: Tensor): Promise<void> | void;
  /** dOut: f32|bf16 [T, H], y: f32|bf16 [P, H], pairPos: i32 [T, k] -> dWeights: f32 [T, k] = dOut[t]·y[pairPos[t,j]] (0 for dropped). */
  unpermuteWeightGrad(dOut: Tensor, y: Tensor, pairPos: Tensor, dWeights: Tensor): Promise<void> | void;
  /** Copies `rows` rows from src (from row srcRow) into dst (from row dstRow); same dtype and row length. */
  copyRows(src: Tensor, srcRow: number, dst: Tensor, dstRow: number, rows: number): Promise<void> | void;

  // ---- Optional: dispatch/combine's device path. With all five (dispatchPlan, dispatchPack,
  // dispatchRecvLayout, dispatchScatter, unpermuteRows) src/ops/moe.ts plans, packs and groups the
  // rows on the device and reads back only the counts; without them it plans on the host (ids and
  // weights read back) with the kernels above. Both give the same bits. R ranks; rank r holds the
  // E/R experts [r·E/R, (r+1)·E/R) ("local expert" = e − r·E/R); k slots a token.

  /**
   * The sender's plan. indices: i32 [T, k] (global ids) ->
   * - sendRow: i32 [T, R]: the row of (token t, rank d) in the send order — rows to rank 0 first, then
   *   rank 1, …, each rank's in token order — or −1 where t has no expert on d. (combine's backPos.)
   * - pairRank: i32 [T, k]: the number of pairs before (t, j) in pair-id order t·k + j with the same
   *   expert (its place among the expert's pairs on this rank), −1 for a bad id.
   * - table: i32 [1, R + E + 1]: tokens sent to each rank [R], pairs per expert [E], bad ids (outside
   *   [0, E): skipped everywhere).
   * slotRows M (optional, default 0): 0 = the packed prefix layout above; M > 0 = fixed slots (the send
   * buffer is [R·M] rows, rank d's rows at [d·M, d·M + count_d) in token order): sendRow[t, d] = d·M + the
   * token's place among the tokens to d, or −1 where that place is ≥ M (rows past the slot are not sent);
   * the table's counts stay the true ones, and when T > M its last column holds −T instead of the bad ids
   * (the flag every rank reads after the gather: the rank does not fit its slots).
   * pieceEnds (optional, C ≤ 64 non-decreasing token counts, each a multiple of 64 or T): table is then
   * i32 [1, R + E + 1 + C·R], and table[R + E + 1 + c·R + d] = the tokens t < pieceEnds[c] with a row on
   * rank d (capped at M with slots): the slot rows the tokens before that end fill (the windows path).
   */
  dispatchPlan?(indices: Tensor, numExperts: number, sendRow: Tensor, pairRank: Tensor, table: Tensor, slotRows?: number, pieceEnds?: Int32Array): Promise<void> | void;
  /**
   * The send buffer: one packed row (dispatchRowLayout) per (token t, rank d) with s = sendRow[t, d] ≥ 0,
   * so that one transfer a peer moves everything. x: f32|bf16 [T, H], indices: i32 [T, k], weights: f32
   * [T, k], sendRow and pairRank from dispatchPlan -> packed: u8 [≥ S, stride], row s =
   * - the payload: x[t] bit for bit; or with fp8 (H % 128 == 0) x[t] quantized like fp8.quantize with
   *   1×128 blocks, E4M3, plain scales: the H codes, then the H/128 f32 scales (the same bits);
   * - the meta, i32 [3k]: [local expert id of slot j if its expert is on d, else −1 (k)] [its weight's
   *   f32 bits, else 0 (k)] [pairRank[t, j], else −1 (k)].
   * Rows of other s are not written.
   * With `dest` (fixed slots of M = dest.slotRows rows; cuda only, others throw E_NOT_IMPLEMENTED) the rows
   * to rank d go to their own buffer instead: row s = d·M + i to row i of dest.rows[d] (u8 [M, stride]);
   * `packed` is then not touched (the NCCL group's symmetric windows: each rank's slot in its peers' memory).
   */
  dispatchPack?(x: Tensor, indices: Tensor, weights: Tensor, sendRow: Tensor, pairRank: Tensor, numExperts: number, fp8: boolean, packed: Tensor | null,
    dest?: { rows: Tensor[]; slotRows: number }): Promise<void> | void;
  /**
   * The receiver's layout, from every rank's dispatchPlan table: tables: i32 [R, ≥ R + E + 1] (row s =
   * rank s's), this rank's index `rank`, blockSize bs, k slots a token. With c_s[l] = tables[s, R + rank·E/R + l] (pairs
   * rank s sends for local expert l), n = Σ_s tables[s, rank] (rows received), count[l] = Σ_s c_s[l],
   * start[l] = Σ_{l' < l} roundup(count[l'], bs) and P = start[E/R]:
   * - base: i32 [R, E/R]: base[s, l] = start[l] + Σ_{s' < s} c_{s'}[l] (the expertX row of the first
   *   pair from rank s for expert l);
   * - counts: i32 [E/R] = count; blockExpert [≥ Pmax/bs], rowExpert [≥ Pmax], sortedPairs [≥ Pmax] as
   *   align gives them (sortedPairs: the sentinel n·k everywhere: dispatchScatter writes the real rows);
   * - expertX's padding rows (rows of [0, P) past an expert's count) zero: expertX [P, H] (any dtype),
   *   and expertScales f32 [P, H/128] when given.
   */
  dispatchRecvLayout?(tables: Tensor, rank: number, numExperts: number, blockSize: number, k: number, base: Tensor, counts: Tensor, sortedPairs: Tensor,
    blockExpert: Tensor, rowExpert: Tensor, expertX: Tensor | null, expertScales: Tensor | null): Promise<void> | void;
  /** Received rows into expert order: see MoeScatterArgs. */
  dispatchScatter?(a: MoeScatterArgs): Promise<void> | void;
  /**
   * unpermute over a window of rows: out[outRow0 + r] = Σ_j w[row0 + r, j]·y[pairPos[row0 + r, j]] for
   * r < rows (the same f32 sum in slot order, rounded to out's dtype); y: f32|bf16 [P, H], pairPos:
   * i32 [≥ row0 + rows, k], weights: f32 like pairPos or null, out: f32|bf16 [≥ outRow0 + rows, H].
   */
  unpermuteRows?(y: Tensor, pairPos: Tensor, weights: Tensor | null, row0: number, rows: number, out: Tensor, outRow0: number): Promise<void> | void;
}

/**
 * dispatchScatter: `rows` packed rows (dispatchRowLayout) from rank `source` — rows [srcRow, srcRow +
 * rows) of src, u8 [*, stride] — which are the receiver's rows [recvRow, recvRow + rows). For each
 * such row r (receiver row q = recvRow + r − srcRow): recv[q] (and recvScales[q]) = its payload;
 * recvIndices[q] and recvWeights[q] = its meta's ids and weights; and for each slot j with local expert
 * l = id ≥ 0: p = base[source, l] + its pair rank, expertX[p] = the payload (and its scales),
 * sortedPairs[p] = q·k + j, pairPos[q, j] = p; pairPos[q, j] = −1 for the other slots. The payload is
 * fp8 (codes and scales) exactly when recvScales is given; its row is recv's. expertX null (dispatch's
 * expand: false): everything but the expertX rows (and their scales), which are not written at all.
 */
export interface MoeScatterArgs {
  src: Tensor;
  srcRow: number;
  rows: number;
  recvRow: number;
  /** i32 [R, E/R] from dispatchRecvLayout, and the rank the rows came from. */
  base: Tensor;
  source: number;
  k: number;
  /** [P, payload] (and its scales), or null: no expert-ordered copy (the scales null then too). */
  expertX: Tensor | null;
  expertScales: Tensor | null;
  sortedPairs: Tensor;
  pairPos: Tensor;
  recvIndices: Tensor;
  recvWeights: Tensor;
  recv: Tensor;
  recvScales: Tensor | null;
}

/**
 * dispatch's packed row: the payload (payloadBytes: H codes with fp8, else x's row), the f32 scales
 * (fp8: H/128 of them) from the next multiple of 4, the meta (i32 [3k]) after them, and the row padded
 * to a multiple of 16 bytes. Offsets in bytes.
 */
export function dispatchRowLayout(payloadBytes: number, scaleCount: number, k: number): { scalesAt: number; metaAt: number; stride: number } {
  const scalesAt = Math.ceil(payloadBytes / 4) * 4;
  const metaAt = scalesAt + 4 * scaleCount;
  return { scalesAt, metaAt, stride: Math.ceil((metaAt + 12 * k) / 16) * 16 };
}

/** AdamW hyper-parameters of one `nn.adamw` step (step counts from 1, for the bias corrections). */
export interface AdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
}

/**
 * What the trainer's transformer needs beyond gemm/moe/logprob/grpo (all f32, contiguous row-major;
 * shapes checked by src/ops/nn.ts). "+=" marks outputs that are accumulated into, not overwritten.
 */
export interface NnKernels {
  /** table: [V, D], ids: i32 [N] (in [0, V)) -> out: [N, D]. */
  embedding(table: Tensor, ids: Tensor, out: Tensor): Promise<void> | void;
  /** dOut: [N, D], ids: i32 [N] -> dTable: [V, D] += scatter (deterministic: ids in order). */
  embeddingBackward(dOut: Tensor, ids: Tensor, dTable: Tensor): Promise<void> | void;
  /** x: [N, D], weight: [D] -> out: [N, D] = x · rstd · weight, rstd: [N] = 1/sqrt(mean(x²) + eps). */
  rmsnorm(x: Tensor, weight: Tensor, eps: number, out: Tensor, rstd: Tensor): Promise<void> | void;
  /** -> dx: [N, D] (overwritten), dWeight: [D] += Σ_n dOut·x·rstd. */
  rmsnormBackward(dOut: Tensor, x: Tensor, weight: Tensor, rstd: Tensor, dx: Tensor, dWeight: Tensor): Promise<void> | void;
  /**
   * x: [N, nHeads, Dh] (Dh even), positions: i32 [N] -> out: same shape (may be x). Rotates each pair
   * (x[2i], x[2i+1]) by angle pos·theta^(−2i/Dh) (interleaved pairs, GPT-J/llama.cpp style);
   * inverse rotates by −angle (the backward).
   */
  rope(x: Tensor, positions: Tensor, theta: number, inverse: boolean, out: Tensor): Promise<void> | void;
  /**
   * Causal attention, one head per query head (no GQA): q: [B, Tq, nH, Dh], k, v: [B, S, nH, Dh]
   * (only the first kvLen of S rows are read) -> out: [B, Tq, nH, Dh], lse: [B, nH, Tq] (log-sum-exp of
   * the scaled scores, saved for the backward). Query i sits at position qOffset + i and sees keys
   * j ≤ qOffset + i, j < kvLen. Training: qOffset 0, Tq = S = kvLen; decoding with a KV cache: Tq = 1.
   */
  attention(q: Tensor, k: Tensor, v: Tensor, qOffset: number, kvLen: number, scale: number, out: Tensor, lse: Tensor): Promise<void> | void;
  /** Backward of attention (qOffset 0, Tq = S = kvLen): -> dq, dk, dv (overwritten). */
  attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dOut: Tensor, scale: number, dq: Tensor, dk: Tensor, dv: Tensor): Promise<void> | void;
  /** gate, up: [N, F] -> out: [N, F] = silu(gate) · up. */
  swiglu(gate: Tensor, up: Tensor, out: Tensor): Promise<void> | void;
  /** -> dGate, dUp: [N, F] (overwritten). */
  swigluBackward(gate: Tensor, up: Tensor, dOut: Tensor, dGate: Tensor, dUp: Tensor): Promise<void> | void;
  /** a, b: same shape -> out = a + alpha·b (out may be a or b). */
  addScaled(a: Tensor, b: Tensor, alpha: number, out: Tensor): Promise<void> | void;
  /** Σ x² in f64 on host backends (f32 partials summed in f64 on GPUs): gradient-norm clipping. */
  sumSquares(x: Tensor): Promise<number> | number;
  /** One AdamW step in place: param, grad, m, v: f32 [n] (decoupled weight decay: p −= lr·wd·p). */
  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, p: AdamWParams): Promise<void> | void;
  /**
   * logits: [B, V], uniforms: f32 [B] in [0, 1) -> ids: i32 [B]. temperature 0: argmax (lowest id on
   * ties). Otherwise p = softmax(z / temperature); tokens sorted by p descending (ties: lower id first);
   * keep the shortest prefix whose mass ≥ topP (at least one token); pick the first kept token whose
   * running mass exceeds u · (kept mass).
   */
  sample(logits: Tensor, uniforms: Tensor, temperature: number, topP: number, ids: Tensor): Promise<void> | void;
}

/** The machine's measured ceilings on one backend (what `hotpaths bench` compares kernels with). */
export interface MachineCeilings {
  /** GB/s of a copy far larger than the caches, bytes read + bytes written over the time. */
  copyGBps: number;
  /** Peak FP32 TFLOP/s of independent FMA chains (an FMA counts as 2 FLOPs; no tensor cores). */
  fp32Tflops: number;
}

export interface Backend {
  readonly name: BackendName;
  /** What runs the kernels: the CPU model, the GPU adapter or device name. */
  readonly deviceName: string;
  /** A new tensor holding a copy of `data`. */
  fromHost(data: HostArray, dtype: DType, shape: readonly number[]): Tensor;
  /** A new tensor with unspecified contents (all 0xFF bytes when poison mode is on). */
  empty(dtype: DType, shape: readonly number[]): Tensor;
  /** A new tensor on this backend with the same contents. */
  copy(t: Tensor): Tensor;
  /** A host copy of the contents. */
  read(t: Tensor): Promise<HostArray>;
  /**
   * Storage that shares `bytes` bytes of t's storage from `byteOffset` on (src/tensor.ts `sliceRows`
   * wraps it in a Tensor that never releases it). GPU backends need byteOffset % 256 == 0 (WebGPU's
   * binding alignment; it also keeps kernels' 16-byte accesses aligned) and throw E_ARG otherwise.
   */
  viewStorage?(t: Tensor, byteOffset: number, bytes: number): unknown;
  /**
   * t's storage from `byteOffset` on, taking over t's allocation (releasing it gives the whole
   * allocation back; t must not be used or disposed afterwards: src/tensor.ts `shrinkTo`). GPU backends
   * need byteOffset % 256 == 0, as for viewStorage.
   */
  takeStorage?(t: Tensor, byteOffset: number): unknown;
  /**
   * Bytes of tensor storage handed out and not yet released (pool size classes on GPUs, allocated
   * array bytes on the host backends, which share one count), and the most seen since the last
   * `resetPeak` — what the memory benchmarks report.
   */
  memoryStats?(): { inUse: number; peak: number };
  resetPeak?(): void;
  /** Gives the tensor's storage back (to a pool where the backend has one). */
  release(t: Tensor): void;
  /** Resolves when all work submitted so far has finished. */
  sync(): Promise<void>;
  /** Largest tensor in bytes this backend can hold. */
  readonly maxBytes: number;
  /**
   * Device-side timing for benchmarks (WebGPU timestamp queries, CUDA events): `stop()` resolves to
   * the GPU milliseconds spent on work submitted between `start()` and `stop()`. Absent on host backends.
   */
  readonly deviceTimer?: { start(): void; stop(): Promise<number> };
  /** What `hotpaths info` shows about the device: adapter info, features, limits, build flags. */
  readonly details?: Record<string, unknown>;
  /** Releases the device and pools (a caller's own GPUDevice is left alone). */
  destroy?(): void;
  /**
   * Measures this backend's ceilings now (slow: seconds; the bench caches them).
   * - copy: one buffer copied into another, 256 MiB (64 MiB when `quick`; less where the device cannot
   *   bind that much), far larger than the caches; GB/s counts bytes read plus bytes written. Median of
   *   several timed reps after a warm-up, on the device timer where the backend has one.
   * - FLOP/s: FP32 FMA chains, independent ones to hide the latency, on every core/thread (no tensor
   *   cores, no matrix units); each FMA counts as 2 FLOPs. The reference backend's number is a plain
   *   JS loop over numbers (f64 multiply-adds), not an FP32 FMA peak.
   * Results are finite and positive, or the call throws.
   */
  measureCeilings?(opts: { quick: boolean }): Promise<MachineCeilings>;
  readonly fp8: Fp8Kernels;
  /** GEMM kernels; optional while backends gain them (ops throw E_NOT_IMPLEMENTED without). */
  readonly gemm?: GemmKernels;
  /** Log-prob kernels; optional while backends gain them (ops throw E_NOT_IMPLEMENTED without). */
  readonly logprob?: LogprobKernels;
  /** GRPO kernels; optional while backends gain them (ops throw E_NOT_IMPLEMENTED without). */
  readonly grpo?: GrpoKernels;
  /** MoE kernels; optional while backends gain them (ops throw E_NOT_IMPLEMENTED without). */
  readonly moe?: MoeKernels;
  /** The trainer's nn kernels; optional while backends gain them (ops throw E_NOT_IMPLEMENTED without). */
  readonly nn?: NnKernels;
}
