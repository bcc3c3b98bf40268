// The interface every verifiable task implements: prompts generated from a seeded stream, a worked
// solution in the R1 template for the supervised warm start, and a deterministic verifier of the text
// inside <answer>…</answer> (rewards.ts extracts it and applies the format rule).

import type { Rng } from '../rng.js';

export interface Problem {
  /** The prompt text, left-padded with spaces to the task's fixed promptLength (one length per task lets a batch share positions in the KV cache). */
  prompt: string;
  /** A correct completion in the R1 template, `<think>…</think><answer>…</answer>` (no end token). */
  solution: string;
  /** What the verifier needs (the operands and the expected value). */
  data: Record<string, unknown>;
}

export interface Task {
  readonly name: string;
  /** Characters (= tokens) in every prompt. */
  readonly promptLength: number;
  /** Most completion tokens, the end token included: every worked solution fits with room to spare. */
  readonly maxCompletion: number;
  /** A fresh problem from the task's stream. */
  generate(rng: Rng): Problem;
  /** Whether `answer` (the text between <answer> and </answer>) solves the problem. Never throws. */
  verify(problem: Problem, answer: string): boolean;
}

/** Pads `s` on the left with spaces to `width` characters (prompts have one length per task). */
export function padLeft(s: string, width: number): string {
  if (s.length > width) throw new Error(`task: prompt ${JSON.stringify(s)} is longer than the task's promptLength ${width}`);
  return ' '.repeat(width - s.length) + s;
}
