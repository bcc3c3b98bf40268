// The cpu backend: tensors in host typed arrays, kernels in the addon's C++ (native/cpu/), run on
// its thread pool off the event loop.

import { cpus } from 'node:os';
import type { AdvantageScale, Backend, Fp8Format, Fp8Kernels, GemmGrouping, GemmKernels, GrpoAgg, GrpoKernels, KlEstimator, LogprobKernels, MachineCeilings, MoeGroupScore, MoeKernels, MoeScoring, NnKernels } from '../runtime/backend.js';
import { dtypeBytes } from '../dtype.js';
import { hostData, hostStorage } from '../runtime/host.js';
import { calibrate, ceilingCopyBytes, checkedCeilings, medianHostMs } from '../runtime/measure.js';
import type { Tensor } from '../tensor.js';
import type { Addon } from './addon.js';
import { nativeCall } from './call.js';

export const FORMAT_CODE: Readonly<Record<Fp8Format, number>> = { e4m3: 0, e5m2: 1 };
export const ADV_SCALE_CODE: Readonly<Record<AdvantageScale, number>> = { group: 0, batch: 1, none: 2 };
export const AGG_CODE: Readonly<Record<GrpoAgg, number>> = { grpo: 0, bnpo: 1, dr_grpo: 2, dapo: 3 };
export const KL_CODE: Readonly<Record<KlEstimator, number>> = { k1: 0, k2: 1, k3: 2, k3_clamped: 3 };
export const SCORING_CODE: Readonly<Record<MoeScoring, number>> = { sigmoid: 0, softmax: 1 };
export const GROUP_SCORE_CODE: Readonly<Record<MoeGroupScore, number>> = { top2: 0, max: 1 };
/** The addon's mode codes of the FP8 GEMM groupings. */
export const GROUPING_CODE: Readonly<Record<GemmGrouping, number>> = { none: 0, contiguous: 1, masked: 2 };

export function createCpuBackend(addon: Addon): Backend {
  const fp8: Fp8Kernels = {
    encode: (x, format, out) =>
      nativeCall('fp8.encode (cpu)', () => addon.cpuFp8Encode(hostData<Float32Array>(x), hostData<Uint8Array>(out), FORMAT_CODE[format])),
    decode: (q, format, out) =>
      nativeCall('fp8.decode (cpu)', () => addon.cpuFp8Decode(hostData<Uint8Array>(q), hostData<Float32Array>(out), FORMAT_CODE[format])),
    quantize: (x, spec, data, scales) =>
      nativeCall('fp8.quantize (cpu)', () =>
        addon.cpuFp8Quantize(hostData<Float32Array | Uint16Array>(x), x.shape[0]!, x.shape[1]!, spec.block[0], FORMAT_CODE[spec.format], spec.ue8m0, hostData<Uint8Array>(data), hostData<Float32Array>(scales)),
      ),
    dequantize: (data, scales, spec, out) =>
      nativeCall('fp8.dequantize (cpu)', () =>
        addon.cpuFp8Dequantize(hostData<Uint8Array>(data), hostData<Float32Array>(scales), data.shape[0]!, data.shape[1]!, spec.block[0], FORMAT_CODE[spec.format], hostData<Float32Array>(out)),
      ),
  };
  const logprob: LogprobKernels = {
    fromLogits: (logits, targets, T, logp, lse, entropy) =>
      nativeCall('logprob.fromLogits (cpu)', () =>
        addon.cpuLogprobForward(hostData<Float32Array | Uint16Array>(logits), hostData<Int32Array>(targets), logits.shape[0]!, logits.shape[1]!, T,
          hostData<Float32Array>(logp), hostData<Float32Array>(lse), entropy ? hostData<Float32Array>(entropy) : null),
      ),
    fromLogitsBackward: (logits, targets, lse, g, T, dlogits) =>
      nativeCall('logprob.fromLogitsBackward (cpu)', () =>
        addon.cpuLogprobBackward(hostData<Float32Array | Uint16Array>(logits), hostData<Int32Array>(targets), hostData<Float32Array>(lse), hostData<Float32Array>(g),
          logits.shape[0]!, logits.shape[1]!, T, hostData<Float32Array>(dlogits)),
      ),
    kl: (logp, ref, estimator, kl, dlogp) =>
      nativeCall('logprob.kl (cpu)', () =>
        addon.cpuKl(hostData<Float32Array>(logp), hostData<Float32Array>(ref), logp.size, KL_CODE[estimator], hostData<Float32Array>(kl), hostData<Float32Array>(dlogp)),
      ),
  };
  const grpo: GrpoKernels = {
    advantages: (rewards, groupSize, scale, eps, out) =>
      nativeCall('grpo.advantages (cpu)', () =>
        addon.cpuGrpoAdvantages(hostData<Float32Array>(rewards), rewards.size, groupSize, ADV_SCALE_CODE[scale], eps, hostData<Float32Array>(out)),
      ),
    loss: async (x, p, dlogp) => {
      const [B, T] = x.logp.shape as [number, number];
      const r = new Float64Array(4);
      await nativeCall('grpo.loss (cpu)', () =>
        addon.cpuGrpoLoss(hostData<Float32Array>(x.logp), hostData<Float32Array>(x.oldLogp), x.refLogp ? hostData<Float32Array>(x.refLogp) : null,
          hostData<Float32Array>(x.advantages), hostData<Float32Array | Uint8Array>(x.mask), B, T, p.epsLow, p.epsHigh, p.delta ?? 0, p.beta,
          p.level === 'sequence', AGG_CODE[p.agg], p.maxLen, p.globalTokens ?? 0, hostData<Float32Array>(dlogp), r),
      );
      return { loss: r[0]!, clipFraction: r[1]!, meanKl: r[2]!, meanRatio: r[3]! };
    },
  };
  const gemm: GemmKernels = {
    fp8: (g) =>
      nativeCall('gemm.fp8 (cpu)', () =>
        addon.cpuGemmFp8(
          hostData<Uint8Array>(g.a),
          hostData<Float32Array>(g.aScales),
          hostData<Uint8Array>(g.b),
          hostData<Float32Array>(g.bScales),
          g.M,
          g.N,
          g.K,
          g.G,
          g.Mmax,
          g.bBlockRows,
          GROUPING_CODE[g.grouping],
          g.rowGroups ? hostData<Int32Array>(g.rowGroups) : null,
          g.c ? hostData<Float32Array>(g.c) : null,
          hostData<Float32Array | Uint16Array>(g.out),
        ),
      ),
    // op(A) [M, K] (a is [K, M] when transA), out [M, N]
    matmul: (a, b, transA, transB, c, out) =>
      nativeCall('gemm.matmul (cpu)', () =>
        addon.cpuMatmul(
          hostData<Float32Array | Uint16Array>(a),
          hostData<Float32Array | Uint16Array>(b),
          out.shape[0]!,
          out.shape[1]!,
          transA ? a.shape[0]! : a.shape[1]!,
          transA,
          transB,
          c ? hostData<Float32Array>(c) : null,
          hostData<Float32Array | Uint16Array>(out),
        ),
      ),
    transpose: (x, out) =>
      nativeCall('gemm.transpose (cpu)', () => addon.cpuTranspose(hostData(x), x.shape[0]!, x.shape[1]!, hostData(out))),
  };
  const f32 = (t: Tensor): Float32Array => hostData<Float32Array>(t);
  const i32 = (t: Tensor): Int32Array => hostData<Int32Array>(t);
  // the ops hand every nn kernel canonical shapes ([N, D], [N, nH, Dh], [B, T, nH, Dh])
  const nn: NnKernels = {
    embedding: (table, ids, out) =>
      nativeCall('nn.embedding (cpu)', () => addon.cpuNnEmbedding(f32(table), i32(ids), table.shape[0]!, table.shape[1]!, ids.size, f32(out))),
    embeddingBackward: (dOut, ids, dTable) =>
      nativeCall('nn.embeddingBackward (cpu)', () => addon.cpuNnEmbeddingBackward(f32(dOut), i32(ids), dTable.shape[0]!, dTable.shape[1]!, ids.size, f32(dTable))),
    rmsnorm: (x, weight, eps, out, rstd) =>
      nativeCall('nn.rmsnorm (cpu)', () => addon.cpuNnRmsnorm(f32(x), f32(weight), x.shape[0]!, x.shape[1]!, eps, f32(out), f32(rstd))),
    rmsnormBackward: (dOut, x, weight, rstd, dx, dWeight) =>
      nativeCall('nn.rmsnormBackward (cpu)', () => addon.cpuNnRmsnormBackward(f32(dOut), f32(x), f32(weight), f32(rstd), x.shape[0]!, x.shape[1]!, f32(dx), f32(dWeight))),
    rope: (x, positions, theta, inverse, out) =>
      nativeCall('nn.rope (cpu)', () => addon.cpuNnRope(f32(x), i32(positions), x.shape[0]!, x.shape[1]!, x.shape[2]!, theta, inverse, f32(out))),
    attention: (q, k, v, qOffset, kvLen, scale, out, lse) =>
      nativeCall('nn.attention (cpu)', () =>
        addon.cpuNnAttention(f32(q), f32(k), f32(v), q.shape[0]!, q.shape[1]!, k.shape[1]!, q.shape[2]!, q.shape[3]!, qOffset, kvLen, scale, f32(out), f32(lse))),
    attentionBackward: (q, k, v, out, lse, dOut, scale, dq, dk, dv) =>
      nativeCall('nn.attentionBackward (cpu)', () =>
        addon.cpuNnAttentionBackward(f32(q), f32(k), f32(v), f32(out), f32(lse), f32(dOut), q.shape[0]!, q.shape[1]!, q.shape[2]!, q.shape[3]!, scale, f32(dq), f32(dk), f32(dv))),
    swiglu: (gate, up, out) => nativeCall('nn.swiglu (cpu)', () => addon.cpuNnSwiglu(f32(gate), f32(up), gate.size, f32(out))),
    swigluBackward: (gate, up, dOut, dGate, dUp) =>
      nativeCall('nn.swigluBackward (cpu)', () => addon.cpuNnSwigluBackward(f32(gate), f32(up), f32(dOut), gate.size, f32(dGate), f32(dUp))),
    addScaled: (a, b, alpha, out) => nativeCall('nn.addScaled (cpu)', () => addon.cpuNnAddScaled(f32(a), f32(b), a.size, alpha, f32(out))),
    sumSquares: (x) => nativeCall('nn.sumSquares (cpu)', () => addon.cpuNnSumSquares(f32(x), x.size)),
    adamw: (param, grad, m, v, p) =>
      nativeCall('nn.adamw (cpu)', () => addon.cpuNnAdamw(f32(param), f32(grad), f32(m), f32(v), param.size, p.lr, p.beta1, p.beta2, p.eps, p.weightDecay, p.step)),
    sample: (logits, uniforms, temperature, topP, ids) =>
      nativeCall('nn.sample (cpu)', () => addon.cpuNnSample(f32(logits), f32(uniforms), logits.shape[0]!, logits.shape[1]!, temperature, topP, i32(ids))),
  };
  type Rows = Float32Array | Uint16Array;
  const moe: MoeKernels = {
    route: (logits, bias, p, scores, weights, indices) =>
      nativeCall('moe.route (cpu)', () =>
        addon.cpuMoeRoute(hostData<Float32Array>(logits), bias ? hostData<Float32Array>(bias) : null, logits.shape[0]!, logits.shape[1]!, SCORING_CODE[p.scoring],
          p.topk, p.nGroup, p.topkGroup, GROUP_SCORE_CODE[p.groupScore], p.normTopkProb, p.routedScalingFactor,
          hostData<Float32Array>(scores), hostData<Float32Array>(weights), hostData<Int32Array>(indices)),
      ),
    routeBackward: (scores, indices, dWeights, dScores, p, dLogits) =>
      nativeCall('moe.routeBackward (cpu)', () =>
        addon.cpuMoeRouteBackward(hostData<Float32Array>(scores), hostData<Int32Array>(indices), hostData<Float32Array>(dWeights), dScores ? hostData<Float32Array>(dScores) : null,
          scores.shape[0]!, scores.shape[1]!, indices.shape[1]!, SCORING_CODE[p.scoring], p.normTopkProb, p.routedScalingFactor, hostData<Float32Array>(dLogits)),
      ),
    updateBias: (bias, load, gamma, out) =>
      nativeCall('moe.updateBias (cpu)', () => addon.cpuMoeUpdateBias(hostData<Float32Array>(bias), hostData<Int32Array>(load), bias.size, gamma, hostData<Float32Array>(out))),
    auxLoss: (scores, indices, seqLen, alpha, dScores) =>
      nativeCall('moe.auxLoss (cpu)', () =>
        addon.cpuMoeAuxLoss(hostData<Float32Array>(scores), hostData<Int32Array>(indices), scores.shape[0]!, scores.shape[1]!, indices.shape[1]!, seqLen, alpha, hostData<Float32Array>(dScores)),
      ),
    layout: (indices, numExperts, numRanks, tokensPerRank, tokensPerExpert, isTokenInRank) =>
      nativeCall('moe.layout (cpu)', () =>
        addon.cpuMoeLayout(hostData<Int32Array>(indices), indices.shape[0]!, indices.shape[1]!, numExperts, numRanks, hostData<Int32Array>(tokensPerRank),
          hostData<Int32Array>(tokensPerExpert), hostData<Uint8Array>(isTokenInRank)),
      ),
    align: (indices, numExperts, blockSize, capacity, sortedPairs, blockExpert, rowExpert, pairPos, counts, info) =>
      nativeCall('moe.align (cpu)', () =>
        addon.cpuMoeAlign(hostData<Int32Array>(indices), indices.shape[0]!, indices.shape[1]!, numExperts, blockSize, capacity, hostData<Int32Array>(sortedPairs),
          hostData<Int32Array>(blockExpert), hostData<Int32Array>(rowExpert), hostData<Int32Array>(pairPos), hostData<Int32Array>(counts), hostData<Int32Array>(info)),
      ),
    // x [T, H] -> out [P, H]
    permute: (x, rows, k, weights, out) =>
      nativeCall('moe.permute (cpu)', () =>
        addon.cpuMoePermute(hostData<Rows>(x), hostData<Int32Array>(rows), x.shape[0]!, x.shape[1]!, k, out.shape[0]!, weights ? hostData<Float32Array>(weights) : null, hostData<Rows>(out)),
      ),
    // x [T, W] -> out [P, W], any dtype, bytes as they are
    permuteBytes: (x, rows, k, out) => {
      const P = out.shape[0]!;
      const rowBytes = P ? (out.size / P) * dtypeBytes(out.dtype) : 0;
      return nativeCall('moe.permuteBytes (cpu)', () => addon.cpuMoePermuteBytes(hostData(x), hostData<Int32Array>(rows), x.shape[0]!, rowBytes, k, P, hostData(out)));
    },
    // y [P, H] -> out [T, H]
    unpermute: (y, pairPos, weights, out) =>
      nativeCall('moe.unpermute (cpu)', () =>
        addon.cpuMoeUnpermute(hostData<Rows>(y), hostData<Int32Array>(pairPos), y.shape[0]!, y.shape[1]!, pairPos.shape[0]!, pairPos.shape[1]!,
          weights ? hostData<Float32Array>(weights) : null, hostData<Rows>(out)),
      ),
    unpermuteWeightGrad: (dOut, y, pairPos, dWeights) =>
      nativeCall('moe.unpermuteWeightGrad (cpu)', () =>
        addon.cpuMoeUnpermuteWeightGrad(hostData<Rows>(dOut), hostData<Rows>(y), hostData<Int32Array>(pairPos), pairPos.shape[0]!, pairPos.shape[1]!, y.shape[0]!, y.shape[1]!,
          hostData<Float32Array>(dWeights)),
      ),
    // the rows as subarrays, moved by the addon's threaded copy
    copyRows: (src, srcRow, dst, dstRow, rows) => {
      const row = src.shape[0] ? src.size / src.shape[0] : 0;
      const s = hostData(src).subarray(srcRow * row, (srcRow + rows) * row);
      const d = hostData(dst).subarray(dstRow * row, (dstRow + rows) * row);
      return nativeCall('moe.copyRows (cpu)', () => addon.cpuCopy(d, s));
    },
  };
  const info = addon.buildInfo();
  const backend: Backend = {
    name: 'cpu',
    deviceName: `${cpus()[0]?.model?.trim() ?? 'CPU'} (${info.threads} threads, ${info.simd})`,
    details: { ...info },
    ...hostStorage(() => backend),
    measureCeilings: (opts) => measureCpuCeilings(addon, opts.quick),
    fp8,
    gemm,
    logprob,
    grpo,
    nn,
    moe,
  };
  return backend;
}

/**
 * Copy: the addon's threaded copy (cpuCopy) between two arrays of 256 MiB (64 MiB when quick).
 * FLOP/s: cpuPeakFlops (FMA chains on every pool thread), its size grown until a call takes 100 ms
 * (20 ms when quick). Both are wall-clock medians (performance.now()) after a warm-up.
 */
async function measureCpuCeilings(addon: Addon, quick: boolean): Promise<MachineCeilings> {
  const bytes = ceilingCopyBytes(quick);
  const src = new Uint8Array(bytes).fill(1);
  const dst = new Uint8Array(bytes);
  const copyMs = await medianHostMs(() => nativeCall('measureCeilings copy (cpu)', () => addon.cpuCopy(dst, src)), quick ? 3 : 7);

  let flops = 0;
  const run = async (iters: number): Promise<void> => {
    flops = await nativeCall('measureCeilings flops (cpu)', () => addon.cpuPeakFlops(iters));
  };
  const timeOnce = async (iters: number): Promise<number> => {
    const t0 = performance.now();
    await run(iters);
    return performance.now() - t0;
  };
  await run(1 << 12); // wakes the pool's threads
  const iters = await calibrate(timeOnce, 1 << 14, quick ? 20 : 100, 2 ** 36);
  const flopsMs = await medianHostMs(() => run(iters), quick ? 3 : 5, 0);
  return checkedCeilings('cpu', { copyGBps: (2 * bytes) / (copyMs * 1e6), fp32Tflops: flops / (flopsMs * 1e9) });
}
