// The cpu backend's GEMMs against the system's OpenBLAS sgemm (the addon's cpuBlasSgemm peer), on the
// addon directly: FP8 (f32 and bf16 out, A 1x128 and B 128x128 scales), f32 matmul (B transposed, as
// the peer) and OpenBLAS sgemm, GFLOP/s = 2·M·N·K / t.
//
// Timing on a shared machine: rounds of short blocks, one block per kernel (a warm-up call, then
// CALLS timed calls, median), the kernels interleaved within each round. The ratio to OpenBLAS is
// taken within each round and the median over rounds reported, so slow phases of other load on the
// machine hit both sides alike. Each block starts after a pause: OpenBLAS's worker threads spin for a
// while after a call, and would otherwise take a core from whatever runs next.
//
// Usage: node scripts/cpu-gemm-peer.mjs [M,N,K ...]   (default 1024,1024,1024 256,4096,7168)
//        ROUNDS=9 CALLS=5 THREADS=2 node scripts/cpu-gemm-peer.mjs
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

const require = createRequire(import.meta.url);
const addon = require('../build/Release/hotpaths.node');
if (process.env.THREADS) addon.setThreads(Number(process.env.THREADS));
const ROUNDS = Number(process.env.ROUNDS ?? 9);
const CALLS = Number(process.env.CALLS ?? 5);
const shapes = (process.argv.length > 2 ? process.argv.slice(2) : ['1024,1024,1024', '256,4096,7168']).map((s) => s.split(',').map(Number));

const info = addon.buildInfo();
const blas = addon.cpuBlasInfo();
if (!blas) throw new Error('no OpenBLAS found (Debian: apt-get install libopenblas0-pthread)');
console.log(`addon: ${info.threads} threads, ${info.simd}; peer: ${blas}`);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};

for (const [M, N, K] of shapes) {
  const KB = Math.ceil(K / 128);
  // E4M3 codes of finite values, scales near what quantize gives for unit-size data
  const a8 = new Uint8Array(M * K).map(() => (Math.random() * 126) | 0);
  const b8 = new Uint8Array(N * K).map(() => (Math.random() * 126) | 0);
  const aS = new Float32Array(M * KB).fill(1 / 448);
  const bS = new Float32Array(Math.ceil(N / 128) * KB).fill(1 / 448);
  const a32 = new Float32Array(M * K).map(() => Math.random() - 0.5);
  const b32 = new Float32Array(N * K).map(() => Math.random() - 0.5);
  const out32 = new Float32Array(M * N);
  const out16 = new Uint16Array(M * N);
  const kernels = {
    'openblas sgemm': () => addon.cpuBlasSgemm(a32, b32, M, N, K, out32),
    'fp8 -> f32': () => addon.cpuGemmFp8(a8, aS, b8, bS, M, N, K, 1, M, 128, 0, null, null, out32),
    'fp8 -> bf16': () => addon.cpuGemmFp8(a8, aS, b8, bS, M, N, K, 1, M, 128, 0, null, null, out16),
    'matmul f32': () => addon.cpuMatmul(a32, b32, M, N, K, false, true, null, out32),
  };
  const ms = Object.fromEntries(Object.keys(kernels).map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, run] of Object.entries(kernels)) {
      await sleep(200);
      await run();
      const times = [];
      for (let i = 0; i < CALLS; i++) {
        const t0 = performance.now();
        await run();
        times.push(performance.now() - t0);
      }
      ms[name].push(median(times));
    }
  }
  const gflops = (t) => (2 * M * N * K) / t / 1e6;
  console.log(`M=${M} N=${N} K=${K} (${ROUNDS} rounds x ${CALLS} calls)`);
  for (const name of Object.keys(kernels)) {
    const ratio = median(ms[name].map((t, i) => ms['openblas sgemm'][i] / t));
    const best = gflops(Math.min(...ms[name]));
    console.log(`  ${name.padEnd(15)} ${gflops(median(ms[name])).toFixed(1).padStart(6)} GFLOP/s (best round ${best.toFixed(1)}), ${ratio.toFixed(2)}x OpenBLAS`);
  }
}
