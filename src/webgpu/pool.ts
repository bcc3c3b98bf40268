// Buffer pool by size class. Every pooled buffer is STORAGE | COPY_SRC | COPY_DST. Sizes round up
// to the classes of src/runtime/sizeclass.ts (shared with the cuda pool). Released buffers wait in a free list
// for the next request of their class; `trim()` destroys the waiting ones.

import { HotpathsError } from '../errors.js';
import { BufferUsage } from './device.js';
import { sizeClass } from '../runtime/sizeclass.js';

export { sizeClass };

export const POOL_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
export interface PoolStats {
  /** Bytes of all buffers the pool holds (in use plus waiting for reuse). */
  bytesHeld: number;
  /** Bytes of buffers handed out and not yet released (size classes, not requests). */
  bytesInUse: number;
  /** Highest bytesInUse seen (since creation or the last resetPeak()). */
  peakInUse: number;
  /** Highest bytesHeld seen. */
  peakHeld: number;
  buffersHeld: number;
  buffersInUse: number;
}

export class BufferPool {
  readonly #device: GPUDevice;
  readonly #maxBufferSize: number;
  readonly #free = new Map<number, GPUBuffer[]>();
  readonly #inUse = new Map<GPUBuffer, number>();
  #bytesHeld = 0;
  #bytesInUse = 0;
  #peakInUse = 0;
  #peakHeld = 0;
  #buffersHeld = 0;

  constructor(device: GPUDevice) {
    this.#device = device;
    this.#maxBufferSize = device.limits.maxBufferSize;
  }

  /** A buffer of at least `bytes` bytes (contents unspecified). */
  acquire(bytes: number): GPUBuffer {
    if (!(bytes >= 0) || !Number.isSafeInteger(bytes)) {
      throw new HotpathsError('E_ARG', `BufferPool.acquire: bytes must be a non-negative integer, got ${bytes}`);
    }
    let size = sizeClass(bytes);
    if (size > this.#maxBufferSize) {
      if (bytes > this.#maxBufferSize) {
        throw new HotpathsError('E_TOO_LARGE', `webgpu: a buffer of ${bytes} bytes exceeds this device's maxBufferSize (${this.#maxBufferSize})`);
      }
      size = Math.ceil(bytes / 4) * 4; // an exact-size buffer near the limit: no class
    }
    let buf = this.#free.get(size)?.pop();
    if (!buf) {
      buf = this.#device.createBuffer({ size, usage: POOL_USAGE, label: `hotpaths pool ${size}` });
      this.#bytesHeld += size;
      this.#buffersHeld++;
      this.#peakHeld = Math.max(this.#peakHeld, this.#bytesHeld);
    }
    this.#inUse.set(buf, size);
    this.#bytesInUse += size;
    this.#peakInUse = Math.max(this.#peakInUse, this.#bytesInUse);
    return buf;
  }

  /** Gives a buffer from acquire() back; buffers the pool does not own are ignored. */
  release(buf: GPUBuffer): void {
    const size = this.#inUse.get(buf);
    if (size === undefined) return;
    this.#inUse.delete(buf);
    this.#bytesInUse -= size;
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, (list = []));
    list.push(buf);
  }

  /** True when `buf` came from this pool and is handed out. */
  owns(buf: GPUBuffer): boolean {
    return this.#inUse.has(buf);
  }

  stats(): PoolStats {
    return {
      bytesHeld: this.#bytesHeld,
      bytesInUse: this.#bytesInUse,
      peakInUse: this.#peakInUse,
      peakHeld: this.#peakHeld,
      buffersHeld: this.#buffersHeld,
      buffersInUse: this.#inUse.size,
    };
  }

  resetPeak(): void {
    this.#peakInUse = this.#bytesInUse;
    this.#peakHeld = this.#bytesHeld;
  }

  /** Destroys the buffers waiting for reuse (work already submitted that uses them still completes). */
  trim(): void {
    for (const [size, list] of this.#free) {
      for (const b of list) b.destroy();
      this.#bytesHeld -= size * list.length;
      this.#buffersHeld -= list.length;
    }
    this.#free.clear();
  }

  /** Destroys every buffer, in use or not. */
  destroy(): void {
    this.trim();
    for (const [b, size] of this.#inUse) {
      b.destroy();
      this.#bytesHeld -= size;
      this.#buffersHeld--;
    }
    this.#inUse.clear();
    this.#bytesInUse = 0;
  }
}
