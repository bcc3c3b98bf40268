// gemm: the reference against hand-worked cases, an f64 product of the dequantized inputs and
// DeepGEMM's diff metric against the unquantized fp32 product; then every backend against the
// reference (normal, grouped-contiguous, grouped-masked, matmul, transpose, the FP8 backward recipe)
// on fresh random inputs with poisoned outputs, and bad inputs.
//
// Tolerances, per element: |D − ref| ≤ tol · S + one bf16 ulp for bf16 output, where S = Σ_k |a·sa|·|b·sb| (the
// sum of the products' magnitudes; any reordering of an f32 sum stays within K·2⁻²⁴·S):
//   f32 FMA paths (reference order vs cpu, webgpu): tol = 2e-6 ... K·2⁻²⁴ for the largest K here
//   cuda (tensor cores, whose accumulator inside a 128-K block keeps fewer bits): tol = 2e-3 — see
//     TOL below; the diff metric against the unquantized product (< 1e-3) applies to all.
// matmul: its own bound, matmulTol below (bf16 inputs on cuda take the tensor cores).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fp8, gemm, HotpathsError, init, setPoison, fromBf16, toBf16, type Tensor } from '../src/index.js';
import type { QuantizedTensor } from '../src/ops/fp8.js';
import { sliceRows } from '../src/tensor.js';
import type { Backend, BackendName } from '../src/runtime/backend.js';
import type { WebGPUBackend } from '../src/webgpu/backend.js';
import { decodeValue, encodeValue } from '../src/reference/fp8.js';
import { backendsUnderTest, expectWithinDivisionSlack, firstBitDiff, freshSeed, gatherPairs, gatherRowsHost, randomF32, rng } from './helpers.js';

const show = (v: unknown) => JSON.stringify(v);
const ref = await init({ backend: 'reference' });
const under = await backendsUnderTest();

beforeAll(() => setPoison(true));
afterAll(() => setPoison(false));

/** Per-element tolerance factor on S (see the header). */
const TOL: Record<BackendName, number> = { reference: 0, cpu: 1e-5, webgpu: 1e-5, cuda: 2e-3 };

/**
 * matmul's per-element tolerance factor on S = Σ_k |a·b| (+ |c|). f32 FMA chains (f32 inputs
 * everywhere, bf16 on cpu and webgpu): 1e-5. bf16 inputs on cuda take the tensor cores (mma.sync,
 * f32 accumulation; ragged layouts fall back to the f32 chain, which the bound also covers): a
 * product of two bf16 is exact in f32, so only the order and rounding of the sum differ from the
 * reference's K-order f32 sum. That sum of K + 1 terms is within K·2⁻²⁴·S of the exact one (round to
 * nearest); the tensor cores' within K·2⁻²³·S (their accumulation truncates the aligned addends,
 * Fasi et al. 2021), plus up to 32 more additions when the launcher splits K (an ordered reduction
 * of f32 partial sums). (K + 32)·2⁻²² = (2K + 64)·2⁻²³ covers both. At K = 7168 that is 1.7e-3;
 * measured on an H200, the largest error was 0.13·K·2⁻²⁴·S (native/cuda/dev/NOTES.md).
 */
function matmulTol(name: BackendName, dt: 'f32' | 'bf16', K: number): number {
  return name === 'cuda' && dt === 'bf16' ? (K + 32) * 2 ** -22 : 1e-5;
}

const E4M3 = Float64Array.from({ length: 256 }, (_, c) => decodeValue(c, 'e4m3'));

/** DeepGEMM's metric: 1 − 2Σxy / Σ(x² + y²) in f64 (0 when both are 0). */
function diff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let xy = 0, xx = 0;
  for (let i = 0; i < x.length; i++) {
    xy += x[i]! * y[i]!;
    xx += x[i]! * x[i]! + y[i]! * y[i]!;
  }
  return xx === 0 ? 0 : 1 - (2 * xy) / xx;
}

async function values(t: Tensor): Promise<Float32Array> {
  const h = await t.read();
  return t.dtype === 'bf16' ? fromBf16(h as Uint16Array) : (h as Float32Array);
}

/** Host copies of a quantized operand: decoded codes (f64) and scales, as [rows, K] / [rows, KB]. */
async function hostQ(q: QuantizedTensor): Promise<{ v: Float64Array; s: Float32Array }> {
  const d = (await q.data.read()) as Uint8Array;
  return { v: Float64Array.from(d, (c) => E4M3[c]!), s: (await q.scales.read()) as Float32Array };
}

/**
 * f64 product of the dequantized operands and S = Σ|terms| per element, for every grouping.
 * groupOf(r) gives row r's B matrix or −1 (zero row).
 */
async function f64Product(a: QuantizedTensor, b: QuantizedTensor, M: number, N: number, K: number, groupOf: (r: number) => number, c?: Float32Array) {
  const A = await hostQ(a);
  const B = await hostQ(b);
  const KB = Math.ceil(K / 128);
  const NB = Math.ceil(N / 128);
  const bRows128 = b.block[0] === 128;
  const exact = new Float64Array(M * N);
  const S = new Float64Array(M * N);
  for (let r = 0; r < M; r++) {
    const g = groupOf(r);
    if (g < 0) continue;
    for (let n = 0; n < N; n++) {
      let sum = 0, mag = 0;
      const sb = bRows128 ? g * NB + Math.floor(n / 128) : g * N + n;
      for (let k = 0; k < K; k++) {
        const t = A.v[r * K + k]! * A.s[r * KB + (k >> 7)]! * B.v[(g * N + n) * K + k]! * B.s[sb * KB + (k >> 7)]!;
        sum += t;
        mag += Math.abs(t);
      }
      exact[r * N + n] = sum + (c ? c[r * N + n]! : 0);
      S[r * N + n] = mag + (c ? Math.abs(c[r * N + n]!) : 0);
    }
  }
  return { exact, S };
}

/** Every element within tol·S (+ bf16 rounding of the value); NaN never passes. Returns the first failure. */
function firstOutside(got: Float32Array, want: ArrayLike<number>, S: ArrayLike<number>, tol: number, bf16: boolean): string | null {
  for (let i = 0; i < got.length; i++) {
    const w = want[i]!;
    const bound = tol * S[i]! + (bf16 ? Math.abs(w) * 2 ** -7 : 0) + 1e-30; // bf16: one ulp (two results on either side of a rounding boundary)
    if (!(Math.abs(got[i]! - w) <= bound)) return `element ${i}: got ${got[i]}, want ${w} (bound ${bound})`;
  }
  return null;
}

async function moveQ(q: QuantizedTensor, backend: BackendName): Promise<QuantizedTensor> {
  return { ...q, data: await q.data.to(backend), scales: await q.scales.to(backend) };
}

/** Random E4M3 operand: x of `shape` with magnitudes over `decades`, quantized on the reference. */
async function randomQ(shape: number[], block: 1 | 128, r: () => number, decades = 2): Promise<{ x: Float32Array; q: QuantizedTensor }> {
  const n = shape.reduce((p, d) => p * d, 1);
  const x = randomF32(n, r, 1, decades);
  const q = await fp8.quantize(ref.tensor(x, shape), { block: [block, 128] });
  return { x, q };
}

// ---------------------------------------------------------------- the reference

describe('gemm.fp8 (reference)', () => {
  it('matches a hand-worked case with two K blocks of different scales (promotion per 128 K)', async () => {
    // K = 130: block 0 holds k = 0..127, block 1 holds k = 128, 129.
    const K = 130;
    const a = new Uint8Array(K);
    const b = new Uint8Array(2 * K);
    a[0] = encodeValue(1, 'e4m3'); a[1] = encodeValue(2, 'e4m3'); a[128] = encodeValue(-0.5, 'e4m3'); a[129] = encodeValue(3, 'e4m3');
    b[0] = encodeValue(0.5, 'e4m3'); b[1] = encodeValue(1, 'e4m3'); b[128] = encodeValue(4, 'e4m3'); b[129] = encodeValue(0.25, 'e4m3');
    b[K + 0] = encodeValue(-1, 'e4m3'); b[K + 129] = encodeValue(2, 'e4m3');
    const qa: QuantizedTensor = { data: ref.tensor(a, [1, K], 'fp8e4m3'), scales: ref.tensor(new Float32Array([2, 0.25]), [1, 2]), format: 'e4m3', block: [1, 128], ue8m0: false, shape: [1, K] };
    const qb: QuantizedTensor = { data: ref.tensor(b, [2, K], 'fp8e4m3'), scales: ref.tensor(new Float32Array([0.5, 8]), [1, 2]), format: 'e4m3', block: [128, 128], ue8m0: false, shape: [2, K] };
    const d = (await (await gemm.fp8(qa, qb, { out: 'f32' })).read()) as Float32Array;
    // n = 0: block 0 (1·0.5 + 2·1)·2·0.5 = 2.5; block 1 (−0.5·4 + 3·0.25)·0.25·8 = −2.5 → 0
    // n = 1: block 0 (1·−1)·1 = −1; block 1 (3·2)·2 = 12 → 11
    expect([...d]).toEqual([0, 11]);
    const c = ref.tensor(new Float32Array([1.5, -1]), [1, 2]);
    expect([...((await (await gemm.fp8(qa, qb, { out: 'f32', c })).read()) as Float32Array)]).toEqual([1.5, 10]);
    expect([...fromBf16((await (await gemm.fp8(qa, qb, { c })).read()) as Uint16Array)]).toEqual([1.5, 10]);
  });

  for (const [M, N, K] of [[1, 1, 1], [3, 130, 257], [64, 96, 384], [130, 257, 200], [4096, 48, 256]] as const) {
    it(`[${M}, ${N}, ${K}]: equals the f64 product of the dequantized inputs, diff < 1e-3 against the unquantized fp32 product`, async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const A = await randomQ([M, K], 1, r);
      const B = await randomQ([N, K], 128, r);
      const d = await values(await gemm.fp8(A.q, B.q, { out: 'f32' }));
      const { exact, S } = await f64Product(A.q, B.q, M, N, K, () => 0);
      expect(firstOutside(d, exact, S, 2 ** -22 * Math.ceil(K / 128) + 2 ** -23, false), `seed ${seed}`).toBeNull();
      const fp32 = new Float64Array(M * N);
      for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += A.x[m * K + k]! * B.x[n * K + k]!;
        fp32[m * N + n] = s;
      }
      expect(diff(d, fp32), `seed ${seed}`).toBeLessThan(1e-3);
    });
  }

  it('bf16 output is the f32 output rounded to nearest even', async () => {
    const r = rng(freshSeed());
    const A = await randomQ([7, 300], 1, r);
    const B = await randomQ([33, 300], 128, r);
    const f = (await (await gemm.fp8(A.q, B.q, { out: 'f32' })).read()) as Float32Array;
    const h = (await (await gemm.fp8(A.q, B.q)).read()) as Uint16Array;
    expect([...h]).toEqual([...toBf16(f)]);
  });

  it('fp8GroupedContiguous skips padding rows whatever they hold: NaN codes and NaN/Inf scales there change no bit', async () => {
    const r = rng(freshSeed());
    const gi = contiguousIndex([130, 0, 1, 64]);
    const M = gi.length;
    const A = await randomQ([M, 300], 1, r);
    const B = await randomQ([4, 136, 300], 1, r);
    const g = ref.tensor(gi, [M], 'i32');
    const want = (await (await gemm.fp8GroupedContiguous(A.q, B.q, g, { out: 'f32' })).read()) as Float32Array;
    const got = (await (await gemm.fp8GroupedContiguous(await poisonPadding(A.q, gi), B.q, g, { out: 'f32' })).read()) as Float32Array;
    expect(firstBitDiff(got, want)).toBe(-1);
    for (let m = 0; m < M; m++) if (gi[m] === -1) expect(got[m * 136]).toBe(0);
  });

  it('fp8GroupedContiguous with gathered A rows: a hand-worked case (pair ids, a sentinel, a padding row, a longer pairs)', async () => {
    // a: R = 3 rows, K = 4, k = 2 slots a row: pair id p reads row floor(p / 2); 6 = R·k is the sentinel
    const e = (v: number) => encodeValue(v, 'e4m3');
    const a = Uint8Array.from([e(1), e(2), 0, 0, e(0.5), 0, 0, e(-1), e(2), e(2), e(2), e(2)]);
    const qa: QuantizedTensor = { data: ref.tensor(a, [3, 4], 'fp8e4m3'), scales: ref.tensor(new Float32Array([1, 2, 0.25]), [3, 1]), format: 'e4m3', block: [1, 128], ue8m0: false, shape: [3, 4] };
    // b: G = 1, N = 2, 1×128 scales, both 2
    const b = Uint8Array.from([e(1), e(1), e(1), e(1), e(1), e(-1), e(0.5), 0]);
    const qb: QuantizedTensor = { data: ref.tensor(b, [1, 2, 4], 'fp8e4m3'), scales: ref.tensor(new Float32Array([2, 2]), [1, 2, 1]), format: 'e4m3', block: [1, 128], ue8m0: false, shape: [1, 2, 4] };
    const gi = ref.tensor(Int32Array.from([0, 0, 0, 0, -1]), [5], 'i32');
    // rows: pair 5 -> a row 2; 0 -> row 0; 6 -> zeros; 3 -> row 1; 1 -> row 0 (a padding row: zeros); the 7th id is never read
    const pairs = ref.tensor(Int32Array.from([5, 0, 6, 3, 1, 2, -9]), [7], 'i32');
    const d = (await (await gemm.fp8GroupedContiguous(qa, qb, gi, { out: 'f32', gather: { pairs, k: 2 } })).read()) as Float32Array;
    // row 0: a row 2 (scale 0.25): n0 (2+2+2+2)·0.25·2 = 4, n1 (2−2+1+0)·0.5 = 0.5
    // row 1: a row 0 (scale 1): n0 (1+2)·2 = 6, n1 (1−2)·2 = −2
    // row 3: a row 1 (scale 2): n0 (0.5−1)·4 = −2, n1 (0.5)·4 = 2
    expect([...d]).toEqual([4, 0.5, 6, -2, 0, 0, -2, 2, 0, 0]);
  });

  it('fp8GroupedContiguous with a gather equals the call on the explicitly gathered A, bit for bit', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    const g = await gatheredCase(r, 40, 3, [150, 0, 33], 300);
    const B = await randomQ([3, 70, 300], 1, r);
    for (const out of ['f32', 'bf16'] as const) {
      const want = await (await gemm.fp8GroupedContiguous(g.explicit, B.q, ref.tensor(g.gi, [g.M], 'i32'), { out })).read();
      const got = await (await gemm.fp8GroupedContiguous(g.source, B.q, ref.tensor(g.gi, [g.M], 'i32'), { out, gather: { pairs: ref.tensor(g.pairs, [g.pairs.length], 'i32'), k: g.k } })).read();
      expect(firstBitDiff(got, want), `seed ${seed} ${out}`).toBe(-1);
    }
  });
});

describe('gemm.matmul and gemm.transpose (reference)', () => {
  it('every layout equals the f64 product within K·2⁻²⁴·Σ|ab|; bf16 inputs are widened exactly', async () => {
    const r = rng(freshSeed());
    const [M, N, K] = [9, 17, 65];
    const a = randomF32(M * K, r), b = randomF32(K * N, r), c = randomF32(M * N, r);
    for (const transA of [false, true]) for (const transB of [false, true]) {
      const at = ref.tensor(a, transA ? [K, M] : [M, K]);
      const bt = ref.tensor(b, transB ? [N, K] : [K, N]);
      const d = (await (await gemm.matmul(at, bt, { transA, transB, c: ref.tensor(c, [M, N]) })).read()) as Float32Array;
      for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
        let s = c[m * N + n]!, mag = Math.abs(s);
        for (let k = 0; k < K; k++) {
          const t = (transA ? a[k * M + m]! : a[m * K + k]!) * (transB ? b[n * K + k]! : b[k * N + n]!);
          s += t;
          mag += Math.abs(t);
        }
        expect(Math.abs(d[m * N + n]! - s)).toBeLessThanOrEqual((K + 1) * 2 ** -24 * mag);
      }
    }
    const ab = ref.tensor(toBf16(a), [M, K], 'bf16');
    const bb = ref.tensor(toBf16(b), [N, K], 'bf16');
    const viaF32 = await gemm.matmul(ref.tensor(fromBf16(toBf16(a)), [M, K]), ref.tensor(fromBf16(toBf16(b)), [N, K]));
    expect([...((await (await gemm.matmul(ab, bb)).read()) as Float32Array)]).toEqual([...((await viaF32.read()) as Float32Array)]);
  });

  it('transpose moves elements of every width', async () => {
    const x = new Int32Array([1, 2, 3, 4, 5, 6]);
    expect([...((await (await gemm.transpose(ref.tensor(x, [2, 3]))).read()) as Int32Array)]).toEqual([1, 4, 2, 5, 3, 6]);
  });
});

describe('fp8.quantize: stacks and transposed operands (reference)', () => {
  it('a [G, M, K] stack quantizes each matrix alone; transpose: true quantizes xᵀ', async () => {
    const r = rng(freshSeed());
    const [G, M, K] = [3, 128, 200];
    const x = randomF32(G * M * K, r, 1, 3);
    const q = await fp8.quantize(ref.tensor(x, [G, M, K]), { block: [128, 128] });
    expect(q.scales.shape).toEqual([G, 1, 2]);
    for (let g = 0; g < G; g++) {
      const one = await fp8.quantize(ref.tensor(x.subarray(g * M * K, (g + 1) * M * K), [M, K]), { block: [128, 128] });
      expect([...((await q.data.read()) as Uint8Array).subarray(g * M * K, (g + 1) * M * K)]).toEqual([...((await one.data.read()) as Uint8Array)]);
      expect([...((await q.scales.read()) as Float32Array).subarray(g * 2, g * 2 + 2)]).toEqual([...((await one.scales.read()) as Float32Array)]);
    }
    const x2 = randomF32(5 * 130, r);
    const xt = new Float32Array(130 * 5);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 130; j++) xt[j * 5 + i] = x2[i * 130 + j]!;
    const qt = await fp8.quantize(ref.tensor(x2, [5, 130]), { transpose: true });
    const want = await fp8.quantize(ref.tensor(xt, [130, 5]));
    expect(qt.shape).toEqual([130, 5]);
    expect([...((await qt.data.read()) as Uint8Array)]).toEqual([...((await want.data.read()) as Uint8Array)]);
    await expect(fp8.quantize(ref.tensor(new Float32Array(2 * 64 * 128), [2, 64, 128]), { block: [128, 128] })).rejects.toMatchObject({ code: 'E_SHAPE' });
  });
});

// ---------------------------------------------------------------- every backend against the reference

/** Contiguous layout: groups of `sizes` rows, each padded to a multiple of 128 with −1 rows. */
function contiguousIndex(sizes: number[]): Int32Array {
  const gi: number[] = [];
  sizes.forEach((s, g) => {
    const padded = Math.ceil(s / 128) * 128;
    for (let i = 0; i < padded; i++) gi.push(i < s ? g : -1);
  });
  for (let i = 0; i < 128; i++) gi.push(-1); // one all-padding block at the end
  return Int32Array.from(gi);
}

/**
 * A gathered grouped-contiguous case on the reference: source a [R, K] (1×128 scales, random; R may be
 * 0), groupIndex [M] (contiguousIndex(sizes)), pairs i32 [M + 37] (gatherPairs: repeats, ids outside
 * [0, R·k), a tail never read); explicit: the gathered A built on the host (gatherRowsHost).
 */
async function gatheredCase(r: () => number, R: number, k: number, sizes: number[], K: number) {
  const gi = contiguousIndex(sizes);
  const M = gi.length;
  const KB = Math.ceil(K / 128);
  const q = (c: Uint8Array, sc: Float32Array, rows: number): QuantizedTensor =>
    ({ data: ref.tensor(c, [rows, K], 'fp8e4m3'), scales: ref.tensor(sc, [rows, KB]), format: 'e4m3', block: [1, 128], ue8m0: false, shape: [rows, K] });
  const source = R > 0 ? (await randomQ([R, K], 1, r)).q : q(new Uint8Array(0), new Float32Array(0), 0);
  const pairs = gatherPairs(r, gi, R, k, 37);
  const g = gatherRowsHost((await source.data.read()) as Uint8Array, (await source.scales.read()) as Float32Array, K, pairs, M, k);
  return { gi, M, k, pairs, source, explicit: q(g.codes, g.scales, M) };
}

/**
 * q with its padding rows (groupIndex −1) poisoned: codes NaN (0x7F / 0xFF alternating) and scales NaN,
 * +Inf or −Inf by row. The grouped-contiguous contract skips those rows, whatever they hold
 * (REFERENCE.md; dispatch's expertX leaves them unwritten over the symmetric windows).
 */
async function poisonPadding(q: QuantizedTensor, gi: Int32Array): Promise<QuantizedTensor> {
  const [M, K] = q.shape as [number, number];
  const KB = q.scales.shape[1]!;
  const codes = new Uint8Array((await q.data.read()) as Uint8Array);
  const scales = new Float32Array((await q.scales.read()) as Float32Array);
  const bad = [NaN, Infinity, -Infinity];
  for (let m = 0; m < M; m++) {
    if (gi[m] !== -1) continue;
    for (let k = 0; k < K; k++) codes[m * K + k] = k % 2 === 0 ? 0x7f : 0xff;
    scales.fill(bad[m % 3]!, m * KB, (m + 1) * KB);
  }
  return { ...q, data: ref.tensor(codes, [M, K], 'fp8e4m3'), scales: ref.tensor(scales, [M, KB]) };
}

for (const u of under) {
  const run = u.skip ? describe.skip : describe;
  if (u.skip) console.warn(`[skip] gemm on ${u.name}: ${u.skip}`);
  run(`gemm on ${u.name} against the reference`, () => {
    const b = u.backend as Backend;
    const name = u.name;
    const tol = TOL[name];
    if (!b?.gemm) {
      it('has GEMM kernels', () => expect.fail(`the ${name} backend has no gemm kernels`));
      return;
    }

    it('fp8.quantize of a [G, M, K] stack and of xᵀ equals the reference', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const x = randomF32(3 * 128 * 200, r, 1, 3);
      const xT = new Float32Array(x.length); // [200, 384]: what the transposed case quantizes
      for (let i = 0; i < 384; i++) for (let k = 0; k < 200; k++) xT[k * 384 + i] = x[i * 200 + k]!;
      for (const [shape, opts] of [[[3, 128, 200], { block: [128, 128] }], [[3, 128, 200], { block: [1, 128] }], [[384, 200], { block: [1, 128], transpose: true }]] as const) {
        const tag = `seed ${seed} ${show(shape)} ${JSON.stringify(opts)}`;
        const want = await fp8.quantize(ref.tensor(x, shape), opts);
        const got = await fp8.quantize(await ref.tensor(x, shape).to(name), opts);
        expect(got.shape).toEqual(want.shape);
        expect(got.scales.shape).toEqual(want.scales.shape);
        const [dg, dw] = [(await got.data.read()) as Uint8Array, (await want.data.read()) as Uint8Array];
        const [sg, sw] = [(await got.scales.read()) as Float32Array, (await want.scales.read()) as Float32Array];
        if (name === 'webgpu') {
          // a real GPU's f32 division may land one step away at an fp8 rounding midpoint (tests/fp8.test.ts)
          const transposed = 'transpose' in opts;
          expectWithinDivisionSlack(tag, transposed ? xT : x, transposed ? 200 : 384, transposed ? 384 : 200, opts.block[0], 'e4m3', sw, sg, dw, dg);
        } else {
          expect(Buffer.from(dg.buffer, dg.byteOffset, dg.byteLength).equals(Buffer.from(dw.buffer, dw.byteOffset, dw.byteLength)), tag).toBe(true);
          expect([...sg], tag).toEqual([...sw]);
        }
      }
    });

    for (const [M, N, K, bBlock, out, withC] of [
      [1, 64, 128, 128, 'bf16', false],
      [64, 200, 7168, 128, 'bf16', false],
      [128, 256, 1000, 128, 'f32', true],
      [130, 257, 333, 128, 'f32', false],
      [4096, 64, 256, 128, 'bf16', false],
      [33, 70, 259, 1, 'f32', true],
      [5, 3, 7, 128, 'f32', false],
    ] as const) {
      it(`fp8 [${M}, ${N}, ${K}], B ${bBlock}×128, ${out}${withC ? ' + C' : ''}`, async () => {
        const seed = freshSeed();
        const r = rng(seed);
        const A = await randomQ([M, K], 1, r);
        const B = await randomQ([N, K], bBlock, r);
        const cHost = withC ? randomF32(M * N, r) : undefined;
        const opts = { out, ...(cHost ? { c: ref.tensor(cHost, [M, N]) } : {}) };
        const want = await values(await gemm.fp8(A.q, B.q, opts));
        const optsB = { out, ...(cHost ? { c: await ref.tensor(cHost, [M, N]).to(name) } : {}) };
        const got = await values(await gemm.fp8(await moveQ(A.q, name), await moveQ(B.q, name), optsB));
        const { S } = await f64Product(A.q, B.q, M, N, K, () => 0, cHost);
        expect(firstOutside(got, want, S, tol, out === 'bf16'), `seed ${seed}`).toBeNull();
        const fp32 = new Float64Array(M * N);
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
          let s = cHost ? cHost[m * N + n]! : 0;
          for (let k = 0; k < K; k++) s += A.x[m * K + k]! * B.x[n * K + k]!;
          fp32[m * N + n] = s;
        }
        // DeepGEMM's metric is a statistic: on a few dozen outputs quantization noise alone can pass 1e-3
        if (M * N >= 10_000) expect(diff(got, fp32), `seed ${seed}`).toBeLessThan(1e-3);
      });
    }

    it('fp8GroupedContiguous (B 1×128, N = 136): empty groups, a 1-row group, ragged segments, all-padding blocks (padding rows are zeros)', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const [G, N, K] = [5, 136, 300];
      const gi = contiguousIndex([130, 0, 1, 300, 64]);
      const M = gi.length;
      const A = await randomQ([M, K], 1, r);
      const B = await randomQ([G, N, K], 1, r); // 1×128 B scales: a ragged N is allowed for a stack
      const Nb = N;
      const want = await values(await gemm.fp8GroupedContiguous(A.q, B.q, ref.tensor(gi, [M], 'i32'), { out: 'f32' }));
      const got = await values(await gemm.fp8GroupedContiguous(await moveQ(A.q, name), await moveQ(B.q, name), await ref.tensor(gi, [M], 'i32').to(name), { out: 'f32' }));
      const { S } = await f64Product(A.q, B.q, M, Nb, K, (row) => gi[row]!);
      expect(firstOutside(got, want, S, tol, false), `seed ${seed}`).toBeNull();
      for (let row = 0; row < M; row++) if (gi[row] === -1) expect(got[row * Nb]).toBe(0);
    });

    it('fp8GroupedContiguous with NaN codes and NaN/Inf scales in A\'s padding rows: the same result, padding rows exact zeros', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const [G, N, K] = [4, 256, 1040];
      const gi = contiguousIndex([130, 0, 1, 200]);
      const M = gi.length;
      const A = await randomQ([M, K], 1, r);
      const B = await randomQ([G, N, K], 128, r);
      const g = ref.tensor(gi, [M], 'i32');
      const want = await values(await gemm.fp8GroupedContiguous(A.q, B.q, g, { out: 'f32' }));
      const got = await values(await gemm.fp8GroupedContiguous(await moveQ(await poisonPadding(A.q, gi), name), await moveQ(B.q, name), await g.to(name), { out: 'f32' }));
      const { S } = await f64Product(A.q, B.q, M, N, K, (row) => gi[row]!);
      expect(firstOutside(got, want, S, tol, false), `seed ${seed}`).toBeNull();
      for (let m = 0; m < M; m++) {
        if (gi[m] !== -1) continue;
        for (let n = 0; n < N; n++) if (got[m * N + n] !== 0) expect.fail(`seed ${seed}: padding row ${m} element ${n} = ${got[m * N + n]}, want 0`);
      }
    });

    // gathered A rows (opts.gather): [R, k, group sizes, N, K, B block, out]. K = 300 is not a multiple
    // of 16 (cuda: the SIMT kernel), 1040 and 256 are (cuda: the Hopper kernel's cp.async gather);
    // R = 0: every id is outside, every row zero
    for (const [R, k, sizes, N, K, bBlock, out] of [
      [50, 4, [130, 0, 77], 136, 300, 1, 'f32'],
      [300, 8, [256, 3, 129, 64], 256, 1040, 128, 'bf16'],
      [7, 1, [1, 200], 128, 256, 128, 'f32'],
      [333, 3, [129], 72, 1040, 1, 'bf16'],
      [0, 8, [5, 40], 32, 256, 1, 'f32'],
    ] as const) {
      it(`fp8GroupedContiguous, gathered A: R = ${R}, k = ${k}, groups ${show(sizes)}, N = ${N}, K = ${K}, B ${bBlock}×128, ${out}`, async () => {
        const seed = freshSeed();
        const r = rng(seed);
        const g = await gatheredCase(r, R, k, [...sizes], K);
        const G = sizes.length;
        const B = await randomQ([G, N, K], bBlock, r);
        const gi = ref.tensor(g.gi, [g.M], 'i32');
        const want = await values(await gemm.fp8GroupedContiguous(g.explicit, B.q, gi, { out }));
        const got = await values(await gemm.fp8GroupedContiguous(await moveQ(g.source, name), await moveQ(B.q, name), await gi.to(name), {
          out, gather: { pairs: await ref.tensor(g.pairs, [g.pairs.length], 'i32').to(name), k },
        }));
        const { S } = await f64Product(g.explicit, B.q, g.M, N, K, (row) => g.gi[row]!);
        const tag = `seed ${seed}`;
        expect(firstOutside(got, want, S, tol, out === 'bf16'), tag).toBeNull();
        // padding rows and rows whose pair id is outside [0, R·k): exact zeros (the outputs were poisoned)
        for (let m = 0; m < g.M; m++) {
          const id = g.pairs[m]!;
          if (g.gi[m] !== -1 && id >= 0 && id < R * k) continue;
          for (let n = 0; n < N; n++) if (got[m * N + n] !== 0) expect.fail(`${tag}: row ${m} (group ${g.gi[m]}, pair ${id}) element ${n} = ${got[m * N + n]}, want 0`);
        }
      });
    }

    it('fp8GroupedMasked: an empty group, a full group, a partial one (rows past maskedM are zeros)', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const [G, Mmax, N, K] = [3, 65, 256, 256];
      const mm = new Int32Array([0, 65, 17]);
      const A = await randomQ([G, Mmax, K], 1, r);
      const B = await randomQ([G, N, K], 128, r);
      const want = await values(await gemm.fp8GroupedMasked(A.q, B.q, ref.tensor(mm, [G], 'i32'), { out: 'bf16' }));
      const got = await values(await gemm.fp8GroupedMasked(await moveQ(A.q, name), await moveQ(B.q, name), await ref.tensor(mm, [G], 'i32').to(name), { out: 'bf16' }));
      const { S } = await f64Product(A.q, B.q, G * Mmax, N, K, (row) => (row % Mmax < mm[Math.floor(row / Mmax)]! ? Math.floor(row / Mmax) : -1));
      expect(firstOutside(got, want, S, tol, true), `seed ${seed}`).toBeNull();
    });

    if (name === 'webgpu' || name === 'cuda') {
      it('GPU: a bad group index, a block mixing groups, or maskedM out of range gives NaN rows, the rest stays right', async () => {
        const r = rng(freshSeed());
        const [G, N, K] = [2, 128, 128];
        const gi = contiguousIndex([128, 128]);
        gi[5] = 7; // index ≥ G
        gi[128 + 3] = 0; // block 1 mixes groups 0 and 1
        const M = gi.length;
        const A = await randomQ([M, K], 1, r);
        const B = await randomQ([G, N, K], 128, r);
        const got = await values(await gemm.fp8GroupedContiguous(await moveQ(A.q, name), await moveQ(B.q, name), await ref.tensor(gi, [M], 'i32').to(name), { out: 'f32' }));
        expect(got[5 * N]).toBeNaN();
        expect(got[(128 + 3) * N]).toBeNaN();
        expect(Number.isFinite(got[0])).toBe(true);
        const mm = await ref.tensor(new Int32Array([3, 1000]), [G], 'i32').to(name);
        const A3 = await randomQ([G, 16, K], 1, r);
        const m = await values(await gemm.fp8GroupedMasked(await moveQ(A3.q, name), await moveQ(B.q, name), mm, { out: 'f32' }));
        expect(Number.isFinite(m[0])).toBe(true);
        expect(m[16 * N]).toBeNaN();
      });
    }

    it('matmul: f32 and bf16, every layout, + C, f32 and bf16 out', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      for (const [M, N, K] of [[1, 1, 1], [67, 45, 129], [128, 256, 512]] as const) {
        for (const dt of ['f32', 'bf16'] as const) for (const transA of [false, true]) for (const transB of [false, true]) {
          const out = transA ? 'bf16' : 'f32';
          const a = randomF32(M * K, r), bb = randomF32(K * N, r), c = randomF32(M * N, r);
          const mk = (x: Float32Array, shape: number[]) => (dt === 'bf16' ? ref.tensor(toBf16(x), shape, 'bf16') : ref.tensor(x, shape));
          const at = mk(a, transA ? [K, M] : [M, K]), bt = mk(bb, transB ? [N, K] : [K, N]);
          const ct = transB ? ref.tensor(c, [M, N]) : undefined;
          const want = await values(await gemm.matmul(at, bt, { transA, transB, out, ...(ct ? { c: ct } : {}) }));
          const got = await values(await gemm.matmul(await at.to(name), await bt.to(name), { transA, transB, out, ...(ct ? { c: await ct.to(name) } : {}) }));
          const av = dt === 'bf16' ? fromBf16(toBf16(a)) : a, bv = dt === 'bf16' ? fromBf16(toBf16(bb)) : bb;
          const S = new Float64Array(M * N);
          for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
            let s = ct ? Math.abs(c[m * N + n]!) : 0;
            for (let k = 0; k < K; k++) s += Math.abs((transA ? av[k * M + m]! : av[m * K + k]!) * (transB ? bv[n * K + k]! : bv[k * N + n]!));
            S[m * N + n] = s;
          }
          expect(firstOutside(got, want, S, matmulTol(name, dt, K), out === 'bf16'), `seed ${seed} [${M},${N},${K}] ${dt} transA ${transA} transB ${transB}`).toBeNull();
        }
      }
    }, 60_000);

    it('matmul bf16 (the tensor-core path on cuda): the MoE gate scaled down, ragged edges, a split over K, + C in place, bf16 out', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      // c: 'inplace' passes one tensor as both c and out (fusedLossFromHidden accumulates dHeadWeight so;
      // webgpu reads C through the output's one read_write binding)
      for (const [M, N, K, transA, transB, out, cm] of [
        [64, 256, 7168, false, true, 'f32', 'inplace'], // the gate's N and K; 2 tiles of 128×128: split over K on cuda
        [200, 256, 1000, false, true, 'f32', 'c'], // ragged M and K (K not a multiple of the 32-wide k-tile)
        [130, 72, 264, false, true, 'bf16', 'none'], // ragged M and N, bf16 out
        [136, 264, 520, true, false, 'bf16', 'c'], // transposed operands (ldmatrix.trans on cuda)
        [136, 264, 520, true, true, 'f32', 'inplace'],
        [136, 264, 520, false, false, 'f32', 'none'],
        [77, 65, 36, true, false, 'f32', 'c'], // M, N not multiples of 8: the f32-chain fallback on cuda
        [40, 24, 12, false, true, 'f32', 'c'], // K not a multiple of 8: the fallback too
      ] as const) {
        const a = randomF32(M * K, r), bb = randomF32(K * N, r), c = randomF32(M * N, r);
        const at = ref.tensor(toBf16(a), transA ? [K, M] : [M, K], 'bf16'), bt = ref.tensor(toBf16(bb), transB ? [N, K] : [K, N], 'bf16');
        const ct = cm === 'none' ? undefined : ref.tensor(c, [M, N]);
        const want = await values(await gemm.matmul(at, bt, { transA, transB, out, ...(ct ? { c: ct } : {}) }));
        let got: Float32Array;
        if (cm === 'inplace') {
          const acc = await ref.tensor(c, [M, N]).to(name);
          await b.gemm!.matmul(await at.to(name), await bt.to(name), transA, transB, acc, acc);
          got = await values(acc);
        } else {
          got = await values(await gemm.matmul(await at.to(name), await bt.to(name), { transA, transB, out, ...(ct ? { c: await ct.to(name) } : {}) }));
        }
        const av = fromBf16(toBf16(a)), bv = fromBf16(toBf16(bb));
        const S = new Float64Array(M * N);
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
          let s = ct ? Math.abs(c[m * N + n]!) : 0;
          for (let k = 0; k < K; k++) s += Math.abs((transA ? av[k * M + m]! : av[m * K + k]!) * (transB ? bv[n * K + k]! : bv[k * N + n]!));
          S[m * N + n] = s;
        }
        expect(firstOutside(got, want, S, matmulTol(name, 'bf16', K), out === 'bf16'), `seed ${seed} [${M},${N},${K}] transA ${transA} transB ${transB} ${out} c ${cm}`).toBeNull();
      }
    }, 120_000);

    it('matmul with c === out (out += op(A)·op(B) in place), f32: every layout, ragged, split over K and not, a row view', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      // [64, 96, 2048] is one workgroup tile over 128 K tiles: split over K on webgpu (partials, then
      // the reduction adds out); [200, 136, 40] is too shallow to split; the last is the single pass's
      // dHeadWeight update (transA, a chunk of rows as K)
      for (const [M, N, K, transA, transB] of [
        [64, 96, 2048, false, false], [64, 96, 2048, true, false], [200, 136, 40, false, true], [200, 136, 40, true, true], [300, 24, 64, true, false],
      ] as const) {
        const a = randomF32(M * K, r), bb = randomF32(K * N, r), c = randomF32(M * N, r);
        const at = ref.tensor(a, transA ? [K, M] : [M, K]), bt = ref.tensor(bb, transB ? [N, K] : [K, N]);
        const want = await values(await gemm.matmul(at, bt, { transA, transB, c: ref.tensor(c, [M, N]) }));
        const acc = await ref.tensor(c, [M, N]).to(name);
        await b.gemm!.matmul(await at.to(name), await bt.to(name), transA, transB, acc, acc);
        const got = await values(acc);
        // and C in its own tensor, for comparison (the split reduction adds it there)
        const apart = await values(await gemm.matmul(await at.to(name), await bt.to(name), { transA, transB, c: await ref.tensor(c, [M, N]).to(name) }));
        const S = new Float64Array(M * N);
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
          let s = Math.abs(c[m * N + n]!);
          for (let k = 0; k < K; k++) s += Math.abs((transA ? a[k * M + m]! : a[m * K + k]!) * (transB ? bb[n * K + k]! : bb[k * N + n]!));
          S[m * N + n] = s;
        }
        expect(firstOutside(got, want, S, matmulTol(name, 'f32', K), false), `seed ${seed} [${M},${N},${K}] transA ${transA} transB ${transB}`).toBeNull();
        expect(firstOutside(apart, want, S, matmulTol(name, 'f32', K), false), `seed ${seed} [${M},${N},${K}] transA ${transA} transB ${transB}, c apart`).toBeNull();
      }
      // the rows [64, 128) of a larger accumulator, as c and out (a view at a 256-byte aligned offset): the rows around it stay
      const [M, N, K] = [64, 64, 32];
      const a = randomF32(M * K, r), bb = randomF32(N * K, r), c = randomF32(3 * M * N, r);
      const big = await ref.tensor(c, [3 * M, N]).to(name);
      const view = sliceRows(big, M, 2 * M);
      await b.gemm!.matmul(await ref.tensor(a, [M, K]).to(name), await ref.tensor(bb, [N, K]).to(name), false, true, view, view);
      const want = await values(await gemm.matmul(ref.tensor(a, [M, K]), ref.tensor(bb, [N, K]), { c: ref.tensor(c.slice(M * N, 2 * M * N), [M, N]) }));
      const got = await values(big);
      expect([...got.subarray(0, M * N)]).toEqual([...c.subarray(0, M * N)]);
      expect([...got.subarray(2 * M * N)]).toEqual([...c.subarray(2 * M * N)]);
      for (let i = 0; i < M * N; i++) expect(Math.abs(got[M * N + i]! - want[i]!), `view element ${i}`).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(want[i]!)));
    }, 60_000);

    if (name === 'webgpu') {
      it('webgpu, workgroups folded into 2-D past 16 per dimension: matmul split over K and not, c === out', async () => {
        const { createWebGPUBackend } = await import('../src/webgpu/backend.js');
        const fb = await createWebGPUBackend({ device: (b as WebGPUBackend).device, maxWorkgroupsPerDim: 16 });
        const seed = freshSeed();
        const r = rng(seed);
        for (const [M, N, K] of [[256, 256, 4096], [600, 400, 64]] as const) { // 4 tiles × 8 splits (and a 256-workgroup reduction); 5 × 4 tiles
          const a = randomF32(M * K, r), bb = randomF32(N * K, r), c = randomF32(M * N, r);
          const want = await values(await gemm.matmul(ref.tensor(a, [M, K]), ref.tensor(bb, [N, K]), { c: ref.tensor(c, [M, N]) }));
          const acc = fb.fromHost(c, 'f32', [M, N]);
          await fb.gemm!.matmul(fb.fromHost(a, 'f32', [M, K]), fb.fromHost(bb, 'f32', [N, K]), false, true, acc, acc);
          const got = (await fb.read(acc)) as Float32Array;
          const S = new Float64Array(M * N);
          for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
            let sum = Math.abs(c[m * N + n]!);
            for (let k = 0; k < K; k++) sum += Math.abs(a[m * K + k]! * bb[n * K + k]!);
            S[m * N + n] = sum;
          }
          expect(firstOutside(got, want, S, matmulTol(name, 'f32', K), false), `seed ${seed} [${M},${N},${K}]`).toBeNull();
        }
      }, 60_000);

      it('webgpu: a c that overlaps out without being it is rejected', async () => {
        const big = await ref.tensor(new Float32Array(3 * 64 * 64), [3 * 64, 64]).to(name);
        const x = await ref.tensor(new Float32Array(64 * 8), [64, 8]).to(name);
        expect(() => b.gemm!.matmul(x, x, false, true, sliceRows(big, 0, 128), sliceRows(big, 64, 192))).toThrow(expect.objectContaining({ code: 'E_ARG' }));
      });
    }

    it('transpose: 1-, 2- and 4-byte elements, ragged shapes, bit-exact', async () => {
      const r = rng(freshSeed());
      for (const [R, C] of [[1, 1], [3, 1000], [129, 67], [512, 256]] as const) {
        const u8 = Uint8Array.from({ length: R * C }, () => (r() * 256) | 0);
        const u16 = Uint16Array.from({ length: R * C }, () => (r() * 65536) | 0);
        const f32 = randomF32(R * C, r);
        for (const [x, dt] of [[u8, 'u8'], [u16, 'bf16'], [f32, 'f32']] as const) {
          const want = await (await gemm.transpose(ref.tensor(x, [R, C], dt))).read();
          const got = await (await gemm.transpose(await ref.tensor(x, [R, C], dt).to(name))).read();
          expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)), `[${R}, ${C}] ${dt}`).toBe(true);
        }
      }
    });

    it('fp8LinearBackward: dX = dD·W and dW = dDᵀ·X within diff < 1e-3 of the f64 gradients, as on the reference', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const [M, N, K] = [256, 192, 320];
      const x = randomF32(M * K, r), w = randomF32(N * K, r, 0.1), dD = randomF32(M * N, r, 0.01);
      const dxWant = new Float64Array(M * K), dwWant = new Float64Array(N * K);
      for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
        const g = dD[m * N + n]!;
        for (let k = 0; k < K; k++) {
          dxWant[m * K + k] = dxWant[m * K + k]! + g * w[n * K + k]!;
          dwWant[n * K + k] = dwWant[n * K + k]! + g * x[m * K + k]!;
        }
      }
      const t = async (v: Float32Array, shape: number[]) => ref.tensor(v, shape).to(name);
      const { dx, dw } = await gemm.fp8LinearBackward(await t(dD, [M, N]), await t(x, [M, K]), await t(w, [N, K]));
      expect(diff(await values(dx!), dxWant), `seed ${seed}`).toBeLessThan(1e-3);
      expect(diff(await values(dw!), dwWant), `seed ${seed}`).toBeLessThan(1e-3);
    });
  });
}

// ---------------------------------------------------------------- bad inputs

describe('gemm: bad inputs', () => {
  it('rejects each with the right code and a message naming the argument', async () => {
    const r = rng(1);
    const A = await randomQ([4, 256], 1, r);
    const B = await randomQ([8, 256], 128, r);
    const B2 = await randomQ([8, 128], 128, r);
    const A128 = await randomQ([4, 256], 128, r);
    const E5 = await fp8.quantize(ref.tensor(randomF32(4 * 256, r), [4, 256]), { format: 'e5m2' });
    const cases: [Promise<unknown>, string, RegExp][] = [
      [gemm.fp8(A.q, B2.q), 'E_SHAPE', /K = 128/],
      [gemm.fp8(A128.q, B.q), 'E_ARG', /a: expected 1×128 scales/],
      [gemm.fp8(E5, B.q), 'E_DTYPE', /E4M3/],
      [gemm.fp8(A.q, B.q, { out: 'f16' as never }), 'E_ARG', /opts.out/],
      [gemm.fp8(A.q, B.q, { c: ref.tensor(new Float32Array(4), [2, 2]) }), 'E_SHAPE', /opts.c/],
      [gemm.fp8({ ...A.q, scales: ref.tensor(new Float32Array(4), [4, 1]) }, B.q), 'E_SHAPE', /a.scales/],
      [gemm.fp8(A.q, {} as never), 'E_ARG', /b: expected the result of fp8.quantize/],
      [gemm.fp8GroupedContiguous(A.q, B.q, ref.tensor(new Int32Array(4), [4], 'i32')), 'E_SHAPE', /b.data: expected a 3-D/],
      [gemm.matmul(ref.tensor(new Float32Array(6), [2, 3]), ref.tensor(new Float32Array(8), [2, 4])), 'E_SHAPE', /inner sizes differ/],
      [gemm.matmul(ref.tensor(new Float32Array(6), [2, 3]), ref.tensor(toBf16([1, 2, 3]), [1, 3], 'bf16')), 'E_DTYPE', /b: expected dtype f32/],
      [gemm.transpose(ref.tensor(new Float32Array(8), [2, 2, 2])), 'E_SHAPE', /2-D/],
    ];
    const G = await randomQ([2, 128, 256], 128, r);
    const A3 = await randomQ([2, 16, 256], 1, r);
    const Abig = await randomQ([256, 256], 1, r);
    const gi = new Int32Array(256).fill(0);
    gi[3] = 2;
    cases.push([gemm.fp8GroupedContiguous(Abig.q, G.q, ref.tensor(gi, [256], 'i32')), 'E_ARG', /groupIndex\[3\] = 2 is outside/]);
    gi[3] = 0; gi[5] = 1;
    cases.push([gemm.fp8GroupedContiguous(Abig.q, G.q, ref.tensor(gi, [256], 'i32')), 'E_ARG', /mix groups 0 and 1/]);
    cases.push([gemm.fp8GroupedContiguous(Abig.q, G.q, ref.tensor(new Float32Array(256), [256])), 'E_DTYPE', /groupIndex/]);
    cases.push([gemm.fp8GroupedMasked(A3.q, G.q, ref.tensor(new Int32Array([1, 17]), [2], 'i32')), 'E_ARG', /maskedM\[1\] = 17/]);
    cases.push([gemm.fp8GroupedMasked(A3.q, G.q, ref.tensor(new Int32Array([1]), [1], 'i32')), 'E_SHAPE', /maskedM/]);
    // gathered A rows: a [4, 256] read by M_sum = 256 rows
    const gi0 = ref.tensor(new Int32Array(256), [256], 'i32');
    const pairs = ref.tensor(new Int32Array(300), [300], 'i32');
    const gathered = (gather: unknown, g = gi0, a: QuantizedTensor = A.q) => gemm.fp8GroupedContiguous(a, G.q, g, { gather: gather as { pairs: Tensor; k: number } });
    cases.push(
      [gathered(null), 'E_ARG', /opts.gather: expected \{ pairs, k \}/],
      [gathered({ k: 1 }), 'E_ARG', /opts.gather.pairs: expected a Tensor/],
      [gathered({ pairs: ref.tensor(new Float32Array(256), [256]), k: 1 }), 'E_DTYPE', /opts.gather.pairs/],
      [gathered({ pairs: ref.tensor(new Int32Array(256), [16, 16], 'i32'), k: 1 }), 'E_SHAPE', /opts.gather.pairs: expected a 1-D/],
      [gathered({ pairs: ref.tensor(new Int32Array(255), [255], 'i32'), k: 1 }), 'E_SHAPE', /opts.gather.pairs: expected at least M_sum = 256/],
      [gathered({ pairs, k: 0 }), 'E_ARG', /opts.gather.k/],
      [gathered({ pairs, k: 1.5 }), 'E_ARG', /opts.gather.k/],
      [gathered({ pairs, k: '8' }), 'E_ARG', /opts.gather.k/],
      [gathered({ pairs, k: 1 }, ref.tensor(new Int32Array(256), [2, 128], 'i32')), 'E_SHAPE', /groupIndex: expected a 1-D/],
      [gathered({ pairs, k: 1 }, ref.tensor(new Float32Array(256), [256])), 'E_DTYPE', /groupIndex/],
      [gathered({ pairs, k: 1 }, gi0, A3.q), 'E_SHAPE', /a.data: expected a 2-D/],
      [gathered({ pairs, k: 1 }, ref.tensor(Int32Array.from({ length: 256 }, (_, i) => (i === 9 ? 2 : 0)), [256], 'i32')), 'E_ARG', /groupIndex\[9\] = 2 is outside/],
    );
    // without a gather an empty a is still refused
    const empty: QuantizedTensor = { data: ref.tensor(new Uint8Array(0), [0, 256], 'fp8e4m3'), scales: ref.tensor(new Float32Array(0), [0, 2]), format: 'e4m3', block: [1, 128], ue8m0: false, shape: [0, 256] };
    cases.push([gemm.fp8GroupedContiguous(empty, G.q, ref.tensor(new Int32Array(0), [0], 'i32')), 'E_EMPTY', /a.data/]);
    for (const [p, code, msg] of cases) {
      const e = await p.then(() => null, (x: unknown) => x);
      expect(e, `${code} ${msg}`).toBeInstanceOf(HotpathsError);
      expect((e as HotpathsError).code, (e as Error).message).toBe(code);
      expect((e as Error).message).toMatch(msg);
    }
  });

  it('tensors on two backends give E_DEVICE', async () => {
    const other = under.find((u) => !u.skip && u.backend?.gemm);
    if (!other) return void console.warn('[skip] E_DEVICE case: no second backend with gemm here');
    const r = rng(2);
    const A = await randomQ([4, 128], 1, r);
    const B = await randomQ([4, 128], 128, r);
    await expect(gemm.fp8(A.q, await moveQ(B.q, other.name))).rejects.toMatchObject({ code: 'E_DEVICE' });
    const G = await randomQ([1, 128, 128], 128, r);
    const gi = ref.tensor(new Int32Array(128), [128], 'i32');
    const pairs = await ref.tensor(new Int32Array(128), [128], 'i32').to(other.name);
    await expect(gemm.fp8GroupedContiguous(A.q, G.q, gi, { gather: { pairs, k: 1 } })).rejects.toMatchObject({ code: 'E_DEVICE' });
  });
});
