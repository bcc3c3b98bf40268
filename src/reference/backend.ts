// The reference backend: tensors in host typed arrays, kernels as plain TypeScript loops (the oracle).

import { dispatchRowLayout, type Backend, type Fp8Kernels, type GemmKernels, type GrpoKernels, type LogprobKernels, type MachineCeilings, type MoeKernels, type NnKernels } from '../runtime/backend.js';
import { hostData, hostStorage } from '../runtime/host.js';
import { calibrate, ceilingCopyBytes, checkedCeilings, medianHostMs } from '../runtime/measure.js';
import { dtypeBytes, fromBf16 } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import { HotpathsError } from '../errors.js';
import * as ref from './fp8.js';
import { gemmFp8, matmul, transpose } from './gemm.js';
import { grpoAdvantages, grpoFusedTokenLoss, grpoLoss } from './grpo.js';
import { klForward, logprobBackward, logprobForward, type LogitsView } from './logprob.js';
import * as nnRef from './nn.js';
import {
  moeAlign, moeAuxLoss, moeDispatchPack, moeDispatchPlan, moeDispatchRecvLayout, moeDispatchScatter, moeLayout, moePermute, moePermuteBytes, moeRoute,
  moeRouteBackward, moeUnpermute, moeUnpermuteRows, moeUnpermuteWeightGrad, moeUpdateBias, type PackedLayout, type RowArray, type RowsView,
} from './moe.js';

/** f32 view of a host tensor, widening bf16 exactly. */
function asF32(t: Tensor): Float32Array {
  return t.dtype === 'bf16' ? fromBf16(hostData<Uint16Array>(t)) : hostData<Float32Array>(t);
}

const fp8: Fp8Kernels = {
  encode: (x, format, out) => ref.fp8Encode(hostData<Float32Array>(x), format, hostData<Uint8Array>(out)),
  decode: (q, format, out) => ref.fp8Decode(hostData<Uint8Array>(q), format, hostData<Float32Array>(out)),
  quantize: (x, spec, data, scales) =>
    ref.fp8Quantize(asF32(x), x.shape[0]!, x.shape[1]!, spec, hostData<Uint8Array>(data), hostData<Float32Array>(scales)),
  dequantize: (data, scales, spec, out) =>
    ref.fp8Dequantize(hostData<Uint8Array>(data), hostData<Float32Array>(scales), data.shape[0]!, data.shape[1]!, spec, hostData<Float32Array>(out)),
};

const gemm: GemmKernels = {
  gathers: true,
  fp8: (x) =>
    gemmFp8(
      hostData<Uint8Array>(x.a), hostData<Float32Array>(x.aScales), hostData<Uint8Array>(x.b), hostData<Float32Array>(x.bScales),
      { M: x.M, N: x.N, K: x.K, G: x.G, Mmax: x.Mmax, bBlockRows: x.bBlockRows, grouping: x.grouping },
      x.rowGroups ? hostData<Int32Array>(x.rowGroups) : null, x.c ? hostData<Float32Array>(x.c) : null,
      hostData<Float32Array | Uint16Array>(x.out), x.out.dtype === 'bf16',
      x.gather ? { pairs: hostData<Int32Array>(x.gather.pairs), k: x.gather.k, rowsA: x.gather.rowsA } : null,
    ),
  matmul: (a, b, transA, transB, c, out) => {
    const [M, K] = transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
    const N = transB ? b.shape[0]! : b.shape[1]!;
    matmul(asF32(a), asF32(b), M, N, K, transA, transB, c ? hostData<Float32Array>(c) : null, hostData<Float32Array | Uint16Array>(out), out.dtype === 'bf16');
  },
  transpose: (x, out) => transpose(hostData(x), x.shape[0]!, x.shape[1]!, hostData(out)),
};

/** The logits as the kernels read them: f32 values, or bf16 bit patterns widened chunk by chunk. */
function logitsView(t: Tensor): LogitsView {
  return { data: hostData(t), bf16: t.dtype === 'bf16' };
}

const logprob: LogprobKernels = {
  fromLogits: (logits, targets, T, logp, lse, entropy) =>
    logprobForward(logitsView(logits), hostData<Int32Array>(targets), logits.shape[0]!, logits.shape[1]!, T,
      hostData<Float32Array>(logp), hostData<Float32Array>(lse), entropy ? hostData<Float32Array>(entropy) : null),
  fromLogitsBackward: (logits, targets, lse, gLogp, T, dlogits) =>
    logprobBackward(logitsView(logits), hostData<Int32Array>(targets), hostData<Float32Array>(lse), hostData<Float32Array>(gLogp),
      logits.shape[0]!, logits.shape[1]!, T, hostData<Float32Array>(dlogits)),
  kl: (logp, refLogp, estimator, kl, dlogp) =>
    klForward(hostData<Float32Array>(logp), hostData<Float32Array>(refLogp), logp.size, estimator, hostData<Float32Array>(kl), hostData<Float32Array>(dlogp)),
};

const grpo: GrpoKernels = {
  advantages: (rewards, groupSize, scale, eps, out) =>
    grpoAdvantages(hostData<Float32Array>(rewards), rewards.size, groupSize, scale, eps, hostData<Float32Array>(out)),
  loss: (x, params, dlogp) =>
    grpoLoss(
      {
        logp: hostData<Float32Array>(x.logp),
        oldLogp: hostData<Float32Array>(x.oldLogp),
        refLogp: x.refLogp ? hostData<Float32Array>(x.refLogp) : null,
        advantages: hostData<Float32Array>(x.advantages),
        mask: hostData<Float32Array | Uint8Array>(x.mask),
      },
      x.logp.shape[0]!, x.logp.shape[1]!, params, hostData<Float32Array>(dlogp),
    ),
  fusedTokenLoss: (x, out) =>
    grpoFusedTokenLoss(
      {
        logits: logitsView(x.logits), targets: hostData<Int32Array>(x.targets), oldLogp: hostData<Float32Array>(x.oldLogp),
        refLogp: x.refLogp ? hostData<Float32Array>(x.refLogp) : null, advantages: hostData<Float32Array>(x.advantages),
        mask: hostData<Float32Array | Uint8Array>(x.mask), seqWeight: hostData<Float32Array>(x.seqWeight),
      },
      x.logits.shape[0]!, x.logits.shape[1]!, x.T, x.temperature, x, hostData<Float32Array>(out.logp),
      hostData<Float32Array | Uint16Array>(out.dlogits), out.dlogits.dtype === 'bf16', hostData<Float32Array>(out.stats),
    ),
};

const f32 = (t: Tensor): Float32Array => hostData<Float32Array>(t);
/** Rows and row length of a tensor seen as [N, D] (D = the last dimension). */
const rowsOf = (t: Tensor): [number, number] => {
  const D = t.shape[t.shape.length - 1]!;
  return [D === 0 ? 0 : t.size / D, D];
};
const attentionDims = (q: Tensor, k: Tensor): nnRef.AttentionDims => ({ B: q.shape[0]!, Tq: q.shape[1]!, S: k.shape[1]!, nH: q.shape[2]!, Dh: q.shape[3]! });

const nn: NnKernels = {
  embedding: (table, ids, out) => nnRef.embedding(f32(table), hostData<Int32Array>(ids), ids.size, table.shape[1]!, f32(out)),
  embeddingBackward: (dOut, ids, dTable) => nnRef.embeddingBackward(f32(dOut), hostData<Int32Array>(ids), ids.size, dTable.shape[1]!, f32(dTable)),
  rmsnorm: (x, weight, eps, out, rstd) => nnRef.rmsnorm(f32(x), f32(weight), ...rowsOf(x), eps, f32(out), f32(rstd)),
  rmsnormBackward: (dOut, x, weight, rstd, dx, dWeight) => nnRef.rmsnormBackward(f32(dOut), f32(x), f32(weight), f32(rstd), ...rowsOf(x), f32(dx), f32(dWeight)),
  rope: (x, positions, theta, inverse, out) =>
    nnRef.rope(f32(x), hostData<Int32Array>(positions), x.shape[0]!, x.shape[1]!, x.shape[2]!, theta, inverse, f32(out)),
  attention: (q, k, v, qOffset, kvLen, scale, out, lse) => nnRef.attention(f32(q), f32(k), f32(v), attentionDims(q, k), qOffset, kvLen, scale, f32(out), f32(lse)),
  attentionBackward: (q, k, v, out, lse, dOut, scale, dq, dk, dv) =>
    nnRef.attentionBackward(f32(q), f32(k), f32(v), f32(out), f32(lse), f32(dOut), attentionDims(q, k), scale, f32(dq), f32(dk), f32(dv)),
  swiglu: (gate, up, out) => nnRef.swiglu(f32(gate), f32(up), gate.size, f32(out)),
  swigluBackward: (gate, up, dOut, dGate, dUp) => nnRef.swigluBackward(f32(gate), f32(up), f32(dOut), gate.size, f32(dGate), f32(dUp)),
  addScaled: (a, b, alpha, out) => nnRef.addScaled(f32(a), f32(b), alpha, a.size, f32(out)),
  sumSquares: (x) => nnRef.sumSquares(f32(x), x.size),
  adamw: (param, grad, m, v, p) => nnRef.adamw(f32(param), f32(grad), f32(m), f32(v), param.size, p),
  sample: (logits, uniforms, temperature, topP, ids) =>
    nnRef.sample(f32(logits), f32(uniforms), logits.shape[0]!, logits.shape[1]!, temperature, topP, hostData<Int32Array>(ids)),
};

/** A host tensor as rows of elements (the row length from the shape, so a tensor of 0 rows has one too). */
function rowArray(t: Tensor): RowArray {
  return { data: hostData(t) as RowArray['data'], width: t.shape.slice(1).reduce((a, b) => a * b, 1) };
}

/** A host tensor's bytes. */
function bytesOf(t: Tensor): Uint8Array {
  const d = hostData(t);
  return new Uint8Array(d.buffer, d.byteOffset, t.bytes);
}

/** Bytes of one row (from the shape: a tensor of 0 rows has a row length too). */
function rowBytesOf(t: Tensor): number {
  return t.shape.slice(1).reduce((a, b) => a * b, 1) * dtypeBytes(t.dtype);
}

/** dispatchRowLayout with the payload's and scales' sizes. */
function packedLayout(payload: number, scaleCount: number, k: number): PackedLayout {
  return { payload, scaleBytes: 4 * scaleCount, ...dispatchRowLayout(payload, scaleCount, k) };
}

/** f32 values or bf16 bit patterns of a host tensor. */
function rowsView(t: Tensor): RowsView {
  return { data: hostData<Float32Array | Uint16Array>(t), bf16: t.dtype === 'bf16' };
}

const moe: MoeKernels = {
  route: (logits, bias, p, scores, weights, indices) =>
    moeRoute(hostData<Float32Array>(logits), bias ? hostData<Float32Array>(bias) : null, logits.shape[0]!, logits.shape[1]!, p,
      hostData<Float32Array>(scores), hostData<Float32Array>(weights), hostData<Int32Array>(indices)),
  routeBackward: (scores, indices, dWeights, dScores, p, dLogits) =>
    moeRouteBackward(hostData<Float32Array>(scores), hostData<Int32Array>(indices), hostData<Float32Array>(dWeights),
      dScores ? hostData<Float32Array>(dScores) : null, scores.shape[0]!, scores.shape[1]!, p, hostData<Float32Array>(dLogits)),
  updateBias: (bias, load, gamma, out) => moeUpdateBias(hostData<Float32Array>(bias), hostData<Int32Array>(load), bias.size, gamma, hostData<Float32Array>(out)),
  auxLoss: (scores, indices, seqLen, alpha, dScores) =>
    moeAuxLoss(hostData<Float32Array>(scores), hostData<Int32Array>(indices), scores.shape[0]!, scores.shape[1]!, indices.shape[1]!, seqLen, alpha, hostData<Float32Array>(dScores)),
  layout: (indices, E, R, tokensPerRank, tokensPerExpert, isTokenInRank) =>
    moeLayout(hostData<Int32Array>(indices), indices.shape[0]!, indices.shape[1]!, E, R,
      hostData<Int32Array>(tokensPerRank), hostData<Int32Array>(tokensPerExpert), hostData<Uint8Array>(isTokenInRank)),
  align: (indices, E, bs, capacity, sortedPairs, blockExpert, rowExpert, pairPos, counts, info) =>
    moeAlign(hostData<Int32Array>(indices), indices.shape[0]!, indices.shape[1]!, E, bs, capacity, hostData<Int32Array>(sortedPairs),
      hostData<Int32Array>(blockExpert), hostData<Int32Array>(rowExpert), hostData<Int32Array>(pairPos), hostData<Int32Array>(counts), hostData<Int32Array>(info)),
  permute: (x, rows, k, weights, out) =>
    moePermute(rowsView(x), x.shape[0]!, x.shape[1]!, hostData<Int32Array>(rows), k, weights ? hostData<Float32Array>(weights) : null, rowsView(out), out.shape[0]!),
  permuteBytes: (x, rows, k, out) =>
    moePermuteBytes(hostData(x), x.shape[0]!, x.size / x.shape[0]!, hostData<Int32Array>(rows), k, hostData(out), out.shape[0]!),
  unpermute: (y, pairPos, weights, out) =>
    moeUnpermute(rowsView(y), y.shape[1]!, hostData<Int32Array>(pairPos), pairPos.shape[0]!, pairPos.shape[1]!, weights ? hostData<Float32Array>(weights) : null, rowsView(out)),
  unpermuteWeightGrad: (dOut, y, pairPos, dWeights) =>
    moeUnpermuteWeightGrad(rowsView(dOut), rowsView(y), y.shape[1]!, hostData<Int32Array>(pairPos), pairPos.shape[0]!, pairPos.shape[1]!, hostData<Float32Array>(dWeights)),
  copyRows: (src, srcRow, dst, dstRow, rows) => {
    const w = src.size / src.shape[0]!; // elements per row
    hostData(dst).set(hostData(src).subarray(srcRow * w, (srcRow + rows) * w) as never, dstRow * w);
  },
  dispatchPlan: (indices, E, sendRow, pairRank, table, slotRows, pieceEnds) =>
    moeDispatchPlan(hostData<Int32Array>(indices), indices.shape[0]!, indices.shape[1]!, E, sendRow.shape[1]!, hostData<Int32Array>(sendRow),
      hostData<Int32Array>(pairRank), hostData<Int32Array>(table), slotRows ?? 0, pieceEnds),
  dispatchPack: (x, indices, weights, sendRow, pairRank, E, fp8, packedOrNull, dest) => {
    if (dest || !packedOrNull) throw new HotpathsError('E_NOT_IMPLEMENTED', 'moe.dispatchPack (reference): rows to per-rank buffers (dest) are cuda only');
    const packed = packedOrNull;
    const [T, H] = x.shape as [number, number];
    const k = indices.shape[1]!;
    let src = bytesOf(x), scales: Uint8Array | null = null;
    if (fp8) {
      // the FP8 payload: x quantized once (fp8.quantize's kernel), its rows then packed like any payload
      const codes = new Uint8Array(T * H), sc = new Float32Array(T * (H / 128));
      ref.fp8Quantize(asF32(x), T, H, { format: 'e4m3', block: [1, 128], ue8m0: false }, codes, sc);
      src = codes;
      scales = new Uint8Array(sc.buffer);
    }
    moeDispatchPack(src, scales, T, hostData<Int32Array>(indices), hostData<Float32Array>(weights), k, hostData<Int32Array>(sendRow), hostData<Int32Array>(pairRank),
      E, sendRow.shape[1]!, bytesOf(packed), packedLayout(fp8 ? H : H * dtypeBytes(x.dtype), fp8 ? H / 128 : 0, k));
  },
  dispatchRecvLayout: (tables, rank, E, bs, k, base, counts, sortedPairs, blockExpert, rowExpert, expertX, expertScales) =>
    moeDispatchRecvLayout(hostData<Int32Array>(tables), tables.shape[0]!, E, rank, bs, k, hostData<Int32Array>(base), hostData<Int32Array>(counts),
      hostData<Int32Array>(sortedPairs), hostData<Int32Array>(blockExpert), hostData<Int32Array>(rowExpert), expertX ? rowArray(expertX) : null, expertScales ? rowArray(expertScales) : null,
      tables.shape[1]!),
  dispatchScatter: (a) => {
    const payload = rowBytesOf(a.recv), scaleCount = a.recvScales ? rowBytesOf(a.recvScales) / 4 : 0;
    moeDispatchScatter(bytesOf(a.src), packedLayout(payload, scaleCount, a.k), a.srcRow, a.rows, a.recvRow, hostData<Int32Array>(a.base), a.source, a.base.shape[1]!, a.k,
      a.expertX ? bytesOf(a.expertX) : null, a.expertScales ? bytesOf(a.expertScales) : null, hostData<Int32Array>(a.sortedPairs), hostData<Int32Array>(a.pairPos),
      hostData<Int32Array>(a.recvIndices), hostData<Float32Array>(a.recvWeights), bytesOf(a.recv), a.recvScales ? bytesOf(a.recvScales) : null);
  },
  unpermuteRows: (y, pairPos, weights, row0, rows, out, outRow0) =>
    moeUnpermuteRows(rowsView(y), y.shape[1]!, hostData<Int32Array>(pairPos), pairPos.shape[1]!, weights ? hostData<Float32Array>(weights) : null, row0, rows,
      rowsView(out), outRow0),
};

export function createReferenceBackend(): Backend {
  const backend: Backend = {
    name: 'reference',
    deviceName: 'TypeScript (single thread)',
    ...hostStorage(() => backend),
    measureCeilings: (opts) => measureReferenceCeilings(opts.quick),
    fp8,
    gemm,
    logprob,
    grpo,
    nn,
    moe,
  };
  return backend;
}

/** Eight independent chains c = c·a + b over JS numbers (f64, a multiply then an add: 16 FLOPs a step). */
function mulAddChains(iters: number, a: number, b: number): number {
  let c0 = 0, c1 = 1, c2 = 2, c3 = 3, c4 = 4, c5 = 5, c6 = 6, c7 = 7;
  for (let i = 0; i < iters; i++) {
    c0 = c0 * a + b;
    c1 = c1 * a + b;
    c2 = c2 * a + b;
    c3 = c3 * a + b;
    c4 = c4 * a + b;
    c5 = c5 * a + b;
    c6 = c6 * a + b;
    c7 = c7 * a + b;
  }
  return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7;
}

/**
 * One thread, no native code. Copy: TypedArray.set between two arrays of 256 MiB (64 MiB when quick).
 * "FP32 TFLOP/s": really the rate of a plain JS loop of f64 multiply-adds (mulAddChains), which is
 * what the reference's own loops can reach. Wall-clock medians (performance.now()).
 */
async function measureReferenceCeilings(quick: boolean): Promise<MachineCeilings> {
  const bytes = ceilingCopyBytes(quick);
  const src = new Float32Array(bytes / 4).fill(1);
  const dst = new Float32Array(bytes / 4);
  const copyMs = await medianHostMs(() => dst.set(src), quick ? 3 : 7);

  let sink = 0;
  const run = (iters: number) => {
    sink += mulAddChains(iters, 1 - 2 ** -20, 2 ** -10);
  };
  const timeOnce = async (iters: number): Promise<number> => {
    const t0 = performance.now();
    run(iters);
    return performance.now() - t0;
  };
  run(1 << 16); // lets V8 optimise the loop
  const iters = await calibrate(timeOnce, 1 << 16, quick ? 20 : 100, 2 ** 40);
  const ms = await medianHostMs(() => run(iters), quick ? 3 : 5, 0);
  if (!Number.isFinite(sink)) throw new Error('unreachable: the chains converge');
  return checkedCeilings('reference', { copyGBps: (2 * bytes) / (copyMs * 1e6), fp32Tflops: (iters * 16) / (ms * 1e9) });
}
