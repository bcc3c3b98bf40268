// Standalone harness for the bf16 tensor-core matmul (native/cuda/matmul_mma.cuh), no Node:
// (1) correctness of every tile config x layout x ragged shape x (+C, C == out, bf16 out, forced
// splits over K) against the SIMT kernel (exact f32 FMA chain, itself checked against the TS
// reference by tests/gemm.test.ts) with the bound |D - ref| <= (K + 2)·2^-22·S (+ a bf16 rounding),
// S = Σ|a||b| + |c| computed by the SIMT kernel on |a|, |b|; outputs poisoned with NaN first;
// (2) TFLOP/s (CUDA events, median, rotating input sets) of each config at the brief's shapes.
// Build (here or on the device): native/cuda/dev/matmul_check.sh.
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cuda/matmul.cuh"
#include "dev_check.cuh"
#include "dev_hash.cuh"

using namespace hp;

static int g_failures = 0;
static float g_worst = 0;  // the largest |D - ref| / (K·2^-24·S) of the f32-out checks
static uint64_t g_seed = 12345;

__device__ __forceinline__ float uni(uint64_t seed, int64_t i) {
  return (hash32(seed * 0x9E3779B97F4A7C15ull + (uint64_t)i) >> 8) * (2.0f / 16777216.0f) - 1.0f;
}
// bf16 values uniform(-1, 1) scaled by 2^(i % 3 - 1) (never all zeros), and their magnitudes
__global__ void fill_bf16(uint16_t* x, uint16_t* ax, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const uint16_t h = f32_to_bf16_rne(ldexpf(uni(seed, i), (int)(i % 3) - 1));
    x[i] = h;
    if (ax) ax[i] = h & 0x7FFF;
  }
}
__global__ void fill_f32(float* x, float* ax, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    x[i] = uni(seed, i);
    if (ax) ax[i] = fabsf(x[i]);
  }
}
// stats[0]: failures (int), stats[1]: max |got - ref| / (S·K·2^-24) (float bits; >= 0, so int order)
__global__ void compare(const void* got, bool got_bf16, const float* ref, const float* S, int64_t n, double tol, float unit,
                        unsigned* stats) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float g = got_bf16 ? __uint_as_float((uint32_t)((const uint16_t*)got)[i] << 16) : ((const float*)got)[i];
    const double e = fabs((double)g - (double)ref[i]);
    const double lim = tol * S[i] + (got_bf16 ? fabs((double)ref[i]) * 0.0078125 : 0.0) + 1e-30;
    if (!(e <= lim)) atomicAdd(&stats[0], 1u);
    if (!got_bf16 && S[i] > 0) {
      const float r = (float)(e / ((double)S[i] * unit));
      if (r == r) atomicMax(&stats[1], __float_as_uint(r));
    }
  }
}

static const char* tile_name(int t) {
  switch (t) {
    case mma::MM_TILE_128x128: return "128x128x32";
    case mma::MM_TILE_128x256: return "128x256x32";
    case mma::MM_TILE_256x128: return "256x128x32";
    case mma::MM_TILE_128x128_K64: return "128x128x64";
    default: return "auto";
  }
}

// One check: tile config, layout, shape; c: 0 none, 1 separate, 2 c == out; forced splits (0: auto).
static void check(int tile, bool ta, bool tb, int64_t M, int64_t N, int64_t K, int cmode, bool out_bf16, int splits) {
  const uint64_t seed = ++g_seed;
  uint16_t *a, *b, *aa, *ab;
  float *c, *ref, *S, *out;
  unsigned* stats;
  const int64_t ak = std::max<int64_t>(1, M * K), bk = std::max<int64_t>(1, K * N), mn = M * N;
  CK(cudaMalloc(&a, ak * 2)); CK(cudaMalloc(&b, bk * 2)); CK(cudaMalloc(&aa, ak * 2)); CK(cudaMalloc(&ab, bk * 2));
  CK(cudaMalloc(&c, mn * 4)); CK(cudaMalloc(&ref, mn * 4)); CK(cudaMalloc(&S, mn * 4)); CK(cudaMalloc(&out, mn * 4));
  CK(cudaMalloc(&stats, 8));
  fill_bf16<<<256, 256>>>(a, aa, M * K, seed);
  fill_bf16<<<256, 256>>>(b, ab, K * N, seed ^ 0xABCDEF);
  float* absc = cmode ? S : nullptr;  // S starts as |c|, the SIMT product of |a|, |b| adds onto it
  fill_f32<<<256, 256>>>(c, absc, mn, seed ^ 0x777);
  CK(cudaGetLastError());
  CK(matmul_launch(a, b, true, M, N, K, ta, tb, cmode ? c : nullptr, ref, false, 0, MM_PATH_SIMT));
  CK(matmul_launch(aa, ab, true, M, N, K, ta, tb, cmode ? S : nullptr, S, false, 0, MM_PATH_SIMT));
  const int path = matmul_choose(a, b, true, M, N, K, ta, tb);
  if (path != MM_PATH_MMA) {
    printf("FAIL %s: matmul_choose gave SIMT for an aligned shape\n", tile_name(tile));
    g_failures++;
  }
  // poison: NaN everywhere (bf16 out: only the first half is the output, poisoned as NaN pairs)
  if (cmode == 2) {
    out_bf16 = false;  // c == out: the contract's in-place accumulation is f32
    CK(cudaMemcpy(out, c, mn * 4, cudaMemcpyDeviceToDevice));
  } else {
    CK(cudaMemset(out, 0xFF, mn * 4));
  }
  const float* cp = cmode == 1 ? c : cmode == 2 ? out : nullptr;
  CK(matmul_launch(a, b, true, M, N, K, ta, tb, cp, out, out_bf16, 0, MM_PATH_MMA, tile, splits));
  CK(cudaMemset(stats, 0, 8));
  const double tol = (double)(K + 2) * 0x1p-22;
  compare<<<256, 256>>>(out, out_bf16, ref, S, mn, tol, (float)std::max<int64_t>(1, K) * 0x1p-24f, stats);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  unsigned h[2];
  CK(cudaMemcpy(h, stats, 8, cudaMemcpyDeviceToHost));
  float worst;
  memcpy(&worst, &h[1], 4);
  if (h[0]) g_failures++;
  if (h[0] || getenv("VERBOSE"))
    printf("%-4s %s ta=%d tb=%d M=%lld N=%lld K=%lld c=%d out=%s splits=%d fails=%u max err/(K·2^-24·S)=%.3f\n", h[0] ? "FAIL" : "OK",
           tile_name(tile), ta, tb, (long long)M, (long long)N, (long long)K, cmode, out_bf16 ? "bf16" : "f32", splits, h[0], worst);
  g_worst = std::max(g_worst, worst);
  cudaFree(a); cudaFree(b); cudaFree(aa); cudaFree(ab); cudaFree(c); cudaFree(ref); cudaFree(S); cudaFree(out); cudaFree(stats);
}

// Median ms of matmul (f32 out, no c) over rotating input sets; path/tile forced.
static double time_ms(int path, int tile, bool ta, bool tb, int64_t M, int64_t N, int64_t K, int reps) {
  const int64_t bytes = (M * K + N * K) * 2;
  const int sets = (int)std::max<int64_t>(1, std::min<int64_t>(4, (int64_t)(400ll << 20) / bytes));
  std::vector<uint16_t*> as(sets), bs(sets);
  float* out;
  for (int s = 0; s < sets; s++) {
    CK(cudaMalloc(&as[s], M * K * 2)); CK(cudaMalloc(&bs[s], N * K * 2));
    fill_bf16<<<1024, 256>>>(as[s], nullptr, M * K, 100 + s);
    fill_bf16<<<1024, 256>>>(bs[s], nullptr, N * K, 200 + s);
  }
  CK(cudaMalloc(&out, M * N * 4));
  for (int i = 0; i < 3; i++) CK(matmul_launch(as[i % sets], bs[i % sets], true, M, N, K, ta, tb, nullptr, out, false, 0, path, tile));
  CK(cudaDeviceSynchronize());
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
  std::vector<float> t(reps);
  for (int i = 0; i < reps; i++) {
    CK(cudaEventRecord(e0));
    CK(matmul_launch(as[i % sets], bs[i % sets], true, M, N, K, ta, tb, nullptr, out, false, 0, path, tile));
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    CK(cudaEventElapsedTime(&t[i], e0, e1));
  }
  std::sort(t.begin(), t.end());
  for (int s = 0; s < sets; s++) { cudaFree(as[s]); cudaFree(bs[s]); }
  cudaFree(out); cudaEventDestroy(e0); cudaEventDestroy(e1);
  return t[reps / 2];
}

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "quick";
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  printf("device: %s, sm_%d%d, %d SMs\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
  const int tiles[] = {mma::MM_TILE_128x128, mma::MM_TILE_128x256, mma::MM_TILE_256x128, mma::MM_TILE_128x128_K64};

  // ---- correctness
  struct Shape { int64_t M, N, K; };
  // contiguous dims multiples of 8 (every layout); ragged against the 128/256 tiles and the 32/64 k-tile
  const Shape all[] = {{8, 8, 8}, {8, 16, 16}, {136, 264, 1000}, {200, 72, 520}, {64, 512, 96}, {264, 128, 40}, {128, 256, 2048}};
  int n_checks = 0;
  for (int tile : tiles)
    for (int l = 0; l < 4; l++) {
      const bool ta = l & 1, tb = l & 2;
      int v = 0;
      for (const Shape& s : all) {
        v++;
        check(tile, ta, tb, s.M, s.N, s.K, v % 3, (v % 4 == 1), 0);
        n_checks++;
      }
    }
  // NT (the gate's layout) with rows ragged in M and N, K = 0, forced splits, + C in place
  for (int tile : tiles) {
    check(tile, false, true, 77, 65, 136, 1, false, 0);
    check(tile, false, true, 1, 3, 8, 1, true, 0);
    check(tile, false, true, 1000, 257, 72, 2, false, 0);
    check(tile, false, true, 64, 64, 0, 1, false, 0);
    check(tile, false, true, 300, 200, 1000, 2, false, 3);
    check(tile, false, true, 130, 250, 1000, 1, true, 7);
    check(tile, true, false, 136, 264, 1000, 2, false, 5);
    check(tile, false, true, 128, 256, 7168, 2, false, 0);  // auto split over K (2 tiles)
    check(tile, false, true, 2048, 256, 7168, 0, false, 0);  // the gate shape, scaled down
    n_checks += 9;
  }
  check(0, false, true, 16384, 256, 7168, 0, false, 0);  // the gate shape (auto config)
  check(0, false, true, 4096, 4096, 4096, 1, true, 0);
  check(0, true, false, 4096, 4096, 1024, 2, false, 0);
  n_checks += 3;
  // the chooser: ragged contiguous dims go to SIMT
  int wrong = 0;
  uint16_t* p;
  CK(cudaMalloc(&p, 64));
  wrong += matmul_choose(p, p, true, 8, 8, 12, false, true) != MM_PATH_SIMT;
  wrong += matmul_choose(p, p, true, 12, 8, 8, true, true) != MM_PATH_SIMT;
  wrong += matmul_choose(p, p, true, 8, 12, 8, false, false) != MM_PATH_SIMT;
  wrong += matmul_choose(p, p, false, 8, 8, 8, false, true) != MM_PATH_SIMT;
  wrong += matmul_choose(p, p + 1, true, 8, 8, 8, false, true) != MM_PATH_SIMT;
  wrong += matmul_choose(p, p, true, 12, 12, 8, false, true) != MM_PATH_MMA;
  cudaFree(p);
  if (wrong) { printf("FAIL matmul_choose: %d wrong\n", wrong); g_failures++; }
  printf("correctness: %d checks, %d failures; largest |D - ref| / (K·2^-24·S) (f32 out) = %.3f\n", n_checks, g_failures, g_worst);

  // ---- timings (f32 out, no c): TFLOP/s
  struct T { const char* label; int64_t M, N, K; bool ta, tb; };
  const T shapes[] = {
      {"NT 4096^3", 4096, 4096, 4096, false, true}, {"gate", 16384, 256, 7168, false, true},
      {"NT 8192^3", 8192, 8192, 8192, false, true}, {"NN 4096^3", 4096, 4096, 4096, false, false},
      {"TN 4096^3", 4096, 4096, 4096, true, false}, {"TT 4096^3", 4096, 4096, 4096, true, true},
      {"NT small-M split", 128, 256, 7168, false, true}, {"gate M=2048 (split)", 2048, 256, 7168, false, true},
      {"NT 4096x7168x2048", 4096, 7168, 2048, false, true},
  };
  printf("\n%-22s %7s %7s %7s | %10s %10s %10s %10s %10s\n", "shape", "M", "N", "K", "128x128", "128x256", "256x128", "128x128k64", "auto");
  for (const T& s : shapes) {
    if (quick && s.M > 4096) continue;
    const double fl = 2.0 * s.M * s.N * s.K / 1e9;
    printf("%-22s %7lld %7lld %7lld |", s.label, (long long)s.M, (long long)s.N, (long long)s.K);
    for (int tile : tiles) printf(" %10.1f", fl / time_ms(MM_PATH_MMA, tile, s.ta, s.tb, s.M, s.N, s.K, 20));
    printf(" %10.1f\n", fl / time_ms(MM_PATH_MMA, 0, s.ta, s.tb, s.M, s.N, s.K, 20));
    fflush(stdout);
  }
  const double fl = 2.0 * 16384 * 256 * 7168 / 1e9;
  printf("SIMT kernel at the gate shape: %.1f TFLOP/s\n", fl / time_ms(MM_PATH_SIMT, 0, false, true, 16384, 256, 7168, 5));
  printf("%s\n", g_failures ? "FAILURES" : "ALL OK");
  return g_failures ? 1 : 0;
}
