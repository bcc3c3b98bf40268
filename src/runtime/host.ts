// Storage for the backends whose tensors live in host memory (reference, cpu): a typed array of the
// dtype's kind, exactly `size` elements long.

import { allocHost, dtypeBytes, type DType, type HostArray } from '../dtype.js';
import { HotpathsError, show } from '../errors.js';
import { numel, Tensor } from '../tensor.js';
import type { Backend } from './backend.js';
import { poisonEnabled, POISON_BYTE } from './poison.js';

/** Typed arrays in V8 hold at most this many bytes here; larger tensors are refused with E_TOO_LARGE. */
export const HOST_MAX_BYTES = 2 ** 32 - 1;

export function hostEmpty(backend: Backend, dtype: DType, shape: readonly number[]): Tensor {
  const n = numel(shape);
  const bytes = n * dtypeBytes(dtype);
  if (bytes > backend.maxBytes) {
    throw new HotpathsError('E_TOO_LARGE', `empty(): ${dtype}${show(shape)} needs ${bytes} bytes, more than the ${backend.name} backend's limit of ${backend.maxBytes}`);
  }
  const data = allocHost(dtype, n);
  if (poisonEnabled()) new Uint8Array(data.buffer, data.byteOffset, data.byteLength).fill(POISON_BYTE);
  return new Tensor(backend, dtype, shape, data);
}

export function hostFromHost(backend: Backend, data: HostArray, dtype: DType, shape: readonly number[]): Tensor {
  const t = hostEmpty(backend, dtype, shape);
  (t.storage as HostArray).set(data as never);
  return t;
}

/** The typed array behind a host tensor (reference/cpu). */
export function hostData<T extends HostArray = HostArray>(t: Tensor): T {
  return t.storage as T;
}
