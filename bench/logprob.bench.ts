// logprob benchmarks: per-token log-probs from logits (f32 and bf16; with entropy) and their backward
// (in place over f32 logits), at Qwen's vocabulary (151,936). Memory-bound: GB/s = (bytes read + bytes
// written) / time, against the copy ceiling. Peer in the same run: the reference backend for cpu, the
// cpu backend for the GPUs (a PyTorch peer comes with the cuda kernels).

import { logprob } from '../src/index.js';
import type { Backend, BackendName } from '../src/runtime/backend.js';
import { toBf16 } from '../src/dtype.js';
import type { Tensor } from '../src/tensor.js';
import type { Ceilings } from './ceilings.js';
import { rates, timeOp, type BenchOptions, type Measurement } from './harness.js';

export interface LogprobCase {
  op: 'fromLogits' | 'fromLogits+entropy' | 'backward (in place)';
  N: number;
  V: number;
  dtype: 'f32' | 'bf16';
}

export const QWEN_VOCAB = 151936;

export function logprobCases(backend: BackendName, quick: boolean): LogprobCase[] {
  const N = quick || backend === 'reference' ? 16 : backend === 'cpu' ? 256 : 4096;
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
function bytes(c: LogprobCase): number {
  const n = c.N * c.V * (c.dtype === 'bf16' ? 2 : 4);
  return c.op === 'backward (in place)' ? 2 * n + c.N * 12 : n + c.N * 12;
}

async function prepare(backend: Backend, c: LogprobCase): Promise<{ run: () => Promise<void>; free: () => void }> {
  const host = new Float32Array(c.N * c.V);
  for (let i = 0; i < host.length; i++) host[i] = Math.sin(i * 0.618) * 8; // deterministic, not zeros
  const z = c.dtype === 'bf16' ? backend.fromHost(toBf16(host), 'bf16', [c.N, c.V]) : backend.fromHost(host, 'f32', [c.N, c.V]);
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

export async function benchLogprob(backend: Backend, ceilings: Ceilings, opts: BenchOptions, peer?: Backend): Promise<Measurement[]> {
  const out: Measurement[] = [];
  for (const c of logprobCases(backend.name, opts.quick)) {
    const p = await prepare(backend, c);
    const { ms, timer } = await timeOp(backend, p.run, opts.quick);
    p.free();
    const m: Measurement = { family: 'logprob', op: logprobCaseName(c), backend: backend.name, shape: `${c.N}x${c.V}`, ms, timer, ...rates(ms, { bytes: bytes(c) }, ceilings) };
    if (peer?.logprob) {
      const pp = await prepare(peer, c);
      Object.assign(m, { peer: peer.name, peer_ms: (await timeOp(peer, pp.run, true)).ms });
      pp.free();
    }
    out.push(m);
  }
  return out;
}
