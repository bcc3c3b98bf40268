// CUDA entry points of dispatch's device path (the optional MoeKernels dispatchPlan, dispatchPack,
// dispatchRecvLayout, dispatchScatter on the cuda backend): cudaMoeDispatchPlanWorkBytes,
// cudaMoeDispatchPlan, cudaMoeDispatchPack, cudaMoeDispatchRecvLayout, cudaMoeDispatchScatter.
// Device pointers as BigInts (0n for none) plus sizes; every size is checked against the allocation
// table before a launch on the addon's stream, and they return at once. Kernels:
// native/cuda/moe_dispatch.cuh.
#include <string.h>

#include <algorithm>
#include <string>

#include "common/entry_points.h"
#include "cuda/cuda_common.h"
#include "cuda/moe_dispatch.cuh"
#include "cuda/nccl_shared.h"

namespace hp {

namespace {

constexpr uint64_t I32_LIMIT = 0x7FFFFFFFull;
// The pack's CTAs a multiprocessor when it writes into the windows (see cudaMoeDispatchPack).
constexpr int PACK_PER_SM_WINDOWS = 4;

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

// Argument i: C ≤ CHUNK_MAX pieces' token ends (an Int32Array, non-decreasing, each a multiple of 64 or T).
moe::ChunkEnds ends_arg(const Args& args, size_t i, uint64_t T) {
  HostView view = args.typed_array(i, "ends", napi_int32_array, 0);
  if (view.length > (uint64_t)moe::CHUNK_MAX) args.fail("E_ARG", "ends must hold at most " + std::to_string(moe::CHUNK_MAX) + " entries");
  moe::ChunkEnds ends;
  ends.n = (int)view.length;
  for (int c = 0; c < ends.n; c++) {
    const int32_t v = ((const int32_t*)view.data)[c];
    if (v < (c ? ends.end[c - 1] : 0) || (uint64_t)v > T || ((uint64_t)v != T && v % 64 != 0)) {
      args.fail("E_ARG", "ends must be non-decreasing token counts in [0, T], each a multiple of 64 or T");
    }
    ends.end[c] = v;
  }
  return ends;
}

void check_plan_smem(const Args& args, uint64_t E, uint64_t R) {
  const size_t smem = moe::plan_smem_bytes((int64_t)E, (int64_t)R);
  if (smem > 48 * 1024) args.fail("E_TOO_LARGE", "E + R is too large for the plan's shared counters (" + std::to_string(smem) + " bytes)");
}

// The plan's one cooperative launch (arguments checked; moe::plan_kernel): indices [T, k] -> table, sendRow
// [T, R], pairRank [T, k]; first the ready word when ready.R > 0. Its grid: a CTA per PLAN_WARPS chunks,
// at most as many as the device holds at once (the kernel strides over the rest).
void launch_plan(const Args& args, cudaStream_t stream, const int32_t* indices, int64_t T, int k, int E, int R, int64_t slot_rows, const moe::ChunkEnds& ends,
                 int32_t* work, int32_t* table, int32_t* send_row, int32_t* pair_rank, const moe::PlanReady& ready) {
  const int64_t chunks = moe::plan_chunks(T * k);
  const size_t smem = moe::plan_smem_bytes(E, R);
  // (the occupancy depends on smem alone here: the last answer is kept)
  static size_t resident_smem = SIZE_MAX;
  static int resident = 0;
  if (resident_smem != smem) {
    int per_sm = 0;
    cuda_check(args.env(), args.fn(), "cudaOccupancyMaxActiveBlocksPerMultiprocessor",
               cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, moe::plan_kernel, moe::PLAN_WARPS * 32, smem));
    if (per_sm < 1) args.fail("E_TOO_LARGE", "the plan's kernel does not fit a multiprocessor with " + std::to_string(smem) + " bytes of shared counters");
    resident = per_sm * cuda_sm_count();
    resident_smem = smem;
  }
  const int ctas = (int)std::max<int64_t>(1, std::min<int64_t>((chunks + moe::PLAN_WARPS - 1) / moe::PLAN_WARPS, resident));
  void* params[] = {(void*)&indices, (void*)&T, (void*)&k, (void*)&E, (void*)&R, (void*)&slot_rows, (void*)&ends, (void*)&work, (void*)&table, (void*)&send_row, (void*)&pair_rank, (void*)&ready};
  cuda_check(args.env(), args.fn(), "cudaLaunchCooperativeKernel",
             cudaLaunchCooperativeKernel((const void*)moe::plan_kernel, dim3(ctas), dim3(moe::PLAN_WARPS * 32), params, smem, stream));
}

// stride, scalesAt and metaAt of a packed row must follow dispatchRowLayout (src/runtime/backend.ts).
void check_row_layout(const Args& args, bool fp8, uint64_t H, uint64_t payload, uint64_t k, uint64_t stride, uint64_t scales_at, uint64_t meta_at) {
  const uint64_t want_scales = (payload + 3) / 4 * 4, want_meta = want_scales + (fp8 ? 4 * (H / 128) : 0);
  if (scales_at != want_scales || meta_at != want_meta || stride != (meta_at + 12 * k + 15) / 16 * 16) {
    args.fail("E_ARG", "stride, scalesAt and metaAt must follow dispatchRowLayout (" + std::to_string(want_scales) + ", " + std::to_string(want_meta) + ")");
  }
}

// destBases (a BigUint64Array of R ≤ EP_MAX_RANKS pointers, checked by the caller) as the pack's
// destinations: each a slot of slot_rows rows of `stride` bytes in the allocation table, 16-byte aligned.
moe::DestRows dest_rows_arg(const Args& args, const HostView& bases, uint64_t slot_rows, uint64_t stride) {
  moe::DestRows to;
  memset(&to, 0, sizeof(to));
  for (uint64_t d = 0; d < bases.length; d++) {
    const uint64_t p = ((const uint64_t*)bases.data)[d];
    cuda_device_ptr(args, "destBases[d]", p, checked_mul(args.env(), args.fn(), slot_rows, stride, "slot bytes"));
    if ((p & 15) != 0) args.fail("E_ARG", "destBases must be 16-byte aligned");
    to.p[d] = p;
  }
  to.slot = (int64_t)slot_rows;
  return to;
}

// The pack's launch (arguments checked; x 16-byte aligned for fp8): T tokens' rows to `to`, at most
// per_sm CTAs a multiprocessor.
void launch_pack(const Args& args, cudaStream_t stream, bool fp8, bool bf16, const void* x, int64_t T, int64_t H, uint64_t x_row, const int32_t* indices,
                 const float* weights, int k, int E, int R, const int32_t* send_row, const int32_t* pair_rank, int64_t S_rows, const moe::DestRows& to,
                 int64_t stride, int64_t scales_at, int64_t meta_at, int per_sm) {
  if (T == 0 && to.done == nullptr) return;  // (with a landing signal the launch signals even without rows)
  const int grid = grid_of(T, per_sm);
  const int t = moe::EP_THREADS;
  if (fp8) {
    if (((uintptr_t)x & 15) != 0) args.fail("E_ARG", "x must be 16-byte aligned for the FP8 payload");
    const size_t smem = (H / 128 + 3) / 4 * 16;  // the row's scales, whole float4s
    if (smem > 48 * 1024) args.fail("E_TOO_LARGE", "the FP8 payload's scales need H / 128 * 4 bytes of shared memory, at most 48 KB; got H = " + std::to_string(H));
    if (moe::warp_pack_fits(k, H)) {
      // a warp a token (pack_fp8_warp_kernel: 1.3-1.5x pack_fp8_kernel into local buffers, the same bytes),
      // as many warps a multiprocessor as per_sm CTAs of EP_THREADS would have
      const int wgrid = grid_of((T + moe::PACK_WARPS - 1) / moe::PACK_WARPS, std::max(1, per_sm * moe::EP_THREADS / (moe::PACK_WARPS * 32)));
      const size_t wsmem = moe::warp_pack_smem(H, to.ex != nullptr ? E / R : 0);
      if (bf16) moe::pack_fp8_warp_kernel<uint16_t><<<wgrid, moe::PACK_WARPS * 32, wsmem, stream>>>((const uint16_t*)x, T, H, indices, weights, k, E, R, send_row, pair_rank, S_rows, to, stride, scales_at, meta_at);
      else moe::pack_fp8_warp_kernel<float><<<wgrid, moe::PACK_WARPS * 32, wsmem, stream>>>((const float*)x, T, H, indices, weights, k, E, R, send_row, pair_rank, S_rows, to, stride, scales_at, meta_at);
      return;
    }
    if (bf16) moe::pack_fp8_kernel<uint16_t><<<grid, t, smem, stream>>>((const uint16_t*)x, T, H, indices, weights, k, E, R, send_row, pair_rank, S_rows, to, stride, scales_at, meta_at);
    else moe::pack_fp8_kernel<float><<<grid, t, smem, stream>>>((const float*)x, T, H, indices, weights, k, E, R, send_row, pair_rank, S_rows, to, stride, scales_at, meta_at);
  } else {
    const int u = unit_of(x_row, {x});
    const int64_t units = (int64_t)(x_row / u);
    if (u == 16) moe::pack_rows_kernel<uint4><<<grid, t, 0, stream>>>((const uint4*)x, T, units, indices, weights, k, E, R, send_row, pair_rank, S_rows, to, stride, meta_at);
    else if (u == 4) moe::pack_rows_kernel<uint32_t><<<grid, t, 0, stream>>>((const uint32_t*)x, T, units, indices, weights, k, E, R, send_row, pair_rank, S_rows, to, stride, meta_at);
    else moe::pack_rows_kernel<uint16_t><<<grid, t, 0, stream>>>((const uint16_t*)x, T, units, indices, weights, k, E, R, send_row, pair_rank, S_rows, to, stride, meta_at);
  }
}

// The scatter's launch (a checked): its sources' rows, at the widest unit every row and output allows.
void launch_scatter(cudaStream_t stream, moe::ScatterArgs a, uint64_t payload) {
  if (a.n == 0 || a.end[a.n - 1] == 0) return;
  uintptr_t al = (uintptr_t)payload | (uintptr_t)a.ex | (uintptr_t)a.recv;
  for (int q = 0; q < a.n; q++) al |= (uintptr_t)a.src[q];
  const int u = (al & 15) == 0 ? 16 : (al & 3) == 0 ? 4 : (al & 1) == 0 ? 2 : 1;
  a.units = (int64_t)(payload / u);
  if (a.k <= 32 && !a.ex) {
    // without expertX, a warp a row (scatter_warp_kernel: ~1.35x scatter_kernel, the same bytes)
    const int grid = grid_of((a.end[a.n - 1] + moe::SCATTER_WARPS - 1) / moe::SCATTER_WARPS, 4), t = moe::SCATTER_WARPS * 32;
    if (u == 16) moe::scatter_warp_kernel<uint4><<<grid, t, 0, stream>>>(a);
    else if (u == 4) moe::scatter_warp_kernel<uint32_t><<<grid, t, 0, stream>>>(a);
    else if (u == 2) moe::scatter_warp_kernel<uint16_t><<<grid, t, 0, stream>>>(a);
    else moe::scatter_warp_kernel<uint8_t><<<grid, t, 0, stream>>>(a);
    return;
  }
  const int grid = grid_of(a.end[a.n - 1], 8);
  if (u == 16) moe::scatter_kernel<uint4><<<grid, moe::EP_THREADS, 0, stream>>>(a);
  else if (u == 4) moe::scatter_kernel<uint32_t><<<grid, moe::EP_THREADS, 0, stream>>>(a);
  else if (u == 2) moe::scatter_kernel<uint16_t><<<grid, moe::EP_THREADS, 0, stream>>>(a);
  else moe::scatter_kernel<uint8_t><<<grid, moe::EP_THREADS, 0, stream>>>(a);
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
// counts per rank follow the totals (MoeKernels.dispatchPlan). One cooperative launch, no memset.
Napi::Value CudaMoeDispatchPlan(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeDispatchPlan";
  Napi::Env env = info.Env();
  Args args(info, fn, 11);
  const uint64_t T = args.size(1, "T"), k = args.size(2, "k"), E = args.size(3, "E"), R = args.size(4, "R"), slot_rows = args.size(9, "slotRows");
  const moe::ChunkEnds ends = ends_arg(args, 10, T);
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
  check_plan_smem(args, E, R);
  moe::PlanReady none{};
  launch_plan(args, stream, indices, (int64_t)T, (int)k, (int)E, (int)R, (int64_t)slot_rows, ends, (int32_t*)work, table, send_row, pair_rank, none);
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
  check_row_layout(args, fp8, H, payload, k, stride, scales_at, meta_at);
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
    to = dest_rows_arg(args, bases, slot_rows, stride);
    S_rows = (int64_t)slot_rows;
  }
  if (S == 0) return env.Undefined();
  // into per-rank buffers (NVLink stores, bound by the links): 4 CTAs a multiprocessor, under half its
  // registers (the FP8 kernel takes 60 a thread), so that what the other streams queue meanwhile finds
  // room beside it: the tables' all-gather (1024 threads; with the registers all taken it waited for
  // the whole pack, and the host's read of the tables with it) and the scatter of the landed pieces
  launch_pack(args, stream, fp8, bf16, x, (int64_t)T, (int64_t)H, x_row, indices, weights, (int)k, (int)E, (int)R, send_row, pair_rank, S_rows, to,
              (int64_t)stride, (int64_t)scales_at, (int64_t)meta_at, bases.length == 0 ? 16 : PACK_PER_SM_WINDOWS);
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

// The receive layout's outputs: base i32 [R, per], counts i32 [per], sortedPairs and rowExpert i32
// [Pmax], blockExpert i32 [Pmax / bs], work i32 [per + 2] (the experts' segment starts, then P and n).
struct RecvLayout {
  int32_t* base;
  int32_t* counts;
  int32_t* sorted;
  int64_t pmax;
  int32_t* block_expert;
  int32_t* row_expert;
  int32_t* work;
};

// Arguments at .. at + 5: base, counts, sortedPairs, Pmax, blockExpert, rowExpert; work (named
// work_name) at work_at. Checked: Pmax a multiple of bs ≥ 1 below 2^31, each buffer's size in the
// allocation table.
RecvLayout recv_layout_args(const Args& args, size_t at, size_t work_at, const char* work_name, uint64_t R, uint64_t per, uint64_t bs) {
  RecvLayout o;
  const uint64_t pmax = args.size(at + 3, "Pmax");
  if (bs == 0 || pmax % bs != 0) args.fail("E_ARG", "Pmax must be a multiple of blockSize >= 1");
  check_i32(args, pmax, "Pmax");
  o.pmax = (int64_t)pmax;
  o.base = (int32_t*)cuda_device_arg(args, at, "base", R * per * 4);
  o.counts = (int32_t*)cuda_device_arg(args, at + 1, "counts", per * 4);
  o.sorted = (int32_t*)cuda_device_arg(args, at + 2, "sortedPairs", pmax * 4);
  o.block_expert = (int32_t*)cuda_device_arg(args, at + 4, "blockExpert", pmax / bs * 4);
  o.row_expert = (int32_t*)cuda_device_arg(args, at + 5, "rowExpert", pmax * 4);
  o.work = (int32_t*)cuda_device_arg(args, work_at, work_name, (per + 2) * 4);
  return o;
}

// The receive layout's two launches (arguments checked): tables [R, W] -> o.
static void launch_recv_layout(cudaStream_t stream, const int32_t* tables, int R, int W, int E, int rank, int bs, int k, const RecvLayout& o) {
  moe::recv_scan_kernel<<<1, 1024, 0, stream>>>(tables, R, W, E, rank, bs, o.base, o.counts, o.work);
  moe::recv_fill_kernel<<<grid_of((o.pmax + 255) / 256, 4), 256, 0, stream>>>(E / R, bs, k, o.pmax, o.counts, o.work, o.sorted, o.block_expert, o.row_expert);
}

// cudaMoeDispatchRecvLayout(tables, R, tableStride, E, rank, blockSize, k, base, counts, sortedPairs, Pmax, blockExpert,
//                           rowExpert, expertX, exRows, exRowBytes, expertScales | 0n, exScaleBytes, work)
// tables: i32 [R, tableStride ≥ R + E + 1] -> base: i32 [R, E/R], counts: i32 [E/R], sortedPairs, rowExpert: i32 [Pmax],
// blockExpert: i32 [Pmax / blockSize], expertX's padding rows zero (exRows rows of exRowBytes; scales of
// exScaleBytes a row; expertX 0n: none, as cudaMoeWindowsDispatchScatter zeroes them later); work: 4·(E/R + 2) bytes.
Napi::Value CudaMoeDispatchRecvLayout(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeDispatchRecvLayout";
  Napi::Env env = info.Env();
  Args args(info, fn, 19);
  // (after tables: its row stride, >= R + E + 1; every later argument one place on from the list above)
  const uint64_t R = args.size(1, "R"), stride = args.size(2, "tableStride"), E = args.size(3, "E"), rank = args.size(4, "rank"), bs = args.size(5, "blockSize"), k = args.size(6, "k");
  const uint64_t ex_rows = args.size(14, "exRows"), ex_row_bytes = args.size(15, "exRowBytes"), ex_scale_bytes = args.size(17, "exScaleBytes");
  check_ep(args, E, R, k);
  if (rank >= R) args.fail("E_ARG", "rank must be below R (" + std::to_string(R) + "), got " + std::to_string(rank));
  if (ex_scale_bytes % 4 != 0) args.fail("E_ARG", "exScaleBytes must be a multiple of 4");
  const uint64_t per = E / R, W = R + E + 1;
  if (stride < W) args.fail("E_ARG", "tableStride must be at least R + E + 1 = " + std::to_string(W));
  cudaStream_t stream = cuda_stream(env, fn);
  const int32_t* tables = (const int32_t*)cuda_device_arg(args, 0, "tables", R * stride * 4);
  const RecvLayout o = recv_layout_args(args, 7, 18, "work", R, per, bs);
  void* ex = cuda_device_arg_or_null(args, 13, "expertX", checked_mul(env, fn, ex_rows, ex_row_bytes, "expertX bytes"));
  uint32_t* exs = (uint32_t*)cuda_device_arg_or_null(args, 16, "expertScales", checked_mul(env, fn, ex_rows, ex_scale_bytes, "expertScales bytes"));
  if (exs && ((uintptr_t)exs & 3) != 0) args.fail("E_ARG", "expertScales must be 4-byte aligned");
  launch_recv_layout(stream, tables, (int)R, (int)stride, (int)E, (int)rank, (int)bs, (int)k, o);
  if (ex) launch_zero_padding(stream, (int)per, (int)bs, o.counts, o.work, ex, ex_rows, ex_row_bytes, exs, ex_scale_bytes);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// What both scatter entry points take alike: the packed row's parts (checked: aligned, in order, inside
// the stride) and, from argument `at` on, the outputs expertX | 0n, P, expertScales | 0n, sortedPairs, Pmax,
// pairPos, n, recvIndices, recvWeights, recv, recvScales | 0n (checked against the allocation table).
// expertX 0n (dispatch's expand: false, P 0): recv and the index outputs only.
// Fills every field of `a` but the sources and base; returns n.
static uint64_t scatter_outputs(const Args& args, size_t at, uint64_t stride, uint64_t payload, uint64_t scales_at, uint64_t scale_bytes, uint64_t meta_at,
                                uint64_t per, uint64_t k, moe::ScatterArgs& a) {
  Napi::Env env = args.env();
  const char* fn = args.fn();
  const uint64_t P = args.size(at + 1, "P"), pmax = args.size(at + 4, "Pmax"), n = args.size(at + 6, "n");
  if (scale_bytes % 4 != 0 || scales_at % 4 != 0 || meta_at % 4 != 0 || stride % 16 != 0) args.fail("E_ARG", "the packed row's parts must be 4-byte aligned, its stride 16");
  if (payload > scales_at || scales_at + scale_bytes > meta_at || meta_at + 12 * k > stride) args.fail("E_ARG", "the packed row's parts overlap or pass its stride");
  check_i32(args, pmax, "Pmax");
  check_i32(args, n * k, "n * k");
  a.ex = cuda_device_arg_or_null(args, at, "expertX", checked_mul(env, fn, P, payload, "expertX bytes"));
  if (!a.ex && P != 0) args.fail("E_ARG", "expertX 0n (no expert-ordered copy) comes with P = 0");
  a.ex_scales = (uint32_t*)cuda_device_arg_or_null(args, at + 2, "expertScales", checked_mul(env, fn, P, scale_bytes, "expertScales bytes"));
  a.sorted = (int32_t*)cuda_device_arg(args, at + 3, "sortedPairs", pmax * 4);
  a.pair_pos = (int32_t*)cuda_device_arg(args, at + 5, "pairPos", n * k * 4);
  a.recv_indices = (int32_t*)cuda_device_arg(args, at + 7, "recvIndices", n * k * 4);
  a.recv_weights = (float*)cuda_device_arg(args, at + 8, "recvWeights", n * k * 4);
  a.recv = cuda_device_arg(args, at + 9, "recv", checked_mul(env, fn, n, payload, "recv bytes"));
  a.recv_scales = (uint32_t*)cuda_device_arg_or_null(args, at + 10, "recvScales", checked_mul(env, fn, n, scale_bytes, "recvScales bytes"));
  if ((a.recv_scales != nullptr) != (scale_bytes > 0) || (a.ex && (a.ex_scales != nullptr) != (scale_bytes > 0))) args.fail("E_ARG", "recvScales (and expertScales with expertX) come with scaleBytes > 0");
  if (!a.ex && a.ex_scales) args.fail("E_ARG", "expertScales comes with expertX");
  if ((((uintptr_t)a.ex_scales | (uintptr_t)a.recv_scales) & 3) != 0) args.fail("E_ARG", "the scales must be 4-byte aligned");
  a.stride = (int64_t)stride;
  a.scales_at = (int64_t)scales_at;
  a.meta_at = (int64_t)meta_at;
  a.per = (int)per;
  a.k = (int)k;
  a.P = (int64_t)P;
  a.pmax = (int64_t)pmax;
  a.scale_words = (int64_t)(scale_bytes / 4);
  return n;
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
  check_ep(args, R * per, R, k);
  if (source >= R) args.fail("E_ARG", "source must be below R (" + std::to_string(R) + "), got " + std::to_string(source));
  if (src_row + rows > src_rows) args.fail("E_SHAPE", "rows [srcRow, srcRow + rows) pass the " + std::to_string(src_rows) + " source rows");
  moe::ScatterArgs a;
  const uint64_t n = scatter_outputs(args, 15, stride, payload, scales_at, scale_bytes, meta_at, per, k, a);
  if (recv_row + rows > n) args.fail("E_SHAPE", "rows [recvRow, recvRow + rows) pass the " + std::to_string(n) + " received rows");
  check_i32(args, src_row + rows, "srcRow + rows");
  cudaStream_t stream = cuda_stream(env, fn);
  a.n = 1;
  a.src[0] = (const uint8_t*)cuda_device_arg(args, 0, "src", checked_mul(env, fn, src_rows, stride, "src bytes"));
  if (((uintptr_t)a.src[0] & 3) != 0) args.fail("E_ARG", "src and the scales must be 4-byte aligned");
  a.base = (const int32_t*)cuda_device_arg(args, 10, "base", R * per * 4);
  a.source[0] = (int)source;
  a.first[0] = (int32_t)src_row;
  a.end[0] = (int32_t)rows;
  a.recv_row[0] = (int32_t)recv_row;
  launch_scatter(stream, a, payload);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// ---------------------------------------------------------------- the symmetric windows' dispatch
//
// src/ops/moe.ts's dispatchWindows in two calls, so that the host's queueing costs as few CUDA calls as
// it can (one native call a step cost the host 5–14 µs each, about 25 of them an op): everything up to
// the host's read of the gathered tables, then everything after it.

// cudaMoeWindowsDispatchStart(lsa, tablesOffset, x, xIsBf16, T, H, indices, k, weights, E, fp8, ends, slotRows, destBases,
//                             stride, scalesAt, metaAt, sendRow, pairRank, table, tableWords, planWork, tables, rank,
//                             trace, signals, signalFromSlot, seq, fallback | 0n, region, readyFromSlot, regionFromSlot,
//                             regionBytes, regions, expertX | 0n, expertRows, expertScales | 0n, blockSize)
//   -> Float64Array [1 + C]: the read's ticket (ncclSideReadFinish), then per piece its pack's ticket (done
//      here; each taken by ncclSideWait or cudaMoeWindowsDispatchScatter)
// Queues, in order:
//   1. the plan on the addon's stream (one cooperative launch, moe::plan_kernel), as soon as its own
//      arguments are checked (it writes only the op's scratch): indices [T, k] -> sendRow [T, R], pairRank
//      [T, k], table i32 [tableWords = R + E + 1 + C·R] (slotRows = M rows a slot, ends: the C pieces'
//      token ends, the last T);
//   2. on the side stream (after the plan alone), per piece: the pack of its tokens into destBases[d]
//      (this rank's slot of M rows in rank d's window, rows of `stride` bytes, dispatchRowLayout), whose
//      last CTA then stores seq (the dispatch's number, the same on every rank) into word SIGNAL_HEAD + c·R + rank
//      of each destination's landing signals, at destBases[d] + signalFromSlot (pack_signal: release at
//      system scope, after every CTA's stores); `signals` is this rank's, whose word 0 counts the CTAs.
//      With readyFromSlot (the receive codes, moe::DestRows::ready; FP8, k ≤ 32): first, by the
//      plan, this rank's ready word — seq and `region` (−1: none) — into word `rank` of every rank's
//      ready words (at destBases[d] + readyFromSlot; moe::PlanReady); each pack then waits for
//      each destination's word and stores the codes of its rows to d into receive region r of d's
//      window (destBases[d] + regionFromSlot + r·regionBytes, `regions` of them) when this rank is one
//      of d's two anchored sources (moe::receive_first_row), this rank's own into `fallback` (u8 [R·M,
//      H], given with region −1) when it names none, the others' into the slot; scales and meta always
//      to the slot (cudaMoeWindowsDispatchScatter's inPlace takes them from there). The plan stores its
//      table into row `rank` of every rank's tables before its ready word (moe::PlanReady), and with
//      expertX (E4M3 [expertRows, H], its scales f32 [expertRows, H/128]; moe::own_expansion_fits) each pack
//      also writes this rank's own rows' codes and scales to their places below expertRows in it
//      (moe::DestRows' own expansion; places from the gathered tables with blockSize, as the receive
//      layout's), which cudaMoeWindowsDispatchScatter's ownExpanded then leaves alone;
//   3. then on the addon's stream: the table to row `rank` of every rank's tables (tablesOffset in the
//      LSA buffer `lsa`) and barrier index 1, after which the same kernel stores this rank's gathered
//      tables (i32 [R, tableWords] at `tables`) into pinned memory for the host's read (no copy or event
//      queued for it). The receive layout is cudaMoeWindowsDispatchScatter's.
// The rest is checked before anything else is queued. With trace, timing marks (ncclTraceMark's) after
// the plan's checks, the plan, on the side stream before piece 0's pack and after each pack, and after
// the all-gather.
Napi::Value CudaMoeWindowsDispatchStart(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeWindowsDispatchStart";
  Napi::Env env = info.Env();
  Args args(info, fn, 38);
  const bool trace = args.boolean(24, "trace");
  const uint64_t tables_offset = args.size(1, "tablesOffset");
  const bool bf16 = args.boolean(3, "xIsBf16"), fp8 = args.boolean(10, "fp8");
  const uint64_t T = args.size(4, "T"), H = args.size(5, "H"), k = args.size(7, "k"), E = args.size(9, "E");
  const moe::ChunkEnds ends = ends_arg(args, 11, T);
  const uint64_t M = args.size(12, "slotRows");
  HostView bases = args.typed_array(13, "destBases", napi_biguint64_array, 0);
  const uint64_t R = bases.length;
  const uint64_t stride = args.size(14, "stride"), scales_at = args.size(15, "scalesAt"), meta_at = args.size(16, "metaAt");
  const uint64_t W = args.size(20, "tableWords"), rank = args.size(23, "rank");
  if (R == 0 || R > (uint64_t)moe::EP_MAX_RANKS) args.fail("E_ARG", "destBases must hold R in [1, " + std::to_string(moe::EP_MAX_RANKS) + "] pointers");
  check_ep(args, E, R, k);
  if (ends.n < 1 || (uint64_t)ends.end[ends.n - 1] != T) args.fail("E_ARG", "ends must hold at least one piece, the last ending at T");
  if (W != R + E + 1 + (uint64_t)ends.n * R) args.fail("E_ARG", "tableWords must be R + E + 1 + C·R = " + std::to_string(R + E + 1 + (uint64_t)ends.n * R));
  if (rank >= R) args.fail("E_ARG", "rank must be below R (" + std::to_string(R) + "), got " + std::to_string(rank));
  // (T > M is every rank's E_ARG once the tables are read: the plan sends M rows and marks the table)
  if (M == 0 || R * M > I32_LIMIT) args.fail("E_ARG", "slotRows must be in [1, 2^31 / R), got " + std::to_string(M));
  if (T > I32_LIMIT / k || T > I32_LIMIT / R) args.fail("E_TOO_LARGE", "T * k and T * R must be below 2^31");
  if (fp8 && H % 128 != 0) args.fail("E_SHAPE", "the FP8 payload needs H % 128 == 0, got H = " + std::to_string(H));
  const uint64_t x_row = checked_mul(env, fn, H, bf16 ? 2 : 4, "x row bytes"), payload = fp8 ? H : x_row;
  check_row_layout(args, fp8, H, payload, k, stride, scales_at, meta_at);
  check_plan_smem(args, E, R);
  const int32_t* indices = (const int32_t*)cuda_device_arg(args, 6, "indices", T * k * 4);
  int32_t* send_row = (int32_t*)cuda_device_arg(args, 17, "sendRow", T * R * 4);
  int32_t* pair_rank = (int32_t*)cuda_device_arg(args, 18, "pairRank", T * k * 4);
  int32_t* table = (int32_t*)cuda_device_arg(args, 19, "table", W * 4);
  int32_t* plan_work = (int32_t*)cuda_device_arg(args, 21, "planWork", moe::plan_work_bytes((int64_t)(T * k), (int64_t)E, (int64_t)R));
  if ((((uintptr_t)plan_work | (uintptr_t)table) & 3) != 0) args.fail("E_ARG", "planWork and table must be 4-byte aligned");
  // (the gathered tables: the plan stores its row into every rank's with the receive codes)
  const int32_t* tables = (const int32_t*)cuda_device_arg(args, 22, "tables", R * W * 4);

  moe::DestRows to = dest_rows_arg(args, bases, M, stride);
  // the receive codes (moe::DestRows::ready): with readyFromSlot
  const uint32_t seq = (uint32_t)args.size(27, "seq");
  const uint64_t ready_from_slot = args.size(30, "readyFromSlot");
  const double region_arg = args.finite_number(29, "region");
  int region = -1;
  if (ready_from_slot != 0) {
    if (!fp8 || !moe::warp_pack_fits(k, H)) args.fail("E_ARG", "the receive codes need the FP8 payload, k <= 32 and H / 128 * 4 * " + std::to_string(moe::PACK_WARPS) + " bytes at most 48 KB");
    const uint64_t regions = args.size(33, "regions"), region_bytes = args.size(32, "regionBytes"), region_from_slot = args.size(31, "regionFromSlot");
    if (regions > 254) args.fail("E_ARG", "regions must be at most 254, got " + std::to_string(regions));
    if (!(region_arg >= -1 && region_arg < (double)regions && region_arg == (double)(int)region_arg)) {
      args.fail("E_ARG", "region must be -1 or a region below " + std::to_string(regions) + ", got " + std::to_string(region_arg));
    }
    region = (int)region_arg;
    const uint64_t codes = checked_mul(env, fn, R * M, H, "receive codes bytes");
    if (regions > 0 && (region_bytes < codes || region_bytes % 256 != 0)) args.fail("E_ARG", "regionBytes must be a multiple of 256 that holds R·slotRows·H bytes");
    for (uint64_t d = 0; d < R; d++) {
      cuda_device_ptr(args, "destBases[d] + readyFromSlot", to.p[d] + ready_from_slot, R * 8);
      if (((to.p[d] + ready_from_slot) & 7) != 0) args.fail("E_ARG", "the ready words must be 8-byte aligned");
      if (regions == 0) continue;
      cuda_device_ptr(args, "destBases[d] + regionFromSlot", to.p[d] + region_from_slot, checked_mul(env, fn, regions, region_bytes, "regions bytes"));
      if (((to.p[d] + region_from_slot) & 255) != 0) args.fail("E_ARG", "the receive regions must start on 256-byte boundaries");
    }
    if (region < 0) {
      const uint64_t fallback = (uint64_t)(uintptr_t)cuda_device_arg(args, 28, "fallback", codes);
      if (fallback == 0 || (fallback & 15) != 0) args.fail("E_ARG", "without a region, fallback must be 16-byte aligned storage of R·slotRows·H bytes");
      to.fallback = fallback;
    }
    to.ready = (const uint64_t*)(uintptr_t)(to.p[rank] + ready_from_slot);
    to.sent = table;
    to.region = (int64_t)region_from_slot;
    to.region_bytes = (int64_t)region_bytes;
    to.regions = (int)regions;
    to.me = (int)rank;
  }
  // the own expansion (moe::DestRows::ex)
  const uint64_t ex_rows = args.size(35, "expertRows"), bs = args.size(37, "blockSize");
  to.ex = (uint8_t*)cuda_device_arg_or_null(args, 34, "expertX", checked_mul(env, fn, ex_rows, H, "expertX bytes"));
  if (to.ex != nullptr) {
    if (to.ready == nullptr || !moe::own_expansion_fits(k, H, E, R)) {
      args.fail("E_ARG", "expertX comes with the receive codes (readyFromSlot), k + min(k, R) <= 32 and H / 128 * 4 * " + std::to_string(moe::PACK_WARPS) + " + 4 * E / R bytes at most 48 KB");
    }
    if (ex_rows > I32_LIMIT) args.fail("E_TOO_LARGE", "expertRows must be below 2^31");
    if (bs == 0 || bs > 1u << 20) args.fail("E_ARG", "blockSize must be in [1, 2^20]");
    to.ex_scales = (float*)cuda_device_arg(args, 36, "expertScales", checked_mul(env, fn, ex_rows, H / 128 * 4, "expertScales bytes"));
    if ((((uintptr_t)to.ex | (uintptr_t)to.ex_scales) & 15) != 0) args.fail("E_ARG", "expertX and expertScales must be 16-byte aligned");
    to.ex_rows = (int64_t)ex_rows;
    to.table_words = (int)W;
    to.bs = (int)bs;
  } else if (ex_rows != 0) {
    args.fail("E_ARG", "expertX 0n (no own expansion) comes with expertRows = 0");
  }
  // this rank's ready word into every rank's (the receive codes), then the plan, as soon as their own
  // arguments are checked (the plan writes only the op's scratch; should a check below fail, this
  // rank's peers go on with this dispatch no further than before: they wait for its tables)
  cudaStream_t main = cuda_main_stream(env, fn);
  if (trace) nccl_trace_mark(env, fn, main);  // the plan's checks done: where the host issues the plan
  moe::PlanReady ready{};
  if (to.ready != nullptr) {
    for (uint64_t d = 0; d < R; d++) ready.p[d] = to.p[d];
    ready.ready = (int64_t)ready_from_slot;
    ready.R = (int)R;
    ready.me = (int)rank;
    ready.region = region;
    ready.seq = seq;
    // (row `rank` of every rank's tables: the same offset from each rank's slot `rank`)
    const uint64_t tables_at = (uint64_t)(uintptr_t)tables + rank * W * 4;
    ready.tables = (int64_t)(tables_at - to.p[rank]);
    ready.table_words = (int)W;
  }
  launch_plan(args, main, indices, (int64_t)T, (int)k, (int)E, (int)R, (int64_t)M, ends, plan_work, table, send_row, pair_rank, ready);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  if (trace) nccl_trace_mark(env, fn, main);
  const uint8_t* x = (const uint8_t*)cuda_device_arg(args, 2, "x", checked_mul(env, fn, T, x_row, "x bytes"));
  const float* weights = (const float*)cuda_device_arg(args, 8, "weights", T * k * 4);
  to.tables = tables;
  if (fp8 && ((uintptr_t)x & 15) != 0) args.fail("E_ARG", "x must be 16-byte aligned for the FP8 payload");
  const int64_t signal_from_slot = (int64_t)args.size(26, "signalFromSlot");  // (the signals lie after every slot)
  const uint64_t signal_words = moe::SIGNAL_HEAD + (uint64_t)ends.n * R;
  to.done = (uint32_t*)cuda_device_arg(args, 25, "signals", signal_words * 4);
  to.seq = seq;
  if ((((uintptr_t)to.done | (uint64_t)signal_from_slot) & 3) != 0) args.fail("E_ARG", "signals and signalFromSlot must be 4-byte aligned");
  for (uint64_t d = 0; d < R; d++) cuda_device_ptr(args, "destBases[d] + signalFromSlot", to.p[d] + signal_from_slot, signal_words * 4);
  Napi::Float64Array out = Napi::Float64Array::New(env, 1 + (size_t)ends.n);
  // the side stream waits for the plan alone. The host's queueing (~5 µs a launch on the 2-rank
  // machine) orders what starts when: every piece's pack first, since the pack cannot start before the
  // host has queued it, then the tables' all-gather and read (the receive layout, queued by the scatter
  // call, and the host's read have the pack's ~100 µs to follow it)
  cudaStream_t side = nccl_side_after_main(env, fn);
  for (int c = 0; c < ends.n; c++) {
    const int64_t t0 = c ? ends.end[c - 1] : 0, t1 = ends.end[c];
    // piece c's signal from this rank: word SIGNAL_HEAD + c·R + rank of each destination's signals
    to.signal = signal_from_slot + (int64_t)(moe::SIGNAL_HEAD + c * R + rank) * 4;
    if (trace && c == 0) nccl_trace_mark(env, fn, side);  // where the side stream can start the pack
    launch_pack(args, side, fp8, bf16, x + t0 * x_row, t1 - t0, (int64_t)H, x_row, indices + t0 * k, weights + t0 * k, (int)k, (int)E, (int)R,
                send_row + t0 * R, pair_rank + t0 * k, (int64_t)M, to, (int64_t)stride, (int64_t)scales_at, (int64_t)meta_at, PACK_PER_SM_WINDOWS);
    cuda_check(env, fn, "kernel launch", cudaGetLastError());
    out[1 + c] = nccl_ticket(env, fn, side);
    if (trace) nccl_trace_mark(env, fn, side);
  }
  // the all-gather's kernel itself stores the gathered tables into pinned memory for the host's read
  const DeviceRead read = nccl_device_read_staging(env, fn, R * W * 4);
  try {
    nccl_lsa_all_gather(args, 0, table, W * 4, tables_offset, main, 1, read);
  } catch (...) {
    nccl_device_read_give_back(read);
    throw;
  }
  out[0] = nccl_device_read_start(read, R * W * 4, main);
  if (trace) nccl_trace_mark(env, fn, main);
  return out;
}

// cudaMoeWindowsDispatchScatter(pieces, ranges, srcBases, rank, slotRows, stride, payloadBytes, scalesAt, scaleBytes, metaAt, base,
//                               per, k, counts, layoutWork, blockSize, expertX, P, expertScales | 0n, sortedPairs, Pmax, pairPos,
//                               n, recvIndices, recvWeights, recv, recvScales | 0n, trace, tables, tableWords, signals, seq,
//                               inPlace, blockExpert, rowExpert, ownExpanded)
// pieces: Float64Array [C] (cudaMoeWindowsDispatchStart's pack tickets, each taken here); ranges: Int32Array
// [C, R, 3]: piece c's rows from source s as (first row of s's slot, rows, first received row), or empty;
// srcBases: BigUint64Array [R], source s's slot of slotRows rows here; tables: this rank's gathered
// tables (i32 [R, tableWords], as cudaMoeWindowsDispatchStart left them). Queues on the addon's stream
// first the receive layout from the tables (cudaMoeDispatchRecvLayout's outputs base, counts,
// sortedPairs [Pmax], blockExpert, rowExpert; layoutWork i32 [E/R + 2]: the experts' segment starts, P,
// n), which runs beside the packs. With `ranges` empty they come from the tables on
// the device (moe::scatter_ranges): the call can then come before the host has read the tables, with
// the outputs sized for the most rows the slots hold (n ≥ R·slotRows) and expertX for the rows it has
// (P may be fewer than the places: rows placed past it are not copied, their sortedPairs and pairPos
// entries still written, and the caller makes expertX anew). Then per piece, once its pack is
// done here, one launch (up to 8 sources) that scatters each source's rows as cudaMoeDispatchScatter does,
// this rank's first, each once its landing signal (word SIGNAL_HEAD + c·R + s of `signals`, this rank's)
// has reached seq (moe::wait_signal). expertX's padding rows (rowExpert -1) are not written.
// inPlace (k ≤ 32; with ranges empty recv is the start's receive codes: R·slotRows rows, the received
// rows from row anchor·slotRows − (the rows of the sources before the anchor) on, anchor =
// moe::receive_anchor(rank, R); with ranges recv is those received rows, a view of that storage): 1
// when it is the start's fallback, where this rank's own rows' codes are already; 2 when it is
// the receive region this rank named, where the two anchored sources' codes are already. The scatter
// copies every other source's codes there, and every source's scales and index outputs; expertX's rows
// of those sources it copies from recv. 0: recv is the received rows themselves. ownExpanded (1, with
// expertX: the start's expertX, the same P rows): this rank's own rows' expertX codes and scales are
// there already (the start's own expansion), so they are not copied.
// Everything is checked first. With trace, timing marks after the layout and each piece's launch.
Napi::Value CudaMoeWindowsDispatchScatter(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeWindowsDispatchScatter";
  Napi::Env env = info.Env();
  Args args(info, fn, 36);
  const bool trace = args.boolean(27, "trace");
  const uint64_t in_place = args.size(32, "inPlace");
  HostView pieces = args.typed_array(0, "pieces", napi_float64_array, 1);
  HostView src_bases = args.typed_array(2, "srcBases", napi_biguint64_array, 1);
  const uint64_t C = pieces.length, R = src_bases.length, rank = args.size(3, "rank");
  HostView ranges = args.typed_array(1, "ranges", napi_int32_array, 0);
  const bool on_device = ranges.length == 0;
  const uint64_t M = args.size(4, "slotRows"), stride = args.size(5, "stride"), payload = args.size(6, "payloadBytes"), scales_at = args.size(7, "scalesAt");
  const uint64_t scale_bytes = args.size(8, "scaleBytes"), meta_at = args.size(9, "metaAt"), per = args.size(11, "per"), k = args.size(12, "k");
  const uint64_t bs = args.size(15, "blockSize");  // (P, argument 17, is scatter_outputs')
  check_ep(args, R * per, R, k);
  const uint32_t* landed = (const uint32_t*)cuda_device_arg(args, 30, "signals", (moe::SIGNAL_HEAD + C * R) * 4);
  if (((uintptr_t)landed & 3) != 0) args.fail("E_ARG", "signals must be 4-byte aligned");
  if (rank >= R) args.fail("E_ARG", "rank must be below R (" + std::to_string(R) + "), got " + std::to_string(rank));
  if (!on_device && ranges.length != C * R * 3) args.fail("E_SHAPE", "ranges must be empty or hold C·R·3 = " + std::to_string(C * R * 3) + " entries");
  if (bs == 0 || bs > 1u << 20) args.fail("E_ARG", "blockSize must be in [1, 2^20]");
  if (M > I32_LIMIT) args.fail("E_TOO_LARGE", "slotRows must be below 2^31");
  moe::ScatterArgs a;
  memset(&a, 0, sizeof(a));
  a.seq = (uint32_t)args.size(31, "seq");
  const uint64_t n = scatter_outputs(args, 16, stride, payload, scales_at, scale_bytes, meta_at, per, k, a);
  const uint64_t W = args.size(29, "tableWords");
  if (W != R + R * per + 1 + C * R) args.fail("E_ARG", "tableWords must be R + E + 1 + C·R = " + std::to_string(R + R * per + 1 + C * R));
  const int32_t* tables = (const int32_t*)cuda_device_arg(args, 28, "tables", R * W * 4);
  if (on_device) {
    if (R * M > I32_LIMIT) args.fail("E_TOO_LARGE", "with the ranges from the tables R·slotRows must be below 2^31");
    if (n < R * M) args.fail("E_SHAPE", "with the ranges from the tables the outputs must hold R·slotRows = " + std::to_string(R * M) + " rows, got n = " + std::to_string(n));
    a.tables = tables;
    a.table_words = (int)W;
    a.ranks = (int)R;
    a.experts = (int)(R * per);
    a.me = (int)rank;
    a.pieces = (int)C;
    a.slot_rows = (int32_t)M;
  }
  if (in_place > 2) args.fail("E_ARG", "inPlace must be 0, 1 or 2, got " + std::to_string(in_place));
  if (in_place != 0) {
    // (from the tables, recv is the receive storage; with the host's ranges, from received row 0 on)
    if (k > 32) args.fail("E_ARG", "inPlace comes with k <= 32");
    a.in_place = (int)in_place;
    a.me = (int)rank;
    a.ranks = (int)R;
  }
  const bool own_expanded = args.boolean(35, "ownExpanded");
  if (own_expanded) {
    if (!a.ex) args.fail("E_ARG", "ownExpanded comes with expertX");
    a.own_expanded = 1;
    a.me = (int)rank;
  }
  for (uint64_t i = 0; i < pieces.length; i++) {
    const double ticket = ((const double*)pieces.data)[i];
    if (!(ticket >= 1) || ticket > 4294967295.0 || ticket != (double)(uint64_t)ticket) args.fail("E_ARG", "pieces must hold tickets");
  }
  const int32_t* rg = (const int32_t*)ranges.data;
  for (uint64_t i = 0; !on_device && i < C * R; i++) {
    const int64_t first = rg[3 * i], rows = rg[3 * i + 1], recv_row = rg[3 * i + 2];
    if (first < 0 || rows < 0 || recv_row < 0 || (uint64_t)(first + rows) > M || (uint64_t)(recv_row + rows) > n) {
      args.fail("E_SHAPE", "ranges[" + std::to_string(i / R) + ", " + std::to_string(i % R) + "] (rows [" + std::to_string(first) + ", +" + std::to_string(rows) +
                               ") to [" + std::to_string(recv_row) + ", …)) passes the slot's " + std::to_string(M) + " rows or the " + std::to_string(n) + " received");
    }
  }
  const uint8_t* src[moe::EP_MAX_RANKS];
  for (uint64_t s = 0; s < R; s++) {
    const uint64_t p = ((const uint64_t*)src_bases.data)[s];
    src[s] = (const uint8_t*)cuda_device_ptr(args, "srcBases[s]", p, checked_mul(env, fn, M, stride, "slot bytes"));
    if ((p & 3) != 0) args.fail("E_ARG", "srcBases must be 4-byte aligned");
  }
  a.base = (const int32_t*)cuda_device_arg(args, 10, "base", R * per * 4);
  const int32_t* counts = (const int32_t*)cuda_device_arg(args, 13, "counts", per * 4);
  const int32_t* starts = (const int32_t*)cuda_device_arg(args, 14, "layoutWork", (per + 2) * 4);
  // the receive layout's outputs: base, counts, sortedPairs (scatter_outputs'), blockExpert, rowExpert, layoutWork
  if (a.pmax % bs != 0) args.fail("E_ARG", "Pmax must be a multiple of blockSize");
  RecvLayout layout;
  layout.base = (int32_t*)a.base;
  layout.counts = (int32_t*)counts;
  layout.sorted = a.sorted;
  layout.pmax = a.pmax;
  layout.block_expert = (int32_t*)cuda_device_arg(args, 33, "blockExpert", a.pmax / bs * 4);
  layout.row_expert = (int32_t*)cuda_device_arg(args, 34, "rowExpert", a.pmax * 4);
  layout.work = (int32_t*)starts;

  cudaStream_t main = cuda_main_stream(env, fn);
  // the receive layout from the gathered tables first: it runs beside the packs
  launch_recv_layout(main, tables, (int)R, (int)W, (int)(R * per), (int)rank, (int)bs, (int)k, layout);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  if (trace) nccl_trace_mark(env, fn, main);
  // the sources of piece c in the order this rank, then the others, as one launch each SCATTER_MAX_SOURCES
  auto scatter = [&](uint64_t c) {
    a.n = 0;
    int32_t rows = 0;
    a.piece = (int)c;
    for (uint64_t i = 0; i < R; i++) {
      const uint64_t s = (rank + i) % R;
      a.src[a.n] = src[s];
      a.source[a.n] = (int32_t)s;
      if (on_device) {
        rows += (int32_t)M;  // (the most a piece of a source can be: the grid's bound; the kernels read their rows)
      } else {
        const int32_t* r = rg + 3 * (c * R + s);
        a.first[a.n] = r[0];
        a.recv_row[a.n] = r[2];
        rows += r[1];
      }
      a.end[a.n] = rows;
      if (++a.n == moe::SCATTER_MAX_SOURCES || i + 1 == R) {
        launch_scatter(main, a, payload);
        a.n = 0;
        rows = 0;
      }
    }
    cuda_check(env, fn, "kernel launch", cudaGetLastError());
  };
  const double* tickets = (const double*)pieces.data;
  // per piece one launch once this rank's pack of it is done here (its own rows), each source's rows
  // read once its landing signal is there. expertX's padding rows are left as they are: the grouped
  // GEMMs skip rows of expert -1 whatever they hold (dispatch's contract), and zeroing them would
  // write ~25% more rows (~58 MB a call at 4096 tokens, H 7168, top-8 over 2 ranks) after the rows land
  for (uint64_t c = 0; c < C; c++) {
    nccl_main_waits(args, (uint64_t)tickets[c]);
    a.landed = landed + moe::SIGNAL_HEAD + c * R;
    scatter(c);
    if (trace) nccl_trace_mark(env, fn, main);
  }
  return env.Undefined();
}

}  // namespace hp
