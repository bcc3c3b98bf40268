// Loads the native addon (build/Release/hotpaths.node, built by `npm install` through cmake-js) and
// declares its functions. A missing or broken addon is not an error here: `loadAddon()` returns
// undefined and `addonStatus()` says why, once, so the cpu and cuda backends can be skipped with
// that reason while reference and webgpu keep working.

import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../util/paths.js';

type Typed = Float32Array | Uint16Array | Int32Array | Uint8Array | Uint32Array | Float64Array;

export interface AddonBuildInfo {
  cuda: boolean;
  cudaArchs: string;
  cudaVersion: string;
  simd: string;
  compiler: string;
  threads: number;
}

export interface CudaDeviceInfo {
  /** The device index the addon's stream lives on (0, HOTPATHS_CUDA_DEVICE or HOTPATHS_LOCAL_RANK). */
  device: number;
  name: string;
  major: number;
  minor: number;
  smCount: number;
  totalMem: number;
  l2Bytes: number;
  driverVersion: number;
  runtimeVersion: number;
  clockKHz: number;
  memClockKHz: number;
  memBusWidth: number;
}

/** The addon's functions (native/addon.cc registers them). Formats: 0 = e4m3, 1 = e5m2. */
export interface Addon {
  buildInfo(): AddonBuildInfo;
  setThreads(n: number): void;
  cpuFp8Encode(x: Float32Array, out: Uint8Array, format: number): Promise<void>;
  cpuFp8Decode(q: Uint8Array, out: Float32Array, format: number): Promise<void>;
  cpuFp8Quantize(x: Float32Array | Uint16Array, rows: number, cols: number, blockRows: number, format: number, ue8m0: boolean, data: Uint8Array, scales: Float32Array): Promise<void>;
  cpuFp8Dequantize(data: Uint8Array, scales: Float32Array, rows: number, cols: number, blockRows: number, format: number, out: Float32Array): Promise<void>;
  cpuCopy(dst: Typed, src: Typed): Promise<void>;
  /** Each pool thread runs `iters` steps of independent FP32 FMA chains; resolves to the FLOPs done (the caller times it). */
  cpuPeakFlops(iters: number): Promise<number>;
  /**
   * FP8 block-scaled GEMM (GemmKernels.fp8 in src/runtime/backend.ts). mode: 0 none, 1 contiguous,
   * 2 masked; rowGroups: groupIndex [M] (mode 1), maskedM [G] (mode 2), null (mode 0). M = rows of A
   * in all; Mmax = rows per group (mode 2; M otherwise). out: Float32Array (f32) or Uint16Array (bf16).
   */
  cpuGemmFp8(a: Uint8Array, aScales: Float32Array, b: Uint8Array, bScales: Float32Array, M: number, N: number, K: number, G: number, Mmax: number, bBlockRows: number, mode: number, rowGroups: Int32Array | null, c: Float32Array | null, out: Float32Array | Uint16Array): Promise<void>;
  /** D = op(A)·op(B) (+ C); a, b: both Float32Array (f32) or both Uint16Array (bf16); out f32 or bf16. */
  cpuMatmul(a: Float32Array | Uint16Array, b: Float32Array | Uint16Array, M: number, N: number, K: number, transA: boolean, transB: boolean, c: Float32Array | null, out: Float32Array | Uint16Array): Promise<void>;
  /** x [rows, cols] -> out [cols, rows]; elements of x's typed-array width (1, 2 or 4 bytes). */
  cpuTranspose(x: Typed, rows: number, cols: number, out: Typed): Promise<void>;
  /** Which BLAS the bench peer found ("OpenBLAS 0.3.21 …"), or '' when no libopenblas could be loaded. */
  cpuBlasInfo(): string;
  /** out [M, N] = a [M, K] · b [N, K]ᵀ through the system's libopenblas (dlopen); throws when absent. */
  cpuBlasSgemm(a: Float32Array, b: Float32Array, M: number, N: number, K: number, out: Float32Array): Promise<void>;
  /** logits [N, V] (f32, or bf16 bits) -> logp, lse [N] and entropy [N] (or null: not wanted); LogprobKernels.fromLogits. */
  cpuLogprobForward(logits: Float32Array | Uint16Array, targets: Int32Array, N: number, V: number, temperature: number, logp: Float32Array, lse: Float32Array, entropy: Float32Array | null): Promise<void>;
  /** dlogits [N, V] = (onehot(y) − exp(z/T − lse))·g/T; dlogits may be the (f32) logits array itself. */
  cpuLogprobBackward(logits: Float32Array | Uint16Array, targets: Int32Array, lse: Float32Array, g: Float32Array, N: number, V: number, temperature: number, dlogits: Float32Array): Promise<void>;
  /** KL estimator (0 k1, 1 k2, 2 k3, 3 k3_clamped) and its gradient, elementwise over n. */
  cpuKl(logp: Float32Array, ref: Float32Array, n: number, estimator: number, kl: Float32Array, dlogp: Float32Array): Promise<void>;
  /** GrpoKernels.advantages; scale: 0 group, 1 batch, 2 none. */
  cpuGrpoAdvantages(rewards: Float32Array, B: number, groupSize: number, scale: number, eps: number, out: Float32Array): Promise<void>;
  /**
   * GrpoKernels.loss: delta 0 = none, agg 0 grpo | 1 bnpo | 2 dr_grpo | 3 dapo, globalTokens 0 = the
   * mask's count; fills dlogp and result = [loss, clipFraction, meanKl, meanRatio].
   */
  cpuGrpoLoss(logp: Float32Array, oldLogp: Float32Array, refLogp: Float32Array | null, advantages: Float32Array, mask: Float32Array | Uint8Array, B: number, T: number,
    epsLow: number, epsHigh: number, delta: number, beta: number, sequenceLevel: boolean, agg: number, maxLen: number, globalTokens: number, dlogp: Float32Array, result: Float64Array): Promise<void>;
  /**
   * GrpoKernels.fusedTokenLoss on the cpu: logits f32|bf16 bits [N, V], targets [N], oldLogp, refLogp
   * (null: none) [N], advantages, seqWeight [N / T], mask f32|u8 [N]; delta 0 = none -> logp [N],
   * dlogits f32|bf16 bits [N, V] (may be the logits array when the dtypes match), stats [N, 4].
   */
  cpuGrpoFusedTokenLoss(logits: Float32Array | Uint16Array, targets: Int32Array, oldLogp: Float32Array, refLogp: Float32Array | null, advantages: Float32Array,
    mask: Float32Array | Uint8Array, seqWeight: Float32Array, N: number, V: number, T: number, temperature: number, epsLow: number, epsHigh: number,
    delta: number, beta: number, logp: Float32Array, dlogits: Float32Array | Uint16Array, stats: Float32Array): Promise<void>;
  // NnKernels (src/runtime/backend.ts) on host arrays; small calls run at once and return undefined
  // (sumSquares: the number), larger ones return a Promise. Sizes are re-checked before any access.
  /** table [V, D], ids [N] (each in [0, V), else E_ARG) -> out [N, D]. */
  cpuNnEmbedding(table: Float32Array, ids: Int32Array, V: number, D: number, N: number, out: Float32Array): Promise<void> | undefined;
  /** dTable [V, D] += dOut [N, D] scattered by ids [N], each table row summing its ids in order. */
  cpuNnEmbeddingBackward(dOut: Float32Array, ids: Int32Array, V: number, D: number, N: number, dTable: Float32Array): Promise<void> | undefined;
  /** x [N, D], weight [D] -> out [N, D], rstd [N]. */
  cpuNnRmsnorm(x: Float32Array, weight: Float32Array, N: number, D: number, eps: number, out: Float32Array, rstd: Float32Array): Promise<void> | undefined;
  /** -> dx [N, D]; dWeight [D] +=. */
  cpuNnRmsnormBackward(dOut: Float32Array, x: Float32Array, weight: Float32Array, rstd: Float32Array, N: number, D: number, dx: Float32Array, dWeight: Float32Array): Promise<void> | undefined;
  /** x [N, nH, Dh], positions [N] -> out (may be x). */
  cpuNnRope(x: Float32Array, positions: Int32Array, N: number, nH: number, Dh: number, theta: number, inverse: boolean, out: Float32Array): Promise<void> | undefined;
  /** q [B, Tq, nH, Dh], k, v [B, S, nH, Dh] -> out [B, Tq, nH, Dh], lse [B, nH, Tq]; needs qOffset + Tq ≤ kvLen ≤ S. */
  cpuNnAttention(q: Float32Array, k: Float32Array, v: Float32Array, B: number, Tq: number, S: number, nH: number, Dh: number, qOffset: number, kvLen: number, scale: number, out: Float32Array, lse: Float32Array): Promise<void> | undefined;
  /** Training attention's backward (all [B, T, nH, Dh], lse [B, nH, T]) -> dq, dk, dv. */
  cpuNnAttentionBackward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array, dOut: Float32Array, B: number, T: number, nH: number, Dh: number, scale: number,
    dq: Float32Array, dk: Float32Array, dv: Float32Array): Promise<void> | undefined;
  cpuNnSwiglu(gate: Float32Array, up: Float32Array, n: number, out: Float32Array): Promise<void> | undefined;
  cpuNnSwigluBackward(gate: Float32Array, up: Float32Array, dOut: Float32Array, n: number, dGate: Float32Array, dUp: Float32Array): Promise<void> | undefined;
  /** out = a + alpha·b (out may be a or b). */
  cpuNnAddScaled(a: Float32Array, b: Float32Array, n: number, alpha: number, out: Float32Array): Promise<void> | undefined;
  /** Σ x² in f64. */
  cpuNnSumSquares(x: Float32Array, n: number): Promise<number> | number;
  /** One AdamW step in place on param, m, v. */
  cpuNnAdamw(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): Promise<void> | undefined;
  /** logits [B, V], uniforms [B] -> ids [B]; temperature 0 = argmax. */
  cpuNnSample(logits: Float32Array, uniforms: Float32Array, B: number, V: number, temperature: number, topP: number, ids: Int32Array): Promise<void> | undefined;
  /**
   * MoeKernels.route: logits [T, E], bias [E] or null; scoring 0 sigmoid | 1 softmax, groupScore 0 top2 | 1 max
   * -> scores [T, E], weights [T, k], indices [T, k].
   */
  cpuMoeRoute(logits: Float32Array, bias: Float32Array | null, T: number, E: number, scoring: number, topk: number, nGroup: number, topkGroup: number,
    groupScore: number, normTopkProb: boolean, routedScalingFactor: number, scores: Float32Array, weights: Float32Array, indices: Int32Array): Promise<void>;
  /** MoeKernels.routeBackward: scores [T, E], indices, dWeights [T, k], dScores [T, E] or null -> dLogits [T, E]. */
  cpuMoeRouteBackward(scores: Float32Array, indices: Int32Array, dWeights: Float32Array, dScores: Float32Array | null, T: number, E: number, topk: number,
    scoring: number, normTopkProb: boolean, routedScalingFactor: number, dLogits: Float32Array): Promise<void>;
  /** MoeKernels.updateBias: out [E] = bias + gamma·sign(mean(load) − load). */
  cpuMoeUpdateBias(bias: Float32Array, load: Int32Array, E: number, gamma: number, out: Float32Array): Promise<void>;
  /** MoeKernels.auxLoss: scores [T, E], indices [T, k] -> dScores [T, E]; resolves to the loss. */
  cpuMoeAuxLoss(scores: Float32Array, indices: Int32Array, T: number, E: number, topk: number, seqLen: number, alpha: number, dScores: Float32Array): Promise<number>;
  /** MoeKernels.layout: indices [T, k] -> tokensPerRank [R], tokensPerExpert [E], isTokenInRank u8 [T, R]. */
  cpuMoeLayout(indices: Int32Array, T: number, topk: number, numExperts: number, numRanks: number, tokensPerRank: Int32Array, tokensPerExpert: Int32Array,
    isTokenInRank: Uint8Array): Promise<void>;
  /**
   * MoeKernels.align (capacity 0 = none): arrays of at least Pmax = ceil((T·k + E·(blockSize − 1)) / blockSize)·blockSize
   * rows (blockExpert: Pmax / blockSize), pairPos [T, k], counts [E], info [4].
   */
  cpuMoeAlign(indices: Int32Array, T: number, topk: number, numExperts: number, blockSize: number, capacity: number, sortedPairs: Int32Array,
    blockExpert: Int32Array, rowExpert: Int32Array, pairPos: Int32Array, counts: Int32Array, info: Int32Array): Promise<void>;
  /** MoeKernels.permute: x f32|bf16 [T, H], rows [P], weights [T·k] or null -> out [P, H] (x's type). */
  cpuMoePermute(x: Float32Array | Uint16Array, rows: Int32Array, T: number, H: number, topk: number, P: number, weights: Float32Array | null,
    out: Float32Array | Uint16Array): Promise<void>;
  /** MoeKernels.permuteBytes: x [T, rowBytes] bytes (any typed array), rows [P] -> out [P, rowBytes] bytes, moved as they are. */
  cpuMoePermuteBytes(x: Typed, rows: Int32Array, T: number, rowBytes: number, topk: number, P: number, out: Typed): Promise<void>;
  /** MoeKernels.unpermute: y f32|bf16 [P, H], pairPos [T, k], weights [T, k] or null -> out f32|bf16 [T, H]. */
  cpuMoeUnpermute(y: Float32Array | Uint16Array, pairPos: Int32Array, P: number, H: number, T: number, topk: number, weights: Float32Array | null,
    out: Float32Array | Uint16Array): Promise<void>;
  /** MoeKernels.unpermuteWeightGrad: dOut f32|bf16 [T, H], y f32|bf16 [P, H], pairPos [T, k] -> dWeights [T, k]. */
  cpuMoeUnpermuteWeightGrad(dOut: Float32Array | Uint16Array, y: Float32Array | Uint16Array, pairPos: Int32Array, T: number, topk: number, P: number,
    H: number, dWeights: Float32Array): Promise<void>;
  cudaDeviceCount(): number;
  cudaDeviceInfo(): CudaDeviceInfo;
  cudaMalloc(bytes: number): bigint;
  cudaFree(ptr: bigint): void;
  cudaMemset(ptr: bigint, byte: number, bytes: number): void;
  cudaUpload(ptr: bigint, src: Typed): void;
  cudaDownload(ptr: bigint, dst: Typed): Promise<void>;
  cudaCopy(dst: bigint, src: bigint, bytes: number): void;
  cudaSynchronize(): Promise<void>;
  cudaTimerStart(): void;
  cudaTimerStop(): Promise<number>;
  cudaFp8Encode(x: bigint, out: bigint, n: number, format: number): void;
  cudaFp8Decode(q: bigint, out: bigint, n: number, format: number): void;
  cudaFp8Quantize(x: bigint, xIsBf16: boolean, rows: number, cols: number, blockRows: number, format: number, ue8m0: boolean, data: bigint, scales: bigint): void;
  cudaFp8Dequantize(data: bigint, scales: bigint, rows: number, cols: number, blockRows: number, format: number, out: bigint): void;
  /**
   * cpuGemmFp8's arguments as device pointers (0n for null); launches on the stream and returns. Then
   * gathered A rows: aPairs 0n (none; rowsA must be M) or, in mode 1, i32 [M] pair ids: a is [rowsA, K]
   * (aScales [rowsA, KB]) and row m reads A row aPairs[m] / aK, zeros for an id outside [0, rowsA·aK).
   */
  cudaGemmFp8(a: bigint, aScales: bigint, b: bigint, bScales: bigint, M: number, N: number, K: number, G: number, Mmax: number, bBlockRows: number, mode: number, rowGroups: bigint, c: bigint, out: bigint, outIsBf16: boolean,
    aPairs: bigint, aK: number, rowsA: number): void;
  /** cpuMatmul's arguments as device pointers (c: 0n for none); launches on the stream and returns. */
  cudaMatmul(a: bigint, b: bigint, inIsBf16: boolean, M: number, N: number, K: number, transA: boolean, transB: boolean, c: bigint, out: bigint, outIsBf16: boolean): void;
  /** x [rows, cols] -> out [cols, rows], elemBytes 1, 2 or 4; launches on the stream and returns. */
  cudaTranspose(x: bigint, rows: number, cols: number, elemBytes: number, out: bigint): void;
  /**
   * Launches an FP32 FMA-chain kernel on the stream: each of blocks × threads threads runs
   * CUDA_FMA_CHAINS chains for `iters` steps, so FLOPs = blocks · threads · iters · CUDA_FMA_CHAINS · 2.
   * threads: a multiple of 32 in [32, 1024]; iters < 2^31.
   */
  cudaPeakFlops(blocks: number, threads: number, iters: number): void;
  /**
   * cpuLogprobForward's arguments as device pointers, with the logits' dtype after them; entropy 0n
   * for none. logits f32|bf16 [N, V], targets i32 [N] -> logp, lse, entropy f32 [N]. Launches and returns.
   */
  cudaLogprobForward(logits: bigint, logitsIsBf16: boolean, targets: bigint, N: number, V: number, temperature: number, logp: bigint, lse: bigint, entropy: bigint): void;
  /** dlogits f32 [N, V] = (onehot(y) − exp(z/T − lse))·g/T; dlogits may be the logits (f32 only). Launches and returns. */
  cudaLogprobBackward(logits: bigint, logitsIsBf16: boolean, targets: bigint, lse: bigint, g: bigint, N: number, V: number, temperature: number, dlogits: bigint): void;
  /** KL estimator (0 k1, 1 k2, 2 k3, 3 k3_clamped) and its gradient over n f32 elements. Launches and returns. */
  cudaKl(logp: bigint, ref: bigint, n: number, estimator: number, kl: bigint, dlogp: bigint): void;
  /** GrpoKernels.advantages on device memory; scale: 0 group, 1 batch, 2 none. Launches and returns. */
  cudaGrpoAdvantages(rewards: bigint, B: number, groupSize: number, scale: number, eps: number, out: bigint): void;
  /**
   * cpuGrpoLoss's arguments as device pointers (refLogp 0n for none) with the mask's dtype flag after
   * it. `work`: at least 8·(6 + 5·B) bytes, 8-byte aligned; its first 4 f64 become loss, clipFraction,
   * meanKl, meanRatio (read them back with cudaDownload), the rest is scratch. Launches and returns.
   */
  cudaGrpoLoss(logp: bigint, oldLogp: bigint, refLogp: bigint, advantages: bigint, mask: bigint, maskIsU8: boolean, B: number, T: number,
    epsLow: number, epsHigh: number, delta: number, beta: number, sequenceLevel: boolean, agg: number, maxLen: number, globalTokens: number, dlogp: bigint, work: bigint): void;
  /**
   * GrpoKernels.fusedTokenLoss: logits f32|bf16 [N, V], targets i32 [N], oldLogp, refLogp (0n: none)
   * f32 [N], advantages, seqWeight f32 [N / T], mask f32|u8 [N]; delta 0 = none -> logp f32 [N],
   * dlogits f32|bf16 [N, V] (may be the logits when the dtypes match), stats f32 [N, 4]. Launches and returns.
   */
  cudaGrpoFusedTokenLoss(logits: bigint, logitsIsBf16: boolean, targets: bigint, oldLogp: bigint, refLogp: bigint, advantages: bigint, mask: bigint,
    maskIsU8: boolean, seqWeight: bigint, N: number, V: number, T: number, temperature: number, epsLow: number, epsHigh: number, delta: number,
    beta: number, logp: bigint, dlogits: bigint, dlogitsIsBf16: boolean, stats: bigint): void;
  /**
   * GrpoKernels.fusedWeights: mask f32|u8 [B, T]; agg 0 grpo | 1 bnpo | 2 dr_grpo | 3 dapo;
   * globalTokens 0 = the mask's count -> seqWeight f32 [B]; work: grpoFusedWorkBytes(B) bytes, 8-byte
   * aligned (work[4] as f64 = masked tokens). Launches and returns.
   */
  cudaGrpoFusedWeights(mask: bigint, maskIsU8: boolean, B: number, T: number, agg: number, maxLen: number, globalTokens: number, seqWeight: bigint, work: bigint): void;
  /** GrpoKernels.fusedStatSums: stats f32 [N, 4] -> work's first 4 f64 = the column sums (work from cudaGrpoFusedWeights, B sequences). Launches and returns. */
  cudaGrpoFusedStatSums(stats: bigint, N: number, B: number, work: bigint): void;
  /**
   * MoeKernels.route on device memory: logits f32 [T, E], bias f32 [E] (0n: none) -> scores f32 [T, E],
   * weights f32 [T, k], indices i32 [T, k]. softmax: else sigmoid; groupMax: else top-2 sum. Launches and returns.
   */
  cudaMoeRoute(logits: bigint, bias: bigint, T: number, E: number, k: number, nGroup: number, topkGroup: number, softmax: boolean, groupMax: boolean,
    normTopkProb: boolean, routedScalingFactor: number, scores: bigint, weights: bigint, indices: bigint): void;
  /** MoeKernels.routeBackward: scores f32 [T, E], indices i32 [T, k], dWeights f32 [T, k], dScores f32 [T, E] (0n: none) -> dLogits f32 [T, E]. */
  cudaMoeRouteBackward(scores: bigint, indices: bigint, dWeights: bigint, dScores: bigint, T: number, E: number, k: number, softmax: boolean,
    normTopkProb: boolean, routedScalingFactor: number, dLogits: bigint): void;
  /** MoeKernels.updateBias: bias f32 [E], load i32 [E] -> out f32 [E]. */
  cudaMoeUpdateBias(bias: bigint, load: bigint, E: number, gamma: number, out: bigint): void;
  /**
   * MoeKernels.auxLoss: scores f32 [T, E], indices i32 [T, k] -> dScores f32 [T, E]; `work`: at least
   * 8·(1 + T) + 4·(T / seqLen)·E bytes, 8-byte aligned, whose first f64 becomes the loss. Launches and returns.
   */
  cudaMoeAuxLoss(scores: bigint, indices: bigint, T: number, E: number, k: number, seqLen: number, alpha: number, dScores: bigint, work: bigint): void;
  /** MoeKernels.layout: indices i32 [T, k] -> tokensPerRank i32 [R], tokensPerExpert i32 [E], isTokenInRank u8 [T, R]. */
  cudaMoeLayout(indices: bigint, T: number, k: number, E: number, R: number, tokensPerRank: bigint, tokensPerExpert: bigint, isTokenInRank: bigint): void;
  /** Bytes of cudaMoeAlign's scratch for `pairs` = T·k pairs over E experts. */
  cudaMoeAlignWorkBytes(pairs: number, E: number): number;
  /** MoeKernels.align (capacity 0 = none; Pmax = the rows of sortedPairs/rowExpert); `work`: cudaMoeAlignWorkBytes(T·k, E) bytes. */
  cudaMoeAlign(indices: bigint, T: number, k: number, E: number, blockSize: number, capacity: number, Pmax: number, sortedPairs: bigint, blockExpert: bigint,
    rowExpert: bigint, pairPos: bigint, counts: bigint, info: bigint, work: bigint): void;
  /** MoeKernels.permute: x f32|bf16 [T, H], rows i32 [P], weights f32 [T·k] (0n: none) -> out f32|bf16 [P, H]. */
  cudaMoePermute(x: bigint, xIsBf16: boolean, T: number, H: number, rows: bigint, P: number, k: number, weights: bigint, out: bigint, outIsBf16: boolean): void;
  /** MoeKernels.permuteBytes: x [T, rowBytes], rows i32 [P] -> out [P, rowBytes], bytes as they are. */
  cudaMoePermuteBytes(x: bigint, T: number, rowBytes: number, rows: bigint, P: number, k: number, out: bigint): void;
  /** MoeKernels.unpermute: y f32|bf16 [P, H], pairPos i32 [T, k], weights f32 [T, k] (0n: none) -> out f32|bf16 [T, H]. */
  cudaMoeUnpermute(y: bigint, yIsBf16: boolean, P: number, H: number, pairPos: bigint, T: number, k: number, weights: bigint, out: bigint, outIsBf16: boolean): void;
  /** MoeKernels.unpermuteWeightGrad: dOut f32|bf16 [T, H], y f32|bf16 [P, H], pairPos i32 [T, k] -> dWeights f32 [T, k]. */
  cudaMoeUnpermuteWeightGrad(dOut: bigint, dOutIsBf16: boolean, y: bigint, yIsBf16: boolean, P: number, H: number, pairPos: bigint, T: number, k: number,
    dWeights: bigint): void;
  /** Bytes of cudaMoeDispatchPlan's scratch for `pairs` = T·k pairs, E experts, R ranks. */
  cudaMoeDispatchPlanWorkBytes(pairs: number, E: number, R: number): number;
  /**
   * MoeKernels.dispatchPlan: indices i32 [T, k] -> sendRow i32 [T, R], pairRank i32 [T, k], table i32 [R + E + 1]; `work`:
   * cudaMoeDispatchPlanWorkBytes bytes; slotRows: 0 (packed rows) or M (fixed slots of M rows a rank);
   * ends: the pieces' token ends (may be empty), their counts per rank after the table's R + E + 1.
   */
  cudaMoeDispatchPlan(indices: bigint, T: number, k: number, E: number, R: number, sendRow: bigint, pairRank: bigint, table: bigint, work: bigint, slotRows: number,
    ends: Int32Array): void;
  /** MoeKernels.dispatchPack: x f32|bf16 [T, H] -> packed u8 [S, stride] (dispatchRowLayout: payload, scales at scalesAt when fp8, meta i32 [3k] at metaAt). */
  cudaMoeDispatchPack(x: bigint, xIsBf16: boolean, T: number, H: number, indices: bigint, k: number, weights: bigint, E: number, R: number, sendRow: bigint,
    pairRank: bigint, S: number, fp8: boolean, packed: bigint, stride: number, scalesAt: number, metaAt: number, destBases: BigUint64Array, slotRows: number): void;
  /** MoeKernels.dispatchRecvLayout; expertX as exRows rows of exRowBytes (scales: exScaleBytes a row, 0n: none); `work`: 4·(E/R + 2) bytes. */
  cudaMoeDispatchRecvLayout(tables: bigint, R: number, tableStride: number, E: number, rank: number, blockSize: number, k: number, base: bigint, counts: bigint, sortedPairs: bigint,
    Pmax: number, blockExpert: bigint, rowExpert: bigint, expertX: bigint /* 0n: no zeroing */, exRows: number, exRowBytes: number, expertScales: bigint, exScaleBytes: number, work: bigint): void;
  /** MoeKernels.dispatchScatter (MoeScatterArgs): packed rows src u8 [srcRows, stride] -> recv, expertX ([*, payloadBytes], scales of scaleBytes a row) and the indices. */
  cudaMoeDispatchScatter(src: bigint, srcRows: number, stride: number, payloadBytes: number, scalesAt: number, scaleBytes: number, metaAt: number, srcRow: number,
    rows: number, recvRow: number, base: bigint, R: number, per: number, source: number, k: number, expertX: bigint, P: number, expertScales: bigint,
    sortedPairs: bigint, Pmax: number, pairPos: bigint, n: number, recvIndices: bigint, recvWeights: bigint, recv: bigint, recvScales: bigint): void;
  /**
   * The symmetric windows' dispatch up to the host's read of the tables, in one call (native/cuda/moe_dispatch.cu):
   * the plan (one cooperative launch); each piece's pack into destBases (side stream), whose last CTA then
   * stores seq into word 1 + c·R + rank of each destination's landing signals (at destBases[d] +
   * signalFromSlot; `signals`: this rank's, whose word 0 counts the pack's CTAs); then the table's
   * all-gather (LSA buffer `lsa`, at tablesOffset) and the read of `tables`. Returns the read's ticket
   * (ncclSideReadFinish), then one a piece (its pack done). trace: ncclTraceMark's marks after the checks
   * (where the host issues the plan), the plan, each piece's pack and the all-gather.
   * The receive codes (readyFromSlot 0: none; FP8, k ≤ 32): by the plan's first CTA once its table is whole, this rank's
   * ready word (seq and `region`, −1: none) into every rank's ready words (at destBases[d] + readyFromSlot, word rank), then
   * the packs, which wait for each destination's word and store the codes of the rows they send as
   * moe::DestRows says: into the named receive region of that rank's window (at destBases[d] +
   * regionFromSlot + region·regionBytes, `regions` of them) when this rank is one of its two anchored
   * sources, the own rows' codes into `fallback` (u8 [R·slotRows, H], given where region is −1) when
   * this rank names none; scales and meta still to the slot. With receive codes the plan stores its table
   * into row `rank` of every rank's tables before its ready word, and with expertX (E4M3 [expertRows, H],
   * expertScales f32 [expertRows, H/128]; k + min(k, R) ≤ 32) the packs also write this rank's own rows'
   * codes and scales to their places below expertRows in it (the places the receive layout gives with
   * blockSize), which the scatter's ownExpanded then leaves alone. expertX 0n: none.
   */
  cudaMoeWindowsDispatchStart(lsa: number, tablesOffset: number, x: bigint, xIsBf16: boolean, T: number, H: number, indices: bigint, k: number, weights: bigint,
    E: number, fp8: boolean, ends: Int32Array, slotRows: number, destBases: BigUint64Array, stride: number, scalesAt: number, metaAt: number, sendRow: bigint,
    pairRank: bigint, table: bigint, tableWords: number, planWork: bigint, tables: bigint, rank: number, trace: boolean, signals: bigint, signalFromSlot: number,
    seq: number, fallback: bigint, region: number, readyFromSlot: number, regionFromSlot: number, regionBytes: number, regions: number, expertX: bigint,
    expertRows: number, expertScales: bigint, blockSize: number): Float64Array;
  /**
   * The rest of it (expertX's padding rows left unwritten): per piece (the start's ticket a piece: once this
   * rank's pack of it is done) one launch that scatters each source's rows from srcBases[s] like
   * cudaMoeDispatchScatter once its landing signal (word 1 + c·R + s of `signals`, this rank's) has
   * reached seq (ranges [C, R, 3]: first slot row, rows, first received row). Before all that, the receive
   * layout (base, counts, sortedPairs, blockExpert, rowExpert, layoutWork) from `tables`, this rank's
   * gathered tables i32 [R, tableWords]. trace: marks after the layout, the padding and each piece's
   * rows. ranges empty: the kernels take the ranges from the tables on the device, with the outputs sized
   * for R·slotRows rows, so that the call may precede the host's read.
   * inPlace (k ≤ 32; with ranges empty recv is the start's receive codes, with ranges the received rows'
   * view of them): 1, its fallback (this rank's own codes there already), 2, its region (the anchored
   * sources' codes there already); the received rows lie in the storage from row anchor·slotRows − (the
   * rows of the sources before the anchor) on, and the other sources' codes go there, every source's
   * scales and index outputs too; expertX's rows of the placed sources are read from recv. 0: none.
   * ownExpanded (with expertX, the start's): this rank's own rows' expertX rows are there already.
   */
  cudaMoeWindowsDispatchScatter(pieces: Float64Array, ranges: Int32Array, srcBases: BigUint64Array, rank: number, slotRows: number, stride: number, payloadBytes: number,
    scalesAt: number, scaleBytes: number, metaAt: number, base: bigint, per: number, k: number, counts: bigint, layoutWork: bigint, blockSize: number,
    expertX: bigint, P: number, expertScales: bigint, sortedPairs: bigint, Pmax: number, pairPos: bigint, n: number, recvIndices: bigint, recvWeights: bigint,
    recv: bigint, recvScales: bigint, trace: boolean, tables: bigint, tableWords: number, signals: bigint, seq: number, inPlace: number,
    blockExpert: bigint, rowExpert: bigint, ownExpanded: boolean): void;
  /** Whether libnccl could be opened (dlopen at run time), its version (2.27.3 -> 22703), and why not. Never throws. */
  ncclInfo(): { available: boolean; version: number; library: string; reason: string };
  /** A fresh NCCL unique id (128 bytes) for rank 0 to share; E_BACKEND without libnccl. */
  ncclGetUniqueId(): Uint8Array;
  /** Joins a communicator of `size` ranks as `rank` on the addon's device; blocks until all have joined. Returns a handle. */
  ncclCommInit(rank: number, size: number, id: Uint8Array): number;
  /** One NCCL group of ncclSend/ncclRecv byte ranges with peers[i] (0 bytes: skipped), on the addon's stream; returns at once. */
  ncclSendRecv(comm: number, peers: Int32Array, sendPtrs: BigUint64Array, sendBytes: Float64Array, recvPtrs: BigUint64Array, recvBytes: Float64Array): void;
  /**
   * ncclSendRecv on the side stream (created on first use, the device's highest priority): it first
   * waits for the work queued on the addon's stream so far; returns a ticket for ncclSideWait.
   */
  ncclSendRecvSide(comm: number, peers: Int32Array, sendPtrs: BigUint64Array, sendBytes: Float64Array, recvPtrs: BigUint64Array, recvBytes: Float64Array): number;
  /** Makes the addon's stream wait for a ticket's group (and everything before it on the side stream); each ticket once. */
  ncclSideWait(ticket: number): void;
  /**
   * Starts a device -> host read of `bytes` bytes once the side stream's work so far is done, on a stream
   * of its own (later side-stream work does not delay it), into pinned memory; returns a ticket.
   */
  ncclSideReadStart(ptr: bigint, bytes: number): number;
  /** Waits for a ticket's read (the host only) and copies it into dst (byteLength = the read's bytes); each ticket once. */
  ncclSideReadFinish(ticket: number, dst: Int32Array | Uint8Array): void;
  /** Waits for the stream and frees the communicator. */
  ncclCommDestroy(comm: number): void;
  /**
   * true: the side stream waits for the addon's stream's work so far, and kernels launched from now on
   * go on the side stream; false: back to the addon's stream. Only kernel launches in between.
   */
  cudaLaunchOnSide(on: boolean): void;
  /** A timing event on the addon's (0), side (1) or barrier (2) stream; its index (HOTPATHS_EP_TRACE). */
  ncclTraceMark(stream: number): number;
  /** Waits for every mark; each one's ms after the first; forgets them. */
  ncclTraceRead(): Float64Array;
  /** Whether the addon was built with NCCL's device API headers (native/cuda/nccl_lsa.cu), and their version. */
  ncclLsaInfo(): { compiled: boolean; headerVersion: number };
  /**
   * Collective: a symmetric buffer of `bytes` bytes (a multiple of 4096) on every rank of the communicator,
   * through NCCL's device API; bases[p] is rank p's copy as this GPU addresses it; bytes [zeroFrom,
   * bytes) of every copy are zero (and no rank's kernels have stored into them yet). E_BACKEND where the
   * device API or load/store access between all ranks is missing.
   */
  ncclLsaCreate(comm: number, bytes: number, zeroFrom: number): { handle: number; bases: BigUint64Array };
  /**
   * NCCL's LSA barrier on the barrier stream, after the work queued so far on the side stream (what every
   * rank queued before it is visible after it); a ticket for ncclSideWait.
   */
  ncclLsaBarrier(handle: number): number;
  /** Collective: waits for the streams and frees the buffer. */
  ncclLsaDestroy(handle: number): void;
  // nn (NnKernels) on device memory: the cpuNn* arguments as device pointers; each launches on the
  // stream and returns. `work` is scratch the caller allocates (sizes below) and may release at once.
  cudaNnEmbedding(table: bigint, ids: bigint, V: number, D: number, N: number, out: bigint): void;
  cudaNnEmbeddingBackward(dOut: bigint, ids: bigint, V: number, D: number, N: number, dTable: bigint): void;
  cudaNnRmsnorm(x: bigint, weight: bigint, N: number, D: number, eps: number, out: bigint, rstd: bigint): void;
  /** work: f32 [min(N, 64) · D] (cudaNnRmsnormWorkFloats). */
  cudaNnRmsnormBackward(dOut: bigint, x: bigint, weight: bigint, rstd: bigint, N: number, D: number, dx: bigint, dWeight: bigint, work: bigint): void;
  /** out may be x itself. */
  cudaNnRope(x: bigint, positions: bigint, N: number, nH: number, Dh: number, theta: number, inverse: boolean, out: bigint): void;
  /** Dh ≤ 256. */
  cudaNnAttention(q: bigint, k: bigint, v: bigint, B: number, Tq: number, S: number, nH: number, Dh: number, qOffset: number, kvLen: number, scale: number, out: bigint, lse: bigint): void;
  /** work: f32 [B · nH · T]. */
  cudaNnAttentionBackward(q: bigint, k: bigint, v: bigint, out: bigint, lse: bigint, dOut: bigint, B: number, T: number, nH: number, Dh: number, scale: number,
    dq: bigint, dk: bigint, dv: bigint, work: bigint): void;
  cudaNnSwiglu(gate: bigint, up: bigint, n: number, out: bigint): void;
  cudaNnSwigluBackward(gate: bigint, up: bigint, dOut: bigint, n: number, dGate: bigint, dUp: bigint): void;
  cudaNnAddScaled(a: bigint, b: bigint, n: number, alpha: number, out: bigint): void;
  /** work: f64 [1 + 1024] (CUDA_SUM_SQUARES_WORK_BYTES), 8-byte aligned; work[0] becomes Σ x² (download it). */
  cudaNnSumSquares(x: bigint, n: number, work: bigint): void;
  cudaNnAdamw(param: bigint, grad: bigint, m: bigint, v: bigint, n: number, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  cudaNnSample(logits: bigint, uniforms: bigint, B: number, V: number, temperature: number, topP: number, ids: bigint): void;
}

/** Floats of cudaNnRmsnormBackward's work buffer: the dWeight partials of min(N, 64) row parts (native/cuda/nn.cuh rmsnorm_parts). */
export function cudaNnRmsnormWorkFloats(N: number, D: number): number {
  return Math.min(N, 64) * D;
}

/** Bytes of cudaNnSumSquares's work buffer: the result and 1024 range partials, f64 (SS_PARTS in native/cuda/nn.cuh). */
export const CUDA_SUM_SQUARES_WORK_BYTES = 8 * (1 + 1024);

/** FMA chains per thread of cudaPeakFlops (FMA_CHAINS in native/cuda/ceiling.cu). */
export const CUDA_FMA_CHAINS = 8;

let loaded: { addon?: Addon; reason?: string } | undefined;

/** The addon, or undefined when it was not built or fails to load (see addonStatus()). */
export function loadAddon(): Addon | undefined {
  if (!loaded) loaded = tryLoad();
  return loaded.addon;
}

/** Why the addon is missing ('' when it loaded). */
export function addonStatus(): string {
  loadAddon();
  return loaded?.reason ?? '';
}

function tryLoad(): { addon?: Addon; reason?: string } {
  if (process.env.HOTPATHS_NO_ADDON) return { reason: 'disabled by HOTPATHS_NO_ADDON' };
  const root = packageRoot();
  const file = join(root, 'build', 'Release', 'hotpaths.node');
  if (!existsSync(file)) {
    let why = 'the addon was not built';
    try {
      const status = JSON.parse(readFileSync(join(root, 'build', 'addon-status.json'), 'utf8')) as { reason?: string };
      if (status.reason) why = `the addon build failed: ${status.reason}`;
    } catch {
      /* no status file: npm install never ran the build */
    }
    return { reason: `${why} (run \`npm run build:addon\`; needs cmake and a C++ compiler)` };
  }
  try {
    const require = createRequire(import.meta.url);
    return { addon: require(file) as Addon };
  } catch (e) {
    return { reason: `the addon at ${file} failed to load: ${(e as Error).message}` };
  }
}
