// Argument checks shared by the ops: each throws HotpathsError naming the argument, what was expected
// and what was given.

import type { DType } from '../dtype.js';
import { HotpathsError, show } from '../errors.js';
import { Tensor } from '../tensor.js';

/** Largest element count an op accepts (keeps every kernel's 32-bit index arithmetic exact). */
export const MAX_ELEMENTS = 2 ** 31 - 1;

/**
 * A live Tensor of at most `maxElements` elements (MAX_ELEMENTS unless an op whose kernels index with
 * 64 bits says more).
 */
export function assertTensor(what: string, t: unknown, maxElements = MAX_ELEMENTS): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw new HotpathsError('E_ARG', `${what}: expected a Tensor, got ${show(t)}`);
  t.assertLive(what);
  if (t.size > maxElements) {
    throw new HotpathsError('E_TOO_LARGE', `${what}: ${t.describe()} has ${t.size} elements; at most ${maxElements} are supported`);
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

/** `t` has exactly `shape`; `why` says where the expected shape comes from ("[N] to match logits f32[4, 10]"). */
export function assertShapeEquals(what: string, t: Tensor, shape: readonly number[], why: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new HotpathsError('E_SHAPE', `${what}: expected shape ${show(shape)} ${why}, got ${t.describe()}`);
  }
}

/** A finite number, optionally bounded (`min` inclusive unless `minExclusive`, `max` inclusive) and an integer. */
export function assertNumber(what: string, v: unknown, opts: { min?: number; minExclusive?: boolean; max?: number; integer?: boolean } = {}): asserts v is number {
  const { min, minExclusive = false, max, integer = false } = opts;
  const bounds = [
    min === undefined ? '' : `${minExclusive ? '>' : '≥'} ${min}`,
    max === undefined ? '' : `≤ ${max}`,
  ].filter(Boolean).join(' and ');
  const kind = `${integer ? 'an integer' : 'a finite number'}${bounds ? ` ${bounds}` : ''}`;
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (!integer || Number.isInteger(v)) &&
    (min === undefined || (minExclusive ? v > min : v >= min)) &&
    (max === undefined || v <= max);
  if (!ok) throw new HotpathsError('E_ARG', `${what}: expected ${kind}, got ${show(v)}`);
}

export function assertBoolean(what: string, v: unknown): asserts v is boolean {
  if (typeof v !== 'boolean') throw new HotpathsError('E_ARG', `${what}: expected a boolean, got ${show(v)}`);
}

/** An options argument: undefined (use the defaults) or a plain object. */
export function assertOptions(what: string, v: unknown): void {
  if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) {
    throw new HotpathsError('E_ARG', `${what}: expected an options object, got ${show(v)}`);
  }
}

/**
 * The host typed array behind a tensor of a host backend (reference, cpu), for value checks that cost
 * nothing there; undefined on device backends, where such a check would need a read-back.
 */
export function hostValues(t: Tensor): ArrayLike<number> | undefined {
  return (t.device === 'reference' || t.device === 'cpu') && ArrayBuffer.isView(t.storage) ? (t.storage as unknown as ArrayLike<number>) : undefined;
}

/** The error an op throws on a backend that lacks its kernel family. */
export function notImplemented(op: string, t: Tensor): HotpathsError {
  return new HotpathsError('E_NOT_IMPLEMENTED', `${op}: not implemented on the ${t.device} backend yet; move the tensors with await t.to('reference')`);
}
