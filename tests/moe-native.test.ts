// The cpu backend's MoE entry points called on the addon directly (native/cpu/moe.cc): bad arguments
// throw with the right code before any memory is touched, and index values that src/ops/moe.ts would
// have rejected (experts outside [0, E), pair ids and positions outside their arrays) never reach
// outside an array: they are skipped as the GPU kernels skip them (align counts them in info[2]).
// The kernels' results against the reference are tested through the ops in tests/moe.test.ts.

import { describe, expect, it } from 'vitest';
import { loadAddon, type Addon } from '../src/native/addon.js';
import { thrown } from './helpers.js';

const loaded = loadAddon();
if (!loaded && (process.env.HOTPATHS_REQUIRE ?? '').split(',').includes('cpu')) {
  throw new Error('the addon is required here (HOTPATHS_REQUIRE=cpu) but did not load');
}

type Case = [what: string, args: unknown[], code: string];

/** Each case must reject with its code; `call` gets the arguments spread. */
async function expectCodes(call: (...a: unknown[]) => unknown, cases: Case[]): Promise<void> {
  for (const [what, args, code] of cases) {
    const e = await thrown(() => call(...args));
    expect(e, what).toBeInstanceOf(Error);
    expect((e as { code?: string }).code, what).toBe(code);
  }
}

/** A copy of `good` with argument i replaced by v. */
function withArg(good: () => unknown[], i: number, v: unknown): unknown[] {
  const a = good();
  a[i] = v;
  return a;
}

describe.skipIf(!loaded)('cpu MoE entry points (addon, direct)', () => {
  const addon = loaded as Addon;
  const fn = (name: keyof Addon) => (...a: unknown[]): unknown => (addon[name] as (...x: unknown[]) => unknown)(...a);
  const T = 4, E = 8, k = 2;

  it('cpuMoeRoute rejects bad arguments', async () => {
    const good = (): unknown[] => [new Float32Array(T * E), new Float32Array(E), T, E, 0, k, 2, 1, 0, true, 2.5, new Float32Array(T * E), new Float32Array(T * k), new Int32Array(T * k)];
    await expect(fn('cpuMoeRoute')(...good())).resolves.toBeUndefined();
    await expect(fn('cpuMoeRoute')(...withArg(good, 1, null))).resolves.toBeUndefined();
    await expectCodes(fn('cpuMoeRoute'), [
      ['too few arguments', good().slice(0, 13), 'E_ARG'],
      ['logits too short', withArg(good, 0, new Float32Array(T * E - 1)), 'E_SHAPE'],
      ['logits a Uint16Array', withArg(good, 0, new Uint16Array(T * E)), 'E_ARG'],
      ['logits an Array', withArg(good, 0, [1, 2]), 'E_ARG'],
      ['bias too short', withArg(good, 1, new Float32Array(E - 1)), 'E_SHAPE'],
      ['T negative', withArg(good, 2, -1), 'E_ARG'],
      ['T·E overflows', (() => { const a = good(); a[2] = 2 ** 50; a[3] = 2 ** 20; return a; })(), 'E_TOO_LARGE'],
      ['E = 0', withArg(good, 3, 0), 'E_ARG'],
      ['E fractional', withArg(good, 3, 7.5), 'E_ARG'],
      ['scoring 2', withArg(good, 4, 2), 'E_ARG'],
      ['topk 0', withArg(good, 5, 0), 'E_ARG'],
      ['topk > E', withArg(good, 5, E + 1), 'E_ARG'],
      ['nGroup 3 (does not divide E)', withArg(good, 6, 3), 'E_ARG'],
      ['nGroup 0', withArg(good, 6, 0), 'E_ARG'],
      ['topkGroup 0', withArg(good, 7, 0), 'E_ARG'],
      ['topkGroup > nGroup', withArg(good, 7, 3), 'E_ARG'],
      ['topk past the kept groups', (() => { const a = good(); a[5] = 5; return a; })(), 'E_ARG'],
      ['groupScore 2', withArg(good, 8, 2), 'E_ARG'],
      ['normTopkProb a number', withArg(good, 9, 1), 'E_ARG'],
      ['routedScalingFactor NaN', withArg(good, 10, NaN), 'E_ARG'],
      ['scores too short', withArg(good, 11, new Float32Array(T * E - 1)), 'E_SHAPE'],
      ['weights too short', withArg(good, 12, new Float32Array(T * k - 1)), 'E_SHAPE'],
      ['indices a Float32Array', withArg(good, 13, new Float32Array(T * k)), 'E_ARG'],
      ['indices too short', withArg(good, 13, new Int32Array(T * k - 1)), 'E_SHAPE'],
    ]);
  });

  it('cpuMoeRouteBackward rejects bad arguments and skips indices outside [0, E)', async () => {
    const good = (): unknown[] => [new Float32Array(T * E).fill(0.5), new Int32Array(T * k), new Float32Array(T * k).fill(1), null, T, E, k, 0, true, 1, new Float32Array(T * E)];
    await expectCodes(fn('cpuMoeRouteBackward'), [
      ['too few arguments', good().slice(0, 10), 'E_ARG'],
      ['scores too short', withArg(good, 0, new Float32Array(T * E - 1)), 'E_SHAPE'],
      ['indices too short', withArg(good, 1, new Int32Array(T * k - 1)), 'E_SHAPE'],
      ['dWeights too short', withArg(good, 2, new Float32Array(T * k - 1)), 'E_SHAPE'],
      ['dScores too short', withArg(good, 3, new Float32Array(T * E - 1)), 'E_SHAPE'],
      ['topk 0', withArg(good, 6, 0), 'E_ARG'],
      ['scoring -1', withArg(good, 7, -1), 'E_ARG'],
      ['dLogits too short', withArg(good, 10, new Float32Array(T * E - 1)), 'E_SHAPE'],
    ]);
    // bad indices on every token: only the valid ones contribute; with norm off, dl = c·dW·s(1−s)
    const idx = Int32Array.from({ length: T * k }, (_, i) => (i % 2 ? 2 ** 30 : i % 4 ? -5 : 3));
    const dl = new Float32Array(T * E).fill(NaN);
    await fn('cpuMoeRouteBackward')(new Float32Array(T * E).fill(0.5), idx, new Float32Array(T * k).fill(1), null, T, E, k, 0, false, 1, dl);
    for (let t = 0; t < T; t++) {
      for (let e = 0; e < E; e++) expect(dl[t * E + e], `token ${t} expert ${e}`).toBe(e === 3 && t % 2 === 0 ? 0.25 : 0);
    }
  });

  it('cpuMoeUpdateBias and cpuMoeAuxLoss reject bad arguments', async () => {
    const bias = (): unknown[] => [new Float32Array(E), new Int32Array(E), E, 0.001, new Float32Array(E)];
    await expectCodes(fn('cpuMoeUpdateBias'), [
      ['too few arguments', bias().slice(0, 4), 'E_ARG'],
      ['E = 0', withArg(bias, 2, 0), 'E_ARG'],
      ['load a Float32Array', withArg(bias, 1, new Float32Array(E)), 'E_ARG'],
      ['load too short', withArg(bias, 1, new Int32Array(E - 1)), 'E_SHAPE'],
      ['gamma Infinity', withArg(bias, 3, Infinity), 'E_ARG'],
      ['out too short', withArg(bias, 4, new Float32Array(E - 1)), 'E_SHAPE'],
    ]);
    const aux = (): unknown[] => [new Float32Array(T * E).fill(0.5), new Int32Array(T * k), T, E, k, 2, 0.01, new Float32Array(T * E)];
    await expect(fn('cpuMoeAuxLoss')(...aux())).resolves.toBeTypeOf('number');
    await expectCodes(fn('cpuMoeAuxLoss'), [
      ['too few arguments', aux().slice(0, 7), 'E_ARG'],
      ['seqLen 3 (does not divide T)', withArg(aux, 5, 3), 'E_SHAPE'],
      ['seqLen 0', withArg(aux, 5, 0), 'E_SHAPE'],
      ['T 0', withArg(aux, 2, 0), 'E_SHAPE'],
      ['topk 0', withArg(aux, 4, 0), 'E_ARG'],
      ['alpha NaN', withArg(aux, 6, NaN), 'E_ARG'],
      ['scores too short', withArg(aux, 0, new Float32Array(T * E - 1)), 'E_SHAPE'],
      ['indices too short', withArg(aux, 1, new Int32Array(T * k - 1)), 'E_SHAPE'],
      ['dScores too short', withArg(aux, 7, new Float32Array(T * E - 1)), 'E_SHAPE'],
    ]);
    // indices outside [0, E) count for no expert: the loss of all-bad indices is 0
    const loss = await fn('cpuMoeAuxLoss')(new Float32Array(T * E).fill(0.5), new Int32Array(T * k).fill(E), T, E, k, T, 1, new Float32Array(T * E));
    expect(loss).toBe(0);
  });

  it('cpuMoeLayout rejects bad arguments and ignores indices outside [0, E)', async () => {
    const R = 4;
    const good = (): unknown[] => [new Int32Array(T * k), T, k, E, R, new Int32Array(R), new Int32Array(E), new Uint8Array(T * R)];
    await expectCodes(fn('cpuMoeLayout'), [
      ['too few arguments', good().slice(0, 7), 'E_ARG'],
      ['numRanks 3 (does not divide E)', withArg(good, 4, 3), 'E_ARG'],
      ['numRanks 0', withArg(good, 4, 0), 'E_ARG'],
      ['indices too short', withArg(good, 0, new Int32Array(T * k - 1)), 'E_SHAPE'],
      ['tokensPerRank too short', withArg(good, 5, new Int32Array(R - 1)), 'E_SHAPE'],
      ['tokensPerExpert too short', withArg(good, 6, new Int32Array(E - 1)), 'E_SHAPE'],
      ['isTokenInRank an Int32Array', withArg(good, 7, new Int32Array(T * R)), 'E_ARG'],
      ['isTokenInRank too short', withArg(good, 7, new Uint8Array(T * R - 1)), 'E_SHAPE'],
      ['T·k past i32', (() => { const a = good(); a[1] = 2 ** 31; a[2] = 1; return a; })(), 'E_TOO_LARGE'],
    ]);
    const idx = Int32Array.from([0, -1, E, 2 ** 31 - 1, 7, 6, 1, 3]);
    const perRank = new Int32Array(R).fill(-9), perExpert = new Int32Array(E).fill(-9), inRank = new Uint8Array(T * R).fill(9);
    await fn('cpuMoeLayout')(idx, T, k, E, R, perRank, perExpert, inRank);
    expect([...perExpert]).toEqual([1, 1, 0, 1, 0, 0, 1, 1]);
    expect([...perRank]).toEqual([2, 1, 0, 1]); // token 0: rank 0; token 2: rank 3; token 3: ranks 0, 1
    expect([...inRank]).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0]);
  });

  it('cpuMoeAlign rejects bad arguments and counts indices outside [0, E) in info[2]', async () => {
    const bs = 4;
    const Pmax = Math.ceil((T * k + E * (bs - 1)) / bs) * bs;
    const good = (idx: Int32Array = new Int32Array(T * k)): unknown[] => [
      idx, T, k, E, bs, 0, new Int32Array(Pmax), new Int32Array(Pmax / bs), new Int32Array(Pmax), new Int32Array(T * k), new Int32Array(E), new Int32Array(4),
    ];
    const g = (): unknown[] => good();
    await expectCodes(fn('cpuMoeAlign'), [
      ['too few arguments', g().slice(0, 11), 'E_ARG'],
      ['blockSize 0', withArg(g, 4, 0), 'E_ARG'],
      ['numExperts 0', withArg(g, 3, 0), 'E_ARG'],
      ['capacity -1', withArg(g, 5, -1), 'E_ARG'],
      ['indices too short', withArg(g, 0, new Int32Array(T * k - 1)), 'E_SHAPE'],
      ['sortedPairs shorter than Pmax', withArg(g, 6, new Int32Array(Pmax - 1)), 'E_SHAPE'],
      ['blockExpert too short', withArg(g, 7, new Int32Array(Pmax / bs - 1)), 'E_SHAPE'],
      ['rowExpert too short', withArg(g, 8, new Int32Array(Pmax - 1)), 'E_SHAPE'],
      ['pairPos too short', withArg(g, 9, new Int32Array(T * k - 1)), 'E_SHAPE'],
      ['counts too short', withArg(g, 10, new Int32Array(E - 1)), 'E_SHAPE'],
      ['info too short', withArg(g, 11, new Int32Array(3)), 'E_SHAPE'],
      ['info a Uint32Array', withArg(g, 11, new Uint32Array(4)), 'E_ARG'],
      ['rows past i32', (() => { const a = g(); a[1] = 2 ** 30; a[2] = 4; return a; })(), 'E_TOO_LARGE'],
      ['padding past i32', (() => { const a = g(); a[3] = 2 ** 20; a[4] = 2 ** 12; return a; })(), 'E_TOO_LARGE'],
    ]);
    // pairs 1, 2 and 5 are bad: skipped (pairPos −1), counted in info[2]; the rest is grouped as usual
    const args = good(Int32Array.from([5, -1, E, 5, 0, 2 ** 31 - 1, 0, 5]));
    await fn('cpuMoeAlign')(...args);
    const [sorted, block, row, pos, counts, info] = args.slice(6) as Int32Array[];
    const S = T * k;
    expect([...info!]).toEqual([8, 0, 3, 0]);
    expect([...counts!]).toEqual([2, 0, 0, 0, 0, 3, 0, 0]);
    expect([...sorted!.subarray(0, 8)]).toEqual([4, 6, S, S, 0, 3, 7, S]);
    expect([...sorted!.subarray(8)].every((v) => v === S)).toBe(true);
    expect([...row!.subarray(0, 8)]).toEqual([0, 0, -1, -1, 5, 5, 5, -1]);
    expect([...row!.subarray(8)].every((v) => v === -1)).toBe(true);
    expect([...block!]).toEqual([0, 5, ...new Array(Pmax / bs - 2).fill(-1)]);
    expect([...pos!]).toEqual([4, -1, -1, 5, 0, -1, 1, 6]);
  });

  it('cpuMoePermute, cpuMoePermuteBytes, cpuMoeUnpermute, cpuMoeUnpermuteWeightGrad reject bad arguments and skip ids outside their arrays', async () => {
    const H = 3, P = 4;
    const perm = (): unknown[] => [new Float32Array(T * H), new Int32Array(P), T, H, k, P, null, new Float32Array(P * H)];
    await expectCodes(fn('cpuMoePermute'), [
      ['too few arguments', perm().slice(0, 7), 'E_ARG'],
      ['x an Int32Array', withArg(perm, 0, new Int32Array(T * H)), 'E_ARG'],
      ['x too short', withArg(perm, 0, new Float32Array(T * H - 1)), 'E_SHAPE'],
      ['rows too short', withArg(perm, 1, new Int32Array(P - 1)), 'E_SHAPE'],
      ['topk 0', withArg(perm, 4, 0), 'E_ARG'],
      ['weights too short', withArg(perm, 6, new Float32Array(T * k - 1)), 'E_SHAPE'],
      ['out too short', withArg(perm, 7, new Float32Array(P * H - 1)), 'E_SHAPE'],
      ['out bf16 for f32 x', withArg(perm, 7, new Uint16Array(P * H)), 'E_ARG'],
      ['P·H overflows', (() => { const a = perm(); a[5] = 2 ** 40; a[3] = 2 ** 30; return a; })(), 'E_TOO_LARGE'],
    ]);
    const pb = (): unknown[] => [new Uint8Array(T * 5), new Int32Array(P), T, 5, k, P, new Uint8Array(P * 5)];
    await expectCodes(fn('cpuMoePermuteBytes'), [
      ['too few arguments', pb().slice(0, 6), 'E_ARG'],
      ['x too short (bytes)', withArg(pb, 0, new Uint8Array(T * 5 - 1)), 'E_SHAPE'],
      ['x not a typed array', withArg(pb, 0, [1, 2, 3]), 'E_ARG'],
      ['rows too short', withArg(pb, 1, new Int32Array(P - 1)), 'E_SHAPE'],
      ['rows a Uint32Array', withArg(pb, 1, new Uint32Array(P)), 'E_ARG'],
      ['topk 0', withArg(pb, 4, 0), 'E_ARG'],
      ['out too short (bytes)', withArg(pb, 6, new Uint16Array(Math.floor((P * 5 - 1) / 2))), 'E_SHAPE'],
      ['P·rowBytes overflows', (() => { const a = pb(); a[5] = 2 ** 40; a[3] = 2 ** 30; return a; })(), 'E_TOO_LARGE'],
    ]);
    // bytes as they are (from any typed array), zero rows for ids outside [0, T·k)
    const bytes = new Uint8Array(P * 5).fill(7);
    await fn('cpuMoePermuteBytes')(Uint8Array.from({ length: T * 5 }, (_, i) => i), Int32Array.from([7, -1, T * k, 2]), T, 5, k, P, bytes);
    expect([...bytes]).toEqual([15, 16, 17, 18, 19, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 6, 7, 8, 9]);
    const unp = (): unknown[] => [new Float32Array(P * H), new Int32Array(T * k), P, H, T, k, null, new Float32Array(T * H)];
    await expectCodes(fn('cpuMoeUnpermute'), [
      ['too few arguments', unp().slice(0, 7), 'E_ARG'],
      ['y too short', withArg(unp, 0, new Float32Array(P * H - 1)), 'E_SHAPE'],
      ['y a Uint8Array', withArg(unp, 0, new Uint8Array(P * H)), 'E_ARG'],
      ['pairPos too short', withArg(unp, 1, new Int32Array(T * k - 1)), 'E_SHAPE'],
      ['weights too short', withArg(unp, 6, new Float32Array(T * k - 1)), 'E_SHAPE'],
      ['out too short', withArg(unp, 7, new Float32Array(T * H - 1)), 'E_SHAPE'],
      ['out (bf16) too short', withArg(unp, 7, new Uint16Array(T * H - 1)), 'E_SHAPE'],
    ]);
    const wg = (): unknown[] => [new Float32Array(T * H), new Float32Array(P * H), new Int32Array(T * k), T, k, P, H, new Float32Array(T * k)];
    await expectCodes(fn('cpuMoeUnpermuteWeightGrad'), [
      ['too few arguments', wg().slice(0, 7), 'E_ARG'],
      ['dOut too short', withArg(wg, 0, new Float32Array(T * H - 1)), 'E_SHAPE'],
      ['y too short', withArg(wg, 1, new Uint16Array(P * H - 1)), 'E_SHAPE'],
      ['pairPos too short', withArg(wg, 2, new Int32Array(T * k - 1)), 'E_SHAPE'],
      ['dWeights too short', withArg(wg, 7, new Float32Array(T * k - 1)), 'E_SHAPE'],
      ['dWeights a Uint16Array', withArg(wg, 7, new Uint16Array(T * k)), 'E_ARG'],
    ]);

    // ids outside [0, T·k) give zero rows; positions outside [0, P) add nothing / give 0
    const x = Float32Array.from({ length: T * H }, (_, i) => i + 1);
    const out = new Float32Array(P * H).fill(NaN);
    await fn('cpuMoePermute')(x, Int32Array.from([-1, T * k, 2 ** 31 - 1, 3]), T, H, k, P, null, out);
    expect([...out]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 5, 6]);
    const y = Float32Array.from({ length: P * H }, (_, i) => i + 1);
    const pos = Int32Array.from([0, P, -7, 2 ** 31 - 1, 3, -1, 1, 1]);
    const sum = new Float32Array(T * H).fill(NaN);
    await fn('cpuMoeUnpermute')(y, pos, P, H, T, k, null, sum);
    expect([...sum]).toEqual([1, 2, 3, 0, 0, 0, 10, 11, 12, 8, 10, 12]);
    const dw = new Float32Array(T * k).fill(NaN);
    await fn('cpuMoeUnpermuteWeightGrad')(new Float32Array(T * H).fill(1), y, pos, T, k, P, H, dw);
    expect([...dw]).toEqual([6, 0, 0, 0, 33, 0, 15, 15]);
  });
});
