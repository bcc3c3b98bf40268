// GRPO launchers: group advantages and the clipped policy loss, each one workgroup (the inputs are
// [B] and [B, T], small next to the logits), and the fused token-level kernel (one workgroup per row
// of logits). The loss's scalar results are read back (one small copy), as GrpoKernels.loss returns
// numbers; the fused kernel's stay on the device. Options were checked by src/ops/grpo.ts.

import type { AdvantageScale, GrpoAgg, GrpoKernels } from '../runtime/backend.js';
import type { Tensor } from '../tensor.js';
import { HotpathsError } from '../errors.js';
import type { BufferRange, CommandBatcher, PipelineCache } from './pipelines.js';

export const GRPO_SHADER_FILES = [
  'grpo/wg_sum.wgsl',
  'grpo/advantages.wgsl',
  'grpo/loss.wgsl',
  'grpo/fused_pack.wgsl',
  'grpo/fused_token_out.wgsl',
  'grpo/fused_token_inplace.wgsl',
  'grpo/fused_token.wgsl',
  'grpo/fused_edges.wgsl',
] as const;

const WG_ROW = 256;
const WG_ELEMENTWISE = 256;

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
        const p = ctx.pipelines.get(['grpo/wg_sum.wgsl', 'logprob/kl_terms.wgsl', 'grpo/loss.wgsl'], {
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
    // logits [N, V] -> logp [N], stats [N, 4], dlogits [N, V] (possibly the logits): three dispatches,
    // pack the small inputs, the fused rows, and (bf16 dlogits with V odd) the words rows share
    fusedTokenLoss(x, o) {
      const [N, V] = x.logits.shape as [number, number];
      const B = x.advantages.size;
      const b = (t: Tensor, what: string) => ctx.bind(t, `grpo.fusedTokenLoss ${what}`);
      const zb = b(x.logits, 'logits');
      const db = b(o.dlogits, 'dlogits');
      const inPlace = zb.buffer === db.buffer && (zb.offset ?? 0) === (db.offset ?? 0);
      if (!inPlace && zb.buffer === db.buffer) {
        const [z0, d0] = [zb.offset ?? 0, db.offset ?? 0];
        if (z0 < d0 + (db.size ?? 0) && d0 < z0 + (zb.size ?? 0)) {
          throw new HotpathsError('E_ARG', `grpo.fusedTokenLoss: dlogits ${o.dlogits.describe()} overlaps the logits ${x.logits.describe()} without being them`);
        }
      }
      if (inPlace && o.dlogits.dtype !== x.logits.dtype) {
        throw new HotpathsError('E_DTYPE', `grpo.fusedTokenLoss: in place needs dlogits of the logits' dtype (${x.logits.dtype}), got ${o.dlogits.describe()}`);
      }
      const outBf16 = o.dlogits.dtype === 'bf16';
      const edgesNeeded = outBf16 && V % 2 === 1;
      const small = ctx.scratch('f32', [4 * N + 2 * B]);
      const edges = ctx.scratch('f32', [edgesNeeded ? 2 * N : 1]);
      try {
        const pack = ctx.pipelines.get(['grpo/fused_pack.wgsl'], { HAS_REF: x.refLogp !== null, MASK_U8: x.mask.dtype === 'u8', WG: WG_ELEMENTWISE });
        ctx.batcher.dispatch(pack, [N, B], [
          b(x.targets, 'targets'), b(x.oldLogp, 'oldLogp'), b(x.refLogp ?? x.oldLogp, 'refLogp'), b(x.mask, 'mask'), b(x.advantages, 'advantages'),
          b(x.seqWeight, 'seqWeight'), b(small, 'small'),
        ], Math.ceil(N / WG_ELEMENTWISE));
        const files = [inPlace ? 'grpo/fused_token_inplace.wgsl' : 'grpo/fused_token_out.wgsl', 'logprob/kl_terms.wgsl', 'grpo/fused_token.wgsl'];
        const p = ctx.pipelines.get(files, { IN_BF16: x.logits.dtype === 'bf16', OUT_BF16: outBf16, HAS_REF: x.refLogp !== null, WG: WG_ROW });
        const uniforms = [N, V, x.T, bits(Math.fround(1 / x.temperature)), bits(x.epsLow), bits(x.epsHigh), x.delta === null ? 0 : bits(x.delta), bits(x.beta)];
        const bindings = [zb, b(small, 'small'), b(o.logp, 'logp'), b(o.stats, 'stats'), b(edges, 'edges')];
        ctx.batcher.dispatch(p, uniforms, inPlace ? bindings : [...bindings, db], N);
        if (edgesNeeded) {
          const pe = ctx.pipelines.get(['grpo/fused_edges.wgsl'], { WG: WG_ELEMENTWISE });
          ctx.batcher.dispatch(pe, [N, V], [b(edges, 'edges'), db], Math.ceil(N / WG_ELEMENTWISE));
        }
      } finally {
        // recorded work keeps its buffers; the pool hands them out again only to later work
        small.dispose();
        edges.dispose();
      }
    },
  };
}
