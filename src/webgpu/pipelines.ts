// Compute pipelines and command recording.
//  - PipelineCache: one GPUComputePipeline per (shader files, override constants), created
//    synchronously from sources loaded beforehand (shaders.ts), so that launches are synchronous and
//    run in the order they were called.
//  - CommandBatcher: records dispatches and copies into one pending command encoder (consecutive
//    dispatches share one compute pass; WebGPU orders their storage accesses), and submits it at the
//    end of the current task (a microtask), before any queue write, or on flush()/sync().
//    Workgroup counts past the per-dimension limit are folded into a 2-D grid; the shader computes
//    its linear workgroup index as workgroup_id.x + workgroup_id.y * num_workgroups.x.
//    Uniforms (sizes) come from a small cache of buffers keyed by their contents.

import { HotpathsError } from '../errors.js';
import { BufferUsage, MapMode } from './device.js';
import { shaderSource } from './shaders.js';

export type OverrideConstants = Readonly<Record<string, number | boolean>>;

export interface BufferRange {
  buffer: GPUBuffer;
  /** Bytes from offset (a multiple of 4); the whole buffer past offset when left out. */
  size?: number;
  offset?: number;
}
export type Binding = GPUBuffer | BufferRange;

/** Splits a workgroup count into (x, y) with x, y <= maxPerDim and x·y >= count (x·y - count < x). */
export function foldWorkgroups(count: number, maxPerDim = 65535): [number, number] {
  if (!Number.isSafeInteger(count) || count < 0) throw new HotpathsError('E_ARG', `foldWorkgroups: bad count ${count}`);
  if (count <= maxPerDim) return [count, 1];
  const y = Math.ceil(count / maxPerDim);
  if (y > maxPerDim) {
    throw new HotpathsError('E_TOO_LARGE', `webgpu: ${count} workgroups exceed ${maxPerDim}² (the 2-D dispatch limit)`);
  }
  return [Math.ceil(count / y), y];
}

/** Where asynchronous validation errors go (CommandBatcher is one): sync() waits for tracked checks. */
export interface ErrorSink {
  reportError(e: Error): void;
  track(check: Promise<unknown>): void;
}

export class PipelineCache {
  readonly #device: GPUDevice;
  readonly #cache = new Map<string, GPUComputePipeline>();
  readonly #modules = new Map<string, GPUShaderModule>();
  readonly #errors: ErrorSink;

  /** `errors` receives shader compilation or pipeline validation errors (found asynchronously). */
  constructor(device: GPUDevice, errors: ErrorSink) {
    this.#device = device;
    this.#errors = errors;
  }

  /** The pipeline for `files` (helpers first, kernel last) specialised by `constants`; entry point `main`. */
  get(files: readonly string[], constants: OverrideConstants = {}): GPUComputePipeline {
    const constKey = Object.keys(constants)
      .sort()
      .map((k) => `${k}=${Number(constants[k])}`)
      .join(',');
    const key = `${files.join('+')}|${constKey}`;
    let pipeline = this.#cache.get(key);
    if (pipeline) return pipeline;

    const moduleKey = files.join('+');
    const device = this.#device;
    device.pushErrorScope('validation');
    let module = this.#modules.get(moduleKey);
    if (!module) {
      module = device.createShaderModule({ code: shaderSource(files), label: moduleKey });
      this.#modules.set(moduleKey, module);
    }
    const numeric: Record<string, number> = {};
    for (const [k, v] of Object.entries(constants)) numeric[k] = Number(v);
    pipeline = device.createComputePipeline({
      layout: 'auto',
      compute: { module, entryPoint: 'main', constants: numeric },
      label: key,
    });
    this.#errors.track(
      device.popErrorScope().then((err) => {
        if (err) this.#errors.reportError(new HotpathsError('E_BACKEND', `webgpu: pipeline ${key} failed: ${err.message}`));
      }),
    );
    this.#cache.set(key, pipeline);
    return pipeline;
  }

  get size(): number {
    return this.#cache.size;
  }
}

/** Supplies timestampWrites for each compute pass while a timer is active (timing.ts). */
export type PassTimestampSource = () => GPUComputePassTimestampWrites | undefined;

const UNIFORM_CACHE_LIMIT = 1024;

export class CommandBatcher implements ErrorSink {
  readonly device: GPUDevice;
  readonly maxWorkgroupsPerDim: number;
  #encoder: GPUCommandEncoder | undefined;
  #pass: GPUComputePassEncoder | undefined;
  #flushScheduled = false;
  #error: Error | undefined;
  readonly #uniforms = new Map<string, GPUBuffer>();
  #retired: GPUBuffer[] = [];
  readonly #checks = new Set<Promise<unknown>>();
  readonly #layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
  /** Set by timing.ts while it measures. */
  passTimestamps: PassTimestampSource | undefined;
  /** Number of command buffers submitted so far. */
  submits = 0;

  /** `maxWorkgroupsPerDim` below the device limit forces 2-D folding early (for tests). */
  constructor(device: GPUDevice, maxWorkgroupsPerDim?: number) {
    this.device = device;
    const limit = device.limits.maxComputeWorkgroupsPerDimension;
    this.maxWorkgroupsPerDim = Math.max(1, Math.min(limit, maxWorkgroupsPerDim ?? limit));
  }

  /** Records the first asynchronous validation error; sync() and read paths throw it. */
  reportError(e: Error): void {
    this.#error ??= e;
  }

  /** Keeps an asynchronous check (an error scope) for sync() to wait on. */
  track(check: Promise<unknown>): void {
    const p: Promise<void> = check.then(
      () => {
        this.#checks.delete(p);
      },
      (e: unknown) => {
        this.#checks.delete(p);
        this.reportError(e instanceof Error ? e : new Error(String(e)));
      },
    );
    this.#checks.add(p);
  }

  async #settleChecks(): Promise<void> {
    while (this.#checks.size) await Promise.all([...this.#checks]);
  }

  /** Throws (once) the first error reported since the last call. */
  throwIfError(): void {
    const e = this.#error;
    if (e) {
      this.#error = undefined;
      throw e;
    }
  }

  /** The pending encoder, with no compute pass open (for copies, query resolves). */
  encoder(): GPUCommandEncoder {
    this.#endPass();
    return this.#ensureEncoder();
  }

  /**
   * Records one dispatch. With `uniforms`, binding 0 is a uniform buffer holding them (u32 words,
   * padded to 16 bytes) and `bindings` start at 1; without, `bindings` start at 0.
   * `workgroups` is a linear count (folded into 2-D past the limit) or an explicit [x, y].
   */
  dispatch(
    pipeline: GPUComputePipeline,
    uniforms: ArrayLike<number> | null,
    bindings: readonly Binding[],
    workgroups: number | readonly [number, number],
  ): void {
    const [x, y] = typeof workgroups === 'number' ? foldWorkgroups(workgroups, this.maxWorkgroupsPerDim) : workgroups;
    if (x === 0 || y === 0) return;
    const entries: GPUBindGroupEntry[] = [];
    let slot = 0;
    if (uniforms) entries.push({ binding: slot++, resource: { buffer: this.#uniformBuffer(uniforms) } });
    for (const b of bindings) {
      const r: BufferRange = 'buffer' in b ? b : { buffer: b };
      const resource: GPUBufferBinding = { buffer: r.buffer, offset: r.offset ?? 0 };
      if (r.size !== undefined) resource.size = r.size;
      entries.push({ binding: slot++, resource });
    }
    let layout = this.#layouts.get(pipeline);
    if (!layout) {
      layout = pipeline.getBindGroupLayout(0);
      this.#layouts.set(pipeline, layout);
    }
    const group = this.device.createBindGroup({ layout, entries });
    const pass = this.#ensurePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y);
  }

  /** Closes the open compute pass, if any (the next dispatch opens a new one). */
  endPass(): void {
    this.#endPass();
  }

  /** Records a buffer-to-buffer copy (sizes and offsets multiples of 4). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    if (size === 0) return;
    this.encoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  /** queue.writeBuffer after submitting what was recorded, so that the write lands in call order. */
  write(buffer: GPUBuffer, offset: number, data: ArrayBufferView, size?: number): void {
    this.flush();
    this.device.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, size ?? data.byteLength);
  }

  /** Submits the pending encoder, if any. */
  flush(): void {
    if (!this.#encoder) return;
    this.#endPass();
    const enc = this.#encoder;
    this.#encoder = undefined;
    this.device.pushErrorScope('validation');
    this.device.queue.submit([enc.finish()]);
    this.submits++;
    for (const b of this.#retired) b.destroy(); // submitted work that uses them still completes
    this.#retired = [];
    this.track(
      this.device.popErrorScope().then((err) => {
        if (err) this.reportError(new HotpathsError('E_BACKEND', `webgpu: a submitted command failed validation: ${err.message}`));
      }),
    );
  }

  /** Resolves when everything recorded so far has run; throws a reported validation error. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.#settleChecks();
    this.throwIfError();
  }

  /** Copies `size` bytes of `src` (from `offset`) into a new ArrayBuffer on the host. */
  async readBytes(src: GPUBuffer, offset: number, size: number): Promise<ArrayBuffer> {
    const padded = Math.ceil(size / 4) * 4;
    if (padded === 0) return new ArrayBuffer(0);
    const staging = this.device.createBuffer({ size: padded, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST, label: 'hotpaths read' });
    try {
      this.copy(src, offset, staging, 0, padded);
      this.flush();
      await staging.mapAsync(MapMode.READ);
      await this.#settleChecks();
      this.throwIfError();
      return staging.getMappedRange(0, padded).slice(0, size);
    } finally {
      staging.destroy();
    }
  }

  /** Drops the cached uniform buffers (call before destroying the device). */
  destroy(): void {
    this.#pass = undefined;
    this.#encoder = undefined;
    for (const b of this.#uniforms.values()) b.destroy();
    this.#uniforms.clear();
  }

  #ensureEncoder(): GPUCommandEncoder {
    if (!this.#encoder) {
      this.#encoder = this.device.createCommandEncoder({ label: 'hotpaths' });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        queueMicrotask(() => {
          this.#flushScheduled = false;
          this.flush();
        });
      }
    }
    return this.#encoder;
  }

  #ensurePass(): GPUComputePassEncoder {
    if (!this.#pass) {
      const enc = this.#ensureEncoder();
      const timestampWrites = this.passTimestamps?.();
      this.#pass = enc.beginComputePass(timestampWrites ? { timestampWrites } : {});
    }
    return this.#pass;
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = undefined;
    }
  }

  #uniformBuffer(values: ArrayLike<number>): GPUBuffer {
    const words = Math.max(4, Math.ceil(values.length / 4) * 4);
    const data = new Uint32Array(words);
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new HotpathsError('E_TOO_LARGE', `webgpu: uniform value ${v} does not fit in a u32`);
      }
      data[i] = v;
    }
    const key = data.join(',');
    let buf = this.#uniforms.get(key);
    if (buf) {
      // refresh its place in the LRU order
      this.#uniforms.delete(key);
      this.#uniforms.set(key, buf);
      return buf;
    }
    buf = this.device.createBuffer({ size: data.byteLength, usage: BufferUsage.UNIFORM, mappedAtCreation: true, label: 'hotpaths uniforms' });
    new Uint32Array(buf.getMappedRange()).set(data);
    buf.unmap();
    this.#uniforms.set(key, buf);
    if (this.#uniforms.size > UNIFORM_CACHE_LIMIT) {
      const [oldKey, old] = this.#uniforms.entries().next().value as [string, GPUBuffer];
      this.#uniforms.delete(oldKey);
      this.#retired.push(old); // the pending encoder may use it: destroyed after the next submit
    }
    return buf;
  }
}
