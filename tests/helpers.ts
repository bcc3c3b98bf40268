// Shared test helpers: which backends run here (and why the others skip), seeded random inputs,
// and comparison helpers with stated tolerances.

import { getBackend, probeBackend } from '../src/runtime/index.js';
import type { Backend, BackendName } from '../src/runtime/backend.js';
import type { Tensor } from '../src/tensor.js';

export { rng, randomF32 } from './seeded.js';

export interface BackendUnderTest {
  name: BackendName;
  backend?: Backend;
  /** Why it skips here; undefined when it runs. */
  skip?: string;
}

/**
 * The non-reference backends, each with the reason it skips. On CI, HOTPATHS_REQUIRE lists backends
 * that must run (cpu, webgpu): one missing there fails instead of skipping.
 */
export async function backendsUnderTest(): Promise<BackendUnderTest[]> {
  const required = (process.env.HOTPATHS_REQUIRE ?? '').split(',').filter(Boolean);
  const out: BackendUnderTest[] = [];
  for (const name of ['cpu', 'webgpu', 'cuda'] as const) {
    const p = await probeBackend(name);
    if (p.ok) out.push({ name, backend: await getBackend(name) });
    else if (required.includes(name)) throw new Error(`backend ${name} is required here (HOTPATHS_REQUIRE) but cannot run: ${p.reason}`);
    else {
      console.warn(`[skip] ${name}: ${p.reason}`);
      out.push({ name, skip: p.reason });
    }
  }
  return out;
}

/** A fresh seed per run (printed on failure through the test name or message). */
export function freshSeed(): number {
  return (Math.random() * 2 ** 31) | 0;
}

/** Index of the first element whose bit pattern differs, or -1. */
export function firstBitDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

export function f32Bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

export function hex(v: number | undefined): string {
  return v === undefined ? 'undefined' : `0x${(v >>> 0).toString(16)}`;
}

/** The contents of an f32 tensor. */
export async function readF32(t: Tensor): Promise<Float32Array> {
  return (await t.read()) as Float32Array;
}

/** Runs fn and returns what it threw (or rejected with), or undefined. */
export async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  return undefined;
}
