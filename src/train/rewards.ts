// Rule-based rewards in the DeepSeek-R1 manner (REFERENCE.md "Rule-based rewards"), never a model:
//
//   format   the completion, up to its end token, is exactly
//            <think>T</think><answer>A</answer>   (T and A without tags; the end token was produced
//            within the length limit). 1 or 0.
//   correct  the format holds and the task's deterministic verifier accepts A
//            (arithmetic: the exact number; Countdown: an expression over the given numbers, each at
//            most once, whose exact value is the target). 1 or 0.
//   reward   1.0 if correct, else 0.1 if the format holds, else 0.
//
// A right answer in a broken format earns nothing: without the format there is no well-defined answer
// to check. The 0.1 keeps a small gradient toward the format while accuracy is still rare.

import type { Problem, Task } from './tasks/task.js';
import { ANSWER, ANSWER_END, EOS, THINK, THINK_END, decode } from './tokenizer.js';

export const REWARD_CORRECT = 1.0;
export const REWARD_FORMAT = 0.1;

export interface Judgement {
  format: boolean;
  correct: boolean;
  reward: number;
  /** The text between <answer> and </answer>, when the format holds. */
  answer: string | null;
}

/** Judges one completion given as token ids (the sampled tokens after the prompt, the end token included if it came). */
export function judge(task: Task, problem: Problem, completion: ArrayLike<number>): Judgement {
  const end = Array.prototype.indexOf.call(completion, EOS);
  if (end < 0) return { format: false, correct: false, reward: 0, answer: null };
  const ids = Array.prototype.slice.call(completion, 0, end) as number[];
  // Tag positions: exactly one of each, in order, first token <think>, last </answer>, </think> right before <answer>.
  const at = (id: number) => ids.indexOf(id);
  const once = (id: number) => ids.indexOf(id) >= 0 && ids.indexOf(id) === ids.lastIndexOf(id);
  const ok =
    ids.length >= 4 &&
    [THINK, THINK_END, ANSWER, ANSWER_END].every(once) &&
    at(THINK) === 0 &&
    at(ANSWER) === at(THINK_END) + 1 &&
    at(ANSWER_END) === ids.length - 1 &&
    ids.every((id) => id >= THINK); // no <pad> or other specials
  if (!ok) return { format: false, correct: false, reward: 0, answer: null };
  const answer = decode(ids.slice(at(ANSWER) + 1, ids.length - 1));
  const correct = task.verify(problem, answer);
  return { format: true, correct, reward: correct ? REWARD_CORRECT : REWARD_FORMAT, answer };
}

/** The same rule on text (tests, the report): `text` is the completion, ending in `<eos>` if it stopped. */
export function judgeText(task: Task, problem: Problem, text: string, encodeFn: (s: string) => number[]): Judgement {
  return judge(task, problem, encodeFn(text));
}
