// Runtime: backend selection and its reasons, tensor creation and validation, moving and disposing,
// bf16 conversion, the size classes of the GPU pools, and the CLI's info/bench output.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bf16BitsToF32, f32ToBf16Bits, fromBf16, HotpathsError, init, toBf16 } from '../src/index.js';
import { sizeClass } from '../src/runtime/sizeclass.js';
import { packageRoot } from '../src/util/paths.js';

describe('init', () => {
  it('auto picks a working backend and gives a reason for each skipped one', async () => {
    const rt = await init({ backend: 'auto', verbose: false });
    expect(['cuda', 'webgpu', 'cpu', 'reference']).toContain(rt.name);
    const order = ['cuda', 'webgpu', 'cpu', 'reference'];
    for (const s of rt.selection.skipped) {
      expect(order.indexOf(s.name)).toBeLessThan(order.indexOf(rt.name));
      expect(s.reason.length).toBeGreaterThan(10);
    }
  });

  it('rejects an unknown backend name', async () => {
    await expect(init({ backend: 'tpu' as never })).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/'tpu'/) });
  });
});

describe('tensors', () => {
  it('infers dtypes, checks shapes and copies data', async () => {
    const rt = await init({ backend: 'reference' });
    const src = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = rt.tensor(src, [2, 3]);
    src[0] = 99; // the tensor holds a copy
    expect(t.dtype).toBe('f32');
    expect(t.shape).toEqual([2, 3]);
    expect([...((await t.read()) as Float32Array)]).toEqual([1, 2, 3, 4, 5, 6]);
    expect(rt.tensor(new Int32Array(2), [2]).dtype).toBe('i32');
    expect(rt.tensor([1, 2], [2]).dtype).toBe('f32');
    expect(rt.tensor(new Uint16Array(2), [2], 'bf16').dtype).toBe('bf16');
  });

  it('refuses ambiguous or mismatched data with a clear error', () => {
    return init({ backend: 'reference' }).then((rt) => {
      const cases: [() => unknown, string, RegExp][] = [
        [() => rt.tensor(new Uint16Array(2), [2]), 'E_DTYPE', /ambiguous/],
        [() => rt.tensor(new Float32Array(2), [2], 'i32'), 'E_DTYPE', /Int32Array/],
        [() => rt.tensor(new Float32Array(2), [3]), 'E_SHAPE', /2 elements but shape \[3\]/],
        [() => rt.tensor(new Float32Array(2), [-1, -2]), 'E_SHAPE', /non-negative integers/],
        [() => rt.tensor(new Float32Array(2), [2.5] as never), 'E_SHAPE', /non-negative integers/],
        [() => rt.tensor('abc' as never, [3]), 'E_ARG', /typed array/],
        [() => rt.tensor([1, 2], [2], 'bf16'), 'E_DTYPE', /Uint16Array/],
        [() => rt.empty('f64' as never, [2]), 'E_DTYPE', /f32, bf16/],
        [() => rt.empty('f32', [2 ** 31, 4]), 'E_TOO_LARGE', /limit/],
      ];
      for (const [fn, code, msg] of cases) {
        let err: unknown;
        try {
          fn();
        } catch (e) {
          err = e;
        }
        expect(err, String(fn)).toBeInstanceOf(HotpathsError);
        expect((err as HotpathsError).code, String(fn)).toBe(code);
        expect((err as HotpathsError).message, String(fn)).toMatch(msg);
      }
    });
  });

  it('dispose makes later use fail with E_DISPOSED', async () => {
    const rt = await init({ backend: 'reference' });
    const t = rt.tensor(new Float32Array(4), [4]);
    t.dispose();
    t.dispose(); // twice is harmless
    await expect(t.read()).rejects.toMatchObject({ code: 'E_DISPOSED' });
    await expect(t.to('reference')).rejects.toMatchObject({ code: 'E_DISPOSED' });
  });
});

describe('bf16', () => {
  it('rounds to nearest even and widens exactly', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(Math.fround(1 + 2 ** -8))).toBe(0x3f80); // tie -> even
    expect(f32ToBf16Bits(Math.fround(1 + 3 * 2 ** -8))).toBe(0x3f82); // tie -> even (up)
    expect(f32ToBf16Bits(Math.fround(1 + 2 ** -8 + 2 ** -12))).toBe(0x3f81);
    expect(f32ToBf16Bits(-Infinity)).toBe(0xff80);
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true);
    expect(f32ToBf16Bits(3.4e38)).toBe(0x7f80); // rounds past the largest bf16 to inf
    const x = new Float32Array([0.1, -2.5, 1e-30, 65504]); // normal values: half a bf16 ulp relative
    const back = fromBf16(toBf16(x));
    for (let i = 0; i < x.length; i++) expect(Math.abs(back[i]! - x[i]!)).toBeLessThanOrEqual(Math.abs(x[i]!) * 2 ** -8);
  });
});

describe('pool size classes', () => {
  it('are powers of two to 1 MiB, then eighths, never smaller than asked', () => {
    expect(sizeClass(1)).toBe(256);
    expect(sizeClass(300)).toBe(512);
    expect(sizeClass(1 << 20)).toBe(1 << 20);
    expect(sizeClass((1 << 20) + 1)).toBe((1 << 20) + (1 << 17));
    for (const b of [5, 1000, 123457, 3e6, 7e8]) {
      expect(sizeClass(b)).toBeGreaterThanOrEqual(b);
      expect(sizeClass(b) % 4).toBe(0);
      if (b > 1 << 20) expect(sizeClass(b) / b).toBeLessThanOrEqual(1.125);
    }
  });
});

describe('command line', () => {
  const cli = join(packageRoot(), 'dist', 'src', 'cli.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 300_000 });
  /** A failed run's story: the signal that ended it, if any (status is then null), and its stderr. */
  const why = (r: ReturnType<typeof run>) => `${r.signal ? `killed by ${r.signal}; ` : ''}stderr: ${r.stderr}`;

  it('is built (npm ci compiles it through the prepare script)', () => {
    expect(existsSync(cli), `${cli} is missing: run npm run build`).toBe(true);
  });

  it('info --json lists every backend with a reason and the addon build flags', () => {
    const r = run('info', '--json');
    expect(r.status, why(r)).toBe(0);
    const info = JSON.parse(r.stdout) as { backends: { name: string; ok: boolean; reason: string }[]; addon: { built: boolean }; auto: { picked: string } };
    expect(info.backends.map((b) => b.name).sort()).toEqual(['cpu', 'cuda', 'reference', 'webgpu']);
    for (const b of info.backends) expect(b.reason.length).toBeGreaterThan(5);
    expect(typeof info.addon.built).toBe('boolean');
  });

  it('bench --json prints one record per measurement with rates and the peer', () => {
    const r = run('bench', 'fp8', '--backend', 'reference', '--quick', '--json');
    expect(r.status, why(r)).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThanOrEqual(6);
    for (const m of lines) {
      expect(m).toMatchObject({ family: 'fp8', backend: 'reference' });
      expect(m.ms as number).toBeGreaterThan(0);
      expect(m.gbps as number).toBeGreaterThan(0);
      expect(m.ceiling_fraction as number).toBeGreaterThan(0);
    }
  });

  it('rejects an unknown family and an unknown backend', () => {
    expect(run('bench', 'nope').status).not.toBe(0);
    const r = run('bench', '--backend', 'tpu');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/tpu/);
  });

  it('without the addon, info says why cpu and cuda are skipped and the rest still works', () => {
    const r = spawnSync(process.execPath, [cli, 'info', '--json'], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, HOTPATHS_NO_ADDON: '1' } });
    expect(r.status, why(r)).toBe(0);
    const info = JSON.parse(r.stdout) as { backends: { name: string; ok: boolean; reason: string }[]; addon: { built: boolean; reason: string } };
    expect(info.addon).toMatchObject({ built: false, reason: expect.stringMatching(/HOTPATHS_NO_ADDON/) });
    const by = Object.fromEntries(info.backends.map((b) => [b.name, b]));
    expect(by.cpu).toMatchObject({ ok: false, reason: expect.stringMatching(/HOTPATHS_NO_ADDON/) });
    expect(by.cuda).toMatchObject({ ok: false });
    expect(by.reference!.ok).toBe(true);
    const b = spawnSync(process.execPath, [cli, 'bench', 'fp8', '--backend', 'cpu', '--quick'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, HOTPATHS_NO_ADDON: '1' } });
    expect(b.status, why(b)).toBe(1);
    expect(b.stderr).toMatch(/E_BACKEND.*cpu backend unavailable/);
  });

  it('a process that used the webgpu backend exits by itself when its work is done', (ctx) => {
    const script = `import { init, fp8 } from ${JSON.stringify(join(packageRoot(), 'dist', 'src', 'index.js'))};
      const rt = await init({ backend: 'webgpu', verbose: false });
      const q = await fp8.quantize(rt.tensor(new Float32Array(256).fill(1), [2, 128]));
      console.log((await q.scales.read()).length);`;
    const started = Date.now();
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0 && /no WebGPU adapter|failed to load/.test(r.stderr) && !(process.env.HOTPATHS_REQUIRE ?? '').includes('webgpu')) {
      ctx.skip(`no webgpu here: ${r.stderr.trim().split('\n').pop()}`);
    }
    expect(r.error, 'the process did not exit within 60 s').toBeUndefined();
    expect(r.status, why(r)).toBe(0);
    expect(r.stdout.trim()).toBe('2');
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it('train rejects a bad task or step count with a message naming the choices, before any work', () => {
    const bad = run('train', '--task', 'nope');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/arithmetic, countdown/);
    const steps = run('train', '--steps', '-3');
    expect(steps.status).not.toBe(0);
    expect(steps.stderr).toMatch(/--steps/);
  });
});
