// nn: what the trainer's transformer needs beyond gemm/moe/logprob/grpo — embedding, RMSNorm, RoPE,
// causal attention, SwiGLU, elementwise updates, AdamW and sampling, each with its backward. f32.
// Validates once here, then runs on the tensors' backend. Exact semantics: docs/API.md "## nn".
// The kernels (NnKernels in src/runtime/backend.ts) see canonical shapes: the ops hand them views
// ([N, D], [N, nH, Dh], …) of the caller's tensors, which may carry extra leading dimensions.

import { HotpathsError, show } from '../errors.js';
import type { AdamWParams, NnKernels } from '../runtime/backend.js';
import { viewAs, type Tensor } from '../tensor.js';
import {
  assertBoolean,
  assertDTypeIn,
  assertNonEmpty,
  assertNumber,
  assertOptions,
  assertRank,
  assertSameDevice,
  assertShapeEquals,
  assertTensor,
  hostValues,
  notImplemented,
} from './validate.js';

export type { AdamWParams } from '../runtime/backend.js';

/** A non-empty f32 tensor. */
function f32Tensor(what: string, t: unknown): asserts t is Tensor {
  assertTensor(what, t);
  assertDTypeIn(what, t, ['f32']);
  assertNonEmpty(what, t);
}

function kernelsOf(op: string, t: Tensor): NnKernels {
  const k = t.backend.nn;
  if (!k) throw notImplemented(op, t);
  return k;
}

/** Token ids in [0, V), checked where the values are on the host (a GPU kernel must not read past the table). */
function checkIds(op: string, ids: Tensor, table: Tensor, V: number): void {
  const y = hostValues(ids);
  if (!y) return;
  for (let i = 0; i < y.length; i++) {
    const v = y[i]!;
    if (!(v >= 0 && v < V)) {
      throw new HotpathsError('E_ARG', `${op}: ids: expected token ids in [0, ${V}) (V of the table ${table.describe()}), got ${v} at index ${i}`);
    }
  }
}

/** Rows and row length of t seen as [N, D], D its last dimension. */
function rows(t: Tensor): [number, number] {
  const D = t.shape[t.shape.length - 1]!;
  return [t.size / D, D];
}

// ---------------------------------------------------------------- embedding

/**
 * table: f32 [V, D], ids: i32 of any shape (usually [N] or [B, T]) with values in [0, V)
 * -> f32 [...ids.shape, D], row n = table[ids[n]].
 */
export async function embedding(table: Tensor, ids: Tensor): Promise<Tensor> {
  const op = 'nn.embedding()';
  const [V, D] = checkTable(op, table);
  checkIdTensor(op, ids, table);
  const k = kernelsOf(op, table);
  checkIds(op, ids, table, V);
  const out = table.backend.empty('f32', [...ids.shape, D]);
  await k.embedding(table, viewAs(ids, [ids.size]), viewAs(out, [ids.size, D]));
  return out;
}

/**
 * dOut: f32 [...ids.shape, D], ids as in the forward -> dTable f32 [V, D] += the rows of dOut scattered
 * back by id (a repeated id sums its rows, in id order: deterministic). Returns dTable.
 */
export async function embeddingBackward(dOut: Tensor, ids: Tensor, dTable: Tensor): Promise<Tensor> {
  const op = 'nn.embeddingBackward()';
  const [V, D] = checkTable(op, dTable, 'dTable');
  checkIdTensor(op, ids, dTable);
  f32Tensor(`${op}: dOut`, dOut);
  assertShapeEquals(`${op}: dOut`, dOut, [...ids.shape, D], `([...ids.shape, D] for ids ${ids.describe()} and dTable ${dTable.describe()})`);
  assertSameDevice(op, dTable, ids, dOut);
  const k = kernelsOf(op, dTable);
  checkIds(op, ids, dTable, V);
  await k.embeddingBackward(viewAs(dOut, [ids.size, D]), viewAs(ids, [ids.size]), dTable);
  return dTable;
}

function checkTable(op: string, table: unknown, name = 'table'): [number, number] {
  f32Tensor(`${op}: ${name}`, table);
  assertRank(`${op}: ${name}`, table, 2);
  return table.shape as [number, number];
}

function checkIdTensor(op: string, ids: unknown, table: Tensor): asserts ids is Tensor {
  assertTensor(`${op}: ids`, ids);
  assertDTypeIn(`${op}: ids`, ids, ['i32']);
  assertNonEmpty(`${op}: ids`, ids);
  assertSameDevice(op, table, ids);
}

// ---------------------------------------------------------------- RMSNorm

export interface RmsnormOptions {
  /** Added to mean(x²) under the root. Default 1e-6. */
  eps?: number;
}

/**
 * x: f32 [..., D], weight: f32 [D] -> out: f32 [..., D] = x · rstd · weight and rstd: f32 [...] (x's
 * shape without D; [1] for a 1-D x) = 1 / sqrt(mean(x²) + eps), saved for the backward. eps default 1e-6.
 */
export async function rmsnorm(x: Tensor, weight: Tensor, opts: RmsnormOptions = {}): Promise<{ out: Tensor; rstd: Tensor }> {
  const op = 'nn.rmsnorm()';
  f32Tensor(`${op}: x`, x);
  const [N, D] = rows(x);
  f32Tensor(`${op}: weight`, weight);
  assertShapeEquals(`${op}: weight`, weight, [D], `(D, the last dimension of x ${x.describe()})`);
  assertSameDevice(op, x, weight);
  assertOptions(`${op}: options`, opts);
  const eps = opts.eps ?? 1e-6;
  assertNumber(`${op}: eps`, eps, { min: 0 });
  const k = kernelsOf(op, x);
  const out = x.backend.empty('f32', x.shape);
  const rstd = x.backend.empty('f32', rstdShape(x));
  await k.rmsnorm(viewAs(x, [N, D]), weight, eps, viewAs(out, [N, D]), viewAs(rstd, [N]));
  return { out, rstd };
}

function rstdShape(x: Tensor): number[] {
  return x.shape.length > 1 ? x.shape.slice(0, -1) : [1];
}

/**
 * dOut, x: f32 [..., D], weight: f32 [D], rstd from the forward, dWeight: f32 [D]
 * -> dx: f32 [..., D] (new); dWeight += Σ over rows of dOut·x·rstd (accumulated: zero it per step).
 */
export async function rmsnormBackward(dOut: Tensor, x: Tensor, weight: Tensor, rstd: Tensor, dWeight: Tensor): Promise<Tensor> {
  const op = 'nn.rmsnormBackward()';
  f32Tensor(`${op}: x`, x);
  const [N, D] = rows(x);
  f32Tensor(`${op}: dOut`, dOut);
  assertShapeEquals(`${op}: dOut`, dOut, x.shape, `(the shape of x ${x.describe()})`);
  f32Tensor(`${op}: weight`, weight);
  assertShapeEquals(`${op}: weight`, weight, [D], `(D, the last dimension of x ${x.describe()})`);
  f32Tensor(`${op}: rstd`, rstd);
  assertShapeEquals(`${op}: rstd`, rstd, rstdShape(x), `(the forward's rstd for x ${x.describe()})`);
  f32Tensor(`${op}: dWeight`, dWeight);
  assertShapeEquals(`${op}: dWeight`, dWeight, [D], `(D, the last dimension of x ${x.describe()})`);
  assertSameDevice(op, x, dOut, weight, rstd, dWeight);
  const k = kernelsOf(op, x);
  const dx = x.backend.empty('f32', x.shape);
  await k.rmsnormBackward(viewAs(dOut, [N, D]), viewAs(x, [N, D]), weight, viewAs(rstd, [N]), viewAs(dx, [N, D]), dWeight);
  return dx;
}

// ---------------------------------------------------------------- RoPE

export interface RopeOptions {
  /** Base of the frequencies theta^(−2i/Dh). Default 10000. */
  theta?: number;
  /** Rotate by −angle: the backward (the rotation's transpose). Default false. */
  inverse?: boolean;
  /** Write the result over x and return x. Default false. */
  inPlace?: boolean;
}

/**
 * x: f32 [N, nH, Dh] or [B, T, nH, Dh] (Dh even), positions: i32 with one position per row of x ([N],
 * or [B, T] / [B·T] for a 4-D x) -> the rotated x (a new tensor, or x with inPlace). Each pair
 * (x[2i], x[2i+1]) of every head turns by angle pos·theta^(−2i/Dh) (interleaved pairs, GPT-J /
 * llama.cpp style); inverse turns by −angle, which is the backward.
 */
export async function rope(x: Tensor, positions: Tensor, opts: RopeOptions = {}): Promise<Tensor> {
  const op = 'nn.rope()';
  f32Tensor(`${op}: x`, x);
  if (x.shape.length !== 3 && x.shape.length !== 4) {
    throw new HotpathsError('E_SHAPE', `${op}: x: expected a 3-D [N, nH, Dh] or 4-D [B, T, nH, Dh] tensor, got ${x.describe()}`);
  }
  const Dh = x.shape[x.shape.length - 1]!;
  const nH = x.shape[x.shape.length - 2]!;
  if (Dh % 2 !== 0) throw new HotpathsError('E_SHAPE', `${op}: x: expected an even head dimension Dh (pairs are rotated), got Dh = ${Dh} in ${x.describe()}`);
  const N = x.size / (nH * Dh);
  assertTensor(`${op}: positions`, positions);
  assertDTypeIn(`${op}: positions`, positions, ['i32']);
  const lead = x.shape.slice(0, -2);
  const okShape = (positions.shape.length === 1 && positions.shape[0] === N) || (positions.shape.length === lead.length && positions.shape.every((d, i) => d === lead[i]));
  if (!okShape) {
    throw new HotpathsError('E_SHAPE', `${op}: positions: expected shape ${show(lead)} or [${N}] (one position per row of x ${x.describe()}), got ${positions.describe()}`);
  }
  assertSameDevice(op, x, positions);
  assertOptions(`${op}: options`, opts);
  const theta = opts.theta ?? 10000;
  assertNumber(`${op}: theta`, theta, { min: 0, minExclusive: true });
  const inverse = opts.inverse ?? false;
  assertBoolean(`${op}: inverse`, inverse);
  const inPlace = opts.inPlace ?? false;
  assertBoolean(`${op}: inPlace`, inPlace);
  const k = kernelsOf(op, x);
  const out = inPlace ? x : x.backend.empty('f32', x.shape);
  const xv = viewAs(x, [N, nH, Dh]);
  await k.rope(xv, viewAs(positions, [N]), theta, inverse, inPlace ? xv : viewAs(out, [N, nH, Dh]));
  return out;
}

// ---------------------------------------------------------------- attention

export interface AttentionOptions {
  /** Position of the first query (KV-cache decoding: the cache length before this step). Default 0. */
  qOffset?: number;
  /** Keys and values in use: the first kvLen of S rows. Default S. Needs qOffset + Tq ≤ kvLen ≤ S. */
  kvLen?: number;
  /** Multiplies q·k. Default 1/sqrt(Dh). */
  scale?: number;
}

/**
 * Causal attention, one KV head per query head: q f32 [B, Tq, nH, Dh], k, v f32 [B, S, nH, Dh]
 * -> out f32 [B, Tq, nH, Dh], lse f32 [B, nH, Tq] (log-sum-exp of each query's scaled scores, for the
 * backward). Query i sits at position qOffset + i and sees keys j ≤ qOffset + i (all j < kvLen since
 * qOffset + Tq ≤ kvLen). Training: the defaults (qOffset 0, Tq = S = kvLen). Decoding with a KV cache:
 * Tq = 1, qOffset = tokens already cached, kvLen = qOffset + 1, k and v the cache [B, Smax, nH, Dh].
 */
export async function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Promise<{ out: Tensor; lse: Tensor }> {
  const op = 'nn.attention()';
  const [B, Tq, nH, Dh] = checkQkv(op, q, k, v);
  const S = k.shape[1]!;
  assertOptions(`${op}: options`, opts);
  const qOffset = opts.qOffset ?? 0;
  assertNumber(`${op}: qOffset`, qOffset, { min: 0, integer: true });
  const kvLen = opts.kvLen ?? S;
  assertNumber(`${op}: kvLen`, kvLen, { min: 1, max: S, integer: true });
  if (qOffset + Tq > kvLen) {
    throw new HotpathsError('E_ARG', `${op}: qOffset + Tq = ${qOffset} + ${Tq} must be ≤ kvLen = ${kvLen} (every query attends to its own key; append the new keys to the cache first)`);
  }
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  assertNumber(`${op}: scale`, scale, { min: 0, minExclusive: true });
  const kern = kernelsOf(op, q);
  const out = q.backend.empty('f32', [B, Tq, nH, Dh]);
  const lse = q.backend.empty('f32', [B, nH, Tq]);
  await kern.attention(q, k, v, qOffset, kvLen, scale, out, lse);
  return { out, lse };
}

/** q [B, Tq, nH, Dh], k and v [B, S, nH, Dh], all f32 on one device. */
function checkQkv(op: string, q: unknown, k: unknown, v: unknown): [number, number, number, number] {
  f32Tensor(`${op}: q`, q);
  assertRank(`${op}: q`, q, 4);
  const [B, Tq, nH, Dh] = q.shape as [number, number, number, number];
  f32Tensor(`${op}: k`, k);
  assertRank(`${op}: k`, k, 4);
  const S = k.shape[1]!;
  assertShapeEquals(`${op}: k`, k, [B, S, nH, Dh], `([B, S, nH, Dh] with B, nH, Dh of q ${q.describe()})`);
  f32Tensor(`${op}: v`, v);
  assertShapeEquals(`${op}: v`, v, [B, S, nH, Dh], `(the shape of k ${k.describe()})`);
  assertSameDevice(op, q, k, v);
  return [B, Tq, nH, Dh];
}

/**
 * Backward of training attention (qOffset 0, Tq = S = kvLen = T): q, k, v, out, dOut f32 [B, T, nH, Dh],
 * lse f32 [B, nH, T] from the forward -> dq, dk, dv f32 [B, T, nH, Dh]. scale: the forward's.
 */
export async function attentionBackward(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, dOut: Tensor, opts: { scale?: number } = {}): Promise<{ dq: Tensor; dk: Tensor; dv: Tensor }> {
  const op = 'nn.attentionBackward()';
  const [B, T, nH, Dh] = checkQkv(op, q, k, v);
  if (k.shape[1] !== T) {
    throw new HotpathsError('E_SHAPE', `${op}: k: expected S = Tq = ${T} (the backward is of training attention) to match q ${q.describe()}, got ${k.describe()}`);
  }
  f32Tensor(`${op}: out`, out);
  assertShapeEquals(`${op}: out`, out, q.shape, `(the shape of q ${q.describe()})`);
  f32Tensor(`${op}: dOut`, dOut);
  assertShapeEquals(`${op}: dOut`, dOut, q.shape, `(the shape of q ${q.describe()})`);
  f32Tensor(`${op}: lse`, lse);
  assertShapeEquals(`${op}: lse`, lse, [B, nH, T], `([B, nH, T] for q ${q.describe()})`);
  assertSameDevice(op, q, out, dOut, lse);
  assertOptions(`${op}: options`, opts);
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  assertNumber(`${op}: scale`, scale, { min: 0, minExclusive: true });
  const kern = kernelsOf(op, q);
  const dq = q.backend.empty('f32', q.shape);
  const dk = q.backend.empty('f32', q.shape);
  const dv = q.backend.empty('f32', q.shape);
  await kern.attentionBackward(q, k, v, out, lse, dOut, scale, dq, dk, dv);
  return { dq, dk, dv };
}

// ---------------------------------------------------------------- SwiGLU

/** gate, up: f32 of one shape [..., F] -> silu(gate)·up = gate·σ(gate)·up, same shape. */
export async function swiglu(gate: Tensor, up: Tensor): Promise<Tensor> {
  const op = 'nn.swiglu()';
  checkSameShape(op, gate, { up });
  const k = kernelsOf(op, gate);
  const out = gate.backend.empty('f32', gate.shape);
  const [N, F] = rows(gate);
  await k.swiglu(viewAs(gate, [N, F]), viewAs(up, [N, F]), viewAs(out, [N, F]));
  return out;
}

/** gate, up, dOut: f32 of one shape -> dGate = dOut·up·σ(g)·(1 + g·(1 − σ(g))), dUp = dOut·silu(g). */
export async function swigluBackward(gate: Tensor, up: Tensor, dOut: Tensor): Promise<{ dGate: Tensor; dUp: Tensor }> {
  const op = 'nn.swigluBackward()';
  checkSameShape(op, gate, { up, dOut });
  const k = kernelsOf(op, gate);
  const dGate = gate.backend.empty('f32', gate.shape);
  const dUp = gate.backend.empty('f32', gate.shape);
  const [N, F] = rows(gate);
  const v = (t: Tensor): Tensor => viewAs(t, [N, F]);
  await k.swigluBackward(v(gate), v(up), v(dOut), v(dGate), v(dUp));
  return { dGate, dUp };
}

/** `first` and every tensor in `others` are non-empty f32 of one shape on one device. */
function checkSameShape(op: string, first: unknown, others: Record<string, unknown>, firstName = 'gate'): asserts first is Tensor {
  f32Tensor(`${op}: ${firstName}`, first);
  for (const [name, t] of Object.entries(others)) {
    f32Tensor(`${op}: ${name}`, t);
    assertShapeEquals(`${op}: ${name}`, t, first.shape, `(the shape of ${firstName} ${first.describe()})`);
    assertSameDevice(op, first, t);
  }
}

// ---------------------------------------------------------------- elementwise updates, AdamW

/** a + alpha·b elementwise (f32, one shape; alpha default 1). opts.out: where to write (may be a or b); default a new tensor. */
export async function addScaled(a: Tensor, b: Tensor, alpha = 1, opts: { out?: Tensor } = {}): Promise<Tensor> {
  const op = 'nn.addScaled()';
  f32Tensor(`${op}: a`, a);
  f32Tensor(`${op}: b`, b);
  assertShapeEquals(`${op}: b`, b, a.shape, `(the shape of a ${a.describe()})`);
  assertSameDevice(op, a, b);
  assertNumber(`${op}: alpha`, alpha);
  assertOptions(`${op}: options`, opts);
  if (opts.out !== undefined) {
    f32Tensor(`${op}: out`, opts.out);
    assertShapeEquals(`${op}: out`, opts.out, a.shape, `(the shape of a ${a.describe()})`);
    assertSameDevice(op, a, opts.out);
  }
  const k = kernelsOf(op, a);
  const out = opts.out ?? a.backend.empty('f32', a.shape);
  await k.addScaled(a, b, alpha, out);
  return out;
}

/** Σ x² over an f32 tensor of any shape (the global gradient norm is sqrt of the sum over all grads); 0 for an empty one. */
export async function sumSquares(x: Tensor): Promise<number> {
  const op = 'nn.sumSquares()';
  assertTensor(`${op}: x`, x);
  assertDTypeIn(`${op}: x`, x, ['f32']);
  if (x.size === 0) return 0;
  return kernelsOf(op, x).sumSquares(x);
}

/**
 * One AdamW step in place on param, m and v (f32, one shape with grad; four distinct tensors), in
 * PyTorch's form (torch.optim.AdamW, amsgrad off), t = p.step counting from 1:
 *   param ← param·(1 − lr·weightDecay);  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
 *   param ← param − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + eps)
 * Zero m and v before the first step.
 */
export async function adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, p: AdamWParams): Promise<void> {
  const op = 'nn.adamw()';
  f32Tensor(`${op}: param`, param);
  const named: [string, Tensor][] = [['grad', grad], ['m', m], ['v', v]];
  for (const [name, t] of named) {
    f32Tensor(`${op}: ${name}`, t);
    assertShapeEquals(`${op}: ${name}`, t, param.shape, `(the shape of param ${param.describe()})`);
  }
  assertSameDevice(op, param, grad, m, v);
  const all: [string, Tensor][] = [['param', param], ...named];
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      if (all[i]![1] === all[j]![1] || all[i]![1].storage === all[j]![1].storage) {
        throw new HotpathsError('E_ARG', `${op}: ${all[i]![0]} and ${all[j]![0]} are the same tensor; param, grad, m and v must be four distinct tensors`);
      }
    }
  }
  if (typeof p !== 'object' || p === null) throw new HotpathsError('E_ARG', `${op}: p: expected { lr, beta1, beta2, eps, weightDecay, step }, got ${show(p)}`);
  assertNumber(`${op}: p.lr`, p.lr, { min: 0 });
  assertNumber(`${op}: p.beta1`, p.beta1, { min: 0 });
  assertNumber(`${op}: p.beta2`, p.beta2, { min: 0 });
  if (p.beta1 >= 1) throw new HotpathsError('E_ARG', `${op}: p.beta1: expected a number in [0, 1), got ${p.beta1}`);
  if (p.beta2 >= 1) throw new HotpathsError('E_ARG', `${op}: p.beta2: expected a number in [0, 1), got ${p.beta2}`);
  assertNumber(`${op}: p.eps`, p.eps, { min: 0, minExclusive: true });
  assertNumber(`${op}: p.weightDecay`, p.weightDecay, { min: 0 });
  assertNumber(`${op}: p.step`, p.step, { min: 1, integer: true });
  if (p.lr * p.weightDecay > 1) {
    throw new HotpathsError('E_ARG', `${op}: p.lr · p.weightDecay = ${p.lr * p.weightDecay} must be ≤ 1 (the decay factor 1 − lr·wd would flip the parameters' sign)`);
  }
  const k = kernelsOf(op, param);
  await k.adamw(param, grad, m, v, { lr: p.lr, beta1: p.beta1, beta2: p.beta2, eps: p.eps, weightDecay: p.weightDecay, step: p.step });
}

// ---------------------------------------------------------------- sampling

export interface SampleOptions {
  /** Softmax temperature; 0 = greedy (argmax, lowest id on ties). Default 1. */
  temperature?: number;
  /** Nucleus: keep the most probable tokens up to mass ≥ topP, in (0, 1]. Default 1 (all). */
  topP?: number;
}

/**
 * logits: f32 [B, V], uniforms: f32 [B] in [0, 1) (from the caller's seeded RNG: the same uniforms give
 * the same ids on every backend) -> ids: i32 [B]. With p = softmax(z / temperature): tokens sorted by p
 * descending (ties: lower id first), keep the shortest prefix whose mass ≥ topP (at least one token),
 * and pick the first kept token whose running mass exceeds u · (kept mass). temperature 0 = argmax.
 */
export async function sample(logits: Tensor, uniforms: Tensor, opts: SampleOptions = {}): Promise<Tensor> {
  const op = 'nn.sample()';
  f32Tensor(`${op}: logits`, logits);
  assertRank(`${op}: logits`, logits, 2);
  const [B] = logits.shape as [number, number];
  f32Tensor(`${op}: uniforms`, uniforms);
  assertShapeEquals(`${op}: uniforms`, uniforms, [B], `(B, one per row of logits ${logits.describe()})`);
  assertSameDevice(op, logits, uniforms);
  assertOptions(`${op}: options`, opts);
  const temperature = opts.temperature ?? 1;
  assertNumber(`${op}: temperature`, temperature, { min: 0 });
  const topP = opts.topP ?? 1;
  assertNumber(`${op}: topP`, topP, { min: 0, minExclusive: true, max: 1 });
  const k = kernelsOf(op, logits);
  const u = hostValues(uniforms);
  if (u) {
    for (let i = 0; i < u.length; i++) {
      if (!(u[i]! >= 0 && u[i]! < 1)) throw new HotpathsError('E_ARG', `${op}: uniforms: expected values in [0, 1), got ${u[i]} at index ${i}`);
    }
  }
  const ids = logits.backend.empty('i32', [B]);
  await k.sample(logits, uniforms, temperature, topP, ids);
  return ids;
}
