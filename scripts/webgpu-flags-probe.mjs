// Times the WebGPU fp8 kernels under several Dawn toggle sets, to find what costs bandwidth on a GPU.
// Usage (after `npx tsc -p .`): node scripts/webgpu-flags-probe.mjs '<toggles>' (one set per run: a
// backend starts once per process). Prints GB/s per op.
import { fp8, init, shutdown } from '../dist/src/index.js';
const extra = process.argv[2] ?? '';
const flags = ['disable-dawn-features=timestamp_quantization', `enable-dawn-features=allow_unsafe_apis${extra ? ',' + extra : ''}`];
const rt = await init({ backend: 'webgpu', dawnFlags: flags, verbose: false });
const be = rt.backend;
const [M, K] = [Number(process.env.M ?? 4096), 7168];
const host = new Float32Array(M * K).map((_, i) => Math.sin(i * 0.618) * 3);
const x = rt.tensor(host, [M, K]);
const q = await fp8.quantize(x);
const n = M * K;
const ops = {
  encode: async () => (await fp8.encode(x)).dispose(),
  decode: async () => (await fp8.decode(q.data)).dispose(),
  'quantize 1x128': async () => { const r = await fp8.quantize(x); r.data.dispose(); r.scales.dispose(); },
  copy: async () => be.copy(x).dispose(),
};
const out = [];
for (const [name, fn] of Object.entries(ops)) {
  const t = await be.timeGpu(fn, 20);
  out.push(`${name} ${t.ms.toFixed(4)} ms ${(n * (name === 'copy' ? 8 : 5) / (t.ms * 1e6)).toFixed(0)} GB/s (${t.source})`);
}
console.log(`[${extra || 'defaults'}] ${out.join(' | ')}`);
await shutdown();
