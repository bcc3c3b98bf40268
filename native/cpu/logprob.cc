// CPU log-prob kernels: per-token log-probs of the chosen tokens (with the row's logsumexp and,
// optionally, its entropy), their backward, and the KL estimators. Same semantics as
// src/reference/logprob.ts; f32 arithmetic with per-row sums merged in f64, so they agree with the
// reference (f64) to f32 rounding, not bit for bit.
//
// Forward: ONE pass over each row from memory. The row is walked a chunk of CHUNK entries at a time;
// each chunk is swept twice while it sits in L1 (its max, then Σ exp(x − max) and Σ exp(x − max)·(x − max)),
// and its (max, sum, wsum) is merged into the row's running state by rescaling the side with the
// smaller max — the online logsumexp. Rows run in parallel on the thread pool.
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/check.h"
#include "common/entry_points.h"
#include "common/grpo_rules.h"
#include "common/promise_worker.h"
#include "common/simd.h"
#include "common/threadpool.h"
#include "cpu/logprob_rows.h"

namespace hp {

// ---------------------------------------------------------------- KL estimators

static void kl_range(const float* logp, const float* ref, int64_t i0, int64_t i1, int estimator, float* kl, float* dlogp) {
  for (int64_t i = i0; i < i1; i++) kl_estimate((double)ref[i] - (double)logp[i], estimator, kl + i, dlogp + i);
}

// ---------------------------------------------------------------- entry points

// cpuLogprobForward(logits: Float32Array | Uint16Array (bf16 bits), targets: Int32Array, N, V,
//                   temperature, logp: Float32Array, lse: Float32Array, entropy: Float32Array | null): Promise<void>
// logits [N, V], targets [N] -> logp, lse, entropy [N]
Napi::Value CpuLogprobForward(const Napi::CallbackInfo& info) {
  Args args(info, "cpuLogprobForward", 8);
  const uint64_t N = args.size(2, "N"), V = args.size(3, "V");
  if (N == 0 || V == 0) args.fail("E_SHAPE", "N and V must be at least 1");
  const uint64_t n = checked_mul(info.Env(), "cpuLogprobForward", N, V, "N * V");
  HostView z = args.typed_array_either(0, "logits", napi_float32_array, napi_uint16_array, " (bf16 bits)", n);
  HostView y = args.typed_array(1, "targets", napi_int32_array, N);
  const float T = args.temperature(4);
  HostView logp = args.typed_array(5, "logp", napi_float32_array, N);
  HostView lse = args.typed_array(6, "lse", napi_float32_array, N);
  const bool want_entropy = !info[7].IsNull() && !info[7].IsUndefined();
  HostView ent = want_entropy ? args.typed_array(7, "entropy", napi_float32_array, N) : HostView{};
  const bool bf16 = z.type == napi_uint16_array;
  const void* zp = z.data;
  const int32_t* yp = (const int32_t*)y.data;
  float *lp = (float*)logp.data, *ls = (float*)lse.data, *ep = want_entropy ? (float*)ent.data : nullptr;
  Napi::Object keep_ent = want_entropy ? ent.value : logp.value;
  auto* worker = new PromiseWorker(info.Env(), "cpuLogprobForward", {z.value, y.value, logp.value, lse.value, keep_ent}, [=](double*) {
    thread_pool().parallel_for(0, (int64_t)N, row_grain((int64_t)V), [=](int64_t r0, int64_t r1) {
      if (bf16) logprob_forward_rows((const uint16_t*)zp, yp, r0, r1, (int64_t)V, T, lp, ls, ep);
      else logprob_forward_rows((const float*)zp, yp, r0, r1, (int64_t)V, T, lp, ls, ep);
    });
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// cpuLogprobBackward(logits, targets: Int32Array, lse: Float32Array, g: Float32Array, N, V, temperature,
//                    dlogits: Float32Array): Promise<void>
// dlogits [N, V] = (onehot(y) − exp(z/T − lse)) · g / T; dlogits may be logits itself (f32).
Napi::Value CpuLogprobBackward(const Napi::CallbackInfo& info) {
  Args args(info, "cpuLogprobBackward", 8);
  const uint64_t N = args.size(4, "N"), V = args.size(5, "V");
  if (N == 0 || V == 0) args.fail("E_SHAPE", "N and V must be at least 1");
  const uint64_t n = checked_mul(info.Env(), "cpuLogprobBackward", N, V, "N * V");
  HostView z = args.typed_array_either(0, "logits", napi_float32_array, napi_uint16_array, " (bf16 bits)", n);
  HostView y = args.typed_array(1, "targets", napi_int32_array, N);
  HostView lse = args.typed_array(2, "lse", napi_float32_array, N);
  HostView g = args.typed_array(3, "g", napi_float32_array, N);
  const float T = args.temperature(6);
  HostView d = args.typed_array(7, "dlogits", napi_float32_array, n);
  const bool bf16 = z.type == napi_uint16_array;
  const void* zp = z.data;
  const int32_t* yp = (const int32_t*)y.data;
  const float *lp = (const float*)lse.data, *gp = (const float*)g.data;
  float* dp = (float*)d.data;
  auto* worker = new PromiseWorker(info.Env(), "cpuLogprobBackward", {z.value, y.value, lse.value, g.value, d.value}, [=](double*) {
    thread_pool().parallel_for(0, (int64_t)N, row_grain((int64_t)V), [=](int64_t r0, int64_t r1) {
      if (bf16) logprob_backward_rows((const uint16_t*)zp, yp, lp, gp, r0, r1, (int64_t)V, T, dp);
      else logprob_backward_rows((const float*)zp, yp, lp, gp, r0, r1, (int64_t)V, T, dp);
    });
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// cpuKl(logp: Float32Array, ref: Float32Array, n, estimator: 0 k1 | 1 k2 | 2 k3 | 3 k3_clamped,
//       kl: Float32Array, dlogp: Float32Array): Promise<void>
Napi::Value CpuKl(const Napi::CallbackInfo& info) {
  Args args(info, "cpuKl", 6);
  const uint64_t n = args.size(2, "n");
  HostView logp = args.typed_array(0, "logp", napi_float32_array, n);
  HostView ref = args.typed_array(1, "ref", napi_float32_array, n);
  const uint64_t est = args.size(3, "estimator");
  if (est > 3) args.fail("E_ARG", "estimator must be 0 (k1), 1 (k2), 2 (k3) or 3 (k3_clamped), got " + std::to_string(est));
  HostView kl = args.typed_array(4, "kl", napi_float32_array, n);
  HostView dl = args.typed_array(5, "dlogp", napi_float32_array, n);
  const float *lp = (const float*)logp.data, *rp = (const float*)ref.data;
  float *kp = (float*)kl.data, *dp = (float*)dl.data;
  auto* worker = new PromiseWorker(info.Env(), "cpuKl", {logp.value, ref.value, kl.value, dl.value}, [=](double*) {
    thread_pool().parallel_for(0, (int64_t)n, 16384, [=](int64_t i0, int64_t i1) { kl_range(lp, rp, i0, i1, (int)est, kp, dp); });
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

}  // namespace hp
