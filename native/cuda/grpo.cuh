// CUDA GRPO kernels (advantages, the clipped policy loss) and the KL estimators: pure CUDA runtime,
// shared by native/cuda/grpo.cu, native/cuda/logprob.cu and the harness (kernels that are not
// templates are static: each including file gets its own copy). The inputs are [B] and
// [B, T], tiny next to the logits, so these favour exactness over speed: f64 arithmetic like
// src/reference/grpo.ts, sums in a fixed order (deterministic), outputs rounded to f32 once.
#pragma once

#include <cuda_runtime.h>
#include <algorithm>
#include <stdint.h>

#include "common/grpo_rules.h"
#include "cuda/logprob.cuh"

namespace hp {

namespace gr {

constexpr int THREADS = 256;

// Sum of v over the CTA in a fixed order (tree over the threads); every thread gets it.
__device__ __forceinline__ double block_sum(double v, double* red) {
  __syncthreads();
  red[threadIdx.x] = v;
  __syncthreads();
  for (int s = THREADS / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
    __syncthreads();
  }
  return red[0];
}

// rewards: f32 [B] -> out: f32 [B], groups of G consecutive rewards. One CTA.
// scale: 0 group std, 1 batch std, 2 none. An all-equal group gets exactly 0.
static __global__ void __launch_bounds__(THREADS) advantages_kernel(const float* __restrict__ r, int64_t B, int64_t G, int scale, double eps,
                                                             float* __restrict__ out) {
  __shared__ double red[THREADS];
  double batch_std = NAN;
  if (scale == 1) {
    double s = 0;
    for (int64_t i = threadIdx.x; i < B; i += THREADS) s += r[i];
    const double mean = block_sum(s, red) / B;
    double ss = 0;
    for (int64_t i = threadIdx.x; i < B; i += THREADS) ss += (r[i] - mean) * (r[i] - mean);
    batch_std = sqrt(block_sum(ss, red) / (B - 1));
  }
  for (int64_t g0 = threadIdx.x * G; g0 < B; g0 += (int64_t)THREADS * G) group_advantages(r, g0, G, scale, eps, batch_std, out);
}

struct LossParams {
  double eps_low, eps_high, delta, beta;  // delta <= 0: no two-sided clip
  int sequence_level;
  int agg;  // 0 grpo, 1 bnpo, 2 dr_grpo, 3 dapo
  double max_len, global_tokens;  // global_tokens <= 0: the mask's own count
};

// The loss's f64 work area (after the 4 results): totals [2] (masked tokens, non-empty sequences),
// n [B] (masked tokens per sequence), partial [B, 4] (per sequence: Σ w·l, clipped, k3, ρ).
inline int64_t loss_work_doubles(int64_t B) { return 4 + 2 + 5 * B; }

// mask: [B, T] -> n[b]. One CTA per sequence.
template <typename Mask>
__global__ void __launch_bounds__(THREADS) loss_count_kernel(const Mask* __restrict__ mask, int64_t T, double* __restrict__ work) {
  __shared__ double red[THREADS];
  const int64_t b = blockIdx.x;
  double c = 0;
  for (int64_t t = threadIdx.x; t < T; t += THREADS) c += lp::mask_on(mask, b * T + t) ? 1.0 : 0.0;
  c = block_sum(c, red);
  if (threadIdx.x == 0) work[6 + b] = c;
}

// n [B] -> totals. One CTA.
static __global__ void __launch_bounds__(THREADS) loss_totals_kernel(int64_t B, double* __restrict__ work) {
  __shared__ double red[THREADS];
  double c = 0, e = 0;
  for (int64_t b = threadIdx.x; b < B; b += THREADS) {
    c += work[6 + b];
    e += work[6 + b] > 0 ? 1.0 : 0.0;
  }
  c = block_sum(c, red);
  e = block_sum(e, red);
  if (threadIdx.x == 0) {
    work[4] = c;
    work[5] = e;
  }
}

// One CTA per sequence b: its tokens' loss terms, dlogp [B, T] (0 where the mask is 0) and partial[b].
template <typename Mask>
__global__ void __launch_bounds__(THREADS) loss_seq_kernel(const float* __restrict__ logp, const float* __restrict__ old_logp,
                                                           const float* __restrict__ ref_logp, const float* __restrict__ adv,
                                                           const Mask* __restrict__ mask, int64_t B, int64_t T, LossParams p,
                                                           float* __restrict__ dlogp, double* __restrict__ work) {
  __shared__ double red[THREADS];
  const int64_t b = blockIdx.x, row = b * T;
  const double n_b = work[6 + b];
  const double w = aggregation_weight(p.agg, n_b, work[4], work[5], B, p.max_len, p.global_tokens);
  const double A = adv[b];
  double seq_log_ratio = 0;
  if (p.sequence_level && n_b > 0) {
    double s = 0;
    for (int64_t t = threadIdx.x; t < T; t += THREADS) {
      if (lp::mask_on(mask, row + t)) s += (double)logp[row + t] - old_logp[row + t];
    }
    seq_log_ratio = block_sum(s, red) / n_b;
  }
  double loss = 0, clipped_n = 0, kl = 0, ratio = 0, seq_grad = 0;
  for (int64_t t = threadIdx.x; t < T; t += THREADS) {
    const int64_t i = row + t;
    if (!lp::mask_on(mask, i)) {
      dlogp[i] = 0.0f;
      continue;
    }
    const double log_ratio = p.sequence_level ? seq_log_ratio : (double)logp[i] - old_logp[i];
    const TokenTerm k = token_term(log_ratio, logp[i], ref_logp != nullptr, ref_logp ? (double)ref_logp[i] : 0.0, A, p.eps_low, p.eps_high,
                                   p.delta, p.beta);
    const double l = k.l, g_policy = k.g_policy, g_kl = k.g_kl, rho = k.rho;
    const bool clipped = k.clipped;
    kl += k.k3;
    loss += w * l;
    clipped_n += clipped ? 1 : 0;
    ratio += rho;
    if (!p.sequence_level) dlogp[i] = (float)(w * (g_policy + g_kl));
    else seq_grad += w * g_policy;
  }
  loss = block_sum(loss, red);
  clipped_n = block_sum(clipped_n, red);
  kl = block_sum(kl, red);
  ratio = block_sum(ratio, red);
  if (p.sequence_level && n_b > 0) {
    // d seqLogRatio / d logp[b, t] = 1 / n_b for each masked token; the KL part stays per token
    seq_grad = block_sum(seq_grad, red) / n_b;
    for (int64_t t = threadIdx.x; t < T; t += THREADS) {
      const int64_t i = row + t;
      if (!lp::mask_on(mask, i)) continue;
      double g_kl = 0;
      if (ref_logp && p.beta != 0) g_kl = -p.beta * expm1((double)ref_logp[i] - logp[i]);
      dlogp[i] = (float)(w * g_kl + seq_grad);
    }
  }
  if (threadIdx.x == 0) {
    double* q = work + 6 + B + 4 * b;
    q[0] = loss;
    q[1] = clipped_n;
    q[2] = kl;
    q[3] = ratio;
  }
}

// partial [B, 4] -> work[0..4) = loss, clipFraction, meanKl, meanRatio (sums in sequence order).
static __global__ void loss_final_kernel(int64_t B, bool has_ref, double* __restrict__ work) {
  if (threadIdx.x != 0) return;
  double s[4] = {0, 0, 0, 0};
  for (int64_t b = 0; b < B; b++) {
    for (int j = 0; j < 4; j++) s[j] += work[6 + B + 4 * b + j];
  }
  const double total = work[4];
  const auto per = [&](double x) { return total > 0 ? x / total : 0.0; };
  work[0] = s[0];
  work[1] = per(s[1]);
  work[2] = has_ref ? per(s[2]) : 0.0;
  work[3] = per(s[3]);
}

// ---- fusedLoss's bookkeeping on the device (GrpoKernels.fusedWeights / fusedStatSums): the same
// work layout as the loss above — f64 [0..4) the stats' column sums, [4] masked tokens, [5] non-empty
// sequences, [6, 6 + B) tokens per sequence, then FUSED_SUM_CTAS partial sums [G, 4].
constexpr int FUSED_SUM_CTAS = 64;
inline int64_t fused_work_doubles(int64_t B) { return 6 + B + 4 * FUSED_SUM_CTAS; }

// work's counts (loss_count_kernel, loss_totals_kernel) -> w: f32 [B], aggregation_weight
// (common/grpo_rules.h) in f64, rounded to f32 once.
static __global__ void __launch_bounds__(THREADS) fused_weights_kernel(int64_t B, int agg, double max_len, double global_tokens,
                                                                const double* __restrict__ work, float* __restrict__ w) {
  for (int64_t b = (int64_t)blockIdx.x * THREADS + threadIdx.x; b < B; b += (int64_t)gridDim.x * THREADS) {
    w[b] = (float)aggregation_weight(agg, work[6 + b], work[4], work[5], B, max_len, global_tokens);
  }
}

// stats: f32 [N, 4] -> partial [G, 4]: CTA g sums rows g·THREADS + i + k·G·THREADS (each thread in row
// order, then a fixed tree), f64.
static __global__ void __launch_bounds__(THREADS) fused_sums_kernel(const float4* __restrict__ stats, int64_t N, int64_t B, double* __restrict__ work) {
  __shared__ double red[THREADS];
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t t = (int64_t)blockIdx.x * THREADS + threadIdx.x; t < N; t += (int64_t)FUSED_SUM_CTAS * THREADS) {
    const float4 v = stats[t];
    s0 += v.x;
    s1 += v.y;
    s2 += v.z;
    s3 += v.w;
  }
  double* partial = work + 6 + B + 4 * (int64_t)blockIdx.x;
  s0 = block_sum(s0, red);
  s1 = block_sum(s1, red);
  s2 = block_sum(s2, red);
  s3 = block_sum(s3, red);
  if (threadIdx.x == 0) {
    partial[0] = s0;
    partial[1] = s1;
    partial[2] = s2;
    partial[3] = s3;
  }
}

// partial [G, 4] -> work[0..4), summed in CTA order.
static __global__ void fused_sums_final_kernel(int64_t B, double* __restrict__ work) {
  if (threadIdx.x >= 4) return;
  double s = 0;
  for (int g = 0; g < FUSED_SUM_CTAS; g++) s += work[6 + B + 4 * g + threadIdx.x];
  work[threadIdx.x] = s;
}

// logp, ref: f32 [n] -> kl, dlogp: f32 [n]; estimator 0 k1, 1 k2, 2 k3, 3 k3_clamped (f64 math).
static __global__ void __launch_bounds__(THREADS) kl_kernel(const float* __restrict__ logp, const float* __restrict__ ref, int64_t n, int est,
                                                     float* __restrict__ kl, float* __restrict__ dlogp) {
  for (int64_t i = (int64_t)blockIdx.x * THREADS + threadIdx.x; i < n; i += (int64_t)gridDim.x * THREADS) {
    kl_estimate((double)ref[i] - (double)logp[i], est, kl + i, dlogp + i);
  }
}

}  // namespace gr

inline cudaError_t grpo_advantages_launch(const float* r, int64_t B, int64_t G, int scale, double eps, float* out, cudaStream_t s) {
  gr::advantages_kernel<<<1, gr::THREADS, 0, s>>>(r, B, G, scale, eps, out);
  return cudaGetLastError();
}

// work: f64 [loss_work_doubles(B)]; work[0..4) gets loss, clipFraction, meanKl, meanRatio.
template <typename Mask>
inline cudaError_t grpo_loss_launch(const float* logp, const float* old_logp, const float* ref_logp, const float* adv, const Mask* mask,
                                    int64_t B, int64_t T, const gr::LossParams& p, float* dlogp, double* work, cudaStream_t s) {
  gr::loss_count_kernel<Mask><<<(unsigned)B, gr::THREADS, 0, s>>>(mask, T, work);
  gr::loss_totals_kernel<<<1, gr::THREADS, 0, s>>>(B, work);
  gr::loss_seq_kernel<Mask><<<(unsigned)B, gr::THREADS, 0, s>>>(logp, old_logp, ref_logp, adv, mask, B, T, p, dlogp, work);
  gr::loss_final_kernel<<<1, 32, 0, s>>>(B, ref_logp != nullptr, work);
  return cudaGetLastError();
}

// mask: [B, T] -> w: f32 [B]; work: f64 [fused_work_doubles(B)] keeps the counts for fused_sums_launch.
template <typename Mask>
inline cudaError_t grpo_fused_weights_launch(const Mask* mask, int64_t B, int64_t T, int agg, double max_len, double global_tokens, float* w,
                                             double* work, cudaStream_t s) {
  gr::loss_count_kernel<Mask><<<(unsigned)B, gr::THREADS, 0, s>>>(mask, T, work);
  gr::loss_totals_kernel<<<1, gr::THREADS, 0, s>>>(B, work);
  gr::fused_weights_kernel<<<(unsigned)std::min<int64_t>((B + gr::THREADS - 1) / gr::THREADS, 1024), gr::THREADS, 0, s>>>(B, agg, max_len, global_tokens, work, w);
  return cudaGetLastError();
}

// stats: f32 [N, 4] -> work[0..4) = its column sums (f64, a fixed order).
inline cudaError_t grpo_fused_sums_launch(const float* stats, int64_t N, int64_t B, double* work, cudaStream_t s) {
  gr::fused_sums_kernel<<<gr::FUSED_SUM_CTAS, gr::THREADS, 0, s>>>((const float4*)stats, N, B, work);
  gr::fused_sums_final_kernel<<<1, 32, 0, s>>>(B, work);
  return cudaGetLastError();
}

inline cudaError_t kl_launch(const float* logp, const float* ref, int64_t n, int est, float* kl, float* dlogp, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  gr::kl_kernel<<<logprob_grid((n + gr::THREADS - 1) / gr::THREADS), gr::THREADS, 0, s>>>(logp, ref, n, est, kl, dlogp);
  return cudaGetLastError();
}

}  // namespace hp
