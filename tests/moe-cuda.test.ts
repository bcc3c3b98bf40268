// The cuda moe kernels at DeepSeek-V3's sizes (256 experts, 8 groups, 4 kept, top-8; hidden 7168),
// called through the kernel contract (backend.moe) with the same inputs as the reference kernels:
// route bit-exact (random logits, and logits on a coarse grid full of exact ties, with and without
// bias), layout and align exact (with a capacity, with bad indices: counted, never touched, and the
// same bits on a second run), the aux loss and the row movers against the reference; outputs
// poisoned first; dispatch's device path (plan, pack with FP8 quantization, receive layout, scatter,
// unpermuteRows) kernel by kernel and through dispatch/combine over a LocalGroup, bit-exact against the
// reference, with and without fixed slots (maxTokensPerRank; the plan's slotRows, a rank past its slots). tests/moe.test.ts covers the smaller shapes and the public ops; this file skips without a
// CUDA device.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromBf16, HotpathsError, init, moe, setPoison, toBf16, type HostArray, type Tensor } from '../src/index.js';
import { dispatchRowLayout, type Backend, type MoeRouteParams } from '../src/runtime/backend.js';
import { alignRowsMax } from '../src/reference/moe.js';
import { backendsUnderTest, freshSeed, gatherRowBytes, rng, sameBytes, thrown } from './helpers.js';

const ref = (await init({ backend: 'reference' })).backend;
const cuda = (await backendsUnderTest()).find((u) => u.name === 'cuda')!;

beforeAll(() => setPoison(true));
afterAll(() => setPoison(false));

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}
/** Element for element, NaN matching NaN; arrays of one type with the same bytes pass at once (sameBytes). */
function same(got: ArrayLike<number>, want: ArrayLike<number>, tag: string): void {
  expect(got.length, `${tag}: length`).toBe(want.length);
  if (ArrayBuffer.isView(got) && ArrayBuffer.isView(want) && got.constructor === want.constructor && sameBytes(got, want)) return;
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) expect.fail(`${tag}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}
function close(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs: number, tag: string): void {
  expect(got.length, `${tag}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= rel * Math.abs(want[i]!) + abs)) expect.fail(`${tag}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}
const read = (t: Tensor): Promise<HostArray> => t.read();

/** Runs one kernel on both backends: `make(b)` builds inputs and outputs on backend b, `run` calls the kernel. */
async function both<O extends Record<string, Tensor>>(make: (b: Backend) => O, run: (b: Backend, o: O) => unknown): Promise<[O, O, unknown, unknown]> {
  const w = make(ref), g = make(cuda.backend!);
  const rw = await run(ref, w), rg = await run(cuda.backend!, g);
  return [w, g, rw, rg];
}

describe.skipIf(!!cuda.skip)(`cuda moe kernels at V3 sizes${cuda.skip ? ` (skipped: ${cuda.skip})` : ''}`, { timeout: 120_000 }, () => {
  const V3: MoeRouteParams = { scoring: 'sigmoid', topk: 8, nGroup: 8, topkGroup: 4, groupScore: 'top2', normTopkProb: true, routedScalingFactor: 2.5 };

  for (const [name, p, grid, withBias] of [
    ['V3 random logits, bias', V3, 0, true],
    ['V3 logits on a 0.25 grid (exact ties everywhere), no bias', V3, 0.25, false],
    ['V3 tied logits and a tied bias', V3, 0.5, true],
    ['softmax, max group score, no normalisation', { ...V3, scoring: 'softmax', groupScore: 'max', normTopkProb: false, routedScalingFactor: 1 } as MoeRouteParams, 0, true],
    ['no group limit, k = 1', { ...V3, topk: 1, nGroup: 1, topkGroup: 1 }, 0, false],
  ] as const) {
    it(`route: ${name}: indices, weights and scores bit-exact; routeBackward to 1e-6`, async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const T = 777, E = 256, k = p.topk;
      const z = Float32Array.from({ length: T * E }, () => (grid ? Math.round(normal(r) * 2 / grid) * grid : normal(r) * 2));
      z[5 * E + 17] = NaN; // one NaN logit: NaN weights for token 5, valid indices
      const bias = Float32Array.from({ length: E }, () => (grid ? Math.round((r() - 0.5) / grid) * grid * 0.1 : (r() - 0.5) * 0.1));
      const dW = Float32Array.from({ length: T * k }, () => normal(r));
      const dS = Float32Array.from({ length: T * E }, () => normal(r) * 0.1);
      const [w, g] = await both(
        (b) => ({ z: b.fromHost(z, 'f32', [T, E]), bias: b.fromHost(bias, 'f32', [E]), s: b.empty('f32', [T, E]), wt: b.empty('f32', [T, k]), idx: b.empty('i32', [T, k]) }),
        (b, o) => b.moe!.route(o.z, withBias ? o.bias : null, p, o.s, o.wt, o.idx),
      );
      const tag = `seed ${seed} ${name}`;
      const wi = await read(w.idx), gi = await read(g.idx);
      same(gi, wi, `${tag} indices`);
      same(await read(g.wt), await read(w.wt), `${tag} weights`);
      same(await read(g.s), await read(w.s), `${tag} scores`);
      for (let j = 0; j < k; j++) expect(Number.isNaN((await read(g.wt))[5 * k + j])).toBe(true);
      // the backward and the aux loss on the reference's scores (token 5's NaN scores replaced)
      const sc = Float32Array.from(await read(w.s), (v) => (Number.isNaN(v) ? 0.5 : v));
      const [bw, bg] = await both(
        (b) => ({ s: b.fromHost(sc, 'f32', [T, E]), idx: b.fromHost(wi, 'i32', [T, k]), dw: b.fromHost(dW, 'f32', [T, k]), ds: b.fromHost(dS, 'f32', [T, E]), dz: b.empty('f32', [T, E]) }),
        (b, o) => b.moe!.routeBackward(o.s, o.idx, o.dw, o.ds, p, o.dz),
      );
      close(await read(bg.dz), await read(bw.dz), 1e-6, 1e-9, `${tag} dLogits`);
      const [aw, ag, lw, lg] = await both(
        (b) => ({ s: b.fromHost(sc, 'f32', [T, E]), idx: b.fromHost(wi, 'i32', [T, k]), ds: b.empty('f32', [T, E]) }),
        (b, o) => b.moe!.auxLoss(o.s, o.idx, 37, 0.001, o.ds), // T = 777 = 21 sequences of 37
      );
      expect(Math.abs((lg as number) - (lw as number))).toBeLessThan(1e-12 + 1e-9 * Math.abs(lw as number));
      close(await read(ag.ds), await read(aw.ds), 1e-6, 1e-12, `${tag} aux dScores`);
    });
  }

  for (const [T, k, E, R, bs, cap, bad] of [
    [4096, 8, 256, 8, 128, 0, false],
    [4096, 8, 256, 8, 128, 100, false],
    [3001, 6, 160, 4, 64, 0, true],
    [16384, 8, 256, 8, 128, 0, false],
  ] as const) {
    it(`layout and align T=${T} k=${k} E=${E} bs=${bs}${cap ? ` capacity ${cap}` : ''}${bad ? ' with bad indices' : ''}: exact, and the same bits twice`, async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const idx = new Int32Array(T * k);
      for (let t = 0; t < T; t++) {
        const chosen = new Set<number>();
        while (chosen.size < k) chosen.add(r() < 0.2 ? Math.floor(r() * 4) : Math.floor(r() * E)); // a few hot experts
        [...chosen].forEach((e, j) => (idx[t * k + j] = e));
      }
      const nBad = bad ? 50 : 0;
      for (let i = 0; i < nBad; i++) idx[Math.floor(r() * T * k)] = r() < 0.5 ? -1 - Math.floor(r() * 5) : E + Math.floor(r() * 5);
      const tag = `seed ${seed} T=${T}`;
      const Pmax = alignRowsMax(T * k, E, bs);
      const make = (b: Backend) => ({
        idx: b.fromHost(idx, 'i32', [T, k]), sorted: b.empty('i32', [Pmax]), blockExpert: b.empty('i32', [Pmax / bs]), rowExpert: b.empty('i32', [Pmax]),
        pairPos: b.empty('i32', [T, k]), counts: b.empty('i32', [E]), info: b.empty('i32', [4]),
        perRank: b.empty('i32', [R]), perExpert: b.empty('i32', [E]), inRank: b.empty('u8', [T, R]),
      });
      const run = (b: Backend, o: ReturnType<typeof make>) => {
        b.moe!.layout(o.idx, E, R, o.perRank, o.perExpert, o.inRank);
        return b.moe!.align(o.idx, E, bs, cap, o.sorted, o.blockExpert, o.rowExpert, o.pairPos, o.counts, o.info);
      };
      const [w, g] = await both(make, run);
      // bad ids: the reference kernel skips them the same way (the ops never pass them)
      const infoG = await read(g.info);
      same(infoG, await read(w.info), `${tag} info`);
      if (bad) expect(infoG[2]).toBe(idx.filter((e) => e < 0 || e >= E).length);
      for (const n of ['sorted', 'blockExpert', 'rowExpert', 'pairPos', 'counts', 'perRank', 'perExpert', 'inRank'] as const) same(await read(g[n]), await read(w[n]), `${tag} ${n}`);
      // determinism: a second run gives the same bits
      const g2 = make(cuda.backend!);
      await run(cuda.backend!, g2);
      for (const n of ['sorted', 'blockExpert', 'rowExpert', 'pairPos', 'counts', 'info', 'perRank', 'perExpert', 'inRank'] as const) same(await read(g2[n]), await read(g[n]), `${tag} second run ${n}`);
    });
  }

  it('permute / permuteBytes / unpermute / unpermuteWeightGrad at H = 7168 (bf16 and f32, weighted, mixed dtypes)', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    const T = 40, k = 8, E = 32, bs = 128, H = 7168;
    const idx = new Int32Array(T * k);
    for (let t = 0; t < T; t++) {
      const c = new Set<number>();
      while (c.size < k) c.add(Math.floor(r() * E));
      [...c].forEach((e, j) => (idx[t * k + j] = e));
    }
    const Pmax = alignRowsMax(T * k, E, bs);
    const sorted = new Int32Array(Pmax), pos = new Int32Array(T * k), info = new Int32Array(4);
    const a = ref.fromHost(idx, 'i32', [T, k]);
    const tt = { s: ref.empty('i32', [Pmax]), be: ref.empty('i32', [Pmax / bs]), re: ref.empty('i32', [Pmax]), pos: ref.empty('i32', [T, k]), cnt: ref.empty('i32', [E]), info: ref.empty('i32', [4]) };
    ref.moe!.align(a, E, bs, 0, tt.s, tt.be, tt.re, tt.pos, tt.cnt, tt.info);
    sorted.set(await read(tt.s));
    pos.set(await read(tt.pos));
    info.set(await read(tt.info));
    const P = info[0]!;
    const xf = Float32Array.from({ length: T * H }, () => normal(r));
    const wts = Float32Array.from({ length: T * k }, () => r());
    for (const [xd, od] of [['bf16', 'bf16'], ['f32', 'f32'], ['bf16', 'f32'], ['f32', 'bf16']] as const) {
      const tag = `seed ${seed} ${xd}->${od}`;
      const xh = xd === 'bf16' ? toBf16(xf) : xf;
      for (const weighted of [false, true]) {
        const [w, g] = await both(
          (b) => ({ x: b.fromHost(xh, xd, [T, H]), rows: b.fromHost(sorted, 'i32', [Pmax]), wt: b.fromHost(wts, 'f32', [T * k]), out: b.empty(od, [P, H]) }),
          (b, o) => b.moe!.permute(o.x, o.rows, k, weighted ? o.wt : null, o.out),
        );
        const gv = await read(g.out), wv = await read(w.out);
        same(gv, wv, `${tag} permute weighted ${weighted}`);
        const [uw, ug] = await both(
          (b) => ({ y: b.fromHost(wv, od, [P, H]), pos: b.fromHost(pos, 'i32', [T, k]), wt: b.fromHost(wts, 'f32', [T, k]), out: b.empty(xd, [T, H]) }),
          (b, o) => b.moe!.unpermute(o.y, o.pos, weighted ? o.wt : null, o.out),
        );
        const asF32 = async (t: Tensor) => (xd === 'bf16' ? fromBf16((await read(t)) as Uint16Array) : await read(t));
        const ugv = await asF32(ug.out), uwv = await asF32(uw.out);
        close(ugv, uwv, xd === 'bf16' ? 8e-3 : 1e-6, 1e-6, `${tag} unpermute weighted ${weighted}`);
      }
      const yh = od === 'bf16' ? toBf16(Float32Array.from({ length: P * H }, () => normal(r))) : Float32Array.from({ length: P * H }, () => normal(r));
      const [gw, gg] = await both(
        (b) => ({ d: b.fromHost(xh, xd, [T, H]), y: b.fromHost(yh, od, [P, H]), pos: b.fromHost(pos, 'i32', [T, k]), dw: b.empty('f32', [T, k]) }),
        (b, o) => b.moe!.unpermuteWeightGrad(o.d, o.y, o.pos, o.dw),
      );
      close(await read(gg.dw), await read(gw.dw), 1e-6, 1e-6, `${tag} unpermuteWeightGrad`);
    }
    // permuteBytes: fp8 codes and f32 scales rows, bit-exact
    const codes = Uint8Array.from({ length: T * H }, () => Math.floor(r() * 256));
    const [bw, bg] = await both(
      (b) => ({ x: b.fromHost(codes, 'fp8e4m3', [T, H]), rows: b.fromHost(sorted, 'i32', [Pmax]), out: b.empty('fp8e4m3', [P, H]) }),
      (b, o) => b.moe!.permuteBytes!(o.x, o.rows, k, o.out),
    );
    same(await read(bg.out), await read(bw.out), `seed ${seed} permuteBytes`);
  });

  // ---------------------------------------------------------------- dispatch's device path

  /** k distinct experts a token, a few hot ones; `nBad` ids replaced by bad ones. */
  function routing(r: () => number, T: number, k: number, E: number, nBad = 0): Int32Array {
    const idx = new Int32Array(T * k);
    for (let t = 0; t < T; t++) {
      const chosen = new Set<number>();
      while (chosen.size < k) chosen.add(r() < 0.2 ? Math.floor(r() * 4) : Math.floor(r() * E));
      [...chosen].forEach((e, j) => (idx[t * k + j] = e));
    }
    for (let i = 0; i < nBad; i++) idx[Math.floor(r() * T * k)] = r() < 0.5 ? -1 - Math.floor(r() * 5) : E + Math.floor(r() * 5);
    return idx;
  }

  for (const [T, k, E, R, nBad, M] of [
    [4096, 8, 256, 2, 0, 0], [4096, 8, 256, 8, 0, 0], [3001, 6, 160, 4, 40, 0], [0, 8, 256, 2, 0, 0],
    [4096, 8, 256, 4, 0, 4096], [3001, 6, 160, 4, 40, 3500], [4096, 8, 256, 2, 0, 1000], [1, 1, 4, 2, 0, 1], [0, 8, 256, 2, 0, 16],
  ] as const) {
    it(`dispatchPlan T=${T} k=${k} E=${E} R=${R}${nBad ? ' with bad ids' : ''}${M ? ` slotRows ${M}${T > M ? ' (T > M: truncated and flagged)' : ''}` : ''}: send rows, pair ranks and the table exact, twice`, async () => {
      const seed = freshSeed();
      const idx = routing(rng(seed), T, k, E, nBad);
      const make = (b: Backend) => ({ idx: b.fromHost(idx, 'i32', [T, k]), sendRow: b.empty('i32', [T, R]), pairRank: b.empty('i32', [T, k]), table: b.empty('i32', [1, R + E + 1]) });
      const run = (b: Backend, o: ReturnType<typeof make>) => (M ? b.moe!.dispatchPlan!(o.idx, E, o.sendRow, o.pairRank, o.table, M) : b.moe!.dispatchPlan!(o.idx, E, o.sendRow, o.pairRank, o.table));
      const [w, g] = await both(make, run);
      const tag = `seed ${seed} T=${T} R=${R} M=${M}`;
      for (const n of ['sendRow', 'pairRank', 'table'] as const) same(await read(g[n]), await read(w[n]), `${tag} ${n}`);
      if (nBad && !(M && T > M)) expect((await read(g.table))[R + E]).toBe(idx.filter((e) => e < 0 || e >= E).length);
      if (M && T > M) expect((await read(g.table))[R + E]).toBe(-T);
      const g2 = make(cuda.backend!);
      await run(cuda.backend!, g2);
      for (const n of ['sendRow', 'pairRank', 'table'] as const) same(await read(g2[n]), await read(g[n]), `${tag} second run ${n}`);
    });
  }

  it('dispatchPack at H = 7168: packed rows, FP8 codes and scales equal fp8.quantize\'s (bf16 and f32 x, a NaN, an inf, a zero and a tiny block, −0s and subnormals among normal values), plain rows bit-exact; meta exact', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    const T = 300, k = 8, E = 256, R = 8, H = 7168;
    const idx = routing(r, T, k, E);
    const xf = Float32Array.from({ length: T * H }, () => normal(r) * 10 ** (r() * 6 - 3));
    xf[3 * H + 5] = NaN;
    xf[7 * H + 300] = Infinity;
    xf.fill(0, 11 * H + 128, 11 * H + 256);
    for (let h = 12 * H; h < 12 * H + 128; h++) xf[h] = 1e-30 * normal(r);
    // negative zeros, and subnormals, among normal values of one block (the pack divides by a reciprocal
    // and one correction step: a zero's sign and the tiniest quotients are its edge cases)
    for (let h = 13 * H; h < 13 * H + 128; h++) xf[h] = h % 2 ? -0 : normal(r);
    for (let h = 14 * H; h < 14 * H + 128; h++) xf[h] = h % 2 ? 1e-40 * normal(r) : normal(r);
    const wts = Float32Array.from({ length: T * k }, () => r());
    // the plan from the reference (checked above), then each backend packs
    const plan = { sendRow: ref.empty('i32', [T, R]), pairRank: ref.empty('i32', [T, k]), table: ref.empty('i32', [1, R + E + 1]) };
    ref.moe!.dispatchPlan!(ref.fromHost(idx, 'i32', [T, k]), E, plan.sendRow, plan.pairRank, plan.table);
    const sr = (await read(plan.sendRow)) as Int32Array, pr = (await read(plan.pairRank)) as Int32Array;
    const S = T * Math.min(R, k), sent = ((await read(plan.table)) as Int32Array).subarray(0, R).reduce((a, b) => a + b, 0);
    expect(sent).toBeGreaterThan(T); // most tokens go to several ranks
    for (const [xd, fp8] of [['bf16', true], ['f32', true], ['bf16', false], ['f32', false]] as const) {
      const tag = `seed ${seed} ${xd} fp8 ${fp8}`;
      const xh = xd === 'bf16' ? toBf16(xf) : xf;
      const L = dispatchRowLayout(fp8 ? H : H * (xd === 'bf16' ? 2 : 4), fp8 ? H / 128 : 0, k);
      const [w, g] = await both(
        (b) => ({
          x: b.fromHost(xh, xd, [T, H]), idx: b.fromHost(idx, 'i32', [T, k]), wt: b.fromHost(wts, 'f32', [T, k]), sr: b.fromHost(sr, 'i32', [T, R]), pr: b.fromHost(pr, 'i32', [T, k]),
          packed: b.empty('u8', [S, L.stride]),
        }),
        (b, o) => b.moe!.dispatchPack!(o.x, o.idx, o.wt, o.sr, o.pr, E, fp8, o.packed),
      );
      // the written parts of the rows sent (the padding to the stride is not part of the contract)
      const gp = (await read(g.packed)) as Uint8Array, wp = (await read(w.packed)) as Uint8Array;
      const partsOf = (p: Uint8Array) => {
        const out: number[] = [];
        for (let q = 0; q < sent; q++) out.push(...p.subarray(q * L.stride, q * L.stride + L.metaAt + 12 * k));
        return out;
      };
      same(partsOf(gp), partsOf(wp), `${tag} packed rows (payload${fp8 ? ', scales' : ''}, meta)`);
    }
  });

  it('the symmetric windows\' kernels: the plan\'s piece ends = a host count and the reference plan\'s (with and without slots to spare); dispatchPack into per-rank slot buffers = the slot rows of one buffer; the layout from wider table rows with expertX left out = the layout (its index arrays), and leaves expertX untouched', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    const b = cuda.backend!;
    const T = 333, k = 8, E = 64, R = 4, M = 400, H = 512, bs = 128, per = E / R, W = R + E + 1;
    const idx = routing(r, T, k, E);
    const xs = b.fromHost(toBf16(Float32Array.from({ length: T * H }, () => normal(r))), 'bf16', [T, H]);
    const ix = b.fromHost(idx, 'i32', [T, k]), wt = b.fromHost(Float32Array.from({ length: T * k }, () => r()), 'f32', [T, k]);
    // piece ends [128, 256, 333]: the tokens below each end with a row on each rank; with slots of 200
    // rows (fewer than some ranks' tokens) the counts stop at 200, as the rows sent do
    const ends = Int32Array.of(128, 256, T);
    for (const slots of [M, 200]) {
      const sr0 = ref.empty('i32', [T, R]), pr0 = ref.empty('i32', [T, k]), tb0 = ref.empty('i32', [1, W + 3 * R]);
      ref.moe!.dispatchPlan!(ref.fromHost(idx, 'i32', [T, k]), E, sr0, pr0, tb0, slots, ends);
      const sr1 = b.empty('i32', [T, R]), pr1 = b.empty('i32', [T, k]), tb1 = b.empty('i32', [1, W + 3 * R]);
      await b.moe!.dispatchPlan!(ix, E, sr1, pr1, tb1, slots, ends);
      const srh = (await read(sr1)) as Int32Array, tbh = (await read(tb1)) as Int32Array;
      same(tbh, (await read(tb0)) as Int32Array, `seed ${seed} slots ${slots}: the table with piece ends, against the reference plan`);
      same(srh, (await read(sr0)) as Int32Array, `seed ${seed} slots ${slots}: sendRow`);
      for (let c = 0; c < 3; c++) {
        for (let d = 0; d < R; d++) {
          let want = 0;
          for (let t = 0; t < ends[c]!; t++) if (srh[t * R + d]! >= 0) want++;
          expect(tbh[W + c * R + d], `seed ${seed} slots ${slots} piece ${c} rank ${d}`).toBe(want);
        }
      }
      [sr1, pr1, tb1].forEach((t) => t.dispose());
    }
    const sendRow = b.empty('i32', [T, R]), pairRank = b.empty('i32', [T, k]), table = b.empty('i32', [1, W + 3 * R]);
    await b.moe!.dispatchPlan!(ix, E, sendRow, pairRank, table, M, ends);
    const tb = (await read(table)) as Int32Array;
    for (const fp8 of [true, false]) {
      const L = dispatchRowLayout(fp8 ? H : 2 * H, fp8 ? H / 128 : 0, k);
      const whole = b.empty('u8', [R * M, L.stride]);
      await b.moe!.dispatchPack!(xs, ix, wt, sendRow, pairRank, E, fp8, whole);
      const slots = Array.from({ length: R }, () => b.empty('u8', [M, L.stride]));
      await b.moe!.dispatchPack!(xs, ix, wt, sendRow, pairRank, E, fp8, null, { rows: slots, slotRows: M });
      const wb = (await read(whole)) as Uint8Array;
      for (let d = 0; d < R; d++) {
        const sb = (await read(slots[d]!)) as Uint8Array;
        const n = tb[d]!;
        const rowsOf = (p: Uint8Array, first: number) => Array.from({ length: n }, (_, i) => [...p.subarray((first + i) * L.stride, (first + i) * L.stride + L.metaAt + 12 * k)]).flat();
        same(rowsOf(sb, 0), rowsOf(wb, d * M), `seed ${seed} fp8 ${fp8} rank ${d}'s slot`);
      }
      [whole, ...slots].forEach((t) => t.dispose());
    }
    // receive layout: tables [R, W + 3R] (rank q's row = this table with its counts shifted), expertX null
    const rows = Array.from({ length: R }, (_, q) => Int32Array.from(tb, (v, i) => (i < W ? v + ((q * 7 + i) % 3) : v)));
    const wide = b.fromHost(Int32Array.from(rows.flatMap((x) => [...x])), 'i32', [R, W + 3 * R]);
    const narrow = b.fromHost(Int32Array.from(rows.flatMap((x) => [...x.subarray(0, W)])), 'i32', [R, W]);
    const rank = 2;
    let n = 0, P = 0;
    for (let q = 0; q < R; q++) n += rows[q]![rank]!;
    for (let l = 0; l < per; l++) {
      let c = 0;
      for (let q = 0; q < R; q++) c += rows[q]![R + rank * per + l]!;
      P += Math.ceil(c / bs) * bs;
    }
    const Pmax = alignRowsMax(n * k, per, bs);
    const outs = () => ({ base: b.empty('i32', [R, per]), counts: b.empty('i32', [per]), sorted: b.empty('i32', [Pmax]), blockExpert: b.empty('i32', [Pmax / bs]), rowExpert: b.empty('i32', [Pmax]), ex: b.fromHost(new Uint8Array(P * H).fill(0xAB), 'u8', [P, H]), exs: b.fromHost(new Float32Array(P * H / 128).fill(7), 'f32', [P, H / 128]) });
    const one = outs(), two = outs();
    await b.moe!.dispatchRecvLayout!(narrow, rank, E, bs, k, one.base, one.counts, one.sorted, one.blockExpert, one.rowExpert, one.ex, one.exs);
    await b.moe!.dispatchRecvLayout!(wide, rank, E, bs, k, two.base, two.counts, two.sorted, two.blockExpert, two.rowExpert, null, null);
    expect(Array.from((await read(two.ex)) as Uint8Array).every((v) => v === 0xAB), 'expertX untouched without it').toBe(true);
    for (const key of ['base', 'counts', 'sorted', 'blockExpert', 'rowExpert'] as const) same(Array.from((await read(two[key])) as ArrayLike<number>), Array.from((await read(one[key])) as ArrayLike<number>), `seed ${seed} layout ${key}`);
    for (const t of [xs, ix, wt, sendRow, pairRank, table, wide, narrow, ...Object.values(one), ...Object.values(two)]) t.dispose();
  });

  it('unpermuteRows: a window of rows into a window of out, as unpermute on those rows (bf16 -> bf16, f32 -> bf16, weighted or not)', async () => {
    const seed = freshSeed();
    const r = rng(seed);
    const P = 300, H = 7168, n = 97, k = 8, row0 = 13, rows = 51, outRow0 = 29;
    const pos = Int32Array.from({ length: n * k }, () => (r() < 0.3 ? -1 : Math.floor(r() * P)));
    const wts = Float32Array.from({ length: n * k }, () => r());
    for (const yd of ['bf16', 'f32'] as const) {
      const yh = yd === 'bf16' ? toBf16(Float32Array.from({ length: P * H }, () => normal(r))) : Float32Array.from({ length: P * H }, () => normal(r));
      for (const weighted of [true, false]) {
        const [w, g] = await both(
          (b) => ({ y: b.fromHost(yh, yd, [P, H]), pos: b.fromHost(pos, 'i32', [n, k]), wt: b.fromHost(wts, 'f32', [n, k]), out: b.fromHost(new Uint16Array(n * H), 'bf16', [n, H]) }),
          (b, o) => b.moe!.unpermuteRows!(o.y, o.pos, weighted ? o.wt : null, row0, rows, o.out, outRow0),
        );
        const gv = fromBf16((await read(g.out)) as Uint16Array), wv = fromBf16((await read(w.out)) as Uint16Array);
        close(gv, wv, 8e-3, 1e-6, `seed ${seed} ${yd} weighted ${weighted}`);
        same(gv.subarray(0, outRow0 * H), new Float32Array(outRow0 * H), 'rows before the window untouched');
        same(gv.subarray((outRow0 + rows) * H), new Float32Array((n - outRow0 - rows) * H), 'rows after the window untouched');
      }
    }
  });

  for (const [name, R, E, k, Ts, H, dtype, fp8, chunks] of [
    ['2 ranks, V3 routing, H = 7168, FP8', 2, 256, 8, [1000, 700], 7168, 'bf16', true, 4],
    ['2 ranks, V3 routing, H = 7168, bf16', 2, 256, 8, [700, 1000], 7168, 'bf16', false, 1],
    ['4 ranks, an empty one, 3 pieces, FP8 from f32', 4, 32, 4, [300, 0, 170, 64], 512, 'f32', true, 3],
    ['8 ranks, f32 rows of an odd width', 8, 64, 6, [50, 20, 0, 33, 7, 1, 90, 12], 1030, 'f32', false, 2],
    // (k > 32: the pack and the scatter take their CTA-a-token and CTA-a-row kernels, not a warp's)
    ['2 ranks, top-40 of 64, FP8', 2, 64, 40, [120, 90], 256, 'bf16', true, 2],
  ] as const) {
    it(`dispatch/combine over a LocalGroup, ${name}: every output bit-exact against the reference group`, async () => {
      const seed = freshSeed();
      const r = rng(seed);
      const tag = `seed ${seed} ${name}`;
      const host = Ts.map((T) => ({ x: Float32Array.from({ length: T * H }, () => normal(r)), idx: routing(r, T, k, E), w: Float32Array.from({ length: T * k }, () => r()) }));
      const inputsOn = (b: Backend) => Ts.map((T, i) => ({
        x: b.fromHost(dtype === 'bf16' ? toBf16(host[i]!.x) : host[i]!.x, dtype, [T, H]), indices: b.fromHost(host[i]!.idx, 'i32', [T, k]), weights: b.fromHost(host[i]!.w, 'f32', [T, k]),
      }));
      const opts = { numExperts: E, fp8, chunks };
      const gw = moe.localGroup(R, ref);
      const dw = await moe.dispatch(gw, inputsOn(ref), opts);
      const parts = (q: Tensor | { data: Tensor; scales: Tensor }) => ('data' in q ? [q.data, q.scales] : [q]);
      const bytes = async (t: Tensor) => new Uint8Array(((await read(t)) as Uint8Array).buffer, 0, t.bytes);
      // counts first, and fixed slots of the largest T (T == M on that rank)
      for (const slots of [undefined, Math.max(...Ts)]) {
      const gg = moe.localGroup(R, cuda.backend!, { maxTokensPerRank: slots });
      const dg = await moe.dispatch(gg, inputsOn(cuda.backend!), opts);
      const tag = `seed ${seed} ${name}${slots ? ` fixed slots of ${slots}` : ''}`;
      for (let i = 0; i < R; i++) {
        const [a, b] = [dg[i]!, dw[i]!];
        expect(a.alignment.padded, `${tag} rank ${i} P`).toBe(b.alignment.padded);
        for (const [n, x, y] of [
          ['recvIndices', a.recvIndices, b.recvIndices], ['recvWeights', a.recvWeights, b.recvWeights],
          ...(['sortedPairs', 'blockExpert', 'rowExpert', 'pairPos', 'counts'] as const).map((q) => [q, a.alignment[q], b.alignment[q]] as const),
          ...parts(a.recv).map((t, j) => [`recv ${j}`, t, parts(b.recv)[j]!] as const),
          ...parts(a.expertX!).map((t, j) => [`expertX ${j}`, t, parts(b.expertX!)[j]!] as const),
        ] as const) {
          expect(x.shape, `${tag} rank ${i} ${n}`).toEqual(y.shape);
          same(await bytes(x), await bytes(y), `${tag} rank ${i} ${n}`);
        }
      }
      // expand: false: no expertX, the rest the same bits, and recv gathered through sortedPairs = expertX
      const dl = await moe.dispatch(gg, inputsOn(cuda.backend!), { ...opts, expand: false });
      for (let i = 0; i < R; i++) {
        const [a, b] = [dl[i]!, dw[i]!];
        expect(a.expertX, `${tag} rank ${i} expand false`).toBeNull();
        for (const [n, x, y] of [
          ['recvIndices', a.recvIndices, b.recvIndices], ['recvWeights', a.recvWeights, b.recvWeights],
          ...(['sortedPairs', 'blockExpert', 'rowExpert', 'pairPos', 'counts'] as const).map((q) => [q, a.alignment[q], b.alignment[q]] as const),
          ...parts(a.recv).map((t, j) => [`recv ${j}`, t, parts(b.recv)[j]!] as const),
        ] as const) same(await bytes(x), await bytes(y), `${tag} rank ${i} expand false ${n}`);
        const P = a.alignment.padded, nr = a.alignment.tokens, sorted = (await read(a.alignment.sortedPairs)) as Int32Array;
        const rp = parts(a.recv), ep = parts(b.expertX!);
        for (let j = 0; j < rp.length; j++) {
          const src = await bytes(rp[j]!), want = gatherRowBytes(src, nr > 0 ? src.length / nr : 0, sorted, P, k);
          same(await bytes(ep[j]!), want, `${tag} rank ${i} expand false: recv gathered = expertX part ${j}`);
        }
      }
      moe.disposeDispatched(dl);
      if (!fp8) {
        const ow = await moe.combine(gw, dw.map((d) => d.expertX as Tensor), dw, { chunks });
        // the final sum per piece: the same bits at any piece count
        for (const c of [1, 2, 3, 4]) {
          const og = await moe.combine(gg, dg.map((d) => d.expertX as Tensor), dg, { chunks: c });
          for (let i = 0; i < R; i++) same(await bytes(og[i]!), await bytes(ow[i]!), `${tag} combine (${c} pieces) ${i}`);
        }
      }
      }
    });
  }

  it('fixed slots: a rank with T > M makes dispatch throw E_ARG naming it, leaves nothing behind, and the group works afterwards', async () => {
    const b = cuda.backend!;
    const seed = freshSeed();
    const r = rng(seed);
    const [R, E, k, H, M] = [3, 24, 4, 256, 100];
    const make = (Ts: number[]) => Ts.map((T) => ({
      x: b.fromHost(toBf16(Float32Array.from({ length: T * H }, () => normal(r))), 'bf16', [T, H]), indices: b.fromHost(routing(r, T, k, E), 'i32', [T, k]),
      weights: b.fromHost(Float32Array.from({ length: T * k }, () => r()), 'f32', [T, k]),
    }));
    const group = moe.localGroup(R, b, { maxTokensPerRank: M });
    for (const fp8 of [false, true]) {
      const over = make([50, 101, 100]);
      const before = b.memoryStats!().inUse;
      const e = await thrown(() => moe.dispatch(group, over, { numExperts: E, fp8, chunks: 2 }));
      expect(e, `seed ${seed}`).toBeInstanceOf(HotpathsError);
      expect((e as HotpathsError).code).toBe('E_ARG');
      expect((e as Error).message).toMatch(/rank 1 dispatches T = 101 tokens, more than the group's maxTokensPerRank = 100/);
      expect(b.memoryStats!().inUse, `fp8 ${fp8}`).toBe(before);
    }
    const inputs = make([100, 0, 37]);
    const ds = await moe.dispatch(group, inputs, { numExperts: E });
    const dr = await moe.dispatch(moe.localGroup(R, ref), await Promise.all(inputs.map(async (q) => ({ x: await q.x.to('reference'), indices: await q.indices.to('reference'), weights: await q.weights.to('reference') }))), { numExperts: E });
    for (let i = 0; i < R; i++) same((await read(ds[i]!.expertX as Tensor)) as Uint16Array, (await read(dr[i]!.expertX as Tensor)) as Uint16Array, `seed ${seed} after the error: expertX ${i}`);
  });

  it('dispatch on the device path names a bad expert id (E_ARG) and leaves nothing behind', async () => {
    const b = cuda.backend!;
    const idx = [Int32Array.of(0, 1, 2, 3), Int32Array.of(1, 9, 0, 2)];
    const inputs = idx.map((q) => ({ x: b.fromHost(new Float32Array(2 * 128), 'f32', [2, 128]), indices: b.fromHost(q, 'i32', [2, 2]), weights: b.fromHost(new Float32Array(4), 'f32', [2, 2]) }));
    const before = b.memoryStats!().inUse;
    const e = await thrown(() => moe.dispatch(moe.localGroup(2, b), inputs, { numExperts: 4, fp8: true }));
    expect(e).toBeInstanceOf(HotpathsError);
    expect((e as HotpathsError).code).toBe('E_ARG');
    expect((e as Error).message).toMatch(/inputs\[1\]\.indices\[0, 1\] = 9 is outside \[0, numExperts = 4\)/);
    expect(b.memoryStats!().inUse).toBe(before);
  });
});
