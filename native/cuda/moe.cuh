// CUDA MoE kernels (MoeKernels in src/runtime/backend.ts; the rules of src/reference/moe.ts): the
// router (route, routeBackward, updateBias, auxLoss), the dispatch layout, block-aligned expert
// grouping (align), and the row movers (permute, permuteBytes, unpermute, unpermuteWeightGrad).
// Launched by native/cuda/moe.cu on the addon's stream.
//
// Determinism: no float atomics anywhere. Counts use integer atomics (their sums do not depend on
// the order), float sums run in a fixed order (per-lane strides, then a butterfly over the warp),
// and align places each expert's pairs in ascending pair id through per-chunk prefix counts, so
// every run gives the same bits.
//
// Bad indices (outside [0, E)) never reach memory: route's backward and the aux loss skip them,
// layout ignores them, align counts them in info[2] and gives them pairPos −1, and the row movers
// give a zero row (permute) or add nothing (unpermute) for a row id outside the tensor.
#pragma once

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

namespace hp {
namespace moe {

constexpr unsigned FULL = 0xffffffffu;
constexpr int NONE = 0x7fffffff;  // "no candidate": ranks after every real one

// ---------------------------------------------------------------- small helpers

__device__ __forceinline__ float bf16_to_f32(uint16_t b) { return __uint_as_float((uint32_t)b << 16); }

// f32 -> bf16 bits, round to nearest even; NaN stays NaN (quiet bit set).
__device__ __forceinline__ uint16_t f32_to_bf16(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float load1(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load1(const uint16_t* p, int64_t i) { return bf16_to_f32(p[i]); }
__device__ __forceinline__ void store1(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store1(uint16_t* p, int64_t i, float v) { p[i] = f32_to_bf16(v); }

// 8 consecutive elements as f32 (p is 16-byte aligned for bf16, 32-byte for f32).
__device__ __forceinline__ void load8(const float* p, float* v) {
  const float4 a = *reinterpret_cast<const float4*>(p), b = *reinterpret_cast<const float4*>(p + 4);
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
__device__ __forceinline__ void load8(const uint16_t* p, float* v) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    v[2 * i] = __uint_as_float(w[i] << 16);
    v[2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
  }
}
__device__ __forceinline__ void store8(float* p, const float* v) {
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
  *reinterpret_cast<float4*>(p + 4) = make_float4(v[4], v[5], v[6], v[7]);
}
__device__ __forceinline__ void store8(uint16_t* p, const float* v) {
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; i++) w[i] = (uint32_t)f32_to_bf16(v[2 * i]) | ((uint32_t)f32_to_bf16(v[2 * i + 1]) << 16);
  *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
}

// The strict total order of every selection: higher key first, ties -> lower index; NONE last.
__device__ __forceinline__ bool before(float va, int ia, float vb, int ib) {
  if (ia == NONE) return false;
  if (ib == NONE) return true;
  return va > vb || (va == vb && ia < ib);
}

// The warp's best (key, index); every lane gets it (the order is total, so the butterfly agrees).
__device__ __forceinline__ void warp_best(float& v, int& i) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(FULL, v, o);
    const int oi = __shfl_xor_sync(FULL, i, o);
    if (before(ov, oi, v, i)) v = ov, i = oi;
  }
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
  return v;
}

__device__ __forceinline__ int64_t warp_sum_i64(int64_t v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
  return v;
}

// Inclusive prefix sum of v in thread order over a CTA of exactly 1024 threads (32 warps: warp
// shuffles, then the warps' sums in shared `wsum` [32]); `total` gets the CTA's sum. Every thread calls
// it; it ends with a __syncthreads, so wsum may be reused at once. Used by align_scan_kernel and
// moe_dispatch.cuh's recv_scan_kernel.
__device__ __forceinline__ int64_t cta1024_inclusive_scan(int64_t v, int64_t* wsum, int64_t& total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int64_t x = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int64_t y = __shfl_up_sync(FULL, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) wsum[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int64_t s = wsum[lane];
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int64_t y = __shfl_up_sync(FULL, s, o);
      if (lane >= o) s += y;
    }
    wsum[lane] = s;  // inclusive over warps
  }
  __syncthreads();
  const int64_t incl = x + (warp > 0 ? wsum[warp - 1] : 0);
  total = wsum[31];
  __syncthreads();
  return incl;
}

// ---------------------------------------------------------------- route

struct RouteParams {
  int64_t T;
  int E, k, n_group, topk_group;
  int softmax, group_max, norm;
  double scale;  // routedScalingFactor, as the JS number (the reference multiplies in f64)
};

// Shared floats per warp: the selection keys [E], the scores [E], the group keys [n_group].
__host__ __device__ inline int route_smem_floats(int E, int n_group) { return 2 * E + n_group; }

// logits: f32 [T, E], bias: f32 [E] or null -> scores: f32 [T, E], weights: f32 [T, k], indices: i32 [T, k].
// A warp per token. Scores are computed in f64 and rounded once (as the reference does); the
// selection keys s' = f32(s + b) (NaN -> −∞) live in shared memory, and a removed candidate (taken,
// or in a group that was not kept) is marked NaN there, so every scan just skips NaN.
static __global__ void route_kernel(const float* __restrict__ logits, const float* __restrict__ bias, RouteParams p,
                                    float* __restrict__ scores, float* __restrict__ weights, int32_t* __restrict__ indices) {
  extern __shared__ float route_smem[];
  const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int E = p.E, k = p.k;
  float* key = route_smem + (int64_t)warp * route_smem_floats(E, p.n_group);
  float* sc = key + E;
  float* gkey = sc + E;
  const float QNAN = __int_as_float(0x7FC00000);
  for (int64_t t = (int64_t)blockIdx.x * warps + warp; t < p.T; t += (int64_t)gridDim.x * warps) {
    const float* z = logits + t * E;
    float* s = scores + t * E;
    bool nan = false;
    if (!p.softmax) {
      for (int e = lane; e < E; e += 32) {
        const float x = z[e];
        nan |= x != x;
        sc[e] = (float)(1.0 / (1.0 + exp(-(double)x)));
      }
    } else {
      float m = -INFINITY;
      for (int e = lane; e < E; e += 32) {
        const float x = z[e];
        nan |= x != x;
        if (x > m) m = x;
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) {
        const float om = __shfl_xor_sync(FULL, m, o);
        if (om > m) m = om;
      }
      double sum = 0;
      for (int e = lane; e < E; e += 32) sum += exp((double)z[e] - (double)m);
      sum = warp_sum(sum);
      nan = __any_sync(FULL, nan);
      for (int e = lane; e < E; e += 32) sc[e] = nan ? QNAN : (float)(exp((double)z[e] - (double)m) / sum);
    }
    nan = __any_sync(FULL, nan);
    for (int e = lane; e < E; e += 32) {
      s[e] = sc[e];
      const float sb = bias ? sc[e] + bias[e] : sc[e];
      key[e] = sb != sb ? -INFINITY : sb;
    }
    __syncwarp();

    // group-limited routing: keep the topk_group best groups, remove the others' experts
    if (p.topk_group < p.n_group) {
      const int G = E / p.n_group;
      for (int g = 0; g < p.n_group; g++) {
        float b1 = -INFINITY, b2 = -INFINITY;  // the two largest keys of the group (a multiset)
        for (int e = g * G + lane; e < (g + 1) * G; e += 32) {
          const float v = key[e];
          if (v > b1) b2 = b1, b1 = v;
          else if (v > b2) b2 = v;
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
          const float o1 = __shfl_xor_sync(FULL, b1, o), o2 = __shfl_xor_sync(FULL, b2, o);
          const float hi = fmaxf(b1, o1), lo = fminf(b1, o1);
          b2 = fmaxf(lo, fmaxf(b2, o2));
          b1 = hi;
        }
        const float gs = p.group_max ? b1 : b1 + b2;
        if (lane == 0) gkey[g] = gs != gs ? -INFINITY : gs;  // +inf + -inf (an infinite bias) sorts last
      }
      __syncwarp();
      for (int n = 0; n < p.topk_group; n++) {
        float bv = -INFINITY;
        int bi = NONE;
        for (int g = lane; g < p.n_group; g += 32) {
          const float v = gkey[g];
          if (v == v && before(v, g, bv, bi)) bv = v, bi = g;
        }
        warp_best(bv, bi);
        if (lane == 0 && bi != NONE) gkey[bi] = QNAN;  // kept groups end up marked NaN
        __syncwarp();
      }
      for (int e = lane; e < E; e += 32) {
        const float gv = gkey[e / G];
        if (gv == gv) key[e] = QNAN;  // a group that was not kept
      }
      __syncwarp();
    }

    // top-k of s' among what is left, best first; lane 0 keeps the weights' f32 running sum
    float sum = 0.0f;
    for (int j = 0; j < k; j++) {
      float bv = -INFINITY;
      int bi = NONE;
      for (int e = lane; e < E; e += 32) {
        const float v = key[e];
        if (v == v && before(v, e, bv, bi)) bv = v, bi = e;
      }
      warp_best(bv, bi);
      if (bi == NONE) bi = 0;  // cannot happen when k ≤ the kept experts (checked by the ops)
      if (lane == 0) {
        key[bi] = QNAN;
        indices[t * k + j] = bi;
        weights[t * k + j] = sc[bi];
        sum = sum + sc[bi];
      }
      __syncwarp();
    }
    const float denom = (float)((double)__shfl_sync(FULL, sum, 0) + 1e-20);
    for (int j = lane; j < k; j += 32) {
      float w = weights[t * k + j];
      if (p.norm) w = w / denom;
      w = (float)((double)w * p.scale);
      weights[t * k + j] = nan ? QNAN : w;
    }
    __syncwarp();
  }
}

// scores: f32 [T, E], indices: i32 [T, k], dWeights: f32 [T, k], dScores: f32 [T, E] or null
// -> dLogits: f32 [T, E]. A warp per token, f64 arithmetic (the reference's), ds in shared memory.
static __global__ void route_backward_kernel(const float* __restrict__ scores, const int32_t* __restrict__ indices,
                                             const float* __restrict__ dw, const float* __restrict__ dscores, RouteParams p,
                                             float* __restrict__ dlogits) {
  extern __shared__ double rb_smem[];
  const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int E = p.E, k = p.k;
  double* ds = rb_smem + (int64_t)warp * E;
  for (int64_t t = (int64_t)blockIdx.x * warps + warp; t < p.T; t += (int64_t)gridDim.x * warps) {
    const float* s = scores + t * E;
    for (int e = lane; e < E; e += 32) ds[e] = dscores ? (double)dscores[t * E + e] : 0.0;
    double S = 0, dot = 0;
    for (int j = lane; j < k; j += 32) {
      const int e = indices[t * k + j];
      if (e < 0 || e >= E) continue;
      S += s[e];
      dot += (double)dw[t * k + j] * s[e];
    }
    S = warp_sum(S) + 1e-20;
    dot = warp_sum(dot);
    __syncwarp();
    if (lane == 0) {  // in slot order: a repeated expert adds up
      for (int j = 0; j < k; j++) {
        const int e = indices[t * k + j];
        if (e < 0 || e >= E) continue;
        const double g = dw[t * k + j];
        ds[e] += p.norm ? p.scale * (g / S - dot / (S * S)) : p.scale * g;
      }
    }
    __syncwarp();
    if (!p.softmax) {
      for (int e = lane; e < E; e += 32) {
        const double se = s[e];
        dlogits[t * E + e] = (float)(ds[e] * se * (1 - se));
      }
    } else {
      double d2 = 0;
      for (int e = lane; e < E; e += 32) d2 += ds[e] * s[e];
      d2 = warp_sum(d2);
      for (int e = lane; e < E; e += 32) dlogits[t * E + e] = (float)((double)s[e] * (ds[e] - d2));
    }
    __syncwarp();
  }
}

// ---------------------------------------------------------------- balancing

// bias: f32 [E], load: i32 [E] -> out: f32 [E] = bias + γ·sign(Σload − E·load_e). One CTA of 1024.
static __global__ void update_bias_kernel(const float* __restrict__ bias, const int32_t* __restrict__ load, int E, float gamma,
                                          float* __restrict__ out) {
  __shared__ int64_t part[32];
  int64_t total = 0;
  for (int e = threadIdx.x; e < E; e += blockDim.x) total += load[e];
  total = warp_sum_i64(total);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = total;
  __syncthreads();
  total = 0;
  for (int w = 0; w < (int)(blockDim.x >> 5); w++) total += part[w];
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    const int64_t d = total - (int64_t)E * load[e];
    const double sign = d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0;
    out[e] = (float)((double)bias[e] + (double)gamma * sign);
  }
}

// The aux loss's work area: f64 [1 + T] (the loss, then each token's Σ_i f_i s_i / S_t), then
// i32 [nSeq·E] (pairs per sequence and expert).
inline size_t aux_work_bytes(int64_t T, int64_t n_seq, int64_t E) { return 8 * (size_t)(1 + T) + 4 * (size_t)(n_seq * E); }

// indices: i32 [T, k] -> cnt[seq, e] += 1 per pair (integer atomics: the counts do not depend on the order).
static __global__ void aux_count_kernel(const int32_t* __restrict__ indices, int64_t T, int k, int E, int64_t seq_len,
                                        int32_t* __restrict__ cnt) {
  const int64_t n = T * k;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int e = indices[i];
    if (e < 0 || e >= E) continue;
    atomicAdd(&cnt[(i / k / seq_len) * E + e], 1);
  }
}

// A warp per token: S_t = Σ s + ε, fs_t = Σ f_e s_e (f64), dScores row, term[t] = fs_t / S_t.
static __global__ void aux_row_kernel(const float* __restrict__ scores, const int32_t* __restrict__ cnt, int64_t T, int E, int k,
                                      int64_t seq_len, double alpha, float* __restrict__ dscores, double* __restrict__ term) {
  const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const double n_seq = (double)(T / seq_len);
  const double kl = (double)k * (double)seq_len;
  const double a = alpha / (n_seq * (double)seq_len);
  for (int64_t t = (int64_t)blockIdx.x * warps + warp; t < T; t += (int64_t)gridDim.x * warps) {
    const float* s = scores + t * E;
    const int32_t* c = cnt + (t / seq_len) * E;
    double S = 0, fs = 0;
    for (int e = lane; e < E; e += 32) {
      S += s[e];
      fs += ((double)c[e] * E) / kl * s[e];
    }
    S = warp_sum(S) + 1e-20;
    fs = warp_sum(fs);
    for (int e = lane; e < E; e += 32) dscores[t * E + e] = (float)(a * (((double)c[e] * E) / kl / S - fs / (S * S)));
    if (lane == 0) term[t] = fs / S;
  }
}

// One CTA: loss = mean over sequences of α/L · Σ_t term[t], each sum in a fixed order -> work[0].
static __global__ void aux_total_kernel(const double* __restrict__ term, int64_t T, int64_t seq_len, double alpha, double* __restrict__ loss) {
  __shared__ double part[32];
  const int64_t n_seq = T / seq_len;
  double total = 0;  // thread 0's
  for (int64_t q = 0; q < n_seq; q++) {
    double v = 0;
    for (int64_t t = threadIdx.x; t < seq_len; t += blockDim.x) v += term[q * seq_len + t];
    v = warp_sum(v);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
      double seq = 0;
      for (int w = 0; w < (int)(blockDim.x >> 5); w++) seq += part[w];
      total += alpha * seq / (double)seq_len;
    }
  }
  if (threadIdx.x == 0) loss[0] = total / (double)n_seq;
}

// ---------------------------------------------------------------- layout

// indices: i32 [T, k] -> isTokenInRank: u8 [T, R], tokensPerRank: i32 [R] (+=, zeroed before).
// A thread per (token, rank); a shared histogram (R ints) per CTA, one global atomic per rank and CTA.
static __global__ void layout_rank_kernel(const int32_t* __restrict__ indices, int64_t T, int k, int E, int R, int use_smem,
                                          uint8_t* __restrict__ in_rank, int32_t* __restrict__ per_rank) {
  extern __shared__ int32_t hist[];
  if (use_smem) {
    for (int r = threadIdx.x; r < R; r += blockDim.x) hist[r] = 0;
    __syncthreads();
  }
  const int per = E / R;
  const int64_t n = T * R;
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    const int64_t t = i / R;
    const int r = (int)(i % R);
    bool in = false;
    for (int j = 0; j < k; j++) {
      const int e = indices[t * k + j];
      in |= e >= 0 && e < E && e / per == r;
    }
    in_rank[i] = in ? 1 : 0;
    if (in) atomicAdd(use_smem ? &hist[r] : &per_rank[r], 1);
  }
  if (use_smem) {
    __syncthreads();
    for (int r = threadIdx.x; r < R; r += blockDim.x) {
      if (hist[r]) atomicAdd(&per_rank[r], hist[r]);
    }
  }
}

// indices: i32 [n] -> hist: i32 [E] (+=, zeroed before); bad indices are skipped.
static __global__ void expert_hist_kernel(const int32_t* __restrict__ indices, int64_t n, int E, int use_smem, int32_t* __restrict__ out) {
  extern __shared__ int32_t hist[];
  if (use_smem) {
    for (int e = threadIdx.x; e < E; e += blockDim.x) hist[e] = 0;
    __syncthreads();
  }
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const int e = indices[i];
    if (e >= 0 && e < E) atomicAdd(use_smem ? &hist[e] : &out[e], 1);
  }
  if (use_smem) {
    __syncthreads();
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
      if (hist[e]) atomicAdd(&out[e], hist[e]);
    }
  }
}

// ---------------------------------------------------------------- align
//
// The pairs are cut into chunks of 32·rounds consecutive pair ids, a warp each. Pass 1 counts each
// chunk's pairs per expert (chunk[c, e]); pass 2 (one CTA) turns every expert's column into
// exclusive prefixes over the chunks, caps and pads the totals and scans them into segment starts;
// pass 3 writes padding, blockExpert and rowExpert; pass 4 walks each chunk again in order and puts
// each pair at start[e] + (pairs of e in earlier chunks) + (earlier pairs of e in this chunk): the
// ascending pair id order within every expert, whatever the scheduling.

struct AlignWork {
  int32_t* start;  // [E] segment starts
  int32_t* kept;   // [E] pairs kept per expert
  int32_t* misc;   // [4]: bad indices, P
  int32_t* chunk;  // [chunks, E]
};

inline int64_t align_rounds(int64_t pairs, int64_t E) {
  // 8 rounds (256 pairs) a warp, more when the chunk table would pass 8M counters
  int64_t rounds = 8;
  const int64_t limit = 8ll << 20;
  while (((pairs + 32 * rounds - 1) / (32 * rounds)) * E > limit) rounds *= 2;
  return rounds;
}
inline int64_t align_chunks(int64_t pairs, int64_t E) {
  const int64_t ch = 32 * align_rounds(pairs, E);
  return (pairs + ch - 1) / ch;
}
inline size_t align_work_bytes(int64_t pairs, int64_t E) { return 4 * (size_t)(2 * E + 4 + align_chunks(pairs, E) * E); }
inline AlignWork align_work(void* base, int64_t E) {
  int32_t* w = (int32_t*)base;
  return {w, w + E, w + 2 * E, w + 2 * E + 4};
}

// Pass 1: a warp per chunk -> chunk[c, e] (zeroed before), misc[0] += bad indices.
static __global__ void align_count_kernel(const int32_t* __restrict__ indices, int64_t pairs, int E, int64_t rounds, int64_t chunks,
                                          AlignWork w) {
  const int warps = blockDim.x >> 5, lane = threadIdx.x & 31;
  const int64_t c = (int64_t)blockIdx.x * warps + (threadIdx.x >> 5);
  if (c >= chunks) return;
  int32_t* row = w.chunk + c * E;
  int bad = 0;
  for (int64_t r = 0; r < rounds; r++) {
    const int64_t id = (c * rounds + r) * 32 + lane;
    int e = -1;
    if (id < pairs) {
      e = indices[id];
      if (e < 0 || e >= E) bad++, e = -1;
    }
    const unsigned peers = __match_any_sync(FULL, e);
    if (e >= 0 && lane == __ffs(peers) - 1) row[e] += __popc(peers);
    __syncwarp();
  }
  bad = (int)warp_sum_i64(bad);
  if (lane == 0 && bad) atomicAdd(&w.misc[0], bad);
}

// Pass 2: one CTA of 1024 threads. Column prefixes, kept = min(total, capacity), segment starts
// (exclusive scan of the padded sizes), counts and info.
static __global__ void __launch_bounds__(1024) align_scan_kernel(int E, int bs, int64_t capacity, int64_t chunks, AlignWork w,
                                                                 int32_t* __restrict__ counts, int32_t* __restrict__ info) {
  __shared__ int64_t wsum[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int64_t carry = 0, dropped = 0;
  for (int e0 = 0; e0 < E; e0 += 1024) {
    const int e = e0 + threadIdx.x;
    int64_t padded = 0;
    if (e < E) {
      int64_t total = 0;
      for (int64_t c = 0; c < chunks; c++) {
        const int32_t v = w.chunk[c * E + e];
        w.chunk[c * E + e] = (int32_t)total;
        total += v;
      }
      const int64_t kept = capacity > 0 && total > capacity ? capacity : total;
      dropped += total - kept;
      w.kept[e] = (int32_t)kept;
      counts[e] = (int32_t)kept;
      padded = (kept + bs - 1) / bs * bs;
    }
    int64_t total;
    const int64_t incl = cta1024_inclusive_scan(padded, wsum, total);
    if (e < E) w.start[e] = (int32_t)(carry + incl - padded);
    carry += total;
  }
  dropped = warp_sum_i64(dropped);
  if (lane == 0) wsum[warp] = dropped;
  __syncthreads();
  if (threadIdx.x == 0) {
    int64_t d = 0;
    for (int i = 0; i < 32; i++) d += wsum[i];
    info[0] = (int32_t)carry;
    info[1] = (int32_t)d;
    info[2] = w.misc[0];
    info[3] = 0;
    w.misc[1] = (int32_t)carry;
  }
}

// Pass 3: a thread per row of [0, Pmax): padding rows and rows past P get the sentinel and expert
// −1; each block's first row writes blockExpert. Real rows' sortedPairs are pass 4's.
static __global__ void align_fill_kernel(int E, int bs, int64_t pmax, int32_t sentinel, AlignWork w, int32_t* __restrict__ sorted,
                                         int32_t* __restrict__ block_expert, int32_t* __restrict__ row_expert) {
  const int64_t P = w.misc[1];
  for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < pmax; r += (int64_t)gridDim.x * blockDim.x) {
    int ex = -1;
    bool real = false;
    if (r < P) {
      // the last expert whose segment starts at or before r (empty segments share their start)
      int lo = 0, hi = E - 1;
      while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (w.start[mid] <= r) lo = mid;
        else hi = mid - 1;
      }
      ex = lo;
      real = r - w.start[lo] < w.kept[lo];
    }
    if (!real) sorted[r] = sentinel;
    row_expert[r] = real ? ex : -1;
    if (r % bs == 0) block_expert[r / bs] = ex;
  }
}

// Pass 4: a warp per chunk, its pairs in ascending id -> sortedPairs, pairPos.
static __global__ void align_scatter_kernel(const int32_t* __restrict__ indices, int64_t pairs, int E, int64_t rounds, int64_t chunks,
                                            AlignWork w, int32_t* __restrict__ sorted, int32_t* __restrict__ pair_pos) {
  const int warps = blockDim.x >> 5, lane = threadIdx.x & 31;
  const int64_t c = (int64_t)blockIdx.x * warps + (threadIdx.x >> 5);
  if (c >= chunks) return;
  int32_t* row = w.chunk + c * E;
  const unsigned below = (1u << lane) - 1;
  for (int64_t r = 0; r < rounds; r++) {
    const int64_t id = (c * rounds + r) * 32 + lane;
    int e = -1;
    if (id < pairs) {
      e = indices[id];
      if (e < 0 || e >= E) e = -1;
    }
    const unsigned peers = __match_any_sync(FULL, e);
    int32_t base = 0;
    if (e >= 0) base = row[e];
    __syncwarp();
    if (e >= 0) {
      if (lane == __ffs(peers) - 1) row[e] = base + __popc(peers);
      const int32_t rank = base + __popc(peers & below);
      int32_t pos = -1;
      if (rank < w.kept[e]) {
        pos = w.start[e] + rank;
        sorted[pos] = (int32_t)id;
      }
      pair_pos[id] = pos;
    } else if (id < pairs) {
      pair_pos[id] = -1;
    }
    __syncwarp();
  }
}

// ---------------------------------------------------------------- row movers

// x: [T, H] (In), rows: i32 [P], weights: f32 [T·k] or null -> out: [P, H] (Out), out[p] = w·x[id / k];
// a row id outside [0, T·k) gives a zero row. A CTA per row at a time; 8 elements a thread a step
// when vec (H % 8 == 0 and 16-byte aligned rows), one otherwise. f32 product, bf16 by RNE.
template <typename In, typename Out>
__global__ void permute_kernel(const In* __restrict__ x, int64_t T, int64_t H, const int32_t* __restrict__ rows, int64_t P, int k,
                               const float* __restrict__ weights, Out* __restrict__ out, bool vec) {
  const int64_t pairs = T * k;
  for (int64_t p = blockIdx.x; p < P; p += gridDim.x) {
    const int32_t id = rows[p];
    const bool zero = id < 0 || id >= pairs;
    const float w = zero ? 0.0f : weights ? weights[id] : 1.0f;
    const In* src = x + (zero ? 0 : (int64_t)(id / k)) * H;
    Out* dst = out + p * H;
    if (vec) {
      for (int64_t h = (int64_t)threadIdx.x * 8; h < H; h += (int64_t)blockDim.x * 8) {
        float v[8];
        if (zero) {
#pragma unroll
          for (int i = 0; i < 8; i++) v[i] = 0.0f;
        } else {
          load8(src + h, v);
          if (weights) {
#pragma unroll
            for (int i = 0; i < 8; i++) v[i] = w * v[i];
          }
        }
        store8(dst + h, v);
      }
    } else {
      for (int64_t h = threadIdx.x; h < H; h += blockDim.x) store1(dst, h, zero ? 0.0f : weights ? w * load1(src, h) : load1(src, h));
    }
  }
}

// Bytes as they are: x [T, rowBytes], rows: i32 [P] -> out [P, rowBytes]; zero bytes for a bad id.
// unit: 16, 4 or 1 bytes (the largest that divides rowBytes and both pointers' alignment).
template <typename U>
__global__ void permute_bytes_kernel(const U* __restrict__ x, int64_t T, int64_t units, const int32_t* __restrict__ rows, int64_t P, int k,
                                     U* __restrict__ out) {
  const int64_t pairs = T * k;
  for (int64_t p = blockIdx.x; p < P; p += gridDim.x) {
    const int32_t id = rows[p];
    const bool zero = id < 0 || id >= pairs;
    const U* src = x + (zero ? 0 : (int64_t)(id / k)) * units;
    U* dst = out + p * units;
    for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
      if (zero) dst[u] = U{};
      else dst[u] = src[u];
    }
  }
}

// y: [P, H] (In), pairPos: i32 [T, k], weights: f32 [T, k] or null -> out: [T, H] (Out),
// out[t] = Σ_j w·y[pos] as f32 fused multiply-adds in slot order; pos outside [0, P) adds nothing.
template <typename In, typename Out>
__global__ void unpermute_kernel(const In* __restrict__ y, int64_t P, int64_t H, const int32_t* __restrict__ pair_pos, int64_t T, int k,
                                 const float* __restrict__ weights, Out* __restrict__ out, bool vec) {
  for (int64_t t = blockIdx.x; t < T; t += gridDim.x) {
    const int32_t* pp = pair_pos + t * k;
    const float* ww = weights ? weights + t * k : nullptr;
    Out* dst = out + t * H;
    if (vec) {
      for (int64_t h = (int64_t)threadIdx.x * 8; h < H; h += (int64_t)blockDim.x * 8) {
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int j = 0; j < k; j++) {
          const int32_t pos = pp[j];
          if (pos < 0 || pos >= P) continue;
          const float w = ww ? ww[j] : 1.0f;
          float v[8];
          load8(y + (int64_t)pos * H + h, v);
#pragma unroll
          for (int i = 0; i < 8; i++) acc[i] = fmaf(w, v[i], acc[i]);
        }
        store8(dst + h, acc);
      }
    } else {
      for (int64_t h = threadIdx.x; h < H; h += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < k; j++) {
          const int32_t pos = pp[j];
          if (pos < 0 || pos >= P) continue;
          acc = fmaf(ww ? ww[j] : 1.0f, load1(y, (int64_t)pos * H + h), acc);
        }
        store1(dst, h, acc);
      }
    }
  }
}

// dOut: [T, H], y: [P, H], pairPos: i32 [T, k] -> dWeights: f32 [T, k] = dOut[t]·y[pos] (f64 sum,
// rounded once; 0 for pos outside [0, P)). A warp per pair.
template <typename A, typename B>
__global__ void unpermute_wgrad_kernel(const A* __restrict__ dout, const B* __restrict__ y, int64_t P, int64_t H,
                                       const int32_t* __restrict__ pair_pos, int64_t T, int k, float* __restrict__ dw, bool vec) {
  const int warps = blockDim.x >> 5, lane = threadIdx.x & 31;
  const int64_t n = T * k;
  for (int64_t i = (int64_t)blockIdx.x * warps + (threadIdx.x >> 5); i < n; i += (int64_t)gridDim.x * warps) {
    const int32_t pos = pair_pos[i];
    double s = 0;
    if (pos >= 0 && pos < P) {
      const A* a = dout + (i / k) * H;
      const B* b = y + (int64_t)pos * H;
      if (vec) {
        for (int64_t h = (int64_t)lane * 8; h < H; h += 256) {
          float va[8], vb[8];
          load8(a + h, va);
          load8(b + h, vb);
#pragma unroll
          for (int q = 0; q < 8; q++) s += (double)va[q] * (double)vb[q];
        }
      } else {
        for (int64_t h = lane; h < H; h += 32) s += (double)load1(a, h) * (double)load1(b, h);
      }
    }
    s = warp_sum(s);
    if (lane == 0) dw[i] = (float)s;
  }
}

}  // namespace moe
}  // namespace hp
