// GPU timing for the benchmarks. With the 'timestamp-query' feature every compute pass recorded while
// timing gets timestampWrites (a begin/end pair per pass) and each rep gets its own passes; a rep's
// time is its last end − first begin. Without the feature (or when the timestamps look unusable) each
// rep is timed on the host, from the call to the resolution of onSubmittedWorkDone.
// `ms` is the median over the reps (the machines that run benchmarks are often shared and noisy).

import { HotpathsError } from '../errors.js';
import { BufferUsage, MapMode } from './device.js';
import type { CommandBatcher } from './pipelines.js';

export interface GpuTiming {
  /** Median milliseconds per rep. */
  ms: number;
  /** Fastest rep and mean over reps, in milliseconds. */
  msMin: number;
  msMean: number;
  source: 'timestamp' | 'host';
  /** Median host milliseconds per rep (includes submission and wake-up latency). */
  hostMs: number;
  reps: number;
}

export interface TimeGpuOptions {
  /** Untimed calls first (pipeline creation, pool warm-up). Default 1. */
  warmup?: number;
  /** Set false to force host timing. Default: timestamps when the device has them. */
  timestamps?: boolean;
}

/** Passes that can carry timestamps in one measurement (two queries each). */
const MAX_TIMED_PASSES = 2048;

function summarize(samples: number[]): { median: number; min: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, mean: s.reduce((a, b) => a + b, 0) / s.length };
}

/**
 * Times `fn` (which records GPU work through `batcher`, e.g. a kernel launch) over `reps` calls.
 * `fn` may be async; its GPU work is what gets timed.
 */
export async function timeGpu(
  batcher: CommandBatcher,
  fn: () => void | Promise<void>,
  reps = 10,
  opts: TimeGpuOptions = {},
): Promise<GpuTiming> {
  const device = batcher.device;
  if (batcher.passTimestamps) throw new HotpathsError('E_ARG', 'timeGpu: another measurement is running on this backend');
  reps = Math.max(1, Math.floor(reps));
  for (let i = 0; i < (opts.warmup ?? 1); i++) await fn();
  await batcher.sync();

  const useTimestamps = (opts.timestamps ?? true) && device.features.has('timestamp-query');
  let querySet: GPUQuerySet | undefined;
  let passes = 0;
  let overflow = false;
  let rep = 0;
  const passRep: number[] = [];
  if (useTimestamps) {
    querySet = device.createQuerySet({ type: 'timestamp', count: 2 * MAX_TIMED_PASSES, label: 'hotpaths timing' });
    const qs = querySet;
    batcher.passTimestamps = () => {
      if (passes >= MAX_TIMED_PASSES) {
        overflow = true;
        return undefined;
      }
      const i = passes++;
      passRep.push(rep);
      return { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
    };
  }

  const host: number[] = [];
  try {
    for (rep = 0; rep < reps; rep++) {
      const t0 = performance.now();
      await fn();
      batcher.flush();
      await device.queue.onSubmittedWorkDone();
      host.push(performance.now() - t0);
    }
  } finally {
    batcher.passTimestamps = undefined;
  }
  const h = summarize(host);
  const hostResult: GpuTiming = { ms: h.median, msMin: h.min, msMean: h.mean, source: 'host', hostMs: h.median, reps };
  if (!querySet) return hostResult;

  try {
    if (passes === 0 || overflow) return hostResult;
    const bytes = 16 * passes;
    const resolve = device.createBuffer({ size: bytes, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
    const staging = device.createBuffer({ size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    try {
      const enc = batcher.encoder();
      enc.resolveQuerySet(querySet, 0, 2 * passes, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, staging, 0, bytes);
      batcher.flush();
      await staging.mapAsync(MapMode.READ);
      const ts = new BigUint64Array(staging.getMappedRange(0, bytes).slice(0));
      staging.unmap();
      const first: (bigint | undefined)[] = new Array(reps).fill(undefined);
      const last: (bigint | undefined)[] = new Array(reps).fill(undefined);
      for (let i = 0; i < passes; i++) {
        const r = passRep[i]!;
        const b = ts[2 * i]!, e = ts[2 * i + 1]!;
        if (first[r] === undefined || b < first[r]!) first[r] = b;
        if (last[r] === undefined || e > last[r]!) last[r] = e;
      }
      const samples: number[] = [];
      for (let r = 0; r < reps; r++) {
        if (first[r] === undefined) return hostResult; // a rep without GPU passes: nothing to time on the GPU
        samples.push(Number(last[r]! - first[r]!) / 1e6);
      }
      const g = summarize(samples);
      // zeros, or a span far past the host's measurement, mean the queries did not work
      if (!(g.median > 0) || g.median > h.median * 1.5 + 1) return hostResult;
      return { ms: g.median, msMin: g.min, msMean: g.mean, source: 'timestamp', hostMs: h.median, reps };
    } finally {
      resolve.destroy();
      staging.destroy();
    }
  } finally {
    querySet.destroy();
  }
}

/** The Backend.deviceTimer contract: GPU milliseconds spent on the work recorded between start() and stop(). */
export interface DeviceTimer {
  start(): void;
  stop(): Promise<number>;
}

/**
 * A timer over timestamp queries: every compute pass recorded between start() and stop() carries a
 * begin/end pair, and stop() resolves to the total time covered by those passes (overlaps merged),
 * so host gaps between submissions do not count. Undefined when the device lacks 'timestamp-query'.
 */
export function createDeviceTimer(batcher: CommandBatcher): DeviceTimer | undefined {
  const device = batcher.device;
  if (!device.features.has('timestamp-query')) return undefined;
  let querySet: GPUQuerySet | undefined;
  let passes = 0;
  let overflow = false;
  let active = false;
  let hostStart = 0;
  return {
    start(): void {
      if (active) throw new HotpathsError('E_ARG', 'deviceTimer.start(): the timer is already running; call stop() first');
      if (batcher.passTimestamps) throw new HotpathsError('E_ARG', 'deviceTimer.start(): another measurement is running on this backend');
      batcher.flush(); // earlier work is not timed
      querySet ??= device.createQuerySet({ type: 'timestamp', count: 2 * MAX_TIMED_PASSES, label: 'hotpaths deviceTimer' });
      const qs = querySet;
      passes = 0;
      overflow = false;
      active = true;
      batcher.passTimestamps = () => {
        if (passes >= MAX_TIMED_PASSES) {
          overflow = true;
          return undefined;
        }
        const i = passes++;
        return { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
      };
      hostStart = performance.now();
    },
    async stop(): Promise<number> {
      if (!active) throw new HotpathsError('E_ARG', 'deviceTimer.stop(): the timer was not started');
      active = false;
      batcher.flush();
      batcher.passTimestamps = undefined;
      if (passes === 0) return 0;
      if (overflow) {
        // more passes than queries: fall back to the host's span for this measurement
        await device.queue.onSubmittedWorkDone();
        return performance.now() - hostStart;
      }
      const bytes = 16 * passes;
      const resolve = device.createBuffer({ size: bytes, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
      const staging = device.createBuffer({ size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
      try {
        const enc = batcher.encoder();
        enc.resolveQuerySet(querySet!, 0, 2 * passes, resolve, 0);
        enc.copyBufferToBuffer(resolve, 0, staging, 0, bytes);
        batcher.flush();
        await staging.mapAsync(MapMode.READ);
        const ts = new BigUint64Array(staging.getMappedRange(0, bytes).slice(0));
        staging.unmap();
        return coveredMs(ts, passes);
      } finally {
        resolve.destroy();
        staging.destroy();
      }
    },
  };
}

/** Total length in ms of the union of the [begin, end] intervals held in `ts` (begin/end pairs). */
function coveredMs(ts: BigUint64Array, passes: number): number {
  const spans: [bigint, bigint][] = [];
  for (let i = 0; i < passes; i++) {
    const b = ts[2 * i]!, e = ts[2 * i + 1]!;
    if (e > b) spans.push([b, e]);
  }
  spans.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  let total = 0n;
  let curB = -1n, curE = -1n;
  for (const [b, e] of spans) {
    if (b > curE) {
      if (curE > curB) total += curE - curB;
      curB = b;
      curE = e;
    } else if (e > curE) {
      curE = e;
    }
  }
  if (curE > curB) total += curE - curB;
  return Number(total) / 1e6;
}
