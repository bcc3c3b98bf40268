// gemm benchmark cases, shared by bench/gemm.bench.ts (Node) and the browser bench page
// (examples/web/): the shapes per backend, the FLOPs, and the inputs. No Node import here.

import { toBf16 } from '../src/dtype.js';
import * as fp8 from '../src/ops/fp8.js';
import { gatherQuantized } from '../src/ops/gather.js';
import * as gemm from '../src/ops/gemm.js';
import type { Backend, BackendName } from '../src/runtime/backend.js';
import type { Tensor } from '../src/tensor.js';

export interface GemmCase {
  /**
   * 'fp8 grouped gathered': 'fp8 grouped' at the same shape with its A rows read through pair ids
   * (opts.gather, k = GATHER_K) from the received rows, each held once (prepareGathered).
   */
  op: 'fp8' | 'fp8 grouped' | 'fp8 grouped gathered' | 'matmul f32' | 'matmul bf16';
  M: number;
  N: number;
  K: number;
  /** Groups (fp8 grouped: M rows each). */
  G: number;
}

/** Slots per received row in the gathered cases (DeepSeek-V3's top-8). */
export const GATHER_K = 8;

const DSV3_NK: [number, number][] = [[2112, 7168], [24576, 1536], [7168, 2048], [4096, 7168], [7168, 16384]];

/** The shapes per backend: the issue's list on GPUs, the bar shapes and a few smaller ones on host backends. */
export function gemmCases(backend: BackendName, quick: boolean): GemmCase[] {
  const c = (op: GemmCase['op'], M: number, N: number, K: number, G = 1): GemmCase => ({ op, M, N, K, G });
  if (quick || backend === 'reference') {
    return [
      c('fp8', 128, 256, 512), c('fp8 grouped', 128, 256, 512, 2), c('fp8 grouped gathered', 128, 256, 512, 2), c('matmul f32', 128, 256, 512),
      c('matmul bf16', 128, 256, 512),
    ];
  }
  if (backend === 'cpu') {
    return [
      c('fp8', 1024, 1024, 1024), c('fp8', 256, 4096, 7168), c('fp8', 64, 2112, 7168), c('fp8', 128, 7168, 2048),
      c('fp8 grouped', 256, 2048, 2048, 4), c('fp8 grouped gathered', 256, 2048, 2048, 4),
      c('matmul f32', 1024, 1024, 1024), c('matmul f32', 256, 4096, 7168),
    ];
  }
  if (backend === 'webgpu') {
    return [
      c('fp8', 4096, 4096, 7168), c('fp8', 128, 4096, 7168), c('fp8', 4096, 7168, 2048), c('fp8', 64, 2112, 7168),
      c('fp8 grouped', 4096, 4096, 7168, 2), c('fp8 grouped gathered', 4096, 4096, 7168, 2), c('matmul f32', 4096, 4096, 4096),
    ];
  }
  const out: GemmCase[] = [];
  for (const M of [64, 128, 4096]) for (const [N, K] of DSV3_NK) out.push(c('fp8', M, N, K));
  out.push(c('fp8', 8192, 8192, 8192), c('fp8', 4096, 4096, 7168));
  out.push(c('fp8 grouped', 8192, 4096, 7168, 4), c('fp8 grouped', 4096, 4096, 7168, 8));
  out.push(c('fp8 grouped gathered', 8192, 4096, 7168, 4), c('fp8 grouped gathered', 4096, 4096, 7168, 8));
  out.push(c('matmul f32', 4096, 4096, 4096));
  // bf16 x·Wᵀ on the tensor cores (f32 out): a square product and the MoE gate's [16384, 7168]·[256, 7168]ᵀ
  out.push(c('matmul bf16', 4096, 4096, 4096), c('matmul bf16', 16384, 256, 7168));
  return out;
}

export function gemmCaseKey(c: GemmCase): string {
  return `${c.op} ${c.G > 1 ? `${c.G}x` : ''}${c.M}x${c.N}x${c.K}`;
}

export function gemmFlops(c: GemmCase): number {
  return 2 * c.G * c.M * c.N * c.K;
}

/** Deterministic non-zero values (never zeros: they hide unwritten outputs and can run faster). */
export function pattern(n: number, phase: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.618 + phase) * (1 + (i % 7));
  return x;
}

/** Inputs on `backend`, quantized there; returns a function that runs the op once. */
export async function prepareGemm(backend: Backend, c: GemmCase): Promise<{ run: () => Promise<void>; free: () => void }> {
  const held: Tensor[] = [];
  const t = (x: Float32Array, shape: number[]) => {
    const r = backend.fromHost(x, 'f32', shape);
    held.push(r);
    return r;
  };
  const rows = c.G * c.M;
  if (c.op === 'matmul f32' || c.op === 'matmul bf16') {
    const bf = c.op === 'matmul bf16';
    const tm = (x: Float32Array, shape: number[]) => {
      if (!bf) return t(x, shape);
      const r = backend.fromHost(toBf16(x), 'bf16', shape);
      held.push(r);
      return r;
    };
    const a = tm(pattern(c.M * c.K, 0), [c.M, c.K]);
    const b = tm(pattern(c.N * c.K, 1), [c.N, c.K]);
    return { run: async () => (await gemm.matmul(a, b)).dispose(), free: () => held.forEach((h) => h.dispose()) };
  }
  if (c.op === 'fp8 grouped gathered') {
    const g = await prepareGathered(backend, c);
    return { run: g.run, free: g.free };
  }
  const qa = await fp8.quantize(t(pattern(rows * c.K, 0), [rows, c.K]), { block: [1, 128] });
  const qb = await fp8.quantize(t(pattern(c.G * c.N * c.K, 1), c.op === 'fp8' ? [c.N, c.K] : [c.G, c.N, c.K]), { block: [128, 128] });
  held.push(qa.data, qa.scales, qb.data, qb.scales);
  if (c.op === 'fp8') return { run: async () => (await gemm.fp8(qa, qb)).dispose(), free: () => held.forEach((h) => h.dispose()) };
  const groupIndex = backend.fromHost(equalGroups(c), 'i32', [rows]);
  held.push(groupIndex);
  return { run: async () => (await gemm.fp8GroupedContiguous(qa, qb, groupIndex)).dispose(), free: () => held.forEach((h) => h.dispose()) };
}

/** groupIndex of G equal segments of M rows: row r uses group floor(r / M). */
function equalGroups(c: GemmCase): Int32Array {
  return Int32Array.from({ length: c.G * c.M }, (_, r) => Math.floor(r / c.M));
}

/**
 * The gathered case: 'fp8 grouped''s G·M rows (the same groupIndex) read from R = ceil(G·M / k)
 * received rows of k = GATHER_K slots through pair ids: a fixed scramble of all R·k ids (each
 * received row read k times, by different experts), ascending inside each group as moe align lays
 * them out. run: the GEMM reading A through the ids. materialiseAndRun: the expert-ordered copy
 * (codes and scales, the backend's moe row gathers as the fallback uses them) then the GEMM on it.
 * runMaterialised: the GEMM alone on that copy, made once here.
 */
export async function prepareGathered(backend: Backend, c: GemmCase): Promise<{
  run: () => Promise<void>; materialiseAndRun: (() => Promise<void>) | null; runMaterialised: (() => Promise<void>) | null; free: () => void;
}> {
  const rows = c.G * c.M;
  const R = Math.ceil(rows / GATHER_K);
  const held: Tensor[] = [];
  const ids = new Int32Array(rows);
  const P = R * GATHER_K;
  // r·7919 mod P: distinct ids for r < rows ≤ P (7919 is a prime that divides none of these P)
  for (let r = 0; r < rows; r++) ids[r] = (r * 7919) % P;
  for (let g = 0; g < c.G; g++) ids.subarray(g * c.M, (g + 1) * c.M).sort();
  const x = backend.fromHost(pattern(R * c.K, 0), 'f32', [R, c.K]);
  const w = backend.fromHost(pattern(c.G * c.N * c.K, 1), 'f32', [c.G, c.N, c.K]);
  held.push(x, w);
  const qs = await fp8.quantize(x, { block: [1, 128] });
  const qb = await fp8.quantize(w, { block: [128, 128] });
  const groupIndex = backend.fromHost(equalGroups(c), 'i32', [rows]);
  const pairs = backend.fromHost(ids, 'i32', [rows]);
  held.push(qs.data, qs.scales, qb.data, qb.scales, groupIndex, pairs);
  const gather = { pairs, k: GATHER_K };
  const run = async () => (await gemm.fp8GroupedContiguous(qs, qb, groupIndex, { gather })).dispose();
  const free = () => held.forEach((h) => h.dispose());
  if (!backend.moe) return { run, materialiseAndRun: null, runMaterialised: null, free };
  const moe = backend.moe;
  const order = { sortedPairs: pairs, topk: GATHER_K, padded: rows };
  const qa = await gatherQuantized(moe, qs, order);
  held.push(qa.data, qa.scales);
  return {
    run,
    materialiseAndRun: async () => {
      const q = await gatherQuantized(moe, qs, order);
      (await gemm.fp8GroupedContiguous(q, qb, groupIndex)).dispose();
      q.data.dispose();
      q.scales.dispose();
    },
    runMaterialised: async () => (await gemm.fp8GroupedContiguous(qa, qb, groupIndex)).dispose(),
    free,
  };
}
