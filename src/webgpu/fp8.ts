// FP8 launchers: encode, decode, quantize (single pass for 1×128 and 128×128 blocks when K % 4 == 0,
// else two passes), dequantize. Shapes and dtypes were checked by src/ops/fp8.ts; these only compute
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
  'fp8/encode_scalar.wgsl',
  'fp8/decode.wgsl',
  'fp8/decode_scalar.wgsl',
  'fp8/quantize_scales.wgsl',
  'fp8/quantize_apply.wgsl',
  'fp8/quantize_1x128.wgsl',
  'fp8/quantize_128x128.wgsl',
  'fp8/amax_subgroup.wgsl',
  'fp8/amax_workgroup.wgsl',
  'fp8/load_f32x4.wgsl',
  'fp8/load_bf16x4.wgsl',
  'fp8/load_bf16x8.wgsl',
  'fp8/dequantize.wgsl',
  'fp8/dequantize_scalar.wgsl',
] as const;

const CODEC = 'fp8/codec.wgsl';
const WG_ELEMENTWISE = 256;
const WG_SCALES = 256; // two-pass: 1×128 blocks: 8 blocks of 32 invocations; 128×128 blocks: one per workgroup
const WG_1X128 = 256;

/**
 * Tuning of the WebGPU fp8 kernels, read at every launch (pipelines are cached per value, so a change
 * takes effect on the next call). 0 means automatic. For measuring variants on a given GPU.
 */
export const FP8_TUNING = {
  /** Words (4 elements) per invocation in encode, decode and dequantize, 1..8 (auto: 4). */
  elementwiseUnroll: 0,
  /**
   * Lanes per (row, 128-block) group in the 1×128 quantize, a power of two 1..32 (0 = auto: two
   * 16-byte loads a lane, i.e. 16 lanes for f32, 8 for bf16 with K % 8 == 0). With subgroups it is
   * capped at the device's smallest subgroup size (4 when the device does not say). On devices whose
   * subgroups are at least 32 wide (NVIDIA) auto means 32: on the H100 (Vulkan, 2026-11-21,
   * [4096, 7168]) 32 lanes ran 4x faster than 16 (scripts/webgpu-fp8-sweep.mjs); on lavapipe
   * (8-wide) 32 lanes ran 4x slower than 16.
   */
  quantizeLanes: 0,
  /** Workgroup size of the 128×128 quantize: 256, 512 or 1024 (auto: 512 where the device allows). */
  tileWorkgroup: 0,
  /**
   * Use subgroup operations for the quantize amax when the device has 'subgroups'. 'auto': off where
   * subgroups are 32 wide or more (the workgroup reduction was faster on the H100: f32 1×128 320 vs
   * 249 GB/s), on elsewhere (faster on lavapipe).
   */
  subgroups: 'auto' as boolean | 'auto',
};

/** What the launchers need from the backend. */
export interface Fp8LaunchContext {
  pipelines: PipelineCache;
  batcher: CommandBatcher;
  /** The bound range of a tensor's buffer (its padded byte size), after checking the binding limit. */
  bind(t: Tensor, what: string): BufferRange;
  /** Use the single-pass kernels (1×128 and 128×128 blocks) when K % 4 == 0 (default true). */
  fusedQuantize: boolean;
}

function formatId(format: Fp8Format): number {
  return format === 'e5m2' ? 1 : 0;
}

function matrixDims(t: Tensor, what: string): [number, number] {
  if (t.shape.length !== 2) throw new HotpathsError('E_SHAPE', `${what}: expected a 2-D tensor, got ${t.describe()}`);
  return [t.shape[0]!, t.shape[1]!];
}

function unroll(): number {
  const u = FP8_TUNING.elementwiseUnroll;
  return u >= 1 && u <= 8 ? Math.floor(u) : 4;
}

/**
 * `t`'s binding for an array<vec4<…>> view: its range rounded up to a multiple of 16 bytes, which the
 * buffer must hold (pooled buffers always do: their sizes are multiples of 256 bytes). Undefined for
 * a caller's buffer that ends before that, or past the binding limit: the caller then uses the scalar
 * kernel. Kernels never write past the payload; they may read the rounding bytes and ignore them.
 */
function bindVec4(ctx: Fp8LaunchContext, t: Tensor, what: string): BufferRange | undefined {
  const r = ctx.bind(t, what);
  const offset = r.offset ?? 0;
  const size = r.size ?? r.buffer.size - offset;
  const rounded = Math.ceil(size / 16) * 16;
  if (rounded === size) return r;
  if (offset + rounded > r.buffer.size || rounded > ctx.batcher.device.limits.maxStorageBufferBindingSize) return undefined;
  return { buffer: r.buffer, offset, size: rounded };
}

/** The device's smallest subgroup size, when it says. */
function subgroupMinSize(ctx: Fp8LaunchContext): number | undefined {
  const min = (ctx.batcher.device as { adapterInfo?: GPUAdapterInfo }).adapterInfo?.subgroupMinSize;
  return typeof min === 'number' ? min : undefined;
}

/** Subgroups of 32 or more (NVIDIA): the tuning defaults differ there (see FP8_TUNING). */
function wideSubgroups(ctx: Fp8LaunchContext): boolean {
  return (subgroupMinSize(ctx) ?? 0) >= 32;
}

/** Whether the quantize amax may use subgroup operations, and the largest group they can reduce. */
function subgroupSupport(ctx: Fp8LaunchContext): { on: boolean; minSize: number } {
  const device = ctx.batcher.device;
  const want = FP8_TUNING.subgroups === 'auto' ? !wideSubgroups(ctx) : FP8_TUNING.subgroups;
  if (!want || !device.features.has('subgroups')) return { on: false, minSize: 0 };
  const min = subgroupMinSize(ctx);
  // WebGPU guarantees subgroups of at least 4 invocations
  return { on: true, minSize: typeof min === 'number' && min >= 4 ? min : 4 };
}

/** out = fp8(x): x f32 [n] -> out fp8 [n]. */
export function encodeFp8(ctx: Fp8LaunchContext, x: Tensor, format: Fp8Format, out: Tensor): void {
  const n = x.size;
  if (n === 0) return;
  const words = Math.ceil(n / 4);
  const xb = bindVec4(ctx, x, 'fp8.encode x');
  const ob = ctx.bind(out, 'fp8.encode out');
  if (!xb) {
    const p = ctx.pipelines.get([CODEC, 'fp8/encode_scalar.wgsl'], { FP8_FORMAT: formatId(format), WG: WG_ELEMENTWISE });
    ctx.batcher.dispatch(p, [n, words], [ctx.bind(x, 'fp8.encode x'), ob], Math.ceil(words / WG_ELEMENTWISE));
    return;
  }
  const u = unroll();
  const p = ctx.pipelines.get([CODEC, 'fp8/encode.wgsl'], { FP8_FORMAT: formatId(format), WG: WG_ELEMENTWISE, UNROLL: u });
  ctx.batcher.dispatch(p, [n, words], [xb, ob], Math.ceil(words / (WG_ELEMENTWISE * u)));
}

/** out = f32(q): q fp8 [n] -> out f32 [n] (bit patterns, NaN canonical). */
export function decodeFp8(ctx: Fp8LaunchContext, q: Tensor, format: Fp8Format, out: Tensor): void {
  const n = q.size;
  if (n === 0) return;
  const words = Math.ceil(n / 4);
  const qb = ctx.bind(q, 'fp8.decode q');
  const ob = bindVec4(ctx, out, 'fp8.decode out');
  if (!ob) {
    const p = ctx.pipelines.get([CODEC, 'fp8/decode_scalar.wgsl'], { FP8_FORMAT: formatId(format), WG: WG_ELEMENTWISE });
    ctx.batcher.dispatch(p, [n, words], [qb, ctx.bind(out, 'fp8.decode out')], Math.ceil(words / WG_ELEMENTWISE));
    return;
  }
  const u = unroll();
  const p = ctx.pipelines.get([CODEC, 'fp8/decode.wgsl'], { FP8_FORMAT: formatId(format), WG: WG_ELEMENTWISE, UNROLL: u });
  ctx.batcher.dispatch(p, [n, words], [qb, ob], Math.ceil(words / (WG_ELEMENTWISE * u)));
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

  if (K % 4 === 0 && ctx.fusedQuantize) {
    // Single pass, x read once into registers. Units of 16 bytes (f32 ×4, bf16 ×8), or of 8 bytes for
    // bf16 with K % 8 == 4; the bound range of x is M·K·(4|2) bytes, a multiple of the unit size.
    const loader = !bf16 ? 'fp8/load_f32x4.wgsl' : K % 8 === 0 ? 'fp8/load_bf16x8.wgsl' : 'fp8/load_bf16x4.wgsl';
    const unitsPerBlock = loader === 'fp8/load_bf16x8.wgsl' ? 16 : 32;
    const sg = subgroupSupport(ctx);
    const amax = sg.on ? 'fp8/amax_subgroup.wgsl' : 'fp8/amax_workgroup.wgsl';
    const files = [amax, CODEC, loader];
    if (br === 1) {
      let lanes = FP8_TUNING.quantizeLanes > 0 ? 2 ** Math.round(Math.log2(FP8_TUNING.quantizeLanes)) : wideSubgroups(ctx) ? 32 : unitsPerBlock / 2;
      lanes = Math.max(1, Math.min(lanes, unitsPerBlock, 32, sg.on ? sg.minSize : 32));
      const groups = M * nbK;
      const p = ctx.pipelines.get([...files, 'fp8/quantize_1x128.wgsl'], { FP8_FORMAT: fmt, UE8M0: spec.ue8m0, WG: WG_1X128, LANES: lanes });
      ctx.batcher.dispatch(p, [M, K, nbK, groups], [xb, sb, db], Math.ceil(groups / (WG_1X128 / lanes)));
    } else {
      const wg = tileWorkgroup(ctx);
      const tiles = nbM * nbK;
      const p = ctx.pipelines.get([...files, 'fp8/quantize_128x128.wgsl'], { FP8_FORMAT: fmt, UE8M0: spec.ue8m0, WG: wg });
      ctx.batcher.dispatch(p, [M, K, nbK, tiles], [xb, sb, db], tiles);
    }
    return;
  }

  // General path (K % 4 != 0): pass 1 writes the scales, pass 2 reads x again and encodes.
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

/** Workgroup size of the 128×128 quantize: the tuning value, else 512 where the device allows, else 256. */
function tileWorkgroup(ctx: Fp8LaunchContext): number {
  const l = ctx.batcher.device.limits;
  const max = Math.min(l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX);
  const want = [256, 512, 1024].includes(FP8_TUNING.tileWorkgroup) ? FP8_TUNING.tileWorkgroup : 512;
  return want <= max ? want : 256; // 256 is WebGPU's guaranteed minimum
}

/** data: fp8 [M, K], scales: f32 [ceil(M/br), ceil(K/128)] -> out: f32 [M, K] = decode(data) · scale. */
export function dequantizeFp8(ctx: Fp8LaunchContext, data: Tensor, scales: Tensor, spec: QuantizeSpec, out: Tensor): void {
  const [M, K] = matrixDims(data, 'fp8.dequantize data');
  if (M === 0 || K === 0) return;
  const nbK = Math.ceil(K / 128);
  const words = Math.ceil((M * K) / 4);
  const qb = ctx.bind(data, 'fp8.dequantize data');
  const sb = ctx.bind(scales, 'fp8.dequantize scales');
  const ob = bindVec4(ctx, out, 'fp8.dequantize out');
  if (!ob) {
    const p = ctx.pipelines.get([CODEC, 'fp8/dequantize_scalar.wgsl'], {
      FP8_FORMAT: formatId(spec.format),
      BLOCK_ROWS: spec.block[0],
      WG: WG_ELEMENTWISE,
    });
    ctx.batcher.dispatch(p, [M, K, nbK, words], [qb, sb, ctx.bind(out, 'fp8.dequantize out')], Math.ceil(words / WG_ELEMENTWISE));
    return;
  }
  const u = unroll();
  const p = ctx.pipelines.get([CODEC, 'fp8/dequantize.wgsl'], {
    FP8_FORMAT: formatId(spec.format),
    BLOCK_ROWS: spec.block[0],
    K_VEC: K % 4 === 0,
    K_BLOCKS: K % 128 === 0,
    WG: WG_ELEMENTWISE,
    UNROLL: u,
  });
  ctx.batcher.dispatch(p, [M, K, nbK, words], [qb, sb, ob], Math.ceil(words / (WG_ELEMENTWISE * u)));
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
