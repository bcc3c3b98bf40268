// moe benchmark cases, shared by bench/moe.bench.ts (Node) and the browser bench page (examples/web/):
// shapes per backend, the bytes counted, and the inputs. No Node import here.
//
// DeepSeek-V3's router: 256 experts in 8 groups, 4 groups kept, top-8, hidden 7168; the layout for 8
// expert-parallel ranks; blocks of 128 rows (the grouped FP8 GEMM's). Every case counts the bytes a
// perfect implementation must move: its inputs read once and its outputs written once (align writes
// all Pmax rows: the rows past P get the sentinel); intermediate round trips (the f32 logits between
// the GEMM and the router, the indices re-read by layout and align) are not counted.

import * as moe from '../src/ops/moe.js';
import type { Backend, BackendName, MoeRouteParams } from '../src/runtime/backend.js';
import { toBf16 } from '../src/dtype.js';
import type { Tensor } from '../src/tensor.js';
import { alignRowsMax } from '../src/reference/moe.js';

export interface MoeCase {
  /**
   * 'gate+layout+align': moe.gate (x·Wᵀ then route) -> dispatchLayout -> alignBlocks, from bf16 x;
   * 'route+layout+align': the same from given f32 logits (the route kernel alone, no GEMM);
   * 'permute' / 'unpermute': rows into expert order and back (weighted), bf16;
   * 'dispatch' / 'combine': moe.dispatch (FP8, expanded) / moe.combine (bf16, weighted) over a
   * LocalGroup of R ranks, T tokens each.
   */
  op: 'gate+layout+align' | 'route+layout+align' | 'permute' | 'unpermute' | 'dispatch' | 'combine';
  /** Tokens (a rank's, for dispatch/combine). */
  T: number;
  H: number;
  E: number;
  nGroup: number;
  topkGroup: number;
  k: number;
  /** Expert-parallel ranks of the layout (dispatch/combine: of the LocalGroup). */
  R: number;
  /** alignBlocks' block size. */
  bs: number;
}

export const V3_ROUTING = { E: 256, nGroup: 8, topkGroup: 4, k: 8, R: 8, bs: 128, routedScalingFactor: 2.5 };

/** The LocalGroup's ranks in the dispatch/combine cases (the 2-GPU shape). */
export const EP_RANKS = 2;

/** Whether a case runs over a LocalGroup (dispatch, combine) rather than on one tensor set. */
export function isGroupOp(op: MoeCase['op']): boolean {
  return op === 'dispatch' || op === 'combine';
}

/**
 * The shape on cpu, webgpu and cuda (T = 16384 tokens, hidden 7168) for the gate, 4096 tokens
 * (one rank's batch in DeepEP's setting) for permute/unpermute and a rank's batch in dispatch/combine;
 * small ones on the reference backend (a JS GEMM of 60 GFLOP would take minutes) and with --quick.
 */
export function moeCases(backend: BackendName, quick: boolean): MoeCase[] {
  const v = V3_ROUTING;
  const c = (op: MoeCase['op'], T: number, H: number): MoeCase => ({ op, T, H, E: v.E, nGroup: v.nGroup, topkGroup: v.topkGroup, k: v.k, R: isGroupOp(op) ? EP_RANKS : v.R, bs: v.bs });
  const rows = (T: number, H: number) => [c('permute', T, H), c('unpermute', T, H), c('dispatch', T, H), c('combine', T, H)];
  if (quick) return [c('gate+layout+align', 256, 1024), c('route+layout+align', 256, 0), ...rows(256, 1024)];
  if (backend === 'reference') return [c('gate+layout+align', 64, 7168), c('route+layout+align', 2048, 0), ...rows(512, 7168)];
  return [c('gate+layout+align', 16384, 7168), c('route+layout+align', 16384, 0), ...rows(4096, 7168)];
}

export function moeCaseShape(c: MoeCase): string {
  if (isGroupOp(c.op)) return `R${c.R} T${c.T}/rank H${c.H} E${c.E}`;
  return c.op === 'route+layout+align' ? `T${c.T} E${c.E}` : `T${c.T} H${c.H} E${c.E}`;
}

/** A name that says the routing: `gate+layout+align (8 groups, 4 kept, top-8)`. */
export function moeCaseName(c: MoeCase): string {
  if (c.op === 'dispatch') return `dispatch fp8 top-${c.k} (LocalGroup)`;
  if (c.op === 'combine') return `combine bf16 top-${c.k} (LocalGroup)`;
  return c.op === 'permute' || c.op === 'unpermute' ? `${c.op} bf16 top-${c.k}` : `${c.op} (${c.nGroup} groups, ${c.topkGroup} kept, top-${c.k})`;
}

export function moeCaseKey(c: MoeCase): string {
  return `${moeCaseName(c)} ${moeCaseShape(c)}`;
}

/**
 * Synthetic routing for permute/unpermute (and rank r's tokens in dispatch/combine: t counted from
 * r·T): token t's slot j goes to expert (131·t + j·E/k) mod E — k distinct experts per token, every
 * expert used about equally.
 */
export function syntheticIndices(c: MoeCase, rank = 0): Int32Array {
  const out = new Int32Array(c.T * c.k);
  for (let t = 0; t < c.T; t++) for (let j = 0; j < c.k; j++) out[t * c.k + j] = (131 * (rank * c.T + t) + j * Math.floor(c.E / c.k)) % c.E;
  return out;
}

/** dispatch/combine: each rank's received rows (N: a source's token once a rank) and its pairs. */
function groupRows(c: MoeCase): { N: number; pairs: number }[] {
  const per = c.E / c.R;
  const out = Array.from({ length: c.R }, () => ({ N: 0, pairs: 0 }));
  for (let src = 0; src < c.R; src++) {
    const idx = syntheticIndices(c, src);
    for (let t = 0; t < c.T; t++) {
      const seen = new Set<number>();
      for (let j = 0; j < c.k; j++) {
        const d = Math.floor(idx[t * c.k + j]! / per);
        out[d]!.pairs++;
        seen.add(d);
      }
      for (const d of seen) out[d]!.N++;
    }
  }
  return out;
}

/** P of the synthetic routing: each expert's pairs rounded up to the block size. */
function paddedRows(c: MoeCase): number {
  const counts = new Int32Array(c.E);
  for (const e of syntheticIndices(c)) counts[e]!++;
  let P = 0;
  for (const n of counts) P += Math.ceil(n / c.bs) * c.bs;
  return P;
}

/** Bytes counted for a case (see the header). */
export function moeBytes(c: MoeCase): number {
  const pairs = c.T * c.k;
  const Pmax = alignRowsMax(pairs, c.E, c.bs);
  // align: sortedPairs, rowExpert [Pmax], blockExpert [Pmax/bs], pairPos [T, k], counts [E], info
  const alignOut = Pmax * 8 + (Pmax / c.bs) * 4 + pairs * 4 + c.E * 4 + 16;
  // layout: tokensPerRank [R], tokensPerExpert [E], isTokenInRank u8 [T, R]
  const layoutOut = c.R * 4 + c.E * 4 + c.T * c.R;
  // route: scores f32 [T, E], weights f32 + indices i32 [T, k]
  const routeOut = c.T * c.E * 4 + pairs * 8;
  if (c.op === 'gate+layout+align') return c.T * c.H * 2 + c.E * c.H * 2 + c.E * 4 + routeOut + layoutOut + alignOut;
  if (c.op === 'route+layout+align') return c.T * c.E * 4 + c.E * 4 + routeOut + layoutOut + alignOut;
  if (isGroupOp(c.op)) {
    const per = c.E / c.R, routing = c.R * pairs * 8; // every rank's indices and weights
    let bytes = routing;
    for (const g of groupRows(c)) {
      if (c.op === 'combine') {
        bytes += g.pairs * c.H * 2; // the expert outputs' real rows (the weights are counted once above)
        continue;
      }
      const Pmax = alignRowsMax(g.N * c.k, per, c.bs);
      const align = Pmax * 8 + (Pmax / c.bs) * 4 + g.N * c.k * 4 + per * 4 + 16;
      // recv codes + scales, recvIndices + recvWeights, the alignment, expertX's real rows (codes + scales)
      bytes += g.N * (c.H + c.H / 32) + g.N * c.k * 8 + align + g.pairs * (c.H + c.H / 32);
    }
    // x read once (bf16) / the combined rows written once (bf16)
    return bytes + c.R * c.T * c.H * 2;
  }
  const P = paddedRows(c);
  if (c.op === 'permute') return pairs * c.H * 2 + P * 4 + P * c.H * 2; // a source row per pair, the row ids, [P, H] out
  return pairs * c.H * 2 + pairs * 8 + c.T * c.H * 2; // a row per pair, pairPos and weights, [T, H] out
}

/** Deterministic values without zeros (zeros can hide unwritten outputs): a sine with a spread of amplitudes. */
export function moePattern(n: number, phase: number, scale: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.618 + phase) * (1 + (i % 7)) * scale;
  return x;
}

/**
 * Uniform values in (−scale, scale), never 0, from an integer hash of (seed, i): the lowbias32 mixer
 * of i + seed·0x9e3779b9 (mod 2^32), h -> ((h + 0.5) / 2^31 − 1) · scale in f64, then rounded to f32.
 * bench/peers/torch_moe.py computes the same bits.
 */
export function moeNoise(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  const base = Math.imul(seed, 0x9e3779b9);
  for (let i = 0; i < n; i++) {
    let h = (base + i) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
    h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
    h = (h ^ (h >>> 16)) >>> 0;
    out[i] = ((h + 0.5) / 2 ** 31 - 1) * scale;
  }
  return out;
}

/** The router cases' selection bias [E] (small: it shifts ties, not the routing). */
function routerBias(c: MoeCase): Float32Array {
  return moePattern(c.E, 2, 0.002);
}

/**
 * The gate case's inputs (host arrays): x and the gate's weight from moeNoise, the weight scaled so
 * that the logits x·Wᵀ have a standard deviation of ~1 (H/9 · scale² = 1 for two uniform factors), as a
 * trained router's are: sigmoid scores spread out, every expert picked about equally. (The sines of
 * moePattern resonate in x·Wᵀ: logits of ~±50, saturated scores, 27 of 256 experts picked.)
 */
export function gateInputs(c: MoeCase): { x: Float32Array; w: Float32Array; bias: Float32Array } {
  return { x: moeNoise(c.T * c.H, 1, 1), w: moeNoise(c.E * c.H, 2, 3 / Math.sqrt(c.H)), bias: routerBias(c) };
}

/** The route-only case's inputs: logits [T, E] uniform in ±1.75 (standard deviation ~1), the bias. */
export function routeInputs(c: MoeCase): { logits: Float32Array; bias: Float32Array } {
  return { logits: moeNoise(c.T * c.E, 3, 1.75), bias: routerBias(c) };
}

/**
 * Rank r's inputs in the dispatch/combine cases (host arrays): x [T, H] (bf16 bits), the synthetic
 * routing's indices [T, k] and weights [T, k].
 */
export function groupInputs(c: MoeCase, r: number): { x: Uint16Array; indices: Int32Array; weights: Float32Array } {
  return { x: toBf16(moePattern(c.T * c.H, r, 1)), indices: syntheticIndices(c, r), weights: moePattern(c.T * c.k, 4 + r, 0.1) };
}

/**
 * Inputs on `backend`; run() does the case once and frees its outputs. The router cases take
 * gateInputs / routeInputs; the route-only case calls the backend's route kernel on given f32 logits
 * (what moe.gate runs after its GEMM), then the dispatchLayout and alignBlocks ops.
 */
export async function prepareMoe(backend: Backend, c: MoeCase): Promise<{ run: () => Promise<void>; free: () => void }> {
  const held: Tensor[] = [];
  const keep = <T extends Tensor>(t: T): T => {
    held.push(t);
    return t;
  };
  const free = () => held.forEach((t) => t.dispose());
  const routing = { topk: c.k, nGroup: c.nGroup, topkGroup: c.topkGroup, routedScalingFactor: V3_ROUTING.routedScalingFactor };
  const layoutAlign = async (indices: Tensor) => {
    const l = await moe.dispatchLayout(indices, c.E, c.R);
    const a = await moe.alignBlocks(indices, c.E, c.bs);
    for (const t of [l.tokensPerRank, l.tokensPerExpert, l.isTokenInRank, a.sortedPairs, a.blockExpert, a.rowExpert, a.pairPos, a.counts]) t.dispose();
  };
  if (c.op === 'gate+layout+align') {
    const inp = gateInputs(c);
    const bias = keep(backend.fromHost(inp.bias, 'f32', [c.E]));
    const x = keep(backend.fromHost(toBf16(inp.x), 'bf16', [c.T, c.H]));
    const w = keep(backend.fromHost(toBf16(inp.w), 'bf16', [c.E, c.H]));
    return {
      run: async () => {
        const g = await moe.gate(x, w, { ...routing, bias });
        await layoutAlign(g.indices);
        for (const t of [g.weights, g.indices, g.scores]) t.dispose();
      },
      free,
    };
  }
  if (c.op === 'route+layout+align') {
    const kernels = backend.moe;
    if (!kernels) throw new Error(`moe bench: the ${backend.name} backend has no moe kernels`);
    const inp = routeInputs(c);
    const bias = keep(backend.fromHost(inp.bias, 'f32', [c.E]));
    const logits = keep(backend.fromHost(inp.logits, 'f32', [c.T, c.E]));
    const p: MoeRouteParams = { scoring: 'sigmoid', topk: c.k, nGroup: c.nGroup, topkGroup: c.topkGroup, groupScore: 'top2', normTopkProb: true, routedScalingFactor: V3_ROUTING.routedScalingFactor };
    return {
      run: async () => {
        const scores = backend.empty('f32', [c.T, c.E]), weights = backend.empty('f32', [c.T, c.k]), indices = backend.empty('i32', [c.T, c.k]);
        await kernels.route(logits, bias, p, scores, weights, indices);
        await layoutAlign(indices);
        for (const t of [scores, weights, indices]) t.dispose();
      },
      free,
    };
  }
  if (isGroupOp(c.op)) {
    const group = moe.localGroup(c.R, backend);
    const inputs = Array.from({ length: c.R }, (_, r) => {
      const h = groupInputs(c, r);
      return {
        x: keep(backend.fromHost(h.x, 'bf16', [c.T, c.H])),
        indices: keep(backend.fromHost(h.indices, 'i32', [c.T, c.k])),
        weights: keep(backend.fromHost(h.weights, 'f32', [c.T, c.k])),
      };
    });
    const opts = { numExperts: c.E, fp8: c.op === 'dispatch' };
    if (c.op === 'dispatch') {
      return { run: async () => moe.disposeDispatched(await moe.dispatch(group, inputs, opts)), free: () => (free(), group.destroy?.()) };
    }
    const d = await moe.dispatch(group, inputs, opts);
    const outs = d.map((di, r) => keep(backend.fromHost(toBf16(moePattern(di.alignment.padded * c.H, 3 + r, 1)), 'bf16', [di.alignment.padded, c.H])));
    return {
      run: async () => (await moe.combine(group, outs, d)).forEach((t) => t.dispose()),
      free: () => (moe.disposeDispatched(d), free(), group.destroy?.()),
    };
  }
  const idx = keep(backend.fromHost(syntheticIndices(c), 'i32', [c.T, c.k]));
  const a = await moe.alignBlocks(idx, c.E, c.bs);
  held.push(a.sortedPairs, a.blockExpert, a.rowExpert, a.pairPos, a.counts);
  if (c.op === 'permute') {
    const x = keep(backend.fromHost(toBf16(moePattern(c.T * c.H, 0, 1)), 'bf16', [c.T, c.H]));
    return { run: async () => (await moe.permute(x, a)).dispose(), free };
  }
  const y = keep(backend.fromHost(toBf16(moePattern(a.padded * c.H, 3, 1)), 'bf16', [a.padded, c.H]));
  const weights = keep(backend.fromHost(moePattern(c.T * c.k, 4, 0.1), 'f32', [c.T, c.k]));
  return { run: async () => (await moe.unpermute(y, a, { weights })).dispose(), free };
}
