// CPU MoE kernels (MoeKernels in src/runtime/backend.ts; REFERENCE.md "MoE routing"): the router
// (scores, group-limited top-k, weights) and its backward, the bias update, the sequence-wise aux
// loss, the dispatch layout, the block-aligned grouping of (token, slot) pairs by expert, and the row
// permutations around the grouped GEMM.
//
// Integers (indices, counts, positions) are exactly the reference's: the router computes its scores
// in f64 and rounds them to f32 once, then does in f32 exactly what src/reference/moe.ts does with
// Math.fround (the biased score s + b, the top-2 group sums, the weights' running sum, quotient and
// scaling), and breaks every tie by the lower group / expert index; the grouping is a counting sort
// whose order does not depend on the thread count. Float outputs: route, permute and unpermute
// (one FMA per step in f32, slot order) round where the reference rounds, so they match it bit for
// bit up to the last bit of exp (f64); the gradients and the aux loss are f64 math rounded once.
//
// Threads: route, its backward and the layout over tokens; align over fixed chunks of pairs (a
// histogram per chunk, prefix sums, then each chunk scatters its own pairs); permute over output
// rows, unpermute over tokens. AVX2/FMA for the row arithmetic (f32 and bf16 rows, bf16 rounded to
// nearest even like the rest of the addon) with a scalar fallback (HOTPATHS_SIMD=scalar).
//
// The ops layer checked every shape and, on host backends, every index. These entry points re-check
// sizes before touching memory, and treat an index value that would reach outside an array as the
// GPU kernels do (skipped, counted in align's info[2]) so that a bad call can never crash the process.
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/entry_points.h"
#include "common/fp8_codec.h"
#include "common/promise_worker.h"
#include "common/simd.h"
#include "common/threadpool.h"

namespace hp {

static const bool g_moe_avx2 = cpu_use_avx2();

enum Scoring { SCORING_SIGMOID = 0, SCORING_SOFTMAX = 1 };
enum GroupScore { GROUP_TOP2 = 0, GROUP_MAX = 1 };

static constexpr double NEG_INF = -std::numeric_limits<double>::infinity();
static constexpr double NORM_EPS = 1e-20;

// ---------------------------------------------------------------- element helpers

static inline float load_f(const float* p, int64_t i) { return p[i]; }
static inline float load_f(const uint16_t* p, int64_t i) { return f32_from_bits((uint32_t)p[i] << 16); }
static inline void store_f(float* p, int64_t i, float v) { p[i] = v; }
// f32 -> bf16 bits, round to nearest even; NaN stays a quiet NaN (src/dtype.ts f32ToBf16Bits)
static inline void store_f(uint16_t* p, int64_t i, float v) {
  const uint32_t u = f32_bits(v);
  p[i] = (u & 0x7FFFFFFFu) > 0x7F800000u ? (uint16_t)((u >> 16) | 0x40u) : (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

#if HP_X86
HP_AVX2 static inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
HP_AVX2 static inline __m256 load8(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
}
HP_AVX2 static inline void store8(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
// 8 lanes of store_f(uint16_t*): round to nearest even, NaN -> quiet NaN, then narrow to 16 bits
HP_AVX2 static inline void store8(uint16_t* p, __m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF)), _mm256_set1_epi32(0x7F800000));
  const __m256i b = _mm256_blendv_epi8(rounded, quiet, nan);
  _mm_storeu_si128((__m128i*)p, _mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1)));
}
#endif

// ---------------------------------------------------------------- route

struct RouteParams {
  int scoring, group_score;
  int64_t E, k, n_group, topk_group;
  bool norm;
  double scale;
};

// Per-thread scratch of one route task.
struct RouteScratch {
  std::vector<float> key;      // [E] selection keys s + b in f32 (NaN -> −inf)
  std::vector<float> gscore;   // [n_group]
  std::vector<uint8_t> keep;   // [n_group]
  std::vector<float> top_key;
  std::vector<int32_t> top_idx;
};

// Whether (va, a) ranks before (vb, b): the larger key, then the lower index.
static inline bool ranks_before(float va, int64_t a, float vb, int64_t b) { return va > vb || (va == vb && a < b); }
static constexpr float NEG_INF_F = -std::numeric_limits<float>::infinity();

#if HP_X86
// e^x on 4 f64 lanes, x in [−708, 709] (clamped; a NaN lane gives garbage, the caller replaces it):
// x = n·ln2 + r (Cody–Waite, |r| ≤ ½ln2), e^r by its Taylor polynomial to degree 13 (truncation
// 4e−18), 2^n in the exponent field. Within 2 ulps of f64: the f32 scores rounded from it equal the
// reference's (Math.exp) unless the exact value lies within ~2^−51 of an f32 rounding midpoint.
HP_AVX2 static inline __m256d exp4(__m256d x) {
  static constexpr double INV_FACT[14] = {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320, 1.0 / 362880,
                                          1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0};
  x = _mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(-708.0)), _mm256_set1_pd(709.0));
  const __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93147180369123816490e-01), x);  // ln2_hi: n·ln2_hi is exact
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.90821492927058770002e-10), r);        // ln2_lo
  __m256d p = _mm256_set1_pd(INV_FACT[13]);
  for (int k = 12; k >= 0; k--) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(INV_FACT[k]));
  const __m256i e = _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n)), _mm256_set1_epi64x(1023)), 52);
  return _mm256_mul_pd(p, _mm256_castsi256_pd(e));
}

// s[0, h) = f32(1 / (1 + e^−x)) in f64 for the largest h ≤ E that is a multiple of 8; ORs a NaN into *nan
HP_AVX2 static int64_t sigmoid_avx2(const float* x, int64_t E, float* s, bool* nan) {
  const __m256d one = _mm256_set1_pd(1.0);
  __m256 bad = _mm256_setzero_ps();
  int64_t e = 0;
  for (; e + 8 <= E; e += 8) {
    const __m256 xv = _mm256_loadu_ps(x + e);
    const __m256 isnan = _mm256_cmp_ps(xv, xv, _CMP_UNORD_Q);
    bad = _mm256_or_ps(bad, isnan);
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(xv)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1));
    const __m128 slo = _mm256_cvtpd_ps(_mm256_div_pd(one, _mm256_add_pd(one, exp4(_mm256_sub_pd(_mm256_setzero_pd(), lo)))));
    const __m128 shi = _mm256_cvtpd_ps(_mm256_div_pd(one, _mm256_add_pd(one, exp4(_mm256_sub_pd(_mm256_setzero_pd(), hi)))));
    const __m256 sv = _mm256_insertf128_ps(_mm256_castps128_ps256(slo), shi, 1);
    _mm256_storeu_ps(s + e, _mm256_blendv_ps(sv, xv, isnan));  // NaN stays NaN
  }
  if (_mm256_movemask_ps(bad)) *nan = true;
  return e;
}

// Σ e^(x − m) over the first multiple of 8 of [0, E), in f64 lanes (their sum in lane order)
HP_AVX2 static int64_t softmax_sum_avx2(const float* x, int64_t E, double m, double* sum) {
  __m256d acc = _mm256_setzero_pd();
  const __m256d mv = _mm256_set1_pd(m);
  int64_t e = 0;
  for (; e + 8 <= E; e += 8) {
    const __m256 xv = _mm256_loadu_ps(x + e);
    acc = _mm256_add_pd(acc, exp4(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(xv)), mv)));
    acc = _mm256_add_pd(acc, exp4(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1)), mv)));
  }
  alignas(32) double l[4];
  _mm256_store_pd(l, acc);
  *sum = (l[0] + l[1]) + (l[2] + l[3]);
  return e;
}

// s[0, h) = f32(e^(x − m) / sum) for the first multiple of 8
HP_AVX2 static int64_t softmax_div_avx2(const float* x, int64_t E, double m, double sum, float* s) {
  const __m256d mv = _mm256_set1_pd(m), inv = _mm256_set1_pd(sum);
  int64_t e = 0;
  for (; e + 8 <= E; e += 8) {
    const __m256 xv = _mm256_loadu_ps(x + e);
    const __m128 lo = _mm256_cvtpd_ps(_mm256_div_pd(exp4(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(xv)), mv)), inv));
    const __m128 hi = _mm256_cvtpd_ps(_mm256_div_pd(exp4(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1)), mv)), inv));
    _mm256_storeu_ps(s + e, _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1));
  }
  return e;
}
#endif

// One token: logits x [E] -> scores s [E], weights w [k], indices idx [k] (best first).
static void route_token(const float* x, const float* bias, const RouteParams& p, RouteScratch& sc, float* s, float* w, int32_t* idx) {
  const int64_t E = p.E, k = p.k;
  bool nan = false;
  if (p.scoring == SCORING_SIGMOID) {
    int64_t e = 0;
#if HP_X86
    if (g_moe_avx2) e = sigmoid_avx2(x, E, s, &nan);
#endif
    for (; e < E; e++) {
      const double v = x[e];
      if (std::isnan(v)) nan = true;
      s[e] = (float)(1.0 / (1.0 + std::exp(-v)));
    }
  } else {
    double m = NEG_INF;
    for (int64_t e = 0; e < E; e++) {
      if (std::isnan(x[e])) nan = true;
      m = std::max(m, (double)x[e]);
    }
    // an infinite max gives inf − inf = NaN somewhere: the whole row NaN, as the reference's sum
    if (std::isinf(m)) nan = true;
    if (nan) {
      for (int64_t e = 0; e < E; e++) s[e] = NAN;
    } else {
      double sum = 0;
      int64_t e = 0;
#if HP_X86
      if (g_moe_avx2) e = softmax_sum_avx2(x, E, m, &sum);
#endif
      for (; e < E; e++) sum += std::exp((double)x[e] - m);
      e = 0;
#if HP_X86
      if (g_moe_avx2) e = softmax_div_avx2(x, E, m, sum, s);
#endif
      for (; e < E; e++) s[e] = (float)(std::exp((double)x[e] - m) / sum);
    }
  }
  float* key = sc.key.data();
  for (int64_t e = 0; e < E; e++) {
    const float v = bias ? s[e] + bias[e] : s[e];
    key[e] = std::isnan(v) ? NEG_INF_F : v;
  }

  // group-limited routing: keep the topk_group best groups (lower group index on ties)
  uint8_t* keep = sc.keep.data();
  const int64_t G = p.n_group, per = E / G;
  if (p.topk_group < G) {
    float* gs = sc.gscore.data();
    for (int64_t g = 0; g < G; g++) {
      float a = NEG_INF_F, b = NEG_INF_F;  // best and second best of the group (−inf when it has one expert)
      for (int64_t e = g * per; e < (g + 1) * per; e++) {
        const float v = key[e];
        if (v > a) {
          b = a;
          a = v;
        } else if (v > b) {
          b = v;
        }
      }
      const float v = p.group_score == GROUP_MAX ? a : a + b;
      gs[g] = std::isnan(v) ? NEG_INF_F : v;  // +inf + −inf (infinite biases) sorts last
      keep[g] = 0;
    }
    for (int64_t r = 0; r < p.topk_group; r++) {
      int64_t best = -1;
      for (int64_t g = 0; g < G; g++) {
        if (!keep[g] && (best < 0 || gs[g] > gs[best])) best = g;
      }
      keep[best] = 1;
    }
  } else {
    std::fill(keep, keep + G, (uint8_t)1);
  }

  // top-k of the kept experts: an insertion-sorted list of k, scanned in ascending expert index
  float* tk = sc.top_key.data();
  int32_t* ti = sc.top_idx.data();
  int64_t n = 0;
  for (int64_t g = 0; g < G; g++) {
    if (!keep[g]) continue;
    for (int64_t e = g * per; e < (g + 1) * per; e++) {
      const float v = key[e];
      if (n == k && !ranks_before(v, e, tk[k - 1], ti[k - 1])) continue;
      int64_t j = n < k ? n++ : k - 1;
      while (j > 0 && ranks_before(v, e, tk[j - 1], ti[j - 1])) {
        tk[j] = tk[j - 1];
        ti[j] = ti[j - 1];
        j--;
      }
      tk[j] = v;
      ti[j] = (int32_t)e;
    }
  }

  // f32 running sum in slot order, f32 quotient, the scale product rounded once (the reference's frounds)
  float sum = 0;
  for (int64_t j = 0; j < k; j++) sum += s[ti[j]];
  const float denom = (float)((double)sum + NORM_EPS);
  for (int64_t j = 0; j < k; j++) {
    idx[j] = ti[j];
    float v = s[ti[j]];
    if (p.norm) v = v / denom;
    w[j] = nan ? NAN : (float)((double)v * p.scale);
  }
}

static void moe_route(const float* logits, const float* bias, int64_t T, const RouteParams& p, float* scores, float* weights, int32_t* indices) {
  thread_pool().parallel_for(0, T, std::max<int64_t>(1, 16384 / std::max<int64_t>(p.E, 1)), [&](int64_t t0, int64_t t1) {
    RouteScratch sc;
    sc.key.resize(p.E);
    sc.gscore.resize(p.n_group);
    sc.keep.resize(p.n_group);
    sc.top_key.resize(p.k);
    sc.top_idx.resize(p.k);
    for (int64_t t = t0; t < t1; t++) {
      route_token(logits + t * p.E, bias, p, sc, scores + t * p.E, weights + t * p.k, indices + t * p.k);
    }
  });
}

// One token's backward: scores s [E], indices idx [k], dW [k], extra gradient ds [E] or null -> dl [E].
// w_j = c·s_j / D (D = Σ s + 1e-20) when normalised, else c·s_j: d/ds_m = c·(dW_m / D − Σ_j dW_j s_j / D²).
static void route_backward_token(const float* s, const int32_t* idx, const float* dw, const float* ds, const RouteParams& p, double* g, float* dl) {
  const int64_t E = p.E, k = p.k;
  for (int64_t e = 0; e < E; e++) g[e] = ds ? (double)ds[e] : 0.0;
  double sum = 0, dot = 0;
  for (int64_t j = 0; j < k; j++) {
    const int32_t e = idx[j];
    if (e < 0 || e >= E) continue;
    sum += s[e];
    dot += (double)dw[j] * s[e];
  }
  const double D = sum + NORM_EPS;
  for (int64_t j = 0; j < k; j++) {
    const int32_t e = idx[j];
    if (e < 0 || e >= E) continue;
    g[e] += p.norm ? p.scale * ((double)dw[j] / D - dot / (D * D)) : p.scale * dw[j];
  }
  if (p.scoring == SCORING_SIGMOID) {
    for (int64_t e = 0; e < E; e++) dl[e] = (float)(g[e] * s[e] * (1.0 - s[e]));
  } else {
    double gs = 0;
    for (int64_t e = 0; e < E; e++) gs += g[e] * s[e];
    for (int64_t e = 0; e < E; e++) dl[e] = (float)(s[e] * (g[e] - gs));
  }
}

// ---------------------------------------------------------------- aux loss

// Adds one token range [t0, t1) of a sequence to count [E] (pairs per expert) and psum [E]
// (Σ_t s_{t,i} / S_t); row_sum[t] = S_t = Σ_j s_{t,j} + 1e-20.
static void aux_accumulate(const float* scores, const int32_t* indices, int64_t E, int64_t k, int64_t t0, int64_t t1, int64_t* count,
                           double* psum, double* row_sum) {
  for (int64_t t = t0; t < t1; t++) {
    const float* s = scores + t * E;
    double S = 0;
    for (int64_t e = 0; e < E; e++) S += s[e];
    S += NORM_EPS;  // keeps a token whose scores all underflow finite (the reference's rule)
    row_sum[t] = S;
    for (int64_t e = 0; e < E; e++) psum[e] += s[e] / S;
    for (int64_t j = 0; j < k; j++) {
      const int32_t e = indices[t * k + j];
      if (e >= 0 && e < E) count[e]++;
    }
  }
}

// dScores of tokens [t0, t1) of one sequence with f [E]: c·(f_m / S_t − Σ_i f_i s_{t,i} / S_t²), c = α / (nSeq·L)
static void aux_gradient(const float* scores, int64_t E, int64_t t0, int64_t t1, const double* f, const double* row_sum, double c, float* ds) {
  for (int64_t t = t0; t < t1; t++) {
    const float* s = scores + t * E;
    const double S = row_sum[t];
    double fs = 0;
    for (int64_t e = 0; e < E; e++) fs += f[e] * s[e];
    for (int64_t e = 0; e < E; e++) ds[t * E + e] = (float)(c * (f[e] / S - fs / (S * S)));
  }
}

// L = mean over sequences of α Σ_i f_i P_i, f_i = E/(k·L)·count_i, P_i = (1/L) Σ_t s_{t,i} / S_t.
// Short sequences: one task per few sequences does all of it. Long ones: chunks of CH tokens sum into
// partials, reduced per sequence in chunk order (deterministic), then the gradient over the chunks.
static double moe_aux_loss(const float* scores, const int32_t* indices, int64_t T, int64_t E, int64_t k, int64_t L, double alpha, float* ds) {
  const int64_t n_seq = T / L;
  static constexpr int64_t CH = 256;
  const double c = alpha / ((double)n_seq * (double)L);
  const double f_scale = (double)E / ((double)k * (double)L);
  std::vector<double> row_sum(T);
  std::vector<double> seq_loss(n_seq, 0.0);
  if (L <= CH) {
    thread_pool().parallel_for(0, n_seq, std::max<int64_t>(1, CH / L), [&](int64_t q0, int64_t q1) {
      std::vector<int64_t> count(E);
      std::vector<double> psum(E), f(E);
      for (int64_t q = q0; q < q1; q++) {
        std::fill(count.begin(), count.end(), 0);
        std::fill(psum.begin(), psum.end(), 0.0);
        aux_accumulate(scores, indices, E, k, q * L, (q + 1) * L, count.data(), psum.data(), row_sum.data());
        double loss = 0;
        for (int64_t e = 0; e < E; e++) {
          f[e] = f_scale * (double)count[e];
          loss += f[e] * (psum[e] / (double)L);
        }
        seq_loss[q] = alpha * loss;
        aux_gradient(scores, E, q * L, (q + 1) * L, f.data(), row_sum.data(), c, ds);
      }
    });
  } else {
    const int64_t n_sub = (L + CH - 1) / CH, units = n_seq * n_sub;
    std::vector<int64_t> count((size_t)(units * E), 0);
    std::vector<double> psum((size_t)(units * E), 0.0);
    auto range = [&](int64_t u, int64_t* t0, int64_t* t1) {
      const int64_t q = u / n_sub, sub = u % n_sub;
      *t0 = q * L + sub * CH;
      *t1 = std::min(*t0 + CH, (q + 1) * L);
    };
    thread_pool().parallel_for(0, units, 1, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; u++) {
        int64_t t0, t1;
        range(u, &t0, &t1);
        aux_accumulate(scores, indices, E, k, t0, t1, count.data() + u * E, psum.data() + u * E, row_sum.data());
      }
    });
    std::vector<double> f((size_t)(n_seq * E));
    for (int64_t q = 0; q < n_seq; q++) {
      double loss = 0;
      for (int64_t e = 0; e < E; e++) {
        int64_t cnt = 0;
        double ps = 0;
        for (int64_t sub = 0; sub < n_sub; sub++) {
          cnt += count[(q * n_sub + sub) * E + e];
          ps += psum[(q * n_sub + sub) * E + e];
        }
        f[q * E + e] = f_scale * (double)cnt;
        loss += f[q * E + e] * (ps / (double)L);
      }
      seq_loss[q] = alpha * loss;
    }
    thread_pool().parallel_for(0, units, 1, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; u++) {
        int64_t t0, t1;
        range(u, &t0, &t1);
        aux_gradient(scores, E, t0, t1, f.data() + (u / n_sub) * E, row_sum.data(), c, ds);
      }
    });
  }
  double total = 0;
  for (double v : seq_loss) total += v;
  return total / (double)n_seq;
}

// ---------------------------------------------------------------- layout

// indices [T, k] -> tokens_per_rank [R], tokens_per_expert [E], in_rank u8 [T, R]
static void moe_layout(const int32_t* indices, int64_t T, int64_t k, int64_t E, int64_t R, int32_t* per_rank, int32_t* per_expert, uint8_t* in_rank) {
  const int64_t per = E / R;
  std::vector<std::atomic<int64_t>> rank_total(R), expert_total(E);
  for (auto& a : rank_total) a.store(0);
  for (auto& a : expert_total) a.store(0);
  thread_pool().parallel_for(0, T, 2048, [&](int64_t t0, int64_t t1) {
    std::vector<int64_t> rc(R, 0), ec(E, 0);
    for (int64_t t = t0; t < t1; t++) {
      uint8_t* row = in_rank + t * R;
      memset(row, 0, (size_t)R);
      for (int64_t j = 0; j < k; j++) {
        const int32_t e = indices[t * k + j];
        if (e < 0 || e >= E) continue;  // never from the ops layer (checked there); the GPU rule
        ec[e]++;
        const int64_t r = e / per;
        if (!row[r]) {
          row[r] = 1;
          rc[r]++;
        }
      }
    }
    // integer sums commute: the totals do not depend on the order the chunks finish in
    for (int64_t r = 0; r < R; r++) if (rc[r]) rank_total[r].fetch_add(rc[r]);
    for (int64_t e = 0; e < E; e++) if (ec[e]) expert_total[e].fetch_add(ec[e]);
  });
  for (int64_t r = 0; r < R; r++) per_rank[r] = (int32_t)rank_total[r].load();
  for (int64_t e = 0; e < E; e++) per_expert[e] = (int32_t)expert_total[e].load();
}

// ---------------------------------------------------------------- align

struct AlignOut {
  int32_t *sorted_pairs, *block_expert, *row_expert, *pair_pos, *counts, *info;
};

// Counting sort of the N = T·k pairs by expert, in chunks of CHUNK pairs:
//   1. each chunk counts its pairs per expert (hist[c][e]) and its bad indices;
//   2. serially: total per expert, kept = min(total, capacity), padded segment offsets, and each
//      chunk's starting rank within every expert (the counts of the chunks before it);
//   3. each chunk walks its pairs in ascending id and places rank r of expert e at offset_e + r (or
//      drops it when r ≥ capacity): ascending pair id within an expert, whatever the thread count;
//   4. padding rows, block experts and everything past P up to Pmax.
static void moe_align(const int32_t* indices, int64_t N, int64_t E, int64_t bs, int64_t capacity, int64_t Pmax, const AlignOut& o) {
  static constexpr int64_t CHUNK = 4096;
  const int64_t n_chunks = std::max<int64_t>(1, (N + CHUNK - 1) / CHUNK);
  std::vector<int32_t> hist((size_t)(n_chunks * E), 0);
  std::vector<int64_t> bad(n_chunks, 0);
  thread_pool().parallel_for(0, n_chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      int32_t* h = hist.data() + c * E;
      for (int64_t i = c * CHUNK; i < std::min(N, (c + 1) * CHUNK); i++) {
        const int32_t e = indices[i];
        if (e >= 0 && e < E) h[e]++;
        else bad[c]++;
      }
    }
  });
  std::vector<int64_t> offset(E + 1), kept(E);
  int64_t dropped = 0, n_bad = 0;
  offset[0] = 0;
  for (int64_t e = 0; e < E; e++) {
    int64_t total = 0;
    for (int64_t c = 0; c < n_chunks; c++) {
      int32_t& h = hist[c * E + e];
      const int32_t n = h;
      h = (int32_t)total;  // now the chunk's first rank within expert e
      total += n;
    }
    kept[e] = capacity > 0 ? std::min(total, capacity) : total;
    dropped += total - kept[e];
    offset[e + 1] = offset[e] + (kept[e] + bs - 1) / bs * bs;
  }
  for (int64_t c = 0; c < n_chunks; c++) n_bad += bad[c];
  const int64_t P = offset[E];
  const int32_t sentinel = (int32_t)N;
  thread_pool().parallel_for(0, n_chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++) {
      int32_t* rank = hist.data() + c * E;
      for (int64_t i = c * CHUNK; i < std::min(N, (c + 1) * CHUNK); i++) {
        const int32_t e = indices[i];
        if (e < 0 || e >= E) {
          o.pair_pos[i] = -1;
          continue;
        }
        const int64_t r = rank[e]++;
        if (r >= kept[e]) {
          o.pair_pos[i] = -1;
          continue;
        }
        const int64_t pos = offset[e] + r;
        o.sorted_pairs[pos] = (int32_t)i;
        o.row_expert[pos] = e;
        o.pair_pos[i] = (int32_t)pos;
      }
    }
  });
  // padding of each expert's segment, its blocks, then the tail past P
  thread_pool().parallel_for(0, E, 64, [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; e++) {
      for (int64_t pos = offset[e] + kept[e]; pos < offset[e + 1]; pos++) {
        o.sorted_pairs[pos] = sentinel;
        o.row_expert[pos] = -1;
      }
      for (int64_t b = offset[e] / bs; b < offset[e + 1] / bs; b++) o.block_expert[b] = (int32_t)e;
    }
  });
  for (int64_t pos = P; pos < Pmax; pos++) {
    o.sorted_pairs[pos] = sentinel;
    o.row_expert[pos] = -1;
  }
  for (int64_t b = P / bs; b < Pmax / bs; b++) o.block_expert[b] = -1;
  for (int64_t e = 0; e < E; e++) o.counts[e] = (int32_t)kept[e];
  o.info[0] = (int32_t)P;
  o.info[1] = (int32_t)dropped;
  o.info[2] = (int32_t)n_bad;
  o.info[3] = 0;
}

// ---------------------------------------------------------------- permute / unpermute

#if HP_X86
// out[0, h) = w·x[0, h) for the largest h ≤ H that is a multiple of 8; returns h
template <typename X>
HP_AVX2 static int64_t scale_row_avx2(const X* x, float w, int64_t H, X* out) {
  const __m256 wv = _mm256_set1_ps(w);
  int64_t h = 0;
  for (; h + 8 <= H; h += 8) store8(out + h, _mm256_mul_ps(wv, load8(x + h)));
  return h;
}
// acc[0, h) += w·y[0, h) (one FMA per element)
template <typename Y>
HP_AVX2 static int64_t axpy_row_avx2(const Y* y, float w, int64_t H, float* acc) {
  const __m256 wv = _mm256_set1_ps(w);
  int64_t h = 0;
  for (; h + 8 <= H; h += 8) _mm256_storeu_ps(acc + h, _mm256_fmadd_ps(wv, load8(y + h), _mm256_loadu_ps(acc + h)));
  return h;
}
template <typename O>
HP_AVX2 static int64_t store_row_avx2(const float* acc, int64_t H, O* out) {
  int64_t h = 0;
  for (; h + 8 <= H; h += 8) store8(out + h, _mm256_loadu_ps(acc + h));
  return h;
}
// Σ a[h]·b[h] over the first multiple of 8 elements, in f64 (each f32 product is exact there, as in
// the reference's f64 sum; two accumulators of 4 lanes); returns how many elements it covered
template <typename A, typename B>
HP_AVX2 static int64_t dot_avx2(const A* a, const B* b, int64_t H, double* sum) {
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  int64_t h = 0;
  for (; h + 8 <= H; h += 8) {
    const __m256 x = load8(a + h), y = load8(b + h);
    s0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_cvtps_pd(_mm256_castps256_ps128(y)), s0);
    s1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(y, 1)), s1);
  }
  alignas(32) double l[4];
  _mm256_store_pd(l, _mm256_add_pd(s0, s1));
  *sum = (l[0] + l[1]) + (l[2] + l[3]);
  return h;
}
#endif

// out[0, H) = w·x[0, H) (f32 product, rounded to bf16 for bf16 rows)
template <typename X>
static void scale_row(const X* x, float w, int64_t H, X* out) {
  int64_t h = 0;
#if HP_X86
  if (g_moe_avx2) h = scale_row_avx2(x, w, H, out);
#endif
  for (; h < H; h++) store_f(out, h, w * load_f(x, h));
}

template <typename Y>
static void axpy_row(const Y* y, float w, int64_t H, float* acc) {
  int64_t h = 0;
#if HP_X86
  if (g_moe_avx2) h = axpy_row_avx2(y, w, H, acc);
#endif
  for (; h < H; h++) acc[h] = std::fma(w, load_f(y, h), acc[h]);
}

template <typename O>
static void store_row(const float* acc, int64_t H, O* out) {
  int64_t h = 0;
#if HP_X86
  if (g_moe_avx2) h = store_row_avx2(acc, H, out);
#endif
  for (; h < H; h++) store_f(out, h, acc[h]);
}

template <typename A, typename B>
static double dot_row(const A* a, const B* b, int64_t H) {
  double sum = 0;
  int64_t h = 0;
#if HP_X86
  if (g_moe_avx2) h = dot_avx2(a, b, H, &sum);
#endif
  for (; h < H; h++) sum += (double)load_f(a, h) * load_f(b, h);
  return sum;
}

// rows [P] (pair ids) -> out [P, H]: out[p] = w[id]·x[id / k] (a copy without weights); a sentinel
// (or any id outside [0, T·k)) gives a zero row
template <typename X>
static void moe_permute(const X* x, const int32_t* rows, int64_t T, int64_t H, int64_t k, int64_t P, const float* weights, X* out) {
  const int64_t N = T * k;
  thread_pool().parallel_for(0, P, std::max<int64_t>(1, 32768 / std::max<int64_t>(H, 1)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t id = rows[p];
      X* o = out + p * H;
      if (id < 0 || id >= N) {
        memset(o, 0, (size_t)H * sizeof(X));
      } else if (!weights) {
        memcpy(o, x + (id / k) * H, (size_t)H * sizeof(X));
      } else {
        scale_row(x + (id / k) * H, weights[id], H, o);
      }
    }
  });
}

// rows [P] (pair ids) -> out [P, W] bytes: out[p] = x[id / k] as it is, zero bytes for an id outside
// [0, T·k) (permuteBytes: FP8 codes into expert order)
static void moe_permute_bytes(const uint8_t* x, const int32_t* rows, int64_t T, int64_t W, int64_t k, int64_t P, uint8_t* out) {
  const int64_t N = T * k;
  thread_pool().parallel_for(0, P, std::max<int64_t>(1, 65536 / std::max<int64_t>(W, 1)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t id = rows[p];
      if (id < 0 || id >= N) memset(out + p * W, 0, (size_t)W);
      else memcpy(out + p * W, x + (id / k) * W, (size_t)W);
    }
  });
}

// out[t] = Σ_j w[t,j]·y[pairPos[t,j]] in f32, slot order; pairPos −1 (or outside [0, P)) adds nothing
template <typename Y, typename O>
static void moe_unpermute(const Y* y, const int32_t* pair_pos, int64_t P, int64_t H, int64_t T, int64_t k, const float* weights, O* out) {
  thread_pool().parallel_for(0, T, std::max<int64_t>(1, 16384 / std::max<int64_t>(H * k, 1)), [&](int64_t t0, int64_t t1) {
    std::vector<float> acc(H);
    for (int64_t t = t0; t < t1; t++) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j = 0; j < k; j++) {
        const int64_t pp = pair_pos[t * k + j];
        if (pp < 0 || pp >= P) continue;
        axpy_row(y + pp * H, weights ? weights[t * k + j] : 1.0f, H, acc.data());
      }
      store_row(acc.data(), H, out + t * H);
    }
  });
}

// dWeights[t, j] = dOut[t]·y[pairPos[t, j]] (0 for a dropped pair)
template <typename D, typename Y>
static void moe_unpermute_weight_grad(const D* d_out, const Y* y, const int32_t* pair_pos, int64_t P, int64_t H, int64_t T, int64_t k, float* dw) {
  thread_pool().parallel_for(0, T, std::max<int64_t>(1, 16384 / std::max<int64_t>(H * k, 1)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      for (int64_t j = 0; j < k; j++) {
        const int64_t pp = pair_pos[t * k + j];
        dw[t * k + j] = pp < 0 || pp >= P ? 0.0f : (float)dot_row(d_out + t * H, y + pp * H, H);
      }
    }
  });
}

// ---------------------------------------------------------------- entry points

// A Float32Array or (bf16 bits) Uint16Array argument with at least n elements.
static HostView row_array(const Args& args, size_t i, const char* name, uint64_t n) {
  HostView v = args.typed_array(i, name);
  if (v.type != napi_float32_array && v.type != napi_uint16_array) {
    args.fail("E_ARG", std::string(name) + " must be a Float32Array (f32) or a Uint16Array (bf16), got a " + typed_array_name(v.type));
  }
  args.check_length(v, name, n);
  return v;
}

static bool is_null(const Napi::CallbackInfo& info, size_t i) { return info[i].IsNull() || info[i].IsUndefined(); }

// Reads k, nGroup, topkGroup etc. shared by route and its backward; E and k were read already.
static RouteParams route_params(const Args& args, uint64_t E, uint64_t k, size_t i_scoring) {
  RouteParams p;
  p.E = (int64_t)E;
  p.k = (int64_t)k;
  const uint64_t scoring = args.size(i_scoring, "scoring");
  if (scoring > 1) args.fail("E_ARG", "scoring must be 0 (sigmoid) or 1 (softmax), got " + std::to_string(scoring));
  p.scoring = (int)scoring;
  if (E == 0) args.fail("E_ARG", "E must be at least 1");
  if (k == 0 || k > E) args.fail("E_ARG", "topk must be in [1, E = " + std::to_string(E) + "], got " + std::to_string(k));
  return p;
}

// cpuMoeRoute(logits: Float32Array [T, E], bias: Float32Array [E] | null, T, E, scoring: 0 sigmoid | 1 softmax,
//             topk, nGroup, topkGroup, groupScore: 0 top2 | 1 max, normTopkProb: boolean, routedScalingFactor,
//             scores: Float32Array [T, E], weights: Float32Array [T, k], indices: Int32Array [T, k]): Promise<void>
Napi::Value CpuMoeRoute(const Napi::CallbackInfo& info) {
  Args args(info, "cpuMoeRoute", 14);
  const uint64_t T = args.size(2, "T"), E = args.size(3, "E"), k = args.size(5, "topk");
  RouteParams p = route_params(args, E, k, 4);
  const uint64_t G = args.size(6, "nGroup"), KG = args.size(7, "topkGroup"), gscore = args.size(8, "groupScore");
  if (G == 0 || E % G != 0) args.fail("E_ARG", "nGroup must divide E (" + std::to_string(E) + "), got " + std::to_string(G));
  if (KG == 0 || KG > G) args.fail("E_ARG", "topkGroup must be in [1, nGroup = " + std::to_string(G) + "], got " + std::to_string(KG));
  if (k > KG * (E / G)) args.fail("E_ARG", "topk (" + std::to_string(k) + ") exceeds the experts of the kept groups (" + std::to_string(KG * (E / G)) + ")");
  if (gscore > 1) args.fail("E_ARG", "groupScore must be 0 (top2) or 1 (max), got " + std::to_string(gscore));
  p.n_group = (int64_t)G;
  p.topk_group = (int64_t)KG;
  p.group_score = (int)gscore;
  p.norm = args.boolean(9, "normTopkProb");
  p.scale = args.finite_number(10, "routedScalingFactor");
  const uint64_t TE = checked_mul(info.Env(), "cpuMoeRoute", T, E, "T * E"), TK = checked_mul(info.Env(), "cpuMoeRoute", T, k, "T * topk");
  HostView logits = args.typed_array(0, "logits", napi_float32_array, TE);
  const bool has_bias = !is_null(info, 1);
  HostView bias = has_bias ? args.typed_array(1, "bias", napi_float32_array, E) : HostView{};
  HostView scores = args.typed_array(11, "scores", napi_float32_array, TE);
  HostView weights = args.typed_array(12, "weights", napi_float32_array, TK);
  HostView indices = args.typed_array(13, "indices", napi_int32_array, TK);
  const float* lp = (const float*)logits.data;
  const float* bp = has_bias ? (const float*)bias.data : nullptr;
  float *sp = (float*)scores.data, *wp = (float*)weights.data;
  int32_t* ip = (int32_t*)indices.data;
  auto* worker = new PromiseWorker(info.Env(), "cpuMoeRoute", {logits.value, has_bias ? bias.value : logits.value, scores.value, weights.value, indices.value},
                                   [=](double*) {
                                     moe_route(lp, bp, (int64_t)T, p, sp, wp, ip);
                                     return std::string();
                                   });
  worker->Queue();
  return worker->promise();
}

// cpuMoeRouteBackward(scores: Float32Array [T, E], indices: Int32Array [T, k], dWeights: Float32Array [T, k],
//                     dScores: Float32Array [T, E] | null, T, E, topk, scoring, normTopkProb, routedScalingFactor,
//                     dLogits: Float32Array [T, E]): Promise<void>
Napi::Value CpuMoeRouteBackward(const Napi::CallbackInfo& info) {
  Args args(info, "cpuMoeRouteBackward", 11);
  const uint64_t T = args.size(4, "T"), E = args.size(5, "E"), k = args.size(6, "topk");
  RouteParams p = route_params(args, E, k, 7);
  p.norm = args.boolean(8, "normTopkProb");
  p.scale = args.finite_number(9, "routedScalingFactor");
  const uint64_t TE = checked_mul(info.Env(), "cpuMoeRouteBackward", T, E, "T * E"), TK = checked_mul(info.Env(), "cpuMoeRouteBackward", T, k, "T * topk");
  HostView scores = args.typed_array(0, "scores", napi_float32_array, TE);
  HostView indices = args.typed_array(1, "indices", napi_int32_array, TK);
  HostView dw = args.typed_array(2, "dWeights", napi_float32_array, TK);
  const bool has_ds = !is_null(info, 3);
  HostView ds = has_ds ? args.typed_array(3, "dScores", napi_float32_array, TE) : HostView{};
  HostView dl = args.typed_array(10, "dLogits", napi_float32_array, TE);
  const float *sp = (const float*)scores.data, *dwp = (const float*)dw.data, *dsp = has_ds ? (const float*)ds.data : nullptr;
  const int32_t* ip = (const int32_t*)indices.data;
  float* dlp = (float*)dl.data;
  auto* worker = new PromiseWorker(info.Env(), "cpuMoeRouteBackward", {scores.value, indices.value, dw.value, has_ds ? ds.value : scores.value, dl.value},
                                   [=](double*) {
                                     thread_pool().parallel_for(0, (int64_t)T, std::max<int64_t>(1, 16384 / (int64_t)E), [&](int64_t t0, int64_t t1) {
                                       std::vector<double> g(E);
                                       for (int64_t t = t0; t < t1; t++) {
                                         route_backward_token(sp + t * E, ip + t * k, dwp + t * k, dsp ? dsp + t * E : nullptr, p, g.data(), dlp + t * E);
                                       }
                                     });
                                     return std::string();
                                   });
  worker->Queue();
  return worker->promise();
}

// cpuMoeUpdateBias(bias: Float32Array [E], load: Int32Array [E], E, gamma, out: Float32Array [E]): Promise<void>
Napi::Value CpuMoeUpdateBias(const Napi::CallbackInfo& info) {
  Args args(info, "cpuMoeUpdateBias", 5);
  const uint64_t E = args.size(2, "E");
  if (E == 0) args.fail("E_ARG", "E must be at least 1");
  HostView bias = args.typed_array(0, "bias", napi_float32_array, E);
  HostView load = args.typed_array(1, "load", napi_int32_array, E);
  const double gamma = args.finite_number(3, "gamma");
  HostView out = args.typed_array(4, "out", napi_float32_array, E);
  const float* bp = (const float*)bias.data;
  const int32_t* lp = (const int32_t*)load.data;
  float* op = (float*)out.data;
  auto* worker = new PromiseWorker(info.Env(), "cpuMoeUpdateBias", {bias.value, load.value, out.value}, [=](double*) {
    // the sign of mean − load_i from the exact integer Σload − E·load_i; gamma as f32 (the reference)
    int64_t total = 0;
    for (uint64_t e = 0; e < E; e++) total += lp[e];
    const double g = (double)(float)gamma;
    for (uint64_t e = 0; e < E; e++) {
      const int64_t d = total - (int64_t)E * lp[e];
      op[e] = (float)((double)bp[e] + g * (double)((d > 0) - (d < 0)));
    }
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// cpuMoeAuxLoss(scores: Float32Array [T, E], indices: Int32Array [T, k], T, E, topk, seqLen, alpha,
//               dScores: Float32Array [T, E]): Promise<number> (the loss)
Napi::Value CpuMoeAuxLoss(const Napi::CallbackInfo& info) {
  Args args(info, "cpuMoeAuxLoss", 8);
  const uint64_t T = args.size(2, "T"), E = args.size(3, "E"), k = args.size(4, "topk"), L = args.size(5, "seqLen");
  if (E == 0) args.fail("E_ARG", "E must be at least 1");
  if (k == 0) args.fail("E_ARG", "topk must be at least 1");
  if (T == 0 || L == 0 || T % L != 0) args.fail("E_SHAPE", "seqLen must divide T (" + std::to_string(T) + ") and T must be ≥ 1, got seqLen " + std::to_string(L));
  const double alpha = args.finite_number(6, "alpha");
  const uint64_t TE = checked_mul(info.Env(), "cpuMoeAuxLoss", T, E, "T * E"), TK = checked_mul(info.Env(), "cpuMoeAuxLoss", T, k, "T * topk");
  HostView scores = args.typed_array(0, "scores", napi_float32_array, TE);
  HostView indices = args.typed_array(1, "indices", napi_int32_array, TK);
  HostView ds = args.typed_array(7, "dScores", napi_float32_array, TE);
  const float* sp = (const float*)scores.data;
  const int32_t* ip = (const int32_t*)indices.data;
  float* dsp = (float*)ds.data;
  auto* worker = new PromiseWorker(info.Env(), "cpuMoeAuxLoss", {scores.value, indices.value, ds.value}, [=](double* result) {
    *result = moe_aux_loss(sp, ip, (int64_t)T, (int64_t)E, (int64_t)k, (int64_t)L, alpha, dsp);
    return std::string();
  }, "E_NATIVE", true);
  worker->Queue();
  return worker->promise();
}

// cpuMoeLayout(indices: Int32Array [T, k], T, k, E, R, tokensPerRank: Int32Array [R], tokensPerExpert:
//              Int32Array [E], isTokenInRank: Uint8Array [T, R]): Promise<void>
Napi::Value CpuMoeLayout(const Napi::CallbackInfo& info) {
  Args args(info, "cpuMoeLayout", 8);
  const uint64_t T = args.size(1, "T"), k = args.size(2, "topk"), E = args.size(3, "numExperts"), R = args.size(4, "numRanks");
  if (R == 0 || E == 0 || E % R != 0) args.fail("E_ARG", "numRanks must divide numExperts (" + std::to_string(E) + "), got " + std::to_string(R));
  if (E > (uint64_t)INT32_MAX) args.fail("E_TOO_LARGE", "numExperts must fit in an i32, got " + std::to_string(E));
  const uint64_t TK = checked_mul(info.Env(), "cpuMoeLayout", T, k, "T * topk"), TR = checked_mul(info.Env(), "cpuMoeLayout", T, R, "T * numRanks");
  if (TK > (uint64_t)INT32_MAX) args.fail("E_TOO_LARGE", "T * topk must fit in an i32 (pair ids), got " + std::to_string(TK));
  HostView indices = args.typed_array(0, "indices", napi_int32_array, TK);
  HostView per_rank = args.typed_array(5, "tokensPerRank", napi_int32_array, R);
  HostView per_expert = args.typed_array(6, "tokensPerExpert", napi_int32_array, E);
  HostView in_rank = args.typed_array(7, "isTokenInRank", napi_uint8_array, TR);
  const int32_t* ip = (const int32_t*)indices.data;
  int32_t *rp = (int32_t*)per_rank.data, *ep = (int32_t*)per_expert.data;
  uint8_t* mp = (uint8_t*)in_rank.data;
  auto* worker = new PromiseWorker(info.Env(), "cpuMoeLayout", {indices.value, per_rank.value, per_expert.value, in_rank.value}, [=](double*) {
    moe_layout(ip, (int64_t)T, (int64_t)k, (int64_t)E, (int64_t)R, rp, ep, mp);
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// cpuMoeAlign(indices: Int32Array [T, k], T, k, E, blockSize, capacity (0 = none), sortedPairs: Int32Array [Pmax],
//             blockExpert: Int32Array [Pmax / blockSize], rowExpert: Int32Array [Pmax], pairPos: Int32Array [T, k],
//             counts: Int32Array [E], info: Int32Array [4]): Promise<void>
// with Pmax = T·k + E·(blockSize − 1) rounded up to a multiple of blockSize
Napi::Value CpuMoeAlign(const Napi::CallbackInfo& info) {
  Args args(info, "cpuMoeAlign", 12);
  const uint64_t T = args.size(1, "T"), k = args.size(2, "topk"), E = args.size(3, "numExperts"), bs = args.size(4, "blockSize");
  const uint64_t capacity = args.size(5, "capacity");
  if (E == 0) args.fail("E_ARG", "numExperts must be at least 1");
  if (bs == 0) args.fail("E_ARG", "blockSize must be at least 1");
  const uint64_t N = checked_mul(info.Env(), "cpuMoeAlign", T, k, "T * topk");
  const uint64_t pad = checked_mul(info.Env(), "cpuMoeAlign", E, bs - 1, "numExperts * (blockSize - 1)");
  if (N > (uint64_t)INT32_MAX || pad > (uint64_t)INT32_MAX || E > (uint64_t)INT32_MAX || N + pad + bs > (uint64_t)INT32_MAX) {
    args.fail("E_TOO_LARGE", "T * topk + numExperts * (blockSize - 1) must fit in an i32 (row positions), got " + std::to_string(N) + " + " + std::to_string(pad));
  }
  const uint64_t Pmax = ceil_div(N + pad, bs) * bs;
  HostView indices = args.typed_array(0, "indices", napi_int32_array, N);
  HostView sorted = args.typed_array(6, "sortedPairs", napi_int32_array, Pmax);
  HostView block = args.typed_array(7, "blockExpert", napi_int32_array, Pmax / bs);
  HostView row = args.typed_array(8, "rowExpert", napi_int32_array, Pmax);
  HostView pos = args.typed_array(9, "pairPos", napi_int32_array, N);
  HostView counts = args.typed_array(10, "counts", napi_int32_array, E);
  HostView inf = args.typed_array(11, "info", napi_int32_array, 4);
  const int32_t* ip = (const int32_t*)indices.data;
  AlignOut o{(int32_t*)sorted.data, (int32_t*)block.data, (int32_t*)row.data, (int32_t*)pos.data, (int32_t*)counts.data, (int32_t*)inf.data};
  auto* worker = new PromiseWorker(info.Env(), "cpuMoeAlign", {indices.value, sorted.value, block.value, row.value, pos.value, counts.value, inf.value},
                                   [=](double*) {
                                     moe_align(ip, (int64_t)N, (int64_t)E, (int64_t)bs, (int64_t)capacity, (int64_t)Pmax, o);
                                     return std::string();
                                   });
  worker->Queue();
  return worker->promise();
}

// cpuMoePermute(x: Float32Array | Uint16Array [T, H], rows: Int32Array [P], T, H, topk, P,
//               weights: Float32Array [T·k] | null, out: same type as x [P, H]): Promise<void>
Napi::Value CpuMoePermute(const Napi::CallbackInfo& info) {
  Args args(info, "cpuMoePermute", 8);
  const uint64_t T = args.size(2, "T"), H = args.size(3, "H"), k = args.size(4, "topk"), P = args.size(5, "P");
  if (k == 0) args.fail("E_ARG", "topk must be at least 1");
  const uint64_t TH = checked_mul(info.Env(), "cpuMoePermute", T, H, "T * H"), PH = checked_mul(info.Env(), "cpuMoePermute", P, H, "P * H");
  const uint64_t TK = checked_mul(info.Env(), "cpuMoePermute", T, k, "T * topk");
  HostView x = row_array(args, 0, "x", TH);
  HostView rows = args.typed_array(1, "rows", napi_int32_array, P);
  const bool has_w = !is_null(info, 6);
  HostView w = has_w ? args.typed_array(6, "weights", napi_float32_array, TK) : HostView{};
  HostView out = row_array(args, 7, "out", PH);
  if (out.type != x.type) args.fail("E_ARG", std::string("out must be a ") + typed_array_name(x.type) + " like x, got a " + typed_array_name(out.type));
  const bool bf16 = x.type == napi_uint16_array;
  const void* xp = x.data;
  void* op = out.data;
  const int32_t* rp = (const int32_t*)rows.data;
  const float* wp = has_w ? (const float*)w.data : nullptr;
  auto* worker = new PromiseWorker(info.Env(), "cpuMoePermute", {x.value, rows.value, has_w ? w.value : x.value, out.value}, [=](double*) {
    if (bf16) moe_permute((const uint16_t*)xp, rp, (int64_t)T, (int64_t)H, (int64_t)k, (int64_t)P, wp, (uint16_t*)op);
    else moe_permute((const float*)xp, rp, (int64_t)T, (int64_t)H, (int64_t)k, (int64_t)P, wp, (float*)op);
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// cpuMoePermuteBytes(x: any typed array (T·rowBytes bytes), rows: Int32Array [P], T, rowBytes, topk, P,
//                    out: any typed array (P·rowBytes bytes)): Promise<void>
Napi::Value CpuMoePermuteBytes(const Napi::CallbackInfo& info) {
  Args args(info, "cpuMoePermuteBytes", 7);
  const uint64_t T = args.size(2, "T"), W = args.size(3, "rowBytes"), k = args.size(4, "topk"), P = args.size(5, "P");
  if (k == 0) args.fail("E_ARG", "topk must be at least 1");
  const uint64_t TW = checked_mul(info.Env(), "cpuMoePermuteBytes", T, W, "T * rowBytes"), PW = checked_mul(info.Env(), "cpuMoePermuteBytes", P, W, "P * rowBytes");
  checked_mul(info.Env(), "cpuMoePermuteBytes", T, k, "T * topk");
  HostView x = args.typed_array(0, "x");
  if ((uint64_t)x.bytes < TW) args.fail("E_SHAPE", "x must hold at least " + std::to_string(TW) + " bytes, got " + std::to_string(x.bytes));
  HostView rows = args.typed_array(1, "rows", napi_int32_array, P);
  HostView out = args.typed_array(6, "out");
  if ((uint64_t)out.bytes < PW) args.fail("E_SHAPE", "out must hold at least " + std::to_string(PW) + " bytes, got " + std::to_string(out.bytes));
  const uint8_t* xp = (const uint8_t*)x.data;
  const int32_t* rp = (const int32_t*)rows.data;
  uint8_t* op = (uint8_t*)out.data;
  auto* worker = new PromiseWorker(info.Env(), "cpuMoePermuteBytes", {x.value, rows.value, out.value}, [=](double*) {
    moe_permute_bytes(xp, rp, (int64_t)T, (int64_t)W, (int64_t)k, (int64_t)P, op);
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// cpuMoeUnpermute(y: Float32Array | Uint16Array [P, H], pairPos: Int32Array [T, k], P, H, T, topk,
//                 weights: Float32Array [T, k] | null, out: Float32Array | Uint16Array [T, H]): Promise<void>
Napi::Value CpuMoeUnpermute(const Napi::CallbackInfo& info) {
  Args args(info, "cpuMoeUnpermute", 8);
  const uint64_t P = args.size(2, "P"), H = args.size(3, "H"), T = args.size(4, "T"), k = args.size(5, "topk");
  const uint64_t PH = checked_mul(info.Env(), "cpuMoeUnpermute", P, H, "P * H"), TH = checked_mul(info.Env(), "cpuMoeUnpermute", T, H, "T * H");
  const uint64_t TK = checked_mul(info.Env(), "cpuMoeUnpermute", T, k, "T * topk");
  HostView y = row_array(args, 0, "y", PH);
  HostView pos = args.typed_array(1, "pairPos", napi_int32_array, TK);
  const bool has_w = !is_null(info, 6);
  HostView w = has_w ? args.typed_array(6, "weights", napi_float32_array, TK) : HostView{};
  HostView out = row_array(args, 7, "out", TH);
  const bool y16 = y.type == napi_uint16_array, o16 = out.type == napi_uint16_array;
  const void* yp = y.data;
  void* op = out.data;
  const int32_t* pp = (const int32_t*)pos.data;
  const float* wp = has_w ? (const float*)w.data : nullptr;
  auto* worker = new PromiseWorker(info.Env(), "cpuMoeUnpermute", {y.value, pos.value, has_w ? w.value : y.value, out.value}, [=](double*) {
    const int64_t p_ = (int64_t)P, h_ = (int64_t)H, t_ = (int64_t)T, k_ = (int64_t)k;
    if (y16 && o16) moe_unpermute((const uint16_t*)yp, pp, p_, h_, t_, k_, wp, (uint16_t*)op);
    else if (y16) moe_unpermute((const uint16_t*)yp, pp, p_, h_, t_, k_, wp, (float*)op);
    else if (o16) moe_unpermute((const float*)yp, pp, p_, h_, t_, k_, wp, (uint16_t*)op);
    else moe_unpermute((const float*)yp, pp, p_, h_, t_, k_, wp, (float*)op);
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// cpuMoeUnpermuteWeightGrad(dOut: Float32Array | Uint16Array [T, H], y: Float32Array | Uint16Array [P, H],
//                           pairPos: Int32Array [T, k], T, topk, P, H, dWeights: Float32Array [T, k]): Promise<void>
Napi::Value CpuMoeUnpermuteWeightGrad(const Napi::CallbackInfo& info) {
  Args args(info, "cpuMoeUnpermuteWeightGrad", 8);
  const uint64_t T = args.size(3, "T"), k = args.size(4, "topk"), P = args.size(5, "P"), H = args.size(6, "H");
  const uint64_t PH = checked_mul(info.Env(), "cpuMoeUnpermuteWeightGrad", P, H, "P * H"), TH = checked_mul(info.Env(), "cpuMoeUnpermuteWeightGrad", T, H, "T * H");
  const uint64_t TK = checked_mul(info.Env(), "cpuMoeUnpermuteWeightGrad", T, k, "T * topk");
  HostView d_out = row_array(args, 0, "dOut", TH);
  HostView y = row_array(args, 1, "y", PH);
  HostView pos = args.typed_array(2, "pairPos", napi_int32_array, TK);
  HostView dw = args.typed_array(7, "dWeights", napi_float32_array, TK);
  const bool d16 = d_out.type == napi_uint16_array, y16 = y.type == napi_uint16_array;
  const void *dp = d_out.data, *yp = y.data;
  const int32_t* pp = (const int32_t*)pos.data;
  float* wp = (float*)dw.data;
  auto* worker = new PromiseWorker(info.Env(), "cpuMoeUnpermuteWeightGrad", {d_out.value, y.value, pos.value, dw.value}, [=](double*) {
    const int64_t p_ = (int64_t)P, h_ = (int64_t)H, t_ = (int64_t)T, k_ = (int64_t)k;
    if (d16 && y16) moe_unpermute_weight_grad((const uint16_t*)dp, (const uint16_t*)yp, pp, p_, h_, t_, k_, wp);
    else if (d16) moe_unpermute_weight_grad((const uint16_t*)dp, (const float*)yp, pp, p_, h_, t_, k_, wp);
    else if (y16) moe_unpermute_weight_grad((const float*)dp, (const uint16_t*)yp, pp, p_, h_, t_, k_, wp);
    else moe_unpermute_weight_grad((const float*)dp, (const float*)yp, pp, p_, h_, t_, k_, wp);
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

}  // namespace hp
