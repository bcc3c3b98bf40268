// The reference backend: tensors in host typed arrays, kernels as plain TypeScript loops (the oracle).

import type { Backend, Fp8Kernels } from '../runtime/backend.js';
import { HOST_MAX_BYTES, hostData, hostEmpty, hostFromHost, hostRelease } from '../runtime/host.js';
import { fromBf16 } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import * as ref from './fp8.js';

/** f32 view of a host tensor, widening bf16 exactly. */
function asF32(t: Tensor): Float32Array {
  return t.dtype === 'bf16' ? fromBf16(hostData<Uint16Array>(t)) : hostData<Float32Array>(t);
}

const fp8: Fp8Kernels = {
  encode: (x, format, out) => ref.fp8Encode(hostData<Float32Array>(x), format, hostData<Uint8Array>(out)),
  decode: (q, format, out) => ref.fp8Decode(hostData<Uint8Array>(q), format, hostData<Float32Array>(out)),
  quantize: (x, spec, data, scales) =>
    ref.fp8Quantize(asF32(x), x.shape[0]!, x.shape[1]!, spec, hostData<Uint8Array>(data), hostData<Float32Array>(scales)),
  dequantize: (data, scales, spec, out) =>
    ref.fp8Dequantize(hostData<Uint8Array>(data), hostData<Float32Array>(scales), data.shape[0]!, data.shape[1]!, spec, hostData<Float32Array>(out)),
};

export function createReferenceBackend(): Backend {
  const backend: Backend = {
    name: 'reference',
    deviceName: 'TypeScript (single thread)',
    maxBytes: HOST_MAX_BYTES,
    fromHost: (data, dtype, shape) => hostFromHost(backend, data, dtype, shape),
    empty: (dtype, shape) => hostEmpty(backend, dtype, shape),
    copy: (t) => hostFromHost(backend, hostData(t), t.dtype, t.shape),
    read: async (t) => hostData(t).slice(),
    release: hostRelease,
    sync: async () => {},
    fp8,
  };
  return backend;
}
