// The GPU's FP32 FLOP/s ceiling for the benchmarks: a kernel of independent FMA chains (CUDA cores,
// no tensor cores). Each thread runs FMA_CHAINS chains for `iters` steps, c = fma(c, a, b) with
// a = 1 - 2^-20 and b = 2^-10 (kernel arguments, so nothing folds; every chain converges to 1024, no
// overflow, no denormals). FLOPs per launch: blocks * threads * iters * FMA_CHAINS * 2 (computed by
// the caller in src/native/cuda.ts, which times the launch with cudaTimerStart/cudaTimerStop).
//
// The sums are stored in a small device buffer owned by this file (thread 0 of each block always
// stores; any other thread only if its sum came out negative, which never happens but the compiler
// cannot know), so the work cannot be dropped.
#include <mutex>
#include <string>

#include "common/entry_points.h"
#include "cuda/cuda_common.h"

namespace hp {

static constexpr int FMA_CHAINS = 8;  // src/native/cuda.ts counts FLOPs with the same number
static constexpr int SINK_FLOATS = 1024;

static std::mutex g_sink_mutex;
static float* g_sink = nullptr;  // SINK_FLOATS floats, allocated on first use, never freed

__global__ void fma_chains_kernel(float a, float b, int iters, float* __restrict__ sink) {
  float c[FMA_CHAINS];
#pragma unroll
  for (int k = 0; k < FMA_CHAINS; k++) c[k] = (float)(threadIdx.x + k) * b;
#pragma unroll 16
  for (int i = 0; i < iters; i++) {
#pragma unroll
    for (int k = 0; k < FMA_CHAINS; k++) c[k] = __fmaf_rn(c[k], a, b);
  }
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < FMA_CHAINS; k++) s += c[k];
  if (threadIdx.x == 0 || s < 0.0f) sink[blockIdx.x % SINK_FLOATS] = s;
}

// cudaPeakFlops(blocks, threads, iters): launches the chains on the addon's stream and returns at
// once. threads: 32..1024, a multiple of 32; blocks: 1..2^31-1; iters: 0..2^31-1.
Napi::Value CudaPeakFlops(const Napi::CallbackInfo& info) {
  const char* fn = "cudaPeakFlops";
  Napi::Env env = info.Env();
  Args args(info, fn, 3);
  const uint64_t blocks = args.size(0, "blocks");
  const uint64_t threads = args.size(1, "threads");
  const uint64_t iters = args.size(2, "iters");
  if (blocks < 1 || blocks > 0x7FFFFFFFull) args.fail("E_ARG", "blocks must be between 1 and 2^31-1, got " + std::to_string(blocks));
  if (iters > 0x7FFFFFFFull) args.fail("E_TOO_LARGE", "iters must be at most 2^31-1, got " + std::to_string(iters));
  if (threads < 32 || threads > 1024 || threads % 32 != 0) {
    args.fail("E_ARG", "threads must be a multiple of 32 between 32 and 1024, got " + std::to_string(threads));
  }
  cudaStream_t stream = cuda_stream(env, fn);
  float* sink = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_sink_mutex);
    if (g_sink == nullptr) cuda_check(env, fn, "cudaMalloc(sink)", cudaMalloc(&g_sink, SINK_FLOATS * sizeof(float)));
    sink = g_sink;
  }
  const float a = 1.0f - 1.0f / 1048576.0f, b = 1.0f / 1024.0f;
  fma_chains_kernel<<<(unsigned)blocks, (unsigned)threads, 0, stream>>>(a, b, (int)iters, sink);
  cuda_check(env, fn, "kernel launch", cudaGetLastError());
  return env.Undefined();
}

}  // namespace hp
