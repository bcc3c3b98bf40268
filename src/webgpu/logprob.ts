// Log-prob launchers: the forward (one workgroup per row, online logsumexp), the backward (one
// invocation per few elements, optionally in place) and the KL estimators. Shapes, dtypes and options
// were checked by src/ops/logprob.ts. Floats reach the shaders as f32 bit patterns in the uniforms.

import type { KlEstimator, LogprobKernels } from '../runtime/backend.js';
import type { Tensor } from '../tensor.js';
import type { BufferRange, CommandBatcher, PipelineCache } from './pipelines.js';

export const LOGPROB_SHADER_FILES = [
  'logprob/common.wgsl',
  'logprob/forward.wgsl',
  'logprob/backward_elem.wgsl',
  'logprob/backward.wgsl',
  'logprob/backward_inplace.wgsl',
  'logprob/kl_terms.wgsl',
  'logprob/kl.wgsl',
] as const;

const WG_ROW = 256;
const WG_ELEMENTWISE = 256;
const BACKWARD_UNROLL = 4;
const KL_CODE: Readonly<Record<KlEstimator, number>> = { k1: 0, k2: 1, k3: 2, k3_clamped: 3 };

/** What the launchers need from the backend. */
export interface LogprobLaunchContext {
  pipelines: PipelineCache;
  batcher: CommandBatcher;
  bind(t: Tensor, what: string): BufferRange;
  /** A scratch tensor for an output the caller does not want (disposed right after the dispatch). */
  scratch(dtype: 'f32', shape: number[]): Tensor;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

export function createLogprobKernels(ctx: LogprobLaunchContext): LogprobKernels {
  return {
    // logits [N, V] -> logp, lse, entropy [N]
    fromLogits(logits, targets, T, logp, lse, entropy) {
      const [N, V] = logits.shape as [number, number];
      const ent = entropy ?? ctx.scratch('f32', [N]);
      const p = ctx.pipelines.get(['logprob/common.wgsl', 'logprob/forward.wgsl'], { BF16: logits.dtype === 'bf16' ? 1 : 0, WG: WG_ROW });
      ctx.batcher.dispatch(p, [N, V, f32Bits(Math.fround(1 / T))], [
        ctx.bind(logits, 'logprob.fromLogits logits'), ctx.bind(targets, 'logprob.fromLogits targets'),
        ctx.bind(logp, 'logprob.fromLogits logp'), ctx.bind(lse, 'logprob.fromLogits lse'), ctx.bind(ent, 'logprob.fromLogits entropy'),
      ], N);
      if (!entropy) ent.dispose();
    },
    // dlogits [N, V] = (onehot(y) − exp(z/T − lse)) · g / T; dlogits may be logits (f32, in place)
    fromLogitsBackward(logits, targets, lse, g, T, dlogits) {
      const [N, V] = logits.shape as [number, number];
      const total = N * V;
      const inPlace = dlogits === logits || dlogits.storage === logits.storage;
      const files = ['logprob/common.wgsl', 'logprob/backward_elem.wgsl', inPlace ? 'logprob/backward_inplace.wgsl' : 'logprob/backward.wgsl'];
      const p = ctx.pipelines.get(files, { BF16: logits.dtype === 'bf16' ? 1 : 0, WG: WG_ELEMENTWISE, UNROLL: BACKWARD_UNROLL });
      const common = [ctx.bind(targets, 'logprob.fromLogitsBackward targets'), ctx.bind(lse, 'logprob.fromLogitsBackward lse'), ctx.bind(g, 'logprob.fromLogitsBackward g')];
      const bindings = inPlace
        ? [ctx.bind(logits, 'logprob.fromLogitsBackward logits'), ...common]
        : [ctx.bind(logits, 'logprob.fromLogitsBackward logits'), ...common, ctx.bind(dlogits, 'logprob.fromLogitsBackward dlogits')];
      ctx.batcher.dispatch(p, [N, V, f32Bits(Math.fround(1 / T)), total], bindings, Math.ceil(total / (WG_ELEMENTWISE * BACKWARD_UNROLL)));
    },
    // logp, ref [n] -> kl, dlogp [n]
    kl(logp, ref, estimator, kl, dlogp) {
      const n = logp.size;
      const p = ctx.pipelines.get(['logprob/kl_terms.wgsl', 'logprob/kl.wgsl'], { ESTIMATOR: KL_CODE[estimator], WG: WG_ELEMENTWISE });
      ctx.batcher.dispatch(p, [n], [ctx.bind(logp, 'logprob.kl logp'), ctx.bind(ref, 'logprob.kl ref'), ctx.bind(kl, 'logprob.kl kl'), ctx.bind(dlogp, 'logprob.kl dlogp')], Math.ceil(n / WG_ELEMENTWISE));
    },
  };
}
