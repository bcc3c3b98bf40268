// The CPU's FP32 FLOP/s ceiling for the benchmarks: every thread of the pool runs independent chains
// of multiply-adds, enough of them to hide the latency of one (an FMA takes about 4 cycles and two
// issue per cycle, so 8 chains in flight keep both units busy; 12 leave room). The caller times the
// call; the function only counts the FLOPs it did.
//
// AVX2 path: 12 __m256 accumulators, acc = fma(acc, a, b) (one _mm256_fmadd_ps = 16 FLOPs).
// Scalar path (no AVX2/FMA, or HOTPATHS_SIMD=scalar): 12 float accumulators, acc = acc * a + b as a
// separate multiply and add (the build turns contraction off; 2 FLOPs each).
// With a = 1 - 2^-20 and b = 2^-10 every chain converges to b / (1 - a) = 1024: no overflow and no
// denormals, which would slow some CPUs down. The sums land in a global sink, so the work cannot be
// dropped.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <string>


#include "common/check.h"
#include "common/entry_points.h"
#include "common/promise_worker.h"
#include "common/simd.h"
#include "common/threadpool.h"

namespace hp {

static constexpr int CHAINS = 12;
static constexpr int PIECES_PER_THREAD = 8;  // work items per pool thread, so a late thread is no straggler
static constexpr float FMA_A = 1.0f - 1.0f / 1048576.0f;
static constexpr float FMA_B = 1.0f / 1024.0f;

static std::atomic<uint32_t> g_sink{0};  // bits of the chains' sums (never read; keeps the work alive)


static void sink(float s) {
  uint32_t u;
  memcpy(&u, &s, 4);
  g_sink.fetch_xor(u, std::memory_order_relaxed);
}

// `iters` steps of CHAINS scalar chains; seed varies the start so that pieces differ. FLOPs: iters * CHAINS * 2.
static void fma_chains_scalar(int64_t iters, float seed) {
  float acc[CHAINS];
  for (int c = 0; c < CHAINS; c++) acc[c] = seed + (float)c;
  // a and b through volatile loads: the compiler may not fold the chains into closed forms
  volatile float va = FMA_A, vb = FMA_B;
  const float a = va, b = vb;
  for (int64_t i = 0; i < iters; i++) {
    for (int c = 0; c < CHAINS; c++) acc[c] = acc[c] * a + b;
  }
  float s = 0;
  for (int c = 0; c < CHAINS; c++) s += acc[c];
  sink(s);
}

#if HP_X86
// `iters` steps of CHAINS 8-wide FMA chains. FLOPs: iters * CHAINS * 8 * 2.
HP_AVX2 static void fma_chains_avx2(int64_t iters, float seed) {
  volatile float va = FMA_A, vb = FMA_B;
  const __m256 a = _mm256_set1_ps(va), b = _mm256_set1_ps(vb);
  __m256 acc[CHAINS];
  for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps(seed + (float)c);
  for (int64_t i = 0; i < iters; i++) {
#pragma GCC unroll 12
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  }
  __m256 s = acc[0];
  for (int c = 1; c < CHAINS; c++) s = _mm256_add_ps(s, acc[c]);
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  float t = 0;
  for (int l = 0; l < 8; l++) t += lanes[l];
  sink(t);
}
#endif

// cpuPeakFlops(iters): Promise<number>. Each of the pool's threads runs `iters` steps of the chains
// (in PIECES_PER_THREAD pieces handed out over the pool); resolves to the FLOPs done in total.
Napi::Value CpuPeakFlops(const Napi::CallbackInfo& info) {
  const char* fn = "cpuPeakFlops";
  Args args(info, fn, 1);
  const uint64_t iters = args.size(0, "iters");
  if (iters > (1ull << 40)) args.fail("E_TOO_LARGE", "iters must be at most 2^40, got " + std::to_string(iters));
  static const bool avx2 = cpu_use_avx2();
  auto* worker = new PromiseWorker(
      info.Env(), fn, {},
      [=](double* result) -> std::string {
        const int64_t pieces = (int64_t)thread_pool().size() * PIECES_PER_THREAD;
        const int64_t per_piece = (int64_t)iters / PIECES_PER_THREAD;
        thread_pool().parallel_for(0, pieces, 1, [=](int64_t b, int64_t e) {
          for (int64_t p = b; p < e; p++) {
#if HP_X86
            if (avx2) {
              fma_chains_avx2(per_piece, (float)p);
              continue;
            }
#endif
            fma_chains_scalar(per_piece, (float)p);
          }
        });
        const double lanes = avx2 ? 8.0 : 1.0;
        *result = (double)pieces * (double)per_piece * CHAINS * lanes * 2.0;
        return "";
      },
      "E_NATIVE", /*resolve_number=*/true);
  worker->Queue();
  return worker->promise();
}

}  // namespace hp
