// The cuda backend: tensors in device memory allocated by the addon (cudaMalloc, pooled by size
// class here), kernels in native/cuda/ launched on the addon's one stream. Launches return at once;
// read() and sync() wait for the stream.

import { allocHost, dtypeBytes, type DType, type HostArray } from '../dtype.js';
import { HotpathsError, show } from '../errors.js';
import { dispatchRowLayout, type Backend, type Fp8Kernels, type GemmKernels, type GrpoKernels, type LogprobKernels, type MachineCeilings, type MoeKernels, type NnKernels } from '../runtime/backend.js';
import { calibrate, ceilingCopyBytes, checkedCeilings, median } from '../runtime/measure.js';
import { poisonEnabled, POISON_BYTE } from '../runtime/poison.js';
import { sizeClass } from '../runtime/sizeclass.js';
import { numel, Tensor } from '../tensor.js';
import { CUDA_FMA_CHAINS, CUDA_SUM_SQUARES_WORK_BYTES, cudaNnRmsnormWorkFloats, type Addon } from './addon.js';
import { nativeCall, nativeCallSync } from './call.js';
import { ADV_SCALE_CODE, AGG_CODE, FORMAT_CODE, KL_CODE } from './cpu.js';

/** A pooled device allocation: `ptr` is the base address, `bytes` the allocation's size. */
export interface CudaStorage {
  ptr: bigint;
  bytes: number;
  /** The pool's allocation, where ptr lies inside it (takeStorage's; released as the allocation). */
  alloc?: bigint;
  /** Memory lent from outside the pool (an NCCL group's receive region): release calls this instead. */
  onRelease?: () => void;
}

export function cudaPtr(t: Tensor): bigint {
  return (t.storage as CudaStorage).ptr;
}

/** t's address plus byteOffset, which must be a multiple of 256 (viewStorage's and takeStorage's rule). */
function offsetPtr(t: Tensor, byteOffset: number, what: string): bigint {
  if (byteOffset % 256 !== 0) throw new HotpathsError('E_ARG', `cuda ${what} of ${t.describe()}: byte offset ${byteOffset} is not a multiple of 256`);
  return cudaPtr(t) + BigInt(byteOffset);
}

export function createCudaBackend(addon: Addon): Backend {
  const info = addon.cudaDeviceInfo();
  const pool = new Map<number, bigint[]>();
  const stats = { held: 0, inUse: 0, peak: 0 };

  function alloc(bytes: number): CudaStorage {
    const cls = sizeClass(bytes);
    const free = pool.get(cls);
    const reused = free?.pop();
    if (reused !== undefined) {
      stats.inUse += cls;
      stats.peak = Math.max(stats.peak, stats.inUse);
      return { ptr: reused, bytes: cls };
    }
    let ptr: bigint;
    try {
      ptr = addon.cudaMalloc(cls);
    } catch {
      trim(); // give cached blocks back to the driver, then try once more
      ptr = nativeCallSync(`cudaMalloc(${cls} bytes)`, () => addon.cudaMalloc(cls));
    }
    stats.held += cls;
    stats.inUse += cls;
    stats.peak = Math.max(stats.peak, stats.inUse);
    return { ptr, bytes: cls };
  }

  function trim(): void {
    for (const [cls, ptrs] of pool) {
      for (const p of ptrs) {
        addon.cudaFree(p);
        stats.held -= cls;
      }
    }
    pool.clear();
  }

  const f = (t: Tensor) => cudaPtr(t);
  const fp8: Fp8Kernels = {
    encode: (x, format, out) => nativeCallSync('fp8.encode (cuda)', () => addon.cudaFp8Encode(f(x), f(out), x.size, FORMAT_CODE[format])),
    decode: (q, format, out) => nativeCallSync('fp8.decode (cuda)', () => addon.cudaFp8Decode(f(q), f(out), q.size, FORMAT_CODE[format])),
    quantize: (x, spec, data, scales) =>
      nativeCallSync('fp8.quantize (cuda)', () =>
        addon.cudaFp8Quantize(f(x), x.dtype === 'bf16', x.shape[0]!, x.shape[1]!, spec.block[0], FORMAT_CODE[spec.format], spec.ue8m0, f(data), f(scales)),
      ),
    dequantize: (data, scales, spec, out) =>
      nativeCallSync('fp8.dequantize (cuda)', () =>
        addon.cudaFp8Dequantize(f(data), f(scales), data.shape[0]!, data.shape[1]!, spec.block[0], FORMAT_CODE[spec.format], f(out)),
      ),
  };

  const GROUPING_CODE = { none: 0, contiguous: 1, masked: 2 } as const;
  const ptrOrNull = (t: Tensor | null) => (t ? cudaPtr(t) : 0n);
  const gemm: GemmKernels = {
    gathers: true,
    fp8: (g) =>
      nativeCallSync('gemm.fp8 (cuda)', () =>
        addon.cudaGemmFp8(
          f(g.a), f(g.aScales), f(g.b), f(g.bScales), g.M, g.N, g.K, g.G, g.Mmax, g.bBlockRows, GROUPING_CODE[g.grouping],
          ptrOrNull(g.rowGroups), ptrOrNull(g.c), f(g.out), g.out.dtype === 'bf16',
          ptrOrNull(g.gather?.pairs ?? null), g.gather?.k ?? 1, g.gather?.rowsA ?? g.M,
        ),
      ),
    matmul: (a, b, transA, transB, c, out) => {
      // op(A) [M, K]: a is [K, M] when transA; op(B) [K, N]: b is [N, K] when transB
      const M = transA ? a.shape[1]! : a.shape[0]!;
      const K = transA ? a.shape[0]! : a.shape[1]!;
      const N = transB ? b.shape[0]! : b.shape[1]!;
      return nativeCallSync('gemm.matmul (cuda)', () =>
        addon.cudaMatmul(f(a), f(b), a.dtype === 'bf16', M, N, K, transA, transB, ptrOrNull(c), f(out), out.dtype === 'bf16'),
      );
    },
    transpose: (x, out) =>
      nativeCallSync('gemm.transpose (cuda)', () => addon.cudaTranspose(f(x), x.shape[0]!, x.shape[1]!, dtypeBytes(x.dtype), f(out))),
  };

  const logprob: LogprobKernels = {
    fromLogits: (logits, targets, T, logp, lse, entropy) =>
      nativeCallSync('logprob.fromLogits (cuda)', () =>
        addon.cudaLogprobForward(f(logits), logits.dtype === 'bf16', f(targets), logits.shape[0]!, logits.shape[1]!, T, f(logp), f(lse), ptrOrNull(entropy)),
      ),
    fromLogitsBackward: (logits, targets, lse, g, T, dlogits) =>
      nativeCallSync('logprob.fromLogitsBackward (cuda)', () =>
        addon.cudaLogprobBackward(f(logits), logits.dtype === 'bf16', f(targets), f(lse), f(g), logits.shape[0]!, logits.shape[1]!, T, f(dlogits)),
      ),
    kl: (logp, ref, estimator, kl, dlogp) =>
      nativeCallSync('logprob.kl (cuda)', () => addon.cudaKl(f(logp), f(ref), logp.size, KL_CODE[estimator], f(kl), f(dlogp))),
  };

  const grpo: GrpoKernels = {
    advantages: (rewards, groupSize, scale, eps, out) =>
      nativeCallSync('grpo.advantages (cuda)', () => addon.cudaGrpoAdvantages(f(rewards), rewards.size, groupSize, ADV_SCALE_CODE[scale], eps, f(out))),
    // the kernels leave loss, clipFraction, meanKl, meanRatio as 4 f64 at the start of a work buffer
    // (the rest is their scratch: f64 [2 + 5·B]); one small read brings them back
    loss: async (x, p, dlogp) => {
      const [B, T] = x.logp.shape as [number, number];
      const work = backend.empty('u8', [8 * (6 + 5 * B)]);
      try {
        nativeCallSync('grpo.loss (cuda)', () =>
          addon.cudaGrpoLoss(f(x.logp), f(x.oldLogp), ptrOrNull(x.refLogp), f(x.advantages), f(x.mask), x.mask.dtype === 'u8', B, T,
            p.epsLow, p.epsHigh, p.delta ?? 0, p.beta, p.level === 'sequence', AGG_CODE[p.agg], p.maxLen, p.globalTokens ?? 0, f(dlogp), f(work)),
        );
        const r = new Float64Array(4);
        await nativeCall('grpo.loss read (cuda)', () => addon.cudaDownload(f(work), new Uint8Array(r.buffer)));
        return { loss: r[0]!, clipFraction: r[1]!, meanKl: r[2]!, meanRatio: r[3]! };
      } finally {
        work.dispose();
      }
    },
    fusedTokenLoss: (a, o) =>
      nativeCallSync('grpo.fusedTokenLoss (cuda)', () =>
        addon.cudaGrpoFusedTokenLoss(f(a.logits), a.logits.dtype === 'bf16', f(a.targets), f(a.oldLogp), ptrOrNull(a.refLogp), f(a.advantages), f(a.mask),
          a.mask.dtype === 'u8', f(a.seqWeight), a.logits.shape[0]!, a.logits.shape[1]!, a.T, a.temperature, a.epsLow, a.epsHigh, a.delta ?? 0, a.beta,
          f(o.logp), f(o.dlogits), o.dlogits.dtype === 'bf16', f(o.stats)),
      ),
    fusedWeights: (mask, agg, maxLen, globalTokens, seqWeight, work) =>
      nativeCallSync('grpo.fusedWeights (cuda)', () =>
        addon.cudaGrpoFusedWeights(f(mask), mask.dtype === 'u8', seqWeight.size, mask.size / seqWeight.size, AGG_CODE[agg], maxLen, globalTokens ?? 0, f(seqWeight), f(work)),
      ),
    async fusedStatSums(stats, B, work) {
      nativeCallSync('grpo.fusedStatSums (cuda)', () => addon.cudaGrpoFusedStatSums(f(stats), stats.shape[0]!, B, f(work)));
      const r = new Float64Array(6);
      await nativeCall('grpo.fusedStatSums read (cuda)', () => addon.cudaDownload(f(work), new Uint8Array(r.buffer)));
      return { tokens: r[4]!, sums: [r[0]!, r[1]!, r[2]!, r[3]!] };
    },
  };

  // MoE: every kernel launches on the stream and returns; align and auxLoss take a scratch tensor
  // from the pool for the call (given back at once: later users of that memory queue behind them)
  const rowBytes = (t: Tensor) => numel(t.shape.slice(1)) * dtypeBytes(t.dtype);
  const isBf16 = (t: Tensor) => t.dtype === 'bf16';
  const moe: MoeKernels = {
    route: (logits, bias, p, scores, weights, indices) =>
      nativeCallSync('moe.route (cuda)', () =>
        addon.cudaMoeRoute(f(logits), ptrOrNull(bias), logits.shape[0]!, logits.shape[1]!, p.topk, p.nGroup, p.topkGroup, p.scoring === 'softmax',
          p.groupScore === 'max', p.normTopkProb, p.routedScalingFactor, f(scores), f(weights), f(indices)),
      ),
    routeBackward: (scores, indices, dWeights, dScores, p, dLogits) =>
      nativeCallSync('moe.routeBackward (cuda)', () =>
        addon.cudaMoeRouteBackward(f(scores), f(indices), f(dWeights), ptrOrNull(dScores), scores.shape[0]!, scores.shape[1]!, indices.shape[1]!,
          p.scoring === 'softmax', p.normTopkProb, p.routedScalingFactor, f(dLogits)),
      ),
    updateBias: (bias, load, gamma, out) => nativeCallSync('moe.updateBias (cuda)', () => addon.cudaMoeUpdateBias(f(bias), f(load), bias.size, gamma, f(out))),
    auxLoss: async (scores, indices, seqLen, alpha, dScores) => {
      const [T, E] = scores.shape as [number, number];
      const work = backend.empty('u8', [8 * (1 + T) + 4 * (T / seqLen) * E]);
      try {
        nativeCallSync('moe.auxLoss (cuda)', () => addon.cudaMoeAuxLoss(f(scores), f(indices), T, E, indices.shape[1]!, seqLen, alpha, f(dScores), f(work)));
        const r = new Float64Array(1);
        await nativeCall('moe.auxLoss read (cuda)', () => addon.cudaDownload(f(work), new Uint8Array(r.buffer)));
        return r[0]!;
      } finally {
        work.dispose();
      }
    },
    layout: (indices, numExperts, numRanks, tokensPerRank, tokensPerExpert, isTokenInRank) =>
      nativeCallSync('moe.layout (cuda)', () =>
        addon.cudaMoeLayout(f(indices), indices.shape[0]!, indices.shape[1]!, numExperts, numRanks, f(tokensPerRank), f(tokensPerExpert), f(isTokenInRank)),
      ),
    align: (indices, numExperts, blockSize, capacity, sortedPairs, blockExpert, rowExpert, pairPos, counts, info) => {
      const [T, k] = indices.shape as [number, number];
      const work = backend.empty('u8', [nativeCallSync('moe.align (cuda)', () => addon.cudaMoeAlignWorkBytes(T * k, numExperts))]);
      try {
        nativeCallSync('moe.align (cuda)', () =>
          addon.cudaMoeAlign(f(indices), T, k, numExperts, blockSize, capacity, sortedPairs.size, f(sortedPairs), f(blockExpert), f(rowExpert), f(pairPos),
            f(counts), f(info), f(work)),
        );
      } finally {
        work.dispose();
      }
    },
    permute: (x, rows, k, weights, out) =>
      nativeCallSync('moe.permute (cuda)', () =>
        addon.cudaMoePermute(f(x), isBf16(x), x.shape[0]!, x.shape[1]!, f(rows), out.shape[0]!, k, ptrOrNull(weights), f(out), isBf16(out)),
      ),
    unpermute: (y, pairPos, weights, out) =>
      nativeCallSync('moe.unpermute (cuda)', () =>
        addon.cudaMoeUnpermute(f(y), isBf16(y), y.shape[0]!, y.shape[1]!, f(pairPos), pairPos.shape[0]!, pairPos.shape[1]!, ptrOrNull(weights), f(out), isBf16(out)),
      ),
    unpermuteWeightGrad: (dOut, y, pairPos, dWeights) =>
      nativeCallSync('moe.unpermuteWeightGrad (cuda)', () =>
        addon.cudaMoeUnpermuteWeightGrad(f(dOut), isBf16(dOut), f(y), isBf16(y), y.shape[0]!, y.shape[1]!, f(pairPos), pairPos.shape[0]!, pairPos.shape[1]!,
          f(dWeights)),
      ),
    permuteBytes: (x, rows, k, out) =>
      nativeCallSync('moe.permuteBytes (cuda)', () => addon.cudaMoePermuteBytes(f(x), x.shape[0]!, rowBytes(x), f(rows), out.shape[0]!, k, f(out))),
    copyRows: (src, srcRow, dst, dstRow, rows) => {
      const rb = rowBytes(src);
      if (rows <= 0 || rb === 0) return;
      nativeCallSync('moe.copyRows (cuda)', () => addon.cudaCopy(f(dst) + BigInt(dstRow * rb), f(src) + BigInt(srcRow * rb), rows * rb));
    },
    // dispatch's device path (native/cuda/moe_dispatch.cu)
    dispatchPlan: (indices, E, sendRow, pairRank, table, slotRows, pieceEnds) => {
      const [T, k] = indices.shape as [number, number];
      const R = sendRow.shape[1]!;
      const work = backend.empty('u8', [nativeCallSync('moe.dispatchPlan (cuda)', () => addon.cudaMoeDispatchPlanWorkBytes(T * k, E, R))]);
      try {
        nativeCallSync('moe.dispatchPlan (cuda)', () => addon.cudaMoeDispatchPlan(f(indices), T, k, E, R, f(sendRow), f(pairRank), f(table), f(work), slotRows ?? 0, pieceEnds ?? new Int32Array(0)));
      } finally {
        work.dispose();
      }
    },
    dispatchPack: (x, indices, weights, sendRow, pairRank, E, fp8, packed, dest) => {
      const H = x.shape[1]!, k = indices.shape[1]!, R = sendRow.shape[1]!;
      const L = dispatchRowLayout(fp8 ? H : rowBytes(x), fp8 ? H / 128 : 0, k);
      const bases = dest ? BigUint64Array.from(dest.rows, (t) => f(t)) : new BigUint64Array(0);
      const S = dest ? R * dest.slotRows : packed!.shape[0]!;
      nativeCallSync('moe.dispatchPack (cuda)', () =>
        addon.cudaMoeDispatchPack(f(x), isBf16(x), x.shape[0]!, H, f(indices), k, f(weights), E, R, f(sendRow), f(pairRank), S, fp8,
          packed ? f(packed) : 0n, L.stride, L.scalesAt, L.metaAt, bases, dest?.slotRows ?? 0),
      );
    },
    dispatchRecvLayout: (tables, rank, E, bs, k, base, counts, sortedPairs, blockExpert, rowExpert, expertX, expertScales) => {
      const work = backend.empty('i32', [counts.shape[0]! + 2]);
      try {
        nativeCallSync('moe.dispatchRecvLayout (cuda)', () =>
          addon.cudaMoeDispatchRecvLayout(f(tables), tables.shape[0]!, tables.shape[1]!, E, rank, bs, k, f(base), f(counts), f(sortedPairs), sortedPairs.shape[0]!, f(blockExpert),
            f(rowExpert), ptrOrNull(expertX), expertX?.shape[0] ?? 0, expertX ? rowBytes(expertX) : 0, ptrOrNull(expertScales), expertScales ? rowBytes(expertScales) : 0, f(work)),
        );
      } finally {
        work.dispose();
      }
    },
    dispatchScatter: (a) => {
      const payload = rowBytes(a.recv), scaleBytes = a.recvScales ? rowBytes(a.recvScales) : 0;
      const L = dispatchRowLayout(payload, scaleBytes / 4, a.k);
      nativeCallSync('moe.dispatchScatter (cuda)', () =>
        addon.cudaMoeDispatchScatter(f(a.src), a.src.shape[0]!, L.stride, payload, L.scalesAt, scaleBytes, L.metaAt, a.srcRow, a.rows, a.recvRow, f(a.base),
          a.base.shape[0]!, a.base.shape[1]!, a.source, a.k, ptrOrNull(a.expertX), a.expertX?.shape[0] ?? 0, ptrOrNull(a.expertScales), f(a.sortedPairs),
          a.sortedPairs.shape[0]!, f(a.pairPos), a.pairPos.shape[0]!, f(a.recvIndices), f(a.recvWeights), f(a.recv), ptrOrNull(a.recvScales)),
      );
    },
    // unpermute on a window: the same kernel on pointers into the tensors (the addon checks they stay inside)
    unpermuteRows: (y, pairPos, weights, row0, rows, out, outRow0) => {
      if (rows <= 0) return;
      const k = pairPos.shape[1]!;
      const pr = BigInt(row0 * k * 4);
      nativeCallSync('moe.unpermuteRows (cuda)', () =>
        addon.cudaMoeUnpermute(f(y), isBf16(y), y.shape[0]!, y.shape[1]!, f(pairPos) + pr, rows, k, weights ? f(weights) + pr : 0n, f(out) + BigInt(outRow0 * rowBytes(out)), isBf16(out)),
      );
    },
  };

  // Scratch for one launch: released as soon as the launch is queued. Safe because every kernel, copy,
  // poison memset and upload runs in order on the addon's one stream, so whoever gets the block from
  // the pool next touches it only after this launch is done (cudaFree syncs the stream first).
  const withWork = <R>(dtype: DType, n: number, fn: (work: Tensor) => R): R => {
    const work = backend.empty(dtype, [n]);
    try {
      return fn(work);
    } finally {
      work.dispose();
    }
  };
  // the ops hand every nn kernel canonical shapes ([N, D], [N, nH, Dh], [B, T, nH, Dh])
  const nn: NnKernels = {
    embedding: (table, ids, out) =>
      nativeCallSync('nn.embedding (cuda)', () => addon.cudaNnEmbedding(f(table), f(ids), table.shape[0]!, table.shape[1]!, ids.size, f(out))),
    embeddingBackward: (dOut, ids, dTable) =>
      nativeCallSync('nn.embeddingBackward (cuda)', () => addon.cudaNnEmbeddingBackward(f(dOut), f(ids), dTable.shape[0]!, dTable.shape[1]!, ids.size, f(dTable))),
    rmsnorm: (x, weight, eps, out, rstd) =>
      nativeCallSync('nn.rmsnorm (cuda)', () => addon.cudaNnRmsnorm(f(x), f(weight), x.shape[0]!, x.shape[1]!, eps, f(out), f(rstd))),
    rmsnormBackward: (dOut, x, weight, rstd, dx, dWeight) => {
      const [N, D] = x.shape as [number, number];
      withWork('f32', cudaNnRmsnormWorkFloats(N, D), (work) =>
        nativeCallSync('nn.rmsnormBackward (cuda)', () => addon.cudaNnRmsnormBackward(f(dOut), f(x), f(weight), f(rstd), N, D, f(dx), f(dWeight), f(work))),
      );
    },
    rope: (x, positions, theta, inverse, out) =>
      nativeCallSync('nn.rope (cuda)', () => addon.cudaNnRope(f(x), f(positions), x.shape[0]!, x.shape[1]!, x.shape[2]!, theta, inverse, f(out))),
    attention: (q, k, v, qOffset, kvLen, scale, out, lse) =>
      nativeCallSync('nn.attention (cuda)', () =>
        addon.cudaNnAttention(f(q), f(k), f(v), q.shape[0]!, q.shape[1]!, k.shape[1]!, q.shape[2]!, q.shape[3]!, qOffset, kvLen, scale, f(out), f(lse)),
      ),
    attentionBackward: (q, k, v, out, lse, dOut, scale, dq, dk, dv) =>
      withWork('f32', lse.size, (work) =>
        nativeCallSync('nn.attentionBackward (cuda)', () =>
          addon.cudaNnAttentionBackward(f(q), f(k), f(v), f(out), f(lse), f(dOut), q.shape[0]!, q.shape[1]!, q.shape[2]!, q.shape[3]!, scale, f(dq), f(dk), f(dv), f(work)),
        ),
      ),
    swiglu: (gate, up, out) => nativeCallSync('nn.swiglu (cuda)', () => addon.cudaNnSwiglu(f(gate), f(up), gate.size, f(out))),
    swigluBackward: (gate, up, dOut, dGate, dUp) =>
      nativeCallSync('nn.swigluBackward (cuda)', () => addon.cudaNnSwigluBackward(f(gate), f(up), f(dOut), gate.size, f(dGate), f(dUp))),
    addScaled: (a, b, alpha, out) => nativeCallSync('nn.addScaled (cuda)', () => addon.cudaNnAddScaled(f(a), f(b), a.size, alpha, f(out))),
    // a number: the f64 sum waits for the stream (one 8-byte read, like grpo.loss's results)
    sumSquares: async (x) => {
      const work = backend.empty('u8', [CUDA_SUM_SQUARES_WORK_BYTES]);
      try {
        nativeCallSync('nn.sumSquares (cuda)', () => addon.cudaNnSumSquares(f(x), x.size, f(work)));
        const r = new Float64Array(1);
        await nativeCall('nn.sumSquares read (cuda)', () => addon.cudaDownload(f(work), r));
        return r[0]!;
      } finally {
        work.dispose();
      }
    },
    adamw: (param, grad, m, v, p) =>
      nativeCallSync('nn.adamw (cuda)', () => addon.cudaNnAdamw(f(param), f(grad), f(m), f(v), param.size, p.lr, p.beta1, p.beta2, p.eps, p.weightDecay, p.step)),
    sample: (logits, uniforms, temperature, topP, ids) =>
      nativeCallSync('nn.sample (cuda)', () => addon.cudaNnSample(f(logits), f(uniforms), logits.shape[0]!, logits.shape[1]!, temperature, topP, f(ids))),
  };

  const backend: Backend & { poolStats(): typeof stats; trim(): void; info: typeof info } = {
    name: 'cuda',
    deviceName: info.name,
    maxBytes: Math.floor(info.totalMem * 0.9),
    info,
    details: { ...info, build: addon.buildInfo() },
    destroy: () => trim(),
    empty(dtype: DType, shape: readonly number[]): Tensor {
      const bytes = numel(shape) * dtypeBytes(dtype);
      if (bytes > backend.maxBytes) {
        throw new HotpathsError('E_TOO_LARGE', `empty(): ${dtype}${show(shape)} needs ${bytes} bytes, more than this GPU can hold (${backend.maxBytes})`);
      }
      const s = alloc(bytes);
      if (poisonEnabled()) nativeCallSync('poison (cuda)', () => addon.cudaMemset(s.ptr, POISON_BYTE, s.bytes));
      return new Tensor(backend, dtype, shape, s);
    },
    fromHost(data: HostArray, dtype: DType, shape: readonly number[]): Tensor {
      const t = backend.empty(dtype, shape);
      if (data.byteLength > 0) nativeCallSync('upload (cuda)', () => addon.cudaUpload(cudaPtr(t), data));
      return t;
    },
    copy(t: Tensor): Tensor {
      const out = backend.empty(t.dtype, t.shape);
      if (t.bytes > 0) nativeCallSync('copy (cuda)', () => addon.cudaCopy(cudaPtr(out), cudaPtr(t), t.bytes));
      return out;
    },
    async read(t: Tensor): Promise<HostArray> {
      const host = allocHost(t.dtype, t.size);
      if (t.size > 0) await nativeCall('read (cuda)', () => addon.cudaDownload(cudaPtr(t), host));
      return host;
    },
    viewStorage(t: Tensor, byteOffset: number, bytes: number): CudaStorage {
      return { ptr: offsetPtr(t, byteOffset, 'view'), bytes };
    },
    takeStorage(t: Tensor, byteOffset: number): CudaStorage {
      const s = t.storage as CudaStorage;
      return { ptr: offsetPtr(t, byteOffset, 'storage'), bytes: s.bytes, ...(s.onRelease ? { onRelease: s.onRelease } : { alloc: s.alloc ?? s.ptr }) };
    },
    release(t: Tensor): void {
      const s = t.storage as CudaStorage;
      if (s.onRelease) {
        s.onRelease();
        return;
      }
      let free = pool.get(s.bytes);
      if (!free) pool.set(s.bytes, (free = []));
      free.push(s.alloc ?? s.ptr);
      stats.inUse -= s.bytes;
    },
    // (an idle stream settles at once; otherwise a worker thread waits for it)
    sync: () => nativeCall('sync (cuda)', () => addon.cudaSynchronize()),
    deviceTimer: {
      start: () => nativeCallSync('timer (cuda)', () => addon.cudaTimerStart()),
      stop: () => nativeCall('timer (cuda)', () => addon.cudaTimerStop()),
    },
    measureCeilings: (opts) => measureCudaCeilings(backend, addon, info.smCount, opts.quick),
    poolStats: () => ({ ...stats }),
    memoryStats: () => ({ inUse: stats.inUse, peak: stats.peak }),
    resetPeak: () => {
      stats.peak = stats.inUse;
    },
    trim,
    fp8,
    gemm,
    logprob,
    grpo,
    moe,
    nn,
  };
  return backend;
}

/**
 * Copy: cudaMemcpyAsync device to device between two allocations of 256 MiB (64 MiB when quick).
 * FLOP/s: cudaPeakFlops on 4 blocks of 256 threads per multiprocessor, its iterations grown until a
 * launch takes 50 ms (10 ms when quick). Both timed with CUDA events (median of the reps after a warm-up).
 */
async function measureCudaCeilings(backend: Backend, addon: Addon, smCount: number, quick: boolean): Promise<MachineCeilings> {
  const timer = backend.deviceTimer!;
  const timed = async (launch: () => void): Promise<number> => {
    timer.start();
    launch();
    return timer.stop();
  };
  const medianOf = async (launch: () => void): Promise<number> => {
    await timed(launch); // warm-up
    const samples: number[] = [];
    for (let i = 0; i < (quick ? 3 : 7); i++) samples.push(await timed(launch));
    return median(samples);
  };

  const bytes = ceilingCopyBytes(quick, backend.maxBytes / 2);
  const src = backend.empty('u8', [bytes]);
  const dst = backend.empty('u8', [bytes]);
  let copyMs: number;
  try {
    copyMs = await medianOf(() => nativeCallSync('measureCeilings copy (cuda)', () => addon.cudaCopy(cudaPtr(dst), cudaPtr(src), bytes)));
  } finally {
    src.dispose();
    dst.dispose();
  }

  const blocks = 4 * Math.max(1, smCount);
  const threads = 256;
  const launch = (iters: number) => () => nativeCallSync('measureCeilings flops (cuda)', () => addon.cudaPeakFlops(blocks, threads, iters));
  await timed(launch(256)); // loads the module
  const iters = await calibrate((n) => timed(launch(n)), 4096, quick ? 10 : 50, 2 ** 31 - 1);
  const flopsMs = await medianOf(launch(iters));
  const flops = blocks * threads * iters * CUDA_FMA_CHAINS * 2;
  return checkedCeilings('cuda', { copyGBps: (2 * bytes) / (copyMs * 1e6), fp32Tflops: flops / (flopsMs * 1e9) });
}
