// CUDA nn kernels for the trainer's transformer: embedding, RMSNorm, RoPE, causal attention, SwiGLU,
// addScaled, sumSquares, AdamW and sampling, with their backwards. Pure CUDA runtime (no Node-API):
// native/cuda/nn.cu checks the arguments and calls the *_launch functions, which launch on the given
// stream and return at once. Semantics: src/reference/nn.ts (NnKernels in src/runtime/backend.ts).
//
// f32 arithmetic, with f64 where it decides accuracy (RoPE angles, RMSNorm's sums, sumSquares, every
// step of sampling). Every result is deterministic: no atomics, and every sum runs in one fixed order:
// - embeddingBackward: a block per position n; the first occurrence of an id owns its table row and
//   walks the later positions with that id in order (a later occurrence finds an earlier one and
//   leaves). No sort, no scratch: O(N²/256) id compares per call, nothing at the trainer's N = B·T.
// - rmsnormBackward: dWeight from fixed row parts (at most 64) summed in part order.
// - attentionBackward: dq from a kernel over query tiles, dk and dv from one over key tiles, each
//   recomputing P from the saved lse; D_i = dO_i·O_i comes first into a work row.
// - sumSquares: 1024 fixed element ranges, each summed in f64, then summed in range order.
// - sample: a block per row; radix descent over the logits' order (see sample_search).
#pragma once

#include <cuda_runtime.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>

#include <algorithm>

namespace hp {

namespace nnk {

constexpr unsigned FULL = 0xffffffffu;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
  return v;  // the same bits in every lane: each butterfly step adds the same two values (a + b = b + a)
}
__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
  return v;
}
__device__ __forceinline__ int warp_sum(int v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL, v, o));
  return v;
}

// Blocks for a grid-stride loop over n items with `threads` per block (at most 8 per multiprocessor's
// worth of work, at least 1).
inline unsigned grid_for(int64_t n, int threads, int sm_count) {
  const int64_t want = (n + threads - 1) / threads;
  const int64_t cap = (int64_t)std::max(1, sm_count) * 8 * (1024 / threads);
  return (unsigned)std::max<int64_t>(1, std::min(want, cap));
}

// ---------------------------------------------------------------- embedding

// table: [V, D], ids: [N] -> out: [N, D]. An id outside [0, V) (only possible from device-side ids,
// which no host check saw) gives a NaN row instead of a read past the table.
static __global__ void embedding_kernel(const float* __restrict__ table, const int32_t* __restrict__ ids, int64_t V, int64_t D, int64_t N,
                                        float* __restrict__ out) {
  const int64_t total = N * D;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t n = i / D, d = i - n * D;
    const int32_t id = ids[n];
    out[i] = (id >= 0 && id < V) ? table[(int64_t)id * D + d] : NAN;
  }
}

constexpr int EMB_THREADS = 256;

// dOut: [N, D], ids: [N] -> dTable: [V, D] += each id's dOut rows, summed in position order.
// grid (N, ceil(D / 256)): block (n, c) handles columns c·256 + tid of position n's id, and does the
// work only when n is that id's first position. Bad ids are skipped.
static __global__ void __launch_bounds__(EMB_THREADS) embedding_backward_kernel(const float* __restrict__ dout, const int32_t* __restrict__ ids,
                                                                                int64_t V, int64_t D, int64_t N, float* __restrict__ dtable) {
  __shared__ int32_t list[EMB_THREADS];
  __shared__ int warp_count[EMB_THREADS / 32];
  const int64_t n = blockIdx.x;
  const int32_t id = ids[n];
  if (id < 0 || id >= V) return;  // the same for the whole block
  const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
  // an earlier position with this id owns the row: then this block has nothing to do
  for (int64_t m0 = 0; m0 < n; m0 += EMB_THREADS) {
    const int64_t m = m0 + tid;
    if (__syncthreads_or(m < n && ids[m] == id)) return;
  }
  const int64_t d = (int64_t)blockIdx.y * EMB_THREADS + tid;
  float acc = 0.0f;
  for (int64_t m0 = n; m0 < N; m0 += EMB_THREADS) {
    // this tile's positions with the id, compacted into `list` in position order
    const int64_t m = m0 + tid;
    const bool hit = m < N && ids[m] == id;
    const unsigned ballot = __ballot_sync(FULL, hit);
    if (lane == 0) warp_count[w] = __popc(ballot);
    __syncthreads();
    int before = 0, total = 0;
#pragma unroll
    for (int i = 0; i < EMB_THREADS / 32; i++) {
      before += i < w ? warp_count[i] : 0;
      total += warp_count[i];
    }
    if (hit) list[before + __popc(ballot & ((1u << lane) - 1u))] = tid;
    __syncthreads();
    if (d < D) {
      for (int i = 0; i < total; i++) acc += dout[(m0 + list[i]) * D + d];
    }
    __syncthreads();  // list and warp_count are rewritten by the next tile
  }
  if (d < D) dtable[(int64_t)id * D + d] += acc;
}

// ---------------------------------------------------------------- RMSNorm

constexpr int ROW_WARPS = 8;  // rows per 256-thread block (a warp per row)

// x: [N, D], w: [D] -> out: [N, D] = x·r·w, rstd: [N] = r = 1/sqrt(mean(x²) + eps) (the sum in f64).
static __global__ void __launch_bounds__(ROW_WARPS * 32) rmsnorm_kernel(const float* __restrict__ x, const float* __restrict__ weight, int64_t N,
                                                                        int64_t D, double eps, float* __restrict__ out, float* __restrict__ rstd) {
  const int64_t row = (int64_t)blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
  if (row >= N) return;
  const int lane = threadIdx.x & 31;
  const float* xr = x + row * D;
  double ss = 0;
  for (int64_t d = lane; d < D; d += 32) ss += (double)xr[d] * xr[d];
  ss = warp_sum(ss);
  const float r = (float)(1.0 / sqrt(ss / (double)D + eps));
  if (lane == 0) rstd[row] = r;
  float* o = out + row * D;
  for (int64_t d = lane; d < D; d += 32) o[d] = xr[d] * r * weight[d];
}

// dx: [N, D] = r·w·g − x·(r³/D)·Σ g·w·x per row (a warp per row; the dot in f64).
static __global__ void __launch_bounds__(ROW_WARPS * 32) rmsnorm_dx_kernel(const float* __restrict__ g, const float* __restrict__ x,
                                                                           const float* __restrict__ weight, const float* __restrict__ rstd,
                                                                           int64_t N, int64_t D, float* __restrict__ dx) {
  const int64_t row = (int64_t)blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
  if (row >= N) return;
  const int lane = threadIdx.x & 31;
  const float* gr = g + row * D;
  const float* xr = x + row * D;
  double dot = 0;
  for (int64_t d = lane; d < D; d += 32) dot += (double)gr[d] * weight[d] * xr[d];
  dot = warp_sum(dot);
  const double r = rstd[row];
  const float c = (float)(r * r * r * dot / (double)D);
  const float rf = (float)r;
  float* o = dx + row * D;
  for (int64_t d = lane; d < D; d += 32) o[d] = rf * weight[d] * gr[d] - xr[d] * c;
}

// Row parts of dWeight's first pass: at most 64, each a fixed range of rows.
inline int64_t rmsnorm_parts(int64_t N) { return std::min<int64_t>(N, 64); }

// grid (ceil(D / 32), parts), block (32, 8): part p's rows [p·chunk, (p+1)·chunk) ∩ [0, N), column
// c = blockIdx.x·32 + threadIdx.x; the 8 row lanes take every 8th row, then add up in lane order.
// partial: f32 [parts, D] = Σ_rows g·x·r (in f64, rounded once).
static __global__ void __launch_bounds__(256) rmsnorm_dw_partial_kernel(const float* __restrict__ g, const float* __restrict__ x,
                                                                        const float* __restrict__ rstd, int64_t N, int64_t D, int64_t chunk,
                                                                        float* __restrict__ partial) {
  __shared__ double red[8][32];
  const int64_t c = (int64_t)blockIdx.x * 32 + threadIdx.x;
  const int64_t p = blockIdx.y;
  const int64_t r0 = p * chunk, r1 = r0 + chunk < N ? r0 + chunk : N;
  double s = 0;
  if (c < D) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) s += (double)g[r * D + c] * x[r * D + c] * rstd[r];
  }
  red[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < D) {
    double t = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) t += red[i][threadIdx.x];
    partial[p * D + c] = (float)t;
  }
}

// dWeight[c] += Σ_p partial[p, c], p in order (f64).
static __global__ void rmsnorm_dw_final_kernel(const float* __restrict__ partial, int64_t parts, int64_t D, float* __restrict__ dweight) {
  const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= D) return;
  double s = 0;
  for (int64_t p = 0; p < parts; p++) s += partial[p * D + c];
  dweight[c] = (float)((double)dweight[c] + s);
}

// ---------------------------------------------------------------- RoPE

// x: [N, nH, Dh], positions: [N] -> out (may be x). A thread per (n, pair i): the angle
// pos·theta^(−2i/Dh), its cos and sin in f64, then every head's pair i (each pair read before written).
static __global__ void rope_kernel(const float* x, const int32_t* __restrict__ pos, int64_t N, int64_t nH, int64_t Dh, double theta,
                                   int inverse, float* out) {
  const int64_t half = Dh / 2, total = N * half;
  for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t n = t / half, i = t - n * half;
    const double a = (double)pos[n] * pow(theta, (-2.0 * (double)i) / (double)Dh);
    double s, c;
    sincos(a, &s, &c);
    if (inverse) s = -s;
    for (int64_t h = 0; h < nH; h++) {
      const int64_t o = (n * nH + h) * Dh + 2 * i;
      const double x0 = x[o], x1 = x[o + 1];
      out[o] = (float)(x0 * c - x1 * s);
      out[o + 1] = (float)(x0 * s + x1 * c);
    }
  }
}

// ---------------------------------------------------------------- attention
//
// Layout: q [B, Tq, nH, Dh], k and v [B, S, nH, Dh]: position t of head h of batch b starts at
// ((b·T + t)·nH + h)·Dh. Every kernel is a CTA of 4 warps over one (b, h) and a tile of rows, with the
// other side streamed through shared memory 32 rows at a time, one row per lane for the dot products
// (rows padded to Dh + 1 floats: lane-indexed rows hit distinct banks). A lane owns head dimensions
// lane, lane + 32, … (DC = ceil(Dh / 32) of them) of its warp's W rows' accumulators. Dh ≤ 256.

constexpr int ATT_WARPS = 4;
constexpr int ATT_THREADS = ATT_WARPS * 32;

// Rows per warp for DC accumulator chunks: about 16 accumulators (32 in the dk/dv kernel) per lane.
template <int DC>
struct AttRows {
  static constexpr int W = DC <= 2 ? 8 : (DC == 4 ? 4 : 2);
};

template <int DC>
inline size_t attention_fwd_smem(int Dh) {
  const size_t W = AttRows<DC>::W, DS = (size_t)Dh + 1;
  return sizeof(float) * ((ATT_WARPS * W + 64) * DS + ATT_WARPS * W * 32);
}
template <int DC>
inline size_t attention_dq_smem(int Dh) {
  const size_t W = AttRows<DC>::W, DS = (size_t)Dh + 1;
  return sizeof(float) * ((2 * ATT_WARPS * W + 64) * DS + ATT_WARPS * W * 32);
}
template <int DC>
inline size_t attention_dkdv_smem(int Dh) {
  const size_t W = AttRows<DC>::W, DS = (size_t)Dh + 1;
  return sizeof(float) * ((2 * ATT_WARPS * W + 64) * DS + 64 + 2 * ATT_WARPS * W * 32);
}

// rows [r0, r0 + rows) of one head (row stride `stride` floats, rows ≥ limit read as 0) -> dst [rows][Dh + 1].
__device__ __forceinline__ void load_rows(float* dst, const float* __restrict__ src, int64_t stride, int r0, int rows, int limit, int Dh) {
  const int DS = Dh + 1;
  for (int idx = threadIdx.x; idx < rows * Dh; idx += ATT_THREADS) {
    const int r = idx / Dh, d = idx - r * Dh;
    const int t = r0 + r;
    dst[r * DS + d] = t < limit ? src[(int64_t)t * stride + d] : 0.0f;
  }
}

// Forward. grid (B·nH, ceil(Tq / (4·W))): block (b·nH + h, tile) holds 4·W queries of head h; query
// i (position qOffset + i) sees keys j ≤ qOffset + i, j < kvLen. Online softmax per query in f32
// (max m, sum l, accumulator rescaled when m grows); lse = m + log(l).
template <int DC>
__global__ void __launch_bounds__(ATT_THREADS) attention_fwd_kernel(const float* __restrict__ q, const float* __restrict__ k,
                                                                    const float* __restrict__ v, int Tq, int S, int nH, int Dh, int q_offset,
                                                                    int kv_len, float scale, float* __restrict__ out, float* __restrict__ lse) {
  constexpr int W = AttRows<DC>::W;
  constexpr int QB = ATT_WARPS * W;
  extern __shared__ float sm[];
  const int DS = Dh + 1;
  float* Qs = sm;                // [QB][DS]
  float* Ks = Qs + QB * DS;      // [32][DS]
  float* Vs = Ks + 32 * DS;      // [32][DS]
  float* Ps = Vs + 32 * DS;      // [4][W][32]
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int b = blockIdx.x / nH, h = blockIdx.x - b * nH;
  const int i0 = blockIdx.y * QB;
  const int64_t stride = (int64_t)nH * Dh;
  const float* qb = q + ((int64_t)b * Tq * nH + h) * Dh;
  const float* kb = k + ((int64_t)b * S * nH + h) * Dh;
  const float* vb = v + ((int64_t)b * S * nH + h) * Dh;
  load_rows(Qs, qb, stride, i0, QB, Tq, Dh);
  const int i_last = min(Tq, i0 + QB) - 1;
  const int k_end = min(kv_len, q_offset + i_last + 1);  // keys any query of the tile sees
  float m[W], l[W], acc[W][DC];
#pragma unroll
  for (int r = 0; r < W; r++) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < DC; c++) acc[r][c] = 0.0f;
  }
  float* Pw = Ps + w * W * 32;
  const float* Qw = Qs + w * W * DS;
  for (int j0 = 0; j0 < k_end; j0 += 32) {
    __syncthreads();  // the previous tile's K, V are no longer read
    load_rows(Ks, kb, stride, j0, 32, k_end, Dh);
    load_rows(Vs, vb, stride, j0, 32, k_end, Dh);
    __syncthreads();
    const int j = j0 + lane;
    float s[W];
#pragma unroll
    for (int r = 0; r < W; r++) s[r] = 0.0f;
    for (int d = 0; d < Dh; d++) {
      const float kd = Ks[lane * DS + d];
#pragma unroll
      for (int r = 0; r < W; r++) s[r] = fmaf(Qw[r * DS + d], kd, s[r]);
    }
#pragma unroll
    for (int r = 0; r < W; r++) {
      const int i = i0 + w * W + r;
      const bool vis = i < Tq && j < k_end && j <= q_offset + i;
      const float sv = vis ? s[r] * scale : -INFINITY;
      const float tmax = warp_max(sv);
      float p = 0.0f;
      if (tmax != -INFINITY) {  // uniform over the warp
        const float mnew = fmaxf(m[r], tmax);
        const float alpha = expf(m[r] - mnew);  // 0 on the first visible tile (m = −inf)
        p = expf(sv - mnew);
        l[r] = l[r] * alpha + warp_sum(p);
#pragma unroll
        for (int c = 0; c < DC; c++) acc[r][c] *= alpha;
        m[r] = mnew;
      }
      Pw[r * 32 + lane] = p;
    }
    __syncwarp();
    const int jn = min(32, k_end - j0);
    for (int jj = 0; jj < jn; jj++) {
      float vd[DC];
#pragma unroll
      for (int c = 0; c < DC; c++) vd[c] = lane + 32 * c < Dh ? Vs[jj * DS + lane + 32 * c] : 0.0f;
#pragma unroll
      for (int r = 0; r < W; r++) {
        const float pj = Pw[r * 32 + jj];
#pragma unroll
        for (int c = 0; c < DC; c++) acc[r][c] = fmaf(pj, vd[c], acc[r][c]);
      }
    }
    __syncwarp();  // Pw is rewritten by the next tile
  }
#pragma unroll
  for (int r = 0; r < W; r++) {
    const int i = i0 + w * W + r;
    if (i >= Tq) continue;
    const float inv = 1.0f / l[r];
    float* o = out + (((int64_t)b * Tq + i) * nH + h) * Dh;
#pragma unroll
    for (int c = 0; c < DC; c++) {
      const int d = lane + 32 * c;
      if (d < Dh) o[d] = acc[r][c] * inv;
    }
    if (lane == 0) lse[((int64_t)b * nH + h) * Tq + i] = m[r] + logf(l[r]);
  }
}

// D [B, nH, T] = Σ_d dO·O per (b, t, h) row: a warp per row (rows in memory order).
static __global__ void __launch_bounds__(ROW_WARPS * 32) attention_d_kernel(const float* __restrict__ dout, const float* __restrict__ o, int64_t B,
                                                                            int64_t T, int64_t nH, int64_t Dh, float* __restrict__ dvec) {
  const int64_t row = (int64_t)blockIdx.x * ROW_WARPS + (threadIdx.x >> 5);
  if (row >= B * T * nH) return;
  const int lane = threadIdx.x & 31;
  float s = 0.0f;
  for (int64_t d = lane; d < Dh; d += 32) s = fmaf(dout[row * Dh + d], o[row * Dh + d], s);
  s = warp_sum(s);
  const int64_t b = row / (T * nH), rem = row - b * T * nH, t = rem / nH, h = rem - t * nH;
  if (lane == 0) dvec[(b * nH + h) * T + t] = s;
}

// dq. grid (B·nH, ceil(T / (4·W))): the block's queries against key tiles 0 .. its last query:
// P = exp(scale·q·k − lse), dS = P·(dO·v − D), dq = scale·Σ_j dS·k_j.
template <int DC>
__global__ void __launch_bounds__(ATT_THREADS) attention_dq_kernel(const float* __restrict__ q, const float* __restrict__ k,
                                                                   const float* __restrict__ v, const float* __restrict__ dout,
                                                                   const float* __restrict__ lse, const float* __restrict__ dvec, int T, int nH,
                                                                   int Dh, float scale, float* __restrict__ dq) {
  constexpr int W = AttRows<DC>::W;
  constexpr int QB = ATT_WARPS * W;
  extern __shared__ float sm[];
  const int DS = Dh + 1;
  float* Qs = sm;                // [QB][DS]
  float* Gs = Qs + QB * DS;      // [QB][DS] dO rows
  float* Ks = Gs + QB * DS;      // [32][DS]
  float* Vs = Ks + 32 * DS;      // [32][DS]
  float* Ps = Vs + 32 * DS;      // [4][W][32] dS
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int b = blockIdx.x / nH, h = blockIdx.x - b * nH;
  const int i0 = blockIdx.y * QB;
  const int64_t stride = (int64_t)nH * Dh;
  const int64_t head = ((int64_t)b * T * nH + h) * Dh;
  load_rows(Qs, q + head, stride, i0, QB, T, Dh);
  load_rows(Gs, dout + head, stride, i0, QB, T, Dh);
  float lq[W], dq_[W], acc[W][DC];
#pragma unroll
  for (int r = 0; r < W; r++) {
    const int i = i0 + w * W + r;
    lq[r] = i < T ? lse[((int64_t)b * nH + h) * T + i] : 0.0f;
    dq_[r] = i < T ? dvec[((int64_t)b * nH + h) * T + i] : 0.0f;
#pragma unroll
    for (int c = 0; c < DC; c++) acc[r][c] = 0.0f;
  }
  const int k_end = min(T, i0 + QB);
  float* Pw = Ps + w * W * 32;
  const float* Qw = Qs + w * W * DS;
  const float* Gw = Gs + w * W * DS;
  for (int j0 = 0; j0 < k_end; j0 += 32) {
    __syncthreads();
    load_rows(Ks, k + head, stride, j0, 32, k_end, Dh);
    load_rows(Vs, v + head, stride, j0, 32, k_end, Dh);
    __syncthreads();
    const int j = j0 + lane;
    float s[W], dp[W];
#pragma unroll
    for (int r = 0; r < W; r++) s[r] = dp[r] = 0.0f;
    for (int d = 0; d < Dh; d++) {
      const float kd = Ks[lane * DS + d], vd = Vs[lane * DS + d];
#pragma unroll
      for (int r = 0; r < W; r++) {
        s[r] = fmaf(Qw[r * DS + d], kd, s[r]);
        dp[r] = fmaf(Gw[r * DS + d], vd, dp[r]);
      }
    }
#pragma unroll
    for (int r = 0; r < W; r++) {
      const int i = i0 + w * W + r;
      const bool vis = i < T && j <= i;
      const float P = vis ? expf(s[r] * scale - lq[r]) : 0.0f;
      Pw[r * 32 + lane] = P * (dp[r] - dq_[r]);
    }
    __syncwarp();
    const int jn = min(32, k_end - j0);
    for (int jj = 0; jj < jn; jj++) {
      float kd[DC];
#pragma unroll
      for (int c = 0; c < DC; c++) kd[c] = lane + 32 * c < Dh ? Ks[jj * DS + lane + 32 * c] : 0.0f;
#pragma unroll
      for (int r = 0; r < W; r++) {
        const float ds = Pw[r * 32 + jj];
#pragma unroll
        for (int c = 0; c < DC; c++) acc[r][c] = fmaf(ds, kd[c], acc[r][c]);
      }
    }
    __syncwarp();
  }
#pragma unroll
  for (int r = 0; r < W; r++) {
    const int i = i0 + w * W + r;
    if (i >= T) continue;
    float* o = dq + head + (int64_t)i * stride;
#pragma unroll
    for (int c = 0; c < DC; c++) {
      const int d = lane + 32 * c;
      if (d < Dh) o[d] = acc[r][c] * scale;
    }
  }
}

// dk, dv. grid (B·nH, ceil(T / (4·W))): the block's keys j0 .. j0 + 4·W − 1 against query tiles from
// j0 to T (earlier queries see none of them): dv_j = Σ_i P_ij·dO_i, dk_j = scale·Σ_i dS_ij·q_i.
template <int DC>
__global__ void __launch_bounds__(ATT_THREADS) attention_dkdv_kernel(const float* __restrict__ q, const float* __restrict__ k,
                                                                     const float* __restrict__ v, const float* __restrict__ dout,
                                                                     const float* __restrict__ lse, const float* __restrict__ dvec, int T, int nH,
                                                                     int Dh, float scale, float* __restrict__ dk, float* __restrict__ dv) {
  constexpr int W = AttRows<DC>::W;
  constexpr int KB = ATT_WARPS * W;
  extern __shared__ float sm[];
  const int DS = Dh + 1;
  float* Ks = sm;                // [KB][DS] the block's keys
  float* Vs = Ks + KB * DS;      // [KB][DS] and values
  float* Qs = Vs + KB * DS;      // [32][DS] a query tile
  float* Gs = Qs + 32 * DS;      // [32][DS] its dO rows
  float* Ls = Gs + 32 * DS;      // [32] its lse
  float* Dsm = Ls + 32;          // [32] its D
  float* Ps = Dsm + 32;          // [4][W][32] P
  float* Ss = Ps + KB * 32;      // [4][W][32] dS
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int b = blockIdx.x / nH, h = blockIdx.x - b * nH;
  const int j0 = blockIdx.y * KB;
  const int64_t stride = (int64_t)nH * Dh;
  const int64_t head = ((int64_t)b * T * nH + h) * Dh;
  const int64_t lrow = ((int64_t)b * nH + h) * T;
  load_rows(Ks, k + head, stride, j0, KB, T, Dh);
  load_rows(Vs, v + head, stride, j0, KB, T, Dh);
  float ak[W][DC], av[W][DC];
#pragma unroll
  for (int r = 0; r < W; r++) {
#pragma unroll
    for (int c = 0; c < DC; c++) ak[r][c] = av[r][c] = 0.0f;
  }
  float* Pw = Ps + w * W * 32;
  float* Sw = Ss + w * W * 32;
  const float* Kw = Ks + w * W * DS;
  const float* Vw = Vs + w * W * DS;
  for (int q0 = j0; q0 < T; q0 += 32) {
    __syncthreads();
    load_rows(Qs, q + head, stride, q0, 32, T, Dh);
    load_rows(Gs, dout + head, stride, q0, 32, T, Dh);
    if (threadIdx.x < 32) {
      const int i = q0 + threadIdx.x;
      Ls[threadIdx.x] = i < T ? lse[lrow + i] : 0.0f;
      Dsm[threadIdx.x] = i < T ? dvec[lrow + i] : 0.0f;
    }
    __syncthreads();
    const int i = q0 + lane;
    float s[W], dp[W];
#pragma unroll
    for (int r = 0; r < W; r++) s[r] = dp[r] = 0.0f;
    for (int d = 0; d < Dh; d++) {
      const float qd = Qs[lane * DS + d], gd = Gs[lane * DS + d];
#pragma unroll
      for (int r = 0; r < W; r++) {
        s[r] = fmaf(Kw[r * DS + d], qd, s[r]);
        dp[r] = fmaf(Vw[r * DS + d], gd, dp[r]);
      }
    }
    const float li = Ls[lane], di = Dsm[lane];
#pragma unroll
    for (int r = 0; r < W; r++) {
      const int j = j0 + w * W + r;
      const bool vis = i < T && j < T && i >= j;
      const float P = vis ? expf(s[r] * scale - li) : 0.0f;
      Pw[r * 32 + lane] = P;
      Sw[r * 32 + lane] = P * (dp[r] - di);
    }
    __syncwarp();
    const int in = min(32, T - q0);
    for (int ii = 0; ii < in; ii++) {
      float qd[DC], gd[DC];
#pragma unroll
      for (int c = 0; c < DC; c++) {
        const bool on = lane + 32 * c < Dh;
        qd[c] = on ? Qs[ii * DS + lane + 32 * c] : 0.0f;
        gd[c] = on ? Gs[ii * DS + lane + 32 * c] : 0.0f;
      }
#pragma unroll
      for (int r = 0; r < W; r++) {
        const float P = Pw[r * 32 + ii], dS = Sw[r * 32 + ii];
#pragma unroll
        for (int c = 0; c < DC; c++) {
          av[r][c] = fmaf(P, gd[c], av[r][c]);
          ak[r][c] = fmaf(dS, qd[c], ak[r][c]);
        }
      }
    }
    __syncwarp();
  }
#pragma unroll
  for (int r = 0; r < W; r++) {
    const int j = j0 + w * W + r;
    if (j >= T) continue;
    const int64_t o = head + (int64_t)j * stride;
#pragma unroll
    for (int c = 0; c < DC; c++) {
      const int d = lane + 32 * c;
      if (d < Dh) {
        dk[o + d] = ak[r][c] * scale;
        dv[o + d] = av[r][c];
      }
    }
  }
}

// ---------------------------------------------------------------- elementwise
// A thread per 4 elements through 16-byte accesses when every pointer is 16-byte aligned (`vec`),
// the last n % 4 elements by the first threads of the grid; scalar grid-stride otherwise. Each
// element is read before it is written, so an output may be one of the inputs.

struct SwigluOp {
  __device__ __forceinline__ static float sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }
};

static __global__ void swiglu_kernel(const float* gate, const float* up, int64_t n, bool vec, float* out) {
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, step = (int64_t)gridDim.x * blockDim.x;
  const int64_t n4 = vec ? n / 4 : 0;
  for (int64_t u = tid; u < n4; u += step) {
    const float4 g = reinterpret_cast<const float4*>(gate)[u], p = reinterpret_cast<const float4*>(up)[u];
    float4 o;
    o.x = g.x * SwigluOp::sigmoid(g.x) * p.x;
    o.y = g.y * SwigluOp::sigmoid(g.y) * p.y;
    o.z = g.z * SwigluOp::sigmoid(g.z) * p.z;
    o.w = g.w * SwigluOp::sigmoid(g.w) * p.w;
    reinterpret_cast<float4*>(out)[u] = o;
  }
  for (int64_t i = 4 * n4 + tid; i < n; i += step) out[i] = gate[i] * SwigluOp::sigmoid(gate[i]) * up[i];
}

__device__ __forceinline__ void swiglu_grad(float g, float u, float d, float& dg, float& du) {
  const float s = SwigluOp::sigmoid(g);
  dg = d * u * s * (1.0f + g * (1.0f - s));
  du = d * g * s;
}

static __global__ void swiglu_backward_kernel(const float* gate, const float* up, const float* dout, int64_t n, bool vec, float* dgate, float* dup) {
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, step = (int64_t)gridDim.x * blockDim.x;
  const int64_t n4 = vec ? n / 4 : 0;
  for (int64_t u = tid; u < n4; u += step) {
    const float4 g = reinterpret_cast<const float4*>(gate)[u], p = reinterpret_cast<const float4*>(up)[u];
    const float4 d = reinterpret_cast<const float4*>(dout)[u];
    float4 a, c;
    swiglu_grad(g.x, p.x, d.x, a.x, c.x);
    swiglu_grad(g.y, p.y, d.y, a.y, c.y);
    swiglu_grad(g.z, p.z, d.z, a.z, c.z);
    swiglu_grad(g.w, p.w, d.w, a.w, c.w);
    reinterpret_cast<float4*>(dgate)[u] = a;
    reinterpret_cast<float4*>(dup)[u] = c;
  }
  for (int64_t i = 4 * n4 + tid; i < n; i += step) {
    float a, c;
    swiglu_grad(gate[i], up[i], dout[i], a, c);
    dgate[i] = a;
    dup[i] = c;
  }
}

// out = a + alpha·b (out may be a or b).
static __global__ void add_scaled_kernel(const float* a, const float* b, int64_t n, float alpha, bool vec, float* out) {
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, step = (int64_t)gridDim.x * blockDim.x;
  const int64_t n4 = vec ? n / 4 : 0;
  for (int64_t u = tid; u < n4; u += step) {
    const float4 x = reinterpret_cast<const float4*>(a)[u], y = reinterpret_cast<const float4*>(b)[u];
    reinterpret_cast<float4*>(out)[u] = make_float4(fmaf(alpha, y.x, x.x), fmaf(alpha, y.y, x.y), fmaf(alpha, y.z, x.z), fmaf(alpha, y.w, x.w));
  }
  for (int64_t i = 4 * n4 + tid; i < n; i += step) out[i] = fmaf(alpha, b[i], a[i]);
}

// AdamW in f32 (as PyTorch's CUDA kernels): decay, the moments, then the bias-corrected step.
struct AdamwArgs {
  float beta1, beta2, one_minus_beta1, one_minus_beta2, decay;  // decay = 1 − lr·wd
  float step_size;                                              // lr / (1 − β1^t)
  float inv_bc2;                                                // 1 / (1 − β2^t)
  float eps;
};

__device__ __forceinline__ void adamw_one(float& p, float g, float& m, float& v, const AdamwArgs& a) {
  m = a.beta1 * m + a.one_minus_beta1 * g;
  v = a.beta2 * v + a.one_minus_beta2 * g * g;
  p = p * a.decay - a.step_size * m / (sqrtf(v * a.inv_bc2) + a.eps);
}

static __global__ void adamw_kernel(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ m, float* __restrict__ v,
                                    int64_t n, AdamwArgs a, bool vec) {
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, step = (int64_t)gridDim.x * blockDim.x;
  const int64_t n4 = vec ? n / 4 : 0;
  for (int64_t u = tid; u < n4; u += step) {
    float4 p = reinterpret_cast<float4*>(param)[u], mm = reinterpret_cast<float4*>(m)[u], vv = reinterpret_cast<float4*>(v)[u];
    const float4 g = reinterpret_cast<const float4*>(grad)[u];
    adamw_one(p.x, g.x, mm.x, vv.x, a);
    adamw_one(p.y, g.y, mm.y, vv.y, a);
    adamw_one(p.z, g.z, mm.z, vv.z, a);
    adamw_one(p.w, g.w, mm.w, vv.w, a);
    reinterpret_cast<float4*>(param)[u] = p;
    reinterpret_cast<float4*>(m)[u] = mm;
    reinterpret_cast<float4*>(v)[u] = vv;
  }
  for (int64_t i = 4 * n4 + tid; i < n; i += step) {
    float p = param[i], mm = m[i], vv = v[i];
    adamw_one(p, grad[i], mm, vv, a);
    param[i] = p;
    m[i] = mm;
    v[i] = vv;
  }
}

// ---------------------------------------------------------------- sumSquares

constexpr int SS_PARTS = 1024;  // fixed element ranges, so the order of the sums never depends on the device
constexpr int SS_THREADS = 256;

// Block tree sum of one double per thread (fixed order); thread 0 gets the total.
template <int THREADS>
__device__ __forceinline__ double block_tree_sum(double v, double* red) {
  red[threadIdx.x] = v;
  __syncthreads();
#pragma unroll
  for (int s = THREADS / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
    __syncthreads();
  }
  return red[0];
}

// x: [n] -> work[1 + p] = Σ x² over range p = [p·chunk, (p + 1)·chunk) ∩ [0, n), in f64. chunk is a
// multiple of 4, so with an aligned x every range starts on a 16-byte boundary.
static __global__ void __launch_bounds__(SS_THREADS) sum_squares_partial_kernel(const float* __restrict__ x, int64_t n, int64_t chunk, bool vec,
                                                                               double* __restrict__ work) {
  __shared__ double red[SS_THREADS];
  const int64_t r0 = (int64_t)blockIdx.x * chunk, r1 = r0 + chunk < n ? r0 + chunk : n;
  double s = 0;
  if (r0 < r1) {
    const int64_t len = r1 - r0;
    const int64_t n4 = vec ? len / 4 : 0;
    const float4* x4 = reinterpret_cast<const float4*>(x + r0);
    for (int64_t u = threadIdx.x; u < n4; u += SS_THREADS) {
      const float4 a = x4[u];
      s += (double)a.x * a.x + (double)a.y * a.y + (double)a.z * a.z + (double)a.w * a.w;
    }
    for (int64_t i = r0 + 4 * n4 + threadIdx.x; i < r1; i += SS_THREADS) s += (double)x[i] * x[i];
  }
  s = block_tree_sum<SS_THREADS>(s, red);
  if (threadIdx.x == 0) work[1 + blockIdx.x] = s;
}

// work[0] = Σ_p work[1 + p] (one block of SS_PARTS threads, tree order).
static __global__ void __launch_bounds__(SS_PARTS) sum_squares_final_kernel(double* __restrict__ work) {
  __shared__ double red[SS_PARTS];
  const double s = block_tree_sum<SS_PARTS>(work[1 + threadIdx.x], red);
  if (threadIdx.x == 0) work[0] = s;
}

// ---------------------------------------------------------------- sampling
//
// A block of 256 threads per row. temperature 0: the argmax (lowest id on ties). Otherwise, as the
// reference in f64: e_j = exp((z_j − max)/T) (p = e / Σe; the thresholds are scaled by Σe instead).
// The sorted order (p descending, lower id first on ties) is the order of the logits' sort keys
// (z descending) with ids ascending inside equal keys; p is a non-decreasing function of z, so both
// orders agree up to tokens whose p rounds equal for different z (p = 0 after underflow), which
// carry no mass. "The first token in that order whose running mass meets t" is found without a sort:
// a radix descent over the 32-bit key, 4 bits a level, each level a pass summing e per bucket among the
// tokens that share the key bits chosen so far (per-thread histograms in registers, merged in a fixed
// order), then the tied tokens of the final key by id. Search 1 finds the top-p cut (t = topP·Σe,
// running mass ≥ t; skipped at topP = 1), search 2 the pick (t = u·kept mass, running mass > t).

constexpr int SAMPLE_THREADS = 256;
constexpr int SAMPLE_WARPS = SAMPLE_THREADS / 32;

// Larger logit -> larger key; −0 and +0 share one key (they are the same logit).
__device__ __forceinline__ uint32_t sort_key(float z) {
  uint32_t u = __float_as_uint(z);
  if (z == 0.0f) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float key_value(uint32_t key) { return __uint_as_float((key & 0x80000000u) ? (key & 0x7FFFFFFFu) : ~key); }

struct SampleShared {
  double hsum[SAMPLE_WARPS][16];
  int hcnt[SAMPLE_WARPS][16];
  double dred[SAMPLE_WARPS];
  float fred[SAMPLE_WARPS];
  int ired[SAMPLE_WARPS];
  uint32_t ured[SAMPLE_WARPS];
  int result;
};

struct SampleFound {
  bool ok;
  int id;
  double mass;  // running mass (of e) up to and including the found token
};

__device__ __forceinline__ double sample_e(float z, double zmax, double temp) { return exp(((double)z - zmax) / temp); }

// The id of the r-th (1-based) token in id order whose key equals `key`.
__device__ int sample_nth_with_key(const float* __restrict__ z, int64_t V, uint32_t key, int r, SampleShared& sh) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  int base = 0;
  if (threadIdx.x == 0) sh.result = -1;
  for (int64_t j0 = 0; j0 < V; j0 += SAMPLE_THREADS) {
    const int64_t j = j0 + threadIdx.x;
    const bool hit = j < V && sort_key(z[j]) == key;
    const unsigned ballot = __ballot_sync(FULL, hit);
    if (lane == 0) sh.ired[w] = __popc(ballot);
    __syncthreads();
    int before = base, total = base;
#pragma unroll
    for (int i = 0; i < SAMPLE_WARPS; i++) {
      before += i < w ? sh.ired[i] : 0;
      total += sh.ired[i];
    }
    if (hit && before + __popc(ballot & ((1u << lane) - 1u)) + 1 == r) sh.result = (int)j;
    __syncthreads();
    base = total;
    if (base >= r) break;  // the same for every thread
  }
  return sh.result;
}

// The first token in sorted order whose running mass of e is ≥ t (strict: > t); ok = false when none.
__device__ SampleFound sample_search(const float* __restrict__ z, int64_t V, double zmax, double temp, double t, bool strict, SampleShared& sh) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  uint32_t prefix = 0;  // the key bits chosen so far (4·level of them)
  double A = 0;         // mass of the tokens ordered before the chosen region
  int ties = 0;
  for (int level = 0; level < 8; level++) {
    const int shift = 28 - 4 * level;
    double hs[16];
    int hc[16];
#pragma unroll
    for (int q = 0; q < 16; q++) {
      hs[q] = 0.0;
      hc[q] = 0;
    }
    for (int64_t j = threadIdx.x; j < V; j += SAMPLE_THREADS) {
      const float zj = z[j];
      const uint32_t kj = sort_key(zj);
      if (level > 0 && (kj >> (shift + 4)) != prefix) continue;
      const double e = sample_e(zj, zmax, temp);
      const uint32_t digit = (kj >> shift) & 15u;
#pragma unroll
      for (int q = 0; q < 16; q++) {
        const bool on = digit == (uint32_t)q;
        hs[q] += on ? e : 0.0;
        hc[q] += on ? 1 : 0;
      }
    }
#pragma unroll
    for (int q = 0; q < 16; q++) {
      hs[q] = warp_sum(hs[q]);
      hc[q] = warp_sum(hc[q]);
    }
    if (lane == 0) {
#pragma unroll
      for (int q = 0; q < 16; q++) {
        sh.hsum[w][q] = hs[q];
        sh.hcnt[w][q] = hc[q];
      }
    }
    __syncthreads();
    // every thread adds the warps' histograms in the same order and walks the buckets from the top:
    // the same choice everywhere
    int chosen = -1, last = -1;
    double A_last = A;
    for (int q = 15; q >= 0; q--) {
      double hq = 0;
      int cq = 0;
      for (int i = 0; i < SAMPLE_WARPS; i++) {
        hq += sh.hsum[i][q];
        cq += sh.hcnt[i][q];
      }
      if (cq == 0) continue;
      const double Aq = A + hq;
      if (strict ? Aq > t : Aq >= t) {
        chosen = q;
        ties = cq;
        break;
      }
      A_last = A;
      A = Aq;
      last = q;
      ties = cq;
    }
    __syncthreads();  // the histograms are rewritten by the next level
    if (chosen < 0) {
      if (level == 0) return {false, -1, 0.0};
      // rounding: the parent bucket's sum met t but its children's does not; take the region's last bucket
      chosen = last;
      A = A_last;
    }
    prefix = (prefix << 4) | (uint32_t)chosen;
  }
  // `ties` tokens share the key; each adds e, in id order
  const double e = sample_e(key_value(prefix), zmax, temp);
  int r = ties;
  if (e > 0) {
    const double need = (t - A) / e;
    double rr = strict ? floor(need) + 1.0 : ceil(need);
    if (!(rr >= 1.0)) rr = 1.0;
    if (rr > (double)ties) rr = (double)ties;
    r = (int)rr;
    auto meets = [&](int n) { return strict ? A + n * e > t : A + n * e >= t; };
    while (r > 1 && meets(r - 1)) r--;
    while (r < ties && !meets(r)) r++;
  }
  const int id = sample_nth_with_key(z, V, prefix, r, sh);
  return {true, id, A + r * e};
}

// logits: [B, V], uniforms: [B] -> ids: [B]. temperature 0 = argmax.
static __global__ void __launch_bounds__(SAMPLE_THREADS) sample_kernel(const float* __restrict__ logits, const float* __restrict__ uniforms, int64_t V,
                                                                      double temp, double top_p, int32_t* __restrict__ ids) {
  __shared__ SampleShared sh;
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int64_t row = blockIdx.x;
  const float* z = logits + row * V;
  // the max and the lowest id holding it
  float bv = -INFINITY;
  int bi = INT_MAX;
  for (int64_t j = threadIdx.x; j < V; j += SAMPLE_THREADS) {
    const float zj = z[j];
    if (zj > bv) {
      bv = zj;
      bi = (int)j;
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(FULL, bv, o);
    const int oi = __shfl_xor_sync(FULL, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) {
      bv = ov;
      bi = oi;
    }
  }
  if (lane == 0) {
    sh.fred[w] = bv;
    sh.ired[w] = bi;
  }
  __syncthreads();
  bv = sh.fred[0];
  bi = sh.ired[0];
  for (int i = 1; i < SAMPLE_WARPS; i++) {
    if (sh.fred[i] > bv || (sh.fred[i] == bv && sh.ired[i] < bi)) {
      bv = sh.fred[i];
      bi = sh.ired[i];
    }
  }
  __syncthreads();
  if (bi == INT_MAX) bi = 0;  // every logit −inf (or NaN): the reference's loop keeps id 0
  if (temp == 0.0) {
    if (threadIdx.x == 0) ids[row] = bi;
    return;
  }
  const double zmax = bv;
  double s = 0;
  for (int64_t j = threadIdx.x; j < V; j += SAMPLE_THREADS) s += sample_e(z[j], zmax, temp);
  s = warp_sum(s);
  if (lane == 0) sh.dred[w] = s;
  __syncthreads();
  double total = 0;
  for (int i = 0; i < SAMPLE_WARPS; i++) total += sh.dred[i];
  __syncthreads();

  SampleFound cut{false, -1, total};
  if (top_p < 1.0) cut = sample_search(z, V, zmax, temp, top_p * total, false, sh);
  const double kept = cut.ok ? cut.mass : total;
  const SampleFound pick = sample_search(z, V, zmax, temp, (double)uniforms[row] * kept, true, sh);
  int id;
  if (pick.ok) {
    id = pick.id;
  } else if (cut.ok) {
    id = cut.id;
  } else {
    // every token kept and rounding left the pick unmet: the last token in sorted order (the smallest
    // key, the highest id among its ties)
    uint32_t mk = 0xFFFFFFFFu;
    for (int64_t j = threadIdx.x; j < V; j += SAMPLE_THREADS) mk = min(mk, sort_key(z[j]));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mk = min(mk, __shfl_xor_sync(FULL, mk, o));
    if (lane == 0) sh.ured[w] = mk;
    __syncthreads();
    for (int i = 0; i < SAMPLE_WARPS; i++) mk = min(mk, sh.ured[i]);
    int mi = -1;
    for (int64_t j = threadIdx.x; j < V; j += SAMPLE_THREADS) {
      if (sort_key(z[j]) == mk) mi = (int)j;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mi = max(mi, __shfl_xor_sync(FULL, mi, o));
    __syncthreads();
    if (lane == 0) sh.ired[w] = mi;
    __syncthreads();
    for (int i = 0; i < SAMPLE_WARPS; i++) mi = max(mi, sh.ired[i]);
    id = mi;
  }
  if (threadIdx.x == 0) ids[row] = id;
}

}  // namespace nnk

// ---------------------------------------------------------------- launchers (nn.cu calls these)

cudaError_t nn_embedding_launch(const float* table, const int32_t* ids, int64_t V, int64_t D, int64_t N, float* out, int sm, cudaStream_t s);
cudaError_t nn_embedding_backward_launch(const float* dout, const int32_t* ids, int64_t V, int64_t D, int64_t N, float* dtable, cudaStream_t s);
cudaError_t nn_rmsnorm_launch(const float* x, const float* w, int64_t N, int64_t D, double eps, float* out, float* rstd, cudaStream_t s);
cudaError_t nn_rmsnorm_backward_launch(const float* g, const float* x, const float* w, const float* rstd, int64_t N, int64_t D, float* dx, float* dw,
                                       float* work, cudaStream_t s);
cudaError_t nn_rope_launch(const float* x, const int32_t* pos, int64_t N, int64_t nH, int64_t Dh, double theta, bool inverse, float* out, int sm,
                           cudaStream_t s);
cudaError_t nn_attention_launch(const float* q, const float* k, const float* v, int B, int Tq, int S, int nH, int Dh, int q_offset, int kv_len,
                                float scale, float* out, float* lse, cudaStream_t s);
cudaError_t nn_attention_backward_launch(const float* q, const float* k, const float* v, const float* o, const float* lse, const float* dout, int B,
                                         int T, int nH, int Dh, float scale, float* dq, float* dk, float* dv, float* work, cudaStream_t s);
cudaError_t nn_swiglu_launch(const float* gate, const float* up, int64_t n, float* out, int sm, cudaStream_t s);
cudaError_t nn_swiglu_backward_launch(const float* gate, const float* up, const float* dout, int64_t n, float* dgate, float* dup, int sm,
                                      cudaStream_t s);
cudaError_t nn_add_scaled_launch(const float* a, const float* b, int64_t n, float alpha, float* out, int sm, cudaStream_t s);
cudaError_t nn_sum_squares_launch(const float* x, int64_t n, double* work, cudaStream_t s);
cudaError_t nn_adamw_launch(float* param, const float* grad, float* m, float* v, int64_t n, const nnk::AdamwArgs& a, int sm, cudaStream_t s);
cudaError_t nn_sample_launch(const float* logits, const float* uniforms, int64_t B, int64_t V, double temperature, double top_p, int32_t* ids,
                             cudaStream_t s);

}  // namespace hp
