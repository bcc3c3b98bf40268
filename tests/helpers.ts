// Shared test helpers: which backends run here (and why the others skip), seeded random inputs,
// and comparison helpers with stated tolerances.

import { expect } from 'vitest';
import { decodeValue } from '../src/reference/fp8.js';
import { getBackend, probeBackend } from '../src/runtime/index.js';
import type { Backend, BackendName, Fp8Format } from '../src/runtime/backend.js';
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
 * that must run (cpu, webgpu): one missing there fails instead of skipping. HOTPATHS_ONLY, when set,
 * lists the only backends to test (CI's reruns of the cpu kernels on their AVX2 and scalar paths);
 * the others skip, saying so.
 */
export async function backendsUnderTest(): Promise<BackendUnderTest[]> {
  const required = (process.env.HOTPATHS_REQUIRE ?? '').split(',').filter(Boolean);
  const only = (process.env.HOTPATHS_ONLY ?? '').split(',').filter(Boolean);
  const out: BackendUnderTest[] = [];
  for (const name of ['cpu', 'webgpu', 'cuda'] as const) {
    if (only.length > 0 && !only.includes(name)) {
      const reason = `not in HOTPATHS_ONLY=${only.join(',')}`;
      console.warn(`[skip] ${name}: ${reason}`);
      out.push({ name, skip: reason });
      continue;
    }
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

/**
 * Whether two typed arrays hold the same bytes (memcmp through Node's Buffer, so that a check of
 * hundreds of MB, as the dispatch tests' expertX at H 7168, takes milliseconds instead of the minutes
 * an element loop or expect().toEqual takes there). Different byte lengths: false; the element types are
 * not compared (the caller's, where they matter).
 */
export function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/**
 * Fails the test unless got and want hold the same bytes: on a difference, names the first differing
 * byte, its value on both sides, and how many differ (never prints the arrays).
 */
export function expectSameBytes(got: Uint8Array, want: Uint8Array, tag: string): void {
  if (got.length !== want.length) throw new Error(`${tag}: ${got.length} bytes, want ${want.length}`);
  if (sameBytes(got, want)) return;
  const first = firstBitDiff(got, want);
  let n = 0;
  for (let i = first; i < got.length; i++) n += got[i] !== want[i] ? 1 : 0;
  throw new Error(`${tag}: ${n} of ${got.length} bytes differ, the first at byte ${first}: got ${hex(got[first])}, want ${hex(want[first])}`);
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

/**
 * WebGPU on a real GPU: scales within 3 f32 ulp, and a code may differ by one step only where x/scale
 * lies within 4 f32 ulp of an fp8 rounding midpoint (computed in f64 from the reference's scale).
 */
export function expectWithinDivisionSlack(tag: string, x: Float32Array, M: number, K: number, br: number, f: Fp8Format, sr: Float32Array, sb: Float32Array, dr: Uint8Array, db: Uint8Array): void {
  for (let i = 0; i < sr.length; i++) {
    if (Number.isNaN(sr[i]!)) expect(sb[i], `${tag} scale ${i}`).toBeNaN();
    else expect(Math.abs(sb[i]! - sr[i]!), `${tag} scale ${i}`).toBeLessThanOrEqual(3 * 2 ** -23 * sr[i]!);
  }
  const nbK = Math.ceil(K / 128);
  for (let i = 0; i < M * K; i++) {
    if (db[i] === dr[i]) continue;
    const s = sr[Math.floor(Math.floor(i / K) / br) * nbK + Math.floor((i % K) / 128)]!;
    const q = x[i]! / s;
    const lo = decodeValue(dr[i]!, f), hi = decodeValue(db[i]!, f);
    const mid = (lo + hi) / 2;
    const nearMid = Math.abs(q - mid) <= 4 * 2 ** -23 * Math.abs(q);
    const adjacent = Math.abs((dr[i]! & 0x7f) - (db[i]! & 0x7f)) === 1 && (dr[i]! & 0x80) === (db[i]! & 0x80);
    expect(nearMid && adjacent, `${tag} data[${i}] got ${hex(db[i])} want ${hex(dr[i])} (x/scale = ${q})`).toBe(true);
  }
}

/**
 * Pair ids for gathered GEMM rows (gemm.fp8GroupedContiguous's opts.gather) over R source rows of k
 * slots, laid out as moe align's sortedPairs for the groupIndex gi (−1: padding): computed rows get a
 * real id (rows repeat: ~30% of them come from 4 ids drawn often) or, on ~10%, an id outside
 * [0, R·k) (the sentinel R·k, −1, past it, 2³¹ − 1); padding rows mostly the sentinel, else a real id
 * (still a zero row). `extra` more random ids follow the M_sum = gi.length read ones: never read.
 */
export function gatherPairs(r: () => number, gi: Int32Array, R: number, k: number, extra: number): Int32Array {
  const n = R * k;
  const often = Array.from({ length: 4 }, () => Math.floor(r() * n));
  const outside = [n, n, -1, n + 17, 2 ** 31 - 1];
  const pairs = new Int32Array(gi.length + extra);
  for (let m = 0; m < pairs.length; m++) {
    const u = r();
    const real = n === 0 ? n : u < 0.3 ? often[Math.floor(r() * often.length)]! : Math.floor(r() * n);
    if (m >= gi.length) pairs[m] = Math.floor(r() * 2 ** 31);
    else if (gi[m] === -1) pairs[m] = u < 0.8 ? n : real;
    else pairs[m] = u > 0.9 ? outside[Math.floor(r() * outside.length)]! : real;
  }
  return pairs;
}

/**
 * Rows of `width` bytes gathered on the host through pair ids (moe align's sortedPairs, gemm's
 * opts.gather): row m (m < M) = src row floor(pairs[m] / k), all zeros for an id outside [0, R·k)
 * with R = src's rows.
 */
export function gatherRowBytes(src: Uint8Array, width: number, pairs: ArrayLike<number>, M: number, k: number): Uint8Array {
  const R = width > 0 ? src.length / width : 0;
  const out = new Uint8Array(M * width);
  for (let m = 0; m < M; m++) {
    const id = pairs[m]!;
    if (id < 0 || id >= R * k) continue;
    const row = Math.floor(id / k);
    out.set(src.subarray(row * width, (row + 1) * width), m * width);
  }
  return out;
}

/**
 * The explicitly gathered rows of an FP8 operand on the host: codes [R, K] and scales [R, KB] -> row m
 * (m < M) = row floor(pairs[m] / k), all zeros (codes 0, scales 0) for an id outside [0, R·k).
 */
export function gatherRowsHost(codes: Uint8Array, scales: Float32Array, K: number, pairs: Int32Array, M: number, k: number): { codes: Uint8Array; scales: Float32Array } {
  const KB = Math.ceil(K / 128);
  const bytes = (f: Float32Array) => new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  return { codes: gatherRowBytes(codes, K, pairs, M, k), scales: new Float32Array(gatherRowBytes(bytes(scales), 4 * KB, pairs, M, k).buffer) };
}
