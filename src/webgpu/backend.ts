// The WebGPU backend: tensors are (pooled) GPUBuffers, kernels are WGSL compute shaders.
// Storage of a tensor: { buffer, bytes, owned } — `bytes` is the payload padded to whole 32-bit words
// (what kernels bind), `owned` is false for a caller's buffer wrapped with wrapBuffer() (never
// pooled, never destroyed). Launches record into one pending command encoder that is submitted at
// the end of the current task, before queue writes, and on sync()/read().

import type { Backend, Fp8Kernels, GemmKernels, GrpoKernels, LogprobKernels, MachineCeilings, MoeKernels, NnKernels } from '../runtime/backend.js';
import { Tensor, numel, assertShape } from '../tensor.js';
import { allocHost, assertDType, dtypeBytes, hostArrayMatches, type DType, type HostArray } from '../dtype.js';
import { HotpathsError, show } from '../errors.js';
import { poisonEnabled, POISON_BYTE } from '../runtime/poison.js';
import { acquireDevice, BufferUsage, type AcquireOptions, type AdapterSummary } from './device.js';
import { BufferPool, type PoolStats } from './pool.js';
import { CommandBatcher, PipelineCache, type BufferRange } from './pipelines.js';
import { loadShaders } from './shaders.js';
import { createDeviceTimer, timeGpu, type DeviceTimer, type GpuTiming, type TimeGpuOptions } from './timing.js';
import { createFp8Kernels, FP8_SHADER_FILES, type Fp8LaunchContext } from './fp8.js';
import { createLogprobKernels, LOGPROB_SHADER_FILES } from './logprob.js';
import { createGrpoKernels, GRPO_SHADER_FILES } from './grpo.js';
import { createNnKernels, NN_SHADER_FILES } from './nn.js';
import { CEILING_SHADER_FILES, measureWebGPUCeilings } from './ceiling.js';
import { createGemmKernels, GEMM_SHADER_FILES } from './gemm.js';
import { createMoeKernels, MOE_SHADER_FILES } from './moe.js';

export interface WebGPUBackendOptions extends AcquireOptions {
  /** Single-pass quantize (1×128 and 128×128 blocks) when K % 4 == 0 (default true). */
  fusedQuantize?: boolean;
  /** Fold workgroup counts into 2-D past this many per dimension (default: the device limit; tests lower it). */
  maxWorkgroupsPerDim?: number;
}

export interface WebGPUStorage {
  buffer: GPUBuffer;
  /** Payload bytes padded to a multiple of 4. */
  bytes: number;
  /** False for a caller's buffer (wrapBuffer) or a view: never returned to the pool. */
  owned: boolean;
  /** Byte offset of the payload in `buffer` (a view made by sliceRows; 0 otherwise), a multiple of 256. */
  offset?: number;
}

export interface WebGPULimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
}

export interface WebGPUBackend extends Backend {
  readonly name: 'webgpu';
  readonly device: GPUDevice;
  readonly adapterInfo: AdapterSummary;
  readonly features: ReadonlySet<string>;
  readonly limits: WebGPULimits;
  /** True when the backend created the device (destroy() destroys it). */
  readonly ownDevice: boolean;
  /** Timestamp-query timer (undefined when the device lacks 'timestamp-query'). */
  readonly deviceTimer: DeviceTimer | undefined;
  /** Adapter info, features and limits, for `hotpaths info`. */
  readonly details: Record<string, unknown>;
  /** A tensor over a caller's buffer, without copying. Needs STORAGE usage (COPY_SRC to read it back). */
  wrapBuffer(buffer: GPUBuffer, dtype: DType, shape: readonly number[]): Tensor;
  /** The storage of a tensor of this backend (its buffer and padded size). */
  storageOf(t: Tensor): WebGPUStorage;
  /** Submits what was recorded so far (normally automatic at the end of the task). */
  flush(): void;
  /** GPU time per call of `fn` (timestamp queries when the device has them, else host time). */
  timeGpu(fn: () => void | Promise<void>, reps?: number, opts?: TimeGpuOptions): Promise<GpuTiming>;
  /** Buffer pool counters (bytes held, in use, peak). */
  memory(): PoolStats;
  /** Releases pooled buffers, and the device when the backend created it. */
  destroy(): void;
}

const POISON_CHUNK = 1 << 22;
let poisonChunk: Uint8Array | undefined;

function padTo4(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

class WebGPUBackendImpl implements WebGPUBackend {
  readonly name = 'webgpu' as const;
  readonly deviceName: string;
  readonly device: GPUDevice;
  readonly adapterInfo: AdapterSummary;
  readonly features: ReadonlySet<string>;
  readonly limits: WebGPULimits;
  readonly ownDevice: boolean;
  readonly deviceTimer: DeviceTimer | undefined;
  readonly details: Record<string, unknown>;
  readonly maxBytes: number;
  readonly fp8: Fp8Kernels;
  readonly gemm: GemmKernels;
  readonly logprob: LogprobKernels;
  readonly grpo: GrpoKernels;
  readonly nn: NnKernels;
  readonly moe: MoeKernels;
  readonly #pool: BufferPool;
  readonly #batcher: CommandBatcher;
  readonly #pipelines: PipelineCache;
  readonly #release: () => void;
  #dead: string | undefined;
  #destroyed = false;

  constructor(acq: Awaited<ReturnType<typeof acquireDevice>>, opts: WebGPUBackendOptions) {
    const device = acq.device;
    this.device = device;
    this.adapterInfo = acq.adapterInfo;
    this.features = acq.features;
    this.ownDevice = acq.ownDevice;
    this.#release = () => acq.destroy();
    const l = device.limits;
    this.limits = {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    };
    this.maxBytes = Math.floor(Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize) / 4) * 4;
    const info = acq.adapterInfo;
    // Dawn's description is the driver on NVIDIA ('NVIDIA: 580.159.04 …') and the renderer on Mesa:
    // name the device first and keep the description beside it
    this.deviceName = [info.device, info.description && info.description !== info.device ? `(${info.description})` : ''].filter(Boolean).join(' ') || info.vendor || 'WebGPU device';
    this.#pool = new BufferPool(device);
    this.#batcher = new CommandBatcher(device, opts.maxWorkgroupsPerDim);
    this.#pipelines = new PipelineCache(device, this.#batcher);
    this.deviceTimer = createDeviceTimer(this.#batcher);
    this.details = {
      adapter: { ...info },
      software: info.isSoftware,
      features: [...acq.features].sort(),
      limits: { ...this.limits },
      ownDevice: acq.ownDevice,
      timer: this.deviceTimer ? 'timestamp-query' : 'host',
    };
    void device.lost.then((lost) => {
      this.#dead ??= `the WebGPU device was lost (${lost.reason}: ${lost.message})`;
    });
    const ctx: Fp8LaunchContext = {
      pipelines: this.#pipelines,
      batcher: this.#batcher,
      bind: (t, what) => this.#bind(t, what),
      fusedQuantize: opts.fusedQuantize ?? true,
    };
    const kernels = createFp8Kernels(ctx);
    const alive = (): void => this.#assertAlive();
    this.fp8 = {
      encode: (...a) => (alive(), kernels.encode(...a)),
      decode: (...a) => (alive(), kernels.decode(...a)),
      quantize: (...a) => (alive(), kernels.quantize(...a)),
      dequantize: (...a) => (alive(), kernels.dequantize(...a)),
    };
    const gemm = createGemmKernels(ctx);
    this.gemm = {
      fp8: (...a) => (alive(), gemm.fp8(...a)),
      matmul: (...a) => (alive(), gemm.matmul(...a)),
      transpose: (...a) => (alive(), gemm.transpose(...a)),
    };
    const lp = createLogprobKernels({ ...ctx, scratch: (dtype, shape) => this.empty(dtype, shape) });
    this.logprob = {
      fromLogits: (...a) => (alive(), lp.fromLogits(...a)),
      fromLogitsBackward: (...a) => (alive(), lp.fromLogitsBackward(...a)),
      kl: (...a) => (alive(), lp.kl(...a)),
    };
    const gk = createGrpoKernels({ ...ctx, scratch: (dtype, shape) => this.empty(dtype, shape), read: async (t) => (await this.read(t)) as Float32Array });
    this.grpo = {
      advantages: (...a) => (alive(), gk.advantages(...a)),
      loss: (...a) => (alive(), gk.loss(...a)),
      fusedTokenLoss: (...a) => (alive(), gk.fusedTokenLoss!(...a)),
    };
    const nk = createNnKernels({
      ...ctx,
      scratch: (dtype, shape) => this.empty(dtype, shape),
      upload: (data, shape) => this.fromHost(data, 'f32', shape),
      read: (t) => this.read(t),
      write: (t, data) => {
        const s = this.storageOf(t);
        this.#batcher.write(s.buffer, s.offset ?? 0, data);
      },
    });
    this.nn = {
      embedding: (...a) => (alive(), nk.embedding(...a)),
      embeddingBackward: (...a) => (alive(), nk.embeddingBackward(...a)),
      rmsnorm: (...a) => (alive(), nk.rmsnorm(...a)),
      rmsnormBackward: (...a) => (alive(), nk.rmsnormBackward(...a)),
      rope: (...a) => (alive(), nk.rope(...a)),
      attention: (...a) => (alive(), nk.attention(...a)),
      attentionBackward: (...a) => (alive(), nk.attentionBackward(...a)),
      swiglu: (...a) => (alive(), nk.swiglu(...a)),
      swigluBackward: (...a) => (alive(), nk.swigluBackward(...a)),
      addScaled: (...a) => (alive(), nk.addScaled(...a)),
      sumSquares: (...a) => (alive(), nk.sumSquares(...a)),
      adamw: (...a) => (alive(), nk.adamw(...a)),
      sample: (...a) => (alive(), nk.sample(...a)),
    };

    const mk = createMoeKernels({ ...ctx, scratch: (dtype, shape) => this.empty(dtype, shape), read: async (t) => (await this.read(t)) as Float32Array });
    this.moe = {
      route: (...a) => (alive(), mk.route(...a)),
      routeBackward: (...a) => (alive(), mk.routeBackward(...a)),
      updateBias: (...a) => (alive(), mk.updateBias(...a)),
      auxLoss: (...a) => (alive(), mk.auxLoss(...a)),
      layout: (...a) => (alive(), mk.layout(...a)),
      align: (...a) => (alive(), mk.align(...a)),
      permute: (...a) => (alive(), mk.permute(...a)),
      permuteBytes: (...a) => (alive(), mk.permuteBytes(...a)),
      unpermute: (...a) => (alive(), mk.unpermute(...a)),
      unpermuteWeightGrad: (...a) => (alive(), mk.unpermuteWeightGrad(...a)),
      copyRows: (...a) => (alive(), mk.copyRows(...a)),
    };
  }

  #assertAlive(): void {
    if (this.#dead) throw new HotpathsError('E_BACKEND', `webgpu backend: ${this.#dead}`);
  }

  storageOf(t: Tensor): WebGPUStorage {
    if (t.backend !== this) {
      throw new HotpathsError('E_DEVICE', `webgpu backend: tensor ${t.describe()} belongs to another backend${t.device === 'webgpu' ? ' instance' : ''}`);
    }
    t.assertLive('webgpu');
    return t.storage as WebGPUStorage;
  }

  #bind(t: Tensor, what: string): BufferRange {
    const s = this.storageOf(t);
    if (s.bytes > this.limits.maxStorageBufferBindingSize) {
      throw new HotpathsError(
        'E_TOO_LARGE',
        `${what}: ${t.describe()} takes ${s.bytes} bytes, past this device's maxStorageBufferBindingSize (${this.limits.maxStorageBufferBindingSize})`,
      );
    }
    return { buffer: s.buffer, offset: s.offset ?? 0, size: s.bytes };
  }

  #newStorage(bytes: number): WebGPUStorage {
    this.#assertAlive();
    const padded = padTo4(bytes);
    if (padded > this.maxBytes) {
      throw new HotpathsError('E_TOO_LARGE', `webgpu backend: a tensor of ${bytes} bytes exceeds this device's limit (${this.maxBytes} bytes)`);
    }
    return { buffer: this.#pool.acquire(padded), bytes: padded, owned: true };
  }

  fromHost(data: HostArray, dtype: DType, shape: readonly number[]): Tensor {
    assertDType('fromHost dtype', dtype);
    assertShape('fromHost shape', shape);
    if (!hostArrayMatches(dtype, data)) {
      throw new HotpathsError('E_DTYPE', `fromHost: a ${dtype} tensor needs a ${allocHost(dtype, 0).constructor.name}, got ${show(data)}`);
    }
    const n = numel(shape);
    if (data.length !== n) {
      throw new HotpathsError('E_SHAPE', `fromHost: shape ${show(shape)} holds ${n} elements, data has ${data.length}`);
    }
    const storage = this.#newStorage(n * dtypeBytes(dtype));
    const bytes = data.byteLength;
    if (bytes > 0) {
      if (bytes % 4 === 0) {
        this.#batcher.write(storage.buffer, 0, data);
      } else {
        const padded = new Uint8Array(storage.bytes);
        padded.set(new Uint8Array(data.buffer, data.byteOffset, bytes));
        this.#batcher.write(storage.buffer, 0, padded);
      }
    }
    return new Tensor(this, dtype, shape, storage);
  }

  empty(dtype: DType, shape: readonly number[]): Tensor {
    assertDType('empty dtype', dtype);
    assertShape('empty shape', shape);
    const storage = this.#newStorage(numel(shape) * dtypeBytes(dtype));
    if (poisonEnabled() && storage.bytes > 0) this.#fill(storage.buffer, storage.bytes, POISON_BYTE);
    return new Tensor(this, dtype, shape, storage);
  }

  #fill(buffer: GPUBuffer, bytes: number, byte: number): void {
    if (byte === 0) {
      this.#batcher.encoder().clearBuffer(buffer, 0, bytes);
      return;
    }
    if (!poisonChunk || poisonChunk[0] !== byte) poisonChunk = new Uint8Array(POISON_CHUNK).fill(byte);
    for (let off = 0; off < bytes; off += POISON_CHUNK) {
      this.#batcher.write(buffer, off, poisonChunk, Math.min(POISON_CHUNK, bytes - off));
    }
  }

  copy(t: Tensor): Tensor {
    const src = this.storageOf(t);
    if (src.bytes > 0 && !(src.buffer.usage & BufferUsage.COPY_SRC)) {
      throw new HotpathsError('E_ARG', `copy: the wrapped buffer of ${t.describe()} lacks COPY_SRC usage`);
    }
    const dst = this.#newStorage(t.bytes);
    this.#batcher.copy(src.buffer, src.offset ?? 0, dst.buffer, 0, dst.bytes);
    return new Tensor(this, t.dtype, t.shape, dst);
  }

  async read(t: Tensor): Promise<HostArray> {
    const s = this.storageOf(t);
    this.#assertAlive();
    const out = allocHost(t.dtype, t.size);
    if (t.bytes === 0) return out;
    if (!(s.buffer.usage & BufferUsage.COPY_SRC)) {
      throw new HotpathsError('E_ARG', `read: the wrapped buffer of ${t.describe()} lacks COPY_SRC usage`);
    }
    const bytes = await this.#batcher.readBytes(s.buffer, s.offset ?? 0, t.bytes);
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(new Uint8Array(bytes));
    return out;
  }

  viewStorage(t: Tensor, byteOffset: number, bytes: number): WebGPUStorage {
    const s = this.storageOf(t);
    const align = this.device.limits.minStorageBufferOffsetAlignment;
    const offset = (s.offset ?? 0) + byteOffset;
    if (offset % align !== 0) {
      throw new HotpathsError('E_ARG', `webgpu view of ${t.describe()}: byte offset ${offset} is not a multiple of ${align} (minStorageBufferOffsetAlignment)`);
    }
    return { buffer: s.buffer, bytes: padTo4(bytes), owned: false, offset };
  }

  release(t: Tensor): void {
    const s = t.storage as WebGPUStorage;
    if (s.owned) this.#pool.release(s.buffer);
  }

  async sync(): Promise<void> {
    this.#assertAlive();
    await this.#batcher.sync();
  }

  flush(): void {
    this.#batcher.flush();
  }

  wrapBuffer(buffer: GPUBuffer, dtype: DType, shape: readonly number[]): Tensor {
    assertDType('wrapBuffer dtype', dtype);
    assertShape('wrapBuffer shape', shape);
    if (!buffer || typeof buffer !== 'object' || typeof (buffer as GPUBuffer).size !== 'number' || typeof (buffer as GPUBuffer).usage !== 'number') {
      throw new HotpathsError('E_ARG', `wrapBuffer buffer: expected a GPUBuffer, got ${show(buffer)}`);
    }
    const bytes = padTo4(numel(shape) * dtypeBytes(dtype));
    if (buffer.size < bytes) {
      throw new HotpathsError('E_ARG', `wrapBuffer buffer: ${dtype}${show(shape)} needs ${bytes} bytes (padded to 4), the buffer has ${buffer.size}`);
    }
    if (!(buffer.usage & BufferUsage.STORAGE)) {
      throw new HotpathsError('E_ARG', `wrapBuffer buffer: usage 0x${buffer.usage.toString(16)} lacks STORAGE (0x80); create it with GPUBufferUsage.STORAGE | COPY_SRC | COPY_DST`);
    }
    if (buffer.mapState !== 'unmapped') {
      throw new HotpathsError('E_ARG', `wrapBuffer buffer: the buffer is ${buffer.mapState}; unmap it first`);
    }
    if (bytes > this.maxBytes) {
      throw new HotpathsError('E_TOO_LARGE', `wrapBuffer: ${bytes} bytes exceed this device's binding limit (${this.maxBytes})`);
    }
    const storage: WebGPUStorage = { buffer, bytes, owned: false };
    return new Tensor(this, dtype, shape, storage);
  }

  timeGpu(fn: () => void | Promise<void>, reps = 10, opts: TimeGpuOptions = {}): Promise<GpuTiming> {
    return timeGpu(this.#batcher, fn, reps, opts);
  }

  memory(): PoolStats {
    return this.#pool.stats();
  }

  memoryStats(): { inUse: number; peak: number } {
    const s = this.#pool.stats();
    return { inUse: s.bytesInUse, peak: s.peakInUse };
  }

  resetPeak(): void {
    this.#pool.resetPeak();
  }

  /** Copy and FP32 FMA ceilings from compute passes (src/webgpu/ceiling.ts). */
  measureCeilings(opts: { quick: boolean }): Promise<MachineCeilings> {
    this.#assertAlive();
    return measureWebGPUCeilings({ backend: this, pipelines: this.#pipelines, batcher: this.#batcher }, opts.quick);
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    live.delete(this);
    try {
      this.#batcher.flush();
    } catch {
      /* the device may be lost already */
    }
    this.#dead = 'the backend was destroyed';
    this.#batcher.destroy();
    this.#pool.destroy();
    this.#release();
  }
}

const live = new Set<WebGPUBackendImpl>();

/** A WebGPU backend over a caller's device (`opts.device`) or a new one. */
export async function createWebGPUBackend(opts: WebGPUBackendOptions = {}): Promise<WebGPUBackend> {
  await loadShaders([...FP8_SHADER_FILES, ...GEMM_SHADER_FILES, ...LOGPROB_SHADER_FILES, ...GRPO_SHADER_FILES, ...MOE_SHADER_FILES, ...NN_SHADER_FILES, ...CEILING_SHADER_FILES]);
  const acq = await acquireDevice(opts);
  const backend = new WebGPUBackendImpl(acq, opts);
  live.add(backend);
  return backend;
}

/** Destroys every WebGPU backend created here and not destroyed yet. */
export function destroy(): void {
  for (const b of [...live]) b.destroy();
}
