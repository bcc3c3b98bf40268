// FP8 GEMM launchers: picks the Hopper kernel when the loaded cubin has it and the shape suits TMA
// (K % 16 == 0, K > 0), the portable SIMT kernel otherwise. Pure CUDA runtime (no Node-API), shared
// by native/cuda/gemm.cu and the harness native/cuda/dev/gemm_check.cu.
#pragma once

#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled

#include <mutex>

#include "cuda/gemm_fp8_simt.cuh"
#include "cuda/gemm_fp8_sm90.cuh"

namespace hp {

enum GemmPath : int { GEMM_PATH_AUTO = 0, GEMM_PATH_SIMT = 1, GEMM_PATH_SM90 = 2 };

// Whether device 0 runs the sm_90a kernel: compute capability 9.0 and the probe kernel (same
// fatbinary) reports the sm_90a cubin. Checked once; the probe synchronizes, once.
inline bool gemm_sm90a_available() {
  static std::once_flag once;
  static bool available = false;
  std::call_once(once, [] {
    int dev = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
    if (major != 9 || minor != 0) return;
    int* flag = nullptr;
    int host = 0;
    if (cudaMalloc(&flag, sizeof(int)) != cudaSuccess) return;
    sm90::sm90a_probe_kernel<<<1, 1>>>(flag);
    if (cudaGetLastError() == cudaSuccess && cudaMemcpy(&host, flag, sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess) {
      available = host == 1;
    }
    cudaFree(flag);
    cudaGetLastError();
  });
  return available;
}

// The driver's cuTensorMapEncodeTiled, fetched through the runtime (the addon links no libcuda).
inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static std::once_flag once;
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  std::call_once(once, [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) == cudaSuccess &&
        q == cudaDriverEntryPointSuccess) {
      fn = (PFN_cuTensorMapEncodeTiled_v12000)p;
    }
  });
  return fn;
}

// A 2-D map over u8 [rows, K] (row stride K bytes, K % 16 == 0), box [box_rows, 128], 128B swizzle,
// out-of-bounds elements read as zero.
inline bool make_tensor_map_2d(CUtensorMap* map, const void* base, uint64_t rows, uint64_t K, uint32_t box_rows) {
  PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
  if (!encode) return false;
  const cuuint64_t dims[2] = {K, rows};
  const cuuint64_t strides[1] = {K};
  const cuuint32_t box[2] = {128, box_rows};
  const cuuint32_t elem_strides[2] = {1, 1};
  return encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(base), dims, strides, box, elem_strides,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <int BN, bool B_ROWS1, bool GATHER>
inline cudaError_t gemm_fp8_sm90_launch_t(const GemmFp8Params& p, cudaStream_t stream) {
  typedef sm90::Fp8Config<BN> C;
  auto kernel = sm90::gemm_fp8_sm90_kernel<BN, B_ROWS1, GATHER>;
  static std::once_flag once;
  static cudaError_t attr_err = cudaSuccess;
  std::call_once(once, [&] { attr_err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM_ALLOC); });
  if (attr_err != cudaSuccess) return attr_err;
  CUtensorMap ma, mb;
  if (!make_tensor_map_2d(&mb, p.b, (uint64_t)(p.G * p.N), (uint64_t)p.K, BN)) return cudaErrorInvalidValue;
  if (GATHER) {
    ma = mb;  // not read: the producer copies the gathered A rows itself
  } else if (!make_tensor_map_2d(&ma, p.a, (uint64_t)p.M, (uint64_t)p.K, sm90::BM)) {
    return cudaErrorInvalidValue;
  }
  const int64_t m_tiles = gemm_m_tiles(p, sm90::BM), n_tiles = (p.N + BN - 1) / BN;
  kernel<<<(unsigned)(m_tiles * n_tiles), sm90::THREADS, C::SMEM_ALLOC, stream>>>(p, ma, mb, m_tiles, n_tiles);
  return cudaGetLastError();
}

template <int BN>
inline cudaError_t gemm_fp8_sm90_launch_bn(const GemmFp8Params& p, cudaStream_t stream) {
  const bool gather = p.a_pairs != nullptr;
  if (p.b_block_rows == 1) return gather ? gemm_fp8_sm90_launch_t<BN, true, true>(p, stream) : gemm_fp8_sm90_launch_t<BN, true, false>(p, stream);
  return gather ? gemm_fp8_sm90_launch_t<BN, false, true>(p, stream) : gemm_fp8_sm90_launch_t<BN, false, false>(p, stream);
}

// Which kernel a call would take (path: GEMM_PATH_AUTO, or a forced one for the harness). Gathered A
// rows go to the Hopper kernel's cp.async copies, which need a 16-byte aligned a (TMA needs it too).
inline int gemm_fp8_choose(const GemmFp8Params& p, int path) {
  const bool aligned = p.a_pairs == nullptr || (uintptr_t)p.a % 16 == 0;
  const bool sm90_ok = p.K > 0 && p.K % 16 == 0 && aligned && gemm_sm90a_available();
  if (path == GEMM_PATH_SIMT || !sm90_ok) return GEMM_PATH_SIMT;
  return GEMM_PATH_SM90;
}

// Launches D = A * B^T with fine-grained scales on `stream` (see GemmFp8Params). bn: the Hopper
// kernel's N tile (0 = pick: 64 when 128-wide tiles would leave most multiprocessors idle).
inline cudaError_t gemm_fp8_launch(const GemmFp8Params& p, cudaStream_t stream, int path = GEMM_PATH_AUTO, int bn = 0) {
  if (p.M == 0 || p.N == 0) return cudaSuccess;
  if (gemm_fp8_choose(p, path) == GEMM_PATH_SIMT) return gemm_fp8_simt_launch(p, stream);
  if (bn == 0) {
    int sms = 132;
    int dev = 0;
    if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    const int64_t tiles128 = gemm_m_tiles(p, sm90::BM) * ((p.N + 127) / 128);
    bn = tiles128 < sms ? 64 : 128;
  }
  return bn == 64 ? gemm_fp8_sm90_launch_bn<64>(p, stream) : gemm_fp8_sm90_launch_bn<128>(p, stream);
}

}  // namespace hp
