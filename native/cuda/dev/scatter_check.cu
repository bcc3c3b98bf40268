// Standalone harness for dispatch's scatter (native/cuda/moe_dispatch.cuh), no Node, on the windows'
// shapes (2 ranks, H 7168 FP8 rows with 1×128 scales, top-8 of 256, 4096 tokens a source, this rank's
// 128 experts); every output poisoned with 0xFF before each run, so a byte left unwritten differs.
// Without expertX: the warp-a-row scatter_warp_kernel against the CTA-a-row scatter_kernel bit for bit,
// one and two sources a launch, and again with the ranges taken from gathered tables on the device (the
// windows' early scatter, one and two pieces, landing signals there); CUDA-event medians of each
// (interleaved) next to a device-to-device copy of the same bytes. With expertX: scatter_kernel against
// the slots in the windows' forms (in_place 0 and 2, own_expanded 0 and 1; host ranges, tables in one and
// two pieces): recv's codes, every place's codes and scales (the pack's own rows left alone), the index
// outputs as without expertX; then timed in the 2-rank form next to the ceilings of its bytes.
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
  uint8_t* ex;  // expertX [P, PAYLOAD] and its scales [P, SCALE_WORDS]
  uint32_t* ex_scales;
  int32_t *idx, *pos, *sorted;
  float* w;
  int64_t n, P;
};

static void poison(const Outputs& o) {
  CK(cudaMemset(o.recv, 0xFF, (size_t)R * T * PAYLOAD));
  CK(cudaMemset(o.recv_scales, 0xFF, o.n * SCALE_WORDS * 4));
  CK(cudaMemset(o.idx, 0xFF, o.n * K * 4));
  CK(cudaMemset(o.w, 0xFF, o.n * K * 4));
  CK(cudaMemset(o.pos, 0xFF, o.n * K * 4));
  CK(cudaMemset(o.sorted, 0xFF, o.P * 4));
  CK(cudaMemset(o.ex, 0xFF, o.P * PAYLOAD));
  CK(cudaMemset(o.ex_scales, 0xFF, o.P * SCALE_WORDS * 4));
}

static std::vector<uint8_t> snapshot(const Outputs& o) {
  std::vector<std::pair<const void*, size_t>> parts = {{o.recv, (size_t)R * T * PAYLOAD}, {o.recv_scales, o.n * SCALE_WORDS * 4}, {o.idx, o.n * K * 4},
                                                       {o.w, o.n * K * 4},      {o.pos, o.n * K * 4},                   {o.sorted, o.P * 4},
                                                       {o.ex, o.P * PAYLOAD},   {o.ex_scales, o.P * SCALE_WORDS * 4}};
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

// Ceilings of the expanded scatter's bytes (harness only). pattern_write_kernel writes a constant to
// the expertX places of each of `rows` received rows (dsts [rows, K], −1 none) in the scatter's order
// and CTA shape, reading no payload: what its write pattern alone costs. fanout_kernel reads `rows`
// rows of recv from row q0, each once, and writes each to `copies` consecutive expertX rows, a warp a
// row: the scatter's reads and writes with no scattered place.
__global__ void __launch_bounds__(moe::EP_THREADS) pattern_write_kernel(const int32_t* __restrict__ dsts, int64_t rows, uint4* __restrict__ ex,
                                                                        uint32_t* __restrict__ ex_scales, int64_t units, int64_t scale_words) {
  for (int64_t i = blockIdx.x; i < rows; i += gridDim.x) {
    for (int j = 0; j < K; j++) {
      const int32_t p = __ldg(dsts + i * K + j);
      if (p < 0) continue;
      for (int64_t u = threadIdx.x; u < units; u += blockDim.x) ex[(int64_t)p * units + u] = make_uint4(1, 2, 3, 4);
      for (int64_t u = threadIdx.x; u < scale_words; u += blockDim.x) ex_scales[(int64_t)p * scale_words + u] = 5u;
    }
  }
}
constexpr int FANOUT_UNITS = PAYLOAD / 16 / 32;  // 14 16-byte units a lane at H = 7168
__global__ void __launch_bounds__(128) fanout_kernel(const uint4* __restrict__ recv, int64_t q0, int64_t rows, int copies, uint4* __restrict__ ex) {
  const int lane = threadIdx.x & 31;
  const int64_t units = PAYLOAD / 16;
  for (int64_t i = (int64_t)blockIdx.x * 4 + (threadIdx.x >> 5); i < rows; i += (int64_t)gridDim.x * 4) {
    uint4 v[FANOUT_UNITS];
#pragma unroll
    for (int j = 0; j < FANOUT_UNITS; j++) v[j] = __ldg(recv + (q0 + i) * units + lane + 32 * j);
    for (int c = 0; c < copies; c++) {
#pragma unroll
      for (int j = 0; j < FANOUT_UNITS; j++) ex[(i * copies + c) * units + lane + 32 * j] = v[j];
    }
  }
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
  CK(cudaMalloc(&o.recv, (size_t)R * T * PAYLOAD));  // (R·T rows: the receive storage of in_place with tables)
  CK(cudaMalloc(&o.recv_scales, n * SCALE_WORDS * 4));
  CK(cudaMalloc(&o.idx, n * K * 4));
  CK(cudaMalloc(&o.w, n * K * 4));
  CK(cudaMalloc(&o.pos, n * K * 4));
  CK(cudaMalloc(&o.sorted, P * 4));
  CK(cudaMalloc(&o.ex, P * PAYLOAD));
  CK(cudaMalloc(&o.ex_scales, P * SCALE_WORDS * 4));

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
  // every source's landing signal already at the sequence number the launches wait for (the waits' code
  // runs, returning at once)
  uint32_t* d_landed;
  const std::vector<uint32_t> h_landed(R, 7u);
  CK(cudaMalloc(&d_landed, R * 4));
  CK(cudaMemcpy(d_landed, h_landed.data(), R * 4, cudaMemcpyHostToDevice));
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
    a.landed = d_landed;
    a.seq = 7;
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

  // with expertX (the expanded dispatch): scatter_kernel against the slots in the windows' forms at
  // R = 2 — the rows' codes copied by the scatter (in_place 0), or already in recv (in_place 2: both
  // sources anchored, recv filled with every received row's codes before each run), each with and
  // without own_expanded (rank 0's own rows' expertX rows left to its pack: they must stay poisoned
  // here) — with the host's ranges and from the tables in one and two pieces (landing signals there)
  // received row q's codes, its source's slot row's payload, to recv's row q + shift (with the tables,
  // in_place's storage: received row 0 at anchor·T − rows[0], anchor 1 for rank 0)
  auto fill_recv = [&](int64_t shift) {
    for (int s = 0; s < R; s++) {
      CK(cudaMemcpy2D(o.recv + (size_t)(shift + (s ? rows[0] : 0)) * PAYLOAD, PAYLOAD, d_slots + (size_t)s * T * STRIDE, STRIDE, PAYLOAD, rows[s], cudaMemcpyDeviceToDevice));
    }
  };
  struct ExForm {
    int in_place, own_expanded;
  };
  const std::vector<ExForm> ex_forms = {{0, 0}, {0, 1}, {2, 0}, {2, 1}};
  auto with_ex = [&](moe::ScatterArgs a, const ExForm& x) {
    a.ex = o.ex;
    a.ex_scales = o.ex_scales;
    a.P = P;
    a.in_place = x.in_place;
    a.own_expanded = x.own_expanded;
    a.me = 0;
    a.ranks = R;
    return a;
  };
  // the oracle's parts: received row q's slot row; the index outputs and recv's scales of the scatter
  // without expertX (host ranges; checked against the warp form above), which expertX does not change
  auto slot_of = [&](int64_t q) {
    const int src = q < rows[0] ? 0 : 1;
    return &slots[((size_t)src * T + (q - (src ? rows[0] : 0))) * STRIDE];
  };
  poison(o);
  launch<false>(args({0, 1}), 0);
  CK(cudaDeviceSynchronize());
  const auto plain = snapshot(o);
  const size_t mid_at = (size_t)R * T * PAYLOAD, mid_bytes = n * SCALE_WORDS * 4 + 3 * n * K * 4 + P * 4;
  std::vector<uint8_t> poisoned(std::max<int64_t>(PAYLOAD, SCALE_WORDS * 4), 0xFF);
  for (const ExForm& x : ex_forms) {
    for (int pieces = 0; pieces <= 2; pieces++) {  // 0: the host's ranges
      const int64_t shift = x.in_place && pieces ? T - rows[0] : 0;
      poison(o);
      if (x.in_place) fill_recv(shift);
      if (pieces == 0) launch<false>(with_ex(args({0, 1}), x), 0);
      for (int c = 0; c < pieces; c++) launch<false>(with_ex(device_args({0, 1}, c, pieces), x), 0);
      CK(cudaDeviceSynchronize());
      const auto got = snapshot(o);
      int64_t recv_wrong = 0, places_wrong = 0;
      for (int64_t q = 0; q < n; q++) recv_wrong += memcmp(got.data() + (shift + q) * PAYLOAD, slot_of(q), PAYLOAD) != 0;
      size_t mid_diff = 0;
      for (size_t i = mid_at; i < mid_at + mid_bytes; i++) mid_diff += got[i] != plain[i];
      // every place p holds received row sorted[p] / K's codes and scales, or the poison where the pack
      // writes them (own_expanded: rank 0's own rows, the first rows[0] received)
      const uint8_t* sorted_at = got.data() + mid_at + mid_bytes - P * 4;
      const uint8_t* ex_at = sorted_at + P * 4;
      const uint8_t* exs_at = ex_at + P * PAYLOAD;
      for (int64_t p = 0; p < P; p++) {
        int32_t id;
        memcpy(&id, sorted_at + p * 4, 4);
        const int64_t q = id / K;
        if (id < 0 || q >= n) {
          places_wrong++;
          continue;
        }
        const bool left = x.own_expanded && q < rows[0];
        const uint8_t* codes = left ? poisoned.data() : slot_of(q);
        const uint8_t* scales = left ? poisoned.data() : slot_of(q) + SCALES_AT;
        places_wrong += memcmp(ex_at + p * PAYLOAD, codes, PAYLOAD) != 0 || memcmp(exs_at + p * SCALE_WORDS * 4, scales, SCALE_WORDS * 4) != 0;
      }
      printf("expertX, in_place %d, own_expanded %d, %s: recv rows wrong %lld of %lld, index outputs and scales %zu bytes differ, places wrong %lld of %lld\n",
             x.in_place, x.own_expanded, pieces ? (pieces == 1 ? "ranges from the tables, 1 piece" : "ranges from the tables, 2 pieces") : "the host's ranges",
             (long long)recv_wrong, (long long)n, mid_diff, (long long)places_wrong, (long long)P);
      bad += recv_wrong != 0 || mid_diff != 0 || places_wrong != 0;
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
  // with expertX, the windows' 2-rank form (in_place 2, own_expanded 1: the peer's rows alone copied,
  // from recv to their expertX rows), and the same launch without rank 0's own rows, interleaved with
  // the ceilings: a copy and a memset of the codes it writes, its write pattern alone, the fan-out
  {
    const moe::ScatterArgs a = with_ex(args({0, 1}), {2, 1});
    const moe::ScatterArgs a_peer = with_ex(args({1}), {2, 1});
    fill_recv(0);
    int64_t peer_pairs = 0;  // the expertX rows written: source 1's pairs
    for (int l = 0; l < PER; l++) peer_pairs += count[1 * PER + l];
    const int copies = (int)((peer_pairs + rows[1] / 2) / rows[1]);  // (4 here: a peer row's pairs on average)
    // the write pattern's input, from one run: each source-1 row's places (pair_pos)
    launch<false>(a, 0);
    CK(cudaDeviceSynchronize());
    std::vector<int32_t> h_pos((size_t)n * K);
    CK(cudaMemcpy(h_pos.data(), o.pos, h_pos.size() * 4, cudaMemcpyDeviceToHost));
    int32_t* d_dsts;
    CK(cudaMalloc(&d_dsts, ((size_t)rows[1] * K) * 4));
    CK(cudaMemcpy(d_dsts, h_pos.data() + (size_t)rows[0] * K, (size_t)rows[1] * K * 4, cudaMemcpyHostToDevice));
    std::vector<float> ts, tpeer, tm, tz, tp, tf;
    for (int r = 0; r < 55; r++) {
      const float sc = time([&] { launch<false>(a, 0); });
      const float pe = time([&] { launch<false>(a_peer, 0); });
      const float m = time([&] { CK(cudaMemcpyAsync(o.ex, o.ex + (o.P - peer_pairs) * PAYLOAD, (size_t)peer_pairs * PAYLOAD, cudaMemcpyDeviceToDevice)); });  // (expertX's tail rows to its head: recv holds too few)
      const float z = time([&] { CK(cudaMemsetAsync(o.ex, 0, (size_t)peer_pairs * PAYLOAD)); });
      const float pw = time([&] { pattern_write_kernel<<<sms * 8, moe::EP_THREADS>>>(d_dsts, rows[1], (uint4*)o.ex, o.ex_scales, PAYLOAD / 16, SCALE_WORDS); });
      const float fo = time([&] { fanout_kernel<<<sms * 16, 128>>>((const uint4*)o.recv, rows[0], rows[1], copies, (uint4*)o.ex); });
      if (r >= 5) ts.push_back(sc), tpeer.push_back(pe), tm.push_back(m), tz.push_back(z), tp.push_back(pw), tf.push_back(fo);
    }
    // bytes: source 1's rows read once, its pairs' codes and scales written, every row's scales and index outputs
    const double bytes = (double)rows[1] * PAYLOAD + (double)peer_pairs * (PAYLOAD + 4 * SCALE_WORDS) + 2.0 * n * (4 * SCALE_WORDS + 12 * K);
    const double wbytes = (double)peer_pairs * (PAYLOAD + 4 * SCALE_WORDS);
    const double sc = median_of(ts), m = median_of(tm), z = median_of(tz), pw = median_of(tp), fo = median_of(tf);
    printf("expertX (in_place 2, own_expanded 1, %lld pairs written): scatter_kernel %.1f us (%.0f GB/s); without rank 0's own rows %.1f us\n", (long long)peer_pairs, sc * 1e3,
           bytes / sc / 1e6, median_of(tpeer) * 1e3);
    printf("expertX ceilings: copy of the pairs' codes %.1f us (%.0f GB/s r+w); memset of them %.1f us (%.0f GB/s written); the write pattern alone (constants, no reads) %.1f us (%.0f GB/s written); "
           "source 1's %d rows each read once and written to %d consecutive rows, a warp a row, %.1f us (%.0f GB/s r+w)\n",
           m * 1e3, 2.0 * peer_pairs * PAYLOAD / m / 1e6, z * 1e3, (double)peer_pairs * PAYLOAD / z / 1e6, pw * 1e3, wbytes / pw / 1e6, rows[1], copies, fo * 1e3,
           (double)rows[1] * PAYLOAD * (1 + copies) / fo / 1e6);
  }
  printf(bad ? "FAIL: %d forms differ\n" : "ok: every form bit for bit\n", bad);
  return bad ? 1 : 0;
}
