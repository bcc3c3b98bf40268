// CPU nn kernels for the trainer's transformer: embedding, RMSNorm, RoPE, causal attention, SwiGLU,
// addScaled, sumSquares, AdamW and sampling, with their backwards. Same semantics as
// src/reference/nn.ts (NnKernels in src/runtime/backend.ts); f32 arithmetic (AVX2/FMA where it pays,
// scalar otherwise) with the reductions that decide accuracy in f64 (sumSquares, sampling), so they
// agree with the reference to f32 rounding, not bit for bit — except sample, whose ids match exactly.
//
// Every result is deterministic: work is split over rows, heads or fixed blocks (never by thread
// count), and each sum runs in one fixed order (embeddingBackward walks each table row's ids in
// order; RMSNorm's dWeight sums fixed row blocks' partials in block order).
//
// Small calls (under INLINE_WORK) run at once on the calling thread and return undefined: handing a
// job to a libuv worker and back costs tens of µs, more than the kernel at the trainer's sizes. The
// rest run on a worker thread and fan out over the addon's pool, behind a Promise.
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/entry_points.h"
#include "common/exp_simd.h"
#include "common/promise_worker.h"
#include "common/simd.h"
#include "common/threadpool.h"

namespace hp {

static const bool g_nn_avx2 = cpu_use_avx2();

// elementary operations below which a call runs on the calling thread (see the top of the file)
static constexpr double INLINE_WORK = 1 << 16;

// [begin, end) over the pool in chunks of `grain`, or at once on this thread when not pooled.
static void for_range(bool pooled, int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (pooled) thread_pool().parallel_for(begin, end, grain, fn);
  else if (end > begin) fn(begin, end);
}

// Runs fn(pooled) now (small work) or on a worker thread behind a Promise.
static Napi::Value launch(const Napi::CallbackInfo& info, const char* name, std::initializer_list<Napi::Object> keep, double work,
                          std::function<void(bool pooled)> fn) {
  if (work < INLINE_WORK) {
    fn(false);
    return info.Env().Undefined();
  }
  auto* worker = new PromiseWorker(info.Env(), name, keep, [fn](double*) {
    fn(true);
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// ---------------------------------------------------------------- vector helpers (AVX2 with scalar fallback)

static float dot_scalar(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}
// y += a·x
static void axpy_scalar(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

#if HP_X86
static constexpr float LOG2E_F = 1.44269504088896341f;

HP_AVX2 static inline float hsum8f(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
HP_AVX2 static float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum8f(_mm256_add_ps(s0, s1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}
HP_AVX2 static void axpy_avx2(float a, const float* x, float* y, int64_t n) {
  const __m256 a8 = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a8, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * x[i];
}
#endif

static inline float dot(const float* a, const float* b, int64_t n) {
#if HP_X86
  if (g_nn_avx2) return dot_avx2(a, b, n);
#endif
  return dot_scalar(a, b, n);
}
static inline void axpy(float a, const float* x, float* y, int64_t n) {
#if HP_X86
  if (g_nn_avx2) return axpy_avx2(a, x, y, n);
#endif
  axpy_scalar(a, x, y, n);
}

// ---------------------------------------------------------------- embedding

// table [V, D], ids [N] (checked in [0, V)) -> out [N, D]
static void embedding_rows(const float* table, const int32_t* ids, int64_t D, int64_t n0, int64_t n1, float* out) {
  for (int64_t n = n0; n < n1; n++) memcpy(out + n * D, table + (int64_t)ids[n] * D, (size_t)D * sizeof(float));
}

// dTable [V, D] += dOut [N, D] scattered by ids [N]. The ids are bucketed by table row with a stable
// counting sort (each bucket keeps its ids in order), then table rows split over the threads: no
// two threads touch one row, and each row adds its dOut rows in id order.
static void embedding_backward(const float* dout, const int32_t* ids, int64_t V, int64_t D, int64_t N, float* dtable, bool pooled) {
  std::vector<int64_t> start(V + 1, 0);
  for (int64_t n = 0; n < N; n++) start[ids[n] + 1]++;
  for (int64_t v = 0; v < V; v++) start[v + 1] += start[v];
  std::vector<int64_t> order(N), fill(start.begin(), start.end() - 1);
  for (int64_t n = 0; n < N; n++) order[fill[ids[n]]++] = n;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1));
  for_range(pooled, 0, V, grain, [&](int64_t v0, int64_t v1) {
    for (int64_t v = v0; v < v1; v++) {
      for (int64_t o = start[v]; o < start[v + 1]; o++) axpy(1.0f, dout + order[o] * D, dtable + v * D, D);
    }
  });
}

// ---------------------------------------------------------------- RMSNorm

#if HP_X86
// o[d] = x[d]·r·w[d] for the whole 8-lane part of [0, D); returns how far it got
HP_AVX2 static int64_t scale_rows_avx2(const float* x, const float* w, float r, int64_t D, float* o) {
  const __m256 r8 = _mm256_set1_ps(r);
  int64_t i = 0;
  for (; i + 8 <= D; i += 8) _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), r8), _mm256_loadu_ps(w + i)));
  return i;
}
#endif

// x [N, D], w [D] -> out [N, D] = x·rstd·w, rstd [N] = 1/sqrt(mean(x²) + eps); mean in f64
static void rmsnorm_rows(const float* x, const float* w, int64_t D, double eps, int64_t n0, int64_t n1, float* out, float* rstd) {
  for (int64_t n = n0; n < n1; n++) {
    const float* xr = x + n * D;
    const float r = (float)(1.0 / std::sqrt((double)dot(xr, xr, D) / (double)D + eps));
    rstd[n] = r;
    float* o = out + n * D;
    int64_t d = 0;
#if HP_X86
    if (g_nn_avx2) d = scale_rows_avx2(xr, w, r, D, o);
#endif
    for (; d < D; d++) o[d] = xr[d] * r * w[d];
  }
}

// rows of one dWeight partial: fixed, so the sum's order never depends on the thread count
static constexpr int64_t RMS_BLOCK = 64;

// dx_j = r·w_j·g_j − x_j·(r³/D)·Σ_k g_k·w_k·x_k; partial[j] = Σ_rows g_j·x_j·r over rows [n0, n1)
static void rmsnorm_backward_rows(const float* g, const float* x, const float* w, const float* rstd, int64_t D, int64_t n0, int64_t n1,
                                  float* dx, float* partial, std::vector<float>& gw) {
  for (int64_t n = n0; n < n1; n++) {
    const float *gr = g + n * D, *xr = x + n * D;
    const float r = rstd[n];
    for (int64_t d = 0; d < D; d++) gw[d] = gr[d] * w[d];
    const float c = (float)((double)r * r * r * (double)dot(gw.data(), xr, D) / (double)D);
    float* o = dx + n * D;
    for (int64_t d = 0; d < D; d++) o[d] = r * gw[d] - xr[d] * c;  // vectorised by the compiler
    for (int64_t d = 0; d < D; d++) partial[d] += gr[d] * xr[d] * r;
  }
}

static void rmsnorm_backward(const float* g, const float* x, const float* w, const float* rstd, int64_t N, int64_t D, float* dx, float* dweight,
                             bool pooled) {
  const int64_t blocks = (N + RMS_BLOCK - 1) / RMS_BLOCK;
  std::vector<float> partials((size_t)(blocks * D), 0.0f);
  for_range(pooled, 0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> gw((size_t)D);
    for (int64_t b = b0; b < b1; b++) {
      rmsnorm_backward_rows(g, x, w, rstd, D, b * RMS_BLOCK, std::min(N, (b + 1) * RMS_BLOCK), dx, partials.data() + b * D, gw);
    }
  });
  for (int64_t d = 0; d < D; d++) {
    double s = 0;
    for (int64_t b = 0; b < blocks; b++) s += partials[b * D + d];
    dweight[d] = (float)(dweight[d] + s);
  }
}

// ---------------------------------------------------------------- RoPE

// cos and sin of pos·theta^(−2i/Dh) for positions [0, P) and pairs [0, Dh/2), in f64 then rounded:
// built on the main thread for the largest position seen, kept while theta and Dh stay the same
// (the trainer calls rope with the same ones every layer). Workers hold a shared_ptr to the table
// they started with, so a rebuild never pulls it from under them.
struct RopeTable {
  double theta;
  int64_t half;
  int64_t positions;
  std::vector<float> cs;  // [positions, half, 2] = cos, sin
};

static std::shared_ptr<const RopeTable> rope_table(double theta, int64_t half, int64_t max_pos) {
  static std::mutex mutex;
  static std::shared_ptr<const RopeTable> cached;
  std::lock_guard<std::mutex> lock(mutex);
  if (cached && cached->theta == theta && cached->half == half && cached->positions > max_pos) return cached;
  auto t = std::make_shared<RopeTable>();
  t->theta = theta;
  t->half = half;
  t->positions = std::max<int64_t>(max_pos + 1, cached && cached->theta == theta && cached->half == half ? 2 * cached->positions : 256);
  t->cs.resize((size_t)(t->positions * half * 2));
  for (int64_t p = 0; p < t->positions; p++) {
    for (int64_t i = 0; i < half; i++) {
      const double a = (double)p * std::pow(theta, -2.0 * (double)i / (double)(2 * half));
      t->cs[(p * half + i) * 2] = (float)std::cos(a);
      t->cs[(p * half + i) * 2 + 1] = (float)std::sin(a);
    }
  }
  cached = t;
  return t;
}

// positions past this are computed directly rather than tabled (the table grows with the largest one)
static constexpr int64_t ROPE_TABLE_MAX = 1 << 16;

// x [N, nH, Dh], pos [N] -> out (may be x); pair i turns by ±pos·theta^(−2i/Dh)
static void rope_rows(const float* x, const int32_t* pos, int64_t nH, int64_t Dh, double theta, bool inverse, const RopeTable* table,
                      int64_t n0, int64_t n1, float* out) {
  const int64_t half = Dh / 2;
  std::vector<float> cs((size_t)(2 * half));
  for (int64_t n = n0; n < n1; n++) {
    const int64_t p = pos[n];
    const float* c;
    if (table && p >= 0 && p < table->positions) c = table->cs.data() + p * half * 2;
    else {
      for (int64_t i = 0; i < half; i++) {
        const double a = (double)p * std::pow(theta, -2.0 * (double)i / (double)Dh);
        cs[2 * i] = (float)std::cos(a);
        cs[2 * i + 1] = (float)std::sin(a);
      }
      c = cs.data();
    }
    const float sign = inverse ? -1.0f : 1.0f;
    for (int64_t h = 0; h < nH; h++) {
      const float* xr = x + (n * nH + h) * Dh;
      float* o = out + (n * nH + h) * Dh;
      for (int64_t i = 0; i < half; i++) {
        const float co = c[2 * i], si = sign * c[2 * i + 1];
        const float x0 = xr[2 * i], x1 = xr[2 * i + 1];
        o[2 * i] = x0 * co - x1 * si;
        o[2 * i + 1] = x0 * si + x1 * co;
      }
    }
  }
}

// ---------------------------------------------------------------- attention

// e[j] = exp(s[j] − m) for j < n, returns Σ e (s already holds scores times log2 e: exp2 here)
#if HP_X86
HP_AVX2 static int64_t exp_shift_sum_avx2(float* s, int64_t n, float m, float* sum) {
  const __m256 m8 = _mm256_set1_ps(m);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp2_8(_mm256_sub_ps(_mm256_loadu_ps(s + i), m8));
    _mm256_storeu_ps(s + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  *sum = hsum8f(acc);
  return i;
}
#endif

static float exp_shift_sum(float* s, int64_t n, float m) {
  int64_t j = 0;
  float sum = 0;
#if HP_X86
  if (g_nn_avx2) j = exp_shift_sum_avx2(s, n, m, &sum);
#endif
  for (; j < n; j++) {
    s[j] = std::exp2(s[j] - m);
    sum += s[j];
  }
  return sum;
}

struct AttnDims {
  int64_t B, Tq, S, nH, Dh;
};

// Query rows [i0, i1) of the flattened (b, h, i) order: q [B, Tq, nH, Dh], k, v [B, S, nH, Dh] ->
// out [B, Tq, nH, Dh], lse [B, nH, Tq]. Scores in base 2 (scale·log2 e folded in), the max, exp2 and
// the sum over the contiguous score buffer, then out = Σ p_j v_j / Σ.
static void attention_rows_scalar(const float* q, const float* k, const float* v, const AttnDims& a, int64_t q_offset, int64_t kv_len, float scale,
                           int64_t r0, int64_t r1, float* out, float* lse) {
  const int64_t Dh = a.Dh, row = a.nH * Dh;
  std::vector<float> s((size_t)kv_len), acc((size_t)Dh);
  const float scale2 = scale * 1.44269504088896341f;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t i = r % a.Tq, bh = r / a.Tq, h = bh % a.nH, b = bh / a.nH;
    const float* qr = q + (b * a.Tq + i) * row + h * Dh;
    const float* kb = k + b * a.S * row + h * Dh;
    const float* vb = v + b * a.S * row + h * Dh;
    const int64_t n = std::min(q_offset + i, kv_len - 1) + 1;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; j++) {
      s[j] = dot(qr, kb + j * row, Dh) * scale2;
      m = std::max(m, s[j]);
    }
    const float sum = exp_shift_sum(s.data(), n, m);
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t j = 0; j < n; j++) axpy(s[j], vb + j * row, acc.data(), Dh);
    float* o = out + (b * a.Tq + i) * row + h * Dh;
    const float inv = 1.0f / sum;
    for (int64_t d = 0; d < Dh; d++) o[d] = acc[d] * inv;
    lse[bh * a.Tq + i] = (float)(((double)m + std::log2((double)sum)) * 0.69314718055994531);
  }
}

// Backward of training attention for heads [u0, u1) of the flattened (b, h) order (T = Tq = S):
// row i at a time, P_ij = exp(s_ij − lse_i), dS_ij = P_ij·(dO_i·v_j − D_i); dq_i = scale·Σ_j dS_ij k_j
// is finished with its row, dk and dv accumulate into the head's own rows (no other head touches them).
static void attention_backward_heads_scalar(const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
                                     const AttnDims& a, float scale, int64_t u0, int64_t u1, float* dq, float* dk, float* dv) {
  const int64_t T = a.Tq, Dh = a.Dh, row = a.nH * Dh;
  std::vector<float> p((size_t)T), ds((size_t)T), gq((size_t)Dh);
  const float scale2 = scale * 1.44269504088896341f;
  const float log2e = 1.44269504088896341f;
  for (int64_t u = u0; u < u1; u++) {
    const int64_t h = u % a.nH, b = u / a.nH;
    const int64_t base = b * T * row + h * Dh;
    for (int64_t t = 0; t < T; t++) {
      std::fill(dk + base + t * row, dk + base + t * row + Dh, 0.0f);
      std::fill(dv + base + t * row, dv + base + t * row + Dh, 0.0f);
    }
    for (int64_t i = 0; i < T; i++) {
      const float* qi = q + base + i * row;
      const float* doi = dout + base + i * row;
      const float Di = dot(doi, o + base + i * row, Dh);
      const float l2 = lse[u * T + i] * log2e;
      const int64_t n = i + 1;
      for (int64_t j = 0; j < n; j++) p[j] = dot(qi, k + base + j * row, Dh) * scale2;
      exp_shift_sum(p.data(), n, l2);
      for (int64_t j = 0; j < n; j++) ds[j] = p[j] * (dot(doi, v + base + j * row, Dh) - Di) * scale;
      std::fill(gq.begin(), gq.end(), 0.0f);
      for (int64_t j = 0; j < n; j++) {
        axpy(ds[j], k + base + j * row, gq.data(), Dh);
        axpy(ds[j], qi, dk + base + j * row, Dh);
        axpy(p[j], doi, dv + base + j * row, Dh);
      }
      memcpy(dq + base + i * row, gq.data(), (size_t)Dh * sizeof(float));
    }
  }
}

#if HP_X86
// The same two loops with every vector step inlined (a call per key to the dispatching dot/axpy cost
// more than the arithmetic at Dh = 32), keys taken four at a time for the dot products.

HP_AVX2 static inline void axpy8(float a, const float* x, float* y, int64_t n) {
  const __m256 a8 = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a8, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * x[i];
}

// a·x_r for the four rows x_r = x + r·stride, r < 4 (all n long) -> out[0..4)
HP_AVX2 static inline void dot4(const float* a, const float* x, int64_t stride, int64_t n, float* out) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 a8 = _mm256_loadu_ps(a + i);
    s0 = _mm256_fmadd_ps(a8, _mm256_loadu_ps(x + i), s0);
    s1 = _mm256_fmadd_ps(a8, _mm256_loadu_ps(x + stride + i), s1);
    s2 = _mm256_fmadd_ps(a8, _mm256_loadu_ps(x + 2 * stride + i), s2);
    s3 = _mm256_fmadd_ps(a8, _mm256_loadu_ps(x + 3 * stride + i), s3);
  }
  // lanes of hadd(hadd(s0, s1), hadd(s2, s3)): the four sums' low halves, then their high halves
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  for (; i < n; i++) {
    out[0] += a[i] * x[i];
    out[1] += a[i] * x[stride + i];
    out[2] += a[i] * x[2 * stride + i];
    out[3] += a[i] * x[3 * stride + i];
  }
}

// s[j] = a·x_j · mul for j < n, rows x_j = x + j·stride
HP_AVX2 static inline void dots(const float* a, const float* x, int64_t stride, int64_t Dh, int64_t n, float mul, float* s) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    dot4(a, x + j * stride, stride, Dh, s + j);
    for (int r = 0; r < 4; r++) s[j + r] *= mul;
  }
  for (; j < n; j++) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= Dh; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(x + j * stride + i), acc);
    float d = hsum8f(acc);
    for (; i < Dh; i++) d += a[i] * x[j * stride + i];
    s[j] = d * mul;
  }
}

HP_AVX2 static void attention_rows_avx2(const float* q, const float* k, const float* v, const AttnDims& a, int64_t q_offset, int64_t kv_len, float scale,
                                        int64_t r0, int64_t r1, float* out, float* lse) {
  const int64_t Dh = a.Dh, row = a.nH * Dh;
  std::vector<float> s((size_t)kv_len), acc((size_t)Dh);
  const float scale2 = scale * 1.44269504088896341f;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t i = r % a.Tq, bh = r / a.Tq, h = bh % a.nH, b = bh / a.nH;
    const float* qr = q + (b * a.Tq + i) * row + h * Dh;
    const float* kb = k + b * a.S * row + h * Dh;
    const float* vb = v + b * a.S * row + h * Dh;
    const int64_t n = std::min(q_offset + i, kv_len - 1) + 1;
    dots(qr, kb, row, Dh, n, scale2, s.data());
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; j++) m = std::max(m, s[j]);
    float sum = 0;
    int64_t j = exp_shift_sum_avx2(s.data(), n, m, &sum);
    for (; j < n; j++) {
      s[j] = std::exp2(s[j] - m);
      sum += s[j];
    }
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (j = 0; j < n; j++) axpy8(s[j], vb + j * row, acc.data(), Dh);
    float* o = out + (b * a.Tq + i) * row + h * Dh;
    const float inv = 1.0f / sum;
    for (int64_t d = 0; d < Dh; d++) o[d] = acc[d] * inv;
    lse[bh * a.Tq + i] = (float)(((double)m + std::log2((double)sum)) * 0.69314718055994531);
  }
}

HP_AVX2 static void attention_backward_heads_avx2(const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
                                                  const AttnDims& a, float scale, int64_t u0, int64_t u1, float* dq, float* dk, float* dv) {
  const int64_t T = a.Tq, Dh = a.Dh, row = a.nH * Dh;
  std::vector<float> p((size_t)T), dp((size_t)T), gq((size_t)Dh);
  const float scale2 = scale * 1.44269504088896341f;
  const float log2e = 1.44269504088896341f;
  for (int64_t u = u0; u < u1; u++) {
    const int64_t h = u % a.nH, b = u / a.nH;
    const int64_t base = b * T * row + h * Dh;
    for (int64_t t = 0; t < T; t++) {
      std::fill(dk + base + t * row, dk + base + t * row + Dh, 0.0f);
      std::fill(dv + base + t * row, dv + base + t * row + Dh, 0.0f);
    }
    for (int64_t i = 0; i < T; i++) {
      const float* qi = q + base + i * row;
      const float* doi = dout + base + i * row;
      float Di;
      dots(doi, o + base + i * row, 0, Dh, 1, 1.0f, &Di);
      const int64_t n = i + 1;
      dots(qi, k + base, row, Dh, n, scale2, p.data());
      float unused = 0;
      const float l2 = lse[u * T + i] * log2e;
      int64_t j = exp_shift_sum_avx2(p.data(), n, l2, &unused);
      for (; j < n; j++) p[j] = std::exp2(p[j] - l2);
      dots(doi, v + base, row, Dh, n, 1.0f, dp.data());
      std::fill(gq.begin(), gq.end(), 0.0f);
      for (j = 0; j < n; j++) {
        const float ds = p[j] * (dp[j] - Di) * scale;
        axpy8(ds, k + base + j * row, gq.data(), Dh);
        axpy8(ds, qi, dk + base + j * row, Dh);
        axpy8(p[j], doi, dv + base + j * row, Dh);
      }
      memcpy(dq + base + i * row, gq.data(), (size_t)Dh * sizeof(float));
    }
  }
}
#endif

static void attention_rows(const float* q, const float* k, const float* v, const AttnDims& a, int64_t q_offset, int64_t kv_len, float scale,
                           int64_t r0, int64_t r1, float* out, float* lse) {
#if HP_X86
  if (g_nn_avx2) return attention_rows_avx2(q, k, v, a, q_offset, kv_len, scale, r0, r1, out, lse);
#endif
  attention_rows_scalar(q, k, v, a, q_offset, kv_len, scale, r0, r1, out, lse);
}

static void attention_backward_heads(const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout,
                                     const AttnDims& a, float scale, int64_t u0, int64_t u1, float* dq, float* dk, float* dv) {
#if HP_X86
  if (g_nn_avx2) return attention_backward_heads_avx2(q, k, v, o, lse, dout, a, scale, u0, u1, dq, dk, dv);
#endif
  attention_backward_heads_scalar(q, k, v, o, lse, dout, a, scale, u0, u1, dq, dk, dv);
}

// ---------------------------------------------------------------- SwiGLU, addScaled, sumSquares, AdamW

static inline float sigmoid_scalar(float x) { return 1.0f / (1.0f + std::exp(-x)); }

#if HP_X86
HP_AVX2 static inline __m256 sigmoid8(__m256 x) {
  const __m256 e = exp2_8(_mm256_mul_ps(x, _mm256_set1_ps(-LOG2E_F)));
  return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}
#endif

// out = g·σ(g)·u over [i0, i1)
#if HP_X86
HP_AVX2 static int64_t swiglu_avx2(const float* g, const float* u, int64_t i0, int64_t i1, float* out) {
  int64_t j = i0;
  for (; j + 8 <= i1; j += 8) {
    const __m256 g8 = _mm256_loadu_ps(g + j);
    _mm256_storeu_ps(out + j, _mm256_mul_ps(_mm256_mul_ps(g8, sigmoid8(g8)), _mm256_loadu_ps(u + j)));
  }
  return j;
}

HP_AVX2 static int64_t swiglu_backward_avx2(const float* g, const float* u, const float* d, int64_t i0, int64_t i1, float* dg, float* du) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t j = i0;
  for (; j + 8 <= i1; j += 8) {
    const __m256 g8 = _mm256_loadu_ps(g + j), u8 = _mm256_loadu_ps(u + j), d8 = _mm256_loadu_ps(d + j);
    const __m256 s = sigmoid8(g8);
    const __m256 ds = _mm256_mul_ps(s, _mm256_fmadd_ps(g8, _mm256_sub_ps(one, s), one));
    _mm256_storeu_ps(dg + j, _mm256_mul_ps(_mm256_mul_ps(d8, u8), ds));
    _mm256_storeu_ps(du + j, _mm256_mul_ps(d8, _mm256_mul_ps(g8, s)));
  }
  return j;
}

HP_AVX2 static int64_t add_scaled_avx2(const float* a, const float* b, float alpha, int64_t i0, int64_t i1, float* out) {
  const __m256 al = _mm256_set1_ps(alpha);
  int64_t j = i0;
  for (; j + 8 <= i1; j += 8) _mm256_storeu_ps(out + j, _mm256_fmadd_ps(al, _mm256_loadu_ps(b + j), _mm256_loadu_ps(a + j)));
  return j;
}

HP_AVX2 static int64_t sum_squares_avx2(const float* x, int64_t i0, int64_t i1, double* s) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  int64_t j = i0;
  for (; j + 8 <= i1; j += 8) {
    const __m256 x8 = _mm256_loadu_ps(x + j);
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x8)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(x8, 1));
    a0 = _mm256_fmadd_pd(lo, lo, a0);
    a1 = _mm256_fmadd_pd(hi, hi, a1);
  }
  alignas(32) double l[4];
  _mm256_store_pd(l, _mm256_add_pd(a0, a1));
  *s = (l[0] + l[1]) + (l[2] + l[3]);
  return j;
}
#endif

static void swiglu_range(const float* g, const float* u, int64_t i0, int64_t i1, float* out) {
  int64_t i = i0;
#if HP_X86
  if (g_nn_avx2) i = swiglu_avx2(g, u, i0, i1, out);
#endif
  for (; i < i1; i++) out[i] = g[i] * sigmoid_scalar(g[i]) * u[i];
}

// dGate = dO·u·σ·(1 + g·(1 − σ)), dUp = dO·g·σ over [i0, i1)
static void swiglu_backward_range(const float* g, const float* u, const float* d, int64_t i0, int64_t i1, float* dg, float* du) {
  int64_t i = i0;
#if HP_X86
  if (g_nn_avx2) i = swiglu_backward_avx2(g, u, d, i0, i1, dg, du);
#endif
  for (; i < i1; i++) {
    const float s = sigmoid_scalar(g[i]), uu = u[i], dd = d[i];
    dg[i] = dd * uu * s * (1.0f + g[i] * (1.0f - s));
    du[i] = dd * g[i] * s;
  }
}

// out = a + alpha·b over [i0, i1) (out may be a or b)
static void add_scaled_range(const float* a, const float* b, float alpha, int64_t i0, int64_t i1, float* out) {
  int64_t i = i0;
#if HP_X86
  if (g_nn_avx2) i = add_scaled_avx2(a, b, alpha, i0, i1, out);
#endif
  for (; i < i1; i++) out[i] = std::fma(alpha, b[i], a[i]);
}

// Σ x² over [i0, i1) in f64
static double sum_squares_range(const float* x, int64_t i0, int64_t i1) {
  int64_t i = i0;
  double s = 0;
#if HP_X86
  if (g_nn_avx2) i = sum_squares_avx2(x, i0, i1, &s);
#endif
  for (; i < i1; i++) s += (double)x[i] * x[i];
  return s;
}

// elements per sumSquares partial: fixed, so the result does not depend on the thread count
static constexpr int64_t SUMSQ_BLOCK = 1 << 15;

struct AdamW {
  float beta1, beta2, eps, decay, step_size, inv_sqrt_bc2;  // decay = 1 − lr·wd, step_size = lr / (1 − β1^t)
};

#if HP_X86
HP_AVX2 static int64_t adamw_avx2(float* p, const float* g, float* m, float* v, const AdamW& o, int64_t i0, int64_t i1) {
  const __m256 b1 = _mm256_set1_ps(o.beta1), c1 = _mm256_set1_ps(1.0f - o.beta1);
  const __m256 b2 = _mm256_set1_ps(o.beta2), c2 = _mm256_set1_ps(1.0f - o.beta2);
  const __m256 eps = _mm256_set1_ps(o.eps), decay = _mm256_set1_ps(o.decay), step = _mm256_set1_ps(o.step_size);
  const __m256 isb = _mm256_set1_ps(o.inv_sqrt_bc2);
  int64_t j = i0;
  for (; j + 8 <= i1; j += 8) {
    const __m256 g8 = _mm256_loadu_ps(g + j);
    const __m256 m8 = _mm256_fmadd_ps(b1, _mm256_loadu_ps(m + j), _mm256_mul_ps(c1, g8));
    const __m256 v8 = _mm256_fmadd_ps(b2, _mm256_loadu_ps(v + j), _mm256_mul_ps(c2, _mm256_mul_ps(g8, g8)));
    _mm256_storeu_ps(m + j, m8);
    _mm256_storeu_ps(v + j, v8);
    const __m256 denom = _mm256_fmadd_ps(_mm256_sqrt_ps(v8), isb, eps);
    const __m256 p8 = _mm256_mul_ps(_mm256_loadu_ps(p + j), decay);
    _mm256_storeu_ps(p + j, _mm256_sub_ps(p8, _mm256_div_ps(_mm256_mul_ps(step, m8), denom)));
  }
  return j;
}
#endif

// PyTorch's AdamW over [i0, i1): p = p·decay − step_size · m / (sqrt(v)·inv_sqrt_bc2 + eps)
static void adamw_range(float* p, const float* g, float* m, float* v, const AdamW& o, int64_t i0, int64_t i1) {
  int64_t i = i0;
#if HP_X86
  if (g_nn_avx2) i = adamw_avx2(p, g, m, v, o, i0, i1);
#endif
  for (; i < i1; i++) {
    const float gi = g[i];
    const float mi = o.beta1 * m[i] + (1.0f - o.beta1) * gi;
    const float vi = o.beta2 * v[i] + (1.0f - o.beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * o.decay - o.step_size * mi / (std::sqrt(vi) * o.inv_sqrt_bc2 + o.eps);
  }
}

// ---------------------------------------------------------------- sampling

// Rows [b0, b1) of logits [B, V] -> ids; f64 throughout, the steps of src/reference/nn.ts `sample`
// in the same order, so the ids are the reference's.
static void sample_rows(const float* logits, const float* uniforms, int64_t V, double temperature, double top_p, int64_t b0, int64_t b1,
                        int32_t* ids) {
  std::vector<double> e;
  std::vector<int32_t> order;
  for (int64_t b = b0; b < b1; b++) {
    const float* z = logits + b * V;
    int64_t best = 0;
    for (int64_t j = 1; j < V; j++) if (z[j] > z[best]) best = j;
    if (temperature == 0) {
      ids[b] = (int32_t)best;
      continue;
    }
    e.resize((size_t)V);
    order.resize((size_t)V);
    const double max = z[best];
    double sum = 0;
    for (int64_t j = 0; j < V; j++) {
      e[j] = std::exp(((double)z[j] - max) / temperature);
      sum += e[j];
    }
    for (int64_t j = 0; j < V; j++) e[j] /= sum;
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return e[x] > e[y] || (e[x] == e[y] && x < y); });
    int64_t kept = 0;
    double mass = 0;
    while (kept < V) {
      mass += e[order[kept]];
      kept++;
      if (mass >= top_p) break;
    }
    const double target = (double)uniforms[b] * mass;
    double run = 0;
    int32_t pick = order[kept - 1];
    for (int64_t r = 0; r < kept; r++) {
      run += e[order[r]];
      if (run > target) {
        pick = order[r];
        break;
      }
    }
    ids[b] = pick;
  }
}

// ---------------------------------------------------------------- entry points

static const float* cf(const HostView& h) { return (const float*)h.data; }
static float* mf(const HostView& h) { return (float*)h.data; }

// Rows of `width` elements per pooled chunk: about 16K elements.
static int64_t grain_for(int64_t width) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(width, 1)); }

static void check_ids(const Args& args, const HostView& ids, uint64_t N, uint64_t V) {
  const int32_t* p = (const int32_t*)ids.data;
  for (uint64_t n = 0; n < N; n++) {
    if (p[n] < 0 || (uint64_t)p[n] >= V) args.fail("E_ARG", "ids[" + std::to_string(n) + "] = " + std::to_string(p[n]) + " is outside [0, " + std::to_string(V) + ")");
  }
}

// cpuNnEmbedding(table: Float32Array [V, D], ids: Int32Array [N], V, D, N, out: Float32Array [N, D])
Napi::Value CpuNnEmbedding(const Napi::CallbackInfo& info) {
  Args args(info, "cpuNnEmbedding", 6);
  const uint64_t V = args.size(2, "V"), D = args.size(3, "D"), N = args.size(4, "N");
  HostView table = args.typed_array(0, "table", napi_float32_array, checked_mul(info.Env(), args.fn(), V, D, "V * D"));
  HostView ids = args.typed_array(1, "ids", napi_int32_array, N);
  HostView out = args.typed_array(5, "out", napi_float32_array, checked_mul(info.Env(), args.fn(), N, D, "N * D"));
  check_ids(args, ids, N, V);
  const float* tp = cf(table);
  const int32_t* ip = (const int32_t*)ids.data;
  float* op = mf(out);
  return launch(info, "cpuNnEmbedding", {table.value, ids.value, out.value}, (double)N * D, [=](bool pooled) {
    for_range(pooled, 0, (int64_t)N, grain_for((int64_t)D), [=](int64_t n0, int64_t n1) { embedding_rows(tp, ip, (int64_t)D, n0, n1, op); });
  });
}

// cpuNnEmbeddingBackward(dOut: Float32Array [N, D], ids: Int32Array [N], V, D, N, dTable: Float32Array [V, D] (+=))
Napi::Value CpuNnEmbeddingBackward(const Napi::CallbackInfo& info) {
  Args args(info, "cpuNnEmbeddingBackward", 6);
  const uint64_t V = args.size(2, "V"), D = args.size(3, "D"), N = args.size(4, "N");
  HostView dout = args.typed_array(0, "dOut", napi_float32_array, checked_mul(info.Env(), args.fn(), N, D, "N * D"));
  HostView ids = args.typed_array(1, "ids", napi_int32_array, N);
  HostView dtable = args.typed_array(5, "dTable", napi_float32_array, checked_mul(info.Env(), args.fn(), V, D, "V * D"));
  check_ids(args, ids, N, V);
  const float* dp = cf(dout);
  const int32_t* ip = (const int32_t*)ids.data;
  float* tp = mf(dtable);
  return launch(info, "cpuNnEmbeddingBackward", {dout.value, ids.value, dtable.value}, (double)N * D + V, [=](bool pooled) {
    embedding_backward(dp, ip, (int64_t)V, (int64_t)D, (int64_t)N, tp, pooled);
  });
}

// cpuNnRmsnorm(x: Float32Array [N, D], weight [D], N, D, eps, out [N, D], rstd [N])
Napi::Value CpuNnRmsnorm(const Napi::CallbackInfo& info) {
  Args args(info, "cpuNnRmsnorm", 7);
  const uint64_t N = args.size(2, "N"), D = args.size(3, "D");
  const uint64_t n = checked_mul(info.Env(), args.fn(), N, D, "N * D");
  HostView x = args.typed_array(0, "x", napi_float32_array, n);
  HostView w = args.typed_array(1, "weight", napi_float32_array, D);
  const double eps = args.finite_number(4, "eps");
  if (eps < 0) args.fail("E_ARG", "eps must be ≥ 0");
  HostView out = args.typed_array(5, "out", napi_float32_array, n);
  HostView rstd = args.typed_array(6, "rstd", napi_float32_array, N);
  const float *xp = cf(x), *wp = cf(w);
  float *op = mf(out), *rp = mf(rstd);
  return launch(info, "cpuNnRmsnorm", {x.value, w.value, out.value, rstd.value}, (double)n, [=](bool pooled) {
    for_range(pooled, 0, (int64_t)N, grain_for((int64_t)D), [=](int64_t n0, int64_t n1) { rmsnorm_rows(xp, wp, (int64_t)D, eps, n0, n1, op, rp); });
  });
}

// cpuNnRmsnormBackward(dOut [N, D], x [N, D], weight [D], rstd [N], N, D, dx [N, D], dWeight [D] (+=))
Napi::Value CpuNnRmsnormBackward(const Napi::CallbackInfo& info) {
  Args args(info, "cpuNnRmsnormBackward", 8);
  const uint64_t N = args.size(4, "N"), D = args.size(5, "D");
  const uint64_t n = checked_mul(info.Env(), args.fn(), N, D, "N * D");
  HostView g = args.typed_array(0, "dOut", napi_float32_array, n);
  HostView x = args.typed_array(1, "x", napi_float32_array, n);
  HostView w = args.typed_array(2, "weight", napi_float32_array, D);
  HostView rstd = args.typed_array(3, "rstd", napi_float32_array, N);
  HostView dx = args.typed_array(6, "dx", napi_float32_array, n);
  HostView dw = args.typed_array(7, "dWeight", napi_float32_array, D);
  const float *gp = cf(g), *xp = cf(x), *wp = cf(w), *rp = cf(rstd);
  float *dxp = mf(dx), *dwp = mf(dw);
  return launch(info, "cpuNnRmsnormBackward", {g.value, x.value, w.value, rstd.value, dx.value, dw.value}, 2.0 * n, [=](bool pooled) {
    rmsnorm_backward(gp, xp, wp, rp, (int64_t)N, (int64_t)D, dxp, dwp, pooled);
  });
}

// cpuNnRope(x: Float32Array [N, nH, Dh], positions: Int32Array [N], N, nH, Dh, theta, inverse, out (may be x))
Napi::Value CpuNnRope(const Napi::CallbackInfo& info) {
  Args args(info, "cpuNnRope", 8);
  const uint64_t N = args.size(2, "N"), nH = args.size(3, "nH"), Dh = args.size(4, "Dh");
  if (Dh % 2 != 0) args.fail("E_SHAPE", "Dh must be even, got " + std::to_string(Dh));
  const uint64_t n = checked_mul(info.Env(), args.fn(), checked_mul(info.Env(), args.fn(), N, nH, "N * nH"), Dh, "N * nH * Dh");
  HostView x = args.typed_array(0, "x", napi_float32_array, n);
  HostView pos = args.typed_array(1, "positions", napi_int32_array, N);
  const double theta = args.finite_number(5, "theta");
  if (!(theta > 0)) args.fail("E_ARG", "theta must be > 0");
  const bool inverse = args.boolean(6, "inverse");
  HostView out = args.typed_array(7, "out", napi_float32_array, n);
  const int32_t* pp = (const int32_t*)pos.data;
  int64_t max_pos = -1;
  for (uint64_t i = 0; i < N; i++) max_pos = std::max<int64_t>(max_pos, pp[i]);
  std::shared_ptr<const RopeTable> table = max_pos >= 0 && max_pos < ROPE_TABLE_MAX && Dh > 0 ? rope_table(theta, (int64_t)Dh / 2, max_pos) : nullptr;
  const float* xp = cf(x);
  float* op = mf(out);
  return launch(info, "cpuNnRope", {x.value, pos.value, out.value}, (double)n, [=](bool pooled) {
    for_range(pooled, 0, (int64_t)N, grain_for((int64_t)(nH * Dh)), [=](int64_t n0, int64_t n1) {
      rope_rows(xp, pp, (int64_t)nH, (int64_t)Dh, theta, inverse, table.get(), n0, n1, op);
    });
  });
}

// scale: finite and > 0
static float scale_arg(const Args& args, size_t i) {
  const double s = args.finite_number(i, "scale");
  if (!(s > 0) || !std::isfinite((float)s)) args.fail("E_ARG", "scale must be a finite number > 0");
  return (float)s;
}

// cpuNnAttention(q [B, Tq, nH, Dh], k, v [B, S, nH, Dh], B, Tq, S, nH, Dh, qOffset, kvLen, scale, out [B, Tq, nH, Dh], lse [B, nH, Tq])
Napi::Value CpuNnAttention(const Napi::CallbackInfo& info) {
  Args args(info, "cpuNnAttention", 13);
  const uint64_t B = args.size(3, "B"), Tq = args.size(4, "Tq"), S = args.size(5, "S"), nH = args.size(6, "nH"), Dh = args.size(7, "Dh");
  const uint64_t q_offset = args.size(8, "qOffset"), kv_len = args.size(9, "kvLen");
  const float scale = scale_arg(args, 10);
  if (kv_len < 1 || kv_len > S) args.fail("E_ARG", "kvLen must be in [1, S = " + std::to_string(S) + "], got " + std::to_string(kv_len));
  if (q_offset + Tq > kv_len) args.fail("E_ARG", "qOffset + Tq must be ≤ kvLen");
  Napi::Env env = info.Env();
  const uint64_t head = checked_mul(env, args.fn(), checked_mul(env, args.fn(), B, nH, "B * nH"), Dh, "B * nH * Dh");
  const uint64_t nq = checked_mul(env, args.fn(), head, Tq, "q's size"), nk = checked_mul(env, args.fn(), head, S, "k's size");
  HostView q = args.typed_array(0, "q", napi_float32_array, nq);
  HostView k = args.typed_array(1, "k", napi_float32_array, nk);
  HostView v = args.typed_array(2, "v", napi_float32_array, nk);
  HostView out = args.typed_array(11, "out", napi_float32_array, nq);
  HostView lse = args.typed_array(12, "lse", napi_float32_array, checked_mul(env, args.fn(), B * nH, Tq, "B * nH * Tq"));
  const float *qp = cf(q), *kp = cf(k), *vp = cf(v);
  float *op = mf(out), *lp = mf(lse);
  const AttnDims a{(int64_t)B, (int64_t)Tq, (int64_t)S, (int64_t)nH, (int64_t)Dh};
  const int64_t rows = (int64_t)(B * nH * Tq);
  const double work = (double)rows * (double)(q_offset + (Tq + 1) / 2) * (double)Dh * 2;
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, (int64_t)((q_offset + Tq) * Dh)));
  return launch(info, "cpuNnAttention", {q.value, k.value, v.value, out.value, lse.value}, work, [=](bool pooled) {
    for_range(pooled, 0, rows, grain, [=](int64_t r0, int64_t r1) { attention_rows(qp, kp, vp, a, (int64_t)q_offset, (int64_t)kv_len, scale, r0, r1, op, lp); });
  });
}

// cpuNnAttentionBackward(q, k, v, out, lse, dOut, B, T, nH, Dh, scale, dq, dk, dv): all [B, T, nH, Dh] but lse [B, nH, T]
Napi::Value CpuNnAttentionBackward(const Napi::CallbackInfo& info) {
  Args args(info, "cpuNnAttentionBackward", 14);
  const uint64_t B = args.size(6, "B"), T = args.size(7, "T"), nH = args.size(8, "nH"), Dh = args.size(9, "Dh");
  const float scale = scale_arg(args, 10);
  Napi::Env env = info.Env();
  const uint64_t bh = checked_mul(env, args.fn(), B, nH, "B * nH");
  const uint64_t n = checked_mul(env, args.fn(), checked_mul(env, args.fn(), bh, T, "B * nH * T"), Dh, "B * T * nH * Dh");
  HostView q = args.typed_array(0, "q", napi_float32_array, n);
  HostView k = args.typed_array(1, "k", napi_float32_array, n);
  HostView v = args.typed_array(2, "v", napi_float32_array, n);
  HostView o = args.typed_array(3, "out", napi_float32_array, n);
  HostView lse = args.typed_array(4, "lse", napi_float32_array, bh * T);
  HostView g = args.typed_array(5, "dOut", napi_float32_array, n);
  HostView dq = args.typed_array(11, "dq", napi_float32_array, n);
  HostView dk = args.typed_array(12, "dk", napi_float32_array, n);
  HostView dv = args.typed_array(13, "dv", napi_float32_array, n);
  const float *qp = cf(q), *kp = cf(k), *vp = cf(v), *opp = cf(o), *lp = cf(lse), *gp = cf(g);
  float *dqp = mf(dq), *dkp = mf(dk), *dvp = mf(dv);
  const AttnDims a{(int64_t)B, (int64_t)T, (int64_t)T, (int64_t)nH, (int64_t)Dh};
  const double work = (double)bh * T * (T + 1) / 2 * Dh * 5;
  return launch(info, "cpuNnAttentionBackward", {q.value, k.value, v.value, o.value, lse.value, g.value, dq.value, dk.value, dv.value}, work,
                [=](bool pooled) {
                  for_range(pooled, 0, (int64_t)bh, 1, [=](int64_t u0, int64_t u1) { attention_backward_heads(qp, kp, vp, opp, lp, gp, a, scale, u0, u1, dqp, dkp, dvp); });
                });
}

// cpuNnSwiglu(gate, up: Float32Array [n], n, out [n])
Napi::Value CpuNnSwiglu(const Napi::CallbackInfo& info) {
  Args args(info, "cpuNnSwiglu", 4);
  const uint64_t n = args.size(2, "n");
  HostView g = args.typed_array(0, "gate", napi_float32_array, n);
  HostView u = args.typed_array(1, "up", napi_float32_array, n);
  HostView out = args.typed_array(3, "out", napi_float32_array, n);
  const float *gp = cf(g), *up = cf(u);
  float* op = mf(out);
  return launch(info, "cpuNnSwiglu", {g.value, u.value, out.value}, 4.0 * n, [=](bool pooled) {
    for_range(pooled, 0, (int64_t)n, 16384, [=](int64_t i0, int64_t i1) { swiglu_range(gp, up, i0, i1, op); });
  });
}

// cpuNnSwigluBackward(gate, up, dOut: Float32Array [n], n, dGate, dUp [n])
Napi::Value CpuNnSwigluBackward(const Napi::CallbackInfo& info) {
  Args args(info, "cpuNnSwigluBackward", 6);
  const uint64_t n = args.size(3, "n");
  HostView g = args.typed_array(0, "gate", napi_float32_array, n);
  HostView u = args.typed_array(1, "up", napi_float32_array, n);
  HostView d = args.typed_array(2, "dOut", napi_float32_array, n);
  HostView dg = args.typed_array(4, "dGate", napi_float32_array, n);
  HostView du = args.typed_array(5, "dUp", napi_float32_array, n);
  const float *gp = cf(g), *up = cf(u), *dp = cf(d);
  float *dgp = mf(dg), *dup = mf(du);
  return launch(info, "cpuNnSwigluBackward", {g.value, u.value, d.value, dg.value, du.value}, 5.0 * n, [=](bool pooled) {
    for_range(pooled, 0, (int64_t)n, 16384, [=](int64_t i0, int64_t i1) { swiglu_backward_range(gp, up, dp, i0, i1, dgp, dup); });
  });
}

// cpuNnAddScaled(a, b: Float32Array [n], n, alpha, out [n] (may be a or b))
Napi::Value CpuNnAddScaled(const Napi::CallbackInfo& info) {
  Args args(info, "cpuNnAddScaled", 5);
  const uint64_t n = args.size(2, "n");
  HostView a = args.typed_array(0, "a", napi_float32_array, n);
  HostView b = args.typed_array(1, "b", napi_float32_array, n);
  const float alpha = (float)args.finite_number(3, "alpha");
  HostView out = args.typed_array(4, "out", napi_float32_array, n);
  const float *ap = cf(a), *bp = cf(b);
  float* op = mf(out);
  return launch(info, "cpuNnAddScaled", {a.value, b.value, out.value}, (double)n, [=](bool pooled) {
    for_range(pooled, 0, (int64_t)n, 32768, [=](int64_t i0, int64_t i1) { add_scaled_range(ap, bp, alpha, i0, i1, op); });
  });
}

// cpuNnSumSquares(x: Float32Array [n], n): number (small x) or Promise<number>
Napi::Value CpuNnSumSquares(const Napi::CallbackInfo& info) {
  Args args(info, "cpuNnSumSquares", 2);
  const uint64_t n = args.size(1, "n");
  HostView x = args.typed_array(0, "x", napi_float32_array, n);
  const float* xp = cf(x);
  const int64_t blocks = (int64_t)((n + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK);
  auto run = [=](bool pooled) {
    std::vector<double> partial((size_t)blocks, 0.0);
    for_range(pooled, 0, blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; b++) partial[b] = sum_squares_range(xp, b * SUMSQ_BLOCK, std::min<int64_t>((int64_t)n, (b + 1) * SUMSQ_BLOCK));
    });
    double s = 0;
    for (double p : partial) s += p;
    return s;
  };
  if ((double)n < INLINE_WORK) return Napi::Number::New(info.Env(), run(false));
  auto* worker = new PromiseWorker(info.Env(), "cpuNnSumSquares", {x.value}, [run](double* result) {
    *result = run(true);
    return std::string();
  }, "E_NATIVE", true);
  worker->Queue();
  return worker->promise();
}

// cpuNnAdamw(param, grad, m, v: Float32Array [n], n, lr, beta1, beta2, eps, weightDecay, step)
Napi::Value CpuNnAdamw(const Napi::CallbackInfo& info) {
  Args args(info, "cpuNnAdamw", 11);
  const uint64_t n = args.size(4, "n");
  HostView p = args.typed_array(0, "param", napi_float32_array, n);
  HostView g = args.typed_array(1, "grad", napi_float32_array, n);
  HostView m = args.typed_array(2, "m", napi_float32_array, n);
  HostView v = args.typed_array(3, "v", napi_float32_array, n);
  const double lr = args.finite_number(5, "lr"), beta1 = args.finite_number(6, "beta1"), beta2 = args.finite_number(7, "beta2");
  const double eps = args.finite_number(8, "eps"), wd = args.finite_number(9, "weightDecay");
  const uint64_t step = args.size(10, "step");
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) args.fail("E_ARG", "beta1 and beta2 must be in [0, 1)");
  if (!(eps > 0) || step < 1 || lr < 0 || wd < 0) args.fail("E_ARG", "eps must be > 0, step ≥ 1, lr and weightDecay ≥ 0");
  AdamW o;
  o.beta1 = (float)beta1;
  o.beta2 = (float)beta2;
  o.eps = (float)eps;
  o.decay = (float)(1 - lr * wd);
  o.step_size = (float)(lr / (1 - std::pow(beta1, (double)step)));
  o.inv_sqrt_bc2 = (float)(1 / std::sqrt(1 - std::pow(beta2, (double)step)));
  float *pp = mf(p), *mp = mf(m), *vp = mf(v);
  const float* gp = cf(g);
  return launch(info, "cpuNnAdamw", {p.value, g.value, m.value, v.value}, 4.0 * n, [=](bool pooled) {
    for_range(pooled, 0, (int64_t)n, 16384, [=](int64_t i0, int64_t i1) { adamw_range(pp, gp, mp, vp, o, i0, i1); });
  });
}

// cpuNnSample(logits: Float32Array [B, V], uniforms: Float32Array [B], B, V, temperature (0 = argmax), topP, ids: Int32Array [B])
Napi::Value CpuNnSample(const Napi::CallbackInfo& info) {
  Args args(info, "cpuNnSample", 7);
  const uint64_t B = args.size(2, "B"), V = args.size(3, "V");
  if (V == 0 || V > (uint64_t)INT32_MAX) args.fail("E_SHAPE", "V must be in [1, 2^31)");
  HostView z = args.typed_array(0, "logits", napi_float32_array, checked_mul(info.Env(), args.fn(), B, V, "B * V"));
  HostView u = args.typed_array(1, "uniforms", napi_float32_array, B);
  const double temperature = args.finite_number(4, "temperature"), top_p = args.finite_number(5, "topP");
  if (temperature < 0) args.fail("E_ARG", "temperature must be ≥ 0");
  if (!(top_p > 0 && top_p <= 1)) args.fail("E_ARG", "topP must be in (0, 1]");
  HostView ids = args.typed_array(6, "ids", napi_int32_array, B);
  const float *zp = cf(z), *up = cf(u);
  int32_t* ip = (int32_t*)ids.data;
  const double work = temperature == 0 ? (double)B * V : (double)B * V * 16;
  return launch(info, "cpuNnSample", {z.value, u.value, ids.value}, work, [=](bool pooled) {
    for_range(pooled, 0, (int64_t)B, 1, [=](int64_t b0, int64_t b1) { sample_rows(zp, up, (int64_t)V, temperature, top_p, b0, b1, ip); });
  });
}

}  // namespace hp
