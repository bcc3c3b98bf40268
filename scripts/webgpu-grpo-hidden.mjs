// The GRPO loss from hidden states on webgpu, taken apart (issue 5: time ≤ 1.1× the unfused path).
// 1. End to end, per shape: grpo.fusedLossFromHidden's single pass, the two-pass chunked path
//    (logprob.fromHidden + fromHiddenBackward) and the unfused path (full logits), as
//    `hotpaths bench logprob` runs them (benchHiddenMemory: one untimed run each first, then one timed
//    on the host clock after a sync, with the peak extra memory).
// 2. Every kernel shape the three paths issue, alone, on the backend's GPU timer (timestamps where the
//    adapter has them): ms per call with matmul's automatic K splits and with none
//    (GEMM_TUNING.matmulSplits = 1), the calls per path, their sum, and the host time of each
//    variant's first call (on a fresh backend: its pipeline's compilation, where it is new).
// Usage (after `npx tsc -p .`): node scripts/webgpu-grpo-hidden.mjs [N,H,V …] [--no-e2e] [--no-kernels] [--reps R] [--repeat E]
//   --repeat E: the end-to-end comparison E times (the three paths in turn each time), medians reported.
//   default shape 2048,896,151936 (Qwen2.5-0.5B's head); sequences of T = 256 tokens as in the bench.
import { getBackend, shutdown } from '../dist/src/index.js';
import { GEMM_TUNING } from '../dist/src/webgpu/gemm.js';
import { defaultTokenChunk } from '../dist/src/ops/logprob.js';
import { benchHiddenMemory } from '../dist/bench/logprob.bench.js';

const args = process.argv.slice(2);
const e2e = !args.includes('--no-e2e');
const kernels = !args.includes('--no-kernels');
const repsAt = args.indexOf('--reps');
const reps = repsAt >= 0 ? Number(args[repsAt + 1]) : 5;
const repeatAt = args.indexOf('--repeat');
const repeat = repeatAt >= 0 ? Number(args[repeatAt + 1]) : 1;
const shapes = args.filter((a, i) => /^\d+,\d+,\d+$/.test(a)).map((a) => a.split(',').map(Number));
if (shapes.length === 0) shapes.push([2048, 896, 151936]);
const T = 256;

let be = await getBackend('webgpu');
console.log(`device: ${be.deviceName}; timer: ${be.deviceTimer ? 'timestamp-query' : 'host'}`);

/** The chunks each path uses at N, H, V (the formulas of src/ops/logprob.ts and src/ops/grpo.ts). */
function chunks(N, H, V) {
  const fwd = defaultTokenChunk(N);
  const vocab = Math.max(64, Math.floor((V / 16 / 1.125 - H) / 64) * 64);
  const B = Math.ceil(N / T);
  const gcd = (a, b) => (b === 0 ? a : gcd(b, a % b));
  const step = 64 / gcd((T * H) % 64 || 64, 64);
  let seqs = Math.max(1, Math.floor(defaultTokenChunk(N) / T));
  seqs = Math.min(B, Math.ceil(seqs / step) * step);
  return { fwd, vocab, single: seqs * T };
}

/** The kernels of each path: [path, op, kind, dims, calls]; gemm dims [M, N, K, transA, transB, c]. */
function plan(N, H, V) {
  const c = chunks(N, H, V);
  const nf = Math.ceil(N / c.fwd), nv = Math.ceil(V / c.vocab), ns = Math.ceil(N / c.single);
  return [
    ['unfused', 'z = h·Wᵀ', 'gemm', [N, V, H, false, true, 'none'], 1],
    ['unfused', 'fromLogits', 'fwd', [N, V], 1],
    ['unfused', 'backward in place', 'bwd', [N, V], 1],
    ['unfused', 'dH = dz·W', 'gemm', [N, H, V, false, false, 'none'], 1],
    ['unfused', 'dW = dzᵀ·h', 'gemm', [V, H, N, true, false, 'none'], 1],
    ['two-pass', 'z = h·Wᵀ (token chunk)', 'gemm', [c.fwd, V, H, false, true, 'none'], nf],
    ['two-pass', 'fromLogits (token chunk)', 'fwd', [c.fwd, V], nf],
    ['two-pass', 'z = h·W[v]ᵀ (vocab chunk)', 'gemm', [N, c.vocab, H, false, true, 'none'], nv],
    ['two-pass', 'backward in place (vocab chunk)', 'bwd', [N, c.vocab], nv],
    ['two-pass', 'dW[v] = dzᵀ·h', 'gemm', [c.vocab, H, N, true, false, 'none'], nv],
    ['two-pass', 'dH (+)= dz·W[v]', 'gemm', [N, H, c.vocab, false, false, 'c'], nv],
    ['single', 'z = h·Wᵀ (sequence chunk)', 'gemm', [c.single, V, H, false, true, 'none'], ns],
    ['single', 'fused token kernel', 'fused', [c.single, V], ns],
    ['single', 'dH = dz·W', 'gemm', [c.single, H, V, false, false, 'none'], ns],
    ['single', 'dW += dzᵀ·h (in place)', 'gemm', [V, H, c.single, true, false, 'inplace'], ns],
  ];
}

async function timeKernel(kind, d) {
  const held = [];
  const t = (dtype, shape) => {
    const x = be.empty(dtype, shape);
    held.push(x);
    return x;
  };
  let fn;
  let flops = 0;
  if (kind === 'gemm') {
    const [M, Nn, K, tA, tB, c] = d;
    const a = t('f32', tA ? [K, M] : [M, K]), b = t('f32', tB ? [Nn, K] : [K, Nn]), out = t('f32', [M, Nn]);
    const cc = c === 'c' ? t('f32', [M, Nn]) : c === 'inplace' ? out : null;
    fn = () => be.gemm.matmul(a, b, tA, tB, cc, out);
    flops = 2 * M * Nn * K;
  } else {
    const [R, V] = d;
    const z = t('f32', [R, V]);
    const y = be.fromHost(new Int32Array(R), 'i32', [R]);
    const f = (v) => be.fromHost(new Float32Array(R).fill(v), 'f32', [R]);
    const [logp, lse, g, old, mask] = [t('f32', [R]), f(0), f(1e-3), f(-1), f(1)];
    held.push(y, lse, g, old, mask);
    if (kind === 'fwd') fn = () => be.logprob.fromLogits(z, y, 1, logp, lse, null);
    else if (kind === 'bwd') fn = () => be.logprob.fromLogitsBackward(z, y, lse, g, 1, z);
    else {
      const B = Math.ceil(R / T);
      const adv = be.fromHost(new Float32Array(B).fill(1), 'f32', [B]), w = be.fromHost(new Float32Array(B).fill(1 / R), 'f32', [B]);
      const stats = t('f32', [R, 4]);
      held.push(adv, w);
      fn = () => be.grpo.fusedTokenLoss({ logits: z, targets: y, oldLogp: old, refLogp: null, advantages: adv, mask, seqWeight: w, T: Math.min(T, R), temperature: 1, epsLow: 0.2, epsHigh: 0.2, delta: null, beta: 0 }, { logp, dlogits: z, stats });
    }
  }
  await be.sync();
  const t0 = performance.now();
  await fn();
  const firstHost = performance.now() - t0;
  await be.sync();
  const r = await be.timeGpu(fn, reps, { warmup: 1 });
  held.forEach((x) => x.dispose());
  return { ms: r.ms, firstHost, flops };
}

for (const [N, H, V] of shapes) {
  console.log(`\n== N ${N}, H ${H}, V ${V}: chunks ${JSON.stringify(chunks(N, H, V))} (rows per token chunk, vocabulary entries per chunk, rows per single-pass chunk)`);
  if (e2e) {
    const times = {};
    for (let i = 0; i < repeat; i++) {
      for (const m of await benchHiddenMemory(be, { N, H, V, unfused: N * V * 4 <= be.maxBytes }, (l) => console.log(`  ${l}`))) (times[m.op] ??= []).push(m.ms);
    }
    const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
    const unf = Object.keys(times).find((op) => op.includes('unfused'));
    for (const [op, ms] of Object.entries(times)) {
      console.log(`  e2e ${op}: median ${median(ms).toFixed(1)} ms of [${ms.map((v) => v.toFixed(1)).join(', ')}]${unf && op !== unf ? ` = ${(median(ms) / median(times[unf])).toFixed(2)}× the unfused path` : ''}`);
    }
    // a fresh device for the table: first calls then include their pipelines' compilation
    await await shutdown();
    be = await getBackend('webgpu');
  }
  if (!kernels) continue;
  const totals = {};
  console.log('  path      kernel                               shape                      calls  ms/call(auto)  TFLOP/s  ms/call(no split)  first call host ms');
  for (const [path, op, kind, d, calls] of plan(N, H, V)) {
    GEMM_TUNING.matmulSplits = 0;
    const auto = await timeKernel(kind, d);
    let none = null;
    if (kind === 'gemm') {
      GEMM_TUNING.matmulSplits = 1;
      none = await timeKernel(kind, d);
      GEMM_TUNING.matmulSplits = 0;
    }
    totals[path] = (totals[path] ?? 0) + auto.ms * calls;
    const shape = kind === 'gemm' ? `${d[0]}x${d[1]}x${d[2]}${d[3] ? ' Aᵀ' : ''}${d[4] ? ' Bᵀ' : ''}${d[5] !== 'none' ? ` +C(${d[5]})` : ''}` : `${d[0]}x${d[1]}`;
    console.log(`  ${path.padEnd(9)} ${op.padEnd(36)} ${shape.padEnd(26)} ${String(calls).padStart(5)}  ${auto.ms.toFixed(3).padStart(13)}  ${auto.flops ? (auto.flops / (auto.ms * 1e9)).toFixed(1).padStart(7) : '       '}  ${none ? none.ms.toFixed(3).padStart(17) : ''.padStart(17)}  ${auto.firstHost.toFixed(1).padStart(18)}`);
  }
  for (const [path, ms] of Object.entries(totals)) console.log(`  sum of kernels, ${path}: ${ms.toFixed(1)} ms${path !== 'unfused' ? ` = ${(ms / totals.unfused).toFixed(2)}× the unfused path's` : ''}`);
}
await shutdown();
