// The benchmark families as one list, with no Node import: the browser bench page (examples/web/)
// runs every family here whose kernels the backend has (`backend.fp8`, `backend.gemm`), so a family
// that lands on webgpu shows up there by itself; `hotpaths bench` (bench/index.ts) takes its family
// names from here too.

import type { Backend } from '../src/runtime/backend.js';
import { medianHostMs } from '../src/runtime/measure.js';
import { caseName, fp8Bytes, fp8Cases, prepareFp8 } from './fp8.cases.js';
import { gemmCases, gemmFlops, prepareGemm } from './gemm.cases.js';
import { logprobBytes, logprobCaseName, logprobCases, prepareLogprob } from './logprob.cases.js';
import { nnCases, nnShape, nnWork, prepareNn } from './nn.cases.js';
import { fmtShape, rates, timeDevice, type Measurement } from './measurement.js';
import { moeBytes, moeCaseName, moeCases, moeCaseShape, prepareMoe } from './moe.cases.js';

export const FAMILY_NAMES = ['fp8', 'gemm', 'logprob', 'moe', 'nn'] as const;
export type FamilyName = (typeof FAMILY_NAMES)[number];

export interface BenchCase {
  family: FamilyName;
  op: string;
  shape: string;
  /** What a perfect kernel does: bytes moved (memory-bound) or FLOPs (compute-bound). */
  work: { bytes?: number; flops?: number };
  /** Inputs on `backend`; run() launches the op once. */
  prepare(backend: Backend): Promise<{ run: () => Promise<void>; free: () => void }>;
}

export interface BenchFamily {
  name: FamilyName;
  /** The rate the family is judged by. */
  unit: 'GB/s' | 'TFLOP/s';
  cases(backend: Backend, quick: boolean): BenchCase[];
}

export const BENCH_FAMILIES: BenchFamily[] = [
  {
    name: 'fp8',
    unit: 'GB/s',
    cases: (_b, quick) => fp8Cases(quick).map((c) => ({ family: 'fp8', op: caseName(c), shape: fmtShape(c.shape), work: { bytes: fp8Bytes(c) }, prepare: (b) => prepareFp8(b, c) })),
  },
  {
    name: 'gemm',
    unit: 'TFLOP/s',
    cases: (backend, quick) =>
      gemmCases(backend.name, quick).map((c) => ({ family: 'gemm', op: c.op, shape: `${c.G > 1 ? `${c.G}x` : ''}${c.M}x${c.N}x${c.K}`, work: { flops: gemmFlops(c) }, prepare: (b) => prepareGemm(b, c) })),
  },
  {
    name: 'logprob',
    unit: 'GB/s',
    cases: (backend, quick) =>
      logprobCases(backend.name, quick, backend.maxBytes).map((c) => ({ family: 'logprob', op: logprobCaseName(c), shape: `${c.N}x${c.V}`, work: { bytes: logprobBytes(c) }, prepare: (b) => prepareLogprob(b, c) })),
  },
  {
    // attention's cases carry FLOPs (TFLOP/s), the others bytes (GB/s); the page charts the GB/s ones
    name: 'nn',
    unit: 'GB/s',
    cases: (backend, quick) => nnCases(backend.name, quick).map((c) => ({ family: 'nn', op: `${c.op} (${c.size})`, shape: nnShape(c), work: nnWork(c), prepare: (b) => prepareNn(b, c) })),
  },
  {
    name: 'moe',
    unit: 'GB/s',
    cases: (backend, quick) =>
      moeCases(backend.name, quick).map((c) => ({ family: 'moe', op: moeCaseName(c), shape: moeCaseShape(c), work: { bytes: moeBytes(c) }, prepare: (b) => prepareMoe(b, c) })),
  },
];

/** The families whose kernels `backend` has. */
export function familiesOn(backend: Backend): BenchFamily[] {
  return BENCH_FAMILIES.filter((f) => backend[f.name] !== undefined);
}

/**
 * One case on `backend`: device time when it has a timer, else the median wall clock of run + sync;
 * rates against the ceilings when given. No peer (bench/*.bench.ts add those in Node).
 */
export async function measureCase(backend: Backend, c: BenchCase, ceilings: { copyGBps?: number; tflops?: number }, quick: boolean): Promise<Measurement> {
  const p = await c.prepare(backend);
  try {
    const run = p.run;
    let ms = await timeDevice(backend, run, quick);
    const timer = ms === undefined ? 'host' : 'device';
    ms ??= await medianHostMs(async () => {
      await run();
      await backend.sync();
    }, quick ? 3 : 10);
    return { family: c.family, op: c.op, backend: backend.name, shape: c.shape, ms, timer, ...rates(ms, c.work, ceilings) };
  } finally {
    p.free();
  }
}
