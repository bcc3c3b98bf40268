// The in-page half of tests/web.test.ts, bundled by the test with `hotpaths/web` left as an import
// that the page's import map points at the bundle under test (dist/web/hotpaths.js's build). Node
// drives it through window.hotpathsTest and compares what comes back with its own reference run.

import * as hp from 'hotpaths/web';
import { byoInputs, hashBytes, WEB_CASES, type Outputs } from './cases.js';

type Wire = Record<string, { type: string; b64: string }>;

function toWire(o: Outputs): Wire {
  const out: Wire = {};
  for (const [k, v] of Object.entries(o)) {
    const u = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    let s = '';
    for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000));
    out[k] = { type: v.constructor.name, b64: btoa(s) };
  }
  return out;
}

const runtimes = new Map<string, Promise<hp.Runtime>>();
function runtime(name: 'webgpu' | 'reference'): Promise<hp.Runtime> {
  let p = runtimes.get(name);
  if (!p) runtimes.set(name, (p = hp.init({ backend: name, verbose: false })));
  return p;
}

const api = {
  /** The webgpu backend's details (adapter, features, limits) as `hotpaths info` prints them. */
  async info(): Promise<Record<string, unknown>> {
    const rt = await runtime('webgpu');
    return { deviceName: rt.backend.deviceName, ...rt.backend.details };
  },

  /** One case on one backend of the bundle; skipped when the backend lacks the case's family. */
  async runCase(name: string, backend: 'webgpu' | 'reference', seed: number): Promise<{ skipped?: string; outputs?: Wire }> {
    const c = WEB_CASES.find((x) => `${x.family} ${x.name}` === name);
    if (!c) throw new Error(`no case '${name}'`);
    const rt = await runtime(backend);
    if (!rt.backend[c.family]) return { skipped: `the ${backend} backend has no ${c.family} kernels in this build` };
    hp.setPoison(true); // outputs a kernel never wrote show up as NaN / 0xFF
    try {
      return { outputs: toWire(await c.run(hp, rt, seed)) };
    } finally {
      hp.setPoison(false);
    }
  },

  /**
   * Bring your own device, in a fresh page (before any other webgpu use): init() with the page's
   * GPUDevice, a tensor over the page's GPUBuffer, the result handed back as a GPUBuffer and read by
   * the page's own commands; a second write to the same buffer shows the tensor holds no copy.
   */
  async byo(seed: number): Promise<Record<string, unknown>> {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error('no adapter');
    const device = await adapter.requestDevice();
    const rt = await hp.init({ backend: 'webgpu', device });
    const x = byoInputs(seed);
    const n = x.length;
    const inBuf = device.createBuffer({ size: Math.ceil((n * 4) / 16) * 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    device.queue.writeBuffer(inBuf, 0, x as Float32Array<ArrayBuffer>);
    const xt = rt.wrapGPUBuffer(inBuf, 'f32', [n]);
    const readMine = async (buf: GPUBuffer, bytes: number): Promise<Uint8Array> => {
      const staging = device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(buf, 0, staging, 0, staging.size);
      device.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const out = new Uint8Array(staging.getMappedRange()).slice(0, bytes);
      staging.unmap();
      staging.destroy();
      return out;
    };
    const q1 = await hp.fp8.encode(xt, 'e4m3');
    const first = await readMine(rt.gpuBufferOf(q1), n); // the page's own copy out of hotpaths' buffer
    const negated = x.map((v) => -v);
    device.queue.writeBuffer(inBuf, 0, negated as Float32Array<ArrayBuffer>); // same buffer, new contents: the wrapped tensor sees them
    const q2 = await hp.fp8.encode(xt, 'e4m3');
    const second = (await q2.read()) as Uint8Array;
    const sameDevice = (rt.backend as hp.WebGPUBackend).device === device;
    xt.dispose();
    await hp.shutdown();
    device.queue.writeBuffer(inBuf, 0, x as Float32Array<ArrayBuffer>); // the caller's device and buffer outlive hotpaths
    await device.queue.onSubmittedWorkDone();
    const after = new Float32Array((await readMine(inBuf, n * 4)).buffer);
    return { inputHash: hashBytes(x), sameDevice, first: toWire({ q: first }), second: toWire({ q: second }), bufferIntact: hashBytes(after) === hashBytes(x) };
  },
};

(window as unknown as { hotpathsTest: typeof api }).hotpathsTest = api;
document.title = 'ready';
