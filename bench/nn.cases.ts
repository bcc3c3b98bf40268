// nn benchmark cases, shared by bench/nn.bench.ts (Node) and the browser bench page (examples/web/):
// shapes, the work a perfect kernel does, inputs. No Node import here.
//
// Shapes: 'trainer' is the GRPO trainer's default size on the 2-core CPU (B·T = 8·128 rows, D = 128
// in 4 heads of 32, SwiGLU hidden 384, about 1M parameters for AdamW); 'large' is a bigger model's
// (B·T = 4·256 rows, D = 512 in 8 heads of 64, hidden 1408, 16M parameters). Attention is judged
// in FLOP/s (compute-bound), the rest in GB/s (memory-bound).

import * as nn from '../src/ops/nn.js';
import type { Backend } from '../src/runtime/backend.js';
import type { Tensor } from '../src/tensor.js';

export type NnOp = 'attention fwd' | 'attention bwd' | 'rmsnorm fwd' | 'rmsnorm bwd' | 'swiglu fwd' | 'swiglu bwd' | 'adamw';

export interface NnCase {
  op: NnOp;
  size: 'trainer' | 'large';
  B: number;
  T: number;
  nH: number;
  Dh: number;
  /** SwiGLU hidden size (rows B·T). */
  F: number;
  /** AdamW: parameters in one tensor. */
  params: number;
}

const TRAINER = { B: 8, T: 128, nH: 4, Dh: 32, F: 384, params: 1 << 20 };
const LARGE = { B: 4, T: 256, nH: 8, Dh: 64, F: 1408, params: 1 << 24 };
const OPS: NnOp[] = ['attention fwd', 'attention bwd', 'rmsnorm fwd', 'rmsnorm bwd', 'swiglu fwd', 'swiglu bwd', 'adamw'];

/** Every op at the trainer's size; the large size too unless quick (or on the reference, where it takes seconds). */
export function nnCases(backend: string, quick: boolean): NnCase[] {
  const sizes = quick || backend === 'reference' ? [['trainer', TRAINER] as const] : ([['trainer', TRAINER], ['large', LARGE]] as const);
  return sizes.flatMap(([size, s]) => OPS.map((op) => ({ op, size, ...s })));
}

export function nnShape(c: NnCase): string {
  const D = c.nH * c.Dh;
  if (c.op.startsWith('attention')) return `B${c.B} T${c.T} H${c.nH} Dh${c.Dh}`;
  if (c.op.startsWith('rmsnorm')) return `${c.B * c.T}x${D}`;
  if (c.op.startsWith('swiglu')) return `${c.B * c.T}x${c.F}`;
  return `${c.params}`;
}

/** Query-key pairs of causal attention: each query sees itself and the keys before it. */
function causalPairs(c: NnCase): number {
  return c.B * c.nH * ((c.T * (c.T + 1)) / 2);
}

/**
 * What a perfect kernel does. Attention (FLOPs, a multiply-add = 2): forward 2·Dh for q·k and 2·Dh
 * for p·v per causal pair; backward 10·Dh per pair (the scores again, dO·v, dq, dk, dv). The rest
 * (bytes read + written once, f32): rmsnorm x in, out out (fwd), dOut and x in, dx out (bwd); swiglu
 * gate and up in, out out (fwd), gate, up, dOut in, dGate, dUp out (bwd); adamw param, grad, m, v in
 * and param, m, v out.
 */
export function nnWork(c: NnCase): { bytes?: number; flops?: number } {
  const rows = c.B * c.T, D = c.nH * c.Dh;
  switch (c.op) {
    case 'attention fwd':
      return { flops: 4 * c.Dh * causalPairs(c) };
    case 'attention bwd':
      return { flops: 10 * c.Dh * causalPairs(c) };
    case 'rmsnorm fwd':
      return { bytes: 4 * (2 * rows * D + D + rows) };
    case 'rmsnorm bwd':
      return { bytes: 4 * (3 * rows * D + 2 * D + rows) };
    case 'swiglu fwd':
      return { bytes: 4 * 3 * rows * c.F };
    case 'swiglu bwd':
      return { bytes: 4 * 5 * rows * c.F };
    case 'adamw':
      return { bytes: 4 * 7 * c.params };
  }
}

/** Deterministic values in about [−scale, scale]. */
function pattern(n: number, phase: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(i * 0.618 + phase) * scale;
  return out;
}

/** Inputs on `backend`; run() launches the op once (outputs freed as they come). */
export async function prepareNn(backend: Backend, c: NnCase): Promise<{ run: () => Promise<void>; free: () => void }> {
  const rows = c.B * c.T, D = c.nH * c.Dh;
  const held: Tensor[] = [];
  const t = (n: number, shape: number[], phase: number, scale = 1): Tensor => {
    const x = backend.fromHost(pattern(n, phase, scale), 'f32', shape);
    held.push(x);
    return x;
  };
  const free = () => held.forEach((x) => x.dispose());
  const drop = (...xs: Tensor[]) => xs.forEach((x) => x.dispose());
  switch (c.op) {
    case 'attention fwd':
    case 'attention bwd': {
      const shape = [c.B, c.T, c.nH, c.Dh], n = rows * D;
      const q = t(n, shape, 0), k = t(n, shape, 1), v = t(n, shape, 2), dO = t(n, shape, 3);
      if (c.op === 'attention fwd') return { run: async () => { const a = await nn.attention(q, k, v); drop(a.out, a.lse); }, free };
      const a = await nn.attention(q, k, v);
      held.push(a.out, a.lse);
      return { run: async () => { const g = await nn.attentionBackward(q, k, v, a.out, a.lse, dO); drop(g.dq, g.dk, g.dv); }, free };
    }
    case 'rmsnorm fwd':
    case 'rmsnorm bwd': {
      const x = t(rows * D, [rows, D], 0), w = t(D, [D], 1), g = t(rows * D, [rows, D], 2), dw = t(D, [D], 3);
      if (c.op === 'rmsnorm fwd') return { run: async () => { const r = await nn.rmsnorm(x, w); drop(r.out, r.rstd); }, free };
      const r = await nn.rmsnorm(x, w);
      held.push(r.out, r.rstd);
      return { run: async () => drop(await nn.rmsnormBackward(g, x, w, r.rstd, dw)), free };
    }
    case 'swiglu fwd':
    case 'swiglu bwd': {
      const gate = t(rows * c.F, [rows, c.F], 0, 4), up = t(rows * c.F, [rows, c.F], 1), d = t(rows * c.F, [rows, c.F], 2);
      if (c.op === 'swiglu fwd') return { run: async () => drop(await nn.swiglu(gate, up)), free };
      return { run: async () => { const r = await nn.swigluBackward(gate, up, d); drop(r.dGate, r.dUp); }, free };
    }
    case 'adamw': {
      const p = t(c.params, [c.params], 0), g = t(c.params, [c.params], 1, 0.01), m = t(c.params, [c.params], 2, 0.001), v = t(c.params, [c.params], 3, 0);
      let step = 0;
      return { run: () => nn.adamw(p, g, m, v, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: ++step }), free };
    }
  }
}
