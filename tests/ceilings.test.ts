// Machine ceilings: every backend that runs here measures a finite, plausible copy bandwidth and FP32
// FMA throughput (Backend.measureCeilings, quick sizes), and the bench never reports or caches a
// ceiling that is not a finite positive number.

import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getBackend } from '../src/runtime/index.js';
import type { Backend } from '../src/runtime/backend.js';
import type { WebGPUBackend } from '../src/webgpu/backend.js';
import { launchCopy } from '../src/webgpu/ceiling.js';
import { CommandBatcher, PipelineCache } from '../src/webgpu/pipelines.js';
import { ceilingsFor } from '../bench/ceilings.js';
import { backendsUnderTest, type BackendUnderTest } from './helpers.js';

const under: BackendUnderTest[] = [{ name: 'reference', backend: await getBackend('reference') }, ...(await backendsUnderTest())];

for (const b of under) {
  describe.skipIf(!!b.skip)(`${b.name} ceilings${b.skip ? ` (skipped: ${b.skip})` : ''}`, () => {
    it('measureCeilings({ quick: true }) gives finite copy GB/s and FP32 TFLOP/s in a plausible range', async () => {
      const be = b.backend as Backend;
      expect(be.measureCeilings).toBeTypeOf('function');
      const c = await be.measureCeilings!({ quick: true });
      console.log(`[ceilings] ${be.name} (${be.deviceName}): copy ${c.copyGBps.toFixed(2)} GB/s, fp32 ${c.fp32Tflops.toFixed(4)} TFLOP/s`);
      expect(Number.isFinite(c.copyGBps)).toBe(true);
      expect(Number.isFinite(c.fp32Tflops)).toBe(true);
      expect(c.copyGBps).toBeGreaterThanOrEqual(0.1);
      expect(c.copyGBps).toBeLessThanOrEqual(20_000);
      expect(c.fp32Tflops).toBeGreaterThanOrEqual(0.0001);
      expect(c.fp32Tflops).toBeLessThanOrEqual(500);
    });

    if (b.name !== 'webgpu') return;
    it('the copy kernel copies every byte (a count of vec4s no workgroup divides)', async () => {
      const be = b.backend as WebGPUBackend;
      const batcher = new CommandBatcher(be.device);
      const ctx = { backend: be, batcher, pipelines: new PipelineCache(be.device, batcher) };
      const n = 4 * (256 * 4 * 3 + 37); // u32 words: 3 full workgroups and a ragged one
      const data = new Int32Array(n).map((_, i) => (i * 2654435761) | 0);
      const src = be.fromHost(data, 'i32', [n]);
      const dst = be.fromHost(new Int32Array(n).fill(-1), 'i32', [n]);
      await be.sync();
      launchCopy(ctx, be.storageOf(src).buffer, be.storageOf(dst).buffer, n * 4);
      await batcher.sync();
      expect(Array.from(await be.read(dst))).toEqual(Array.from(data));
      src.dispose();
      dst.dispose();
    });
  });
}

describe('bench ceilings cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hotpaths-ceilings-'));
  const saved = process.env.HOTPATHS_CACHE;
  process.env.HOTPATHS_CACHE = dir;
  afterAll(() => {
    if (saved === undefined) delete process.env.HOTPATHS_CACHE;
    else process.env.HOTPATHS_CACHE = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  /** The reference backend with a stubbed measureCeilings (a fake device name keeps its own cache key). */
  async function stubbed(copyGBps: number, fp32Tflops: number): Promise<Backend> {
    const ref = await getBackend('reference');
    return { ...ref, deviceName: `stub ${copyGBps} ${fp32Tflops}`, measureCeilings: async () => ({ copyGBps, fp32Tflops }) };
  }

  it('throws on a non-finite ceiling and caches nothing', async () => {
    await expect(ceilingsFor(await stubbed(Infinity, 1), { remeasure: true, quick: false })).rejects.toThrow(/copyGBps.*Infinity/);
    await expect(ceilingsFor(await stubbed(10, NaN), { remeasure: true, quick: false })).rejects.toThrow(/tflops.*NaN/);
    expect(existsSync(join(dir, 'ceilings.json'))).toBe(false);
  });

  it('caches both numbers and answers from the cache next time', async () => {
    const be = await stubbed(12.5, 0.25);
    expect(await ceilingsFor(be, { remeasure: false, quick: false })).toMatchObject({ copyGBps: 12.5, tflops: 0.25 });
    const again = await ceilingsFor({ ...be, measureCeilings: async () => ({ copyGBps: 1, fp32Tflops: 1 }) }, { remeasure: false, quick: false });
    expect(again).toMatchObject({ copyGBps: 12.5, tflops: 0.25 });
  });
});
