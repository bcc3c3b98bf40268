// The browser-safe part of the benchmark harness (no Node import): the measurement record, device
// timing through the backend's timer, and rates against the ceilings. bench/harness.ts (Node) adds
// benchmark.js host timing; the browser bench page (examples/web/) uses this file directly.

import type { Backend } from '../src/runtime/backend.js';

export interface Measurement {
  family: string;
  op: string;
  backend: string;
  shape: string;
  ms: number;
  /** Where `ms` comes from: 'device' (timestamps/events) or 'host' (wall clock, benchmark.js). */
  timer: 'device' | 'host';
  gbps?: number;
  tflops?: number;
  /** gbps over the measured copy ceiling, or tflops over the measured FLOP/s ceiling. */
  ceiling_fraction?: number;
  peer?: string;
  peer_ms?: number;
  /** A second peer from the same run (cuda gemm: bf16 torch.matmul next to torch._scaled_mm). */
  peer_alt?: string;
  peer_alt_ms?: number;
  /** Memory benchmarks: the backend's peak tensor bytes during the call beyond those held before it. */
  peak_extra_bytes?: number;
  /** peak_extra_bytes over the size of the f32 logits the call avoids materialising. */
  peak_fraction_of_logits?: number;
  /** (peak_extra_bytes − the bytes of the call's outputs) over the f32 logits: its scratch memory. */
  peak_scratch_fraction_of_logits?: number;
}

export interface BenchOptions {
  /** Fewer samples and smaller shapes (CI, lavapipe, the reference peer). */
  quick: boolean;
}

/** Wall time of back-to-back calls before timing (WARM_MS_QUICK with --quick). */
const WARM_MS = 200;
const WARM_MS_QUICK = 10;
/** Wall time of large copies before the warm-up, and the f32 elements copied (primeClocks). */
const PRIME_MS = 300;
const PRIME_MS_QUICK = 10;
const PRIME_ELEMS = 64 * 2 ** 20; // 256 MiB
const PRIME_ELEMS_QUICK = 4 * 2 ** 20; // 16 MiB

/**
 * Keeps the device busy with large copies for PRIME_MS of wall time, so that its clocks are up before
 * a case is timed. A GPU that sat idle while the host worked drops its clocks, and a light case raises
 * them only slowly: on an H100 driven by Vulkan alone (no CUDA context, which holds the clocks up) the
 * SM clock fell to 345 MHz within ~3 s of idling, the 1.25 ms webgpu route case then read 2.1-3.8 ms
 * as its own load took the clock up 345 -> 1155 MHz over ~1 s, while a heavy case brought it to
 * 1980 MHz in ~0.1 s (bench/RESULTS.md, 2026-11-23).
 */
async function primeClocks(backend: Backend, quick: boolean): Promise<void> {
  const src = backend.empty('f32', [quick ? PRIME_ELEMS_QUICK : PRIME_ELEMS]);
  try {
    const t0 = performance.now();
    do {
      for (let i = 0; i < 16; i++) backend.copy(src).dispose();
      await backend.sync();
    } while (performance.now() - t0 < (quick ? PRIME_MS_QUICK : PRIME_MS));
  } finally {
    src.dispose();
  }
}

/**
 * Device time of one op: median over `reps` timed batches after a warm-up, through the backend's
 * timer (WebGPU timestamp queries, CUDA events); undefined when the backend has none. `fn` submits
 * the work (and may resolve before it ends). The warm-up runs the op once (pipelines, module load,
 * pool), then large copies for PRIME_MS (primeClocks: the GPU's clocks up after the host worked — a
 * peer on the CPU, the next case's inputs), then the op back to back for WARM_MS of wall time.
 */
export async function timeDevice(backend: Backend, fn: () => Promise<void>, quick: boolean): Promise<number | undefined> {
  return (await timeDeviceInTurns(backend, [fn], quick))?.[0];
}

/**
 * Device times of several ops compared with each other (an op and its in-process peers): the same
 * warm-up as timeDevice for all of them, then the timed batches in turns — one batch of each op per
 * round — and each op's median over the rounds. An H100 running FP8 GEMMs sits at its 700 W cap and
 * its SM clock swings between ~1.1 and 1.98 GHz over ~2 s; timed one after the other, the gathered
 * GEMM and its peers landed in different phases of that swing and their ratio read 0.88-0.95x where
 * turns read 0.80x, the same in every run (bench/RESULTS.md, 2026-11-23).
 */
export async function timeDeviceInTurns(backend: Backend, fns: readonly (() => Promise<void>)[], quick: boolean): Promise<number[] | undefined> {
  const timer = backend.deviceTimer;
  if (!timer) return undefined;
  for (const fn of fns) {
    await fn(); // the first call compiles pipelines / loads modules: not part of the warm-up's span
    await backend.sync();
  }
  await primeClocks(backend, quick);
  const t0 = performance.now();
  do {
    for (const fn of fns) await fn();
    await backend.sync();
  } while (performance.now() - t0 < (quick ? WARM_MS_QUICK : WARM_MS));
  const inner = 5;
  const samples: number[][] = fns.map(() => []);
  for (let rep = 0; rep < (quick ? 3 : 10); rep++) {
    for (let i = 0; i < fns.length; i++) {
      timer.start();
      for (let j = 0; j < inner; j++) await fns[i]!();
      samples[i]!.push((await timer.stop()) / inner);
    }
  }
  return samples.map((s) => s.sort((a, b) => a - b)[Math.floor(s.length / 2)]!);
}

export function fmtShape(shape: readonly number[]): string {
  return shape.join('x');
}

/** Fills in gbps, tflops and ceiling_fraction from bytes moved / flops done and the ceilings. */
export function rates(ms: number, work: { bytes?: number; flops?: number }, ceiling: { copyGBps?: number; tflops?: number }): Pick<Measurement, 'gbps' | 'tflops' | 'ceiling_fraction'> {
  const out: Pick<Measurement, 'gbps' | 'tflops' | 'ceiling_fraction'> = {};
  if (work.bytes !== undefined) {
    out.gbps = work.bytes / (ms * 1e6);
    if (ceiling.copyGBps) out.ceiling_fraction = out.gbps / ceiling.copyGBps;
  }
  if (work.flops !== undefined) {
    out.tflops = work.flops / (ms * 1e9);
    if (ceiling.tflops) out.ceiling_fraction = out.tflops / ceiling.tflops;
  }
  return out;
}
