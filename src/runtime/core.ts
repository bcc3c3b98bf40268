// Backend registry and selection, with no Node-only import: the entry points hand it their backend
// factories (src/runtime/index.ts: all four, for Node; src/web.ts: reference and webgpu, for a
// browser). Backends start lazily and once; `init({ backend: 'auto' })` picks cuda > webgpu > cpu >
// reference from what actually works here, and says why each one it passed over was skipped.

import { allocHost, assertDType, hostArrayMatches, type DType, type HostArray } from '../dtype.js';
import { HotpathsError, show } from '../errors.js';
import { assertShape, numel, setBackendResolver, type Tensor } from '../tensor.js';
import { BACKEND_NAMES, type Backend, type BackendName } from './backend.js';
import type { WebGPUBackend } from '../webgpu/backend.js';

export interface InitOptions {
  /** Which backend to use; 'auto' (the default) picks the best that works here. */
  backend?: 'auto' | BackendName;
  /** WebGPU: use this device (a page's or a framework's) instead of creating one. */
  device?: GPUDevice;
  /** WebGPU: extra Dawn toggles for the `webgpu` package's create(), e.g. 'adapter=…'. */
  dawnFlags?: string[];
  /** Print the choice and the skipped backends to stderr (default: true for 'auto'). */
  verbose?: boolean;
}

export interface BackendProbe {
  name: BackendName;
  ok: boolean;
  /** Why it cannot be used, or what it runs on. */
  reason: string;
  device?: string;
}

export interface Runtime {
  readonly backend: Backend;
  readonly name: BackendName;
  /** What was picked and why, and each skipped backend with its reason. */
  readonly selection: { picked: BackendName; skipped: { name: BackendName; reason: string }[] };
  /** A tensor on this runtime's backend holding a copy of `data` (dtype from the array, or given). */
  tensor(data: HostArray | readonly number[], shape: readonly number[], dtype?: DType): Tensor;
  /** A tensor on this backend with unspecified contents. */
  empty(dtype: DType, shape: readonly number[]): Tensor;
  /** Resolves when all submitted work has finished. */
  sync(): Promise<void>;
  /**
   * WebGPU only: a tensor over a caller's GPUBuffer, without a copy (STORAGE usage needed, COPY_SRC
   * to read it back). The buffer stays the caller's: dispose() never destroys or pools it.
   */
  wrapGPUBuffer(buffer: GPUBuffer, dtype: DType, shape: readonly number[]): Tensor;
  /** WebGPU only: the GPUBuffer behind a tensor (payload at offset 0, padded to 4 bytes), for zero-copy hand-off. */
  gpuBufferOf(t: Tensor): GPUBuffer;
}

/** What init() passes to the webgpu factory: the caller's device and Dawn flags. */
export interface WebGPUStartOptions {
  device?: GPUDevice;
  flags?: string[];
}

/** How to start each backend this entry point ships; a factory throws E_BACKEND with the reason it cannot run. */
export type BackendFactories = Partial<Record<BackendName, (webgpu: WebGPUStartOptions) => Backend | Promise<Backend>>>;

const factories: BackendFactories = {};
const started = new Map<BackendName, Promise<Backend>>();
/** The backends whose start has finished, for callers that cannot wait (moe.localGroup('cpu')). */
const ready = new Map<BackendName, Backend>();
let webgpuOptions: WebGPUStartOptions = {};

/** Called once by an entry point (src/runtime/index.ts, src/web.ts) with the backends it ships. */
export function setBackendFactories(f: BackendFactories): void {
  Object.assign(factories, f);
}

async function start(name: BackendName): Promise<Backend> {
  const factory = factories[name];
  if (!factory) throw new HotpathsError('E_BACKEND', `${name} backend unavailable: not part of this build (the browser entry hotpaths/web has reference and webgpu only)`);
  return factory(webgpuOptions);
}

/** The backend `name`, started on first use. Throws E_BACKEND with the reason when it cannot run here. */
export function getBackend(name: BackendName): Promise<Backend> {
  if (!BACKEND_NAMES.includes(name)) {
    return Promise.reject(new HotpathsError('E_ARG', `backend: expected one of ${BACKEND_NAMES.join(', ')} or 'auto', got ${show(name)}`));
  }
  let p = started.get(name);
  if (!p) {
    p = start(name);
    started.set(name, p);
    p.then((b) => ready.set(name, b), () => started.delete(name)); // a failed start may be retried (after a build, say)
  }
  return p;
}
setBackendResolver(getBackend);

/** The backend `name` if it has already started (init() or getBackend() resolved), else undefined. */
export function startedBackend(name: BackendName): Backend | undefined {
  return ready.get(name);
}

/** Tries to start a backend and reports whether it works and why not. */
export async function probeBackend(name: BackendName): Promise<BackendProbe> {
  try {
    const b = await getBackend(name);
    return { name, ok: true, reason: `runs on ${b.deviceName}`, device: b.deviceName };
  } catch (e) {
    return { name, ok: false, reason: (e as Error).message.replace(/^\w+ backend unavailable: /, '') };
  }
}

/** Releases every started backend's device and pools; the process can then exit. */
export async function shutdown(): Promise<void> {
  for (const [name, p] of started) {
    started.delete(name);
    ready.delete(name);
    try {
      (await p).destroy?.();
    } catch {
      /* a backend that failed to start has nothing to release */
    }
  }
}

/** Software WebGPU adapters (lavapipe, SwiftShader) work, but the native cpu backend beats them. */
function isSoftwareAdapter(b: Backend): boolean {
  return b.details?.software === true;
}

/** Starts hotpaths on one backend. */
export async function init(opts: InitOptions = {}): Promise<Runtime> {
  const want = opts.backend ?? 'auto';
  if (opts.device || opts.dawnFlags) {
    if (started.has('webgpu')) {
      throw new HotpathsError('E_ARG', 'init(): the webgpu backend is already running; pass `device`/`dawnFlags` to the first init() call');
    }
    webgpuOptions = { ...(opts.device ? { device: opts.device } : {}), ...(opts.dawnFlags ? { flags: opts.dawnFlags } : {}) };
  }
  const skipped: { name: BackendName; reason: string }[] = [];
  let backend: Backend | undefined;
  if (want === 'auto') {
    for (const name of ['cuda', 'webgpu', 'cpu', 'reference'] as const) {
      const p = await probeBackend(name);
      if (!p.ok) {
        skipped.push({ name, reason: p.reason });
        continue;
      }
      const b = await getBackend(name);
      if (name === 'webgpu' && isSoftwareAdapter(b) && !opts.device) {
        skipped.push({ name, reason: `software adapter (${b.deviceName}); the cpu backend is faster — ask for 'webgpu' by name to use it` });
        continue;
      }
      backend = b;
      break;
    }
  } else {
    backend = await getBackend(want);
  }
  if (!backend) throw new HotpathsError('E_BACKEND', 'init(): no backend works on this machine'); // reference always does
  const verbose = opts.verbose ?? want === 'auto';
  if (verbose) {
    const lines = [`hotpaths: using ${backend.name} (${backend.deviceName})`];
    for (const s of skipped) lines.push(`  skipped ${s.name}: ${s.reason}`);
    console.error(lines.join('\n')); // stderr in Node, the console in a browser
  }
  return makeRuntime(backend, skipped);
}

function makeRuntime(backend: Backend, skipped: { name: BackendName; reason: string }[]): Runtime {
  return {
    backend,
    name: backend.name,
    selection: { picked: backend.name, skipped },
    tensor: (data, shape, dtype) => createTensor(backend, data, shape, dtype),
    empty: (dtype, shape) => {
      assertDType('empty(): dtype', dtype);
      assertShape('empty(): shape', shape);
      return backend.empty(dtype, shape);
    },
    sync: () => backend.sync(),
    wrapGPUBuffer: (buffer, dtype, shape) => asWebGPU(backend, 'wrapGPUBuffer()').wrapBuffer(buffer, dtype, shape),
    gpuBufferOf: (t) => {
      const wb = asWebGPU(backend, 'gpuBufferOf()');
      if (t.backend !== backend) throw new HotpathsError('E_DEVICE', `gpuBufferOf(): ${t.describe()} is not on this runtime's webgpu backend`);
      t.assertLive('gpuBufferOf()');
      const s = wb.storageOf(t);
      if (s.offset) throw new HotpathsError('E_ARG', `gpuBufferOf(): ${t.describe()} is a view at byte ${s.offset} of its buffer, not a whole buffer`);
      return s.buffer;
    },
  };
}

function asWebGPU(backend: Backend, what: string): WebGPUBackend {
  if (backend.name !== 'webgpu') throw new HotpathsError('E_DEVICE', `${what}: needs the webgpu backend, this runtime is on ${backend.name}`);
  return backend as WebGPUBackend;
}

/** Validates host data against a shape and dtype and uploads it. */
export function createTensor(backend: Backend, data: HostArray | readonly number[], shape: readonly number[], dtype?: DType): Tensor {
  assertShape('tensor(): shape', shape);
  let arr: HostArray;
  if (Array.isArray(data)) {
    const dt = dtype ?? 'f32';
    assertDType('tensor(): dtype', dt);
    if (dt !== 'f32' && dt !== 'i32' && dt !== 'u8' && dt !== 'fp8e4m3' && dt !== 'fp8e5m2') {
      throw new HotpathsError('E_DTYPE', `tensor(): plain number arrays make f32, i32 or byte tensors; for ${dt} pass a Uint16Array of bit patterns (see toBf16())`);
    }
    arr = allocHost(dt, data.length);
    arr.set(data as number[]);
    dtype = dt;
  } else if (ArrayBuffer.isView(data)) {
    arr = data as HostArray;
    dtype ??= inferDType(arr);
    assertDType('tensor(): dtype', dtype);
    if (!hostArrayMatches(dtype, arr)) {
      throw new HotpathsError('E_DTYPE', `tensor(): a ${dtype} tensor needs a ${storageName(dtype)}, got ${show(arr)}`);
    }
  } else {
    throw new HotpathsError('E_ARG', `tensor(): data: expected a typed array or an array of numbers, got ${show(data)}`);
  }
  const n = numel(shape);
  if (arr.length !== n) {
    throw new HotpathsError('E_SHAPE', `tensor(): data has ${arr.length} elements but shape ${show(shape)} holds ${n}`);
  }
  return backend.fromHost(arr, dtype, shape);
}

function inferDType(a: HostArray): DType {
  if (a instanceof Float32Array) return 'f32';
  if (a instanceof Int32Array) return 'i32';
  if (a instanceof Uint8Array) return 'u8';
  throw new HotpathsError('E_DTYPE', `tensor(): a ${show(a)} is ambiguous (bf16 or f16?); pass the dtype`);
}

function storageName(d: DType): string {
  return { f32: 'Float32Array', i32: 'Int32Array', bf16: 'Uint16Array', f16: 'Uint16Array' }[d as 'f32'] ?? 'Uint8Array';
}
