// MoE launchers (MoeKernels): the router and its backward (a workgroup per token), the bias update and
// the aux loss (small reductions; the loss is read back, as auxLoss returns a number), the dispatch
// layout, align (histogram per chunk of pairs with atomics, a scan per expert over the chunks, the
// segment offsets, a deterministic scatter, a padding fill), the row permutations and copyRows. Shapes, dtypes and options were checked by src/ops/moe.ts;
// index values were not (GPU tensors are not read back for that): the kernels skip an expert index
// outside [0, E), a pair id outside [0, T·k) and a row position outside [0, P), never reading or
// writing out of bounds (align counts the bad indices in info[2]). Floats reach the shaders as f32
// bit patterns in the uniforms.

import type { MoeKernels } from '../runtime/backend.js';
import type { Tensor } from '../tensor.js';
import { dtypeBytes, type DType } from '../dtype.js';
import { HotpathsError } from '../errors.js';
import { BufferUsage } from './device.js';
import type { BufferRange, CommandBatcher, PipelineCache } from './pipelines.js';

export const MOE_SHADER_FILES = [
  'moe/common.wgsl',
  'moe/exact.wgsl',
  'moe/route.wgsl',
  'moe/route_backward.wgsl',
  'moe/update_bias.wgsl',
  'moe/aux_count.wgsl',
  'moe/aux_grad.wgsl',
  'moe/aux_sum.wgsl',
  'moe/layout.wgsl',
  'moe/align_count.wgsl',
  'moe/align_scan.wgsl',
  'moe/align_offsets.wgsl',
  'moe/align_scatter.wgsl',
  'moe/align_fill.wgsl',
  'moe/permute.wgsl',
  'moe/permute_rows.wgsl',
  'moe/permute_bytes.wgsl',
  'moe/unpermute.wgsl',
  'moe/unpermute_rows.wgsl',
  'moe/unpermute_weight_grad.wgsl',
  'moe/copy_bytes.wgsl',
] as const;

const COMMON = 'moe/common.wgsl';
/** Invocations per token in route and its backward, and per pair in unpermuteWeightGrad: one NVIDIA warp (barriers are cheap within it); on lavapipe 32 ran 1.2x faster than 64 (route, T 4096). */
const WG_ROW = 32;
const WG_ELEMENTWISE = 256;
/** Invocations per row in the row kernels of permute/unpermute. */
const WG_ROWS = 128;
/** Words each invocation of the elementwise permute/unpermute writes (fewer invocations: what lavapipe likes). */
const PER_INVOCATION = 4;
/**
 * Pairs per chunk of align: the scatter's workgroup, whose invocations rank their pair by counting
 * the lower lanes with the same expert (CHUNK compares a pair). 64: on lavapipe 5x faster than 256 at
 * T 4096 (the scan, a workgroup per expert, takes the 4x longer chunk columns in parallel).
 */
const ALIGN_CHUNK = 64;
/** Groups route can score (its workgroup arrays). */
const MAX_GROUPS = 256;
/** route's workgroup storage besides the key array: reduction / candidate arrays (512, 512, 256 words), two group arrays, a flag. */
const ROUTE_FIXED_SHARED = 4 * (512 + 512 + 256 + 2 * MAX_GROUPS) + 4;

/** What the launchers need from the backend. */
export interface MoeLaunchContext {
  pipelines: PipelineCache;
  batcher: CommandBatcher;
  bind(t: Tensor, what: string): BufferRange;
  /** A scratch tensor (disposed by the launcher once its dispatches are recorded). */
  scratch(dtype: DType, shape: number[]): Tensor;
  read(t: Tensor): Promise<Float32Array>;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

const placeholders = new WeakMap<GPUDevice, GPUBuffer>();
const exactConsts = new WeakMap<GPUDevice, GPUBuffer>();

/**
 * The constants of moe/exact.wgsl as u32 words (hi, lo per 64-bit value), computed with BigInt to
 * 2^−200 and rounded once: ln 2 in Q64; 1/k! in Q63, k = 0..8; e^(−j/64) in Q64, j = 0..44 (j = 0 as
 * 2^64 − 1, the largest Q64 value).
 */
export function exactConstWords(): Uint32Array {
  const P = 200n;
  const ONE = 1n << P;
  // ln 2 = Σ_{k ≥ 1} 1 / (k·2^k)
  let ln2 = 0n;
  for (let k = 1n; k <= 220n; k++) ln2 += ONE / (k << k);
  // e^(−j/64) = Σ_k (−j/64)^k / k!
  const expNeg = (j: bigint): bigint => {
    let term = ONE;
    let sum = ONE;
    for (let k = 1n; k <= 90n; k++) {
      term = (term * j) / (64n * k);
      sum += k % 2n ? -term : term;
    }
    return sum;
  };
  const q = (v: bigint, f: bigint): bigint => (v + (1n << (P - f - 1n))) >> (P - f); // v / 2^P in Qf, rounded
  const values: bigint[] = [q(ln2, 64n)];
  let fact = 1n;
  for (let k = 0n; k <= 8n; k++) {
    if (k > 0n) fact *= k;
    values.push(q(ONE / fact, 63n));
  }
  for (let j = 0n; j <= 44n; j++) {
    const v = q(expNeg(j), 64n);
    values.push(v >= 1n << 64n ? (1n << 64n) - 1n : v);
  }
  const words = new Uint32Array(values.length * 2);
  values.forEach((v, i) => {
    words[2 * i] = Number(v >> 32n);
    words[2 * i + 1] = Number(v & 0xffffffffn);
  });
  return words;
}

/** The device-path dispatch kernels (optional in MoeKernels; WebGPU keeps the host path for now). */
type OptionalDispatchKernels = 'dispatchPlan' | 'dispatchPack' | 'dispatchRecvLayout' | 'dispatchScatter' | 'unpermuteRows';

export function createMoeKernels(ctx: MoeLaunchContext): Required<Omit<MoeKernels, OptionalDispatchKernels>> {
  const device = ctx.batcher.device;
  /** A tensor's binding, or a 16-byte placeholder for an empty one (WebGPU rejects zero-sized bindings; the kernels never read it then). */
  const bind = (t: Tensor, what: string): BufferRange => {
    const r = ctx.bind(t, what);
    if (r.size !== 0) return r;
    let buffer = placeholders.get(device);
    if (!buffer) {
      buffer = device.createBuffer({ size: 16, usage: BufferUsage.STORAGE, label: 'hotpaths moe placeholder' });
      placeholders.set(device, buffer);
    }
    return { buffer, offset: 0, size: 16 };
  };
  /** Zeroes a tensor (an i32/f32 output or scratch: whole words). */
  const clear = (t: Tensor, what: string): void => {
    const r = ctx.bind(t, what);
    if (r.size) ctx.batcher.encoder().clearBuffer(r.buffer, r.offset ?? 0, r.size);
  };
  const consts = (): GPUBuffer => {
    let buffer = exactConsts.get(device);
    if (!buffer) {
      const w = exactConstWords();
      buffer = device.createBuffer({ size: w.byteLength, usage: BufferUsage.STORAGE, mappedAtCreation: true, label: 'hotpaths moe exact constants' });
      new Uint32Array(buffer.getMappedRange()).set(w);
      buffer.unmap();
      exactConsts.set(device, buffer);
    }
    return buffer;
  };
  const words = (dtype: DType, n: number): number => (dtype === 'bf16' ? Math.ceil(n / 2) : n);

  /** dst bytes [d0, d0 + n) = src bytes [s0, s0 + n), offsets within the tensors' bound ranges, different buffers. */
  const copyBytes = (src: Tensor, s0: number, dst: Tensor, d0: number, n: number): void => {
    const s = ctx.bind(src, 'moe.copyRows src');
    const d = ctx.bind(dst, 'moe.copyRows dst');
    if (n % 4 === 0 && s0 % 4 === 0 && d0 % 4 === 0) {
      ctx.batcher.copy(s.buffer, (s.offset ?? 0) + s0, d.buffer, (d.offset ?? 0) + d0, n);
      return;
    }
    const first = Math.floor(d0 / 4);
    const count = Math.ceil((d0 + n) / 4) - first;
    const p = ctx.pipelines.get(['moe/copy_bytes.wgsl'], { WG: WG_ELEMENTWISE });
    ctx.batcher.dispatch(p, [d0, s0, n, first, count], [s, d], Math.ceil(count / WG_ELEMENTWISE));
  };

  return {
    // logits [T, E], bias [E] -> scores [T, E], weights, indices [T, k]
    route(logits, bias, prm, scores, weights, indices) {
      const [T, E] = logits.shape as [number, number];
      if (T === 0) return;
      const maxE = Math.max(256, nextPow2(E)); // one pipeline for every E ≤ 256 (each compiles for seconds on lavapipe)
      const shared = device.limits.maxComputeWorkgroupStorageSize;
      if (4 * maxE + ROUTE_FIXED_SHARED > shared) {
        throw new HotpathsError('E_TOO_LARGE', `moe.route (webgpu): ${E} experts need ${4 * maxE + ROUTE_FIXED_SHARED} bytes of workgroup storage, this device has ${shared}`);
      }
      if (prm.nGroup > MAX_GROUPS) throw new HotpathsError('E_TOO_LARGE', `moe.route (webgpu): at most ${MAX_GROUPS} groups, got nGroup ${prm.nGroup}`);
      const p = ctx.pipelines.get([COMMON, 'moe/exact.wgsl', 'moe/route.wgsl'], { WG: WG_ROW, MAX_E: maxE, SOFTMAX: prm.scoring === 'softmax' });
      const flags = (bias ? 1 : 0) | (prm.groupScore === 'max' ? 2 : 0) | (prm.normTopkProb ? 4 : 0);
      ctx.batcher.dispatch(p, [T, E, prm.topk, prm.nGroup, prm.topkGroup, bits(prm.routedScalingFactor), flags], [
        bind(logits, 'moe.route logits'), bind(bias ?? logits, 'moe.route bias'), bind(scores, 'moe.route scores'),
        bind(weights, 'moe.route weights'), bind(indices, 'moe.route indices'), consts(),
      ], T);
    },

    // scores [T, E], indices, dWeights [T, k], dScores [T, E] -> dLogits [T, E]
    routeBackward(scores, indices, dWeights, dScores, prm, dLogits) {
      const [T, E] = scores.shape as [number, number];
      if (T === 0) return;
      const k = indices.shape[1]!;
      const p = ctx.pipelines.get(['moe/route_backward.wgsl'], { WG: WG_ROW, SOFTMAX: prm.scoring === 'softmax', HAS_DS: dScores !== null, NORM: prm.normTopkProb });
      ctx.batcher.dispatch(p, [T, E, k, bits(prm.routedScalingFactor)], [
        bind(scores, 'moe.routeBackward scores'), bind(indices, 'moe.routeBackward indices'), bind(dWeights, 'moe.routeBackward dWeights'),
        bind(dScores ?? scores, 'moe.routeBackward dScores'), bind(dLogits, 'moe.routeBackward dLogits'),
      ], T);
    },

    // bias [E], load [E] -> out [E]
    updateBias(bias, load, gamma, out) {
      const E = bias.size;
      if (E === 0) return;
      const p = ctx.pipelines.get(['moe/update_bias.wgsl'], { WG: 256 });
      ctx.batcher.dispatch(p, [E, bits(gamma)], [bind(bias, 'moe.updateBias bias'), bind(load, 'moe.updateBias load'), bind(out, 'moe.updateBias out')], 1);
    },

    // scores [T, E], indices [T, k] -> dScores [T, E]; the loss (read back)
    async auxLoss(scores, indices, seqLen, alpha, dScores) {
      const [T, E] = scores.shape as [number, number];
      const k = indices.shape[1]!;
      if (T === 0) return 0;
      const nSeq = T / seqLen;
      const counts = ctx.scratch('i32', [nSeq * E]);
      const term = ctx.scratch('f32', [T]);
      const result = ctx.scratch('f32', [1]);
      try {
        clear(counts, 'moe.auxLoss counts');
        const a = bits(alpha / (nSeq * seqLen));
        ctx.batcher.dispatch(ctx.pipelines.get(['moe/aux_count.wgsl'], { WG: WG_ELEMENTWISE }), [T * k, k, E, seqLen],
          [bind(indices, 'moe.auxLoss indices'), bind(counts, 'moe.auxLoss counts')], Math.ceil((T * k) / WG_ELEMENTWISE));
        ctx.batcher.dispatch(ctx.pipelines.get(['moe/aux_grad.wgsl'], { WG: WG_ROW }), [T, E, seqLen, bits(E / (k * seqLen)), a],
          [bind(scores, 'moe.auxLoss scores'), bind(counts, 'moe.auxLoss counts'), bind(dScores, 'moe.auxLoss dScores'), bind(term, 'moe.auxLoss term')], T);
        ctx.batcher.dispatch(ctx.pipelines.get(['moe/aux_sum.wgsl'], { WG: 256 }), [T, a], [bind(term, 'moe.auxLoss term'), bind(result, 'moe.auxLoss result')], 1);
        return (await ctx.read(result))[0]!;
      } finally {
        counts.dispose();
        term.dispose();
        result.dispose();
      }
    },

    // indices [T, k] -> tokensPerRank [R], tokensPerExpert [E], isTokenInRank u8 [T, R]
    layout(indices, numExperts, numRanks, tokensPerRank, tokensPerExpert, isTokenInRank) {
      const [T, k] = indices.shape as [number, number];
      clear(tokensPerRank, 'moe.layout tokensPerRank');
      clear(tokensPerExpert, 'moe.layout tokensPerExpert');
      const pairs = T * k;
      const w = Math.ceil((T * numRanks) / 4);
      const n = Math.max(pairs, w);
      if (n === 0 || k === 0) return;
      const p = ctx.pipelines.get(['moe/layout.wgsl'], { WG: WG_ELEMENTWISE });
      ctx.batcher.dispatch(p, [pairs, w, k, numExperts, numRanks, numExperts / numRanks], [
        bind(indices, 'moe.layout indices'), bind(tokensPerExpert, 'moe.layout tokensPerExpert'),
        bind(isTokenInRank, 'moe.layout isTokenInRank'), bind(tokensPerRank, 'moe.layout tokensPerRank'),
      ], Math.ceil(n / WG_ELEMENTWISE));
    },

    // indices [T, k] -> sortedPairs, rowExpert [Pmax], blockExpert [Pmax / bs], pairPos [T, k], counts [E], info [4]
    align(indices, numExperts, blockSize, capacity, sortedPairs, blockExpert, rowExpert, pairPos, counts, info) {
      const [T, k] = indices.shape as [number, number];
      const E = numExperts;
      const pairs = T * k;
      const Pmax = Math.min(sortedPairs.size, Math.ceil((pairs + E * (blockSize - 1)) / blockSize) * blockSize);
      const chunks = Math.ceil(pairs / ALIGN_CHUNK);
      const hist = ctx.scratch('i32', [Math.max(1, chunks * E)]);
      const segs = ctx.scratch('i32', [2 * E + 1]);
      try {
        clear(hist, 'moe.align hist');
        clear(info, 'moe.align info');
        const b = (t: Tensor, what: string) => bind(t, `moe.align ${what}`);
        if (pairs > 0) {
          const count = ctx.pipelines.get(['moe/align_count.wgsl'], { WG: WG_ELEMENTWISE, CHUNK: ALIGN_CHUNK });
          ctx.batcher.dispatch(count, [pairs, E], [b(indices, 'indices'), b(hist, 'hist'), b(info, 'info')], Math.ceil(pairs / WG_ELEMENTWISE));
        }
        const scan = ctx.pipelines.get(['moe/align_scan.wgsl'], { WG: 64 });
        ctx.batcher.dispatch(scan, [E, chunks, blockSize, capacity], [b(hist, 'hist'), b(segs, 'segs'), b(counts, 'counts'), b(info, 'info')], E);
        const offsets = ctx.pipelines.get(['moe/align_offsets.wgsl'], { WG: 256 });
        ctx.batcher.dispatch(offsets, [E], [b(segs, 'segs'), b(info, 'info')], 1);
        if (pairs > 0) {
          const scatter = ctx.pipelines.get(['moe/align_scatter.wgsl'], { WG: ALIGN_CHUNK });
          ctx.batcher.dispatch(scatter, [pairs, E], [
            b(indices, 'indices'), b(hist, 'hist'), b(segs, 'segs'), b(sortedPairs, 'sortedPairs'), b(rowExpert, 'rowExpert'), b(pairPos, 'pairPos'),
          ], chunks);
        }
        if (Pmax > 0) {
          const fill = ctx.pipelines.get(['moe/align_fill.wgsl'], { WG: WG_ELEMENTWISE });
          ctx.batcher.dispatch(fill, [Pmax, E, blockSize, pairs], [b(segs, 'segs'), b(sortedPairs, 'sortedPairs'), b(rowExpert, 'rowExpert'), b(blockExpert, 'blockExpert')],
            Math.ceil(Pmax / WG_ELEMENTWISE));
        }
      } finally {
        hist.dispose();
        segs.dispose();
      }
    },

    // x [T, H], rows [≥ P], weights [T·k] -> out [P, H]
    permute(x, rows, k, weights, out) {
      const [T, H] = x.shape as [number, number];
      const P = out.shape[0]!;
      const n = words(out.dtype, P * H);
      if (n === 0) return;
      const perUnit = x.dtype === 'bf16' ? 8 : 4;
      if (H % perUnit === 0 && T > 0) {
        // whole 16-byte units a row: a workgroup per row
        const p = ctx.pipelines.get([COMMON, 'moe/permute_rows.wgsl'], { WG: WG_ROWS, BF16: x.dtype === 'bf16', HAS_W: weights !== null });
        ctx.batcher.dispatch(p, [P, H / perUnit, T * k, k], [
          bind(x, 'moe.permute x'), bind(rows, 'moe.permute rows'), bind(weights ?? rows, 'moe.permute weights'), bind(out, 'moe.permute out'),
        ], P);
        return;
      }
      const p = ctx.pipelines.get([COMMON, 'moe/permute.wgsl'], { WG: WG_ELEMENTWISE, PER_INVOCATION, BF16: x.dtype === 'bf16', HAS_W: weights !== null });
      ctx.batcher.dispatch(p, [P, H, T * k, k, n], [
        bind(x, 'moe.permute x'), bind(rows, 'moe.permute rows'), bind(weights ?? rows, 'moe.permute weights'), bind(out, 'moe.permute out'),
      ], Math.ceil(n / (WG_ELEMENTWISE * PER_INVOCATION)));
    },

    // x [T, W] -> out [P, W], any dtype, bytes as they are
    permuteBytes(x, rows, k, out) {
      const T = x.shape[0]!;
      const P = out.shape[0]!;
      const rowBytes = P ? (out.size / P) * dtypeBytes(out.dtype) : 0;
      const n = Math.ceil((P * rowBytes) / 4);
      if (n === 0) return;
      const p = ctx.pipelines.get(['moe/permute_bytes.wgsl'], { WG: WG_ELEMENTWISE, ALIGNED: rowBytes % 4 === 0 });
      ctx.batcher.dispatch(p, [P, rowBytes, T * k, k, n], [bind(x, 'moe.permuteBytes x'), bind(rows, 'moe.permuteBytes rows'), bind(out, 'moe.permuteBytes out')],
        Math.ceil(n / WG_ELEMENTWISE));
    },

    // y [P, H], pairPos [T, k], weights [T, k] -> out [T, H]
    unpermute(y, pairPos, weights, out) {
      const [P, H] = y.shape as [number, number];
      const [T, k] = pairPos.shape as [number, number];
      const n = words(out.dtype, T * H);
      if (n === 0) return;
      if (H % 4 === 0) {
        // whole 4-element groups a row: a workgroup per token
        const p = ctx.pipelines.get([COMMON, 'moe/unpermute_rows.wgsl'], { WG: WG_ROWS, Y_BF16: y.dtype === 'bf16', OUT_BF16: out.dtype === 'bf16', HAS_W: weights !== null });
        ctx.batcher.dispatch(p, [T, H / 4, k, P], [
          bind(y, 'moe.unpermute y'), bind(pairPos, 'moe.unpermute pairPos'), bind(weights ?? pairPos, 'moe.unpermute weights'), bind(out, 'moe.unpermute out'),
        ], T);
        return;
      }
      const p = ctx.pipelines.get([COMMON, 'moe/unpermute.wgsl'], {
        WG: WG_ELEMENTWISE, PER_INVOCATION, Y_BF16: y.dtype === 'bf16', OUT_BF16: out.dtype === 'bf16', HAS_W: weights !== null,
      });
      ctx.batcher.dispatch(p, [T, H, k, P, n], [
        bind(y, 'moe.unpermute y'), bind(pairPos, 'moe.unpermute pairPos'), bind(weights ?? pairPos, 'moe.unpermute weights'), bind(out, 'moe.unpermute out'),
      ], Math.ceil(n / (WG_ELEMENTWISE * PER_INVOCATION)));
    },

    // dOut [T, H], y [P, H], pairPos [T, k] -> dWeights [T, k]
    unpermuteWeightGrad(dOut, y, pairPos, dWeights) {
      const [T, k] = pairPos.shape as [number, number];
      const [P, H] = y.shape as [number, number];
      if (T * k === 0) return;
      const p = ctx.pipelines.get(['moe/unpermute_weight_grad.wgsl'], { WG: WG_ROW, D_BF16: dOut.dtype === 'bf16', Y_BF16: y.dtype === 'bf16' });
      ctx.batcher.dispatch(p, [T * k, H, k, P], [
        bind(dOut, 'moe.unpermuteWeightGrad dOut'), bind(y, 'moe.unpermuteWeightGrad y'), bind(pairPos, 'moe.unpermuteWeightGrad pairPos'),
        bind(dWeights, 'moe.unpermuteWeightGrad dWeights'),
      ], T * k);
    },

    // rows [srcRow, srcRow + rows) of src -> rows [dstRow, dstRow + rows) of dst, as bytes
    copyRows(src, srcRow, dst, dstRow, rows) {
      const rowBytes = src.shape[0] ? (src.size / src.shape[0]) * dtypeBytes(src.dtype) : 0;
      const n = rows * rowBytes;
      if (n === 0) return;
      const s0 = srcRow * rowBytes, d0 = dstRow * rowBytes;
      if (ctx.bind(src, 'moe.copyRows src').buffer !== ctx.bind(dst, 'moe.copyRows dst').buffer) {
        copyBytes(src, s0, dst, d0, n);
        return;
      }
      // one buffer (the same tensor, or views of one): WebGPU copies and bindings may not alias, so
      // the bytes go through a scratch tensor (which also makes overlapping ranges a memmove)
      const tmp = ctx.scratch('u8', [n]);
      try {
        copyBytes(src, s0, tmp, 0, n);
        copyBytes(tmp, 0, dst, d0, n);
      } finally {
        tmp.dispose();
      }
    },
  };
}
