// GEMM launchers: FP8 block-scaled GEMM (all three groupings), matmul (f32/bf16) and transpose.
// Shapes and dtypes were checked by src/ops/gemm.ts; these compute sizes, pick the pipeline variant
// (override constants) and record dispatches.
// FP8 and bf16 data are byte/half arrays packed into u32 words (tensor buffers are padded to whole
// words). A bf16 output whose rows do not end on a word boundary (N odd) cannot be written by
// invocations that each own whole words of one row, so it goes through an f32 scratch buffer and a
// conversion pass.
// Tensor cores: none used. The adapter's subgroup matrices (on the H100 through Vulkan: i8/u8 only,
// 16×16×32 and 16×8×32) ran an int8 GEMM probe at ≤ 19 TOP/s there (scripts/webgpu-gemm-bench.mjs),
// below this f32 FMA kernel's 27 TFLOP/s before the 9 int8 limb products an exact E4M3 product needs
// or the per-128-K promotion through workgroup memory; see docs/webgpu-gemm-notes.md.

import type { GemmFp8Args, GemmKernels } from '../runtime/backend.js';
import type { Tensor } from '../tensor.js';
import { HotpathsError } from '../errors.js';
import { BufferUsage } from './device.js';
import type { BufferRange, CommandBatcher, PipelineCache } from './pipelines.js';

export const GEMM_SHADER_FILES = [
  'fp8/codec.wgsl',
  'gemm/fp8_tiled.wgsl',
  'gemm/matmul.wgsl',
  'gemm/transpose.wgsl',
  'gemm/splitk_reduce.wgsl',
] as const;

const TILE = 128; // rows and columns of D per workgroup (both kernels)
const WG_ELEMENTWISE = 256;

/**
 * Tuning of the WebGPU GEMM kernels, read at every launch. 0 means automatic.
 */
export const GEMM_TUNING = {
  /**
   * K depth of the fp8 kernel's workgroup tiles: 16 or 32 (auto: 16). On the H100 (2026-11-21,
   * 4096×4096×7168, bf16 out) BK 16 ran 28.3 TFLOP/s, BK 32 24.0 (17 vs 33 KiB of workgroup memory:
   * more workgroups per SM); 32 also needs more than lavapipe's 32 KiB.
   */
  fp8Bk: 0,
  /** K depth of the matmul tiles: 8 or 16 (auto: 16). */
  matmulBk: 0,
  /** K splits of matmul (0: automatic, for grids under 128 workgroups; 1: never split). */
  matmulSplits: 0,
  /** K splits of the fp8 kernel (0: automatic, for grids under 128 workgroups; 1: never split). */
  fp8Splits: 0,
};

/** What the launchers need from the backend. */
export interface GemmLaunchContext {
  pipelines: PipelineCache;
  batcher: CommandBatcher;
  /** The bound range of a tensor's buffer (its padded byte size), after checking the binding limit. */
  bind(t: Tensor, what: string): BufferRange;
}

const GROUPING_ID = { none: 0, contiguous: 1, masked: 2 } as const;

const emptyInputs = new WeakMap<GPUDevice, GPUBuffer>();

/**
 * The binding of an input tensor; an empty one (K = 0: a, b and the scales hold no bytes) gets a
 * 16-byte placeholder, since WebGPU rejects zero-sized bindings (the kernels never read it then).
 */
function bindInput(ctx: GemmLaunchContext, t: Tensor, what: string): BufferRange {
  const r = ctx.bind(t, what);
  if (r.size !== 0) return r;
  const device = ctx.batcher.device;
  let buffer = emptyInputs.get(device);
  if (!buffer) {
    buffer = device.createBuffer({ size: 16, usage: BufferUsage.STORAGE, label: 'hotpaths gemm empty input' });
    emptyInputs.set(device, buffer);
  }
  return { buffer, offset: 0, size: 16 };
}

/** An f32 scratch buffer of `n` elements, destroyed after the work recorded so far is submitted. */
function scratchF32(ctx: GemmLaunchContext, n: number): GPUBuffer {
  const bytes = Math.max(16, Math.ceil((n * 4) / 16) * 16);
  if (bytes > ctx.batcher.device.limits.maxStorageBufferBindingSize) {
    throw new HotpathsError('E_TOO_LARGE', `gemm: the f32 scratch output (${bytes} bytes) exceeds this device's binding limit`);
  }
  return ctx.batcher.device.createBuffer({ size: bytes, usage: BufferUsage.STORAGE, label: 'hotpaths gemm scratch' });
}

/**
 * out (f32 or bf16, n elements) = Σ_s src[s·n + i] (+ c) over `splits` f32 partials in the scratch
 * buffer `src`, which is freed once the work is submitted. With one split this is the f32 → bf16 pass
 * of an output whose rows end mid-word.
 */
function reduceInto(ctx: GemmLaunchContext, src: GPUBuffer, splits: number, n: number, c: Tensor | null, out: Tensor): void {
  const outBf16 = out.dtype === 'bf16';
  const words = outBf16 ? Math.ceil(n / 2) : n;
  const ob = ctx.bind(out, 'gemm out');
  const cIsOut = c !== null && sameRange(ctx.bind(c, 'gemm c'), ob);
  const p = ctx.pipelines.get(['gemm/splitk_reduce.wgsl'], { HAS_C: c !== null, C_IS_OUT: cIsOut, OUT_BF16: outBf16, WG: WG_ELEMENTWISE });
  ctx.batcher.dispatch(p, [n, words, splits], [src, c && !cIsOut ? ctx.bind(c, 'gemm c') : src, ob], Math.ceil(words / WG_ELEMENTWISE));
  ctx.batcher.flush();
  src.destroy(); // submitted work that uses it still completes
}

/** Whether two bindings are one range of one buffer (C passed as the output: accumulate in place). */
function sameRange(x: BufferRange, y: BufferRange): boolean {
  return x.buffer === y.buffer && (x.offset ?? 0) === (y.offset ?? 0);
}

/** Throws unless c and out are disjoint or the same range (a partial overlap has no meaning). */
function checkAlias(c: BufferRange, out: BufferRange, what: string): void {
  if (c.buffer !== out.buffer || sameRange(c, out)) return;
  const [c0, o0] = [c.offset ?? 0, out.offset ?? 0];
  const [c1, o1] = [c0 + (c.size ?? c.buffer.size - c0), o0 + (out.size ?? out.buffer.size - o0)];
  if (c0 < o1 && o0 < c1) throw new HotpathsError('E_ARG', `${what}: c and out overlap without being the same tensor (c bytes [${c0}, ${c1}), out [${o0}, ${o1}) of one buffer)`);
}

/**
 * K splits for a grid of `tiles` workgroups over `kTiles` K tiles: 1 when the grid fills the GPU,
 * else enough to reach about 256 workgroups (two per SM on an H100), each split at least 8 K tiles.
 * On the H100 (2026-11-21, bf16 out, K = 7168, N = 4096): M = 128 ran 5.1 TFLOP/s unsplit, 23.0 with
 * the automatic 8 splits, 18.6 with 4; M = 64: 2.6, 12.3, 9.8.
 */
function fp8Splits(ctx: GemmLaunchContext, tiles: number, kTiles: number, rows: number, N: number): number {
  const forced = GEMM_TUNING.fp8Splits;
  let s = forced >= 1 ? Math.floor(forced) : tiles >= 128 ? 1 : Math.min(Math.ceil(256 / tiles), Math.floor(kTiles / 8));
  s = Math.max(1, Math.min(s, kTiles));
  const limit = Math.min(ctx.batcher.device.limits.maxStorageBufferBindingSize, 256 * 2 ** 20);
  while (s > 1 && s * rows * N * 4 > limit) s--;
  return s;
}

function fp8Bk(ctx: GemmLaunchContext): number {
  const want = GEMM_TUNING.fp8Bk === 32 ? 32 : 16;
  // As + Bs (2·BK·128 f32) + the 256-entry table + a few words
  const need = 2 * want * TILE * 4 + 1024 + 64;
  return ctx.batcher.device.limits.maxComputeWorkgroupStorageSize >= need ? want : 16;
}

/** D = A·Bᵀ with 1×128 / 128×128 (or 1×128) block scales; see GemmKernels.fp8. */
export function gemmFp8(ctx: GemmLaunchContext, args: GemmFp8Args): void {
  const { M, N, K, G, Mmax, grouping } = args;
  if (M === 0 || N === 0) return;
  const KB = Math.ceil(K / 128);
  const NB = Math.ceil(N / 128);
  const tilesN = Math.ceil(N / TILE);
  const TPG = grouping === 'masked' ? Math.ceil(Mmax / TILE) : 0;
  const tilesM = grouping === 'masked' ? G * TPG : Math.ceil(M / TILE);
  if (tilesM === 0) return;
  const outBf16 = args.out.dtype === 'bf16';
  if (!outBf16 && args.out.dtype !== 'f32') throw new HotpathsError('E_DTYPE', `gemm.fp8 out: expected f32 or bf16, got ${args.out.describe()}`);
  const aWords = Math.ceil((M * K) / 4);
  const bWords = Math.ceil((G * N * K) / 4);
  const bk = fp8Bk(ctx);
  const kTiles = Math.ceil(K / bk);
  const splits = fp8Splits(ctx, tilesM * tilesN, kTiles, M, N);
  const splitTiles = Math.ceil(kTiles / splits);
  const hasC = args.c !== null && grouping === 'none';
  // f32 partials go to a scratch buffer when K is split, or when bf16 rows end mid-word (N odd)
  const viaScratch = splits > 1 || (outBf16 && N % 2 === 1);

  const ab = bindInput(ctx, args.a, 'gemm.fp8 a');
  const dummy = ab; // bound where a kernel variant never reads (read-only aliasing is allowed)
  const bindings: (BufferRange | GPUBuffer)[] = [
    ab,
    bindInput(ctx, args.aScales, 'gemm.fp8 aScales'),
    bindInput(ctx, args.b, 'gemm.fp8 b'),
    bindInput(ctx, args.bScales, 'gemm.fp8 bScales'),
    args.rowGroups && grouping !== 'none' ? ctx.bind(args.rowGroups, 'gemm.fp8 rowGroups') : dummy,
    hasC && !viaScratch ? ctx.bind(args.c!, 'gemm.fp8 c') : dummy,
  ];
  const scratch = viaScratch ? scratchF32(ctx, splits * M * N) : undefined;
  bindings.push(scratch ?? ctx.bind(args.out, 'gemm.fp8 out'));
  const p = ctx.pipelines.get(['fp8/codec.wgsl', 'gemm/fp8_tiled.wgsl'], {
    FP8_FORMAT: 0,
    GROUPING: GROUPING_ID[grouping],
    B_BLOCK_ROWS: args.bBlockRows,
    K_WORDS: K % 4 === 0,
    HAS_C: hasC && !viaScratch,
    OUT_BF16: outBf16 && !viaScratch,
    BK: bk,
  });
  const uniforms = [M, N, K, KB, G, Mmax, tilesN, tilesM, TPG, NB, aWords, bWords, splits, splitTiles];
  ctx.batcher.dispatch(p, uniforms, bindings, tilesM * tilesN * splits);
  if (scratch) reduceInto(ctx, scratch, splits, M * N, hasC ? args.c : null, args.out);
}

/**
 * K splits of a matmul grid of `tiles` workgroups over `kTiles` K tiles, as fp8Splits: a grid under
 * 128 workgroups leaves most of a large GPU idle (the from-hidden paths' dHidden = dz·W is M = a
 * token chunk, N = H = 896, K = V = 151,936: 28 workgroups for a 512-row chunk), so K is split until
 * about 1024 workgroups run (H100, Vulkan, that dHidden: 9 splits 12.8 ms, 16 8.7, 32 8.2, 48 8.2; at
 * 2048 rows 2 splits 35.8 ms, 8 32.4), each split at least 32 K tiles (512 of K: the partials' extra
 * pass and scratch buffer cost more than a shallower split gains; on lavapipe a [128, 64] output over
 * K = 256 took 7.6 ms split in two against 1.9 ms unsplit); the f32 partials (≤ 256 MiB, outside the
 * pool) are summed in order by gemm/splitk_reduce.wgsl.
 */
function matmulSplits(ctx: GemmLaunchContext, tiles: number, kTiles: number, M: number, N: number): number {
  const forced = GEMM_TUNING.matmulSplits;
  let s = forced >= 1 ? Math.floor(forced) : tiles >= 128 ? 1 : Math.min(Math.ceil(1024 / tiles), Math.floor(kTiles / 32));
  s = Math.max(1, Math.min(s, kTiles));
  const limit = Math.min(ctx.batcher.device.limits.maxStorageBufferBindingSize, 256 * 2 ** 20);
  while (s > 1 && s * M * N * 4 > limit) s--;
  return s;
}

/**
 * D = op(A)·op(B) (+ C); see GemmKernels.matmul. `c` may be `out` itself (f32): out += op(A)·op(B),
 * read and written through the one read_write binding (C_IS_OUT), since WebGPU cannot bind one
 * buffer as read and read_write in a dispatch. A c that overlaps out otherwise is rejected.
 */
export function matmul(ctx: GemmLaunchContext, a: Tensor, b: Tensor, transA: boolean, transB: boolean, c: Tensor | null, out: Tensor): void {
  if (a.shape.length !== 2 || b.shape.length !== 2 || out.shape.length !== 2) {
    throw new HotpathsError('E_SHAPE', `gemm.matmul: expected 2-D tensors, got ${a.describe()}, ${b.describe()}, ${out.describe()}`);
  }
  const M = out.shape[0]!;
  const N = out.shape[1]!;
  const K = transA ? a.shape[0]! : a.shape[1]!;
  if (M === 0 || N === 0) return;
  const inBf16 = a.dtype === 'bf16';
  const outBf16 = out.dtype === 'bf16';
  const tilesN = Math.ceil(N / TILE);
  const tilesM = Math.ceil(M / TILE);
  const bk = GEMM_TUNING.matmulBk === 8 || GEMM_TUNING.matmulBk === 16 ? GEMM_TUNING.matmulBk : 16;
  const kTiles = Math.ceil(K / bk);
  const splits = matmulSplits(ctx, tilesM * tilesN, kTiles, M, N);
  const splitTiles = Math.ceil(kTiles / splits);
  const ob = ctx.bind(out, 'gemm.matmul out');
  const cb = c ? ctx.bind(c, 'gemm.matmul c') : undefined;
  if (cb) checkAlias(cb, ob, 'gemm.matmul');
  const cIsOut = cb !== undefined && sameRange(cb, ob);
  if (cIsOut && outBf16) throw new HotpathsError('E_DTYPE', `gemm.matmul: c (f32) cannot be the bf16 output ${out.describe()}`);
  // f32 partials go to a scratch buffer when K is split, or when bf16 rows end mid-word (N odd)
  const viaScratch = splits > 1 || (outBf16 && N % 2 === 1);
  const ab = bindInput(ctx, a, 'gemm.matmul a');
  const scratch = viaScratch ? scratchF32(ctx, splits * M * N) : undefined;
  const bindings = [ab, bindInput(ctx, b, 'gemm.matmul b'), cb && !cIsOut && !viaScratch ? cb : ab, scratch ?? ob];
  const p = ctx.pipelines.get(['gemm/matmul.wgsl'], {
    TRANS_A: transA,
    TRANS_B: transB,
    IN_BF16: inBf16,
    HAS_C: c !== null && !viaScratch,
    C_IS_OUT: cIsOut && !viaScratch,
    OUT_BF16: outBf16 && !viaScratch,
    BK: bk,
  });
  ctx.batcher.dispatch(p, [M, N, K, tilesN, splits, splitTiles], bindings, tilesM * tilesN * splits);
  if (scratch) reduceInto(ctx, scratch, splits, M * N, c, out);
}

/** x [R, C] -> out [C, R], bit-exact, for 1-, 2- and 4-byte elements. */
export function transpose(ctx: GemmLaunchContext, x: Tensor, out: Tensor): void {
  if (x.shape.length !== 2) throw new HotpathsError('E_SHAPE', `gemm.transpose: expected a 2-D tensor, got ${x.describe()}`);
  const R = x.shape[0]!;
  const C = x.shape[1]!;
  const n = R * C;
  if (n === 0) return;
  const eb = x.bytes / n;
  if (eb !== 1 && eb !== 2 && eb !== 4) throw new HotpathsError('E_DTYPE', `gemm.transpose: elements of ${eb} bytes are not supported`);
  const words = Math.ceil((n * eb) / 4);
  const p = ctx.pipelines.get(['gemm/transpose.wgsl'], { ELEM_BYTES: eb, WG: WG_ELEMENTWISE });
  ctx.batcher.dispatch(p, [R, C, words], [ctx.bind(x, 'gemm.transpose x'), ctx.bind(out, 'gemm.transpose out')], Math.ceil(words / WG_ELEMENTWISE));
}

/** The GemmKernels of the WebGPU backend (launches are synchronous; results are ordered by the queue). */
export function createGemmKernels(ctx: GemmLaunchContext): GemmKernels {
  return {
    fp8: (args) => gemmFp8(ctx, args),
    matmul: (a, b, transA, transB, c, out) => matmul(ctx, a, b, transA, transB, c, out),
    transpose: (x, out) => transpose(ctx, x, out),
  };
}
