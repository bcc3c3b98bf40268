// f32/bf16 matmul and transpose (32x32 tiles through shared memory). Pure CUDA, shared by gemm.cu
// and the harnesses. Two matmul kernels: the SIMT one here (exact f32 FMA chains: the trainer's
// master-weight products, and every shape) and the tensor-core one for bf16 inputs
// (matmul_mma.cuh); matmul_choose below says which a call takes.
#pragma once

#include <mutex>

#include "cuda/gemm_common.cuh"
#include "cuda/matmul_mma.cuh"

namespace hp {

__device__ __forceinline__ float mm_load(const float* p, int64_t i) { return __ldg(p + i); }
__device__ __forceinline__ float mm_load(const uint16_t* p, int64_t i) { return __uint_as_float((uint32_t)__ldg(p + i) << 16); }

static constexpr int MM_BM = 64, MM_BN = 64, MM_BK = 16;

// a: In [M, K] ([K, M] when trans_a), b: In [K, N] ([N, K] when trans_b), c: f32 [M, N] or null
// -> out: f32 or bf16 [M, N]. One 64x64 tile per block of 256 threads; thread (ty, tx) owns rows
// m0 + ty + 16i and columns n0 + tx + 16j. The 64x16 panels of op(A) and op(B) are staged k-major in
// shared memory; the global loads walk the contiguous dimension of each layout (coalesced). Every
// output is one f32 FMA chain over k = 0..K-1 in order. Grid: 1-D over tiles (mt * n_tiles + nt).
template <typename In>
__global__ void __launch_bounds__(256) matmul_kernel(const In* __restrict__ a, const In* __restrict__ b, int64_t M, int64_t N,
                                                     int64_t K, bool trans_a, bool trans_b, const float* __restrict__ c,
                                                     void* __restrict__ out, bool out_bf16) {
  __shared__ float As[MM_BK][MM_BM + 4];
  __shared__ float Bs[MM_BK][MM_BN + 4];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t n_tiles = (N + MM_BN - 1) / MM_BN;
  const int64_t m0 = (blockIdx.x / n_tiles) * MM_BM, n0 = (blockIdx.x % n_tiles) * MM_BN;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += MM_BK) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int e = tid + 256 * i;  // 1024 elements of each 64x16 panel
      int mm, kk;
      if (trans_a) { mm = e % MM_BM; kk = e / MM_BM; } else { kk = e % MM_BK; mm = e / MM_BK; }
      const int64_t m = m0 + mm, k = k0 + kk;
      As[kk][mm] = (m < M && k < K) ? mm_load(a, trans_a ? k * M + m : m * K + k) : 0.0f;
      int nn;
      if (trans_b) { kk = e % MM_BK; nn = e / MM_BK; } else { nn = e % MM_BN; kk = e / MM_BN; }
      const int64_t n = n0 + nn, k2 = k0 + kk;
      Bs[kk][nn] = (n < N && k2 < K) ? mm_load(b, trans_b ? n * K + k2 : k2 * N + n) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < MM_BK; k++) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; i++) av[i] = As[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; j++) bv[j] = Bs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int64_t m = m0 + ty + 16 * i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int64_t n = n0 + tx + 16 * j;
      if (n >= N) continue;
      const float v = c ? acc[i][j] + __ldg(c + m * N + n) : acc[i][j];
      if (out_bf16) ((uint16_t*)out)[m * N + n] = f32_to_bf16_rne(v);
      else ((float*)out)[m * N + n] = v;
    }
  }
}

enum MatmulPath : int { MM_PATH_AUTO = 0, MM_PATH_SIMT = 1, MM_PATH_MMA = 2 };

// Whether the current device has the tensor-core instructions the bf16 kernel uses (mma.sync bf16,
// ldmatrix, cp.async: compute capability 8.0 or newer). Checked once.
inline bool matmul_mma_available() {
  static std::once_flag once;
  static bool available = false;
  std::call_once(once, [] {
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) == cudaSuccess && cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess) {
      available = major >= 8;
    }
  });
  return available;
}

// The path a matmul takes. bf16 inputs go to the tensor cores (mma.sync m16n8k16, f32 accumulation;
// bf16 products are exact in f32, so only the summation order differs from the SIMT kernel) on
// sm_80+ when cp.async's 16-byte rows hold: the contiguous dimension of each operand (K for a [M, K]
// and b [N, K], M for a [K, M], N for b [K, N]) a multiple of 8 elements, and 16-byte aligned bases
// (the cuda backend's pool and views give 256). Every other bf16 call takes the SIMT kernel, and so
// does every f32 call: f32 inputs promise f32 accuracy, which TF32 tensor cores would not keep.
inline int matmul_choose(const void* a, const void* b, bool in_bf16, int64_t M, int64_t N, int64_t K, bool trans_a, bool trans_b) {
  if (!in_bf16 || !matmul_mma_available()) return MM_PATH_SIMT;
  const bool rows16 = (trans_a ? M : K) % 8 == 0 && (trans_b ? K : N) % 8 == 0;
  const bool aligned = (((uintptr_t)a | (uintptr_t)b) & 15) == 0;
  return rows16 && aligned ? MM_PATH_MMA : MM_PATH_SIMT;
}

// path: MM_PATH_AUTO (matmul_choose), or a forced one for the harness (MM_PATH_MMA only where
// matmul_choose would allow it); tile, splits: the tensor-core kernel's (0 = its own choice).
inline cudaError_t matmul_launch(const void* a, const void* b, bool in_bf16, int64_t M, int64_t N, int64_t K, bool trans_a,
                                 bool trans_b, const float* c, void* out, bool out_bf16, cudaStream_t stream, int path = MM_PATH_AUTO,
                                 int tile = 0, int splits = 0) {
  const int64_t tiles = ((M + MM_BM - 1) / MM_BM) * ((N + MM_BN - 1) / MM_BN);
  if (tiles == 0) return cudaSuccess;
  if (path == MM_PATH_AUTO) path = matmul_choose(a, b, in_bf16, M, N, K, trans_a, trans_b);
  if (path == MM_PATH_MMA) {
    return mma::matmul_mma_launch((const uint16_t*)a, (const uint16_t*)b, M, N, K, trans_a, trans_b, c, out, out_bf16, stream, tile,
                                  splits);
  }
  if (in_bf16) {
    matmul_kernel<uint16_t><<<(unsigned)tiles, 256, 0, stream>>>((const uint16_t*)a, (const uint16_t*)b, M, N, K, trans_a, trans_b, c,
                                                                   out, out_bf16);
  } else {
    matmul_kernel<float><<<(unsigned)tiles, 256, 0, stream>>>((const float*)a, (const float*)b, M, N, K, trans_a, trans_b, c, out,
                                                                out_bf16);
  }
  return cudaGetLastError();
}

// x: T [R, C] -> out: T [C, R], bit-exact. One 32x32 tile per block of 32x8 threads: read rows of
// the tile coalesced, write rows of the transposed tile coalesced; +1 column of padding keeps the
// column reads of shared memory off a single bank. Grid: 1-D over tiles.
template <typename T>
__global__ void __launch_bounds__(256) transpose_kernel(const T* __restrict__ x, int64_t R, int64_t C, T* __restrict__ out) {
  __shared__ T tile[32][33];
  const int64_t c_tiles = (C + 31) / 32;
  const int64_t r0 = (blockIdx.x / c_tiles) * 32, c0 = (blockIdx.x % c_tiles) * 32;
  const int tx = threadIdx.x % 32, ty = threadIdx.x / 32;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int64_t r = r0 + ty + 8 * i, c = c0 + tx;
    if (r < R && c < C) tile[ty + 8 * i][tx] = x[r * C + c];
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int64_t c = c0 + ty + 8 * i, r = r0 + tx;
    if (r < R && c < C) out[c * R + r] = tile[tx][ty + 8 * i];
  }
}

inline cudaError_t transpose_launch(const void* x, int64_t R, int64_t C, int elem_bytes, void* out, cudaStream_t stream) {
  const int64_t tiles = ((R + 31) / 32) * ((C + 31) / 32);
  if (tiles == 0) return cudaSuccess;
  if (elem_bytes == 1) transpose_kernel<uint8_t><<<(unsigned)tiles, 256, 0, stream>>>((const uint8_t*)x, R, C, (uint8_t*)out);
  else if (elem_bytes == 2) transpose_kernel<uint16_t><<<(unsigned)tiles, 256, 0, stream>>>((const uint16_t*)x, R, C, (uint16_t*)out);
  else transpose_kernel<uint32_t><<<(unsigned)tiles, 256, 0, stream>>>((const uint32_t*)x, R, C, (uint32_t*)out);
  return cudaGetLastError();
}

}  // namespace hp
