// moe: DeepSeek-V3's router (gate, aux-loss-free bias, sequence-wise aux loss), the dispatch layout,
// block-aligned expert grouping (permute/unpermute), and dispatch/combine across expert-parallel
// ranks (a LocalGroup in one process, or NCCL across GPUs). Validates once here, then runs on the
// tensors' backend. Exact semantics: docs/API.md "## moe"; REFERENCE.md "MoE routing".
//
// CONTRACT STUB (2026-11-21): the signatures below are the agreed public API; bodies are filled in by
// the moe work. Keep the names and shapes; extend options only.

import { HotpathsError } from '../errors.js';
import type { Backend, BackendName, MoeGroupScore, MoeScoring } from '../runtime/backend.js';
import type { Tensor } from '../tensor.js';
import { createNcclGroup } from '../native/nccl.js';
import type { QuantizedTensor } from './fp8.js';

export type { MoeGroupScore, MoeScoring } from '../runtime/backend.js';

const todo = (op: string): never => {
  throw new HotpathsError('E_NOT_IMPLEMENTED', `${op}: not implemented yet`);
};

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

/** x: f32|bf16 [T, H], weight: f32|bf16 [E, H] -> routing of each token (logits x·Wᵀ in f32 through gemm.matmul). */
export async function gate(x: Tensor, weight: Tensor, opts: GateOptions): Promise<GateResult> {
  return todo('moe.gate()');
}

export interface GateBackwardOptions extends GateOptions {
  /** f32 [T, E]: an extra gradient on the scores (auxLoss's dScores). */
  dScores?: Tensor;
}

/** dWeights: f32 [T, k] -> dx: f32 [T, H], dWeight: f32 [E, H] (through the chosen weights; selection is constant). */
export async function gateBackward(x: Tensor, weight: Tensor, routed: GateResult, dWeights: Tensor, opts: GateBackwardOptions): Promise<{ dx: Tensor; dWeight: Tensor }> {
  return todo('moe.gateBackward()');
}

/** Aux-loss-free balancing: bias f32 [E], tokensPerExpert i32 [E] -> new bias = bias + gamma·sign(mean − load). gamma default 0.001. */
export async function updateBias(bias: Tensor, tokensPerExpert: Tensor, gamma?: number): Promise<Tensor> {
  return todo('moe.updateBias()');
}

/** Sequence-wise balance loss (REFERENCE.md) over sequences of seqLen tokens (default T) -> loss and dScores f32 [T, E]. */
export async function auxLoss(routed: Pick<GateResult, 'scores' | 'indices'>, opts: { alpha: number; seqLen?: number }): Promise<{ loss: number; dScores: Tensor }> {
  return todo('moe.auxLoss()');
}

export interface DispatchLayout {
  /** i32 [R]: tokens each rank receives (a token once per rank). */
  tokensPerRank: Tensor;
  /** i32 [E]: (token, slot) pairs per expert. */
  tokensPerExpert: Tensor;
  /** u8 [T, R]: 1 where a token has an expert on the rank. */
  isTokenInRank: Tensor;
}

/** indices: i32 [T, k] in [0, numExperts); numExperts % numRanks == 0 (rank r holds a contiguous E/R experts). */
export async function dispatchLayout(indices: Tensor, numExperts: number, numRanks: number): Promise<DispatchLayout> {
  return todo('moe.dispatchLayout()');
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

/** indices: i32 [T, k] -> Alignment (reads back P: a sync on GPU backends). capacity: max pairs per expert (default none). */
export async function alignBlocks(indices: Tensor, numExperts: number, blockSize: number, opts: { capacity?: number } = {}): Promise<Alignment> {
  return todo('moe.alignBlocks()');
}

/** x: f32|bf16 [T, H] -> [P, H] in expert order (padding rows zero); optional weights f32 [T, k] scale each row. */
export async function permute(x: Tensor, a: Alignment, opts: { weights?: Tensor } = {}): Promise<Tensor> {
  return todo('moe.permute()');
}

/** y: f32|bf16 [P, H] -> [T, H] = Σ_j w[t,j]·y[pairPos[t,j]] in f32 (weights f32 [T, k] or none = 1). */
export async function unpermute(y: Tensor, a: Alignment, opts: { weights?: Tensor } = {}): Promise<Tensor> {
  return todo('moe.unpermute()');
}

/** Backward of unpermute: dOut [T, H] -> dy [P, H] (= permute(dOut, weights)), dWeights f32 [T, k] (when weights were given). */
export async function unpermuteBackward(dOut: Tensor, y: Tensor, a: Alignment, opts: { weights?: Tensor } = {}): Promise<{ dy: Tensor; dWeights?: Tensor }> {
  return todo('moe.unpermuteBackward()');
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
  /** sendCounts[i][d]: rows local rank ranks[i] sends to rank d -> recvCounts[i][s]: rows it gets from rank s. */
  exchangeCounts(sendCounts: Int32Array[]): Promise<Int32Array[]>;
  /** send[i]: rows ordered by destination rank; recv[i]: rows ordered by source rank (same dtype and row length). */
  allToAllRows(send: Tensor[], sendCounts: Int32Array[], recv: Tensor[], recvCounts: Int32Array[]): Promise<void>;
  destroy?(): void;
}

/** A group of `size` simulated ranks in this process, on one backend (every backend). */
export function localGroup(size: number, backend?: Backend | BackendName): ExpertGroup {
  return todo('moe.localGroup()');
}

/** This process's rank of an NCCL group started by `hotpaths launch` (cuda backend; libnccl loaded at run time). */
export async function ncclGroup(): Promise<ExpertGroup> {
  return createNcclGroup();
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
}

export interface Dispatched {
  /** Received rows, once per (source token, this rank), ordered by source rank then token. */
  recv: Tensor | QuantizedTensor;
  /** i32 [R, k]: local expert ids of each received row, −1 where the expert lives elsewhere. */
  recvIndices: Tensor;
  /** f32 [R, k]: their routing weights (0 where −1). */
  recvWeights: Tensor;
  /** alignBlocks over recvIndices (local experts). */
  alignment: Alignment;
  /** The received rows permuted into expert order, [P, H]: what the grouped GEMM consumes. */
  expertX: Tensor | QuantizedTensor;
  /** What combine needs to send results back (counts, source rows). */
  readonly handle: unknown;
}

/** Sends each token once to every rank holding one of its experts; inputs[i] is local rank group.ranks[i]'s. */
export async function dispatch(group: ExpertGroup, inputs: DispatchInput[], opts: DispatchOptions): Promise<Dispatched[]> {
  return todo('moe.dispatch()');
}

/**
 * expertOut[i]: [P, H] bf16|f32 in dispatched[i]'s expert order -> [T, H] per local rank (x's dtype):
 * Σ over the token's experts of weight · output, reduced in f32 (weighted: false sums without the
 * weights: the backward of dispatch).
 */
export async function combine(group: ExpertGroup, expertOut: Tensor[], dispatched: Dispatched[], opts: { weighted?: boolean } = {}): Promise<Tensor[]> {
  return todo('moe.combine()');
}
