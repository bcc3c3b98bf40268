// CUDA nn entry points: cudaNnEmbedding … cudaNnSample. The cpu entry points' arguments
// (native/cpu/nn.cc) as device pointers, plus a `work` buffer where a kernel needs scratch
// (rmsnormBackward, attentionBackward, sumSquares). Every size is checked against the allocation
// table before a launch on the addon's stream; they return at once (sumSquares leaves its f64 result
// in work[0] for the caller to download). Kernels: native/cuda/nn.cuh.
#include <cmath>
#include <string>

#include "common/entry_points.h"
#include "cuda/cuda_common.h"
#include "cuda/nn.cuh"

namespace hp {

// ---------------------------------------------------------------- launchers

static constexpr int EW_THREADS = 256;  // elementwise kernels

// every pointer 16-byte aligned: the elementwise kernels may use float4
static bool aligned16(std::initializer_list<const void*> ps) {
  for (const void* p : ps) {
    if (((uintptr_t)p & 15) != 0) return false;
  }
  return true;
}

cudaError_t nn_embedding_launch(const float* table, const int32_t* ids, int64_t V, int64_t D, int64_t N, float* out, int sm, cudaStream_t s) {
  nnk::embedding_kernel<<<nnk::grid_for(N * D, EW_THREADS, sm), EW_THREADS, 0, s>>>(table, ids, V, D, N, out);
  return cudaGetLastError();
}

cudaError_t nn_embedding_backward_launch(const float* dout, const int32_t* ids, int64_t V, int64_t D, int64_t N, float* dtable, cudaStream_t s) {
  const dim3 grid((unsigned)N, (unsigned)((D + nnk::EMB_THREADS - 1) / nnk::EMB_THREADS));
  nnk::embedding_backward_kernel<<<grid, nnk::EMB_THREADS, 0, s>>>(dout, ids, V, D, N, dtable);
  return cudaGetLastError();
}

cudaError_t nn_rmsnorm_launch(const float* x, const float* w, int64_t N, int64_t D, double eps, float* out, float* rstd, cudaStream_t s) {
  const unsigned blocks = (unsigned)((N + nnk::ROW_WARPS - 1) / nnk::ROW_WARPS);
  nnk::rmsnorm_kernel<<<blocks, nnk::ROW_WARPS * 32, 0, s>>>(x, w, N, D, eps, out, rstd);
  return cudaGetLastError();
}

cudaError_t nn_rmsnorm_backward_launch(const float* g, const float* x, const float* w, const float* rstd, int64_t N, int64_t D, float* dx, float* dw,
                                       float* work, cudaStream_t s) {
  const unsigned blocks = (unsigned)((N + nnk::ROW_WARPS - 1) / nnk::ROW_WARPS);
  nnk::rmsnorm_dx_kernel<<<blocks, nnk::ROW_WARPS * 32, 0, s>>>(g, x, w, rstd, N, D, dx);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  const int64_t parts = nnk::rmsnorm_parts(N), chunk = (N + parts - 1) / parts;
  nnk::rmsnorm_dw_partial_kernel<<<dim3((unsigned)((D + 31) / 32), (unsigned)parts), dim3(32, 8), 0, s>>>(g, x, rstd, N, D, chunk, work);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  nnk::rmsnorm_dw_final_kernel<<<(unsigned)((D + 255) / 256), 256, 0, s>>>(work, parts, D, dw);
  return cudaGetLastError();
}

cudaError_t nn_rope_launch(const float* x, const int32_t* pos, int64_t N, int64_t nH, int64_t Dh, double theta, bool inverse, float* out, int sm,
                           cudaStream_t s) {
  nnk::rope_kernel<<<nnk::grid_for(N * (Dh / 2), EW_THREADS, sm), EW_THREADS, 0, s>>>(x, pos, N, nH, Dh, theta, inverse ? 1 : 0, out);
  return cudaGetLastError();
}

// Raises a kernel's dynamic shared memory limit when it needs more than the default 48 KB.
template <typename K>
static cudaError_t allow_smem(K kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
}

template <int DC>
static cudaError_t attention_fwd_dc(const float* q, const float* k, const float* v, int B, int Tq, int S, int nH, int Dh, int q_offset, int kv_len,
                                    float scale, float* out, float* lse, cudaStream_t s) {
  constexpr int QB = nnk::ATT_WARPS * nnk::AttRows<DC>::W;
  const size_t smem = nnk::attention_fwd_smem<DC>(Dh);
  cudaError_t err = allow_smem(nnk::attention_fwd_kernel<DC>, smem);
  if (err != cudaSuccess) return err;
  const dim3 grid((unsigned)(B * nH), (unsigned)((Tq + QB - 1) / QB));
  nnk::attention_fwd_kernel<DC><<<grid, nnk::ATT_THREADS, smem, s>>>(q, k, v, Tq, S, nH, Dh, q_offset, kv_len, scale, out, lse);
  return cudaGetLastError();
}

cudaError_t nn_attention_launch(const float* q, const float* k, const float* v, int B, int Tq, int S, int nH, int Dh, int q_offset, int kv_len,
                                float scale, float* out, float* lse, cudaStream_t s) {
  if (Dh <= 32) return attention_fwd_dc<1>(q, k, v, B, Tq, S, nH, Dh, q_offset, kv_len, scale, out, lse, s);
  if (Dh <= 64) return attention_fwd_dc<2>(q, k, v, B, Tq, S, nH, Dh, q_offset, kv_len, scale, out, lse, s);
  if (Dh <= 128) return attention_fwd_dc<4>(q, k, v, B, Tq, S, nH, Dh, q_offset, kv_len, scale, out, lse, s);
  return attention_fwd_dc<8>(q, k, v, B, Tq, S, nH, Dh, q_offset, kv_len, scale, out, lse, s);
}

template <int DC>
static cudaError_t attention_bwd_dc(const float* q, const float* k, const float* v, const float* lse, const float* dout, int B, int T, int nH, int Dh,
                                    float scale, float* dq, float* dk, float* dv, const float* dvec, cudaStream_t s) {
  constexpr int RB = nnk::ATT_WARPS * nnk::AttRows<DC>::W;
  const dim3 grid((unsigned)(B * nH), (unsigned)((T + RB - 1) / RB));
  const size_t smem_dq = nnk::attention_dq_smem<DC>(Dh), smem_kv = nnk::attention_dkdv_smem<DC>(Dh);
  cudaError_t err = allow_smem(nnk::attention_dq_kernel<DC>, smem_dq);
  if (err == cudaSuccess) err = allow_smem(nnk::attention_dkdv_kernel<DC>, smem_kv);
  if (err != cudaSuccess) return err;
  nnk::attention_dq_kernel<DC><<<grid, nnk::ATT_THREADS, smem_dq, s>>>(q, k, v, dout, lse, dvec, T, nH, Dh, scale, dq);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  nnk::attention_dkdv_kernel<DC><<<grid, nnk::ATT_THREADS, smem_kv, s>>>(q, k, v, dout, lse, dvec, T, nH, Dh, scale, dk, dv);
  return cudaGetLastError();
}

cudaError_t nn_attention_backward_launch(const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout, int B,
                                         int T, int nH, int Dh, float scale, float* dq, float* dk, float* dv, float* work, cudaStream_t s) {
  const int64_t rows = (int64_t)B * T * nH;
  nnk::attention_d_kernel<<<(unsigned)((rows + nnk::ROW_WARPS - 1) / nnk::ROW_WARPS), nnk::ROW_WARPS * 32, 0, s>>>(dout, o, B, T, nH, Dh, work);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  if (Dh <= 32) return attention_bwd_dc<1>(q, k, v, lse, dout, B, T, nH, Dh, scale, dq, dk, dv, work, s);
  if (Dh <= 64) return attention_bwd_dc<2>(q, k, v, lse, dout, B, T, nH, Dh, scale, dq, dk, dv, work, s);
  if (Dh <= 128) return attention_bwd_dc<4>(q, k, v, lse, dout, B, T, nH, Dh, scale, dq, dk, dv, work, s);
  return attention_bwd_dc<8>(q, k, v, lse, dout, B, T, nH, Dh, scale, dq, dk, dv, work, s);
}

cudaError_t nn_swiglu_launch(const float* gate, const float* up, int64_t n, float* out, int sm, cudaStream_t s) {
  nnk::swiglu_kernel<<<nnk::grid_for((n + 3) / 4, EW_THREADS, sm), EW_THREADS, 0, s>>>(gate, up, n, aligned16({gate, up, out}), out);
  return cudaGetLastError();
}

cudaError_t nn_swiglu_backward_launch(const float* gate, const float* up, const float* dout, int64_t n, float* dgate, float* dup, int sm,
                                      cudaStream_t s) {
  const bool vec = aligned16({gate, up, dout, dgate, dup});
  nnk::swiglu_backward_kernel<<<nnk::grid_for((n + 3) / 4, EW_THREADS, sm), EW_THREADS, 0, s>>>(gate, up, dout, n, vec, dgate, dup);
  return cudaGetLastError();
}

cudaError_t nn_add_scaled_launch(const float* a, const float* b, int64_t n, float alpha, float* out, int sm, cudaStream_t s) {
  nnk::add_scaled_kernel<<<nnk::grid_for((n + 3) / 4, EW_THREADS, sm), EW_THREADS, 0, s>>>(a, b, n, alpha, aligned16({a, b, out}), out);
  return cudaGetLastError();
}

cudaError_t nn_sum_squares_launch(const float* x, int64_t n, double* work, cudaStream_t s) {
  int64_t chunk = (n + nnk::SS_PARTS - 1) / nnk::SS_PARTS;
  chunk = (chunk + 3) / 4 * 4;
  nnk::sum_squares_partial_kernel<<<nnk::SS_PARTS, nnk::SS_THREADS, 0, s>>>(x, n, chunk, aligned16({x}), work);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  nnk::sum_squares_final_kernel<<<1, nnk::SS_PARTS, 0, s>>>(work);
  return cudaGetLastError();
}

cudaError_t nn_adamw_launch(float* param, const float* grad, float* m, float* v, int64_t n, const nnk::AdamwArgs& a, int sm, cudaStream_t s) {
  nnk::adamw_kernel<<<nnk::grid_for((n + 3) / 4, EW_THREADS, sm), EW_THREADS, 0, s>>>(param, grad, m, v, n, a, aligned16({param, grad, m, v}));
  return cudaGetLastError();
}

cudaError_t nn_sample_launch(const float* logits, const float* uniforms, int64_t B, int64_t V, double temperature, double top_p, int32_t* ids,
                             cudaStream_t s) {
  nnk::sample_kernel<<<(unsigned)B, nnk::SAMPLE_THREADS, 0, s>>>(logits, uniforms, V, temperature, top_p, ids);
  return cudaGetLastError();
}

// ---------------------------------------------------------------- entry points

// Two device ranges [a, a + an) and [b, b + bn) share a byte.
static bool overlap(const void* a, uint64_t an, const void* b, uint64_t bn) {
  return (const char*)a < (const char*)b + bn && (const char*)b < (const char*)a + an;
}

// An output that may be an input itself (the same start) but must not overlap it otherwise.
static void same_or_apart(const Args& args, const void* out, const void* in, uint64_t bytes, const char* out_name, const char* in_name) {
  if (out != in && overlap(out, bytes, in, bytes)) {
    args.fail("E_ARG", std::string(out_name) + " may be " + in_name + " itself, and must not overlap it otherwise");
  }
}

static void apart(const Args& args, const void* out, uint64_t out_bytes, const void* in, uint64_t in_bytes, const char* out_name, const char* in_name) {
  if (overlap(out, out_bytes, in, in_bytes)) args.fail("E_ARG", std::string(out_name) + " must not overlap " + in_name);
}

// cudaNnEmbedding(table, ids, V, D, N, out); table: f32 [V, D], ids: i32 [N] -> out: f32 [N, D]
Napi::Value CudaNnEmbedding(const Napi::CallbackInfo& info) {
  const char* fn = "cudaNnEmbedding";
  Napi::Env env = info.Env();
  Args args(info, fn, 6);
  const uint64_t V = args.size(2, "V"), D = args.size(3, "D"), N = args.size(4, "N");
  if (V == 0 || D == 0 || N == 0) args.fail("E_SHAPE", "V, D and N must be at least 1");
  if (V > 0x7FFFFFFFull) args.fail("E_TOO_LARGE", "V must be below 2^31 (ids are i32)");
  const uint64_t table_bytes = checked_mul(env, fn, checked_mul(env, fn, V, D, "V * D"), 4, "table bytes");
  const uint64_t out_bytes = checked_mul(env, fn, checked_mul(env, fn, N, D, "N * D"), 4, "out bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* table = (const float*)cuda_device_arg(args, 0, "table", table_bytes);
  const int32_t* ids = (const int32_t*)cuda_device_arg(args, 1, "ids", N * 4);
  float* out = (float*)cuda_device_arg(args, 5, "out", out_bytes);
  apart(args, out, out_bytes, table, table_bytes, "out", "table");
  apart(args, out, out_bytes, ids, N * 4, "out", "ids");
  cuda_check(env, fn, "kernel launch", nn_embedding_launch(table, ids, (int64_t)V, (int64_t)D, (int64_t)N, out, cuda_sm_count(), stream));
  return env.Undefined();
}

// cudaNnEmbeddingBackward(dOut, ids, V, D, N, dTable); dOut: f32 [N, D], ids: i32 [N] -> dTable: f32 [V, D] +=
Napi::Value CudaNnEmbeddingBackward(const Napi::CallbackInfo& info) {
  const char* fn = "cudaNnEmbeddingBackward";
  Napi::Env env = info.Env();
  Args args(info, fn, 6);
  const uint64_t V = args.size(2, "V"), D = args.size(3, "D"), N = args.size(4, "N");
  if (V == 0 || D == 0 || N == 0) args.fail("E_SHAPE", "V, D and N must be at least 1");
  if (V > 0x7FFFFFFFull || N > 0x7FFFFFFFull) args.fail("E_TOO_LARGE", "V and N must be below 2^31 (a block per position)");
  if (D > 65535ull * 256) args.fail("E_TOO_LARGE", "D must be at most 65535 * 256");
  const uint64_t table_bytes = checked_mul(env, fn, checked_mul(env, fn, V, D, "V * D"), 4, "dTable bytes");
  const uint64_t dout_bytes = checked_mul(env, fn, checked_mul(env, fn, N, D, "N * D"), 4, "dOut bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* dout = (const float*)cuda_device_arg(args, 0, "dOut", dout_bytes);
  const int32_t* ids = (const int32_t*)cuda_device_arg(args, 1, "ids", N * 4);
  float* dtable = (float*)cuda_device_arg(args, 5, "dTable", table_bytes);
  apart(args, dtable, table_bytes, dout, dout_bytes, "dTable", "dOut");
  apart(args, dtable, table_bytes, ids, N * 4, "dTable", "ids");
  cuda_check(env, fn, "kernel launch", nn_embedding_backward_launch(dout, ids, (int64_t)V, (int64_t)D, (int64_t)N, dtable, stream));
  return env.Undefined();
}

// cudaNnRmsnorm(x, weight, N, D, eps, out, rstd); x: f32 [N, D], weight: f32 [D] -> out: [N, D], rstd: [N]
Napi::Value CudaNnRmsnorm(const Napi::CallbackInfo& info) {
  const char* fn = "cudaNnRmsnorm";
  Napi::Env env = info.Env();
  Args args(info, fn, 7);
  const uint64_t N = args.size(2, "N"), D = args.size(3, "D");
  if (N == 0 || D == 0) args.fail("E_SHAPE", "N and D must be at least 1");
  if (N > 0x3FFFFFFFFull) args.fail("E_TOO_LARGE", "N must be below 2^34");
  const double eps = args.finite_number(4, "eps");
  if (eps < 0) args.fail("E_ARG", "eps must be ≥ 0");
  const uint64_t bytes = checked_mul(env, fn, checked_mul(env, fn, N, D, "N * D"), 4, "bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* x = (const float*)cuda_device_arg(args, 0, "x", bytes);
  const float* w = (const float*)cuda_device_arg(args, 1, "weight", D * 4);
  float* out = (float*)cuda_device_arg(args, 5, "out", bytes);
  float* rstd = (float*)cuda_device_arg(args, 6, "rstd", N * 4);
  apart(args, out, bytes, x, bytes, "out", "x");
  apart(args, rstd, N * 4, x, bytes, "rstd", "x");
  apart(args, rstd, N * 4, out, bytes, "rstd", "out");
  cuda_check(env, fn, "kernel launch", nn_rmsnorm_launch(x, w, (int64_t)N, (int64_t)D, eps, out, rstd, stream));
  return env.Undefined();
}

// Bytes of cudaNnRmsnormBackward's work buffer: f32 [min(N, 64), D] (the dWeight partials).
static uint64_t rmsnorm_work_bytes(Napi::Env env, const char* fn, uint64_t N, uint64_t D) {
  return checked_mul(env, fn, checked_mul(env, fn, (uint64_t)nnk::rmsnorm_parts((int64_t)N), D, "parts * D"), 4, "work bytes");
}

// cudaNnRmsnormBackward(dOut, x, weight, rstd, N, D, dx, dWeight, work)
// -> dx: f32 [N, D] (overwritten), dWeight: f32 [D] +=; work: f32 [min(N, 64) · D] scratch.
Napi::Value CudaNnRmsnormBackward(const Napi::CallbackInfo& info) {
  const char* fn = "cudaNnRmsnormBackward";
  Napi::Env env = info.Env();
  Args args(info, fn, 9);
  const uint64_t N = args.size(4, "N"), D = args.size(5, "D");
  if (N == 0 || D == 0) args.fail("E_SHAPE", "N and D must be at least 1");
  if (N > 0x3FFFFFFFFull) args.fail("E_TOO_LARGE", "N must be below 2^34");
  if (D > 65535ull * 32) args.fail("E_TOO_LARGE", "D must be at most 65535 * 32");
  const uint64_t bytes = checked_mul(env, fn, checked_mul(env, fn, N, D, "N * D"), 4, "bytes");
  const uint64_t work_bytes = rmsnorm_work_bytes(env, fn, N, D);
  cudaStream_t stream = cuda_stream(env, fn);
  const float* g = (const float*)cuda_device_arg(args, 0, "dOut", bytes);
  const float* x = (const float*)cuda_device_arg(args, 1, "x", bytes);
  const float* w = (const float*)cuda_device_arg(args, 2, "weight", D * 4);
  const float* rstd = (const float*)cuda_device_arg(args, 3, "rstd", N * 4);
  float* dx = (float*)cuda_device_arg(args, 6, "dx", bytes);
  float* dw = (float*)cuda_device_arg(args, 7, "dWeight", D * 4);
  float* work = (float*)cuda_device_arg(args, 8, "work", work_bytes);
  apart(args, dx, bytes, g, bytes, "dx", "dOut");
  apart(args, dx, bytes, x, bytes, "dx", "x");
  apart(args, dx, bytes, dw, D * 4, "dx", "dWeight");
  apart(args, work, work_bytes, dw, D * 4, "work", "dWeight");
  cuda_check(env, fn, "kernel launch", nn_rmsnorm_backward_launch(g, x, w, rstd, (int64_t)N, (int64_t)D, dx, dw, work, stream));
  return env.Undefined();
}

// cudaNnRope(x, positions, N, nH, Dh, theta, inverse, out); x: f32 [N, nH, Dh] -> out (may be x)
Napi::Value CudaNnRope(const Napi::CallbackInfo& info) {
  const char* fn = "cudaNnRope";
  Napi::Env env = info.Env();
  Args args(info, fn, 8);
  const uint64_t N = args.size(2, "N"), nH = args.size(3, "nH"), Dh = args.size(4, "Dh");
  if (N == 0 || nH == 0 || Dh == 0) args.fail("E_SHAPE", "N, nH and Dh must be at least 1");
  if (Dh % 2 != 0) args.fail("E_SHAPE", "Dh must be even, got " + std::to_string(Dh));
  const double theta = args.finite_number(5, "theta");
  if (!(theta > 0)) args.fail("E_ARG", "theta must be > 0");
  const bool inverse = args.boolean(6, "inverse");
  const uint64_t bytes = checked_mul(env, fn, checked_mul(env, fn, checked_mul(env, fn, N, nH, "N * nH"), Dh, "N * nH * Dh"), 4, "bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* x = (const float*)cuda_device_arg(args, 0, "x", bytes);
  const int32_t* pos = (const int32_t*)cuda_device_arg(args, 1, "positions", N * 4);
  float* out = (float*)cuda_device_arg(args, 7, "out", bytes);
  same_or_apart(args, out, x, bytes, "out", "x");
  apart(args, out, bytes, pos, N * 4, "out", "positions");
  cuda_check(env, fn, "kernel launch",
             nn_rope_launch(x, pos, (int64_t)N, (int64_t)nH, (int64_t)Dh, theta, inverse, out, cuda_sm_count(), stream));
  return env.Undefined();
}

// The shapes every attention kernel takes as int: grid x = B·nH, grid y = row tiles of at least 8.
static void check_attention_dims(const Args& args, uint64_t B, uint64_t Tq, uint64_t S, uint64_t nH, uint64_t Dh) {
  if (B == 0 || Tq == 0 || S == 0 || nH == 0 || Dh == 0) args.fail("E_SHAPE", "B, Tq, S, nH and Dh must be at least 1");
  if (Dh > 256) args.fail("E_TOO_LARGE", "Dh must be at most 256 on cuda, got " + std::to_string(Dh));
  if (B * nH > 0x7FFFFFFFull) args.fail("E_TOO_LARGE", "B * nH must be below 2^31");
  if (Tq > 65535ull * 8 || S > 0x7FFFFFFFull) args.fail("E_TOO_LARGE", "Tq must be at most 65535 * 8 and S below 2^31");
}

// cudaNnAttention(q, k, v, B, Tq, S, nH, Dh, qOffset, kvLen, scale, out, lse)
// q: f32 [B, Tq, nH, Dh], k, v: f32 [B, S, nH, Dh] (rows ≥ kvLen never read) -> out: [B, Tq, nH, Dh], lse: [B, nH, Tq]
Napi::Value CudaNnAttention(const Napi::CallbackInfo& info) {
  const char* fn = "cudaNnAttention";
  Napi::Env env = info.Env();
  Args args(info, fn, 13);
  const uint64_t B = args.size(3, "B"), Tq = args.size(4, "Tq"), S = args.size(5, "S"), nH = args.size(6, "nH"), Dh = args.size(7, "Dh");
  check_attention_dims(args, B, Tq, S, nH, Dh);
  const uint64_t q_offset = args.size(8, "qOffset"), kv_len = args.size(9, "kvLen");
  if (kv_len < 1 || kv_len > S) args.fail("E_ARG", "kvLen must be in [1, S = " + std::to_string(S) + "], got " + std::to_string(kv_len));
  if (q_offset + Tq > kv_len) args.fail("E_ARG", "qOffset + Tq must be ≤ kvLen");
  const double scale = args.finite_number(10, "scale");
  if (!(scale > 0)) args.fail("E_ARG", "scale must be > 0");
  const uint64_t row = checked_mul(env, fn, nH, Dh, "nH * Dh");
  const uint64_t q_bytes = checked_mul(env, fn, checked_mul(env, fn, B * Tq, row, "B * Tq * nH * Dh"), 4, "q bytes");
  const uint64_t kv_bytes = checked_mul(env, fn, checked_mul(env, fn, checked_mul(env, fn, B, S, "B * S"), row, "B * S * nH * Dh"), 4, "k bytes");
  const uint64_t lse_bytes = checked_mul(env, fn, B * nH, Tq * 4, "lse bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* q = (const float*)cuda_device_arg(args, 0, "q", q_bytes);
  const float* k = (const float*)cuda_device_arg(args, 1, "k", kv_bytes);
  const float* v = (const float*)cuda_device_arg(args, 2, "v", kv_bytes);
  float* out = (float*)cuda_device_arg(args, 11, "out", q_bytes);
  float* lse = (float*)cuda_device_arg(args, 12, "lse", lse_bytes);
  apart(args, out, q_bytes, q, q_bytes, "out", "q");
  apart(args, out, q_bytes, k, kv_bytes, "out", "k");
  apart(args, out, q_bytes, v, kv_bytes, "out", "v");
  apart(args, lse, lse_bytes, out, q_bytes, "lse", "out");
  cuda_check(env, fn, "kernel launch",
             nn_attention_launch(q, k, v, (int)B, (int)Tq, (int)S, (int)nH, (int)Dh, (int)q_offset, (int)kv_len, (float)scale, out, lse, stream));
  return env.Undefined();
}

// cudaNnAttentionBackward(q, k, v, out, lse, dOut, B, T, nH, Dh, scale, dq, dk, dv, work)
// every tensor f32 [B, T, nH, Dh] but lse [B, nH, T]; work: f32 [B · nH · T] scratch (D = dO·O per row).
Napi::Value CudaNnAttentionBackward(const Napi::CallbackInfo& info) {
  const char* fn = "cudaNnAttentionBackward";
  Napi::Env env = info.Env();
  Args args(info, fn, 15);
  const uint64_t B = args.size(6, "B"), T = args.size(7, "T"), nH = args.size(8, "nH"), Dh = args.size(9, "Dh");
  check_attention_dims(args, B, T, T, nH, Dh);
  const double scale = args.finite_number(10, "scale");
  if (!(scale > 0)) args.fail("E_ARG", "scale must be > 0");
  const uint64_t row = checked_mul(env, fn, nH, Dh, "nH * Dh");
  const uint64_t bytes = checked_mul(env, fn, checked_mul(env, fn, B * T, row, "B * T * nH * Dh"), 4, "bytes");
  const uint64_t lse_bytes = checked_mul(env, fn, B * nH, T * 4, "lse bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* q = (const float*)cuda_device_arg(args, 0, "q", bytes);
  const float* k = (const float*)cuda_device_arg(args, 1, "k", bytes);
  const float* v = (const float*)cuda_device_arg(args, 2, "v", bytes);
  const float* o = (const float*)cuda_device_arg(args, 3, "out", bytes);
  const float* lse = (const float*)cuda_device_arg(args, 4, "lse", lse_bytes);
  const float* dout = (const float*)cuda_device_arg(args, 5, "dOut", bytes);
  float* dq = (float*)cuda_device_arg(args, 11, "dq", bytes);
  float* dk = (float*)cuda_device_arg(args, 12, "dk", bytes);
  float* dv = (float*)cuda_device_arg(args, 13, "dv", bytes);
  float* work = (float*)cuda_device_arg(args, 14, "work", lse_bytes);
  // the outputs are written while every input is still read: nothing may overlap
  const void* ins[] = {q, k, v, o, dout};
  const char* in_names[] = {"q", "k", "v", "out", "dOut"};
  float* outs[] = {dq, dk, dv};
  const char* out_names[] = {"dq", "dk", "dv"};
  for (int a = 0; a < 3; a++) {
    for (int b = 0; b < 5; b++) apart(args, outs[a], bytes, ins[b], bytes, out_names[a], in_names[b]);
    for (int b = a + 1; b < 3; b++) apart(args, outs[a], bytes, outs[b], bytes, out_names[a], out_names[b]);
    apart(args, outs[a], bytes, lse, lse_bytes, out_names[a], "lse");
    apart(args, outs[a], bytes, work, lse_bytes, out_names[a], "work");
  }
  for (int b = 0; b < 5; b++) apart(args, work, lse_bytes, ins[b], bytes, "work", in_names[b]);
  apart(args, work, lse_bytes, lse, lse_bytes, "work", "lse");
  cuda_check(env, fn, "kernel launch",
             nn_attention_backward_launch(q, k, v, o, lse, dout, (int)B, (int)T, (int)nH, (int)Dh, (float)scale, dq, dk, dv, work, stream));
  return env.Undefined();
}

// cudaNnSwiglu(gate, up, n, out); all f32 [n]
Napi::Value CudaNnSwiglu(const Napi::CallbackInfo& info) {
  const char* fn = "cudaNnSwiglu";
  Napi::Env env = info.Env();
  Args args(info, fn, 4);
  const uint64_t n = args.size(2, "n");
  const uint64_t bytes = checked_mul(env, fn, n, 4, "bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* gate = (const float*)cuda_device_arg(args, 0, "gate", bytes);
  const float* up = (const float*)cuda_device_arg(args, 1, "up", bytes);
  float* out = (float*)cuda_device_arg(args, 3, "out", bytes);
  same_or_apart(args, out, gate, bytes, "out", "gate");
  same_or_apart(args, out, up, bytes, "out", "up");
  if (n == 0) return env.Undefined();
  cuda_check(env, fn, "kernel launch", nn_swiglu_launch(gate, up, (int64_t)n, out, cuda_sm_count(), stream));
  return env.Undefined();
}

// cudaNnSwigluBackward(gate, up, dOut, n, dGate, dUp); all f32 [n]
Napi::Value CudaNnSwigluBackward(const Napi::CallbackInfo& info) {
  const char* fn = "cudaNnSwigluBackward";
  Napi::Env env = info.Env();
  Args args(info, fn, 6);
  const uint64_t n = args.size(3, "n");
  const uint64_t bytes = checked_mul(env, fn, n, 4, "bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* gate = (const float*)cuda_device_arg(args, 0, "gate", bytes);
  const float* up = (const float*)cuda_device_arg(args, 1, "up", bytes);
  const float* dout = (const float*)cuda_device_arg(args, 2, "dOut", bytes);
  float* dgate = (float*)cuda_device_arg(args, 4, "dGate", bytes);
  float* dup = (float*)cuda_device_arg(args, 5, "dUp", bytes);
  // each element's three inputs are read before its two outputs are written
  same_or_apart(args, dgate, gate, bytes, "dGate", "gate");
  same_or_apart(args, dgate, up, bytes, "dGate", "up");
  same_or_apart(args, dgate, dout, bytes, "dGate", "dOut");
  same_or_apart(args, dup, gate, bytes, "dUp", "gate");
  same_or_apart(args, dup, up, bytes, "dUp", "up");
  same_or_apart(args, dup, dout, bytes, "dUp", "dOut");
  apart(args, dgate, bytes, dup, bytes, "dGate", "dUp");
  if (n == 0) return env.Undefined();
  cuda_check(env, fn, "kernel launch", nn_swiglu_backward_launch(gate, up, dout, (int64_t)n, dgate, dup, cuda_sm_count(), stream));
  return env.Undefined();
}

// cudaNnAddScaled(a, b, n, alpha, out); out = a + alpha·b, all f32 [n] (out may be a or b)
Napi::Value CudaNnAddScaled(const Napi::CallbackInfo& info) {
  const char* fn = "cudaNnAddScaled";
  Napi::Env env = info.Env();
  Args args(info, fn, 5);
  const uint64_t n = args.size(2, "n");
  const double alpha = args.finite_number(3, "alpha");
  const uint64_t bytes = checked_mul(env, fn, n, 4, "bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* a = (const float*)cuda_device_arg(args, 0, "a", bytes);
  const float* b = (const float*)cuda_device_arg(args, 1, "b", bytes);
  float* out = (float*)cuda_device_arg(args, 4, "out", bytes);
  same_or_apart(args, out, a, bytes, "out", "a");
  same_or_apart(args, out, b, bytes, "out", "b");
  if (n == 0) return env.Undefined();
  cuda_check(env, fn, "kernel launch", nn_add_scaled_launch(a, b, (int64_t)n, (float)alpha, out, cuda_sm_count(), stream));
  return env.Undefined();
}

// cudaNnSumSquares(x, n, work); x: f32 [n] -> work: f64 [1 + 1024], work[0] = Σ x² (download it).
Napi::Value CudaNnSumSquares(const Napi::CallbackInfo& info) {
  const char* fn = "cudaNnSumSquares";
  Napi::Env env = info.Env();
  Args args(info, fn, 3);
  const uint64_t n = args.size(1, "n");
  const uint64_t bytes = checked_mul(env, fn, n, 4, "bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* x = (const float*)cuda_device_arg(args, 0, "x", bytes);
  double* work = (double*)cuda_device_arg(args, 2, "work", 8 * (1 + nnk::SS_PARTS));
  if (((uintptr_t)work & 7) != 0) args.fail("E_ARG", "work must be 8-byte aligned");
  apart(args, work, 8 * (1 + nnk::SS_PARTS), x, bytes, "work", "x");
  cuda_check(env, fn, "kernel launch", nn_sum_squares_launch(x, (int64_t)n, work, stream));
  return env.Undefined();
}

// cudaNnAdamw(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step); in place on param, m, v
Napi::Value CudaNnAdamw(const Napi::CallbackInfo& info) {
  const char* fn = "cudaNnAdamw";
  Napi::Env env = info.Env();
  Args args(info, fn, 11);
  const uint64_t n = args.size(4, "n");
  const double lr = args.finite_number(5, "lr"), beta1 = args.finite_number(6, "beta1"), beta2 = args.finite_number(7, "beta2");
  const double eps = args.finite_number(8, "eps"), wd = args.finite_number(9, "weightDecay");
  const uint64_t step = args.size(10, "step");
  if (step < 1) args.fail("E_ARG", "step must be ≥ 1");
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) args.fail("E_ARG", "beta1 and beta2 must be in [0, 1)");
  if (!(eps > 0) || lr < 0 || wd < 0) args.fail("E_ARG", "eps must be > 0, lr and weightDecay ≥ 0");
  const uint64_t bytes = checked_mul(env, fn, n, 4, "bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  float* param = (float*)cuda_device_arg(args, 0, "param", bytes);
  const float* grad = (const float*)cuda_device_arg(args, 1, "grad", bytes);
  float* m = (float*)cuda_device_arg(args, 2, "m", bytes);
  float* v = (float*)cuda_device_arg(args, 3, "v", bytes);
  const void* all[] = {param, grad, m, v};
  const char* names[] = {"param", "grad", "m", "v"};
  for (int a = 0; a < 4; a++) {
    for (int b = a + 1; b < 4; b++) apart(args, all[a], bytes, all[b], bytes, names[a], names[b]);
  }
  if (n == 0) return env.Undefined();
  nnk::AdamwArgs a;
  a.beta1 = (float)beta1;
  a.beta2 = (float)beta2;
  a.one_minus_beta1 = (float)(1 - beta1);
  a.one_minus_beta2 = (float)(1 - beta2);
  a.decay = (float)(1 - lr * wd);
  a.step_size = (float)(lr / (1 - std::pow(beta1, (double)step)));
  a.inv_bc2 = (float)(1 / (1 - std::pow(beta2, (double)step)));
  a.eps = (float)eps;
  cuda_check(env, fn, "kernel launch", nn_adamw_launch(param, grad, m, v, (int64_t)n, a, cuda_sm_count(), stream));
  return env.Undefined();
}

// cudaNnSample(logits, uniforms, B, V, temperature, topP, ids); logits: f32 [B, V], uniforms: f32 [B] -> ids: i32 [B]
Napi::Value CudaNnSample(const Napi::CallbackInfo& info) {
  const char* fn = "cudaNnSample";
  Napi::Env env = info.Env();
  Args args(info, fn, 7);
  const uint64_t B = args.size(2, "B"), V = args.size(3, "V");
  if (B == 0 || V == 0) args.fail("E_SHAPE", "B and V must be at least 1");
  if (B > 0x7FFFFFFFull || V > 0x7FFFFFFFull) args.fail("E_TOO_LARGE", "B and V must be below 2^31");
  const double temperature = args.finite_number(4, "temperature"), top_p = args.finite_number(5, "topP");
  if (temperature < 0) args.fail("E_ARG", "temperature must be ≥ 0");
  if (!(top_p > 0 && top_p <= 1)) args.fail("E_ARG", "topP must be in (0, 1]");
  const uint64_t bytes = checked_mul(env, fn, checked_mul(env, fn, B, V, "B * V"), 4, "logits bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* logits = (const float*)cuda_device_arg(args, 0, "logits", bytes);
  const float* u = (const float*)cuda_device_arg(args, 1, "uniforms", B * 4);
  int32_t* ids = (int32_t*)cuda_device_arg(args, 6, "ids", B * 4);
  apart(args, ids, B * 4, logits, bytes, "ids", "logits");
  apart(args, ids, B * 4, u, B * 4, "ids", "uniforms");
  cuda_check(env, fn, "kernel launch", nn_sample_launch(logits, u, (int64_t)B, (int64_t)V, temperature, top_p, ids, stream));
  return env.Undefined();
}

}  // namespace hp
