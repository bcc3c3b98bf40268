// What the FP8 GEMM kernels share: the call's parameters, how an output row maps to a group (or to
// an all-zero / all-NaN row), and the output stores. Pure CUDA (no Node-API): the addon's
// native/cuda/gemm.cu and the standalone harness native/cuda/dev/gemm_check.cu both include it.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

namespace hp {

enum GemmMode : int { GEMM_NONE = 0, GEMM_CONTIGUOUS = 1, GEMM_MASKED = 2 };

// One FP8 GEMM call (shapes already checked by the caller).
//   a: e4m3 [M, K] (M = G*Mmax rows for masked), a_scales: f32 [M, KB]
//   b: e4m3 [G, N, K], b_scales: f32 [G*ceil(N/128), KB] (b_block_rows 128) or [G*N, KB] (1)
//   row_groups: i32 groupIndex [M] (contiguous), maskedM [G] (masked), null (none)
//   c: f32 [M, N] or null (none only), out: f32 or bf16 [M, N]
// Gathered A rows (contiguous only; a_pairs null = no gather): a is [a_rows, K], a_scales
// [a_rows, KB], and output row m reads A row a_pairs[m] / a_k (a_pairs: i32 [M], pair ids
// row * a_k + slot, as moe align's sortedPairs); an id outside [0, a_rows * a_k) reads an all-zero
// row (codes 0, scales 0). The expert-ordered copy of A is never written.
// Kept at 128 bytes: a larger kernel parameter is read through its address (nvcc 13), which changed
// the Hopper kernel's code and made it spill; the fields are ordered to leave no hole.
struct GemmFp8Params {
  const uint8_t* a;
  const float* a_scales;
  const uint8_t* b;
  const float* b_scales;
  int64_t M, N, K, G, Mmax;
  int b_block_rows;
  int mode;
  const int32_t* row_groups;
  const float* c;
  void* out;
  bool out_bf16;
  int a_k = 1;
  const int32_t* a_pairs = nullptr;
  int64_t a_rows = 0;
};
static_assert(sizeof(GemmFp8Params) <= 128, "GemmFp8Params: keep the kernel parameter at 128 bytes or less");

enum RowKind : int { ROW_COMPUTE = 0, ROW_ZERO = 1, ROW_NAN = 2 };

// The row of a (and of a_scales) that output row r < M reads: r itself, or with a gather
// a_pairs[r] / a_k, or -1 for an all-zero A row (a pair id outside [0, a_rows * a_k): padding).
__device__ __forceinline__ int64_t gemm_a_row(const GemmFp8Params& p, int64_t r) {
  if (!p.a_pairs) return r;
  const int32_t id = __ldg(p.a_pairs + r);
  return (id >= 0 && (int64_t)id < p.a_rows * p.a_k) ? id / p.a_k : -1;
}

// The rows one M-tile of `bm` rows covers: [m0, m_end), and its group for masked mode. Tiles never
// cross a masked group (each group's Mmax rows are tiled on their own); for none/contiguous the
// tiles start at row 0, so a tile of 128 rows is exactly one 128-row-aligned contiguous block.
struct TileRows {
  int64_t m0, m_end, g;
};

__host__ __device__ inline int64_t gemm_m_tiles(const GemmFp8Params& p, int bm) {
  if (p.mode == GEMM_MASKED) return p.G * ((p.Mmax + bm - 1) / bm);
  return (p.M + bm - 1) / bm;
}

__device__ inline TileRows gemm_tile_rows(const GemmFp8Params& p, int64_t mt, int bm) {
  TileRows t;
  if (p.mode == GEMM_MASKED) {
    const int64_t per_group = (p.Mmax + bm - 1) / bm;
    t.g = mt / per_group;
    t.m0 = t.g * p.Mmax + (mt % per_group) * bm;
    t.m_end = min(t.m0 + bm, t.g * p.Mmax + p.Mmax);
  } else {
    t.g = 0;
    t.m0 = mt * bm;
    t.m_end = min(t.m0 + bm, p.M);
  }
  return t;
}

// Contiguous mode: the group of the first non-padding row of the 128-row block starting at blk0, or
// -1 when every row is padding. The value may be invalid (>= G or < -1); callers treat that as "no
// valid group". Called by all 32 lanes of one warp.
__device__ inline int contiguous_block_group(const int32_t* group_index, int64_t M, int64_t blk0) {
  const int lane = threadIdx.x & 31;
  for (int j = 0; j < 4; j++) {
    const int64_t r = blk0 + 32 * j + lane;
    const int v = r < M ? __ldg(group_index + r) : -1;
    const unsigned mask = __ballot_sync(0xFFFFFFFFu, v != -1);
    if (mask != 0) return __shfl_sync(0xFFFFFFFFu, v, __ffs(mask) - 1);
  }
  return -1;
}

// The group a tile computes with (tile_group: contiguous_block_group's answer for contiguous mode,
// ignored otherwise), or -1 when the tile has no row to compute.
__device__ inline int64_t gemm_tile_compute_group(const GemmFp8Params& p, const TileRows& t, int tile_group) {
  if (p.mode == GEMM_NONE) return 0;
  if (p.mode == GEMM_CONTIGUOUS) return (tile_group >= 0 && tile_group < p.G) ? tile_group : -1;
  const int mm = __ldg(p.row_groups + t.g);
  if (mm < 0 || mm > p.Mmax) return -1;
  return (t.m0 - t.g * p.Mmax) < mm ? t.g : -1;
}

// What output row r gets (tile_group as above).
__device__ inline int gemm_row_kind(const GemmFp8Params& p, int64_t r, const TileRows& t, int tile_group) {
  if (p.mode == GEMM_NONE) return ROW_COMPUTE;
  if (p.mode == GEMM_CONTIGUOUS) {
    const int gi = __ldg(p.row_groups + r);
    if (gi == -1) return ROW_ZERO;
    if (tile_group < 0 || tile_group >= p.G || gi != tile_group) return ROW_NAN;
    return ROW_COMPUTE;
  }
  const int mm = __ldg(p.row_groups + t.g);
  if (mm < 0 || mm > p.Mmax) return ROW_NAN;
  return (r - t.g * p.Mmax) < mm ? ROW_COMPUTE : ROW_ZERO;
}

// f32 -> bf16 bits, round to nearest even; NaN stays NaN (quiet bit set).
__device__ __forceinline__ uint16_t f32_to_bf16_rne(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// The final value of one output element: the accumulator (+ c), 0 or NaN by row kind.
__device__ __forceinline__ float gemm_final(const GemmFp8Params& p, int kind, float acc, int64_t idx) {
  if (kind == ROW_ZERO) return 0.0f;
  if (kind == ROW_NAN) return __uint_as_float(0x7FC00000u);
  return p.c ? acc + __ldg(p.c + idx) : acc;
}

// Stores out[r, n] and out[r, n+1] (n+1 may be past N). Paired 8-/4-byte stores when N is even
// (then r*N + n is even and the pair is aligned).
__device__ __forceinline__ void gemm_store_pair(const GemmFp8Params& p, int kind, int64_t r, int64_t n, float v0, float v1) {
  if (n >= p.N) return;
  const int64_t idx = r * p.N + n;
  const bool both = n + 1 < p.N;
  v0 = gemm_final(p, kind, v0, idx);
  if (both) v1 = gemm_final(p, kind, v1, idx + 1);
  if (p.out_bf16) {
    uint16_t* o = (uint16_t*)p.out + idx;
    if (both && (p.N & 1) == 0) {
      *reinterpret_cast<uint32_t*>(o) = (uint32_t)f32_to_bf16_rne(v0) | ((uint32_t)f32_to_bf16_rne(v1) << 16);
    } else {
      o[0] = f32_to_bf16_rne(v0);
      if (both) o[1] = f32_to_bf16_rne(v1);
    }
  } else {
    float* o = (float*)p.out + idx;
    if (both && (p.N & 1) == 0) {
      *reinterpret_cast<float2*>(o) = make_float2(v0, v1);
    } else {
      o[0] = v0;
      if (both) o[1] = v1;
    }
  }
}

// bScale(g, n, kb) of the contract (n < N).
__device__ __forceinline__ float gemm_b_scale(const GemmFp8Params& p, int64_t g, int64_t n, int64_t kb, int64_t KB) {
  if (p.b_block_rows == 1) return __ldg(p.b_scales + (g * p.N + n) * KB + kb);
  return __ldg(p.b_scales + (g * ((p.N + 127) / 128) + n / 128) * KB + kb);
}

}  // namespace hp
