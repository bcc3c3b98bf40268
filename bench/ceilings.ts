// The machine's measured ceilings per backend, measured once and cached in
// ~/.cache/hotpaths/ceilings.json (keyed by backend and device name): copy bandwidth (a large
// device-to-device copy, counting bytes read plus bytes written). A FLOP/s ceiling joins it with the
// matmul benchmarks (gemm family).

import { mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../src/runtime/backend.js';
import { loadAddon } from '../src/native/addon.js';
import { timeHost, timeOp } from './harness.js';

export interface Ceilings {
  /** GB/s of a large copy, read + write bytes. */
  copyGBps?: number;
  /** Peak dense TFLOP/s measured on this backend (filled in by the gemm benchmarks). */
  tflops?: number;
  measuredAt?: string;
}

const file = () => join(process.env.HOTPATHS_CACHE ?? join(homedir(), '.cache', 'hotpaths'), 'ceilings.json');

function loadAll(): Record<string, Ceilings> {
  try {
    return JSON.parse(readFileSync(file(), 'utf8')) as Record<string, Ceilings>;
  } catch {
    return {};
  }
}

function saveAll(all: Record<string, Ceilings>): void {
  const f = file();
  mkdirSync(join(f, '..'), { recursive: true });
  writeFileSync(`${f}.tmp`, JSON.stringify(all, null, 2));
  renameSync(`${f}.tmp`, f);
}

/** Ceilings for this backend: cached, or measured now (and cached) when missing or `remeasure`. */
export async function ceilingsFor(backend: Backend, opts: { remeasure: boolean; quick: boolean }): Promise<Ceilings> {
  const key = `${backend.name}:${backend.deviceName}`;
  const all = loadAll();
  const cached = all[key];
  if (cached?.copyGBps && !opts.remeasure) return cached;
  const copyGBps = await measureCopy(backend, opts.quick);
  const c: Ceilings = { ...cached, copyGBps, measuredAt: new Date().toISOString() };
  if (!opts.quick) saveAll({ ...all, [key]: c }); // quick numbers are too rough to cache
  return c;
}

/**
 * A copy far larger than any cache: 256 MiB (64 MiB when quick). Host backends copy between two
 * preallocated arrays (reference: one thread with TypedArray.set; cpu: the addon's threaded copy);
 * GPU backends copy tensor to tensor on the device (the pool hands back the same buffer each time).
 */
async function measureCopy(backend: Backend, quick: boolean): Promise<number> {
  const n = (quick ? 64 : 256) * 2 ** 18; // f32 elements
  const bytesMoved = 2 * n * 4;
  if (backend.name === 'reference' || backend.name === 'cpu') {
    const src = new Float32Array(n).fill(1);
    const dst = new Float32Array(n).fill(0);
    const addon = loadAddon();
    const copy = backend.name === 'cpu' && addon ? () => addon.cpuCopy(dst, src) : async () => void dst.set(src);
    return bytesMoved / ((await timeHost(copy, quick ? { maxTime: 0.5, minSamples: 3 } : {})) * 1e6);
  }
  const src = backend.fromHost(new Float32Array(n).fill(1), 'f32', [n]);
  const { ms } = await timeOp(backend, async () => backend.copy(src).dispose(), quick);
  src.dispose();
  return bytesMoved / (ms * 1e6);
}
