// Benchmark harness: host time through benchmark.js (median of its samples), device time through the
// backend's timer (WebGPU timestamp queries, CUDA events) where it has one, the machine's measured
// ceilings, and one record per measurement in the shape `hotpaths bench --json` prints.

import Benchmark from 'benchmark';
import type { Backend } from '../src/runtime/backend.js';

export interface Measurement {
  family: string;
  op: string;
  backend: string;
  shape: string;
  ms: number;
  /** Where `ms` comes from: 'device' (timestamps/events) or 'host' (wall clock, benchmark.js). */
  timer: 'device' | 'host';
  gbps?: number;
  tflops?: number;
  /** gbps over the measured copy ceiling, or tflops over the measured FLOP/s ceiling. */
  ceiling_fraction?: number;
  peer?: string;
  peer_ms?: number;
  /** A second peer from the same run (cuda gemm: bf16 torch.matmul next to torch._scaled_mm). */
  peer_alt?: string;
  peer_alt_ms?: number;
  /** Memory benchmarks: the backend's peak tensor bytes during the call beyond those held before it. */
  peak_extra_bytes?: number;
  /** peak_extra_bytes over the size of the f32 logits the call avoids materialising. */
  peak_fraction_of_logits?: number;
}

export interface BenchOptions {
  /** Fewer samples and smaller shapes (CI, lavapipe, the reference peer). */
  quick: boolean;
}

/** Median wall-clock ms of `fn` (which must resolve when its work is complete), via benchmark.js. */
export function timeHost(fn: () => Promise<void>, opts: { maxTime?: number; minSamples?: number } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const b = new Benchmark({
      defer: true,
      async: true,
      maxTime: opts.maxTime ?? 2,
      minSamples: opts.minSamples ?? 5,
      initCount: 1,
      fn: (deferred: { resolve(): void }) => {
        fn().then(() => deferred.resolve(), reject);
      },
    });
    b.on('complete', () => {
      if (b.error) return reject(b.error);
      const s = [...b.stats.sample].sort((x, y) => x - y);
      resolve((s[Math.floor(s.length / 2)] ?? b.stats.mean) * 1e3);
    });
    b.on('error', () => reject(b.error));
    b.run();
  });
}

/**
 * Time one op on a backend: device time when the backend has a timer (median over `reps` timed
 * batches after a warm-up), else host time. `fn` submits the work (and may resolve before it ends).
 */
export async function timeOp(backend: Backend, fn: () => Promise<void>, quick: boolean): Promise<{ ms: number; timer: 'device' | 'host' }> {
  const timer = backend.deviceTimer;
  if (!timer) return { ms: await timeHost(fn, quick ? { maxTime: 0.5, minSamples: 2 } : {}), timer: 'host' };
  await fn(); // warm-up: pipelines, module load, pool
  await backend.sync();
  const inner = 5;
  const samples: number[] = [];
  for (let rep = 0; rep < (quick ? 3 : 10); rep++) {
    timer.start();
    for (let i = 0; i < inner; i++) await fn();
    samples.push((await timer.stop()) / inner);
  }
  samples.sort((a, b) => a - b);
  return { ms: samples[Math.floor(samples.length / 2)]!, timer: 'device' };
}

export function fmtShape(shape: readonly number[]): string {
  return shape.join('x');
}

/** Fills in gbps, tflops and ceiling_fraction from bytes moved / flops done and the ceilings. */
export function rates(ms: number, work: { bytes?: number; flops?: number }, ceiling: { copyGBps?: number; tflops?: number }): Pick<Measurement, 'gbps' | 'tflops' | 'ceiling_fraction'> {
  const out: Pick<Measurement, 'gbps' | 'tflops' | 'ceiling_fraction'> = {};
  if (work.bytes !== undefined) {
    out.gbps = work.bytes / (ms * 1e6);
    if (ceiling.copyGBps) out.ceiling_fraction = out.gbps / ceiling.copyGBps;
  }
  if (work.flops !== undefined) {
    out.tflops = work.flops / (ms * 1e9);
    if (ceiling.tflops) out.ceiling_fraction = out.tflops / ceiling.tflops;
  }
  return out;
}
