// The cpu backend's GEMMs against the system's OpenBLAS sgemm (the addon's cpuBlasSgemm peer), on the
// addon directly: FP8 (f32 and bf16 out, A 1x128 and B 128x128 scales), f32 matmul (B transposed, as
// the peer) and OpenBLAS sgemm, GFLOP/s = 2·M·N·K / t.
//
// Timing on a shared machine: rounds of blocks, one block per kernel (a warm-up call, then calls for
// at least BLOCK_MS, median), the kernels interleaved within each round. Around each block the
// script reads /proc/stat and its own CPU time: a block during which other processes used more than
// OTHERS (default 5%) of the machine's CPU time is dropped, and with it the rest of that round's
// comparison. Ratios to OpenBLAS are taken within a round (both kept), median over rounds. Each block
// starts after a pause: OpenBLAS's worker threads spin for a while after a call and would otherwise
// take a core from whatever runs next.
//
// Usage: node scripts/cpu-gemm-peer.mjs [M,N,K ...]   (default 1024,1024,1024 256,4096,7168)
//        ROUNDS=15 BLOCK_MS=300 OTHERS=0.05 THREADS=2 node scripts/cpu-gemm-peer.mjs
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

const require = createRequire(import.meta.url);
const addon = require('../build/Release/hotpaths.node');
if (process.env.THREADS) addon.setThreads(Number(process.env.THREADS));
const ROUNDS = Number(process.env.ROUNDS ?? 15);
const BLOCK_MS = Number(process.env.BLOCK_MS ?? 300);
const OTHERS = Number(process.env.OTHERS ?? 0.05);
const shapes = (process.argv.length > 2 ? process.argv.slice(2) : ['1024,1024,1024', '256,4096,7168']).map((s) => s.split(',').map(Number));

const info = addon.buildInfo();
const blas = addon.cpuBlasInfo();
if (!blas) throw new Error('no OpenBLAS found (Debian: apt-get install libopenblas0-pthread)');
console.log(`addon: ${info.threads} threads, ${info.simd}; peer: ${blas}`);

/** Busy CPU time of the whole machine so far, in ms (/proc/stat: all but idle and iowait). */
function machineBusyMs() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const busy = f.reduce((a, b) => a + b, 0) - f[3] - f[4] - (f[8] ?? 0) - (f[9] ?? 0); // minus idle, iowait, guest
  return (busy * 1000) / 100; // USER_HZ = 100
}
/** This process's CPU time so far (every thread, OpenBLAS's included), in ms. */
function ownMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

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
  const ms = Object.fromEntries(Object.keys(kernels).map((k) => [k, []])); // per round; NaN = dropped
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, run] of Object.entries(kernels)) {
      await sleep(200);
      await run();
      const busy0 = machineBusyMs(), own0 = ownMs(), wall0 = performance.now();
      const times = [];
      while (performance.now() - wall0 < BLOCK_MS || times.length < 3) {
        const t0 = performance.now();
        await run();
        times.push(performance.now() - t0);
      }
      const wall = performance.now() - wall0;
      const others = (machineBusyMs() - busy0 - (ownMs() - own0)) / (wall * cpus().length);
      ms[name].push(others > OTHERS ? NaN : median(times));
    }
  }
  const kept = ms['openblas sgemm'].map((_, i) => Object.values(ms).every((m) => !Number.isNaN(m[i])));
  const rounds = kept.filter(Boolean).length;
  if (rounds === 0) {
    console.log(`M=${M} N=${N} K=${K}: every round had other load above ${OTHERS * 100}% (raise OTHERS or ROUNDS)`);
    continue;
  }
  for (const name of Object.keys(kernels)) ms[name] = ms[name].filter((_, i) => kept[i]);
  const gflops = (t) => (2 * M * N * K) / t / 1e6;
  console.log(`M=${M} N=${N} K=${K}: ${rounds} of ${ROUNDS} rounds with other load under ${OTHERS * 100}%`);
  for (const name of Object.keys(kernels)) {
    const ratio = median(ms[name].map((t, i) => ms['openblas sgemm'][i] / t));
    const best = gflops(Math.min(...ms[name]));
    console.log(`  ${name.padEnd(15)} ${gflops(median(ms[name])).toFixed(1).padStart(6)} GFLOP/s (best round ${best.toFixed(1)}), ${ratio.toFixed(2)}x OpenBLAS`);
  }
}
