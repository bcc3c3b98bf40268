// CUDA log-prob entry points: cudaLogprobForward, cudaLogprobBackward, cudaKl. The cpu entry points'
// arguments (native/cpu/logprob.cc) as device pointers, plus the logits' dtype flag. Every size is
// checked against the allocation table before a launch on the addon's stream; they return at once.
// Kernels: native/cuda/logprob.cuh (log-probs), native/cuda/grpo.cuh (KL).
#include <cmath>
#include <string>

#include "common/entry_points.h"
#include "cuda/cuda_common.h"
#include "cuda/grpo.cuh"
#include "cuda/logprob.cuh"

namespace hp {

// cudaLogprobForward(logits, logitsIsBf16, targets, N, V, temperature, logp, lse, entropy | 0n)
// logits: f32|bf16 [N, V], targets: i32 [N] -> logp, lse, entropy: f32 [N]
Napi::Value CudaLogprobForward(const Napi::CallbackInfo& info) {
  const char* fn = "cudaLogprobForward";
  Napi::Env env = info.Env();
  Args args(info, fn, 9);
  const bool bf16 = args.boolean(1, "logitsIsBf16");
  const uint64_t N = args.size(3, "N"), V = args.size(4, "V");
  if (N == 0 || V == 0) args.fail("E_SHAPE", "N and V must be at least 1");
  const uint64_t n = checked_mul(env, fn, N, V, "N * V");
  const uint64_t z_bytes = checked_mul(env, fn, n, bf16 ? 2 : 4, "logits bytes");
  const float T = args.temperature(5);
  cudaStream_t stream = cuda_stream(env, fn);
  const void* z = cuda_device_arg(args, 0, "logits", z_bytes);
  const int32_t* y = (const int32_t*)cuda_device_arg(args, 2, "targets", N * 4);
  float* logp = (float*)cuda_device_arg(args, 6, "logp", N * 4);
  float* lse = (float*)cuda_device_arg(args, 7, "lse", N * 4);
  float* ent = (float*)cuda_device_arg_or_null(args, 8, "entropy", N * 4);
  const cudaError_t err = bf16 ? logprob_forward_launch((const uint16_t*)z, y, (int64_t)N, (int64_t)V, T, logp, lse, ent, stream)
                               : logprob_forward_launch((const float*)z, y, (int64_t)N, (int64_t)V, T, logp, lse, ent, stream);
  cuda_check(env, fn, "kernel launch", err);
  return env.Undefined();
}

// cudaLogprobBackward(logits, logitsIsBf16, targets, lse, g, N, V, temperature, dlogits)
// dlogits: f32 [N, V] = (onehot(y) − exp(z/T − lse)) · g / T; dlogits may be the logits (f32 only).
Napi::Value CudaLogprobBackward(const Napi::CallbackInfo& info) {
  const char* fn = "cudaLogprobBackward";
  Napi::Env env = info.Env();
  Args args(info, fn, 9);
  const bool bf16 = args.boolean(1, "logitsIsBf16");
  const uint64_t N = args.size(5, "N"), V = args.size(6, "V");
  if (N == 0 || V == 0) args.fail("E_SHAPE", "N and V must be at least 1");
  const uint64_t n = checked_mul(env, fn, N, V, "N * V");
  const uint64_t z_bytes = checked_mul(env, fn, n, bf16 ? 2 : 4, "logits bytes");
  const uint64_t d_bytes = checked_mul(env, fn, n, 4, "dlogits bytes");
  const float T = args.temperature(7);
  cudaStream_t stream = cuda_stream(env, fn);
  const void* z = cuda_device_arg(args, 0, "logits", z_bytes);
  const int32_t* y = (const int32_t*)cuda_device_arg(args, 2, "targets", N * 4);
  const float* lse = (const float*)cuda_device_arg(args, 3, "lse", N * 4);
  const float* g = (const float*)cuda_device_arg(args, 4, "g", N * 4);
  float* d = (float*)cuda_device_arg(args, 8, "dlogits", d_bytes);
  // in place only over f32 logits: bf16 rows are half as long, so writes would pass the reads
  if (bf16 && (const char*)d < (const char*)z + z_bytes && (const char*)z < (const char*)d + d_bytes) {
    args.fail("E_ARG", "dlogits (f32) must not overlap bf16 logits");
  }
  const cudaError_t err = bf16 ? logprob_backward_launch((const uint16_t*)z, y, lse, g, (int64_t)N, (int64_t)V, T, d, stream)
                               : logprob_backward_launch((const float*)z, y, lse, g, (int64_t)N, (int64_t)V, T, d, stream);
  cuda_check(env, fn, "kernel launch", err);
  return env.Undefined();
}

// cudaKl(logp, ref, n, estimator: 0 k1 | 1 k2 | 2 k3 | 3 k3_clamped, kl, dlogp); all f32 [n]
Napi::Value CudaKl(const Napi::CallbackInfo& info) {
  const char* fn = "cudaKl";
  Napi::Env env = info.Env();
  Args args(info, fn, 6);
  const uint64_t n = args.size(2, "n");
  const uint64_t est = args.size(3, "estimator");
  if (est > 3) args.fail("E_ARG", "estimator must be 0 (k1), 1 (k2), 2 (k3) or 3 (k3_clamped), got " + std::to_string(est));
  const uint64_t bytes = checked_mul(env, fn, n, 4, "bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* logp = (const float*)cuda_device_arg(args, 0, "logp", bytes);
  const float* ref = (const float*)cuda_device_arg(args, 1, "ref", bytes);
  float* kl = (float*)cuda_device_arg(args, 4, "kl", bytes);
  float* dlogp = (float*)cuda_device_arg(args, 5, "dlogp", bytes);
  cuda_check(env, fn, "kernel launch", kl_launch(logp, ref, (int64_t)n, (int)est, kl, dlogp, stream));
  return env.Undefined();
}

}  // namespace hp
