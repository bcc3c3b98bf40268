// The contract every backend implements. Ops in src/ops/ validate their arguments once, allocate
// outputs with `empty`, and call the backend's kernels; kernels trust the ops layer for shapes and
// dtypes (native code still re-checks sizes before touching memory).

import type { DType, HostArray } from '../dtype.js';
import type { Tensor } from '../tensor.js';

export type BackendName = 'reference' | 'cpu' | 'webgpu' | 'cuda';
export const BACKEND_NAMES: readonly BackendName[] = ['reference', 'cpu', 'webgpu', 'cuda'];

export type Fp8Format = 'e4m3' | 'e5m2';

/** How `fp8.quantize` groups elements: one scale per `rows × cols` block (cols is always 128). */
export interface QuantizeSpec {
  format: Fp8Format;
  /** [1, 128]: per-token groups along K (activations). [128, 128]: per-block (weights). */
  block: readonly [1 | 128, 128];
  /** Round each scale up to a power of two (UE8M0 scales). */
  ue8m0: boolean;
}

/** FP8 kernels. All tensors are contiguous row-major; shapes were checked by src/ops/fp8.ts. */
export interface Fp8Kernels {
  /** out[i] = fp8(x[i]); x: f32 [n], out: fp8 [n]. Saturating RNE, NaN -> 0x7F, e5m2 keeps ±inf. */
  encode(x: Tensor, format: Fp8Format, out: Tensor): Promise<void> | void;
  /** out[i] = f32(q[i]); q: fp8 [n], out: f32 [n]. Exact. */
  decode(q: Tensor, format: Fp8Format, out: Tensor): Promise<void> | void;
  /** x: f32|bf16 [M, K] -> data: fp8 [M, K], scales: f32 [ceil(M/br), ceil(K/128)]. */
  quantize(x: Tensor, spec: QuantizeSpec, data: Tensor, scales: Tensor): Promise<void> | void;
  /** data: fp8 [M, K], scales as above -> out: f32 [M, K] = decode(data) * scale. */
  dequantize(data: Tensor, scales: Tensor, spec: QuantizeSpec, out: Tensor): Promise<void> | void;
}

export interface Backend {
  readonly name: BackendName;
  /** What runs the kernels: the CPU model, the GPU adapter or device name. */
  readonly deviceName: string;
  /** A new tensor holding a copy of `data`. */
  fromHost(data: HostArray, dtype: DType, shape: readonly number[]): Tensor;
  /** A new tensor with unspecified contents (all 0xFF bytes when poison mode is on). */
  empty(dtype: DType, shape: readonly number[]): Tensor;
  /** A new tensor on this backend with the same contents. */
  copy(t: Tensor): Tensor;
  /** A host copy of the contents. */
  read(t: Tensor): Promise<HostArray>;
  /** Gives the tensor's storage back (to a pool where the backend has one). */
  release(t: Tensor): void;
  /** Resolves when all work submitted so far has finished. */
  sync(): Promise<void>;
  /** Largest tensor in bytes this backend can hold. */
  readonly maxBytes: number;
  /**
   * Device-side timing for benchmarks (WebGPU timestamp queries, CUDA events): `stop()` resolves to
   * the GPU milliseconds spent on work submitted between `start()` and `stop()`. Absent on host backends.
   */
  readonly deviceTimer?: { start(): void; stop(): Promise<number> };
  /** What `hotpaths info` shows about the device: adapter info, features, limits, build flags. */
  readonly details?: Record<string, unknown>;
  /** Releases the device and pools (a caller's own GPUDevice is left alone). */
  destroy?(): void;
  readonly fp8: Fp8Kernels;
}
