// model: a small decoder-only transformer in the DeepSeek-V3 manner, written llm.c style — explicit
// forward and backward per layer, shapes in comments, no autograd. Every kernel is one of the
// package's ops on the model's backend (gemm, fp8, moe, nn, logprob); nothing here loops over
// elements. f32 master weights; with `fp8` the linear layers' forward and backward run through
// gemm.fp8Linear / gemm.fp8LinearBackward (DeepSeek-V3's block-scaled recipe), the gate, the norms,
// attention and the LM head stay f32 (as V3 keeps them in higher precision).
//
//   ids [N] → embedding → x [N, D]
//   layer ℓ:  h = rmsnorm(x)            q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ, rope(q), rope(k)
//             x += attention(q, k, v)·Woᵀ  (causal)
//             h2 = rmsnorm(x)           x += ffn(h2)
//   ffn: dense SwiGLU  W2ᵀ(silu(h2·W1ᵀ) ⊙ h2·W3ᵀ)   (the first `denseLayers` layers)
//        MoE           shared SwiGLU expert(h2) + Σ_{e ∈ topk(h2)} w_e · expert_e(h2)
//                      sigmoid gate with a correction bias for selection (moe.gate, group-limited
//                      top-k), tokens grouped by expert (moe.alignBlocks + moe.permute), each expert's
//                      SwiGLU on its rows (gemm on row views), weighted sum back (moe.unpermute)
//   final rmsnorm → hidden [N, D]; the LM head Wh [V, D] is applied by the loss (logprob.fromHidden /
//   grpo.fusedLossFromHidden) or by the sampler.
//
// N = B·T token rows, D = dim, H = heads, Dh = D / H, F = dense hidden, E = routed experts, Fe / Fs =
// routed / shared expert hidden, k = experts per token, P = rows after grouping by expert.

import * as gemm from '../ops/gemm.js';
import * as moe from '../ops/moe.js';
import * as nn from '../ops/nn.js';
import type { Backend } from '../runtime/backend.js';
import { sliceRows, viewAs, type Tensor } from '../tensor.js';
import type { Rng } from './rng.js';

export interface MoeConfig {
  /** Routed experts E. */
  experts: number;
  /** Routed experts per token k. */
  topk: number;
  /** Expert groups (E % nGroup == 0) and groups kept per token (group-limited routing). */
  nGroup: number;
  topkGroup: number;
  /** Hidden size of each routed expert's SwiGLU. */
  expertHidden: number;
  /** Hidden size of the shared expert's SwiGLU (0: no shared expert). */
  sharedHidden: number;
  /** Multiplies the routing weights (V3: 2.5). */
  routedScale: number;
  /** Step of the aux-loss-free bias update (moe.updateBias γ). */
  biasGamma: number;
  /** Weight of the sequence-wise balance loss (moe.auxLoss); 0 skips it. */
  auxAlpha: number;
  /** Rows per expert segment are padded to a multiple of this (moe.alignBlocks). */
  blockSize: number;
}

export interface ModelConfig {
  vocab: number;
  dim: number;
  layers: number;
  heads: number;
  /** Hidden size of the dense layers' SwiGLU. */
  ffnHidden: number;
  /** The first `denseLayers` layers have a dense FFN, the rest MoE (all dense when moe is null). */
  denseLayers: number;
  moe: MoeConfig | null;
  /** Longest sequence (prompt + completion). */
  maxSeq: number;
  ropeTheta: number;
  normEps: number;
  /** Std of the normal initialisation of the linear layers (output projections scaled by 1/sqrt(2·layers)). */
  initStd: number;
}

/** Names and shapes of every trained parameter, in a fixed order (optimizer and checkpoint order). */
export function parameterShapes(c: ModelConfig): [string, number[]][] {
  const D = c.dim;
  const out: [string, number[]][] = [['embed', [c.vocab, D]]];
  for (let l = 0; l < c.layers; l++) {
    const p = `layers.${l}.`;
    out.push([`${p}attnNorm`, [D]], [`${p}wq`, [D, D]], [`${p}wk`, [D, D]], [`${p}wv`, [D, D]], [`${p}wo`, [D, D]], [`${p}ffnNorm`, [D]]);
    if (isMoeLayer(c, l)) {
      const m = c.moe!;
      out.push([`${p}gate`, [m.experts, D]]);
      if (m.sharedHidden > 0) out.push([`${p}shared.w1`, [m.sharedHidden, D]], [`${p}shared.w3`, [m.sharedHidden, D]], [`${p}shared.w2`, [D, m.sharedHidden]]);
      // experts stacked: [E, Fe, D] (w1, w3) and [E, D, Fe] (w2); expert e is rows e·Fe.. of the [E·Fe, D] view
      out.push([`${p}experts.w1`, [m.experts, m.expertHidden, D]], [`${p}experts.w3`, [m.experts, m.expertHidden, D]], [`${p}experts.w2`, [m.experts, D, m.expertHidden]]);
    } else {
      out.push([`${p}w1`, [c.ffnHidden, D]], [`${p}w3`, [c.ffnHidden, D]], [`${p}w2`, [D, c.ffnHidden]]);
    }
  }
  out.push(['finalNorm', [D]], ['head', [c.vocab, D]]);
  return out;
}

export function isMoeLayer(c: ModelConfig, l: number): boolean {
  return c.moe !== null && l >= c.denseLayers;
}

export function checkConfig(c: ModelConfig): void {
  const bad = (what: string) => {
    throw new Error(`model config: ${what}`);
  };
  if (c.dim % c.heads !== 0 || (c.dim / c.heads) % 2 !== 0) bad(`dim ${c.dim} must split into ${c.heads} heads of an even size`);
  if (c.moe) {
    const m = c.moe;
    if (m.experts % m.nGroup !== 0) bad(`experts ${m.experts} must be a multiple of nGroup ${m.nGroup}`);
    if (m.topkGroup > m.nGroup || m.topkGroup < 1) bad(`topkGroup ${m.topkGroup} must be in [1, nGroup ${m.nGroup}]`);
    if (m.topk > (m.experts / m.nGroup) * m.topkGroup) bad(`topk ${m.topk} exceeds the experts in ${m.topkGroup} kept groups`);
  }
}

export type Params = Map<string, Tensor>;

const zeros = (b: Backend, shape: readonly number[]) => b.fromHost(new Float32Array(shape.reduce((a, s) => a * s, 1)), 'f32', shape);

/** Fresh weights: norm weights 1; every matrix (embedding, head, gate, experts included) N(0, initStd²), the output projections wo and w2 scaled by 1/√(2·layers) (GPT-2's residual scaling). */
export function initParams(backend: Backend, c: ModelConfig, rng: Rng): Params {
  checkConfig(c);
  const params: Params = new Map();
  const outScale = 1 / Math.sqrt(2 * c.layers);
  for (const [name, shape] of parameterShapes(c)) {
    const n = shape.reduce((a, s) => a * s, 1);
    const data = new Float32Array(n);
    if (name.endsWith('Norm')) data.fill(1);
    else {
      const std = c.initStd * (/\.(wo|w2)$/.test(name) ? outScale : 1);
      for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
    }
    params.set(name, backend.fromHost(data, 'f32', shape));
  }
  return params;
}

/** The MoE layers' correction biases (not trained by gradients: moe.updateBias moves them), zeros. */
export function initBiases(backend: Backend, c: ModelConfig): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (let l = 0; l < c.layers; l++) if (isMoeLayer(c, l)) out.set(`layers.${l}.gateBias`, zeros(backend, [c.moe!.experts]));
  return out;
}

// ---------------------------------------------------------------------------------------------
// linear layers: f32 gemm or the FP8 recipe, one place

/** y [N, M] = x [N, K] · wᵀ (w [M, K]). */
async function linear(x: Tensor, w: Tensor, fp8: boolean): Promise<Tensor> {
  if (!fp8) return gemm.matmul(x, w);
  const r = await gemm.fp8Linear(x, w, { out: 'f32' });
  for (const q of [r.qx, r.qw]) {
    q.data.dispose();
    q.scales.dispose();
  }
  return r.out;
}

/** Backward of linear: dW [M, K] += dyᵀ·x (in place), returns dx [N, K] = dy·w (or null when not wanted). */
async function linearBackward(dy: Tensor, x: Tensor, w: Tensor, dW: Tensor, fp8: boolean, wantDx = true): Promise<Tensor | null> {
  let dx: Tensor | null;
  let dw: Tensor;
  if (fp8) {
    const r = await gemm.fp8LinearBackward(dy, x, w, { dx: wantDx });
    dx = r.dx;
    dw = r.dw!;
  } else {
    dx = wantDx ? await gemm.matmul(dy, w, { transB: false }) : null; // [N, M]·[M, K]
    dw = await gemm.matmul(dy, x, { transA: true, transB: false }); // [M, N]·[N, K]
  }
  await nn.addScaled(dW, dw, 1, { out: dW });
  dw.dispose();
  return dx;
}

/** a += b in place (a may be a row view). */
async function addInto(a: Tensor, b: Tensor): Promise<void> {
  await nn.addScaled(a, b, 1, { out: a });
}

/** Rows [r0, r1) of a stacked [E, R, C] tensor's expert e: a [r1 − r0, C] view (rows e·R + r0 …). */
function expertRows(t: Tensor, e: number): Tensor {
  const [E, R, C] = t.shape as [number, number, number];
  return sliceRows(viewAs(t, [E * R, C]), e * R, (e + 1) * R);
}

const disposeAll = (...ts: (Tensor | null | undefined)[]) => {
  for (const t of ts) t?.dispose();
};

// ---------------------------------------------------------------------------------------------
// SwiGLU FFN (dense layers, the shared expert, each routed expert)

interface SwigluCache {
  x: Tensor; // [n, D] (borrowed: not disposed here)
  g: Tensor; // [n, F]  x·W1ᵀ
  u: Tensor; // [n, F]  x·W3ᵀ
  a: Tensor; // [n, F]  silu(g)·u
}

/** y [n, D] = (silu(x·W1ᵀ) ⊙ x·W3ᵀ)·W2ᵀ */
async function swigluForward(x: Tensor, w1: Tensor, w3: Tensor, w2: Tensor, fp8: boolean, save: boolean): Promise<{ y: Tensor; cache: SwigluCache | null }> {
  const g = await linear(x, w1, fp8);
  const u = await linear(x, w3, fp8);
  const a = await nn.swiglu(g, u);
  const y = await linear(a, w2, fp8);
  if (save) return { y, cache: { x, g, u, a } };
  disposeAll(g, u, a);
  return { y, cache: null };
}

/** dy [n, D] -> dx [n, D]; dW1, dW3, dW2 += (in place). Disposes the cache's own tensors. */
async function swigluBackward(c: SwigluCache, dy: Tensor, w1: Tensor, w3: Tensor, w2: Tensor, dW1: Tensor, dW3: Tensor, dW2: Tensor, fp8: boolean): Promise<Tensor> {
  const da = (await linearBackward(dy, c.a, w2, dW2, fp8))!; // [n, F]
  const { dGate, dUp } = await nn.swigluBackward(c.g, c.u, da);
  da.dispose();
  const dx = (await linearBackward(dGate, c.x, w1, dW1, fp8))!;
  const dx3 = (await linearBackward(dUp, c.x, w3, dW3, fp8))!;
  await addInto(dx, dx3);
  disposeAll(dGate, dUp, dx3, c.g, c.u, c.a);
  return dx;
}

// ---------------------------------------------------------------------------------------------
// MoE FFN

interface MoeCache {
  x: Tensor; // [N, D] (borrowed)
  routed: moe.GateResult; // weights [N, k], indices [N, k], scores [N, E]
  align: moe.Alignment;
  xp: Tensor; // [P, D]  x grouped by expert
  y: Tensor; // [P, D]  each expert's output on its rows
  segments: { e: number; start: number; rows: number; cache: SwigluCache }[];
  shared: SwigluCache | null;
}

/** Expert segments: expert e's rows are [start_e, start_e + counts[e]) of the grouped [P, ·] tensors; segments are padded to blockSize. */
function segmentsOf(counts: Int32Array, blockSize: number): { e: number; start: number; rows: number }[] {
  const out: { e: number; start: number; rows: number }[] = [];
  let start = 0;
  for (let e = 0; e < counts.length; e++) {
    const n = counts[e]!;
    if (n > 0) out.push({ e, start, rows: n });
    start += Math.ceil(n / blockSize) * blockSize;
  }
  return out;
}

function gateOptions(m: MoeConfig, bias: Tensor): moe.GateOptions {
  return { topk: m.topk, scoring: 'sigmoid', nGroup: m.nGroup, topkGroup: m.topkGroup, groupScore: 'top2', bias, routedScalingFactor: m.routedScale };
}

/** x [N, D] -> y [N, D]; load [E] (pairs routed to each expert) for the bias update. */
async function moeForward(
  x: Tensor, P: Params, pre: string, bias: Tensor, m: MoeConfig, fp8: boolean, save: boolean, auxSeqLen: number | null,
): Promise<{ y: Tensor; load: Int32Array; cache: MoeCache | null; aux: number }> {
  const backend = x.backend;
  const routed = await moe.gate(x, P.get(`${pre}gate`)!, gateOptions(m, bias)); // weights, indices [N, k], scores [N, E]
  const align = await moe.alignBlocks(routed.indices, m.experts, m.blockSize);
  const load = (await align.counts.read()) as Int32Array;
  const xp = await moe.permute(x, align); // [P, D]
  const D = x.shape[1]!;
  // each expert's SwiGLU on its rows, written into its rows of y (zeros elsewhere: padding rows are never read)
  const y = zeros(backend, [align.padded, D]);
  const w1 = P.get(`${pre}experts.w1`)!, w3 = P.get(`${pre}experts.w3`)!, w2 = P.get(`${pre}experts.w2`)!;
  const segments: MoeCache['segments'] = [];
  for (const s of segmentsOf(load, m.blockSize)) {
    const xe = sliceRows(xp, s.start, s.start + s.rows); // [n_e, D]
    const r = await swigluForward(xe, expertRows(w1, s.e), expertRows(w3, s.e), expertRows(w2, s.e), fp8, save);
    await addInto(sliceRows(y, s.start, s.start + s.rows), r.y);
    r.y.dispose();
    if (r.cache) segments.push({ ...s, cache: r.cache });
  }
  const out = await moe.unpermute(y, align, { weights: routed.weights }); // [N, D] = Σ_j w[t,j]·y[pos(t,j)]
  let shared: SwigluCache | null = null;
  if (m.sharedHidden > 0) {
    const r = await swigluForward(x, P.get(`${pre}shared.w1`)!, P.get(`${pre}shared.w3`)!, P.get(`${pre}shared.w2`)!, fp8, save);
    await addInto(out, r.y);
    r.y.dispose();
    shared = r.cache;
  }
  // the sequence-wise balance loss (its gradient is recomputed by the backward)
  let aux = 0;
  if (auxSeqLen !== null && m.auxAlpha > 0) {
    const a = await moe.auxLoss(routed, { alpha: m.auxAlpha, seqLen: auxSeqLen });
    a.dScores.dispose();
    aux = a.loss;
  }
  if (save) return { y: out, load, aux, cache: { x, routed, align, xp, y, segments, shared } };
  disposeAlignment(align);
  disposeAll(routed.weights, routed.indices, routed.scores, xp, y);
  return { y: out, load, aux, cache: null };
}

function disposeAlignment(a: moe.Alignment): void {
  disposeAll(a.sortedPairs, a.blockExpert, a.rowExpert, a.pairPos, a.counts);
}

/** dy [N, D] -> dx [N, D]; gradients of the gate, shared and routed experts added into G. */
async function moeBackward(c: MoeCache, dy: Tensor, P: Params, G: Params, pre: string, bias: Tensor, m: MoeConfig, fp8: boolean, seqLen: number): Promise<Tensor> {
  const backend = dy.backend;
  const D = dy.shape[1]!;
  // routed part: out = unpermute(y, weights) -> dY [P, D], dWeights [N, k]
  const { dy: dY, dWeights } = await moe.unpermuteBackward(dy, c.y, c.align, { weights: c.routed.weights });
  const dXp = zeros(backend, [c.align.padded, D]);
  const w1 = P.get(`${pre}experts.w1`)!, w3 = P.get(`${pre}experts.w3`)!, w2 = P.get(`${pre}experts.w2`)!;
  const g1 = G.get(`${pre}experts.w1`)!, g3 = G.get(`${pre}experts.w3`)!, g2 = G.get(`${pre}experts.w2`)!;
  for (const s of c.segments) {
    const dye = sliceRows(dY, s.start, s.start + s.rows);
    const dxe = await swigluBackward(s.cache, dye, expertRows(w1, s.e), expertRows(w3, s.e), expertRows(w2, s.e), expertRows(g1, s.e), expertRows(g3, s.e), expertRows(g2, s.e), fp8);
    await addInto(sliceRows(dXp, s.start, s.start + s.rows), dxe);
    dxe.dispose();
  }
  const dx = await moe.unpermute(dXp, c.align); // permute's backward: dx[t] = Σ_j dXp[pos(t, j)]
  // gate: through the chosen weights (and the balance loss's score gradient when it is on)
  let dScores: Tensor | undefined;
  if (m.auxAlpha > 0) dScores = (await moe.auxLoss(c.routed, { alpha: m.auxAlpha, seqLen })).dScores;
  const gb = await moe.gateBackward(c.x, P.get(`${pre}gate`)!, c.routed, dWeights!, { ...gateOptions(m, bias), ...(dScores ? { dScores } : {}) });
  await addInto(dx, gb.dx);
  await addInto(G.get(`${pre}gate`)!, gb.dWeight);
  disposeAll(gb.dx, gb.dWeight, dScores, dWeights, dY, dXp);
  if (c.shared) {
    const dxs = await swigluBackward(c.shared, dy, P.get(`${pre}shared.w1`)!, P.get(`${pre}shared.w3`)!, P.get(`${pre}shared.w2`)!, G.get(`${pre}shared.w1`)!, G.get(`${pre}shared.w3`)!, G.get(`${pre}shared.w2`)!, fp8);
    await addInto(dx, dxs);
    dxs.dispose();
  }
  disposeAlignment(c.align);
  disposeAll(c.routed.weights, c.routed.indices, c.routed.scores, c.xp, c.y);
  return dx;
}

// ---------------------------------------------------------------------------------------------
// the whole model

interface LayerCache {
  x: Tensor; // [N, D] layer input
  h: Tensor; // [N, D] rmsnorm(x)
  rstd1: Tensor; // [N]
  q: Tensor; // [N, D] = [B, T, H, Dh] after rope
  k: Tensor;
  v: Tensor;
  o: Tensor; // [N, D] attention output
  lse: Tensor; // [B, H, T]
  x1: Tensor; // [N, D] after the attention residual
  h2: Tensor; // [N, D] rmsnorm(x1)
  rstd2: Tensor; // [N]
  dense: SwigluCache | null;
  moe: MoeCache | null;
}

export interface ForwardCache {
  B: number;
  T: number;
  ids: Tensor; // i32 [N]
  positions: Tensor; // i32 [N]
  layers: LayerCache[];
  xL: Tensor; // [N, D] last residual
  rstdF: Tensor; // [N]
}

export interface ForwardResult {
  /** f32 [N, D]: the final-normed hidden states (rows b·T + t). */
  hidden: Tensor;
  /** Pairs routed to each expert, per MoE layer (in layer order). */
  load: Int32Array[];
  /** Σ over the MoE layers of the sequence-wise balance loss (0 when auxAlpha is 0). */
  aux: number;
  cache: ForwardCache | null;
}

/** The KV cache of one batch of sequences decoded in lockstep (all at the same position). */
export interface DecodeState {
  B: number;
  maxLen: number;
  pos: number;
  /**
   * Per layer, [maxLen, B·H·Dh] = [1, maxLen, B·H, Dh]: keys and values by position, batch and head
   * folded into one head axis. Attention treats every head independently, so attending with B·H heads
   * of one "sequence" is exactly B sequences' attention — and the new position's keys of all B
   * sequences are then one contiguous row to write.
   */
  k: Tensor[];
  v: Tensor[];
}

export class Model {
  readonly config: ModelConfig;
  readonly backend: Backend;
  params: Params;
  /** Correction biases of the MoE gates (by `layers.ℓ.gateBias`). */
  biases: Map<string, Tensor>;
  fp8: boolean;

  constructor(backend: Backend, config: ModelConfig, params: Params, biases: Map<string, Tensor>, opts: { fp8?: boolean } = {}) {
    checkConfig(config);
    this.backend = backend;
    this.config = config;
    this.params = params;
    this.biases = biases;
    this.fp8 = opts.fp8 ?? false;
  }

  static create(backend: Backend, config: ModelConfig, rng: Rng, opts: { fp8?: boolean } = {}): Model {
    return new Model(backend, config, initParams(backend, config, rng), initBiases(backend, config), opts);
  }

  /** A deep copy (the frozen reference model). */
  clone(): Model {
    const copy = (m: Map<string, Tensor>) => new Map([...m].map(([k, t]) => [k, this.backend.copy(t)]));
    return new Model(this.backend, this.config, copy(this.params), copy(this.biases), { fp8: this.fp8 });
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
    for (const t of this.biases.values()) t.dispose();
  }

  /** Number of trained parameters. */
  get parameterCount(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    return n;
  }

  /** Zero gradients shaped like the parameters. */
  zeroGrads(): Params {
    return new Map([...this.params].map(([k, t]) => [k, zeros(this.backend, t.shape)]));
  }

  /**
   * ids: [B·T] token ids (row b·T + t), all sequences of length T starting at position 0
   * -> hidden [B·T, D] after the final norm; with `save` the activations the backward needs.
   */
  async forward(ids: Int32Array, B: number, T: number, opts: { save?: boolean } = {}): Promise<ForwardResult> {
    const c = this.config;
    const save = opts.save ?? false;
    const P = this.params;
    const N = B * T;
    if (ids.length !== N) throw new Error(`model.forward: ids has ${ids.length} entries, expected B·T = ${N}`);
    if (T > c.maxSeq) throw new Error(`model.forward: T = ${T} exceeds maxSeq ${c.maxSeq}`);
    const be = this.backend;
    const H = c.heads, Dh = c.dim / c.heads;
    const idsT = be.fromHost(ids, 'i32', [N]);
    const pos = new Int32Array(N);
    for (let i = 0; i < N; i++) pos[i] = i % T;
    const positions = be.fromHost(pos, 'i32', [N]);
    let x = await nn.embedding(P.get('embed')!, idsT); // [N, D]
    const layers: LayerCache[] = [];
    const load: Int32Array[] = [];
    let aux = 0;
    for (let l = 0; l < c.layers; l++) {
      const pre = `layers.${l}.`;
      // attention block
      const n1 = await nn.rmsnorm(x, P.get(`${pre}attnNorm`)!, { eps: c.normEps }); // h [N, D], rstd [N]
      const q = await linear(n1.out, P.get(`${pre}wq`)!, this.fp8); // [N, D]
      const k = await linear(n1.out, P.get(`${pre}wk`)!, this.fp8);
      const v = await linear(n1.out, P.get(`${pre}wv`)!, this.fp8);
      await nn.rope(viewAs(q, [N, H, Dh]), positions, { theta: c.ropeTheta, inPlace: true });
      await nn.rope(viewAs(k, [N, H, Dh]), positions, { theta: c.ropeTheta, inPlace: true });
      const shape4 = [B, T, H, Dh];
      const att = await nn.attention(viewAs(q, shape4), viewAs(k, shape4), viewAs(v, shape4)); // out [B, T, H, Dh], lse [B, H, T]
      const o = viewAs(att.out, [N, c.dim]);
      const ao = await linear(o, P.get(`${pre}wo`)!, this.fp8); // [N, D]
      const x1 = await nn.addScaled(x, ao, 1); // residual
      ao.dispose();
      // FFN block
      const n2 = await nn.rmsnorm(x1, P.get(`${pre}ffnNorm`)!, { eps: c.normEps });
      let f: Tensor;
      let dense: SwigluCache | null = null;
      let mc: MoeCache | null = null;
      if (isMoeLayer(c, l)) {
        const r = await moeForward(n2.out, P, pre, this.biases.get(`${pre}gateBias`)!, c.moe!, this.fp8, save, T);
        f = r.y;
        mc = r.cache;
        load.push(r.load);
        aux += r.aux;
      } else {
        const r = await swigluForward(n2.out, P.get(`${pre}w1`)!, P.get(`${pre}w3`)!, P.get(`${pre}w2`)!, this.fp8, save);
        f = r.y;
        dense = r.cache;
      }
      const x2 = await nn.addScaled(x1, f, 1);
      f.dispose();
      if (save) {
        layers.push({ x, h: n1.out, rstd1: n1.rstd, q, k, v, o: att.out, lse: att.lse, x1, h2: n2.out, rstd2: n2.rstd, dense, moe: mc });
      } else {
        disposeAll(x, n1.out, n1.rstd, q, k, v, att.out, att.lse, x1, n2.out, n2.rstd);
      }
      x = x2;
    }
    const nf = await nn.rmsnorm(x, P.get('finalNorm')!, { eps: c.normEps });
    if (!save) {
      disposeAll(x, nf.rstd, idsT, positions);
      return { hidden: nf.out, load, aux, cache: null };
    }
    return { hidden: nf.out, load, aux, cache: { B, T, ids: idsT, positions, layers, xL: x, rstdF: nf.rstd } };
  }

  /**
   * Backward from dHidden [N, D] (d loss / d hidden) through the saved forward; adds into G (from
   * zeroGrads()) every parameter's gradient but the head's (the loss adds that). Frees the cache.
   */
  async backward(cache: ForwardCache, dHidden: Tensor, G: Params): Promise<void> {
    const c = this.config;
    const P = this.params;
    const { B, T } = cache;
    const N = B * T;
    const H = c.heads, Dh = c.dim / c.heads;
    let dx = await nn.rmsnormBackward(dHidden, cache.xL, P.get('finalNorm')!, cache.rstdF, G.get('finalNorm')!); // [N, D]
    disposeAll(cache.xL, cache.rstdF);
    for (let l = c.layers - 1; l >= 0; l--) {
      const pre = `layers.${l}.`;
      const L = cache.layers[l]!;
      // FFN block: x2 = x1 + ffn(rmsnorm(x1))
      let dh2: Tensor;
      if (L.moe) dh2 = await moeBackward(L.moe, dx, P, G, pre, this.biases.get(`${pre}gateBias`)!, c.moe!, this.fp8, T);
      else dh2 = await swigluBackward(L.dense!, dx, P.get(`${pre}w1`)!, P.get(`${pre}w3`)!, P.get(`${pre}w2`)!, G.get(`${pre}w1`)!, G.get(`${pre}w3`)!, G.get(`${pre}w2`)!, this.fp8);
      const dx1n = await nn.rmsnormBackward(dh2, L.x1, P.get(`${pre}ffnNorm`)!, L.rstd2, G.get(`${pre}ffnNorm`)!);
      await addInto(dx, dx1n); // dx is now d loss / d x1
      disposeAll(dh2, dx1n, L.x1, L.h2, L.rstd2);
      // attention block: x1 = x + attention(rope(h·Wqᵀ), rope(h·Wkᵀ), h·Wvᵀ)·Woᵀ, h = rmsnorm(x)
      const o2 = viewAs(L.o, [N, c.dim]);
      const dO = (await linearBackward(dx, o2, P.get(`${pre}wo`)!, G.get(`${pre}wo`)!, this.fp8))!; // [N, D]
      const shape4 = [B, T, H, Dh];
      const ag = await nn.attentionBackward(viewAs(L.q, shape4), viewAs(L.k, shape4), viewAs(L.v, shape4), L.o, L.lse, viewAs(dO, shape4));
      dO.dispose();
      // rope is a rotation: its backward is the inverse rotation of the gradient
      await nn.rope(viewAs(ag.dq, [N, H, Dh]), cache.positions, { theta: c.ropeTheta, inverse: true, inPlace: true });
      await nn.rope(viewAs(ag.dk, [N, H, Dh]), cache.positions, { theta: c.ropeTheta, inverse: true, inPlace: true });
      const dq = viewAs(ag.dq, [N, c.dim]), dk = viewAs(ag.dk, [N, c.dim]), dv = viewAs(ag.dv, [N, c.dim]);
      const dh = (await linearBackward(dq, L.h, P.get(`${pre}wq`)!, G.get(`${pre}wq`)!, this.fp8))!;
      const dhk = (await linearBackward(dk, L.h, P.get(`${pre}wk`)!, G.get(`${pre}wk`)!, this.fp8))!;
      const dhv = (await linearBackward(dv, L.h, P.get(`${pre}wv`)!, G.get(`${pre}wv`)!, this.fp8))!;
      await addInto(dh, dhk);
      await addInto(dh, dhv);
      disposeAll(dhk, dhv, ag.dq, ag.dk, ag.dv);
      const dxn = await nn.rmsnormBackward(dh, L.x, P.get(`${pre}attnNorm`)!, L.rstd1, G.get(`${pre}attnNorm`)!);
      await addInto(dx, dxn); // d loss / d x
      disposeAll(dh, dxn, L.x, L.h, L.rstd1, L.q, L.k, L.v, L.o, L.lse);
    }
    await nn.embeddingBackward(dx, cache.ids, G.get('embed')!);
    disposeAll(dx, cache.ids, cache.positions);
  }

  /** Frees a saved forward without running the backward. */
  disposeCache(cache: ForwardCache): void {
    disposeAll(cache.ids, cache.positions, cache.xL, cache.rstdF);
    for (const L of cache.layers) {
      disposeAll(L.x, L.h, L.rstd1, L.q, L.k, L.v, L.o, L.lse, L.x1, L.h2, L.rstd2);
      const sw = (s: SwigluCache | null) => s && disposeAll(s.g, s.u, s.a);
      sw(L.dense);
      if (L.moe) {
        for (const s of L.moe.segments) sw(s.cache);
        sw(L.moe.shared);
        disposeAlignment(L.moe.align);
        disposeAll(L.moe.routed.weights, L.moe.routed.indices, L.moe.routed.scores, L.moe.xp, L.moe.y);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // decoding with a KV cache

  /** An empty KV cache for B sequences of at most maxLen tokens. */
  startDecode(B: number, maxLen: number): DecodeState {
    const c = this.config;
    if (maxLen > c.maxSeq) throw new Error(`model.startDecode: maxLen ${maxLen} exceeds maxSeq ${c.maxSeq}`);
    const mk = () => Array.from({ length: c.layers }, () => zeros(this.backend, [maxLen, B * c.dim]));
    return { B, maxLen, pos: 0, k: mk(), v: mk() };
  }

  endDecode(s: DecodeState): void {
    disposeAll(...s.k, ...s.v);
  }

  /**
   * One position for all B sequences: ids [B] at position s.pos -> hidden [B, D] (final-normed);
   * their keys and values join the cache (zero rows are filled once, by an in-place add).
   */
  async decodeStep(s: DecodeState, ids: Int32Array): Promise<Tensor> {
    const c = this.config;
    const P = this.params;
    const be = this.backend;
    const { B } = s;
    const H = c.heads, Dh = c.dim / c.heads;
    if (s.pos >= s.maxLen) throw new Error(`model.decodeStep: the cache holds ${s.maxLen} positions`);
    const idsT = be.fromHost(ids, 'i32', [B]);
    const positions = be.fromHost(new Int32Array(B).fill(s.pos), 'i32', [B]);
    let x = await nn.embedding(P.get('embed')!, idsT); // [B, D]
    for (let l = 0; l < c.layers; l++) {
      const pre = `layers.${l}.`;
      const n1 = await nn.rmsnorm(x, P.get(`${pre}attnNorm`)!, { eps: c.normEps });
      const q = await linear(n1.out, P.get(`${pre}wq`)!, this.fp8); // [B, D]
      const k = await linear(n1.out, P.get(`${pre}wk`)!, this.fp8);
      const v = await linear(n1.out, P.get(`${pre}wv`)!, this.fp8);
      await nn.rope(viewAs(q, [B, H, Dh]), positions, { theta: c.ropeTheta, inPlace: true });
      await nn.rope(viewAs(k, [B, H, Dh]), positions, { theta: c.ropeTheta, inPlace: true });
      const kRow = sliceRows(s.k[l]!, s.pos, s.pos + 1); // [1, B·D]
      const vRow = sliceRows(s.v[l]!, s.pos, s.pos + 1);
      await addInto(kRow, viewAs(k, [1, B * c.dim]));
      await addInto(vRow, viewAs(v, [1, B * c.dim]));
      const kv4 = [1, s.maxLen, B * H, Dh];
      const att = await nn.attention(viewAs(q, [1, 1, B * H, Dh]), viewAs(s.k[l]!, kv4), viewAs(s.v[l]!, kv4), { qOffset: s.pos, kvLen: s.pos + 1 });
      const ao = await linear(viewAs(att.out, [B, c.dim]), P.get(`${pre}wo`)!, this.fp8);
      const x1 = await nn.addScaled(x, ao, 1);
      disposeAll(n1.out, n1.rstd, q, k, v, att.out, att.lse, ao, x);
      const n2 = await nn.rmsnorm(x1, P.get(`${pre}ffnNorm`)!, { eps: c.normEps });
      const f = isMoeLayer(c, l)
        ? (await moeForward(n2.out, P, pre, this.biases.get(`${pre}gateBias`)!, c.moe!, this.fp8, false, null)).y
        : (await swigluForward(n2.out, P.get(`${pre}w1`)!, P.get(`${pre}w3`)!, P.get(`${pre}w2`)!, this.fp8, false)).y;
      x = await nn.addScaled(x1, f, 1);
      disposeAll(n2.out, n2.rstd, f, x1);
    }
    const nf = await nn.rmsnorm(x, P.get('finalNorm')!, { eps: c.normEps });
    disposeAll(x, nf.rstd, idsT, positions);
    s.pos++;
    return nf.out;
  }
}
