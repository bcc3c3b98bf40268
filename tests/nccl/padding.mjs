// expertX's padding rows, for the checks that compare dispatch results across paths: the contract
// leaves them unspecified (the symmetric windows path does not write them), so a comparison masks them.
// Plain JS, so that tests/nccl/dispatch-check.mjs (run by `hotpaths launch`, no TS) and
// tests/moe-nccl.test.ts share one definition.

/**
 * The bytes of t (expertX's rows or its scales, [P, ·]) with every row q whose rowExpert[q] is −1
 * (padding) zeroed. rowExpert has Pmax ≥ P entries; the row width comes from t's own P rows.
 * @param {import('../../src/index.js').Tensor} t
 * @param {Int32Array} rowExpert
 * @returns {Promise<Uint8Array>}
 */
export async function unpaddedBytes(t, rowExpert) {
  const b = new Uint8Array(/** @type {ArrayBufferView} */ (await t.read()).buffer, 0, t.bytes);
  const P = t.shape[0] ?? 0, w = P > 0 ? b.length / P : 0;
  for (let q = 0; q < P; q++) if ((rowExpert[q] ?? 0) < 0) b.fill(0, q * w, (q + 1) * w);
  return b;
}
