// Bring-your-own WebGPU device: init() with a caller's GPUDevice uses it (and never destroys it), and
// tensors wrap the caller's GPUBuffers without copies, in and out.

import { describe, expect, it } from 'vitest';
import { fp8, init, shutdown } from '../src/index.js';
import { encodeValue } from '../src/reference/fp8.js';

const gpu = await (async () => {
  try {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    // keep the GPU object: dawn.node tears its instance down (and crashes the process) when the GPU
    // object is collected while one of its devices is alive
    const instance = create([]);
    const adapter = await instance.requestAdapter();
    return adapter ? { instance, device: await adapter.requestDevice() } : { skip: 'no WebGPU adapter on this machine' };
  } catch (e) {
    return { skip: `the webgpu package does not load: ${(e as Error).message}` };
  }
})();
if (gpu.skip) {
  if ((process.env.HOTPATHS_REQUIRE ?? '').includes('webgpu')) throw new Error(`webgpu is required here: ${gpu.skip}`);
  console.warn(`[skip] webgpu device: ${gpu.skip}`);
}

describe.skipIf(!!gpu.skip)(`webgpu with the caller's device${gpu.skip ? ` (skipped: ${gpu.skip})` : ''}`, () => {
  it('runs kernels on wrapped buffers with no copies and leaves the device alive', async () => {
    const device = gpu.device!;
    const rt = await init({ backend: 'webgpu', device });
    expect(rt.name).toBe('webgpu');
    const n = 7; // not a multiple of 4: the fp8 output buffer is padded to 8 bytes
    const x = new Float32Array([1, -2, 448, 500, 0.001, NaN, -0]);
    const inBuf = device.createBuffer({ size: 32, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    device.queue.writeBuffer(inBuf, 0, x);
    const xt = rt.wrapGPUBuffer(inBuf, 'f32', [n]);
    const q = await fp8.encode(xt, 'e4m3');
    const outBuf = rt.gpuBufferOf(q); // hand the result to the caller's own pipeline without a copy
    const staging = device.createBuffer({ size: 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(outBuf, 0, staging, 0, 8);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const got = [...new Uint8Array(staging.getMappedRange()).slice(0, n)];
    staging.unmap();
    expect(got).toEqual([...x].map((v) => encodeValue(v, 'e4m3')));
    xt.dispose(); // a caller's buffer is never destroyed or pooled
    await shutdown();
    device.queue.writeBuffer(inBuf, 0, x); // the caller's device and buffer still work
    await device.queue.onSubmittedWorkDone();
    expect(() => rt.wrapGPUBuffer(device.createBuffer({ size: 4, usage: GPUBufferUsage.STORAGE }), 'f32', [4])).toThrow(/E_ARG|bytes|small/i);
    device.destroy();
    expect(gpu.instance).toBeDefined();
  });

  it('refuses GPU-only calls on another backend', async () => {
    const ref = await init({ backend: 'reference' });
    expect(() => ref.gpuBufferOf(ref.tensor([1], [1]))).toThrow(/needs the webgpu backend/);
  });
});
