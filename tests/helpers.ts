// Shared test helpers: which backends run here (and why the others skip), seeded random inputs,
// and comparison helpers with stated tolerances.

import { getBackend, probeBackend } from '../src/runtime/index.js';
import type { Backend, BackendName } from '../src/runtime/backend.js';
import type { Tensor } from '../src/tensor.js';

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

/** mulberry32: a small seeded generator, so a failure can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A fresh seed per run (printed on failure through the test name or message). */
export function freshSeed(): number {
  return (Math.random() * 2 ** 31) | 0;
}

/** Gaussian-ish values times `scale`, with a spread of magnitudes (log-uniform over `decades`). */
export function randomF32(n: number, r: () => number, scale = 1, decades = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = (r() + r() + r() - 1.5) * 2;
    out[i] = g * scale * (decades ? 10 ** ((r() - 0.5) * decades) : 1);
  }
  return out;
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
