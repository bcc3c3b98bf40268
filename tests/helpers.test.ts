// The test helpers that decide pass or fail by themselves: a fast path must still fail on one byte.
import { describe, expect, it } from 'vitest';
import { expectSameBytes, sameBytes } from './helpers.js';

describe('test helpers', () => {
  it('sameBytes / expectSameBytes: equal bytes pass; one changed byte, a length or an element size apart fails, naming the byte', () => {
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
});
