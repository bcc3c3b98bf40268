// fp8 benchmark cases, shared by bench/fp8.bench.ts (Node) and the browser bench page (examples/web/):
// the shapes, the bytes a perfect kernel moves, and the inputs. No Node import here.

import * as fp8 from '../src/ops/fp8.js';
import type { Backend } from '../src/runtime/backend.js';
import type { Tensor } from '../src/tensor.js';
import { toBf16 } from '../src/dtype.js';

export interface Fp8Case {
  op: 'encode' | 'decode' | 'quantize' | 'dequantize';
  shape: [number, number];
  dtype: 'f32' | 'bf16';
  block: [1 | 128, 128];
}

/** DeepSeek-V3-like shapes: activations [tokens, hidden] with 1×128 groups, weights [N, K] in 128×128 blocks. */
export function fp8Cases(quick: boolean): Fp8Case[] {
  const act: [number, number] = quick ? [512, 7168] : [4096, 7168];
  const w: [number, number] = quick ? [1024, 2048] : [7168, 2048];
  return [
    { op: 'encode', shape: act, dtype: 'f32', block: [1, 128] },
    { op: 'decode', shape: act, dtype: 'f32', block: [1, 128] },
    { op: 'quantize', shape: act, dtype: 'f32', block: [1, 128] },
    { op: 'quantize', shape: act, dtype: 'bf16', block: [1, 128] },
    { op: 'quantize', shape: w, dtype: 'f32', block: [128, 128] },
    { op: 'dequantize', shape: act, dtype: 'f32', block: [1, 128] },
  ];
}

export function caseName(c: Fp8Case): string {
  return c.op === 'quantize' || c.op === 'dequantize' ? `${c.op} ${c.block.join('x')} ${c.dtype}` : c.op;
}

/** Bytes a perfect kernel moves: each input read once, each output written once. */
export function fp8Bytes(c: Fp8Case): number {
  const [M, K] = c.shape;
  const n = M * K;
  const scales = Math.ceil(M / c.block[0]) * Math.ceil(K / 128) * 4;
  const xBytes = c.dtype === 'bf16' ? 2 : 4;
  switch (c.op) {
    case 'encode':
      return n * 4 + n;
    case 'decode':
      return n + n * 4;
    case 'quantize':
      return n * xBytes + n + scales;
    case 'dequantize':
      return n + scales + n * 4;
  }
}

/** Builds inputs on `backend` and returns a function that runs the op once (disposing its output). */
export async function prepareFp8(backend: Backend, c: Fp8Case): Promise<{ run: () => Promise<void>; free: () => void }> {
  const [M, K] = c.shape;
  const host = new Float32Array(M * K);
  for (let i = 0; i < host.length; i++) host[i] = Math.sin(i * 0.618) * 3; // deterministic, not zeros
  const x = c.dtype === 'bf16' ? backend.fromHost(toBf16(host), 'bf16', [M, K]) : backend.fromHost(host, 'f32', [M, K]);
  const held: Tensor[] = [x];
  const q = await fp8.quantize(x, { block: c.block });
  held.push(q.data, q.scales);
  const run = {
    encode: async () => (await fp8.encode(x)).dispose(),
    decode: async () => (await fp8.decode(q.data)).dispose(),
    quantize: async () => {
      const r = await fp8.quantize(x, { block: c.block });
      r.data.dispose();
      r.scales.dispose();
    },
    dequantize: async () => (await fp8.dequantize(q)).dispose(),
  }[c.op];
  return { run, free: () => held.forEach((t) => t.dispose()) };
}
