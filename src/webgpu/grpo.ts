// GRPO launchers: group advantages and the clipped policy loss, each one workgroup (the inputs are
// [B] and [B, T], small next to the logits). The loss's scalar results are read back (one small
// copy), as GrpoKernels.loss returns numbers. Options were checked by src/ops/grpo.ts.

import type { AdvantageScale, GrpoAgg, GrpoKernels } from '../runtime/backend.js';
import type { Tensor } from '../tensor.js';
import type { BufferRange, CommandBatcher, PipelineCache } from './pipelines.js';

export const GRPO_SHADER_FILES = ['grpo/wg_sum.wgsl', 'grpo/advantages.wgsl', 'grpo/loss.wgsl'] as const;

const SCALE_CODE: Readonly<Record<AdvantageScale, number>> = { group: 0, batch: 1, none: 2 };
const AGG_CODE: Readonly<Record<GrpoAgg, number>> = { grpo: 0, bnpo: 1, dr_grpo: 2, dapo: 3 };

export interface GrpoLaunchContext {
  pipelines: PipelineCache;
  batcher: CommandBatcher;
  bind(t: Tensor, what: string): BufferRange;
  scratch(dtype: 'f32', shape: number[]): Tensor;
  read(t: Tensor): Promise<Float32Array>;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

export function createGrpoKernels(ctx: GrpoLaunchContext): GrpoKernels {
  return {
    // rewards [B] -> out [B]
    advantages(rewards, groupSize, scale, eps, out) {
      const p = ctx.pipelines.get(['grpo/wg_sum.wgsl', 'grpo/advantages.wgsl'], { SCALE: SCALE_CODE[scale], WG: 256 });
      ctx.batcher.dispatch(p, [rewards.size, groupSize, bits(eps)], [ctx.bind(rewards, 'grpo.advantages rewards'), ctx.bind(out, 'grpo.advantages out')], 1);
    },
    // logp, oldLogp, refLogp, mask [B, T], advantages [B] -> dlogp [B, T], loss and stats
    async loss(x, prm, dlogp) {
      const [B, T] = x.logp.shape as [number, number];
      const result = ctx.scratch('f32', [4]);
      const scratch = ctx.scratch('f32', [2 * B]);
      try {
        const p = ctx.pipelines.get(['grpo/wg_sum.wgsl', 'grpo/loss.wgsl'], {
          HAS_REF: x.refLogp ? 1 : 0, MASK_U8: x.mask.dtype === 'u8' ? 1 : 0, SEQUENCE: prm.level === 'sequence' ? 1 : 0, AGG: AGG_CODE[prm.agg], WG: 256,
        });
        const b = (t: Tensor, what: string) => ctx.bind(t, `grpo.loss ${what}`);
        ctx.batcher.dispatch(
          p,
          [B, T, bits(prm.epsLow), bits(prm.epsHigh), prm.delta === null ? 0 : bits(prm.delta), bits(prm.beta), bits(prm.maxLen), prm.globalTokens === null ? 0 : bits(prm.globalTokens)],
          [b(x.logp, 'logp'), b(x.oldLogp, 'oldLogp'), b(x.refLogp ?? x.logp, 'refLogp'), b(x.advantages, 'advantages'), b(x.mask, 'mask'), b(dlogp, 'dlogp'), b(result, 'result'), b(scratch, 'scratch')],
          1,
        );
        const r = await ctx.read(result);
        return { loss: r[0]!, clipFraction: r[1]!, meanKl: r[2]!, meanRatio: r[3]! };
      } finally {
        result.dispose();
        scratch.dispose();
      }
    },
  };
}
