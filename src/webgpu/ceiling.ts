// The WebGPU backend's ceilings (Backend.measureCeilings): a copy kernel for the bandwidth and an
// FMA-chain kernel for the FP32 FLOP/s, both compute passes so that the timestamp timer sees them
// (a copyBufferToBuffer sits outside any pass and would time as 0 ms). Timed with timeGpu
// (timing.ts): timestamp queries when the device has them, the host's clock otherwise.

import type { MachineCeilings } from '../runtime/backend.js';
import { calibrate, ceilingCopyBytes, checkedCeilings } from '../runtime/measure.js';
import type { WebGPUBackend } from './backend.js';
import type { CommandBatcher, PipelineCache } from './pipelines.js';

export const CEILING_SHADER_FILES = ['util/copy.wgsl', 'util/fma.wgsl'] as const;

const WG_COPY = 256;
/** vec4s per invocation of copy.wgsl (see there why not 1). */
const COPY_PER_INVOCATION = 4;
const WG_FMA = 256;
/** vec4 slots of fma.wgsl's sink (SINK there). */
const FMA_SINK = 1024;
/** FLOPs of one invocation of fma.wgsl per step: 4 rounds × 8 chains × 4 lanes × 2. */
const FMA_FLOPS_PER_STEP = 4 * 8 * 4 * 2;
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

function f32Bits(x: number): number {
  F32[0] = x;
  return U32[0]!;
}

/** What the launchers need from the backend. */
export interface CeilingContext {
  backend: WebGPUBackend;
  pipelines: PipelineCache;
  batcher: CommandBatcher;
}

/** dst = src over `bytes` (a multiple of 16, within both buffers and the binding limit). */
export function launchCopy(ctx: CeilingContext, src: GPUBuffer, dst: GPUBuffer, bytes: number): void {
  const n4 = bytes / 16;
  const p = ctx.pipelines.get(['util/copy.wgsl'], { WG: WG_COPY, PER_INVOCATION: COPY_PER_INVOCATION });
  const workgroups = Math.ceil(n4 / (WG_COPY * COPY_PER_INVOCATION));
  ctx.batcher.dispatch(p, [n4], [{ buffer: src, size: bytes }, { buffer: dst, size: bytes }], workgroups);
}

/** `workgroups` × WG_FMA invocations of `iters` FMA steps each; returns the FLOPs it does. */
export function launchFma(ctx: CeilingContext, sink: GPUBuffer, workgroups: number, iters: number): number {
  const p = ctx.pipelines.get(['util/fma.wgsl'], { WG: WG_FMA });
  ctx.batcher.dispatch(p, [iters, f32Bits(1 - 2 ** -20), f32Bits(2 ** -10)], [{ buffer: sink, size: FMA_SINK * 16 }], workgroups);
  return workgroups * WG_FMA * iters * FMA_FLOPS_PER_STEP;
}

/**
 * Copy: copy.wgsl between two buffers of 256 MiB (64 MiB when quick), at most the binding limit
 * (whole MiB; lavapipe binds 128 MiB). FLOP/s: fma.wgsl on 4096 workgroups of 256 (256 on a software
 * adapter, which has a few CPU cores), its steps grown until a dispatch takes 100 ms (20 ms when quick).
 */
export async function measureWebGPUCeilings(ctx: CeilingContext, quick: boolean): Promise<MachineCeilings> {
  const { backend } = ctx;
  const reps = quick ? 3 : 7;
  const bytes = ceilingCopyBytes(quick, Math.min(backend.limits.maxStorageBufferBindingSize, backend.limits.maxBufferSize));
  const src = backend.empty('u8', [bytes]);
  const dst = backend.empty('u8', [bytes]);
  let copyMs: number;
  try {
    const s = backend.storageOf(src).buffer;
    const d = backend.storageOf(dst).buffer;
    copyMs = (await backend.timeGpu(() => launchCopy(ctx, s, d, bytes), reps, { warmup: 1 })).ms;
  } finally {
    src.dispose();
    dst.dispose();
  }

  const sink = backend.empty('f32', [FMA_SINK * 4]);
  let flopsMs: number;
  let flops = 0;
  try {
    const buffer = backend.storageOf(sink).buffer;
    const workgroups = backend.adapterInfo.isSoftware ? 256 : 4096;
    const timeOnce = async (iters: number): Promise<number> =>
      (await backend.timeGpu(() => void (flops = launchFma(ctx, buffer, workgroups, iters)), 1, { warmup: 0 })).ms;
    await backend.timeGpu(() => void launchFma(ctx, buffer, workgroups, 1), 1, { warmup: 1 }); // compiles the pipeline
    const iters = await calibrate(timeOnce, 16, quick ? 20 : 100, 2 ** 24);
    flopsMs = (await backend.timeGpu(() => void (flops = launchFma(ctx, buffer, workgroups, iters)), quick ? 3 : 5, { warmup: 0 })).ms;
  } finally {
    sink.dispose();
  }
  return checkedCeilings('webgpu', { copyGBps: (2 * bytes) / (copyMs * 1e6), fp32Tflops: flops / (flopsMs * 1e9) });
}
