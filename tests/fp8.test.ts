// fp8: the reference codec against hand-worked values and a brute-force nearest-value search, then
// every backend against the reference (bit-exact), quantize/dequantize error bounds, and bad inputs.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fp8, HotpathsError, init, setPoison, toBf16, fromBf16, type Tensor } from '../src/index.js';
import type { Backend, Fp8Format } from '../src/runtime/backend.js';
import { AMAX_FLOOR, decodeBits, decodeValue, encodeValue, FP8_FORMATS, fp8Quantize } from '../src/reference/fp8.js';
import { backendsUnderTest, expectWithinDivisionSlack, f32Bits, firstBitDiff, freshSeed, hex, randomF32, rng } from './helpers.js';

const FORMATS: Fp8Format[] = ['e4m3', 'e5m2'];
const ref = await init({ backend: 'reference' });
const under = await backendsUnderTest();

beforeAll(() => setPoison(true));
afterAll(() => setPoison(false));

/** Value of a code from the format's definition (independent of the bit tricks in the reference). */
function valueFromDefinition(code: number, f: Fp8Format): number {
  const { expBits, manBits, bias } = FP8_FORMATS[f];
  const s = code & 0x80 ? -1 : 1;
  const e = (code >> manBits) & ((1 << expBits) - 1);
  const m = code & ((1 << manBits) - 1);
  if (f === 'e4m3' && e === 15 && m === 7) return NaN;
  if (f === 'e5m2' && e === 31) return m === 0 ? s * Infinity : NaN;
  if (e === 0) return s * m * 2 ** (1 - bias - manBits);
  return s * (1 + m / 2 ** manBits) * 2 ** (e - bias);
}

/** Saturating round-to-nearest-even by brute force over every finite code. */
function encodeByBruteForce(x: number, f: Fp8Format): number {
  if (Number.isNaN(x)) return 0x7f;
  const max = FP8_FORMATS[f].maxFinite;
  if (x === Infinity) return f === 'e5m2' ? 0x7c : 0x7e;
  if (x === -Infinity) return f === 'e5m2' ? 0xfc : 0xfe;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.min(Math.abs(x), max);
  let best = 0;
  let bestErr = Infinity;
  for (let c = 0; c < 0x80; c++) {
    const v = valueFromDefinition(c, f);
    if (!Number.isFinite(v)) continue;
    const err = Math.abs(a - v);
    // ties go to the even code (mantissa LSB 0)
    if (err < bestErr || (err === bestErr && (c & 1) === 0)) {
      best = c;
      bestErr = err;
    }
  }
  return sign | best;
}

/** Values that exercise every rule: ±0, ties, subnormals, ±max, just above max, ±inf, NaN. */
function specialValues(f: Fp8Format): number[] {
  const out = [0, -0, NaN, -NaN, Infinity, -Infinity, 1e-30, -1e-30, 1e30, -1e30, 2 ** -149, 3.4e38];
  const { maxFinite } = FP8_FORMATS[f];
  out.push(maxFinite, -maxFinite, maxFinite * 1.0001, maxFinite * 1.03, maxFinite * 1.0625, maxFinite * 1.07, maxFinite * 2);
  // every finite code, and the midpoints between neighbours (exact ties), and just either side
  for (let c = 0; c < 0x7f; c++) {
    const v = valueFromDefinition(c, f);
    const w = valueFromDefinition(c + 1, f);
    if (!Number.isFinite(v)) continue;
    out.push(v, -v);
    if (Number.isFinite(w)) {
      const mid = (v + w) / 2;
      out.push(mid, -mid, Math.fround(mid * (1 + 2 ** -20)), Math.fround(mid * (1 - 2 ** -20)));
    }
  }
  return out.map(Math.fround);
}

/** Random f32 bit patterns over the whole range (NaNs and infinities included). */
function randomBitPatterns(n: number, r: () => number): Float32Array {
  const u = new Uint32Array(n);
  for (let i = 0; i < n; i++) u[i] = (r() * 2 ** 32) >>> 0;
  return new Float32Array(u.buffer);
}

describe('reference codec', () => {
  it('decodes every code of both formats to the value its definition gives', () => {
    for (const f of FORMATS) {
      for (let c = 0; c < 256; c++) {
        const want = valueFromDefinition(c, f);
        const got = decodeValue(c, f);
        if (Number.isNaN(want)) expect(decodeBits(c, f), `${f} ${hex(c)}`).toBe(0x7fc00000);
        else expect(Object.is(got, want), `${f} ${hex(c)}: got ${got}, want ${want}`).toBe(true);
      }
    }
  });

  it('matches hand-worked anchors', () => {
    expect(decodeValue(0x7e, 'e4m3')).toBe(448);
    expect(decodeValue(0x08, 'e4m3')).toBe(2 ** -6);
    expect(decodeValue(0x01, 'e4m3')).toBe(2 ** -9);
    expect(Object.is(decodeValue(0x80, 'e4m3'), -0)).toBe(true);
    expect(decodeValue(0x7f, 'e4m3')).toBeNaN();
    expect(decodeValue(0xff, 'e4m3')).toBeNaN();
    expect(decodeValue(0x7b, 'e5m2')).toBe(57344);
    expect(decodeValue(0x7c, 'e5m2')).toBe(Infinity);
    expect(decodeValue(0xfc, 'e5m2')).toBe(-Infinity);
    for (const c of [0x7d, 0x7e, 0x7f, 0xfd]) expect(decodeValue(c, 'e5m2')).toBeNaN();
    expect(decodeValue(0x04, 'e5m2')).toBe(2 ** -14);
    expect(decodeValue(0x01, 'e5m2')).toBe(2 ** -16);
    // encode: 1.0, a tie to even (17 lies between 16 and 18 -> 16), saturation, NaN, inf
    expect(encodeValue(1, 'e4m3')).toBe(0x38);
    expect(encodeValue(17, 'e4m3')).toBe(0x58);
    expect(encodeValue(19, 'e4m3')).toBe(0x5a); // between 18 (0x59) and 20 (0x5a): tie to even 20
    expect(encodeValue(464, 'e4m3')).toBe(0x7e); // PyTorch's cast gives NaN here; we saturate
    expect(encodeValue(-1e6, 'e4m3')).toBe(0xfe);
    expect(encodeValue(Infinity, 'e4m3')).toBe(0x7e);
    expect(encodeValue(Infinity, 'e5m2')).toBe(0x7c);
    expect(encodeValue(1e6, 'e5m2')).toBe(0x7b);
    expect(encodeValue(NaN, 'e4m3')).toBe(0x7f);
    expect(encodeValue(2 ** -10, 'e4m3')).toBe(0x00); // half the smallest subnormal: tie to 0
    expect(encodeValue(1.5 * 2 ** -10, 'e4m3')).toBe(0x01);
    expect(encodeValue(-0, 'e5m2')).toBe(0x80);
  });

  it('encodes special values and random values as a brute-force nearest-even search does', () => {
    const seed = freshSeed();
    const r = rng(seed);
    for (const f of FORMATS) {
      const xs = [...specialValues(f), ...randomF32(4000, r, 1, 14), ...randomF32(500, r, FP8_FORMATS[f].maxFinite)];
      for (const x of xs) {
        expect(encodeValue(x, f), `seed ${seed} ${f} x=${x}`).toBe(encodeByBruteForce(Math.fround(x), f));
      }
    }
  });

  it('quantize follows the scale rule (amax clamped at 1e-4, scale = amax/max, ue8m0 a power of two)', () => {
    const M = 3, K = 300;
    const r = rng(freshSeed());
    const x = randomF32(M * K, r, 10);
    x.fill(0, K, K + 128); // row 1, block 0: all zeros -> amax floor
    for (const f of FORMATS) {
      for (const ue8m0 of [false, true]) {
        const nbK = Math.ceil(K / 128);
        const data = new Uint8Array(M * K);
        const scales = new Float32Array(M * nbK);
        fp8Quantize(x, M, K, { format: f, block: [1, 128], ue8m0 }, data, scales);
        for (let m = 0; m < M; m++) {
          for (let b = 0; b < nbK; b++) {
            let amax = 0;
            for (let k = b * 128; k < Math.min(K, b * 128 + 128); k++) amax = Math.max(amax, Math.abs(x[m * K + k]!));
            const exact = Math.fround(Math.max(amax, AMAX_FLOOR) / FP8_FORMATS[f].maxFinite);
            const s = scales[m * nbK + b]!;
            if (ue8m0) {
              expect(Number.isInteger(Math.log2(s))).toBe(true);
              expect(s).toBeGreaterThanOrEqual(exact);
              expect(s / 2).toBeLessThan(exact);
            } else expect(s).toBe(exact);
          }
        }
      }
    }
  });
});

describe('reference backend: round trip and errors', () => {
  it('dequantize(quantize(x)) is within the format bound of x', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    for (const f of FORMATS) {
      for (const block of [[1, 128], [128, 128]] as const) {
        for (const [M, K] of [[1, 1], [1, 200], [130, 300], [7, 128]] as const) {
          const x = randomF32(M * K, r, 3, 6);
          const q = await fp8.quantize(ref.tensor(x, [M, K]), { format: f, block });
          const y = (await (await fp8.dequantize(q)).read()) as Float32Array;
          const s = (await q.scales.read()) as Float32Array;
          const { manBits, bias } = FP8_FORMATS[f];
          const nbK = Math.ceil(K / 128);
          for (let i = 0; i < M * K; i++) {
            const m = Math.floor(i / K), k = i % K;
            const scale = s[Math.floor(m / block[0]) * nbK + Math.floor(k / 128)]!;
            // half an fp8 ulp relative, or half the smallest subnormal step (times the scale), plus f32 slop
            const bound = Math.abs(x[i]!) * 2 ** -(manBits + 1) + scale * 2 ** (-bias - manBits) + Math.abs(x[i]!) * 2 ** -22;
            expect(Math.abs(y[i]! - x[i]!), `seed ${seed} ${f} ${block} [${M},${K}] i=${i}`).toBeLessThanOrEqual(bound);
          }
        }
      }
    }
  });

  it('a block with NaN or infinity gets a NaN scale and NaN codes, or throws with nonFinite: throw', async () => {
    const x = new Float32Array(2 * 256).fill(1);
    x[5] = NaN; // row 0, block 0
    x[256 + 200] = Infinity; // row 1, block 1
    const t = ref.tensor(x, [2, 256]);
    const q = await fp8.quantize(t);
    const s = (await q.scales.read()) as Float32Array;
    expect([...s].map(Number.isNaN)).toEqual([true, false, false, true]);
    const d = (await q.data.read()) as Uint8Array;
    expect(d.slice(0, 128).every((c) => c === 0x7f)).toBe(true);
    expect(d.slice(128, 256).every((c) => c === 0x7e)).toBe(true); // 1 is the block amax: it maps to 448
    await expect(fp8.quantize(t, { nonFinite: 'throw' })).rejects.toMatchObject({ code: 'E_NONFINITE' });
  });

  it('rejects bad inputs with a clear error', async () => {
    const x = ref.tensor(new Float32Array(8), [2, 4]);
    const cases: [() => Promise<unknown>, string, RegExp][] = [
      [() => fp8.encode(new Float32Array(4) as never), 'E_ARG', /expected a Tensor/],
      [() => fp8.encode(x, 'e3m4' as never), 'E_ARG', /'e4m3' or 'e5m2'/],
      [() => fp8.encode(ref.tensor(new Int32Array(4), [4])), 'E_DTYPE', /f32/],
      [() => fp8.decode(x), 'E_DTYPE', /fp8e4m3/],
      [() => fp8.decode(ref.tensor(new Uint8Array(4), [4])), 'E_ARG', /plain u8/],
      [() => fp8.quantize(ref.tensor(new Float32Array(8), [8])), 'E_SHAPE', /2-D/],
      [() => fp8.quantize(ref.tensor(new Float32Array(0), [0, 128])), 'E_EMPTY', /at least one/],
      [() => fp8.quantize(x, { block: [64, 128] }), 'E_ARG', /\[1, 128\] or \[128, 128\]/],
      [() => fp8.quantize(x, { ue8m0: 'yes' as never }), 'E_ARG', /boolean/],
      [() => fp8.quantize(ref.tensor(new Int32Array(8), [2, 4])), 'E_DTYPE', /f32 or bf16/],
    ];
    for (const [fn, code, msg] of cases) {
      const err = await fn().then(() => undefined, (e: unknown) => e);
      expect(err, String(fn)).toBeInstanceOf(HotpathsError);
      expect((err as HotpathsError).code).toBe(code);
      expect((err as HotpathsError).message).toMatch(msg);
    }
    const q = await fp8.quantize(ref.tensor(new Float32Array(2 * 256).fill(1), [2, 256]));
    await expect(fp8.dequantize({ ...q, scales: ref.tensor(new Float32Array(3), [1, 3]) })).rejects.toMatchObject({ code: 'E_SHAPE' });
    x.dispose();
    await expect(fp8.encode(x)).rejects.toMatchObject({ code: 'E_DISPOSED' });
    expect(() => ref.tensor(new Float32Array(3), [2, 2])).toThrow(/3 elements but shape \[2, 2\] holds 4/);
  });
});

// ---------------------------------------------------------------- every backend against the reference

/** Shapes for quantize: M = 1, ragged K (not a multiple of 128 nor of 4), K = 1, several row blocks. */
const QUANT_SHAPES: [number, number][] = [[1, 1], [1, 5], [1, 128], [3, 200], [128, 128], [130, 257], [300, 1000], [1, 4099]];

for (const b of under) {
  describe.skipIf(!!b.skip)(`${b.name}${b.skip ? ` (skipped: ${b.skip})` : ''}`, () => {
    const be = b.backend as Backend;
    /** WGSL's f32 division may be off by 2.5 ulp on GPUs (exact on lavapipe); the others are IEEE. */
    const exactDivision = be?.name !== 'webgpu';

    it('encode is bit-exact with the reference (special values, random bit patterns, ragged n)', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      for (const f of FORMATS) {
        for (const n of [1, 3, 4, 5, 1000, (1 << 18) + 3]) {
          const x = randomBitPatterns(n, r);
          const sv = specialValues(f);
          for (let i = 0; i < Math.min(n, sv.length); i++) x[(i * 7919) % n] = sv[i]!;
          const want = (await (await fp8.encode(ref.tensor(x, [n]), f)).read()) as Uint8Array;
          const got = (await (await fp8.encode(be.fromHost(x, 'f32', [n]), f)).read()) as Uint8Array;
          const i = firstBitDiff(got, want);
          expect(i, `seed ${seed} ${f} n=${n}: x=${x[i]} (${hex(f32Bits(x)[i])}) got ${hex(got[i])} want ${hex(want[i])}`).toBe(-1);
        }
        const sv = new Float32Array(specialValues(f));
        const want = (await (await fp8.encode(ref.tensor(sv, [sv.length]), f)).read()) as Uint8Array;
        const got = (await (await fp8.encode(be.fromHost(sv, 'f32', [sv.length]), f)).read()) as Uint8Array;
        expect(firstBitDiff(got, want)).toBe(-1);
      }
    });

    it('decode is bit-exact for all 256 codes of both formats (and ragged lengths)', async () => {
      for (const f of FORMATS) {
        for (const n of [256, 257, 1023]) {
          const codes = new Uint8Array(n).map((_, i) => (i * 37 + (n > 256 ? 11 : 0)) & 0xff);
          if (n === 256) codes.forEach((_, i) => (codes[i] = i));
          const dt = f === 'e4m3' ? 'fp8e4m3' : 'fp8e5m2';
          const want = (await (await fp8.decode(ref.tensor(codes, [n], dt))).read()) as Float32Array;
          const got = (await (await fp8.decode(be.fromHost(codes, dt, [n]))).read()) as Float32Array;
          const i = firstBitDiff(f32Bits(got), f32Bits(want));
          expect(i, `${f} code ${hex(codes[i])}: got ${got[i]} want ${want[i]}`).toBe(-1);
        }
      }
    });

    it('quantize and dequantize match the reference (f32 and bf16, both blocks, both formats, ue8m0)', async () => {
      const seed = freshSeed();
      const r = rng(seed);
      for (const [M, K] of QUANT_SHAPES) {
        for (const block of [[1, 128], [128, 128]] as const) {
          for (const f of FORMATS) {
            for (const ue8m0 of [false, true]) {
              for (const dtype of ['f32', 'bf16'] as const) {
                const tag = `seed ${seed} [${M},${K}] ${block} ${f} ue8m0=${ue8m0} ${dtype}`;
                const raw = randomF32(M * K, r, 2, 8);
                if (M * K > 3) raw[(M * K) >> 1] = NaN; // one non-finite block
                const x = dtype === 'bf16' ? toBf16(raw) : raw;
                const xr = ref.tensor(x, [M, K], dtype);
                const xb = be.fromHost(x, dtype, [M, K]);
                const qr = await fp8.quantize(xr, { format: f, block, ue8m0 });
                const qb = await fp8.quantize(xb, { format: f, block, ue8m0 });
                const [sr, sb] = [(await qr.scales.read()) as Float32Array, (await qb.scales.read()) as Float32Array];
                const [dr, db] = [(await qr.data.read()) as Uint8Array, (await qb.data.read()) as Uint8Array];
                if (exactDivision) {
                  expect(firstBitDiff(f32Bits(sb), f32Bits(sr)), `${tag} scales`).toBe(-1);
                  const i = firstBitDiff(db, dr);
                  expect(i, `${tag} data[${i}] got ${hex(db[i])} want ${hex(dr[i])}`).toBe(-1);
                } else {
                  expectWithinDivisionSlack(tag, dtype === 'bf16' ? fromBf16(x as Uint16Array) : (x as Float32Array), M, K, block[0], f, sr, sb, dr, db);
                }
                // dequantize the backend's own codes on both sides: must agree bit for bit
                const back = (await (await fp8.dequantize(qb)).read()) as Float32Array;
                const qbOnRef = { ...qb, data: ref.tensor(db, [M, K], qb.data.dtype), scales: ref.tensor(sb, qb.scales.shape as number[]) };
                const backRef = (await (await fp8.dequantize(qbOnRef)).read()) as Float32Array;
                expect(firstBitDiff(f32Bits(back), f32Bits(backRef)), `${tag} dequantize`).toBe(-1);
                for (const t of [xr, xb, qr.data, qr.scales, qb.data, qb.scales]) t.dispose();
              }
            }
          }
        }
      }
    });

    it('rejects tensors from another backend', async () => {
      const q = await fp8.quantize(be.fromHost(new Float32Array(256).fill(1), 'f32', [2, 128]));
      await expect(fp8.dequantize({ ...q, scales: ref.tensor(new Float32Array(2), [2, 1]) })).rejects.toMatchObject({ code: 'E_DEVICE' });
    });

    it('moves tensors to and from the reference backend unchanged', async () => {
      const x = randomBitPatterns(1001, rng(freshSeed()));
      const t = be.fromHost(x, 'f32', [1001]);
      const onRef = await t.to('reference');
      expect(firstBitDiff(f32Bits((await onRef.read()) as Float32Array), f32Bits(x))).toBe(-1);
      const back = await onRef.to(be.name);
      expect(firstBitDiff(f32Bits((await back.read()) as Float32Array), f32Bits(x))).toBe(-1);
      const u8 = new Uint8Array([1, 2, 3, 4, 5]);
      expect([...((await be.fromHost(u8, 'u8', [5]).read()) as Uint8Array)]).toEqual([1, 2, 3, 4, 5]);
    });
  });
}

export type { Tensor };
