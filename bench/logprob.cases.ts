// logprob benchmark cases, shared by bench/logprob.bench.ts (Node) and the browser bench page
// (examples/web/): shapes per backend, bytes moved, inputs. No Node import here.

import * as logprob from '../src/ops/logprob.js';
import type { Backend, BackendName } from '../src/runtime/backend.js';
import { toBf16 } from '../src/dtype.js';
import type { Tensor } from '../src/tensor.js';

export interface LogprobCase {
  op: 'fromLogits' | 'fromLogits+entropy' | 'backward (in place)';
  N: number;
  V: number;
  dtype: 'f32' | 'bf16';
}

export const QWEN_VOCAB = 151936;

/** The cases per backend; `maxBytes` (the backend's largest tensor) caps N so that f32 [N, V] fits. */
export function logprobCases(backend: BackendName, quick: boolean, maxBytes = Infinity): LogprobCase[] {
  // webgpu: f32 [N, V] must fit one binding (2 GiB on the H100; often far less in a browser)
  const want = quick || backend === 'reference' ? 16 : backend === 'cpu' ? 256 : backend === 'webgpu' ? 2048 : 4096;
  const N = Math.max(1, Math.min(want, Math.floor(maxBytes / (QWEN_VOCAB * 4) / 16) * 16));
  const V = QWEN_VOCAB;
  return [
    { op: 'fromLogits', N, V, dtype: 'f32' },
    { op: 'fromLogits', N, V, dtype: 'bf16' },
    { op: 'fromLogits+entropy', N, V, dtype: 'bf16' },
    { op: 'backward (in place)', N, V, dtype: 'f32' },
  ];
}

export function logprobCaseName(c: LogprobCase): string {
  return `${c.op} ${c.dtype}`;
}

/** Bytes a perfect kernel moves: the logits read once (the backward also writes them once). */
export function logprobBytes(c: LogprobCase): number {
  const n = c.N * c.V * (c.dtype === 'bf16' ? 2 : 4);
  return c.op === 'backward (in place)' ? 2 * n + c.N * 12 : n + c.N * 12;
}

/**
 * Deterministic non-zero logits [N, V] in [−8, 8], fast to build at any size: one pattern of V + 4096
 * values (built once, converted to bf16 once), each row a copy of it from a row-dependent offset.
 * Rows are numbered from `firstRow` (a later slice of one larger batch gets that batch's rows).
 */
export function tiledLogits(N: number, V: number, bf16: boolean, firstRow = 0): Float32Array | Uint16Array {
  const src32 = Float32Array.from({ length: V + 4096 }, (_, i) => Math.sin(i * 0.618) * 8);
  const src = bf16 ? toBf16(src32) : src32;
  const out = bf16 ? new Uint16Array(N * V) : new Float32Array(N * V);
  for (let t = 0; t < N; t++) {
    const o = ((firstRow + t) * 7919) % 4096;
    out.set(src.subarray(o, o + V) as never, t * V);
  }
  return out;
}

export async function prepareLogprob(backend: Backend, c: LogprobCase): Promise<{ run: () => Promise<void>; free: () => void }> {
  const z = backend.fromHost(tiledLogits(c.N, c.V, c.dtype === 'bf16'), c.dtype, [c.N, c.V]);
  const y = backend.fromHost(Int32Array.from({ length: c.N }, (_, i) => (i * 7919) % c.V), 'i32', [c.N]);
  const held: Tensor[] = [z, y];
  if (c.op === 'backward (in place)') {
    const f = await logprob.fromLogits(z, y);
    const g = backend.fromHost(new Float32Array(c.N).fill(0.5), 'f32', [c.N]);
    held.push(f.logp, f.lse, g);
    // in place: each run overwrites the logits with a gradient; the work per element is the same
    return { run: async () => void (await logprob.fromLogitsBackward(z, y, f.lse, g, { temperature: 1, inPlace: true })), free: () => held.forEach((t) => t.dispose()) };
  }
  const entropy = c.op === 'fromLogits+entropy';
  return {
    run: async () => {
      const r = await logprob.fromLogits(z, y, { entropy });
      r.logp.dispose();
      r.lse.dispose();
      r.entropy?.dispose();
    },
    free: () => held.forEach((t) => t.dispose()),
  };
}

