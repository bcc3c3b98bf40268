// sliceRows: views that share a tensor's storage, on every backend — reads, a kernel reading a view,
// a kernel writing into a view (the rest of the tensor untouched), alignment rules, and disposal. And
// shrinkTo with a byte offset (the windows dispatch's recv): the storage handed over from the offset
// on, where the backend can (takeStorage), released whole; and (cuda) storage lent from outside the
// pool, which goes back through its own release.

import { describe, expect, it } from 'vitest';
import { fp8, init } from '../src/index.js';
import type { Backend } from '../src/runtime/backend.js';
import { shrinkTo, sliceRows, Tensor } from '../src/tensor.js';
import { backendsUnderTest, randomF32, rng } from './helpers.js';

const ref = await init({ backend: 'reference' });
const under = [{ name: 'reference' as const, backend: ref.backend as Backend, skip: undefined }, ...(await backendsUnderTest())];

for (const u of under) {
  (u.skip ? describe.skip : describe)(`sliceRows on ${u.name}`, () => {
    it('reads, feeds a kernel and receives a kernel output; the rest of the tensor is untouched', async () => {
      const b = u.backend as Backend;
      const [R, C] = [256, 64]; // a row is 256 bytes of f32: every row start is 256-byte aligned
      const x = randomF32(R * C, rng(3), 10);
      const t = b.fromHost(x, 'f32', [R, C]);
      const v = sliceRows(t, 64, 192);
      expect(v.shape).toEqual([128, C]);
      expect([...((await v.read()) as Float32Array)]).toEqual([...x.subarray(64 * C, 192 * C)]);
      const q = await fp8.encode(v);
      const want = (await (await fp8.encode(ref.tensor(x.subarray(64 * C, 192 * C), [128, C]))).read()) as Uint8Array;
      expect([...((await q.read()) as Uint8Array)]).toEqual([...want]);
      // a kernel writing into a view of a larger output
      const out = b.fromHost(new Uint8Array(R * C).fill(7), 'fp8e4m3', [R, C]);
      await b.fp8.encode(v, 'e4m3', sliceRows(out, 64, 192));
      const all = (await out.read()) as Uint8Array;
      expect([...all.subarray(64 * C, 192 * C)]).toEqual([...want]);
      expect(all.subarray(0, 64 * C).every((c) => c === 7) && all.subarray(192 * C).every((c) => c === 7)).toBe(true);
      v.dispose(); // a view's dispose never releases the parent's storage
      expect([...((await t.read()) as Float32Array)].slice(0, 4)).toEqual([...x.subarray(0, 4)]);
    });

    it(u.name === 'reference' || u.name === 'cpu' ? 'host views start anywhere' : 'GPU views must start on a 256-byte boundary', async () => {
      const b = u.backend as Backend;
      const t: Tensor = b.fromHost(new Float32Array(10 * 3).fill(1), 'f32', [10, 3]);
      if (u.name === 'reference' || u.name === 'cpu') expect((await sliceRows(t, 1, 2).read())[0]).toBe(1);
      else expect(() => sliceRows(t, 1, 2)).toThrow(/256|multiple/);
      expect(() => sliceRows(t, 5, 11)).toThrow(/not inside/);
    });

    it((u.backend as Backend | undefined)?.takeStorage ? 'shrinkTo hands over storage from a byte offset, released whole' : 'shrinkTo from a byte offset says this backend cannot', async () => {
      const b = u.backend as Backend;
      const [R, C] = [8, 64]; // 256 bytes a row
      const x = randomF32(R * C, rng(5), 10);
      const t = b.fromHost(x, 'f32', [R, C]);
      expect(() => shrinkTo(t, [R, C], 256)).toThrow(expect.objectContaining({ code: 'E_SHAPE' }));
      if (!b.takeStorage) {
        expect(() => shrinkTo(t, [2, C], 256)).toThrow(expect.objectContaining({ code: 'E_NOT_IMPLEMENTED' }));
        t.dispose();
        return;
      }
      expect(() => shrinkTo(t, [2, C], 4)).toThrow(/256|multiple/);
      const before = b.memoryStats!().inUse;
      const ptr = (t.storage as { ptr?: bigint }).ptr;
      const s = shrinkTo(t, [3, C], 2 * 256); // rows 2..4
      expect(s.shape).toEqual([3, C]);
      expect([...((await s.read()) as Float32Array)]).toEqual([...x.subarray(2 * C, 5 * C)]);
      s.dispose(); // gives back t's whole allocation
      const after = b.memoryStats!().inUse;
      expect(before - after).toBeGreaterThanOrEqual(R * C * 4);
      t.dispose(); // (t was handed over: disposing it releases nothing more)
      expect(b.memoryStats!().inUse).toBe(after);
      // the pool got the allocation's own address back, not the offset one (it hands out the last freed)
      const again = b.empty('f32', [R, C]);
      if (ptr !== undefined) expect((again.storage as { ptr?: bigint }).ptr).toBe(ptr);
      again.dispose();
    });

    if (u.name === 'cuda') {
      it('storage lent from outside the pool (an NCCL group\'s receive region) goes back through its own release, also after shrinkTo', async () => {
        const b = u.backend as Backend;
        const [R, C] = [8, 64];
        const x = randomF32(R * C, rng(6), 10);
        const home = b.fromHost(x, 'f32', [R, C]); // stands for the lent memory
        const before = b.memoryStats!().inUse;
        let released = 0;
        const lent = new Tensor(b, 'f32', [R, C], { ptr: (home.storage as { ptr: bigint }).ptr, bytes: R * C * 4, onRelease: () => released++ });
        const s = shrinkTo(lent, [2, C], 3 * 256); // rows 3..4
        expect([...((await s.read()) as Float32Array)]).toEqual([...x.subarray(3 * C, 5 * C)]);
        s.dispose();
        lent.dispose();
        expect(released).toBe(1);
        expect(b.memoryStats!().inUse).toBe(before); // the pool took nothing back
        home.dispose();
      });
    }
  });
}
