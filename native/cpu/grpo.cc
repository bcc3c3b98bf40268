// CPU GRPO kernels: group advantages and the clipped policy loss with its per-token gradient. The
// same f64 arithmetic as src/reference/grpo.ts (outputs rounded to f32 once), sequences in parallel
// on the thread pool, per-sequence partial sums added in order (deterministic).
#include <stdint.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/entry_points.h"
#include "common/grpo_rules.h"
#include "common/promise_worker.h"
#include "common/threadpool.h"

namespace hp {

enum AdvScale { ADV_GROUP = 0, ADV_BATCH = 1, ADV_NONE = 2 };
enum Agg { AGG_GRPO = 0, AGG_BNPO = 1, AGG_DR_GRPO = 2, AGG_DAPO = 3 };

// rewards [B] -> out [B], groups of G consecutive rewards; an all-equal group gets exactly 0
static void grpo_advantages(const float* r, int64_t B, int64_t G, int scale, double eps, float* out) {
  double batch_std = NAN;
  if (scale == ADV_BATCH) {
    double sum = 0, ss = 0;
    for (int64_t i = 0; i < B; i++) sum += r[i];
    const double mean = sum / B;
    for (int64_t i = 0; i < B; i++) ss += (r[i] - mean) * (r[i] - mean);
    batch_std = std::sqrt(ss / (B - 1));
  }
  for (int64_t g0 = 0; g0 < B; g0 += G) group_advantages(r, g0, G, scale, eps, batch_std, out);
}

struct LossParams {
  double eps_low, eps_high, delta, beta;  // delta <= 0: no two-sided clip
  bool sequence_level;
  int agg;
  double max_len, global_tokens;  // global_tokens <= 0: the mask's own count
};

struct SeqSums {
  double loss = 0, clipped = 0, kl = 0, ratio = 0;
};

template <typename Mask>
static bool masked(const Mask* m, int64_t i) { return m[i] != 0; }

// One sequence b: its tokens' loss terms and dlogp (see src/reference/grpo.ts for every rule).
template <typename Mask>
static SeqSums grpo_loss_sequence(const float* logp, const float* old_logp, const float* ref_logp, float A, const Mask* mask,
                                  int64_t b, int64_t T, double n_b, double w, const LossParams& p, float* dlogp,
                                  std::vector<double>& row_grad) {
  SeqSums sums;
  const int64_t row = b * T;
  double seq_log_ratio = 0;
  if (p.sequence_level && n_b > 0) {
    for (int64_t t = 0; t < T; t++) if (masked(mask, row + t)) seq_log_ratio += (double)logp[row + t] - old_logp[row + t];
    seq_log_ratio /= n_b;
  }
  double seq_grad = 0;
  for (int64_t t = 0; t < T; t++) {
    const int64_t i = row + t;
    row_grad[t] = 0;
    if (!masked(mask, i)) continue;
    const double log_ratio = p.sequence_level ? seq_log_ratio : (double)logp[i] - old_logp[i];
    const TokenTerm k = token_term(log_ratio, logp[i], ref_logp != nullptr, ref_logp ? ref_logp[i] : 0.0, A, p.eps_low, p.eps_high, p.delta, p.beta);
    const double g_policy = k.g_policy, g_kl = k.g_kl;
    sums.kl += k.k3;
    sums.loss += w * k.l;
    if (k.clipped) sums.clipped += 1;
    sums.ratio += k.rho;
    if (!p.sequence_level) row_grad[t] = w * (g_policy + g_kl);
    else {
      seq_grad += w * g_policy;
      row_grad[t] = w * g_kl;
    }
  }
  if (p.sequence_level && n_b > 0) {
    for (int64_t t = 0; t < T; t++) if (masked(mask, row + t)) row_grad[t] += seq_grad / n_b;
  }
  for (int64_t t = 0; t < T; t++) dlogp[row + t] = (float)row_grad[t];
  return sums;
}

// -> result[0..4) = loss, clipFraction, meanKl, meanRatio
template <typename Mask>
static void grpo_loss(const float* logp, const float* old_logp, const float* ref_logp, const float* adv, const Mask* mask,
                      int64_t B, int64_t T, const LossParams& p, float* dlogp, double* result) {
  std::vector<double> n(B, 0);
  double total = 0, non_empty = 0;
  for (int64_t b = 0; b < B; b++) {
    for (int64_t t = 0; t < T; t++) if (masked(mask, b * T + t)) n[b] += 1;
    total += n[b];
    if (n[b] > 0) non_empty += 1;
  }
  const double global = p.global_tokens > 0 ? p.global_tokens : total;
  auto weight = [&](int64_t b) -> double {
    switch (p.agg) {
      case AGG_GRPO: return n[b] > 0 ? 1 / (n[b] * non_empty) : 0;
      case AGG_BNPO: return total > 0 ? 1 / total : 0;
      case AGG_DR_GRPO: return 1 / (B * p.max_len);
      default: return global > 0 ? 1 / global : 0;
    }
  };
  std::vector<SeqSums> sums(B);
  thread_pool().parallel_for(0, B, std::max<int64_t>(1, 4096 / std::max<int64_t>(T, 1)), [&](int64_t b0, int64_t b1) {
    std::vector<double> row_grad(T);
    for (int64_t b = b0; b < b1; b++) sums[b] = grpo_loss_sequence(logp, old_logp, ref_logp, adv[b], mask, b, T, n[b], weight(b), p, dlogp, row_grad);
  });
  SeqSums all;
  for (const SeqSums& s : sums) {
    all.loss += s.loss;
    all.clipped += s.clipped;
    all.kl += s.kl;
    all.ratio += s.ratio;
  }
  const auto per_token = [&](double x) { return total > 0 ? x / total : 0.0; };
  result[0] = all.loss;
  result[1] = per_token(all.clipped);
  result[2] = ref_logp ? per_token(all.kl) : 0;
  result[3] = per_token(all.ratio);
}

// cpuGrpoAdvantages(rewards: Float32Array, B, groupSize, scale: 0 group | 1 batch | 2 none, eps, out: Float32Array): Promise<void>
Napi::Value CpuGrpoAdvantages(const Napi::CallbackInfo& info) {
  Args args(info, "cpuGrpoAdvantages", 6);
  const uint64_t B = args.size(1, "B"), G = args.size(2, "groupSize"), scale = args.size(3, "scale");
  if (G == 0 || B % G != 0) args.fail("E_SHAPE", "groupSize must divide B (" + std::to_string(B) + "), got " + std::to_string(G));
  if (scale > 2) args.fail("E_ARG", "scale must be 0 (group), 1 (batch) or 2 (none), got " + std::to_string(scale));
  if ((scale == ADV_GROUP && G < 2) || (scale == ADV_BATCH && B < 2)) args.fail("E_SHAPE", "an unbiased std needs at least 2 rewards");
  HostView r = args.typed_array(0, "rewards", napi_float32_array, B);
  const double eps = args.finite_number(4, "eps");
  HostView out = args.typed_array(5, "out", napi_float32_array, B);
  const float* rp = (const float*)r.data;
  float* op = (float*)out.data;
  auto* worker = new PromiseWorker(info.Env(), "cpuGrpoAdvantages", {r.value, out.value}, [=](double*) {
    grpo_advantages(rp, (int64_t)B, (int64_t)G, (int)scale, eps, op);
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// cpuGrpoLoss(logp, oldLogp, refLogp | null, advantages, mask: Float32Array | Uint8Array, B, T,
//             epsLow, epsHigh, delta (0 = none), beta, sequenceLevel: boolean, agg: 0 grpo | 1 bnpo |
//             2 dr_grpo | 3 dapo, maxLen, globalTokens (0 = the mask's count), dlogp: Float32Array,
//             result: Float64Array(4) <- loss, clipFraction, meanKl, meanRatio): Promise<void>
Napi::Value CpuGrpoLoss(const Napi::CallbackInfo& info) {
  Args args(info, "cpuGrpoLoss", 17);
  const uint64_t B = args.size(5, "B"), T = args.size(6, "T");
  const uint64_t n = checked_mul(info.Env(), "cpuGrpoLoss", B, T, "B * T");
  HostView logp = args.typed_array(0, "logp", napi_float32_array, n);
  HostView old_logp = args.typed_array(1, "oldLogp", napi_float32_array, n);
  const bool has_ref = !info[2].IsNull() && !info[2].IsUndefined();
  HostView ref_logp = has_ref ? args.typed_array(2, "refLogp", napi_float32_array, n) : HostView{};
  HostView adv = args.typed_array(3, "advantages", napi_float32_array, B);
  HostView mask = args.typed_array(4, "mask");
  if (mask.type != napi_float32_array && mask.type != napi_uint8_array) {
    args.fail("E_ARG", std::string("mask must be a Float32Array or a Uint8Array, got a ") + typed_array_name(mask.type));
  }
  args.check_length(mask, "mask", n);
  LossParams p;
  p.eps_low = args.finite_number(7, "epsLow");
  p.eps_high = args.finite_number(8, "epsHigh");
  p.delta = args.finite_number(9, "delta");
  p.beta = args.finite_number(10, "beta");
  p.sequence_level = args.boolean(11, "sequenceLevel");
  const uint64_t agg = args.size(12, "agg");
  if (agg > 3) args.fail("E_ARG", "agg must be 0..3, got " + std::to_string(agg));
  p.agg = (int)agg;
  p.max_len = args.finite_number(13, "maxLen");
  p.global_tokens = args.finite_number(14, "globalTokens");
  if (has_ref == false && p.beta != 0) args.fail("E_ARG", "beta must be 0 without refLogp");
  HostView dlogp = args.typed_array(15, "dlogp", napi_float32_array, n);
  HostView result = args.typed_array(16, "result", napi_float64_array, 4);
  const float *lp = (const float*)logp.data, *olp = (const float*)old_logp.data, *ap = (const float*)adv.data;
  const float* rlp = has_ref ? (const float*)ref_logp.data : nullptr;
  const void* mp = mask.data;
  const bool mask_u8 = mask.type == napi_uint8_array;
  float* dp = (float*)dlogp.data;
  double* res = (double*)result.data;
  Napi::Object keep_ref = has_ref ? ref_logp.value : logp.value;
  auto* worker = new PromiseWorker(info.Env(), "cpuGrpoLoss", {logp.value, old_logp.value, keep_ref, adv.value, mask.value, dlogp.value, result.value},
                                   [=](double*) {
                                     if (mask_u8) grpo_loss(lp, olp, rlp, ap, (const uint8_t*)mp, (int64_t)B, (int64_t)T, p, dp, res);
                                     else grpo_loss(lp, olp, rlp, ap, (const float*)mp, (int64_t)B, (int64_t)T, p, dp, res);
                                     return std::string();
                                   });
  worker->Queue();
  return worker->promise();
}

}  // namespace hp
