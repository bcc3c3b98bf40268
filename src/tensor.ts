// Tensor: a dtype, a shape and storage on one backend. Storage is the backend's own
// (a host typed array on reference/cpu, a pooled GPUBuffer on webgpu, a device allocation on cuda).
// Moving between backends is explicit: `await t.to('webgpu')`, `await t.read()`.

import type { Backend, BackendName } from './runtime/backend.js';
import { dtypeBytes, type DType, type HostArray } from './dtype.js';
import { HotpathsError, show } from './errors.js';

/** Resolves a backend by name (set by the runtime; kept here as a hook to avoid an import cycle). */
let resolveBackend: ((name: BackendName) => Promise<Backend>) | undefined;
export function setBackendResolver(fn: (name: BackendName) => Promise<Backend>): void {
  resolveBackend = fn;
}

export class Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly size: number;
  readonly backend: Backend;
  /** The backend's storage handle; only that backend reads it. */
  readonly storage: unknown;
  #disposed = false;

  constructor(backend: Backend, dtype: DType, shape: readonly number[], storage: unknown) {
    this.backend = backend;
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.size = numel(shape);
    this.storage = storage;
  }

  /** The backend this tensor lives on. */
  get device(): BackendName {
    return this.backend.name;
  }
  /** Bytes of payload (not counting padding). */
  get bytes(): number {
    return this.size * dtypeBytes(this.dtype);
  }
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Copies the contents to a new host typed array (Float32Array, Uint16Array for bf16/f16, …). */
  async read(): Promise<HostArray> {
    this.assertLive('read()');
    return this.backend.read(this);
  }

  /** A copy of this tensor on another backend (a copy also when `target` is this backend). */
  async to(target: BackendName): Promise<Tensor> {
    this.assertLive('to()');
    if (!resolveBackend) throw new HotpathsError('E_BACKEND', 'to(): the runtime is not loaded; call init() first');
    const dst = await resolveBackend(target);
    if (dst === this.backend) return this.backend.copy(this);
    const host = await this.backend.read(this);
    return dst.fromHost(host, this.dtype, this.shape);
  }

  /** Gives the storage back to the backend's pool. Using the tensor afterwards throws E_DISPOSED. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (!VIEWS.has(this)) this.backend.release(this);
  }

  /** Throws E_DISPOSED if this tensor was disposed; `what` names the caller for the message. */
  assertLive(what: string): void {
    if (this.#disposed) {
      throw new HotpathsError('E_DISPOSED', `${what}: tensor ${this.describe()} was disposed`);
    }
  }

  /** A short description for messages: `f32[4, 128] on cpu`. */
  describe(): string {
    return `${this.dtype}${show(this.shape)} on ${this.device}`;
  }

  toString(): string {
    return `Tensor(${this.describe()})`;
  }
}

/** Tensors that borrow another tensor's storage: disposing one never releases the storage. */
const VIEWS = new WeakSet<Tensor>();

/**
 * The same elements under another shape of equal size, sharing `t`'s storage (internal: the ops use it
 * to hand a [G, R, K] tensor to a kernel as [G·R, K]). The view must not outlive `t`.
 */
export function viewAs(t: Tensor, shape: readonly number[]): Tensor {
  if (numel(shape) !== t.size) {
    throw new HotpathsError('E_SHAPE', `viewAs(): ${show(shape)} has ${numel(shape)} elements, ${t.describe()} has ${t.size}`);
  }
  return borrowedTensor(t.backend, t.dtype, shape, t.storage);
}

/**
 * Rows [r0, r1) of `t` (along its first dimension) as a tensor sharing t's storage (internal: the ops
 * use it to work through a large tensor chunk by chunk). The view must not outlive `t`. GPU backends
 * need the start to fall on a 256-byte boundary (E_ARG otherwise): choose chunk sizes accordingly.
 */
export function sliceRows(t: Tensor, r0: number, r1: number): Tensor {
  const rows = t.shape[0] ?? 0;
  if (!(Number.isInteger(r0) && Number.isInteger(r1) && 0 <= r0 && r0 <= r1 && r1 <= rows)) {
    throw new HotpathsError('E_ARG', `sliceRows(): rows [${r0}, ${r1}) are not inside ${t.describe()}`);
  }
  if (!t.backend.viewStorage) throw new HotpathsError('E_NOT_IMPLEMENTED', `sliceRows(): the ${t.device} backend has no views`);
  const rowBytes = (rows === 0 ? 0 : t.size / rows) * dtypeBytes(t.dtype);
  const storage = t.backend.viewStorage(t, r0 * rowBytes, (r1 - r0) * rowBytes);
  return borrowedTensor(t.backend, t.dtype, [r1 - r0, ...t.shape.slice(1)], storage);
}

/**
 * A tensor over backend storage that it does not own (views of another tensor, and src/native/nccl.ts's
 * windows of NCCL's symmetric memory, this rank's and its peers'): disposing it releases nothing.
 */
export function borrowedTensor(backend: Backend, dtype: DType, shape: readonly number[], storage: unknown): Tensor {
  const v = new Tensor(backend, dtype, shape, storage);
  VIEWS.add(v);
  return v;
}

/**
 * Internal: t's storage under a shape of at most t's elements, from `byteOffset` on (backends with
 * takeStorage, 256-byte multiples on GPUs), owned by the returned tensor (disposing it releases the
 * storage); t itself must not be used or disposed after this. The windows path of moe.dispatch sizes
 * its outputs for the worst case before the counts are known.
 */
export function shrinkTo(t: Tensor, shape: readonly number[], byteOffset = 0): Tensor {
  if (!(Number.isSafeInteger(byteOffset) && byteOffset >= 0 && byteOffset + numel(shape) * dtypeBytes(t.dtype) <= t.bytes)) {
    throw new HotpathsError('E_SHAPE', `shrinkTo(): ${show(shape)} from byte ${byteOffset} on does not fit in ${t.describe()}`);
  }
  if (byteOffset > 0 && !t.backend.takeStorage) throw new HotpathsError('E_NOT_IMPLEMENTED', `shrinkTo(): the ${t.device} backend cannot hand over storage from an offset`);
  const owner = new Tensor(t.backend, t.dtype, shape, byteOffset > 0 ? t.backend.takeStorage!(t, byteOffset) : t.storage);
  VIEWS.add(t);
  return owner;
}

/** Product of a shape's sizes. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Checks a shape: an array of non-negative safe integers. */
export function assertShape(name: string, shape: unknown): asserts shape is number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new HotpathsError('E_SHAPE', `${name}: expected an array of non-negative integers, got ${show(shape)}`);
  }
}
