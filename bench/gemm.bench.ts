// gemm benchmarks: FP8 block-scaled GEMM (normal and grouped-contiguous) at DeepSeek-V3's shapes,
// and the plain f32 matmul. Compute-bound: TFLOP/s = 2·M·N·K / time.
// Ceiling: the FP32 FMA peak on cpu/webgpu/reference (their FP8 GEMM decodes to f32 and runs FMAs);
// on cuda the tensor cores' FP8 rate as measured by torch._scaled_mm at 8192³ in the same run.
// Peers in the same run: OpenBLAS sgemm for cpu (same shapes, f32), the cpu backend for webgpu,
// torch._scaled_mm (cuBLASLt, row-wise scales) and bf16 torch.matmul for cuda (bench/peers/torch_gemm.py).

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fp8, gemm } from '../src/index.js';
import { loadAddon } from '../src/native/addon.js';
import type { Backend, BackendName } from '../src/runtime/backend.js';
import type { Tensor } from '../src/tensor.js';
import { packageRoot } from '../src/util/paths.js';
import type { Ceilings } from './ceilings.js';
import { timeHost, timeOp, type BenchOptions, type Measurement } from './harness.js';

export interface GemmCase {
  op: 'fp8' | 'fp8 grouped' | 'matmul f32';
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
  if (quick || backend === 'reference') return [c('fp8', 128, 256, 512), c('fp8 grouped', 128, 256, 512, 2), c('matmul f32', 128, 256, 512)];
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
  return out;
}

export function gemmCaseKey(c: GemmCase): string {
  return `${c.op} ${c.G > 1 ? `${c.G}x` : ''}${c.M}x${c.N}x${c.K}`;
}

function flops(c: GemmCase): number {
  return 2 * c.G * c.M * c.N * c.K;
}

/** Deterministic non-zero values (never zeros: they hide unwritten outputs and can run faster). */
function pattern(n: number, phase: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.618 + phase) * (1 + (i % 7));
  return x;
}

/** Inputs on `backend`, quantized there; returns a function that runs the op once. */
async function prepare(backend: Backend, c: GemmCase): Promise<{ run: () => Promise<void>; free: () => void }> {
  const held: Tensor[] = [];
  const t = (x: Float32Array, shape: number[]) => {
    const r = backend.fromHost(x, 'f32', shape);
    held.push(r);
    return r;
  };
  const rows = c.G * c.M;
  if (c.op === 'matmul f32') {
    const a = t(pattern(c.M * c.K, 0), [c.M, c.K]);
    const b = t(pattern(c.N * c.K, 1), [c.N, c.K]);
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

/** OpenBLAS sgemm at the case's shape (f32; a grouped case as G calls), median wall-clock ms. */
async function openblasMs(c: GemmCase, quick: boolean): Promise<number | undefined> {
  const addon = loadAddon();
  if (!addon || !addon.cpuBlasInfo()) return undefined;
  const a = pattern(c.M * c.K, 0), b = pattern(c.N * c.K, 1), out = new Float32Array(c.M * c.N);
  return timeHost(async () => {
    for (let g = 0; g < c.G; g++) await addon.cpuBlasSgemm(a, b, c.M, c.N, c.K, out);
  }, quick ? { maxTime: 0.5, minSamples: 2 } : {});
}

/** torch peers for cuda: {key: {scaled_mm_ms, bf16_ms}} plus the FP8 ceiling, or undefined without PyTorch. */
function torchPeers(cases: GemmCase[]): { byKey: Record<string, { scaled_mm_ms: number; bf16_ms: number }>; ceilingTflops: number } | undefined {
  const input = cases.filter((c) => c.op !== 'matmul f32').map((c) => ({ ...c, key: gemmCaseKey(c) }));
  const r = spawnSync('python3', [join(packageRoot(), 'bench', 'peers', 'torch_gemm.py')], { input: JSON.stringify(input), encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) {
    process.stderr.write(`bench: no PyTorch peer (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})\n`);
    return undefined;
  }
  return JSON.parse(r.stdout);
}

export async function benchGemm(backend: Backend, ceilings: Ceilings, opts: BenchOptions, peerBackend?: Backend): Promise<Measurement[]> {
  const cases = gemmCases(backend.name, opts.quick);
  const torch = backend.name === 'cuda' ? torchPeers(cases) : undefined;
  const blas = backend.name === 'cpu' ? loadAddon()?.cpuBlasInfo() : undefined;
  const out: Measurement[] = [];
  for (const c of cases) {
    const p = await prepare(backend, c);
    const { ms, timer } = await timeOp(backend, p.run, opts.quick);
    p.free();
    const tflops = flops(c) / (ms * 1e9);
    const fp8OnCuda = backend.name === 'cuda' && c.op !== 'matmul f32';
    const ceiling = fp8OnCuda ? torch?.ceilingTflops : ceilings.tflops;
    const m: Measurement = {
      family: 'gemm', op: c.op, backend: backend.name, shape: `${c.G > 1 ? `${c.G}x` : ''}${c.M}x${c.N}x${c.K}`, ms, timer, tflops,
      ...(ceiling ? { ceiling_fraction: tflops / ceiling } : {}),
    };
    if (backend.name === 'cpu' && blas) {
      const peerMs = await openblasMs(c, opts.quick);
      if (peerMs !== undefined) Object.assign(m, { peer: 'openblas sgemm', peer_ms: peerMs });
    } else if (torch && torch.byKey[gemmCaseKey(c)]) {
      const t = torch.byKey[gemmCaseKey(c)]!;
      Object.assign(m, { peer: 'torch._scaled_mm', peer_ms: t.scaled_mm_ms, peer_alt: 'torch bf16 matmul', peer_alt_ms: t.bf16_ms });
    } else if (peerBackend?.gemm) {
      const pp = await prepare(peerBackend, c);
      Object.assign(m, { peer: peerBackend.name, peer_ms: (await timeOp(peerBackend, pp.run, true)).ms });
      pp.free();
    }
    out.push(m);
  }
  return out;
}
