// config: everything a run depends on, in one JSON-able object (written next to each checkpoint, so
// --resume runs the same configuration), and the defaults of `hotpaths train`.

import type { ModelConfig } from './model.js';
import type { TaskName } from './tasks/index.js';
import { VOCAB_SIZE } from './tokenizer.js';
import type { GrpoAgg } from '../runtime/backend.js';

export interface AdamConfig {
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay on the matrices (norm weights are not decayed). */
  weightDecay: number;
}

export interface SftConfig {
  /** Warm-start steps (0 skips the warm start). */
  steps: number;
  /** Worked solutions per step. */
  batch: number;
  lr: number;
}

export interface GrpoConfig {
  steps: number;
  /** Prompts per step; each gets `group` completions (B = prompts · group rows). */
  prompts: number;
  group: number;
  /** Optimizer steps on each batch of samples (μ); old log-probs stay those of the sampling policy. */
  mu: number;
  lr: number;
  /** Weight of the k3 KL to the frozen warm-start model; 0 skips the reference model entirely. */
  beta: number;
  epsLow: number;
  epsHigh: number;
  temperature: number;
  topP: number;
  agg: GrpoAgg;
  /** Loss through grpo.fusedLossFromHidden (default) or, false, through full [N, V] logits (logprob.fromLogits, grpo.loss, fromLogitsBackward): the memory comparison. */
  fusedLoss: boolean;
  /** Zero the advantages (a control: no learning signal but the KL). */
  zeroAdvantages: boolean;
}

export interface TrainConfig {
  task: TaskName;
  taskOptions: Record<string, unknown>;
  seed: number;
  model: ModelConfig;
  fp8: boolean;
  adam: AdamConfig;
  /** Global gradient-norm clip (0: off). */
  clipNorm: number;
  sft: SftConfig;
  grpo: GrpoConfig;
  /** Held-out prompts for the accuracy before and after GRPO (greedy decoding), never used for training. */
  evalPrompts: number;
  /** Also measure held-out accuracy every this many GRPO steps (0: only before and after). */
  evalEvery: number;
  /** Checkpoint every this many GRPO steps (and after the warm start and at the end). */
  checkpointEvery: number;
}

export function defaultModel(maxSeq: number): ModelConfig {
  return {
    vocab: VOCAB_SIZE,
    dim: 64,
    layers: 3,
    heads: 4,
    ffnHidden: 128,
    denseLayers: 1,
    moe: { experts: 8, topk: 2, nGroup: 4, topkGroup: 2, expertHidden: 32, sharedHidden: 64, routedScale: 1, biasGamma: 0.001, auxAlpha: 0, blockSize: 8 },
    maxSeq,
    ropeTheta: 10000,
    normEps: 1e-6,
    initStd: 0.02,
  };
}

export function defaultConfig(task: TaskName = 'arithmetic'): TrainConfig {
  return {
    task,
    taskOptions: {},
    seed: 1,
    model: defaultModel(64),
    fp8: false,
    adam: { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0 },
    clipNorm: 1,
    sft: { steps: 250, batch: 64, lr: 3e-3 },
    grpo: { steps: 250, prompts: 32, group: 8, mu: 1, lr: 3e-4, beta: 0.01, epsLow: 0.2, epsHigh: 0.28, temperature: 1, topP: 1, agg: 'grpo', fusedLoss: true, zeroAdvantages: false },
    evalPrompts: 200,
    evalEvery: 25,
    checkpointEvery: 20,
  };
}
