// One error class for the whole package. `code` is stable (match on it); the message names the
// argument, what was expected and what was given, and where it helps, what to do.

export type ErrorCode =
  | 'E_ARG' // an argument has the wrong type or an unknown value
  | 'E_SHAPE' // a shape is wrong for the op (rank, sizes, mismatch between arguments)
  | 'E_DTYPE' // a dtype is wrong for the op
  | 'E_DEVICE' // tensors on different backends, or a tensor on another backend than asked
  | 'E_EMPTY' // a tensor with zero elements where the op needs at least one
  | 'E_TOO_LARGE' // a size past what the backend can address or allocate
  | 'E_NONFINITE' // NaN or infinity where the op cannot give a meaningful result
  | 'E_DISPOSED' // a tensor used after dispose()
  | 'E_BACKEND' // a backend that is not available on this machine
  | 'E_NATIVE' // the native addon reported a failure (a CUDA error, say)
  | 'E_NOT_IMPLEMENTED'; // an op that this backend does not have yet

export class HotpathsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HotpathsError';
    this.code = code;
  }
}

/** Throws `HotpathsError(code, message)` unless `cond` holds. */
export function check(cond: unknown, code: ErrorCode, message: string | (() => string)): asserts cond {
  if (!cond) throw new HotpathsError(code, typeof message === 'string' ? message : message());
}

/** Renders a value for an error message: shapes as [a, b], strings quoted, objects by constructor. */
export function show(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  if (typeof v === 'string') return `'${v}'`;
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return String(v);
}
