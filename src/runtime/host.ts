// Storage for the backends whose tensors live in host memory (reference, cpu): a typed array of the
// dtype's kind, exactly `size` elements long. Arrays of 64 KiB and more sit on pooled ArrayBuffers
// (size classes as on the GPUs): a fresh large array costs a page fault per 4 KiB on first touch,
// which would otherwise dominate every op of a loop that allocates its outputs.

import { allocHost, dtypeBytes, type DType, type HostArray } from '../dtype.js';
import { HotpathsError, show } from '../errors.js';
import { numel, Tensor } from '../tensor.js';
import type { Backend } from './backend.js';
import { poisonEnabled, POISON_BYTE } from './poison.js';
import { sizeClass } from './sizeclass.js';

/** Typed arrays in V8 hold at most this many bytes here; larger tensors are refused with E_TOO_LARGE. */
export const HOST_MAX_BYTES = 2 ** 32 - 1;

export function hostEmpty(backend: Backend, dtype: DType, shape: readonly number[]): Tensor {
  const n = numel(shape);
  const bytes = n * dtypeBytes(dtype);
  if (bytes > backend.maxBytes) {
    throw new HotpathsError('E_TOO_LARGE', `empty(): ${dtype}${show(shape)} needs ${bytes} bytes, more than the ${backend.name} backend's limit of ${backend.maxBytes}`);
  }
  const data = bytes >= POOL_MIN_BYTES ? pooledArray(dtype, n, bytes) : allocHost(dtype, n);
  track(data.buffer.byteLength);
  if (poisonEnabled()) new Uint8Array(data.buffer, data.byteOffset, data.byteLength).fill(POISON_BYTE);
  return new Tensor(backend, dtype, shape, data);
}

export function hostFromHost(backend: Backend, data: HostArray, dtype: DType, shape: readonly number[]): Tensor {
  const t = hostEmpty(backend, dtype, shape);
  (t.storage as HostArray).set(data as never);
  return t;
}

const POOL_MIN_BYTES = 1 << 16;
/** Free pooled bytes kept at most; past this, released buffers are left to the garbage collector. */
const POOL_MAX_FREE_BYTES = 2 ** 31;
const free = new Map<number, ArrayBuffer[]>();
let freeBytes = 0;

function pooledArray(dtype: DType, n: number, bytes: number): HostArray {
  const cls = sizeClass(bytes);
  const buf = free.get(cls)?.pop();
  if (buf) freeBytes -= cls;
  const ab = buf ?? new ArrayBuffer(cls);
  switch (dtype) {
    case 'f32':
      return new Float32Array(ab, 0, n);
    case 'i32':
      return new Int32Array(ab, 0, n);
    case 'bf16':
    case 'f16':
      return new Uint16Array(ab, 0, n);
    default:
      return new Uint8Array(ab, 0, n);
  }
}

// Bytes of host tensor storage handed out and not released (tensors left to the garbage collector
// stay counted: the ops release what they allocate), and the peak since resetHostPeak().
let hostInUse = 0;
let hostPeak = 0;
function track(bytes: number): void {
  hostInUse += bytes;
  if (hostInUse > hostPeak) hostPeak = hostInUse;
}

/** Gives a host tensor's buffer back to the pool (the tensor is already marked disposed). */
export function hostRelease(t: Tensor): void {
  const ab = (t.storage as HostArray).buffer as ArrayBuffer;
  hostInUse -= ab.byteLength;
  if (ab.byteLength < POOL_MIN_BYTES || ab.byteLength !== sizeClass(ab.byteLength) || freeBytes + ab.byteLength > POOL_MAX_FREE_BYTES) return;
  let list = free.get(ab.byteLength);
  if (!list) free.set(ab.byteLength, (list = []));
  list.push(ab);
  freeBytes += ab.byteLength;
}

/** The typed array behind a host tensor (reference/cpu). */
export function hostData<T extends HostArray = HostArray>(t: Tensor): T {
  return t.storage as T;
}

/**
 * The storage half of a host backend (reference, cpu): allocation, copies, reads and the pool. The
 * backend object spreads these in and adds its name, device and kernels; `self` returns that object.
 */
export function hostStorage(self: () => Backend): Pick<Backend, 'maxBytes' | 'fromHost' | 'empty' | 'copy' | 'read' | 'release' | 'sync' | 'viewStorage' | 'memoryStats' | 'resetPeak'> {
  return {
    maxBytes: HOST_MAX_BYTES,
    fromHost: (data, dtype, shape) => hostFromHost(self(), data, dtype, shape),
    empty: (dtype, shape) => hostEmpty(self(), dtype, shape),
    copy: (t) => hostFromHost(self(), hostData(t), t.dtype, t.shape),
    read: async (t) => hostData(t).slice(),
    release: hostRelease,
    sync: async () => {},
    memoryStats: () => ({ inUse: hostInUse, peak: hostPeak }),
    resetPeak: () => {
      hostPeak = hostInUse;
    },
    viewStorage: (t, byteOffset, bytes) => {
      const a = hostData(t);
      const start = byteOffset / a.BYTES_PER_ELEMENT;
      return a.subarray(start, start + bytes / a.BYTES_PER_ELEMENT);
    },
  };
}
