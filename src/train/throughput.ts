// throughput: training tokens per second of the model alone — forward, loss over every position,
// backward, clipping, AdamW, bias update — on a fixed random batch of B sequences of T tokens: the
// number to put next to the same model in PyTorch eager (bench/peers/torch_train.py reads the same
// config and batch shape).

import type { Backend } from '../runtime/backend.js';
import type { TrainConfig } from './config.js';
import { Model, type ModelConfig } from './model.js';
import { Rng } from './rng.js';
import { AdamW, supervisedStep } from './trainer.js';

export interface ThroughputOptions {
  model: ModelConfig;
  B: number;
  T: number;
  /** Timed steps (after 2 warm-up steps). */
  steps: number;
  fp8: boolean;
  lr: number;
  seed: number;
  adam: TrainConfig['adam'];
  clipNorm: number;
}

export interface ThroughputResult {
  tokensPerSec: number;
  msPerStep: number;
  /** Median and all step times (ms). */
  stepsMs: number[];
  parameters: number;
  /** Peak tensor bytes during the timed steps (Backend.memoryStats). */
  peakBytes: number | null;
}

export async function measureThroughput(backend: Backend, o: ThroughputOptions): Promise<ThroughputResult> {
  const model = Model.create(backend, o.model, new Rng(o.seed, 'init'), { fp8: o.fp8 });
  const opt = new AdamW(model);
  const r = new Rng(o.seed, 'data');
  const N = o.B * o.T;
  const inputs = Int32Array.from({ length: N }, () => r.int(o.model.vocab));
  const targets = Int32Array.from({ length: N }, () => r.int(o.model.vocab));
  const mask = new Float32Array(N).fill(1);
  try {
    for (let i = 0; i < 2; i++) await supervisedStep(model, opt, inputs, targets, mask, o.B, o.T, o.lr, o);
    backend.resetPeak?.();
    const ms: number[] = [];
    for (let i = 0; i < o.steps; i++) {
      const t0 = performance.now();
      await supervisedStep(model, opt, inputs, targets, mask, o.B, o.T, o.lr, o);
      await backend.sync();
      ms.push(performance.now() - t0);
    }
    const sorted = [...ms].sort((a, b) => a - b);
    const med = sorted[Math.floor(sorted.length / 2)]!;
    return { tokensPerSec: N / (med / 1000), msPerStep: med, stepsMs: ms, parameters: model.parameterCount, peakBytes: backend.memoryStats?.().peak ?? null };
  } finally {
    model.dispose();
    opt.dispose();
  }
}
