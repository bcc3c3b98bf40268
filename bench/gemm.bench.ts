// gemm benchmarks: FP8 block-scaled GEMM (normal and grouped-contiguous) at DeepSeek-V3's shapes,
// and the plain f32 matmul. Compute-bound: TFLOP/s = 2·M·N·K / time.
// Ceiling: the FP32 FMA peak on cpu/webgpu/reference (their FP8 GEMM decodes to f32 and runs FMAs);
// on cuda the tensor cores' FP8 rate as measured by torch._scaled_mm at 8192³ in the same run.
// Peers in the same run: OpenBLAS sgemm for cpu (same shapes, f32), the cpu backend for webgpu,
// torch._scaled_mm (cuBLASLt, row-wise scales) and bf16 torch.matmul for cuda (bench/peers/torch_gemm.py);
// for 'matmul bf16' on cuda the peer is bf16 torch.matmul alone and the ceiling its rate at 8192³.
// 'fp8 grouped gathered' (A rows read through pair ids, never copied into expert order) is compared
// with its own alternative in the same run: materialise the expert-ordered A then the GEMM (peer), and
// the GEMM alone on an A already materialised (second peer); speedup > 1: the gathered GEMM is faster.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { loadAddon } from '../src/native/addon.js';
import type { Backend } from '../src/runtime/backend.js';
import { packageRoot } from '../src/util/paths.js';
import type { Ceilings } from './ceilings.js';
import { gemmCaseKey, gemmCases, gemmFlops as flops, pattern, prepareGathered, prepareGemm as prepare, type GemmCase } from './gemm.cases.js';
import { timeHost, timeOp, timeOps, type BenchOptions, type Measurement } from './harness.js';

export { gemmCaseKey, gemmCases, type GemmCase } from './gemm.cases.js';

/** OpenBLAS sgemm at the case's shape (f32; a grouped case as G calls), median wall-clock ms. */
async function openblasMs(c: GemmCase, quick: boolean): Promise<number | undefined> {
  const addon = loadAddon();
  if (!addon || !addon.cpuBlasInfo()) return undefined;
  const a = pattern(c.M * c.K, 0), b = pattern(c.N * c.K, 1), out = new Float32Array(c.M * c.N);
  return timeHost(async () => {
    for (let g = 0; g < c.G; g++) await addon.cpuBlasSgemm(a, b, c.M, c.N, c.K, out);
  }, quick ? { maxTime: 0.5, minSamples: 2 } : {});
}

/**
 * torch peers for cuda: {key: {scaled_mm_ms, bf16_ms}} ({bf16_ms} alone for 'matmul bf16') plus the
 * FP8 and bf16 tensor-core ceilings, or undefined without PyTorch.
 */
function torchPeers(cases: GemmCase[]):
  | { byKey: Record<string, { scaled_mm_ms?: number; bf16_ms: number }>; ceilingTflops: number; bf16CeilingTflops?: number }
  | undefined {
  const input = cases.filter((c) => c.op !== 'matmul f32' && c.op !== 'fp8 grouped gathered').map((c) => ({ ...c, key: gemmCaseKey(c) }));
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
    const gathered = c.op === 'fp8 grouped gathered' ? await prepareGathered(backend, c) : undefined;
    const p = gathered ?? (await prepare(backend, c));
    // the gathered GEMM against materialise + GEMM and against the GEMM on a materialised A, timed in
    // turns (timeOps; one after the other they read up to ~15% apart on a power-capped H100)
    const peers = gathered?.materialiseAndRun && gathered.runMaterialised ? [gathered.materialiseAndRun, gathered.runMaterialised] : [];
    const timed = await timeOps(backend, [p.run, ...peers], opts.quick);
    const ms = timed.ms[0]!, timer = timed.timer;
    const vsMaterialised = peers.length ? {
      peer: 'materialise + GEMM', peer_ms: timed.ms[1]!, peer_alt: 'GEMM on materialised A', peer_alt_ms: timed.ms[2]!,
    } : undefined;
    p.free();
    const tflops = flops(c) / (ms * 1e9);
    const fp8OnCuda = backend.name === 'cuda' && c.op.startsWith('fp8');
    const bf16OnCuda = backend.name === 'cuda' && c.op === 'matmul bf16';
    const ceiling = fp8OnCuda ? torch?.ceilingTflops : bf16OnCuda ? torch?.bf16CeilingTflops : ceilings.tflops;
    const m: Measurement = {
      family: 'gemm', op: c.op, backend: backend.name, shape: `${c.G > 1 ? `${c.G}x` : ''}${c.M}x${c.N}x${c.K}`, ms, timer, tflops,
      ...(ceiling ? { ceiling_fraction: tflops / ceiling } : {}),
    };
    if (vsMaterialised) {
      Object.assign(m, vsMaterialised);
    } else if (backend.name === 'cpu' && blas) {
      const peerMs = await openblasMs(c, opts.quick);
      if (peerMs !== undefined) Object.assign(m, { peer: 'openblas sgemm', peer_ms: peerMs });
    } else if (torch && torch.byKey[gemmCaseKey(c)]) {
      const t = torch.byKey[gemmCaseKey(c)]!;
      if (t.scaled_mm_ms === undefined) Object.assign(m, { peer: 'torch bf16 matmul', peer_ms: t.bf16_ms });
      else Object.assign(m, { peer: 'torch._scaled_mm', peer_ms: t.scaled_mm_ms, peer_alt: 'torch bf16 matmul', peer_alt_ms: t.bf16_ms });
    } else if (peerBackend?.gemm) {
      const pp = await prepare(peerBackend, c);
      Object.assign(m, { peer: peerBackend.name, peer_ms: (await timeOp(peerBackend, pp.run, true)).ms });
      pp.free();
    }
    out.push(m);
  }
  return out;
}
