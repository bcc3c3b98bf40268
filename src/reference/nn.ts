// Reference nn kernels: embedding, RMSNorm, RoPE, causal attention, SwiGLU, elementwise updates,
// AdamW and sampling, each with its backward. Plain loops (the oracle). Storage is f32; sums and
// every intermediate are JS numbers (f64), and each output element is rounded to f32 once — so the
// oracle's own error is one f32 rounding per output, well under what the f32 kernels are held to.
// Semantics: src/runtime/backend.ts (NnKernels), docs/API.md "## nn".

import type { AdamWParams } from '../runtime/backend.js';

/** f32 storage for the backend; the tests call these loops on Float64Array too (f64 finite differences). */
type F32 = Float32Array | Float64Array;

/** table: [V, D], ids: [N] (in [0, V), checked by src/ops/nn.ts) -> out: [N, D]. */
export function embedding(table: F32, ids: Int32Array, N: number, D: number, out: F32): void {
  for (let n = 0; n < N; n++) {
    const row = ids[n]!;
    for (let d = 0; d < D; d++) out[n * D + d] = table[row * D + d]!;
  }
}

/**
 * dOut: [N, D], ids: [N] -> dTable: [V, D] += dOut rows scattered by id. Each touched row is summed
 * in f64 over its occurrences in id order, then added once to the f32 row (a row that appears once is
 * exactly dTable + dOut rounded once).
 */
export function embeddingBackward(dOut: F32, ids: Int32Array, N: number, D: number, dTable: F32): void {
  const byRow = new Map<number, number[]>();
  for (let n = 0; n < N; n++) {
    const list = byRow.get(ids[n]!);
    if (list) list.push(n);
    else byRow.set(ids[n]!, [n]);
  }
  for (const [row, ns] of byRow) {
    for (let d = 0; d < D; d++) {
      let s = 0;
      for (const n of ns) s += dOut[n * D + d]!;
      dTable[row * D + d] = dTable[row * D + d]! + s;
    }
  }
}

/** x: [N, D], weight: [D] -> out: [N, D] = x · rstd · weight, rstd: [N] = 1/sqrt(mean(x²) + eps). */
export function rmsnorm(x: F32, weight: F32, N: number, D: number, eps: number, out: F32, rstd: F32): void {
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let d = 0; d < D; d++) ss += x[n * D + d]! * x[n * D + d]!;
    const r = 1 / Math.sqrt(ss / D + eps);
    rstd[n] = r;
    for (let d = 0; d < D; d++) out[n * D + d] = x[n * D + d]! * r * weight[d]!;
  }
}

/**
 * With y = x·r·w, r = (mean(x²) + eps)^(−1/2) (the saved rstd) and g = dOut:
 *   dx_j = r·w_j·g_j − x_j · r³/D · Σ_k g_k·w_k·x_k        (dx: [N, D], overwritten)
 *   dWeight_j += Σ_n g_j·x_j·r                              (dWeight: [D], summed over n in f64)
 */
export function rmsnormBackward(dOut: F32, x: F32, weight: F32, rstd: F32, N: number, D: number, dx: F32, dWeight: F32): void {
  const dw = new Float64Array(D);
  for (let n = 0; n < N; n++) {
    const r = rstd[n]!;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += dOut[n * D + d]! * weight[d]! * x[n * D + d]!;
    const c = (r * r * r * dot) / D;
    for (let d = 0; d < D; d++) {
      const i = n * D + d;
      dx[i] = r * weight[d]! * dOut[i]! - x[i]! * c;
      dw[d] = dw[d]! + dOut[i]! * x[i]! * r;
    }
  }
  for (let d = 0; d < D; d++) dWeight[d] = dWeight[d]! + dw[d]!;
}

/** The rotation frequency of pair i: theta^(−2i/Dh). */
export function ropeFrequency(theta: number, i: number, Dh: number): number {
  return Math.pow(theta, (-2 * i) / Dh);
}

/**
 * x: [N, nH, Dh] (Dh even), positions: [N] -> out: [N, nH, Dh] (may be x). Pair i of every head,
 * (x[2i], x[2i+1]), turns by a = pos·theta^(−2i/Dh) (−a when inverse; the rotation is orthogonal, so
 * its transpose — the inverse — is the backward):
 *   out[2i] = x[2i]·cos a − x[2i+1]·sin a,   out[2i+1] = x[2i]·sin a + x[2i+1]·cos a
 */
export function rope(x: F32, positions: Int32Array, N: number, nH: number, Dh: number, theta: number, inverse: boolean, out: F32): void {
  const half = Dh / 2;
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < half; i++) {
      const a = positions[n]! * ropeFrequency(theta, i, Dh);
      const c = Math.cos(a);
      const s = inverse ? -Math.sin(a) : Math.sin(a);
      for (let h = 0; h < nH; h++) {
        const o = (n * nH + h) * Dh + 2 * i;
        const x0 = x[o]!, x1 = x[o + 1]!;
        out[o] = x0 * c - x1 * s;
        out[o + 1] = x0 * s + x1 * c;
      }
    }
  }
}

/** Shapes of one attention call: q [B, Tq, nH, Dh], k and v [B, S, nH, Dh]. */
export interface AttentionDims {
  B: number;
  Tq: number;
  S: number;
  nH: number;
  Dh: number;
}

/**
 * Causal attention, one head per query head. Query i (position qOffset + i) sees keys
 * j ≤ min(qOffset + i, kvLen − 1) (src/ops/nn.ts guarantees qOffset + Tq ≤ kvLen ≤ S, so each query
 * sees at least key 0):
 *   s_j = scale · q_i·k_j,  lse_i = log Σ_j exp(s_j),  out_i = Σ_j exp(s_j − lse_i) · v_j
 * out: [B, Tq, nH, Dh], lse: [B, nH, Tq]. Scores, the softmax and the weighted sum in f64.
 */
export function attention(q: F32, k: F32, v: F32, dims: AttentionDims, qOffset: number, kvLen: number, scale: number, out: F32, lse: F32): void {
  const { B, Tq, S, nH, Dh } = dims;
  const s = new Float64Array(kvLen);
  const acc = new Float64Array(Dh);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nH; h++) {
      for (let i = 0; i < Tq; i++) {
        const qo = ((b * Tq + i) * nH + h) * Dh;
        const last = Math.min(qOffset + i, kvLen - 1);
        let max = -Infinity;
        for (let j = 0; j <= last; j++) {
          const ko = ((b * S + j) * nH + h) * Dh;
          let dot = 0;
          for (let d = 0; d < Dh; d++) dot += q[qo + d]! * k[ko + d]!;
          s[j] = scale * dot;
          if (s[j]! > max) max = s[j]!;
        }
        let sum = 0;
        for (let j = 0; j <= last; j++) sum += Math.exp(s[j]! - max);
        const l = max + Math.log(sum);
        acc.fill(0);
        for (let j = 0; j <= last; j++) {
          const p = Math.exp(s[j]! - l);
          const vo = ((b * S + j) * nH + h) * Dh;
          for (let d = 0; d < Dh; d++) acc[d] = acc[d]! + p * v[vo + d]!;
        }
        for (let d = 0; d < Dh; d++) out[qo + d] = acc[d]!;
        lse[(b * nH + h) * Tq + i] = l;
      }
    }
  }
}

/**
 * Backward of training attention (qOffset 0, Tq = S = kvLen = T), per (b, h), with
 * P_ij = exp(s_ij − lse_i) for j ≤ i (the saved lse), dO = dOut:
 *   D_i   = Σ_d dO_i·O_i                      (the row term of the softmax Jacobian)
 *   dP_ij = dO_i·v_j,   dS_ij = P_ij·(dP_ij − D_i)
 *   dq_i  = scale · Σ_{j ≤ i} dS_ij·k_j,  dk_j = scale · Σ_{i ≥ j} dS_ij·q_i,  dv_j = Σ_{i ≥ j} P_ij·dO_i
 * dq, dk, dv: [B, T, nH, Dh], overwritten. Everything in f64, each output rounded once.
 */
export function attentionBackward(q: F32, k: F32, v: F32, out: F32, lse: F32, dOut: F32, dims: AttentionDims, scale: number, dq: F32, dk: F32, dv: F32): void {
  const { B, Tq: T, nH, Dh } = dims;
  const at = (b: number, t: number, h: number): number => ((b * T + t) * nH + h) * Dh;
  const gq = new Float64Array(T * Dh), gk = new Float64Array(T * Dh), gv = new Float64Array(T * Dh);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nH; h++) {
      gq.fill(0);
      gk.fill(0);
      gv.fill(0);
      for (let i = 0; i < T; i++) {
        const qi = at(b, i, h);
        const l = lse[(b * nH + h) * T + i]!;
        let Di = 0;
        for (let d = 0; d < Dh; d++) Di += dOut[qi + d]! * out[qi + d]!;
        for (let j = 0; j <= i; j++) {
          const kj = at(b, j, h);
          let dot = 0, dP = 0;
          for (let d = 0; d < Dh; d++) {
            dot += q[qi + d]! * k[kj + d]!;
            dP += dOut[qi + d]! * v[kj + d]!;
          }
          const P = Math.exp(scale * dot - l);
          const dS = P * (dP - Di);
          for (let d = 0; d < Dh; d++) {
            gq[i * Dh + d] = gq[i * Dh + d]! + scale * dS * k[kj + d]!;
            gk[j * Dh + d] = gk[j * Dh + d]! + scale * dS * q[qi + d]!;
            gv[j * Dh + d] = gv[j * Dh + d]! + P * dOut[qi + d]!;
          }
        }
      }
      for (let t = 0; t < T; t++) {
        const o = at(b, t, h);
        for (let d = 0; d < Dh; d++) {
          dq[o + d] = gq[t * Dh + d]!;
          dk[o + d] = gk[t * Dh + d]!;
          dv[o + d] = gv[t * Dh + d]!;
        }
      }
    }
  }
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** gate, up: [n] -> out: [n] = silu(gate)·up = gate·σ(gate)·up. */
export function swiglu(gate: F32, up: F32, n: number, out: F32): void {
  for (let i = 0; i < n; i++) out[i] = gate[i]! * sigmoid(gate[i]!) * up[i]!;
}

/** dGate = dOut·up·σ(g)·(1 + g·(1 − σ(g))), dUp = dOut·g·σ(g); both [n], overwritten. */
export function swigluBackward(gate: F32, up: F32, dOut: F32, n: number, dGate: F32, dUp: F32): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!, s = sigmoid(g), d = dOut[i]!;
    const u = up[i]!; // read before the writes: dUp may alias up only if the caller asked for it
    dGate[i] = d * u * s * (1 + g * (1 - s));
    dUp[i] = d * g * s;
  }
}

/** out = a + alpha·b elementwise over n (out may be a or b: each element is read before it is written). */
export function addScaled(a: F32, b: F32, alpha: number, n: number, out: F32): void {
  for (let i = 0; i < n; i++) out[i] = a[i]! + alpha * b[i]!;
}

/** Σ x² in f64. */
export function sumSquares(x: F32, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i]! * x[i]!;
  return s;
}

/**
 * One AdamW step over n elements in place (PyTorch's torch.optim.AdamW, amsgrad off), t = p.step ≥ 1:
 *   param ← param − lr·wd·param                  (decoupled weight decay, on the old param)
 *   m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
 *   param ← param − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + eps)
 */
export function adamw(param: F32, grad: F32, m: F32, v: F32, n: number, p: AdamWParams): void {
  const bc1 = 1 - Math.pow(p.beta1, p.step);
  const bc2 = 1 - Math.pow(p.beta2, p.step);
  for (let i = 0; i < n; i++) {
    const g = grad[i]!;
    const mi = p.beta1 * m[i]! + (1 - p.beta1) * g;
    const vi = p.beta2 * v[i]! + (1 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const w = param[i]! * (1 - p.lr * p.weightDecay);
    param[i] = w - (p.lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + p.eps);
  }
}

/**
 * logits: [B, V], uniforms: [B] in [0, 1) -> ids: [B].
 * temperature 0: the argmax (lowest id on ties). Otherwise, in f64:
 *   p_j = exp((z_j − max z) / T) / Σ, tokens sorted by p descending (ties: lower id first);
 *   keep the shortest prefix whose running Σ p ≥ topP (all V when rounding keeps it below);
 *   pick the first kept token whose running mass > u · (kept mass); the last kept one if rounding
 *   leaves none.
 */
export function sample(logits: F32, uniforms: F32, B: number, V: number, temperature: number, topP: number, ids: Int32Array): void {
  const e = new Float64Array(V);
  const order = new Int32Array(V);
  for (let b = 0; b < B; b++) {
    const row = b * V;
    let best = 0;
    for (let j = 1; j < V; j++) if (logits[row + j]! > logits[row + best]!) best = j;
    if (temperature === 0) {
      ids[b] = best;
      continue;
    }
    const max = logits[row + best]!;
    let sum = 0;
    for (let j = 0; j < V; j++) {
      e[j] = Math.exp((logits[row + j]! - max) / temperature);
      sum += e[j]!;
    }
    for (let j = 0; j < V; j++) {
      e[j] = e[j]! / sum;
      order[j] = j;
    }
    order.sort((x, y) => e[y]! - e[x]! || x - y);
    let kept = 0, mass = 0;
    while (kept < V) {
      mass += e[order[kept]!]!;
      kept++;
      if (mass >= topP) break;
    }
    const target = uniforms[b]! * mass;
    let run = 0;
    let pick = order[kept - 1]!;
    for (let r = 0; r < kept; r++) {
      run += e[order[r]!]!;
      if (run > target) {
        pick = order[r]!;
        break;
      }
    }
    ids[b] = pick;
  }
}
