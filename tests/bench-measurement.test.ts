// bench/measurement.ts timeDevice: the clock primer and the warm-up before the timed batches, and the
// median it returns; timeDeviceInTurns: the batches of several ops in turns, each op's own median.
import { describe, expect, it } from 'vitest';
import { timeDevice, timeDeviceInTurns } from '../bench/measurement.js';
import type { Backend } from '../src/runtime/backend.js';

/** What the fake backend saw: events in order, the timer's starts and the primer's copies (times). */
interface Seen {
  log: string[];
  starts: number[];
  copies: number[];
  /** Device ms of the calls since the timer's last start. */
  ms: number;
}

/** A backend with only what timeDevice touches: sync, empty and copy (the primer's), and a device timer. */
function fakeBackend(seen: Seen): Backend {
  return {
    empty: () => ({ dispose: () => seen.log.push('free primer') }),
    copy: () => {
      seen.log.push('copy');
      seen.copies.push(performance.now());
      return { dispose: () => {} };
    },
    deviceTimer: {
      start: () => {
        seen.log.push('start');
        seen.starts.push(performance.now());
        seen.ms = 0;
      },
      stop: async () => seen.ms,
    },
    sync: async () => {
      seen.log.push('sync');
    },
  } as unknown as Backend;
}

/**
 * Times an op of 1 device ms a call on the fake backend, its first call 40 ms of wall time (a compile);
 * returns the result, what the backend saw and the wall times of the calls.
 */
async function run(quick: boolean) {
  const seen: Seen = { log: [], starts: [], copies: [], ms: 0 };
  const calls: number[] = [];
  const ms = await timeDevice(fakeBackend(seen), async () => {
    calls.push(performance.now());
    seen.log.push('fn');
    seen.ms += 1;
    if (calls.length === 1) await new Promise((r) => setTimeout(r, 40));
  }, quick);
  return { ms, seen, calls };
}

describe('bench/measurement.ts timeDevice', () => {
  it('runs the op once (a slow first call not counted), large copies for the primer span, then the op back to back for the warm-up span, before the timed batches', async () => {
    for (const quick of [true, false]) {
      const reps = quick ? 3 : 10;
      const { ms, seen, calls } = await run(quick);
      expect(ms).toBe(1);
      // the primer: copies between the first call and the second, for its span (10 ms with --quick,
      // 300 without), its source freed before the second call
      const fn1 = seen.log.indexOf('fn'), fn2 = seen.log.indexOf('fn', fn1 + 1);
      expect(seen.log.slice(fn1, fn2).filter((e) => e === 'copy').length).toBe(seen.copies.length);
      expect(seen.copies.length).toBeGreaterThanOrEqual(4);
      expect(seen.log.indexOf('free primer')).toBeGreaterThan(seen.log.lastIndexOf('copy'));
      expect(seen.log.indexOf('free primer')).toBeLessThan(fn2);
      expect(calls[1]! - seen.copies[0]!).toBeGreaterThanOrEqual(quick ? 9 : 299);
      // from the second call to the first timed batch: at least the warm-up's span (10 ms with
      // --quick, 200 without); then `reps` batches of 5 calls
      expect(seen.starts.length).toBe(reps);
      expect(seen.starts[0]! - calls[1]!).toBeGreaterThanOrEqual(quick ? 9 : 199);
      expect(calls.filter((t) => t >= seen.starts[0]!).length).toBe(5 * reps);
    }
  });

  it('is undefined on a backend without a device timer', async () => {
    expect(await timeDevice({ sync: async () => {} } as unknown as Backend, async () => {}, true)).toBeUndefined();
    expect(await timeDeviceInTurns({ sync: async () => {} } as unknown as Backend, [async () => {}], true)).toBeUndefined();
  });
});

describe('bench/measurement.ts timeDeviceInTurns', () => {
  it('warms every op up, then times one batch of each op per round, in turns, and returns each op\'s median', async () => {
    for (const quick of [true, false]) {
      const reps = quick ? 3 : 10;
      // op i costs i + 1 device ms a call, except in the second timed round, where op 0's batch is slow
      // (an outlier its median must drop): the medians are 1, 2, 3 only if each batch is op i's alone
      const seen: Seen = { log: [], starts: [], copies: [], ms: 0 };
      const backend = fakeBackend(seen);
      const timer = backend.deviceTimer as { start: () => void };
      const start = timer.start;
      let round = -1;
      timer.start = () => {
        start();
        round = Math.floor((seen.starts.length - 1) / 3);
      };
      const ops = [0, 1, 2].map((i) => async () => {
        seen.log.push(`fn${i}`);
        seen.ms += i === 0 && round === 1 ? 50 : i + 1;
      });
      const ms = await timeDeviceInTurns(backend, ops, quick);
      expect(ms).toEqual([1, 2, 3]);
      // each op once before the primer's copies, then the timed batches: 5 calls of one op after each
      // start, the ops in turn
      const firstCopy = seen.log.indexOf('copy');
      expect(seen.log.slice(0, firstCopy).filter((e) => e.startsWith('fn'))).toEqual(['fn0', 'fn1', 'fn2']);
      expect(seen.starts.length).toBe(3 * reps);
      const timedLog = seen.log.slice(seen.log.indexOf('start'));
      const batches = timedLog.join(' ').split('start').map((b) => b.trim()).filter((b) => b);
      expect(batches.length).toBe(3 * reps);
      batches.forEach((b, j) => expect(b).toBe(Array(5).fill(`fn${j % 3}`).join(' ')));
    }
  });
});
