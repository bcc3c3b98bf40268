// CUDA GRPO entry points: cudaGrpoAdvantages, cudaGrpoLoss, cudaGrpoFusedTokenLoss, cudaGrpoFusedWeights,
// cudaGrpoFusedStatSums. The cpu entry
// points' arguments (native/cpu/grpo.cc) as device pointers (0n for none) plus dtype flags; every size
// checked against the allocation table before a launch on the addon's stream; they return at once.
// Kernels: native/cuda/grpo.cuh, native/cuda/logprob.cuh (the fused kernel).
#include <cmath>
#include <string>

#include "common/entry_points.h"
#include "cuda/cuda_common.h"
#include "cuda/grpo.cuh"
#include "cuda/logprob.cuh"

namespace hp {

// cudaGrpoAdvantages(rewards, B, groupSize, scale: 0 group | 1 batch | 2 none, eps, out); f32 [B]
Napi::Value CudaGrpoAdvantages(const Napi::CallbackInfo& info) {
  const char* fn = "cudaGrpoAdvantages";
  Napi::Env env = info.Env();
  Args args(info, fn, 6);
  const uint64_t B = args.size(1, "B"), G = args.size(2, "groupSize"), scale = args.size(3, "scale");
  if (G == 0 || B % G != 0) args.fail("E_SHAPE", "groupSize must divide B (" + std::to_string(B) + "), got " + std::to_string(G));
  if (scale > 2) args.fail("E_ARG", "scale must be 0 (group), 1 (batch) or 2 (none), got " + std::to_string(scale));
  if ((scale == 0 && G < 2) || (scale == 1 && B < 2)) args.fail("E_SHAPE", "an unbiased std needs at least 2 rewards");
  const double eps = args.finite_number(4, "eps");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* r = (const float*)cuda_device_arg(args, 0, "rewards", B * 4);
  float* out = (float*)cuda_device_arg(args, 5, "out", B * 4);
  if (B == 0) return env.Undefined();
  cuda_check(env, fn, "kernel launch", grpo_advantages_launch(r, (int64_t)B, (int64_t)G, (int)scale, eps, out, stream));
  return env.Undefined();
}

// cudaGrpoLoss(logp, oldLogp, refLogp | 0n, advantages, mask, maskIsU8, B, T, epsLow, epsHigh,
//              delta (0 = none), beta, sequenceLevel, agg: 0 grpo | 1 bnpo | 2 dr_grpo | 3 dapo, maxLen,
//              globalTokens (0 = the mask's count), dlogp, work)
// logp, oldLogp, refLogp, mask: [B, T], advantages: f32 [B] -> dlogp: f32 [B, T];
// work: f64 [6 + 5·B] (u8 bytes), work[0..4) <- loss, clipFraction, meanKl, meanRatio (the rest is scratch).
Napi::Value CudaGrpoLoss(const Napi::CallbackInfo& info) {
  const char* fn = "cudaGrpoLoss";
  Napi::Env env = info.Env();
  Args args(info, fn, 18);
  const bool mask_u8 = args.boolean(5, "maskIsU8");
  const uint64_t B = args.size(6, "B"), T = args.size(7, "T");
  if (B == 0 || T == 0) args.fail("E_SHAPE", "B and T must be at least 1");
  if (B > 0x7FFFFFFFull) args.fail("E_TOO_LARGE", "B must be below 2^31");
  const uint64_t n = checked_mul(env, fn, B, T, "B * T");
  const uint64_t bytes = checked_mul(env, fn, n, 4, "bytes");
  gr::LossParams p;
  p.eps_low = args.finite_number(8, "epsLow");
  p.eps_high = args.finite_number(9, "epsHigh");
  p.delta = args.finite_number(10, "delta");
  p.beta = args.finite_number(11, "beta");
  p.sequence_level = args.boolean(12, "sequenceLevel") ? 1 : 0;
  const uint64_t agg = args.size(13, "agg");
  if (agg > 3) args.fail("E_ARG", "agg must be 0..3, got " + std::to_string(agg));
  p.agg = (int)agg;
  p.max_len = args.finite_number(14, "maxLen");
  p.global_tokens = args.finite_number(15, "globalTokens");
  const uint64_t work_bytes = checked_mul(env, fn, (uint64_t)gr::loss_work_doubles((int64_t)B), 8, "work bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* logp = (const float*)cuda_device_arg(args, 0, "logp", bytes);
  const float* old_logp = (const float*)cuda_device_arg(args, 1, "oldLogp", bytes);
  const float* ref_logp = (const float*)cuda_device_arg_or_null(args, 2, "refLogp", bytes);
  const float* adv = (const float*)cuda_device_arg(args, 3, "advantages", B * 4);
  const void* mask = cuda_device_arg(args, 4, "mask", mask_u8 ? n : bytes);
  float* dlogp = (float*)cuda_device_arg(args, 16, "dlogp", bytes);
  double* work = (double*)cuda_device_arg(args, 17, "work", work_bytes);
  if (((uintptr_t)work & 7) != 0) args.fail("E_ARG", "work must be 8-byte aligned");
  if (!ref_logp && p.beta != 0) args.fail("E_ARG", "beta must be 0 without refLogp");
  const cudaError_t err =
      mask_u8 ? grpo_loss_launch(logp, old_logp, ref_logp, adv, (const uint8_t*)mask, (int64_t)B, (int64_t)T, p, dlogp, work, stream)
              : grpo_loss_launch(logp, old_logp, ref_logp, adv, (const float*)mask, (int64_t)B, (int64_t)T, p, dlogp, work, stream);
  cuda_check(env, fn, "kernel launch", err);
  return env.Undefined();
}

template <typename In, typename Out>
static cudaError_t fused_dispatch_mask(const In* z, const int32_t* y, const float* old_logp, const float* ref_logp, const float* adv,
                                       const void* mask, bool mask_u8, const float* w, const lp::FusedParams& p, float* logp, Out* d,
                                       float* stats, cudaStream_t s) {
  if (mask_u8) return grpo_fused_launch(z, y, old_logp, ref_logp, adv, (const uint8_t*)mask, w, p, logp, d, stats, s);
  return grpo_fused_launch(z, y, old_logp, ref_logp, adv, (const float*)mask, w, p, logp, d, stats, s);
}

// cudaGrpoFusedTokenLoss(logits, logitsIsBf16, targets, oldLogp, refLogp | 0n, advantages, mask,
//                        maskIsU8, seqWeight, N, V, T, temperature, epsLow, epsHigh, delta (0 = none),
//                        beta, logp, dlogits, dlogitsIsBf16, stats)
// logits: f32|bf16 [N, V], targets: i32 [N], oldLogp, refLogp: f32 [N], advantages, seqWeight: f32
// [N / T], mask: f32|u8 [N] -> logp: f32 [N], dlogits: f32|bf16 [N, V] (may be the logits when the
// dtypes match), stats: f32 [N, 4].
Napi::Value CudaGrpoFusedTokenLoss(const Napi::CallbackInfo& info) {
  const char* fn = "cudaGrpoFusedTokenLoss";
  Napi::Env env = info.Env();
  Args args(info, fn, 21);
  const bool bf16 = args.boolean(1, "logitsIsBf16");
  const bool mask_u8 = args.boolean(7, "maskIsU8");
  const uint64_t N = args.size(9, "N"), V = args.size(10, "V"), T = args.size(11, "T");
  if (N == 0 || V == 0 || T == 0) args.fail("E_SHAPE", "N, V and T must be at least 1");
  if (N % T != 0) args.fail("E_SHAPE", "T must divide N (" + std::to_string(N) + "), got " + std::to_string(T));
  if (N > 0x0FFFFFFFull) args.fail("E_TOO_LARGE", "N must be below 2^28 (8 CTAs a row)");
  const uint64_t B = N / T;
  const uint64_t n = checked_mul(env, fn, N, V, "N * V");
  const uint64_t z_bytes = checked_mul(env, fn, n, bf16 ? 2 : 4, "logits bytes");
  const bool out_bf16 = args.boolean(19, "dlogitsIsBf16");
  const uint64_t d_bytes = checked_mul(env, fn, n, out_bf16 ? 2 : 4, "dlogits bytes");
  const float temp = args.temperature(12);
  lp::FusedParams p;
  p.N = (int64_t)N;
  p.V = (int64_t)V;
  p.T = (int64_t)T;
  p.inv_t = 1.0f / temp;
  p.eps_low = args.finite_number(13, "epsLow");
  p.eps_high = args.finite_number(14, "epsHigh");
  p.delta = args.finite_number(15, "delta");
  p.beta = args.finite_number(16, "beta");
  cudaStream_t stream = cuda_stream(env, fn);
  const void* z = cuda_device_arg(args, 0, "logits", z_bytes);
  const int32_t* y = (const int32_t*)cuda_device_arg(args, 2, "targets", N * 4);
  const float* old_logp = (const float*)cuda_device_arg(args, 3, "oldLogp", N * 4);
  const float* ref_logp = (const float*)cuda_device_arg_or_null(args, 4, "refLogp", N * 4);
  const float* adv = (const float*)cuda_device_arg(args, 5, "advantages", B * 4);
  const void* mask = cuda_device_arg(args, 6, "mask", mask_u8 ? N : N * 4);
  const float* w = (const float*)cuda_device_arg(args, 8, "seqWeight", B * 4);
  float* logp = (float*)cuda_device_arg(args, 17, "logp", N * 4);
  void* d = cuda_device_arg(args, 18, "dlogits", d_bytes);
  float* stats = (float*)cuda_device_arg(args, 20, "stats", N * 16);
  if (!ref_logp && p.beta != 0) args.fail("E_ARG", "beta must be 0 without refLogp");
  // in place needs the same dtype and the same start: each element is then read before it is written
  const bool overlap = (const char*)d < (const char*)z + z_bytes && (const char*)z < (const char*)d + d_bytes;
  if (overlap && (d != z || bf16 != out_bf16)) args.fail("E_ARG", "dlogits may be the logits themselves (same dtype), and must not overlap them otherwise");
  cudaError_t err;
  if (bf16) {
    const uint16_t* zz = (const uint16_t*)z;
    err = out_bf16 ? fused_dispatch_mask(zz, y, old_logp, ref_logp, adv, mask, mask_u8, w, p, logp, (uint16_t*)d, stats, stream)
                   : fused_dispatch_mask(zz, y, old_logp, ref_logp, adv, mask, mask_u8, w, p, logp, (float*)d, stats, stream);
  } else {
    const float* zz = (const float*)z;
    err = out_bf16 ? fused_dispatch_mask(zz, y, old_logp, ref_logp, adv, mask, mask_u8, w, p, logp, (uint16_t*)d, stats, stream)
                   : fused_dispatch_mask(zz, y, old_logp, ref_logp, adv, mask, mask_u8, w, p, logp, (float*)d, stats, stream);
  }
  cuda_check(env, fn, "kernel launch", err);
  return env.Undefined();
}

// cudaGrpoFusedWeights(mask, maskIsU8, B, T, agg: 0 grpo | 1 bnpo | 2 dr_grpo | 3 dapo, maxLen,
//                      globalTokens (0 = the mask's count), seqWeight, work)
// mask: f32|u8 [B, T] -> seqWeight: f32 [B]; work: f64 [6 + B + 4·64] (u8 bytes) keeps the mask's
// counts for cudaGrpoFusedStatSums (work[4] = masked tokens).
Napi::Value CudaGrpoFusedWeights(const Napi::CallbackInfo& info) {
  const char* fn = "cudaGrpoFusedWeights";
  Napi::Env env = info.Env();
  Args args(info, fn, 9);
  const bool mask_u8 = args.boolean(1, "maskIsU8");
  const uint64_t B = args.size(2, "B"), T = args.size(3, "T"), agg = args.size(4, "agg");
  if (B == 0 || T == 0) args.fail("E_SHAPE", "B and T must be at least 1");
  if (B > 0x7FFFFFFFull) args.fail("E_TOO_LARGE", "B must be below 2^31");
  if (agg > 3) args.fail("E_ARG", "agg must be 0..3, got " + std::to_string(agg));
  const uint64_t n = checked_mul(env, fn, B, T, "B * T");
  const double max_len = args.finite_number(5, "maxLen"), global_tokens = args.finite_number(6, "globalTokens");
  const uint64_t work_bytes = checked_mul(env, fn, (uint64_t)gr::fused_work_doubles((int64_t)B), 8, "work bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const void* mask = cuda_device_arg(args, 0, "mask", mask_u8 ? n : checked_mul(env, fn, n, 4, "mask bytes"));
  float* w = (float*)cuda_device_arg(args, 7, "seqWeight", B * 4);
  double* work = (double*)cuda_device_arg(args, 8, "work", work_bytes);
  if (((uintptr_t)work & 7) != 0) args.fail("E_ARG", "work must be 8-byte aligned");
  const cudaError_t err =
      mask_u8 ? grpo_fused_weights_launch((const uint8_t*)mask, (int64_t)B, (int64_t)T, (int)agg, max_len, global_tokens, w, work, stream)
              : grpo_fused_weights_launch((const float*)mask, (int64_t)B, (int64_t)T, (int)agg, max_len, global_tokens, w, work, stream);
  cuda_check(env, fn, "kernel launch", err);
  return env.Undefined();
}

// cudaGrpoFusedStatSums(stats, N, B, work): stats f32 [N, 4] -> work[0..4) (f64) = its column sums;
// work as given to cudaGrpoFusedWeights (B sequences).
Napi::Value CudaGrpoFusedStatSums(const Napi::CallbackInfo& info) {
  const char* fn = "cudaGrpoFusedStatSums";
  Napi::Env env = info.Env();
  Args args(info, fn, 4);
  const uint64_t N = args.size(1, "N"), B = args.size(2, "B");
  if (B == 0 || B > 0x7FFFFFFFull) args.fail("E_SHAPE", "B must be in [1, 2^31)");
  const uint64_t work_bytes = checked_mul(env, fn, (uint64_t)gr::fused_work_doubles((int64_t)B), 8, "work bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const float* stats = (const float*)cuda_device_arg(args, 0, "stats", checked_mul(env, fn, N, 16, "stats bytes"));
  double* work = (double*)cuda_device_arg(args, 3, "work", work_bytes);
  if (((uintptr_t)work & 7) != 0 || ((uintptr_t)stats & 15) != 0) args.fail("E_ARG", "work must be 8-byte and stats 16-byte aligned");
  cuda_check(env, fn, "kernel launch", grpo_fused_sums_launch(stats, (int64_t)N, (int64_t)B, work, stream));
  return env.Undefined();
}

}  // namespace hp
