// fp8: E4M3/E5M2 encode and decode, and DeepSeek-V3's scaled quantization with 1×128 (per-token
// group) or 128×128 (per-block) scales. Validates once here, then runs on the tensor's backend.
//
// Rounding: nearest, ties to even. Saturating: finite values past the largest finite value become
// ±max (448 for E4M3, 57344 for E5M2), like CUDA's __NV_SATFINITE (PyTorch's plain cast instead
// gives NaN for E4M3 at |x| >= 464). NaN encodes as 0x7F. Infinity: ±448 in E4M3 (it has no inf),
// ±inf (0x7C/0xFC) in E5M2.

import { HotpathsError, show } from '../errors.js';
import type { Fp8Format, QuantizeSpec } from '../runtime/backend.js';
import { viewAs, type Tensor } from '../tensor.js';
import { FP8_FORMATS } from '../reference/fp8.js';
import { assertDTypeIn, assertNonEmpty, assertOneOf, assertRank, assertSameDevice, assertTensor } from './validate.js';

export type { Fp8Format } from '../runtime/backend.js';

const FORMATS = ['e4m3', 'e5m2'] as const;
const dtypeOf = (f: Fp8Format): 'fp8e4m3' | 'fp8e5m2' => (f === 'e4m3' ? 'fp8e4m3' : 'fp8e5m2');

/** Largest finite value of a format: 448 (e4m3) or 57344 (e5m2). */
export function maxFinite(format: Fp8Format): number {
  assertOneOf('maxFinite(): format', format, FORMATS);
  return FP8_FORMATS[format].maxFinite;
}

/** A quantized matrix (or a stack of G matrices): FP8 codes plus one f32 scale per block; x ≈ decode(data) · scale. */
export interface QuantizedTensor {
  /** Codes, dtype fp8e4m3 or fp8e5m2 (one byte each), shape [M, K] or [G, M, K]. */
  data: Tensor;
  /**
   * f32 scales: [M, ceil(K/128)] for 1×128 blocks, [ceil(M/128), ceil(K/128)] for 128×128; with a
   * leading G for a stack ([G, M, ceil(K/128)] or [G, M/128, ceil(K/128)]).
   */
  scales: Tensor;
  format: Fp8Format;
  block: readonly [1 | 128, 128];
  /** Scales are powers of two (UE8M0). */
  ue8m0: boolean;
  /** [M, K] or [G, M, K] */
  shape: readonly number[];
}

export interface QuantizeOptions {
  /** Default 'e4m3'. */
  format?: Fp8Format;
  /** [1, 128] (default; activations) or [128, 128] (weights). */
  block?: readonly [number, number];
  /** Round scales up to powers of two. Default false. */
  ue8m0?: boolean;
  /**
   * A block holding NaN or ±inf gets scale NaN and all-NaN codes ('propagate', the default, costs
   * nothing); 'throw' reads the scales back and throws E_NONFINITE naming the first such block.
   */
  nonFinite?: 'propagate' | 'throw';
  /**
   * Quantize xᵀ instead of x (rank 2 only): data [K, M], blocks taken along M. What an FP8 backward
   * pass needs (gemm.fp8LinearBackward): a transpose, then the quantization (two passes).
   */
  transpose?: boolean;
}

/** x: f32 [...] -> fp8 codes [...] (dtype fp8e4m3 or fp8e5m2), element-wise. */
export async function encode(x: Tensor, format: Fp8Format = 'e4m3'): Promise<Tensor> {
  assertTensor('fp8.encode(): x', x);
  assertOneOf('fp8.encode(): format', format, FORMATS);
  assertDTypeIn('fp8.encode(): x', x, ['f32']);
  const out = x.backend.empty(dtypeOf(format), x.shape);
  if (x.size > 0) await x.backend.fp8.encode(x, format, out);
  return out;
}

/** q: fp8 codes [...] -> f32 [...], exact. The format comes from q's dtype, or is given for u8. */
export async function decode(q: Tensor, format?: Fp8Format): Promise<Tensor> {
  assertTensor('fp8.decode(): q', q);
  assertDTypeIn('fp8.decode(): q', q, ['fp8e4m3', 'fp8e5m2', 'u8']);
  const fmt = formatOf('fp8.decode()', q, format);
  const out = q.backend.empty('f32', q.shape);
  if (q.size > 0) await q.backend.fp8.decode(q, fmt, out);
  return out;
}

/**
 * Scaled quantization (DeepSeek-V3): x: f32|bf16 [M, K] -> codes [M, K] and f32 scales, one per
 * block: amax = max |x| over the block (clamped below at 1e-4), scale = amax / maxFinite (rounded
 * up to a power of two with ue8m0), q = encode(x / scale). Ragged edges act as zero padding.
 * A stack x [G, M, K] is quantized matrix by matrix (128×128 blocks then need M % 128 == 0, so that
 * no block spans two matrices). `transpose: true` quantizes xᵀ (rank 2).
 */
export async function quantize(x: Tensor, opts: QuantizeOptions = {}): Promise<QuantizedTensor> {
  assertTensor('fp8.quantize(): x', x);
  assertDTypeIn('fp8.quantize(): x', x, ['f32', 'bf16']);
  if (x.shape.length !== 2 && x.shape.length !== 3) {
    throw new HotpathsError('E_SHAPE', `fp8.quantize(): x: expected a 2-D [M, K] or 3-D [G, M, K] tensor, got ${x.describe()}`);
  }
  assertNonEmpty('fp8.quantize(): x', x);
  const format = opts.format ?? 'e4m3';
  assertOneOf('fp8.quantize(): format', format, FORMATS);
  const block = parseBlock(opts.block ?? [1, 128]);
  const ue8m0 = opts.ue8m0 ?? false;
  if (typeof ue8m0 !== 'boolean') throw new HotpathsError('E_ARG', `fp8.quantize(): ue8m0: expected a boolean, got ${show(ue8m0)}`);
  const nonFinite = opts.nonFinite ?? 'propagate';
  assertOneOf('fp8.quantize(): nonFinite', nonFinite, ['propagate', 'throw']);
  const transpose = opts.transpose ?? false;
  if (typeof transpose !== 'boolean') throw new HotpathsError('E_ARG', `fp8.quantize(): transpose: expected a boolean, got ${show(transpose)}`);

  if (transpose) {
    if (x.shape.length !== 2) throw new HotpathsError('E_SHAPE', `fp8.quantize(): transpose: expected a 2-D x, got ${x.describe()}`);
    const kernels = x.backend.gemm;
    if (!kernels) throw new HotpathsError('E_NOT_IMPLEMENTED', `fp8.quantize(): transpose: the ${x.device} backend has no transpose kernel yet`);
    const xt = x.backend.empty(x.dtype, [x.shape[1]!, x.shape[0]!]);
    try {
      await kernels.transpose(x, xt);
      return await quantize(xt, { ...opts, transpose: false });
    } finally {
      xt.dispose();
    }
  }

  const stack = x.shape.length === 3 ? x.shape[0]! : 1;
  const [M, K] = x.shape.slice(-2) as [number, number];
  if (stack > 1 && block[0] === 128 && M % 128 !== 0) {
    throw new HotpathsError('E_SHAPE', `fp8.quantize(): x ${x.describe()}: 128×128 blocks of a stack need M % 128 == 0 (no block may span two matrices)`);
  }
  const spec: QuantizeSpec = { format, block, ue8m0 };
  const [sr, sc] = scaleShape(M, K, block);
  const data = x.backend.empty(dtypeOf(format), x.shape);
  const scales = x.backend.empty('f32', x.shape.length === 3 ? [stack, sr, sc] : [sr, sc]);
  // a stack is one tall matrix to the kernel: 1×128 groups never cross rows, and 128-row blocks
  // never cross matrices (checked above)
  const flat = (t: Tensor, rows: number, cols: number) => (t.shape.length === 3 ? viewAs(t, [rows, cols]) : t);
  await x.backend.fp8.quantize(flat(x, stack * M, K), spec, flat(data, stack * M, K), flat(scales, stack * sr, sc));
  if (nonFinite === 'throw') {
    const s = (await scales.read()) as Float32Array;
    const bad = s.findIndex((v) => Number.isNaN(v));
    if (bad >= 0) {
      data.dispose();
      scales.dispose();
      const where = x.shape.length === 3
        ? `block (${Math.floor(bad / (sr * sc))}, ${Math.floor(bad / sc) % sr}, ${bad % sc})`
        : `block (${Math.floor(bad / sc)}, ${bad % sc})`;
      throw new HotpathsError('E_NONFINITE', `fp8.quantize(): x has NaN or infinity in ${where} of ${block[0]}×${block[1]} blocks`);
    }
  }
  return { data, scales, format, block, ue8m0, shape: [...x.shape] };
}

/** q -> f32 [M, K] (or [G, M, K]) = decode(q.data) · scale of each element's block. */
export async function dequantize(q: QuantizedTensor): Promise<Tensor> {
  const { format, block, stack, M, K } = checkQuantized('fp8.dequantize()', 'q', q);
  const flat = (t: Tensor, rows: number, cols: number) => (t.shape.length === 3 ? viewAs(t, [rows, cols]) : t);
  const [sr, sc] = scaleShape(M, K, block);
  const out = q.data.backend.empty('f32', q.data.shape);
  await q.data.backend.fp8.dequantize(flat(q.data, stack * M, K), flat(q.scales, stack * sr, sc), { format, block, ue8m0: !!q.ue8m0 }, flat(out, stack * M, K));
  return out;
}

/**
 * Checks a QuantizedTensor argument (what fp8.quantize returns): live tensors on one device, codes
 * [M, K] or [G, M, K], not empty (zeroRowsOk: [0, K] with K > 0 passes), scales of the matching
 * shape. Returns its resolved format, block and sizes.
 */
export function checkQuantized(
  fn: string, name: string, q: QuantizedTensor, opts: { zeroRowsOk?: boolean } = {},
): { format: Fp8Format; block: readonly [1 | 128, 128]; stack: number; M: number; K: number } {
  if (typeof q !== 'object' || q === null || !('data' in q)) throw new HotpathsError('E_ARG', `${fn}: ${name}: expected the result of fp8.quantize(), got ${show(q)}`);
  assertTensor(`${fn}: ${name}.data`, q.data);
  assertTensor(`${fn}: ${name}.scales`, q.scales);
  assertSameDevice(fn, q.data, q.scales);
  if (q.data.shape.length !== 2 && q.data.shape.length !== 3) {
    throw new HotpathsError('E_SHAPE', `${fn}: ${name}.data: expected a 2-D or 3-D tensor, got ${q.data.describe()}`);
  }
  if (!(opts.zeroRowsOk && q.data.shape.length === 2 && q.data.shape[0] === 0 && q.data.shape[1]! > 0)) assertNonEmpty(`${fn}: ${name}.data`, q.data);
  assertDTypeIn(`${fn}: ${name}.scales`, q.scales, ['f32']);
  const format = formatOf(fn, q.data, q.format);
  const block = parseBlock(q.block);
  const stack = q.data.shape.length === 3 ? q.data.shape[0]! : 1;
  const [M, K] = q.data.shape.slice(-2) as [number, number];
  const want = q.data.shape.length === 3 ? [stack, ...scaleShape(M, K, block)] : scaleShape(M, K, block);
  if (q.scales.shape.length !== want.length || q.scales.shape.some((d, i) => d !== want[i])) {
    throw new HotpathsError('E_SHAPE', `${fn}: ${name}.scales: expected shape ${show(want)} for data ${show(q.data.shape)} with ${block[0]}×${block[1]} blocks, got ${show(q.scales.shape)}`);
  }
  if (stack > 1 && block[0] === 128 && M % 128 !== 0) {
    throw new HotpathsError('E_SHAPE', `${fn}: ${name}: 128×128 blocks of a stack need M % 128 == 0, got data ${show(q.data.shape)}`);
  }
  return { format, block, stack, M, K };
}

/** Shape of the scales for an [M, K] matrix. */
export function scaleShape(M: number, K: number, block: readonly [number, number]): [number, number] {
  return [Math.ceil(M / block[0]), Math.ceil(K / block[1])];
}

function parseBlock(b: unknown): readonly [1 | 128, 128] {
  if (Array.isArray(b) && b.length === 2 && (b[0] === 1 || b[0] === 128) && b[1] === 128) return [b[0], 128];
  throw new HotpathsError('E_ARG', `fp8.quantize(): block: expected [1, 128] or [128, 128], got ${show(b)}`);
}

function formatOf(what: string, q: Tensor, format: Fp8Format | undefined): Fp8Format {
  const fromDtype = q.dtype === 'fp8e4m3' ? 'e4m3' : q.dtype === 'fp8e5m2' ? 'e5m2' : undefined;
  if (format !== undefined) assertOneOf(`${what}: format`, format, FORMATS);
  if (fromDtype && format && format !== fromDtype) {
    throw new HotpathsError('E_DTYPE', `${what}: format '${format}' does not match the codes' dtype ${q.dtype}`);
  }
  const f = fromDtype ?? format;
  if (!f) throw new HotpathsError('E_ARG', `${what}: format: q is plain u8, so pass 'e4m3' or 'e5m2'`);
  return f;
}
