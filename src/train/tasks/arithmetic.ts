// Multi-digit arithmetic: `a+b` with two numbers of up to `digits` digits, and (when '*' is among the
// ops) `a*d` with a one-digit d. The worked solution goes column by column from the ones digit, each
// column written in one fixed shape — `x+y+c=s` (addition) or `x*d+c=s` (multiplication), s always
// two digits, c the carry in — so a small model can learn the algorithm, then the answer.
//
//   prompt   "  457+68="   (left-padded to 2·digits + 2)
//   solution "<think>7+8+0=15,5+6+1=12,4+0+1=05</think><answer>525</answer>"

import type { Rng } from '../rng.js';
import { padLeft, type Problem, type Task } from './task.js';

export type ArithmeticOp = '+' | '*';

export interface ArithmeticOptions {
  /** Digits of the operands (1–6). Default 3. */
  digits?: number;
  /** Operations drawn uniformly. Default ['+']. */
  ops?: ArithmeticOp[];
}

export function arithmeticTask(opts: ArithmeticOptions = {}): Task {
  const digits = opts.digits ?? 3;
  const ops = opts.ops ?? ['+'];
  if (!Number.isInteger(digits) || digits < 1 || digits > 6) throw new Error(`arithmetic: digits: expected an integer in [1, 6], got ${digits}`);
  if (ops.length === 0 || !ops.every((o) => o === '+' || o === '*')) throw new Error(`arithmetic: ops: expected a non-empty list of '+' and '*', got ${JSON.stringify(ops)}`);
  const promptLength = 2 * digits + 2;
  // <think> + digits columns of 8 characters and digits−1 commas + </think><answer> + digits+1 answer characters + </answer> + <eos>
  const solutionMax = 1 + 8 * digits + (digits - 1) + 2 + (digits + 1) + 1;
  const maxCompletion = solutionMax + 1 + 4; // + <eos>, + slack for a longer wrong answer

  function generate(rng: Rng): Problem {
    const op = ops[rng.int(ops.length)]!;
    const max = 10 ** digits;
    // Operand lengths uniform in 1..digits (then the value uniform among them), so short and long sums both occur.
    const draw = (nd: number) => (nd === 1 ? rng.int(10) : rng.range(10 ** (nd - 1), 10 ** nd - 1));
    const a = draw(1 + rng.int(digits));
    const b = op === '+' ? draw(1 + rng.int(digits)) : rng.int(10);
    const value = op === '+' ? a + b : a * b;
    if (value >= max * 10) throw new Error('arithmetic: internal: result too long');
    const cols: string[] = [];
    let carry = 0;
    for (let i = 0; i < digits; i++) {
      const x = Math.floor(a / 10 ** i) % 10;
      const s = op === '+' ? x + (Math.floor(b / 10 ** i) % 10) + carry : x * b + carry;
      cols.push(op === '+' ? `${x}+${Math.floor(b / 10 ** i) % 10}+${carry}=${String(s).padStart(2, '0')}` : `${x}*${b}+${carry}=${String(s).padStart(2, '0')}`);
      carry = Math.floor(s / 10);
    }
    return {
      prompt: padLeft(`${a}${op}${b}=`, promptLength),
      solution: `<think>${cols.join(',')}</think><answer>${value}</answer>`,
      data: { a, b, op, value },
    };
  }

  function verify(problem: Problem, answer: string): boolean {
    // An exact number: digits only (leading zeros allowed, no sign, no spaces), equal to the value.
    if (!/^[0-9]{1,12}$/.test(answer)) return false;
    return Number(answer) === problem.data.value;
  }

  return { name: 'arithmetic', promptLength, maxCompletion, generate, verify };
}
