// trainer: one supervised warm-start step, one GRPO step, and held-out evaluation, on one backend.
// The state that decides what happens next — weights, optimizer moments, gate biases, the RNG streams
// and the step counters — lives here and is what a checkpoint saves (exportState / importState).
//
// Warm start (cold-start SFT): worked solutions of fresh problems; loss = −mean log p over the
// completion tokens (logprob.fromHidden, its backward through logprob.fromHiddenBackward).
//
// GRPO step (REFERENCE.md "Log-probs, KL, GRPO"):
//   1. `prompts` fresh problems, `group` completions each from the current policy (sampling.ts).
//   2. rewards by the rules of rewards.ts; advantages = grpo.advantages(rewards, group).
//   3. old log-probs = the sampling policy's: log-probs of the sampled tokens under the weights that
//      sampled them (computed in the first of the μ iterations, before any update); reference
//      log-probs from the frozen warm-start model (skipped when β = 0).
//   4. μ times: forward, loss and d loss/d hidden, d loss/d head through grpo.fusedLossFromHidden
//      (or the unfused [N, V] path), backward, global-norm clip (nn.sumSquares), nn.adamw; then
//      moe.updateBias from the step's expert loads.

import * as gemm from '../ops/gemm.js';
import * as grpo from '../ops/grpo.js';
import * as logprob from '../ops/logprob.js';
import * as moe from '../ops/moe.js';
import * as nn from '../ops/nn.js';
import type { Backend } from '../runtime/backend.js';
import { viewAs, type Tensor } from '../tensor.js';
import type { TrainConfig } from './config.js';
import { isMoeLayer, Model, type Params } from './model.js';
import { judge } from './rewards.js';
import { Rng, type RngState } from './rng.js';
import { completionOf, sampleCompletions, type Samples } from './sampling.js';
import { createTask, type Problem, type Task } from './tasks/index.js';
import { EOS, PAD, decode, encode } from './tokenizer.js';

/** AdamW moments and step count, one pair of f32 tensors per parameter. */
export class AdamW {
  m: Params;
  v: Params;
  step = 0;
  constructor(model: Model) {
    const z = (t: Tensor) => model.backend.fromHost(new Float32Array(t.size), 'f32', t.shape);
    this.m = new Map([...model.params].map(([k, t]) => [k, z(t)]));
    this.v = new Map([...model.params].map(([k, t]) => [k, z(t)]));
  }
  async update(model: Model, grads: Params, lr: number, c: TrainConfig['adam']): Promise<void> {
    this.step++;
    for (const [name, p] of model.params) {
      // norm weights are scales around 1: decaying them toward 0 is not what weight decay is for
      const weightDecay = p.shape.length >= 2 ? c.weightDecay : 0;
      await nn.adamw(p, grads.get(name)!, this.m.get(name)!, this.v.get(name)!, { lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay, step: this.step });
    }
  }
  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}

export interface SftMetrics {
  phase: 'sft';
  step: number;
  loss: number;
  gradNorm: number;
  tokens: number;
  seconds: number;
}

export interface GrpoMetrics {
  phase: 'grpo';
  step: number;
  /** Mean reward of the step's completions. */
  reward: number;
  /** Fraction correct / in format. */
  accuracy: number;
  format: number;
  /** Mean k3 KL to the reference (0 when β = 0), clipped-token fraction and mean ratio, from the last of the μ iterations. */
  kl: number;
  clipFraction: number;
  ratio: number;
  loss: number;
  gradNorm: number;
  /** Mean completion length (tokens). */
  length: number;
  /** Tokens of the step's sequences (B·L: prompts and completions with padding). */
  tokens: number;
  /** Wall seconds of the step, and of its sampling part. */
  seconds: number;
  sampleSeconds: number;
  /** Tokens per second of the training part (forward, backward, optimizer over B·(L−1) positions, μ times). */
  trainTokensPerSec: number;
  /** Peak tensor bytes the loss (and its gradient w.r.t. hidden and head) held above what was in use before it; null without memoryStats. */
  lossExtraBytes: number | null;
  /** Bytes of the f32 logits [B·(L−1), V] that the fused loss never materialises, for scale. */
  logitsBytes: number;
}

export interface EvalResult {
  /** Greedy accuracy and format rate on the held-out prompts. */
  accuracy: number;
  format: number;
  n: number;
  /** A few (prompt, completion, correct) examples. */
  examples: { prompt: string; completion: string; correct: boolean }[];
}

/** What one GRPO step trained on (host copies; tests recompute the loss from it). */
export interface GrpoBatch {
  samples: Samples;
  rewards: Float32Array;
  advantages: Float32Array;
}

export interface TrainerState {
  phase: 'sft' | 'grpo' | 'done';
  /** Steps done in the current phase. */
  step: number;
  adamStep: number;
  rng: { data: RngState; sample: RngState };
}

/** The tensors a checkpoint holds, by name (model., bias., adam.m., adam.v., ref., refbias.). */
export type StateTensors = Map<string, Tensor>;

/** Global-norm clipping over every gradient (nn.sumSquares, then nn.addScaled to scale); returns the norm before clipping. */
export async function clipGradients(grads: Params, maxNorm: number): Promise<number> {
  let ss = 0;
  for (const g of grads.values()) ss += await nn.sumSquares(g);
  const norm = Math.sqrt(ss);
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const g of grads.values()) await nn.addScaled(g, g, s - 1, { out: g }); // g·s
  }
  return norm;
}

/** Aux-loss-free balancing after an optimizer step: each MoE layer's bias moves by moe.updateBias on the loads summed over `loads` (one entry per forward). */
export async function updateBiases(model: Model, loads: Int32Array[][]): Promise<void> {
  const c = model.config;
  const m = c.moe;
  if (!m || loads.length === 0) return;
  let i = 0;
  for (let l = 0; l < c.layers; l++) {
    if (!isMoeLayer(c, l)) continue;
    const sum = new Int32Array(m.experts);
    for (const it of loads) for (let e = 0; e < m.experts; e++) sum[e]! += it[i]![e]!;
    const name = `layers.${l}.gateBias`;
    const loadT = model.backend.fromHost(sum, 'i32', [m.experts]);
    const next = await moe.updateBias(model.biases.get(name)!, loadT, m.biasGamma);
    loadT.dispose();
    model.biases.get(name)!.dispose();
    model.biases.set(name, next);
    i++;
  }
}

/**
 * One supervised step: loss = −mean log p of targets over the mask (+ the balance loss), through
 * logprob.fromHidden / fromHiddenBackward, the model's backward, clipping, AdamW, the bias update.
 * inputs, targets, mask: [B·T]. Returns the loss and the gradient norm before clipping.
 */
export async function supervisedStep(model: Model, opt: AdamW, inputs: Int32Array, targets: Int32Array, mask: Float32Array, B: number, T: number, lr: number, c: Pick<TrainConfig, 'adam' | 'clipNorm'>): Promise<{ loss: number; gradNorm: number }> {
  const be = model.backend;
  const head = model.params.get('head')!;
  const fwd = await model.forward(inputs, B, T, { save: true });
  const targetsT = be.fromHost(targets, 'i32', [B * T]);
  const lp = await logprob.fromHidden(fwd.hidden, head, targetsT);
  const logp = (await lp.logp.read()) as Float32Array;
  let count = 0, sum = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) {
    count++;
    sum += logp[i]!;
  }
  const g = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) g[i] = mask[i] ? -1 / count : 0; // d(−mean logp)/d logp
  const gT = be.fromHost(g, 'f32', [B * T]);
  const back = await logprob.fromHiddenBackward(fwd.hidden, head, targetsT, lp.lse, gT, { temperature: 1 });
  const grads = model.zeroGrads();
  await nn.addScaled(grads.get('head')!, back.dHeadWeight, 1, { out: grads.get('head')! });
  await model.backward(fwd.cache!, back.dHidden, grads);
  for (const t of [targetsT, lp.logp, lp.lse, gT, back.dHidden, back.dHeadWeight, fwd.hidden]) t.dispose();
  const gradNorm = await clipGradients(grads, c.clipNorm);
  await opt.update(model, grads, lr, c.adam);
  for (const t of grads.values()) t.dispose();
  await updateBiases(model, [fwd.load]);
  return { loss: -sum / count + fwd.aux, gradNorm };
}

export class Trainer {
  readonly config: TrainConfig;
  readonly backend: Backend;
  readonly task: Task;
  model: Model;
  /** The frozen warm-start weights (GRPO with β > 0 only). */
  ref: Model | null = null;
  opt: AdamW;
  phase: TrainerState['phase'] = 'sft';
  step = 0;
  readonly rng: { data: Rng; sample: Rng };
  /** The last GRPO step's samples, rewards and advantages. */
  lastBatch: GrpoBatch | null = null;
  readonly heldout: Problem[];
  readonly #heldoutPrompts: Set<string>;

  constructor(backend: Backend, config: TrainConfig) {
    this.backend = backend;
    this.config = config;
    this.task = createTask(config.task, config.taskOptions);
    const need = this.task.promptLength + this.task.maxCompletion;
    if (config.model.maxSeq < need) throw new Error(`config: model.maxSeq ${config.model.maxSeq} is shorter than the task's prompt + completion (${need})`);
    if (config.grpo.temperature <= 0) throw new Error('config: grpo.temperature must be > 0 (the log-probs are of softmax(z / T))');
    if (config.grpo.group < 2) throw new Error('config: grpo.group must be at least 2 (advantages compare the completions of one prompt)');
    if (config.evalPrompts < 1) throw new Error('config: evalPrompts must be at least 1');
    this.model = Model.create(backend, config.model, new Rng(config.seed, 'init'), { fp8: config.fp8 });
    this.opt = new AdamW(this.model);
    this.rng = { data: new Rng(config.seed, 'data'), sample: new Rng(config.seed, 'sample') };
    // held-out problems: their own stream, and never drawn for training (nextProblem skips them)
    const hr = new Rng(config.seed, 'heldout');
    this.heldout = [];
    this.#heldoutPrompts = new Set();
    for (let tries = 0; this.heldout.length < config.evalPrompts && tries < config.evalPrompts * 50; tries++) {
      const p = this.task.generate(hr);
      if (this.#heldoutPrompts.has(p.prompt)) continue;
      this.#heldoutPrompts.add(p.prompt);
      this.heldout.push(p);
    }
  }

  /** The backend's tensor-byte peak since resetPeak(), including the peaks #peakAbove saw before its own resets. */
  #peakSeen = 0;
  resetPeak(): void {
    this.backend.resetPeak?.();
    this.#peakSeen = 0;
  }
  peakBytes(): number | null {
    const s = this.backend.memoryStats?.();
    return s ? Math.max(this.#peakSeen, s.peak) : null;
  }

  /** Runs fn and measures the peak tensor bytes above what was in use when it started (keeping the overall peak). */
  async #peakAbove<R>(fn: () => Promise<R>): Promise<{ value: R; extra: number | null }> {
    const be = this.backend;
    if (!be.memoryStats || !be.resetPeak) return { value: await fn(), extra: null };
    const s0 = be.memoryStats();
    this.#peakSeen = Math.max(this.#peakSeen, s0.peak);
    be.resetPeak();
    const value = await fn();
    const s1 = be.memoryStats();
    this.#peakSeen = Math.max(this.#peakSeen, s1.peak);
    return { value, extra: s1.peak - s0.inUse };
  }

  /** A training problem whose prompt is not a held-out one. */
  nextProblem(): Problem {
    for (;;) {
      const p = this.task.generate(this.rng.data);
      if (!this.#heldoutPrompts.has(p.prompt)) return p;
    }
  }

  dispose(): void {
    this.model.dispose();
    this.ref?.dispose();
    this.opt.dispose();
  }

  // -------------------------------------------------------------------------------------------

  /** tokens [B, L] -> inputs [B, L−1], targets [B, L−1] (next tokens), mask [B, L−1] on completion targets (positions ≥ Tp, up to the row's end). */
  #shift(tokens: Int32Array, B: number, L: number, Tp: number, lengths: ArrayLike<number>) {
    const T = L - 1;
    const inputs = new Int32Array(B * T);
    const targets = new Int32Array(B * T);
    const mask = new Float32Array(B * T);
    for (let b = 0; b < B; b++) {
      inputs.set(tokens.subarray(b * L, b * L + T), b * T);
      targets.set(tokens.subarray(b * L + 1, b * L + L), b * T);
      for (let j = Tp - 1; j < Tp - 1 + lengths[b]!; j++) mask[b * T + j] = 1;
    }
    return { T, inputs, targets, mask };
  }

  /** One warm-start step on `batch` fresh worked solutions. */
  async sftStep(): Promise<SftMetrics> {
    const t0 = performance.now();
    const c = this.config;
    const problems = Array.from({ length: c.sft.batch }, () => this.nextProblem());
    const prompt = problems.map((p) => encode(p.prompt));
    const completion = problems.map((p) => [...encode(p.solution), EOS]);
    const Tp = prompt[0]!.length;
    const L = Tp + Math.max(...completion.map((s) => s.length));
    const B = problems.length;
    const tokens = new Int32Array(B * L).fill(PAD);
    for (let b = 0; b < B; b++) tokens.set([...prompt[b]!, ...completion[b]!], b * L);
    const { T, inputs, targets, mask } = this.#shift(tokens, B, L, Tp, completion.map((s) => s.length));
    const { loss, gradNorm } = await supervisedStep(this.model, this.opt, inputs, targets, mask, B, T, c.sft.lr, c);
    this.step++;
    return { phase: 'sft', step: this.step, loss, gradNorm, tokens: B * L, seconds: (performance.now() - t0) / 1000 };
  }

  /** After the warm start: freeze the reference (when β > 0), reset the optimizer, count GRPO steps from 0. */
  startGrpo(): void {
    this.ref?.dispose();
    this.ref = this.config.grpo.beta > 0 ? this.model.clone() : null;
    this.opt.dispose();
    this.opt = new AdamW(this.model);
    this.phase = 'grpo';
    this.step = 0;
  }

  /** Log-probs [B·T] of `targets` under `model` (no activations kept). */
  async #logprobs(model: Model, inputs: Int32Array, targetsT: Tensor, B: number, T: number): Promise<Tensor> {
    const fwd = await model.forward(inputs, B, T);
    const r = await logprob.fromHidden(fwd.hidden, model.params.get('head')!, targetsT, { temperature: this.config.grpo.temperature });
    fwd.hidden.dispose();
    r.lse.dispose();
    return r.logp;
  }

  /** One GRPO step. */
  async grpoStep(): Promise<GrpoMetrics> {
    const t0 = performance.now();
    const c = this.config;
    const gc = c.grpo;
    const be = this.backend;
    const problems = Array.from({ length: gc.prompts }, () => this.nextProblem());
    const samples = await sampleCompletions(this.model, problems.map((p) => encode(p.prompt)), gc.group, this.rng.sample, {
      temperature: gc.temperature, topP: gc.topP, maxNew: this.task.maxCompletion, stop: EOS,
    });
    const t1 = performance.now();
    const { B, L } = samples;
    const rewards = new Float32Array(B);
    let correct = 0, format = 0, length = 0;
    for (let b = 0; b < B; b++) {
      const j = judge(this.task, problems[Math.floor(b / gc.group)]!, completionOf(samples, b));
      rewards[b] = j.reward;
      correct += +j.correct;
      format += +j.format;
      length += samples.lengths[b]!;
    }
    const rewardsT = be.fromHost(rewards, 'f32', [B]);
    const adv = gc.zeroAdvantages ? be.fromHost(new Float32Array(B), 'f32', [B]) : await grpo.advantages(rewardsT, gc.group);
    this.lastBatch = { samples, rewards, advantages: (await adv.read()) as Float32Array };
    const { T, inputs, targets, mask } = this.#shift(samples.tokens, B, L, samples.promptLength, samples.lengths);
    const targetsT = be.fromHost(targets, 'i32', [B, T]);
    const targetsFlat = viewAs(targetsT, [B * T]);
    const maskT = be.fromHost(mask, 'f32', [B, T]);
    const refLogp = this.ref ? viewAs(await this.#logprobs(this.ref, inputs, targetsFlat, B, T), [B, T]) : null;
    let oldLogp: Tensor | null = null;
    let stats = { loss: 0, clipFraction: 0, meanKl: 0, meanRatio: 0 };
    let gradNorm = 0;
    let lossExtraBytes: number | null = null;
    const loads: Int32Array[][] = [];
    const head = () => this.model.params.get('head')!;
    for (let it = 0; it < gc.mu; it++) {
      const fwd = await this.model.forward(inputs, B, T, { save: true });
      loads.push(fwd.load);
      if (it === 0) {
        // the sampling policy's log-probs: these weights sampled the completions
        const r = await logprob.fromHidden(fwd.hidden, head(), targetsFlat, { temperature: gc.temperature });
        r.lse.dispose();
        oldLogp = viewAs(r.logp, [B, T]);
      }
      const lossArgs = { oldLogp: oldLogp!, refLogp, advantages: adv, mask: maskT, beta: gc.beta, epsLow: gc.epsLow, epsHigh: gc.epsHigh, agg: gc.agg };
      const { value: lossOut, extra } = await this.#peakAbove(async () => {
        if (gc.fusedLoss) {
          const r = await grpo.fusedLossFromHidden({ ...lossArgs, hidden: fwd.hidden, headWeight: head(), targets: targetsT, temperature: gc.temperature });
          r.logp.dispose();
          return { dHidden: r.dHidden, dHead: r.dHeadWeight, stats: { loss: r.loss, ...r.stats } };
        }
        const u = await this.#unfusedLoss(fwd.hidden, head(), targetsFlat, B, T, lossArgs);
        return { dHidden: u.dHidden, dHead: u.dHead, stats: { loss: u.loss, ...u.stats } };
      });
      const { dHidden, dHead } = lossOut;
      stats = lossOut.stats;
      if (extra !== null) lossExtraBytes = Math.max(lossExtraBytes ?? 0, extra);
      const grads = this.model.zeroGrads();
      await nn.addScaled(grads.get('head')!, dHead, 1, { out: grads.get('head')! });
      await this.model.backward(fwd.cache!, dHidden, grads);
      for (const t of [dHidden, dHead, fwd.hidden]) t.dispose();
      gradNorm = await clipGradients(grads, c.clipNorm);
      await this.opt.update(this.model, grads, gc.lr, c.adam);
      for (const t of grads.values()) t.dispose();
    }
    await updateBiases(this.model, loads);
    for (const t of [rewardsT, adv, targetsT, maskT, refLogp, oldLogp]) t?.dispose();
    this.step++;
    const t2 = performance.now();
    return {
      phase: 'grpo', step: this.step,
      reward: rewards.reduce((a, r) => a + r, 0) / B, accuracy: correct / B, format: format / B,
      kl: stats.meanKl, clipFraction: stats.clipFraction, ratio: stats.meanRatio, loss: stats.loss, gradNorm,
      length: length / B, tokens: B * L,
      seconds: (t2 - t0) / 1000, sampleSeconds: (t1 - t0) / 1000, trainTokensPerSec: (B * T * gc.mu) / ((t2 - t1) / 1000),
      lossExtraBytes, logitsBytes: B * T * this.config.model.vocab * 4,
    };
  }

  /** The loss through the full logits [N, V]: what the fused path avoids holding (the memory comparison). */
  async #unfusedLoss(hidden: Tensor, head: Tensor, targetsFlat: Tensor, B: number, T: number, args: Omit<grpo.LossArgs, 'logp'>) {
    const temperature = this.config.grpo.temperature;
    const logits = await gemm.matmul(hidden, head); // [N, V]
    const f = await logprob.fromLogits(logits, targetsFlat, { temperature });
    const r = await grpo.loss({ ...args, logp: viewAs(f.logp, [B, T]) });
    const dlogits = await logprob.fromLogitsBackward(logits, targetsFlat, f.lse, viewAs(r.dlogp, [B * T]), { temperature }); // [N, V]
    const dHidden = await gemm.matmul(dlogits, head, { transB: false }); // [N, V]·[V, D]
    const dHead = await gemm.matmul(dlogits, hidden, { transA: true, transB: false }); // [V, N]·[N, D]
    for (const t of [logits, f.logp, f.lse, r.dlogp, dlogits]) t.dispose();
    return { loss: r.loss, stats: r.stats, dHidden, dHead };
  }

  /** Greedy accuracy of `model` (default: the policy) on the held-out problems. */
  async evaluate(model: Model = this.model, batch = 256): Promise<EvalResult> {
    let correct = 0, format = 0;
    const examples: EvalResult['examples'] = [];
    const rng = new Rng(0, 'eval'); // greedy decoding never draws from it
    for (let i = 0; i < this.heldout.length; i += batch) {
      const probs = this.heldout.slice(i, i + batch);
      const s: Samples = await sampleCompletions(model, probs.map((p) => encode(p.prompt)), 1, rng, { temperature: 0, maxNew: this.task.maxCompletion, stop: EOS });
      for (let b = 0; b < probs.length; b++) {
        const comp = completionOf(s, b);
        const j = judge(this.task, probs[b]!, comp);
        correct += +j.correct;
        format += +j.format;
        if (examples.length < 8) examples.push({ prompt: probs[b]!.prompt, completion: decode(comp), correct: j.correct });
      }
    }
    const n = this.heldout.length;
    return { accuracy: correct / n, format: format / n, n, examples };
  }

  // -------------------------------------------------------------------------------------------
  // checkpoint state

  exportState(): { state: TrainerState; tensors: StateTensors } {
    const tensors: StateTensors = new Map();
    for (const [k, t] of this.model.params) tensors.set(`model.${k}`, t);
    for (const [k, t] of this.model.biases) tensors.set(`bias.${k}`, t);
    for (const [k, t] of this.opt.m) tensors.set(`adam.m.${k}`, t);
    for (const [k, t] of this.opt.v) tensors.set(`adam.v.${k}`, t);
    if (this.ref) {
      for (const [k, t] of this.ref.params) tensors.set(`ref.${k}`, t);
      for (const [k, t] of this.ref.biases) tensors.set(`refbias.${k}`, t);
    }
    return {
      state: { phase: this.phase, step: this.step, adamStep: this.opt.step, rng: { data: this.rng.data.state, sample: this.rng.sample.state } },
      tensors,
    };
  }

  /** Restores exportState's output (tensors as host arrays by name). */
  importState(state: TrainerState, get: (name: string) => Float32Array | undefined): void {
    const load = (target: Map<string, Tensor>, prefix: string) => {
      for (const [k, t] of target) {
        const data = get(prefix + k);
        if (!data || data.length !== t.size) throw new Error(`checkpoint: ${prefix}${k} is missing or has the wrong size`);
        t.dispose();
        target.set(k, this.backend.fromHost(data, 'f32', t.shape));
      }
    };
    load(this.model.params, 'model.');
    load(this.model.biases, 'bias.');
    this.phase = state.phase;
    this.step = state.step;
    if (state.phase !== 'sft') {
      // the reference and the optimizer as startGrpo made them, then their saved contents
      this.startGrpo();
      this.step = state.step;
      if (this.ref) {
        load(this.ref.params, 'ref.');
        load(this.ref.biases, 'refbias.');
      }
    }
    load(this.opt.m, 'adam.m.');
    load(this.opt.v, 'adam.v.');
    this.opt.step = state.adamStep;
    this.phase = state.phase;
    this.rng.data.state = state.rng.data;
    this.rng.sample.state = state.rng.sample;
  }
}
