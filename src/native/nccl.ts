// The NCCL expert-parallel group (one rank per process, started by `hotpaths launch`): counts and rows
// moved with grouped ncclSend/ncclRecv on the cuda backend's stream; libnccl is loaded at run time
// (dlopen) by the addon (native/cuda/nccl.cu), so the addon builds and loads where NCCL is absent.
//
// The process's rank, the world size and its GPU come from HOTPATHS_RANK, HOTPATHS_WORLD_SIZE and
// HOTPATHS_LOCAL_RANK (the cuda backend opens that device). The NCCL unique id comes from
// HOTPATHS_NCCL_ID (256 hex digits) when set; otherwise through the file HOTPATHS_NCCL_ID_FILE:
// rank 0 creates the id and writes the file (atomically, by rename), the others wait for it for
// HOTPATHS_NCCL_ID_TIMEOUT_S seconds (default 120) and fail with a clear error past that.
//
// One communicator per process: the first moe.ncclGroup() makes it, later calls share it (each group
// holds a share; the last destroy() frees it). Every call is a collective: the ranks all-gather the
// options they passed (maxTokensPerRank) and all throw the same E_ARG when they differ.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { HotpathsError } from '../errors.js';
import { groupHidden, groupSlots, WINDOW_MAX_PIECES, WINDOW_RECEIVE_REGIONS, type ExpertGroup, type GroupOptions, type PendingGather, type PendingMove, type RowWindows, type SymmetricWindows } from '../ops/moe.js';
import { getBackend } from '../runtime/core.js';
import { dtypeBytes, type DType } from '../dtype.js';
import { dispatchRowLayout, type Backend } from '../runtime/backend.js';
import { borrowedTensor, numel, Tensor } from '../tensor.js';
import { addonStatus, loadAddon, type Addon } from './addon.js';
import { nativeCall, nativeCallSync } from './call.js';
import { cudaPtr, type CudaStorage } from './cuda.js';
import { poisonEnabled, POISON_BYTE } from '../runtime/poison.js';

const ID_BYTES = 128;

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new HotpathsError('E_ARG', `moe.ncclGroup(): ${name} must be a non-negative integer, got '${v}'`);
  return n;
}

const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function fromHex(hex: string, where: string): Uint8Array {
  if (!/^[0-9a-f]{256}$/i.test(hex.trim())) throw new HotpathsError('E_ARG', `moe.ncclGroup(): ${where} must hold ${ID_BYTES} bytes as 256 hex digits`);
  return new Uint8Array(Buffer.from(hex.trim(), 'hex'));
}

/** Rank 0 makes the id and publishes it; the others wait for the file (never forever). */
async function uniqueId(addon: Addon, rank: number): Promise<Uint8Array> {
  const direct = process.env.HOTPATHS_NCCL_ID;
  if (direct) return fromHex(direct, 'HOTPATHS_NCCL_ID');
  const file = process.env.HOTPATHS_NCCL_ID_FILE;
  if (!file) {
    throw new HotpathsError('E_ARG', 'moe.ncclGroup(): no NCCL unique id: start the processes with `hotpaths launch --nproc N <script>` (it sets HOTPATHS_NCCL_ID_FILE), or set HOTPATHS_NCCL_ID');
  }
  if (rank === 0) {
    const id = nativeCallSync('moe.ncclGroup(): ncclGetUniqueId', () => addon.ncclGetUniqueId());
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, toHex(id));
    renameSync(tmp, file);
    return id;
  }
  const timeoutS = envInt('HOTPATHS_NCCL_ID_TIMEOUT_S') ?? 120;
  const deadline = Date.now() + timeoutS * 1000;
  while (!existsSync(file)) {
    if (Date.now() > deadline) {
      throw new HotpathsError('E_BACKEND', `moe.ncclGroup(): rank ${rank} waited ${timeoutS} s for rank 0's NCCL id in ${file}; did rank 0 fail or never call moe.ncclGroup()?`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return fromHex(readFileSync(file, 'utf8'), file);
}

/** The process's communicator, shared by its groups (refs: groups not yet destroyed). */
let shared: { comm: number; rank: number; size: number; refs: number } | undefined;

/** Experts a symmetric table row has room for (the plan's table: R + E + 1 counts, then C·R piece ends). */
const WINDOW_MAX_EXPERTS = 4096;
/** Bytes a data row has room for beyond 2·maxHidden: a dispatch row's meta (12·k for k ≤ 128), rounded. */
const WINDOW_ROW_EXTRA = 1536;
const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;

/**
 * Joins the NCCL group described by HOTPATHS_RANK, HOTPATHS_WORLD_SIZE and the id (set by `hotpaths
 * launch`), with opts (GroupOptions) agreed by every rank.
 */
export async function createNcclGroup(opts?: GroupOptions): Promise<ExpertGroup> {
  // a bad option is reported after the agreement below, so that the other ranks do not wait for this one
  let optError: unknown;
  let slots = 0, hidden = 0;
  try {
    slots = groupSlots('moe.ncclGroup()', opts) ?? 0;
    hidden = groupHidden('moe.ncclGroup()', opts) ?? 0;
  } catch (e) {
    optError = e;
    slots = -1;
    hidden = -1;
  }
  const rank = envInt('HOTPATHS_RANK');
  const size = envInt('HOTPATHS_WORLD_SIZE');
  if (rank === undefined || size === undefined) {
    throw new HotpathsError('E_ARG', 'moe.ncclGroup(): HOTPATHS_RANK and HOTPATHS_WORLD_SIZE are not set: start the processes with `hotpaths launch --nproc N <script>`');
  }
  if (size < 1 || rank >= size) throw new HotpathsError('E_ARG', `moe.ncclGroup(): HOTPATHS_RANK (${rank}) must be below HOTPATHS_WORLD_SIZE (${size})`);
  const addon = loadAddon();
  if (!addon) throw new HotpathsError('E_BACKEND', `moe.ncclGroup(): the native addon is missing: ${addonStatus()}`);
  const nccl = addon.ncclInfo();
  if (!nccl.available) throw new HotpathsError('E_BACKEND', `moe.ncclGroup(): NCCL is not available: ${nccl.reason}`);
  const backend = await getBackend('cuda'); // E_BACKEND without a GPU; opens device HOTPATHS_LOCAL_RANK
  if (shared && (shared.rank !== rank || shared.size !== size)) {
    throw new HotpathsError('E_ARG', `moe.ncclGroup(): this process's communicator is rank ${shared.rank} of ${shared.size}, but HOTPATHS_RANK/HOTPATHS_WORLD_SIZE now say ${rank} of ${size}`);
  }
  if (!shared) {
    const id = await uniqueId(addon, rank);
    shared = { comm: nativeCallSync('moe.ncclGroup(): ncclCommInit', () => addon.ncclCommInit(rank, size, id)), rank, size, refs: 0 };
  }
  const comm = shared.comm;
  shared.refs++;
  const release = () => {
    if (!shared || --shared.refs > 0) return;
    shared = undefined;
    nativeCallSync('moe.ncclGroup().destroy()', () => addon.ncclCommDestroy(comm));
  };
  let live = true;
  const check = (what: string) => {
    if (!live) throw new HotpathsError('E_ARG', `${what}: the NCCL group was destroyed`);
  };

  // one grouped send/recv: for each peer d, the byte range [sendOff[d], +sendBytes[d]) of `send`
  // goes to d and [recvOff[d], +recvBytes[d]) of `recv` comes from d
  const exchange = (what: string, send: bigint, sendBytes: Float64Array, recv: bigint, recvBytes: Float64Array) => {
    const peers = new Int32Array(size);
    const sp = new BigUint64Array(size), rp = new BigUint64Array(size);
    let so = 0, ro = 0;
    for (let d = 0; d < size; d++) {
      peers[d] = d;
      sp[d] = send + BigInt(so);
      rp[d] = recv + BigInt(ro);
      so += sendBytes[d]!;
      ro += recvBytes[d]!;
    }
    nativeCallSync(what, () => addon.ncclSendRecv(comm, peers, sp, sendBytes, rp, recvBytes));
  };

  // every rank's maxTokensPerRank and maxHidden (0: none, −1: a bad value), gathered on the addon's stream
  let windows: SymmetricWindows | undefined;
  try {
    const mine = backend.fromHost(Int32Array.from({ length: 2 * size }, (_, i) => (i % 2 ? hidden : slots)), 'i32', [size, 2]);
    const all = backend.empty('i32', [size, 2]);
    let got: Int32Array;
    try {
      const eight = new Float64Array(size).fill(8);
      exchange('moe.ncclGroup()', cudaPtr(mine), eight, cudaPtr(all), eight);
      got = (await nativeCall('moe.ncclGroup()', () => backend.read(all))) as Int32Array;
    } finally {
      mine.dispose();
      all.dispose();
    }
    if (optError) throw optError;
    const show = (m: number) => (m === 0 ? 'none' : m < 0 ? 'a bad value' : String(m));
    for (const [o, name] of [[0, 'maxTokensPerRank'], [1, 'maxHidden']] as const) {
      const v = Array.from({ length: size }, (_, q) => got[2 * q + o]!);
      if (v.some((m) => m !== v[0])) {
        throw new HotpathsError('E_ARG', `moe.ncclGroup(): opts.${name} must be the same on every rank, got ${v.map((m, q) => `rank ${q}: ${show(m)}`).join(', ')}`);
      }
    }
    if (slots > 0 && hidden > 0) windows = symmetricWindows(addon, backend, comm, rank, size, slots, hidden);
  } catch (e) {
    release();
    throw e;
  }

  // bytes of one row (from the shape: a tensor of 0 rows still has a row length)
  const rowBytesOf = (t: Tensor) => numel(t.shape.slice(1)) * dtypeBytes(t.dtype);
  const group: ExpertGroup = {
    size,
    ranks: [rank],
    backend,
    ...(slots > 0 ? { maxTokensPerRank: slots } : {}),
    ...(windows ? { windows } : {}),
    async exchangeCounts(sendCounts: Int32Array[]): Promise<Int32Array[]> {
      const what = 'moe.ncclGroup().exchangeCounts()';
      check(what);
      if (sendCounts.length !== 1 || sendCounts[0]!.length !== size) {
        throw new HotpathsError('E_SHAPE', `${what}: expected one Int32Array of ${size} counts (this process drives one rank), got ${sendCounts.length} of ${sendCounts[0]?.length}`);
      }
      const sendT = backend.fromHost(sendCounts[0]!, 'i32', [size]);
      const recvT = backend.empty('i32', [size]);
      try {
        const four = new Float64Array(size).fill(4);
        exchange(what, cudaPtr(sendT), four, cudaPtr(recvT), four);
        return [(await nativeCall(what, () => backend.read(recvT))) as Int32Array];
      } finally {
        sendT.dispose();
        recvT.dispose();
      }
    },
    async allToAllRows(send: Tensor[], sendCounts: Int32Array[], recv: Tensor[], recvCounts: Int32Array[]): Promise<void> {
      const what = 'moe.ncclGroup().allToAllRows()';
      check(what);
      if (send.length !== 1 || recv.length !== 1 || sendCounts.length !== 1 || recvCounts.length !== 1) {
        throw new HotpathsError('E_SHAPE', `${what}: this process drives one rank: expected one send, recv and count array each`);
      }
      const s = send[0]!, r = recv[0]!, sc = sendCounts[0]!, rc = recvCounts[0]!;
      if (s.device !== 'cuda' || r.device !== 'cuda') throw new HotpathsError('E_ARG', `${what}: send and recv must be cuda tensors, got ${s.device} and ${r.device}`);
      if (s.dtype !== r.dtype) throw new HotpathsError('E_DTYPE', `${what}: send (${s.dtype}) and recv (${r.dtype}) must have one dtype`);
      if (sc.length !== size || rc.length !== size) throw new HotpathsError('E_SHAPE', `${what}: counts must have ${size} entries, got ${sc.length} and ${rc.length}`);
      const rb = rowBytesOf(s);
      if (rowBytesOf(r) !== rb) throw new HotpathsError('E_SHAPE', `${what}: send rows are ${rb} bytes, recv rows ${rowBytesOf(r)}`);
      let sRows = 0, rRows = 0;
      for (let d = 0; d < size; d++) {
        if (sc[d]! < 0 || rc[d]! < 0) throw new HotpathsError('E_ARG', `${what}: counts must be non-negative`);
        sRows += sc[d]!;
        rRows += rc[d]!;
      }
      if (sRows > (s.shape[0] ?? 0) || rRows > (r.shape[0] ?? 0)) {
        throw new HotpathsError('E_SHAPE', `${what}: ${sRows} rows to send and ${rRows} to receive, but send has ${s.shape[0]} and recv ${r.shape[0]}`);
      }
      exchange(what, cudaPtr(s), Float64Array.from(sc, (c) => c * rb), cudaPtr(r), Float64Array.from(rc, (c) => c * rb));
    },
    startAllGather(send: Tensor[], recv: Tensor[]): PendingGather {
      const what = 'moe.ncclGroup().startAllGather()';
      check(what);
      if (send.length !== 1 || recv.length !== 1) throw new HotpathsError('E_SHAPE', `${what}: this process drives one rank: expected one send and one recv tensor`);
      const s = send[0]!, r = recv[0]!;
      const bytes = s.bytes;
      if (r.bytes !== size * bytes) throw new HotpathsError('E_SHAPE', `${what}: recv ${r.describe()} must hold ${size} rows of send ${s.describe()}`);
      // every peer (this rank too) gets the same row; row d of recv comes from rank d
      const peers = Int32Array.from({ length: size }, (_, d) => d);
      const sp = new BigUint64Array(size).fill(cudaPtr(s)), rp = BigUint64Array.from({ length: size }, (_, d) => cudaPtr(r) + BigInt(d * bytes));
      const nb = new Float64Array(size).fill(bytes);
      const ticket = nativeCallSync(what, () => addon.ncclSendRecvSide(comm, peers, sp, nb, rp, nb));
      // the read starts now, on a stream of its own once the gather is done: transfers queued on the
      // side stream after this (dispatch's fixed-slot payload) travel while the host waits for it
      const reading = nativeCallSync(what, () => addon.ncclSideReadStart(cudaPtr(r), r.bytes));
      return {
        read: async () => {
          const host = new Int32Array(r.size);
          try {
            nativeCallSync(what, () => addon.ncclSideReadFinish(reading, host));
          } finally {
            nativeCallSync(what, () => addon.ncclSideWait(ticket));
          }
          return [host];
        },
      };
    },
    startMoveRows(parts: { send: Tensor[]; recv: Tensor[] }[], windows: RowWindows[]): PendingMove {
      const what = 'moe.ncclGroup().startMoveRows()';
      check(what);
      if (windows.length !== 1) throw new HotpathsError('E_SHAPE', `${what}: this process drives one rank: expected one window set`);
      const w = windows[0]!;
      const peers: number[] = [], sp: bigint[] = [], sb: number[] = [], rp: bigint[] = [], rb: number[] = [];
      for (const part of parts) {
        if (part.send.length !== 1 || part.recv.length !== 1) throw new HotpathsError('E_SHAPE', `${what}: expected one send and one recv tensor a part`);
        const s = part.send[0]!, r = part.recv[0]!;
        const bytes = rowBytesOf(s);
        if (rowBytesOf(r) !== bytes || s.dtype !== r.dtype) throw new HotpathsError('E_SHAPE', `${what}: send ${s.describe()} and recv ${r.describe()} differ in dtype or row length`);
        for (let d = 0; d < size; d++) {
          const [s0, sn, r0, rn] = [w.sendStart[d]!, w.sendRows[d]!, w.recvStart[d]!, w.recvRows[d]!];
          if (sn < 0 || rn < 0 || s0 < 0 || r0 < 0 || s0 + sn > (s.shape[0] ?? 0) || r0 + rn > (r.shape[0] ?? 0)) {
            throw new HotpathsError('E_SHAPE', `${what}: peer ${d}: rows [${s0}, +${sn}) of send ${s.describe()} or [${r0}, +${rn}) of recv ${r.describe()} are out of range`);
          }
          if (sn === 0 && rn === 0) continue;
          peers.push(d);
          sp.push(cudaPtr(s) + BigInt(s0 * bytes));
          sb.push(sn * bytes);
          rp.push(cudaPtr(r) + BigInt(r0 * bytes));
          rb.push(rn * bytes);
        }
      }
      const ticket = nativeCallSync(what, () =>
        addon.ncclSendRecvSide(comm, Int32Array.from(peers), BigUint64Array.from(sp), Float64Array.from(sb), BigUint64Array.from(rp), Float64Array.from(rb)),
      );
      return waitOnce(addon, what, ticket);
    },
    destroy() {
      if (!live) return;
      live = false;
      if (windows) nativeCallSync('moe.ncclGroup().destroy()', () => addon.ncclLsaDestroy((windows as Windows).handle));
      release();
    },
  };
  return group;
}

type Windows = SymmetricWindows & { handle: number };

/** A side-stream ticket as a PendingMove: the addon's stream waits for it once. */
function waitOnce(addon: Addon, what: string, ticket: number): PendingMove {
  let waited = false;
  return {
    wait: () => {
      if (waited) return;
      waited = true;
      nativeCallSync(what, () => addon.ncclSideWait(ticket));
    },
  };
}

/**
 * The group's symmetric buffer (NCCL's device API, native/cuda/nccl_lsa.cu), or undefined where the
 * addon or the libnccl lacks the device API, or the ranks cannot reach each other's memory: the group
 * then moves rows with send/recv. Collective: every rank calls it with the same sizes (checked before).
 * Layout: table halves 0 and 1 (R rows of tableWords i32 each), then data halves 0 and 1 (R slots of M
 * rows each; successive ops use the halves in turn), then WINDOW_RECEIVE_REGIONS receive regions (R·M
 * rows of `hidden` bytes each: an FP8 dispatch's recv codes, lent to its caller until disposed), then
 * the dispatch's landing signals (u32: word 0 the pack's CTA count, word 1 + c·R + s piece c's from
 * rank s) and its ready words (u64 [R]: word d from rank d, moe::DestRows::ready), zero at first.
 */
function symmetricWindows(addon: Addon, backend: Backend, comm: number, rank: number, R: number, M: number, hidden: number): Windows | undefined {
  const lsa = addon.ncclLsaInfo();
  if (!lsa.compiled) {
    if (process.env.HOTPATHS_VERBOSE) console.error('moe.ncclGroup(): the addon was built without NCCL device API headers: dispatch/combine use send/recv');
    return undefined;
  }
  const tableWords = roundUp(R + WINDOW_MAX_EXPERTS + 1 + WINDOW_MAX_PIECES * R, 4);
  const tableBytes = roundUp(R * tableWords * 4, 4096);
  const dataBytes = roundUp(R * M * roundUp(2 * hidden + WINDOW_ROW_EXTRA, 16), 4096);
  const regionsAt = 2 * tableBytes + 2 * dataBytes, regionBytes = roundUp(R * M * hidden, 4096);
  const signalsAt = regionsAt + WINDOW_RECEIVE_REGIONS * regionBytes, signalBytes = roundUp(4 * (1 + WINDOW_MAX_PIECES * R), 4096); // (1: moe::SIGNAL_HEAD)
  const readyAt = signalsAt + signalBytes, readyBytes = roundUp(8 * R, 4096);
  let made: { handle: number; bases: BigUint64Array };
  try {
    made = addon.ncclLsaCreate(comm, readyAt + readyBytes, signalsAt);
  } catch (e) {
    // every rank fails alike here (the library, the headers and the topology are the node's)
    if (process.env.HOTPATHS_VERBOSE) console.error(`moe.ncclGroup(): no symmetric windows (${(e as Error).message}): dispatch/combine use send/recv`);
    return undefined;
  }
  const { handle, bases } = made;
  const view = (owner: number, offset: number, dtype: DType, shape: number[]): Tensor =>
    borrowedTensor(backend, dtype, shape, { ptr: bases[owner]! + BigInt(offset), bytes: numel(shape) * dtypeBytes(dtype) });
  const what = 'moe.ncclGroup() windows';
  // the byte offset of rows [first, first + count) of rowBytes each in a data half (E_SHAPE past it)
  const rowsAt = (half: number, first: number, count: number, rowBytes: number): number => {
    if (R * M * rowBytes > dataBytes || first < 0 || count < 0 || first + count > R * M) {
      throw new HotpathsError('E_SHAPE', `${what}: rows [${first}, +${count}) of ${rowBytes} bytes do not fit the data area (${dataBytes} bytes for ${R}·${M} rows)`);
    }
    return 2 * tableBytes + half * dataBytes + first * rowBytes;
  };
  const ticketMove = (t: number) => waitOnce(addon, what, t);
  // the receive regions lent out (takeRegion), each until its tensor is disposed
  const lent = new Array<boolean>(WINDOW_RECEIVE_REGIONS).fill(false);
  let dispatches = 0; // dispatchStart's calls, modulo 2^32 with 0 skipped: the last one's landing signals' value
  const marks: { label: string; host: number }[] = [];
  // HOTPATHS_EP_TRACE=1: each mark an event on its stream too; =host: the host's times alone (nothing queued)
  const traceMode = process.env.HOTPATHS_EP_TRACE;
  const gpuMarks = traceMode === '1';
  // the marks the windows dispatch's native calls queue (with HOTPATHS_EP_TRACE=1), labelled in their order
  const nativeMarks = (labels: string[]) => {
    const host = performance.now();
    if (gpuMarks) for (const label of labels) marks.push({ label, host });
  };
  const trace = gpuMarks || traceMode === 'host'
    ? {
      trace: (label: string, stream: 'main' | 'side' | 'barrier') => {
        if (gpuMarks) nativeCallSync(what, () => addon.ncclTraceMark(stream === 'main' ? 0 : stream === 'side' ? 1 : 2));
        marks.push({ label: `${label} (${stream})`, host: performance.now() });
      },
      traceDump: (op: string) => {
        const gpu = gpuMarks ? nativeCallSync(what, () => addon.ncclTraceRead()) : null;
        const h0 = marks[0]?.host ?? 0;
        // (the start's wall-clock time, µs since the epoch, to line the ranks' timelines up)
        console.error(`rank ${rank}: ${op} timeline from ${Math.round((performance.timeOrigin + h0) * 1000)} µs, ms (${gpu ? 'GPU / ' : ''}host queued): ` +
          marks.map((m, i) => `${m.label} ${gpu ? `${gpu[i]!.toFixed(3)} / ` : ''}${(m.host - h0).toFixed(3)}`).join(' | '));
        marks.length = 0;
      },
    }
    : {};
  const windows: Windows = {
    ...trace,
    handle,
    tableWords,
    dataBytes,
    count: 0,
    tables: (half, words) => {
      if (words > tableWords) throw new HotpathsError('E_SHAPE', `${what}: table rows of ${words} words do not fit (${tableWords})`);
      return view(rank, half * tableBytes, 'i32', [R, words]);
    },
    rows: (half, owner, first, count, dtype, width) => view(owner, rowsAt(half, first, count, width * dtypeBytes(dtype)), dtype, [count, width]),
    landed: () => ticketMove(nativeCallSync(what, () => addon.ncclLsaBarrier(handle))),
    takeRegion: (rows, width) => {
      const index = lent.indexOf(false);
      if (index < 0 || rows * width > regionBytes) return null;
      lent[index] = true;
      const storage: CudaStorage = { ptr: bases[rank]! + BigInt(regionsAt + index * regionBytes), bytes: regionBytes, onRelease: () => { lent[index] = false; } };
      if (poisonEnabled()) nativeCallSync('poison (cuda)', () => addon.cudaMemset(storage.ptr, POISON_BYTE, regionBytes));
      return { index, codes: new Tensor(backend, 'fp8e4m3', [rows, width], storage) };
    },
    dispatchStart: (a) => {
      const [T, H] = a.x.shape as [number, number], k = a.indices.shape[1]!, E = a.numExperts, words = a.table.size;
      const payload = a.fp8 ? H : H * dtypeBytes(a.x.dtype), scaleBytes = a.fp8 ? 4 * (H / 128) : 0;
      const L = dispatchRowLayout(payload, scaleBytes / 4, k);
      // (addresses, not views: this runs every call)
      const slot = (owner: number, first: number) => bases[owner]! + BigInt(rowsAt(a.half, first, M, L.stride));
      const tables = windows.tables(a.half, words);
      // the dispatch's number, the same on every rank (every rank makes the same calls): its landing
      // signals' value, a u32 that skips 0 (the signals' value before any dispatch)
      dispatches = dispatches === 0xffffffff ? 1 : dispatches + 1;
      const seq = dispatches;
      const mySlot = rowsAt(a.half, rank * M, M, L.stride);
      const signals = bases[rank]! + BigInt(signalsAt), signalFromSlot = signalsAt - mySlot;
      const rc = a.receive, ox = a.ownExpertX;
      const work = backend.empty('u8', [nativeCallSync(what, () => addon.cudaMoeDispatchPlanWorkBytes(T * k, E, R))]);
      let tickets: Float64Array;
      windows.trace?.('native call', 'main');
      try {
        tickets = nativeCallSync(what, () =>
          addon.cudaMoeWindowsDispatchStart(handle, a.half * tableBytes, cudaPtr(a.x), a.x.dtype === 'bf16', T, H, cudaPtr(a.indices), k, cudaPtr(a.weights), E, a.fp8,
            a.ends, M, BigUint64Array.from({ length: R }, (_, d) => slot(d, rank * M)), L.stride, L.scalesAt, L.metaAt, cudaPtr(a.sendRow), cudaPtr(a.pairRank),
            cudaPtr(a.table), words, cudaPtr(work), cudaPtr(tables), rank, gpuMarks, signals, signalFromSlot, seq,
            rc && rc.region < 0 ? cudaPtr(rc.codes) : 0n, rc ? rc.region : -1, rc ? readyAt - mySlot : 0, regionsAt - mySlot, regionBytes, WINDOW_RECEIVE_REGIONS,
            ox ? cudaPtr(ox.rows) : 0n, ox ? ox.rows.shape[0]! : 0, ox ? cudaPtr(ox.scales) : 0n, a.blockSize),
        );
        nativeMarks(['checked (main)', 'plan (main)', 'pack 0 issued (side)', 'pack 0 (side)', ...Array.from(a.ends.subarray(1), (_, c) => `pack ${c + 1} (side)`), 'tables gathered (main)']);
      } finally {
        work.dispose(); // the plan's, on the addon's stream: whoever takes it next queues behind it
      }
      const read = tickets[0]!, pending = Array.from(tickets.subarray(1));
      let scattered = false;
      return {
        readTables: () => {
          const host = new Int32Array(tables.size);
          nativeCallSync(what, () => addon.ncclSideReadFinish(read, host));
          return host;
        },
        scatter: (o) => {
          if (scattered) throw new HotpathsError('E_ARG', `${what}: a dispatch's pieces are scattered once`);
          // (with the host's ranges, recv is the received rows' view of the receive codes: dispatch with expand)
          if (rc && (o.ranges ? !o.expertX : o.recv !== rc.codes)) {
            throw new HotpathsError('E_ARG', `${what}: with receive codes, scatter takes them as recv with ranges null, or a view of them with ranges and expertX`);
          }
          if (ox && (o.expertX !== ox.rows || o.expertScales !== ox.scales)) throw new HotpathsError('E_ARG', `${what}: with the start's ownExpertX, scatter takes it as expertX`);
          const per = E / R, ptrOr0 = (t: Tensor | null) => (t ? cudaPtr(t) : 0n);
          const ly = o.layout;
          nativeCallSync(what, () =>
            addon.cudaMoeWindowsDispatchScatter(Float64Array.from(pending), o.ranges ?? new Int32Array(0), BigUint64Array.from({ length: R }, (_, s) => slot(rank, s * M)), rank, M, L.stride,
              payload, L.scalesAt, scaleBytes, L.metaAt, cudaPtr(ly.base), per, k, cudaPtr(ly.counts), cudaPtr(ly.layoutWork), a.blockSize, ptrOr0(o.expertX),
              o.expertX?.shape[0] ?? 0, ptrOr0(o.expertScales), cudaPtr(ly.sortedPairs), ly.sortedPairs.size, cudaPtr(o.pairPos), o.recv.shape[0]!, cudaPtr(o.recvIndices),
              cudaPtr(o.recvWeights), cudaPtr(o.recv), ptrOr0(o.recvScales), gpuMarks, cudaPtr(tables), words, signals, seq,
              rc ? (rc.region < 0 ? 1 : 2) : 0, cudaPtr(ly.blockExpert), cudaPtr(ly.rowExpert), ox !== null),
          );
          nativeMarks(['layout (main)', ...Array.from(a.ends, (_, c) => `rows ${c} (main)`)]);
          scattered = true; // (the call checks everything before it takes a ticket)
        },
        pieces: {
          wait: () => {
            if (scattered) return;
            scattered = true; // scatter can no longer take the tickets
            for (const q of pending) nativeCallSync(what, () => addon.ncclSideWait(q));
          },
        },
      };
    },
    onSide: (fn) => {
      nativeCallSync(what, () => addon.cudaLaunchOnSide(true));
      try {
        return fn();
      } finally {
        addon.cudaLaunchOnSide(false);
      }
    },
  };
  return windows;
}
