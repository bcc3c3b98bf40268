// NVLink store/load rates between the GPUs of one host, one process, peer access enabled: what the
// windows paths' pack (dispatch) and reduction (combine) can expect from stores into a peer's memory.
//   native/cuda/dev/nvlink_check.sh [outdir]   (needs ≥ 2 GPUs with peer access)
// Rates are GB/s of payload leaving one GPU (for "all pairs": the mean per GPU over all of them, each
// sending to every other at once), medians of 9 timed runs after 2 warm-ups, wall clock around the
// launches on every GPU and a synchronize of each.
//   sm push  v16/v8/v4   a copy kernel on the sender, 16-, 8- or 4-byte stores into the peer
//   sm pull  v16         a copy kernel on the receiver, 16-byte loads from the peer
//   ce push              cudaMemcpyPeerAsync (the copy engines), one stream per peer
//   local v16            the copy kernel inside one GPU (HBM read + write), for scale
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <vector>

#include "dev_check.cuh"

// src [n] V -> dst[blockIdx.y] [n] V: every CTA row y copies the whole buffer to destination y.
template <typename V>
__global__ void __launch_bounds__(512) copy_kernel(const V* __restrict__ src, V* const* __restrict__ dst, int64_t n) {
  V* d = dst[blockIdx.y];
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) d[i] = src[i];
}

static int G;
static std::vector<char*> src, dst;  // per GPU: src [B], dst [G·B] (slot s: what GPU s sent)
static size_t B;

// Runs `launch(g)` on every GPU in `gpus`, synchronizes them; median wall ms of 9 after 2 warm-ups.
static double timed(const std::vector<int>& gpus, const std::function<void(int)>& launch) {
  std::vector<double> ms;
  for (int it = 0; it < 11; it++) {
    for (int g : gpus) {
      CK(cudaSetDevice(g));
      CK(cudaDeviceSynchronize());
    }
    auto t0 = std::chrono::steady_clock::now();
    for (int g : gpus) {
      CK(cudaSetDevice(g));
      launch(g);
    }
    for (int g : gpus) {
      CK(cudaSetDevice(g));
      CK(cudaDeviceSynchronize());
    }
    auto t1 = std::chrono::steady_clock::now();
    if (it >= 2) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Destination pointer tables on GPU g, made before timing (a small upload each).
static void** table_on(int g, const std::vector<char*>& to) {
  void** t = nullptr;
  CK(cudaSetDevice(g));
  CK(cudaMalloc(&t, to.size() * sizeof(void*)));
  CK(cudaMemcpy(t, to.data(), to.size() * sizeof(void*), cudaMemcpyHostToDevice));
  return t;
}

template <typename V>
static void sm_copy(const char* from, void** table, int ndst, int ctas) {
  copy_kernel<V><<<dim3(ctas, (unsigned)ndst), 512>>>((const V*)from, (V* const*)table, (int64_t)(B / sizeof(V)));
  CK(cudaGetLastError());
}

int main(int argc, char** argv) {
  B = (size_t)(argc > 1 ? std::atof(argv[1]) : 64) * (1 << 20);
  CK(cudaGetDeviceCount(&G));
  if (G < 2) {
    std::printf("nvlink_check: %d GPU(s), needs 2 or more\n", G);
    return 0;
  }
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  src.resize(G), dst.resize(G);
  std::vector<std::vector<cudaStream_t>> streams(G, std::vector<cudaStream_t>(G));
  for (int g = 0; g < G; g++) {
    CK(cudaSetDevice(g));
    for (int p = 0; p < G; p++) {
      if (p != g) CK(cudaDeviceEnablePeerAccess(p, 0));
      CK(cudaStreamCreateWithFlags(&streams[g][p], cudaStreamNonBlocking));
    }
    CK(cudaMalloc(&src[g], B));
    CK(cudaMalloc(&dst[g], G * B));
    CK(cudaMemset(src[g], g + 1, B));
  }
  std::printf("nvlink_check: %d GPUs, %d SMs, %.0f MB a transfer\n", G, sms, B / 1e6);
  auto rate = [&](double ms, double bytes_per_gpu) { return bytes_per_gpu / 1e6 / ms; };  // GB/s
  // one GPU (0) to one peer (1)
  const std::vector<int> g0 = {0}, g1 = {1};
  void** to1 = table_on(0, {dst[1]});
  void** to0 = table_on(0, {dst[0]});
  void** to1from1 = table_on(1, {dst[1]});
  for (int ctas : {16, 32, sms / 2, sms, 2 * sms, 4 * sms, 8 * sms}) {
    double a = timed(g0, [&](int) { sm_copy<uint4>(src[0], to1, 1, ctas); });
    double b = timed(g0, [&](int) { sm_copy<uint2>(src[0], to1, 1, ctas); });
    double c = timed(g0, [&](int) { sm_copy<uint32_t>(src[0], to1, 1, ctas); });
    double l = timed(g0, [&](int) { sm_copy<uint4>(src[0], to0, 1, ctas); });
    double p = timed(g1, [&](int) { sm_copy<uint4>(src[0], to1from1, 1, ctas); });
    std::printf("0->1 %4d CTAs x 512: sm push v16 %6.1f  v8 %6.1f  v4 %6.1f  | sm pull v16 %6.1f | local v16 %6.1f GB/s\n", ctas, rate(a, B), rate(b, B),
                rate(c, B), rate(p, B), rate(l, 2 * B));
  }
  double ce = timed(g0, [&](int) { CK(cudaMemcpyPeerAsync(dst[1], 1, src[0], 0, B, streams[0][1])); });
  std::printf("0->1 ce push %6.1f GB/s\n", rate(ce, B));
  // two GPUs both ways at once
  const std::vector<int> pair = {0, 1};
  void* pt[2] = {table_on(0, {dst[1]}), table_on(1, {dst[0] + B})};
  for (int ctas : {sms / 2, sms, 4 * sms}) {
    double a = timed(pair, [&](int g) { sm_copy<uint4>(src[g], (void**)pt[g], 1, ctas); });
    std::printf("0<->1 %4d CTAs: sm push v16 %6.1f GB/s a GPU\n", ctas, rate(a, B));
  }
  double ce2 = timed(pair, [&](int g) { CK(cudaMemcpyPeerAsync(dst[1 - g] + g * B, 1 - g, src[g], g, B, streams[g][1 - g])); });
  std::printf("0<->1 ce push %6.1f GB/s a GPU\n", rate(ce2, B));
  if (G > 2) {
    // every GPU to every other at once (one kernel, a CTA row per peer), and by the copy engines
    std::vector<int> all(G);
    std::vector<void**> at(G);
    for (int g = 0; g < G; g++) {
      all[g] = g;
      std::vector<char*> to;
      for (int p = 0; p < G; p++)
        if (p != g) to.push_back(dst[p] + g * B);
      at[g] = table_on(g, to);
    }
    for (int ctas : {sms / 4, sms / 2, sms, 4 * sms}) {
      double a = timed(all, [&](int g) { sm_copy<uint4>(src[g], at[g], G - 1, ctas); });
      std::printf("all pairs (%d GPUs) %4d CTAs a peer: sm push v16 %6.1f GB/s a GPU\n", G, ctas, rate(a, (G - 1) * B));
    }
    double c = timed(all, [&](int g) {
      for (int p = 0; p < G; p++)
        if (p != g) CK(cudaMemcpyPeerAsync(dst[p] + g * B, p, src[g], g, B, streams[g][p]));
    });
    std::printf("all pairs (%d GPUs): ce push %6.1f GB/s a GPU\n", G, rate(c, (G - 1) * B));
  }
  return 0;
}
