// Shared pieces of Backend.measureCeilings: the copy size, a calibration loop that grows a work size
// until one run is long enough to time, medians, and the final check that a ceiling is a number.

import { HotpathsError } from '../errors.js';
import type { MachineCeilings } from './backend.js';

const MiB = 2 ** 20;

/** Bytes of the ceiling copy: 256 MiB, or 64 MiB when quick (then capped by `limit`, whole MiB). */
export function ceilingCopyBytes(quick: boolean, limit = Infinity): number {
  const want = (quick ? 64 : 256) * MiB;
  const cap = Math.floor(limit / MiB) * MiB;
  if (cap < MiB) throw new HotpathsError('E_TOO_LARGE', `measureCeilings: the backend cannot hold a 1 MiB copy buffer (limit ${limit} bytes)`);
  return Math.min(want, cap);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median wall-clock ms of `reps` runs of `fn` (each awaited), after `warmup` untimed runs. */
export async function medianHostMs(fn: () => unknown, reps: number, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

/**
 * The smallest work size (from `start`, growing up to 16× a step) whose run takes at least `targetMs`
 * by `timeOnce(size)`, or `max`. Keeps a timed run far above timer resolution and launch overhead.
 */
export async function calibrate(timeOnce: (size: number) => Promise<number>, start: number, targetMs: number, max: number): Promise<number> {
  let size = Math.max(1, Math.min(start, max));
  for (;;) {
    const ms = await timeOnce(size);
    if (ms >= targetMs || size >= max) return size;
    const grow = ms > 0 ? Math.min(16, Math.max(2, (targetMs / ms) * 1.1)) : 16;
    size = Math.min(max, Math.ceil(size * grow));
  }
}

/** The ceilings, after checking that both are finite and positive (E_NONFINITE otherwise). */
export function checkedCeilings(backend: string, c: MachineCeilings): MachineCeilings {
  for (const [key, v] of Object.entries(c)) {
    if (!(Number.isFinite(v) && v > 0)) {
      throw new HotpathsError('E_NONFINITE', `measureCeilings (${backend}): ${key} came out as ${v}; the timer did not measure the work (0 ms?)`);
    }
  }
  return c;
}
