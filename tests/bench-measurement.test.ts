// bench/measurement.ts timeDevice: the warm-up before the timed batches, and the median it returns.
import { describe, expect, it } from 'vitest';
import { timeDevice } from '../bench/measurement.js';
import type { Backend } from '../src/runtime/backend.js';

/** A backend with only what timeDevice touches: a device timer reporting 1 ms a call, and sync. */
function fakeBackend(log: string[], starts: number[]): Backend {
  let calls = 0;
  return {
    deviceTimer: {
      start: () => {
        log.push('start');
        starts.push(performance.now());
        calls = 0;
      },
      stop: async () => {
        log.push('stop');
        return calls; // 1 ms a call
      },
    },
    sync: async () => {
      log.push('sync');
    },
    _count: () => calls++,
  } as unknown as Backend;
}

describe('bench/measurement.ts timeDevice', () => {
  it('runs the op once (a slow first call not counted), then back to back for the warm-up span, before the first timed batch', async () => {
    for (const quick of [true, false]) {
      const log: string[] = [];
      const starts: number[] = [];
      const b = fakeBackend(log, starts);
      const times: number[] = [];
      const ms = await timeDevice(b, async () => {
        (b as unknown as { _count(): void })._count();
        times.push(performance.now());
        log.push('fn');
        if (times.length === 1) await new Promise((r) => setTimeout(r, 40)); // a first call that compiles: slow
      }, quick);
      expect(ms).toBe(5 / 5); // 5 calls a batch, 1 ms each
      const first = log.indexOf('start');
      const warm = times.slice(0, log.slice(0, first).filter((e) => e === 'fn').length);
      expect(warm.length).toBeGreaterThanOrEqual(2);
      // from the second call to the first timed batch: at least the warm-up's span (10 ms with --quick, 200 without)
      expect(starts[0]! - warm[1]!).toBeGreaterThanOrEqual(quick ? 9 : 199); // (timeDevice reads its clock just before the second call)
      expect(log.filter((e) => e === 'start').length).toBe(quick ? 3 : 10);
    }
  });

  it('is undefined on a backend without a device timer', async () => {
    expect(await timeDevice({ sync: async () => {} } as unknown as Backend, async () => {}, true)).toBeUndefined();
  });
});
