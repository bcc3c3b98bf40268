// rng: the trainer's seeded random numbers. xoshiro128** (Blackman & Vigna): 128 bits of state in
// four u32 words, fast in plain 32-bit integer math, and — what `--resume` needs — its whole state is
// those four numbers, saved in the checkpoint and restored exactly. Each concern (weight init, prompt
// generation, sampling, evaluation) owns its own stream derived from (seed, stream name), so that
// drawing more numbers for one never shifts the others.

export type RngState = [number, number, number, number];

/** splitmix32: spreads one 32-bit seed over the four state words (xoshiro must not start all-zero). */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** FNV-1a of a stream name, so `new Rng(seed, 'sample')` and `new Rng(seed, 'init')` differ. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

export class Rng {
  #s = new Uint32Array(4);

  constructor(seed: number, stream = '') {
    const mix = splitmix32((seed >>> 0) ^ hashName(stream));
    for (let i = 0; i < 4; i++) this.#s[i] = mix();
    if ((this.#s[0]! | this.#s[1]! | this.#s[2]! | this.#s[3]!) === 0) this.#s[0] = 1;
  }

  /** The next 32 random bits as an unsigned integer. */
  u32(): number {
    const s = this.#s;
    let s0 = s[0]!, s1 = s[1]!, s2 = s[2]!, s3 = s[3]!;
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3 >>> 0, 11);
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
    return result;
  }

  /** Uniform in [0, 1) with 24 bits, so it is exactly representable as an f32 (and still < 1 there). */
  next(): number {
    return (this.u32() >>> 8) / 16777216;
  }

  /** Uniform integer in [0, n) (n ≤ 2³²; the tiny modulo bias of 2³² mod n is irrelevant here). */
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }

  /** Uniform integer in [lo, hi] inclusive. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** A standard normal (Box–Muller; two uniforms per value, no cached spare: the state stays four words). */
  normal(): number {
    const u1 = (this.u32() + 1) / 4294967297; // (0, 1): log never sees 0
    const u2 = this.u32() / 4294967296;
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** The state, to save (four u32 words). */
  get state(): RngState {
    return [this.#s[0]!, this.#s[1]!, this.#s[2]!, this.#s[3]!];
  }

  /** Restores a saved state. */
  set state(s: RngState) {
    if (!Array.isArray(s) || s.length !== 4 || !s.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32)) {
      throw new Error(`Rng.state: expected four u32 words, got ${JSON.stringify(s)}`);
    }
    this.#s.set(s);
  }
}
