// Standalone harness for dispatch's scatter without expertX (native/cuda/moe_dispatch.cuh), no Node: the
// warp-a-row scatter_warp_kernel against the CTA-a-row scatter_kernel on the windows' shapes (2 ranks,
// H 7168 FP8 rows with 1×128 scales, top-8 of 256, 4096 tokens a source, this rank's 128 experts), bit
// for bit on every output (each poisoned with 0xFF before each kernel, so a byte one leaves unwritten
// differs), one and two sources a launch, and again with the ranges taken from gathered tables on the
// device (the windows' early scatter, one and two pieces); then CUDA-event medians of each (interleaved)
// next to a device-to-device copy of the same bytes.
// Build and run: native/cuda/dev/scatter_check.sh
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <random>
#include <vector>

#include "cuda/moe_dispatch.cuh"
#include "dev_check.cuh"

using namespace hp;

constexpr int R = 2, E = 256, PER = E / R, K = 8, H = 7168, T = 4096;
constexpr int64_t PAYLOAD = H, SCALE_WORDS = H / 128, SCALES_AT = H, META_AT = H + 4 * SCALE_WORDS;
constexpr int64_t STRIDE = (META_AT + 12 * K + 15) / 16 * 16;

struct Outputs {
  uint8_t* recv;
  uint32_t* recv_scales;
  int32_t *idx, *pos, *sorted;
  float* w;
  int64_t n, P;
};

static void poison(const Outputs& o) {
  CK(cudaMemset(o.recv, 0xFF, o.n * PAYLOAD));
  CK(cudaMemset(o.recv_scales, 0xFF, o.n * SCALE_WORDS * 4));
  CK(cudaMemset(o.idx, 0xFF, o.n * K * 4));
  CK(cudaMemset(o.w, 0xFF, o.n * K * 4));
  CK(cudaMemset(o.pos, 0xFF, o.n * K * 4));
  CK(cudaMemset(o.sorted, 0xFF, o.P * 4));
}

static std::vector<uint8_t> snapshot(const Outputs& o) {
  std::vector<std::pair<const void*, size_t>> parts = {{o.recv, o.n * PAYLOAD}, {o.recv_scales, o.n * SCALE_WORDS * 4}, {o.idx, o.n * K * 4},
                                                       {o.w, o.n * K * 4},      {o.pos, o.n * K * 4},                   {o.sorted, o.P * 4}};
  std::vector<uint8_t> all;
  for (auto& [p, n] : parts) {
    const size_t at = all.size();
    all.resize(at + n);
    CK(cudaMemcpy(all.data() + at, p, n, cudaMemcpyDeviceToHost));
  }
  return all;
}

static int sms;  // the device's multiprocessors (main reads them once)

// each form at the addon's grid (launch_scatter in native/cuda/moe_dispatch.cu)
template <bool WARP>
static void launch(const moe::ScatterArgs& a, cudaStream_t st) {
  const int64_t total = a.end[a.n - 1];
  if (WARP) {
    const int64_t items = (total + moe::SCATTER_WARPS - 1) / moe::SCATTER_WARPS;
    moe::scatter_warp_kernel<uint4><<<(int)std::min<int64_t>(items, (int64_t)sms * 4), moe::SCATTER_WARPS * 32, 0, st>>>(a);
  } else {
    moe::scatter_kernel<uint4><<<(int)std::min<int64_t>(total, (int64_t)sms * 8), moe::EP_THREADS, 0, st>>>(a);
  }
  CK(cudaGetLastError());
}

int main() {
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  std::mt19937 rng(20261122);
  // two sources' slots of T rows each, every token on this rank (rank 0) with its local slots' meta
  std::vector<uint8_t> slots((size_t)R * T * STRIDE);
  for (auto& b : slots) b = (uint8_t)rng();
  std::vector<int32_t> count(R * PER, 0);  // pairs of (source, local expert) so far
  std::vector<int32_t> rows(R, 0);
  std::vector<std::vector<int32_t>> meta_l(R * T), meta_r(R * T);
  for (int s = 0; s < R; s++) {
    for (int t = 0; t < T; t++) {
      std::vector<int> e(E);
      for (int i = 0; i < E; i++) e[i] = i;
      std::shuffle(e.begin(), e.end(), rng);
      bool any = false;
      for (int j = 0; j < K; j++) any = any || e[j] < PER;
      if (!any) continue;  // not sent to rank 0
      const int row = rows[s]++;
      int32_t* m = reinterpret_cast<int32_t*>(&slots[((size_t)s * T + row) * STRIDE + META_AT]);
      for (int j = 0; j < K; j++) {
        const bool here = e[j] < PER;
        m[j] = here ? e[j] : -1;
        float wt = std::uniform_real_distribution<float>(0.f, 1.f)(rng);
        memcpy(&m[K + j], &wt, 4);
        if (!here) m[K + j] = 0;
        m[2 * K + j] = here ? count[s * PER + e[j]]++ : -1;
      }
    }
  }
  // base [R, PER]: expert-major, sources in order within an expert (the receive layout's order)
  std::vector<int32_t> base(R * PER);
  int32_t acc = 0;
  for (int l = 0; l < PER; l++) {
    for (int s = 0; s < R; s++) {
      base[s * PER + l] = acc;
      acc += count[s * PER + l];
    }
  }
  const int64_t P = acc, n = rows[0] + rows[1];
  printf("rows from source 0 / 1: %d / %d, pairs %lld\n", rows[0], rows[1], (long long)P);

  uint8_t* d_slots;
  int32_t* d_base;
  CK(cudaMalloc(&d_slots, slots.size()));
  CK(cudaMemcpy(d_slots, slots.data(), slots.size(), cudaMemcpyHostToDevice));
  CK(cudaMalloc(&d_base, base.size() * 4));
  CK(cudaMemcpy(d_base, base.data(), base.size() * 4, cudaMemcpyHostToDevice));
  Outputs o{};
  o.n = n;
  o.P = P;
  CK(cudaMalloc(&o.recv, n * PAYLOAD));
  CK(cudaMalloc(&o.recv_scales, n * SCALE_WORDS * 4));
  CK(cudaMalloc(&o.idx, n * K * 4));
  CK(cudaMalloc(&o.w, n * K * 4));
  CK(cudaMalloc(&o.pos, n * K * 4));
  CK(cudaMalloc(&o.sorted, P * 4));

  // sources: {0}, {1}, {0, 1} (the windows' own-rows, other-rows and one-launch forms)
  auto args = [&](std::vector<int> srcs) {
    moe::ScatterArgs a;
    memset(&a, 0, sizeof(a));
    int32_t end = 0;
    for (int s : srcs) {
      a.src[a.n] = d_slots + (size_t)s * T * STRIDE;
      a.source[a.n] = s;
      a.first[a.n] = 0;
      a.recv_row[a.n] = s ? rows[0] : 0;
      end += rows[s];
      a.end[a.n] = end;
      a.n++;
    }
    a.stride = STRIDE;
    a.scales_at = SCALES_AT;
    a.meta_at = META_AT;
    a.base = d_base;
    a.per = PER;
    a.k = K;
    a.ex = nullptr;  // (expertX: scatter_kernel alone)
    a.ex_scales = nullptr;
    a.P = 0;
    a.units = PAYLOAD / 16;
    a.scale_words = SCALE_WORDS;
    a.sorted = o.sorted;
    a.pmax = P;
    a.pair_pos = o.pos;
    a.recv_indices = o.idx;
    a.recv_weights = o.w;
    a.recv = o.recv;
    a.recv_scales = o.recv_scales;
    return a;
  };

  int bad = 0;
  const std::vector<std::vector<int>> forms = {{0}, {1}, {0, 1}};
  auto name = [](const std::vector<int>& f) { return f.size() == 2 ? "0+1" : f[0] ? "1" : "0"; };
  for (auto& f : forms) {
    const moe::ScatterArgs a = args(f);
    poison(o);
    launch<false>(a, 0);
    CK(cudaDeviceSynchronize());
    const auto want = snapshot(o);
    poison(o);
    launch<true>(a, 0);
    CK(cudaDeviceSynchronize());
    const auto got = snapshot(o);
    size_t diff = 0;
    for (size_t i = 0; i < want.size(); i++) diff += want[i] != got[i];
    printf("sources %s: %zu of %zu output bytes differ\n", name(f), diff, want.size());
    bad += diff != 0;
  }

  // the windows' early scatter: the same rows with the ranges taken from gathered tables on the device
  // (moe::scatter_ranges; receiving rank 0, slots of T rows), in one piece and in two (each source's
  // piece 0 ending at half its rows), by both forms: the bytes of the host's ranges
  constexpr int W = R + E + 1 + 2 * R;
  std::vector<int32_t> h_tables((size_t)R * W, 0);
  for (int s = 0; s < R; s++) {
    h_tables[(size_t)s * W + 0] = rows[s];
    h_tables[(size_t)s * W + R + E + 1 + 0 * R + 0] = rows[s] / 2;
  }
  int32_t* d_tables;
  CK(cudaMalloc(&d_tables, h_tables.size() * 4));
  CK(cudaMemcpy(d_tables, h_tables.data(), h_tables.size() * 4, cudaMemcpyHostToDevice));
  auto device_args = [&](const std::vector<int>& srcs, int piece, int pieces) {
    moe::ScatterArgs a = args(srcs);
    a.tables = d_tables;
    a.table_words = W;
    a.ranks = R;
    a.experts = E;
    a.me = 0;
    a.piece = piece;
    a.pieces = pieces;
    a.slot_rows = T;
    for (int i = 0; i < a.n; i++) a.end[i] = (i + 1) * T;  // (the grid's bound alone)
    return a;
  };
  for (auto& f : forms) {
    poison(o);
    launch<false>(args(f), 0);
    CK(cudaDeviceSynchronize());
    const auto want = snapshot(o);
    for (int pieces = 1; pieces <= 2; pieces++) {
      for (int warp = 0; warp < 2; warp++) {
        poison(o);
        for (int c = 0; c < pieces; c++) {
          if (warp) launch<true>(device_args(f, c, pieces), 0);
          else launch<false>(device_args(f, c, pieces), 0);
        }
        CK(cudaDeviceSynchronize());
        const auto got = snapshot(o);
        size_t diff = 0;
        for (size_t i = 0; i < want.size(); i++) diff += want[i] != got[i];
        printf("sources %s, ranges from the tables, %d piece(s), %s a row: %zu of %zu output bytes differ\n", name(f), pieces, warp ? "warp" : "CTA", diff, want.size());
        bad += diff != 0;
      }
    }
  }

  // timings: each form interleaved, 50 reps after 5 warm-ups, events around each launch
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  auto time = [&](auto fn) { return event_ms(e0, e1, fn); };
  uint8_t* d_copy;
  CK(cudaMalloc(&d_copy, (size_t)R * T * STRIDE));
  for (auto& f : forms) {
    const moe::ScatterArgs a = args(f);
    std::vector<float> tc, tw, tm;
    int64_t nrows = 0;
    for (int s : f) nrows += rows[s];
    for (int r = 0; r < 55; r++) {
      const float c = time([&] { launch<false>(a, 0); });
      const float w = time([&] { launch<true>(a, 0); });
      const float m = time([&] { CK(cudaMemcpyAsync(d_copy, d_slots, nrows * STRIDE, cudaMemcpyDeviceToDevice)); });
      if (r >= 5) tc.push_back(c), tw.push_back(w), tm.push_back(m);
    }
    // bytes moved: the rows read (payload, scales, meta) and written (recv, its scales, 3 index rows)
    const double bytes = 2.0 * nrows * (PAYLOAD + 4 * SCALE_WORDS + 12 * K);
    const double c = median_of(tc), w = median_of(tw), m = median_of(tm);
    printf("sources %-3s %5lld rows: CTA a row %.1f us (%.0f GB/s), warp a row %.1f us (%.0f GB/s), %.2fx; copy of the rows %.1f us (%.0f GB/s r+w)\n", name(f),
           (long long)nrows, c * 1e3, bytes / c / 1e6, w * 1e3, bytes / w / 1e6, c / w, m * 1e3, 2.0 * nrows * STRIDE / m / 1e6);
  }
  printf(bad ? "FAIL: %d forms differ\n" : "ok: every form bit for bit\n", bad);
  return bad ? 1 : 0;
}
