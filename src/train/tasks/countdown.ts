// The Countdown game: reach the target with some of the given numbers, each used at most once, and
// + − × ÷ (classic rules; exact arithmetic: a division must come out as a number, fractions in
// between are allowed by the verifier). The generator combines all the numbers left to right with
// random operations whose intermediate results stay positive integers, so every target is reachable;
// the worked solution lists those steps and answers with the parenthesised expression.
//
//   prompt   " 3 5 7: 22"   (numbers right-aligned in 2 characters each, target in 3)
//   solution "<think>3*5=15,15+7=22</think><answer>(3*5)+7</answer>"
//
// The verifier is a small recursive-descent parser over exact rationals (no eval): numbers,
// + − * /, parentheses and spaces; anything else, a division by zero, a number not given (or given
// fewer times than used), or a result other than the target is wrong.

import type { Rng } from '../rng.js';
import { padLeft, type Problem, type Task } from './task.js';

export interface CountdownOptions {
  /** Numbers per problem (2–4). Default 3. */
  count?: number;
  /** Numbers are drawn from 1..maxNumber (≤ 99). Default 9. */
  maxNumber?: number;
}

type Op = '+' | '-' | '*' | '/';

export function countdownTask(opts: CountdownOptions = {}): Task {
  const count = opts.count ?? 3;
  const maxNumber = opts.maxNumber ?? 9;
  if (!Number.isInteger(count) || count < 2 || count > 4) throw new Error(`countdown: count: expected an integer in [2, 4], got ${count}`);
  if (!Number.isInteger(maxNumber) || maxNumber < 2 || maxNumber > 99) throw new Error(`countdown: maxNumber: expected an integer in [2, 99], got ${maxNumber}`);
  const targetWidth = String(maxNumber ** count).length;
  const promptLength = 3 * count + 1 + targetWidth; // " n" per number as " nn", ':' and the target
  // think: count−1 steps "a?b=c" (each ≤ 2·targetWidth+targetWidth+2 characters) and commas; answer: the expression
  const step = 3 * targetWidth + 2;
  const exprMax = count * 2 + 2 * (count - 1) + (count - 1);
  const maxCompletion = 1 + (count - 1) * (step + 1) + 2 + exprMax + 1 + 1 + 4;

  function generate(rng: Rng): Problem {
    const nums = Array.from({ length: count }, () => rng.range(1, maxNumber));
    // Combine in a random order, left to right; retry an operation until the result stays a positive integer.
    const order = [...nums];
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    let acc = order[0]!;
    let expr = String(acc);
    const steps: string[] = [];
    for (let i = 1; i < order.length; i++) {
      const n = order[i]!;
      const choices: Op[] = ['+', '*'];
      if (acc - n > 0) choices.push('-');
      if (acc % n === 0 && n > 1) choices.push('/');
      const op = choices[rng.int(choices.length)]!;
      const next = op === '+' ? acc + n : op === '-' ? acc - n : op === '*' ? acc * n : acc / n;
      steps.push(`${acc}${op}${n}=${next}`);
      expr = i === 1 ? `${expr}${op}${n}` : `(${expr})${op}${n}`;
      acc = next;
    }
    const prompt = padLeft(`${nums.map((n) => String(n).padStart(2, ' ')).join(' ')}:${String(acc).padStart(targetWidth, ' ')}`, promptLength);
    return { prompt, solution: `<think>${steps.join(',')}</think><answer>${expr}</answer>`, data: { numbers: nums, target: acc } };
  }

  function verify(problem: Problem, answer: string): boolean {
    const numbers = problem.data.numbers as number[];
    const target = problem.data.target as number;
    const r = evaluateExpression(answer);
    if (!r) return false;
    const left = new Map<number, number>();
    for (const n of numbers) left.set(n, (left.get(n) ?? 0) + 1);
    for (const n of r.used) {
      const k = left.get(n) ?? 0;
      if (k === 0) return false;
      left.set(n, k - 1);
    }
    return r.den === 1 && r.num === target;
  }

  return { name: 'countdown', promptLength, maxCompletion, generate, verify };
}

/** An exact rational num/den (den > 0, reduced). */
interface Rational {
  num: number;
  den: number;
}

function gcd(a: number, b: number): number {
  a = Math.abs(a);
  b = Math.abs(b);
  while (b) [a, b] = [b, a % b];
  return a;
}

function make(num: number, den: number): Rational | null {
  if (den === 0 || !Number.isSafeInteger(num) || !Number.isSafeInteger(den)) return null;
  const g = gcd(num, den) || 1;
  const s = den < 0 ? -1 : 1;
  return { num: (s * num) / g, den: (s * den) / g };
}

/**
 * Evaluates `+ − * /`, parentheses and non-negative integer literals over exact rationals.
 * Returns the value and the literals used, or null for anything malformed, a division by zero, a
 * literal with a leading zero or over 4 digits, an expression over 64 characters or nested past 16.
 */
export function evaluateExpression(text: string): { num: number; den: number; used: number[] } | null {
  if (text.length === 0 || text.length > 64) return null;
  const src = text.replace(/ /g, '');
  if (!/^[0-9+\-*/()]+$/.test(src)) return null;
  let i = 0;
  const used: number[] = [];

  function factor(depth: number): Rational | null {
    if (depth > 16) return null;
    if (src[i] === '(') {
      i++;
      const v = expr(depth + 1);
      if (!v || src[i] !== ')') return null;
      i++;
      return v;
    }
    const m = /^[0-9]+/.exec(src.slice(i));
    if (!m || m[0].length > 4 || (m[0].length > 1 && m[0][0] === '0')) return null;
    i += m[0].length;
    const n = Number(m[0]);
    used.push(n);
    return { num: n, den: 1 };
  }
  function term(depth: number): Rational | null {
    let v = factor(depth);
    while (v && (src[i] === '*' || src[i] === '/')) {
      const op = src[i++];
      const w = factor(depth);
      if (!w) return null;
      v = op === '*' ? make(v.num * w.num, v.den * w.den) : make(v.num * w.den, v.den * w.num);
    }
    return v;
  }
  function expr(depth: number): Rational | null {
    let v = term(depth);
    while (v && (src[i] === '+' || src[i] === '-')) {
      const op = src[i++];
      const w = term(depth);
      if (!w) return null;
      v = make(op === '+' ? v.num * w.den + w.num * v.den : v.num * w.den - w.num * v.den, v.den * w.den);
    }
    return v;
  }

  const v = expr(0);
  if (!v || i !== src.length) return null;
  return { num: v.num, den: v.den, used };
}
