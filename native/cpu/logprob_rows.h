// The CPU log-prob row kernels, shared by native/cpu/logprob.cc (fromLogits and its backward) and
// native/cpu/grpo.cc (the fused token-level GRPO kernel): a row's online logsumexp / log-prob /
// entropy in one pass over the logits, and a row's gradient (onehot − softmax)·g/T. See logprob.cc's
// header for the scheme.
#pragma once

#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/exp_simd.h"
#include "common/simd.h"

namespace hp {

static const bool g_logprob_avx2 = cpu_use_avx2();
static const bool g_logprob_avx512 = cpu_use_avx512();

// vocab entries per chunk: 8 KiB of f32, in L1 between the two sweeps
static constexpr int64_t CHUNK = 2048;
// exp(x − max) is taken at max(x − max, EXP_FLOOR): exp of it is ~1e-38, so −inf logits add nothing
// measurable to the sums while their (x − max)·exp(x − max) stays finite (0 · −inf would be NaN)
static constexpr float EXP_FLOOR = -87.0f;

// One chunk's contribution, relative to its own max m: s = Σ exp(x − m), w = Σ exp(x − m)·(x − m).
struct ChunkStats {
  float m;
  double s, w;
  bool nan;
};

// A logit as f32: f32 as is, bf16 widened exactly.
static inline float load_logit(const float* z, int64_t i) { return z[i]; }
static inline float load_logit(const uint16_t* z, int64_t i) {
  uint32_t u = (uint32_t)z[i] << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// ---------------------------------------------------------------- scalar chunk kernels

// z[0, n) (logits) times inv_t -> stats of x = z · inv_t
template <typename In>
static ChunkStats chunk_stats_scalar(const In* z, int64_t n, float inv_t, bool want_w) {
  ChunkStats c{-std::numeric_limits<float>::infinity(), 0, 0, false};
  for (int64_t i = 0; i < n; i++) {
    const float x = load_logit(z, i) * inv_t;
    if (std::isnan(x)) c.nan = true;
    c.m = std::max(c.m, x);
  }
  if (c.nan || c.m == -std::numeric_limits<float>::infinity()) return c;
  float s = 0, w = 0;
  for (int64_t i = 0; i < n; i++) {
    const float d = std::max(load_logit(z, i) * inv_t - c.m, EXP_FLOOR);
    const float e = std::exp(d);
    s += e;
    if (want_w) w += e * d;
  }
  c.s = s;
  c.w = w;
  return c;
}

// out[i] = (onehot(y)[i] − exp(z[i]·inv_t − lse)) · scale for i in [0, n); y relative to the chunk
template <typename In>
static void chunk_backward_scalar(const In* z, int64_t n, float inv_t, float lse, float scale, int64_t y, float* out) {
  for (int64_t i = 0; i < n; i++) {
    const float p = std::exp(std::max(load_logit(z, i) * inv_t - lse, EXP_FLOOR * 2));
    out[i] = ((i == y ? 1.0f : 0.0f) - p) * scale;
  }
}

// The scalar ends the SIMD chunk kernels share. chunk_max_finish: the max over the entries [i, n) left
// after the vector sweep and `zmax`, the vector part's max (NaNs passed over), sets c.m = max·inv_t;
// true when that is −inf (the chunk holds only −inf and NaN: c.nan then comes from a scan, and the
// chunk is done).
template <typename In>
static inline bool chunk_max_finish(const In* z, int64_t i, int64_t n, float zmax, float inv_t, ChunkStats& c) {
  for (; i < n; i++) zmax = std::max(load_logit(z, i), zmax);  // std::max(a, b) returns a when b is NaN
  c.m = zmax * inv_t;
  if (c.m != -std::numeric_limits<float>::infinity()) return false;
  for (i = 0; i < n; i++) c.nan |= std::isnan(load_logit(z, i));
  return true;
}
// chunk_sum_finish: adds the entries [i, n) to the vector part's sums s and w (relative to c.m), then
// sets c's sums and its NaN flag (a NaN logit makes the sum NaN).
template <typename In>
static inline void chunk_sum_finish(const In* z, int64_t i, int64_t n, float inv_t, double s, double w, ChunkStats& c) {
  for (; i < n; i++) {
    const float d = std::max(load_logit(z, i) * inv_t - c.m, EXP_FLOOR);  // std::max keeps a NaN first operand
    const float e = std::exp(d);
    s += e;
    w += (double)e * d;
  }
  c.nan = std::isnan(s);
  c.s = s;
  c.w = w;
}

// ---------------------------------------------------------------- AVX2 chunk kernels
#if HP_X86

static constexpr float LOG2E = 1.44269504088896341f;
static constexpr double LN2 = 0.69314718055994531;

HP_AVX2 static inline __m256 load8_logits(const float* z) { return _mm256_loadu_ps(z); }
HP_AVX2 static inline __m256 load8_logits(const uint16_t* z) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)z)), 16));
}
// 16 logits as f32 in two vectors, in an order of the loader's choosing (for maxima and sums only):
// f32 as two loads; bf16 as one 32-byte load whose high halves of each 32-bit lane are already the
// odd elements as f32 (once the low halves are masked off) and whose low halves, shifted up, the even.
HP_AVX2 static inline void load16_logits_unordered(const float* z, __m256& a, __m256& b) {
  a = _mm256_loadu_ps(z);
  b = _mm256_loadu_ps(z + 8);
}
HP_AVX2 static inline void load16_logits_unordered(const uint16_t* z, __m256& a, __m256& b) {
  const __m256i v = _mm256_loadu_si256((const __m256i*)z);
  a = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xFFFF0000u)));
  b = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

HP_AVX2 static inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
HP_AVX2 static inline double hsum8(__m256 v) {
  alignas(32) float l[8];
  _mm256_store_ps(l, v);
  double s = 0;
  for (int i = 0; i < 8; i++) s += l[i];
  return s;
}

// The same stats as chunk_stats_scalar with about 1 + 13 vector operations per 8 logits:
// - the max is taken over the raw logits (max(z)·inv_t is max(z·inv_t) exactly: inv_t > 0 and rounding
//   is monotone), with NaNs passed over (max returns its second operand when one is NaN);
// - NaN is detected afterwards from the sum instead: in the second sweep a NaN logit (or every logit
//   once the max is +inf) gives a NaN d, which survives the floor (the floor is max's first operand),
//   exp2 and the adds. A chunk whose max is −inf (only −inf and NaN) is checked for NaN by a scalar scan.
template <typename In>
HP_AVX2 static ChunkStats chunk_stats_avx2(const In* z, int64_t n, float inv_t, bool want_w) {
  ChunkStats c{-std::numeric_limits<float>::infinity(), 0, 0, false};
  __m256 mx0 = _mm256_set1_ps(-std::numeric_limits<float>::infinity()), mx1 = mx0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 a, b;
    load16_logits_unordered(z + i, a, b);
    mx0 = _mm256_max_ps(a, mx0);
    mx1 = _mm256_max_ps(b, mx1);
  }
  if (chunk_max_finish(z, i, n, hmax8(_mm256_max_ps(mx0, mx1)), inv_t, c)) return c;
  // in base 2: d2 = (x − m)·log2 e = z·(inv_t·log2 e) − m·log2 e, one FMA; exp(x − m) = 2^d2
  const __m256 it2 = _mm256_set1_ps(inv_t * LOG2E), m8 = _mm256_set1_ps(c.m * LOG2E);
  const __m256 floor8 = _mm256_set1_ps(EXP_FLOOR * LOG2E);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), w0 = _mm256_setzero_ps(), w1 = _mm256_setzero_ps();
  // the first sweep waits on memory and the second on arithmetic: while this chunk's second sweep runs
  // from L1, fetch the next n logits (the rest of the row, or the next row: rows are contiguous; a
  // prefetch past the end of the logits does not fault), so that the next first sweep finds them cached
  const char* next = (const char*)(z + n);
  i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm_prefetch(next + i * (int64_t)sizeof(In), _MM_HINT_T0);
    __m256 a, b;
    load16_logits_unordered(z + i, a, b);
    const __m256 d0 = _mm256_max_ps(floor8, _mm256_fmsub_ps(a, it2, m8));
    const __m256 d1 = _mm256_max_ps(floor8, _mm256_fmsub_ps(b, it2, m8));
    const __m256 e0 = exp2_8_nonpositive(d0);
    const __m256 e1 = exp2_8_nonpositive(d1);
    s0 = _mm256_add_ps(s0, e0);
    s1 = _mm256_add_ps(s1, e1);
    if (want_w) {
      w0 = _mm256_fmadd_ps(e0, d0, w0);  // in units of log2: scaled by ln 2 below
      w1 = _mm256_fmadd_ps(e1, d1, w1);
    }
  }
  chunk_sum_finish(z, i, n, inv_t, hsum8(_mm256_add_ps(s0, s1)), hsum8(_mm256_add_ps(w0, w1)) * LN2, c);
  return c;
}

// GCC 12 reports its own AVX-512 intrinsics' undefined pass-through operands as uninitialized when
// they are inlined into a target("avx512f") function: a false positive, silenced here only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// chunk_stats_avx2 on 16 lanes, 32 logits a step (AVX-512F: exp2 ends in one vscalefps): 1.26× the
// AVX2 kernel's logits per second in cache on a Zen 4 core, whose 512-bit units are 256 bits wide.
HP_AVX512 static inline void load32_logits_unordered(const float* z, __m512& a, __m512& b) {
  a = _mm512_loadu_ps(z);
  b = _mm512_loadu_ps(z + 16);
}
HP_AVX512 static inline void load32_logits_unordered(const uint16_t* z, __m512& a, __m512& b) {
  const __m512i v = _mm512_loadu_si512(z);
  a = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xFFFF0000u)));
  b = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}
HP_AVX512 static inline double hsum16(__m512 v) {
  alignas(64) float l[16];
  _mm512_store_ps(l, v);
  double s = 0;
  for (int i = 0; i < 16; i++) s += l[i];
  return s;
}

template <typename In>
HP_AVX512 static ChunkStats chunk_stats_avx512(const In* z, int64_t n, float inv_t, bool want_w) {
  ChunkStats c{-std::numeric_limits<float>::infinity(), 0, 0, false};
  __m512 mx0 = _mm512_set1_ps(-std::numeric_limits<float>::infinity()), mx1 = mx0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 a, b;
    load32_logits_unordered(z + i, a, b);
    mx0 = _mm512_max_ps(a, mx0);  // NaN passed over, as in chunk_stats_avx2
    mx1 = _mm512_max_ps(b, mx1);
  }
  if (chunk_max_finish(z, i, n, _mm512_reduce_max_ps(_mm512_max_ps(mx0, mx1)), inv_t, c)) return c;
  const __m512 it2 = _mm512_set1_ps(inv_t * LOG2E), m16 = _mm512_set1_ps(c.m * LOG2E);
  const __m512 floor16 = _mm512_set1_ps(EXP_FLOOR * LOG2E);
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), w0 = _mm512_setzero_ps(), w1 = _mm512_setzero_ps();
  const char* next = (const char*)(z + n);  // the next chunk, fetched during this sweep (chunk_stats_avx2)
  i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm_prefetch(next + i * (int64_t)sizeof(In), _MM_HINT_T0);
    if (sizeof(In) == 4) _mm_prefetch(next + i * 4 + 64, _MM_HINT_T0);  // f32: 128 bytes a step
    __m512 a, b;
    load32_logits_unordered(z + i, a, b);
    const __m512 d0 = _mm512_max_ps(floor16, _mm512_fmsub_ps(a, it2, m16));
    const __m512 d1 = _mm512_max_ps(floor16, _mm512_fmsub_ps(b, it2, m16));
    const __m512 e0 = exp2_16_nonpositive(d0);
    const __m512 e1 = exp2_16_nonpositive(d1);
    s0 = _mm512_add_ps(s0, e0);
    s1 = _mm512_add_ps(s1, e1);
    if (want_w) {
      w0 = _mm512_fmadd_ps(e0, d0, w0);
      w1 = _mm512_fmadd_ps(e1, d1, w1);
    }
  }
  chunk_sum_finish(z, i, n, inv_t, hsum16(_mm512_add_ps(s0, s1)), hsum16(_mm512_add_ps(w0, w1)) * LN2, c);
  return c;
}

#pragma GCC diagnostic pop

template <typename In>
HP_AVX2 static void chunk_backward_avx2(const In* z, int64_t n, float inv_t, float lse, float scale, int64_t y, float* out) {
  // p = exp(z·inv_t − lse) = 2^(z·(inv_t·log2 e) − lse·log2 e); below 2^−150 it is 0 (a −inf logit)
  const __m256 it2 = _mm256_set1_ps(inv_t * LOG2E), l8 = _mm256_set1_ps(lse * LOG2E), sc = _mm256_set1_ps(-scale);
  // the target's logit, read before anything is written (dlogits may be the logits themselves)
  const float z_target = (y >= 0 && y < n) ? load_logit(z, y) : 0.0f;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 p = exp2_8(_mm256_fmsub_ps(load8_logits(z + i), it2, l8));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(p, sc));  // reads z[i..i+8) before writing: in place is fine
  }
  for (; i < n; i++) out[i] = -std::exp(std::max(load_logit(z, i) * inv_t - lse, EXP_FLOOR * 2)) * scale;
  if (y >= 0 && y < n) out[y] = (1.0f - std::exp(std::max(z_target * inv_t - lse, EXP_FLOOR * 2))) * scale;
}
#endif

// ---------------------------------------------------------------- row kernels

// logits [N, V] -> logp, lse [N], entropy [N] or null. A NaN logit makes its row NaN; a row of all
// −inf has lse −inf and logp, entropy NaN; a target outside [0, V) gives logp NaN.
template <typename In>
static void logprob_forward_rows(const In* z, const int32_t* targets, int64_t r0, int64_t r1, int64_t V, float T,
                                 float* logp, float* lse, float* entropy) {
  const float inv_t = 1.0f / T;
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t t = r0; t < r1; t++) {
    const In* row = z + t * V;
    double m = -inf, s = 0, w = 0;
    bool nan = false;
    for (int64_t c0 = 0; c0 < V; c0 += CHUNK) {
      const int64_t n = std::min(CHUNK, V - c0);
#if HP_X86
      const bool want_w = entropy != nullptr;
      const ChunkStats c = g_logprob_avx512 ? chunk_stats_avx512(row + c0, n, inv_t, want_w)
                           : g_logprob_avx2 ? chunk_stats_avx2(row + c0, n, inv_t, want_w)
                                            : chunk_stats_scalar(row + c0, n, inv_t, want_w);
#else
      const ChunkStats c = chunk_stats_scalar(row + c0, n, inv_t, entropy != nullptr);
#endif
      if (c.nan) nan = true;
      if (nan || c.m == -std::numeric_limits<float>::infinity()) continue;
      const double mc = c.m;
      if (mc == inf) {  // +inf logit: exp(inf − inf) is NaN, as in the reference
        nan = true;
        continue;
      }
      if (mc > m) {
        if (m != -inf) {
          const double a = std::exp(m - mc);
          w = a * (w + (m - mc) * s);
          s = a * s;
        }
        m = mc;
        s += c.s;
        w += c.w;
      } else {
        const double a = std::exp(mc - m);
        s += a * c.s;
        w += a * (c.w + (mc - m) * c.s);
      }
    }
    const int32_t y = targets[t];
    const double x_target = (y >= 0 && y < V) ? (double)(load_logit(row, y) * inv_t) : std::nan("");
    double row_lse;
    if (nan) row_lse = std::nan("");
    else if (s > 0) row_lse = m + std::log(s);
    else row_lse = -inf;
    lse[t] = (float)row_lse;
    logp[t] = (float)(x_target - row_lse);
    if (entropy) entropy[t] = (!nan && s > 0) ? (float)(std::log(s) - w / s) : std::nanf("");
  }
}

// dlogits [N, V] = (onehot(y) − exp(z/T − lse)) · g / T, chunk by chunk; dlogits may alias z (f32).
template <typename In>
static void logprob_backward_rows(const In* z, const int32_t* targets, const float* lse, const float* g, int64_t r0,
                                  int64_t r1, int64_t V, float T, float* dlogits) {
  const float inv_t = 1.0f / T;
  for (int64_t t = r0; t < r1; t++) {
    const In* row = z + t * V;
    float* out = dlogits + t * V;
    const float scale = g[t] / T;
    const int64_t y = targets[t];
    for (int64_t c0 = 0; c0 < V; c0 += CHUNK) {
      const int64_t n = std::min(CHUNK, V - c0);
#if HP_X86
      if (g_logprob_avx2) {
        chunk_backward_avx2(row + c0, n, inv_t, lse[t], scale, y - c0, out + c0);
        continue;
      }
#endif
      chunk_backward_scalar(row + c0, n, inv_t, lse[t], scale, y - c0, out + c0);
    }
  }
}

// Rows per task: about 64 Ki logits each, at least one row.
static inline int64_t row_grain(int64_t V) { return std::max<int64_t>(1, (int64_t)65536 / std::max<int64_t>(V, 1)); }

}  // namespace hp
