// Expert parallelism across processes: `hotpaths launch` (anywhere: plain Node scripts), the NCCL
// group's errors where NCCL or a GPU is missing (CI), and — with 2 or more CUDA devices and libnccl —
// tests/nccl/dispatch-check.mjs across real ranks (2, and 4 when there are 4 devices), with and
// without fixed slots (maxTokensPerRank), and the rejections every rank must see alike.
// HOTPATHS_REQUIRE=nccl makes a machine that cannot run the multi-GPU checks fail instead of skip.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { init, moe, HotpathsError, type Tensor } from '../src/index.js';
import { addonStatus, loadAddon } from '../src/native/addon.js';
import { packageRoot } from '../src/util/paths.js';
import { expectSameBytes, freshSeed, thrown } from './helpers.js';
import { unpaddedBytes } from './nccl/padding.mjs';

const cli = join(packageRoot(), 'dist', 'src', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'hotpaths-nccl-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, body);
  return file;
}
const launch = (args: string[], timeout = 60_000) => spawnSync(process.execPath, [cli, 'launch', ...args], { encoding: 'utf8', timeout });

describe('hotpaths launch', { timeout: 60_000 }, () => {
  it('is built (npm run build)', () => {
    expect(existsSync(cli), `${cli} is missing: run npm run build`).toBe(true);
  });

  it('starts N ranks with their rank variables and arguments, every line prefixed with [rank]', () => {
    const s = script('env.mjs', "const e = process.env; console.log(`rank=${e.HOTPATHS_RANK} size=${e.HOTPATHS_WORLD_SIZE} local=${e.HOTPATHS_LOCAL_RANK} id=${e.HOTPATHS_NCCL_ID_FILE ? 'file' : 'none'} args=${process.argv.slice(2).join(',')}`); console.error('to stderr');\n");
    const r = launch(['--nproc', '3', s, 'a', '--flag', 'b']);
    expect(r.status, r.stderr).toBe(0);
    for (let q = 0; q < 3; q++) {
      expect(r.stdout).toContain(`[${q}] rank=${q} size=3 local=${q} id=file args=a,--flag,b`);
      expect(r.stderr).toContain(`[${q}] to stderr`);
    }
    expect(r.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('when one rank fails, stops the others at once and exits non-zero with its code', () => {
    const s = script('fail.mjs', "if (process.env.HOTPATHS_RANK === '1') { console.log('failing'); process.exit(3); } setTimeout(() => console.log('still here'), 60000);\n");
    const started = Date.now();
    const r = launch(['--nproc', '3', s]);
    expect(r.error, 'launch hung instead of stopping the other ranks').toBeUndefined();
    expect(r.status).toBe(3);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(r.stdout).toContain('[1] failing');
    expect(r.stdout).not.toContain('still here');
    expect(r.stderr).toMatch(/rank 1 exited with code 3/);
  });

  it('a rank that ignores SIGTERM is killed after the grace period; --timeout bounds the whole run', () => {
    const s = script('stuck.mjs', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);\n");
    const started = Date.now();
    const r = launch(['--nproc', '2', '--timeout', '1', s]);
    expect(r.error, 'launch hung').toBeUndefined();
    expect(r.status).toBe(124);
    expect(r.stderr).toMatch(/--timeout 1 s/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('rejects a bad --nproc and a missing script', () => {
    expect(launch(['--nproc', '0', 'x.mjs']).status).not.toBe(0);
    const r = launch(['--nproc', '1', join(dir, 'nope.mjs')]);
    expect(r.status).not.toBe(0);
  });
});

describe('moe.ncclGroup() where it cannot run', () => {
  it('outside `hotpaths launch` it says how to start the ranks (E_ARG)', async () => {
    const saved = { ...process.env };
    delete process.env.HOTPATHS_RANK;
    delete process.env.HOTPATHS_WORLD_SIZE;
    try {
      const e = await thrown(() => moe.ncclGroup());
      expect(e).toBeInstanceOf(HotpathsError);
      expect((e as HotpathsError).code).toBe('E_ARG');
      expect((e as Error).message).toMatch(/hotpaths launch --nproc/);
    } finally {
      process.env = saved;
    }
  });

  it('the addon loads, and without libnccl or a GPU the NCCL entry fails with E_BACKEND saying what is missing', async (ctx) => {
    const addon = loadAddon();
    if (!addon) ctx.skip(`no addon here: ${addonStatus()}`);
    const nccl = addon!.ncclInfo();
    expect(typeof nccl.available).toBe('boolean');
    if (!nccl.available) {
      expect(nccl.reason).toMatch(/libnccl|without CUDA/);
      const e = (() => {
        try {
          addon!.ncclGetUniqueId();
        } catch (err) {
          return err as { code?: string; message: string };
        }
        return undefined;
      })();
      expect(e?.code).toBe('E_BACKEND');
      expect(e?.message).toMatch(/NCCL|without CUDA/);
    }
    // a one-rank group: it runs where CUDA and NCCL both are, and otherwise names what is missing
    const saved = { ...process.env };
    Object.assign(process.env, { HOTPATHS_RANK: '0', HOTPATHS_WORLD_SIZE: '1', HOTPATHS_NCCL_ID_FILE: join(dir, 'one-rank-id') });
    try {
      const canRun = nccl.available && addon!.buildInfo().cuda && addon!.cudaDeviceCount() > 0;
      const r = await moe.ncclGroup().then((g) => g, (err: unknown) => err);
      if (canRun) {
        const g = r as moe.ExpertGroup;
        expect(g.size).toBe(1);
        expect(await g.exchangeCounts([Int32Array.of(7)])).toEqual([Int32Array.of(7)]);
        g.destroy?.();
      } else {
        expect(r).toBeInstanceOf(HotpathsError);
        expect((r as HotpathsError).code).toBe('E_BACKEND');
        expect((r as Error).message).toMatch(/NCCL|CUDA|GPU|device|addon/i);
      }
    } finally {
      process.env = saved;
    }
  });
});

describe('moe.ncclGroup() symmetric windows (NCCL device API)', { timeout: 120_000 }, () => {
  it('built without nccl_device.h, the LSA entry points say so (E_BACKEND); a one-rank group with maxTokensPerRank and maxHidden dispatches and combines with the LocalGroup\'s bits, through its windows or, where NCCL gives none (NCCL 2.28 gives a one-rank communicator no symmetric memory), through send/recv', async (ctx) => {
    const addon = loadAddon();
    if (!addon) ctx.skip(`no addon here: ${addonStatus()}`);
    const lsa = addon!.ncclLsaInfo();
    if (!lsa.compiled) {
      let err: { code?: string; message: string } | undefined;
      try {
        addon!.ncclLsaCreate(1, 4096, 0);
      } catch (e) {
        err = e as { code?: string; message: string };
      }
      expect(err?.code).toBe('E_BACKEND');
      expect(err?.message).toMatch(/nccl_device\.h|without CUDA/);
    }
    const nccl = addon!.ncclInfo();
    const canRun = nccl.available && addon!.buildInfo().cuda && addon!.cudaDeviceCount() > 0;
    if (!canRun) ctx.skip(`a one-rank NCCL group needs libnccl (${nccl.available ? 'here' : nccl.reason}) and a GPU`);
    const saved = { ...process.env };
    Object.assign(process.env, { HOTPATHS_RANK: '0', HOTPATHS_WORLD_SIZE: '1', HOTPATHS_NCCL_ID_FILE: join(dir, 'windows-id') });
    try {
      const cuda = await init({ backend: 'cuda', verbose: false });
      const g = await moe.ncclGroup({ maxTokensPerRank: 300, maxHidden: 512 });
      try {
        console.log(`one-rank group: ${g.windows ? 'symmetric windows' : 'no symmetric windows here: the send/recv path'}`);
        const seed = freshSeed();
        let a = seed >>> 0;
        const r = () => ((a = (Math.imul(a, 1664525) + 1013904223) >>> 0) / 4294967296);
        const T = 257, H = 512, k = 4, E = 16;
        const idx = new Int32Array(T * k);
        for (let t = 0; t < T; t++) {
          const s = new Set<number>();
          while (s.size < k) s.add(Math.floor(r() * E));
          [...s].forEach((e, j) => (idx[t * k + j] = e));
        }
        const inputs = [{ x: cuda.tensor(Float32Array.from({ length: T * H }, () => r() - 0.5), [T, H], 'f32'), indices: cuda.tensor(idx, [T, k], 'i32'), weights: cuda.tensor(Float32Array.from({ length: T * k }, () => r()), [T, k], 'f32') }];
        const local = moe.localGroup(1, cuda.backend);
        const bytes = async (t: Tensor) => new Uint8Array(((await t.read()) as Uint8Array).buffer, 0, t.bytes);
        for (const fp8 of [false, true]) {
          for (const chunks of [1, 3]) {
            const [dw] = await moe.dispatch(g, inputs, { numExperts: E, fp8, chunks });
            const [dl] = await moe.dispatch(local, inputs, { numExperts: E, fp8 });
            const parts = (q: Tensor | { data: Tensor; scales: Tensor }) => ('data' in q ? [q.data, q.scales] : [q]);
            const pairs = [
              ['recvIndices', dw!.recvIndices, dl!.recvIndices], ['recvWeights', dw!.recvWeights, dl!.recvWeights],
              ...(['sortedPairs', 'blockExpert', 'rowExpert', 'pairPos', 'counts'] as const).map((q) => [q, dw!.alignment[q], dl!.alignment[q]] as const),
              ...parts(dw!.recv).map((t, j) => [`recv ${j}`, t, parts(dl!.recv)[j]!] as const),
            ] as const;
            for (const [n, x, y] of pairs) {
              expect(x.shape, `seed ${seed} fp8 ${fp8} chunks ${chunks} ${n}`).toEqual(y.shape);
              expectSameBytes(await bytes(x), await bytes(y), `seed ${seed} fp8 ${fp8} chunks ${chunks} ${n}`);
            }
            // expertX but its padding rows (rowExpert −1: unspecified, and the windows leave them unwritten)
            const re = (await dl!.alignment.rowExpert.read()) as Int32Array;
            const unpadded = (t: Tensor) => unpaddedBytes(t, re);
            for (const [j, x] of parts(dw!.expertX!).entries()) {
              const y = parts(dl!.expertX!)[j]!;
              expect(x.shape, `seed ${seed} fp8 ${fp8} chunks ${chunks} expertX ${j}`).toEqual(y.shape);
              expectSameBytes(await unpadded(x), await unpadded(y), `seed ${seed} fp8 ${fp8} chunks ${chunks} expertX ${j}`);
            }
            if (!fp8) {
              const [ow] = await moe.combine(g, [dw!.expertX as Tensor], [dw!], { chunks });
              const [ol] = await moe.combine(local, [dl!.expertX as Tensor], [dl!]);
              expectSameBytes(await bytes(ow!), await bytes(ol!), `seed ${seed} combine chunks ${chunks}`);
              ow!.dispose();
              ol!.dispose();
            }
            moe.disposeDispatched([dw!, dl!]);
          }
        }
        inputs.forEach((i) => Object.values(i).forEach((t) => t.dispose()));
      } finally {
        g.destroy?.();
      }
    } finally {
      process.env = saved;
    }
  });
});

// ---------------------------------------------------------------- across real GPUs

const addon = loadAddon();
const devices = addon && addon.buildInfo().cuda ? addon.cudaDeviceCount() : 0;
const nccl = addon?.ncclInfo();
const required = (process.env.HOTPATHS_REQUIRE ?? '').split(',').includes('nccl');
let why = '';
if (!addon) why = `no addon: ${addonStatus()}`;
else if (devices < 2) why = `${devices} CUDA device(s) here; the multi-GPU checks need 2 or more`;
else if (!nccl?.available) why = `NCCL is not available: ${nccl?.reason}`;
if (why) {
  if (required) throw new Error(`HOTPATHS_REQUIRE=nccl, but the multi-GPU checks cannot run: ${why}`);
  console.warn(`[skip] moe over NCCL: ${why}`);
}

describe.skipIf(!!why)(`moe over NCCL across real ranks${why ? ` (skipped: ${why})` : ''}`, { timeout: 360_000 }, () => {
  for (const n of [2, 4]) {
    it.skipIf(devices < n)(`launch --nproc ${n}: tagged rows, dispatch receives exactly the routed tokens, combine of identity experts = x·Σw (bf16, f32, fp8; unbalanced, empty rank, k = 1); fixed slots the same bits, T > M and mismatched M rejected on every rank`, () => {
      const seed = freshSeed();
      const r = launch(['--nproc', String(n), '--timeout', '300', join(packageRoot(), 'tests', 'nccl', 'dispatch-check.mjs'), String(seed)], 330_000);
      const log = `seed ${seed}\n${r.stdout}\n${r.stderr}`;
      expect(r.status, log).toBe(0);
      for (let q = 0; q < n; q++) expect(r.stdout, log).toContain(`[${q}] ok all`);
      expect(r.stdout.match(/\] ok /g)?.length ?? 0, log).toBeGreaterThanOrEqual(n * 9);
    });
  }
});
