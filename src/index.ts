// hotpaths: hand-written kernels for the hot paths of LLM training, one API over four backends.
//   const rt = await init({ backend: 'auto' });
//   const x = rt.tensor(new Float32Array(4 * 256), [4, 256]);
//   const q = await fp8.quantize(x, { block: [1, 128] });

export { init, getBackend, probeBackend, createTensor, shutdown } from './runtime/index.js';
export type { InitOptions, Runtime, BackendProbe } from './runtime/index.js';
export type { Backend, BackendName, Fp8Format, QuantizeSpec } from './runtime/backend.js';
export { BACKEND_NAMES } from './runtime/backend.js';
export { Tensor, numel } from './tensor.js';
export { DTYPES, dtypeBytes, toBf16, fromBf16, f32ToBf16Bits, bf16BitsToF32 } from './dtype.js';
export type { DType, HostArray } from './dtype.js';
export { HotpathsError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { setPoison } from './runtime/poison.js';
export * as fp8 from './ops/fp8.js';
export type { QuantizedTensor, QuantizeOptions } from './ops/fp8.js';
export * as gemm from './ops/gemm.js';
export type { GemmOut, GemmFp8Options, MatmulOptions, Fp8LinearBackwardOptions } from './ops/gemm.js';
export * as logprob from './ops/logprob.js';
export * as grpo from './ops/grpo.js';
export * as moe from './ops/moe.js';
export * as nn from './ops/nn.js';
export * as train from './train/index.js';
