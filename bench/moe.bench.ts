// moe benchmarks: DeepSeek-V3's router with the dispatch layout and the block alignment
// (gate+layout+align from bf16 x at T = 16384, 256 experts, 8 groups, 4 kept, top-8, hidden 7168; and
// the same from given logits, no GEMM), permute/unpermute of bf16 rows at hidden 7168, and dispatch
// (FP8, expanded) / combine (bf16) over a LocalGroup of 2 ranks on the one device, 4096 tokens a rank. GB/s =
// bytes counted (bench/moe.cases.ts: inputs read once, outputs written once) / time, against the copy
// ceiling. Peers in the same run: the same rule in plain PyTorch on the GPU for cuda
// (bench/peers/torch_moe.py), the next backend down otherwise (reference for cpu, cpu for webgpu and
// for cuda's dispatch/combine over a LocalGroup; the reference only where its JS loops finish in about
// a second). The moves across real ranks are bench/moe-nccl.mjs's.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Backend } from '../src/runtime/backend.js';
import { packageRoot } from '../src/util/paths.js';
import type { Ceilings } from './ceilings.js';
import { rates, timeOp, type BenchOptions, type Measurement } from './harness.js';
import { isGroupOp, moeBytes, moeCaseKey, moeCaseName, moeCases, moeCaseShape, prepareMoe as prepare, V3_ROUTING, type MoeCase } from './moe.cases.js';

export { moeCaseName, moeCases, type MoeCase } from './moe.cases.js';

/** torch timings for cuda: {key: ms}, or undefined without PyTorch (the reason goes to stderr). */
function torchPeer(cases: MoeCase[]): Record<string, number> | undefined {
  // (the router and the row movers; dispatch/combine over a LocalGroup have no PyTorch form here)
  const input = cases.filter((c) => !isGroupOp(c.op)).map((c) => ({ ...c, rsf: V3_ROUTING.routedScalingFactor, key: moeCaseKey(c) }));
  const r = spawnSync('python3', [join(packageRoot(), 'bench', 'peers', 'torch_moe.py')], { input: JSON.stringify(input), encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) {
    process.stderr.write(`bench: no PyTorch peer (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})\n`);
    return undefined;
  }
  return JSON.parse(r.stdout) as Record<string, number>;
}

/** The reference backend as a peer only where its loops take about a second or less. */
function peerAffords(peer: Backend, c: MoeCase): boolean {
  if (peer.name !== 'reference') return true;
  const work =
    c.op === 'gate+layout+align' ? c.T * c.H * c.E : c.op === 'route+layout+align' ? c.T * c.E * c.k * 4 : isGroupOp(c.op) ? c.R * c.T * c.H * c.k : c.T * c.H * c.k;
  return work <= 2 ** 28;
}

export async function benchMoe(backend: Backend, ceilings: Ceilings, opts: BenchOptions, peer?: Backend): Promise<Measurement[]> {
  const cases = moeCases(backend.name, opts.quick);
  const torch = backend.name === 'cuda' ? torchPeer(cases) : undefined;
  const out: Measurement[] = [];
  for (const c of cases) {
    const p = await prepare(backend, c);
    const { ms, timer } = await timeOp(backend, p.run, opts.quick);
    p.free();
    const m: Measurement = { family: 'moe', op: moeCaseName(c), backend: backend.name, shape: moeCaseShape(c), ms, timer, ...rates(ms, { bytes: moeBytes(c) }, ceilings) };
    if (torch && torch[moeCaseKey(c)] !== undefined) Object.assign(m, { peer: 'torch (same rule)', peer_ms: torch[moeCaseKey(c)] });
    else if ((!torch || isGroupOp(c.op)) && peer?.moe && peerAffords(peer, c)) {
      const pp = await prepare(peer, c);
      Object.assign(m, { peer: peer.name, peer_ms: (await timeOp(peer, pp.run, true)).ms });
      pp.free();
    }
    out.push(m);
  }
  return out;
}
