// bench/measurement.ts timeDevice: the warm-up before the timed batches, and the median it returns.
import { describe, expect, it } from 'vitest';
import { timeDevice } from '../bench/measurement.js';
import type { Backend } from '../src/runtime/backend.js';

/**
 * A backend with only what timeDevice touches: sync, and a device timer reporting 1 ms for each call
 * counted in `state.calls` since its start.
 */
function fakeBackend(log: string[], starts: number[], state: { calls: number }): Backend {
  return {
    deviceTimer: {
      start: () => {
        log.push('start');
        starts.push(performance.now());
        state.calls = 0;
      },
      stop: async () => {
        log.push('stop');
        return state.calls;
      },
    },
    sync: async () => {
      log.push('sync');
    },
  } as unknown as Backend;
}

describe('bench/measurement.ts timeDevice', () => {
  it('runs the op once (a slow first call not counted), then back to back for the warm-up span, before the first timed batch', async () => {
    for (const quick of [true, false]) {
      const log: string[] = [];
      const starts: number[] = [];
      const state = { calls: 0 };
      const b = fakeBackend(log, starts, state);
      const times: number[] = [];
      const ms = await timeDevice(b, async () => {
        state.calls++;
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
