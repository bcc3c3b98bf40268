// checkpoint: tensors as safetensors, the rest (config, step, RNG states) as JSON, each file written
// atomically (a temp file in the same folder, fsync, rename, fsync of the folder), so a run killed at
// any moment leaves either the previous checkpoint or the new one, never a torn file.
//
// Why our own safetensors code: there is no well-kept Node library for it — npm's `safetensors` is a
// 0.0.1 placeholder, and @huggingface/hub only parses the headers of remote files. The format is
// small (https://github.com/huggingface/safetensors, "Format"):
//   8 bytes   N, little-endian u64: the header's length
//   N bytes   JSON: { name: { dtype: "F32" | "I32" | …, shape: [...], data_offsets: [begin, end] }, …,
//             "__metadata__": { string: string } }, padded with spaces (we pad to 8 bytes)
//   the rest  the tensors' bytes, little-endian, row-major, at data_offsets (relative to here), packed
//             in order without gaps or overlaps.

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export type StDType = 'F32' | 'I32' | 'U8' | 'BF16' | 'F64';

export interface StTensor {
  dtype: StDType;
  shape: number[];
  /** Float32Array (F32), Int32Array (I32), Uint8Array (U8), Uint16Array (BF16 bits), Float64Array (F64). */
  data: Float32Array | Int32Array | Uint8Array | Uint16Array | Float64Array;
}

const BYTES: Record<StDType, number> = { F32: 4, I32: 4, U8: 1, BF16: 2, F64: 8 };

/** Host byte order must be little-endian for the zero-copy views below (true on x86 and ARM as Node runs them). */
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The bytes of a safetensors file holding `tensors` (in the map's order) and string metadata. */
export function encodeSafetensors(tensors: Map<string, StTensor>, metadata: Record<string, string> = {}): Buffer {
  if (!LITTLE) throw new Error('safetensors: big-endian hosts are not supported');
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, s) => a * s, 1);
    if (t.data.length !== n) throw new Error(`safetensors: ${name}: ${t.data.length} values for shape [${t.shape}]`);
    const bytes = n * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // data starts 8-byte aligned
  const head = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + head.length + offset);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  let at = 8 + head.length;
  for (const t of tensors.values()) {
    const src = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    src.copy(out, at);
    at += src.length;
  }
  return out;
}

/** Parses a safetensors file's bytes (copies each tensor out, so the result does not pin the buffer). */
export function decodeSafetensors(buf: Uint8Array): { tensors: Map<string, StTensor>; metadata: Record<string, string> } {
  if (!LITTLE) throw new Error('safetensors: big-endian hosts are not supported');
  if (buf.length < 8) throw new Error(`safetensors: ${buf.length} bytes is too short for a header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (8 + n > buf.length) throw new Error(`safetensors: header of ${n} bytes runs past the end (${buf.length} bytes)`);
  const header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, n).toString('utf8')) as Record<string, unknown>;
  const base = 8 + n;
  const tensors = new Map<string, StTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as { dtype: StDType; shape: number[]; data_offsets: [number, number] };
    if (!(e.dtype in BYTES)) throw new Error(`safetensors: ${name}: dtype ${e.dtype} is not supported here`);
    const [b0, b1] = e.data_offsets;
    const count = e.shape.reduce((a, s) => a * s, 1);
    if (b1 - b0 !== count * BYTES[e.dtype] || base + b1 > buf.length) throw new Error(`safetensors: ${name}: bad data_offsets [${b0}, ${b1}] for ${e.dtype}[${e.shape}]`);
    // a copy into a fresh ArrayBuffer: aligned for the typed array, and (unlike Buffer#slice, which
    // shares memory) independent of `buf`
    const ab = new Uint8Array(buf.subarray(base + b0, base + b1)).buffer;
    const data =
      e.dtype === 'F32' ? new Float32Array(ab, 0, count)
      : e.dtype === 'I32' ? new Int32Array(ab, 0, count)
      : e.dtype === 'U8' ? new Uint8Array(ab, 0, count)
      : e.dtype === 'BF16' ? new Uint16Array(ab, 0, count)
      : new Float64Array(ab, 0, count);
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/** Writes `data` to `path` atomically: temp file beside it, fsync, rename over, fsync the folder. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* some filesystems refuse to fsync a folder; the rename itself is still atomic */
  }
}

export function writeSafetensors(path: string, tensors: Map<string, StTensor>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export function readSafetensors(path: string): { tensors: Map<string, StTensor>; metadata: Record<string, string> } {
  return decodeSafetensors(readFileSync(path));
}

export function removeIfExists(path: string): void {
  if (existsSync(path)) unlinkSync(path);
}
