// Standalone harness for dispatch's FP8 pack (native/cuda/moe_dispatch.cuh), no Node: the warp-a-token
// pack_fp8_warp_kernel against the CTA-a-token pack_fp8_kernel, bit for bit on every destination byte
// (each destination buffer poisoned with 0xFF before each kernel), at several shapes: ragged T, k = 1,
// 6, 8, R = 2, 4, 8, bf16 and f32 x, bad expert ids, repeated experts, NaN blocks; then CUDA-event
// medians of both (interleaved) on the windows' shape (4096 tokens, H 7168 bf16, top-8 of 256 over
// 2 ranks, every destination a local buffer) at the CTAs a multiprocessor of the windows (4) and of a
// local pack (16), and a device-to-device copy of x for scale. Each shape also checks the warp pack's
// own expansion (DestRows::ex) against the expertX places worked out on the host.
// Build and run: native/cuda/dev/pack_check.sh
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <random>
#include <vector>

#include "cuda/moe_dispatch.cuh"
#include "dev_check.cuh"

using namespace hp;

struct Case {
  int T, H, k, E, R;
  bool bf16;
};

static int sms;  // the device's multiprocessors (main reads them once)

int main() {
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  std::mt19937 rng(20261122);
  const Case cases[] = {{4096, 7168, 8, 256, 2, true}, {1000, 256, 6, 64, 4, true}, {77, 512, 1, 16, 2, false}, {300, 384, 8, 32, 8, true}, {129, 7168, 8, 256, 2, false}};
  int bad = 0;
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  for (const Case& c : cases) {
    const int T = c.T, H = c.H, k = c.k, E = c.E, R = c.R, per = E / R;
    const int64_t scales_at = H, meta_at = H + 4 * (H / 128), stride = (meta_at + 12 * k + 15) / 16 * 16, M = T;
    // routing: distinct experts mostly, some bad ids and repeats
    std::vector<int32_t> idx((size_t)T * k);
    for (int t = 0; t < T; t++) {
      std::vector<int> e(E);
      for (int i = 0; i < E; i++) e[i] = i;
      std::shuffle(e.begin(), e.end(), rng);
      for (int j = 0; j < k; j++) {
        const int u = rng() % 100;
        idx[(size_t)t * k + j] = u < 3 ? -1 : u < 5 ? E + 3 : (u < 8 && j > 0) ? idx[(size_t)t * k + j - 1] : e[j];
      }
    }
    std::vector<int32_t> send((size_t)T * R), prank((size_t)T * k);
    std::vector<int32_t> count(R, 0);
    for (int t = 0; t < T; t++) {
      for (int d = 0; d < R; d++) {
        bool any = false;
        for (int j = 0; j < k; j++) {
          const int e = idx[(size_t)t * k + j];
          any = any || (e >= 0 && e < E && e / per == d);
        }
        send[(size_t)t * R + d] = any ? d * (int32_t)M + count[d]++ : -1;
      }
    }
    for (auto& v : prank) v = (int32_t)(rng() % 100000);
    std::vector<float> w((size_t)T * k);
    for (auto& v : w) v = std::uniform_real_distribution<float>(0.f, 1.f)(rng);
    // x: normal values of varied scale a block, some NaN blocks
    const size_t xn = (size_t)T * H;
    std::vector<float> xf(xn);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (size_t b = 0; b < xn / 128; b++) {
      const float sc = std::ldexp(1.f, (int)(rng() % 40) - 20);
      for (int i = 0; i < 128; i++) xf[b * 128 + i] = nd(rng) * sc;
      if (rng() % 500 == 0) xf[b * 128 + rng() % 128] = NAN;
    }
    std::vector<uint16_t> xb(xn);
    for (size_t i = 0; i < xn; i++) {
      uint32_t u;
      memcpy(&u, &xf[i], 4);
      xb[i] = (uint16_t)(u >> 16);
    }
    void* d_x;
    int32_t *d_idx, *d_send, *d_prank;
    float* d_w;
    CK(cudaMalloc(&d_x, xn * 4));
    CK(cudaMemcpy(d_x, c.bf16 ? (const void*)xb.data() : (const void*)xf.data(), xn * (c.bf16 ? 2 : 4), cudaMemcpyHostToDevice));
    CK(cudaMalloc(&d_idx, idx.size() * 4));
    CK(cudaMemcpy(d_idx, idx.data(), idx.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&d_send, send.size() * 4));
    CK(cudaMemcpy(d_send, send.data(), send.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&d_prank, prank.size() * 4));
    CK(cudaMemcpy(d_prank, prank.data(), prank.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&d_w, w.size() * 4));
    CK(cudaMemcpy(d_w, w.data(), w.size() * 4, cudaMemcpyHostToDevice));
    moe::DestRows to;
    memset(&to, 0, sizeof(to));
    std::vector<uint8_t*> bufs(R);
    for (int d = 0; d < R; d++) {
      CK(cudaMalloc(&bufs[d], M * stride));
      to.p[d] = (uint64_t)(uintptr_t)bufs[d];
    }
    to.slot = M;
    const size_t smem = (H / 128 + 3) / 4 * 16;
    auto run = [&](bool warp, int per_sm) {
      if (warp) {
        const int grid = (int)std::min<int64_t>((T + moe::PACK_WARPS - 1) / moe::PACK_WARPS, (int64_t)sms * std::max(1, per_sm * moe::EP_THREADS / (moe::PACK_WARPS * 32)));
        if (c.bf16) moe::pack_fp8_warp_kernel<uint16_t><<<grid, moe::PACK_WARPS * 32, moe::warp_pack_smem(H, 0)>>>((const uint16_t*)d_x, T, H, d_idx, d_w, k, E, R, d_send, d_prank, M, to, stride, scales_at, meta_at);
        else moe::pack_fp8_warp_kernel<float><<<grid, moe::PACK_WARPS * 32, moe::warp_pack_smem(H, 0)>>>((const float*)d_x, T, H, d_idx, d_w, k, E, R, d_send, d_prank, M, to, stride, scales_at, meta_at);
      } else {
        const int grid = (int)std::min<int64_t>(T, (int64_t)sms * per_sm);
        if (c.bf16) moe::pack_fp8_kernel<uint16_t><<<grid, moe::EP_THREADS, smem>>>((const uint16_t*)d_x, T, H, d_idx, d_w, k, E, R, d_send, d_prank, M, to, stride, scales_at, meta_at);
        else moe::pack_fp8_kernel<float><<<grid, moe::EP_THREADS, smem>>>((const float*)d_x, T, H, d_idx, d_w, k, E, R, d_send, d_prank, M, to, stride, scales_at, meta_at);
      }
      CK(cudaGetLastError());
    };
    auto snap = [&] {
      std::vector<uint8_t> all((size_t)R * M * stride);
      for (int d = 0; d < R; d++) CK(cudaMemcpy(all.data() + (size_t)d * M * stride, bufs[d], M * stride, cudaMemcpyDeviceToHost));
      return all;
    };
    auto poison = [&] {
      for (int d = 0; d < R; d++) CK(cudaMemset(bufs[d], 0xFF, M * stride));
    };
    poison();
    run(false, 4);
    CK(cudaDeviceSynchronize());
    const auto want = snap();
    size_t diff = 0;
    for (int per_sm : {4, 16}) {
      poison();
      run(true, per_sm);
      CK(cudaDeviceSynchronize());
      const auto got = snap();
      for (size_t i = 0; i < want.size(); i++) diff += want[i] != got[i];
    }
    // every payload byte of the rows sent is written (0xFF is an E4M3 NaN code; NaN blocks are 0x7F)
    size_t unwritten = 0;
    for (int d = 0; d < R; d++)
      for (int r = 0; r < count[d]; r++)
        for (int i = 0; i < H; i++) unwritten += want[((size_t)d * M + r) * stride + i] == 0xFF;
    printf("T %d, H %d, k %d, E %d, R %d, x %s: %zu bytes of %zu differ (warp a token at 4 and 16 CTAs a multiprocessor's warps), %zu payload bytes unwritten\n", T, H, k, E, R,
           c.bf16 ? "bf16" : "f32", diff, 2 * want.size(), unwritten);
    bad += diff != 0 || unwritten != 0;
    if (&c == &cases[0]) {
      auto time = [&](auto fn) { return event_ms(e0, e1, fn); };
      void* d_copy;
      CK(cudaMalloc(&d_copy, xn * 2));
      for (int per_sm : {4, 16}) {
        std::vector<float> a, b, m;
        for (int i = 0; i < 55; i++) {
          const float ta = time([&] { run(false, per_sm); });
          const float tb = time([&] { run(true, per_sm); });
          const float tm = time([&] { CK(cudaMemcpyAsync(d_copy, d_x, xn * 2, cudaMemcpyDeviceToDevice)); });
          if (i >= 5) a.push_back(ta), b.push_back(tb), m.push_back(tm);
        }
        const double bytes = xn * 2.0 + (double)(count[0] + count[1]) * stride;  // x read, rows written
        printf("  pack of %d tokens into %d local slots, %2d CTAs' warps a multiprocessor: CTA a token %.1f us (%.0f GB/s), warp a token %.1f us (%.0f GB/s), %.2fx; copy of x %.1f us\n", T, R,
               per_sm, median_of(a) * 1e3, bytes / median_of(a) / 1e6, median_of(b) * 1e3, bytes / median_of(b) / 1e6, median_of(a) / median_of(b), median_of(m) * 1e3);
      }
      CK(cudaFree(d_copy));
    }
    // The own expansion (DestRows::ex, the windows' expanded dispatch): rank `me`'s own rows' codes and
    // scales also into its expertX at base[me, l] + the pair's rank (recv_scan_kernel's places, from
    // every rank's table), checked against those places worked out here: every byte of expertX and its
    // scales (poisoned with 0xFF) is either the token's row for `me` or untouched, and the rows sent are
    // still the plain pack's bytes. Pair ranks are dense here (the plan's), the other ranks' counts random;
    // once with expertX holding every place and once cut at half of them (places past it not written).
    if (moe::own_expansion_fits(k, H, E, R)) {
      const int W = R + E + 1, bs = 128, nb = H / 128;
      const uint32_t seq = 5;
      std::vector<int32_t> dense((size_t)T * k, -1), mine(E, 0);
      for (int t = 0; t < T; t++)
        for (int j = 0; j < k; j++) {
          const int e = idx[(size_t)t * k + j];
          if (e >= 0 && e < E) dense[(size_t)t * k + j] = mine[e]++;
        }
      CK(cudaMemcpy(d_prank, dense.data(), dense.size() * 4, cudaMemcpyHostToDevice));
      poison();
      run(false, 4);  // the plain pack with these pair ranks: the bytes the rows sent must keep
      CK(cudaDeviceSynchronize());
      const auto plain = snap();
      std::vector<uint64_t> words(R, (uint64_t)seq << 8);  // every rank ready, no receive region
      uint64_t* d_words;
      int32_t *d_sent, *d_tables;
      CK(cudaMalloc(&d_words, R * 8));
      CK(cudaMemcpy(d_words, words.data(), R * 8, cudaMemcpyHostToDevice));
      CK(cudaMalloc(&d_sent, R * 4));
      CK(cudaMemcpy(d_sent, count.data(), R * 4, cudaMemcpyHostToDevice));
      CK(cudaMalloc(&d_tables, (size_t)R * W * 4));
      size_t xdiff = 0, sdiff = 0, rdiff = 0, placed = 0;
      for (int me : {0, R - 1}) {
        // every rank's table: me's own pair counts to its experts, the others' random
        std::vector<int32_t> tables((size_t)R * W, 0);
        for (int s = 0; s < R; s++)
          for (int e = 0; e < E; e++) tables[(size_t)s * W + R + e] = s == me ? mine[e] : (int32_t)(rng() % 60);
        CK(cudaMemcpy(d_tables, tables.data(), tables.size() * 4, cudaMemcpyHostToDevice));
        // recv_scan_kernel's base[me, l]: the padded segments of the experts before l, then the ranks before me
        std::vector<int64_t> base(per);
        int64_t P = 0;
        for (int l = 0; l < per; l++) {
          int64_t c = 0, before = 0;
          for (int s = 0; s < R; s++) {
            if (s == me) before = c;
            c += tables[(size_t)s * W + R + me * per + l];
          }
          base[l] = P + before;
          P += (c + bs - 1) / bs * bs;
        }
        for (const int64_t rows : {P, P / 2}) {
          uint8_t* d_ex;
          float* d_exs;
          CK(cudaMalloc(&d_ex, std::max<int64_t>(rows, 1) * H));
          CK(cudaMalloc(&d_exs, std::max<int64_t>(rows, 1) * nb * 4));
          CK(cudaMemset(d_ex, 0xFF, rows * H));
          CK(cudaMemset(d_exs, 0xFF, rows * nb * 4));
          moe::DestRows own = to;
          own.ready = d_words;
          own.sent = d_sent;
          own.seq = seq;
          own.regions = 2;
          own.me = me;
          own.ex = d_ex;
          own.ex_scales = d_exs;
          own.ex_rows = rows;
          own.tables = d_tables;
          own.table_words = W;
          own.bs = bs;
          poison();
          const int grid = (int)std::min<int64_t>((T + moe::PACK_WARPS - 1) / moe::PACK_WARPS, (int64_t)sms * 2);
          const size_t osmem = moe::warp_pack_smem(H, per);
          if (c.bf16) moe::pack_fp8_warp_kernel<uint16_t><<<grid, moe::PACK_WARPS * 32, osmem>>>((const uint16_t*)d_x, T, H, d_idx, d_w, k, E, R, d_send, d_prank, M, own, stride, scales_at, meta_at);
          else moe::pack_fp8_warp_kernel<float><<<grid, moe::PACK_WARPS * 32, osmem>>>((const float*)d_x, T, H, d_idx, d_w, k, E, R, d_send, d_prank, M, own, stride, scales_at, meta_at);
          CK(cudaGetLastError());
          CK(cudaDeviceSynchronize());
          const auto got = snap();
          for (size_t i = 0; i < plain.size(); i++) rdiff += plain[i] != got[i];
          // expertX as it must be: 0xFF but at the places of me's pairs below `rows`
          std::vector<uint8_t> wx((size_t)rows * H, 0xFF), gx((size_t)rows * H), ws((size_t)rows * nb * 4, 0xFF), gs((size_t)rows * nb * 4);
          for (int t = 0; t < T; t++)
            for (int j = 0; j < k; j++) {
              const int e = idx[(size_t)t * k + j];
              if (e < 0 || e >= E || e / per != me) continue;
              const int64_t p = base[e - me * per] + dense[(size_t)t * k + j];
              if (p >= rows) continue;
              const uint8_t* row = plain.data() + ((size_t)me * M + (send[(size_t)t * R + me] - (size_t)me * M)) * stride;
              memcpy(wx.data() + (size_t)p * H, row, H);
              memcpy(ws.data() + (size_t)p * nb * 4, row + scales_at, (size_t)nb * 4);
              placed++;
            }
          CK(cudaMemcpy(gx.data(), d_ex, gx.size(), cudaMemcpyDeviceToHost));
          CK(cudaMemcpy(gs.data(), d_exs, gs.size(), cudaMemcpyDeviceToHost));
          for (size_t i = 0; i < wx.size(); i++) xdiff += wx[i] != gx[i];
          for (size_t i = 0; i < ws.size(); i++) sdiff += ws[i] != gs[i];
          CK(cudaFree(d_ex));
          CK(cudaFree(d_exs));
        }
      }
      printf("  own expansion (ranks 0 and %d, expertX whole and cut at half): %zu rows placed; %zu expertX bytes, %zu scale bytes, %zu row bytes differ\n", R - 1, placed, xdiff, sdiff,
             rdiff);
      bad += xdiff != 0 || sdiff != 0 || rdiff != 0 || placed == 0;
      CK(cudaFree(d_words));
      CK(cudaFree(d_sent));
      CK(cudaFree(d_tables));
    }
    for (int d = 0; d < R; d++) CK(cudaFree(bufs[d]));
    CK(cudaFree(d_x));
    CK(cudaFree(d_idx));
    CK(cudaFree(d_send));
    CK(cudaFree(d_prank));
    CK(cudaFree(d_w));
  }
  printf(bad ? "FAIL: %d shapes differ\n" : "ok: every shape bit for bit\n", bad);
  return bad ? 1 : 0;
}
