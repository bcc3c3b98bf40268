// gemm benchmark cases, shared by bench/gemm.bench.ts (Node) and the browser bench page
// (examples/web/): the shapes per backend, the FLOPs, and the inputs. No Node import here.

import { toBf16 } from '../src/dtype.js';
import * as fp8 from '../src/ops/fp8.js';
import * as gemm from '../src/ops/gemm.js';
import type { Backend, BackendName } from '../src/runtime/backend.js';
import type { Tensor } from '../src/tensor.js';

export interface GemmCase {
  op: 'fp8' | 'fp8 grouped' | 'matmul f32' | 'matmul bf16';
  M: number;
  N: number;
  K: number;
  /** Groups (fp8 grouped: M rows each). */
  G: number;
}

const DSV3_NK: [number, number][] = [[2112, 7168], [24576, 1536], [7168, 2048], [4096, 7168], [7168, 16384]];

/** The shapes per backend: the issue's list on GPUs, the bar shapes and a few smaller ones on host backends. */
export function gemmCases(backend: BackendName, quick: boolean): GemmCase[] {
  const c = (op: GemmCase['op'], M: number, N: number, K: number, G = 1): GemmCase => ({ op, M, N, K, G });
  if (quick || backend === 'reference') {
    return [c('fp8', 128, 256, 512), c('fp8 grouped', 128, 256, 512, 2), c('matmul f32', 128, 256, 512), c('matmul bf16', 128, 256, 512)];
  }
  if (backend === 'cpu') {
    return [
      c('fp8', 1024, 1024, 1024), c('fp8', 256, 4096, 7168), c('fp8', 64, 2112, 7168), c('fp8', 128, 7168, 2048),
      c('fp8 grouped', 256, 2048, 2048, 4),
      c('matmul f32', 1024, 1024, 1024), c('matmul f32', 256, 4096, 7168),
    ];
  }
  if (backend === 'webgpu') {
    return [
      c('fp8', 4096, 4096, 7168), c('fp8', 128, 4096, 7168), c('fp8', 4096, 7168, 2048), c('fp8', 64, 2112, 7168),
      c('fp8 grouped', 4096, 4096, 7168, 2), c('matmul f32', 4096, 4096, 4096),
    ];
  }
  const out: GemmCase[] = [];
  for (const M of [64, 128, 4096]) for (const [N, K] of DSV3_NK) out.push(c('fp8', M, N, K));
  out.push(c('fp8', 8192, 8192, 8192), c('fp8', 4096, 4096, 7168));
  out.push(c('fp8 grouped', 8192, 4096, 7168, 4), c('fp8 grouped', 4096, 4096, 7168, 8));
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
  const qa = await fp8.quantize(t(pattern(rows * c.K, 0), [rows, c.K]), { block: [1, 128] });
  const qb = await fp8.quantize(t(pattern(c.G * c.N * c.K, 1), c.op === 'fp8' ? [c.N, c.K] : [c.G, c.N, c.K]), { block: [128, 128] });
  held.push(qa.data, qa.scales, qb.data, qb.scales);
  if (c.op === 'fp8') return { run: async () => (await gemm.fp8(qa, qb)).dispose(), free: () => held.forEach((h) => h.dispose()) };
  const gi = new Int32Array(rows);
  for (let r = 0; r < rows; r++) gi[r] = Math.floor(r / c.M);
  const groupIndex = backend.fromHost(gi, 'i32', [rows]);
  held.push(groupIndex);
  return { run: async () => (await gemm.fp8GroupedContiguous(qa, qb, groupIndex)).dispose(), free: () => held.forEach((h) => h.dispose()) };
}
