// `hotpaths bench`: runs the benchmark families on one backend and prints a table (or JSON lines).

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { getBackend } from '../src/runtime/index.js';
import type { Backend, BackendName } from '../src/runtime/backend.js';
import { packageRoot } from '../src/util/paths.js';
import { ceilingsFor } from './ceilings.js';
import { FAMILY_NAMES, type FamilyName } from './families.js';
import { benchFp8, caseName, fp8Cases } from './fp8.bench.js';
import { benchGemm } from './gemm.bench.js';
import { benchHiddenMemory, benchLogprob, hiddenCases } from './logprob.bench.js';
import { benchNn } from './nn.bench.js';
import { benchMoe } from './moe.bench.js';
import { fmtShape, type Measurement } from './harness.js';

export const FAMILIES = FAMILY_NAMES;
export type Family = FamilyName;

export interface RunBenchOptions {
  families: Family[];
  backend: BackendName;
  quick: boolean;
  remeasure: boolean;
  /** Called with each measurement as it lands (progress). */
  onMeasurement?: (m: Measurement) => void;
  log?: (line: string) => void;
}

export async function runBench(opts: RunBenchOptions): Promise<Measurement[]> {
  const backend = await getBackend(opts.backend);
  const log = opts.log ?? (() => {});
  log(`measuring the ceilings on ${backend.name} (${backend.deviceName})…`);
  const ceilings = await ceilingsFor(backend, { remeasure: opts.remeasure, quick: opts.quick });
  const flopsKind = backend.name === 'reference' ? 'JS multiply-add loop' : 'FP32 FMA';
  log(`copy ceiling: ${ceilings.copyGBps?.toFixed(1)} GB/s; ${flopsKind} ceiling: ${ceilings.tflops !== undefined ? `${ceilings.tflops.toFixed(4)} TFLOP/s` : 'not measured'}`);
  const results: Measurement[] = [];
  const emit = (ms: Measurement[]): void => {
    for (const m of ms) {
      results.push(m);
      opts.onMeasurement?.(m);
    }
  };
  for (const family of opts.families) {
    if (family === 'fp8') emit(await benchFp8(backend, ceilings, { quick: opts.quick }, await fp8Peer(backend, opts.quick)));
    if (family === 'logprob') {
      if (!backend.logprob) {
        log(`logprob: the ${backend.name} backend has no logprob kernels yet; skipped`);
        continue;
      }
      emit(await benchLogprob(backend, ceilings, { quick: opts.quick }, await hostPeer(backend)));
      if (backend.gemm) for (const c of hiddenCases(backend.name, opts.quick)) emit(await benchHiddenMemory(backend, c, log));
    }
    if (family === 'nn') {
      if (!backend.nn) {
        log(`nn: the ${backend.name} backend has no nn kernels yet; skipped`);
        continue;
      }
      emit(await benchNn(backend, ceilings, { quick: opts.quick }, await hostPeer(backend)));
    }
    if (family === 'moe') {
      if (!backend.moe) {
        log(`moe: the ${backend.name} backend has no moe kernels yet; skipped`);
        continue;
      }
      // peer: PyTorch (cuda) is measured inside benchMoe; the next backend down otherwise (and on cuda without PyTorch)
      emit(await benchMoe(backend, ceilings, { quick: opts.quick }, await hostPeer(backend)));
    }
    if (family === 'gemm') {
      // peer: OpenBLAS (cpu) and PyTorch (cuda) are measured inside benchGemm; webgpu gets the cpu backend
      emit(await benchGemm(backend, ceilings, { quick: opts.quick }, backend.name === 'webgpu' ? await hostPeer(backend) : undefined));
    }
  }
  return results;
}

/** The backend a kernel is compared with in the same run when no external peer applies: the next one down. */
const HOST_PEER: Partial<Record<BackendName, BackendName>> = { cpu: 'reference', webgpu: 'cpu', cuda: 'cpu' };

async function hostPeer(backend: Backend): Promise<Backend | undefined> {
  const name = HOST_PEER[backend.name];
  return name ? getBackend(name).catch(() => undefined) : undefined;
}

/** The peer measured in the same run: reference for cpu, cpu for webgpu, PyTorch for cuda. */
async function fp8Peer(backend: Backend, quick: boolean): Promise<{ backend: Backend } | { external: Map<string, number>; name: string } | undefined> {
  if (backend.name !== 'cuda') {
    const peer = await hostPeer(backend);
    return peer ? { backend: peer } : undefined;
  }
  const cases = fp8Cases(quick).map((c) => ({ ...c, key: `${caseName(c)} ${fmtShape(c.shape)}` }));
  const r = spawnSync('python3', [join(packageRoot(), 'bench', 'peers', 'torch_fp8.py')], { input: JSON.stringify(cases), encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) {
    process.stderr.write(`bench: no PyTorch peer (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})\n`);
    return undefined;
  }
  return { external: new Map(Object.entries(JSON.parse(r.stdout) as Record<string, number>)), name: 'torch' };
}

/** A fixed-width table of measurements. */
export function formatTable(ms: Measurement[]): string {
  const head = ['family', 'op', 'backend', 'shape', 'ms', 'GB/s', 'TFLOP/s', 'of ceiling', 'peer', 'peer ms', 'speedup', 'second peer', 'peak extra memory'];
  const rows = ms.map((m) => [
    m.family,
    m.op,
    m.backend,
    m.shape,
    m.ms.toFixed(3) + (m.timer === 'host' ? '' : '*'),
    m.gbps?.toFixed(1) ?? '',
    m.tflops !== undefined ? m.tflops.toPrecision(3) : '',
    m.ceiling_fraction !== undefined ? `${(m.ceiling_fraction * 100).toFixed(0)}%` : '',
    m.peer ?? '',
    m.peer_ms?.toFixed(3) ?? '',
    m.peer_ms ? `${(m.peer_ms / m.ms).toFixed(2)}x` : '',
    m.peer_alt_ms ? `${m.peer_alt} ${m.peer_alt_ms.toFixed(3)} (${(m.peer_alt_ms / m.ms).toFixed(2)}x)` : '',
    m.peak_extra_bytes !== undefined ? `${(m.peak_extra_bytes / 2 ** 20).toFixed(0)} MiB (${((m.peak_fraction_of_logits ?? 0) * 100).toFixed(1)}% of logits)` : '',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join('  ');
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line), '(* device time: timestamp queries / CUDA events; otherwise wall clock)'].join('\n');
}
