// nn: what the trainer's transformer needs beyond gemm/moe/logprob/grpo — embedding, RMSNorm, RoPE,
// causal attention, SwiGLU, elementwise updates, AdamW and sampling, each with its backward. f32.
// Validates once here, then runs on the tensors' backend. Exact semantics: docs/API.md "## nn".
//
// CONTRACT STUB (2026-11-21): the signatures below are the agreed public API; bodies are filled in by
// the nn work. Keep the names and shapes; extend options only.

import { HotpathsError } from '../errors.js';
import type { AdamWParams } from '../runtime/backend.js';
import type { Tensor } from '../tensor.js';

export type { AdamWParams } from '../runtime/backend.js';

const todo = (op: string): never => {
  throw new HotpathsError('E_NOT_IMPLEMENTED', `${op}: not implemented yet`);
};

/** table: f32 [V, D], ids: i32 [N] in [0, V) -> f32 [N, D]. */
export async function embedding(table: Tensor, ids: Tensor): Promise<Tensor> {
  return todo('nn.embedding()');
}
/** dOut: f32 [N, D] -> dTable [V, D] += the rows scattered back (returns dTable). */
export async function embeddingBackward(dOut: Tensor, ids: Tensor, dTable: Tensor): Promise<Tensor> {
  return todo('nn.embeddingBackward()');
}

/** x: f32 [N, D], weight: f32 [D] -> out [N, D] = x·rstd·weight, rstd f32 [N]. eps default 1e-6. */
export async function rmsnorm(x: Tensor, weight: Tensor, opts: { eps?: number } = {}): Promise<{ out: Tensor; rstd: Tensor }> {
  return todo('nn.rmsnorm()');
}
/** -> dx [N, D]; dWeight [D] += Σ dOut·x·rstd. */
export async function rmsnormBackward(dOut: Tensor, x: Tensor, weight: Tensor, rstd: Tensor, dWeight: Tensor): Promise<Tensor> {
  return todo('nn.rmsnormBackward()');
}

/** x: f32 [N, nHeads, Dh], positions: i32 [N] -> rotated (interleaved pairs). theta default 10000; inverse: the backward; inPlace writes x. */
export async function rope(x: Tensor, positions: Tensor, opts: { theta?: number; inverse?: boolean; inPlace?: boolean } = {}): Promise<Tensor> {
  return todo('nn.rope()');
}

/**
 * Causal attention: q f32 [B, Tq, nH, Dh], k, v f32 [B, S, nH, Dh] -> out [B, Tq, nH, Dh], lse f32 [B, nH, Tq].
 * Query i is at position qOffset + i (default 0) and sees keys j ≤ qOffset + i, j < kvLen (default S).
 * scale default 1/sqrt(Dh).
 */
export async function attention(q: Tensor, k: Tensor, v: Tensor, opts: { qOffset?: number; kvLen?: number; scale?: number } = {}): Promise<{ out: Tensor; lse: Tensor }> {
  return todo('nn.attention()');
}
/** Backward of training attention (qOffset 0, Tq = S = kvLen) -> dq, dk, dv. */
export async function attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dOut: Tensor, opts: { scale?: number } = {}): Promise<{ dq: Tensor; dk: Tensor; dv: Tensor }> {
  return todo('nn.attentionBackward()');
}

/** gate, up: f32 [N, F] -> silu(gate)·up. */
export async function swiglu(gate: Tensor, up: Tensor): Promise<Tensor> {
  return todo('nn.swiglu()');
}
export async function swigluBackward(gate: Tensor, up: Tensor, dOut: Tensor): Promise<{ dGate: Tensor; dUp: Tensor }> {
  return todo('nn.swigluBackward()');
}

/** a + alpha·b (alpha default 1); opts.out may be a or b (in place). */
export async function addScaled(a: Tensor, b: Tensor, alpha?: number, opts: { out?: Tensor } = {}): Promise<Tensor> {
  return todo('nn.addScaled()');
}
/** Σ x² (for the global gradient norm). */
export async function sumSquares(x: Tensor): Promise<number> {
  return todo('nn.sumSquares()');
}
/** One AdamW step in place on param, m, v (f32, same shape as grad). */
export async function adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, p: AdamWParams): Promise<void> {
  return todo('nn.adamw()');
}

/**
 * logits: f32 [B, V], uniforms: f32 [B] in [0, 1) (the caller's seeded RNG) -> ids i32 [B].
 * temperature 0 = greedy; top-p keeps the smallest most-probable prefix with mass ≥ topP (default 1).
 */
export async function sample(logits: Tensor, uniforms: Tensor, opts: { temperature?: number; topP?: number } = {}): Promise<Tensor> {
  return todo('nn.sample()');
}
