// nn launchers: the trainer's embedding, RMSNorm, RoPE, causal attention, SwiGLU, addScaled,
// sumSquares and AdamW as WGSL kernels (shaders/nn/), and sampling on the host. Shapes, dtypes and
// options were checked by src/ops/nn.ts (ids and uniforms only where the values are on the host; the
// kernels never read out of bounds for a bad id). Floats reach the shaders as f32 bit patterns.
//
// Every kernel is deterministic (no atomics): reductions run in one invocation or one workgroup in a
// fixed order. Outputs that alias an input (rope in place, addScaled into a or b) are computed into a
// scratch tensor and copied back, since WebGPU refuses one buffer bound as read and read_write.
// Sampling reads the logits back and runs the reference's f64 steps (src/reference/nn.ts): its ids go
// to the host anyway (stop tokens, the next step's input), and an f32 sort on the GPU would not give
// the same ids as the other backends.

import { HotpathsError } from '../errors.js';
import { ropeFrequency, sample as sampleHost } from '../reference/nn.js';
import type { NnKernels } from '../runtime/backend.js';
import type { Tensor } from '../tensor.js';
import type { BufferRange, CommandBatcher, PipelineCache } from './pipelines.js';

export const NN_SHADER_FILES = [
  'nn/wg_sum.wgsl',
  'nn/embedding.wgsl',
  'nn/embedding_backward.wgsl',
  'nn/rmsnorm.wgsl',
  'nn/rmsnorm_backward_dx.wgsl',
  'nn/rmsnorm_backward_dw.wgsl',
  'nn/rope.wgsl',
  'nn/attention.wgsl',
  'nn/attention_backward_dq.wgsl',
  'nn/attention_backward_dkv.wgsl',
  'nn/swiglu.wgsl',
  'nn/swiglu_backward.wgsl',
  'nn/add_scaled.wgsl',
  'nn/sum_squares.wgsl',
  'nn/adamw.wgsl',
] as const;

const WG = 256;
const WG_ROW = 64;
const WG_ATTN = 64;
/** attention*.wgsl keep a head's row in private arrays of this size. */
const DH_MAX = 128;
const SUMSQ_ITEMS = 16;
/** rope.wgsl's table: three digits of 11 bits cover every |position| < 2^33. */
const ROPE_DIGIT = 2048;

/** What the launchers need from the backend. */
export interface NnLaunchContext {
  pipelines: PipelineCache;
  batcher: CommandBatcher;
  bind(t: Tensor, what: string): BufferRange;
  scratch(dtype: 'f32', shape: number[]): Tensor;
  upload(data: Float32Array, shape: number[]): Tensor;
  read(t: Tensor): Promise<ArrayLike<number>>;
  write(t: Tensor, data: Int32Array): void;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** Workgroups for n items of WG each. */
const groups = (n: number, wg = WG): number => Math.ceil(n / wg);

export function createNnKernels(ctx: NnLaunchContext): NnKernels & { dispose(): void } {
  const ropeTables = new Map<string, Tensor>();

  /** cos and sin of d·2^(11·level)·theta^(−2i/Dh) for level < 3, digit d < 2048, pair i < half, in f64. */
  const ropeTable = (theta: number, half: number): Tensor => {
    const key = `${theta}|${half}`;
    let t = ropeTables.get(key);
    if (!t) {
      const data = new Float32Array(3 * ROPE_DIGIT * half * 2);
      for (let level = 0; level < 3; level++) {
        for (let d = 0; d < ROPE_DIGIT; d++) {
          for (let i = 0; i < half; i++) {
            const a = d * 2 ** (11 * level) * ropeFrequency(theta, i, 2 * half);
            const o = ((level * ROPE_DIGIT + d) * half + i) * 2;
            data[o] = Math.cos(a);
            data[o + 1] = Math.sin(a);
          }
        }
      }
      t = ctx.upload(data, [data.length]);
      ropeTables.set(key, t);
    }
    return t;
  };

  /** Runs `launch(target)` with out, or with a scratch copied into out when out shares storage with one of `inputs`. */
  const intoOutput = (out: Tensor, inputs: Tensor[], what: string, launch: (target: Tensor) => void): void => {
    if (!inputs.some((t) => t.storage === out.storage)) return launch(out);
    const tmp = ctx.scratch('f32', [...out.shape]);
    try {
      launch(tmp);
      const src = ctx.bind(tmp, `${what} scratch`), dst = ctx.bind(out, `${what} out`);
      ctx.batcher.copy(src.buffer, src.offset ?? 0, dst.buffer, dst.offset ?? 0, out.size * 4);
    } finally {
      tmp.dispose();
    }
  };

  return {
    // table [V, D], ids [N] -> out [N, D]
    embedding(table, ids, out) {
      const [V, D] = table.shape as [number, number];
      const N = ids.size;
      const p = ctx.pipelines.get(['nn/embedding.wgsl'], { WG });
      ctx.batcher.dispatch(p, [N, D, V], [ctx.bind(table, 'nn.embedding table'), ctx.bind(ids, 'nn.embedding ids'), ctx.bind(out, 'nn.embedding out')], groups(N * D));
    },
    // dOut [N, D], ids [N] -> dTable [V, D] +=
    embeddingBackward(dOut, ids, dTable) {
      const [V, D] = dTable.shape as [number, number];
      const p = ctx.pipelines.get(['nn/embedding_backward.wgsl'], { WG });
      ctx.batcher.dispatch(p, [ids.size, D, V], [ctx.bind(dOut, 'nn.embeddingBackward dOut'), ctx.bind(ids, 'nn.embeddingBackward ids'), ctx.bind(dTable, 'nn.embeddingBackward dTable')], groups(V * D));
    },
    // x [N, D], weight [D] -> out [N, D], rstd [N]
    rmsnorm(x, weight, eps, out, rstd) {
      const [N, D] = x.shape as [number, number];
      const p = ctx.pipelines.get(['nn/wg_sum.wgsl', 'nn/rmsnorm.wgsl'], { WG: WG_ROW });
      ctx.batcher.dispatch(p, [N, D, bits(eps)], [ctx.bind(x, 'nn.rmsnorm x'), ctx.bind(weight, 'nn.rmsnorm weight'), ctx.bind(out, 'nn.rmsnorm out'), ctx.bind(rstd, 'nn.rmsnorm rstd')], N);
    },
    // -> dx [N, D]; dWeight [D] +=
    rmsnormBackward(dOut, x, weight, rstd, dx, dWeight) {
      const [N, D] = x.shape as [number, number];
      const b = (t: Tensor, what: string) => ctx.bind(t, `nn.rmsnormBackward ${what}`);
      const px = ctx.pipelines.get(['nn/wg_sum.wgsl', 'nn/rmsnorm_backward_dx.wgsl'], { WG: WG_ROW });
      ctx.batcher.dispatch(px, [N, D], [b(dOut, 'dOut'), b(x, 'x'), b(weight, 'weight'), b(rstd, 'rstd'), b(dx, 'dx')], N);
      const pw = ctx.pipelines.get(['nn/rmsnorm_backward_dw.wgsl'], { WG: WG_ROW });
      ctx.batcher.dispatch(pw, [N, D], [b(dOut, 'dOut'), b(x, 'x'), b(rstd, 'rstd'), b(dWeight, 'dWeight')], groups(D, WG_ROW));
    },
    // x [N, nH, Dh], positions [N] -> out (may be x)
    rope(x, positions, theta, inverse, out) {
      const [N, nH, Dh] = x.shape as [number, number, number];
      const half = Dh / 2;
      const table = ropeTable(theta, half);
      const p = ctx.pipelines.get(['nn/rope.wgsl'], { WG, INVERSE: inverse });
      intoOutput(out, [x], 'nn.rope', (target) =>
        ctx.batcher.dispatch(p, [N, nH, Dh], [ctx.bind(x, 'nn.rope x'), ctx.bind(positions, 'nn.rope positions'), ctx.bind(table, 'nn.rope table'), ctx.bind(target, 'nn.rope out')], groups(N * nH * half)),
      );
    },
    // q [B, Tq, nH, Dh], k, v [B, S, nH, Dh] -> out [B, Tq, nH, Dh], lse [B, nH, Tq]
    attention(q, k, v, qOffset, kvLen, scale, out, lse) {
      const [B, Tq, nH, Dh] = q.shape as [number, number, number, number];
      checkDh('nn.attention()', Dh);
      const p = ctx.pipelines.get(['nn/attention.wgsl'], { WG: WG_ATTN });
      const b = (t: Tensor, what: string) => ctx.bind(t, `nn.attention ${what}`);
      ctx.batcher.dispatch(p, [B, Tq, k.shape[1]!, nH, Dh, qOffset, kvLen, bits(scale)], [b(q, 'q'), b(k, 'k'), b(v, 'v'), b(out, 'out'), b(lse, 'lse')], groups(B * nH * Tq, WG_ATTN));
    },
    // training form: all [B, T, nH, Dh], lse [B, nH, T] -> dq, dk, dv
    attentionBackward(q, k, v, out, lse, dOut, scale, dq, dk, dv) {
      const [B, T, nH, Dh] = q.shape as [number, number, number, number];
      checkDh('nn.attentionBackward()', Dh);
      const rowD = ctx.scratch('f32', [B * nH * T]);
      try {
        const b = (t: Tensor, what: string) => ctx.bind(t, `nn.attentionBackward ${what}`);
        const uniforms = [B, T, nH, Dh, bits(scale)];
        const pq = ctx.pipelines.get(['nn/attention_backward_dq.wgsl'], { WG: WG_ATTN });
        ctx.batcher.dispatch(pq, uniforms, [b(q, 'q'), b(k, 'k'), b(v, 'v'), b(out, 'out'), b(lse, 'lse'), b(dOut, 'dOut'), b(dq, 'dq'), b(rowD, 'rowD')], groups(B * nH * T, WG_ATTN));
        const pkv = ctx.pipelines.get(['nn/attention_backward_dkv.wgsl'], { WG: WG_ATTN });
        ctx.batcher.dispatch(pkv, uniforms, [b(q, 'q'), b(k, 'k'), b(v, 'v'), b(lse, 'lse'), b(dOut, 'dOut'), b(rowD, 'rowD'), b(dk, 'dk'), b(dv, 'dv')], groups(B * nH * T, WG_ATTN));
      } finally {
        rowD.dispose();
      }
    },
    // gate, up [N, F] -> out
    swiglu(gate, up, out) {
      const p = ctx.pipelines.get(['nn/swiglu.wgsl'], { WG });
      ctx.batcher.dispatch(p, [gate.size], [ctx.bind(gate, 'nn.swiglu gate'), ctx.bind(up, 'nn.swiglu up'), ctx.bind(out, 'nn.swiglu out')], groups(gate.size));
    },
    // -> dGate, dUp
    swigluBackward(gate, up, dOut, dGate, dUp) {
      const p = ctx.pipelines.get(['nn/swiglu_backward.wgsl'], { WG });
      const b = (t: Tensor, what: string) => ctx.bind(t, `nn.swigluBackward ${what}`);
      ctx.batcher.dispatch(p, [gate.size], [b(gate, 'gate'), b(up, 'up'), b(dOut, 'dOut'), b(dGate, 'dGate'), b(dUp, 'dUp')], groups(gate.size));
    },
    // out = a + alpha·b (out may be a or b)
    addScaled(a, b, alpha, out) {
      const p = ctx.pipelines.get(['nn/add_scaled.wgsl'], { WG });
      intoOutput(out, [a, b], 'nn.addScaled', (target) =>
        ctx.batcher.dispatch(p, [a.size, bits(alpha)], [ctx.bind(a, 'nn.addScaled a'), ctx.bind(b, 'nn.addScaled b'), ctx.bind(target, 'nn.addScaled out')], groups(a.size)),
      );
    },
    // Σ x²: f32 workgroup partials, added in f64 on the host in order
    async sumSquares(x) {
      const parts = Math.ceil(x.size / (WG * SUMSQ_ITEMS));
      const partial = ctx.scratch('f32', [parts]);
      try {
        const p = ctx.pipelines.get(['nn/wg_sum.wgsl', 'nn/sum_squares.wgsl'], { WG, ITEMS: SUMSQ_ITEMS });
        ctx.batcher.dispatch(p, [x.size], [ctx.bind(x, 'nn.sumSquares x'), ctx.bind(partial, 'nn.sumSquares partial')], parts);
        const r = await ctx.read(partial);
        let s = 0;
        for (let i = 0; i < parts; i++) s += r[i]!;
        return s;
      } finally {
        partial.dispose();
      }
    },
    adamw(param, grad, m, v, o) {
      const stepSize = o.lr / (1 - Math.pow(o.beta1, o.step));
      const invSqrtBc2 = 1 / Math.sqrt(1 - Math.pow(o.beta2, o.step));
      const p = ctx.pipelines.get(['nn/adamw.wgsl'], { WG });
      const b = (t: Tensor, what: string) => ctx.bind(t, `nn.adamw ${what}`);
      ctx.batcher.dispatch(p, [param.size, bits(o.beta1), bits(o.beta2), bits(o.eps), bits(1 - o.lr * o.weightDecay), bits(stepSize), bits(invSqrtBc2)],
        [b(param, 'param'), b(grad, 'grad'), b(m, 'm'), b(v, 'v')], groups(param.size));
    },
    // logits [B, V], uniforms [B] -> ids [B], on the host in f64 (see the top of the file)
    async sample(logits, uniforms, temperature, topP, ids) {
      const [B, V] = logits.shape as [number, number];
      const [z, u] = await Promise.all([ctx.read(logits), ctx.read(uniforms)]);
      const out = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        if (!(u[b]! >= 0 && u[b]! < 1)) throw new HotpathsError('E_ARG', `nn.sample(): uniforms: expected values in [0, 1), got ${u[b]} at index ${b}`);
      }
      sampleHost(Float32Array.from(z), Float32Array.from(u), B, V, temperature, topP, out);
      ctx.write(ids, out);
    },
    dispose() {
      for (const t of ropeTables.values()) t.dispose();
      ropeTables.clear();
    },
  };
}

function checkDh(op: string, Dh: number): void {
  if (Dh > DH_MAX) throw new HotpathsError('E_NOT_IMPLEMENTED', `${op}: the webgpu kernels take a head dimension Dh ≤ ${DH_MAX}, got ${Dh}; use the cpu backend for larger heads`);
}
