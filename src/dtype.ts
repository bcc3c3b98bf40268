// The dtype table. bf16 and f16 are stored as their 16-bit patterns (Uint16Array); the FP8 formats
// as bytes (Uint8Array); on WebGPU every buffer is padded to whole 32-bit words.

import { HotpathsError, show } from './errors.js';

export type DType = 'f32' | 'bf16' | 'f16' | 'i32' | 'u8' | 'fp8e4m3' | 'fp8e5m2';
export const DTYPES: readonly DType[] = ['f32', 'bf16', 'f16', 'i32', 'u8', 'fp8e4m3', 'fp8e5m2'];

export type HostArray = Float32Array | Uint16Array | Int32Array | Uint8Array;

/** Bytes per element. */
export function dtypeBytes(dtype: DType): number {
  switch (dtype) {
    case 'f32':
    case 'i32':
      return 4;
    case 'bf16':
    case 'f16':
      return 2;
    case 'u8':
    case 'fp8e4m3':
    case 'fp8e5m2':
      return 1;
  }
}

/** A zero-filled host array of the right kind for `dtype`. */
export function allocHost(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(n);
    case 'i32':
      return new Int32Array(n);
    case 'bf16':
    case 'f16':
      return new Uint16Array(n);
    case 'u8':
    case 'fp8e4m3':
    case 'fp8e5m2':
      return new Uint8Array(n);
  }
}

/** Checks that a host array is the storage kind of `dtype` (Float32Array for f32, …). */
export function hostArrayMatches(dtype: DType, a: HostArray): boolean {
  switch (dtype) {
    case 'f32':
      return a instanceof Float32Array;
    case 'i32':
      return a instanceof Int32Array;
    case 'bf16':
    case 'f16':
      return a instanceof Uint16Array;
    default:
      return a instanceof Uint8Array;
  }
}

export function assertDType(name: string, v: unknown): asserts v is DType {
  if (typeof v !== 'string' || !(DTYPES as readonly string[]).includes(v)) {
    throw new HotpathsError('E_DTYPE', `${name}: expected one of ${DTYPES.join(', ')}, got ${show(v)}`);
  }
}

// ---- bf16 <-> f32, round to nearest even (NaN kept quiet) ----
const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

export function f32ToBf16Bits(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff; // NaN: keep it a quiet NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(b: number): number {
  u32buf[0] = (b & 0xffff) << 16;
  return f32buf[0]!;
}

/** f32 values -> bf16 bit patterns (RNE). */
export function toBf16(x: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32ToBf16Bits(x[i]!);
  return out;
}

/** bf16 bit patterns -> f32 values (exact). */
export function fromBf16(b: Uint16Array): Float32Array {
  const out = new Float32Array(b.length);
  const o32 = new Uint32Array(out.buffer);
  for (let i = 0; i < b.length; i++) o32[i] = b[i]! << 16;
  return out;
}
