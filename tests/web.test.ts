// The browser entry in Debian's headless Chromium (WebGPU on SwiftShader): the bundle
// (hotpaths/web) carries nothing Node-only; every kernel family gives the reference results in the
// page (each case of tests/web/cases.ts runs in the page on webgpu and on the bundle's reference, from
// the same seed as Node's reference run here; bit-exact where tests/fp8.test.ts is, within
// tests/gemm.test.ts's tolerance for GEMM); and a page's own GPUDevice and GPUBuffers work without
// copies. HOTPATHS_REQUIRE=…,browser (CI) makes a missing Chromium a failure instead of a skip.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as lib from '../src/index.js';
import { fromBf16 } from '../src/index.js';
import { buildWeb, readShaderFiles } from '../scripts/build-web.mjs';
import { browserMissing, launchChromium, serveFiles } from '../scripts/web-browser.mjs';
import { requireWebDep } from '../scripts/web-deps.mjs';
import { byoInputs, hashBytes, WEB_CASES, type Outputs } from './web/cases.js';
import { freshSeed } from './helpers.js';

type Wire = Record<string, { type: string; b64: string }>;
type Page = { evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>; close(): Promise<void>; goto(url: string): Promise<unknown>; waitForFunction(f: string): Promise<unknown> };
type Browser = { newPage(): Promise<Page & { on(ev: string, cb: (m: { type(): string; text(): string }) => void): void }>; close(): Promise<void> };

const missing = browserMissing();
if (missing) {
  if ((process.env.HOTPATHS_REQUIRE ?? '').split(',').includes('browser')) throw new Error(`the browser test is required here (HOTPATHS_REQUIRE) but cannot run: ${missing}`);
  console.warn(`[skip] browser: ${missing}`);
}

/** Per-element tolerance factor on S for gemm cases (tests/gemm.test.ts's TOL). */
const TOL = { webgpu: 1e-5, reference: 0 } as const;

function fromWire(w: Wire): Outputs {
  const out: Outputs = {};
  for (const [k, { type, b64 }] of Object.entries(w)) {
    const bytes = Buffer.from(b64, 'base64');
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const Ctor = { Uint8Array, Uint16Array, Float32Array, Int32Array }[type as 'Uint8Array'];
    if (!Ctor) throw new Error(`unexpected output type ${type}`);
    out[k] = new Ctor(buf);
  }
  return out;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** First byte where two outputs differ (with the element index), or null. */
function firstByteDiff(got: ArrayBufferView, want: ArrayBufferView, elemBytes: number): string | null {
  const g = bytesOf(got), w = bytesOf(want);
  if (g.length !== w.length) return `length ${g.length} bytes, expected ${w.length}`;
  for (let i = 0; i < g.length; i++) if (g[i] !== w[i]) return `element ${Math.floor(i / elemBytes)} differs (byte ${i}: 0x${g[i]!.toString(16)} vs 0x${w[i]!.toString(16)})`;
  return null;
}

describe.skipIf(!!missing)(`hotpaths/web in headless Chromium${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let dir: string;
  let meta: { inputs: Record<string, unknown> };
  let server: { origin: string; close(): Promise<void> };
  let browser: Browser;
  let page: Page;
  const consoleLines: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotpaths-web-'));
    meta = await buildWeb({ outfile: join(dir, 'hotpaths.js') });
    // the in-page harness, with `hotpaths/web` resolved by the page's import map to the bundle under test
    const esbuild = requireWebDep('esbuild');
    await esbuild.build({ entryPoints: [join(import.meta.dirname, 'web', 'page.ts')], outfile: join(dir, 'page.js'), bundle: true, format: 'esm', platform: 'browser', target: 'es2022', external: ['hotpaths/web'], logLevel: 'warning' });
    const html = `<!doctype html><meta charset="utf-8"><title>loading</title><link rel="icon" href="data:,">
<script type="importmap">{ "imports": { "hotpaths/web": "/hotpaths.js" } }</script>
<script type="module" src="/page.js"></script>`;
    server = await serveFiles({ '/': { body: html, type: 'text/html' }, '/hotpaths.js': join(dir, 'hotpaths.js'), '/hotpaths.js.map': join(dir, 'hotpaths.js.map'), '/page.js': join(dir, 'page.js') });
    browser = (await launchChromium()) as Browser;
    page = await openPage();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function openPage(): Promise<Page> {
    const p = await browser.newPage();
    p.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    p.on('pageerror', (e) => consoleLines.push(`pageerror: ${String(e)}`));
    await p.goto(`${server.origin}/`);
    await p.waitForFunction(`document.title === 'ready'`);
    return p;
  }

  it('the bundle carries nothing Node-only, and every shader inlined', () => {
    const inputs = Object.keys(meta.inputs);
    expect(inputs).toContain('src/web.ts');
    expect(inputs).toContain('src/webgpu/backend.ts');
    expect(inputs).toContain('src/reference/backend.ts');
    const nodeOnly = inputs.filter((f) => /^src\/(native|util)\/|^src\/cli\.ts$|^src\/runtime\/index\.ts$|^src\/webgpu\/node\.ts$|node_modules|^node:/.test(f));
    expect(nodeOnly).toEqual([]);
    const text = readFileSync(join(dir, 'hotpaths.js'), 'utf8');
    // no dynamic import, no require, no Node built-in, no process global: nothing for a browser to miss
    expect(text.match(/\bimport\s*\(|\brequire\s*\(|["']node:|\bprocess\./g)).toBeNull();
    for (const name of Object.keys(readShaderFiles())) expect(text).toContain(JSON.stringify(name));
  });

  it('WebGPU runs in the page (adapter, features, limits as `hotpaths info` shows them)', async () => {
    const info = await page.evaluate(() => (window as unknown as { hotpathsTest: { info(): Promise<Record<string, unknown>> } }).hotpathsTest.info(), undefined);
    console.log(`[browser] webgpu in headless Chromium: ${JSON.stringify({ device: info.deviceName, adapter: info.adapter, features: info.features, timer: info.timer })}`);
    expect(Array.isArray(info.features)).toBe(true);
    expect(info.ownDevice).toBe(true);
  });

  for (const backend of ['webgpu', 'reference'] as const) {
    for (const c of WEB_CASES) {
      const name = `${c.family} ${c.name}`;
      it(`${name}: ${backend} in the page matches Node's reference`, async (ctx) => {
        const seed = freshSeed();
        const r = await page.evaluate(([n, b, s]) => (window as unknown as { hotpathsTest: { runCase(n: string, b: string, s: number): Promise<{ skipped?: string; outputs?: Wire }> } }).hotpathsTest.runCase(n, b, s), [name, backend, seed] as const);
        if (r.skipped) {
          console.warn(`[skip] ${name} on ${backend} in the page: ${r.skipped}`);
          ctx.skip(r.skipped);
        }
        const got = fromWire(r.outputs!);
        const ref = await lib.init({ backend: 'reference', verbose: false });
        lib.setPoison(true);
        const want = await c.run(lib, ref, seed);
        lib.setPoison(false);
        expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
        if (want.input) expect(got.input![0], `seed ${seed}: the page generated different inputs than Node`).toBe(want.input[0]);
        if (c.compare === 'close') {
          for (const k of Object.keys(want)) {
            if (k === 'input') continue;
            const g = got[k] as Float32Array, w = want[k] as Float32Array;
            const scale = w.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);
            for (let i = 0; i < w.length; i++) {
              const ok = Number.isNaN(w[i]!) ? Number.isNaN(g[i]!) : g[i] === w[i] || Math.abs(g[i]! - w[i]!) <= 1e-4 * Math.abs(w[i]!) + 1e-5 * scale;
              if (!ok) expect.fail(`seed ${seed}: ${k}[${i}] = ${g[i]}, reference ${w[i]}`);
            }
          }
          return;
        }
        if (c.compare === 'exact') {
          for (const k of Object.keys(want)) expect(firstByteDiff(got[k]!, want[k]!, want[k]!.BYTES_PER_ELEMENT), `${k}, seed ${seed}`).toBeNull();
          return;
        }
        const S = await c.bound!(lib, ref, seed);
        const toF32 = (a: Outputs[string]) => (a instanceof Uint16Array ? fromBf16(a) : (a as Float32Array));
        const g = toF32(got.d!), w = toF32(want.d!);
        expect(g.length).toBe(w.length);
        const tol = TOL[backend];
        for (let i = 0; i < w.length; i++) {
          const bound = tol * S[i]! + (c.bf16 ? Math.abs(w[i]!) * 2 ** -7 : 0); // bf16: one ulp
          if (!(Math.abs(g[i]! - w[i]!) <= bound)) expect.fail(`seed ${seed}: d[${i}] = ${g[i]}, reference ${w[i]}, allowed ±${bound}`);
        }
      });
    }
  }

  it("a page's own GPUDevice and GPUBuffers: used as is, no copies, left alive", async () => {
    const seed = freshSeed();
    const byoPage = await openPage(); // a fresh page: the device must be the first webgpu use
    try {
      const r = await byoPage.evaluate((s) => (window as unknown as { hotpathsTest: { byo(s: number): Promise<Record<string, unknown>> } }).hotpathsTest.byo(s), seed);
      const x = byoInputs(seed);
      expect(r.inputHash, 'the page generated different inputs than Node').toBe(hashBytes(x));
      expect(r.sameDevice).toBe(true);
      expect(r.bufferIntact).toBe(true);
      const ref = await lib.init({ backend: 'reference', verbose: false });
      const enc = async (v: Float32Array) => (await (await lib.fp8.encode(ref.tensor(v, [v.length]), 'e4m3')).read()) as Uint8Array;
      expect(firstByteDiff(fromWire(r.first as Wire).q!, await enc(x), 1), `seed ${seed}`).toBeNull();
      expect(firstByteDiff(fromWire(r.second as Wire).q!, await enc(x.map((v) => -v)), 1), `seed ${seed}: the second write to the caller's buffer`).toBeNull();
    } finally {
      await byoPage.close();
    }
  });

  it('the page logged no errors', () => {
    expect(consoleLines.filter((l) => /^(error|pageerror)/.test(l))).toEqual([]);
  });
});
