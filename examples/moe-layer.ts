// A complete DeepSeek-V3-style MoE layer built from hotpaths ops, forward only:
//
//   routed = moe.gate(x, Wg)                         sigmoid scores, group-limited top-k, weights
//   a      = moe.alignBlocks(indices, E, 128)        (token, slot) pairs by expert, 128-row blocks
//   qx     = fp8.quantize(x)                         [T, H] E4M3 + 1×128 scales, once a token
//   h      = silu(xe·W1[e]ᵀ) · (xe·W3[e]ᵀ)          two FP8 grouped-contiguous GEMMs (groupIndex =
//                                                    a.rowExpert's first P rows) whose A rows xe [P, H]
//                                                    are qx's rows gathered through a.sortedPairs (the
//                                                    expert-ordered copy is never written), then SwiGLU
//   y      = h·W2[e]ᵀ                                a third grouped GEMM, [P, H]
//   out    = moe.unpermute(y, a, weights)            Σ_j w_j · y_j per token, in f32
//          + shared expert: silu(x·S1ᵀ)·(x·S3ᵀ)·S2ᵀ (three plain FP8 GEMMs)
//
// moeLayerParallel does the routed part across an expert-parallel group instead: moe.dispatch with the
// FP8 payload and expand: false hands each rank its received rows already quantized (recv) and their
// expert order (alignment); the rank runs its own experts, gathering recv's rows the same way, and
// moe.combine brings the weighted outputs home.
//
// SwiGLU and the final sum use nn.swiglu / nn.addScaled where the backend has the nn kernels, and a
// host loop otherwise (they are not the point of the example).
//
//   npx tsc -p tsconfig.json && node dist/examples/moe-layer.js     (a small layer on the reference backend)

import { fp8, gemm, init, moe, nn, type Tensor } from '../src/index.js';
import type { QuantizedTensor } from '../src/ops/fp8.js';
import type { GateOptions } from '../src/ops/moe.js';
import { sliceRows } from '../src/tensor.js';

export interface MoeLayerWeights {
  /** f32 [E, H]: the router. */
  gate: Tensor;
  /** f32 [E]: the aux-loss-free correction bias (selection only), or none. */
  bias?: Tensor;
  /** Routed experts, E4M3 with 128×128 scales: w1, w3 [E, F, H] (gate and up), w2 [E, H, F] (down). */
  w1: QuantizedTensor;
  w3: QuantizedTensor;
  w2: QuantizedTensor;
  /** The shared expert, E4M3 with 128×128 scales: s1, s3 [Fs, H], s2 [H, Fs]. */
  s1: QuantizedTensor;
  s3: QuantizedTensor;
  s2: QuantizedTensor;
}

/** Routing options of the example (V3's rule; the numbers of experts and groups come from the weights). */
export type LayerRouting = Omit<GateOptions, 'bias'>;

/** silu(g)·u, elementwise: nn.swiglu where the backend has it, else on the host. */
async function swiglu(g: Tensor, u: Tensor): Promise<Tensor> {
  if (g.backend.nn) return nn.swiglu(g, u);
  const gv = (await g.read()) as Float32Array, uv = (await u.read()) as Float32Array;
  const out = gv.map((v, i) => Math.fround((v / (1 + Math.exp(-v))) * uv[i]!));
  return g.backend.fromHost(out, 'f32', g.shape);
}

/** a + b (f32): nn.addScaled where the backend has it, else on the host. */
async function add(a: Tensor, b: Tensor): Promise<Tensor> {
  if (a.backend.nn) return nn.addScaled(a, b, 1);
  const av = (await a.read()) as Float32Array, bv = (await b.read()) as Float32Array;
  return a.backend.fromHost(av.map((v, i) => v + bv[i]!), 'f32', a.shape);
}

/**
 * One rank's experts: qx [n, H] (E4M3, 1×128) holds the tokens once each; a's first P sortedPairs
 * (pair t·k + j, the sentinel for padding) put them in expert order and a.rowExpert is each row's
 * expert -> y f32 [P, H] = (silu(xe·W1ᵀ) · (xe·W3ᵀ))·W2ᵀ per row's expert, with xe row p = qx row
 * sortedPairs[p] / k (the GEMMs gather it); padding rows (−1) stay zero.
 */
async function experts(qx: QuantizedTensor, a: moe.Alignment, w: Pick<MoeLayerWeights, 'w1' | 'w3' | 'w2'>): Promise<Tensor> {
  const groupIndex = sliceRows(a.rowExpert, 0, a.padded);
  const gather = { pairs: a.sortedPairs, k: a.topk };
  const g = await gemm.fp8GroupedContiguous(qx, w.w1, groupIndex, { out: 'f32', gather }); // [P, F]
  const u = await gemm.fp8GroupedContiguous(qx, w.w3, groupIndex, { out: 'f32', gather });
  const h = await swiglu(g, u);
  const qh = await fp8.quantize(h, { block: [1, 128] });
  const y = await gemm.fp8GroupedContiguous(qh, w.w2, groupIndex, { out: 'f32' }); // [P, H]
  for (const t of [g, u, h, qh.data, qh.scales]) t.dispose();
  return y;
}

/** The shared expert on every token: x [T, H] -> f32 [T, H]. */
async function sharedExpert(x: Tensor, w: MoeLayerWeights): Promise<Tensor> {
  if (x.shape[0] === 0) return x.backend.empty('f32', x.shape); // a rank without tokens
  const qx = await fp8.quantize(x, { block: [1, 128] });
  const g = await gemm.fp8(qx, w.s1, { out: 'f32' });
  const u = await gemm.fp8(qx, w.s3, { out: 'f32' });
  const h = await swiglu(g, u);
  const qh = await fp8.quantize(h, { block: [1, 128] });
  const y = await gemm.fp8(qh, w.s2, { out: 'f32' });
  for (const t of [qx.data, qx.scales, g, u, h, qh.data, qh.scales]) t.dispose();
  return y;
}

/** x: f32|bf16 [T, H] -> f32 [T, H], the whole layer on x's backend (H and F multiples of 128). */
export async function moeLayer(x: Tensor, w: MoeLayerWeights, routing: LayerRouting): Promise<Tensor> {
  const E = w.gate.shape[0]!;
  const routed = await moe.gate(x, w.gate, { ...routing, ...(w.bias ? { bias: w.bias } : {}) });
  const a = await moe.alignBlocks(routed.indices, E, 128);
  let out: Tensor;
  if (a.padded === 0) out = x.backend.fromHost(new Float32Array(x.size), 'f32', x.shape);
  else {
    const qx = await fp8.quantize(x, { block: [1, 128] }); // [T, H]: the GEMMs gather its rows
    const y = await experts(qx, a, w);
    out = await moe.unpermute(y, a, { weights: routed.weights, out: 'f32' });
    for (const t of [qx.data, qx.scales, y]) t.dispose();
  }
  const s = await sharedExpert(x, w);
  const sum = await add(out, s);
  for (const t of [out, s, routed.weights, routed.indices, routed.scores]) t.dispose();
  moe.disposeAlignment(a);
  return sum;
}

/**
 * The same layer across an expert-parallel group: xs[i] [T_i, H] bf16 (or f32) is local rank
 * group.ranks[i]'s tokens; rank r runs experts [r·E/R, (r+1)·E/R) (its slice of w1/w3/w2, given per
 * local rank in local[i]). Tokens travel as E4M3 + 1×128 scales (dispatch's fp8 payload), the expert
 * outputs come back in f32. Returns f32 [T_i, H] per local rank.
 */
export async function moeLayerParallel(
  group: moe.ExpertGroup, xs: Tensor[], w: MoeLayerWeights, local: Pick<MoeLayerWeights, 'w1' | 'w3' | 'w2'>[], routing: LayerRouting,
): Promise<Tensor[]> {
  const E = w.gate.shape[0]!;
  const routes: moe.GateResult[] = [];
  for (const x of xs) routes.push(await moe.gate(x, w.gate, { ...routing, ...(w.bias ? { bias: w.bias } : {}) }));
  const disp = await moe.dispatch(group, xs.map((x, i) => ({ x, indices: routes[i]!.indices, weights: routes[i]!.weights })), { numExperts: E, fp8: true, blockSize: 128, expand: false });
  const ys: Tensor[] = [];
  for (let i = 0; i < xs.length; i++) {
    const d = disp[i]!;
    const P = d.alignment.padded;
    ys.push(P === 0 ? group.backend.empty('f32', [0, xs[i]!.shape[1]!]) : await experts(d.recv as QuantizedTensor, d.alignment, local[i]!));
  }
  const routed = await moe.combine(group, ys, disp);
  moe.disposeDispatched(disp);
  for (const g of routes) for (const t of [g.weights, g.indices, g.scores]) t.dispose();
  const outs: Tensor[] = [];
  for (let i = 0; i < xs.length; i++) {
    const s = await sharedExpert(xs[i]!, w);
    outs.push(await add(routed[i]!, s));
    for (const t of [s, routed[i]!, ys[i]!]) t.dispose();
  }
  return outs;
}

/** Experts [e0, e1) of a quantized stack [E, N, K] (128×128 scales [E, N/128, K/128]), sharing its storage. */
export function expertSlice(q: QuantizedTensor, e0: number, e1: number): QuantizedTensor {
  return { ...q, data: sliceRows(q.data, e0, e1), scales: sliceRows(q.scales, e0, e1), shape: [e1 - e0, ...q.shape.slice(1)] };
}

// A small run when executed directly.
if (import.meta.url === `file://${process.argv[1]}`) {
  const rt = await init({ backend: 'reference' });
  const [T, H, F, Fs, E] = [64, 128, 128, 128, 16];
  let seed = 1;
  const rand = (n: number, s: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * s);
  const w: MoeLayerWeights = {
    gate: rt.tensor(rand(E * H, 0.2), [E, H]),
    w1: await fp8.quantize(rt.tensor(rand(E * F * H, 0.1), [E, F, H]), { block: [128, 128] }),
    w3: await fp8.quantize(rt.tensor(rand(E * F * H, 0.1), [E, F, H]), { block: [128, 128] }),
    w2: await fp8.quantize(rt.tensor(rand(E * H * F, 0.1), [E, H, F]), { block: [128, 128] }),
    s1: await fp8.quantize(rt.tensor(rand(Fs * H, 0.1), [Fs, H]), { block: [128, 128] }),
    s3: await fp8.quantize(rt.tensor(rand(Fs * H, 0.1), [Fs, H]), { block: [128, 128] }),
    s2: await fp8.quantize(rt.tensor(rand(H * Fs, 0.1), [H, Fs]), { block: [128, 128] }),
  };
  const out = await moeLayer(rt.tensor(rand(T * H, 2), [T, H]), w, { topk: 4, nGroup: 4, topkGroup: 2, routedScalingFactor: 2.5 });
  const v = (await out.read()) as Float32Array;
  console.log(`moe layer: out ${out.describe()}, first values ${[...v.slice(0, 4)].map((x) => x.toFixed(5)).join(', ')}`);
}
