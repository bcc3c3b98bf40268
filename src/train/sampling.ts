// sampling: G completions per prompt, decoded in lockstep with the model's KV cache. Each step's
// logits [B, V] come from the LM head (gemm.matmul) and nn.sample picks the tokens with temperature
// and top-p from uniforms drawn from the caller's seeded stream (one per row per step, drawn for every
// row, finished or not, so the stream advances the same way whatever the completions were). A row
// stops at the stop token; its later positions are PAD. Decoding ends at maxNew tokens or when every
// row has stopped.

import * as gemm from '../ops/gemm.js';
import * as nn from '../ops/nn.js';
import type { Model } from './model.js';
import type { Rng } from './rng.js';
import { PAD } from './tokenizer.js';

export interface SampleOptions {
  /** 0 = greedy. Default 1. */
  temperature?: number;
  /** Nucleus mass (1 = off). Default 1. */
  topP?: number;
  /** Most completion tokens per row, the stop token included. */
  maxNew: number;
  /** The token that ends a completion. */
  stop: number;
}

export interface Samples {
  /** Rows B = prompts·G (prompt i's completions are rows i·G … i·G + G − 1). */
  B: number;
  /** Tokens per row: prompt length + the longest completion. */
  L: number;
  /** Prompt length (the same for every row). */
  promptLength: number;
  /** [B, L] i32: prompt, completion, then PAD. */
  tokens: Int32Array;
  /** Completion tokens per row (the stop token included when it came). */
  lengths: Int32Array;
  /** Whether each row produced the stop token. */
  stopped: Uint8Array;
}

/** prompts: token ids, all of one length -> G completions each. */
export async function sampleCompletions(model: Model, prompts: number[][], G: number, rng: Rng, opts: SampleOptions): Promise<Samples> {
  const Tp = prompts[0]!.length;
  if (!prompts.every((p) => p.length === Tp)) throw new Error('sampleCompletions: every prompt must have the same length (tasks pad them)');
  const B = prompts.length * G;
  const temperature = opts.temperature ?? 1;
  const topP = opts.topP ?? 1;
  const head = model.params.get('head')!;
  const be = model.backend;
  const maxL = Tp + opts.maxNew;
  const out = new Int32Array(B * maxL).fill(PAD);
  for (let b = 0; b < B; b++) out.set(prompts[Math.floor(b / G)]!, b * maxL);
  const lengths = new Int32Array(B);
  const stopped = new Uint8Array(B);
  // the last sampled token is never fed back, so the cache needs maxL − 1 positions
  const state = model.startDecode(B, maxL - 1);
  const feed = new Int32Array(B);
  let done = 0;
  let steps = 0;
  try {
    for (let t = 0; t < maxL - 1 && done < B; t++) {
      for (let b = 0; b < B; b++) feed[b] = out[b * maxL + t]!;
      const hidden = await model.decodeStep(state, feed); // [B, D]
      if (t < Tp - 1) {
        hidden.dispose(); // still inside the prompt: only the cache matters
        continue;
      }
      const logits = await gemm.matmul(hidden, head); // [B, V]
      const u = new Float32Array(B);
      for (let b = 0; b < B; b++) u[b] = rng.next();
      const uT = be.fromHost(u, 'f32', [B]);
      const idsT = await nn.sample(logits, uT, { temperature, topP });
      const ids = (await idsT.read()) as Int32Array;
      for (const x of [hidden, logits, uT, idsT]) x.dispose();
      steps++;
      for (let b = 0; b < B; b++) {
        if (stopped[b] || lengths[b]! >= opts.maxNew) continue;
        out[b * maxL + t + 1] = ids[b]!;
        lengths[b] = lengths[b]! + 1;
        if (ids[b] === opts.stop) {
          stopped[b] = 1;
          done++;
        } else if (lengths[b] === opts.maxNew) done++;
      }
    }
  } finally {
    model.endDecode(state);
  }
  let longest = 0;
  for (let b = 0; b < B; b++) longest = Math.max(longest, lengths[b]!);
  const L = Tp + longest;
  const tokens = new Int32Array(B * L);
  for (let b = 0; b < B; b++) tokens.set(out.subarray(b * maxL, b * maxL + L), b * L);
  return { B, L, promptLength: Tp, tokens, lengths, stopped };
}

/** Row b's completion tokens. */
export function completionOf(s: Samples, b: number): Int32Array {
  return s.tokens.subarray(b * s.L + s.promptLength, b * s.L + s.promptLength + s.lengths[b]!);
}
