// The cpu backend's GEMM entry points called on the addon directly: bad arguments throw with the right
// code (and never crash the process), then each entry point against a naive JS triple loop (fresh
// random inputs, ragged shapes, outputs poisoned with NaN first). Tolerance as in common.md:
// |D − ref| ≤ 1e-5 · Σ_k |a·sa|·|b·sb| (f32 FMA), plus the output's own rounding, half an ulp of |ref|
// (bf16: 2^-8; f32: 2^-24, which matters only where C dominates the sum).

import { describe, expect, it } from 'vitest';
import { loadAddon, type Addon } from '../src/native/addon.js';
import { cudaPtr } from '../src/native/cuda.js';
import { getBackend, probeBackend } from '../src/runtime/index.js';
import type { Tensor } from '../src/tensor.js';
import { freshSeed, gatherPairs, gatherRowsHost, rng, thrown } from './helpers.js';

const loaded = loadAddon();
if (!loaded && (process.env.HOTPATHS_REQUIRE ?? '').split(',').includes('cpu')) {
  throw new Error('the addon is required here (HOTPATHS_REQUIRE=cpu) but did not load');
}
const TOL = 1e-5;

// ---------------------------------------------------------------- naive references (f64)

/** E4M3 code -> value, from the format's definition. */
function e4m3(c: number): number {
  const s = c & 0x80 ? -1 : 1;
  const e = (c >> 3) & 15;
  const m = c & 7;
  if ((c & 0x7f) === 0x7f) return NaN;
  return e === 0 ? s * 2 ** -6 * (m / 8) : s * 2 ** (e - 7) * (1 + m / 8);
}
const E4M3 = Array.from({ length: 256 }, (_, c) => e4m3(c));

function bf16ToF32(u: number): number {
  return new Float32Array(new Uint32Array([(u & 0xffff) << 16]).buffer)[0]!;
}
function f32ToBf16(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

interface Fp8Case {
  M: number;
  N: number;
  K: number;
  G: number;
  Mmax: number;
  bBlockRows: 1 | 128;
  mode: 0 | 1 | 2;
  rowGroups: Int32Array | null;
  withC: boolean;
}

/** fp8(args) exactly as common.md states it; returns D and the bound Σ|a·sa|·|b·sb| per element. */
function fp8Reference(a: Uint8Array, aS: Float32Array, b: Uint8Array, bS: Float32Array, c: Float32Array | null, t: Fp8Case): { d: Float64Array; bound: Float64Array } {
  const { M, N, K, Mmax, bBlockRows, mode, rowGroups } = t;
  const KB = Math.ceil(K / 128);
  const NB = Math.ceil(N / 128);
  const d = new Float64Array(M * N);
  const bound = new Float64Array(M * N);
  for (let r = 0; r < M; r++) {
    let g = 0;
    if (mode === 1) g = rowGroups![r]!;
    if (mode === 2) g = Math.floor(r / Mmax);
    if (g < 0 || (mode === 2 && r % Mmax >= rowGroups![g]!)) continue; // zero row
    for (let n = 0; n < N; n++) {
      let acc = 0;
      let abs = 0;
      for (let kb = 0; kb < KB; kb++) {
        const sb = bBlockRows === 128 ? bS[(g * NB + Math.floor(n / 128)) * KB + kb]! : bS[(g * N + n) * KB + kb]!;
        const s = aS[r * KB + kb]! * sb;
        let p = 0;
        let pa = 0;
        for (let k = kb * 128; k < Math.min(K, kb * 128 + 128); k++) {
          const x = E4M3[a[r * K + k]!]! * E4M3[b[(g * N + n) * K + k]!]!;
          p += x;
          pa += Math.abs(x);
        }
        acc += p * s;
        abs += pa * Math.abs(s);
      }
      d[r * N + n] = acc + (c ? c[r * N + n]! : 0);
      bound[r * N + n] = abs;
    }
  }
  return { d, bound };
}

/** Index of the first element outside the tolerance (tolFactor · bound, plus rounding), or -1 (NaN output never passes). */
function firstOff(out: Float32Array | Uint16Array, d: Float64Array, bound: Float64Array, tolFactor = TOL): number {
  const isBf16 = out instanceof Uint16Array;
  for (let i = 0; i < d.length; i++) {
    const v = isBf16 ? bf16ToF32(out[i]!) : out[i]!;
    // the output's own rounding: half an ulp of |ref| (f32: it matters when C dominates the sum)
    const tol = tolFactor * bound[i]! + Math.abs(d[i]!) * (isBf16 ? 2 ** -8 : 2 ** -24);
    if (!(Math.abs(v - d[i]!) <= tol)) return i;
  }
  return -1;
}

/** Random E4M3 codes without NaN, and positive scales spread over a few decades. */
function codes(n: number, r: () => number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = (r() * 256) | 0;
    out[i] = (c & 0x7f) === 0x7f ? 0x38 : c;
  }
  return out;
}
function scales(n: number, r: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => 10 ** ((r() - 0.5) * 4));
}
function values(n: number, r: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => (r() + r() + r() - 1.5) * 2);
}
function poisoned(n: number, bf16: boolean): Float32Array | Uint16Array {
  return bf16 ? new Uint16Array(n).fill(0x7fc0) : new Float32Array(n).fill(NaN);
}

/** A contiguous groupIndex: each group's rows padded to a multiple of 128 with −1 rows. */
function contiguousGroups(G: number, r: () => number): Int32Array {
  const out: number[] = [];
  for (let g = 0; g < G; g++) {
    const rows = (r() * 150) | 0;
    for (let i = 0; i < rows; i++) out.push(g);
    while (out.length % 128 !== 0) out.push(-1);
  }
  return Int32Array.from(out);
}

describe.skipIf(!loaded)('cpu GEMM entry points (addon, direct)', () => {
  const addon = loaded as Addon;

  // ---------------------------------------------------------------- bad arguments

  describe('bad arguments throw with a code and touch no memory', () => {
    // a valid 'none' call: M = 3, N = 5, K = 130 (KB = 2), bBlockRows 128
    const M = 3, N = 5, K = 130, KB = 2;
    const good = (): unknown[] => [
      new Uint8Array(M * K), new Float32Array(M * KB), new Uint8Array(N * K), new Float32Array(KB), M, N, K, 1, M, 128, 0, null, null, new Float32Array(M * N),
    ];
    const fp8 = (args: unknown[]): unknown => (addon.cpuGemmFp8 as (...x: unknown[]) => unknown)(...args);
    const fp8With = (i: number, v: unknown): unknown[] => {
      const args = good();
      args[i] = v;
      return args;
    };

    it('cpuGemmFp8', async () => {
      const cases: [string, unknown[], string][] = [
        ['too few arguments', good().slice(0, 13), 'E_ARG'],
        ['a is a Float32Array', fp8With(0, new Float32Array(M * K)), 'E_ARG'],
        ['a too short', fp8With(0, new Uint8Array(M * K - 1)), 'E_SHAPE'],
        ['aScales is a Uint8Array', fp8With(1, new Uint8Array(M * KB)), 'E_ARG'],
        ['aScales too short', fp8With(1, new Float32Array(M * KB - 1)), 'E_SHAPE'],
        ['b too short', fp8With(2, new Uint8Array(N * K - 1)), 'E_SHAPE'],
        ['bScales too short for bBlockRows 1', fp8With(9, 1), 'E_SHAPE'],
        ['bScales not an array', fp8With(3, [1, 2]), 'E_ARG'],
        ['M negative', fp8With(4, -1), 'E_ARG'],
        ['N fractional', fp8With(5, 2.5), 'E_ARG'],
        ['K NaN', fp8With(6, NaN), 'E_ARG'],
        ['K a string', fp8With(6, '130'), 'E_ARG'],
        ['M too large', fp8With(4, 2 ** 40), 'E_TOO_LARGE'],
        ['G = 0', fp8With(7, 0), 'E_ARG'],
        ['G = 2 in mode 0', fp8With(7, 2), 'E_ARG'],
        ['Mmax != M in mode 0', fp8With(8, M + 1), 'E_SHAPE'],
        ['bBlockRows 64', fp8With(9, 64), 'E_ARG'],
        ['mode 3', fp8With(10, 3), 'E_ARG'],
        ['mode -1', fp8With(10, -1), 'E_ARG'],
        ['mode 0.5', fp8With(10, 0.5), 'E_ARG'],
        ['rowGroups given in mode 0', fp8With(11, new Int32Array(M)), 'E_ARG'],
        ['c too short', fp8With(12, new Float32Array(M * N - 1)), 'E_SHAPE'],
        ['c a Uint16Array', fp8With(12, new Uint16Array(M * N)), 'E_ARG'],
        ['out an Int32Array', fp8With(13, new Int32Array(M * N)), 'E_ARG'],
        ['out too short', fp8With(13, new Float32Array(M * N - 1)), 'E_SHAPE'],
        ['out too short (bf16)', fp8With(13, new Uint16Array(M * N - 1)), 'E_SHAPE'],
      ];
      // contiguous (mode 1): G = 2, B [2, N, K], bScales [2, KB]
      const contiguous = (rowGroups: unknown, c: unknown = null): unknown[] => [
        new Uint8Array(M * K), new Float32Array(M * KB), new Uint8Array(2 * N * K), new Float32Array(2 * KB), M, N, K, 2, M, 128, 1, rowGroups, c, new Float32Array(M * N),
      ];
      cases.push(
        ['mode 1 without rowGroups', contiguous(null), 'E_ARG'],
        ['mode 1 rowGroups a Uint32Array', contiguous(new Uint32Array(M)), 'E_ARG'],
        ['mode 1 rowGroups too short', contiguous(new Int32Array(M - 1)), 'E_SHAPE'],
        ['mode 1 groupIndex = G', contiguous(Int32Array.from([0, 2, -1])), 'E_ARG'],
        ['mode 1 groupIndex = -2', contiguous(Int32Array.from([0, -2, 1])), 'E_ARG'],
        ['mode 1 with c', contiguous(Int32Array.from([0, 1, -1]), new Float32Array(M * N)), 'E_ARG'],
        ['mode 1 b too short for G', (() => { const x = contiguous(Int32Array.from([0, 1, -1])); x[2] = new Uint8Array(N * K); return x; })(), 'E_SHAPE'],
      );
      // masked (mode 2): G = 2, Mmax = 2, M = 4
      const masked = (maskedM: unknown, Mall = 4): unknown[] => [
        new Uint8Array(4 * K), new Float32Array(4 * KB), new Uint8Array(2 * N * K), new Float32Array(2 * KB), Mall, N, K, 2, 2, 128, 2, maskedM, null, new Float32Array(4 * N),
      ];
      cases.push(
        ['mode 2 M != G * Mmax', masked(Int32Array.from([1, 1]), 3), 'E_SHAPE'],
        ['mode 2 maskedM > Mmax', masked(Int32Array.from([1, 3])), 'E_ARG'],
        ['mode 2 maskedM < 0', masked(Int32Array.from([-1, 0])), 'E_ARG'],
        ['mode 2 maskedM too short', masked(new Int32Array(1)), 'E_SHAPE'],
      );
      for (const [what, args, code] of cases) {
        const e = await thrown(() => fp8(args));
        expect(e, what).toBeInstanceOf(Error);
        expect((e as { code?: string }).code, what).toBe(code);
      }
      // still alive, and a good call works
      const out = new Float32Array(M * N).fill(NaN);
      const args = good();
      args[13] = out;
      await fp8(args);
      expect(Array.from(out)).toEqual(new Array(M * N).fill(0));
    });

    it('cpuMatmul', async () => {
      const M = 4, N = 3, K = 5;
      const good = (): unknown[] => [new Float32Array(M * K), new Float32Array(K * N), M, N, K, false, false, null, new Float32Array(M * N)];
      const mm = (args: unknown[]): unknown => (addon.cpuMatmul as (...x: unknown[]) => unknown)(...args);
      const withArg = (i: number, v: unknown): unknown[] => {
        const args = good();
        args[i] = v;
        return args;
      };
      const cases: [string, unknown[], string][] = [
        ['too few arguments', good().slice(0, 8), 'E_ARG'],
        ['a a Uint8Array', withArg(0, new Uint8Array(M * K)), 'E_ARG'],
        ['b bf16 while a is f32', withArg(1, new Uint16Array(K * N)), 'E_ARG'],
        ['a too short', withArg(0, new Float32Array(M * K - 1)), 'E_SHAPE'],
        ['b too short', withArg(1, new Float32Array(K * N - 1)), 'E_SHAPE'],
        ['M negative', withArg(2, -3), 'E_ARG'],
        ['K too large', withArg(4, 2 ** 33), 'E_TOO_LARGE'],
        ['transA a number', withArg(5, 1), 'E_ARG'],
        ['transB undefined', withArg(6, undefined), 'E_ARG'],
        ['c too short', withArg(7, new Float32Array(M * N - 1)), 'E_SHAPE'],
        ['c bf16', withArg(7, new Uint16Array(M * N)), 'E_ARG'],
        ['out an Int32Array', withArg(8, new Int32Array(M * N)), 'E_ARG'],
        ['out too short', withArg(8, new Float32Array(M * N - 1)), 'E_SHAPE'],
        ['M * N far beyond out', [new Float32Array(1), new Float32Array(1), 2 ** 31 - 1, 2 ** 31 - 1, 0, false, false, null, new Float32Array(1)], 'E_SHAPE'],
      ];
      for (const [what, args, code] of cases) {
        const e = await thrown(() => mm(args));
        expect(e, what).toBeInstanceOf(Error);
        expect((e as { code?: string }).code, what).toBe(code);
      }
    });

    it('cpuTranspose', async () => {
      const tr = (...args: unknown[]): unknown => (addon.cpuTranspose as (...x: unknown[]) => unknown)(...args);
      const cases: [string, unknown[], string][] = [
        ['too few arguments', [new Float32Array(6), 2, 3], 'E_ARG'],
        ['x a Float64Array', [new Float64Array(6), 2, 3, new Float64Array(6)], 'E_ARG'],
        ['x not a typed array', [[1, 2, 3, 4, 5, 6], 2, 3, new Float32Array(6)], 'E_ARG'],
        ['out of another width', [new Float32Array(6), 2, 3, new Uint16Array(6)], 'E_ARG'],
        ['x too short', [new Uint8Array(5), 2, 3, new Uint8Array(6)], 'E_SHAPE'],
        ['out too short', [new Uint16Array(6), 2, 3, new Uint16Array(5)], 'E_SHAPE'],
        ['rows fractional', [new Uint16Array(6), 1.5, 4, new Uint16Array(6)], 'E_ARG'],
        ['rows * cols overflows', [new Uint8Array(1), 2 ** 40, 2 ** 40, new Uint8Array(1)], 'E_TOO_LARGE'],
      ];
      for (const [what, args, code] of cases) {
        const e = await thrown(() => tr(...args));
        expect(e, what).toBeInstanceOf(Error);
        expect((e as { code?: string }).code, what).toBe(code);
      }
    });

    it('cpuBlasSgemm', async () => {
      const sg = (...args: unknown[]): unknown => (addon.cpuBlasSgemm as (...x: unknown[]) => unknown)(...args);
      const cases: [string, unknown[], string][] = [
        ['too few arguments', [new Float32Array(6), new Float32Array(6), 2, 3, 3], 'E_ARG'],
        ['a bf16', [new Uint16Array(6), new Float32Array(9), 2, 3, 3, new Float32Array(6)], 'E_ARG'],
        ['a too short', [new Float32Array(5), new Float32Array(9), 2, 3, 3, new Float32Array(6)], 'E_SHAPE'],
        ['b too short', [new Float32Array(6), new Float32Array(8), 2, 3, 3, new Float32Array(6)], 'E_SHAPE'],
        ['out too short', [new Float32Array(6), new Float32Array(9), 2, 3, 3, new Float32Array(5)], 'E_SHAPE'],
        ['N too large', [new Float32Array(6), new Float32Array(9), 2, 2 ** 32, 3, new Float32Array(6)], 'E_TOO_LARGE'],
      ];
      for (const [what, args, code] of cases) {
        const e = await thrown(() => sg(...args));
        expect(e, what).toBeInstanceOf(Error);
        expect((e as { code?: string }).code, what).toBe(code);
      }
    });
  });

  // ---------------------------------------------------------------- against naive loops

  describe('results against a naive JS triple loop', () => {
    const seed = freshSeed();
    const r = rng(seed);

    async function checkFp8(t: Fp8Case, bf16: boolean): Promise<void> {
      const { M, N, K, G, Mmax, bBlockRows, mode, rowGroups } = t;
      const KB = Math.ceil(K / 128);
      const a = codes(M * K, r);
      const b = codes(G * N * K, r);
      const aS = scales(M * KB, r);
      const bS = scales((bBlockRows === 128 ? G * Math.ceil(N / 128) : G * N) * KB, r);
      const c = t.withC ? values(M * N, r) : null;
      // NaN codes in the rows that are written as zeros: they must not leak into the output
      if (mode === 1) for (let i = 0; i < M; i++) if (rowGroups![i]! < 0) a.fill(0x7f, i * K, (i + 1) * K);
      const out = poisoned(M * N, bf16);
      await addon.cpuGemmFp8(a, aS, b, bS, M, N, K, G, Mmax, bBlockRows, mode, rowGroups, c, out);
      const { d, bound } = fp8Reference(a, aS, b, bS, c, t);
      const i = firstOff(out, d, bound);
      const what = `seed ${seed}, ${JSON.stringify({ ...t, rowGroups: undefined })}, ${bf16 ? 'bf16' : 'f32'} out`;
      expect(i, `${what}: element ${i} = ${bf16 ? bf16ToF32(out[i]!) : out[i]}, expected ${d[i]}`).toBe(-1);
    }

    it('fp8, grouping none: ragged M, N, K, both scale layouts, with and without C, f32 and bf16 out', async () => {
      const shapes = [
        [1, 1, 1], [1, 37, 200], [7, 17, 129], [13, 33, 300], [6, 16, 256], [50, 70, 600], [5, 9, 0], [0, 4, 8], [3, 0, 8],
        [800, 9, 140], // more rows than one packed A block
        [5, 2100, 131], // more columns than one packed B panel
      ];
      for (const [M, N, K] of shapes) {
        for (const bBlockRows of [1, 128] as const) {
          for (const bf16 of [false, true]) {
            await checkFp8({ M: M!, N: N!, K: K!, G: 1, Mmax: M!, bBlockRows, mode: 0, rowGroups: null, withC: r() < 0.5 }, bf16);
          }
        }
      }
    });

    it('fp8, grouping contiguous: padded segments and an arbitrary row order', async () => {
      for (const bf16 of [false, true]) {
        for (const bBlockRows of [1, 128] as const) {
          const G = 3;
          const rowGroups = contiguousGroups(G, r);
          await checkFp8({ M: rowGroups.length, N: 19, K: 200, G, Mmax: rowGroups.length, bBlockRows, mode: 1, rowGroups, withC: false }, bf16);
          const M = 41;
          const mixed = Int32Array.from({ length: M }, () => ((r() * (G + 1)) | 0) - 1);
          await checkFp8({ M, N: 150, K: 129, G, Mmax: M, bBlockRows, mode: 1, rowGroups: mixed, withC: false }, bf16);
        }
      }
    });

    it('fp8, grouping masked: maskedM from 0 to Mmax', async () => {
      for (const bf16 of [false, true]) {
        for (const bBlockRows of [1, 128] as const) {
          const G = 4, Mmax = 13;
          const maskedM = Int32Array.from([0, Mmax, 5, (r() * (Mmax + 1)) | 0]);
          await checkFp8({ M: G * Mmax, N: 21, K: 300, G, Mmax, bBlockRows, mode: 2, rowGroups: maskedM, withC: false }, bf16);
        }
      }
    });

    it('fp8: a NaN code gives NaN in exactly the outputs it reaches', async () => {
      const M = 3, N = 4, K = 10;
      const a = new Uint8Array(M * K).fill(0x38); // 1.0
      const b = new Uint8Array(N * K).fill(0x38);
      a[1 * K + 3] = 0x7f; // row 1
      const out = new Float32Array(M * N);
      await addon.cpuGemmFp8(a, new Float32Array(M).fill(1), b, new Float32Array(1).fill(1), M, N, K, 1, M, 128, 0, null, null, out);
      for (let i = 0; i < M * N; i++) expect(Number.isNaN(out[i]), `element ${i}`).toBe(Math.floor(i / N) === 1);
    });

    it('matmul: f32 and bf16 inputs, every transpose, with and without C, f32 and bf16 out', async () => {
      for (const [M, N, K] of [[1, 1, 1], [7, 19, 33], [25, 40, 300], [4, 3, 0], [70, 2050, 9]]) {
        for (const inBf16 of [false, true]) {
          for (const transA of [false, true]) {
            for (const transB of [false, true]) {
              for (const outBf16 of [false, true]) {
                let a = values(M! * K!, r);
                let b = values(K! * N!, r);
                if (inBf16) {
                  // the inputs as bf16 values, so the reference sees exactly what the kernel reads
                  a = a.map((x) => bf16ToF32(f32ToBf16(x)));
                  b = b.map((x) => bf16ToF32(f32ToBf16(x)));
                }
                const c = r() < 0.5 ? values(M! * N!, r) : null;
                const d = new Float64Array(M! * N!);
                const bound = new Float64Array(M! * N!);
                for (let i = 0; i < M!; i++) {
                  for (let j = 0; j < N!; j++) {
                    let s = 0;
                    let abs = 0;
                    for (let k = 0; k < K!; k++) {
                      const x = (transA ? a[k * M! + i]! : a[i * K! + k]!) * (transB ? b[j * K! + k]! : b[k * N! + j]!);
                      s += x;
                      abs += Math.abs(x);
                    }
                    d[i * N! + j] = s + (c ? c[i * N! + j]! : 0);
                    bound[i * N! + j] = abs;
                  }
                }
                const out = poisoned(M! * N!, outBf16);
                const aIn = inBf16 ? Uint16Array.from(a, f32ToBf16) : a;
                const bIn = inBf16 ? Uint16Array.from(b, f32ToBf16) : b;
                await addon.cpuMatmul(aIn, bIn, M!, N!, K!, transA, transB, c, out);
                const i = firstOff(out, d, bound);
                const what = `seed ${seed}, M ${M} N ${N} K ${K}, ${inBf16 ? 'bf16' : 'f32'} in, transA ${transA}, transB ${transB}, c ${!!c}, ${outBf16 ? 'bf16' : 'f32'} out`;
                expect(i, `${what}: element ${i}`).toBe(-1);
              }
            }
          }
        }
      }
    });

    it('matmul over subnormal operands (a softmax gradient\'s far tail): flushed to zero, each result within K·2⁻¹²⁶·max|b| of the exact sum', async () => {
      // the cpu GEMM runs with FTZ/DAZ (common/simd.h FlushDenormals): on Intel cores every subnormal
      // operand costs a microcode assist, and such gradients ran 15× slower
      const [M, N, K] = [37, 45, 300];
      for (const transA of [false, true]) {
        const a = values(M * K, r);
        for (let i = 0; i < a.length; i++) if (r() < 0.5) a[i] = (r() - 0.5) * 2 ** -130; // subnormal f32 (or 0)
        const b = values(K * N, r);
        let bMax = 0;
        for (const x of b) bMax = Math.max(bMax, Math.abs(x));
        const d = new Float64Array(M * N), bound = new Float64Array(M * N);
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            let sum = 0, abs = 0;
            for (let k = 0; k < K; k++) {
              const x = (transA ? a[k * M + i]! : a[i * K + k]!) * b[j * K + k]!;
              sum += x;
              abs += Math.abs(x);
            }
            d[i * N + j] = sum;
            bound[i * N + j] = abs + (K * bMax * 2 ** -126) / TOL;
          }
        }
        const out = poisoned(M * N, false);
        await addon.cpuMatmul(a, b, M, N, K, transA, true, null, out);
        const i = firstOff(out, d, bound);
        expect(i, `seed ${seed}, transA ${transA}: element ${i} = ${out[i]}, expected ${d[i]}`).toBe(-1);
      }
    });

    it('transpose: 1-, 2- and 4-byte elements, ragged shapes, bit-exact', async () => {
      for (const [R, C] of [[1, 1], [1, 100], [100, 1], [37, 53], [64, 32], [70, 333]]) {
        for (const make of [(n: number) => new Uint8Array(n), (n: number) => new Uint16Array(n), (n: number) => new Float32Array(n), (n: number) => new Int32Array(n)]) {
          const x = make(R! * C!);
          const bits = new Uint8Array(x.buffer);
          for (let i = 0; i < bits.length; i++) bits[i] = (r() * 256) | 0;
          const out = make(R! * C!);
          new Uint8Array(out.buffer).fill(0xff);
          await addon.cpuTranspose(x, R!, C!, out);
          const width = x.BYTES_PER_ELEMENT;
          const get = (arr: ArrayBufferView, i: number): number => {
            const v = new DataView(arr.buffer, arr.byteOffset);
            return width === 1 ? v.getUint8(i) : width === 2 ? v.getUint16(i * 2, true) : v.getUint32(i * 4, true);
          };
          for (let i = 0; i < R!; i++) {
            for (let j = 0; j < C!; j++) {
              if (get(out, j * R! + i) !== get(x, i * C! + j)) expect.fail(`${x.constructor.name} [${R}, ${C}]: (${i}, ${j}) differs`);
            }
          }
        }
      }
    });

    it('OpenBLAS peer (when installed): a·bᵀ', async () => {
      const info = addon.cpuBlasInfo();
      if (info === '') {
        const e = await thrown(() => addon.cpuBlasSgemm(new Float32Array(1), new Float32Array(1), 1, 1, 1, new Float32Array(1)));
        expect((e as { code?: string }).code).toBe('E_BACKEND');
        return;
      }
      expect(info).toMatch(/OpenBLAS/);
      const M = 9, N = 21, K = 37;
      const a = values(M * K, r), b = values(N * K, r);
      const out = new Float32Array(M * N).fill(NaN);
      await addon.cpuBlasSgemm(a, b, M, N, K, out);
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0;
          let abs = 0;
          for (let k = 0; k < K; k++) {
            s += a[i * K + k]! * b[j * K + k]!;
            abs += Math.abs(a[i * K + k]! * b[j * K + k]!);
          }
          expect(Math.abs(out[i * N + j]! - s), `(${i}, ${j})`).toBeLessThanOrEqual(TOL * abs);
        }
      }
    });
  });
});

// ---------------------------------------------------------------- cuda: gathered A rows

// cudaGemmFp8's aPairs / aK / rowsA (src/ops/gemm.ts's opts.gather on cuda), called directly with
// device tensors: bad arguments throw with a code before any launch, then gathered calls against the
// naive loop above on the explicitly gathered A (fresh random codes, outputs poisoned with NaN).
// Tolerance 2e-3 · Σ|a·sa|·|b·sb| (the Hopper kernel's tensor cores, as tests/gemm.test.ts's TOL).
const cudaProbe = loaded ? await probeBackend('cuda') : { ok: false, reason: 'the addon did not load' };
const cudaSkip = cudaProbe.ok ? '' : cudaProbe.reason;
if (cudaSkip) console.warn(`[skip] cudaGemmFp8 with gathered A rows: ${cudaSkip}`);

describe.skipIf(cudaSkip !== '')(`cudaGemmFp8 with gathered A rows (addon, direct)${cudaSkip ? ` (skipped: ${cudaSkip})` : ''}`, () => {
  const addon = loaded as Addon;
  const seed = freshSeed();
  const r = rng(seed);

  /** Uploads host arrays to the cuda backend; returns the tensors (disposed by the caller's `free`). */
  async function upload(xs: [Uint8Array | Float32Array | Int32Array | Uint16Array, 'fp8e4m3' | 'f32' | 'i32' | 'bf16'][]): Promise<Tensor[]> {
    const cuda = await getBackend('cuda');
    return xs.map(([x, dt]) => cuda.fromHost(x, dt, [x.length]));
  }

  it('bad arguments throw with a code', async () => {
    // M = 256 rows gathered from rowsA = 4, K = 128, G = 1, N = 8, mode 1
    const M = 256, R = 4, K = 128, N = 8;
    const [a, aS, b, bS, gi, pairs, shortPairs, out] = await upload([
      [new Uint8Array(R * K), 'fp8e4m3'], [new Float32Array(R), 'f32'], [new Uint8Array(N * K), 'fp8e4m3'], [new Float32Array(1), 'f32'],
      [new Int32Array(M), 'i32'], [new Int32Array(M), 'i32'], [new Int32Array(64), 'i32'], [new Float32Array(M * N), 'f32'],
    ]);
    const good = (): unknown[] => [cudaPtr(a!), cudaPtr(aS!), cudaPtr(b!), cudaPtr(bS!), M, N, K, 1, M, 128, 1, cudaPtr(gi!), 0n, cudaPtr(out!), false, cudaPtr(pairs!), 8, R];
    const withArgs = (...kv: [number, unknown][]): unknown[] => {
      const x = good();
      for (const [i, v] of kv) x[i] = v;
      return x;
    };
    const cases: [string, unknown[], string][] = [
      ['17 arguments', good().slice(0, 17), 'E_ARG'],
      ['aPairs in mode 0', withArgs([10, 0], [11, 0n], [7, 1]), 'E_ARG'],
      ['aPairs in mode 2', withArgs([10, 2], [8, M]), 'E_ARG'],
      ['aK = 0', withArgs([16, 0]), 'E_ARG'],
      ['aK = 2^31', withArgs([16, 2 ** 31]), 'E_ARG'],
      ['aK fractional', withArgs([16, 1.5]), 'E_ARG'],
      ['aPairs too short for M', withArgs([15, cudaPtr(shortPairs!)]), 'E_SHAPE'],
      ['aPairs not an allocation', withArgs([15, 16n]), 'E_ARG'],
      ['a too short for rowsA', withArgs([17, 1000]), 'E_SHAPE'],
      ['rowsA too large', withArgs([17, 2 ** 40]), 'E_TOO_LARGE'],
      ['rowsA != M without aPairs', withArgs([15, 0n]), 'E_SHAPE'],
    ];
    for (const [what, args, code] of cases) {
      const e = await thrown(() => (addon.cudaGemmFp8 as (...x: unknown[]) => unknown)(...args));
      expect(e, what).toBeInstanceOf(Error);
      expect((e as { code?: string }).code, `${what}: ${(e as Error).message}`).toBe(code);
    }
    for (const t of [a, aS, b, bS, gi, pairs, shortPairs, out]) t!.dispose();
  });

  // [R, k, G, group sizes, N, K, bBlockRows, bf16]: K % 16 == 0 takes the Hopper kernel (cp.async
  // gather) where the GPU has it, K = 200 the SIMT kernel; R = 0: every row reads zeros
  for (const [R, k, sizes, N, K, bBlockRows, bf16] of [
    [100, 8, [300, 0, 5, 128], 200, 1040, 128, true],
    [37, 3, [129, 64], 136, 2048, 1, false],
    [64, 1, [200], 64, 200, 128, false],
    [0, 8, [10], 16, 256, 1, false],
  ] as const) {
    it(`gathered: R = ${R}, k = ${k}, groups ${JSON.stringify(sizes)}, N = ${N}, K = ${K}, bBlockRows ${bBlockRows}, ${bf16 ? 'bf16' : 'f32'} out`, async () => {
      const G = sizes.length;
      const KB = Math.ceil(K / 128);
      const groups: number[] = [];
      sizes.forEach((n, g) => { for (let i = 0; i < Math.ceil(n / 128) * 128; i++) groups.push(i < n ? g : -1); });
      const M = groups.length;
      const rowGroups = Int32Array.from(groups);
      const a = codes(R * K, r), aS = scales(R * KB, r);
      const b = codes(G * N * K, r), bS = scales((bBlockRows === 128 ? G * Math.ceil(N / 128) : G * N) * KB, r);
      // pair ids with repeats and ids outside [0, R·k), 11 more never read; the explicitly gathered A
      const pairs = gatherPairs(r, rowGroups, R, k, 11);
      const { codes: ga, scales: gaS } = gatherRowsHost(a, aS, K, pairs, M, k);
      const t: Fp8Case = { M, N, K, G, Mmax: M, bBlockRows, mode: 1, rowGroups, withC: false };
      const { d, bound } = fp8Reference(ga, gaS, b, bS, null, t);
      const host = poisoned(M * N, bf16);
      const ts = await upload([[a, 'fp8e4m3'], [aS, 'f32'], [b, 'fp8e4m3'], [bS, 'f32'], [rowGroups, 'i32'], [pairs, 'i32'], [host, bf16 ? 'bf16' : 'f32']]);
      const [ta, taS, tb, tbS, tgi, tp, tout] = ts as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
      addon.cudaGemmFp8(cudaPtr(ta), cudaPtr(taS), cudaPtr(tb), cudaPtr(tbS), M, N, K, G, M, bBlockRows, 1, cudaPtr(tgi), 0n, cudaPtr(tout), bf16, cudaPtr(tp), k, R);
      const out = (await tout.read()) as Float32Array | Uint16Array;
      const i = firstOff(out, d, bound, 2e-3);
      expect(i, `seed ${seed}: element ${i} = ${bf16 ? bf16ToF32(out[i]!) : out[i]}, expected ${d[i]}`).toBe(-1);
      // rows that read zeros (padding, ids outside) are exact zeros
      for (let m = 0; m < M; m++) {
        const id = pairs[m]!;
        if (rowGroups[m] !== -1 && id >= 0 && id < R * k) continue;
        for (let n = 0; n < N; n++) if ((bf16 ? bf16ToF32(out[m * N + n]!) : out[m * N + n]) !== 0) expect.fail(`seed ${seed}: row ${m} (pair ${id}) element ${n} is not 0`);
      }
      ts.forEach((x) => x.dispose());
    });
  }
});
