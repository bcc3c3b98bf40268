// Tuning sweep for the WebGPU fp8 kernels (src/webgpu/fp8.ts FP8_TUNING): times each variant with
// timestamp queries on the real adapter and prints GB/s per op and variant, best first.
// Usage (after `npx tsc -p .`): node scripts/webgpu-fp8-sweep.mjs
import { fp8, getBackend, shutdown, toBf16 } from '../dist/src/index.js';
import { FP8_TUNING } from '../dist/src/webgpu/fp8.js';

const be = await getBackend('webgpu');
console.log(`adapter: ${be.deviceName}; device.adapterInfo.subgroupMinSize = ${be.device.adapterInfo?.subgroupMinSize}`);
const [M, K] = process.env.QUICK ? [256, 1024] : [4096, 7168];
const host = new Float32Array(M * K).map((_, i) => Math.sin(i * 0.618) * 3);
const x = be.fromHost(host, 'f32', [M, K]);
const xb = be.fromHost(toBf16(host), 'bf16', [M, K]);
const w = be.fromHost(host.subarray(0, (process.env.QUICK ? 256 * 1024 : 7168 * 2048)), "f32", process.env.QUICK ? [256, 1024] : [7168, 2048]);
const q = await fp8.quantize(x);
const n = M * K;
const ops = {
  'quantize 1x128 f32': { bytes: n * 5, run: async () => { const r = await fp8.quantize(x); r.data.dispose(); r.scales.dispose(); } },
  'quantize 1x128 bf16': { bytes: n * 3, run: async () => { const r = await fp8.quantize(xb); r.data.dispose(); r.scales.dispose(); } },
  'quantize 128x128 f32': { bytes: 7168 * 2048 * 5, run: async () => { const r = await fp8.quantize(w, { block: [128, 128] }); r.data.dispose(); r.scales.dispose(); } },
  encode: { bytes: n * 5, run: async () => (await fp8.encode(x)).dispose() },
  decode: { bytes: n * 5, run: async () => (await fp8.decode(q.data)).dispose() },
  dequantize: { bytes: n * 5, run: async () => (await fp8.dequantize(q)).dispose() },
};
const variants = [];
for (const subgroups of ["auto", true, false]) for (const quantizeLanes of [0, 8, 16, 32]) variants.push({ subgroups, quantizeLanes });
for (const elementwiseUnroll of [1, 2, 4, 8]) variants.push({ elementwiseUnroll });
for (const tileWorkgroup of [256, 512, 1024]) variants.push({ tileWorkgroup });
const defaults = { ...FP8_TUNING };
const rows = [];
for (const v of variants) {
  Object.assign(FP8_TUNING, defaults, v);
  for (const [name, op] of Object.entries(ops)) {
    if ('tileWorkgroup' in v && !name.includes('128x128')) continue;
    if ('elementwiseUnroll' in v && name.startsWith('quantize')) continue;
    if ('quantizeLanes' in v && !name.includes('1x128')) continue;
    try {
      const t = await be.timeGpu(op.run, 10);
      rows.push({ name, v: JSON.stringify(v), ms: t.ms, gbps: op.bytes / (t.ms * 1e6) });
    } catch (e) {
      rows.push({ name, v: JSON.stringify(v), ms: NaN, gbps: 0, err: String(e.message).slice(0, 80) });
    }
  }
}
rows.sort((a, b) => a.name.localeCompare(b.name) || b.gbps - a.gbps);
for (const r of rows) console.log(`${r.name.padEnd(22)} ${r.v.padEnd(42)} ${r.ms.toFixed(4)} ms ${r.gbps.toFixed(0).padStart(6)} GB/s ${r.err ?? ''}`);
await shutdown();
