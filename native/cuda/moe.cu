// CUDA MoE entry points (MoeKernels on the cuda backend): cudaMoeRoute, cudaMoeRouteBackward,
// cudaMoeUpdateBias, cudaMoeAuxLoss, cudaMoeLayout, cudaMoeAlign (+ cudaMoeAlignWorkBytes),
// cudaMoePermute, cudaMoePermuteBytes, cudaMoeUnpermute, cudaMoeUnpermuteWeightGrad. Device pointers
// as BigInts (0n for none) plus sizes and dtype flags; every size is checked against the allocation
// table before a launch on the addon's stream, and they return at once. Kernels: native/cuda/moe.cuh.
#include <string>

#include "common/entry_points.h"
#include "cuda/cuda_common.h"
#include "cuda/moe.cuh"

namespace hp {

namespace {

// Index values and pair counts are i32 on the device: keep every count below 2^31.
constexpr uint64_t I32_LIMIT = 0x7FFFFFFFull;

void check_i32(const Args& args, uint64_t v, const char* what) {
  if (v > I32_LIMIT) args.fail("E_TOO_LARGE", std::string(what) + " must be below 2^31, got " + std::to_string(v));
}

int grid_for(int64_t work_items, int per_block, int per_sm) {
  const int64_t need = (work_items + per_block - 1) / per_block;
  const int64_t cap = (int64_t)cuda_sm_count() * per_sm;
  return (int)(need < cap ? (need > 0 ? need : 1) : cap);
}

// Warps per CTA and dynamic shared bytes for a warp-per-token kernel needing `per_warp` bytes a
// warp: 4 warps while that fits the default 48 KB, fewer above, the opt-in maximum at most.
template <typename K>
int warp_kernel_shape(const Args& args, Napi::Env env, const char* fn, K kernel, uint64_t per_warp, size_t* smem) {
  int warps = 4;
  while (warps > 1 && (uint64_t)warps * per_warp > 48 * 1024) warps /= 2;
  const uint64_t bytes = (uint64_t)warps * per_warp;
  if (bytes > 48 * 1024) {
    int optin = 0;
    cuda_check(env, fn, "cudaDeviceGetAttribute", cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, cuda_device()));
    if (bytes > (uint64_t)optin) {
      args.fail("E_TOO_LARGE", "E is too large for a warp's row in shared memory (" + std::to_string(bytes) + " bytes, the device allows " +
                                   std::to_string(optin) + ")");
    }
    cuda_check(env, fn, "cudaFuncSetAttribute", cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
  }
  *smem = (size_t)bytes;
  return warps;
}

// The route parameters shared by the forward and the backward; checks what the kernels rely on.
moe::RouteParams route_params(const Args& args, uint64_t T, uint64_t E, uint64_t k, uint64_t n_group, uint64_t topk_group, bool softmax,
                              bool group_max, bool norm, double scale) {
  if (E == 0) args.fail("E_SHAPE", "E must be at least 1");
  check_i32(args, E, "E");
  if (k == 0 || k > E) args.fail("E_ARG", "k must be in [1, E = " + std::to_string(E) + "], got " + std::to_string(k));
  if (n_group == 0 || E % n_group != 0) args.fail("E_ARG", "nGroup must divide E (" + std::to_string(E) + "), got " + std::to_string(n_group));
  if (topk_group == 0 || topk_group > n_group) args.fail("E_ARG", "topkGroup must be in [1, nGroup], got " + std::to_string(topk_group));
  if (k > topk_group * (E / n_group)) args.fail("E_ARG", "k (" + std::to_string(k) + ") is more than the experts of the kept groups");
  if (T > (uint64_t)INT64_MAX / 8 / E) args.fail("E_TOO_LARGE", "T * E * 8 overflows 63 bits");
  moe::RouteParams p;
  p.T = (int64_t)T;
  p.E = (int)E;
  p.k = (int)k;
  p.n_group = (int)n_group;
  p.topk_group = (int)topk_group;
  p.softmax = softmax;
  p.group_max = group_max;
  p.norm = norm;
  p.scale = scale;
  return p;
}

// Both row tensors of a mover: 8-element vectors need H % 8 == 0 and 16-byte aligned bases.
bool vec8(uint64_t H, std::initializer_list<const void*> ptrs) {
  if (H % 8 != 0) return false;
  for (const void* p : ptrs) {
    if (((uintptr_t)p & 15) != 0) return false;
  }
  return true;
}

int mover_threads(uint64_t per_row_units) {
  int t = 32;
  while (t < 256 && (uint64_t)t < per_row_units) t *= 2;
  return t;
}

}  // namespace

// cudaMoeRoute(logits, bias | 0n, T, E, k, nGroup, topkGroup, softmax, groupMax, normTopkProb,
//              routedScalingFactor, scores, weights, indices)
// logits: f32 [T, E], bias: f32 [E] -> scores: f32 [T, E], weights: f32 [T, k], indices: i32 [T, k].
Napi::Value CudaMoeRoute(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeRoute";
  Napi::Env env = info.Env();
  Args args(info, fn, 14);
  const uint64_t T = args.size(2, "T"), E = args.size(3, "E"), k = args.size(4, "k");
  const moe::RouteParams p = route_params(args, T, E, k, args.size(5, "nGroup"), args.size(6, "topkGroup"), args.boolean(7, "softmax"),
                                          args.boolean(8, "groupMax"), args.boolean(9, "normTopkProb"), args.finite_number(10, "routedScalingFactor"));
  cudaStream_t stream = cuda_stream(env, fn);
  const float* logits = (const float*)cuda_device_arg(args, 0, "logits", T * E * 4);
  const float* bias = (const float*)cuda_device_arg_or_null(args, 1, "bias", E * 4);
  float* scores = (float*)cuda_device_arg(args, 11, "scores", T * E * 4);
  float* weights = (float*)cuda_device_arg(args, 12, "weights", T * k * 4);
  int32_t* indices = (int32_t*)cuda_device_arg(args, 13, "indices", T * k * 4);
  size_t smem = 0;
  const int warps = warp_kernel_shape(args, env, fn, moe::route_kernel, 4 * (uint64_t)moe::route_smem_floats(p.E, p.n_group), &smem);
  if (T == 0) return env.Undefined();
  moe::route_kernel<<<grid_for((int64_t)T, warps, 16), warps * 32, smem, stream>>>(logits, bias, p, scores, weights, indices);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// cudaMoeRouteBackward(scores, indices, dWeights, dScores | 0n, T, E, k, softmax, normTopkProb,
//                      routedScalingFactor, dLogits)
// scores: f32 [T, E], indices: i32 [T, k], dWeights: f32 [T, k], dScores: f32 [T, E] -> dLogits: f32 [T, E].
Napi::Value CudaMoeRouteBackward(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeRouteBackward";
  Napi::Env env = info.Env();
  Args args(info, fn, 11);
  const uint64_t T = args.size(4, "T"), E = args.size(5, "E"), k = args.size(6, "k");
  const moe::RouteParams p = route_params(args, T, E, k, 1, 1, args.boolean(7, "softmax"), false, args.boolean(8, "normTopkProb"),
                                          args.finite_number(9, "routedScalingFactor"));
  cudaStream_t stream = cuda_stream(env, fn);
  const float* scores = (const float*)cuda_device_arg(args, 0, "scores", T * E * 4);
  const int32_t* indices = (const int32_t*)cuda_device_arg(args, 1, "indices", T * k * 4);
  const float* dw = (const float*)cuda_device_arg(args, 2, "dWeights", T * k * 4);
  const float* dscores = (const float*)cuda_device_arg_or_null(args, 3, "dScores", T * E * 4);
  float* dlogits = (float*)cuda_device_arg(args, 10, "dLogits", T * E * 4);
  size_t smem = 0;
  const int warps = warp_kernel_shape(args, env, fn, moe::route_backward_kernel, 8 * E, &smem);
  if (T == 0) return env.Undefined();
  moe::route_backward_kernel<<<grid_for((int64_t)T, warps, 16), warps * 32, smem, stream>>>(scores, indices, dw, dscores, p, dlogits);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// cudaMoeUpdateBias(bias, load, E, gamma, out); bias, out: f32 [E], load: i32 [E].
Napi::Value CudaMoeUpdateBias(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeUpdateBias";
  Napi::Env env = info.Env();
  Args args(info, fn, 5);
  const uint64_t E = args.size(2, "E");
  check_i32(args, E, "E");
  const double gamma = args.finite_number(3, "gamma");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* bias = (const float*)cuda_device_arg(args, 0, "bias", E * 4);
  const int32_t* load = (const int32_t*)cuda_device_arg(args, 1, "load", E * 4);
  float* out = (float*)cuda_device_arg(args, 4, "out", E * 4);
  if (E == 0) return env.Undefined();
  moe::update_bias_kernel<<<1, 1024, 0, stream>>>(bias, load, (int)E, (float)gamma, out);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// cudaMoeAuxLoss(scores, indices, T, E, k, seqLen, alpha, dScores, work)
// scores: f32 [T, E], indices: i32 [T, k] -> dScores: f32 [T, E]; work: 8·(1 + T) + 4·(T/seqLen)·E
// bytes, 8-byte aligned; its first f64 becomes the loss (read it back with cudaDownload).
Napi::Value CudaMoeAuxLoss(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeAuxLoss";
  Napi::Env env = info.Env();
  Args args(info, fn, 9);
  const uint64_t T = args.size(2, "T"), E = args.size(3, "E"), k = args.size(4, "k"), L = args.size(5, "seqLen");
  if (E == 0 || k == 0 || L == 0 || T == 0) args.fail("E_SHAPE", "T, E, k and seqLen must be at least 1");
  if (T % L != 0) args.fail("E_SHAPE", "seqLen must divide T (" + std::to_string(T) + "), got " + std::to_string(L));
  check_i32(args, E, "E");
  check_i32(args, k, "k");
  if (T > (uint64_t)INT64_MAX / (E > k ? E : k) / 8) args.fail("E_TOO_LARGE", "T * E overflows");
  const double alpha = args.finite_number(6, "alpha");
  const uint64_t n_seq = T / L;
  const size_t work_bytes = moe::aux_work_bytes((int64_t)T, (int64_t)n_seq, (int64_t)E);
  cudaStream_t stream = cuda_stream(env, fn);
  const float* scores = (const float*)cuda_device_arg(args, 0, "scores", T * E * 4);
  const int32_t* indices = (const int32_t*)cuda_device_arg(args, 1, "indices", T * k * 4);
  float* dscores = (float*)cuda_device_arg(args, 7, "dScores", T * E * 4);
  uint8_t* work = (uint8_t*)cuda_device_arg(args, 8, "work", work_bytes);
  if (((uintptr_t)work & 7) != 0) args.fail("E_ARG", "work must be 8-byte aligned");
  double* loss = (double*)work;
  double* term = loss + 1;
  int32_t* cnt = (int32_t*)(term + T);
  cuda_check(env, fn, "cudaMemsetAsync", cudaMemsetAsync(cnt, 0, 4 * n_seq * E, stream));
  moe::aux_count_kernel<<<grid_for((int64_t)(T * k), 256, 8), 256, 0, stream>>>(indices, (int64_t)T, (int)k, (int)E, (int64_t)L, cnt);
  moe::aux_row_kernel<<<grid_for((int64_t)T, 8, 16), 256, 0, stream>>>(scores, cnt, (int64_t)T, (int)E, (int)k, (int64_t)L, alpha, dscores, term);
  moe::aux_total_kernel<<<1, 1024, 0, stream>>>(term, (int64_t)T, (int64_t)L, alpha, loss);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// cudaMoeLayout(indices, T, k, E, R, tokensPerRank, tokensPerExpert, isTokenInRank)
// indices: i32 [T, k] -> tokensPerRank: i32 [R], tokensPerExpert: i32 [E], isTokenInRank: u8 [T, R].
Napi::Value CudaMoeLayout(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeLayout";
  Napi::Env env = info.Env();
  Args args(info, fn, 8);
  const uint64_t T = args.size(1, "T"), k = args.size(2, "k"), E = args.size(3, "E"), R = args.size(4, "R");
  if (E == 0 || R == 0 || E % R != 0) args.fail("E_ARG", "R must divide E (" + std::to_string(E) + "), got " + std::to_string(R));
  check_i32(args, E, "E");
  check_i32(args, k, "k");
  if (T > (uint64_t)INT64_MAX / 8 / (R > k ? R : (k > 0 ? k : 1))) args.fail("E_TOO_LARGE", "T * R overflows");
  cudaStream_t stream = cuda_stream(env, fn);
  const int32_t* indices = (const int32_t*)cuda_device_arg(args, 0, "indices", T * k * 4);
  int32_t* per_rank = (int32_t*)cuda_device_arg(args, 5, "tokensPerRank", R * 4);
  int32_t* per_expert = (int32_t*)cuda_device_arg(args, 6, "tokensPerExpert", E * 4);
  uint8_t* in_rank = (uint8_t*)cuda_device_arg(args, 7, "isTokenInRank", T * R);
  cuda_check(env, fn, "cudaMemsetAsync", cudaMemsetAsync(per_rank, 0, R * 4, stream));
  cuda_check(env, fn, "cudaMemsetAsync", cudaMemsetAsync(per_expert, 0, E * 4, stream));
  if (T == 0) return env.Undefined();
  const bool rank_smem = R * 4 <= 32 * 1024, expert_smem = E * 4 <= 32 * 1024;
  const int64_t tr = (int64_t)(T * R);
  moe::layout_rank_kernel<<<(int)((tr + 255) / 256), 256, rank_smem ? R * 4 : 0, stream>>>(indices, (int64_t)T, (int)k, (int)E, (int)R, rank_smem,
                                                                                           in_rank, per_rank);
  if (k > 0) {
    moe::expert_hist_kernel<<<grid_for((int64_t)(T * k), 256, 8), 256, expert_smem ? E * 4 : 0, stream>>>(indices, (int64_t)(T * k), (int)E,
                                                                                                           expert_smem, per_expert);
  }
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// cudaMoeAlignWorkBytes(pairs, E): the bytes of cudaMoeAlign's work area.
Napi::Value CudaMoeAlignWorkBytes(const Napi::CallbackInfo& info) {
  Args args(info, "cudaMoeAlignWorkBytes", 2);
  const uint64_t pairs = args.size(0, "pairs"), E = args.size(1, "E");
  check_i32(args, pairs, "pairs");
  check_i32(args, E, "E");
  return Napi::Number::New(info.Env(), (double)moe::align_work_bytes((int64_t)pairs, (int64_t)E));
}

// cudaMoeAlign(indices, T, k, E, blockSize, capacity, Pmax, sortedPairs, blockExpert, rowExpert,
//              pairPos, counts, info, work)
// indices: i32 [T, k] -> sortedPairs, rowExpert: i32 [Pmax], blockExpert: i32 [Pmax / blockSize],
// pairPos: i32 [T, k], counts: i32 [E], info: i32 [4] = { P, dropped, bad indices, 0 };
// work: cudaMoeAlignWorkBytes(T·k, E) bytes of scratch.
Napi::Value CudaMoeAlign(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeAlign";
  Napi::Env env = info.Env();
  Args args(info, fn, 14);
  const uint64_t T = args.size(1, "T"), k = args.size(2, "k"), E = args.size(3, "E"), bs = args.size(4, "blockSize");
  const uint64_t capacity = args.size(5, "capacity"), pmax = args.size(6, "Pmax");
  if (E == 0 || bs == 0) args.fail("E_ARG", "E and blockSize must be at least 1");
  check_i32(args, E, "E");
  check_i32(args, bs, "blockSize");
  if (k != 0 && T > I32_LIMIT / k) args.fail("E_TOO_LARGE", "T * k must be below 2^31");
  const uint64_t pairs = T * k;
  const uint64_t need = ceil_div(pairs + E * (bs - 1), bs) * bs;
  if (need > I32_LIMIT) args.fail("E_TOO_LARGE", "T * k + E * (blockSize - 1) must be below 2^31");
  if (pmax < need || pmax % bs != 0 || pmax > I32_LIMIT) {
    args.fail("E_SHAPE", "Pmax must be a multiple of blockSize of at least " + std::to_string(need) + ", got " + std::to_string(pmax));
  }
  const uint64_t work_bytes = moe::align_work_bytes((int64_t)pairs, (int64_t)E);
  cudaStream_t stream = cuda_stream(env, fn);
  const int32_t* indices = (const int32_t*)cuda_device_arg(args, 0, "indices", pairs * 4);
  int32_t* sorted = (int32_t*)cuda_device_arg(args, 7, "sortedPairs", pmax * 4);
  int32_t* block_expert = (int32_t*)cuda_device_arg(args, 8, "blockExpert", pmax / bs * 4);
  int32_t* row_expert = (int32_t*)cuda_device_arg(args, 9, "rowExpert", pmax * 4);
  int32_t* pair_pos = (int32_t*)cuda_device_arg(args, 10, "pairPos", pairs * 4);
  int32_t* counts = (int32_t*)cuda_device_arg(args, 11, "counts", E * 4);
  int32_t* out_info = (int32_t*)cuda_device_arg(args, 12, "info", 16);
  void* work = cuda_device_arg(args, 13, "work", work_bytes);
  if (((uintptr_t)work & 3) != 0) args.fail("E_ARG", "work must be 4-byte aligned");
  const int64_t rounds = moe::align_rounds((int64_t)pairs, (int64_t)E), chunks = moe::align_chunks((int64_t)pairs, (int64_t)E);
  const moe::AlignWork w = moe::align_work(work, (int64_t)E);
  cuda_check(env, fn, "cudaMemsetAsync", cudaMemsetAsync(work, 0, work_bytes, stream));
  constexpr int WARPS = 4;
  if (chunks > 0) {
    moe::align_count_kernel<<<(int)((chunks + WARPS - 1) / WARPS), WARPS * 32, 0, stream>>>(indices, (int64_t)pairs, (int)E, rounds, chunks, w);
  }
  moe::align_scan_kernel<<<1, 1024, 0, stream>>>((int)E, (int)bs, (int64_t)capacity, chunks, w, counts, out_info);
  moe::align_fill_kernel<<<grid_for((int64_t)pmax, 256, 8), 256, 0, stream>>>((int)E, (int)bs, (int64_t)pmax, (int32_t)pairs, w, sorted, block_expert,
                                                                               row_expert);
  if (chunks > 0) {
    moe::align_scatter_kernel<<<(int)((chunks + WARPS - 1) / WARPS), WARPS * 32, 0, stream>>>(indices, (int64_t)pairs, (int)E, rounds, chunks, w,
                                                                                              sorted, pair_pos);
  }
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

namespace {

// The byte gather of permute (no weights, same dtype) and permuteBytes: 16-, 4- or 1-byte units.
cudaError_t permute_bytes_launch(const void* x, uint64_t T, uint64_t row_bytes, const int32_t* rows, uint64_t P, int k, void* out,
                                 cudaStream_t stream) {
  const uintptr_t align = (uintptr_t)x | (uintptr_t)out | (uintptr_t)row_bytes;
  const int blocks = grid_for((int64_t)P, 1, 8);
  if ((align & 15) == 0) {
    const uint64_t units = row_bytes / 16;
    moe::permute_bytes_kernel<<<blocks, mover_threads(units), 0, stream>>>((const uint4*)x, (int64_t)T, (int64_t)units, rows, (int64_t)P, k, (uint4*)out);
  } else if ((align & 3) == 0) {
    const uint64_t units = row_bytes / 4;
    moe::permute_bytes_kernel<<<blocks, mover_threads(units), 0, stream>>>((const uint32_t*)x, (int64_t)T, (int64_t)units, rows, (int64_t)P, k,
                                                                          (uint32_t*)out);
  } else {
    moe::permute_bytes_kernel<<<blocks, mover_threads(row_bytes), 0, stream>>>((const uint8_t*)x, (int64_t)T, (int64_t)row_bytes, rows, (int64_t)P, k,
                                                                              (uint8_t*)out);
  }
  return cudaGetLastError();
}

template <typename In, typename Out>
cudaError_t permute_launch(const void* x, uint64_t T, uint64_t H, const int32_t* rows, uint64_t P, int k, const float* w, void* out, cudaStream_t s) {
  const bool vec = vec8(H, {x, out});
  moe::permute_kernel<In, Out><<<grid_for((int64_t)P, 1, 8), mover_threads(vec ? H / 8 : H), 0, s>>>((const In*)x, (int64_t)T, (int64_t)H, rows,
                                                                                                       (int64_t)P, k, w, (Out*)out, vec);
  return cudaGetLastError();
}

template <typename In, typename Out>
cudaError_t unpermute_launch(const void* y, uint64_t P, uint64_t H, const int32_t* pos, uint64_t T, int k, const float* w, void* out, cudaStream_t s) {
  const bool vec = vec8(H, {y, out});
  moe::unpermute_kernel<In, Out><<<grid_for((int64_t)T, 1, 8), mover_threads(vec ? H / 8 : H), 0, s>>>((const In*)y, (int64_t)P, (int64_t)H, pos,
                                                                                                         (int64_t)T, k, w, (Out*)out, vec);
  return cudaGetLastError();
}

template <typename A, typename B>
cudaError_t wgrad_launch(const void* dout, const void* y, uint64_t P, uint64_t H, const int32_t* pos, uint64_t T, int k, float* dw, cudaStream_t s) {
  const bool vec = vec8(H, {dout, y});
  moe::unpermute_wgrad_kernel<A, B><<<grid_for((int64_t)(T * k), 8, 16), 256, 0, s>>>((const A*)dout, (const B*)y, (int64_t)P, (int64_t)H, pos,
                                                                                      (int64_t)T, k, dw, vec);
  return cudaGetLastError();
}

}  // namespace

// cudaMoePermute(x, xIsBf16, T, H, rows, P, k, weights | 0n, out, outIsBf16)
// x: f32|bf16 [T, H], rows: i32 [P], weights: f32 [T·k] -> out: f32|bf16 [P, H].
Napi::Value CudaMoePermute(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoePermute";
  Napi::Env env = info.Env();
  Args args(info, fn, 10);
  const bool in_bf16 = args.boolean(1, "xIsBf16"), out_bf16 = args.boolean(9, "outIsBf16");
  const uint64_t T = args.size(2, "T"), H = args.size(3, "H"), P = args.size(5, "P"), k = args.size(6, "k");
  if (k == 0) args.fail("E_ARG", "k must be at least 1");
  check_i32(args, k, "k");
  if (T > I32_LIMIT / k) args.fail("E_TOO_LARGE", "T * k must be below 2^31");
  const uint64_t in_row = checked_mul(env, fn, H, in_bf16 ? 2 : 4, "row bytes"), out_row = checked_mul(env, fn, H, out_bf16 ? 2 : 4, "row bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const void* x = cuda_device_arg(args, 0, "x", checked_mul(env, fn, T, in_row, "x bytes"));
  const int32_t* rows = (const int32_t*)cuda_device_arg(args, 4, "rows", P * 4);
  const float* w = (const float*)cuda_device_arg_or_null(args, 7, "weights", T * k * 4);
  void* out = cuda_device_arg(args, 8, "out", checked_mul(env, fn, P, out_row, "out bytes"));
  if (P == 0 || H == 0) return env.Undefined();
  cudaError_t err;
  if (!w && in_bf16 == out_bf16) err = permute_bytes_launch(x, T, in_row, rows, P, (int)k, out, stream);  // bit-exact row moves
  else if (in_bf16) err = out_bf16 ? permute_launch<uint16_t, uint16_t>(x, T, H, rows, P, (int)k, w, out, stream)
                                   : permute_launch<uint16_t, float>(x, T, H, rows, P, (int)k, w, out, stream);
  else err = out_bf16 ? permute_launch<float, uint16_t>(x, T, H, rows, P, (int)k, w, out, stream)
                      : permute_launch<float, float>(x, T, H, rows, P, (int)k, w, out, stream);
  cuda_check(env, fn, "kernel launch", err);
  return env.Undefined();
}

// cudaMoePermuteBytes(x, T, rowBytes, rows, P, k, out): x [T, rowBytes] -> out [P, rowBytes], bytes as they are.
Napi::Value CudaMoePermuteBytes(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoePermuteBytes";
  Napi::Env env = info.Env();
  Args args(info, fn, 7);
  const uint64_t T = args.size(1, "T"), row_bytes = args.size(2, "rowBytes"), P = args.size(4, "P"), k = args.size(5, "k");
  if (k == 0) args.fail("E_ARG", "k must be at least 1");
  check_i32(args, k, "k");
  if (T > I32_LIMIT / k) args.fail("E_TOO_LARGE", "T * k must be below 2^31");
  cudaStream_t stream = cuda_stream(env, fn);
  const void* x = cuda_device_arg(args, 0, "x", checked_mul(env, fn, T, row_bytes, "x bytes"));
  const int32_t* rows = (const int32_t*)cuda_device_arg(args, 3, "rows", P * 4);
  void* out = cuda_device_arg(args, 6, "out", checked_mul(env, fn, P, row_bytes, "out bytes"));
  if (P == 0 || row_bytes == 0) return env.Undefined();
  cuda_check(env, fn, "kernel launch", permute_bytes_launch(x, T, row_bytes, rows, P, (int)k, out, stream));
  return env.Undefined();
}

// cudaMoeUnpermute(y, yIsBf16, P, H, pairPos, T, k, weights | 0n, out, outIsBf16)
// y: f32|bf16 [P, H], pairPos: i32 [T, k], weights: f32 [T, k] -> out: f32|bf16 [T, H].
Napi::Value CudaMoeUnpermute(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeUnpermute";
  Napi::Env env = info.Env();
  Args args(info, fn, 10);
  const bool in_bf16 = args.boolean(1, "yIsBf16"), out_bf16 = args.boolean(9, "outIsBf16");
  const uint64_t P = args.size(2, "P"), H = args.size(3, "H"), T = args.size(5, "T"), k = args.size(6, "k");
  check_i32(args, k, "k");
  if (k != 0 && T > I32_LIMIT / k) args.fail("E_TOO_LARGE", "T * k must be below 2^31");
  cudaStream_t stream = cuda_stream(env, fn);
  const void* y = cuda_device_arg(args, 0, "y", checked_mul(env, fn, P, checked_mul(env, fn, H, in_bf16 ? 2 : 4, "row bytes"), "y bytes"));
  const int32_t* pos = (const int32_t*)cuda_device_arg(args, 4, "pairPos", T * k * 4);
  const float* w = (const float*)cuda_device_arg_or_null(args, 7, "weights", T * k * 4);
  void* out = cuda_device_arg(args, 8, "out", checked_mul(env, fn, T, checked_mul(env, fn, H, out_bf16 ? 2 : 4, "row bytes"), "out bytes"));
  if (T == 0 || H == 0) return env.Undefined();
  cudaError_t err;
  if (in_bf16) err = out_bf16 ? unpermute_launch<uint16_t, uint16_t>(y, P, H, pos, T, (int)k, w, out, stream)
                              : unpermute_launch<uint16_t, float>(y, P, H, pos, T, (int)k, w, out, stream);
  else err = out_bf16 ? unpermute_launch<float, uint16_t>(y, P, H, pos, T, (int)k, w, out, stream)
                      : unpermute_launch<float, float>(y, P, H, pos, T, (int)k, w, out, stream);
  cuda_check(env, fn, "kernel launch", err);
  return env.Undefined();
}

// cudaMoeUnpermuteWeightGrad(dOut, dOutIsBf16, y, yIsBf16, P, H, pairPos, T, k, dWeights)
// dOut: f32|bf16 [T, H], y: f32|bf16 [P, H], pairPos: i32 [T, k] -> dWeights: f32 [T, k].
Napi::Value CudaMoeUnpermuteWeightGrad(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMoeUnpermuteWeightGrad";
  Napi::Env env = info.Env();
  Args args(info, fn, 10);
  const bool a_bf16 = args.boolean(1, "dOutIsBf16"), b_bf16 = args.boolean(3, "yIsBf16");
  const uint64_t P = args.size(4, "P"), H = args.size(5, "H"), T = args.size(7, "T"), k = args.size(8, "k");
  check_i32(args, k, "k");
  if (k != 0 && T > I32_LIMIT / k) args.fail("E_TOO_LARGE", "T * k must be below 2^31");
  cudaStream_t stream = cuda_stream(env, fn);
  const void* dout = cuda_device_arg(args, 0, "dOut", checked_mul(env, fn, T, checked_mul(env, fn, H, a_bf16 ? 2 : 4, "row bytes"), "dOut bytes"));
  const void* y = cuda_device_arg(args, 2, "y", checked_mul(env, fn, P, checked_mul(env, fn, H, b_bf16 ? 2 : 4, "row bytes"), "y bytes"));
  const int32_t* pos = (const int32_t*)cuda_device_arg(args, 6, "pairPos", T * k * 4);
  float* dw = (float*)cuda_device_arg(args, 9, "dWeights", T * k * 4);
  if (T == 0 || k == 0) return env.Undefined();
  cudaError_t err;
  if (a_bf16) err = b_bf16 ? wgrad_launch<uint16_t, uint16_t>(dout, y, P, H, pos, T, (int)k, dw, stream)
                           : wgrad_launch<uint16_t, float>(dout, y, P, H, pos, T, (int)k, dw, stream);
  else err = b_bf16 ? wgrad_launch<float, uint16_t>(dout, y, P, H, pos, T, (int)k, dw, stream)
                    : wgrad_launch<float, float>(dout, y, P, H, pos, T, (int)k, dw, stream);
  cuda_check(env, fn, "kernel launch", err);
  return env.Undefined();
}

}  // namespace hp
