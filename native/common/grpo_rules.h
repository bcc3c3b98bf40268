// The per-element rules of the log-prob and GRPO kernels, shared by the CPU (native/cpu/) and CUDA
// (native/cuda/) code so that both follow src/reference/{logprob,grpo}.ts from one source: the KL
// estimators, one group's advantages, and one token's clipped-policy loss term. f64 math, as the
// reference; min/max propagate NaN as JavaScript's Math.min/Math.max do (fmin/fmax would drop it).
#pragma once

#include <stdint.h>

#include <cmath>

#ifndef HP_HD
#ifdef __CUDACC__
#define HP_HD __host__ __device__ __forceinline__
#else
#define HP_HD inline
#endif
#endif

namespace hp {

HP_HD double js_min(double a, double b) { return (a != a || b != b) ? NAN : (a < b ? a : b); }
HP_HD double js_max(double a, double b) { return (a != a || b != b) ? NAN : (a > b ? a : b); }

// KL estimator `est` (0 k1, 1 k2, 2 k3, 3 k3_clamped) of d = ref − logp and its derivative w.r.t. logp
// (logprobKl in src/reference/logprob.ts): k3 = expm1(d) − d keeps its precision for small d;
// k3_clamped clamps d to [−20, 20] and the result to [−10, 10], with no gradient where a clamp acts.
HP_HD void kl_estimate(double d, int est, float* kl, float* dlogp) {
  switch (est) {
    case 0:
      *kl = (float)-d;
      *dlogp = 1.0f;
      break;
    case 1:
      *kl = (float)(0.5 * d * d);
      *dlogp = (float)-d;
      break;
    case 2:
      *kl = (float)(expm1(d) - d);
      *dlogp = (float)-expm1(d);
      break;
    default: {
      const bool d_clamped = d < -20 || d > 20;
      const double dc = js_min(js_max(d, -20.0), 20.0);
      const double k = expm1(dc) - dc;
      const bool k_clamped = k < -10 || k > 10;
      *kl = (float)js_min(js_max(k, -10.0), 10.0);
      *dlogp = (d_clamped || k_clamped) ? 0.0f : (float)-expm1(d);
    }
  }
}

// One group's advantages: rewards r[g0, g0 + G) -> out[g0, g0 + G) (grpoAdvantages in
// src/reference/grpo.ts). scale: 0 the group's unbiased std, 1 `batch_std`, 2 none; an all-equal
// group gets exactly 0.
HP_HD void group_advantages(const float* r, int64_t g0, int64_t G, int scale, double eps, double batch_std, float* out) {
  double sum = 0;
  bool all_equal = true;
  for (int64_t i = g0; i < g0 + G; i++) {
    sum += r[i];
    if (r[i] != r[g0]) all_equal = false;
  }
  if (all_equal) {
    for (int64_t i = g0; i < g0 + G; i++) out[i] = 0.0f;
    return;
  }
  const double mean = sum / G;
  double divisor = 1;
  if (scale == 0) {
    double ss = 0;
    for (int64_t i = g0; i < g0 + G; i++) ss += (r[i] - mean) * (r[i] - mean);
    divisor = sqrt(ss / (G - 1)) + eps;
  } else if (scale == 1) {
    divisor = batch_std + eps;
  }
  for (int64_t i = g0; i < g0 + G; i++) out[i] = (float)((r[i] - mean) / divisor);
}

// A sequence's aggregation weight w_b (aggregationWeights in src/reference/grpo.ts): agg 0 grpo
// 1 / (n_b · non-empty sequences), 1 bnpo 1 / masked tokens, 2 dr_grpo 1 / (B · maxLen), 3 dapo
// 1 / globalTokens (global_tokens <= 0: the masked tokens); 0 where the divisor is 0.
HP_HD double aggregation_weight(int agg, double n_b, double tokens, double non_empty, int64_t B, double max_len, double global_tokens) {
  const double global = global_tokens > 0 ? global_tokens : tokens;
  switch (agg) {
    case 0: return n_b > 0 ? 1 / (n_b * non_empty) : 0;
    case 1: return tokens > 0 ? 1 / tokens : 0;
    case 2: return 1 / (B * max_len);
    default: return global > 0 ? 1 / global : 0;
  }
}

// One masked token's loss term and its parts, unweighted (tokenLoss in src/reference/grpo.ts).
struct TokenTerm {
  double l;         // −min(ρA, clip(ρ)A) + β·k3
  double g_policy;  // d (policy term) / d log-ratio: 0 where the clip or the δ cap acts
  double g_kl;      // d (β·k3) / d logp
  double rho;       // ρ after the δ cap
  double k3;        // k3(ref − logp), 0 without ref
  bool clipped;
};

// delta <= 0: no two-sided clip. has_ref false: no KL term (beta must then be 0).
HP_HD TokenTerm token_term(double log_ratio, double logp, bool has_ref, double ref, double A, double eps_low, double eps_high,
                           double delta, double beta) {
  TokenTerm k;
  const double lo = 1 - eps_low, hi = 1 + eps_high;
  double rho = exp(log_ratio), d_rho = rho;
  if (delta > 0 && rho > delta) {
    rho = delta;
    d_rho = 0;
  }
  k.clipped = (A > 0 && rho > hi) || (A < 0 && rho < lo);
  const double rc = js_min(js_max(rho, lo), hi);
  k.l = -js_min(rho * A, rc * A);
  k.g_policy = k.clipped ? 0 : -A * d_rho;
  k.g_kl = 0;
  k.k3 = 0;
  if (has_ref) {
    const double d = ref - logp;
    k.k3 = expm1(d) - d;
    if (beta != 0) {
      k.l += beta * k.k3;
      k.g_kl = -beta * expm1(d);
    }
  }
  k.rho = rho;
  return k;
}

}  // namespace hp
