// Standalone GPU harness for the cuda backend's GEMM kernels (no Node): correctness of every
// kernel / grouping / output against an fp64 reference, DeepGEMM's diff metric against the fp32
// product of the unquantized inputs, and TFLOP/s at the brief's shapes (CSV for bench_torch.py).
// Build and run: native/cuda/dev/gemm_check.sh (needs an sm_90a GPU for the fast path).
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/gemm_launch.cuh"
#include "cuda/matmul.cuh"

using namespace hp;

#define CK(x)                                                                               \
  do {                                                                                      \
    cudaError_t e_ = (x);                                                                   \
    if (e_ != cudaSuccess) {                                                                \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      exit(1);                                                                              \
    }                                                                                       \
  } while (0)

static uint64_t g_seed = 0;

__device__ __forceinline__ uint32_t hash32(uint64_t x) {
  x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
  return (uint32_t)x;
}

// x[i] = uniform(-1, 1) * 2^(row % 5 - 2): rows of different magnitude, so the scales matter
__global__ void fill_kernel(float* x, int64_t n, int64_t cols, uint64_t seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float u = (hash32(seed * 0x9E3779B97F4A7C15ull + i) >> 8) * (2.0f / 16777216.0f) - 1.0f;
    x[i] = ldexpf(u, (int)((i / cols) % 5) - 2);
  }
}
// random e4m3 codes (no NaN codes) and random scales in [0.5, 2) for timing inputs
__global__ void fill_codes_kernel(uint8_t* q, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    uint8_t c = (uint8_t)hash32(seed + i);
    if ((c & 0x7F) == 0x7F) c ^= 1;
    q[i] = c;
  }
}
__global__ void fill_scales_kernel(float* s, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    s[i] = 0.5f + 1.5f * (hash32(seed ^ (i * 0x12345)) >> 8) * (1.0f / 16777216.0f);
}

// x: f32 [G * rpg, K] -> q: e4m3 [G * rpg, K], s: f32 [G * ceil(rpg / br), KB]; scale = amax / 448.
// One block of 128 threads per scaling block (grid x: scale rows, y: KB).
__global__ void quantize_kernel(const float* x, int64_t rpg, int64_t K, int br, uint8_t* q, float* s) {
  __shared__ float red[128];
  const int64_t sbr = blockIdx.x, kb = blockIdx.y;
  const int64_t per_g = (rpg + br - 1) / br;
  const int64_t g = sbr / per_g, rr0 = (sbr % per_g) * br;
  const int64_t k = kb * 128 + threadIdx.x;
  float amax = 0;
  for (int i = 0; i < br && rr0 + i < rpg; i++) {
    if (k < K) amax = fmaxf(amax, fabsf(x[(g * rpg + rr0 + i) * K + k]));
  }
  red[threadIdx.x] = amax;
  __syncthreads();
  for (int o = 64; o > 0; o >>= 1) {
    if (threadIdx.x < o) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + o]);
    __syncthreads();
  }
  const float scale = red[0] > 0 ? red[0] / 448.0f : 1.0f;
  const int64_t KB = (K + 127) / 128;
  if (threadIdx.x == 0) s[sbr * KB + kb] = scale;
  for (int i = 0; i < br && rr0 + i < rpg; i++) {
    if (k < K) {
      unsigned short r;
      asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(0.0f), "f"(x[(g * rpg + rr0 + i) * K + k] / scale));
      q[(g * rpg + rr0 + i) * K + k] = (uint8_t)(r & 0xFF);
    }
  }
}

// fp64 reference for the sampled rows: ref = the contract's sum, bound = sum |a sa| |b sb|,
// unq = sum xa * xb (unquantized f32 inputs; skipped when xa is null). rowg[r]: group or < 0.
__global__ void reference_kernel(GemmFp8Params p, const int* rows, int nrows, const int* rowg, const float* xa, const float* xb,
                                 double* ref, double* bound, double* unq) {
  const int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (idx >= (int64_t)nrows * p.N) return;
  const int64_t sr = idx / p.N, n = idx % p.N, r = rows[sr];
  const int g = rowg[r];
  if (g < 0) return;
  const int64_t KB = (p.K + 127) / 128;
  double acc = 0, bnd = 0, u = 0;
  for (int64_t kb = 0; kb < KB; kb++) {
    const double sa = p.a_scales[r * KB + kb], sb = gemm_b_scale(p, g, n, kb, KB);
    double part = 0, pabs = 0;
    for (int64_t k = kb * 128; k < min(p.K, kb * 128 + 128); k++) {
      const double av = __uint_as_float(fp8_decode_bits<FP8_E4M3>(p.a[r * p.K + k]));
      const double bv = __uint_as_float(fp8_decode_bits<FP8_E4M3>(p.b[(g * p.N + n) * p.K + k]));
      part += av * bv;
      pabs += fabs(av * bv);
      if (xa) u += (double)xa[r * p.K + k] * (double)xb[(g * p.N + n) * p.K + k];
    }
    acc += part * (sa * sb);
    bnd += pabs * fabs(sa * sb);
  }
  if (p.c) acc += p.c[r * p.N + n];
  ref[idx] = acc;
  bound[idx] = bnd;
  unq[idx] = u;
}

struct CheckSums {
  unsigned long long fails, bad_special;
  double sxy, sxx;
  unsigned int max_ratio_bits;  // max err/bound as f32 bits (non-negative floats order as integers)
};

__device__ __forceinline__ float read_out(const GemmFp8Params& p, int64_t i) {
  return p.out_bf16 ? __uint_as_float((uint32_t)((const uint16_t*)p.out)[i] << 16) : ((const float*)p.out)[i];
}

__global__ void check_kernel(GemmFp8Params p, const int* rows, int nrows, const int* rowg, const double* ref, const double* bound,
                             const double* unq, double tol, CheckSums* sums) {
  const int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (idx >= (int64_t)nrows * p.N) return;
  const int64_t sr = idx / p.N, n = idx % p.N, r = rows[sr];
  const float o = read_out(p, r * p.N + n);
  const int g = rowg[r];
  if (g == -1 || g == -2) {
    const bool ok = g == -1 ? o == 0.0f && !signbit(o) : isnan(o);
    if (!ok) atomicAdd(&sums->bad_special, 1ull);
    return;
  }
  const double e = fabs((double)o - ref[idx]);
  double lim = tol * bound[idx] + 1e-30;
  if (p.out_bf16) lim += fabs(ref[idx]) * (1.0 / 256);
  if (p.c) lim += 1e-6 * fabs(ref[idx]);
  if (isnan(o) || !(e <= lim)) atomicAdd(&sums->fails, 1ull);
  if (!isnan(o) && bound[idx] > 0) atomicMax(&sums->max_ratio_bits, __float_as_uint((float)(e / bound[idx])));
  if (!p.c) {
    atomicAdd(&sums->sxy, (double)o * unq[idx]);
    atomicAdd(&sums->sxx, (double)o * o + unq[idx] * unq[idx]);
  }
}

// NaNs anywhere in the output (poisoned with NaN before the run: every element must be written)
__global__ void count_nan_kernel(GemmFp8Params p, unsigned long long* count) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < p.M * p.N; i += (int64_t)gridDim.x * blockDim.x)
    if (isnan(read_out(p, i))) atomicAdd(count, 1ull);
}

static unsigned blocks_for(int64_t n) { return (unsigned)std::max<int64_t>(1, std::min<int64_t>((n + 255) / 256, 132 * 16)); }

// ---------------------------------------------------------------- one correctness case

struct Case {
  std::string name;
  int mode;
  int64_t M, N, K, G, Mmax;
  int br;
  bool bf16, with_c;
  std::vector<int> row_groups;  // groupIndex [M] or maskedM [G]
};

// rowg[r]: group the row computes with, -1 zero row, -2 NaN row (the contract's semantics)
static std::vector<int> row_kinds(const Case& c) {
  std::vector<int> rg(c.M, 0);
  if (c.mode == GEMM_CONTIGUOUS) {
    for (int64_t b0 = 0; b0 < c.M; b0 += 128) {
      int bg = -1;
      for (int64_t r = b0; r < std::min(c.M, b0 + 128); r++)
        if (c.row_groups[r] != -1) { bg = c.row_groups[r]; break; }
      for (int64_t r = b0; r < std::min(c.M, b0 + 128); r++) {
        const int gi = c.row_groups[r];
        rg[r] = gi == -1 ? -1 : (bg < 0 || bg >= c.G || gi != bg) ? -2 : bg;
      }
    }
  } else if (c.mode == GEMM_MASKED) {
    for (int64_t r = 0; r < c.M; r++) {
      const int64_t g = r / c.Mmax;
      const int mm = c.row_groups[g];
      rg[r] = (mm < 0 || mm > c.Mmax) ? -2 : (r % c.Mmax) < mm ? (int)g : -1;
    }
  }
  return rg;
}

static int g_failures = 0;

static void run_case(const Case& c, int path, int bn, int max_rows, double tol) {
  const int64_t KB = (c.K + 127) / 128, rowsB = c.G * c.N;
  const int64_t sbRows = c.br == 128 ? c.G * ((c.N + 127) / 128) : rowsB;
  float *xa, *xb, *sa, *sb, *cc = nullptr;
  uint8_t *qa, *qb;
  void* out;
  int* d_rg = nullptr;
  CK(cudaMalloc(&xa, std::max<int64_t>(1, c.M * c.K) * 4));
  CK(cudaMalloc(&xb, std::max<int64_t>(1, rowsB * c.K) * 4));
  CK(cudaMalloc(&qa, std::max<int64_t>(1, c.M * c.K)));
  CK(cudaMalloc(&qb, std::max<int64_t>(1, rowsB * c.K)));
  CK(cudaMalloc(&sa, std::max<int64_t>(1, c.M * KB) * 4));
  CK(cudaMalloc(&sb, std::max<int64_t>(1, sbRows * KB) * 4));
  CK(cudaMalloc(&out, c.M * c.N * 4));
  fill_kernel<<<blocks_for(c.M * c.K), 256>>>(xa, c.M * c.K, std::max<int64_t>(1, c.K), ++g_seed);
  fill_kernel<<<blocks_for(rowsB * c.K), 256>>>(xb, rowsB * c.K, std::max<int64_t>(1, c.K), ++g_seed);
  if (c.with_c) {
    CK(cudaMalloc(&cc, c.M * c.N * 4));
    fill_kernel<<<blocks_for(c.M * c.N), 256>>>(cc, c.M * c.N, c.N, ++g_seed);
  }
  if (KB > 0) {
    quantize_kernel<<<dim3((unsigned)c.M, (unsigned)KB), 128>>>(xa, c.M, c.K, 1, qa, sa);
    quantize_kernel<<<dim3((unsigned)sbRows, (unsigned)KB), 128>>>(xb, c.N, c.K, c.br, qb, sb);
  }
  if (!c.row_groups.empty()) {
    CK(cudaMalloc(&d_rg, c.row_groups.size() * 4));
    CK(cudaMemcpy(d_rg, c.row_groups.data(), c.row_groups.size() * 4, cudaMemcpyHostToDevice));
  }
  CK(cudaMemset(out, 0xFF, c.M * c.N * 4));  // NaN poison (f32 and bf16)
  GemmFp8Params p{qa, sa, qb, sb, c.M, c.N, c.K, c.G, c.Mmax, c.br, c.mode, d_rg, cc, out, c.bf16};
  const int chosen = gemm_fp8_choose(p, path);
  CK(gemm_fp8_launch(p, 0, path, bn));
  CK(cudaDeviceSynchronize());

  // sampled rows (all when few), kinds, reference
  std::vector<int> kinds = row_kinds(c);
  std::vector<int> rows;
  if (c.M <= max_rows) {
    for (int64_t r = 0; r < c.M; r++) rows.push_back((int)r);
  } else {
    std::mt19937_64 rng(g_seed);
    for (int r = 0; r < max_rows / 4; r++) { rows.push_back(r); rows.push_back((int)(c.M - 1 - r)); }
    while ((int)rows.size() < max_rows) rows.push_back((int)(rng() % c.M));
  }
  int64_t expect_nan = 0;
  for (int64_t r = 0; r < c.M; r++) expect_nan += kinds[r] == -2 ? c.N : 0;
  int *d_rows, *d_kinds;
  double *ref, *bnd, *unq;
  CheckSums* sums;
  unsigned long long* nan_count;
  const int64_t ne = (int64_t)rows.size() * c.N;
  CK(cudaMalloc(&d_rows, rows.size() * 4));
  CK(cudaMalloc(&d_kinds, kinds.size() * 4));
  CK(cudaMalloc(&ref, ne * 8));
  CK(cudaMalloc(&bnd, ne * 8));
  CK(cudaMalloc(&unq, ne * 8));
  CK(cudaMalloc(&sums, sizeof(CheckSums)));
  CK(cudaMalloc(&nan_count, 8));
  CK(cudaMemset(sums, 0, sizeof(CheckSums)));
  CK(cudaMemset(nan_count, 0, 8));
  CK(cudaMemcpy(d_rows, rows.data(), rows.size() * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(d_kinds, kinds.data(), kinds.size() * 4, cudaMemcpyHostToDevice));
  reference_kernel<<<(unsigned)((ne + 255) / 256), 256>>>(p, d_rows, (int)rows.size(), d_kinds, xa, xb, ref, bnd, unq);
  check_kernel<<<(unsigned)((ne + 255) / 256), 256>>>(p, d_rows, (int)rows.size(), d_kinds, ref, bnd, unq, tol, sums);
  count_nan_kernel<<<blocks_for(c.M * c.N), 256>>>(p, nan_count);
  CK(cudaGetLastError());
  CheckSums h;
  unsigned long long h_nan;
  CK(cudaMemcpy(&h, sums, sizeof h, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(&h_nan, nan_count, 8, cudaMemcpyDeviceToHost));
  const double diff = h.sxx > 0 ? 1 - 2 * h.sxy / h.sxx : 0;
  float ratio;
  memcpy(&ratio, &h.max_ratio_bits, 4);
  const bool ok = h.fails == 0 && h.bad_special == 0 && (int64_t)h_nan == expect_nan && (c.with_c || c.M * c.N < 10000 || diff < 1e-3);  // diff: too noisy on a few elements
  if (!ok) g_failures++;
  printf("%-4s %-34s %-5s M=%-6lld N=%-5lld K=%-5lld G=%-2lld br=%-3d %s%s fails=%llu special=%llu nan=%llu/%lld maxerr/bound=%.2e diff=%.2e\n",
         ok ? "OK" : "FAIL", c.name.c_str(), chosen == GEMM_PATH_SM90 ? (bn == 64 ? "sm90n64" : "sm90") : "simt", (long long)c.M,
         (long long)c.N, (long long)c.K, (long long)c.G, c.br, c.bf16 ? "bf16" : "f32 ", c.with_c ? "+C" : "  ", h.fails, h.bad_special,
         h_nan, (long long)expect_nan, ratio, diff);
  for (void* q : {(void*)xa, (void*)xb, (void*)qa, (void*)qb, (void*)sa, (void*)sb, out, (void*)cc, (void*)d_rg, (void*)d_rows,
                  (void*)d_kinds, (void*)ref, (void*)bnd, (void*)unq, (void*)sums, (void*)nan_count})
    if (q) CK(cudaFree(q));
}

// ---------------------------------------------------------------- matmul / transpose checks (CPU fp64 reference)

static float bf16_val(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }

static void check_matmul(int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool in_bf16, bool with_c, bool out_bf16) {
  std::mt19937 rng((unsigned)++g_seed);
  std::uniform_real_distribution<float> U(-1, 1);
  std::vector<float> a(M * K), b(K * N), c(M * N);
  std::vector<uint16_t> ah(M * K), bh(K * N);
  auto round_bf = [](float f, uint16_t* h) { uint32_t u; memcpy(&u, &f, 4); *h = (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16); return bf16_val(*h); };
  for (int64_t i = 0; i < M * K; i++) { a[i] = U(rng); if (in_bf16) a[i] = round_bf(a[i], &ah[i]); }
  for (int64_t i = 0; i < K * N; i++) { b[i] = U(rng); if (in_bf16) b[i] = round_bf(b[i], &bh[i]); }
  for (auto& v : c) v = U(rng);
  void *da, *db, *dout;
  float* dc = nullptr;
  const size_t es = in_bf16 ? 2 : 4;
  CK(cudaMalloc(&da, M * K * es)); CK(cudaMalloc(&db, K * N * es)); CK(cudaMalloc(&dout, M * N * 4));
  CK(cudaMemcpy(da, in_bf16 ? (void*)ah.data() : (void*)a.data(), M * K * es, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(db, in_bf16 ? (void*)bh.data() : (void*)b.data(), K * N * es, cudaMemcpyHostToDevice));
  if (with_c) { CK(cudaMalloc(&dc, M * N * 4)); CK(cudaMemcpy(dc, c.data(), M * N * 4, cudaMemcpyHostToDevice)); }
  CK(cudaMemset(dout, 0xFF, M * N * 4));
  CK(matmul_launch(da, db, in_bf16, M, N, K, ta, tb, dc, dout, out_bf16, 0));
  CK(cudaDeviceSynchronize());
  std::vector<float> o(M * N);
  std::vector<uint16_t> oh(M * N);
  if (out_bf16) { CK(cudaMemcpy(oh.data(), dout, M * N * 2, cudaMemcpyDeviceToHost)); for (int64_t i = 0; i < M * N; i++) o[i] = bf16_val(oh[i]); }
  else CK(cudaMemcpy(o.data(), dout, M * N * 4, cudaMemcpyDeviceToHost));
  // a stored [M,K] or [K,M] (ta); b stored [K,N] or [N,K] (tb): the host arrays hold the stored layout
  int64_t fails = 0; double worst = 0;
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = 0, sb = 0;
      for (int64_t k = 0; k < K; k++) {
        const double x = ta ? a[k * M + m] : a[m * K + k], y = tb ? b[n * K + k] : b[k * N + n];
        s += x * y; sb += fabs(x * y);
      }
      if (with_c) { s += c[m * N + n]; sb += fabs(c[m * N + n]); }
      const double e = fabs(o[m * N + n] - s), lim = 1e-5 * sb + (out_bf16 ? fabs(s) / 256 : 0) + 1e-30;
      if (!(e <= lim)) fails++;
      if (sb > 0) worst = std::max(worst, e / sb);
    }
  if (fails) g_failures++;
  printf("%-4s matmul M=%lld N=%lld K=%lld transA=%d transB=%d in=%s C=%d out=%s fails=%lld maxerr/bound=%.2e\n", fails ? "FAIL" : "OK",
         (long long)M, (long long)N, (long long)K, ta, tb, in_bf16 ? "bf16" : "f32", with_c, out_bf16 ? "bf16" : "f32", (long long)fails, worst);
  CK(cudaFree(da)); CK(cudaFree(db)); CK(cudaFree(dout)); if (dc) CK(cudaFree(dc));
}

static void check_transpose(int64_t R, int64_t C, int es) {
  std::vector<uint8_t> x(R * C * es), o(R * C * es);
  std::mt19937 rng((unsigned)++g_seed);
  for (auto& v : x) v = (uint8_t)rng();
  void *dx, *dout;
  CK(cudaMalloc(&dx, std::max<int64_t>(1, R * C * es))); CK(cudaMalloc(&dout, std::max<int64_t>(1, R * C * es)));
  CK(cudaMemcpy(dx, x.data(), R * C * es, cudaMemcpyHostToDevice));
  CK(cudaMemset(dout, 0xAB, R * C * es));
  CK(transpose_launch(dx, R, C, es, dout, 0));
  CK(cudaMemcpy(o.data(), dout, R * C * es, cudaMemcpyDeviceToHost));
  int64_t fails = 0;
  for (int64_t r = 0; r < R; r++)
    for (int64_t c = 0; c < C; c++)
      if (memcmp(&o[(c * R + r) * es], &x[(r * C + c) * es], es)) fails++;
  if (fails) g_failures++;
  printf("%-4s transpose R=%lld C=%lld bytes=%d fails=%lld\n", fails ? "FAIL" : "OK", (long long)R, (long long)C, es, (long long)fails);
  CK(cudaFree(dx)); CK(cudaFree(dout));
}

// ---------------------------------------------------------------- timing

static float median(std::vector<float> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; }

// TFLOP/s of the auto-chosen kernel (bf16 out, 128x128 B blocks) over rotating input sets
static double time_gemm(FILE* csv, const char* label, int mode, int64_t M, int64_t N, int64_t K, int64_t G, int path) {
  const int64_t KB = (K + 127) / 128;
  const int64_t bytes = M * K + G * N * K;
  const int sets = (int)std::max<int64_t>(1, std::min<int64_t>(8, (200ll << 20) / std::max<int64_t>(1, bytes) + 1));
  std::vector<GemmFp8Params> ps;
  std::vector<void*> bufs;
  int* d_rg = nullptr;
  if (mode == GEMM_CONTIGUOUS) {  // equal contiguous segments: rows [g*M/G, (g+1)*M/G) use group g
    std::vector<int> gi(M);
    for (int64_t r = 0; r < M; r++) gi[r] = (int)(r / (M / G));
    CK(cudaMalloc(&d_rg, M * 4));
    CK(cudaMemcpy(d_rg, gi.data(), M * 4, cudaMemcpyHostToDevice));
  }
  void* out;
  CK(cudaMalloc(&out, M * N * 2));
  for (int s = 0; s < sets; s++) {
    uint8_t *qa, *qb;
    float *sa, *sb;
    CK(cudaMalloc(&qa, M * K)); CK(cudaMalloc(&qb, G * N * K));
    CK(cudaMalloc(&sa, M * KB * 4)); CK(cudaMalloc(&sb, G * ((N + 127) / 128) * KB * 4));
    fill_codes_kernel<<<blocks_for(M * K), 256>>>(qa, M * K, ++g_seed * 1000003);
    fill_codes_kernel<<<blocks_for(G * N * K), 256>>>(qb, G * N * K, ++g_seed * 1000003);
    fill_scales_kernel<<<blocks_for(M * KB), 256>>>(sa, M * KB, ++g_seed);
    fill_scales_kernel<<<blocks_for(G * ((N + 127) / 128) * KB), 256>>>(sb, G * ((N + 127) / 128) * KB, ++g_seed);
    bufs.insert(bufs.end(), {(void*)qa, (void*)qb, (void*)sa, (void*)sb});
    ps.push_back(GemmFp8Params{qa, sa, qb, sb, M, N, K, G, mode == GEMM_NONE ? M : M, 128, mode, d_rg, nullptr, out, true});
  }
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
  int it = 0;
  auto once = [&]() -> float {
    CK(cudaEventRecord(e0));
    CK(gemm_fp8_launch(ps[it++ % sets], 0, path));
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    return ms;
  };
  float warm = 0;
  for (int i = 0; i < 3; i++) warm = once();
  const int reps = std::max(5, std::min(100, (int)(300.0f / std::max(warm, 1e-3f))));
  std::vector<float> t;
  for (int i = 0; i < reps; i++) t.push_back(once());
  const float ms = median(t);
  const double tflops = 2.0 * M * N * K / (ms * 1e-3) / 1e12;
  printf("time %-10s %-5s M=%-6lld N=%-6lld K=%-6lld G=%-2lld  %9.4f ms  %7.1f TFLOP/s\n", label, path == GEMM_PATH_SIMT ? "simt" : "auto",
         (long long)M, (long long)N, (long long)K, (long long)G, ms, tflops);
  if (csv) fprintf(csv, "%s,%lld,%lld,%lld,%lld,%.5f,%.2f\n", label, (long long)M, (long long)N, (long long)K, (long long)G, ms, tflops);
  CK(cudaEventDestroy(e0)); CK(cudaEventDestroy(e1));
  for (void* b : bufs) CK(cudaFree(b));
  CK(cudaFree(out));
  if (d_rg) CK(cudaFree(d_rg));
  return tflops;
}

int main(int argc, char** argv) {
  const char* csv_path = argc > 1 ? argv[1] : "gemm_cuda.csv";
  const bool quick = argc > 2 && std::string(argv[2]) == "quick";
  g_seed = (uint64_t)time(nullptr);
  CK(cudaFree(0));
  printf("sm90a path available: %d (probe kernel reports the sm_90a cubin)\n", (int)gemm_sm90a_available());
  const double TOL_TC = 2e-3, TOL_SIMT = 1e-5;

  // ---- FP8 'none': ragged shapes, both B scale layouts, f32/bf16, +C, both paths
  struct S { int64_t M, N, K; };
  const S shapes[] = {{1, 96, 256}, {64, 200, 384}, {128, 256, 7168 / 4}, {129, 130, 1000}, {300, 1000, 336}, {4096, 2112, 7168}, {77, 129, 200}};
  for (const S& s : shapes) {
    for (int br : {128, 1}) {
      for (int path : {GEMM_PATH_AUTO, GEMM_PATH_SIMT}) {
        if (path == GEMM_PATH_SIMT && s.M * s.N * s.K > (int64_t)1 << 33) continue;
        const double tol = path == GEMM_PATH_SIMT || s.K % 16 ? TOL_SIMT : TOL_TC;
        run_case({"none", GEMM_NONE, s.M, s.N, s.K, 1, s.M, br, false, false, {}}, path, 0, 256, tol);
        run_case({"none bf16", GEMM_NONE, s.M, s.N, s.K, 1, s.M, br, true, false, {}}, path, 0, 256, tol);
        run_case({"none +C", GEMM_NONE, s.M, s.N, s.K, 1, s.M, br, false, true, {}}, path, 0, 256, tol);
      }
    }
  }
  // the 64-wide N tile on a ragged shape
  run_case({"none bn64", GEMM_NONE, 200, 333, 640, 1, 200, 128, false, false, {}}, GEMM_PATH_AUTO, 64, 256, TOL_TC);
  run_case({"none bn64 1x128", GEMM_NONE, 200, 333, 640, 1, 200, 1, true, false, {}}, GEMM_PATH_AUTO, 64, 256, TOL_TC);
  run_case({"none K=0", GEMM_NONE, 5, 7, 0, 1, 5, 128, false, true, {}}, GEMM_PATH_AUTO, 0, 256, TOL_SIMT);

  // ---- contiguous: G=5; group 1 empty; an all-padding block; partial padding; a 1-row group
  {
    std::vector<int> gi;
    auto seg = [&](int g, int valid, int padded) { for (int i = 0; i < padded; i++) gi.push_back(i < valid ? g : -1); };
    seg(0, 200, 256); seg(-1, 0, 128); seg(2, 128, 128); seg(3, 1, 128); seg(4, 300, 384); seg(0, 17, 128);
    const int64_t M = gi.size();
    for (int br : {128, 1})
      for (int path : {GEMM_PATH_AUTO, GEMM_PATH_SIMT})
        for (int64_t NK : {0, 1}) {
          const int64_t N = NK ? 520 : 256, K = NK ? 1040 : 512;
          run_case({"contiguous", GEMM_CONTIGUOUS, M, N, K, 5, M, br, NK == 1, false, gi}, path, 0, 100000,
                   path == GEMM_PATH_SIMT ? TOL_SIMT : TOL_TC);
        }
    // bad indices: a row >= G, a row < -1, a row of another group, a block whose first row is bad
    std::vector<int> bad = gi;
    bad[5] = 5; bad[300] = -7; bad[400] = 3; bad[512] = 9;
    for (int path : {GEMM_PATH_AUTO, GEMM_PATH_SIMT})
      run_case({"contiguous bad indices", GEMM_CONTIGUOUS, M, 256, 512, 5, M, 128, false, false, bad}, path, 0, 100000,
               path == GEMM_PATH_SIMT ? TOL_SIMT : TOL_TC);
  }
  // ---- masked: G=4, Mmax=200; maskedM 0, 200, 77, 1; then one invalid (201)
  for (int br : {128, 1})
    for (int path : {GEMM_PATH_AUTO, GEMM_PATH_SIMT}) {
      run_case({"masked", GEMM_MASKED, 800, 384, 768, 4, 200, br, br == 1, false, {0, 200, 77, 1}}, path, 0, 100000,
               path == GEMM_PATH_SIMT ? TOL_SIMT : TOL_TC);
      run_case({"masked invalid", GEMM_MASKED, 800, 300, 512, 4, 200, br, false, false, {5, 201, -1, 130}}, path, 0, 100000,
               path == GEMM_PATH_SIMT ? TOL_SIMT : TOL_TC);
    }

  // ---- matmul, transpose
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      check_matmul(77, 65, 129, ta, tb, false, false, false);
      check_matmul(64, 128, 256, ta, tb, true, true, false);
      check_matmul(1, 33, 70, ta, tb, false, true, true);
    }
  for (int es : {1, 2, 4}) { check_transpose(1, 1, es); check_transpose(33, 70, es); check_transpose(1000, 257, es); }

  printf("correctness: %d failure(s)\n", g_failures);
  if (quick) return g_failures ? 1 : 0;

  // ---- correctness at a few timed shapes (sampled rows), then timing
  run_case({"check 4096x7168x16384", GEMM_NONE, 4096, 7168, 16384, 1, 4096, 128, true, false, {}}, GEMM_PATH_AUTO, 0, 32, TOL_TC);
  run_case({"check 64x2112x7168", GEMM_NONE, 64, 2112, 7168, 1, 64, 128, true, false, {}}, GEMM_PATH_AUTO, 0, 64, TOL_TC);
  FILE* csv = fopen(csv_path, "w");
  fprintf(csv, "label,M,N,K,G,ms,tflops\n");
  const int64_t NKs[][2] = {{2112, 7168}, {24576, 1536}, {7168, 2048}, {4096, 7168}, {7168, 16384}};
  for (int64_t M : {64, 128, 4096})
    for (auto& nk : NKs) time_gemm(csv, "dense", GEMM_NONE, M, nk[0], nk[1], 1, GEMM_PATH_AUTO);
  time_gemm(csv, "dense", GEMM_NONE, 8192, 8192, 8192, 1, GEMM_PATH_AUTO);
  time_gemm(csv, "contig", GEMM_CONTIGUOUS, 4 * 8192, 4096, 7168, 4, GEMM_PATH_AUTO);
  time_gemm(csv, "contig", GEMM_CONTIGUOUS, 8 * 4096, 4096, 7168, 8, GEMM_PATH_AUTO);
  time_gemm(nullptr, "dense", GEMM_NONE, 4096, 7168, 16384, 1, GEMM_PATH_SIMT);
  fclose(csv);
  printf("correctness: %d failure(s)\n", g_failures);
  return g_failures ? 1 : 0;
}
