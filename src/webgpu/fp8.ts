// FP8 launchers: encode, decode, quantize (two-pass, or fused single-pass for 1×128 blocks when
// K % 4 == 0), dequantize. Shapes and dtypes were checked by src/ops/fp8.ts; these only compute
// sizes, pick the pipeline variant (override constants) and record dispatches.
// FP8 data on WebGPU is packed four codes to a u32 word (little-endian bytes), so an fp8 tensor's
// buffer is its byte array padded to whole words; kernels write the padding bytes as 0.

import type { Fp8Format, Fp8Kernels, QuantizeSpec } from '../runtime/backend.js';
import type { Tensor } from '../tensor.js';
import { HotpathsError } from '../errors.js';
import type { CommandBatcher, PipelineCache, BufferRange } from './pipelines.js';

export const FP8_SHADER_FILES = [
  'fp8/codec.wgsl',
  'fp8/encode.wgsl',
  'fp8/decode.wgsl',
  'fp8/quantize_scales.wgsl',
  'fp8/quantize_apply.wgsl',
  'fp8/quantize_fused_1x128.wgsl',
  'fp8/load_f32x4.wgsl',
  'fp8/load_bf16x4.wgsl',
  'fp8/dequantize.wgsl',
] as const;

const CODEC = 'fp8/codec.wgsl';
const WG_ELEMENTWISE = 256;
const WG_SCALES = 256; // 1×128 blocks: 8 blocks of 32 invocations; 128×128 blocks: one per workgroup
const WG_FUSED = 256; // 8 groups of 32 invocations, one (row, block) each

/** What the launchers need from the backend. */
export interface Fp8LaunchContext {
  pipelines: PipelineCache;
  batcher: CommandBatcher;
  /** The bound range of a tensor's buffer (its padded byte size), after checking the binding limit. */
  bind(t: Tensor, what: string): BufferRange;
  /** Use the single-pass kernel for 1×128 blocks when K % 4 == 0 (default true). */
  fusedQuantize: boolean;
}

function formatId(format: Fp8Format): number {
  return format === 'e5m2' ? 1 : 0;
}

function matrixDims(t: Tensor, what: string): [number, number] {
  if (t.shape.length !== 2) throw new HotpathsError('E_SHAPE', `${what}: expected a 2-D tensor, got ${t.describe()}`);
  return [t.shape[0]!, t.shape[1]!];
}

/** out = fp8(x): x f32 [n] -> out fp8 [n]. */
export function encodeFp8(ctx: Fp8LaunchContext, x: Tensor, format: Fp8Format, out: Tensor): void {
  const n = x.size;
  if (n === 0) return;
  const words = Math.ceil(n / 4);
  const p = ctx.pipelines.get([CODEC, 'fp8/encode.wgsl'], { FP8_FORMAT: formatId(format), WG: WG_ELEMENTWISE });
  ctx.batcher.dispatch(p, [n, words], [ctx.bind(x, 'fp8.encode x'), ctx.bind(out, 'fp8.encode out')], Math.ceil(words / WG_ELEMENTWISE));
}

/** out = f32(q): q fp8 [n] -> out f32 [n] (bit patterns, NaN canonical). */
export function decodeFp8(ctx: Fp8LaunchContext, q: Tensor, format: Fp8Format, out: Tensor): void {
  const n = q.size;
  if (n === 0) return;
  const words = Math.ceil(n / 4);
  const p = ctx.pipelines.get([CODEC, 'fp8/decode.wgsl'], { FP8_FORMAT: formatId(format), WG: WG_ELEMENTWISE });
  ctx.batcher.dispatch(p, [n, words], [ctx.bind(q, 'fp8.decode q'), ctx.bind(out, 'fp8.decode out')], Math.ceil(words / WG_ELEMENTWISE));
}

/** x: f32 | bf16 [M, K] -> data: fp8 [M, K], scales: f32 [ceil(M/br), ceil(K/128)]. */
export function quantizeFp8(ctx: Fp8LaunchContext, x: Tensor, spec: QuantizeSpec, data: Tensor, scales: Tensor): void {
  const [M, K] = matrixDims(x, 'fp8.quantize x');
  if (M === 0 || K === 0) return;
  const br = spec.block[0];
  const nbM = Math.ceil(M / br);
  const nbK = Math.ceil(K / 128);
  const bf16 = x.dtype === 'bf16';
  if (!bf16 && x.dtype !== 'f32') throw new HotpathsError('E_DTYPE', `fp8.quantize x: expected f32 or bf16, got ${x.describe()}`);
  const fmt = formatId(spec.format);
  const xb = ctx.bind(x, 'fp8.quantize x');
  const db = ctx.bind(data, 'fp8.quantize data');
  const sb = ctx.bind(scales, 'fp8.quantize scales');

  if (br === 1 && K % 4 === 0 && ctx.fusedQuantize) {
    const groups = M * nbK;
    const loader = bf16 ? 'fp8/load_bf16x4.wgsl' : 'fp8/load_f32x4.wgsl';
    const p = ctx.pipelines.get([CODEC, loader, 'fp8/quantize_fused_1x128.wgsl'], {
      FP8_FORMAT: fmt,
      UE8M0: spec.ue8m0,
      WG: WG_FUSED,
    });
    ctx.batcher.dispatch(p, [M, K, nbK, groups], [xb, sb, db], Math.ceil(groups / (WG_FUSED / 32)));
    return;
  }

  const group = br === 1 ? 32 : WG_SCALES;
  const ps = ctx.pipelines.get([CODEC, 'fp8/quantize_scales.wgsl'], {
    FP8_FORMAT: fmt,
    BLOCK_ROWS: br,
    INPUT_BF16: bf16,
    UE8M0: spec.ue8m0,
    WG: WG_SCALES,
    GROUP: group,
  });
  ctx.batcher.dispatch(ps, [M, K, nbM, nbK], [xb, sb], Math.ceil((nbM * nbK) / (WG_SCALES / group)));

  const words = Math.ceil((M * K) / 4);
  const pa = ctx.pipelines.get([CODEC, 'fp8/quantize_apply.wgsl'], {
    FP8_FORMAT: fmt,
    BLOCK_ROWS: br,
    INPUT_BF16: bf16,
    WG: WG_ELEMENTWISE,
  });
  ctx.batcher.dispatch(pa, [M, K, nbK, words], [xb, sb, db], Math.ceil(words / WG_ELEMENTWISE));
}

/** data: fp8 [M, K], scales: f32 [ceil(M/br), ceil(K/128)] -> out: f32 [M, K] = decode(data) · scale. */
export function dequantizeFp8(ctx: Fp8LaunchContext, data: Tensor, scales: Tensor, spec: QuantizeSpec, out: Tensor): void {
  const [M, K] = matrixDims(data, 'fp8.dequantize data');
  if (M === 0 || K === 0) return;
  const nbK = Math.ceil(K / 128);
  const words = Math.ceil((M * K) / 4);
  const p = ctx.pipelines.get([CODEC, 'fp8/dequantize.wgsl'], {
    FP8_FORMAT: formatId(spec.format),
    BLOCK_ROWS: spec.block[0],
    WG: WG_ELEMENTWISE,
  });
  ctx.batcher.dispatch(
    p,
    [M, K, nbK, words],
    [ctx.bind(data, 'fp8.dequantize data'), ctx.bind(scales, 'fp8.dequantize scales'), ctx.bind(out, 'fp8.dequantize out')],
    Math.ceil(words / WG_ELEMENTWISE),
  );
}

/** The Fp8Kernels of the WebGPU backend (launches are synchronous; results are ordered by the queue). */
export function createFp8Kernels(ctx: Fp8LaunchContext): Fp8Kernels {
  return {
    encode: (x, format, out) => encodeFp8(ctx, x, format, out),
    decode: (q, format, out) => decodeFp8(ctx, q, format, out),
    quantize: (x, spec, data, scales) => quantizeFp8(ctx, x, spec, data, scales),
    dequantize: (data, scales, spec, out) => dequantizeFp8(ctx, data, scales, spec, out),
  };
}
