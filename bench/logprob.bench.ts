// logprob benchmarks: per-token log-probs from logits (f32 and bf16; with entropy) and their backward
// (in place over f32 logits), at Qwen's vocabulary (151,936). Memory-bound: GB/s = (bytes read + bytes
// written) / time, against the copy ceiling. Peer in the same run: the reference backend for cpu, the
// cpu backend for the GPUs (a PyTorch peer comes with the cuda kernels).

import { gemm, grpo, logprob } from '../src/index.js';
import type { Backend, BackendName } from '../src/runtime/backend.js';
import { viewAs, type Tensor } from '../src/tensor.js';
import { logprobBytes as bytes, logprobCaseName, logprobCases, prepareLogprob as prepare, QWEN_VOCAB } from './logprob.cases.js';

export { logprobCaseName, logprobCases, type LogprobCase } from './logprob.cases.js';
import type { Ceilings } from './ceilings.js';
import { rates, timeOp, type BenchOptions, type Measurement } from './harness.js';

export async function benchLogprob(backend: Backend, ceilings: Ceilings, opts: BenchOptions, peer?: Backend): Promise<Measurement[]> {
  const out: Measurement[] = [];
  for (const c of logprobCases(backend.name, opts.quick, backend.maxBytes)) {
    const p = await prepare(backend, c);
    const { ms, timer } = await timeOp(backend, p.run, opts.quick);
    p.free();
    const m: Measurement = { family: 'logprob', op: logprobCaseName(c), backend: backend.name, shape: `${c.N}x${c.V}`, ms, timer, ...rates(ms, { bytes: bytes(c) }, ceilings) };
    if (peer?.logprob) {
      const pp = await prepare(peer, c);
      Object.assign(m, { peer: peer.name, peer_ms: (await timeOp(peer, pp.run, true)).ms });
      pp.free();
    }
    out.push(m);
  }
  return out;
}

// ---------------------------------------------------------------- memory: from hidden states

export interface HiddenCase {
  N: number;
  H: number;
  V: number;
  /** Also run the unfused path (full [N, V] logits) for the time ratio. */
  unfused: boolean;
}

/** Qwen2.5-0.5B's head (H = 896, V = 151,936); N = 16384 is the size, the smaller N lets the unfused path fit. */
export function hiddenCases(backend: BackendName, quick: boolean): HiddenCase[] {
  if (quick || backend === 'reference') return [{ N: 256, H: 64, V: 4096, unfused: true }];
  // the unfused path needs [N, V] f32 in one tensor of < 2^31 elements: N = 14080 (8.6 GB) on cuda
  if (backend === 'cuda') return [{ N: 14080, H: 896, V: QWEN_VOCAB, unfused: true }, { N: 16384, H: 896, V: QWEN_VOCAB, unfused: false }];
  return [{ N: 2048, H: 896, V: QWEN_VOCAB, unfused: true }, { N: 16384, H: 896, V: QWEN_VOCAB, unfused: false }];
}

/**
 * fromHidden + fromHiddenBackward (what fusedLossFromHidden's two passes run, less the tiny loss) once,
 * timed on the host clock after a sync, with the backend's peak extra memory (peak tensor bytes during
 * the call minus the bytes held before it, the outputs included) next to the full f32 logits N·V·4;
 * grpo.fusedLossFromHidden's single pass where the backend has it; and, where asked, the unfused path
 * (full logits, fromLogits, backward in place, two GEMMs) the same way.
 * On webgpu each path runs once untimed first (its time is logged): a pipeline is compiled on its
 * first use and the pool's buffers are created on theirs, which a trainer pays once, not per step.
 * Without it the path timed first paid for the GEMM variants the paths after it reused (on lavapipe
 * the two-pass path's first run at N 128, H 64, V 2048 took 321 ms, its second 149 ms).
 */
export async function benchHiddenMemory(backend: Backend, c: HiddenCase, log: (l: string) => void): Promise<Measurement[]> {
  const { N, H, V } = c;
  const pat = (n: number, phase: number, scale: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.618 + phase) * scale);
  const h = backend.fromHost(pat(N * H, 0, 1), 'f32', [N, H]);
  const w = backend.fromHost(pat(V * H, 1, 0.05), 'f32', [V, H]);
  const y = backend.fromHost(Int32Array.from({ length: N }, (_, i) => (i * 7919) % V), 'i32', [N]);
  const g = backend.fromHost(new Float32Array(N).fill(1 / N), 'f32', [N]);
  const full = N * V * 4;
  const out: Measurement[] = [];
  const run = async (name: string, fn: () => Promise<Tensor[]>) => {
    if (backend.name === 'webgpu') {
      await backend.sync();
      const t0 = performance.now();
      (await fn()).forEach((t) => t.dispose());
      await backend.sync();
      log(`${name} ${N}x${H}x${V}: first run ${(performance.now() - t0).toFixed(1)} ms (pipelines compiled, buffers created), untimed`);
    }
    await backend.sync();
    backend.resetPeak?.();
    const before = backend.memoryStats?.().inUse ?? 0;
    const t0 = performance.now();
    const outs = await fn();
    await backend.sync();
    const ms = performance.now() - t0;
    const peak = (backend.memoryStats?.().peak ?? 0) - before;
    // what the call holds beyond its outputs (the gradients of hidden and the head are results, not scratch)
    const outBytes = outs.reduce((s, t) => s + t.bytes, 0);
    outs.forEach((t) => t.dispose());
    const m: Measurement = {
      family: 'logprob', op: name, backend: backend.name, shape: `${N}x${H}x${V}`, ms, timer: 'host',
      peak_extra_bytes: peak, peak_fraction_of_logits: peak / full, peak_scratch_fraction_of_logits: Math.max(0, peak - outBytes) / full,
    };
    log(`${name} ${m.shape}: ${ms.toFixed(1)} ms, peak extra ${(peak / 2 ** 20).toFixed(0)} MiB = ${((100 * peak) / full).toFixed(1)}% of the f32 logits (${((100 * (m.peak_scratch_fraction_of_logits ?? 0))).toFixed(1)}% beyond the outputs)`);
    out.push(m);
    return m;
  };
  try {
    const fused = await run('fromHidden fwd+bwd (chunked)', async () => {
      const f = await logprob.fromHidden(h, w, y);
      const b = await logprob.fromHiddenBackward(h, w, y, f.lse, g, { temperature: 1 });
      return [f.logp, f.lse, b.dHidden, b.dHeadWeight];
    });
    // the GRPO loss from hidden states: one pass per chunk of whole sequences where the fused
    // token-level kernel exists (sequences of 256 tokens, a full mask; the default chunk, N/18 rows,
    // then holds a few of them)
    const single = backend.grpo?.fusedTokenLoss && N % 256 === 0
      ? await run('grpo.fusedLossFromHidden (single pass)', async () => {
        const [B, T] = [N / 256, 256];
        const mk = (v: number) => backend.fromHost(new Float32Array(B * T).fill(v), 'f32', [B, T]);
        const extra = [mk(-1), mk(1), backend.fromHost(Float32Array.from({ length: B }, (_, i) => (i % 2 ? 1 : -1)), 'f32', [B])];
        const r = await grpo.fusedLossFromHidden({ hidden: h, headWeight: w, targets: viewAs(y, [B, T]), oldLogp: extra[0]!, advantages: extra[2]!, mask: extra[1]!, beta: 0 });
        extra.forEach((t) => t.dispose());
        return [r.logp, r.dHidden, r.dHeadWeight];
      })
      : undefined;
    if (c.unfused) {
      const unfused = await run('fromHidden fwd+bwd (unfused, full logits)', async () => {
        const z = await gemm.matmul(h, w);
        const f = await logprob.fromLogits(z, y);
        await logprob.fromLogitsBackward(z, y, f.lse, g, { temperature: 1, inPlace: true });
        const dH = await gemm.matmul(z, w, { transB: false });
        const dW = await gemm.matmul(z, h, { transA: true, transB: false });
        return [z, f.logp, f.lse, dH, dW];
      });
      Object.assign(fused, { peer: 'unfused', peer_ms: unfused.ms });
      if (single) Object.assign(single, { peer: 'unfused', peer_ms: unfused.ms });
    }
  } finally {
    [h, w, y, g].forEach((t) => t.dispose());
  }
  return out;
}
