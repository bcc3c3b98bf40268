// hotpaths/web: the browser entry. The same API as the Node entry (src/index.ts) with two backends,
// `reference` and `webgpu` (through the page's navigator.gpu, or the caller's GPUDevice:
// `init({ backend: 'webgpu', device })`); nothing here reaches fs, the native addon or the `webgpu`
// package. The bundle (`npm run build:web` → dist/web/hotpaths.js) registers every shaders/**/*.wgsl
// file inlined at build time (scripts/build-web.mjs), so no shader is fetched at run time.
//   import { init, fp8 } from 'hotpaths/web';
//   const rt = await init({ backend: 'webgpu' });
//   const q = await fp8.quantize(rt.tensor(new Float32Array(4 * 256), [4, 256]), { block: [1, 128] });

import { createReferenceBackend } from './reference/backend.js';
import { setBackendFactories } from './runtime/core.js';
import { createWebGPUBackend } from './webgpu/backend.js';

setBackendFactories({
  reference: () => createReferenceBackend(),
  webgpu: (opts) => createWebGPUBackend(opts),
});

export { init, getBackend, probeBackend, createTensor, shutdown } from './runtime/core.js';
export type { InitOptions, Runtime, BackendProbe } from './runtime/core.js';
export type { Backend, BackendName, Fp8Format, QuantizeSpec } from './runtime/backend.js';
export { BACKEND_NAMES } from './runtime/backend.js';
export { Tensor, numel } from './tensor.js';
export { DTYPES, dtypeBytes, toBf16, fromBf16, f32ToBf16Bits, bf16BitsToF32 } from './dtype.js';
export type { DType, HostArray } from './dtype.js';
export { HotpathsError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { setPoison } from './runtime/poison.js';
export { registerShaders } from './webgpu/shaders.js';
export type { WebGPUBackend } from './webgpu/backend.js';
/** What to request on a device you bring (`init({ backend: 'webgpu', device })`) for the fast paths: features when the adapter has them, limits at the adapter's maximum. */
export { WANTED_FEATURES, WANTED_LIMITS } from './webgpu/device.js';
export * as fp8 from './ops/fp8.js';
export type { QuantizedTensor, QuantizeOptions } from './ops/fp8.js';
export * as gemm from './ops/gemm.js';
export type { GemmOut, GemmFp8Options, MatmulOptions, Fp8LinearBackwardOptions } from './ops/gemm.js';
export * as logprob from './ops/logprob.js';
export * as grpo from './ops/grpo.js';
export * as nn from './ops/nn.js';
export * as moe from './ops/moe.js';
