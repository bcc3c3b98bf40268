// Reference GEMM kernels: plain loops, the oracle every backend is tested against.
// Semantics (REFERENCE.md "FP8 block-scaled GEMM", docs/API.md "gemm"):
//   fp8: D[r, n] = Σ_kb p(r, n, kb) · (aScale[r, kb] · bScale(g, n, kb)) (+ C[r, n]), where p is the
//        partial sum of one 128-wide K block. Here p is exact (every product of two E4M3 values is
//        exact, and 128 of them add up exactly in f64), then rounded to f32; the scale product, the
//        scaled partial and the running sum are each rounded to f32 — the "promote every 128 K"
//        accumulation of DeepSeek-V3 with an ideal tensor core inside the block. With a gather, row r
//        reads A row floor(pairs[r] / k) instead of row r (or an all-zero row: codes 0, scales 0).
//   matmul: f32 accumulation in K order; transpose: moves elements.

import { f32ToBf16Bits } from '../dtype.js';
import type { GemmGrouping } from '../runtime/backend.js';
import { decodeValue } from './fp8.js';

const fround = Math.fround;

/** The 256 E4M3 values (NaN for 0x7F/0xFF). */
const E4M3 = Float64Array.from({ length: 256 }, (_, c) => decodeValue(c, 'e4m3'));

export interface GemmFp8Dims {
  /** Rows of A in all (M, M_sum or G·Mmax), N, K, the number of B matrices, rows per group. */
  M: number;
  N: number;
  K: number;
  G: number;
  Mmax: number;
  bBlockRows: 1 | 128;
  grouping: GemmGrouping;
}

/** Gathered A rows (GemmGather in src/runtime/backend.ts): pairs i32 [≥ M], a [rowsA, K]. */
export interface GemmFp8Gather {
  pairs: Int32Array;
  k: number;
  rowsA: number;
}

/** The row of A that output row r reads: r, or floor(pairs[r] / k), or −1 for an all-zero row (an id outside [0, rowsA·k)). */
export function gatheredRow(r: number, gather: GemmFp8Gather | null): number {
  if (!gather) return r;
  const id = gather.pairs[r]!;
  return id >= 0 && id < gather.rowsA * gather.k ? Math.floor(id / gather.k) : -1;
}

/** Which B matrix row r of A uses, or −1 when the row is skipped (written as zeros). */
export function rowGroup(r: number, dims: GemmFp8Dims, rowGroups: Int32Array | null): number {
  if (dims.grouping === 'none') return 0;
  if (dims.grouping === 'contiguous') return rowGroups![r]!;
  const g = Math.floor(r / dims.Mmax);
  return r % dims.Mmax < rowGroups![g]! ? g : -1;
}

/**
 * a: e4m3 [M, K], aScales: f32 [M, KB] (with a gather: [rowsA, K], [rowsA, KB]); b: e4m3 [G, N, K],
 * bScales: f32 [G·ceil(N/128), KB] (bBlockRows 128) or [G·N, KB] (bBlockRows 1); rowGroups:
 * groupIndex [M] | maskedM [G] | null; c: f32 [M, N] | null -> out: f32 [M, N] or bf16 bits [M, N] (outBf16).
 */
export function gemmFp8(
  a: Uint8Array, aScales: Float32Array, b: Uint8Array, bScales: Float32Array, dims: GemmFp8Dims,
  rowGroups: Int32Array | null, c: Float32Array | null, out: Float32Array | Uint16Array, outBf16: boolean,
  gather: GemmFp8Gather | null = null,
): void {
  const { M, N, K, bBlockRows } = dims;
  const KB = Math.ceil(K / 128);
  const NB = Math.ceil(N / 128);
  for (let r = 0; r < M; r++) {
    const g = rowGroup(r, dims, rowGroups);
    const src = gatheredRow(r, gather); // the A row read; −1: codes 0 and scales 0
    for (let n = 0; n < N; n++) {
      let acc = 0;
      if (g >= 0) {
        const aRow = src * K;
        const bRow = (g * N + n) * K;
        const sbRow = bBlockRows === 128 ? g * NB + Math.floor(n / 128) : g * N + n;
        for (let kb = 0; kb < KB; kb++) {
          let p = 0; // exact
          const k1 = Math.min(K, kb * 128 + 128);
          if (src >= 0) for (let k = kb * 128; k < k1; k++) p += E4M3[a[aRow + k]!]! * E4M3[b[bRow + k]!]!;
          const s = fround((src >= 0 ? aScales[src * KB + kb]! : 0) * bScales[sbRow * KB + kb]!);
          acc = fround(acc + fround(fround(p) * s));
        }
        if (c) acc = fround(acc + c[r * N + n]!);
      }
      if (outBf16) out[r * N + n] = f32ToBf16Bits(acc);
      else out[r * N + n] = acc;
    }
  }
}

/**
 * D = op(A)·op(B) (+ C). a: [M, K] (or [K, M] when transA), b: [N, K] when transB else [K, N], as f32
 * values (bf16 inputs widened by the caller); c: f32 [M, N] | null -> out: f32 or bf16 bits [M, N].
 */
export function matmul(
  a: Float32Array, b: Float32Array, M: number, N: number, K: number, transA: boolean, transB: boolean,
  c: Float32Array | null, out: Float32Array | Uint16Array, outBf16: boolean,
): void {
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) {
        const av = transA ? a[k * M + m]! : a[m * K + k]!;
        const bv = transB ? b[n * K + k]! : b[k * N + n]!;
        acc = fround(acc + fround(av * bv));
      }
      if (c) acc = fround(acc + c[m * N + n]!);
      if (outBf16) out[m * N + n] = f32ToBf16Bits(acc);
      else out[m * N + n] = acc;
    }
  }
}

/** x: [R, C] -> out: [C, R] (any typed array; elements are moved, not converted). */
export function transpose<T extends Float32Array | Uint16Array | Int32Array | Uint8Array>(x: T, R: number, C: number, out: T): void {
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) out[c * R + r] = x[r * C + c]!;
  }
}
