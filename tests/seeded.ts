// Seeded inputs, with no Node import: the same code generates the inputs in Node and inside the
// browser page (tests/web/), so both sides see identical values for one seed.

/** mulberry32: a small seeded generator, so a failure can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Gaussian-ish values times `scale`, with a spread of magnitudes (log-uniform over `decades`). */
export function randomF32(n: number, r: () => number, scale = 1, decades = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = (r() + r() + r() - 1.5) * 2;
    out[i] = g * scale * (decades ? 10 ** ((r() - 0.5) * decades) : 1);
  }
  return out;
}
