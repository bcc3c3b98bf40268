// The parity cases of the browser test (tests/web.test.ts), with no Node import: the same function
// runs inside the page on the bundle's backends (tests/web/page.ts) and in Node on the reference
// backend, from the same seed, and the outputs are compared in Node. A case belongs to a kernel
// family and runs where the backend has that family (so webgpu's gemm joins once it lands).

import type * as Api from '../../src/web.js';
import { randomF32, rng } from '../seeded.js';

/** What a case needs from an entry point (src/index.ts in Node, hotpaths/web in the page). */
export type Lib = Pick<typeof Api, 'fp8' | 'gemm' | 'logprob' | 'grpo' | 'toBf16'>;
export type Runtime = Api.Runtime;
export type Family = 'fp8' | 'gemm' | 'logprob' | 'grpo';
export type Outputs = Record<string, Uint8Array | Uint16Array | Float32Array | Int32Array>;

export interface WebCase {
  family: Family;
  name: string;
  /**
   * 'exact': every output bit-exact; 'gemm': output `d` within tol·S (S from `bound`), bf16 rounding
   * allowed when `bf16`; 'close': every output within 1e-4·|want| + 1e-5·max|want| (f32 kernels
   * against the f64 reference), NaN where the reference has NaN.
   */
  compare: 'exact' | 'gemm' | 'close';
  bf16?: boolean;
  run(lib: Lib, rt: Runtime, seed: number): Promise<Outputs>;
  /** gemm: S[i] = Σ_k |a·sa|·|b·sb| per output element, computed on the reference runtime. */
  bound?(lib: Lib, rt: Runtime, seed: number): Promise<Float64Array>;
}

/** FNV-1a over bytes: the page and Node report it for their inputs, so a divergence is named as such. */
export function hashBytes(a: ArrayBufferView): number {
  const u = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i]!, 0x01000193) >>> 0;
  return h;
}

/** Values that hit every encoder rule (zeros, NaN, infinities, huge, tiny), then a wide random spread. */
function fp8Inputs(seed: number, n: number): Float32Array {
  const x = randomF32(n, rng(seed), 1, 12);
  const specials = [0, -0, NaN, Infinity, -Infinity, 448, -448, 449, 57344, 1e30, -1e-30, 2 ** -9, 2 ** -10, 2 ** -17];
  specials.forEach((v, i) => (x[i * 7] = v));
  return x;
}

async function readAll(ts: Record<string, { read(): Promise<unknown> }>): Promise<Outputs> {
  const out: Outputs = {};
  for (const [k, t] of Object.entries(ts)) out[k] = (await t.read()) as Outputs[string];
  return out;
}

const fp8Cases: WebCase[] = [
  ...(['e4m3', 'e5m2'] as const).flatMap((format): WebCase[] => [
    {
      family: 'fp8', name: `encode ${format}`, compare: 'exact',
      async run(lib, rt, seed) {
        const x = fp8Inputs(seed, 4099);
        return { input: Int32Array.of(hashBytes(x)), q: (await (await lib.fp8.encode(rt.tensor(x, [x.length]), format)).read()) as Uint8Array };
      },
    },
    {
      family: 'fp8', name: `decode ${format}`, compare: 'exact',
      async run(lib, rt, seed) {
        const r = rng(seed);
        const codes = Uint8Array.from({ length: 256 + 1001 }, (_, i) => (i < 256 ? i : Math.floor(r() * 256)));
        return { out: (await (await lib.fp8.decode(rt.tensor(codes, [codes.length], `fp8${format}`))).read()) as Float32Array };
      },
    },
  ]),
  ...([
    { name: 'quantize 1x128 f32 e4m3', shape: [33, 300], block: [1, 128], dtype: 'f32', format: 'e4m3' },
    { name: 'quantize 1x128 bf16 e4m3', shape: [17, 256], block: [1, 128], dtype: 'bf16', format: 'e4m3' },
    { name: 'quantize 128x128 f32 e4m3', shape: [130, 260], block: [128, 128], dtype: 'f32', format: 'e4m3' },
    { name: 'quantize 1x128 f32 e5m2 ue8m0', shape: [9, 384], block: [1, 128], dtype: 'f32', format: 'e5m2', ue8m0: true },
  ] as const).map((c): WebCase => ({
    family: 'fp8', name: c.name, compare: 'exact',
    async run(lib, rt, seed) {
      const [M, K] = c.shape;
      const x = randomF32(M * K, rng(seed), 3, 6);
      const xt = c.dtype === 'bf16' ? rt.tensor(lib.toBf16(x), [M, K], 'bf16') : rt.tensor(x, [M, K]);
      const q = await lib.fp8.quantize(xt, { block: c.block, format: c.format, ue8m0: 'ue8m0' in c });
      return { input: Int32Array.of(hashBytes(x)), ...(await readAll({ data: q.data, scales: q.scales, back: await lib.fp8.dequantize(q) })) };
    },
  })),
];

/** A [rows, K] (or `aShape`; 1×128 scales) and G weights [G, N, K] (128×128), quantized on `rt`. */
async function gemmOperands(lib: Lib, rt: Runtime, seed: number, rows: number, G: number, N: number, K: number, aShape: number[] = [rows, K]) {
  const r = rng(seed);
  const a = await lib.fp8.quantize(rt.tensor(randomF32(rows * K, r, 1, 2), aShape), { block: [1, 128] });
  const b = await lib.fp8.quantize(rt.tensor(randomF32(G * N * K, r, 1, 2), G === 1 ? [N, K] : [G, N, K]), { block: [128, 128] });
  return { a, b, c: randomF32(rows * N, r, 4) };
}

/** S for D = A·B[g]ᵀ from the dequantized operands; a row with group −1 gets S = 0 (its output must be exactly 0). */
async function gemmBound(lib: Lib, ops: Awaited<ReturnType<typeof gemmOperands>>, rows: number, N: number, K: number, groupOf: (row: number) => number): Promise<Float64Array> {
  const A = (await (await lib.fp8.dequantize(ops.a)).read()) as Float32Array;
  const B = (await (await lib.fp8.dequantize(ops.b)).read()) as Float32Array;
  const S = new Float64Array(rows * N);
  for (let i = 0; i < rows; i++) {
    const g = groupOf(i);
    if (g < 0) continue;
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += Math.abs(A[i * K + k]! * B[(g * N + n) * K + k]!);
      S[i * N + n] = s;
    }
  }
  return S;
}

/** Contiguous MoE layout: groups of `sizes` rows, each padded to a multiple of 128 with −1 rows. */
function contiguousIndex(sizes: number[]): Int32Array {
  const gi: number[] = [];
  sizes.forEach((s, g) => {
    for (let i = 0; i < Math.ceil(s / 128) * 128; i++) gi.push(i < s ? g : -1);
  });
  return Int32Array.from(gi);
}

const CONTIG = [130, 0, 61];
const MASKED = { G: 2, Mmax: 40, maskedM: [17, 40] };

const gemmCases: WebCase[] = [
  ...(['bf16', 'f32'] as const).map((out): WebCase => ({
    family: 'gemm', name: `fp8 ${out} out${out === 'f32' ? ' + c' : ''}`, compare: 'gemm', bf16: out === 'bf16',
    async run(lib, rt, seed) {
      const o = await gemmOperands(lib, rt, seed, 70, 1, 136, 300);
      const c = out === 'f32' ? rt.tensor(o.c, [70, 136]) : undefined;
      return { d: (await (await lib.gemm.fp8(o.a, o.b, { out, ...(c ? { c } : {}) })).read()) as Float32Array | Uint16Array };
    },
    async bound(lib, rt, seed) {
      return gemmBound(lib, await gemmOperands(lib, rt, seed, 70, 1, 136, 300), 70, 136, 300, () => 0);
    },
  })),
  {
    family: 'gemm', name: 'fp8GroupedContiguous', compare: 'gemm', bf16: true,
    async run(lib, rt, seed) {
      const gi = contiguousIndex(CONTIG);
      const o = await gemmOperands(lib, rt, seed, gi.length, 3, 128, 256);
      return { d: (await (await lib.gemm.fp8GroupedContiguous(o.a, o.b, rt.tensor(gi, [gi.length], 'i32'))).read()) as Uint16Array };
    },
    async bound(lib, rt, seed) {
      const gi = contiguousIndex(CONTIG);
      return gemmBound(lib, await gemmOperands(lib, rt, seed, gi.length, 3, 128, 256), gi.length, 128, 256, (row) => gi[row]!);
    },
  },
  {
    family: 'gemm', name: 'fp8GroupedMasked', compare: 'gemm', bf16: true,
    async run(lib, rt, seed) {
      const { G, Mmax, maskedM } = MASKED;
      const o = await gemmOperands(lib, rt, seed, G * Mmax, G, 128, 200, [G, Mmax, 200]);
      return { d: (await (await lib.gemm.fp8GroupedMasked(o.a, o.b, rt.tensor(Int32Array.from(maskedM), [G], 'i32'))).read()) as Uint16Array };
    },
    async bound(lib, rt, seed) {
      const { G, Mmax, maskedM } = MASKED;
      const o = await gemmOperands(lib, rt, seed, G * Mmax, G, 128, 200, [G, Mmax, 200]);
      return gemmBound(lib, o, G * Mmax, 128, 200, (row) => (row % Mmax < maskedM[Math.floor(row / Mmax)]! ? Math.floor(row / Mmax) : -1));
    },
  },
  ...([false, true] as const).map((transA): WebCase => ({
    family: 'gemm', name: `matmul f32${transA ? ' transA, transB false' : ''}`, compare: 'gemm',
    async run(lib, rt, seed) {
      const r = rng(seed);
      const [M, N, K] = [37, 70, 150];
      const a = rt.tensor(randomF32(M * K, r), transA ? [K, M] : [M, K]);
      const b = rt.tensor(randomF32(N * K, r), transA ? [K, N] : [N, K]);
      return { d: (await (await lib.gemm.matmul(a, b, { transA, transB: !transA })).read()) as Float32Array };
    },
    async bound(_lib, _rt, seed) {
      const r = rng(seed);
      const [M, N, K] = [37, 70, 150];
      const a = randomF32(M * K, r), b = randomF32(N * K, r);
      const S = new Float64Array(M * N);
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += Math.abs((transA ? a[k * M + m]! : a[m * K + k]!) * (transA ? b[k * N + n]! : b[n * K + k]!));
          S[m * N + n] = s;
        }
      }
      return S;
    },
  })),
  {
    family: 'gemm', name: 'transpose u8 and f32', compare: 'exact',
    async run(lib, rt, seed) {
      const x = randomF32(33 * 130, rng(seed));
      const bytes = new Uint8Array(x.buffer.slice(0, 31 * 17));
      return readAll({ f32: await lib.gemm.transpose(rt.tensor(x, [33, 130])), u8: await lib.gemm.transpose(rt.tensor(bytes, [31, 17], 'u8')) });
    },
  },
];

const f32Out = async (t: { read(): Promise<unknown> }) => (await t.read()) as Float32Array;

const logprobCases: WebCase[] = [
  ...([['f32', 7, 5000, 0.8], ['bf16', 5, 3001, 1]] as const).map(([dt, N, V, T]): WebCase => ({
    family: 'logprob', name: `fromLogits + backward ${dt} [${N}, ${V}], T = ${T}`, compare: 'close',
    async run(lib, rt, seed) {
      const r = rng(seed);
      const x = randomF32(N * V, r, 4);
      x[V + 3] = -Infinity;
      const z = dt === 'bf16' ? rt.tensor(lib.toBf16(x), [N, V], 'bf16') : rt.tensor(x, [N, V]);
      const y = rt.tensor(Int32Array.from({ length: N }, () => Math.floor(r() * V)), [N], 'i32');
      const f = await lib.logprob.fromLogits(z, y, { temperature: T, entropy: true });
      const g = rt.tensor(randomF32(N, r), [N]);
      const d = await lib.logprob.fromLogitsBackward(z, y, f.lse, g, { temperature: T });
      return { input: Int32Array.of(hashBytes(x)), logp: await f32Out(f.logp), lse: await f32Out(f.lse), entropy: await f32Out(f.entropy!), dlogits: await f32Out(d) };
    },
  })),
  ...(['k3', 'k3_clamped'] as const).map((est): WebCase => ({
    family: 'logprob', name: `kl ${est}`, compare: 'close',
    async run(lib, rt, seed) {
      const r = rng(seed);
      const logp = randomF32(1000, r, 3), ref = randomF32(1000, r, 3);
      for (let i = 0; i < 20; i++) ref[i] = logp[i]! + (i - 10) * 3;
      const k = await lib.logprob.kl(rt.tensor(logp, [1000]), rt.tensor(ref, [1000]), est);
      return { kl: await f32Out(k.kl), dlogp: await f32Out(k.dlogp) };
    },
  })),
];

/** GRPO inputs [B, T] near a policy's log-probs, with a ragged mask and an empty sequence. */
function grpoInputs(seed: number, B: number, T: number) {
  const r = rng(seed);
  const logp = Float32Array.from({ length: B * T }, () => -3 * r());
  const oldLogp = logp.map((v) => v + 0.4 * (r() - 0.5));
  const refLogp = logp.map((v) => v + 0.3 * (r() - 0.5));
  const adv = Float32Array.from({ length: B }, () => 2 * r() - 1);
  const mask = Float32Array.from({ length: B * T }, (_, i) => (i % T < 3 + ((i / T) | 0) ? 1 : 0));
  mask.fill(0, 0, T);
  return { r, logp, oldLogp, refLogp, adv, mask };
}

const grpoCases: WebCase[] = [
  {
    family: 'grpo', name: 'advantages (group, batch)', compare: 'close',
    async run(lib, rt, seed) {
      const r = rng(seed);
      const rewards = Float32Array.from({ length: 24 }, () => Math.round(r() * 4) / 2);
      rewards.fill(1, 4, 8);
      return {
        group: await f32Out(await lib.grpo.advantages(rt.tensor(rewards, [24]), 4)),
        batch: await f32Out(await lib.grpo.advantages(rt.tensor(rewards, [24]), 4, { scale: 'batch' })),
      };
    },
  },
  ...(['token', 'sequence'] as const).map((level): WebCase => ({
    family: 'grpo', name: `loss, level ${level}, dapo`, compare: 'close',
    async run(lib, rt, seed) {
      const [B, T] = [6, 20];
      const x = grpoInputs(seed, B, T);
      const t = (v: Float32Array, shape: number[]) => rt.tensor(v, shape);
      const l = await lib.grpo.loss({ logp: t(x.logp, [B, T]), oldLogp: t(x.oldLogp, [B, T]), refLogp: t(x.refLogp, [B, T]), advantages: t(x.adv, [B]), mask: t(x.mask, [B, T]), level, agg: 'dapo', epsHigh: 0.28 });
      return { loss: Float32Array.of(l.loss, l.stats.clipFraction, l.stats.meanKl, l.stats.meanRatio), dlogp: await f32Out(l.dlogp) };
    },
  })),
  {
    family: 'grpo', name: 'fusedLoss from bf16 logits', compare: 'close',
    async run(lib, rt, seed) {
      const [B, T, V] = [4, 6, 500];
      const x = grpoInputs(seed, B, T);
      const z = randomF32(B * T * V, x.r, 3);
      const y = Int32Array.from({ length: B * T }, () => Math.floor(x.r() * V));
      const t = (v: Float32Array, shape: number[]) => rt.tensor(v, shape);
      const f = await lib.grpo.fusedLoss({
        logits: rt.tensor(lib.toBf16(z), [B * T, V], 'bf16'), targets: rt.tensor(y, [B, T], 'i32'), oldLogp: t(x.oldLogp, [B, T]), refLogp: t(x.refLogp, [B, T]),
        advantages: t(x.adv, [B]), mask: t(x.mask, [B, T]), temperature: 0.9,
      });
      return { loss: Float32Array.of(f.loss, f.stats.clipFraction, f.stats.meanKl, f.stats.meanRatio), dlogits: await f32Out(f.dlogits) };
    },
  },
];

/** Every case, by family; the page runs a family where `rt.backend[family]` exists. */
export const WEB_CASES: WebCase[] = [...fp8Cases, ...gemmCases, ...logprobCases, ...grpoCases];

/** Input of the bring-your-own-device check: f32 values the caller writes into its own GPUBuffer (n not a multiple of 4). */
export function byoInputs(seed: number): Float32Array {
  return fp8Inputs(seed, 1001);
}
