// Standalone GPU harness for the cuda backend's GEMM kernels (no Node): correctness of every
// kernel / grouping / output against an fp64 reference, DeepGEMM's diff metric against the fp32
// product of the unquantized inputs, and TFLOP/s at the brief's shapes (CSV for bench_torch.py).
// Gathered A rows (GemmFp8Params.a_pairs): checked against the same reference on the explicitly
// gathered A, and bit for bit against the kernel run on that A; timed against materialise + GEMM.
// Build and run: native/cuda/dev/gemm_check.sh (needs an sm_90a GPU for the fast path).
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuda/gemm_launch.cuh"
#include "cuda/matmul.cuh"
#include "dev_check.cuh"
#include "dev_hash.cuh"

using namespace hp;

static uint64_t g_seed = 0;


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

// dst[m] = src[pairs[m] / k] for m < M (rows of row_elems T's), a zero row for an id outside
// [0, src_rows * k): the materialised expert order (what moe's permuteBytes / permute write).
template <typename T>
__global__ void gather_rows_kernel(const T* src, int64_t src_rows, int64_t row_elems, const int* pairs, int k, int64_t M, T* dst) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < M * row_elems; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t m = i / row_elems, e = i % row_elems;
    const int id = pairs[m];
    T v{};
    if (id >= 0 && id < src_rows * k) v = src[(id / k) * row_elems + e];
    dst[i] = v;
  }
}

static unsigned blocks_for(int64_t n);

// gather_rows_kernel over rows of row_bytes bytes (16-byte units when the rows allow)
static void gather_rows(const void* src, int64_t src_rows, int64_t row_bytes, const int* pairs, int k, int64_t M, void* dst, cudaStream_t stream = 0) {
  if (row_bytes % 16 == 0) {
    gather_rows_kernel<uint4><<<blocks_for(M * row_bytes / 16), 256, 0, stream>>>((const uint4*)src, src_rows, row_bytes / 16, pairs, k, M, (uint4*)dst);
  } else {
    gather_rows_kernel<uint8_t><<<blocks_for(M * row_bytes), 256, 0, stream>>>((const uint8_t*)src, src_rows, row_bytes, pairs, k, M, (uint8_t*)dst);
  }
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
  // gathered A rows (contiguous): A is [R, K] and row m reads A row pairs[m] / k (R < 0: no gather)
  int64_t R = -1;
  int k = 1;
  std::vector<int> pairs;  // [M]
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
  const bool gather = c.R >= 0;
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
  // gather: the source rows xs/qs/ss [R, ...]; xa/qa/sa become the explicitly gathered A [M, ...]
  float *xs = nullptr, *ss = nullptr;
  uint8_t* qs = nullptr;
  int* d_pairs = nullptr;
  if (gather) {
    CK(cudaMalloc(&xs, std::max<int64_t>(1, c.R * c.K) * 4));
    CK(cudaMalloc(&qs, std::max<int64_t>(1, c.R * c.K)));
    CK(cudaMalloc(&ss, std::max<int64_t>(1, c.R * KB) * 4));
    CK(cudaMalloc(&d_pairs, std::max<size_t>(1, c.pairs.size()) * 4));
    CK(cudaMemcpy(d_pairs, c.pairs.data(), c.pairs.size() * 4, cudaMemcpyHostToDevice));
    fill_kernel<<<blocks_for(c.R * c.K), 256>>>(xs, c.R * c.K, std::max<int64_t>(1, c.K), ++g_seed);
    if (KB > 0 && c.R > 0) quantize_kernel<<<dim3((unsigned)c.R, (unsigned)KB), 128>>>(xs, c.R, c.K, 1, qs, ss);
    gather_rows(xs, c.R, c.K * 4, d_pairs, c.k, c.M, xa);
    gather_rows(qs, c.R, c.K, d_pairs, c.k, c.M, qa);
    gather_rows(ss, c.R, KB * 4, d_pairs, c.k, c.M, sa);
  } else {
    fill_kernel<<<blocks_for(c.M * c.K), 256>>>(xa, c.M * c.K, std::max<int64_t>(1, c.K), ++g_seed);
  }
  fill_kernel<<<blocks_for(rowsB * c.K), 256>>>(xb, rowsB * c.K, std::max<int64_t>(1, c.K), ++g_seed);
  if (c.with_c) {
    CK(cudaMalloc(&cc, c.M * c.N * 4));
    fill_kernel<<<blocks_for(c.M * c.N), 256>>>(cc, c.M * c.N, c.N, ++g_seed);
  }
  if (KB > 0) {
    if (!gather) quantize_kernel<<<dim3((unsigned)c.M, (unsigned)KB), 128>>>(xa, c.M, c.K, 1, qa, sa);
    quantize_kernel<<<dim3((unsigned)sbRows, (unsigned)KB), 128>>>(xb, c.N, c.K, c.br, qb, sb);
  }
  if (!c.row_groups.empty()) {
    CK(cudaMalloc(&d_rg, c.row_groups.size() * 4));
    CK(cudaMemcpy(d_rg, c.row_groups.data(), c.row_groups.size() * 4, cudaMemcpyHostToDevice));
  }
  CK(cudaMemset(out, 0xFF, c.M * c.N * 4));  // NaN poison (f32 and bf16)
  // p: the explicit A (what the reference and the checks read); run: the call under test
  GemmFp8Params p{qa, sa, qb, sb, c.M, c.N, c.K, c.G, c.Mmax, c.br, c.mode, d_rg, cc, out, c.bf16};
  GemmFp8Params run = p;
  if (gather) {
    run.a = qs;
    run.a_scales = ss;
    run.a_pairs = d_pairs;
    run.a_k = c.k;
    run.a_rows = c.R;
  }
  const int chosen = gemm_fp8_choose(run, path);
  CK(gemm_fp8_launch(run, 0, path, bn));
  CK(cudaDeviceSynchronize());
  // gather: the same kernel on the explicitly gathered A must give the same bits
  unsigned long long bit_diffs = 0;
  if (gather) {
    void* out2;
    CK(cudaMalloc(&out2, c.M * c.N * 4));
    CK(cudaMemset(out2, 0xFF, c.M * c.N * 4));
    GemmFp8Params q = p;
    q.out = out2;
    CK(gemm_fp8_launch(q, 0, path, bn));
    std::vector<uint8_t> h1(c.M * c.N * 4), h2(c.M * c.N * 4);
    CK(cudaMemcpy(h1.data(), out, h1.size(), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(h2.data(), out2, h2.size(), cudaMemcpyDeviceToHost));
    const size_t es = c.bf16 ? 2 : 4;
    for (size_t i = 0; i < (size_t)(c.M * c.N); i++) bit_diffs += memcmp(&h1[i * es], &h2[i * es], es) != 0;
    CK(cudaFree(out2));
  }

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
  // diff: too noisy on a few independent outputs. A gathered A has at most R distinct rows (R = 1: every
  // output row is the same row's product, its quantization noise not averaged), so count R rows there.
  const int64_t independent = (gather ? std::min<int64_t>(c.R, c.M) : c.M) * c.N;
  const bool ok = h.fails == 0 && h.bad_special == 0 && (int64_t)h_nan == expect_nan && (c.with_c || independent < 10000 || diff < 1e-3) &&
                  bit_diffs == 0;
  if (!ok) g_failures++;
  printf("%-4s %-34s %-5s M=%-6lld N=%-5lld K=%-5lld G=%-2lld br=%-3d %s%s fails=%llu special=%llu nan=%llu/%lld maxerr/bound=%.2e diff=%.2e",
         ok ? "OK" : "FAIL", c.name.c_str(), chosen == GEMM_PATH_SM90 ? (bn == 64 ? "sm90n64" : "sm90") : "simt", (long long)c.M,
         (long long)c.N, (long long)c.K, (long long)c.G, c.br, c.bf16 ? "bf16" : "f32 ", c.with_c ? "+C" : "  ", h.fails, h.bad_special,
         h_nan, (long long)expect_nan, ratio, diff);
  if (gather) printf(" R=%lld k=%d bits-vs-explicit-A=%llu", (long long)c.R, c.k, bit_diffs);
  printf("\n");
  for (void* q : {(void*)xa, (void*)xb, (void*)qa, (void*)qb, (void*)sa, (void*)sb, out, (void*)cc, (void*)d_rg, (void*)d_rows,
                  (void*)d_kinds, (void*)ref, (void*)bnd, (void*)unq, (void*)sums, (void*)nan_count, (void*)xs, (void*)qs, (void*)ss,
                  (void*)d_pairs})
    if (q) CK(cudaFree(q));
}

// Pair ids for a contiguous groupIndex gi (align's sortedPairs over R rows of k slots): real ids with
// repeats (a few drawn often), and on ~1 in 8 computed rows an id outside [0, R*k) (the sentinel R*k,
// -1, past it, INT_MAX); padding rows get the sentinel, or now and then a real id (still a zero row).
static std::vector<int> gathered_pairs(const std::vector<int>& gi, int64_t R, int k) {
  std::mt19937_64 rng(++g_seed);
  const int64_t n = R * k;
  const int often[3] = {n ? (int)(rng() % n) : 0, n ? (int)(rng() % n) : 0, n ? (int)(rng() % n) : 0};
  const int outside[4] = {(int)n, -1, (int)n + 3, 0x7FFFFFFF};
  std::vector<int> pairs(gi.size());
  for (size_t m = 0; m < gi.size(); m++) {
    const unsigned u = (unsigned)(rng() % 16);
    if (n == 0) pairs[m] = 0;  // the sentinel R*k = 0: every row reads zeros
    else if (gi[m] == -1) pairs[m] = u < 13 ? (int)n : (int)(rng() % n);
    else if (u == 15) pairs[m] = outside[rng() % 4];
    else pairs[m] = u < 5 ? often[rng() % 3] : (int)(rng() % n);
  }
  return pairs;
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

// Median ms of launch() between two CUDA events, after 3 warm-up runs; 5 to 100 runs (about 300 ms).
template <class F>
static float median_ms(F launch) {
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
  auto once = [&] { return event_ms(e0, e1, launch); };
  float warm = 0;
  for (int i = 0; i < 3; i++) warm = once();
  const int reps = std::max(5, std::min(100, (int)(300.0f / std::max(warm, 1e-3f))));
  std::vector<float> t;
  for (int i = 0; i < reps; i++) t.push_back(once());
  CK(cudaEventDestroy(e0)); CK(cudaEventDestroy(e1));
  return median_of(t);
}

// Medians of each launch's ms, timed in turns (one call of each per round, `rounds` rounds after one
// warm-up round), and the median over rounds of each one's time over the first one's in the same round.
// An H100 running FP8 GEMMs sits at its 700 W cap, and its clock swings between ~1.1 and 1.98 GHz
// over ~2 s; timed one after another for ~300 ms each (median_ms), two kernels land in different
// phases of that swing and their ratio reads up to ~15% off (bench/RESULTS.md, 2026-11-23).
static std::vector<std::pair<float, float>> interleaved_ms(const std::vector<std::function<void()>>& launches, int rounds) {
  const size_t n = launches.size();
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
  std::vector<std::vector<float>> t(n), ratio(n);
  for (int r = -1; r < rounds; r++) {
    std::vector<float> round(n);
    for (size_t i = 0; i < n; i++) round[i] = event_ms(e0, e1, launches[i]);
    if (r < 0) continue;
    for (size_t i = 0; i < n; i++) {
      t[i].push_back(round[i]);
      ratio[i].push_back(round[i] / round[0]);
    }
  }
  CK(cudaEventDestroy(e0)); CK(cudaEventDestroy(e1));
  std::vector<std::pair<float, float>> out;
  for (size_t i = 0; i < n; i++) out.push_back({median_of(t[i]), median_of(ratio[i])});
  return out;
}

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
  int it = 0;
  const float ms = median_ms([&] { CK(gemm_fp8_launch(ps[it++ % sets], 0, path)); });
  const double tflops = 2.0 * M * N * K / (ms * 1e-3) / 1e12;
  printf("time %-10s %-5s M=%-6lld N=%-6lld K=%-6lld G=%-2lld  %9.4f ms  %7.1f TFLOP/s\n", label, path == GEMM_PATH_SIMT ? "simt" : "auto",
         (long long)M, (long long)N, (long long)K, (long long)G, ms, tflops);
  if (csv) fprintf(csv, "%s,%lld,%lld,%lld,%lld,%.5f,%.2f\n", label, (long long)M, (long long)N, (long long)K, (long long)G, ms, tflops);
  for (void* b : bufs) CK(cudaFree(b));
  CK(cudaFree(out));
  if (d_rg) CK(cudaFree(d_rg));
  return tflops;
}

// The gathered grouped GEMM against materialise + GEMM at a MoE layer's shape: T tokens of k slots,
// each slot a random expert of E (distinct within a token); this rank holds experts [0, G) and
// receives the R tokens with at least one of them, once each (row q: pair ids q*k + slot). Their
// pairs come in expert order (ascending pair id inside one), each expert padded to a multiple of 128
// rows (sentinel R*k, group -1), as moe align lays them out. Times the gathered GEMM, the
// materialisation alone (codes and scales into expert order: gather_rows, a 16-byte row copy like
// permuteBytes), the GEMM on the materialised A, and materialise + GEMM; TFLOP/s count 2*M_sum*N*K with
// the padding rows, as the contig timings do. Both GEMMs must give the same bits.
// profile: after the bit check, one launch each of the gathered, TMA and in-order kernels, no timing.
static void time_gathered(int64_t T, int k, int E, int64_t G, int64_t N, int64_t K, bool profile = false) {
  const int64_t KB = (K + 127) / 128;
  std::mt19937_64 rng(++g_seed);
  std::vector<std::vector<int>> per(G);
  std::vector<int> experts(E);
  int64_t R = 0;  // rows received
  for (int64_t t = 0; t < T; t++) {
    for (int e = 0; e < E; e++) experts[e] = e;
    bool here = false;
    for (int j = 0; j < k; j++) {  // k distinct experts: a partial Fisher-Yates shuffle
      std::swap(experts[j], experts[j + rng() % (E - j)]);
      if (experts[j] < G) {
        per[experts[j]].push_back((int)(R * k + j));
        here = true;
      }
    }
    R += here;
  }
  std::vector<int> gi, pairs;
  for (int64_t g = 0; g < G; g++) {
    const int64_t n = (int64_t)per[g].size();
    for (int64_t i = 0; i < (n + 127) / 128 * 128; i++) {
      gi.push_back(i < n ? (int)g : -1);
      pairs.push_back(i < n ? per[g][i] : (int)(R * k));
    }
  }
  const int64_t M = (int64_t)gi.size();
  uint8_t *qs, *qb, *qa;
  float *ss, *sb, *sa;
  int *d_gi, *d_pairs;
  void *out, *out2;
  CK(cudaMalloc(&qs, R * K)); CK(cudaMalloc(&ss, R * KB * 4));
  CK(cudaMalloc(&qb, G * N * K)); CK(cudaMalloc(&sb, G * ((N + 127) / 128) * KB * 4));
  CK(cudaMalloc(&qa, M * K)); CK(cudaMalloc(&sa, M * KB * 4));
  CK(cudaMalloc(&d_gi, M * 4)); CK(cudaMalloc(&d_pairs, M * 4));
  CK(cudaMalloc(&out, M * N * 2)); CK(cudaMalloc(&out2, M * N * 2));
  fill_codes_kernel<<<blocks_for(R * K), 256>>>(qs, R * K, ++g_seed * 1000003);
  fill_codes_kernel<<<blocks_for(G * N * K), 256>>>(qb, G * N * K, ++g_seed * 1000003);
  fill_scales_kernel<<<blocks_for(R * KB), 256>>>(ss, R * KB, ++g_seed);
  fill_scales_kernel<<<blocks_for(G * ((N + 127) / 128) * KB), 256>>>(sb, G * ((N + 127) / 128) * KB, ++g_seed);
  CK(cudaMemcpy(d_gi, gi.data(), M * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(d_pairs, pairs.data(), M * 4, cudaMemcpyHostToDevice));
  GemmFp8Params pm{qa, sa, qb, sb, M, N, K, G, M, 128, GEMM_CONTIGUOUS, d_gi, nullptr, out2, true};  // on the materialised A
  GemmFp8Params pg = pm;  // gathered
  pg.a = qs;
  pg.a_scales = ss;
  pg.a_pairs = d_pairs;
  pg.a_k = k;
  pg.a_rows = R;
  pg.out = out;
  auto materialise = [&] {
    gather_rows(qs, R, K, d_pairs, k, M, qa);
    gather_rows(ss, R, KB * 4, d_pairs, k, M, sa);
  };
  // the same bits both ways
  CK(cudaMemset(out, 0xFF, M * N * 2));
  CK(cudaMemset(out2, 0xFF, M * N * 2));
  materialise();
  CK(gemm_fp8_launch(pg, 0));
  CK(gemm_fp8_launch(pm, 0));
  std::vector<uint16_t> h1(M * N), h2(M * N);
  CK(cudaMemcpy(h1.data(), out, M * N * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(h2.data(), out2, M * N * 2, cudaMemcpyDeviceToHost));
  int64_t diffs = 0;
  for (int64_t i = 0; i < M * N; i++) diffs += h1[i] != h2[i];
  if (diffs) g_failures++;
  // the gathered kernel reading the materialised A in order (pair m*k for row m): what the copies
  // cost apart from where the rows lie
  std::vector<int> ident(M);
  for (int64_t m = 0; m < M; m++) ident[m] = gi[m] >= 0 ? (int)(m * k) : (int)(M * k);
  int* d_ident;
  CK(cudaMalloc(&d_ident, M * 4));
  CK(cudaMemcpy(d_ident, ident.data(), M * 4, cudaMemcpyHostToDevice));
  GemmFp8Params pi = pm;
  pi.a_pairs = d_ident;
  pi.a_k = k;
  pi.a_rows = M;
  if (profile) {  // one more launch of each for ncu: gathered, TMA on the materialised A, gathered in order
    CK(gemm_fp8_launch(pg, 0));
    CK(gemm_fp8_launch(pm, 0));
    CK(gemm_fp8_launch(pi, 0));
    CK(cudaDeviceSynchronize());
    printf("%-4s profile launches; gathered and materialised bits differ in %lld of %lld outputs\n", diffs ? "FAIL" : "OK", (long long)diffs, (long long)(M * N));
  } else {
    // in turns (interleaved_ms): 300 rounds of the five, ~5 s at this shape; ratios are medians of
    // the same round's times over the gathered GEMM's
    const double flop = 2.0 * M * N * K;
    const auto ts = interleaved_ms({[&] { CK(gemm_fp8_launch(pg, 0)); }, [&] { CK(gemm_fp8_launch(pi, 0)); }, materialise,
                                    [&] { CK(gemm_fp8_launch(pm, 0)); }, [&] { materialise(); CK(gemm_fp8_launch(pm, 0)); }},
                                   300);
    const float t_g = ts[0].first, t_i = ts[1].first, t_mat = ts[2].first, t_m = ts[3].first, t_mg = ts[4].first;
    const char* kernel = gemm_fp8_choose(pg, GEMM_PATH_AUTO) == GEMM_PATH_SM90 ? "sm90" : "simt";
    printf("time gathered %-4s R=%lld k=%d E=%d G=%lld M_sum=%lld (%lld real) N=%lld K=%lld\n", kernel, (long long)R, k, E, (long long)G, (long long)M,
           (long long)std::count_if(gi.begin(), gi.end(), [](int g) { return g >= 0; }), (long long)N, (long long)K);
    printf("     gathered GEMM                  %9.4f ms  %7.1f TFLOP/s\n", t_g, flop / (t_g * 1e-3) / 1e12);
    printf("     gathered kernel, rows in order %9.4f ms  %7.1f TFLOP/s\n", t_i, flop / (t_i * 1e-3) / 1e12);
    printf("     materialise (codes+scales)     %9.4f ms\n", t_mat);
    printf("     GEMM on materialised A         %9.4f ms  %7.1f TFLOP/s\n", t_m, flop / (t_m * 1e-3) / 1e12);
    printf("     materialise + GEMM             %9.4f ms  %7.1f TFLOP/s\n", t_mg, flop / (t_mg * 1e-3) / 1e12);
    printf("%-4s gathered speed (same-round ratios): %.3fx GEMM on materialised A, %.3fx materialise + GEMM (> 1: gathered faster); bits differ in %lld of %lld outputs\n",
           diffs ? "FAIL" : "OK", ts[3].second, ts[4].second, (long long)diffs, (long long)(M * N));
  }
  for (void* q : {(void*)qs, (void*)ss, (void*)qb, (void*)sb, (void*)qa, (void*)sa, (void*)d_gi, (void*)d_pairs, (void*)d_ident, out, out2}) CK(cudaFree(q));
}

int main(int argc, char** argv) {
  const char* csv_path = argc > 1 ? argv[1] : "gemm_cuda.csv";
  const bool quick = argc > 2 && std::string(argv[2]) == "quick";
  const bool gathered_only = argc > 2 && std::string(argv[2]) == "gathered";  // the correctness cases, then the gathered timing alone
  g_seed = (uint64_t)time(nullptr);
  CK(cudaFree(0));
  // gathered A rows vs materialise + GEMM: DeepSeek-V3's 256 experts, top-8, hidden 7168, N = 4096,
  // M_sum about 32768 rows: 2 ranks (128 experts each, 8192 tokens) and 8 ranks (32 each, 32768 tokens)
  auto time_gathered_shapes = [] {
    time_gathered(8192, 8, 256, 128, 4096, 7168);
    time_gathered(32768, 8, 256, 32, 4096, 7168);
  };
  if (argc > 2 && std::string(argv[2]) == "profile") {  // the first shape's three kernels once each, for ncu
    time_gathered(8192, 8, 256, 128, 4096, 7168, true);
    return g_failures ? 1 : 0;  // its bit check still counts
  }
  if (argc > 2 && std::string(argv[2]) == "timeonly") {  // the gathered timings alone, no correctness cases
    time_gathered_shapes();
    return g_failures ? 1 : 0;
  }
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
  std::vector<int> gi5;
  {
    auto seg = [&](int g, int valid, int padded) { for (int i = 0; i < padded; i++) gi5.push_back(i < valid ? g : -1); };
    seg(0, 200, 256); seg(-1, 0, 128); seg(2, 128, 128); seg(3, 1, 128); seg(4, 300, 384); seg(0, 17, 128);
  }
  {
    const std::vector<int>& gi = gi5;
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
  // ---- contiguous with gathered A rows (GemmFp8Params.a_pairs), the layout above: rows read through
  // pair ids into R source rows of k slots (R*k = 616, 600, 3, 0), repeats and ids outside [0, R*k);
  // against the reference on the explicitly gathered A and bit for bit against the kernel run on it.
  // K = 128 (1 K block), 144 and 256 (2): no more K blocks than the Hopper kernel's gather lag (144:
  // a last block of 16 bytes); K = 1040 (9): past every stage count; K = 200: the SIMT kernel only.
  {
    struct GS { int64_t R; int k; int64_t N, K; int br; bool bf16; };
    const GS gs[] = {{77, 8, 256, 512, 128, false}, {77, 8, 520, 1040, 1, true}, {1, 3, 136, 256, 128, true}, {0, 8, 64, 128, 1, false},
                     {300, 2, 96, 144, 128, false}, {77, 8, 200, 200, 128, true}};
    const int64_t M = gi5.size();
    for (const GS& g : gs) {
      Case c{"contiguous gathered", GEMM_CONTIGUOUS, M, g.N, g.K, 5, M, g.br, g.bf16, false, gi5};
      c.R = g.R;
      c.k = g.k;
      c.pairs = gathered_pairs(gi5, g.R, g.k);
      for (int path : {GEMM_PATH_AUTO, GEMM_PATH_SIMT}) run_case(c, path, 0, 100000, path == GEMM_PATH_SIMT || g.K % 16 ? TOL_SIMT : TOL_TC);
      if (g.K % 16 == 0) run_case(c, GEMM_PATH_AUTO, 64, 100000, TOL_TC);  // the 64-wide N tile (8 stages)
    }
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
  {  // gathered, ragged groups of a few hundred rows, at K = 7168
    std::vector<int> gi;
    for (int g = 0; g < 8; g++) {
      const int valid = 100 + 97 * g;
      for (int i = 0; i < (valid + 127) / 128 * 128; i++) gi.push_back(i < valid ? g : -1);
    }
    const int64_t M = gi.size();
    Case c{"check gathered x2112x7168", GEMM_CONTIGUOUS, M, 2112, 7168, 8, M, 128, true, false, gi};
    c.R = 1001;
    c.k = 6;
    c.pairs = gathered_pairs(gi, c.R, c.k);
    run_case(c, GEMM_PATH_AUTO, 0, 64, TOL_TC);
  }
  FILE* csv = gathered_only ? nullptr : fopen(csv_path, "w");
  if (!gathered_only) {
  fprintf(csv, "label,M,N,K,G,ms,tflops\n");
  const int64_t NKs[][2] = {{2112, 7168}, {24576, 1536}, {7168, 2048}, {4096, 7168}, {7168, 16384}};
  for (int64_t M : {64, 128, 4096})
    for (auto& nk : NKs) time_gemm(csv, "dense", GEMM_NONE, M, nk[0], nk[1], 1, GEMM_PATH_AUTO);
  time_gemm(csv, "dense", GEMM_NONE, 8192, 8192, 8192, 1, GEMM_PATH_AUTO);
  time_gemm(csv, "contig", GEMM_CONTIGUOUS, 4 * 8192, 4096, 7168, 4, GEMM_PATH_AUTO);
  time_gemm(csv, "contig", GEMM_CONTIGUOUS, 8 * 4096, 4096, 7168, 8, GEMM_PATH_AUTO);
  time_gemm(nullptr, "dense", GEMM_NONE, 4096, 7168, 16384, 1, GEMM_PATH_SIMT);
  fclose(csv);
  }
  time_gathered_shapes();  // (not in the CSV)
  printf("correctness: %d failure(s)\n", g_failures);
  return g_failures ? 1 : 0;
}
