// Reference FP8 codec and scaled quantization: plain loops, the oracle every backend must match.
// Semantics (../REFERENCE.md, docs/API.md):
//   encode: f32 -> fp8, round to nearest even, saturate finite values to ±max finite,
//           NaN -> 0x7F (canonical, sign dropped), e4m3: ±inf -> ±448, e5m2: ±inf -> ±inf.
//   decode: exact; NaN codes -> canonical f32 NaN 0x7FC00000.
//   quantize: amax per block (NaN/inf anywhere in a block -> scale NaN and every code 0x7F),
//             amax clamped below at 1e-4, scale = amax / maxFinite (f32 division),
//             ue8m0: scale rounded up to a power of two, q = encode(x / scale) (f32 division).
// All arithmetic below is integer work on the f32 bit pattern, or f32-rounded with Math.fround,
// so that it agrees bit for bit with the C++, CUDA and WGSL versions.

import type { Fp8Format, QuantizeSpec } from '../runtime/backend.js';

export interface Fp8FormatInfo {
  /** Exponent bits, mantissa bits, exponent bias. */
  expBits: number;
  manBits: number;
  bias: number;
  /** Largest finite value and its code (positive). */
  maxFinite: number;
  maxCode: number;
  /** f32 bit pattern of maxFinite. */
  maxBits: number;
  /** Code of +inf, or -1 when the format has none (e4m3 saturates infinities). */
  infCode: number;
}

export const FP8_FORMATS: Readonly<Record<Fp8Format, Fp8FormatInfo>> = {
  e4m3: { expBits: 4, manBits: 3, bias: 7, maxFinite: 448, maxCode: 0x7e, maxBits: 0x43e00000, infCode: -1 },
  e5m2: { expBits: 5, manBits: 2, bias: 15, maxFinite: 57344, maxCode: 0x7b, maxBits: 0x47600000, infCode: 0x7c },
};

export const FP8_NAN_CODE = 0x7f;
export const F32_NAN_BITS = 0x7fc00000;
/** amax is clamped below at this (f32) value before the scale is taken. */
export const AMAX_FLOOR = Math.fround(1e-4);

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0]!;
}
function fromBits(b: number): number {
  u32[0] = b >>> 0;
  return f32[0]!;
}

/** One f32 value (given by its bit pattern) -> fp8 code. Integer-only; see the header for the rules. */
export function encodeBits(u: number, format: Fp8Format): number {
  const fmt = FP8_FORMATS[format];
  const sign = (u >>> 24) & 0x80;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return FP8_NAN_CODE;
  if (a === 0x7f800000 && fmt.infCode >= 0) return sign | fmt.infCode;
  if (a >= fmt.maxBits) return sign | fmt.maxCode;
  const exp = a >>> 23;
  const shift = 23 - fmt.manBits;
  if (exp > 127 - fmt.bias) {
    // normal in fp8: rebias the exponent, then round the mantissa to nearest even
    const r = a - ((127 - fmt.bias) << 23);
    const rounded = r + ((1 << (shift - 1)) - 1) + ((r >>> shift) & 1);
    return sign | (rounded >>> shift);
  }
  // subnormal (or zero) in fp8: value = mant · 2^(e-150); code = RNE(value / 2^(1-bias-man))
  const mant = exp === 0 ? a & 0x7fffff : (a & 0x7fffff) | 0x800000;
  const e = exp === 0 ? 1 : exp;
  const s = 151 - fmt.bias - fmt.manBits - e; // >= 1 here
  if (s > 24) return sign; // below half the smallest subnormal
  let q = mant >>> s;
  const rem = mant & ((1 << s) - 1);
  const half = 1 << (s - 1);
  if (rem > half || (rem === half && (q & 1) === 1)) q += 1;
  return sign | q;
}

/** One f32 value -> fp8 code. */
export function encodeValue(x: number, format: Fp8Format): number {
  return encodeBits(bitsOf(x), format);
}

/** One fp8 code -> the f32 bit pattern of its value (exact; NaN -> 0x7FC00000). */
export function decodeBits(code: number, format: Fp8Format): number {
  const fmt = FP8_FORMATS[format];
  const sign = (code & 0x80) << 24;
  const e = (code >>> fmt.manBits) & ((1 << fmt.expBits) - 1);
  const m = code & ((1 << fmt.manBits) - 1);
  const eMax = (1 << fmt.expBits) - 1;
  if (format === 'e4m3' && e === eMax && m === 7) return F32_NAN_BITS;
  if (format === 'e5m2' && e === eMax) return m === 0 ? (sign | 0x7f800000) >>> 0 : F32_NAN_BITS;
  if (e === 0) {
    // subnormal: m · 2^(1-bias-man), exact in f32
    return (sign | bitsOf(m * 2 ** (1 - fmt.bias - fmt.manBits))) >>> 0;
  }
  return (sign | ((e - fmt.bias + 127) << 23) | (m << (23 - fmt.manBits))) >>> 0;
}

/** One fp8 code -> its value. */
export function decodeValue(code: number, format: Fp8Format): number {
  return fromBits(decodeBits(code, format));
}

// ---------------------------------------------------------------- element-wise kernels

/** x: f32 [n] -> out: fp8 codes [n]. */
export function fp8Encode(x: Float32Array, format: Fp8Format, out: Uint8Array): void {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) out[i] = encodeBits(bits[i]!, format);
}

/** q: fp8 codes [n] -> out: f32 [n]. */
export function fp8Decode(q: Uint8Array, format: Fp8Format, out: Float32Array): void {
  const o = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < q.length; i++) o[i] = decodeBits(q[i]!, format);
}

// ---------------------------------------------------------------- scaled quantization

/** The scale of one block from its amax (NaN in, NaN out). */
export function scaleFromAmax(amax: number, format: Fp8Format, ue8m0: boolean): number {
  if (!Number.isFinite(amax)) return NaN;
  const clamped = Math.max(amax, AMAX_FLOOR);
  let scale = Math.fround(clamped / FP8_FORMATS[format].maxFinite);
  if (ue8m0) {
    const b = bitsOf(scale);
    // round up to a power of two: drop the mantissa and step the exponent when it was non-zero
    if ((b & 0x7fffff) !== 0) scale = fromBits(((b & 0xff800000) + 0x800000) >>> 0);
  }
  return scale;
}

/**
 * x: f32 [M, K] (given as f32 values; bf16 inputs are widened exactly first)
 * data: fp8 [M, K]; scales: f32 [ceil(M / br), ceil(K / 128)] with br = spec.block[0].
 */
export function fp8Quantize(x: Float32Array, M: number, K: number, spec: QuantizeSpec, data: Uint8Array, scales: Float32Array): void {
  const br = spec.block[0];
  const bc = spec.block[1];
  const nbK = Math.ceil(K / bc);
  for (let bm = 0; bm < Math.ceil(M / br); bm++) {
    for (let bk = 0; bk < nbK; bk++) {
      const r0 = bm * br, r1 = Math.min(M, r0 + br);
      const c0 = bk * bc, c1 = Math.min(K, c0 + bc);
      // ragged edges act as zero padding: only the elements that exist contribute to amax
      let amax = 0;
      let finite = true;
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) {
          const v = Math.abs(x[r * K + c]!);
          if (!Number.isFinite(v)) finite = false;
          else if (v > amax) amax = v;
        }
      }
      const scale = scaleFromAmax(finite ? amax : NaN, spec.format, spec.ue8m0);
      scales[bm * nbK + bk] = scale;
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) {
          const i = r * K + c;
          data[i] = Number.isNaN(scale) ? FP8_NAN_CODE : encodeValue(Math.fround(x[i]! / scale), spec.format);
        }
      }
    }
  }
}

/** data: fp8 [M, K], scales as in fp8Quantize -> out: f32 [M, K] = decode(q) · scale (f32 product; NaN -> 0x7FC00000). */
export function fp8Dequantize(data: Uint8Array, scales: Float32Array, M: number, K: number, spec: QuantizeSpec, out: Float32Array): void {
  const br = spec.block[0];
  const nbK = Math.ceil(K / spec.block[1]);
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let r = 0; r < M; r++) {
    for (let c = 0; c < K; c++) {
      const s = scales[Math.floor(r / br) * nbK + Math.floor(c / spec.block[1])]!;
      const v = Math.fround(decodeValue(data[r * K + c]!, spec.format) * s);
      if (Number.isNaN(v)) bits[r * K + c] = F32_NAN_BITS; // one canonical NaN, as decode writes
      else out[r * K + c] = v;
    }
  }
}
