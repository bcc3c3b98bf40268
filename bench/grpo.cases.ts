// grpo benchmark cases, shared by bench/grpo.bench.ts (Node) and the browser bench page: the fused
// GRPO loss forward+backward from bf16 logits (grpo.fusedLoss: log-prob, ratio, clip, k3 KL,
// aggregation and d loss / d logits in one call) at Qwen's vocabulary. No Node import here.

import * as grpo from '../src/ops/grpo.js';
import type { Backend, BackendName } from '../src/runtime/backend.js';
import type { Tensor } from '../src/tensor.js';
import { MAX_ELEMENTS } from '../src/ops/validate.js';
import { QWEN_VOCAB, tiledLogits } from './logprob.cases.js';

export interface GrpoCase {
  /** Sequences × tokens per sequence: N = B·T rows of logits. */
  B: number;
  T: number;
  V: number;
  /** Gradient written over the bf16 logits (needs the fused kernel), else a new f32 [N, V]. */
  inPlace: boolean;
}

/** The shape (16 × 2048 tokens, V = 151,936) on cuda; smaller where memory or time is short. */
export function grpoCases(backend: Backend, quick: boolean): GrpoCase[] {
  const name: BackendName = backend.name;
  const inPlace = !!backend.grpo?.fusedTokenLoss;
  if (quick || name === 'reference') return [{ B: 2, T: 8, V: QWEN_VOCAB, inPlace }];
  const T = name === 'cuda' ? 2048 : name === 'webgpu' ? 128 : 64;
  const cases: GrpoCase[] = [{ B: 16, T, V: QWEN_VOCAB, inPlace }];
  // WebGPU binds at most maxBytes per buffer: f32 dlogits of [N, V] must fit
  return cases.filter((c) => c.B * c.T * c.V * (c.inPlace ? 2 : 4) <= backend.maxBytes);
}

export function grpoCaseName(c: GrpoCase): string {
  return `fusedLoss fwd+bwd bf16${c.inPlace ? ' (in place)' : ' -> f32'}`;
}

/** Bytes a perfect kernel moves: the bf16 logits read once, the gradient written once. */
export function grpoBytes(c: GrpoCase): number {
  const n = c.B * c.T * c.V;
  return n * 2 + n * (c.inPlace ? 2 : 4);
}

/**
 * Deterministic inputs: logits in [−8, 8), old/ref log-probs near the policy's, advantages ±1, a full
 * mask. On cpu and cuda the whole batch is one fusedLoss call (their fused kernels index with 64 bits;
 * the 16 × 2048 × 151,936 is 5.0e9 logits). Elsewhere an op takes at most 2^31 − 1 elements
 * per tensor, so a larger batch runs as micro-batches of whole sequences, each its own fusedLoss call,
 * one after another in run() (what a trainer does anyway).
 */
export async function prepareGrpo(backend: Backend, c: GrpoCase): Promise<{ run: () => Promise<void>; free: () => void }> {
  const { B, T, V } = c;
  const wide = backend.name === 'cuda' || backend.name === 'cpu';
  const seqsPerCall = wide ? B : Math.max(1, Math.min(B, Math.floor(MAX_ELEMENTS / (T * V))));
  const held: Tensor[] = [];
  const calls: (() => Promise<void>)[] = [];
  for (let b0 = 0; b0 < B; b0 += seqsPerCall) {
    const Bc = Math.min(seqsPerCall, B - b0);
    const N = Bc * T;
    const f = (v: Float32Array, shape: number[]) => backend.fromHost(v, 'f32', shape);
    const lp = Float32Array.from({ length: N }, (_, i) => -12 - (i % 7) * 0.1);
    const ts = [
      N * V > MAX_ELEMENTS ? await deviceTiledLogits(backend, N, V, b0 * T) : backend.fromHost(tiledLogits(N, V, true, b0 * T), 'bf16', [N, V]),
      backend.fromHost(Int32Array.from({ length: N }, (_, i) => ((b0 * T + i) * 7919) % V), 'i32', [Bc, T]),
      f(lp, [Bc, T]),
      f(lp.map((v) => v + 0.05), [Bc, T]),
      f(Float32Array.from({ length: Bc }, (_, i) => ((b0 + i) % 2 ? 1 : -1)), [Bc]),
      f(new Float32Array(N).fill(1), [Bc, T]),
    ];
    held.push(...ts);
    const [logits, targets, oldLogp, refLogp, advantages, mask] = ts as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
    calls.push(async () => {
      // in place: each run overwrites the logits with a gradient; the work per element is the same
      const r = await grpo.fusedLoss({ logits, targets, oldLogp, refLogp, advantages, mask, beta: 0.04, epsHigh: 0.28, inPlace: c.inPlace });
      r.logp.dispose();
      if (!c.inPlace) r.dlogits.dispose();
    });
  }
  return {
    run: async () => {
      for (const call of calls) await call();
    },
    free: () => held.forEach((t) => t.dispose()),
  };
}

/**
 * tiledLogits(N, V, true, firstRow) built on the device, for a batch past what one host array holds:
 * its rows repeat every 4096, so one block of 4096 is uploaded and copied along (moe.copyRows).
 */
async function deviceTiledLogits(backend: Backend, N: number, V: number, firstRow: number): Promise<Tensor> {
  const copyRows = backend.moe?.copyRows;
  if (!copyRows) throw new Error(`bench grpo: ${N}×${V} logits need moe.copyRows on ${backend.name} to be built`);
  const period = 4096;
  const block = backend.fromHost(tiledLogits(Math.min(N, period), V, true, firstRow), 'bf16', [Math.min(N, period), V]);
  const out = backend.empty('bf16', [N, V]);
  for (let r = 0; r < N; r += period) await copyRows.call(backend.moe, block, 0, out, r, Math.min(period, N - r));
  block.dispose(); // queued behind the copies on GPU backends
  return out;
}
