// nn benchmarks: causal attention forward and backward (FLOP/s against the FP32 FMA ceiling), RMSNorm,
// SwiGLU (forward and backward) and AdamW (GB/s against the copy ceiling), at the GRPO trainer's
// default shapes and one larger model's (bench/nn.cases.ts). Peer in the same run: the reference
// backend for cpu (at the trainer's shapes only: the large ones take it seconds per call), the cpu
// backend for the GPUs.

import type { Backend } from '../src/runtime/backend.js';
import type { Ceilings } from './ceilings.js';
import { rates, timeOp, type BenchOptions, type Measurement } from './harness.js';
import { nnCases, nnShape, nnWork, prepareNn } from './nn.cases.js';

export { nnCases, nnShape, nnWork, type NnCase } from './nn.cases.js';

export async function benchNn(backend: Backend, ceilings: Ceilings, opts: BenchOptions, peer?: Backend): Promise<Measurement[]> {
  const out: Measurement[] = [];
  for (const c of nnCases(backend.name, opts.quick)) {
    const p = await prepareNn(backend, c);
    const { ms, timer } = await timeOp(backend, p.run, opts.quick);
    p.free();
    const m: Measurement = { family: 'nn', op: `${c.op} (${c.size})`, backend: backend.name, shape: nnShape(c), ms, timer, ...rates(ms, nnWork(c), ceilings) };
    if (peer?.nn && !(peer.name === 'reference' && c.size === 'large')) {
      const pp = await prepareNn(peer, c);
      Object.assign(m, { peer: peer.name, peer_ms: (await timeOp(peer, pp.run, true)).ms });
      pp.free();
    }
    out.push(m);
  }
  return out;
}
