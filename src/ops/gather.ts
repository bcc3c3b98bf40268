// Row gathers of FP8 operands through a list of pair ids, shared by the ops: moe's dispatch puts the
// received rows into expert order with them, and gemm.fp8GroupedContiguous materialises its gathered
// A rows with them on backends whose GEMM kernel does not read A through the index itself.
// Internal (not re-exported by src/index.ts).

import type { MoeKernels } from '../runtime/backend.js';
import type { Tensor } from '../tensor.js';
import { decode, encode, type QuantizedTensor } from './fp8.js';

/**
 * The rows a gather produces: row p (p < padded) is source row floor(sortedPairs[p] / topk), an
 * all-zero row for an id outside [0, T·topk) (T = the source's rows: the sentinel T·topk, or
 * negative). sortedPairs: i32 [≥ padded]. moe's Alignment is one.
 */
export interface RowOrder {
  sortedPairs: Tensor;
  topk: number;
  padded: number;
}

/**
 * FP8 codes [T, H] into the order `a` gives, [padded, H], bit-exact: the backend's permuteBytes, or
 * (without one) decode -> permute (f32) -> encode, exact because every code's value is an f32 that
 * encodes back to the same code (NaN codes come back as 0x7F).
 */
async function permuteCodes(kernels: MoeKernels, codes: Tensor, a: RowOrder): Promise<Tensor> {
  const b = codes.backend;
  const H = codes.shape[1]!;
  const out = b.empty('fp8e4m3', [a.padded, H]);
  if (a.padded === 0) return out;
  if (kernels.permuteBytes) {
    await kernels.permuteBytes(codes, a.sortedPairs, a.topk, out);
    return out;
  }
  out.dispose();
  const f = await decode(codes);
  const g = b.empty('f32', [a.padded, H]);
  try {
    await kernels.permute(f, a.sortedPairs, a.topk, null, g);
    return await encode(g, 'e4m3');
  } finally {
    f.dispose();
    g.dispose();
  }
}

/**
 * An E4M3 operand with 1×128 scales, q: codes [T, K] and scales f32 [T, KB], gathered into the order
 * `a` gives: codes [padded, K] (permuteCodes) and scales [padded, KB] (the f32 permute), zero rows
 * (codes 0, scales 0) for the ids outside [0, T·topk). The caller disposes the result.
 */
export async function gatherQuantized(kernels: MoeKernels, q: QuantizedTensor, a: RowOrder): Promise<QuantizedTensor> {
  const K = q.data.shape[1]!;
  const data = await permuteCodes(kernels, q.data, a);
  const scales = q.scales.backend.empty('f32', [a.padded, q.scales.shape[1]!]);
  try {
    if (a.padded > 0 && scales.size > 0) await kernels.permute(q.scales, a.sortedPairs, a.topk, null, scales);
  } catch (e) {
    data.dispose();
    scales.dispose();
    throw e;
  }
  return { data, scales, format: q.format, block: q.block, ue8m0: q.ue8m0, shape: [a.padded, K] };
}
