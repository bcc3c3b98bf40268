// CUDA FP8 kernels: encode, decode, scaled quantize (1x128 and 128x128 blocks), dequantize. They
// agree bit for bit with src/reference/fp8.ts through the codec in common/fp8_codec.h: every
// division and product is an explicit IEEE round-to-nearest one (__fdiv_rn, __fmul_rn).
//
// All of them are memory-bound. Device pointers are the bases of cudaMalloc allocations (the entry
// points insist), hence 256-byte aligned: element-wise kernels always use wide accesses; the blocked
// kernels use them when every row starts aligned (cols % 4 == 0; cols % 8 == 0 for bf16 in the 1x128
// quantize) and fall back to scalar accesses otherwise. On sm_89 and newer the f32 <-> fp8
// conversions use the hardware's cvt instructions, which give the same bits as the integer codec
// (checked against the reference on an H100, and the integer path with CUDA_FORCE_PTX_JIT=1).
// Indices are 64-bit wherever a product can pass 2^31.
#include <algorithm>

#include "common/entry_points.h"
#include "common/fp8_codec.h"
#include "cuda/cuda_common.h"

namespace hp {

static constexpr int COLS_PER_BLOCK = 128;  // every scaling block is 128 columns wide

// ---------------------------------------------------------------- device helpers

__device__ __forceinline__ uint32_t load_bits(const float* p) { return __float_as_uint(__ldg(p)); }
__device__ __forceinline__ uint32_t load_bits(const uint16_t* p) { return (uint32_t)__ldg(p) << 16; }

// 4 consecutive elements as f32 bit patterns (p is 16-byte aligned for f32, 8-byte for bf16)
__device__ __forceinline__ void load4_bits(const float* p, uint32_t v[4]) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
  v[0] = u.x;
  v[1] = u.y;
  v[2] = u.z;
  v[3] = u.w;
}
__device__ __forceinline__ void load4_bits(const uint16_t* p, uint32_t v[4]) {
  const uint2 u = __ldg(reinterpret_cast<const uint2*>(p));
  v[0] = u.x << 16;
  v[1] = u.x & 0xFFFF0000u;
  v[2] = u.y << 16;
  v[3] = u.y & 0xFFFF0000u;
}

// 8 consecutive bf16 elements (16-byte aligned) as f32 bit patterns
__device__ __forceinline__ void load8_bits(const uint16_t* p, uint32_t v[8]) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    v[2 * i] = w[i] << 16;
    v[2 * i + 1] = w[i] & 0xFFFF0000u;
  }
}
__device__ __forceinline__ void load8_bits(const float*, uint32_t*) {}  // never called (E == 4 for f32)

__device__ __forceinline__ uint32_t warp_max(uint32_t v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = max(v, __shfl_xor_sync(0xFFFFFFFFu, v, offset));
  return v;
}

// Two f32 bit patterns -> two codes (lo in the low byte) with the hardware conversion of sm_89 and
// newer: cvt.rn.satfinite rounds to nearest even, saturates finite values beyond the range to +-max
// and turns NaN into 0x7F, which is fp8_encode_bits exactly, except that satfinite also turns e5m2
// infinities into +-max where the reference keeps them (fixed up in fp8_encode4).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
template <int FMT>
__device__ __forceinline__ uint32_t fp8_cvt2(uint32_t lo, uint32_t hi) {
  unsigned short r;
  if (FMT == FP8_E4M3) {
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(__uint_as_float(hi)), "f"(__uint_as_float(lo)));
  } else {
    asm("cvt.rn.satfinite.e5m2x2.f32 %0, %1, %2;" : "=h"(r) : "f"(__uint_as_float(hi)), "f"(__uint_as_float(lo)));
  }
  return r;
}
#endif

// 4 f32 bit patterns -> their 4 codes packed little-endian (element 0 in the low byte). Hardware
// conversion on sm_89+, the integer codec elsewhere (the compute_80 PTX).
template <int FMT>
__device__ __forceinline__ uint32_t fp8_encode4(const uint32_t v[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  uint32_t packed = fp8_cvt2<FMT>(v[0], v[1]) | (fp8_cvt2<FMT>(v[2], v[3]) << 16);
  if (FMT == FP8_E5M2) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
      if ((v[i] & 0x7FFFFFFFu) == 0x7F800000u) {
        const uint32_t code = ((v[i] >> 24) & 0x80u) | (uint32_t)Fp8Traits<FP8_E5M2>::kInfCode;
        packed = (packed & ~(0xFFu << (8 * i))) | (code << (8 * i));
      }
    }
  }
  return packed;
#else
  return fp8_encode_bits<FMT>(v[0]) | (fp8_encode_bits<FMT>(v[1]) << 8) | (fp8_encode_bits<FMT>(v[2]) << 16) |
         (fp8_encode_bits<FMT>(v[3]) << 24);
#endif
}

// One f32 bit pattern -> its code (hardware conversion on sm_89+, like fp8_encode4).
template <int FMT>
__device__ __forceinline__ uint32_t fp8_encode1(uint32_t v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  if (FMT == FP8_E5M2 && (v & 0x7FFFFFFFu) == 0x7F800000u) return ((v >> 24) & 0x80u) | (uint32_t)Fp8Traits<FP8_E5M2>::kInfCode;
  return fp8_cvt2<FMT>(v, 0) & 0xFFu;
#else
  return fp8_encode_bits<FMT>(v);
#endif
}

// 4 codes packed little-endian -> their 4 f32 bit patterns (exact; NaN -> 0x7FC00000). On sm_89+ the
// hardware converts pairs of codes to f16 (every e4m3 and e5m2 value is an f16) and f16 to f32;
// NaNs come out with other payloads and are made canonical. The integer codec elsewhere.
template <int FMT>
__device__ __forceinline__ void fp8_decode4(uint32_t packed, uint32_t out[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
#pragma unroll
  for (int pair = 0; pair < 2; pair++) {
    const unsigned short codes = (unsigned short)(packed >> (16 * pair));
    uint32_t h2;
    if (FMT == FP8_E4M3) {
      asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h2) : "h"(codes));
    } else {
      asm("cvt.rn.f16x2.e5m2x2 %0, %1;" : "=r"(h2) : "h"(codes));
    }
#pragma unroll
    for (int half = 0; half < 2; half++) {
      float f;
      asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"((unsigned short)(h2 >> (16 * half))));
      out[2 * pair + half] = f != f ? F32_NAN_BITS : __float_as_uint(f);
    }
  }
#else
#pragma unroll
  for (int i = 0; i < 4; i++) out[i] = fp8_decode_bits<FMT>((packed >> (8 * i)) & 0xFFu);
#endif
}

// The f32 bits of x / scale for one element of a block (IEEE division). For ue8m0 scales (powers of
// two) `s` is 1 / scale and x * s is the same correctly rounded value.
__device__ __forceinline__ uint32_t fp8_scaled_bits(uint32_t bits, float s, bool ue8m0) {
  const float v = __uint_as_float(bits);
  return __float_as_uint(ue8m0 ? __fmul_rn(v, s) : __fdiv_rn(v, s));
}

// 4 elements of a block -> 4 codes packed; a block with NaN or inf (amax >= 0x7F800000) is all 0x7F.
template <int FMT>
__device__ __forceinline__ uint32_t fp8_encode4_scaled(const uint32_t v[4], uint32_t amax, float s, bool ue8m0) {
  if (amax >= 0x7F800000u) return 0x7F7F7F7Fu;
  uint32_t y[4];
#pragma unroll
  for (int i = 0; i < 4; i++) y[i] = fp8_scaled_bits(v[i], s, ue8m0);
  return fp8_encode4<FMT>(y);
}

// One element (tails and unaligned shapes).
template <int FMT>
__device__ __forceinline__ uint32_t fp8_encode1_scaled(uint32_t bits, uint32_t amax, float s, bool ue8m0) {
  if (amax >= 0x7F800000u) return FP8_NAN_CODE;
  return fp8_encode1<FMT>(fp8_scaled_bits(bits, s, ue8m0));
}

// decoded value (f32 bits) * scale as an f32 product, NaN written as the canonical 0x7FC00000
__device__ __forceinline__ float fp8_scale_value(uint32_t decoded, float scale) {
  const float y = __fmul_rn(__uint_as_float(decoded), scale);
  return y != y ? __uint_as_float(F32_NAN_BITS) : y;
}

// ---------------------------------------------------------------- kernels

// x: f32 [n] -> out: u8 [n]. Each thread encodes 4 elements a step (16-byte load, 4-byte store);
// the n % 4 left at the end go to the first threads of the grid.
template <int FMT>
__global__ void fp8_encode_kernel(const float* __restrict__ x, uint8_t* __restrict__ out, int64_t n) {
  const int64_t n4 = n / 4;
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = tid; i < n4; i += stride) {
    uint32_t v[4];
    load4_bits(x + 4 * i, v);
    reinterpret_cast<uint32_t*>(out)[i] = fp8_encode4<FMT>(v);
  }
  if (tid < n - 4 * n4) out[4 * n4 + tid] = (uint8_t)fp8_encode1<FMT>(load_bits(x + 4 * n4 + tid));
}

// q: u8 [n] -> out: f32 [n]. Each thread decodes 4 codes a step (4-byte load, 16-byte store).
template <int FMT>
__global__ void fp8_decode_kernel(const uint8_t* __restrict__ q, float* __restrict__ out, int64_t n) {
  const int64_t n4 = n / 4;
  const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t stride = (int64_t)gridDim.x * blockDim.x;
  for (int64_t i = tid; i < n4; i += stride) {
    uint32_t v[4];
    fp8_decode4<FMT>(__ldg(reinterpret_cast<const uint32_t*>(q) + i), v);
    reinterpret_cast<uint4*>(out)[i] = make_uint4(v[0], v[1], v[2], v[3]);
  }
  if (tid < n - 4 * n4) {
    const int64_t i = 4 * n4 + tid;
    out[i] = __uint_as_float(fp8_decode_bits<FMT>(q[i]));
  }
}

// Sets of groups a warp of the 1x128 quantize handles in one step: their loads are in flight
// together (2 measured best on an H100).
static constexpr int GROUPS_PER_WARP_STEP = 2;

// x: f32|bf16 [rows, cols] -> data: u8 [rows, cols], scales: f32 [rows, ceil(cols/128)]
// A (row, 128-column group) is handled by L lanes of a warp holding E elements each:
//   VEC (16-byte rows: cols % 4 == 0 for f32, cols % 8 == 0 for bf16): one 16-byte load a lane,
//     E = 4, L = 32 for f32; E = 8, L = 16 for bf16 (two groups side by side in a warp);
//   scalar: E = 4, L = 32, lane l holds columns c0 + l + 32j.
// A warp takes GROUPS_PER_WARP_STEP such sets a step; 8 warps a block; grid-stride over the groups.
template <int FMT, typename In, bool VEC>
__global__ void __launch_bounds__(256) fp8_quantize_1x128_kernel(const In* __restrict__ x, int64_t rows, int64_t cols,
                                                                 bool ue8m0, uint8_t* __restrict__ data,
                                                                 float* __restrict__ scales) {
  constexpr int E = VEC ? 16 / (int)sizeof(In) : 4;  // elements a lane holds of one group
  constexpr int L = COLS_PER_BLOCK / E;               // lanes a group
  constexpr int GW = 32 / L;                          // groups side by side in a warp
  constexpr int G = GROUPS_PER_WARP_STEP;
  const int lane = threadIdx.x & 31;
  const int sub = lane / L, l = lane % L;
  const int64_t nbk = (cols + COLS_PER_BLOCK - 1) / COLS_PER_BLOCK;
  const int64_t groups = rows * nbk;
  const int64_t warps_per_grid = (int64_t)gridDim.x * (blockDim.x / 32);
  const int64_t warp_id = (int64_t)blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
  for (int64_t g0 = warp_id * GW * G; g0 < groups; g0 += warps_per_grid * GW * G) {
    int64_t group[G];  // this lane's group in each set
    int64_t base[G];   // offset of the group's first element: r * cols + c0
    int width[G];      // columns in the group (0 past the last group)
    uint32_t v[G][E];
#pragma unroll
    for (int k = 0; k < G; k++) {
      const int64_t g = g0 + k * GW + sub;
      const int64_t r = g / nbk;
      const int64_t c0 = (g - r * nbk) * COLS_PER_BLOCK;
      group[k] = g;
      base[k] = r * cols + c0;
      width[k] = g < groups ? (int)min(cols - c0, (int64_t)COLS_PER_BLOCK) : 0;
#pragma unroll
      for (int j = 0; j < E; j++) v[k][j] = 0;
      if (VEC) {
        if (E * l < width[k]) {
          if (E == 4) load4_bits(x + base[k] + E * l, v[k]);
          else load8_bits(x + base[k] + E * l, v[k]);
        }
      } else {
#pragma unroll
        for (int j = 0; j < E; j++) {
          if (l + 32 * j < width[k]) v[k][j] = load_bits(x + base[k] + l + 32 * j);
        }
      }
    }
    uint32_t amax[G];
#pragma unroll
    for (int k = 0; k < G; k++) {
      amax[k] = 0;
#pragma unroll
      for (int j = 0; j < E; j++) amax[k] = max(amax[k], v[k][j] & 0x7FFFFFFFu);
#pragma unroll
      for (int offset = L / 2; offset > 0; offset >>= 1) amax[k] = max(amax[k], __shfl_xor_sync(0xFFFFFFFFu, amax[k], offset));
    }
#pragma unroll
    for (int k = 0; k < G; k++) {
      if (width[k] == 0) continue;
      const float scale = fp8_scale_from_amax_bits<FMT>(amax[k], ue8m0);
      if (l == 0) scales[group[k]] = scale;
      const float s = ue8m0 ? __fdiv_rn(1.0f, scale) : scale;
      uint8_t* q = data + base[k];
      if (VEC) {
        if (E * l < width[k]) {
          if (E == 4) {
            *reinterpret_cast<uint32_t*>(q + E * l) = fp8_encode4_scaled<FMT>(v[k], amax[k], s, ue8m0);
          } else {
            *reinterpret_cast<uint2*>(q + E * l) = make_uint2(fp8_encode4_scaled<FMT>(&v[k][0], amax[k], s, ue8m0),
                                                              fp8_encode4_scaled<FMT>(&v[k][4], amax[k], s, ue8m0));
          }
        }
      } else {
#pragma unroll
        for (int j = 0; j < E; j++) {
          if (l + 32 * j < width[k]) q[l + 32 * j] = (uint8_t)fp8_encode1_scaled<FMT>(v[k][j], amax[k], s, ue8m0);
        }
      }
    }
  }
}

// x: f32|bf16 [rows, cols] -> data: u8 [rows, cols], scales: f32 [ceil(rows/128), ceil(cols/128)]
// One block of 512 threads per 128x128 tile, grid-stride over the tiles. Each thread keeps its 32
// elements in registers between the block-wide amax and the encode, so x is read once.
//   VEC:    thread t holds columns c0 + 4 (t % 32) .. +3 of rows r0 + t / 32 + 16 i, i < 8
//   scalar: thread t holds column c0 + t % 128 of rows r0 + t / 128 + 4 i, i < 32
template <int FMT, typename In, bool VEC>
__global__ void __launch_bounds__(512) fp8_quantize_128x128_kernel(const In* __restrict__ x, int64_t rows, int64_t cols,
                                                                   bool ue8m0, uint8_t* __restrict__ data,
                                                                   float* __restrict__ scales) {
  __shared__ uint32_t warp_amax[16];
  const int t = threadIdx.x;
  const int lane = t & 31;
  const int64_t nbr = (rows + 127) / 128;
  const int64_t nbk = (cols + COLS_PER_BLOCK - 1) / COLS_PER_BLOCK;
  for (int64_t tile = blockIdx.x; tile < nbr * nbk; tile += gridDim.x) {
    const int64_t r0 = (tile / nbk) * 128;
    const int64_t c0 = (tile % nbk) * COLS_PER_BLOCK;
    uint32_t v[32];
    if (VEC) {
      const int64_t c = c0 + 4 * (t & 31);
#pragma unroll
      for (int i = 0; i < 8; i++) {
        const int64_t r = r0 + (t >> 5) + 16 * i;
        if (r < rows && c < cols) {
          load4_bits(x + r * cols + c, &v[4 * i]);
        } else {
          v[4 * i] = v[4 * i + 1] = v[4 * i + 2] = v[4 * i + 3] = 0;
        }
      }
    } else {
      const int64_t c = c0 + (t & 127);
#pragma unroll
      for (int i = 0; i < 32; i++) {
        const int64_t r = r0 + (t >> 7) + 4 * i;
        v[i] = (r < rows && c < cols) ? load_bits(x + r * cols + c) : 0u;
      }
    }
    uint32_t amax = 0;
#pragma unroll
    for (int i = 0; i < 32; i++) amax = max(amax, v[i] & 0x7FFFFFFFu);
    amax = warp_max(amax);
    if (lane == 0) warp_amax[t >> 5] = amax;
    __syncthreads();
    amax = 0;
#pragma unroll
    for (int w = 0; w < 16; w++) amax = max(amax, warp_amax[w]);
    __syncthreads();  // everyone has read warp_amax before the next tile writes it
    const float scale = fp8_scale_from_amax_bits<FMT>(amax, ue8m0);
    if (t == 0) scales[tile] = scale;
    const float s = ue8m0 ? __fdiv_rn(1.0f, scale) : scale;
    if (VEC) {
      const int64_t c = c0 + 4 * (t & 31);
#pragma unroll
      for (int i = 0; i < 8; i++) {
        const int64_t r = r0 + (t >> 5) + 16 * i;
        if (r < rows && c < cols) {
          *reinterpret_cast<uint32_t*>(data + r * cols + c) = fp8_encode4_scaled<FMT>(&v[4 * i], amax, s, ue8m0);
        }
      }
    } else {
      const int64_t c = c0 + (t & 127);
#pragma unroll
      for (int i = 0; i < 32; i++) {
        const int64_t r = r0 + (t >> 7) + 4 * i;
        if (r < rows && c < cols) data[r * cols + c] = (uint8_t)fp8_encode1_scaled<FMT>(v[i], amax, s, ue8m0);
      }
    }
  }
}

// data: u8 [rows, cols], scales: f32 [ceil(rows/br), ceil(cols/128)] -> out: f32 [rows, cols]
// One warp per (row, 128-column group), 8 warps a block, grid-stride over the groups; the group's
// scale is read once. Lane l handles columns c0 + 4l .. +3 (VEC) or c0 + l + 32j (scalar).
template <int FMT, bool VEC>
__global__ void __launch_bounds__(256) fp8_dequantize_kernel(const uint8_t* __restrict__ data, const float* __restrict__ scales,
                                                             int64_t rows, int64_t cols, int64_t br, float* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t nbk = (cols + COLS_PER_BLOCK - 1) / COLS_PER_BLOCK;
  const int64_t groups = rows * nbk;
  const int64_t warps_per_grid = (int64_t)gridDim.x * (blockDim.x / 32);
  for (int64_t g = (int64_t)blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5); g < groups; g += warps_per_grid) {
    const int64_t r = g / nbk;
    const int64_t bk = g - r * nbk;
    const int64_t c0 = bk * COLS_PER_BLOCK;
    const float scale = __ldg(scales + (r / br) * nbk + bk);
    const uint8_t* qrow = data + r * cols;
    float* orow = out + r * cols;
    if (VEC) {
      const int64_t c = c0 + 4 * lane;
      if (c < cols) {
        uint32_t v[4];
        fp8_decode4<FMT>(__ldg(reinterpret_cast<const uint32_t*>(qrow + c)), v);
        *reinterpret_cast<float4*>(orow + c) = make_float4(fp8_scale_value(v[0], scale), fp8_scale_value(v[1], scale),
                                                           fp8_scale_value(v[2], scale), fp8_scale_value(v[3], scale));
      }
    } else {
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int64_t c = c0 + lane + 32 * j;
        if (c < cols) orow[c] = fp8_scale_value(fp8_decode_bits<FMT>(qrow[c]), scale);
      }
    }
  }
}

// ---------------------------------------------------------------- launchers

// Blocks for a grid-stride loop: enough for the work, at most `per_sm` blocks on each multiprocessor.
static unsigned grid_blocks(int64_t work_per_block_units, int per_sm) {
  const int64_t cap = (int64_t)cuda_sm_count() * per_sm;
  return (unsigned)std::max<int64_t>(1, std::min(work_per_block_units, cap));
}

template <int FMT, typename In>
static void fp8_quantize_launch(const In* x, int64_t rows, int64_t cols, int br, bool ue8m0, uint8_t* data, float* scales,
                                cudaStream_t stream) {
  const int64_t nbk = (cols + COLS_PER_BLOCK - 1) / COLS_PER_BLOCK;
  if (br == 1) {
    const bool vec = sizeof(In) == 4 ? cols % 4 == 0 : cols % 8 == 0;  // rows start 16-byte aligned
    const int64_t groups_per_block = 8 * GROUPS_PER_WARP_STEP * (vec && sizeof(In) == 2 ? 2 : 1);
    const unsigned blocks = grid_blocks((rows * nbk + groups_per_block - 1) / groups_per_block, 8);
    if (vec) fp8_quantize_1x128_kernel<FMT, In, true><<<blocks, 256, 0, stream>>>(x, rows, cols, ue8m0, data, scales);
    else fp8_quantize_1x128_kernel<FMT, In, false><<<blocks, 256, 0, stream>>>(x, rows, cols, ue8m0, data, scales);
  } else {
    const bool vec = cols % 4 == 0;  // rows start 16-byte (f32) or 8-byte (bf16) aligned
    const unsigned blocks = grid_blocks(((rows + 127) / 128) * nbk, 4);
    if (vec) fp8_quantize_128x128_kernel<FMT, In, true><<<blocks, 512, 0, stream>>>(x, rows, cols, ue8m0, data, scales);
    else fp8_quantize_128x128_kernel<FMT, In, false><<<blocks, 512, 0, stream>>>(x, rows, cols, ue8m0, data, scales);
  }
}

template <int FMT>
static void fp8_dequantize_launch(const uint8_t* data, const float* scales, int64_t rows, int64_t cols, int br, float* out,
                                  cudaStream_t stream) {
  const int64_t nbk = (cols + COLS_PER_BLOCK - 1) / COLS_PER_BLOCK;
  const unsigned blocks = grid_blocks((rows * nbk + 7) / 8, 8);
  if (cols % 4 == 0) fp8_dequantize_kernel<FMT, true><<<blocks, 256, 0, stream>>>(data, scales, rows, cols, br, out);
  else fp8_dequantize_kernel<FMT, false><<<blocks, 256, 0, stream>>>(data, scales, rows, cols, br, out);
}

// ---------------------------------------------------------------- entry points

// cudaFp8Encode(x, out, n, format); x: f32 [n] -> out: u8 [n]
Napi::Value CudaFp8Encode(const Napi::CallbackInfo& info) {
  const char* fn = "cudaFp8Encode";
  Napi::Env env = info.Env();
  Args args(info, fn, 4);
  const uint64_t n = args.size(2, "n");
  const int format = args.format(3);
  cudaStream_t stream = cuda_stream(env, fn);
  const float* x = (const float*)cuda_device_arg(args, 0, "x", checked_mul(env, fn, n, 4, "x bytes"));
  uint8_t* out = (uint8_t*)cuda_device_arg(args, 1, "out", n);
  if (n == 0) return env.Undefined();
  const unsigned blocks = grid_blocks(((int64_t)n / 4 + 255) / 256, 8);
  if (format == FP8_E4M3) fp8_encode_kernel<FP8_E4M3><<<blocks, 256, 0, stream>>>(x, out, (int64_t)n);
  else fp8_encode_kernel<FP8_E5M2><<<blocks, 256, 0, stream>>>(x, out, (int64_t)n);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// cudaFp8Decode(q, out, n, format); q: u8 [n] -> out: f32 [n]
Napi::Value CudaFp8Decode(const Napi::CallbackInfo& info) {
  const char* fn = "cudaFp8Decode";
  Napi::Env env = info.Env();
  Args args(info, fn, 4);
  const uint64_t n = args.size(2, "n");
  const int format = args.format(3);
  cudaStream_t stream = cuda_stream(env, fn);
  const uint8_t* q = (const uint8_t*)cuda_device_arg(args, 0, "q", n);
  float* out = (float*)cuda_device_arg(args, 1, "out", checked_mul(env, fn, n, 4, "out bytes"));
  if (n == 0) return env.Undefined();
  const unsigned blocks = grid_blocks(((int64_t)n / 4 + 255) / 256, 8);
  if (format == FP8_E4M3) fp8_decode_kernel<FP8_E4M3><<<blocks, 256, 0, stream>>>(q, out, (int64_t)n);
  else fp8_decode_kernel<FP8_E5M2><<<blocks, 256, 0, stream>>>(q, out, (int64_t)n);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// cudaFp8Quantize(x, xIsBf16, rows, cols, blockRows, format, ue8m0, data, scales)
// x: f32|bf16 [rows, cols] -> data: u8 [rows, cols], scales: f32 [ceil(rows/blockRows), ceil(cols/128)]
Napi::Value CudaFp8Quantize(const Napi::CallbackInfo& info) {
  const char* fn = "cudaFp8Quantize";
  Napi::Env env = info.Env();
  Args args(info, fn, 9);
  const bool bf16 = args.boolean(1, "xIsBf16");
  const uint64_t rows = args.size(2, "rows");
  const uint64_t cols = args.size(3, "cols");
  const int br = args.block_rows(4);
  const int format = args.format(5);
  const bool ue8m0 = args.boolean(6, "ue8m0");
  const uint64_t n = checked_mul(env, fn, rows, cols, "rows * cols");
  const uint64_t x_bytes = checked_mul(env, fn, n, bf16 ? 2 : 4, "x bytes");
  const uint64_t n_scales = checked_mul(env, fn, ceil_div(rows, br), ceil_div(cols, COLS_PER_BLOCK), "scale count");
  const uint64_t scale_bytes = checked_mul(env, fn, n_scales, 4, "scales bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const void* x = cuda_device_arg(args, 0, "x", x_bytes);
  uint8_t* data = (uint8_t*)cuda_device_arg(args, 7, "data", n);
  float* scales = (float*)cuda_device_arg(args, 8, "scales", scale_bytes);
  if (n == 0) return env.Undefined();
  const int64_t r = (int64_t)rows, c = (int64_t)cols;
  if (bf16) {
    const uint16_t* in = (const uint16_t*)x;
    if (format == FP8_E4M3) fp8_quantize_launch<FP8_E4M3>(in, r, c, br, ue8m0, data, scales, stream);
    else fp8_quantize_launch<FP8_E5M2>(in, r, c, br, ue8m0, data, scales, stream);
  } else {
    const float* in = (const float*)x;
    if (format == FP8_E4M3) fp8_quantize_launch<FP8_E4M3>(in, r, c, br, ue8m0, data, scales, stream);
    else fp8_quantize_launch<FP8_E5M2>(in, r, c, br, ue8m0, data, scales, stream);
  }
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

// cudaFp8Dequantize(data, scales, rows, cols, blockRows, format, out)
// data: u8 [rows, cols], scales: f32 [ceil(rows/blockRows), ceil(cols/128)] -> out: f32 [rows, cols]
Napi::Value CudaFp8Dequantize(const Napi::CallbackInfo& info) {
  const char* fn = "cudaFp8Dequantize";
  Napi::Env env = info.Env();
  Args args(info, fn, 7);
  const uint64_t rows = args.size(2, "rows");
  const uint64_t cols = args.size(3, "cols");
  const int br = args.block_rows(4);
  const int format = args.format(5);
  const uint64_t n = checked_mul(env, fn, rows, cols, "rows * cols");
  const uint64_t out_bytes = checked_mul(env, fn, n, 4, "out bytes");
  const uint64_t n_scales = checked_mul(env, fn, ceil_div(rows, br), ceil_div(cols, COLS_PER_BLOCK), "scale count");
  const uint64_t scale_bytes = checked_mul(env, fn, n_scales, 4, "scales bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const uint8_t* data = (const uint8_t*)cuda_device_arg(args, 0, "data", n);
  const float* scales = (const float*)cuda_device_arg(args, 1, "scales", scale_bytes);
  float* out = (float*)cuda_device_arg(args, 6, "out", out_bytes);
  if (n == 0) return env.Undefined();
  if (format == FP8_E4M3) fp8_dequantize_launch<FP8_E4M3>(data, scales, (int64_t)rows, (int64_t)cols, br, out, stream);
  else fp8_dequantize_launch<FP8_E5M2>(data, scales, (int64_t)rows, (int64_t)cols, br, out, stream);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

}  // namespace hp
