// The machine's measured ceilings per backend, measured once and cached in
// ~/.cache/hotpaths/ceilings.json (keyed by backend and device name): copy bandwidth (a large copy,
// bytes read plus bytes written) and peak FP32 FMA throughput, both from Backend.measureCeilings.

import { mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../src/runtime/backend.js';
import { timeOp } from './harness.js';

export interface Ceilings {
  /** GB/s of a large copy, read + write bytes. */
  copyGBps?: number;
  /** Peak FP32 TFLOP/s of FMA chains (no tensor cores); absent for a backend without measureCeilings. */
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

const usable = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v) && v > 0;

/** Ceilings for this backend: cached, or measured now (and cached) when missing or `remeasure`. */
export async function ceilingsFor(backend: Backend, opts: { remeasure: boolean; quick: boolean }): Promise<Ceilings> {
  const key = `${backend.name}:${backend.deviceName}`;
  const all = loadAll();
  const cached = all[key];
  if (!opts.remeasure && usable(cached?.copyGBps) && (usable(cached?.tflops) || !backend.measureCeilings)) return cached!;
  let c: Ceilings;
  if (backend.measureCeilings) {
    const m = await backend.measureCeilings({ quick: opts.quick });
    c = { copyGBps: m.copyGBps, tflops: m.fp32Tflops };
  } else {
    c = { copyGBps: await measureCopy(backend, opts.quick) };
  }
  for (const [k, v] of Object.entries(c)) {
    if (!usable(v as number)) throw new Error(`bench: the ${k} ceiling of ${key} came out as ${v}; not caching or reporting it`);
  }
  c.measuredAt = new Date().toISOString();
  if (!opts.quick) saveAll({ ...all, [key]: c }); // quick numbers are too rough to cache
  return c;
}

/** A backend without measureCeilings: a 256 MiB (64 MiB when quick) tensor copy through its timer. */
async function measureCopy(backend: Backend, quick: boolean): Promise<number> {
  const n = (quick ? 64 : 256) * 2 ** 18; // f32 elements
  const src = backend.fromHost(new Float32Array(n).fill(1), 'f32', [n]);
  const { ms } = await timeOp(backend, async () => backend.copy(src).dispose(), quick);
  src.dispose();
  return (2 * n * 4) / (ms * 1e6);
}
