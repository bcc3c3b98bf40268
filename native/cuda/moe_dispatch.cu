// CUDA entry points of dispatch's device path (the optional MoeKernels dispatchPlan, dispatchPack,
// dispatchRecvLayout, dispatchScatter on the cuda backend): cudaMoeDispatchPlanWorkBytes,
// cudaMoeDispatchPlan, cudaMoeDispatchPack, cudaMoeDispatchRecvLayout, cudaMoeDispatchScatter.
// Device pointers as BigInts (0n for none) plus sizes; every size is checked against the allocation
// table before a launch on the addon's stream, and they return at once. Kernels:
// native/cuda/moe_dispatch.cuh.
#include <string.h>

#include <string>

#include "common/entry_points.h"
#include "cuda/cuda_common.h"
#include "cuda/moe_dispatch.cuh"

namespace hp {

namespace {

constexpr uint64_t I32_LIMIT = 0x7FFFFFFFull;

void check_i32(const Args& args, uint64_t v, const char* what) {
  if (v > I32_LIMIT) args.fail("E_TOO_LARGE", std::string(what) + " must be below 2^31, got " + std::to_string(v));
}

// CTAs for `items` independent items, at most `per_sm` a multiprocessor (the grid strides over the rest).
int grid_of(int64_t items, int per_sm) {
  const int64_t cap = (int64_t)cuda_sm_count() * per_sm;
  return (int)(items < cap ? (items > 0 ? items : 1) : cap);
}

// The widest unit (16, 4, 2 or 1 bytes) that divides row_bytes and every pointer.
int unit_of(uint64_t row_bytes, std::initializer_list<const void*> ptrs) {
  uintptr_t a = (uintptr_t)row_bytes;
  for (const void* p : ptrs) a |= (uintptr_t)p;
  return (a & 15) == 0 ? 16 : (a & 3) == 0 ? 4 : (a & 1) == 0 ? 2 : 1;
}

// R ranks, E experts, k slots: what the kernels rely on.
void check_ep(const Args& args, uint64_t E, uint64_t R, uint64_t k) {
  if (E == 0 || R == 0 || E % R != 0) args.fail("E_ARG", "R must divide E (" + std::to_string(E) + "), got " + std::to_string(R));
  check_i32(args, E + R + 1, "E + R + 1");
  if (k == 0 || k > (uint64_t)moe::EP_MAX_K) args.fail("E_ARG", "k must be in [1, " + std::to_string(moe::EP_MAX_K) + "], got " + std::to_string(k));
}

}  // namespace

// cudaMoeDispatchPlanWorkBytes(pairs, E, R): the bytes of cudaMoeDispatchPlan's work area.
Napi::Value CudaMoeDispatchPlanWorkBytes(const Napi::CallbackInfo& info) {
  Args args(info, "cudaMoeDispatchPlanWorkBytes", 3);
  const uint64_t pairs = args.size(0, "pairs"), E = args.size(1, "E"), R = args.size(2, "R");
  check_i32(args, pairs, "pairs");
  check_i32(args, E + R, "E + R");
  return Napi::Number::New(info.Env(), (double)moe::plan_work_bytes((int64_t)pairs, (int64_t)E, (int64_t)R));
}

// cudaMoeDispatchPlan(indices, T, k, E, R, sendRow, pairRank, table, work, slotRows, ends: Int32Array)
// indices: i32 [T, k] -> sendRow: i32 [T, R], pairRank: i32 [T, k], table: i32 [R + E + 1 + C·R];
// work: cudaMoeDispatchPlanWorkBytes(T·k, E, R) bytes of scratch (the per-chunk counts); slotRows: 0, or
// M > 0 for fixed slots (rank d's rows from d·M, places ≥ M not sent, −T in the table's last column
// when T > M); ends: C ≤ 64 pieces' token ends (non-decreasing, each a multiple of 64 or T), whose
// counts per rank follow the totals (MoeKernels.dispatchPlan). Three kernels, no memset.
Napi::Value CudaMoeDispatchPlan(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeDispatchPlan";
  Napi::Env env = info.Env();
  Args args(info, fn, 11);
  const uint64_t T = args.size(1, "T"), k = args.size(2, "k"), E = args.size(3, "E"), R = args.size(4, "R"), slot_rows = args.size(9, "slotRows");
  HostView ends_view = args.typed_array(10, "ends", napi_int32_array, 0);
  if (ends_view.length > (uint64_t)moe::CHUNK_MAX) args.fail("E_ARG", "ends must hold at most " + std::to_string(moe::CHUNK_MAX) + " entries");
  moe::ChunkEnds ends;
  ends.n = (int)ends_view.length;
  for (int i = 0; i < ends.n; i++) {
    const int32_t v = ((const int32_t*)ends_view.data)[i];
    if (v < (i ? ends.end[i - 1] : 0) || (uint64_t)v > T || ((uint64_t)v != T && v % 64 != 0)) {
      args.fail("E_ARG", "ends must be non-decreasing token counts in [0, T], each a multiple of 64 or T");
    }
    ends.end[i] = v;
  }
  check_ep(args, E, R, k);
  check_i32(args, slot_rows, "slotRows");
  if (slot_rows > 0 && R * slot_rows > I32_LIMIT) args.fail("E_TOO_LARGE", "R * slotRows must be below 2^31");
  if (T > I32_LIMIT / k || T > I32_LIMIT / R) args.fail("E_TOO_LARGE", "T * k and T * R must be below 2^31");
  const uint64_t pairs = T * k;
  const uint64_t work_bytes = moe::plan_work_bytes((int64_t)pairs, (int64_t)E, (int64_t)R);
  cudaStream_t stream = cuda_stream(env, fn);
  const int32_t* indices = (const int32_t*)cuda_device_arg(args, 0, "indices", pairs * 4);
  int32_t* send_row = (int32_t*)cuda_device_arg(args, 5, "sendRow", T * R * 4);
  int32_t* pair_rank = (int32_t*)cuda_device_arg(args, 6, "pairRank", pairs * 4);
  int32_t* table = (int32_t*)cuda_device_arg(args, 7, "table", (R + E + 1 + (uint64_t)ends.n * R) * 4);
  void* work = cuda_device_arg(args, 8, "work", work_bytes);
  if (((uintptr_t)work & 3) != 0) args.fail("E_ARG", "work must be 4-byte aligned");
  const int64_t chunks = moe::plan_chunks((int64_t)pairs);
  int32_t* chunk = (int32_t*)work;
  const size_t smem = moe::plan_smem_bytes((int64_t)E, (int64_t)R);
  if (smem > 48 * 1024) args.fail("E_TOO_LARGE", "E + R is too large for the plan's shared counters (" + std::to_string(smem) + " bytes)");
  const int ctas = (int)((chunks + moe::PLAN_WARPS - 1) / moe::PLAN_WARPS);
  if (chunks > 0) moe::plan_count_kernel<<<ctas, moe::PLAN_WARPS * 32, smem, stream>>>(indices, (int64_t)pairs, (int)k, (int)E, (int)R, chunks, chunk);
  // (every table entry, also for T = 0: one warp a column of the chunk table)
  moe::plan_scan_kernel<<<(int)((E + R + 1 + 7) / 8), 256, 0, stream>>>((int)E, (int)R, chunks, (int64_t)T, (int)k, (int64_t)slot_rows, ends, chunk, table);
  if (chunks > 0) {
    moe::plan_scatter_kernel<<<ctas, moe::PLAN_WARPS * 32, smem, stream>>>(indices, (int64_t)pairs, (int)k, (int)E, (int)R, chunks, (int64_t)slot_rows, chunk,
                                                                           table, send_row, pair_rank);
  }
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// cudaMoeDispatchPack(x, xIsBf16, T, H, indices, k, weights, E, R, sendRow, pairRank, S, fp8, packed, stride, scalesAt, metaAt,
//                     destBases, slotRows)
// x: f32|bf16 [T, H] -> packed: u8 [S, stride], one row (dispatchRowLayout: the payload — x's row, or
// E4M3 codes then f32 scales at scalesAt when fp8 — and the meta i32 [3k] at metaAt) for every (t, d)
// with a send row s = sendRow[t, d] in [0, S). With destBases (BigUint64Array [R], not empty) the rows
// to rank d go to their own buffer instead: row s at destBases[d] + (s − d·slotRows)·stride, for
// s − d·slotRows in [0, slotRows) (packed is then unused; pass 0n).
Napi::Value CudaMoeDispatchPack(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeDispatchPack";
  Napi::Env env = info.Env();
  Args args(info, fn, 19);
  const bool bf16 = args.boolean(1, "xIsBf16"), fp8 = args.boolean(12, "fp8");
  const uint64_t T = args.size(2, "T"), H = args.size(3, "H"), k = args.size(5, "k"), E = args.size(7, "E"), R = args.size(8, "R"), S = args.size(11, "S");
  const uint64_t stride = args.size(14, "stride"), scales_at = args.size(15, "scalesAt"), meta_at = args.size(16, "metaAt");
  check_ep(args, E, R, k);
  if (T > I32_LIMIT / k || T > I32_LIMIT / R) args.fail("E_TOO_LARGE", "T * k and T * R must be below 2^31");
  if (fp8 && H % 128 != 0) args.fail("E_SHAPE", "the FP8 payload needs H % 128 == 0, got H = " + std::to_string(H));
  const uint64_t x_row = checked_mul(env, fn, H, bf16 ? 2 : 4, "x row bytes"), payload = fp8 ? H : x_row;
  // the layout of src/runtime/backend.ts's dispatchRowLayout
  const uint64_t want_scales = (payload + 3) / 4 * 4, want_meta = want_scales + (fp8 ? 4 * (H / 128) : 0);
  if (scales_at != want_scales || meta_at != want_meta || stride != (meta_at + 12 * k + 15) / 16 * 16) {
    args.fail("E_ARG", "stride, scalesAt and metaAt must follow dispatchRowLayout (" + std::to_string(want_scales) + ", " + std::to_string(want_meta) + ")");
  }
  cudaStream_t stream = cuda_stream(env, fn);
  const void* x = cuda_device_arg(args, 0, "x", checked_mul(env, fn, T, x_row, "x bytes"));
  const int32_t* indices = (const int32_t*)cuda_device_arg(args, 4, "indices", T * k * 4);
  const float* weights = (const float*)cuda_device_arg(args, 6, "weights", T * k * 4);
  const int32_t* send_row = (const int32_t*)cuda_device_arg(args, 9, "sendRow", T * R * 4);
  const int32_t* pair_rank = (const int32_t*)cuda_device_arg(args, 10, "pairRank", T * k * 4);
  HostView bases = args.typed_array(17, "destBases", napi_biguint64_array, 0);
  const uint64_t slot_rows = args.size(18, "slotRows");
  moe::DestRows to;
  memset(&to, 0, sizeof(to));
  int64_t S_rows = (int64_t)S;  // the bound of a row's index within its buffer
  if (bases.length == 0) {
    uint8_t* packed = (uint8_t*)cuda_device_arg(args, 13, "packed", checked_mul(env, fn, S, stride, "packed bytes"));
    if (((uintptr_t)packed & 15) != 0) args.fail("E_ARG", "packed must be 16-byte aligned");
    for (uint64_t d = 0; d < R; d++) to.p[d] = (uint64_t)(uintptr_t)packed;
  } else {
    if (bases.length != R || R > (uint64_t)moe::EP_MAX_RANKS) args.fail("E_ARG", "destBases must hold R pointers (R <= " + std::to_string(moe::EP_MAX_RANKS) + ")");
    if (slot_rows == 0 || S != R * slot_rows) args.fail("E_ARG", "with destBases, slotRows must be positive and S = R * slotRows");
    for (uint64_t d = 0; d < R; d++) {
      const uint64_t p = ((const uint64_t*)bases.data)[d];
      cuda_device_ptr(args, "destBases[d]", p, checked_mul(env, fn, slot_rows, stride, "slot bytes"));
      if ((p & 15) != 0) args.fail("E_ARG", "destBases must be 16-byte aligned");
      to.p[d] = p;
    }
    to.slot = (int64_t)slot_rows;
    S_rows = (int64_t)slot_rows;
  }
  if (T == 0 || S == 0) return env.Undefined();
  // into per-rank buffers (NVLink stores, bound by the links): 4 CTAs a multiprocessor, under half its
  // registers (the FP8 kernel takes 60 a thread), so that what the other streams queue meanwhile finds
  // room beside it: the tables' all-gather (1024 threads; with the registers all taken it waited for
  // the whole pack, and the host's read of the tables with it) and the scatter of the landed pieces
  const int grid = grid_of((int64_t)T, bases.length == 0 ? 16 : 4);
  const int t = moe::EP_THREADS;
  if (fp8) {
    if (((uintptr_t)x & 15) != 0) args.fail("E_ARG", "x must be 16-byte aligned for the FP8 payload");
    const size_t smem = (H / 128 + 3) / 4 * 16;  // the row's scales, whole float4s
    if (smem > 48 * 1024) args.fail("E_TOO_LARGE", "the FP8 payload's scales need H / 128 * 4 bytes of shared memory, at most 48 KB; got H = " + std::to_string(H));
    if (bf16) moe::pack_fp8_kernel<uint16_t><<<grid, t, smem, stream>>>((const uint16_t*)x, (int64_t)T, (int64_t)H, indices, weights, (int)k, (int)E, (int)R, send_row, pair_rank, S_rows, to, (int64_t)stride, (int64_t)scales_at, (int64_t)meta_at);
    else moe::pack_fp8_kernel<float><<<grid, t, smem, stream>>>((const float*)x, (int64_t)T, (int64_t)H, indices, weights, (int)k, (int)E, (int)R, send_row, pair_rank, S_rows, to, (int64_t)stride, (int64_t)scales_at, (int64_t)meta_at);
  } else {
    const int u = unit_of(x_row, {x});
    const int64_t units = (int64_t)(x_row / u);
    if (u == 16) moe::pack_rows_kernel<uint4><<<grid, t, 0, stream>>>((const uint4*)x, (int64_t)T, units, indices, weights, (int)k, (int)E, (int)R, send_row, pair_rank, S_rows, to, (int64_t)stride, (int64_t)meta_at);
    else if (u == 4) moe::pack_rows_kernel<uint32_t><<<grid, t, 0, stream>>>((const uint32_t*)x, (int64_t)T, units, indices, weights, (int)k, (int)E, (int)R, send_row, pair_rank, S_rows, to, (int64_t)stride, (int64_t)meta_at);
    else moe::pack_rows_kernel<uint16_t><<<grid, t, 0, stream>>>((const uint16_t*)x, (int64_t)T, units, indices, weights, (int)k, (int)E, (int)R, send_row, pair_rank, S_rows, to, (int64_t)stride, (int64_t)meta_at);
  }
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// expertX's padding rows zero (recv_zero_kernel at the widest unit the row allows).
static void launch_zero_padding(cudaStream_t stream, int per, int bs, const int32_t* counts, const int32_t* starts, void* ex, uint64_t ex_rows,
                                uint64_t ex_row_bytes, uint32_t* exs, uint64_t ex_scale_bytes) {
  const int u = unit_of(ex_row_bytes, {ex});
  const int64_t units = (int64_t)(ex_row_bytes / u), sw = (int64_t)(ex_scale_bytes / 4);
  const int zg = grid_of((int64_t)per * bs, 8);
  if (u == 16) moe::recv_zero_kernel<uint4><<<zg, 128, 0, stream>>>(per, bs, counts, starts, (uint4*)ex, (int64_t)ex_rows, units, exs, sw);
  else if (u == 4) moe::recv_zero_kernel<uint32_t><<<zg, 128, 0, stream>>>(per, bs, counts, starts, (uint32_t*)ex, (int64_t)ex_rows, units, exs, sw);
  else if (u == 2) moe::recv_zero_kernel<uint16_t><<<zg, 128, 0, stream>>>(per, bs, counts, starts, (uint16_t*)ex, (int64_t)ex_rows, units, exs, sw);
  else moe::recv_zero_kernel<uint8_t><<<zg, 128, 0, stream>>>(per, bs, counts, starts, (uint8_t*)ex, (int64_t)ex_rows, units, exs, sw);
}

// cudaMoeDispatchRecvLayout(tables, R, tableStride, E, rank, blockSize, k, base, counts, sortedPairs, Pmax, blockExpert,
//                           rowExpert, expertX, exRows, exRowBytes, expertScales | 0n, exScaleBytes, work)
// tables: i32 [R, tableStride ≥ R + E + 1] -> base: i32 [R, E/R], counts: i32 [E/R], sortedPairs, rowExpert: i32 [Pmax],
// blockExpert: i32 [Pmax / blockSize], expertX's padding rows zero (exRows rows of exRowBytes; scales of
// exScaleBytes a row; expertX 0n: left to cudaMoeDispatchZeroPadding); work: 4·(E/R + 2) bytes.
Napi::Value CudaMoeDispatchRecvLayout(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeDispatchRecvLayout";
  Napi::Env env = info.Env();
  Args args(info, fn, 19);
  // (after tables: its row stride, >= R + E + 1; every later argument one place on from the list above)
  const uint64_t R = args.size(1, "R"), stride = args.size(2, "tableStride"), E = args.size(3, "E"), rank = args.size(4, "rank"), bs = args.size(5, "blockSize"), k = args.size(6, "k");
  const uint64_t pmax = args.size(10, "Pmax"), ex_rows = args.size(14, "exRows"), ex_row_bytes = args.size(15, "exRowBytes"), ex_scale_bytes = args.size(17, "exScaleBytes");
  check_ep(args, E, R, k);
  if (rank >= R) args.fail("E_ARG", "rank must be below R (" + std::to_string(R) + "), got " + std::to_string(rank));
  if (bs == 0 || pmax % bs != 0) args.fail("E_ARG", "Pmax must be a multiple of blockSize >= 1");
  check_i32(args, pmax, "Pmax");
  if (ex_scale_bytes % 4 != 0) args.fail("E_ARG", "exScaleBytes must be a multiple of 4");
  const uint64_t per = E / R, W = R + E + 1;
  if (stride < W) args.fail("E_ARG", "tableStride must be at least R + E + 1 = " + std::to_string(W));
  cudaStream_t stream = cuda_stream(env, fn);
  const int32_t* tables = (const int32_t*)cuda_device_arg(args, 0, "tables", R * stride * 4);
  int32_t* base = (int32_t*)cuda_device_arg(args, 7, "base", R * per * 4);
  int32_t* counts = (int32_t*)cuda_device_arg(args, 8, "counts", per * 4);
  int32_t* sorted = (int32_t*)cuda_device_arg(args, 9, "sortedPairs", pmax * 4);
  int32_t* block_expert = (int32_t*)cuda_device_arg(args, 11, "blockExpert", pmax / bs * 4);
  int32_t* row_expert = (int32_t*)cuda_device_arg(args, 12, "rowExpert", pmax * 4);
  void* ex = cuda_device_arg_or_null(args, 13, "expertX", checked_mul(env, fn, ex_rows, ex_row_bytes, "expertX bytes"));
  uint32_t* exs = (uint32_t*)cuda_device_arg_or_null(args, 16, "expertScales", checked_mul(env, fn, ex_rows, ex_scale_bytes, "expertScales bytes"));
  int32_t* work = (int32_t*)cuda_device_arg(args, 18, "work", (per + 2) * 4);
  if (exs && ((uintptr_t)exs & 3) != 0) args.fail("E_ARG", "expertScales must be 4-byte aligned");
  moe::recv_scan_kernel<<<1, 1024, 0, stream>>>(tables, (int)R, (int)stride, (int)E, (int)rank, (int)bs, base, counts, work);
  moe::recv_fill_kernel<<<grid_of((pmax + 255) / 256, 4), 256, 0, stream>>>((int)per, (int)bs, (int)k, (int64_t)pmax, counts, work, sorted, block_expert,
                                                                             row_expert);
  if (ex) launch_zero_padding(stream, (int)per, (int)bs, counts, work, ex, ex_rows, ex_row_bytes, exs, ex_scale_bytes);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// cudaMoeDispatchZeroPadding(counts, per, blockSize, expertX, exRows, exRowBytes, expertScales | 0n, exScaleBytes, work)
// counts: i32 [per] (dispatchRecvLayout's) -> expertX's padding rows (rows of [0, P) past an expert's
// count, below exRows) zero, and their scales; `work`: 4·(per + 1) bytes (the segment starts).
Napi::Value CudaMoeDispatchZeroPadding(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeDispatchZeroPadding";
  Napi::Env env = info.Env();
  Args args(info, fn, 9);
  const uint64_t per = args.size(1, "per"), bs = args.size(2, "blockSize"), ex_rows = args.size(4, "exRows"), ex_row_bytes = args.size(5, "exRowBytes");
  const uint64_t ex_scale_bytes = args.size(7, "exScaleBytes");
  if (per == 0 || per > 1u << 20 || bs == 0 || bs > 1u << 20) args.fail("E_ARG", "per and blockSize must be in [1, 2^20]");
  if (ex_scale_bytes % 4 != 0) args.fail("E_ARG", "exScaleBytes must be a multiple of 4");
  cudaStream_t stream = cuda_stream(env, fn);
  const int32_t* counts = (const int32_t*)cuda_device_arg(args, 0, "counts", per * 4);
  void* ex = cuda_device_arg(args, 3, "expertX", checked_mul(env, fn, ex_rows, ex_row_bytes, "expertX bytes"));
  uint32_t* exs = (uint32_t*)cuda_device_arg_or_null(args, 6, "expertScales", checked_mul(env, fn, ex_rows, ex_scale_bytes, "expertScales bytes"));
  int32_t* work = (int32_t*)cuda_device_arg(args, 8, "work", (per + 1) * 4);
  moe::padding_starts_kernel<<<1, 1024, 0, stream>>>(counts, (int)per, (int)bs, work);
  launch_zero_padding(stream, (int)per, (int)bs, counts, work, ex, ex_rows, ex_row_bytes, exs, ex_scale_bytes);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// cudaMoeDispatchScatter(src, srcRows, stride, payloadBytes, scalesAt, scaleBytes, metaAt, srcRow, rows, recvRow, base, R,
//                        per, source, k, expertX, P, expertScales | 0n, sortedPairs, Pmax, pairPos, n, recvIndices,
//                        recvWeights, recv, recvScales | 0n)
// Packed rows [srcRow, srcRow + rows) of src (u8 [srcRows, stride]) from rank `source` -> the receiver's
// rows [recvRow, …): recv [n, payloadBytes] (+ scales, scaleBytes a row), recvIndices: i32 [n, k],
// recvWeights: f32 [n, k], pairPos, and each pair's expertX row [P, payloadBytes] (+ scales), sortedPairs [Pmax].
Napi::Value CudaMoeDispatchScatter(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeDispatchScatter";
  Napi::Env env = info.Env();
  Args args(info, fn, 26);
  const uint64_t src_rows = args.size(1, "srcRows"), stride = args.size(2, "stride"), payload = args.size(3, "payloadBytes");
  const uint64_t scales_at = args.size(4, "scalesAt"), scale_bytes = args.size(5, "scaleBytes"), meta_at = args.size(6, "metaAt");
  const uint64_t src_row = args.size(7, "srcRow"), rows = args.size(8, "rows"), recv_row = args.size(9, "recvRow");
  const uint64_t R = args.size(11, "R"), per = args.size(12, "per"), source = args.size(13, "source"), k = args.size(14, "k");
  const uint64_t P = args.size(16, "P"), pmax = args.size(19, "Pmax"), n = args.size(21, "n");
  check_ep(args, R * per, R, k);
  if (source >= R) args.fail("E_ARG", "source must be below R (" + std::to_string(R) + "), got " + std::to_string(source));
  if (src_row + rows > src_rows) args.fail("E_SHAPE", "rows [srcRow, srcRow + rows) pass the " + std::to_string(src_rows) + " source rows");
  if (recv_row + rows > n) args.fail("E_SHAPE", "rows [recvRow, recvRow + rows) pass the " + std::to_string(n) + " received rows");
  if (scale_bytes % 4 != 0 || scales_at % 4 != 0 || meta_at % 4 != 0 || stride % 16 != 0) args.fail("E_ARG", "the packed row's parts must be 4-byte aligned, its stride 16");
  if (payload > scales_at || scales_at + scale_bytes > meta_at || meta_at + 12 * k > stride) args.fail("E_ARG", "the packed row's parts overlap or pass its stride");
  check_i32(args, pmax, "Pmax");
  check_i32(args, n * k, "n * k");
  cudaStream_t stream = cuda_stream(env, fn);
  moe::ScatterArgs a;
  a.src = (const uint8_t*)cuda_device_arg(args, 0, "src", checked_mul(env, fn, src_rows, stride, "src bytes"));
  a.base = (const int32_t*)cuda_device_arg(args, 10, "base", R * per * 4);
  a.ex = cuda_device_arg(args, 15, "expertX", checked_mul(env, fn, P, payload, "expertX bytes"));
  a.ex_scales = (uint32_t*)cuda_device_arg_or_null(args, 17, "expertScales", checked_mul(env, fn, P, scale_bytes, "expertScales bytes"));
  a.sorted = (int32_t*)cuda_device_arg(args, 18, "sortedPairs", pmax * 4);
  a.pair_pos = (int32_t*)cuda_device_arg(args, 20, "pairPos", n * k * 4);
  a.recv_indices = (int32_t*)cuda_device_arg(args, 22, "recvIndices", n * k * 4);
  a.recv_weights = (float*)cuda_device_arg(args, 23, "recvWeights", n * k * 4);
  a.recv = cuda_device_arg(args, 24, "recv", checked_mul(env, fn, n, payload, "recv bytes"));
  a.recv_scales = (uint32_t*)cuda_device_arg_or_null(args, 25, "recvScales", checked_mul(env, fn, n, scale_bytes, "recvScales bytes"));
  if ((a.ex_scales != nullptr) != (scale_bytes > 0) || (a.recv_scales != nullptr) != (scale_bytes > 0)) args.fail("E_ARG", "expertScales and recvScales come with scaleBytes > 0");
  if ((((uintptr_t)a.src | (uintptr_t)a.ex_scales | (uintptr_t)a.recv_scales) & 3) != 0) args.fail("E_ARG", "src and the scales must be 4-byte aligned");
  a.stride = (int64_t)stride;
  a.scales_at = (int64_t)scales_at;
  a.meta_at = (int64_t)meta_at;
  a.src_row = (int64_t)src_row;
  a.rows = (int64_t)rows;
  a.recv_row = (int64_t)recv_row;
  a.per = (int)per;
  a.source = (int)source;
  a.k = (int)k;
  a.P = (int64_t)P;
  a.pmax = (int64_t)pmax;
  a.scale_words = (int64_t)(scale_bytes / 4);
  if (rows == 0) return env.Undefined();
  const int u = unit_of(payload, {a.src, a.ex, a.recv});
  a.units = (int64_t)(payload / u);
  const int grid = grid_of((int64_t)rows, 8);
  if (u == 16) moe::scatter_kernel<uint4><<<grid, moe::EP_THREADS, 0, stream>>>(a);
  else if (u == 4) moe::scatter_kernel<uint32_t><<<grid, moe::EP_THREADS, 0, stream>>>(a);
  else if (u == 2) moe::scatter_kernel<uint16_t><<<grid, moe::EP_THREADS, 0, stream>>>(a);
  else moe::scatter_kernel<uint8_t><<<grid, moe::EP_THREADS, 0, stream>>>(a);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

}  // namespace hp
