// Argument checks shared by the ops: each throws HotpathsError naming the argument, what was expected
// and what was given.

import type { DType } from '../dtype.js';
import { HotpathsError, show } from '../errors.js';
import { Tensor } from '../tensor.js';

/** Largest element count an op accepts (keeps every kernel's 32-bit index arithmetic exact). */
export const MAX_ELEMENTS = 2 ** 31 - 1;

export function assertTensor(what: string, t: unknown): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw new HotpathsError('E_ARG', `${what}: expected a Tensor, got ${show(t)}`);
  t.assertLive(what);
  if (t.size > MAX_ELEMENTS) {
    throw new HotpathsError('E_TOO_LARGE', `${what}: ${t.describe()} has ${t.size} elements; at most ${MAX_ELEMENTS} are supported`);
  }
}

export function assertDTypeIn(what: string, t: Tensor, allowed: readonly DType[]): void {
  if (!allowed.includes(t.dtype)) {
    throw new HotpathsError('E_DTYPE', `${what}: expected dtype ${allowed.join(' or ')}, got ${t.describe()}`);
  }
}

export function assertRank(what: string, t: Tensor, rank: number): void {
  if (t.shape.length !== rank) {
    throw new HotpathsError('E_SHAPE', `${what}: expected a ${rank}-D tensor, got ${t.describe()}`);
  }
}

export function assertNonEmpty(what: string, t: Tensor): void {
  if (t.size === 0) throw new HotpathsError('E_EMPTY', `${what}: expected at least one element, got ${t.describe()}`);
}

/** All tensors on one backend. */
export function assertSameDevice(what: string, ...ts: Tensor[]): void {
  const first = ts[0];
  for (const t of ts) {
    if (first && t.backend !== first.backend) {
      throw new HotpathsError('E_DEVICE', `${what}: tensors are on different backends (${first.describe()} and ${t.describe()}); move one with await t.to('${first.device}')`);
    }
  }
}

export function assertOneOf<T extends string>(what: string, v: unknown, allowed: readonly T[]): asserts v is T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new HotpathsError('E_ARG', `${what}: expected ${allowed.map((a) => `'${a}'`).join(' or ')}, got ${show(v)}`);
  }
}
