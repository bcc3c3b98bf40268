// The test helpers that decide pass or fail by themselves: a fast path must still fail on one byte.
import { describe, expect, it } from 'vitest';
import { init } from '../src/index.js';
import { expectSameBytes, sameBytes } from './helpers.js';
import { unpaddedBytes } from './nccl/padding.mjs';

describe('test helpers', () => {
  it('sameBytes / expectSameBytes: equal bytes pass; one changed byte or a byte length apart fails, naming the byte', () => {
    const a = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 255);
    const b = a.slice();
    expect(sameBytes(a, b)).toBe(true);
    expectSameBytes(a, b, 'equal');
    b[777_777] = b[777_777]! ^ 0x10;
    expect(sameBytes(a, b)).toBe(false);
    expect(() => expectSameBytes(b, a, 'one byte')).toThrow(/one byte: 1 of 1048576 bytes differ, the first at byte 777777/);
    expect(() => expectSameBytes(a.subarray(1), a, 'short')).toThrow(/short: 1048575 bytes, want 1048576/);
    // views at an offset compare their own bytes, not the whole buffer's
    expect(sameBytes(a.subarray(8, 16), b.subarray(8, 16))).toBe(true);
    expect(sameBytes(new Float32Array([0, 1]), new Float32Array([-0, 1]))).toBe(false);
    expect(sameBytes(new Uint16Array(2), new Uint8Array(2))).toBe(false);
  });

  it('unpaddedBytes: zeroes exactly the rows whose rowExpert is −1, with the width from the tensor\'s own rows (rowExpert may be longer)', async () => {
    const ref = (await init({ backend: 'reference' })).backend;
    const P = 4, w = 6;
    const rows = new Uint8Array(P * w).map((_, i) => i + 1);
    const t = ref.fromHost(rows, 'u8', [P, w]);
    // Pmax = 7 > P: the entries past P name no row of t
    const got = await unpaddedBytes(t, Int32Array.of(3, -1, 0, -1, -1, -1, -1));
    const want = rows.slice();
    want.fill(0, 1 * w, 2 * w);
    want.fill(0, 3 * w, 4 * w);
    expectSameBytes(got, want, 'rows 1 and 3 zeroed, the others kept');
  });
});
