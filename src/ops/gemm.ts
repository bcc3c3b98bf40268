// gemm: DeepSeek-V3's FP8 block-scaled matrix multiply (DeepGEMM's contract, REFERENCE.md) — normal,
// grouped-contiguous (MoE forward/backward) and grouped-masked (MoE decode) — its backward recipe,
// and a plain f32/bf16 matmul. Validates once here, then runs on the tensors' backend.
//
//   D[M, N] = A[M, K] · B[N, K]ᵀ (+ C)   A: E4M3 with 1×128 scales, B: E4M3 with 128×128 scales
//
// Each 128-wide K block's partial sum is multiplied by aScale·bScale and added into an f32
// accumulator ("promotion every 128 K"). K need not be a multiple of 128.

import { HotpathsError, show } from '../errors.js';
import type { Backend, GemmFp8Args, GemmGather, GemmGrouping, GemmKernels } from '../runtime/backend.js';
import { hostData } from '../runtime/host.js';
import type { Tensor } from '../tensor.js';
import { checkQuantized, quantize, type QuantizedTensor } from './fp8.js';
import { gatherQuantized } from './gather.js';
import {
  assertBoolean, assertDTypeIn, assertNumber, assertOneOf, assertOptions, assertRank, assertSameDevice, assertShapeEquals, assertTensor, MAX_ELEMENTS,
} from './validate.js';

/** Output dtype of a GEMM. */
export type GemmOut = 'bf16' | 'f32';

export interface GemmFp8Options {
  /** Output dtype: 'bf16' (default, DeepGEMM's) or 'f32'. */
  out?: GemmOut;
  /** f32 [M, N] added to the product (`gemm.fp8` only). */
  c?: Tensor;
}

/**
 * D[M, N] = A·Bᵀ (+ C). a: fp8.quantize(x [M, K], { block: [1, 128] }); b: fp8.quantize(w [N, K],
 * { block: [128, 128] }) — or b with [1, 128] blocks too (the wgrad case of fp8LinearBackward).
 * Both E4M3. Returns bf16 (default) or f32 [M, N].
 */
export async function fp8(a: QuantizedTensor, b: QuantizedTensor, opts: GemmFp8Options = {}): Promise<Tensor> {
  const fn = 'gemm.fp8()';
  assertOptions(`${fn}: opts`, opts);
  const A = checkA(fn, a, 2);
  const B = checkB(fn, b, 2, A.K);
  const out = outDtype(fn, opts.out);
  const c = opts.c ?? null;
  if (c !== null) {
    assertTensor(`${fn}: opts.c`, c);
    assertDTypeIn(`${fn}: opts.c`, c, ['f32']);
    assertShapeEquals(`${fn}: opts.c`, c, [A.M, B.N], `[M, N] to match a ${show(a.shape)} and b ${show(b.shape)}`);
  }
  const backend = sameBackend(fn, a, b, c);
  return run(backend, fn, { a, b, grouping: 'none', rowGroups: null, M: A.M, N: B.N, K: A.K, G: 1, Mmax: A.M, c, outShape: [A.M, B.N], out, gather: null });
}

/**
 * Grouped GEMM, contiguous layout (MoE forward/backward): row m of a [M_sum, K] uses expert
 * groupIndex[m]'s weight b[g] ([G, N, K], 128×128 blocks); groupIndex[m] = −1 marks a padding row,
 * whose output row is zeros. Each expert's segment is padded to a multiple of 128 rows: all rows of a
 * 128-row-aligned block share one group (or are padding). Indices are checked here on host backends;
 * GPU kernels write NaN rows for a bad index or a block that mixes groups. Returns [M_sum, N].
 *
 * opts.gather = { pairs, k }: gathered A rows, so that MoE's expert-ordered copy of the received
 * rows is never written. a is then the received rows once each, [R, K] (any R ≥ 0, 1×128 scales
 * [R, KB]); M_sum is groupIndex's length (i32 [M_sum]); pairs: i32 1-D with at least M_sum elements,
 * of which the first M_sum are read (moe's Alignment.sortedPairs can be passed as it is): pair id
 * = row·k + slot; k: an integer ≥ 1 (moe's topk). Output row m is the product of A row
 * floor(pairs[m] / k) (its codes and its scales row) with b[groupIndex[m]]; a pair id outside
 * [0, R·k) (align's sentinel R·k for padding) reads an all-zero A row, so its output row is 0.
 * Same as the call without a gather on the explicitly gathered A (codes and scales, zero rows for
 * those ids). The cuda and reference backends read A through the index; the others materialise the
 * gathered A first (moe's permute kernels) and free it after the call. Cost on cuda (H100, DeepSeek-V3's
 * expert shapes, bench/RESULTS.md 2026-11-23): the gathering kernel saves the [M_sum, K] copy's memory
 * but runs at ~0.8x the speed of that copy plus the GEMM on it; use it where memory, not time, is short.
 */
export async function fp8GroupedContiguous(
  a: QuantizedTensor, b: QuantizedTensor, groupIndex: Tensor, opts: { out?: GemmOut; gather?: { pairs: Tensor; k: number } } = {},
): Promise<Tensor> {
  const fn = 'gemm.fp8GroupedContiguous()';
  assertOptions(`${fn}: opts`, opts);
  const gather = opts.gather === undefined ? null : checkGather(fn, opts.gather);
  const A = checkA(fn, a, 2, gather !== null);
  const B = checkB(fn, b, 3, A.K);
  const out = outDtype(fn, opts.out);
  assertTensor(`${fn}: groupIndex`, groupIndex);
  assertDTypeIn(`${fn}: groupIndex`, groupIndex, ['i32']);
  let M = A.M;
  if (gather) {
    assertRank(`${fn}: groupIndex`, groupIndex, 1);
    M = groupIndex.shape[0]!;
    if (gather.pairs.size < M) {
      throw new HotpathsError('E_SHAPE', `${fn}: opts.gather.pairs: expected at least M_sum = ${M} elements (groupIndex ${groupIndex.describe()}), got ${gather.pairs.describe()}`);
    }
  } else {
    assertShapeEquals(`${fn}: groupIndex`, groupIndex, [A.M], `[M_sum] to match a ${show(a.shape)}`);
  }
  const backend = sameBackend(fn, a, b, groupIndex, gather?.pairs ?? null);
  if (isHost(backend)) checkGroupIndex(fn, hostData<Int32Array>(groupIndex), B.G);
  return run(backend, fn, {
    a, b, grouping: 'contiguous', rowGroups: groupIndex, M, N: B.N, K: A.K, G: B.G, Mmax: M, c: null, outShape: [M, B.N], out,
    gather: gather && { pairs: gather.pairs, k: gather.k, rowsA: A.M },
  });
}

/**
 * Grouped GEMM, masked layout (MoE decode): a [G, M_max, K], b [G, N, K]; group g computes its first
 * maskedM[g] rows, the other rows of D are zeros. maskedM: i32 [G], each in [0, M_max] (checked
 * here on host backends; GPU kernels write the group as NaN otherwise). Returns [G, M_max, N].
 */
export async function fp8GroupedMasked(a: QuantizedTensor, b: QuantizedTensor, maskedM: Tensor, opts: { out?: GemmOut } = {}): Promise<Tensor> {
  const fn = 'gemm.fp8GroupedMasked()';
  assertOptions(`${fn}: opts`, opts);
  const A = checkA(fn, a, 3);
  const B = checkB(fn, b, 3, A.K);
  if (A.G !== B.G) throw new HotpathsError('E_SHAPE', `${fn}: a has ${A.G} groups (${show(a.shape)}), b has ${B.G} (${show(b.shape)})`);
  const out = outDtype(fn, opts.out);
  assertTensor(`${fn}: maskedM`, maskedM);
  assertDTypeIn(`${fn}: maskedM`, maskedM, ['i32']);
  assertShapeEquals(`${fn}: maskedM`, maskedM, [B.G], `[G] to match b ${show(b.shape)}`);
  const backend = sameBackend(fn, a, b, maskedM);
  if (isHost(backend)) {
    const m = hostData<Int32Array>(maskedM);
    const bad = m.findIndex((v) => v < 0 || v > A.M);
    if (bad >= 0) throw new HotpathsError('E_ARG', `${fn}: maskedM[${bad}] = ${m[bad]} is outside [0, M_max = ${A.M}]`);
  }
  return run(backend, fn, { a, b, grouping: 'masked', rowGroups: maskedM, M: A.G * A.M, N: B.N, K: A.K, G: B.G, Mmax: A.M, c: null, outShape: [A.G, A.M, B.N], out, gather: null });
}

export interface MatmulOptions {
  /** a is stored [K, M] (default false: [M, K]). */
  transA?: boolean;
  /** b is stored [N, K] (default true, like gemm.fp8: D = A·Bᵀ); false: [K, N]. */
  transB?: boolean;
  /** f32 [M, N] added to the product. */
  c?: Tensor;
  /** Output dtype: 'f32' (default) or 'bf16'. */
  out?: GemmOut;
}

/**
 * Plain GEMM with f32 accumulation: D[M, N] = op(A)·op(B) (+ C); a and b both f32 or both bf16.
 * Default layout is D = A·Bᵀ with a [M, K] and b [N, K] (transB defaults to true).
 */
export async function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Promise<Tensor> {
  const fn = 'gemm.matmul()';
  assertOptions(`${fn}: opts`, opts);
  assertTensor(`${fn}: a`, a);
  assertTensor(`${fn}: b`, b);
  assertDTypeIn(`${fn}: a`, a, ['f32', 'bf16']);
  assertDTypeIn(`${fn}: b`, b, [a.dtype]);
  assertRank(`${fn}: a`, a, 2);
  assertRank(`${fn}: b`, b, 2);
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? true;
  assertBoolean(`${fn}: opts.transA`, transA);
  assertBoolean(`${fn}: opts.transB`, transB);
  const out = opts.out ?? 'f32';
  assertOneOf(`${fn}: opts.out`, out, ['f32', 'bf16']);
  const [M, K] = transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [N, Kb] = transB ? [b.shape[0]!, b.shape[1]!] : [b.shape[1]!, b.shape[0]!];
  if (Kb !== K) {
    throw new HotpathsError('E_SHAPE', `${fn}: inner sizes differ: op(a) is [${M}, ${K}] (a ${a.describe()}, transA ${transA}), op(b) is [${Kb}, ${N}] (b ${b.describe()}, transB ${transB})`);
  }
  if (K === 0) throw new HotpathsError('E_EMPTY', `${fn}: K = 0 (a ${a.describe()}, b ${b.describe()})`);
  const c = opts.c ?? null;
  if (c !== null) {
    assertTensor(`${fn}: opts.c`, c);
    assertDTypeIn(`${fn}: opts.c`, c, ['f32']);
    assertShapeEquals(`${fn}: opts.c`, c, [M, N], '[M, N]');
  }
  checkOutSize(fn, M, N);
  const backend = sameBackend(fn, a, b, c);
  const kernels = gemmKernels(backend, fn);
  const d = backend.empty(out, [M, N]);
  if (M > 0 && N > 0) await kernels.matmul(a, b, transA, transB, c, d);
  return d;
}

/** x [R, C] -> xᵀ [C, R], any dtype. */
export async function transpose(x: Tensor): Promise<Tensor> {
  const fn = 'gemm.transpose()';
  assertTensor(`${fn}: x`, x);
  assertRank(`${fn}: x`, x, 2);
  const kernels = gemmKernels(x.backend, fn);
  const out = x.backend.empty(x.dtype, [x.shape[1]!, x.shape[0]!]);
  if (x.size > 0) await kernels.transpose(x, out);
  return out;
}

/**
 * Forward of an FP8 linear layer, D = x·wᵀ: x f32|bf16 [M, K] quantized with 1×128 scales, w f32|bf16
 * [N, K] with 128×128 scales (or an already quantized w), then gemm.fp8. The quantized operands are
 * returned too, for a backward pass that wants to reuse them.
 */
export async function fp8Linear(x: Tensor, w: Tensor | QuantizedTensor, opts: { out?: GemmOut } = {}): Promise<{ out: Tensor; qx: QuantizedTensor; qw: QuantizedTensor }> {
  const qx = await quantize(x, { block: [1, 128] });
  const qw = isQuantized(w) ? w : await quantize(w, { block: [128, 128] });
  try {
    return { out: await fp8(qx, qw, opts), qx, qw };
  } catch (e) {
    disposeQ(qx);
    if (qw !== w) disposeQ(qw);
    throw e;
  }
}

export interface Fp8LinearBackwardOptions {
  /** Compute dX (default true). */
  dx?: boolean;
  /** Compute dW (default true). */
  dw?: boolean;
  /** f32 [N, K] to add dW into (gradient accumulation); the result is a new tensor. */
  dwAccumulate?: Tensor;
  /** dX dtype (default 'f32'). dW is always f32. */
  out?: GemmOut;
}

/**
 * Backward of D = x·wᵀ with FP8 operands (DeepSeek-V3's recipe), x [M, K], w [N, K], dD [M, N]
 * (f32|bf16):
 * - dgrad  dX [M, K] = dD·w: dD quantized 1×128 along N, wᵀ [K, N] quantized 128×128, gemm.fp8.
 * - wgrad  dW [N, K] = dDᵀ·x: dDᵀ [N, M] and xᵀ [K, M] both quantized 1×128 along M (the token
 *   dimension), gemm.fp8 with f32 output (+ dwAccumulate).
 * Each transposed quantization is a transpose then a quantize (two passes).
 */
export async function fp8LinearBackward(dD: Tensor, x: Tensor, w: Tensor, opts: Fp8LinearBackwardOptions = {}): Promise<{ dx: Tensor | null; dw: Tensor | null }> {
  const fn = 'gemm.fp8LinearBackward()';
  assertOptions(`${fn}: opts`, opts);
  for (const [name, t] of [['dD', dD], ['x', x], ['w', w]] as const) {
    assertTensor(`${fn}: ${name}`, t);
    assertDTypeIn(`${fn}: ${name}`, t, ['f32', 'bf16']);
    assertRank(`${fn}: ${name}`, t, 2);
  }
  const [M, K] = x.shape as [number, number];
  const N = w.shape[0]!;
  assertShapeEquals(`${fn}: w`, w, [N, K], `[N, K] to match x ${x.describe()}`);
  assertShapeEquals(`${fn}: dD`, dD, [M, N], `[M, N] to match x ${x.describe()} and w ${w.describe()}`);
  sameBackend(fn, dD, x, w);
  const wantDx = opts.dx ?? true;
  const wantDw = opts.dw ?? true;
  assertBoolean(`${fn}: opts.dx`, wantDx);
  assertBoolean(`${fn}: opts.dw`, wantDw);
  const done: QuantizedTensor[] = [];
  const q = async (t: Tensor, o: Parameters<typeof quantize>[1]) => {
    const r = await quantize(t, o);
    done.push(r);
    return r;
  };
  try {
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    if (wantDx) dx = await fp8(await q(dD, { block: [1, 128] }), await q(w, { block: [128, 128], transpose: true }), { out: opts.out ?? 'f32' });
    if (wantDw) {
      const c = opts.dwAccumulate;
      dw = await fp8(await q(dD, { block: [1, 128], transpose: true }), await q(x, { block: [1, 128], transpose: true }), { out: 'f32', ...(c ? { c } : {}) });
    }
    return { dx, dw };
  } finally {
    done.forEach(disposeQ);
  }
}

// ---------------------------------------------------------------- helpers

interface RunArgs extends Omit<GemmFp8Args, 'a' | 'aScales' | 'b' | 'bScales' | 'bBlockRows' | 'out'> {
  a: QuantizedTensor;
  b: QuantizedTensor;
  outShape: number[];
  out: GemmOut;
}

async function run(backend: Backend, fn: string, r: RunArgs): Promise<Tensor> {
  const kernels = gemmKernels(backend, fn);
  checkOutSize(fn, r.M, r.N);
  const out = backend.empty(r.out, r.outShape);
  if (r.M === 0) return out;
  // a gather the kernel does not read through itself: the gathered A, codes [M, K] and scales [M, KB], first
  const a = r.gather && !kernels.gathers ? await materialiseGather(backend, fn, r.a, r.gather, r.M) : r.a;
  try {
    await kernels.fp8({
      a: a.data, aScales: a.scales, b: r.b.data, bScales: r.b.scales, bBlockRows: r.b.block[0],
      grouping: r.grouping, rowGroups: r.rowGroups, M: r.M, N: r.N, K: r.K, G: r.G, Mmax: r.Mmax, c: r.c, out,
      gather: a === r.a ? r.gather : null,
    });
  } finally {
    if (a !== r.a) disposeQ(a);
  }
  return out;
}

/** a [rowsA, K] gathered into [M, K] (and its scales) with the backend's moe row movers. */
async function materialiseGather(backend: Backend, fn: string, a: QuantizedTensor, g: GemmGather, M: number): Promise<QuantizedTensor> {
  if (!backend.moe) {
    throw new HotpathsError('E_NOT_IMPLEMENTED', `${fn}: opts.gather on the ${backend.name} backend needs its moe permute kernels (its GEMM does not gather), and it has none; move the tensors to 'reference'`);
  }
  return gatherQuantized(backend.moe, a, { sortedPairs: g.pairs, topk: g.k, padded: M });
}

/** opts.gather of fp8GroupedContiguous: { pairs: i32 1-D, k: integer ≥ 1 } (pairs' length is checked against M_sum by the caller). */
function checkGather(fn: string, g: unknown): { pairs: Tensor; k: number } {
  if (typeof g !== 'object' || g === null || Array.isArray(g)) throw new HotpathsError('E_ARG', `${fn}: opts.gather: expected { pairs, k }, got ${show(g)}`);
  const { pairs, k } = g as { pairs?: unknown; k?: unknown };
  assertTensor(`${fn}: opts.gather.pairs`, pairs);
  assertDTypeIn(`${fn}: opts.gather.pairs`, pairs, ['i32']);
  assertRank(`${fn}: opts.gather.pairs`, pairs, 1);
  assertNumber(`${fn}: opts.gather.k`, k, { min: 1, max: 2 ** 31 - 1, integer: true });
  return { pairs, k };
}

/** A: E4M3 with 1×128 blocks, rank 2 ([M, K]) or 3 ([G, M_max, K]); zeroRowsOk: [0, K] passes (a gather's source). */
function checkA(fn: string, a: QuantizedTensor, rank: 2 | 3, zeroRowsOk = false): { G: number; M: number; K: number } {
  const { format, block, stack, M, K } = checkQuantized(fn, 'a', a, { zeroRowsOk });
  if (a.data.shape.length !== rank) throw new HotpathsError('E_SHAPE', `${fn}: a.data: expected a ${rank}-D tensor (${rank === 2 ? '[M, K]' : '[G, M_max, K]'}), got ${a.data.describe()}`);
  if (format !== 'e4m3') throw new HotpathsError('E_DTYPE', `${fn}: a: expected E4M3 codes, got ${format} (the GEMM takes E4M3 operands, as DeepGEMM does)`);
  if (block[0] !== 1) throw new HotpathsError('E_ARG', `${fn}: a: expected 1×128 scales (fp8.quantize(x, { block: [1, 128] })), got ${block[0]}×128`);
  return { G: stack, M, K };
}

/** B: E4M3, rank 2 ([N, K]) or 3 ([G, N, K]), 128×128 or 1×128 blocks, with a's K. */
function checkB(fn: string, b: QuantizedTensor, rank: 2 | 3, K: number): { G: number; N: number } {
  const { format, stack, M: N, K: Kb } = checkQuantized(fn, 'b', b);
  if (b.data.shape.length !== rank) throw new HotpathsError('E_SHAPE', `${fn}: b.data: expected a ${rank}-D tensor (${rank === 2 ? '[N, K]' : '[G, N, K]'}), got ${b.data.describe()}`);
  if (format !== 'e4m3') throw new HotpathsError('E_DTYPE', `${fn}: b: expected E4M3 codes, got ${format}`);
  if (Kb !== K) throw new HotpathsError('E_SHAPE', `${fn}: b has K = ${Kb} (${show(b.shape)}), a has K = ${K}`);
  return { G: stack, N };
}

function outDtype(fn: string, out: unknown): GemmOut {
  const o = out ?? 'bf16';
  assertOneOf(`${fn}: opts.out`, o, ['bf16', 'f32']);
  return o;
}

function checkOutSize(fn: string, M: number, N: number): void {
  if (M * N > MAX_ELEMENTS) throw new HotpathsError('E_TOO_LARGE', `${fn}: the output [${M}, ${N}] has ${M * N} elements; at most ${MAX_ELEMENTS} are supported`);
}

/** Host backends (reference, cpu): index tensors can be read for free, so they are checked here. */
function isHost(b: Backend): boolean {
  return b.name === 'reference' || b.name === 'cpu';
}

/**
 * groupIndex values in [−1, G), and every 128-row-aligned block of rows holds one group (plus
 * padding rows): the layout the grouped kernels tile by.
 */
function checkGroupIndex(fn: string, gi: Int32Array, G: number): void {
  for (let r0 = 0; r0 < gi.length; r0 += 128) {
    let blockGroup = -1;
    for (let r = r0; r < Math.min(gi.length, r0 + 128); r++) {
      const g = gi[r]!;
      if (g < -1 || g >= G) throw new HotpathsError('E_ARG', `${fn}: groupIndex[${r}] = ${g} is outside [−1, G = ${G}) (−1 marks a padding row)`);
      if (g === -1) continue;
      if (blockGroup === -1) blockGroup = g;
      else if (g !== blockGroup) {
        throw new HotpathsError('E_ARG', `${fn}: rows ${r0}…${r0 + 127} mix groups ${blockGroup} and ${g} (row ${r}): pad each group's segment to a multiple of 128 rows with −1`);
      }
    }
  }
}

function sameBackend(fn: string, ...xs: (Tensor | QuantizedTensor | null)[]): Backend {
  const ts: Tensor[] = [];
  for (const x of xs) {
    if (x === null) continue;
    if ('data' in x && 'scales' in x) ts.push(x.data, x.scales);
    else ts.push(x as Tensor);
  }
  assertSameDevice(fn, ...ts);
  return ts[0]!.backend;
}

function gemmKernels(backend: Backend, fn: string): GemmKernels {
  if (!backend.gemm) throw new HotpathsError('E_NOT_IMPLEMENTED', `${fn}: the ${backend.name} backend has no GEMM kernels yet; use 'reference'${backend.name === 'reference' ? '' : ' or move the tensors'}`);
  return backend.gemm;
}

function isQuantized(w: Tensor | QuantizedTensor): w is QuantizedTensor {
  return typeof w === 'object' && w !== null && 'data' in w && 'scales' in w;
}

function disposeQ(q: QuantizedTensor): void {
  q.data.dispose();
  q.scales.dispose();
}

export type { GemmGrouping };
