// CUDA GEMM entry points: FP8 block-scaled GEMM, matmul, transpose. Every argument and size is
// checked here (E_ARG / E_SHAPE / E_TOO_LARGE) before anything is launched; device pointers must be
// bases of live allocations from cudaMalloc that are large enough (cuda_device_arg). The launches go
// on the addon's stream and return at once. Kernels: native/cuda/gemm_fp8_sm90.cuh (Hopper, sm_90a),
// gemm_fp8_simt.cuh (every GPU; K % 16 != 0), the choice: gemm_launch.cuh; matmul: matmul.cuh, whose
// matmul_choose sends bf16 inputs with 16-byte rows to the tensor cores (matmul_mma.cuh) and every
// other call (f32 inputs always: no TF32) to the f32 SIMT kernel.
#include <string>

#include "common/entry_points.h"
#include "cuda/cuda_common.h"
#include "cuda/gemm_launch.cuh"
#include "cuda/matmul.cuh"

namespace hp {

// Sizes the kernels index with 32-bit grid or TMA coordinates stay below this.
static constexpr uint64_t GEMM_DIM_LIMIT = (1ull << 31) - 1;

// Argument i as an optional device pointer: 0n -> null, else as cuda_device_arg.
static void* cuda_optional_arg(const Args& args, size_t i, const char* name, uint64_t need_bytes) {
  if (args.bigint(i, name) == 0) return nullptr;
  return cuda_device_arg(args, i, name, need_bytes);
}

static void check_dim(const Args& args, uint64_t v, const char* what) {
  if (v > GEMM_DIM_LIMIT) args.fail("E_TOO_LARGE", std::string(what) + " = " + std::to_string(v) + " passes the kernels' limit of 2^31 - 1");
}

// cudaGemmFp8(a, aScales, b, bScales, M, N, K, G, Mmax, bBlockRows, mode, rowGroups, c, out, outIsBf16,
//             aPairs, aK, rowsA)
// a: e4m3 [rowsA, K], aScales: f32 [rowsA, KB], b: e4m3 [G, N, K], bScales: f32 [G*ceil(N/128), KB]
// or [G*N, KB], rowGroups: i32 [M] (mode 1) / [G] (mode 2) / 0n, c: f32 [M, N] or 0n (mode 0 only),
// out: f32 | bf16 [M, N]; KB = ceil(K/128). aPairs: 0n (rowsA == M: row m reads A row m) or, in
// mode 1 only, i32 [M] pair ids: row m reads A row aPairs[m] / aK, an all-zero row for an id outside
// [0, rowsA * aK) (GemmFp8Params); aK >= 1.
Napi::Value CudaGemmFp8(const Napi::CallbackInfo& info) {
  const char* fn = "cudaGemmFp8";
  Napi::Env env = info.Env();
  Args args(info, fn, 18);
  const uint64_t M = args.size(4, "M"), N = args.size(5, "N"), K = args.size(6, "K"), G = args.size(7, "G");
  const uint64_t Mmax = args.size(8, "Mmax");
  const int br = args.block_rows(9);
  const uint64_t mode = args.size(10, "mode");
  const bool out_bf16 = args.boolean(14, "outIsBf16");
  const bool gather = args.bigint(15, "aPairs") != 0;
  const uint64_t a_k = args.size(16, "aK"), rows_a = args.size(17, "rowsA");
  if (mode > 2) args.fail("E_ARG", "mode must be 0 (none), 1 (contiguous) or 2 (masked), got " + std::to_string(mode));
  if (gather) {
    if (mode != GEMM_CONTIGUOUS) args.fail("E_ARG", "aPairs (gathered A rows) needs mode 1 (contiguous), got mode " + std::to_string(mode));
    if (a_k < 1 || a_k > GEMM_DIM_LIMIT) args.fail("E_ARG", "aK must be in [1, 2^31 - 1] with aPairs, got " + std::to_string(a_k));
  } else if (rows_a != M) {
    args.fail("E_SHAPE", "rowsA must equal M without aPairs, got " + std::to_string(rows_a) + " and M = " + std::to_string(M));
  }
  if (G < 1) args.fail("E_ARG", "G must be at least 1");
  if (mode == GEMM_NONE && G != 1) args.fail("E_SHAPE", "G must be 1 without grouping, got " + std::to_string(G));
  if (mode == GEMM_MASKED) {
    if (checked_mul(env, fn, G, Mmax, "G * Mmax") != M) {
      args.fail("E_SHAPE", "masked: M must be G * Mmax (" + std::to_string(G) + " * " + std::to_string(Mmax) + "), got " + std::to_string(M));
    }
  } else if (Mmax != M) {
    args.fail("E_SHAPE", "Mmax must equal M without masked grouping, got " + std::to_string(Mmax) + " and " + std::to_string(M));
  }
  check_dim(args, M, "M");
  check_dim(args, rows_a, "rowsA");
  check_dim(args, K, "K");
  check_dim(args, checked_mul(env, fn, G, N, "G * N"), "G * N");
  const uint64_t KB = ceil_div(K, 128);
  const uint64_t b_scale_rows = br == 128 ? checked_mul(env, fn, G, ceil_div(N, 128), "bScales rows") : checked_mul(env, fn, G, N, "bScales rows");
  const uint64_t mn = checked_mul(env, fn, M, N, "M * N");
  const uint64_t a_bytes = checked_mul(env, fn, rows_a, K, "a bytes");
  const uint64_t b_bytes = checked_mul(env, fn, checked_mul(env, fn, G, N, "G * N"), K, "b bytes");
  const uint64_t sa_bytes = checked_mul(env, fn, checked_mul(env, fn, rows_a, KB, "aScales count"), 4, "aScales bytes");
  const uint64_t sb_bytes = checked_mul(env, fn, checked_mul(env, fn, b_scale_rows, KB, "bScales count"), 4, "bScales bytes");
  const uint64_t out_bytes = checked_mul(env, fn, mn, out_bf16 ? 2 : 4, "out bytes");
  // grid sizes: tiles of 64x64 (the SIMT kernel, the most) must fit a 1-D grid
  const uint64_t m_tiles = mode == GEMM_MASKED ? checked_mul(env, fn, G, ceil_div(Mmax, 64), "tiles") : ceil_div(M, 64);
  check_dim(args, checked_mul(env, fn, m_tiles, ceil_div(N, 64), "tiles"), "64x64 tiles");

  cudaStream_t stream = cuda_stream(env, fn);
  GemmFp8Params p;
  p.a = (const uint8_t*)cuda_device_arg(args, 0, "a", a_bytes);
  p.a_scales = (const float*)cuda_device_arg(args, 1, "aScales", sa_bytes);
  p.b = (const uint8_t*)cuda_device_arg(args, 2, "b", b_bytes);
  p.b_scales = (const float*)cuda_device_arg(args, 3, "bScales", sb_bytes);
  p.row_groups = nullptr;
  if (mode == GEMM_NONE) {
    if (args.bigint(11, "rowGroups") != 0) args.fail("E_ARG", "rowGroups must be 0n without grouping");
  } else {
    const uint64_t count = mode == GEMM_CONTIGUOUS ? M : G;
    p.row_groups = (const int32_t*)cuda_device_arg(args, 11, "rowGroups", checked_mul(env, fn, count, 4, "rowGroups bytes"));
  }
  p.a_pairs = gather ? (const int32_t*)cuda_device_arg(args, 15, "aPairs", checked_mul(env, fn, M, 4, "aPairs bytes")) : nullptr;
  p.a_k = gather ? (int)a_k : 1;
  p.a_rows = (int64_t)rows_a;
  p.c = (const float*)cuda_optional_arg(args, 12, "c", checked_mul(env, fn, mn, 4, "c bytes"));
  if (p.c && mode != GEMM_NONE) args.fail("E_ARG", "c is only supported without grouping (mode 0)");
  p.out = cuda_device_arg(args, 13, "out", out_bytes);
  p.M = (int64_t)M;
  p.N = (int64_t)N;
  p.K = (int64_t)K;
  p.G = (int64_t)G;
  p.Mmax = (int64_t)Mmax;
  p.b_block_rows = br;
  p.mode = (int)mode;
  p.out_bf16 = out_bf16;
  if (mn == 0) return env.Undefined();
  cuda_check(env, fn, "kernel launch", gemm_fp8_launch(p, stream));
  return env.Undefined();
}

// cudaMatmul(a, b, inIsBf16, M, N, K, transA, transB, c, out, outIsBf16)
// a: [M, K] ([K, M] when transA), b: [K, N] ([N, K] when transB), f32 or bf16; c: f32 [M, N] or 0n;
// out: f32 | bf16 [M, N].
Napi::Value CudaMatmul(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMatmul";
  Napi::Env env = info.Env();
  Args args(info, fn, 11);
  const bool in_bf16 = args.boolean(2, "inIsBf16");
  const uint64_t M = args.size(3, "M"), N = args.size(4, "N"), K = args.size(5, "K");
  const bool trans_a = args.boolean(6, "transA"), trans_b = args.boolean(7, "transB");
  const bool out_bf16 = args.boolean(10, "outIsBf16");
  check_dim(args, checked_mul(env, fn, ceil_div(M, 64), ceil_div(N, 64), "tiles"), "64x64 tiles");
  const uint64_t es = in_bf16 ? 2 : 4;
  const uint64_t mn = checked_mul(env, fn, M, N, "M * N");
  cudaStream_t stream = cuda_stream(env, fn);
  const void* a = cuda_device_arg(args, 0, "a", checked_mul(env, fn, checked_mul(env, fn, M, K, "M * K"), es, "a bytes"));
  const void* b = cuda_device_arg(args, 1, "b", checked_mul(env, fn, checked_mul(env, fn, K, N, "K * N"), es, "b bytes"));
  const float* c = (const float*)cuda_optional_arg(args, 8, "c", checked_mul(env, fn, mn, 4, "c bytes"));
  void* out = cuda_device_arg(args, 9, "out", checked_mul(env, fn, mn, out_bf16 ? 2 : 4, "out bytes"));
  if (mn == 0) return env.Undefined();
  cuda_check(env, fn, "kernel launch",
             matmul_launch(a, b, in_bf16, (int64_t)M, (int64_t)N, (int64_t)K, trans_a, trans_b, c, out, out_bf16, stream));
  return env.Undefined();
}

// cudaTranspose(x, rows, cols, elemBytes, out); x: [rows, cols] -> out: [cols, rows], 1/2/4-byte elements
Napi::Value CudaTranspose(const Napi::CallbackInfo& info) {
  const char* fn = "cudaTranspose";
  Napi::Env env = info.Env();
  Args args(info, fn, 5);
  const uint64_t rows = args.size(1, "rows"), cols = args.size(2, "cols"), es = args.size(3, "elemBytes");
  if (es != 1 && es != 2 && es != 4) args.fail("E_ARG", "elemBytes must be 1, 2 or 4, got " + std::to_string(es));
  check_dim(args, checked_mul(env, fn, ceil_div(rows, 32), ceil_div(cols, 32), "tiles"), "32x32 tiles");
  const uint64_t bytes = checked_mul(env, fn, checked_mul(env, fn, rows, cols, "rows * cols"), es, "bytes");
  cudaStream_t stream = cuda_stream(env, fn);
  const void* x = cuda_device_arg(args, 0, "x", bytes);
  void* out = cuda_device_arg(args, 4, "out", bytes);
  if (bytes == 0) return env.Undefined();
  cuda_check(env, fn, "kernel launch", transpose_launch(x, (int64_t)rows, (int64_t)cols, (int)es, out, stream));
  return env.Undefined();
}

}  // namespace hp
