// CPU GRPO kernels: group advantages and the clipped policy loss with its per-token gradient. The
// same f64 arithmetic as src/reference/grpo.ts (outputs rounded to f32 once), sequences in parallel
// on the thread pool, per-sequence partial sums added in order (deterministic). And the fused
// token-level kernel (GrpoKernels.fusedTokenLoss): per row of logits, the log-prob row kernels of
// cpu/logprob_rows.h around the token term of common/grpo_rules.h, the row's second sweep hitting
// the cache.
#include <stdint.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/entry_points.h"
#include "common/grpo_rules.h"
#include "common/promise_worker.h"
#include "common/threadpool.h"
#include "cpu/logprob_rows.h"

namespace hp {

enum AdvScale { ADV_GROUP = 0, ADV_BATCH = 1, ADV_NONE = 2 };

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
  auto weight = [&](int64_t b) { return aggregation_weight(p.agg, n[b], total, non_empty, B, p.max_len, p.global_tokens); };
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
  HostView mask = args.typed_array_either(4, "mask", napi_float32_array, napi_uint8_array, "", n);
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

// ---------------------------------------------------------------- fused token-level loss

struct FusedParams {
  int64_t N, V, T;
  float temperature;
  double eps_low, eps_high, delta, beta;  // delta <= 0: none
};

// f32 value -> bf16 bits, round to nearest even; NaN stays a quiet NaN (src/dtype.ts)
static inline uint16_t fused_bf16_rne(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// logits [N, V] (f32 or bf16 bits), rows t of sequence b = t / T -> logp [N], dlogits [N, V] (f32, or
// bf16 bits through a row of f32 scratch; may be the logits themselves), stats [N, 4]. A row whose
// mask is 0 is never read: logp 0, dlogits 0, stats 0. Rows in parallel; each row independent.
template <typename In, typename Mask>
static void grpo_fused_rows(const In* z, const int32_t* y, const float* old_logp, const float* ref_logp, const float* adv,
                            const Mask* mask, const float* seq_w, const FusedParams& p, int64_t r0, int64_t r1, float* logp,
                            void* dlogits, bool out_bf16, float* stats, std::vector<float>& scratch) {
  const int64_t V = p.V;
  for (int64_t t = r0; t < r1; t++) {
    float* st = stats + 4 * t;
    if (mask[t] == 0) {
      logp[t] = 0;
      if (out_bf16) memset((uint16_t*)dlogits + t * V, 0, (size_t)V * 2);
      else memset((float*)dlogits + t * V, 0, (size_t)V * 4);
      st[0] = st[1] = st[2] = st[3] = 0;
      continue;
    }
    const In* row = z + t * V;
    float lse = 0;
    logprob_forward_rows(row, y + t, 0, 1, V, p.temperature, logp + t, &lse, nullptr);
    const int64_t b = t / p.T;
    const double w = seq_w[b];
    const TokenTerm k = token_term((double)logp[t] - old_logp[t], logp[t], ref_logp != nullptr, ref_logp ? ref_logp[t] : 0.0, adv[b],
                                   p.eps_low, p.eps_high, p.delta, p.beta);
    const float g = (float)(w * (k.g_policy + k.g_kl));
    if (out_bf16) {
      logprob_backward_rows(row, y + t, &lse, &g, 0, 1, V, p.temperature, scratch.data());
      uint16_t* out = (uint16_t*)dlogits + t * V;
      for (int64_t v = 0; v < V; v++) out[v] = fused_bf16_rne(scratch[v]);
    } else {
      logprob_backward_rows(row, y + t, &lse, &g, 0, 1, V, p.temperature, (float*)dlogits + t * V);
    }
    st[0] = (float)(w * k.l);
    st[1] = k.clipped ? 1.0f : 0.0f;
    st[2] = (float)k.k3;
    st[3] = (float)k.rho;
  }
}

template <typename In, typename Mask>
static void grpo_fused(const In* z, const int32_t* y, const float* old_logp, const float* ref_logp, const float* adv, const Mask* mask,
                       const float* seq_w, const FusedParams& p, float* logp, void* dlogits, bool out_bf16, float* stats) {
  thread_pool().parallel_for(0, p.N, row_grain(p.V), [&](int64_t r0, int64_t r1) {
    std::vector<float> scratch(out_bf16 ? (size_t)p.V : 0);
    grpo_fused_rows(z, y, old_logp, ref_logp, adv, mask, seq_w, p, r0, r1, logp, dlogits, out_bf16, stats, scratch);
  });
}

// cpuGrpoFusedTokenLoss(logits: Float32Array | Uint16Array (bf16 bits), targets: Int32Array, oldLogp,
//   refLogp: Float32Array | null, advantages: Float32Array [B], mask: Float32Array | Uint8Array [N],
//   seqWeight: Float32Array [B], N, V, T, temperature, epsLow, epsHigh, delta (0 = none), beta,
//   logp: Float32Array [N], dlogits: Float32Array | Uint16Array [N, V] (may be the logits array itself
//   when the dtypes match), stats: Float32Array [N, 4]): Promise<void>
Napi::Value CpuGrpoFusedTokenLoss(const Napi::CallbackInfo& info) {
  const char* fn = "cpuGrpoFusedTokenLoss";
  Args args(info, fn, 18);
  const uint64_t N = args.size(7, "N"), V = args.size(8, "V"), T = args.size(9, "T");
  if (N == 0 || V == 0 || T == 0) args.fail("E_SHAPE", "N, V and T must be at least 1");
  if (N % T != 0) args.fail("E_SHAPE", "T must divide N (" + std::to_string(N) + "), got " + std::to_string(T));
  const uint64_t B = N / T;
  const uint64_t n = checked_mul(info.Env(), fn, N, V, "N * V");
  HostView z = args.typed_array_either(0, "logits", napi_float32_array, napi_uint16_array, " (bf16 bits)", n);
  HostView y = args.typed_array(1, "targets", napi_int32_array, N);
  HostView old_logp = args.typed_array(2, "oldLogp", napi_float32_array, N);
  const bool has_ref = !info[3].IsNull() && !info[3].IsUndefined();
  HostView ref_logp = has_ref ? args.typed_array(3, "refLogp", napi_float32_array, N) : HostView{};
  HostView adv = args.typed_array(4, "advantages", napi_float32_array, B);
  HostView mask = args.typed_array_either(5, "mask", napi_float32_array, napi_uint8_array, "", N);
  HostView seq_w = args.typed_array(6, "seqWeight", napi_float32_array, B);
  FusedParams p;
  p.N = (int64_t)N;
  p.V = (int64_t)V;
  p.T = (int64_t)T;
  p.temperature = args.temperature(10);
  p.eps_low = args.finite_number(11, "epsLow");
  p.eps_high = args.finite_number(12, "epsHigh");
  p.delta = args.finite_number(13, "delta");
  p.beta = args.finite_number(14, "beta");
  if (!has_ref && p.beta != 0) args.fail("E_ARG", "beta must be 0 without refLogp");
  HostView logp = args.typed_array(15, "logp", napi_float32_array, N);
  HostView d = args.typed_array_either(16, "dlogits", napi_float32_array, napi_uint16_array, " (bf16 bits)", n);
  HostView stats = args.typed_array(17, "stats", napi_float32_array, N * 4);
  // in place needs the same dtype and the same start: each element is then read before it is written
  const char *zb = (const char*)z.data, *db = (const char*)d.data;
  const bool overlap = db < zb + z.bytes && zb < db + d.bytes;
  if (overlap && (db != zb || d.type != z.type)) args.fail("E_ARG", "dlogits may be the logits themselves (same dtype), and must not overlap them otherwise");
  const bool in_bf16 = z.type == napi_uint16_array, out_bf16 = d.type == napi_uint16_array, mask_u8 = mask.type == napi_uint8_array;
  const void *zp = z.data, *mp = mask.data;
  const int32_t* yp = (const int32_t*)y.data;
  const float *olp = (const float*)old_logp.data, *ap = (const float*)adv.data, *wp = (const float*)seq_w.data;
  const float* rlp = has_ref ? (const float*)ref_logp.data : nullptr;
  float *lpp = (float*)logp.data, *sp = (float*)stats.data;
  void* dp = d.data;
  Napi::Object keep_ref = has_ref ? ref_logp.value : old_logp.value;
  auto* worker = new PromiseWorker(info.Env(), fn, {z.value, y.value, old_logp.value, keep_ref, adv.value, mask.value, seq_w.value, logp.value, d.value, stats.value},
                                   [=](double*) {
                                     if (in_bf16) {
                                       const uint16_t* zz = (const uint16_t*)zp;
                                       if (mask_u8) grpo_fused(zz, yp, olp, rlp, ap, (const uint8_t*)mp, wp, p, lpp, dp, out_bf16, sp);
                                       else grpo_fused(zz, yp, olp, rlp, ap, (const float*)mp, wp, p, lpp, dp, out_bf16, sp);
                                     } else {
                                       const float* zz = (const float*)zp;
                                       if (mask_u8) grpo_fused(zz, yp, olp, rlp, ap, (const uint8_t*)mp, wp, p, lpp, dp, out_bf16, sp);
                                       else grpo_fused(zz, yp, olp, rlp, ap, (const float*)mp, wp, p, lpp, dp, out_bf16, sp);
                                     }
                                     return std::string();
                                   });
  worker->Queue();
  return worker->promise();
}

}  // namespace hp
