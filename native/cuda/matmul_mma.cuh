// bf16 matmul on the tensor cores (sm_80+): D = op(A)·op(B) (+ C), f32 accumulation, f32 or bf16 out.
// mma.sync m16n8k16 (bf16 x bf16 -> f32), operands staged global -> shared by cp.async through a
// multi-stage ring, fragments read by ldmatrix (the transposing form for an operand whose rows run
// along M or N). Every layout of matmul (transA, transB) is one instantiation. Pure CUDA, shared by
// gemm.cu (through matmul.cuh) and the harness native/cuda/dev/matmul_check.cu.
//
// Needs 16-byte rows for cp.async: the contiguous dimension of each operand (K for a [M, K] and
// b [N, K]; M for a [K, M]; N for b [K, N]) a multiple of 8 elements, and 16-byte aligned bases. The
// caller (matmul_launch in matmul.cuh) checks that and takes the SIMT kernel otherwise.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include <mutex>

#include "cuda/gemm_common.cuh"
#include "cuda/mma_sm80.cuh"

namespace hp {
namespace mma {

// Block tile BM x BN x BK, WARPS_M x WARPS_N warps (each a WM x WN warp tile of MT x NT m16n8
// accumulator tiles), STAGES shared-memory stages, MIN_BLOCKS for __launch_bounds__.
template <int BM_, int BN_, int BK_, int WARPS_M_, int WARPS_N_, int STAGES_, int MIN_BLOCKS_>
struct Config {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_, STAGES = STAGES_;
  static constexpr int MIN_BLOCKS = MIN_BLOCKS_;
  static constexpr int THREADS = 32 * WARPS_M * WARPS_N;
  static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;
  static constexpr int MT = WM / 16, NT = WN / 8;
  static constexpr int A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2;  // one stage
  static constexpr int SMEM = (A_BYTES + B_BYTES) * STAGES;
  static constexpr int A_CHUNKS = BM * BK / 8 / THREADS, B_CHUNKS = BN * BK / 8 / THREADS;  // 16-byte copies per thread
  static_assert(BK == 32 || BK == 64, "k-major swizzle is written for 4 or 8 chunks per row");
  static_assert(BM % 64 == 0 && BN % 64 == 0, "m/n-major swizzle needs >= 8 chunks per row");
  static_assert(WM % 16 == 0 && WN % 16 == 0, "B fragments are loaded in pairs of n8 tiles");
  static_assert(A_CHUNKS * THREADS * 8 == BM * BK && B_CHUNKS * THREADS * 8 == BN * BK, "copies must divide evenly");
};

// Shared-memory tiles hold 16-byte chunks (8 bf16), XOR-swizzled so that the 8 rows one ldmatrix
// matrix reads (and the rows a warp's cp.async writes) fall into 8 different 16-byte bank groups.
// k-major tile [ROWS][BK] (a [M, K], b [N, K]): a row is BK/8 chunks (64 or 128 bytes).
template <int BK>
__device__ __forceinline__ int kmaj_off(int row, int chunk) {
  constexpr int CH = BK / 8;
  return row * BK + ((chunk ^ ((row / (8 / CH)) % CH)) * 8);
}
// m/n-major tile [BK][COLS] (a [K, M], b [K, N]): a row is COLS/8 >= 8 chunks.
template <int COLS>
__device__ __forceinline__ int mnmaj_off(int k, int chunk) {
  return k * COLS + ((chunk ^ (k & 7)) * 8);
}

// One operand's side of the copies: each thread's CHUNKS 16-byte pieces of a tile. K_MAJOR: the tile
// is [ROWS][BK] of a [*, K] matrix (rows r0.., valid below row_lim); otherwise [BK][ROWS] of a
// [K, *] matrix (columns r0.., valid below row_lim). Pointers are set once; per k-tile only k moves.
template <int ROWS, int BK, int THREADS, int CHUNKS, bool K_MAJOR>
struct TileLoader {
  const uint16_t* src[CHUNKS];
  int soff[CHUNKS];  // byte offset in the stage
  int kin[CHUNKS];   // k of this chunk within the tile (its first element)
  bool ok[CHUNKS];   // row (k-major) or column (m/n-major) inside the matrix
  int64_t kstep;     // elements between k and k + 1 in global memory

  __device__ __forceinline__ TileLoader(const uint16_t* g, int64_t ld, int64_t r0, int64_t row_lim, int tid) {
#pragma unroll
    for (int i = 0; i < CHUNKS; i++) {
      const int e = tid + i * THREADS;
      if (K_MAJOR) {
        constexpr int CH = BK / 8;
        const int row = e / CH, ch = e % CH;
        ok[i] = r0 + row < row_lim;
        src[i] = ok[i] ? g + (r0 + row) * ld + ch * 8 : g;
        soff[i] = 2 * kmaj_off<BK>(row, ch);
        kin[i] = ch * 8;
      } else {
        constexpr int CH = ROWS / 8;
        const int kr = e / CH, ch = e % CH;
        ok[i] = r0 + ch * 8 < row_lim;
        src[i] = ok[i] ? g + kr * ld + r0 + ch * 8 : g;
        soff[i] = 2 * mnmaj_off<ROWS>(kr, ch);
        kin[i] = kr;
      }
    }
    kstep = K_MAJOR ? 1 : ld;
  }

  // Copies the tile at k0 into the stage at shared address `stage`; k >= k_lim reads as zeros.
  __device__ __forceinline__ void load(uint32_t stage, int64_t k0, int64_t k_lim) const {
#pragma unroll
    for (int i = 0; i < CHUNKS; i++) {
      const bool p = ok[i] && k0 + kin[i] < k_lim;
      sm80::cp_async_16(stage + soff[i], p ? src[i] + k0 * kstep : src[i], p);
    }
  }
};

// a: bf16 [M, K] ([K, M] when TA), b: bf16 [N, K] when TB ([K, N] otherwise), c: f32 [M, N] or null
// (may be `out` itself: each element is read, then written, by one thread) -> out: f32 | bf16
// [M, N]; with ws (split over K, gridDim.z splits of k_split elements each): ws f32 [splits, M, N]
// gets each split's partial sum and c/out are untouched (matmul_splitk_reduce finishes).
// Grid x: the M x N tiles, grouped 8 M-tiles at a time so that blocks running together share
// their A rows and B columns in L2.
template <class C, bool TA, bool TB>
__global__ void __launch_bounds__(C::THREADS, C::MIN_BLOCKS)
    matmul_mma_kernel(const uint16_t* __restrict__ a, const uint16_t* __restrict__ b, int64_t M, int64_t N, int64_t K,
                      int64_t k_split, const float* c, void* out, bool out_bf16, float* __restrict__ ws) {
  extern __shared__ __align__(128) uint8_t smem[];
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int wm0 = (warp / C::WARPS_N) * C::WM, wn0 = (warp % C::WARPS_N) * C::WN;

  const int64_t m_tiles = (M + C::BM - 1) / C::BM, n_tiles = (N + C::BN - 1) / C::BN;
  const int64_t width = 8 * n_tiles, first = (blockIdx.x / width) * 8;
  const int64_t gsize = m_tiles - first < 8 ? m_tiles - first : 8;
  const int64_t m0 = (first + (blockIdx.x % width) % gsize) * C::BM, n0 = ((blockIdx.x % width) / gsize) * C::BN;
  const int64_t kb = blockIdx.z * k_split, ke = kb + k_split < K ? kb + k_split : K;
  const int k_tiles = (int)((ke - kb + C::BK - 1) / C::BK);

  const uint32_t s_a = sm80::smem_u32(smem), s_b = s_a + C::STAGES * C::A_BYTES;
  const TileLoader<C::BM, C::BK, C::THREADS, C::A_CHUNKS, !TA> la(a, TA ? M : K, m0, M, tid);
  const TileLoader<C::BN, C::BK, C::THREADS, C::B_CHUNKS, TB> lb(b, TB ? K : N, n0, N, tid);

  float acc[C::MT][C::NT][4];
#pragma unroll
  for (int i = 0; i < C::MT; i++)
#pragma unroll
    for (int j = 0; j < C::NT; j++)
#pragma unroll
      for (int r = 0; r < 4; r++) acc[i][j][r] = 0.0f;

  // prologue: STAGES-1 tiles in flight (one commit group each, empty past the end)
#pragma unroll
  for (int s = 0; s < C::STAGES - 1; s++) {
    if (s < k_tiles) {
      la.load(s_a + s * C::A_BYTES, kb + (int64_t)s * C::BK, ke);
      lb.load(s_b + s * C::B_BYTES, kb + (int64_t)s * C::BK, ke);
    }
    sm80::cp_async_commit();
  }

  for (int kt = 0; kt < k_tiles; kt++) {
    // tile kt has landed (this thread's copies); the barrier makes every thread's copies visible and
    // says every warp is done with the stage read last iteration, which the next copy overwrites
    sm80::cp_async_wait<C::STAGES - 2>();
    __syncthreads();
    const int nxt = kt + C::STAGES - 1;
    if (nxt < k_tiles) {
      la.load(s_a + (nxt % C::STAGES) * C::A_BYTES, kb + (int64_t)nxt * C::BK, ke);
      lb.load(s_b + (nxt % C::STAGES) * C::B_BYTES, kb + (int64_t)nxt * C::BK, ke);
    }
    sm80::cp_async_commit();

    const uint32_t sa = s_a + (kt % C::STAGES) * C::A_BYTES, sb = s_b + (kt % C::STAGES) * C::B_BYTES;
#pragma unroll
    for (int kk = 0; kk < C::BK / 16; kk++) {
      uint32_t af[C::MT][4], bf[C::NT][2];
#pragma unroll
      for (int mt = 0; mt < C::MT; mt++) {
        if (!TA) {  // [BM][BK]: lanes 0-15 rows at k, lanes 16-31 the same rows at k + 8
          const int row = wm0 + mt * 16 + lane % 16, ch = kk * 2 + lane / 16;
          sm80::ldmatrix_x4(af[mt], sa + 2 * kmaj_off<C::BK>(row, ch));
        } else {  // [BK][BM]: matrices (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15), (m 8-15, k 8-15)
          const int k = kk * 16 + lane % 8 + (lane / 16) * 8, ch = (wm0 + mt * 16) / 8 + (lane / 8) % 2;
          sm80::ldmatrix_x4_trans(af[mt], sa + 2 * mnmaj_off<C::BM>(k, ch));
        }
      }
#pragma unroll
      for (int np = 0; np < C::NT / 2; np++) {
        uint32_t r[4];
        if (TB) {  // [BN][BK]: matrices (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
          const int n = wn0 + np * 16 + lane % 8 + (lane / 16) * 8, ch = kk * 2 + (lane / 8) % 2;
          sm80::ldmatrix_x4(r, sb + 2 * kmaj_off<C::BK>(n, ch));
        } else {  // [BK][BN]: same matrices, stored k-major
          const int k = kk * 16 + lane % 8 + ((lane / 8) % 2) * 8, ch = (wn0 + np * 16) / 8 + lane / 16;
          sm80::ldmatrix_x4_trans(r, sb + 2 * mnmaj_off<C::BN>(k, ch));
        }
        bf[2 * np][0] = r[0];
        bf[2 * np][1] = r[1];
        bf[2 * np + 1][0] = r[2];
        bf[2 * np + 1][1] = r[3];
      }
#pragma unroll
      for (int mt = 0; mt < C::MT; mt++)
#pragma unroll
        for (int nt = 0; nt < C::NT; nt++) sm80::mma_bf16_16816(acc[mt][nt], af[mt], bf[nt][0], bf[nt][1]);
    }
  }
  sm80::cp_async_wait<0>();

  // epilogue: thread (g, t) of the warp holds rows g and g + 8, columns 2t, 2t + 1 of each m16n8 tile
  const int g = lane / 4, t = lane % 4;
  const bool pairs = (N & 1) == 0;  // (row * N + col) even: 8-byte f32 / 4-byte bf16 pair stores
#pragma unroll
  for (int mt = 0; mt < C::MT; mt++) {
#pragma unroll
    for (int nt = 0; nt < C::NT; nt++) {
      const int64_t col = n0 + wn0 + nt * 8 + 2 * t;
      if (col >= N) continue;
      const bool both = col + 1 < N;
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int64_t row = m0 + wm0 + mt * 16 + g + 8 * h;
        if (row >= M) continue;
        float v0 = acc[mt][nt][2 * h], v1 = acc[mt][nt][2 * h + 1];
        const int64_t idx = row * N + col;
        if (ws) {
          float* o = ws + blockIdx.z * M * N + idx;
          if (both && pairs) *reinterpret_cast<float2*>(o) = make_float2(v0, v1);
          else {
            o[0] = v0;
            if (both) o[1] = v1;
          }
          continue;
        }
        if (c) {
          v0 += c[idx];
          if (both) v1 += c[idx + 1];
        }
        if (out_bf16) {
          uint16_t* o = (uint16_t*)out + idx;
          if (both && pairs) *reinterpret_cast<uint32_t*>(o) = (uint32_t)f32_to_bf16_rne(v0) | ((uint32_t)f32_to_bf16_rne(v1) << 16);
          else {
            o[0] = f32_to_bf16_rne(v0);
            if (both) o[1] = f32_to_bf16_rne(v1);
          }
        } else {
          float* o = (float*)out + idx;
          if (both && pairs) *reinterpret_cast<float2*>(o) = make_float2(v0, v1);
          else {
            o[0] = v0;
            if (both) o[1] = v1;
          }
        }
      }
    }
  }
}

// ws: f32 [splits, M·N] -> out[i] = ((ws[0][i] + ws[1][i]) + ...) + c[i], summed in split order
// (deterministic; no atomics). c may be out.
__global__ void __launch_bounds__(256) matmul_splitk_reduce(const float* __restrict__ ws, int splits, int64_t MN, const float* c,
                                                            void* out, bool out_bf16) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < MN; i += (int64_t)gridDim.x * blockDim.x) {
    float v = ws[i];
    for (int s = 1; s < splits; s++) v += ws[s * MN + i];
    if (c) v += c[i];
    if (out_bf16) ((uint16_t*)out)[i] = f32_to_bf16_rne(v);
    else ((float*)out)[i] = v;
  }
}

// The tile shapes the launcher can take (the harness times each).
typedef Config<128, 128, 32, 2, 4, 4, 2> Cfg128x128;  // 64 KB smem, 2 blocks per SM
typedef Config<128, 256, 32, 2, 4, 3, 1> Cfg128x256;  // warp tile 64x64, 72 KB
typedef Config<256, 128, 32, 4, 2, 3, 1> Cfg256x128;  // warp tile 64x64, 72 KB
typedef Config<128, 128, 64, 2, 4, 3, 2> Cfg128x128k64;  // 96 KB, 2 blocks per SM

enum MatmulTile : int { MM_TILE_AUTO = 0, MM_TILE_128x128 = 1, MM_TILE_128x256 = 2, MM_TILE_256x128 = 3, MM_TILE_128x128_K64 = 4 };

// Launches one layout of one config; splits > 1 needs ws of splits·M·N floats (k_split: a multiple of BK).
template <class C, bool TA, bool TB>
inline cudaError_t launch_t(const uint16_t* a, const uint16_t* b, int64_t M, int64_t N, int64_t K, int splits, int64_t k_split,
                            const float* c, void* out, bool out_bf16, float* ws, cudaStream_t stream) {
  auto kernel = matmul_mma_kernel<C, TA, TB>;
  static std::once_flag once;
  static cudaError_t attr_err = cudaSuccess;
  std::call_once(once, [&] { attr_err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM); });
  if (attr_err != cudaSuccess) return attr_err;
  const int64_t tiles = ((M + C::BM - 1) / C::BM) * ((N + C::BN - 1) / C::BN);
  kernel<<<dim3((unsigned)tiles, 1, (unsigned)splits), C::THREADS, C::SMEM, stream>>>(a, b, M, N, K, k_split, c, out, out_bf16,
                                                                                     splits > 1 ? ws : nullptr);
  return cudaGetLastError();
}

template <class C>
inline cudaError_t launch_layout(const uint16_t* a, const uint16_t* b, int64_t M, int64_t N, int64_t K, bool ta, bool tb, int splits,
                                 int64_t k_split, const float* c, void* out, bool out_bf16, float* ws, cudaStream_t stream) {
  if (ta) {
    return tb ? launch_t<C, true, true>(a, b, M, N, K, splits, k_split, c, out, out_bf16, ws, stream)
              : launch_t<C, true, false>(a, b, M, N, K, splits, k_split, c, out, out_bf16, ws, stream);
  }
  return tb ? launch_t<C, false, true>(a, b, M, N, K, splits, k_split, c, out, out_bf16, ws, stream)
            : launch_t<C, false, false>(a, b, M, N, K, splits, k_split, c, out, out_bf16, ws, stream);
}

template <class C>
inline int64_t tiles_of(int64_t M, int64_t N) {
  return ((M + C::BM - 1) / C::BM) * ((N + C::BN - 1) / C::BN);
}

// The split over K: only when the tiles leave most multiprocessors idle (fewer tiles than SMs), into
// enough splits to give each SM about two blocks, each split at least 8 k-tiles deep, at most 32.
inline int choose_splits(int64_t tiles, int64_t K, int bk, int sms) {
  if (tiles >= sms) return 1;
  int64_t s = (2 * (int64_t)sms + tiles - 1) / tiles;
  const int64_t by_k = K / (8 * bk);
  if (s > by_k) s = by_k;
  if (s > 32) s = 32;
  return s < 2 ? 1 : (int)s;
}

// The split-over-K workspace (f32 partial sums), kept between calls and grown on demand: a fresh
// cudaMallocAsync per call cost ~0.1 ms (the pool hands its memory back at every synchronize), more
// than the whole product at the shapes that split. Growing frees the old buffer and allocates the
// new one on the launch stream (stream-ordered). Calls that share it must run in order on one
// stream, as the addon's do (it has one stream; the harness uses the default stream). At most ~30
// MB: a split happens only below one tile per SM, with about 2 blocks per SM in all.
inline float* splitk_workspace(size_t bytes, cudaStream_t stream) {
  static std::mutex mu;
  static float* ws = nullptr;
  static size_t ws_bytes = 0;
  std::lock_guard<std::mutex> lock(mu);
  if (bytes <= ws_bytes) return ws;
  if (ws) cudaFreeAsync(ws, stream);
  ws = nullptr;
  ws_bytes = 0;
  if (cudaMallocAsync((void**)&ws, bytes, stream) != cudaSuccess) {
    cudaGetLastError();  // clear it: the caller goes on without a split
    ws = nullptr;
    return nullptr;
  }
  ws_bytes = bytes;
  return ws;
}

// D = op(A)·op(B) (+ C) for bf16 a, b on the tensor cores (alignment already checked by the caller).
// tile: MM_TILE_AUTO or a forced config (harness); splits: 0 = choose, else forced.
inline cudaError_t matmul_mma_launch(const uint16_t* a, const uint16_t* b, int64_t M, int64_t N, int64_t K, bool ta, bool tb,
                                     const float* c, void* out, bool out_bf16, cudaStream_t stream, int tile = MM_TILE_AUTO,
                                     int splits = 0) {
  static std::once_flag once;
  static int sms = 132;
  std::call_once(once, [] {
    int dev = 0;
    if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  });
  if (tile == MM_TILE_AUTO) tile = MM_TILE_128x128;  // chosen from the harness's timings (NOTES.md)
  const int bk = tile == MM_TILE_128x128_K64 ? 64 : 32;
  int64_t tiles = 0;
  switch (tile) {
    case MM_TILE_128x256: tiles = tiles_of<Cfg128x256>(M, N); break;
    case MM_TILE_256x128: tiles = tiles_of<Cfg256x128>(M, N); break;
    case MM_TILE_128x128_K64: tiles = tiles_of<Cfg128x128k64>(M, N); break;
    default: tiles = tiles_of<Cfg128x128>(M, N); break;
  }
  if (splits <= 0) splits = choose_splits(tiles, K, bk, sms);
  int64_t k_split = K;
  float* ws = nullptr;
  if (splits > 1) {
    k_split = ((K + splits - 1) / splits + bk - 1) / bk * bk;  // whole k-tiles per split
    splits = (int)((K + k_split - 1) / k_split);             // no empty split
  }
  if (splits > 1) {
    ws = splitk_workspace((size_t)splits * M * N * sizeof(float), stream);
    if (!ws) {  // no workspace: one split (slower; the same sum up to its order)
      splits = 1;
      k_split = K;
    }
  }
  cudaError_t e;
  switch (tile) {
    case MM_TILE_128x256: e = launch_layout<Cfg128x256>(a, b, M, N, K, ta, tb, splits, k_split, c, out, out_bf16, ws, stream); break;
    case MM_TILE_256x128: e = launch_layout<Cfg256x128>(a, b, M, N, K, ta, tb, splits, k_split, c, out, out_bf16, ws, stream); break;
    case MM_TILE_128x128_K64:
      e = launch_layout<Cfg128x128k64>(a, b, M, N, K, ta, tb, splits, k_split, c, out, out_bf16, ws, stream);
      break;
    default: e = launch_layout<Cfg128x128>(a, b, M, N, K, ta, tb, splits, k_split, c, out, out_bf16, ws, stream); break;
  }
  if (ws && e == cudaSuccess) {
    const int64_t mn = M * N;
    int64_t blocks = (mn + 255) / 256;
    if (blocks > 4 * (int64_t)sms) blocks = 4 * (int64_t)sms;
    matmul_splitk_reduce<<<(unsigned)blocks, 256, 0, stream>>>(ws, splits, mn, c, out, out_bf16);
    e = cudaGetLastError();
  }
  return e;
}

}  // namespace mma
}  // namespace hp
