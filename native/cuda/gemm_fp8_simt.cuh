// The portable FP8 GEMM: plain f32 FMA on decoded codes, for every GPU (the compute_80 PTX, the
// sm_90 cubin) and for the shapes the Hopper kernel cannot take (K % 16 != 0: TMA needs row
// strides that are multiples of 16 bytes; K == 0). Correct and simple, not fast.
#pragma once

#include "common/fp8_codec.h"
#include "cuda/gemm_common.cuh"

namespace hp {

static constexpr int SIMT_BM = 64, SIMT_BN = 64, SIMT_KC = 32;  // tile rows, columns, K chunk

// a: e4m3 [M, K] (or [a_rows, K] read through a_pairs), a_scales: f32 [M, KB] (or [a_rows, KB]),
// b: e4m3 [G, N, K], b_scales (see GemmFp8Params) -> out [M, N]
// One 64x64 output tile per block of 256 threads; thread (ty, tx) of a 16x16 grid owns rows
// m0 + ty + 16i and columns n0 + tx + 16j (i, j < 4). Per 128-K block: decoded 64x32 panels of A and
// B go through shared memory (k-major, so a warp reads broadcast / consecutive words), the block's
// partial sums are formed in f32 (every product of two codes is exact) and promoted with the two
// scales. Grid: one block per tile, 1-D (tile = mt * n_tiles + nt).
__global__ void __launch_bounds__(256) gemm_fp8_simt_kernel(GemmFp8Params p) {
  __shared__ float As[SIMT_KC][SIMT_BM + 4];
  __shared__ float Bs[SIMT_KC][SIMT_BN + 4];
  __shared__ int s_tile_group;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t n_tiles = (p.N + SIMT_BN - 1) / SIMT_BN;
  const int64_t mt = blockIdx.x / n_tiles, nt = blockIdx.x % n_tiles;
  const TileRows t = gemm_tile_rows(p, mt, SIMT_BM);
  const int64_t n0 = nt * SIMT_BN;
  if (tid < 32) {
    const int tg = p.mode == GEMM_CONTIGUOUS ? contiguous_block_group(p.row_groups, p.M, t.m0 & ~(int64_t)127) : 0;
    if (tid == 0) s_tile_group = tg;
  }
  __syncthreads();
  const int tile_group = s_tile_group;
  const int64_t g = gemm_tile_compute_group(p, t, tile_group);
  const int64_t KB = (p.K + 127) / 128;

  float acc[4][4] = {};
  if (g >= 0) {
    // loader mapping: 64 rows x 32 k = 2048 codes, 8 consecutive k of one row per thread
    const int lr = tid / 4, lk = (tid % 4) * 8;
    // A rows as gemm_a_row gives them (-1: a zero row, also past the tile's rows): the one this
    // thread loads codes from, and the four whose scales it promotes with
    const int64_t ar = t.m0 + lr < t.m_end ? gemm_a_row(p, t.m0 + lr) : -1, bn = n0 + lr;
    const uint8_t* arow = p.a + max(ar, (int64_t)0) * p.K;
    int64_t sr[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int64_t r = t.m0 + ty + 16 * i;
      sr[i] = r < t.m_end ? gemm_a_row(p, r) : -1;
    }
    const uint8_t* brow = p.b + (g * p.N + bn) * p.K;
    for (int64_t kb = 0; kb < KB; kb++) {
      float part[4][4] = {};
      for (int kc = 0; kc < 128; kc += SIMT_KC) {
        const int64_t k0 = kb * 128 + kc;
        if (k0 >= p.K) break;
#pragma unroll
        for (int e = 0; e < 8; e++) {
          const int64_t k = k0 + lk + e;
          const bool kin = k < p.K;
          As[lk + e][lr] = (kin && ar >= 0) ? __uint_as_float(fp8_decode_bits<FP8_E4M3>(arow[k])) : 0.0f;
          Bs[lk + e][lr] = (kin && bn < p.N) ? __uint_as_float(fp8_decode_bits<FP8_E4M3>(brow[k])) : 0.0f;
        }
        __syncthreads();
#pragma unroll 8
        for (int k = 0; k < SIMT_KC; k++) {
          float av[4], bv[4];
#pragma unroll
          for (int i = 0; i < 4; i++) av[i] = As[k][ty + 16 * i];
#pragma unroll
          for (int j = 0; j < 4; j++) bv[j] = Bs[k][tx + 16 * j];
#pragma unroll
          for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) part[i][j] = fmaf(av[i], bv[j], part[i][j]);
        }
        __syncthreads();
      }
      float sa[4], sb[4];
#pragma unroll
      for (int i = 0; i < 4; i++) sa[i] = sr[i] >= 0 ? __ldg(p.a_scales + sr[i] * KB + kb) : 0.0f;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int64_t n = n0 + tx + 16 * j;
        sb[j] = n < p.N ? gemm_b_scale(p, g, n, kb, KB) : 0.0f;
      }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] += part[i][j] * (sa[i] * sb[j]);
    }
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int64_t r = t.m0 + ty + 16 * i;
    if (r >= t.m_end) continue;
    const int kind = gemm_row_kind(p, r, t, tile_group);
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int64_t n = n0 + tx + 16 * j;
      if (n >= p.N) continue;
      const float v = gemm_final(p, kind, acc[i][j], r * p.N + n);
      if (p.out_bf16) ((uint16_t*)p.out)[r * p.N + n] = f32_to_bf16_rne(v);
      else ((float*)p.out)[r * p.N + n] = v;
    }
  }
}

inline cudaError_t gemm_fp8_simt_launch(const GemmFp8Params& p, cudaStream_t stream) {
  const int64_t tiles = gemm_m_tiles(p, SIMT_BM) * ((p.N + SIMT_BN - 1) / SIMT_BN);
  if (tiles == 0) return cudaSuccess;
  gemm_fp8_simt_kernel<<<(unsigned)tiles, 256, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace hp
