#!/usr/bin/env node
// Screenshot of the bench page (examples/web/) in headless Chromium: builds the page's script, serves
// it on 127.0.0.1, runs the benchmarks (quick shapes unless --full: SwiftShader runs WebGPU on the
// CPU here) and saves the whole page to docs/web-bench.png (or --out <file>). Prints the measurements.
import path from 'node:path';
import { buildExample } from './build-web.mjs';
import { browserMissing, launchChromium, serveFiles } from './web-browser.mjs';
import { root } from './web-deps.mjs';

const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const out = path.resolve(arg('--out') ?? path.join(root, 'docs', 'web-bench.png'));
const full = process.argv.includes('--full');

const missing = browserMissing();
if (missing) {
  console.error(`web-screenshot: ${missing}`);
  process.exit(1);
}
await buildExample();
const ex = path.join(root, 'examples', 'web');
const server = await serveFiles({ '/': path.join(ex, 'index.html'), '/dist/bench.js': path.join(ex, 'dist', 'bench.js'), '/dist/bench.js.map': path.join(ex, 'dist', 'bench.js.map') });
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on('console', (m) => m.type() === 'error' && console.error(`page: ${m.text()}`));
  const t0 = Date.now();
  await page.goto(`${server.origin}/?autorun=1&quick=${full ? 0 : 1}`);
  await page.waitForFunction(() => document.title.includes('done') || document.title.includes('failed'), undefined, { timeout: 600_000 });
  const title = await page.title();
  if (title.includes('failed')) throw new Error(`the page failed: ${await page.textContent('#status')}`);
  const results = await page.evaluate(() => window.benchResults);
  for (const m of results) console.log(`${m.family.padEnd(5)} ${m.op.padEnd(22)} ${m.shape.padEnd(16)} ${m.ms.toFixed(3).padStart(9)} ms${m.timer === 'device' ? '*' : ' '} ${m.gbps !== undefined ? `${m.gbps.toFixed(2)} GB/s` : ''}${m.tflops !== undefined ? `${m.tflops.toPrecision(3)} TFLOP/s` : ''}${m.ceiling_fraction !== undefined ? ` (${(m.ceiling_fraction * 100).toFixed(0)}% of ceiling)` : ''}`);
  console.log(`web-screenshot: ${await page.textContent('#ceilings')}`);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`web-screenshot: ${path.relative(root, out)} (${((Date.now() - t0) / 1000).toFixed(1)} s in the page)`);
} finally {
  await browser.close();
  await server.close();
}
