// Reference MoE kernels: DeepSeek-V3's router and the token ↔ expert layout, as plain loops (the
// oracle every backend is tested against). Semantics: ../REFERENCE.md "MoE routing", docs/API.md
// "## moe", the MoeKernels contract in src/runtime/backend.ts.
//
//   route:   s = sigmoid(z) or softmax_E(z)          (f32; what the weights are made of)
//            s' = s + b                              (f32; selection only)
//            group score = top-2 sum or max of s'    (f32), keep topkGroup groups, top-k of s' there
//            w_j = s[i_j] (/ (Σ_j s[i_j] + 1e-20)) · routedScalingFactor
//   Every comparison is "greater score first, then lower index": a strict total order, so the
//   selection is deterministic whatever the ties. A NaN biased score sorts as −∞ (its expert is picked
//   last), and a token with any NaN logit gets NaN weights: the indices stay valid experts.
//
// f32 arithmetic is emulated with Math.fround where the kernels round (scores, biased scores, group
// scores, the weights' running sum and quotient); gradients and the aux loss are computed in f64 and
// rounded once.

import { bf16BitsToF32, f32ToBf16Bits } from '../dtype.js';
import type { MoeRouteParams } from '../runtime/backend.js';

const fround = Math.fround;

/** f32 values or bf16 bit patterns, read and written as f32 numbers. */
export interface RowsView {
  data: Float32Array | Uint16Array;
  bf16: boolean;
}
const get = (v: RowsView, i: number): number => (v.bf16 ? bf16BitsToF32(v.data[i]!) : v.data[i]!);
const put = (v: RowsView, i: number, x: number): void => {
  v.data[i] = v.bf16 ? f32ToBf16Bits(x) : x;
};

/** a ranks before b: higher key first, ties -> lower index (keys are never NaN here). */
const before = (ka: number, a: number, kb: number, b: number): boolean => ka > kb || (ka === kb && a < b);

/**
 * logits: [T, E], bias: [E] | null -> scores: [T, E], weights: [T, k], indices: [T, k].
 * See the header for the rule; p was resolved and checked by src/ops/moe.ts.
 */
export function moeRoute(
  logits: Float32Array, bias: Float32Array | null, T: number, E: number, p: MoeRouteParams,
  scores: Float32Array, weights: Float32Array, indices: Int32Array,
): void {
  const { topk: k, nGroup, topkGroup } = p;
  const G = E / nGroup; // experts per group
  const key = new Float64Array(E); // s' as a sort key (NaN -> −∞)
  const groupKey = new Float64Array(nGroup);
  const keptGroup = new Uint8Array(nGroup);
  const taken = new Uint8Array(E);
  for (let t = 0; t < T; t++) {
    const z = t * E;
    // scores: [E] of this token
    let hasNaN = false;
    if (p.scoring === 'sigmoid') {
      for (let e = 0; e < E; e++) {
        const x = logits[z + e]!;
        if (Number.isNaN(x)) hasNaN = true;
        scores[z + e] = fround(1 / (1 + Math.exp(-x)));
      }
    } else {
      let m = -Infinity;
      for (let e = 0; e < E; e++) {
        const x = logits[z + e]!;
        if (Number.isNaN(x)) hasNaN = true;
        if (x > m) m = x;
      }
      let sum = 0;
      for (let e = 0; e < E; e++) sum += Math.exp(logits[z + e]! - m);
      for (let e = 0; e < E; e++) scores[z + e] = hasNaN ? NaN : fround(Math.exp(logits[z + e]! - m) / sum);
    }
    for (let e = 0; e < E; e++) {
      const sb = bias ? fround(scores[z + e]! + bias[e]!) : scores[z + e]!;
      key[e] = Number.isNaN(sb) ? -Infinity : sb;
    }

    // group-limited routing: keep the topkGroup best groups (all of them when nothing is cut)
    keptGroup.fill(1);
    if (topkGroup < nGroup) {
      for (let g = 0; g < nGroup; g++) {
        let b1 = -Infinity, b2 = -Infinity;
        for (let e = g * G; e < (g + 1) * G; e++) {
          const v = key[e]!;
          if (v > b1) {
            b2 = b1;
            b1 = v;
          } else if (v > b2) b2 = v;
        }
        const gs = p.groupScore === 'top2' ? fround(b1 + b2) : b1;
        groupKey[g] = Number.isNaN(gs) ? -Infinity : gs; // +∞ + −∞ (an infinite bias) sorts last
      }
      keptGroup.fill(0);
      for (let n = 0; n < topkGroup; n++) {
        let best = -1;
        for (let g = 0; g < nGroup; g++) {
          if (!keptGroup[g] && (best < 0 || before(groupKey[g]!, g, groupKey[best]!, best))) best = g;
        }
        keptGroup[best] = 1;
      }
    }

    // top-k of s' among the kept groups' experts, best first
    taken.fill(0);
    const o = t * k;
    for (let j = 0; j < k; j++) {
      let best = -1;
      for (let e = 0; e < E; e++) {
        if (taken[e] || !keptGroup[Math.floor(e / G)]) continue;
        if (best < 0 || before(key[e]!, e, key[best]!, best)) best = e;
      }
      taken[best] = 1;
      indices[o + j] = best;
    }

    // weights from the unbiased scores
    let sum = 0;
    for (let j = 0; j < k; j++) {
      weights[o + j] = scores[z + indices[o + j]!]!;
      sum = fround(sum + weights[o + j]!);
    }
    const denom = fround(sum + 1e-20);
    for (let j = 0; j < k; j++) {
      let w = weights[o + j]!;
      if (p.normTopkProb) w = fround(w / denom);
      w = fround(w * p.routedScalingFactor);
      weights[o + j] = hasNaN ? NaN : w;
    }
  }
}

/**
 * Backward of route through the chosen weights (the selection is constant), in f64:
 * scores: [T, E], indices: [T, k], dWeights: [T, k], dScores: [T, E] | null -> dLogits: [T, E].
 *   normalised:  w_j = c·s_j / (S + ε), S = Σ_l s_l  =>  ds_j = c·(g_j / (S + ε) − Σ_l g_l s_l / (S + ε)²)
 *   otherwise:   ds_j = c·g_j
 *   plus dScores; then sigmoid: dz = ds·s·(1 − s); softmax: dz_e = s_e·(ds_e − Σ_f ds_f s_f).
 */
export function moeRouteBackward(
  scores: Float32Array, indices: Int32Array, dWeights: Float32Array, dScores: Float32Array | null,
  T: number, E: number, p: MoeRouteParams, dLogits: Float32Array,
): void {
  const k = p.topk;
  const c = p.routedScalingFactor;
  const ds = new Float64Array(E);
  for (let t = 0; t < T; t++) {
    const z = t * E, o = t * k;
    for (let e = 0; e < E; e++) ds[e] = dScores ? dScores[z + e]! : 0;
    let S = 0, dot = 0;
    for (let j = 0; j < k; j++) {
      const e = indices[o + j]!;
      if (e < 0 || e >= E) continue;
      S += scores[z + e]!;
      dot += dWeights[o + j]! * scores[z + e]!;
    }
    S += 1e-20;
    for (let j = 0; j < k; j++) {
      const e = indices[o + j]!;
      if (e < 0 || e >= E) continue;
      const g = dWeights[o + j]!;
      ds[e] = ds[e]! + (p.normTopkProb ? c * (g / S - dot / (S * S)) : c * g);
    }
    if (p.scoring === 'sigmoid') {
      for (let e = 0; e < E; e++) {
        const s = scores[z + e]!;
        dLogits[z + e] = ds[e]! * s * (1 - s);
      }
    } else {
      let dot2 = 0;
      for (let e = 0; e < E; e++) dot2 += ds[e]! * scores[z + e]!;
      for (let e = 0; e < E; e++) dLogits[z + e] = scores[z + e]! * (ds[e]! - dot2);
    }
  }
}

/**
 * bias: [E], load: [E] -> out: [E] = bias + γ·sign(mean(load) − load). The sign is taken of the exact
 * integer Σload − E·load_i (same sign, no rounding), so every backend agrees on ties.
 */
export function moeUpdateBias(bias: Float32Array, load: Int32Array, E: number, gamma: number, out: Float32Array): void {
  let total = 0;
  for (let e = 0; e < E; e++) total += load[e]!;
  const g = fround(gamma);
  for (let e = 0; e < E; e++) out[e] = fround(bias[e]! + g * Math.sign(total - E * load[e]!));
}

/**
 * Sequence-wise balance loss over sequences of L = seqLen tokens (T % L == 0), in f64:
 *   per sequence  f_i = E / (k·L) · #{t : i ∈ topk(t)},  P_i = (1/L) Σ_t s_{i,t} / (Σ_j s_{j,t} + 1e-20)
 *   loss = mean over sequences of α Σ_i f_i P_i
 * scores: [T, E], indices: [T, k] -> dScores: [T, E] = d loss / d s (f is constant):
 *   α / (nSeq·L) · (f_i / (S_t + ε) − Σ_j f_j s_{j,t} / (S_t + ε)²).
 * The 1e-20 (as in the weights' normalisation) keeps a token whose sigmoid scores all underflow finite.
 */
export function moeAuxLoss(scores: Float32Array, indices: Int32Array, T: number, E: number, k: number, seqLen: number, alpha: number, dScores: Float32Array): number {
  const nSeq = T / seqLen;
  const f = new Float64Array(E);
  let loss = 0;
  for (let q = 0; q < nSeq; q++) {
    const t0 = q * seqLen, t1 = t0 + seqLen;
    f.fill(0);
    for (let t = t0; t < t1; t++) {
      for (let j = 0; j < k; j++) {
        const e = indices[t * k + j]!;
        if (e >= 0 && e < E) f[e]!++;
      }
    }
    for (let e = 0; e < E; e++) f[e] = (f[e]! * E) / (k * seqLen);
    let seqLoss = 0;
    for (let t = t0; t < t1; t++) {
      let S = 0, fs = 0;
      for (let e = 0; e < E; e++) {
        S += scores[t * E + e]!;
        fs += f[e]! * scores[t * E + e]!;
      }
      S += 1e-20;
      seqLoss += fs / S;
      const a = alpha / (nSeq * seqLen);
      for (let e = 0; e < E; e++) dScores[t * E + e] = a * (f[e]! / S - fs / (S * S));
    }
    loss += (alpha * seqLoss) / seqLen;
  }
  return loss / nSeq;
}

/**
 * indices: [T, k] -> tokensPerRank: [R], tokensPerExpert: [E], isTokenInRank: [T, R] (0/1).
 * Rank r holds experts [r·E/R, (r+1)·E/R); an index outside [0, E) is ignored.
 */
export function moeLayout(
  indices: Int32Array, T: number, k: number, E: number, R: number,
  tokensPerRank: Int32Array, tokensPerExpert: Int32Array, isTokenInRank: Uint8Array,
): void {
  const perRank = E / R;
  tokensPerRank.fill(0);
  tokensPerExpert.fill(0);
  isTokenInRank.fill(0);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < k; j++) {
      const e = indices[t * k + j]!;
      if (e < 0 || e >= E) continue;
      tokensPerExpert[e]!++;
      isTokenInRank[t * R + Math.floor(e / perRank)] = 1;
    }
    for (let r = 0; r < R; r++) tokensPerRank[r]! += isTokenInRank[t * R + r]!;
  }
}

/** Rows the ops allocate for align's outputs: every pair plus the worst-case padding, rounded to blocks. */
export function alignRowsMax(pairs: number, E: number, blockSize: number): number {
  return Math.ceil((pairs + E * (blockSize - 1)) / blockSize) * blockSize;
}

/**
 * indices: [T, k] -> sortedPairs: [Pmax], blockExpert: [Pmax / bs], rowExpert: [Pmax], pairPos: [T, k],
 * counts: [E], info: [4] = { P, dropped, bad, 0 } (moe_align_block_size; the contract in backend.ts).
 * Pairs are visited in ascending pair id t·k + j, so within an expert they stay in that order and a
 * capacity keeps the lowest ids. Expert e's segment starts at the padded sizes of experts < e.
 */
export function moeAlign(
  indices: Int32Array, T: number, k: number, E: number, bs: number, capacity: number,
  sortedPairs: Int32Array, blockExpert: Int32Array, rowExpert: Int32Array, pairPos: Int32Array, counts: Int32Array, info: Int32Array,
): void {
  const pairs = T * k;
  counts.fill(0);
  let dropped = 0, bad = 0;
  for (let id = 0; id < pairs; id++) {
    const e = indices[id]!;
    if (e < 0 || e >= E) bad++;
    else if (capacity > 0 && counts[e]! >= capacity) dropped++;
    else counts[e]!++;
  }
  // segment starts: start[e] = Σ_{e' < e} roundup(counts[e'], bs)
  const start = new Int32Array(E + 1);
  for (let e = 0; e < E; e++) start[e + 1] = start[e]! + Math.ceil(counts[e]! / bs) * bs;
  const P = start[E]!;
  sortedPairs.fill(pairs); // the sentinel T·k: padding and everything past P
  rowExpert.fill(-1);
  blockExpert.fill(-1);
  for (let e = 0; e < E; e++) {
    for (let b = start[e]! / bs; b < start[e + 1]! / bs; b++) blockExpert[b] = e;
  }
  const fill = new Int32Array(E);
  for (let id = 0; id < pairs; id++) {
    const e = indices[id]!;
    if (e < 0 || e >= E || fill[e]! >= counts[e]!) {
      pairPos[id] = -1; // bad or dropped
      continue;
    }
    const pos = start[e]! + fill[e]!++;
    sortedPairs[pos] = id;
    rowExpert[pos] = e;
    pairPos[id] = pos;
  }
  info[0] = P;
  info[1] = dropped;
  info[2] = bad;
  info[3] = 0;
}

/**
 * x: [T, H], rows: [≥ P] pair ids, weights: [T·k] | null -> out: [P, H], out[p] = w[id]·x[id / k]
 * (rounded to f32, then to bf16 for bf16 rows); a sentinel or negative id gives a zero row.
 */
export function moePermute(x: RowsView, T: number, H: number, rows: Int32Array, k: number, weights: Float32Array | null, out: RowsView, P: number): void {
  for (let p = 0; p < P; p++) {
    const id = rows[p]!;
    const o = p * H;
    if (id < 0 || id >= T * k) {
      out.data.fill(0, o, o + H);
      continue;
    }
    const src = Math.floor(id / k) * H;
    if (!weights && x.bf16 === out.bf16) {
      out.data.set(x.data.subarray(src, src + H), o); // bit-exact row move
      continue;
    }
    const w = weights ? weights[id]! : 1;
    for (let h = 0; h < H; h++) put(out, o + h, fround(w * get(x, src + h)));
  }
}

/**
 * Any-dtype row gather (permuteBytes): x: [T, W] elements of one typed array, rows: [≥ P] pair ids
 * -> out: [P, W], bytes moved as they are; a sentinel or negative id gives a zero row.
 */
export function moePermuteBytes(x: ArrayLike<number> & { subarray(a: number, b: number): ArrayLike<number> }, T: number, W: number, rows: Int32Array, k: number, out: { fill(v: number, a: number, b: number): unknown; set(src: ArrayLike<number>, o: number): void }, P: number): void {
  for (let p = 0; p < P; p++) {
    const id = rows[p]!;
    if (id < 0 || id >= T * k) out.fill(0, p * W, p * W + W);
    else out.set(x.subarray(Math.floor(id / k) * W, Math.floor(id / k) * W + W), p * W);
  }
}

/**
 * y: [P, H], pairPos: [T, k], weights: [T, k] | null -> out: [T, H], out[t] = Σ_j w[t,j]·y[pairPos[t,j]]
 * accumulated in f32 in slot order (each step one f32 rounding of acc + w·y: a fused multiply-add);
 * pairPos −1 (dropped, or no expert) adds nothing. out may be f32 or bf16 whatever y is.
 */
export function moeUnpermute(y: RowsView, H: number, pairPos: Int32Array, T: number, k: number, weights: Float32Array | null, out: RowsView): void {
  const acc = new Float32Array(H);
  for (let t = 0; t < T; t++) {
    acc.fill(0);
    for (let j = 0; j < k; j++) {
      const pos = pairPos[t * k + j]!;
      if (pos < 0) continue;
      const w = weights ? weights[t * k + j]! : 1;
      for (let h = 0; h < H; h++) acc[h] = acc[h]! + w * get(y, pos * H + h); // f64 product is exact; one rounding
    }
    for (let h = 0; h < H; h++) put(out, t * H + h, acc[h]!);
  }
}

/** dOut: [T, H], y: [P, H], pairPos: [T, k] -> dWeights: [T, k] = dOut[t]·y[pairPos[t,j]] (f64 sum, rounded; 0 for −1). */
export function moeUnpermuteWeightGrad(dOut: RowsView, y: RowsView, H: number, pairPos: Int32Array, T: number, k: number, dWeights: Float32Array): void {
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < k; j++) {
      const pos = pairPos[t * k + j]!;
      let s = 0;
      if (pos >= 0) for (let h = 0; h < H; h++) s += get(dOut, t * H + h) * get(y, pos * H + h);
      dWeights[t * k + j] = s;
    }
  }
}

// ---------------------------------------------------------------- dispatch's device path
// (the optional MoeKernels dispatchPlan, dispatchPack, dispatchRecvLayout, dispatchScatter,
// unpermuteRows; the contract in src/runtime/backend.ts)

/**
 * indices: [T, k], R ranks of E/R experts -> sendRow: [T, R] (row in the send order: by destination
 * rank, then token; −1 where none), pairRank: [T, k] (earlier pairs of the same expert; −1 for a bad
 * id), table: [R + E + 1] (tokens per destination, pairs per expert, bad ids). slotRows M > 0: fixed
 * slots, rank d's rows from d·M (a place ≥ M gets −1: not sent), and T > M puts −T in the bad-id column.
 */
export function moeDispatchPlan(
  indices: Int32Array, T: number, k: number, E: number, R: number, sendRow: Int32Array, pairRank: Int32Array, table: Int32Array, slotRows = 0, pieceEnds?: Int32Array,
): void {
  const per = E / R;
  table.fill(0);
  const member = new Uint8Array(T * R); // token t has an expert on rank d
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < k; j++) {
      const e = indices[t * k + j]!;
      if (!(e >= 0 && e < E)) {
        pairRank[t * k + j] = -1;
        table[R + E]!++;
        continue;
      }
      pairRank[t * k + j] = table[R + e]!++;
      member[t * R + Math.floor(e / per)] = 1;
    }
    for (let d = 0; d < R; d++) table[d]! += member[t * R + d]!;
  }
  // rows destination by destination, each in token order (packed one after the other, or each in its slot)
  let row = 0;
  for (let d = 0; d < R; d++) {
    if (slotRows > 0) row = 0;
    for (let t = 0; t < T; t++) {
      if (!member[t * R + d]) sendRow[t * R + d] = -1;
      else if (slotRows === 0) sendRow[t * R + d] = row++;
      else sendRow[t * R + d] = row < slotRows ? d * slotRows + row++ : -1;
    }
  }
  if (slotRows > 0 && T > slotRows) table[R + E] = -T;
  // each piece's end: the tokens before it with a row on d (capped at the slots)
  pieceEnds?.forEach((end, c) => {
    for (let d = 0; d < R; d++) {
      let n = 0;
      for (let t = 0; t < end; t++) n += member[t * R + d]!;
      table[R + E + 1 + c * R + d] = slotRows > 0 ? Math.min(n, slotRows) : n;
    }
  });
}

/** Rows of W elements in one typed array (expertX and its scales, for the padding). */
export interface RowArray {
  data: { fill(v: number, a: number, b: number): unknown };
  width: number;
}

/** Where the parts of a packed row are (dispatchRowLayout in src/runtime/backend.ts), with the payload's bytes. */
export interface PackedLayout {
  payload: number;
  scalesAt: number;
  scaleBytes: number;
  metaAt: number;
  stride: number;
}

/**
 * The send buffer, packed rows: for each (t, d) with s = sendRow[t, d] ≥ 0, row s of `packed` = the
 * payload row t of `src` (x's bytes, or the codes of x quantized by the caller), its scales (row t of
 * `scales`, FP8 only), and the meta [local ids (−1 elsewhere) | weight bits (0 elsewhere) | pairRank
 * (−1 elsewhere)], each k wide.
 */
export function moeDispatchPack(
  src: Uint8Array, scales: Uint8Array | null, T: number, indices: Int32Array, weights: Float32Array, k: number, sendRow: Int32Array, pairRank: Int32Array,
  E: number, R: number, packed: Uint8Array, L: PackedLayout,
): void {
  const per = E / R;
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < R; d++) {
      const s = sendRow[t * R + d]!;
      if (s < 0) continue;
      const o = s * L.stride;
      packed.set(src.subarray(t * L.payload, (t + 1) * L.payload), o);
      if (scales) packed.set(scales.subarray(t * L.scaleBytes, (t + 1) * L.scaleBytes), o + L.scalesAt);
      for (let j = 0; j < k; j++) {
        const e = indices[t * k + j]!;
        const here = e >= 0 && e < E && Math.floor(e / per) === d;
        view.setInt32(o + L.metaAt + 4 * j, here ? e - d * per : -1, true);
        view.setFloat32(o + L.metaAt + 4 * (k + j), here ? weights[t * k + j]! : 0, true);
        view.setInt32(o + L.metaAt + 4 * (2 * k + j), here ? pairRank[t * k + j]! : -1, true);
      }
    }
  }
}

/**
 * The receiver's layout from every rank's plan table (tables: [R, R + E + 1]): base [R, E/R], counts
 * [E/R], sortedPairs all sentinel n·k, blockExpert and rowExpert as align gives them, expertX's padding
 * rows zero (rows of RowArrays; expertX has P rows).
 */
export function moeDispatchRecvLayout(
  tables: Int32Array, R: number, E: number, rank: number, bs: number, k: number, base: Int32Array, counts: Int32Array, sortedPairs: Int32Array,
  blockExpert: Int32Array, rowExpert: Int32Array, expertX: RowArray | null, expertScales: RowArray | null, tableStride = R + E + 1,
): void {
  const per = E / R, W = tableStride;
  let n = 0;
  for (let s = 0; s < R; s++) n += tables[s * W + rank]!;
  const start = new Int32Array(per + 1);
  for (let l = 0; l < per; l++) {
    let c = 0;
    for (let s = 0; s < R; s++) {
      base[s * per + l] = c; // offset from start[l], completed below
      c += tables[s * W + R + rank * per + l]!;
    }
    counts[l] = c;
    start[l + 1] = start[l]! + Math.ceil(c / bs) * bs;
  }
  for (let s = 0; s < R; s++) for (let l = 0; l < per; l++) base[s * per + l]! += start[l]!;
  sortedPairs.fill(n * k);
  rowExpert.fill(-1);
  blockExpert.fill(-1);
  for (let l = 0; l < per; l++) {
    for (let p = start[l]!; p < start[l + 1]!; p++) {
      if (p % bs === 0) blockExpert[p / bs] = l;
      if (p - start[l]! < counts[l]!) rowExpert[p] = l;
      else if (expertX) {
        expertX.data.fill(0, p * expertX.width, (p + 1) * expertX.width);
        expertScales?.data.fill(0, p * expertScales.width, (p + 1) * expertScales.width);
      }
    }
  }
}

/**
 * Packed rows into expert order (MoeScatterArgs in src/runtime/backend.ts): rows [srcRow, +rows) of
 * `src` from rank `source` are the receiver's rows [recvRow, +rows). Byte views of every tensor;
 * expertX null: no expert-ordered copy (dispatch's expand: false).
 */
export function moeDispatchScatter(
  src: Uint8Array, L: PackedLayout, srcRow: number, rows: number, recvRow: number, base: Int32Array, source: number, per: number, k: number,
  expertX: Uint8Array | null, expertScales: Uint8Array | null, sortedPairs: Int32Array, pairPos: Int32Array, recvIndices: Int32Array, recvWeights: Float32Array,
  recv: Uint8Array, recvScales: Uint8Array | null,
): void {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  for (let i = 0; i < rows; i++) {
    const r = srcRow + i, q = recvRow + i, o = r * L.stride;
    const row = src.subarray(o, o + L.payload);
    const sc = src.subarray(o + L.scalesAt, o + L.scalesAt + L.scaleBytes);
    recv.set(row, q * L.payload);
    recvScales?.set(sc, q * L.scaleBytes);
    for (let j = 0; j < k; j++) {
      const l = view.getInt32(o + L.metaAt + 4 * j, true);
      recvIndices[q * k + j] = l;
      recvWeights[q * k + j] = view.getFloat32(o + L.metaAt + 4 * (k + j), true);
      if (l < 0) {
        pairPos[q * k + j] = -1;
        continue;
      }
      const p = base[source * per + l]! + view.getInt32(o + L.metaAt + 4 * (2 * k + j), true);
      expertX?.set(row, p * L.payload);
      expertScales?.set(sc, p * L.scaleBytes);
      sortedPairs[p] = q * k + j;
      pairPos[q * k + j] = p;
    }
  }
}

/** unpermute over rows [row0, row0 + rows) of pairPos/weights, into out's rows [outRow0, …). */
export function moeUnpermuteRows(y: RowsView, H: number, pairPos: Int32Array, k: number, weights: Float32Array | null, row0: number, rows: number, out: RowsView, outRow0: number): void {
  const win = { data: out.data.subarray(outRow0 * H, (outRow0 + rows) * H), bf16: out.bf16 };
  moeUnpermute(y, H, pairPos.subarray(row0 * k, (row0 + rows) * k), rows, k, weights ? weights.subarray(row0 * k, (row0 + rows) * k) : null, win);
}
