// Benchmark harness: host time through benchmark.js (median of its samples), device time through the
// backend's timer (WebGPU timestamp queries, CUDA events) where it has one, the machine's measured
// ceilings, and one record per measurement in the shape `hotpaths bench --json` prints.

import Benchmark from 'benchmark';
import type { Backend } from '../src/runtime/backend.js';
import { timeDeviceInTurns } from './measurement.js';

export { fmtShape, rates, timeDevice, type BenchOptions, type Measurement } from './measurement.js';

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
 * Time one op on a backend: device time when the backend has a timer (bench/measurement.ts), else
 * host time. `fn` submits the work (and may resolve before it ends).
 */
export async function timeOp(backend: Backend, fn: () => Promise<void>, quick: boolean): Promise<{ ms: number; timer: 'device' | 'host' }> {
  const { ms, timer } = await timeOps(backend, [fn], quick);
  return { ms: ms[0]!, timer };
}

/**
 * timeOp for ops compared with each other (an op and its in-process peers): device times in turns
 * when the backend has a timer (timeDeviceInTurns), else host times one after the other.
 */
export async function timeOps(backend: Backend, fns: readonly (() => Promise<void>)[], quick: boolean): Promise<{ ms: number[]; timer: 'device' | 'host' }> {
  const device = await timeDeviceInTurns(backend, fns, quick);
  if (device !== undefined) return { ms: device, timer: 'device' };
  const ms: number[] = [];
  for (const fn of fns) ms.push(await timeHost(fn, quick ? { maxTime: 0.5, minSamples: 2 } : {}));
  return { ms, timer: 'host' };
}
