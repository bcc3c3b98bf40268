// Native errors arrive as plain Errors with a `code` property (native/common/check.h sets it).
// nativeCall runs a native function and rethrows those as HotpathsError with the same code.

import { HotpathsError, type ErrorCode } from '../errors.js';

const CODES = new Set<string>(['E_ARG', 'E_SHAPE', 'E_DTYPE', 'E_TOO_LARGE', 'E_NATIVE', 'E_BACKEND', 'E_NOT_IMPLEMENTED']);

export function toHotpathsError(e: unknown, what: string): HotpathsError {
  if (e instanceof HotpathsError) return e;
  const err = e as { code?: string; message?: string };
  const code = (err?.code && CODES.has(err.code) ? err.code : 'E_NATIVE') as ErrorCode;
  return new HotpathsError(code, `${what}: ${err?.message ?? String(e)}`, { cause: e });
}

/** Calls `fn`, mapping native errors (sync throws and rejected promises) to HotpathsError. */
export async function nativeCall<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toHotpathsError(e, what);
  }
}

export function nativeCallSync<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toHotpathsError(e, what);
  }
}
