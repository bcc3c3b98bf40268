// moe: DeepSeek-V3's router (gate, aux-loss-free bias, sequence-wise aux loss), the dispatch layout,
// block-aligned expert grouping (permute/unpermute), and dispatch/combine across expert-parallel
// ranks (a LocalGroup in one process, or NCCL across GPUs). Validates once here, then runs on the
// tensors' backend. Exact semantics: docs/API.md "## moe"; REFERENCE.md "MoE routing".
//
// Index values (expert ids) are checked here on host backends, where reading them costs nothing. GPU
// kernels skip a bad index and align counts it; every op that reads align's info back (alignBlocks,
// dispatch) throws on it, and dispatch reads the indices anyway to build its send lists.

import { HotpathsError, show } from '../errors.js';
import { dtypeBytes, type DType } from '../dtype.js';
import { dispatchRowLayout, type Backend, type BackendName, type MoeGroupScore, type MoeKernels, type MoeRouteParams, type MoeScoring } from '../runtime/backend.js';
import { startedBackend, type Runtime } from '../runtime/core.js';
import { sizeClass } from '../runtime/sizeclass.js';
import { shrinkTo, sliceRows, type Tensor } from '../tensor.js';
import { alignRowsMax, moeAlign } from '../reference/moe.js';
import { quantize, type QuantizedTensor } from './fp8.js';
import { gatherQuantized } from './gather.js';
import { matmul } from './gemm.js';
import {
  assertBoolean, assertDTypeIn, assertNumber, assertOneOf, assertOptions, assertRank, assertSameDevice, assertShapeEquals, assertTensor, hostValues, MAX_ELEMENTS, notImplemented,
} from './validate.js';

export type { MoeGroupScore, MoeScoring } from '../runtime/backend.js';

const SCORINGS = ['sigmoid', 'softmax'] as const;
const GROUP_SCORES = ['top2', 'max'] as const;

export interface GateOptions {
  /** Experts per token. */
  topk: number;
  /** 'sigmoid' (V3, default) or 'softmax' (V2). */
  scoring?: MoeScoring;
  /** Expert groups (E % nGroup == 0). Default 1 (no group limit). */
  nGroup?: number;
  /** Groups kept per token. Default nGroup. */
  topkGroup?: number;
  /** Group score: 'top2' (sum of the two best, V3; default with sigmoid) or 'max' (V2; default with softmax). */
  groupScore?: MoeGroupScore;
  /** f32 [E]: the correction bias, added to the scores for selection only. Default none. */
  bias?: Tensor;
  /** Normalise the chosen weights to sum 1. Default true with sigmoid, false with softmax. */
  normTopkProb?: boolean;
  /** Multiplies the weights. Default 1 (V3 uses 2.5). */
  routedScalingFactor?: number;
}

export interface GateResult {
  /** f32 [T, k]: routing weights from the unbiased scores. */
  weights: Tensor;
  /** i32 [T, k]: chosen experts, best (biased) first; ties -> lower index. */
  indices: Tensor;
  /** f32 [T, E]: unbiased scores (sigmoid or softmax of x·Wᵀ), kept for gateBackward and auxLoss. */
  scores: Tensor;
}

/**
 * x: f32|bf16 [T, H], weight: same dtype [E, H] -> routing of each token (logits x·Wᵀ in f32 through
 * gemm.matmul, then the route kernel). T may be 0.
 */
export async function gate(x: Tensor, weight: Tensor, opts: GateOptions): Promise<GateResult> {
  const op = 'moe.gate()';
  const { T, E } = checkGateInputs(op, x, weight);
  const { p, bias } = resolveGate(op, E, opts, x);
  const kernels = moeKernels(op, x);
  const scores = x.backend.empty('f32', [T, E]);
  const weights = x.backend.empty('f32', [T, p.topk]);
  const indices = x.backend.empty('i32', [T, p.topk]);
  if (T > 0) {
    const logits = await matmul(x, weight); // [T, E] = x · Wᵀ, f32
    try {
      await kernels.route(logits, bias, p, scores, weights, indices);
    } finally {
      logits.dispose();
    }
  }
  return { weights, indices, scores };
}

export interface GateBackwardOptions extends GateOptions {
  /** f32 [T, E]: an extra gradient on the scores (auxLoss's dScores). */
  dScores?: Tensor;
}

/**
 * dWeights: f32 [T, k] -> dx: f32 [T, H], dWeight: f32 [E, H] (through the chosen weights; the
 * selection is constant). opts are gate's (the same routing parameters) plus dScores.
 *   dLogits = routeBackward(scores, indices, dWeights, dScores)   [T, E]
 *   dx = dLogits · W,   dWeight = dLogitsᵀ · x                     (gemm.matmul, f32)
 * bf16 x or weight are widened to f32 first (exactly) so that both products are f32 GEMMs.
 * routed.indices are checked on host backends only (no sync in the backward pass; gate makes no bad
 * id): on GPU backends a bad id's slot adds no gradient.
 */
export async function gateBackward(x: Tensor, weight: Tensor, routed: GateResult, dWeights: Tensor, opts: GateBackwardOptions): Promise<{ dx: Tensor; dWeight: Tensor }> {
  const op = 'moe.gateBackward()';
  const { T, E, H } = checkGateInputs(op, x, weight);
  const { p } = resolveGate(op, E, opts, x);
  if (typeof routed !== 'object' || routed === null) throw new HotpathsError('E_ARG', `${op}: routed: expected gate()'s result { weights, indices, scores }, got ${show(routed)}`);
  const { scores, indices } = routed;
  const like = `to match x ${x.describe()} and weight ${weight.describe()}`;
  checkF32(op, 'routed.scores', scores, [T, E], like, x);
  checkIndices(op, 'routed.indices', indices, T, p.topk, E, x);
  checkF32(op, 'dWeights', dWeights, [T, p.topk], like, x);
  const dScores = opts.dScores ?? null;
  if (dScores !== null) checkF32(op, 'opts.dScores', dScores, [T, E], like, x);
  const kernels = moeKernels(op, x);
  const b = x.backend;
  if (T === 0) return { dx: zeros(b, 'f32', [0, H]), dWeight: zeros(b, 'f32', [E, H]) };
  const dLogits = b.empty('f32', [T, E]);
  const temps: Tensor[] = [dLogits];
  try {
    await kernels.routeBackward(scores, indices, dWeights, dScores, p, dLogits);
    const xf = x.dtype === 'f32' ? x : await widen(kernels, x, temps);
    const wf = weight.dtype === 'f32' ? weight : await widen(kernels, weight, temps);
    const dx = await matmul(dLogits, wf, { transB: false }); // [T, H] = dLogits · W
    const dWeight = await matmul(dLogits, xf, { transA: true, transB: false }); // [E, H] = dLogitsᵀ · x
    return { dx, dWeight };
  } finally {
    temps.forEach((t) => t.dispose());
  }
}

/**
 * Aux-loss-free balancing: bias f32 [E], tokensPerExpert i32 [E] -> new bias (f32 [E]) =
 * bias + gamma·sign(mean − load); sign 0 at the mean. gamma default 0.001 (V3).
 */
export async function updateBias(bias: Tensor, tokensPerExpert: Tensor, gamma?: number): Promise<Tensor> {
  const op = 'moe.updateBias()';
  assertTensor(`${op}: bias`, bias);
  assertDTypeIn(`${op}: bias`, bias, ['f32']);
  assertRank(`${op}: bias`, bias, 1);
  const E = bias.shape[0]!;
  if (E === 0) throw new HotpathsError('E_EMPTY', `${op}: bias: expected at least one expert, got ${bias.describe()}`);
  assertTensor(`${op}: tokensPerExpert`, tokensPerExpert);
  assertSameDevice(op, bias, tokensPerExpert);
  assertDTypeIn(`${op}: tokensPerExpert`, tokensPerExpert, ['i32']);
  assertShapeEquals(`${op}: tokensPerExpert`, tokensPerExpert, [E], `to match bias ${bias.describe()}`);
  const g = gamma ?? 0.001;
  assertNumber(`${op}: gamma`, g);
  const kernels = moeKernels(op, bias);
  const out = bias.backend.empty('f32', [E]);
  await kernels.updateBias(bias, tokensPerExpert, g, out);
  return out;
}

/**
 * Sequence-wise balance loss (REFERENCE.md) over sequences of seqLen consecutive tokens (default T,
 * T % seqLen == 0): per sequence α Σ_i f_i P_i with f_i = E/(k·L)·#{t : i ∈ topk(t)} and
 * P_i = (1/L) Σ_t s_{i,t} / (Σ_j s_{j,t} + 1e-20); the loss is their mean. Returns it with
 * dScores f32 [T, E] = d loss / d scores (pass it to gateBackward's opts.dScores). A bad id in
 * routed.indices throws E_ARG naming the first (GPU backends: found once the loss is read back).
 */
export async function auxLoss(routed: Pick<GateResult, 'scores' | 'indices'>, opts: { alpha: number; seqLen?: number }): Promise<{ loss: number; dScores: Tensor }> {
  const op = 'moe.auxLoss()';
  if (typeof routed !== 'object' || routed === null) throw new HotpathsError('E_ARG', `${op}: routed: expected { scores, indices } (gate()'s result), got ${show(routed)}`);
  assertOptions(`${op}: opts`, opts);
  if (opts === undefined) throw new HotpathsError('E_ARG', `${op}: opts: expected { alpha, seqLen? }, got undefined`);
  const { scores, indices } = routed;
  assertTensor(`${op}: routed.scores`, scores);
  assertDTypeIn(`${op}: routed.scores`, scores, ['f32']);
  assertRank(`${op}: routed.scores`, scores, 2);
  const [T, E] = scores.shape as [number, number];
  if (T === 0 || E === 0) throw new HotpathsError('E_EMPTY', `${op}: routed.scores: expected at least one token and one expert, got ${scores.describe()}`);
  assertTensor(`${op}: routed.indices`, indices);
  assertRank(`${op}: routed.indices`, indices, 2);
  checkIndices(op, 'routed.indices', indices, T, indices.shape[1]!, E, scores);
  if (indices.shape[1] === 0) throw new HotpathsError('E_EMPTY', `${op}: routed.indices: expected k ≥ 1, got ${indices.describe()}`);
  assertNumber(`${op}: opts.alpha`, opts.alpha, { min: 0 });
  const seqLen = opts.seqLen ?? T;
  assertNumber(`${op}: opts.seqLen`, seqLen, { min: 1, integer: true });
  if (T % seqLen !== 0) throw new HotpathsError('E_SHAPE', `${op}: opts.seqLen: expected a divisor of T = ${T} (scores ${scores.describe()}), got ${seqLen}`);
  const kernels = moeKernels(op, scores);
  const b = scores.backend, k = indices.shape[1]!;
  const dScores = b.empty('f32', [T, E]);
  if (hostValues(indices)) return { loss: await kernels.auxLoss(scores, indices, seqLen, opts.alpha, dScores), dScores };
  // GPU: the kernels skip a bad id; the layout kernel's tokensPerExpert, queued before the loss and read
  // after it (no second wait), sums to T·k only when there is none
  const perExpert = emptyLayout(b, T, E, 1);
  let good: number, loss: number;
  try {
    await kernels.layout(indices, E, 1, perExpert.tokensPerRank, perExpert.tokensPerExpert, perExpert.isTokenInRank);
    loss = await kernels.auxLoss(scores, indices, seqLen, opts.alpha, dScores);
    good = sum((await perExpert.tokensPerExpert.read()) as Int32Array);
  } catch (e) {
    dScores.dispose();
    throw e;
  } finally {
    for (const t of Object.values(perExpert)) t.dispose();
  }
  if (good !== T * k) {
    dScores.dispose();
    await rejectCountedBadIds(op, 'routed.indices', indices, E, T * k - good);
  }
  return { loss, dScores };
}

export interface DispatchLayout {
  /** i32 [R]: tokens each rank receives (a token once per rank). */
  tokensPerRank: Tensor;
  /** i32 [E]: (token, slot) pairs per expert. */
  tokensPerExpert: Tensor;
  /** u8 [T, R]: 1 where a token has an expert on the rank. */
  isTokenInRank: Tensor;
}

/**
 * indices: i32 [T, k] in [0, numExperts); numExperts % numRanks == 0 (rank r holds a contiguous E/R
 * experts). Bad indices throw E_ARG naming the first: host backends check them before; on GPU backends
 * the kernel skips them and tokensPerExpert is read back (a sync) to find that its sum is short of T·k.
 */
export async function dispatchLayout(indices: Tensor, numExperts: number, numRanks: number): Promise<DispatchLayout> {
  const op = 'moe.dispatchLayout()';
  assertTensor(`${op}: indices`, indices);
  assertRank(`${op}: indices`, indices, 2);
  assertNumber(`${op}: numExperts`, numExperts, { min: 1, integer: true });
  assertNumber(`${op}: numRanks`, numRanks, { min: 1, integer: true });
  if (numExperts % numRanks !== 0) throw new HotpathsError('E_ARG', `${op}: numRanks: expected a divisor of numExperts = ${numExperts} (each rank holds E/R experts), got ${numRanks}`);
  const [T, k] = indices.shape as [number, number];
  checkIndices(op, 'indices', indices, T, k, numExperts, indices);
  const kernels = moeKernels(op, indices);
  const b = indices.backend;
  if (T * k === 0) return { tokensPerRank: zeros(b, 'i32', [numRanks]), tokensPerExpert: zeros(b, 'i32', [numExperts]), isTokenInRank: zeros(b, 'u8', [T, numRanks]) };
  const out = emptyLayout(b, T, numExperts, numRanks);
  await kernels.layout(indices, numExperts, numRanks, out.tokensPerRank, out.tokensPerExpert, out.isTokenInRank);
  if (!hostValues(indices)) {
    const good = sum((await out.tokensPerExpert.read()) as Int32Array);
    if (good !== T * k) {
      for (const t of Object.values(out)) t.dispose();
      await rejectCountedBadIds(op, 'indices', indices, numExperts, T * k - good);
    }
  }
  return out;
}

/** A layout kernel's outputs for T tokens, E experts over R ranks, unwritten. */
function emptyLayout(b: Backend, T: number, E: number, R: number): DispatchLayout {
  return { tokensPerRank: b.empty('i32', [R]), tokensPerExpert: b.empty('i32', [E]), isTokenInRank: b.empty('u8', [T, R]) };
}

/** The (token, slot) pairs grouped by expert and padded per expert to a multiple of blockSize. */
export interface Alignment {
  tokens: number;
  topk: number;
  numExperts: number;
  blockSize: number;
  /** Padded total P (a multiple of blockSize). */
  padded: number;
  /** Pairs dropped by the capacity (0 without one). */
  dropped: number;
  /** i32 [≥ P]: pair id t·k + j per row, sentinel T·k for padding. */
  sortedPairs: Tensor;
  /** i32 [≥ P / blockSize]: one expert per block. */
  blockExpert: Tensor;
  /** i32 [≥ P]: expert per row, −1 for padding: the grouped-contiguous FP8 GEMM's groupIndex (view the first P). */
  rowExpert: Tensor;
  /** i32 [T, k]: row of each pair, −1 if dropped. */
  pairPos: Tensor;
  /** i32 [E]: pairs kept per expert. */
  counts: Tensor;
}

/**
 * indices: i32 [T, k] -> Alignment (reads back P: a sync on GPU backends). capacity: max pairs per
 * expert (default 0: none), keeping each expert's lowest pair ids and counting the rest in `dropped`.
 * sortedPairs/rowExpert have Pmax = roundup(T·k + E·(blockSize − 1), blockSize) rows, blockExpert
 * Pmax / blockSize; rows past P hold the sentinel T·k / −1. Bad indices throw E_ARG naming the first
 * (host: checked before; GPU: counted by the kernel, found in the read-back, then the ids read).
 */
export async function alignBlocks(indices: Tensor, numExperts: number, blockSize: number, opts: { capacity?: number } = {}): Promise<Alignment> {
  const op = 'moe.alignBlocks()';
  assertTensor(`${op}: indices`, indices);
  assertRank(`${op}: indices`, indices, 2);
  assertNumber(`${op}: numExperts`, numExperts, { min: 1, integer: true });
  assertNumber(`${op}: blockSize`, blockSize, { min: 1, integer: true });
  assertOptions(`${op}: opts`, opts);
  const capacity = opts?.capacity ?? 0;
  assertNumber(`${op}: opts.capacity`, capacity, { min: 0, integer: true });
  const [T, k] = indices.shape as [number, number];
  checkIndices(op, 'indices', indices, T, k, numExperts, indices);
  const { a, bad } = await runAlign(op, indices, numExperts, blockSize, capacity, false);
  if (bad > 0) {
    disposeAlignment(a);
    await rejectCountedBadIds(op, 'indices', indices, numExperts, bad);
  }
  return a;
}

/** Releases an alignment's tensors (their storage goes back to the backend's pool). */
export function disposeAlignment(a: Alignment): void {
  for (const t of [a.sortedPairs, a.blockExpert, a.rowExpert, a.pairPos, a.counts]) t.dispose();
}

/** x: f32|bf16 [T, H] -> [P, H] in expert order (padding rows zero); optional weights f32 [T, k] scale each row. */
export async function permute(x: Tensor, a: Alignment, opts: { weights?: Tensor } = {}): Promise<Tensor> {
  const op = 'moe.permute()';
  checkAlignment(op, a);
  assertTensor(`${op}: x`, x);
  assertDTypeIn(`${op}: x`, x, ['f32', 'bf16']);
  assertRank(`${op}: x`, x, 2);
  assertSameDevice(op, x, a.sortedPairs);
  if (x.shape[0] !== a.tokens) throw new HotpathsError('E_SHAPE', `${op}: x: expected ${a.tokens} rows (the alignment's tokens), got ${x.describe()}`);
  assertOptions(`${op}: opts`, opts);
  const weights = opts?.weights ?? null;
  if (weights !== null) checkF32(op, 'opts.weights', weights, [a.tokens, a.topk], "to match the alignment's [T, k]", x);
  const H = x.shape[1]!;
  checkSize(op, a.padded, H);
  const kernels = moeKernels(op, x);
  const out = x.backend.empty(x.dtype, [a.padded, H]);
  if (a.padded > 0 && H > 0) await kernels.permute(x, a.sortedPairs, a.topk, weights, out);
  return out;
}

/**
 * y: f32|bf16 [P, H] -> [T, H] = Σ_j w[t,j]·y[pairPos[t,j]] accumulated in f32 in slot order
 * (weights f32 [T, k] or none = 1); dropped pairs add nothing. Output dtype: opts.out, default y's.
 */
export async function unpermute(y: Tensor, a: Alignment, opts: { weights?: Tensor; out?: 'f32' | 'bf16' } = {}): Promise<Tensor> {
  const op = 'moe.unpermute()';
  checkAlignment(op, a);
  assertTensor(`${op}: y`, y);
  assertDTypeIn(`${op}: y`, y, ['f32', 'bf16']);
  assertRank(`${op}: y`, y, 2);
  assertSameDevice(op, y, a.pairPos);
  if (y.shape[0] !== a.padded) throw new HotpathsError('E_SHAPE', `${op}: y: expected ${a.padded} rows (the alignment's padded total P), got ${y.describe()}`);
  assertOptions(`${op}: opts`, opts);
  const weights = opts?.weights ?? null;
  if (weights !== null) checkF32(op, 'opts.weights', weights, [a.tokens, a.topk], "to match the alignment's [T, k]", y);
  const outType = opts?.out ?? y.dtype;
  assertOneOf(`${op}: opts.out`, outType, ['f32', 'bf16']);
  const H = y.shape[1]!;
  checkSize(op, a.tokens, H);
  const kernels = moeKernels(op, y);
  if (a.padded === 0) return zeros(y.backend, outType, [a.tokens, H]); // every pair dropped
  const out = y.backend.empty(outType, [a.tokens, H]);
  if (a.tokens > 0 && H > 0) await kernels.unpermute(y, a.pairPos, weights, out);
  return out;
}

/**
 * Backward of unpermute: dOut [T, H] -> dy [P, H] (= permute(dOut, weights): padding rows zero) and,
 * when weights were given, dWeights f32 [T, k] = dOut[t]·y[pairPos[t,j]] (0 for dropped pairs).
 */
export async function unpermuteBackward(dOut: Tensor, y: Tensor, a: Alignment, opts: { weights?: Tensor } = {}): Promise<{ dy: Tensor; dWeights?: Tensor }> {
  const op = 'moe.unpermuteBackward()';
  checkAlignment(op, a);
  assertTensor(`${op}: y`, y);
  assertDTypeIn(`${op}: y`, y, ['f32', 'bf16']);
  assertRank(`${op}: y`, y, 2);
  if (y.shape[0] !== a.padded) throw new HotpathsError('E_SHAPE', `${op}: y: expected ${a.padded} rows (the alignment's padded total P), got ${y.describe()}`);
  assertTensor(`${op}: dOut`, dOut);
  if (dOut.shape.length === 2 && dOut.shape[1] !== y.shape[1]) throw new HotpathsError('E_SHAPE', `${op}: dOut: expected ${y.shape[1]} columns to match y ${y.describe()}, got ${dOut.describe()}`);
  assertSameDevice(op, dOut, y);
  const dy = await permute(dOut, a, opts);
  const weights = opts?.weights;
  if (!weights) return { dy };
  if (a.padded === 0 || y.shape[1] === 0) return { dy, dWeights: zeros(dOut.backend, 'f32', [a.tokens, a.topk]) }; // nothing kept
  const dWeights = dOut.backend.empty('f32', [a.tokens, a.topk]);
  await moeKernels(op, y).unpermuteWeightGrad(dOut, y, a.pairPos, dWeights);
  return { dy, dWeights };
}

/**
 * The expert-parallel group a process drives. A LocalGroup holds every rank in this process (tests,
 * one GPU); an NCCL group holds one rank per process (`hotpaths launch`). dispatch/combine only use
 * these two collectives.
 */
export interface ExpertGroup {
  /** Ranks in the group. */
  readonly size: number;
  /** The ranks this process drives (LocalGroup: all of them; NCCL: [rank]). */
  readonly ranks: readonly number[];
  readonly backend: Backend;
  /**
   * Optional: the most tokens any rank dispatches at once (M), agreed by every rank when the group was
   * made (GroupOptions). With it, dispatch's device path sends into fixed slots of M rows a peer without
   * waiting for the counts first; a rank with more than M tokens makes every rank's dispatch throw E_ARG.
   */
  readonly maxTokensPerRank?: number;
  /** sendCounts[i][d]: rows local rank ranks[i] sends to rank d -> recvCounts[i][s]: rows it gets from rank s. */
  exchangeCounts(sendCounts: Int32Array[]): Promise<Int32Array[]>;
  /** send[i]: rows ordered by destination rank; recv[i]: rows ordered by source rank (same dtype and row length). */
  allToAllRows(send: Tensor[], sendCounts: Int32Array[], recv: Tensor[], recvCounts: Int32Array[]): Promise<void>;
  /**
   * Optional (dispatch's device path; both groups here have it): local rank i's one-row table send[i]
   * (i32 [1, W]) lands as row ranks[i] of every rank's recv (i32 [R, W]); `read()` then gives each
   * local rank's recv on the host. NCCL: on a side stream after the work queued so far, so kernels
   * queued between start and read() run meanwhile; read() waits for the gather alone.
   */
  startAllGather?(send: Tensor[], recv: Tensor[]): PendingGather;
  /**
   * Optional (dispatch/combine's device path): for each part and local rank i, rows
   * [sendStart[d], +sendRows[d]) of part.send[i] go to rank d and land at rows [recvStart[s], +recvRows[s])
   * of rank d's part.recv, windows[i] describing local rank i (what s sends d equals what d receives
   * from s). Returns at once; work queued after `wait()` sees the rows. NCCL: one group of
   * ncclSend/ncclRecv on a side stream, after the work queued so far (a move of 0 rows, e.g. a rank to
   * itself, is skipped).
   */
  startMoveRows?(parts: { send: Tensor[]; recv: Tensor[] }[], windows: RowWindows[]): PendingMove;
  /**
   * Optional: symmetric windows (an NCCL group made with maxTokensPerRank and maxHidden, on GPUs of one
   * node whose NCCL has the device API). dispatch/combine then write rows straight into their peers'
   * memory with their own kernels and need no send/recv.
   */
  readonly windows?: SymmetricWindows;
  destroy?(): void;
}

/**
 * One buffer on every rank of a group (NCCL's symmetric memory), addressed by every rank's kernels,
 * in two halves that successive ops (dispatch or combine) use in turn: each a table of R rows of
 * `tableWords` i32 and a data area of R slots of M = maxTokensPerRank rows (`dataBytes`). Views never
 * own memory.
 * Every launch goes on the stream the caller chose; `onSide` runs launches on the group's side stream
 * (which first waits for the work queued so far); the PendingMoves of `allGather` and `landed` order
 * later work on the addon's stream after them.
 */
export interface SymmetricWindows {
  readonly tableWords: number;
  readonly dataBytes: number;
  /** This rank's table in half `half` (0|1) as rows of `words` (≤ tableWords) i32: i32 [R, words], row s written by rank s. */
  tables(half: number, words: number): Tensor;
  /**
   * Rows [first, first + count) of rank `owner`'s data area in half `half`, seen as rows of `width`
   * elements of `dtype` (slot s of M rows: rows [s·M, (s + 1)·M), rank s's rows); E_SHAPE where R·M
   * such rows do not fit.
   */
  rows(half: number, owner: number, first: number, count: number, dtype: DType, width: number): Tensor;
  /**
   * The barrier across the ranks on the barrier stream, after the side stream's work so far: once
   * through, what every rank's side stream queued before its own is visible to all.
   */
  landed(): PendingMove;
  /**
   * One of this rank's receive regions, if one is free and holds rows·width bytes: fp8e4m3 [rows, width]
   * over it, lent until that tensor (or what shrinkTo makes of it) is disposed; else null.
   */
  takeRegion(rows: number, width: number): { index: number; codes: Tensor } | null;
  /** Runs fn with every launch going to the side stream, which first waits for the work queued so far. */
  onSide<T>(fn: () => T): T;
  /**
   * dispatch's steps up to the host's read of the tables, queued by one native call (see
   * dispatchWindows): the plan into sendRow, pairRank and table (one cooperative launch); each piece's
   * pack (its tokens [ends[c − 1], ends[c])) into this rank's slot of each rank's data half (side
   * stream), whose last CTA then signals each destination that the piece's rows have landed; then table
   * to row `rank` of every rank's tables in half `half` (rows of table.size words) and their read. The
   * pack is queued right after the plan: it cannot start before the host has queued it.
   */
  dispatchStart(a: WindowsDispatchStart): WindowsDispatch;
  /** Ops (dispatch or combine) so far: the next uses half count % 2. */
  count: number;
  /**
   * With HOTPATHS_EP_TRACE=1 (else absent): a timing mark on a stream, and the op's timeline printed
   * (each mark's GPU time and the host's time when it was queued, ms after the first); with
   * HOTPATHS_EP_TRACE=host, the host's times alone (nothing queued on the streams).
   */
  trace?(label: string, stream: 'main' | 'side' | 'barrier'): void;
  traceDump?(op: string): void;
}

/** SymmetricWindows.dispatchStart's arguments: the op's inputs, its pieces, and the buffers it fills. */
export interface WindowsDispatchStart {
  half: number;
  x: Tensor;
  indices: Tensor;
  weights: Tensor;
  numExperts: number;
  fp8: boolean;
  /** The pieces' token ends (tokenEnds): non-decreasing, the last T. */
  ends: Int32Array;
  sendRow: Tensor;
  pairRank: Tensor;
  table: Tensor;
  blockSize: number;
  /**
   * FP8 rows, k ≤ 32, H a multiple of 256 (the same on every rank), or null: recv's codes are handed over
   * as `codes`, R·M rows of H in which the received rows lie in order from row receiveAnchor(rank)·M −
   * (the rows of the sources before the anchor) on. With `region` ≥ 0 codes is that receive region of
   * this rank's window (takeRegion), and the two anchored sources (receiveAnchor) store their codes
   * straight into it; with −1 it is the pool's, and this rank's own rows' codes alone go there straight.
   * Every rank names its choice to every other at the start (DestRows::ready in
   * native/cuda/moe_dispatch.cuh), and scatter (which must take codes as recv, with ranges null) copies
   * the other sources' codes.
   */
  receive: { codes: Tensor; region: number } | null;
  /**
   * With `receive` (and k + min(k, R) ≤ 32), or null: expertX's storage sized before the counts are
   * known (rows: E4M3 [rows, H], scales: f32 [rows, H/128]). The packs then also write this rank's own
   * rows' codes and scales to their places below `rows` in it, while they wait on the link (the places
   * from every rank's table, which each rank's plan stores before its ready word), and scatter, which
   * must take the same tensors as expertX, copies only the other sources' rows there.
   */
  ownExpertX: { rows: Tensor; scales: Tensor } | null;
}

/** The receive layout's outputs (cudaMoeDispatchRecvLayout's): base [R, E/R], counts [E/R], sortedPairs and rowExpert [Pmax], blockExpert [Pmax / blockSize], layoutWork [E/R + 2]. */
export interface WindowsLayout {
  base: Tensor;
  counts: Tensor;
  sortedPairs: Tensor;
  blockExpert: Tensor;
  rowExpert: Tensor;
  layoutWork: Tensor;
}

/** A windows dispatch under way (SymmetricWindows.dispatchStart). */
export interface WindowsDispatch {
  /** Blocks until the gathered tables are here; i32 [R · table.size], row s written by rank s. Once. */
  readTables(): Int32Array;
  /**
   * Queues on the addon's stream the receive layout into `layout` (from the gathered tables: it runs beside
   * the packs), then per piece, once its pack is done here (expertX's padding rows are not written),
   * each source's rows (each once its landing signal is there): ranges [C, R, 3] holds (first row of source s's slot, rows, first received row).
   * ranges null: the kernels take them from the gathered tables on the device, so the call may come
   * before readTables; the outputs then hold R·M rows (the most the slots can), and expertX any number
   * of rows (a row placed past them is not copied; sortedPairs and pairPos still say where it goes).
   * expertX null: recv and the index outputs only (expand: false). Once; it orders the addon's stream
   * after every piece.
   */
  scatter(a: { layout: WindowsLayout; ranges: Int32Array | null; expertX: Tensor | null; expertScales: Tensor | null; pairPos: Tensor; recvIndices: Tensor; recvWeights: Tensor; recv: Tensor; recvScales: Tensor | null }): void;
  /** Every piece's pack, for an error path's settle (a no-op once scatter has queued). */
  readonly pieces: PendingMove;
}

/** One local rank's rows to and from each rank, as windows of its buffers (startMoveRows). */
export interface RowWindows {
  /** [R]: first row and rows of what goes to rank d. */
  sendStart: Int32Array;
  sendRows: Int32Array;
  /** [R]: first row and rows of what comes from rank s. */
  recvStart: Int32Array;
  recvRows: Int32Array;
}

export interface PendingGather {
  read(): Promise<Int32Array[]>;
}

export interface PendingMove {
  /** Orders the backend's later work after the move (await it once, before touching the rows or their buffers). */
  wait(): Promise<void> | void;
}

/** Options of localGroup and ncclGroup (every rank passes the same). */
export interface GroupOptions {
  /**
   * The most tokens any rank passes to one dispatch (M ≥ 1). Dispatch's device path then moves M rows
   * to every peer (fixed slots) and starts them before the counts come back; see docs/API.md for what
   * that costs. Default none: the counts first, then exactly the routed rows.
   */
  maxTokensPerRank?: number;
  /**
   * With maxTokensPerRank: the largest hidden size dispatched or combined (bf16 rows; f32 rows of up to
   * half of it). An NCCL group whose GPUs can load and store each other's memory (one node, NVLink) and
   * whose NCCL (≥ 2.28, and the addon built with its headers) has the device API then reserves one
   * symmetric buffer of about R · maxTokensPerRank · (6 · maxHidden + 3072) bytes a rank (two halves
   * of rows up to bf16, two receive regions of FP8 codes), and dispatch/combine write rows straight
   * into their peers' memory. There dispatch allocates recv and its index arrays for R ·
   * maxTokensPerRank rows, and expertX for as many rows as the largest expanded dispatch of the group
   * had before (the pool's size class of them), before the counts are read, so that its last kernels
   * are queued before that read, and returns views of the rows received; with FP8 rows recv's codes are
   * lent from a free receive region until recv is disposed (docs/API.md). Ignored by localGroup, and by an NCCL
   * group where the device API is missing (it says so with `verbose`; the send/recv path runs instead).
   */
  maxHidden?: number;
}

/** opts.maxHidden checked: a positive integer, or undefined. */
export function groupHidden(op: string, opts: GroupOptions | undefined): number | undefined {
  const h = opts?.maxHidden;
  if (h === undefined) return undefined;
  assertNumber(`${op}: opts.maxHidden`, h, { min: 1, max: MAX_ELEMENTS, integer: true });
  return h;
}

/** opts.maxTokensPerRank checked: a positive integer, or undefined. */
export function groupSlots(op: string, opts: GroupOptions | undefined): number | undefined {
  assertOptions(`${op}: opts`, opts);
  const m = opts?.maxTokensPerRank;
  if (m === undefined) return undefined;
  assertNumber(`${op}: opts.maxTokensPerRank`, m, { min: 1, max: MAX_ELEMENTS, integer: true });
  return m;
}

/**
 * A group of `size` simulated ranks in this process, on one backend (every backend that has the moe
 * kernels): the transport is the backend's copyRows. backend: a Backend (runtime.backend), the Runtime
 * init() resolved to, or the name of one already started (init() or getBackend() resolved); default
 * 'reference'. opts: GroupOptions (one process: every rank trivially agrees).
 */
export function localGroup(size: number, backend?: Backend | Runtime | BackendName, opts?: GroupOptions): ExpertGroup {
  const op = 'moe.localGroup()';
  assertNumber(`${op}: size`, size, { min: 1, integer: true });
  const slots = groupSlots(op, opts);
  let b: Backend | undefined;
  if (typeof backend === 'object' && backend !== null) {
    // a Runtime carries its Backend; anything else must be a Backend itself
    const given = 'backend' in backend && typeof backend.backend === 'object' && backend.backend !== null ? backend.backend : backend;
    if (typeof (given as Partial<Backend>).fromHost !== 'function') {
      throw new HotpathsError('E_ARG', `${op}: backend: expected a Backend (runtime.backend), a Runtime or a backend name, got an object that is none of them`);
    }
    b = given as Backend;
  } else {
    const name = backend ?? 'reference';
    if (typeof name !== 'string') throw new HotpathsError('E_ARG', `${op}: backend: expected a Backend (runtime.backend), a Runtime or a backend name, got ${show(backend)}`);
    b = startedBackend(name as BackendName);
    if (!b) throw new HotpathsError('E_BACKEND', `${op}: backend '${name}' has not been started; await init({ backend: '${name}' }) first, or pass runtime.backend`);
  }
  if (!b.moe) throw new HotpathsError('E_NOT_IMPLEMENTED', `${op}: the ${b.name} backend has no moe kernels yet (its copyRows is the transport); use 'reference'`);
  return new LocalGroup(size, b, b.moe, slots);
}

class LocalGroup implements ExpertGroup {
  readonly ranks: readonly number[];
  constructor(readonly size: number, readonly backend: Backend, private readonly kernels: MoeKernels, readonly maxTokensPerRank?: number) {
    this.ranks = Object.freeze(Array.from({ length: size }, (_, i) => i));
  }

  async exchangeCounts(sendCounts: Int32Array[]): Promise<Int32Array[]> {
    const n = this.size;
    checkCounts('LocalGroup.exchangeCounts()', 'sendCounts', sendCounts, n);
    // rank i gets from rank s what s sends to i
    return Array.from({ length: n }, (_, i) => Int32Array.from({ length: n }, (_, s) => sendCounts[s]![i]!));
  }

  async allToAllRows(send: Tensor[], sendCounts: Int32Array[], recv: Tensor[], recvCounts: Int32Array[]): Promise<void> {
    const op = 'LocalGroup.allToAllRows()';
    const n = this.size;
    checkCounts(op, 'sendCounts', sendCounts, n);
    checkCounts(op, 'recvCounts', recvCounts, n);
    if (send.length !== n || recv.length !== n) throw new HotpathsError('E_ARG', `${op}: expected ${n} send and recv tensors, got ${send.length} and ${recv.length}`);
    const rowLen = (t: Tensor) => (t.shape[0] ? t.size / t.shape[0] : t.shape.slice(1).reduce((x, y) => x * y, 1));
    for (let r = 0; r < n; r++) {
      for (const [name, t, counts] of [['send', send[r]!, sendCounts[r]!], ['recv', recv[r]!, recvCounts[r]!]] as const) {
        assertTensor(`${op}: ${name}[${r}]`, t);
        if (t.backend !== this.backend) throw new HotpathsError('E_DEVICE', `${op}: ${name}[${r}] ${t.describe()} is not on the group's ${this.backend.name} backend`);
        if (t.dtype !== send[0]!.dtype || rowLen(t) !== rowLen(send[0]!)) throw new HotpathsError('E_SHAPE', `${op}: ${name}[${r}] ${t.describe()} differs in dtype or row length from send[0] ${send[0]!.describe()}`);
        const rows = counts.reduce((x, y) => x + y, 0);
        if (t.shape[0] !== rows) throw new HotpathsError('E_SHAPE', `${op}: ${name}[${r}]: expected ${rows} rows (Σ ${name}Counts[${r}]), got ${t.describe()}`);
      }
    }
    for (let s = 0; s < n; s++) {
      let srcRow = 0;
      for (let d = 0; d < n; d++) {
        const rows = sendCounts[s]![d]!;
        if (recvCounts[d]![s] !== rows) throw new HotpathsError('E_ARG', `${op}: rank ${s} sends ${rows} rows to rank ${d}, which expects ${recvCounts[d]![s]}`);
        let dstRow = 0;
        for (let s2 = 0; s2 < s; s2++) dstRow += recvCounts[d]![s2]!;
        if (rows > 0) await this.kernels.copyRows(send[s]!, srcRow, recv[d]!, dstRow, rows);
        srcRow += rows;
      }
    }
  }

  startAllGather(send: Tensor[], recv: Tensor[]): PendingGather {
    const n = this.size;
    if (send.length !== n || recv.length !== n) throw new HotpathsError('E_ARG', `LocalGroup.startAllGather(): expected ${n} send and recv tensors, got ${send.length} and ${recv.length}`);
    const copies = (async () => {
      for (let s = 0; s < n; s++) for (let d = 0; d < n; d++) await this.kernels.copyRows(send[s]!, 0, recv[d]!, s, 1);
    })();
    return { read: async () => (await copies, Promise.all(recv.map(async (t) => (await t.read()) as Int32Array))) };
  }

  startMoveRows(parts: { send: Tensor[]; recv: Tensor[] }[], windows: RowWindows[]): PendingMove {
    const op = 'LocalGroup.startMoveRows()';
    const n = this.size;
    if (windows.length !== n) throw new HotpathsError('E_ARG', `${op}: expected ${n} windows, got ${windows.length}`);
    const queued: (Promise<void> | void)[] = [];
    for (let s = 0; s < n; s++) {
      for (let d = 0; d < n; d++) {
        const rows = windows[s]!.sendRows[d]!;
        if (windows[d]!.recvRows[s] !== rows) throw new HotpathsError('E_ARG', `${op}: rank ${s} sends ${rows} rows to rank ${d}, which expects ${windows[d]!.recvRows[s]}`);
        if (rows === 0) continue;
        // copyRows runs now on a host backend and is queued in order on a GPU: the rows are there for
        // whatever comes next
        for (const p of parts) queued.push(this.kernels.copyRows(p.send[s]!, windows[s]!.sendStart[d]!, p.recv[d]!, windows[d]!.recvStart[s]!, rows));
      }
    }
    return { wait: async () => void (await Promise.all(queued)) };
  }
}

/** Joins the NCCL group: set by the Node entry (src/runtime/index.ts), absent from the browser build. */
let ncclFactory: ((opts?: GroupOptions) => Promise<ExpertGroup>) | undefined;

/** Internal: the Node entry registers src/native/nccl.ts's createNcclGroup here (this file stays browser-safe). */
export function setNcclGroupFactory(f: (opts?: GroupOptions) => Promise<ExpertGroup>): void {
  ncclFactory = f;
}

/**
 * This process's rank of an NCCL group started by `hotpaths launch` (cuda backend; libnccl loaded at run
 * time). Every rank calls it alike (a collective: the ranks check that they passed the same opts, and all
 * throw E_ARG otherwise). Later calls share the process's communicator; each group's destroy() releases
 * its share.
 */
export async function ncclGroup(opts?: GroupOptions): Promise<ExpertGroup> {
  if (!ncclFactory) throw new HotpathsError('E_BACKEND', 'moe.ncclGroup(): NCCL is not part of this build (the browser entry hotpaths/web has no native code)');
  return ncclFactory(opts); // (checks opts after the ranks have compared them: a bad value on one rank leaves none waiting)
}

export interface DispatchInput {
  /** bf16|f32 [T, H]: this rank's tokens. */
  x: Tensor;
  /** i32 [T, k]: global expert ids. */
  indices: Tensor;
  /** f32 [T, k]: routing weights (used by combine). */
  weights: Tensor;
}

export interface DispatchOptions {
  numExperts: number;
  /** Send e4m3 + 1×128 scales instead of x's dtype (H % 128 == 0). Default false. */
  fp8?: boolean;
  /** Block size of the receivers' expert grouping. Default 128 (the grouped FP8 GEMM's). */
  blockSize?: number;
  /**
   * Pieces the rows to each rank travel in on the device path, so that a receiver puts one piece into
   * expert order while the next is in flight. Default 2 (1 over the symmetric windows of a 2-rank
   * group with expand: false). The result does not depend on it.
   */
  chunks?: number;
  /**
   * Write the received rows into expert order, expertX [P, H] (default true). false: expertX is null
   * and nothing but recv holds the rows; the grouped GEMM reads them through the alignment instead
   * (`gemm.fp8GroupedContiguous(recv, w, rowExpert, { gather: { pairs: alignment.sortedPairs, k } })`),
   * so the expansion into expert order — each token once per local expert of its, plus the padding —
   * is never written: at top-8 over 2 ranks that is ~4× recv's bytes of HBM writes a dispatch saved,
   * and expertX's memory. The gathering GEMM is slower than the expansion plus the GEMM on expertX
   * (~0.8× on an H100 at DeepSeek-V3's shapes, bench/RESULTS.md 2026-11-23): false trades time for memory.
   */
  expand?: boolean;
}

export interface Dispatched {
  /**
   * Received rows, once per (source token, this rank), ordered by source rank then token. (Over an NCCL
   * group's windows with FP8 rows, recv.data may be lent from the group's buffer:
   * dispose it — moe.disposeDispatched — before the group is destroyed (after, using it throws E_ARG),
   * and soon, so that later dispatches find a receive region free.)
   */
  recv: Tensor | QuantizedTensor;
  /** i32 [R, k]: local expert ids of each received row, −1 where the expert lives elsewhere. */
  recvIndices: Tensor;
  /** f32 [R, k]: their routing weights (0 where −1). */
  recvWeights: Tensor;
  /** alignBlocks over recvIndices (local experts). */
  alignment: Alignment;
  /**
   * The received rows permuted into expert order, [P, H]: what the grouped GEMM consumes; null with
   * expand: false (the GEMM then gathers recv's rows through alignment.sortedPairs). Its padding rows
   * (alignment.rowExpert −1) are unspecified — the grouped GEMMs skip them whatever they hold, as
   * DeepGEMM's contiguous layout does; over an NCCL group's windows they are left unwritten, the other
   * paths zero them.
   */
  expertX: Tensor | QuantizedTensor | null;
  /** What combine needs to send results back (counts, source rows). */
  readonly handle: unknown;
}

/** What dispatch leaves for combine (Dispatched.handle). */
class DispatchHandle {
  constructor(
    readonly group: ExpertGroup,
    readonly numExperts: number,
    /** This local rank's tokens T, hidden size H, and x's dtype (combine's output). */
    readonly tokens: number,
    readonly hidden: number,
    readonly dtype: 'f32' | 'bf16',
    /** Rows sent to each rank and received from each rank. */
    readonly sendCounts: Int32Array,
    readonly recvCounts: Int32Array,
    /** i32 [T, R]: the send-buffer row that carried token t to rank d, −1 where none did (combine's pairPos). */
    readonly backPos: Tensor,
    /** The fixed slots' rows a peer (the group's maxTokensPerRank on the device path), 0: packed rows. */
    readonly slotRows = 0,
  ) {
    this.sendStart = slotRows > 0 ? Int32Array.from(sendCounts, (_, d) => d * slotRows) : starts(sendCounts);
    this.backRows = slotRows > 0 ? sendCounts.length * slotRows : sum(sendCounts);
  }

  /** The first send row of each destination rank (backPos's numbering), and the rows of a buffer laid out so. */
  readonly sendStart: Int32Array;
  readonly backRows: number;
}

/**
 * Sends each token once to every rank holding one of its experts; inputs[i] is local rank
 * group.ranks[i]'s. Per local rank: reads indices and weights back (host: free; GPU: a sync; both are
 * [T, k]), checks the ids, and builds its send lists (rows ordered by destination rank, then token);
 * gathers the rows (permute with k = 1), quantizes them when opts.fp8, exchanges counts, then moves
 * the payload (x rows, or FP8 codes and their 1×128 scales), the rows' local expert ids and their
 * weights with allToAllRows. Each receiver then aligns its rows by local expert (blockSize) and
 * permutes them into expertX [P, H] (FP8 codes and scales each permuted; codes move bit-exact) —
 * unless opts.expand is false, which leaves expertX null (see DispatchOptions.expand).
 * All local inputs share k, H and x's dtype.
 *
 * Backward: d(expertX) -> d(x) is combine(group, dExpertX, dispatched, { weighted: false }).
 */
export async function dispatch(group: ExpertGroup, inputs: DispatchInput[], opts: DispatchOptions): Promise<Dispatched[]> {
  const op = 'moe.dispatch()';
  checkGroup(op, group);
  const b = group.backend;
  if (!Array.isArray(inputs) || inputs.length !== group.ranks.length) {
    throw new HotpathsError('E_ARG', `${op}: inputs: expected one { x, indices, weights } per local rank (${group.ranks.length}), got ${Array.isArray(inputs) ? inputs.length : show(inputs)}`);
  }
  assertOptions(`${op}: opts`, opts);
  if (opts === undefined) throw new HotpathsError('E_ARG', `${op}: opts: expected { numExperts, fp8?, blockSize? }, got undefined`);
  const E = opts.numExperts;
  const R = group.size;
  assertNumber(`${op}: opts.numExperts`, E, { min: 1, integer: true });
  if (E % R !== 0) throw new HotpathsError('E_ARG', `${op}: opts.numExperts: expected a multiple of the group size ${R} (each rank holds E/R experts), got ${E}`);
  const useFp8 = opts.fp8 ?? false;
  assertBoolean(`${op}: opts.fp8`, useFp8);
  const blockSize = opts.blockSize ?? 128;
  assertNumber(`${op}: opts.blockSize`, blockSize, { min: 1, integer: true });
  const chunks = opts.chunks ?? DEFAULT_CHUNKS;
  assertNumber(`${op}: opts.chunks`, chunks, { min: 1, integer: true });
  const expand = opts.expand ?? true;
  assertBoolean(`${op}: opts.expand`, expand);
  const kernels = moeKernels(op, b);
  const perRank = E / R;

  let k = -1, H = -1, dtype: 'f32' | 'bf16' = 'f32';
  for (let i = 0; i < inputs.length; i++) {
    const inp = inputs[i];
    if (typeof inp !== 'object' || inp === null) throw new HotpathsError('E_ARG', `${op}: inputs[${i}]: expected { x, indices, weights }, got ${show(inp)}`);
    const { x, indices, weights } = inp;
    assertTensor(`${op}: inputs[${i}].x`, x);
    assertDTypeIn(`${op}: inputs[${i}].x`, x, ['f32', 'bf16']);
    assertRank(`${op}: inputs[${i}].x`, x, 2);
    if (x.backend !== b) throw new HotpathsError('E_DEVICE', `${op}: inputs[${i}].x ${x.describe()} is not on the group's ${b.name} backend`);
    const [T, Hi] = x.shape as [number, number];
    assertTensor(`${op}: inputs[${i}].indices`, indices);
    assertRank(`${op}: inputs[${i}].indices`, indices, 2);
    if (i === 0) {
      k = indices.shape[1]!;
      H = Hi;
      dtype = x.dtype as 'f32' | 'bf16';
    }
    if (Hi !== H || x.dtype !== dtype) throw new HotpathsError('E_SHAPE', `${op}: inputs[${i}].x ${x.describe()}: every local rank needs the same H and dtype as inputs[0].x (${dtype}, H = ${H})`);
    checkIndices(op, `inputs[${i}].indices`, indices, T, k, E, x);
    checkF32(op, `inputs[${i}].weights`, weights, [T, k], `to match inputs[${i}].indices ${indices.describe()}`, x);
  }
  if (k === 0) throw new HotpathsError('E_EMPTY', `${op}: indices: expected k ≥ 1 experts per token`);
  if (H === 0) throw new HotpathsError('E_EMPTY', `${op}: x: expected H ≥ 1`);
  if (useFp8 && H % 128 !== 0) throw new HotpathsError('E_SHAPE', `${op}: opts.fp8: the FP8 payload takes 1×128 scales, so H must be a multiple of 128, got H = ${H}`);

  const dev = devicePath(kernels, group);
  if (dev && windowsFit(group, inputs.length, dispatchRowLayout(useFp8 ? H : H * dtypeBytes(dtype), useFp8 ? H / 128 : 0, k).stride)) {
    return dispatchWindows(op, group, inputs, { E, k, H, dtype, useFp8, blockSize, chunks: opts.chunks ?? (!expand && R === 2 ? DEFAULT_WINDOW_LEAN_PAIR_CHUNKS : DEFAULT_CHUNKS), expand });
  }
  if (dev) return dispatchOnDevice(op, group, dev, inputs, { E, k, H, dtype, useFp8, blockSize, chunks, expand });

  // send lists, per local rank, built on the host from the read-back ids and weights
  const temps: Tensor[] = [];
  const plans = [] as { sendCounts: Int32Array; backPos: Tensor; sendX: Tensor | QuantizedTensor; sendIdx: Tensor; sendW: Tensor; T: number }[];
  try {
    for (let i = 0; i < inputs.length; i++) {
      const { x, indices, weights } = inputs[i]!;
      const T = x.shape[0]!;
      const idx = (hostValues(indices) ?? (await indices.read())) as Int32Array;
      const w = (hostValues(weights) ?? (await weights.read())) as Float32Array;
      for (let q = 0; q < T * k; q++) {
        const e = idx[q]!;
        if (!(e >= 0 && e < E)) throw new HotpathsError('E_ARG', `${op}: inputs[${i}].indices[${Math.floor(q / k)}, ${q % k}] = ${e} is outside [0, numExperts = ${E})`);
      }
      const member = new Uint8Array(T * R); // token t has an expert on rank d
      for (let q = 0; q < T * k; q++) member[Math.floor(q / k) * R + Math.floor(idx[q]! / perRank)] = 1;
      const sendCounts = new Int32Array(R);
      for (let q = 0; q < T * R; q++) sendCounts[q % R] = sendCounts[q % R]! + member[q]!;
      const nSend = sendCounts.reduce((s, v) => s + v, 0);
      const rows = new Int32Array(nSend);
      const sIdx = new Int32Array(nSend * k).fill(-1);
      const sW = new Float32Array(nSend * k);
      const back = new Int32Array(T * R).fill(-1);
      let row = 0;
      for (let d = 0; d < R; d++) {
        for (let t = 0; t < T; t++) {
          if (!member[t * R + d]) continue;
          rows[row] = t;
          back[t * R + d] = row;
          for (let j = 0; j < k; j++) {
            const e = idx[t * k + j]!;
            if (Math.floor(e / perRank) !== d) continue;
            sIdx[row * k + j] = e - d * perRank;
            sW[row * k + j] = w[t * k + j]!;
          }
          row++;
        }
      }
      const backPos = b.fromHost(back, 'i32', [T, R]);
      const sendIdx = track(temps, b.fromHost(sIdx, 'i32', [nSend, k]));
      const sendW = track(temps, b.fromHost(sW, 'f32', [nSend, k]));
      let sendX: Tensor | QuantizedTensor = track(temps, b.empty(dtype, [nSend, H]));
      if (nSend > 0) {
        const rowsT = track(temps, b.fromHost(rows, 'i32', [nSend]));
        await kernels.permute(x, rowsT, 1, null, sendX); // gather: [nSend, H] ordered by destination
        if (useFp8) {
          sendX = await quantize(sendX, { block: [1, 128] });
          track(temps, sendX.data);
          track(temps, sendX.scales);
        }
      } else if (useFp8) {
        sendX = emptyFp8(b, 0, H);
        track(temps, sendX.data);
        track(temps, sendX.scales);
      }
      plans.push({ sendCounts, backPos, sendX, sendIdx, sendW, T });
    }

    const sendCounts = plans.map((p) => p.sendCounts);
    const recvCounts = await group.exchangeCounts(sendCounts);
    const nRecv = recvCounts.map((c) => c.reduce((s, v) => s + v, 0));
    const recvIdx = nRecv.map((n) => b.empty('i32', [n, k]));
    const recvW = nRecv.map((n) => b.empty('f32', [n, k]));
    let recvX: (Tensor | QuantizedTensor)[];
    if (useFp8) {
      const qs = nRecv.map((n) => emptyFp8(b, n, H));
      await group.allToAllRows(plans.map((p) => (p.sendX as QuantizedTensor).data), sendCounts, qs.map((q) => q.data), recvCounts);
      await group.allToAllRows(plans.map((p) => (p.sendX as QuantizedTensor).scales), sendCounts, qs.map((q) => q.scales), recvCounts);
      recvX = qs;
    } else {
      const xs = nRecv.map((n) => b.empty(dtype, [n, H]));
      await group.allToAllRows(plans.map((p) => p.sendX as Tensor), sendCounts, xs, recvCounts);
      recvX = xs;
    }
    await group.allToAllRows(plans.map((p) => p.sendIdx), sendCounts, recvIdx, recvCounts);
    await group.allToAllRows(plans.map((p) => p.sendW), sendCounts, recvW, recvCounts);

    const out: Dispatched[] = [];
    for (let i = 0; i < inputs.length; i++) {
      // −1 marks "expert on another rank": align skips it (and counts it with the bad ids, which the
      // send side has already excluded)
      const { a } = await runAlign(op, recvIdx[i]!, perRank, blockSize, 0, true);
      const rx = recvX[i]!;
      // (without expand, recv and the alignment are the output: the grouped GEMM gathers)
      const expertX = expand ? await gatherRows(kernels, rx, a) : null;
      const p = plans[i]!;
      const handle = new DispatchHandle(group, E, p.T, H, dtype, p.sendCounts, recvCounts[i]!, p.backPos);
      out.push({ recv: rx, recvIndices: recvIdx[i]!, recvWeights: recvW[i]!, alignment: a, expertX, handle });
    }
    return out;
  } finally {
    temps.forEach((t) => t.dispose());
  }
}

/**
 * expertOut[i]: [P, H] bf16|f32 in dispatched[i]'s expert order -> [T, H] per local rank (x's dtype):
 * Σ over the token's experts of weight · output, reduced in f32 (weighted: false sums without the
 * weights: the backward of dispatch). Each receiver first reduces its own experts' outputs per
 * received row (unpermute, f32 sum, rounded to expertOut's dtype: the payload sent back), the rows go
 * home with allToAllRows, and each source sums its rows from every rank in f32, in rank order.
 * opts.chunks: the pieces the rows travel in on the device paths (default 2; 1 over the group's
 * symmetric windows); the results do not depend on it.
 *
 * Backward: d(out) -> d(expertOut) is dispatch of d(out) with the same routing (combineBackward does
 * it, with the routing weights' gradient too).
 */
export async function combine(group: ExpertGroup, expertOut: Tensor[], dispatched: Dispatched[], opts: { weighted?: boolean; chunks?: number } = {}): Promise<Tensor[]> {
  const op = 'moe.combine()';
  checkGroup(op, group);
  assertOptions(`${op}: opts`, opts);
  const weighted = opts?.weighted ?? true;
  assertBoolean(`${op}: opts.weighted`, weighted);
  if (opts?.chunks !== undefined) assertNumber(`${op}: opts.chunks`, opts.chunks, { min: 1, integer: true });
  const chunks = opts?.chunks ?? DEFAULT_CHUNKS;
  const { handles, dtype } = checkCombineInputs(op, group, expertOut, dispatched, 'expertOut');
  const b = group.backend;
  const kernels = moeKernels(op, b);
  if (kernels.unpermuteRows && handles[0]?.slotRows && windowsFit(group, dispatched.length, handles[0].hidden * dtypeBytes(dtype))) {
    return combineWindows(group, kernels.unpermuteRows.bind(kernels), expertOut[0]!, dispatched[0]!, handles[0], dtype, weighted, opts?.chunks ?? DEFAULT_WINDOW_COMBINE_CHUNKS);
  }
  if (kernels.unpermuteRows && group.startMoveRows) {
    return combineOnDevice(group, kernels.unpermuteRows.bind(kernels), expertOut, dispatched, handles, dtype, weighted, chunks);
  }
  const partial: Tensor[] = [];
  const back: Tensor[] = [];
  try {
    for (let i = 0; i < dispatched.length; i++) {
      const d = dispatched[i]!;
      const h = handles[i]!;
      const n = d.recvIndices.shape[0]!;
      // every received row has an expert here (dispatch sets no capacity), so n > 0 means P > 0
      const part = b.empty(dtype, [n, h.hidden]);
      partial.push(part);
      if (n > 0) await kernels.unpermute(expertOut[i]!, d.alignment.pairPos, weighted ? d.recvWeights : null, part);
      back.push(b.empty(dtype, [h.sendCounts.reduce((s, v) => s + v, 0), h.hidden]));
    }
    await group.allToAllRows(partial, handles.map((h) => h.recvCounts), back, handles.map((h) => h.sendCounts));
    const outs: Tensor[] = [];
    for (let i = 0; i < dispatched.length; i++) {
      const h = handles[i]!;
      const out = b.empty(h.dtype, [h.tokens, h.hidden]);
      const bp = await packedBackPos(h);
      try {
        if (h.tokens > 0) await kernels.unpermute(back[i]!, bp, null, out); // Σ over ranks, f32
      } finally {
        if (bp !== h.backPos) bp.dispose();
      }
      outs.push(out);
    }
    return outs;
  } finally {
    partial.forEach((t) => t.dispose());
    back.forEach((t) => t.dispose());
  }
}

/**
 * Releases everything dispatch allocated (received rows, ids, weights, the alignment, expertX, and
 * what the handle holds for combine); call it after the last combine/combineBackward of the step.
 */
export function disposeDispatched(dispatched: Dispatched[]): void {
  for (const d of dispatched) {
    const parts = [d.recv, d.expertX].flatMap(partsOf);
    for (const t of [...parts, d.recvIndices, d.recvWeights]) t.dispose();
    disposeAlignment(d.alignment);
    if (d.handle instanceof DispatchHandle) d.handle.backPos.dispose();
  }
}

/**
 * Backward of combine(weighted: true): dOut[i]: [T, H] (x's dtype) per local rank, with the expert
 * outputs the forward combined ->
 *   dExpertOut[i]: [P, H] (dOut's dtype) = w · dOut[t] for each (token, expert) row, 0 for padding;
 *   dWeights[i]: f32 [T, k] = dOut[t] · expertOut[row of (t, j)] (the routing weights' gradient).
 * dOut goes to the experts' ranks as dispatch moves x (same counts), the products come back as combine
 * moves outputs.
 */
export async function combineBackward(group: ExpertGroup, dOut: Tensor[], expertOut: Tensor[], dispatched: Dispatched[]): Promise<{ dExpertOut: Tensor[]; dWeights: Tensor[] }> {
  const op = 'moe.combineBackward()';
  checkGroup(op, group);
  const { handles, dtype } = checkCombineInputs(op, group, expertOut, dispatched, 'expertOut');
  const b = group.backend;
  const kernels = moeKernels(op, b);
  if (!Array.isArray(dOut) || dOut.length !== dispatched.length) throw new HotpathsError('E_ARG', `${op}: dOut: expected ${dispatched.length} tensors (one per local rank), got ${Array.isArray(dOut) ? dOut.length : show(dOut)}`);
  for (let i = 0; i < dOut.length; i++) {
    const h = handles[i]!;
    assertTensor(`${op}: dOut[${i}]`, dOut[i]);
    assertDTypeIn(`${op}: dOut[${i}]`, dOut[i]!, [h.dtype]);
    assertShapeEquals(`${op}: dOut[${i}]`, dOut[i]!, [h.tokens, h.hidden], "(the dispatched x's [T, H])");
    if (dOut[i]!.backend !== b) throw new HotpathsError('E_DEVICE', `${op}: dOut[${i}] ${dOut[i]!.describe()} is not on the group's ${b.name} backend`);
  }
  const k = dispatched[0]!.recvIndices.shape[1]!;
  const temps: Tensor[] = [];
  try {
    // dOut rows to the experts' ranks, in dispatch's send order (backPos names each (t, d) row)
    const backPos: Tensor[] = [];
    const sendD: Tensor[] = [];
    const recvD: Tensor[] = [];
    for (let i = 0; i < dOut.length; i++) {
      const h = handles[i]!;
      const nSend = h.sendCounts.reduce((s, v) => s + v, 0);
      const s = track(temps, b.empty(h.dtype, [nSend, h.hidden]));
      const bp = await packedBackPos(h);
      backPos.push(bp === h.backPos ? bp : track(temps, bp));
      if (nSend > 0) {
        const bpv = (hostValues(bp) ?? (await bp.read())) as Int32Array;
        const rows = new Int32Array(nSend);
        for (let q = 0; q < bpv.length; q++) if (bpv[q]! >= 0) rows[bpv[q]!] = Math.floor(q / group.size);
        await kernels.permute(dOut[i]!, track(temps, b.fromHost(rows, 'i32', [nSend])), 1, null, s);
      }
      sendD.push(s);
      recvD.push(track(temps, b.empty(h.dtype, [dispatched[i]!.recvIndices.shape[0]!, h.hidden])));
    }
    await group.allToAllRows(sendD, handles.map((h) => h.sendCounts), recvD, handles.map((h) => h.recvCounts));
    const dExpertOut: Tensor[] = [];
    const dwRecv: Tensor[] = [];
    for (let i = 0; i < dOut.length; i++) {
      const d = dispatched[i]!;
      const a = d.alignment;
      const n = d.recvIndices.shape[0]!;
      // as a dOut of this rank's received rows, recvD is unpermute's dOut: its backward gives both
      const dy = b.empty(recvD[i]!.dtype, [a.padded, handles[i]!.hidden]);
      if (a.padded > 0) await kernels.permute(recvD[i]!, a.sortedPairs, k, d.recvWeights, dy);
      dExpertOut.push(dy);
      const dw = track(temps, b.empty('f32', [n, k]));
      // every received row has an expert here (dispatch sets no capacity), so n > 0 means P > 0
      if (n > 0) await kernels.unpermuteWeightGrad(recvD[i]!, expertOut[i]!, a.pairPos, dw);
      dwRecv.push(dw);
    }
    // per-slot products go home; each (t, j) lives on one rank, the others send 0 for it
    const dwBack = handles.map((h) => track(temps, b.empty('f32', [h.sendCounts.reduce((s, v) => s + v, 0), k])));
    await group.allToAllRows(dwRecv, handles.map((h) => h.recvCounts), dwBack, handles.map((h) => h.sendCounts));
    const dWeights: Tensor[] = [];
    for (let i = 0; i < dOut.length; i++) {
      const h = handles[i]!;
      const dw = b.empty('f32', [h.tokens, k]);
      if (h.tokens > 0) await kernels.unpermute(dwBack[i]!, backPos[i]!, null, dw);
      dWeights.push(dw);
    }
    return { dExpertOut, dWeights };
  } finally {
    temps.forEach((t) => t.dispose());
  }
}

/**
 * The handle's backPos in the packed numbering (rows to rank 0, then rank 1, … with no gaps): itself,
 * or, for a fixed-slot dispatch, a new tensor (slot row d·M + i -> sendStart[d] + i; a host read).
 */
async function packedBackPos(h: DispatchHandle): Promise<Tensor> {
  if (h.slotRows === 0) return h.backPos;
  const M = h.slotRows, R = h.sendCounts.length;
  const first = starts(h.sendCounts);
  const v = Int32Array.from((hostValues(h.backPos) ?? (await h.backPos.read())) as Int32Array);
  for (let q = 0; q < v.length; q++) if (v[q]! >= 0) v[q] = first[q % R]! + (v[q]! - (q % R) * M);
  return h.backPos.backend.fromHost(v, 'i32', [h.tokens, R]);
}

// ---------------------------------------------------------------- dispatch/combine on the device
//
// With the optional kernels (dispatchPlan, dispatchPack, dispatchRecvLayout, dispatchScatter,
// unpermuteRows) and a group with startAllGather/startMoveRows, nothing but the counts comes back to
// the host, and the transfers overlap the work around them (NCCL runs them on a side stream). Counts
// first (the default):
//   dispatch  plan (send rows, each pair's place among its expert's pairs, counts)
//             -> all-gather of every rank's counts (side stream) ‖ pack (FP8 quantize, once per
//                destination row, with each row's local ids, weights and pair ranks)
//             -> read the counts (the one sync): sizes of everything
//             -> the rows to every other rank in `chunks` pieces (side stream) ‖ the receiver's
//                layout (expert segments, each source's first row in each), then the rows a rank
//                sends itself, straight from its send buffer into expert order
//             -> each piece from the others into expert order as soon as it has arrived
// With the group's maxTokensPerRank M (fixed slots), dispatch does not wait for the counts before the
// payload: the plan puts rank d's rows at [d·M, d·M + count_d) of an [R·M]-row send buffer, and
//             plan -> all-gather of the counts (side stream) ‖ pack -> every peer's whole slot (M rows,
//             the rows past count_d junk) in `chunks` pieces (side stream, queued behind the gather)
//             -> read the counts while the payload travels -> outputs, receive layout, own rows
//             -> each piece's first count_s rows of each source's slot into expert order.
//             A rank with T > M still sends (its slots truncated) and flags it in its table; after
//             the read every rank throws the same E_ARG (no rank is left waiting in NCCL).
//   combine   per piece: reduce the rows that go back to each other rank, then send them (side
//             stream, exact sizes, to dispatch's send rows: packed or in slots), while the next piece
//             is reduced; the rows a rank sent itself are reduced straight into its receive buffer;
//             then, as each piece comes home, the final sum (in rank order) of the tokens it completes.
// The results are the host path's bit for bit (same orders, same f32 sums), with or without slots.

const DEFAULT_CHUNKS = 2;
/**
 * combine over the symmetric windows moves its rows in one piece unless asked otherwise: on 2× and 4×
 * H200 (bench/RESULTS.md, 2026-11-22, starts aligned) one piece reached 0.84–0.94× the raw all-to-all
 * on 2 ranks and 0.86–0.90× on 4; two pieces 0.87–1.02× and 0.67–0.71× (each piece adds a barrier and
 * its own reduction launches, and the final sum overlaps little).
 */
const DEFAULT_WINDOW_COMBINE_CHUNKS = 1;
/**
 * dispatch over the symmetric windows with expand: false between 2 ranks moves its rows in one piece
 * unless asked otherwise: with one peer the pack is short (~0.1 ms at 4096 tokens, H 7168), the scatter
 * a second piece would hide behind it is ~4× lighter without the expansion, and the second barrier and
 * launches cost more than that overlap gains (2 of a 4× H200 host, bench/RESULTS.md, 2026-11-22: 1 piece
 * 0.66–0.80× the raw all-to-all, 2 pieces 0.52–0.73×, 1 better in 6 of 7 runs). With more ranks the pack
 * writes each token to ~3 peers and the second piece pays (4 ranks: 2 pieces 0.73–0.85× against
 * 0.69–0.80×, better in 5 of 5), so they keep DEFAULT_CHUNKS.
 */
const DEFAULT_WINDOW_LEAN_PAIR_CHUNKS = 1;

type DeviceMoe = Required<Pick<MoeKernels, 'dispatchPlan' | 'dispatchPack' | 'dispatchRecvLayout' | 'dispatchScatter'>>;

/** The device path's kernels when the backend has them all and the group can move rows on its own. */
function devicePath(k: MoeKernels, group: ExpertGroup): DeviceMoe | null {
  if (!k.dispatchPlan || !k.dispatchPack || !k.dispatchRecvLayout || !k.dispatchScatter || !k.unpermuteRows) return null;
  if (typeof group.startAllGather !== 'function' || typeof group.startMoveRows !== 'function') return null;
  return {
    dispatchPlan: k.dispatchPlan.bind(k), dispatchPack: k.dispatchPack.bind(k), dispatchRecvLayout: k.dispatchRecvLayout.bind(k), dispatchScatter: k.dispatchScatter.bind(k),
  };
}

/**
 * The tokens [0, hi) of local rank `me` whose rows from every rank are home once combine's pieces 0..c
 * (of C) have arrived: a rank's rows to d are in token order, so the row of token t is at most row t, and
 * once d's first e rows are home every t < e has its row from d; hi is the least such e over the other
 * ranks (a rank whose rows are all home bounds nothing; after the last piece, every token).
 */
function completeTokens(h: DispatchHandle, me: number, c: number, C: number): number {
  let hi = h.tokens;
  if (c === C - 1) return hi;
  for (let d = 0; d < h.sendCounts.length; d++) {
    const n = h.sendCounts[d]!;
    const [a0, len] = piece(c, C, n);
    if (d !== me && a0 + len < n) hi = Math.min(hi, a0 + len);
  }
  return hi;
}

/**
 * Waits for every queued transfer or launch, then disposes each list's tensors: no buffer goes back to
 * the pool while a transfer or a launch on another stream may still touch it.
 */
async function settle(moves: PendingMove[], ...lists: Tensor[][]): Promise<void> {
  for (const m of moves) await m.wait();
  for (const list of lists) list.forEach((t) => t.dispose());
}

/** Rows [start, start + len) of piece c (of C) of n rows. */
function piece(c: number, C: number, n: number): [number, number] {
  const a = Math.floor((c * n) / C), z = Math.floor(((c + 1) * n) / C);
  return [a, z - a];
}

/** Exclusive prefix sums. */
function starts(counts: Int32Array): Int32Array {
  const out = new Int32Array(counts.length);
  for (let i = 1; i < counts.length; i++) out[i] = out[i - 1]! + counts[i - 1]!;
  return out;
}

function sum(a: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) n += a[i]!;
  return n;
}

interface DispatchShape {
  E: number;
  k: number;
  H: number;
  dtype: 'f32' | 'bf16';
  useFp8: boolean;
  blockSize: number;
  chunks: number;
  /** DispatchOptions.expand: false leaves expertX null (not allocated, not written). */
  expand: boolean;
}

async function dispatchOnDevice(op: string, group: ExpertGroup, kern: DeviceMoe, inputs: DispatchInput[], sh: DispatchShape): Promise<Dispatched[]> {
  const { E, k, H, dtype, useFp8, blockSize: bs, chunks, expand } = sh;
  const b = group.backend;
  const R = group.size, per = E / R, W = R + E + 1;
  // M > 0: fixed slots of M rows a peer, sent before the counts are known; 0: the counts first
  const M = group.maxTokensPerRank ?? 0;
  const kernels = moeKernels(op, b);
  const temps: Tensor[] = [];
  const kept: Tensor[] = []; // outputs, released if anything fails
  const moves: PendingMove[] = [];
  const keep = <T extends Tensor>(t: T) => track(kept, t);
  try {
    // plan: sendRow [T, R] (also combine's backPos), pairRank [T, k], the counts table [1, W]
    const plans: { T: number; sendRow: Tensor; pairRank: Tensor; table: Tensor }[] = [];
    for (const { x, indices } of inputs) {
      const T = x.shape[0]!;
      const p = { T, sendRow: keep(b.empty('i32', [T, R])), pairRank: track(temps, b.empty('i32', [T, k])), table: track(temps, b.empty('i32', [1, W])) };
      if (M > 0) await kern.dispatchPlan(indices, E, p.sendRow, p.pairRank, p.table, M);
      else await kern.dispatchPlan(indices, E, p.sendRow, p.pairRank, p.table);
      plans.push(p);
    }
    // every rank's table to every rank (in flight while the send buffers are packed)
    const gathered = plans.map(() => track(temps, b.empty('i32', [R, W])));
    const gather = group.startAllGather!(plans.map((p) => p.table), gathered);
    // send buffers: R slots of M rows, or the worst case (every token to min(R, k) ranks) packed; one
    // packed row a destination
    const layout = dispatchRowLayout(useFp8 ? H : H * dtypeBytes(dtype), useFp8 ? H / 128 : 0, k);
    if (M > 0) checkSize(op, R * M, layout.stride); // (the same on every rank: none throws alone)
    const packs: Tensor[] = [];
    for (let i = 0; i < inputs.length; i++) {
      const { x, indices, weights } = inputs[i]!;
      const packed = track(temps, b.empty('u8', [M > 0 ? R * M : plans[i]!.T * Math.min(R, k), layout.stride]));
      await kern.dispatchPack(x, indices, weights, plans[i]!.sendRow, plans[i]!.pairRank, E, useFp8, packed);
      packs.push(packed);
    }
    // fixed slots: the whole slot to every other rank, piece by piece, before the counts are read (the
    // receiver uses the first count_s rows of source s's slot; a rank's rows to itself never travel)
    const slotRecv = M > 0 ? packs.map(() => track(temps, b.empty('u8', [R * M, layout.stride]))) : [];
    if (M > 0) {
      const parts = [{ send: packs, recv: slotRecv }];
      for (let c = 0; c < chunks; c++) moves.push(group.startMoveRows!(parts, group.ranks.map((me) => slotWindows(me, R, M, c, chunks))));
    }
    const tables = await gather.read();

    // a rank past its slots, or bad ids anywhere, stop every rank alike (each sees every rank's table);
    // the transfers above pair up on every rank all the same
    await checkTables(op, tables[0]!, W, R, E, k, M, (s) => {
      const i = group.ranks.indexOf(s);
      return i >= 0 ? { i, indices: inputs[i]!.indices } : undefined;
    });

    // each local rank's counts, buffers and receive layout
    const ranks = group.ranks.map((me, i) => {
      const { sendCounts, recvCounts, n, P } = tableCounts(tables[i]!, W, me, R, E, bs);
      const Pmax = alignRowsMax(n * k, per, bs);
      checkSize(op, Pmax, 1);
      checkSize(op, P, H);
      const recv = emptyRows(b, useFp8, dtype, n, H);
      const expertX = expand ? emptyRows(b, useFp8, dtype, P, H) : null;
      for (const u of [recv, expertX].flatMap(partsOf)) keep(u);
      const a: Alignment = {
        tokens: n, topk: k, numExperts: per, blockSize: bs, padded: P, dropped: 0,
        sortedPairs: keep(b.empty('i32', [Pmax])), blockExpert: keep(b.empty('i32', [Pmax / bs])), rowExpert: keep(b.empty('i32', [Pmax])),
        pairPos: keep(b.empty('i32', [n, k])), counts: keep(b.empty('i32', [per])),
      };
      return {
        me, sendCounts, recvCounts, sendStart: starts(sendCounts), recvStart: starts(recvCounts), n, recv, expertX, a,
        recvIndices: keep(b.empty('i32', [n, k])), recvWeights: keep(b.empty('f32', [n, k])),
        recvPacked: M > 0 ? slotRecv[i]! : track(temps, b.empty('u8', [n, layout.stride])), base: track(temps, b.empty('i32', [R, per])),
      };
    });
    // counts first: the rows to the other ranks now, piece by piece, exactly the routed ones
    if (M === 0) {
      const parts = [{ send: packs, recv: ranks.map((r) => r.recvPacked) }];
      for (let c = 0; c < chunks; c++) moves.push(group.startMoveRows!(parts, ranks.map((r) => windowsOf(r, c, chunks))));
    }
    // the receive layout runs while they are in flight
    for (let i = 0; i < ranks.length; i++) {
      const r = ranks[i]!;
      await kern.dispatchRecvLayout(gathered[i]!, r.me, E, bs, k, r.base, r.a.counts, r.a.sortedPairs, r.a.blockExpert, r.a.rowExpert, rowsOf(r.expertX), scalesOf(r.expertX));
    }
    const scatter = (r: (typeof ranks)[number], src: Tensor, srcRow: number, rows: number, recvRow: number, source: number) =>
      rows > 0
        ? kern.dispatchScatter({
          src, srcRow, rows, recvRow, base: r.base, source, k, expertX: rowsOf(r.expertX), expertScales: scalesOf(r.expertX), sortedPairs: r.a.sortedPairs,
          pairPos: r.a.pairPos, recvIndices: r.recvIndices, recvWeights: r.recvWeights, recv: rowsOf(r.recv), recvScales: scalesOf(r.recv),
        })
        : undefined;
    // meanwhile, the rows each rank sends itself, from its send buffer (its slot, or its packed rows)
    for (let i = 0; i < ranks.length; i++) {
      const r = ranks[i]!;
      await scatter(r, packs[i]!, M > 0 ? r.me * M : r.sendStart[r.me]!, r.sendCounts[r.me]!, r.recvStart[r.me]!, r.me);
    }
    // then the others' rows, each piece once it is in (fixed slots: only the slot's first count_s rows)
    for (let c = 0; c < chunks; c++) {
      await moves[c]!.wait();
      for (const r of ranks) {
        for (let s = 0; s < R; s++) {
          if (s === r.me) continue;
          if (M > 0) {
            const [a0, len] = piece(c, chunks, M);
            const rows = Math.max(0, Math.min(a0 + len, r.recvCounts[s]!) - a0);
            await scatter(r, r.recvPacked, s * M + a0, rows, r.recvStart[s]! + a0, s);
          } else {
            const [a0, len] = piece(c, chunks, r.recvCounts[s]!);
            await scatter(r, r.recvPacked, r.recvStart[s]! + a0, len, r.recvStart[s]! + a0, s);
          }
        }
      }
    }
    return ranks.map((r, i) => ({
      recv: r.recv, recvIndices: r.recvIndices, recvWeights: r.recvWeights, alignment: r.a, expertX: r.expertX,
      handle: new DispatchHandle(group, E, plans[i]!.T, H, dtype, r.sendCounts, r.recvCounts, plans[i]!.sendRow, M),
    }));
  } catch (e) {
    await settle(moves, kept);
    throw e;
  } finally {
    await settle(moves, temps);
  }
}

/**
 * Every rank's counts table (rows of `stride` i32, read back): a rank past its slots or bad ids anywhere
 * make every rank throw the same E_ARG (each sees every table); `indicesOf(s)` gives rank s's indices
 * where this process drives it, for naming the bad position.
 */
async function checkTables(op: string, t: Int32Array, stride: number, R: number, E: number, k: number, M: number, indicesOf: (s: number) => { i: number; indices: Tensor } | undefined): Promise<void> {
  for (let s = 0; s < R; s++) {
    const v = t[s * stride + R + E]!;
    if (v < 0) throw new HotpathsError('E_ARG', `${op}: rank ${s} dispatches T = ${-v} tokens, more than the group's maxTokensPerRank = ${M}`);
  }
  for (let s = 0; s < R; s++) {
    const bad = t[s * stride + R + E]!;
    if (bad === 0) continue;
    const mine = indicesOf(s);
    if (mine) {
      const idx = (await mine.indices.read()) as Int32Array;
      const q = idx.findIndex((e) => !(e >= 0 && e < E));
      throw new HotpathsError('E_ARG', `${op}: inputs[${mine.i}].indices[${Math.floor(q / k)}, ${q % k}] = ${idx[q]} is outside [0, numExperts = ${E})`);
    }
    throw new HotpathsError('E_ARG', `${op}: rank ${s}'s indices hold ${bad} expert ids outside [0, numExperts = ${E})`);
  }
}

/** Rank me's counts from every rank's table (rows of `stride`): rows it sends each rank and gets from each, n received, P padded expert rows. */
function tableCounts(t: Int32Array, stride: number, me: number, R: number, E: number, bs: number): { sendCounts: Int32Array; recvCounts: Int32Array; n: number; P: number } {
  const per = E / R;
  const sendCounts = Int32Array.from({ length: R }, (_, d) => t[me * stride + d]!);
  const recvCounts = Int32Array.from({ length: R }, (_, s) => t[s * stride + me]!);
  let P = 0;
  for (let l = 0; l < per; l++) {
    let c = 0;
    for (let s = 0; s < R; s++) c += t[s * stride + R + me * per + l]!;
    P += Math.ceil(c / bs) * bs;
  }
  return { sendCounts, recvCounts, n: sum(recvCounts), P };
}

/** Piece c of a local rank's transfers: what it sends each other rank and receives from it. */
function windowsOf(r: { me: number; sendCounts: Int32Array; recvCounts: Int32Array; sendStart: Int32Array; recvStart: Int32Array }, c: number, C: number): RowWindows {
  const R = r.sendCounts.length;
  const w: RowWindows = { sendStart: new Int32Array(R), sendRows: new Int32Array(R), recvStart: new Int32Array(R), recvRows: new Int32Array(R) };
  for (let d = 0; d < R; d++) {
    if (d === r.me) continue;
    const [sa, sn] = piece(c, C, r.sendCounts[d]!), [ra, rn] = piece(c, C, r.recvCounts[d]!);
    w.sendStart[d] = r.sendStart[d]! + sa;
    w.sendRows[d] = sn;
    w.recvStart[d] = r.recvStart[d]! + ra;
    w.recvRows[d] = rn;
  }
  return w;
}

/** Piece c of rank `me`'s fixed-slot transfers: slot rows [c·M/C, (c+1)·M/C) of every other rank's slot, both ways. */
function slotWindows(me: number, R: number, M: number, c: number, C: number): RowWindows {
  const w: RowWindows = { sendStart: new Int32Array(R), sendRows: new Int32Array(R), recvStart: new Int32Array(R), recvRows: new Int32Array(R) };
  const [a0, len] = piece(c, C, M);
  for (let d = 0; d < R; d++) {
    if (d === me) continue;
    w.sendStart[d] = w.recvStart[d] = d * M + a0;
    w.sendRows[d] = w.recvRows[d] = len;
  }
  return w;
}

type UnpermuteRows = NonNullable<MoeKernels['unpermuteRows']>;

async function combineOnDevice(
  group: ExpertGroup, unpermuteRows: UnpermuteRows, expertOut: Tensor[], dispatched: Dispatched[], handles: DispatchHandle[], dtype: DType, weighted: boolean, chunks: number,
): Promise<Tensor[]> {
  const b = group.backend;
  const R = group.size;
  const temps: Tensor[] = [];
  const outs: Tensor[] = [];
  const moves: PendingMove[] = [];
  try {
    // receiver side: the reduced rows of each received row (partial, by source); sender side: the
    // rows coming home (back, by destination at dispatch's send rows: packed, or each in its slot)
    const ranks = group.ranks.map((me, i) => {
      const h = handles[i]!, d = dispatched[i]!;
      return {
        me, h, d, w: weighted ? d.recvWeights : null,
        recvStart: starts(h.recvCounts),
        partial: track(temps, b.empty(dtype, [d.recvIndices.shape[0]!, h.hidden])),
        back: track(temps, b.empty(dtype, [h.backRows, h.hidden])),
        out: track(outs, b.empty(h.dtype, [h.tokens, h.hidden])),
        summed: 0, // tokens whose final sum is queued
      };
    });
    for (let c = 0; c < chunks; c++) {
      for (let i = 0; i < ranks.length; i++) {
        const r = ranks[i]!;
        for (let s = 0; s < R; s++) {
          if (s === r.me) continue;
          const [a0, len] = piece(c, chunks, r.h.recvCounts[s]!);
          if (len > 0) await unpermuteRows(expertOut[i]!, r.d.alignment.pairPos, r.w, r.recvStart[s]! + a0, len, r.partial, r.recvStart[s]! + a0);
        }
      }
      // the reduced rows of piece c go home; the next piece is reduced meanwhile
      const windows = ranks.map((r) => windowsOf({ me: r.me, sendCounts: r.h.recvCounts, recvCounts: r.h.sendCounts, sendStart: r.recvStart, recvStart: r.h.sendStart }, c, chunks));
      moves.push(group.startMoveRows!([{ send: ranks.map((r) => r.partial), recv: ranks.map((r) => r.back) }], windows));
    }
    // the rows a rank sent itself: reduced straight into its own back buffer
    for (let i = 0; i < ranks.length; i++) {
      const r = ranks[i]!;
      const n = r.h.recvCounts[r.me]!;
      if (n > 0) await unpermuteRows(expertOut[i]!, r.d.alignment.pairPos, r.w, r.recvStart[r.me]!, n, r.back, r.h.sendStart[r.me]!);
    }
    // the final sum (Σ over ranks, f32, in rank order) of every token complete once piece c is home
    // (completeTokens), while the next piece travels
    for (let c = 0; c < chunks; c++) {
      await moves[c]!.wait();
      for (const r of ranks) {
        const hi = completeTokens(r.h, r.me, c, chunks);
        if (hi > r.summed) await unpermuteRows(r.back, r.h.backPos, null, r.summed, hi - r.summed, r.out, r.summed);
        r.summed = Math.max(r.summed, hi);
      }
    }
    moves.length = 0;
    return outs.splice(0);
  } finally {
    await settle(moves, temps, outs);
  }
}

// ---------------------------------------------------------------- dispatch/combine over symmetric windows
//
// With the group's windows (src/native/nccl.ts: NCCL's symmetric memory, one buffer a rank that every
// rank's kernels load and store), no send or receive is queued: the pack kernel writes each row straight
// into its destination's memory, slot `me` of rank d's data area (fixed slots of M rows), and combine's
// reduction writes each reduced row straight into the slot of the rank it goes home to. Dispatch's
// rows are known landed by a signal word the pack's last CTA stores into each destination (the
// dispatch's number, release at system scope), combine's by NCCL's LSA barrier. The side stream carries
// what writes into peers' memory, the addon's stream what reads this rank's own, so the two overlap:
//   dispatch  main: plan (one cooperative launch, with each piece's last slot row on each destination)
//             side: per piece: pack into the destinations' slots, back to back, each ending with the
//                   piece's signal into every destination (queued by the host right after the plan)
//             main: the tables' all-gather (LSA barrier index 1), whose kernel also stores them for
//                   the host's read; the layout's indices from the gathered tables (queued with the
//                   scatter, below)
//             main: per piece once its pack is done here: every source's rows of that piece (each
//                   source's once its signal is there) from this rank's slots into expert order. recv
//                   and its index arrays are allocated before the host's read for the R·M rows the
//                   slots can hold, then cut to the n received (a view of the same storage), and the
//                   scatter is queued before the read too: its kernels take each piece's rows from the
//                   gathered tables on the device, so that the host's read and allocations are off the
//                   GPU's path. With expand, expertX is allocated before the read by the group's
//                   capacity (expandRows: the pool's size class of the largest P so far) and cut to
//                   the P read; the first expanded dispatch of a group, which has none, queues its
//                   scatter after the read into an exact expertX, and one whose P passes the capacity
//                   gathers expertX from recv after it (the same bits); with the receive codes the
//                   packs write this rank's own rows into that expertX themselves (ownExpertX), so the
//                   scatter copies only the other ranks' rows there. With FP8 rows recv's
//                   codes are a storage of R·M rows (a receive region of the window when one is free,
//                   named to every rank by the plan's first CTA, else the pool's) into which the packs of the
//                   anchored sources (receiveAnchor; at R = 2 every source, with a region) write their
//                   codes straight, their scales and meta still into the slot; the scatter puts the
//                   other sources' codes around them (and with expand reads expertX's codes of those
//                   sources from recv), and recv starts at storage row anchor·M − (the rows of the
//                   sources before the anchor)
//   combine   side: per piece: each source's received rows reduced straight into its slot on that
//                   source (barrier stream: a barrier after each)
//             main: own rows reduced into its own slot -> per piece: the final sum of the tokens the
//                   piece completes (as combineOnDevice)
// Successive ops use the buffer's two halves in turn, so no op waits for a barrier before it writes:
// op N writes after this rank's addon's stream is through op N − 1's barrier (dispatch: its tables'
// all-gather; combine: its landing barriers), which every rank reached only after its own addon's
// stream had finished op N − 2 — the last reader of the half op N writes.
// The results are the other paths' bit for bit (same kernels, same orders, same f32 sums).

/** Pieces' token ends: multiples of 128 tokens (slices of the inputs start on 256-byte boundaries; the plan needs multiples of 64), the last T. */
function tokenEnds(T: number, C: number): Int32Array {
  return Int32Array.from({ length: C }, (_, c) => (c === C - 1 ? T : Math.min(T, Math.ceil(Math.floor(((c + 1) * T) / C) / 128) * 128)));
}

/** The most pieces an op over the windows moves in (their ends take room in the group's tables: src/native/nccl.ts). */
export const WINDOW_MAX_PIECES = 16;

/** The receive regions of a group's windows (SymmetricWindows.takeRegion): R·M rows of maxHidden bytes each. */
export const WINDOW_RECEIVE_REGIONS = 2;

/**
 * The source whose rows start at row anchor·M of rank d's receive codes (WindowsDispatchStart.receive):
 * d itself but for rank 0, whose anchor is 1; 0 with one rank. native/cuda/moe_dispatch.cuh's
 * receive_anchor is the same.
 */
function receiveAnchor(d: number, R: number): number {
  return d < 1 ? (R > 1 ? 1 : 0) : d;
}

/** The largest P (expertX rows) an expanded dispatch over these windows has had. */
const expandSeen = new WeakMap<SymmetricWindows, number>();

/**
 * The rows of expertX an expanded dispatch over `win` allocates before the counts are known: as many
 * rows of rowBytes as the pool's size class of the largest P so far holds (so no more memory than an
 * exact allocation of that P takes), at most the bound Pmax; 0 before the first.
 */
function expandRows(win: SymmetricWindows, Pmax: number, rowBytes: number): number {
  const seen = expandSeen.get(win) ?? 0;
  return seen > 0 ? Math.min(Pmax, Math.floor(sizeClass(seen * rowBytes) / rowBytes)) : 0;
}

/** Whether dispatch/combine can use the group's windows: one local rank, fixed slots, rows that fit. */
function windowsFit(group: ExpertGroup, locals: number, rowBytes: number): boolean {
  const w = group.windows, M = group.maxTokensPerRank ?? 0;
  return w !== undefined && locals === 1 && M > 0 && group.size * M * rowBytes <= w.dataBytes;
}

async function dispatchWindows(op: string, group: ExpertGroup, inputs: DispatchInput[], sh: DispatchShape): Promise<Dispatched[]> {
  const { E, k, H, dtype, useFp8, blockSize: bs } = sh;
  const b = group.backend, win = group.windows!;
  const R = group.size, per = E / R, W = R + E + 1, M = group.maxTokensPerRank!, me = group.ranks[0]!;
  const { x, indices, weights } = inputs[0]!;
  const T = x.shape[0]!;
  const C = Math.max(1, Math.min(sh.chunks, WINDOW_MAX_PIECES)); // the same on every rank: each queues C + 1 barriers
  const ends = tokenEnds(T, C);
  const Wt = W + C * R; // a table row: the plan's counts, then each piece's end in each destination's slot
  // the layout's index arrays before the counts are known: sized for the most rows a rank can receive
  const PmaxAll = alignRowsMax(R * M * k, per, bs);
  checkSize(op, PmaxAll, 1);
  const temps: Tensor[] = [];
  const kept: Tensor[] = [];
  const keep = <T extends Tensor>(t: T) => track(kept, t);
  let run: WindowsDispatch | undefined;
  let out: Dispatched[];
  try {
    win.trace?.('start', 'main');
    // what the start call needs: the plan's outputs and, for the receive codes, recv's codes; everything
    // else is allocated after it, so that the host queues the pack as early as it can
    const sendRow = keep(b.empty('i32', [T, R])), pairRank = track(temps, b.empty('i32', [T, k])), table = track(temps, b.empty('i32', [1, Wt]));
    // recv and its index arrays are sized for the R·M rows the slots can hold (cut to the n received
    // below). With expand: false the scatter is queued before the host's read, with its ranges taken
    // from the gathered tables on the device, so that the host's read and the allocations after it stay
    // off the GPU's path. With FP8 rows (k ≤ 32, H a multiple of 256 so that recv may start at any row
    // of its storage) recv's codes are a storage of R·M rows in which the received rows lie in order
    // around row receiveAnchor(me)·M: one of this rank's receive regions when one is free, so that the
    // anchored sources (at R = 2, every source) store their codes straight there, else the pool's, where
    // the own rows alone go straight (WindowsDispatchStart.receive); the scatter copies the other
    // sources' codes, and with expand reads expertX's codes of the anchored sources from recv
    // (the warp pack's shared memory: each of its 8 warps' scales, whole float4s; native warp_pack_fits)
    const packSmem = Math.ceil(H / 512) * 16 * 8;
    const inPlace = useFp8 && k <= 32 && H % 256 === 0 && packSmem <= 48 * 1024;
    const region = inPlace ? win.takeRegion(R * M, H) : null;
    if (region) track(temps, region.codes); // (at once: should an allocation below fail, the region goes back)
    const codes = inPlace ? (region?.codes ?? track(temps, b.empty('fp8e4m3', [R * M, H]))) : null;
    const receive = codes ? { codes, region: region?.index ?? -1 } : null;
    // with expand, expertX before the read too: sized by the group's capacity (expandRows: the pool's size
    // class of the largest P so far), none on its first expanded dispatch (then it waits for the read).
    // With the receive codes the packs write this rank's own rows into it (ownExpertX)
    const capRows = sh.expand ? expandRows(win, PmaxAll, useFp8 ? H : H * dtypeBytes(dtype)) : 0;
    const capX = capRows > 0 ? emptyRows(b, useFp8, dtype, capRows, H) : null;
    for (const u of partsOf(capX)) track(temps, u);
    const ownFits = k + Math.min(k, R) <= 32 && packSmem + 4 * per <= 48 * 1024; // (native own_expansion_fits)
    const ownExpertX = receive && capX && isQuantized(capX) && ownFits ? { rows: capX.data, scales: capX.scales } : null;
    win.trace?.('buffers', 'main');
    // one native call queues the plan, the pieces' packs into the destinations' slots (side stream; each
    // pack's last CTA signals every destination that its rows have landed), and the tables' all-gather
    // and read
    run = win.dispatchStart({ half: win.count++ % 2, x, indices, weights, numExperts: E, fp8: useFp8, ends, sendRow, pairRank, table, blockSize: bs, receive, ownExpertX });
    win.trace?.('queued', 'main');
    // the receive layout's outputs (the scatter call queues the layout), sized before the counts are known
    const layout: WindowsLayout = {
      sortedPairs: track(temps, b.empty('i32', [PmaxAll])), blockExpert: track(temps, b.empty('i32', [PmaxAll / bs])), rowExpert: track(temps, b.empty('i32', [PmaxAll])),
      counts: keep(b.empty('i32', [per])), base: track(temps, b.empty('i32', [R, per])), layoutWork: track(temps, b.empty('i32', [per + 2])),
    };
    const { sortedPairs: sorted, blockExpert, rowExpert, counts } = layout;
    const early = {
      recv: codes ? { ...emptyFp8Scales(b, R * M, H), data: codes } : emptyRows(b, useFp8, dtype, R * M, H),
      recvIndices: track(temps, b.empty('i32', [R * M, k])), recvWeights: track(temps, b.empty('f32', [R * M, k])), pairPos: track(temps, b.empty('i32', [R * M, k])),
    };
    for (const u of partsOf(early.recv)) if (u !== codes) track(temps, u);
    if (!sh.expand || capX) {
      // the receive layout, then the scatter
      run.scatter({
        layout, ranges: null, expertX: capX && rowsOf(capX), expertScales: capX && scalesOf(capX), pairPos: early.pairPos, recvIndices: early.recvIndices,
        recvWeights: early.recvWeights, recv: rowsOf(early.recv), recvScales: scalesOf(early.recv),
      });
      win.trace?.('scatter queued', 'main');
    }
    const t = run.readTables();
    win.trace?.('host read', 'main');
    await checkTables(op, t, Wt, R, E, k, M, (s) => (s === me ? { i: 0, indices } : undefined));
    win.trace?.('checked', 'main');
    const { sendCounts, recvCounts, n, P } = tableCounts(t, Wt, me, R, E, bs);
    const recvStart = starts(recvCounts);
    const Pmax = alignRowsMax(n * k, per, bs);
    checkSize(op, P, H);
    // each piece's rows of each source's slot: from the row the last piece ended at to this piece's end
    const ranges = new Int32Array(C * R * 3);
    const done = new Int32Array(R);
    for (let s = 0; s < R; s++) {
      // (the early scatter's kernels clamp each count to [0, M]: a count outside says they differ from here)
      if (!(recvCounts[s]! >= 0 && recvCounts[s]! <= M)) throw new HotpathsError('E_NATIVE', `${op}: rank ${s} sends ${recvCounts[s]} rows, outside [0, maxTokensPerRank = ${M}]`);
    }
    for (let c = 0; c < C; c++) {
      for (let s = 0; s < R; s++) {
        const end = c === C - 1 ? recvCounts[s]! : t[s * Wt + W + c * R + me]!;
        if (end < done[s]! || end > recvCounts[s]!) throw new HotpathsError('E_NATIVE', `${op}: rank ${s}'s piece ${c} ends at slot row ${end}, outside [${done[s]}, ${recvCounts[s]}]`);
        ranges.set([done[s]!, end - done[s]!, recvStart[s]! + done[s]!], (c * R + s) * 3);
        done[s] = end;
      }
    }
    // the outputs allocated before the read cut to their exact sizes (the same storage)
    const own = (u: Tensor, shape: number[], byteOffset = 0) => keep(shrinkTo(temps.splice(temps.indexOf(u), 1)[0]!, shape, byteOffset));
    // (rows of a payload: codes from byteOffset of their storage, and scales, when quantized)
    const ownRows = (q: Tensor | QuantizedTensor, rows: number, byteOffset = 0): Tensor | QuantizedTensor =>
      isQuantized(q) ? { ...q, data: own(q.data, [rows, H], byteOffset), scales: own(q.scales, [rows, H / 128]), shape: [rows, H] } : own(q, [rows, H], byteOffset);
    // (with receive codes recv's rows start at anchor·M − recvStart[anchor] of their storage)
    const anchor = receiveAnchor(me, R);
    const codesAt = receive ? (anchor * M - recvStart[anchor]!) * H : 0;
    const recv = ownRows(early.recv, n, codesAt);
    const a: Alignment = {
      tokens: n, topk: k, numExperts: per, blockSize: bs, padded: P, dropped: 0,
      sortedPairs: own(sorted, [Pmax]), blockExpert: own(blockExpert, [Pmax / bs]), rowExpert: own(rowExpert, [Pmax]),
      pairPos: own(early.pairPos, [n, k]), counts,
    };
    const recvIndices = own(early.recvIndices, [n, k]);
    const recvWeights = own(early.recvWeights, [n, k]);
    let expertX: Tensor | QuantizedTensor | null = null;
    if (sh.expand) {
      expandSeen.set(win, Math.max(expandSeen.get(win) ?? 0, P));
      if (capX && P <= capRows) {
        // the capacity held every row: expertX is its first P rows
        expertX = ownRows(capX, P);
      } else {
        // more rows than the capacity (the scatter copied those placed below it; recv and the alignment are
        // whole): expertX gathered from recv through sortedPairs, the same bits; none yet: an exact one
        expertX = capX ? await gatherRows(moeKernels(op, b), recv, a) : emptyRows(b, useFp8, dtype, P, H);
        for (const u of partsOf(expertX)) keep(u);
      }
    }
    win.trace?.('outputs', 'main');
    if (sh.expand && !capX) {
      run.scatter({ layout: { ...layout, sortedPairs: a.sortedPairs, blockExpert: a.blockExpert, rowExpert: a.rowExpert }, ranges, expertX: rowsOf(expertX!), expertScales: scalesOf(expertX!), pairPos: a.pairPos, recvIndices, recvWeights, recv: rowsOf(recv), recvScales: scalesOf(recv) });
      win.trace?.('scatter queued', 'main');
    }
    out = [{ recv, recvIndices, recvWeights, alignment: a, expertX, handle: new DispatchHandle(group, E, T, H, dtype, sendCounts, recvCounts, sendRow, M) }];
  } catch (e) {
    await settle(run ? [run.pieces] : [], kept);
    throw e;
  } finally {
    await settle(run ? [run.pieces] : [], temps);
  }
  // (the trace's last mark: when the op returns, its temporaries given back)
  win.trace?.('settled', 'main');
  win.traceDump?.(op);
  return out;
}

async function combineWindows(group: ExpertGroup, unpermuteRows: UnpermuteRows, expertOut: Tensor, d: Dispatched, h: DispatchHandle, dtype: DType, weighted: boolean, chunks: number): Promise<Tensor[]> {
  const b = group.backend, win = group.windows!;
  const R = group.size, M = h.slotRows, me = group.ranks[0]!, H = h.hidden;
  const C = Math.max(1, Math.min(chunks, WINDOW_MAX_PIECES));
  const w = weighted ? d.recvWeights : null;
  const recvStart = starts(h.recvCounts);
  const half = win.count++ % 2;
  const back = win.rows(half, me, 0, R * M, dtype, H); // row d·M + i: token backPos⁻¹ from rank d
  const out = b.empty(h.dtype, [h.tokens, H]);
  const pieces: PendingMove[] = [];
  try {
    win.trace?.('start', 'main');
    win.onSide(() => {
      for (let c = 0; c < C; c++) {
        // peer me + i at step i: each rank stores into a different peer, so that no rank takes the rows
        // of all the others at once while the rest of the links idle
        for (let i = 1; i < R; i++) {
          const s = (me + i) % R;
          const [a0, len] = piece(c, C, h.recvCounts[s]!);
          if (len > 0) void unpermuteRows(expertOut, d.alignment.pairPos, w, recvStart[s]! + a0, len, win.rows(half, s, me * M + a0, len, dtype, H), 0);
        }
        win.trace?.(`reduce ${c}`, 'side');
        pieces.push(win.landed());
        win.trace?.(`landed ${c}`, 'barrier');
      }
    });
    // the rows this rank sent itself, into its own slot, meanwhile
    const own = h.recvCounts[me]!;
    if (own > 0) await unpermuteRows(expertOut, d.alignment.pairPos, w, recvStart[me]!, own, back, me * M);
    // the final sum of every token complete once piece c is home (see combineOnDevice)
    let summed = 0;
    for (let c = 0; c < C; c++) {
      await pieces[c]!.wait();
      const hi = completeTokens(h, me, c, C);
      if (hi > summed) await unpermuteRows(back, h.backPos, null, summed, hi - summed, out, summed);
      summed = Math.max(summed, hi);
      win.trace?.(`sum ${c}`, 'main');
    }
    win.traceDump?.('moe.combine()');
    return [out];
  } catch (e) {
    await settle(pieces, [out]);
    throw e;
  } finally {
    await settle(pieces);
  }
}

// ---------------------------------------------------------------- helpers

function moeKernels(op: string, x: Tensor | Backend): MoeKernels {
  const b = 'backend' in x ? x.backend : x;
  if (!b.moe) {
    if ('backend' in x) throw notImplemented(op, x);
    throw new HotpathsError('E_NOT_IMPLEMENTED', `${op}: not implemented on the ${b.name} backend yet; use a group on 'reference'`);
  }
  return b.moe;
}

/** x f32|bf16 [T, H] and weight [E, H] of the same dtype, on one backend. */
function checkGateInputs(op: string, x: Tensor, weight: Tensor): { T: number; E: number; H: number } {
  assertTensor(`${op}: x`, x);
  assertTensor(`${op}: weight`, weight);
  assertSameDevice(op, x, weight);
  assertDTypeIn(`${op}: x`, x, ['f32', 'bf16']);
  assertDTypeIn(`${op}: weight`, weight, [x.dtype]);
  assertRank(`${op}: x`, x, 2);
  assertRank(`${op}: weight`, weight, 2);
  const [T, H] = x.shape as [number, number];
  const E = weight.shape[0]!;
  if (weight.shape[1] !== H) throw new HotpathsError('E_SHAPE', `${op}: weight: expected [E, ${H}] to match x ${x.describe()}, got ${weight.describe()}`);
  if (E === 0 || H === 0) throw new HotpathsError('E_EMPTY', `${op}: expected at least one expert and H ≥ 1, got x ${x.describe()} and weight ${weight.describe()}`);
  checkSize(op, T, E);
  return { T, E, H };
}

/** The route parameters with every default resolved (see GateOptions), and the bias tensor. */
function resolveGate(op: string, E: number, opts: GateOptions, anchor: Tensor): { p: MoeRouteParams; bias: Tensor | null } {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw new HotpathsError('E_ARG', `${op}: opts: expected { topk, … }, got ${show(opts)}`);
  const scoring = opts.scoring ?? 'sigmoid';
  assertOneOf(`${op}: opts.scoring`, scoring, SCORINGS);
  const nGroup = opts.nGroup ?? 1;
  assertNumber(`${op}: opts.nGroup`, nGroup, { min: 1, integer: true });
  if (E % nGroup !== 0) throw new HotpathsError('E_ARG', `${op}: opts.nGroup: expected a divisor of the number of experts E = ${E}, got ${nGroup}`);
  const topkGroup = opts.topkGroup ?? nGroup;
  assertNumber(`${op}: opts.topkGroup`, topkGroup, { min: 1, max: nGroup, integer: true });
  const groupScore = opts.groupScore ?? (scoring === 'sigmoid' ? 'top2' : 'max');
  assertOneOf(`${op}: opts.groupScore`, groupScore, GROUP_SCORES);
  if (groupScore === 'top2' && topkGroup < nGroup && E / nGroup < 2) {
    throw new HotpathsError('E_ARG', `${op}: opts.groupScore: 'top2' needs at least 2 experts per group, got E / nGroup = ${E} / ${nGroup} = 1; use 'max'`);
  }
  const kept = topkGroup * (E / nGroup);
  assertNumber(`${op}: opts.topk`, opts.topk, { min: 1, max: kept, integer: true });
  const normTopkProb = opts.normTopkProb ?? scoring === 'sigmoid';
  assertBoolean(`${op}: opts.normTopkProb`, normTopkProb);
  const routedScalingFactor = opts.routedScalingFactor ?? 1;
  assertNumber(`${op}: opts.routedScalingFactor`, routedScalingFactor);
  const bias = opts.bias ?? null;
  if (bias !== null) {
    assertTensor(`${op}: opts.bias`, bias);
    assertSameDevice(op, anchor, bias);
    assertDTypeIn(`${op}: opts.bias`, bias, ['f32']);
    assertShapeEquals(`${op}: opts.bias`, bias, [E], '([E], one per expert)');
  }
  return { p: { scoring, topk: opts.topk, nGroup, topkGroup, groupScore, normTopkProb, routedScalingFactor }, bias };
}

/** An f32 tensor of exactly `shape` on anchor's backend. */
function checkF32(op: string, name: string, t: Tensor, shape: number[], why: string, anchor: Tensor): void {
  assertTensor(`${op}: ${name}`, t);
  assertSameDevice(op, anchor, t);
  assertDTypeIn(`${op}: ${name}`, t, ['f32']);
  assertShapeEquals(`${op}: ${name}`, t, shape, why);
}

/** indices: i32 [T, k] on anchor's backend, values in [0, E) (checked here on host backends; GPU ops find a bad one after their kernels: rejectCountedBadIds). */
function checkIndices(op: string, name: string, indices: Tensor, T: number, k: number, E: number, anchor: Tensor): void {
  assertTensor(`${op}: ${name}`, indices);
  assertSameDevice(op, anchor, indices);
  assertDTypeIn(`${op}: ${name}`, indices, ['i32']);
  assertShapeEquals(`${op}: ${name}`, indices, [T, k], `([T, k] with T = ${T})`);
  const v = hostValues(indices);
  if (v) throwFirstBadId(op, name, v, k, E);
}

/** Throws E_ARG naming the first id of v (i32 [T, k]) outside [0, E), if there is one. */
function throwFirstBadId(op: string, name: string, v: ArrayLike<number>, k: number, E: number): void {
  for (let q = 0; q < v.length; q++) {
    const e = v[q]!;
    if (!(e >= 0 && e < E)) throw new HotpathsError('E_ARG', `${op}: ${name}[${Math.floor(q / k)}, ${q % k}] = ${e} is outside [0, numExperts = ${E})`);
  }
}

/**
 * After a GPU kernel has counted `bad` > 0 ids outside [0, E) (which it skipped): reads the ids back and
 * throws checkIndices' error for the first (E_NATIVE if the read finds none: the kernel miscounted).
 */
async function rejectCountedBadIds(op: string, name: string, indices: Tensor, E: number, bad: number): Promise<never> {
  const [T, k] = indices.shape as [number, number];
  throwFirstBadId(op, name, (await indices.read()) as Int32Array, k, E);
  throw new HotpathsError('E_NATIVE', `${op}: the ${indices.device} kernel counted ${bad} of the ${T * k} ids in ${name} outside [0, numExperts = ${E}), but none is`);
}

function checkSize(op: string, rows: number, cols: number): void {
  if (rows * cols > MAX_ELEMENTS) throw new HotpathsError('E_TOO_LARGE', `${op}: an output of [${rows}, ${cols}] has ${rows * cols} elements; at most ${MAX_ELEMENTS} are supported`);
}

function checkAlignment(op: string, a: Alignment): void {
  if (typeof a !== 'object' || a === null || !('sortedPairs' in a) || !('pairPos' in a)) {
    throw new HotpathsError('E_ARG', `${op}: a: expected an Alignment (moe.alignBlocks()'s result), got ${show(a)}`);
  }
  for (const n of ['sortedPairs', 'blockExpert', 'rowExpert', 'pairPos', 'counts'] as const) assertTensor(`${op}: a.${n}`, a[n]);
}

function checkGroup(op: string, group: ExpertGroup): void {
  if (typeof group !== 'object' || group === null || typeof group.allToAllRows !== 'function' || typeof group.exchangeCounts !== 'function') {
    throw new HotpathsError('E_ARG', `${op}: group: expected an ExpertGroup (moe.localGroup() or moe.ncclGroup()), got ${show(group)}`);
  }
}

function checkCounts(op: string, name: string, counts: Int32Array[], n: number): void {
  if (!Array.isArray(counts) || counts.length !== n || counts.some((c) => !(c instanceof Int32Array) || c.length !== n || c.some((v) => v < 0))) {
    throw new HotpathsError('E_ARG', `${op}: ${name}: expected ${n} Int32Arrays of ${n} non-negative counts`);
  }
}

/** expertOut[i]: f32|bf16 [P_i, H] per dispatched rank, one dtype; the dispatch handles. */
function checkCombineInputs(op: string, group: ExpertGroup, expertOut: Tensor[], dispatched: Dispatched[], name: string): { handles: DispatchHandle[]; dtype: DType } {
  if (!Array.isArray(dispatched) || dispatched.length !== group.ranks.length) {
    throw new HotpathsError('E_ARG', `${op}: dispatched: expected dispatch()'s result, one per local rank (${group.ranks.length}), got ${Array.isArray(dispatched) ? dispatched.length : show(dispatched)}`);
  }
  if (!Array.isArray(expertOut) || expertOut.length !== dispatched.length) {
    throw new HotpathsError('E_ARG', `${op}: ${name}: expected ${dispatched.length} tensors (one per local rank), got ${Array.isArray(expertOut) ? expertOut.length : show(expertOut)}`);
  }
  const handles: DispatchHandle[] = [];
  let dtype: DType = 'f32';
  for (let i = 0; i < dispatched.length; i++) {
    const h = dispatched[i]?.handle;
    if (!(h instanceof DispatchHandle) || h.group !== group) throw new HotpathsError('E_ARG', `${op}: dispatched[${i}]: expected the result of moe.dispatch() on this group`);
    handles.push(h);
    const y = expertOut[i]!;
    assertTensor(`${op}: ${name}[${i}]`, y);
    assertDTypeIn(`${op}: ${name}[${i}]`, y, ['f32', 'bf16']);
    if (i === 0) dtype = y.dtype;
    if (y.dtype !== dtype) throw new HotpathsError('E_DTYPE', `${op}: ${name}[${i}] ${y.describe()}: every local rank needs ${name}[0]'s dtype ${dtype}`);
    if (y.backend !== group.backend) throw new HotpathsError('E_DEVICE', `${op}: ${name}[${i}] ${y.describe()} is not on the group's ${group.backend.name} backend`);
    assertShapeEquals(`${op}: ${name}[${i}]`, y, [dispatched[i]!.alignment.padded, h.hidden], `(dispatched[${i}]'s [P, H])`);
  }
  return { handles, dtype };
}

/**
 * align on checked indices: allocates Pmax rows, runs the kernel (or, for no pairs at all, computes the
 * all-sentinel answer on the host), reads info back. `noExpertOk`: −1 means "no expert here" (dispatch's
 * received rows); it is skipped like a bad index and not reported.
 */
async function runAlign(op: string, indices: Tensor, E: number, bs: number, capacity: number, noExpertOk: boolean): Promise<{ a: Alignment; bad: number }> {
  const kernels = moeKernels(op, indices);
  const b = indices.backend;
  const [T, k] = indices.shape as [number, number];
  const Pmax = alignRowsMax(T * k, E, bs);
  checkSize(op, Pmax, 1);
  let t: { sortedPairs: Tensor; blockExpert: Tensor; rowExpert: Tensor; pairPos: Tensor; counts: Tensor; info: Tensor };
  if (T * k === 0) {
    const h = { sortedPairs: new Int32Array(Pmax), blockExpert: new Int32Array(Pmax / bs), rowExpert: new Int32Array(Pmax), pairPos: new Int32Array(0), counts: new Int32Array(E), info: new Int32Array(4) };
    moeAlign(new Int32Array(0), T, k, E, bs, capacity, h.sortedPairs, h.blockExpert, h.rowExpert, h.pairPos, h.counts, h.info);
    t = {
      sortedPairs: b.fromHost(h.sortedPairs, 'i32', [Pmax]), blockExpert: b.fromHost(h.blockExpert, 'i32', [Pmax / bs]), rowExpert: b.fromHost(h.rowExpert, 'i32', [Pmax]),
      pairPos: b.empty('i32', [T, k]), counts: b.fromHost(h.counts, 'i32', [E]), info: b.fromHost(h.info, 'i32', [4]),
    };
  } else {
    t = {
      sortedPairs: b.empty('i32', [Pmax]), blockExpert: b.empty('i32', [Pmax / bs]), rowExpert: b.empty('i32', [Pmax]),
      pairPos: b.empty('i32', [T, k]), counts: b.empty('i32', [E]), info: b.empty('i32', [4]),
    };
    await kernels.align(indices, E, bs, capacity, t.sortedPairs, t.blockExpert, t.rowExpert, t.pairPos, t.counts, t.info);
  }
  const info = (await t.info.read()) as Int32Array;
  t.info.dispose();
  let bad = info[2]!;
  if (noExpertOk) bad = 0;
  const a: Alignment = {
    tokens: T, topk: k, numExperts: E, blockSize: bs, padded: info[0]!, dropped: info[1]!,
    sortedPairs: t.sortedPairs, blockExpert: t.blockExpert, rowExpert: t.rowExpert, pairPos: t.pairPos, counts: t.counts,
  };
  return { a, bad };
}


/** rows [rows, H] of a dispatch's payload: FP8 codes with their 1×128 scales, or x's dtype. */
function emptyRows(b: Backend, fp8: boolean, dtype: DType, rows: number, H: number): Tensor | QuantizedTensor {
  return fp8 ? emptyFp8(b, rows, H) : b.empty(dtype, [rows, H]);
}

/**
 * Received rows x [n, H] (FP8 with scales, or x's dtype) gathered into the alignment's expert order, [P,
 * H], padding rows zero: expertX from recv, bit-exact. The caller owns the result (nothing is left on error).
 */
async function gatherRows(kernels: MoeKernels, x: Tensor | QuantizedTensor, a: Alignment): Promise<Tensor | QuantizedTensor> {
  if (isQuantized(x)) return gatherQuantized(kernels, x, a);
  const out = x.backend.empty(x.dtype, [a.padded, x.shape[1]!]);
  try {
    if (a.padded > 0) await kernels.permute(x, a.sortedPairs, a.topk, null, out);
    return out;
  } catch (e) {
    out.dispose();
    throw e;
  }
}

function emptyFp8(b: Backend, rows: number, H: number): QuantizedTensor {
  return { ...emptyFp8Scales(b, rows, H), data: b.empty('fp8e4m3', [rows, H]) };
}

/** emptyFp8 but for its codes. */
function emptyFp8Scales(b: Backend, rows: number, H: number): Omit<QuantizedTensor, 'data'> {
  return { scales: b.empty('f32', [rows, H / 128]), format: 'e4m3', block: [1, 128], ue8m0: false, shape: [rows, H] };
}

function isQuantized(x: Tensor | QuantizedTensor): x is QuantizedTensor {
  return typeof x === 'object' && x !== null && 'data' in x && 'scales' in x;
}

/** A zero-filled tensor (fromHost: no kernel call for shapes a kernel would have nothing to do on). */
function zeros(b: Backend, dtype: DType, shape: number[]): Tensor {
  const n = shape.reduce((x, y) => x * y, 1);
  const data = dtype === 'f32' ? new Float32Array(n) : dtype === 'i32' ? new Int32Array(n) : dtype === 'bf16' ? new Uint16Array(n) : new Uint8Array(n);
  return b.fromHost(data, dtype, shape);
}

/** bf16 [R, C] -> f32 [R, C], exactly: unpermute with one slot per row (pairPos = row, no weights). */
async function widen(kernels: MoeKernels, t: Tensor, temps: Tensor[]): Promise<Tensor> {
  const b = t.backend;
  const R = t.shape[0]!;
  const pos = track(temps, b.fromHost(Int32Array.from({ length: R }, (_, i) => i), 'i32', [R, 1]));
  const out = track(temps, b.empty('f32', [...t.shape]));
  await kernels.unpermute(t, pos, null, out);
  return out;
}

/** Appends t to list (the tensors or tickets an op releases or waits for at its end) and returns it. */
function track<T>(list: T[], t: T): T {
  list.push(t);
  return t;
}

/** An output's storage: the codes and scales of a quantized one, the tensor itself, nothing for null. */
function partsOf(q: Tensor | QuantizedTensor | null): Tensor[] {
  return q === null ? [] : isQuantized(q) ? [q.data, q.scales] : [q];
}

/** An output's rows and scales tensors (codes and scales when quantized; null for null). */
function rowsOf(q: Tensor | QuantizedTensor): Tensor;
function rowsOf(q: Tensor | QuantizedTensor | null): Tensor | null;
function rowsOf(q: Tensor | QuantizedTensor | null): Tensor | null {
  return q === null ? null : isQuantized(q) ? q.data : q;
}
function scalesOf(q: Tensor | QuantizedTensor | null): Tensor | null {
  return q !== null && isQuantized(q) ? q.scales : null;
}
