#!/usr/bin/env node
// Times nn.attention forward + backward (one call of each, outputs freed) on a backend and a peer at
// the trainer's default shape, the bench's large one and a longer sequence: median wall time of
// synced reps after a warm-up, both backends in one process. Needs `npm run build` (dist/).
//   node scripts/nn-attention-time.mjs [backend = cuda] [peer = cpu]
import { init, nn, shutdown } from '../dist/src/index.js';

const [name = 'cuda', peerName = 'cpu'] = process.argv.slice(2);
// [B, T, nH, Dh]: bench/nn.cases.ts's 'trainer' and 'large', then a 1024-token sequence
const SHAPES = [
  [8, 128, 4, 32],
  [4, 256, 8, 64],
  [4, 1024, 8, 64],
];

async function medianMs(rt, shape, reps) {
  const n = shape.reduce((a, b) => a * b, 1);
  const make = (phase) => rt.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.618 + phase)), shape);
  const [q, k, v, dO] = [make(0), make(1), make(2), make(3)];
  const run = async () => {
    const a = await nn.attention(q, k, v);
    const g = await nn.attentionBackward(q, k, v, a.out, a.lse, dO);
    for (const t of [a.out, a.lse, g.dq, g.dk, g.dv]) t.dispose();
  };
  await run();
  await rt.backend.sync();
  const ms = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await run();
    await rt.backend.sync();
    ms.push(performance.now() - t0);
  }
  for (const t of [q, k, v, dO]) t.dispose();
  ms.sort((a, b) => a - b);
  return ms[ms.length >> 1];
}

const rt = await init({ backend: name });
const peer = await init({ backend: peerName });
console.log(`attention fwd+bwd: ${name} (${rt.backend.deviceName}) vs ${peerName} (${peer.backend.deviceName})`);
console.log('shape [B, T, nH, Dh] | causal GFLOP | ms | peer ms | speedup');
for (const shape of SHAPES) {
  const [B, T, nH, Dh] = shape;
  const gflop = (14 * Dh * B * nH * (T * (T + 1)) / 2) / 1e9; // 4·Dh forward + 10·Dh backward per causal pair
  const ms = await medianMs(rt, shape, 20);
  const peerMs = await medianMs(peer, shape, shape[1] >= 1024 ? 3 : 7);
  console.log(`[${shape.join(', ')}] | ${gflop.toFixed(3)} | ${ms.toFixed(3)} | ${peerMs.toFixed(3)} | ${(peerMs / ms).toFixed(1)}x`);
}
await shutdown();
