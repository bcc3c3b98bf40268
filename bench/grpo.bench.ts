// grpo benchmarks: grpo.fusedLoss forward+backward from bf16 logits at V = 151,936. Memory-bound: GB/s
// = (logits read + gradient written) / time against the copy ceiling (the HBM floor is bytes / copy
// rate). Peers in the same run: PyTorch eager on cuda (bench/peers/torch_grpo.py: log_softmax +
// gather + the TRL-style clipped loss with k3 KL + autograd; logits upcast to f32, and in bf16), the
// next backend down elsewhere.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Backend } from '../src/runtime/backend.js';
import { packageRoot } from '../src/util/paths.js';
import type { Ceilings } from './ceilings.js';
import { grpoBytes, grpoCaseName, grpoCases, prepareGrpo, type GrpoCase } from './grpo.cases.js';
import { rates, timeOp, type BenchOptions, type Measurement } from './harness.js';

export { grpoCases, grpoCaseName } from './grpo.cases.js';

interface TorchGrpo {
  /** ms per forward+backward, null where it ran out of memory */
  eager_f32_ms: number | null;
  /** 1: the whole batch; 2 or 4: it ran as that many micro-batches, the whole one being out of memory */
  eager_f32_microbatches: number | null;
  eager_bf16_ms: number | null;
}

/** PyTorch eager peers for cuda, by N; undefined without PyTorch. */
function torchPeers(cases: GrpoCase[]): Record<string, TorchGrpo> | undefined {
  const input = cases.map((c) => ({ N: c.B * c.T, V: c.V, key: `${c.B}x${c.T}x${c.V}` }));
  const r = spawnSync('python3', [join(packageRoot(), 'bench', 'peers', 'torch_grpo.py')], { input: JSON.stringify(input), encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) {
    process.stderr.write(`bench: no PyTorch peer (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})\n`);
    return undefined;
  }
  return JSON.parse(r.stdout) as Record<string, TorchGrpo>;
}

export async function benchGrpo(backend: Backend, ceilings: Ceilings, opts: BenchOptions, peer?: Backend): Promise<Measurement[]> {
  const cases = grpoCases(backend, opts.quick);
  // the torch peer first, while the GPU's memory is still all free
  const torch = backend.name === 'cuda' ? torchPeers(cases) : undefined;
  const out: Measurement[] = [];
  for (const c of cases) {
    const p = await prepareGrpo(backend, c);
    const { ms, timer } = await timeOp(backend, p.run, opts.quick);
    p.free();
    const shape = `${c.B}x${c.T}x${c.V}`;
    const m: Measurement = { family: 'grpo', op: grpoCaseName(c), backend: backend.name, shape, ms, timer, ...rates(ms, { bytes: grpoBytes(c) }, ceilings) };
    const t = torch?.[shape];
    if (t) {
      // OOM shows as a peer without a time
      const parts = t.eager_f32_microbatches ?? 1;
      const f32Name = parts > 1 ? `torch eager (f32 upcast, ${parts} micro-batches: the whole batch is out of memory)` : 'torch eager (f32 upcast)';
      Object.assign(m, t.eager_f32_ms !== null ? { peer: f32Name, peer_ms: t.eager_f32_ms } : { peer: 'torch eager (f32 upcast): out of memory' });
      if (t.eager_bf16_ms !== null) Object.assign(m, { peer_alt: 'torch eager (bf16)', peer_alt_ms: t.eager_bf16_ms });
    } else if (peer?.grpo && peer.logprob) {
      const pc = { ...c, inPlace: !!peer.grpo.fusedTokenLoss };
      const pp = await prepareGrpo(peer, pc);
      Object.assign(m, { peer: peer.name, peer_ms: (await timeOp(peer, pp.run, true)).ms });
      pp.free();
    }
    out.push(m);
  }
  return out;
}
