// fp8 benchmarks: encode, decode, quantize (1×128 and 128×128, f32 and bf16 input) and dequantize.
// All memory-bound: GB/s = (bytes read + bytes written) / time, against the copy ceiling.
// Peer in the same run: the reference backend for cpu (same shapes, fewer samples), the cpu
// backend for webgpu, PyTorch eager on the same GPU for cuda (bench/peers/torch_fp8.py).

import type { Backend } from '../src/runtime/backend.js';
import type { Ceilings } from './ceilings.js';
import { caseName, fp8Bytes, fp8Cases, prepareFp8 as prepare } from './fp8.cases.js';
import { fmtShape, rates, timeOp, type BenchOptions, type Measurement } from './harness.js';

export { caseName, fp8Bytes, fp8Cases, type Fp8Case } from './fp8.cases.js';

export async function benchFp8(backend: Backend, ceilings: Ceilings, opts: BenchOptions, peer?: { backend: Backend } | { external: Map<string, number>; name: string }): Promise<Measurement[]> {
  const out: Measurement[] = [];
  for (const c of fp8Cases(opts.quick)) {
    const bytes = fp8Bytes(c);
    const p = await prepare(backend, c);
    const { ms, timer } = await timeOp(backend, p.run, opts.quick);
    p.free();
    const m: Measurement = { family: 'fp8', op: caseName(c), backend: backend.name, shape: fmtShape(c.shape), ms, timer, ...rates(ms, { bytes }, ceilings) };
    if (peer && 'backend' in peer) {
      const pp = await prepare(peer.backend, c);
      m.peer = peer.backend.name;
      m.peer_ms = (await timeOp(peer.backend, pp.run, true)).ms;
      pp.free();
    } else if (peer) {
      const key = `${caseName(c)} ${fmtShape(c.shape)}`;
      if (peer.external.has(key)) {
        m.peer = peer.name;
        m.peer_ms = peer.external.get(key)!;
      }
    }
    out.push(m);
  }
  return out;
}
