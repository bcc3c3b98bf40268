// CUDA log-prob kernels and the fused token-level GRPO kernel: pure CUDA runtime (no Node-API), shared
// by native/cuda/logprob.cu, native/cuda/grpo.cu and the harness native/cuda/dev/logprob_check.cu.
// Semantics: src/reference/logprob.ts, src/reference/grpo.ts (grpoFusedTokenLoss).
//
// All of it is memory-bound: a row of logits is V values (V = 151,936 for Qwen: 304 KB of bf16).
// - Forward: one pass over each row, online (max, Σ exp) per thread over 16-byte loads, merged across
//   the row's threads. A CTA of 256 threads per row for large V, a warp per row for small V.
// - Backward: one read and one write of each element from the saved lse.
// - Fused: the row is split over a cluster of C CTAs (sm_90), each holding its slice in shared memory
//   between the two sweeps, so the row is read from HBM exactly once whatever L2 does; the C partial
//   (max, Σ exp) are merged through distributed shared memory. Rows too long for C = 8 slices (and
//   GPUs before sm_90) take the same kernel with C = 1 and no slice: the second sweep re-reads global
//   memory (an L2 hit when few rows are in flight).
//
// Math in f32 for f32 and bf16 logits: x = z · (1/T), exp through ex2.approx of (x − m)·log2(e), where
// x − m is exact for nearby values (so ±1e4 logits keep their precision). The row's state is (m, s):
// the max and Σ exp(x − m); lse = m + log(s). NaN anywhere in a row makes s NaN (fmaxf skips NaN but
// exp(NaN − m) does not); a +inf logit gives exp(inf − inf) = NaN, as in the reference; a row of all
// −inf has s = 0, lse = −inf and logp = NaN.
//
// Alignment: a row's start need not be 16-byte aligned (ragged V, row views). Each row is cut into a
// scalar head up to the first 16-byte boundary, whole 16-byte units, and a scalar tail.
#pragma once

#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <float.h>
#include <stdint.h>

#include <algorithm>

#include "common/grpo_rules.h"

namespace hp {

namespace lp {

constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;
constexpr int THREADS = 256;  // every kernel here: 256-thread CTAs

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// One logit as f32 (bf16 widened exactly: its bits are the top half of an f32).
__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(uint16_t b) { return __uint_as_float((uint32_t)b << 16); }

// Elements of a 16-byte unit.
template <typename T>
struct Vec {
  static constexpr int N = 16 / (int)sizeof(T);
};

// A 16-byte unit at p (16-byte aligned) -> N f32 values. Plain loads: dlogits may alias the logits.
__device__ __forceinline__ void unpack(uint4 u, float* v, float*) {
  v[0] = __uint_as_float(u.x);
  v[1] = __uint_as_float(u.y);
  v[2] = __uint_as_float(u.z);
  v[3] = __uint_as_float(u.w);
}
__device__ __forceinline__ void unpack(uint4 u, float* v, uint16_t*) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    v[2 * i] = __uint_as_float(w[i] << 16);
    v[2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
  }
}

// Stores n (= 4 or 8) f32 values at p: wide stores when `vec` (p aligned to min(16, n · element
// bytes): 16-byte stores, or one 8-byte store for 4 bf16), scalar otherwise.
// bf16 by round-to-nearest-even (the hardware cvt; NaN stays NaN).
__device__ __forceinline__ void store_vals(float* p, const float* v, int n, bool vec) {
  if (vec) {
    for (int i = 0; i < n; i += 4) *reinterpret_cast<float4*>(p + i) = make_float4(v[i], v[i + 1], v[i + 2], v[i + 3]);
  } else {
    for (int i = 0; i < n; i++) p[i] = v[i];
  }
}
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
__device__ __forceinline__ void store_vals(uint16_t* p, const float* v, int n, bool vec) {
  if (vec && n == 4) {
    *reinterpret_cast<uint2*>(p) = make_uint2(pack_bf16x2(v[0], v[1]), pack_bf16x2(v[2], v[3]));
  } else if (vec) {
    for (int i = 0; i < n; i += 8) {
      *reinterpret_cast<uint4*>(p + i) = make_uint4(pack_bf16x2(v[i], v[i + 1]), pack_bf16x2(v[i + 2], v[i + 3]),
                                                    pack_bf16x2(v[i + 4], v[i + 5]), pack_bf16x2(v[i + 6], v[i + 7]));
    }
  } else {
    for (int i = 0; i < n; i++) {
      __nv_bfloat16 h = __float2bfloat16_rn(v[i]);
      p[i] = *reinterpret_cast<uint16_t*>(&h);
    }
  }
}
__device__ __forceinline__ void store1(float* p, float v) { *p = v; }
__device__ __forceinline__ void store1(uint16_t* p, float v) {
  __nv_bfloat16 h = __float2bfloat16_rn(v);
  *p = *reinterpret_cast<uint16_t*>(&h);
}

// How a row of V elements starting at p splits: `head` scalar elements up to the first 16-byte
// boundary, `units` whole 16-byte units, then the scalar tail [head + units·N, V).
template <typename T>
__device__ __forceinline__ void row_split(const T* p, int64_t V, int64_t& head, int64_t& units) {
  head = (int64_t)(((16 - ((uintptr_t)p & 15)) & 15) / sizeof(T));
  if (head > V) head = V;
  units = (V - head) / Vec<T>::N;
}

// ---------------------------------------------------------------- online (max, Σ exp) state

// m: running max of x; s = Σ exp(x − m); w = Σ exp(x − m)·(x − m)·log2(e) (only for the entropy).
struct Online {
  float m, s, w;
};

__device__ __forceinline__ Online online_init() { return {-INFINITY, 0.0f, 0.0f}; }

// Adds K values (−inf for none). One rescale when the max grows; exp(x − m) otherwise.
template <int K, bool W>
__device__ __forceinline__ void online_add(Online& o, const float* x) {
  float mx = x[0];
#pragma unroll
  for (int k = 1; k < K; k++) mx = fmaxf(mx, x[k]);
  if (mx > o.m) {
    if (o.m != -INFINITY) {
      const float d = (o.m - mx) * LOG2E;
      const float a = ex2(d);
      if (W) o.w = a * (o.w + d * o.s);
      o.s *= a;
    }
    o.m = mx;
  }
  const float mref = o.m == -INFINITY ? 0.0f : o.m;  // all −inf so far: every term is 0
#pragma unroll
  for (int k = 0; k < K; k++) {
    const float d = (x[k] - mref) * LOG2E;
    const float e = ex2(d);
    o.s += e;
    if (W) o.w += e * fmaxf(d, -FLT_MAX);  // x = −inf: 0 · (−FLT_MAX), not 0 · (−inf)
  }
}

// Merges b into a at the larger max (NaN in either s stays NaN).
template <bool W>
__device__ __forceinline__ Online online_merge(Online a, Online b) {
  const float M = fmaxf(a.m, b.m);
  if (M == -INFINITY) return {M, a.s + b.s, 0.0f};
  const float da = a.m == -INFINITY ? 0.0f : (a.m - M) * LOG2E;
  const float db = b.m == -INFINITY ? 0.0f : (b.m - M) * LOG2E;
  const float ea = a.m == -INFINITY ? 0.0f : ex2(da);
  const float eb = b.m == -INFINITY ? 0.0f : ex2(db);
  Online r;
  r.m = M;
  r.s = ea * a.s + eb * b.s;
  r.w = W ? ea * (a.w + da * a.s) + eb * (b.w + db * b.s) : 0.0f;
  return r;
}

template <bool W>
__device__ __forceinline__ Online online_shfl(Online o, int offset) {
  Online b;
  b.m = __shfl_xor_sync(0xFFFFFFFFu, o.m, offset);
  b.s = __shfl_xor_sync(0xFFFFFFFFu, o.s, offset);
  b.w = W ? __shfl_xor_sync(0xFFFFFFFFu, o.w, offset) : 0.0f;
  return online_merge<W>(o, b);
}

// Merges the state over the TPR threads of a row (TPR = 32: the warp; 256: the CTA). The result is
// returned to every thread of the row. `red` is shared scratch of 8 entries (TPR = 256 only).
template <int TPR, bool W>
__device__ __forceinline__ Online online_reduce(Online o, Online* red) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) o = online_shfl<W>(o, off);
  if (TPR == 32) return o;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();  // red may still be read from a previous row
  if (lane == 0) red[warp] = o;
  __syncthreads();
  o = red[0];
#pragma unroll
  for (int i = 1; i < TPR / 32; i++) o = online_merge<W>(o, red[i]);
  return o;
}

// Loads the units [u0, u1) of a row (relative to `base`, 16-byte aligned) with the row's threads
// (index i of n), U units in flight per thread, and feeds them to `o`. When `slice` is given the raw
// units are also written there (slice[u − u0]).
template <typename In, int U, bool W>
__device__ __forceinline__ void sweep_units(const In* base, int64_t u0, int64_t u1, int i, int n, float inv_t, Online& o,
                                            uint4* slice) {
  constexpr int N = Vec<In>::N;
  const uint4* src = reinterpret_cast<const uint4*>(base);
  for (int64_t u = u0 + i; u < u1; u += (int64_t)n * U) {
    uint4 raw[U];
#pragma unroll
    for (int k = 0; k < U; k++) {
      const int64_t uk = u + (int64_t)k * n;
      if (uk < u1) raw[k] = src[uk];
    }
    float x[U * N];
#pragma unroll
    for (int k = 0; k < U; k++) {
      const int64_t uk = u + (int64_t)k * n;
      if (uk < u1) {
        if (slice) slice[uk - u0] = raw[k];
        unpack(raw[k], &x[k * N], (In*)nullptr);
#pragma unroll
        for (int j = 0; j < N; j++) x[k * N + j] *= inv_t;
      } else {
#pragma unroll
        for (int j = 0; j < N; j++) x[k * N + j] = -INFINITY;
      }
    }
    online_add<U * N, W>(o, x);
  }
}

// ---------------------------------------------------------------- forward

// logits: In [N, V], targets: i32 [N] -> logp, lse: f32 [N], entropy: f32 [N] or null.
// TPR threads per row (32 or 256), 256 / TPR rows per CTA, grid-stride over the rows.
template <typename In, int TPR, bool W>
__global__ void __launch_bounds__(THREADS) logprob_forward_kernel(const In* __restrict__ logits, const int32_t* __restrict__ targets,
                                                                  int64_t N, int64_t V, float inv_t, float* __restrict__ logp,
                                                                  float* __restrict__ lse, float* __restrict__ entropy) {
  constexpr int RPC = THREADS / TPR;  // rows per CTA
  constexpr int NV = Vec<In>::N;
  __shared__ Online red[THREADS / 32];
  const int i = threadIdx.x % TPR;
  for (int64_t t0 = (int64_t)blockIdx.x * RPC; t0 < N; t0 += (int64_t)gridDim.x * RPC) {
    const int64_t t = t0 + threadIdx.x / TPR;
    const bool live = t < N;  // TPR = 32 only: the CTA's last rows may be past N
    Online o = online_init();
    if (live) {
      const In* row = logits + t * V;
      int64_t head, units;
      row_split(row, V, head, units);
      sweep_units<In, 4, W>(row + head, 0, units, i, TPR, inv_t, o, nullptr);
      float x[1];
      for (int64_t v = i; v < head; v += TPR) {
        x[0] = to_f32(row[v]) * inv_t;
        online_add<1, W>(o, x);
      }
      for (int64_t v = head + units * NV + i; v < V; v += TPR) {
        x[0] = to_f32(row[v]) * inv_t;
        online_add<1, W>(o, x);
      }
    }
    o = online_reduce<TPR, W>(o, red);
    if (live && i == 0) {
      const int32_t y = targets[t];
      const float xt = (y >= 0 && y < V) ? to_f32(logits[t * V + y]) * inv_t : NAN;
      const float ls = logf(o.s);  // NaN, −inf (s = 0) or finite
      lse[t] = o.m + ls;
      logp[t] = (xt - o.m) - ls;  // x − m is exact for nearby values: keeps precision at large |x|
      if (W) entropy[t] = o.s > 0.0f ? ls - o.w * LN2 / o.s : NAN;
    }
  }
}

// ---------------------------------------------------------------- backward

// logits: In [N, V], targets: i32 [N], lse, g: f32 [N] -> dlogits: f32 [N, V] =
// (onehot(y) − exp(z/T − lse)) · g / T. dlogits may be the logits (f32): every element is read by the
// thread that writes it, before it writes it. TPR threads per row, grid-stride over rows.
template <typename In, int TPR>
__global__ void __launch_bounds__(THREADS) logprob_backward_kernel(const In* logits, const int32_t* __restrict__ targets,
                                                                   const float* __restrict__ lse, const float* __restrict__ g,
                                                                   int64_t N, int64_t V, float inv_t, float* dlogits) {
  constexpr int RPC = THREADS / TPR;
  constexpr int NV = Vec<In>::N;
  constexpr int U = 2;
  const int i = threadIdx.x % TPR;
  for (int64_t t0 = (int64_t)blockIdx.x * RPC; t0 < N; t0 += (int64_t)gridDim.x * RPC) {
    const int64_t t = t0 + threadIdx.x / TPR;
    if (t >= N) continue;
    const In* row = logits + t * V;
    float* out = dlogits + t * V;
    const float l = lse[t];
    const float scale = g[t] * inv_t;
    const int64_t y = targets[t];
    int64_t head, units;
    row_split(row, V, head, units);
    const bool vec_out = (((uintptr_t)(out + head)) & 15) == 0;
    const uint4* src = reinterpret_cast<const uint4*>(row + head);
    for (int64_t u = i; u < units; u += (int64_t)TPR * U) {
      uint4 raw[U];
#pragma unroll
      for (int k = 0; k < U; k++) {
        if (u + k * TPR < units) raw[k] = src[u + k * TPR];
      }
#pragma unroll
      for (int k = 0; k < U; k++) {
        const int64_t uk = u + k * TPR;
        if (uk >= units) continue;
        float x[NV];
        unpack(raw[k], x, (In*)nullptr);
        const int64_t v0 = head + uk * NV;
#pragma unroll
        for (int j = 0; j < NV; j++) {
          const float p = ex2((x[j] * inv_t - l) * LOG2E);
          x[j] = ((v0 + j == y ? 1.0f : 0.0f) - p) * scale;
        }
        store_vals(out + v0, x, NV, vec_out);
      }
    }
    // the scalar head and tail
    for (int64_t v = i; v < head; v += TPR) {
      const float p = ex2((to_f32(row[v]) * inv_t - l) * LOG2E);
      out[v] = ((v == y ? 1.0f : 0.0f) - p) * scale;
    }
    for (int64_t v = head + units * NV + i; v < V; v += TPR) {
      const float p = ex2((to_f32(row[v]) * inv_t - l) * LOG2E);
      out[v] = ((v == y ? 1.0f : 0.0f) - p) * scale;
    }
  }
}

// ---------------------------------------------------------------- fused token-level GRPO


struct FusedParams {
  int64_t N, V, T;  // rows, vocab, tokens per sequence (row t is sequence t / T)
  float inv_t;      // 1 / temperature
  double eps_low, eps_high, delta, beta;  // delta <= 0: no two-sided clip
};

// The per-token loss rules (tokenLoss in src/reference/grpo.ts) in f64. -> dlogp = w·(gPolicy + gKl);
// st = (w·l, clipped, k3, ρ).
__device__ __forceinline__ double token_loss(double logp, double old_logp, bool has_ref, double ref, double A, double w,
                                             const FusedParams& p, float st[4]) {
  const TokenTerm k = token_term(logp - old_logp, logp, has_ref, ref, A, p.eps_low, p.eps_high, p.delta, p.beta);
  const double l = k.l, g_policy = k.g_policy, g_kl = k.g_kl, k3 = k.k3, rho = k.rho;
  const bool clipped = k.clipped;
  st[0] = (float)(w * l);
  st[1] = clipped ? 1.0f : 0.0f;
  st[2] = (float)k3;
  st[3] = (float)rho;
  return w * (g_policy + g_kl);
}

__device__ __forceinline__ bool mask_on(const float* m, int64_t t) { return m[t] != 0.0f; }
__device__ __forceinline__ bool mask_on(const uint8_t* m, int64_t t) { return m[t] != 0; }

// Cluster barrier halves (sm_90): arrive after the last read of a peer's shared memory, wait before
// exiting, so that no CTA leaves while a peer may still read its shared memory.
__device__ __forceinline__ void cluster_arrive() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
#endif
}

// logits: In [N, V], targets: i32 [N], oldLogp, refLogp (or null): f32 [N], advantages, seqWeight:
// f32 [N / T], mask: f32|u8 [N] -> logp: f32 [N], dlogits: Out [N, V] (may be the logits: In == Out),
// stats: f32 [N, 4].
// Grid: N·C CTAs of 256 threads, clusters of C along x: cluster r = blockIdx.x / C owns row r; CTA k of
// it owns the units [units·k/C, units·(k+1)/C) (+ the head for k = 0, the tail for k = C − 1). SLICE:
// its units stay in dynamic shared memory between the sweeps (C > 1 needs SLICE and sm_90).
template <typename In, typename Out, typename Mask, bool SLICE>
__global__ void __launch_bounds__(THREADS) grpo_fused_kernel(const In* logits, const int32_t* __restrict__ targets,
                                                             const float* __restrict__ old_logp, const float* __restrict__ ref_logp,
                                                             const float* __restrict__ adv, const Mask* __restrict__ mask,
                                                             const float* __restrict__ seq_weight, FusedParams p, int C,
                                                             float* __restrict__ logp, Out* dlogits, float* __restrict__ stats) {
  constexpr int NV = Vec<In>::N;
  extern __shared__ uint4 slice[];
  __shared__ Online red[THREADS / 32];
  __shared__ float part[4];   // this CTA's (m, s) and, in rank 0, x_target: read by the cluster's peers
  __shared__ float row_c[3];  // (m, log2 s, dlogp / T) of the row, for every thread
  const int64_t t = blockIdx.x / C;
  const int k = blockIdx.x % C;
  const int tid = threadIdx.x;
  const In* row = logits + t * p.V;
  Out* out = dlogits + t * p.V;
  int64_t head, units;
  row_split(row, p.V, head, units);
  const int64_t u0 = units * k / C, u1 = units * (k + 1) / C;
  const int64_t tail0 = head + units * NV;
  // a unit of NV inputs is NV outputs: aligned for wide stores when the row's first unit is
  constexpr uintptr_t OUT_ALIGN = NV * sizeof(Out) < 16 ? NV * sizeof(Out) : 16;
  const bool vec_out = (((uintptr_t)(out + head)) & (OUT_ALIGN - 1)) == 0;
  const int64_t y = targets[t];

  if (!mask_on(mask, t)) {  // never read: logp 0, dlogits 0, stats 0 (the whole cluster takes this branch)
    float z[NV];
#pragma unroll
    for (int j = 0; j < NV; j++) z[j] = 0.0f;
    for (int64_t u = u0 + tid; u < u1; u += THREADS) store_vals(out + head + u * NV, z, NV, vec_out);
    if (k == 0) for (int64_t v = tid; v < head; v += THREADS) store1(out + v, 0.0f);
    if (k == C - 1) for (int64_t v = tail0 + tid; v < p.V; v += THREADS) store1(out + v, 0.0f);
    if (k == 0 && tid < 4) stats[t * 4 + tid] = 0.0f;
    if (k == 0 && tid == 0) logp[t] = 0.0f;
    return;
  }

  // sweep 1: (m, s) of this CTA's part of the row; the units go to shared memory
  Online o = online_init();
  sweep_units<In, 4, false>(row + head, u0, u1, tid, THREADS, p.inv_t, o, SLICE ? slice : nullptr);
  float x1[1];
  if (k == 0) {
    for (int64_t v = tid; v < head; v += THREADS) {
      x1[0] = to_f32(row[v]) * p.inv_t;
      online_add<1, false>(o, x1);
    }
  }
  if (k == C - 1) {
    for (int64_t v = tail0 + tid; v < p.V; v += THREADS) {
      x1[0] = to_f32(row[v]) * p.inv_t;
      online_add<1, false>(o, x1);
    }
  }
  o = online_reduce<THREADS, false>(o, red);
  if (tid == 0) {
    part[0] = o.m;
    part[1] = o.s;
    // read before anything is written: in place, a peer may overwrite z[y] after the cluster barrier
    part[2] = (k == 0) ? ((y >= 0 && y < p.V) ? to_f32(row[y]) * p.inv_t : NAN) : 0.0f;
  }
  float xt = 0.0f;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (C > 1) {
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();  // every part[] written
    if (tid == 0) {
      // every CTA merges the C parts in rank order: the same (m, s) everywhere
      o = online_init();
      for (int r = 0; r < C; r++) {
        const float* q = cluster.map_shared_rank(part, r);
        const Online b = {q[0], q[1], 0.0f};
        o = r == 0 ? b : online_merge<false>(o, b);
        if (r == 0) xt = q[2];
      }
    }
    cluster_arrive();  // done with the peers' shared memory
  } else
#endif
  {
    __syncthreads();
    if (tid == 0) xt = part[2];
  }
  if (tid == 0) {
    const float ls = logf(o.s);
    const float lp = (xt - o.m) - ls;
    const int64_t b = t / p.T;
    float st[4];
    // the loss from logp before its rounding to f32 (one rounding less where the terms cancel)
    const double g = token_loss((double)(xt - o.m) - (double)ls, (double)old_logp[t], ref_logp != nullptr, ref_logp ? (double)ref_logp[t] : 0.0,
                                (double)adv[b], (double)seq_weight[b], p, st);
    if (k == 0) {
      logp[t] = lp;
      for (int j = 0; j < 4; j++) stats[t * 4 + j] = st[j];
    }
    row_c[0] = o.m;
    row_c[1] = ls * LOG2E;
    row_c[2] = (float)(g * (double)p.inv_t);
  }
  __syncthreads();
  const float m = row_c[0], l2s = row_c[1], scale = row_c[2];

  // sweep 2: dlogits = (onehot(y) − exp(x − m − log s)) · dlogp / T, from shared memory (or global)
  const uint4* src = SLICE ? slice : reinterpret_cast<const uint4*>(row + head) + u0;
  for (int64_t u = tid; u < u1 - u0; u += THREADS) {
    float x[NV];
    unpack(src[u], x, (In*)nullptr);
    const int64_t v0 = head + (u0 + u) * NV;
#pragma unroll
    for (int j = 0; j < NV; j++) {
      const float pr = ex2(fmaf(x[j] * p.inv_t - m, LOG2E, -l2s));
      x[j] = ((v0 + j == y ? 1.0f : 0.0f) - pr) * scale;
    }
    store_vals(out + v0, x, NV, vec_out);
  }
  // head and tail: re-read from global (a few elements; each read by the thread that writes it)
  if (k == 0) {
    for (int64_t v = tid; v < head; v += THREADS) {
      const float pr = ex2(fmaf(to_f32(row[v]) * p.inv_t - m, LOG2E, -l2s));
      store1(out + v, ((v == y ? 1.0f : 0.0f) - pr) * scale);
    }
  }
  if (k == C - 1) {
    for (int64_t v = tail0 + tid; v < p.V; v += THREADS) {
      const float pr = ex2(fmaf(to_f32(row[v]) * p.inv_t - m, LOG2E, -l2s));
      store1(out + v, ((v == y ? 1.0f : 0.0f) - pr) * scale);
    }
  }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (C > 1) cluster_wait();
#endif
}

}  // namespace lp

// ---------------------------------------------------------------- launchers (host)

// Rows of at most this many elements get a warp each (8 rows per CTA), longer rows a CTA.
static constexpr int64_t LOGPROB_WARP_ROW_MAX = 2048;

inline int logprob_sm_count() {
  static int sms = 0;
  if (sms == 0) {
    int dev = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if (sms <= 0) sms = 1;
  }
  return sms;
}

// Grid-stride launch size: at most 16 CTAs per multiprocessor.
inline unsigned logprob_grid(int64_t ctas) {
  return (unsigned)std::max<int64_t>(1, std::min<int64_t>(ctas, (int64_t)logprob_sm_count() * 16));
}

template <typename In>
inline cudaError_t logprob_forward_launch(const In* logits, const int32_t* targets, int64_t N, int64_t V, float T, float* logp,
                                          float* lse, float* entropy, cudaStream_t stream) {
  const float inv_t = 1.0f / T;
  if (V <= LOGPROB_WARP_ROW_MAX) {
    const unsigned grid = logprob_grid((N + 7) / 8);
    if (entropy) lp::logprob_forward_kernel<In, 32, true><<<grid, lp::THREADS, 0, stream>>>(logits, targets, N, V, inv_t, logp, lse, entropy);
    else lp::logprob_forward_kernel<In, 32, false><<<grid, lp::THREADS, 0, stream>>>(logits, targets, N, V, inv_t, logp, lse, entropy);
  } else {
    const unsigned grid = logprob_grid(N);
    if (entropy) lp::logprob_forward_kernel<In, 256, true><<<grid, lp::THREADS, 0, stream>>>(logits, targets, N, V, inv_t, logp, lse, entropy);
    else lp::logprob_forward_kernel<In, 256, false><<<grid, lp::THREADS, 0, stream>>>(logits, targets, N, V, inv_t, logp, lse, entropy);
  }
  return cudaGetLastError();
}

template <typename In>
inline cudaError_t logprob_backward_launch(const In* logits, const int32_t* targets, const float* lse, const float* g, int64_t N,
                                           int64_t V, float T, float* dlogits, cudaStream_t stream) {
  const float inv_t = 1.0f / T;
  if (V <= LOGPROB_WARP_ROW_MAX) {
    lp::logprob_backward_kernel<In, 32><<<logprob_grid((N + 7) / 8), lp::THREADS, 0, stream>>>(logits, targets, lse, g, N, V, inv_t, dlogits);
  } else {
    lp::logprob_backward_kernel<In, 256><<<logprob_grid(N), lp::THREADS, 0, stream>>>(logits, targets, lse, g, N, V, inv_t, dlogits);
  }
  return cudaGetLastError();
}

// Largest slice of a row one CTA keeps in shared memory (bytes) when choosing the cluster size.
static constexpr int64_t FUSED_SLICE_TARGET = 80 * 1024;  // H100: C = 4 (76 KB) beat C = 8 (38 KB) by 1.33x
static constexpr int64_t FUSED_SLICE_MAX = 110 * 1024;

// The fused kernel's cluster size for a row of `row_bytes`: the smallest of 1, 2, 4, 8 whose slices
// fit FUSED_SLICE_TARGET, else 8 if they fit FUSED_SLICE_MAX, else 0 (no slice: two global sweeps).
// Without sm_90 (no clusters): 1 if the whole row fits FUSED_SLICE_MAX, else 0.
inline int fused_cluster_size(int64_t row_bytes) {
  static int major = -1;
  if (major < 0) {
    int dev = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  }
  const int max_c = major >= 9 ? 8 : 1;
  for (int c = 1; c <= max_c; c *= 2) {
    if ((row_bytes + c - 1) / c + 64 <= FUSED_SLICE_TARGET) return c;
  }
  if ((row_bytes + max_c - 1) / max_c + 64 <= FUSED_SLICE_MAX) return max_c;
  return 0;
}

// cluster: 0 = choose (fused_cluster_size), otherwise forced (1, 2, 4, 8; -1 = no slice, C = 1).
template <typename In, typename Out, typename Mask>
inline cudaError_t grpo_fused_launch(const In* logits, const int32_t* targets, const float* old_logp, const float* ref_logp,
                                     const float* adv, const Mask* mask, const float* seq_weight, const lp::FusedParams& p,
                                     float* logp, Out* dlogits, float* stats, cudaStream_t stream, int cluster = 0) {
  const int64_t row_bytes = p.V * (int64_t)sizeof(In);
  int C = cluster == 0 ? fused_cluster_size(row_bytes) : cluster;
  const bool use_slice = C > 0;
  if (C <= 0) C = 1;
  // units per CTA at most ceil(units / C) + 1 (the split rounds down at both ends)
  const int64_t units = p.V / lp::Vec<In>::N + 1;
  const size_t smem = use_slice ? (size_t)((units + C - 1) / C + 1) * 16 : 0;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3((unsigned)(p.N * C), 1, 1);
  cfg.blockDim = dim3(lp::THREADS, 1, 1);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = (unsigned)C;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = C > 1 ? 1 : 0;
  cudaError_t err;
  if (use_slice) {
    auto kernel = lp::grpo_fused_kernel<In, Out, Mask, true>;
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (err != cudaSuccess) return err;
    err = cudaLaunchKernelEx(&cfg, kernel, logits, targets, old_logp, ref_logp, adv, mask, seq_weight, p, C, logp, dlogits, stats);
  } else {
    auto kernel = lp::grpo_fused_kernel<In, Out, Mask, false>;
    err = cudaLaunchKernelEx(&cfg, kernel, logits, targets, old_logp, ref_logp, adv, mask, seq_weight, p, C, logp, dlogits, stats);
  }
  if (err != cudaSuccess) return err;
  return cudaGetLastError();
}

}  // namespace hp
