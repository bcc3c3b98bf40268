// CUDA kernels of dispatch's device path (the optional MoeKernels dispatchPlan, dispatchPack,
// dispatchRecvLayout, dispatchScatter in src/runtime/backend.ts; the rules of src/reference/moe.ts).
// Launched by native/cuda/moe_dispatch.cu on the addon's stream.
//
// R ranks of per = E/R experts. A pair is (token t, slot j), id t·k + j. The plan gives each pair two
// keys: its expert e, and — when it is the first slot of its token on rank d = e / per — the column
// E + d. A stable rank of every pair among the pairs of each key (pair-id order) is then the place of
// the pair among its expert's pairs (pairRank) and the place of the token among the tokens sent to d
// (its send row, after the rows to ranks < d, or from d·M with fixed slots of M rows). The ranks come
// from per-chunk counts and prefixes as in align (moe.cuh): no order-dependent atomics, so every run
// gives the same bits. One cooperative launch (three passes between grid barriers) and no memset: the
// scan writes every entry of the table (the bad ids are a last column of the chunk table), the scatter
// every entry of sendRow.
//
// Values read from device buffers (send rows, meta, bases) are bounds-checked before they address
// memory: a corrupt one drops its row or pair instead of writing out of bounds.
//
// The FP8 pack and the scatter have two forms each: a CTA a token / row (any k ≤ EP_MAX_K) and a warp a
// token / row (k ≤ 32, no CTA-wide barrier: 1.3–1.5× faster where HBM or latency bounds them). The
// launchers in moe_dispatch.cu pick the warp form when it applies; both write the same bytes.
#pragma once

#include <cooperative_groups.h>
#include <cstdio>

#include "common/fp8_codec.h"
#include "cuda/moe.cuh"

namespace hp {
namespace moe {

// Slots a token (k) the pack and scatter kernels hold in shared memory: one thread a slot.
constexpr int EP_THREADS = 128;
constexpr int EP_MAX_K = EP_THREADS;
// Expert-parallel ranks the kernels take at most (DestRows, PlanReady, the scatter's sources).
constexpr int EP_MAX_RANKS = 64;

// ---------------------------------------------------------------- plan

// A chunk is PLAN_ROUNDS (2) rounds of 32 consecutive pairs, a warp's; its counters live in shared memory while
// the warp works (PLAN_WARPS warps a CTA, each its own row of E + R + 1 counters: experts, ranks, and
// the chunk's bad ids).
constexpr int64_t PLAN_ROUNDS = 2;
constexpr int PLAN_WARPS = 4;
__host__ __device__ inline int64_t plan_chunks(int64_t pairs) { return (pairs + 32 * PLAN_ROUNDS - 1) / (32 * PLAN_ROUNDS); }
// The plan's work area: the chunk table [chunks, E + R + 1].
inline size_t plan_work_bytes(int64_t pairs, int64_t E, int64_t R) { return 4 * (size_t)(plan_chunks(pairs) * (E + R + 1)); }
inline size_t plan_smem_bytes(int64_t E, int64_t R) { return 4 * (size_t)(PLAN_WARPS * (E + R + 1) + R); }

// The keys of pair `id` (lane `lane` of a warp whose 32 lanes hold 32 consecutive pair ids; every lane
// calls it): ke = its expert (−1 past the pairs or for a bad id); kr = E + its expert's rank d when no
// earlier slot of its token has an expert on d, else −1. Earlier slots come from the lanes below by
// shuffles; those before the warp's first pair from one load of the k − 1 ids there (lane i holds the
// id i + 1 places before it), by shuffles too (from memory one at a time past 32 places, k > 32).
__device__ __forceinline__ void plan_keys(const int32_t* __restrict__ indices, int64_t id, int64_t pairs, int lane, int k, int E, int per, int& ke, int& kr) {
  int e = id < pairs ? indices[id] : -1;
  const int64_t first_id = id - lane;
  const int before = lane < k - 1 && first_id - 1 - lane >= 0 ? indices[first_id - 1 - lane] : -1;
  if (e < 0 || e >= E) e = -1;
  const int d = e >= 0 ? e / per : -1;
  const int j = id < pairs ? (int)(id % k) : 0;
  bool first = d >= 0;
  for (int q = 1; q < k; q++) {  // the same trip count on every lane (shuffles)
    const int dq = __shfl_up_sync(FULL, d, q & 31);
    const int fq = __shfl_sync(FULL, before, (q - lane - 1) & 31);
    if (q > j || d < 0) continue;
    if (q <= lane) {
      if (dq == d) first = false;
    } else {
      const int f = q - lane - 1 < 32 ? fq : indices[id - q];
      if (f >= 0 && f < E && f / per == d) first = false;
    }
  }
  ke = e;
  kr = first ? E + d : -1;
}

// Pass 1, one chunk (every lane of a warp, `row` its E + R + 1 shared counters) -> chunk[c, key] (its
// counts; every entry written), chunk[c, E + R] = its bad ids.
__device__ __forceinline__ void plan_count_chunk(const int32_t* __restrict__ indices, int64_t pairs, int k, int E, int R, int64_t c, int32_t* row,
                                                 int32_t* __restrict__ chunk) {
  const int lane = threadIdx.x & 31;
  const int cols = E + R + 1, per = E / R;
  for (int i = lane; i < cols; i += 32) row[i] = 0;
  __syncwarp();
  int bad = 0;
  for (int64_t r = 0; r < PLAN_ROUNDS; r++) {
    const int64_t id = (c * PLAN_ROUNDS + r) * 32 + lane;
    int ke, kr;
    plan_keys(indices, id, pairs, lane, k, E, per, ke, kr);
    if (id < pairs && ke < 0) bad++;
    const unsigned pe = __match_any_sync(FULL, ke), pr = __match_any_sync(FULL, kr);
    if (ke >= 0 && lane == __ffs(pe) - 1) row[ke] += __popc(pe);
    if (kr >= 0 && lane == __ffs(pr) - 1) row[kr] += __popc(pr);
    __syncwarp();
  }
  bad = (int)warp_sum_i64(bad);
  if (lane == 0) row[E + R] = bad;
  __syncwarp();
  for (int i = lane; i < cols; i += 32) chunk[c * cols + i] = row[i];
  __syncwarp();
}

// Each piece's end, for the symmetric windows' dispatch (src/ops/moe.ts): token counts, non-decreasing,
// each a multiple of 64 but the last, which is T. The plan's scan writes, after the table's R + E + 1
// totals, ends[c]'s count of tokens with a row on rank d (capped at the slots), at [R + E + 1 + c·R + d].
constexpr int CHUNK_MAX = 64;
struct ChunkEnds {
  int n;
  int32_t end[CHUNK_MAX];
};

// Pass 2, one column (every lane of a warp): its counts become exclusive prefixes over the chunks (32
// chunks a step, a shuffle scan each); the totals go to the table: rows per destination [R], pairs per
// expert [E], bad ids — or −T when fixed slots of slot_rows > 0 rows are too few for the T tokens. A
// piece's end e: tokens t < e have all their pairs below pair e·k and the others none, so rank column
// d's prefix at the chunk starting at pair e·k (a multiple of the chunk's 32·PLAN_ROUNDS pairs) counts
// the tokens before e with a row on d.
__device__ __forceinline__ void plan_scan_column(int col, int E, int R, int64_t chunks, int64_t T, int k, int64_t slot_rows, const ChunkEnds& ends,
                                                 int32_t* __restrict__ chunk, int32_t* __restrict__ table) {
  const int lane = threadIdx.x & 31;
  const int cols = E + R + 1;
  const bool rank_col = col >= E && col < E + R;
  const int64_t cap = slot_rows > 0 ? slot_rows : INT64_MAX;
  int32_t carry = 0;
  // SCAN_BATCH steps' loads (strided: a lane a chunk) in flight before they are scanned
  constexpr int SCAN_BATCH = 16;
  for (int64_t c0 = 0; c0 < chunks; c0 += 32 * SCAN_BATCH) {
    int32_t v[SCAN_BATCH];
#pragma unroll
    for (int b = 0; b < SCAN_BATCH; b++) {
      const int64_t c = c0 + 32 * b + lane;
      v[b] = c < chunks ? chunk[c * cols + col] : 0;
    }
#pragma unroll
    for (int b = 0; b < SCAN_BATCH; b++) {
      const int64_t c = c0 + 32 * b + lane;
      int32_t x = v[b];
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int32_t y = __shfl_up_sync(FULL, x, o);
        if (lane >= o) x += y;
      }
      if (c < chunks) {
        chunk[c * cols + col] = carry + x - v[b];
        if (rank_col) {
          for (int i = 0; i < ends.n; i++) {
            if (ends.end[i] < T && (int64_t)ends.end[i] * k == c * 32 * PLAN_ROUNDS) table[cols + i * R + (col - E)] = (int32_t)min((int64_t)(carry + x - v[b]), cap);
          }
        }
      }
      carry += __shfl_sync(FULL, x, 31);
    }
  }
  if (lane == 0) {
    if (col < E) table[R + col] = carry;
    else if (col < E + R) table[col - E] = carry;
    else table[R + E] = slot_rows > 0 && T > slot_rows ? (int32_t)-T : carry;
    if (rank_col) {
      for (int i = 0; i < ends.n; i++) {
        if (ends.end[i] >= T) table[cols + i * R + (col - E)] = (int32_t)min((int64_t)carry, cap);
      }
    }
  }
}

// Pass 3, one chunk (every lane of a warp; `row` its shared counters, `rank_start` the first send row of
// each rank: the exclusive scan of the table's R totals, or d·slot_rows with fixed slots), its pairs in
// ascending id -> pairRank, sendRow. A token's first pair also writes −1 for the ranks none of its slots
// is on (nobody else writes those entries), so every entry of sendRow is written without a memset; with
// fixed slots a place ≥ slot_rows gets −1 too (not sent).
__device__ __forceinline__ void plan_scatter_chunk(const int32_t* __restrict__ indices, int64_t pairs, int k, int E, int R, int64_t c, int64_t slot_rows,
                                                   const int32_t* __restrict__ chunk, const int32_t* rank_start, int32_t* row, int32_t* __restrict__ send_row,
                                                   int32_t* __restrict__ pair_rank) {
  const int lane = threadIdx.x & 31;
  const int cols = E + R + 1, per = E / R;
  for (int i = lane; i < cols; i += 32) row[i] = chunk[c * cols + i];
  __syncwarp();
  const unsigned below = (1u << lane) - 1;
  for (int64_t r = 0; r < PLAN_ROUNDS; r++) {
    const int64_t id = (c * PLAN_ROUNDS + r) * 32 + lane;
    int ke, kr;
    plan_keys(indices, id, pairs, lane, k, E, per, ke, kr);
    const unsigned pe = __match_any_sync(FULL, ke), pr = __match_any_sync(FULL, kr);
    const int32_t be = ke >= 0 ? row[ke] : 0, br = kr >= 0 ? row[kr] : 0;
    __syncwarp();
    if (ke >= 0) {
      if (lane == __ffs(pe) - 1) row[ke] = be + __popc(pe);
      pair_rank[id] = be + __popc(pe & below);
    } else if (id < pairs) {
      pair_rank[id] = -1;
    }
    if (kr >= 0) {
      if (lane == __ffs(pr) - 1) row[kr] = br + __popc(pr);
      const int d = kr - E;
      const int32_t place = br + __popc(pr & below);
      send_row[(id / k) * R + d] = slot_rows > 0 && place >= slot_rows ? -1 : rank_start[d] + place;
    }
    if (id < pairs && id % k == 0) {
      // the ranks token t = id / k sends nothing to
      const int32_t* ti = indices + id;
      for (int d = 0; d < R; d++) {
        bool any = false;
        for (int j = 0; j < k && !any; j++) {
          const int e = ti[j];
          any = e >= 0 && e < E && e / per == d;
        }
        if (!any) send_row[(id / k) * R + d] = -1;
      }
    }
    __syncwarp();
  }
}

// Rank `me`'s ready word for dispatch seq, stored by plan_kernel's CTA 0 into every rank's ready words (the
// windows dispatch's receive codes, DestRows::ready: word `me` at p[s] + ready + 8·me for s < R, release at
// system scope): (seq << 8) | (region + 1). R = 0: none. The plan is on the addon's stream, so the word
// comes after every earlier use of the region named (the user's kernels that read a recv it held) and
// before any pack waits for it. Before the word, once the plan's table is whole, CTA 0 stores the table
// (table_words words) into row `me` of every rank's gathered tables (at p[s] + tables, a signed offset),
// so that a rank that has seen every rank's word has every rank's table (DestRows' own expansion reads
// them); the tables' all-gather stores the same words again later.
struct PlanReady {
  uint64_t p[EP_MAX_RANKS];
  int64_t ready, tables;
  int R, me, region, table_words;
  uint32_t seq;
};

// The plan in one cooperative launch (every CTA resident; PLAN_WARPS warps a CTA, each a row of E + R + 1
// shared counters, then R ints of rank starts): pass 1 over the chunks, a grid barrier, pass 2 over the
// columns, a grid barrier, optionally the table to every rank and then the ready word (CTA 0), pass 3
// over the chunks — each a warp an item, grid-stride, so that any grid of at least one CTA covers every
// chunk and column. One launch
// instead of three: the host's queueing of each costs ~5 µs on the 2-rank machine, and the windows
// dispatch's pack cannot start before the host has queued it after the plan.
static __global__ void __launch_bounds__(PLAN_WARPS * 32) plan_kernel(const int32_t* __restrict__ indices, int64_t T, int k, int E, int R,
                                                                    int64_t slot_rows, const ChunkEnds ends, int32_t* __restrict__ chunk,
                                                                    int32_t* __restrict__ table, int32_t* __restrict__ send_row,
                                                                    int32_t* __restrict__ pair_rank, const PlanReady ready) {
  extern __shared__ int32_t plan_smem[];
  const int warp = threadIdx.x >> 5;
  const int cols = E + R + 1;
  const int64_t pairs = T * k, chunks = plan_chunks(pairs);
  const int64_t gw = (int64_t)blockIdx.x * PLAN_WARPS + warp, warps = (int64_t)gridDim.x * PLAN_WARPS;
  int32_t* row = plan_smem + warp * cols;
  int32_t* rank_start = plan_smem + PLAN_WARPS * cols;
  cooperative_groups::grid_group grid = cooperative_groups::this_grid();
  for (int64_t c = gw; c < chunks; c += warps) plan_count_chunk(indices, pairs, k, E, R, c, row, chunk);
  grid.sync();
  for (int64_t col = gw; col < cols; col += warps) plan_scan_column((int)col, E, R, chunks, T, k, slot_rows, ends, chunk, table);
  grid.sync();
  if (blockIdx.x == 0 && ready.R > 0) {
    // the table (whole now) into row me of every rank's tables, each thread's stores fenced at system
    // scope before the CTA's barrier; then rank me's word in rank s's ready words: (seq << 8) |
    // (region + 1), release at system scope
    for (int s = 0; s < ready.R; s++) {
      int32_t* dst = reinterpret_cast<int32_t*>((uintptr_t)(ready.p[s] + ready.tables));
      for (int i = threadIdx.x; i < ready.table_words; i += blockDim.x) dst[i] = table[i];
    }
    __threadfence_system();
    __syncthreads();
    if (threadIdx.x < ready.R) {
      __threadfence_system();
      uint64_t* word = reinterpret_cast<uint64_t*>((uintptr_t)(ready.p[threadIdx.x] + ready.ready) + 8 * (uint64_t)ready.me);
      const uint64_t v = (uint64_t)ready.seq << 8 | (uint64_t)(ready.region + 1);
      asm volatile("st.release.sys.global.u64 [%0], %1;" ::"l"(word), "l"(v) : "memory");
    }
  }
  if (threadIdx.x == 0) {
    int32_t acc = 0;
    for (int d = 0; d < R; d++) {
      rank_start[d] = slot_rows > 0 ? (int32_t)(d * slot_rows) : acc;
      acc += table[d];
    }
  }
  __syncthreads();
  for (int64_t c = gw; c < chunks; c += warps) plan_scatter_chunk(indices, pairs, k, E, R, c, slot_rows, chunk, rank_start, row, send_row, pair_rank);
}

// ---------------------------------------------------------------- pack
//
// A packed row (dispatchRowLayout in src/runtime/backend.ts): the payload at 0, the f32 scales at
// scales_at (FP8), the meta i32 [3k] at meta_at; stride a multiple of 16 bytes.

// Where each destination's rows go: row s of the send rows (sendRow's value) for rank d is at
// p[d] + (s − d·slot)·stride. One buffer: p[d] = the buffer, slot = 0. Each rank's own buffer (NCCL's
// symmetric windows, native/cuda/nccl_lsa.cu): p[d] = this rank's slot in rank d's window, slot = M.
struct DestRows {
  uint64_t p[EP_MAX_RANKS];
  int64_t slot;
  // The windows' landing signal (null `done` elsewhere: none): once every CTA's rows are stored, the
  // last CTA to finish stores seq at p[d] + signal in each destination d < R (a u32 of d's window, with
  // release semantics at system scope: pack_signal); done is this rank's CTA counter, zero between launches.
  int64_t signal;
  uint32_t* done;
  uint32_t seq;
  // The receive codes (pack_fp8_warp_kernel alone; null `ready`: none, every row's codes to its slot
  // row). The windows dispatch with FP8 rows and expand: false hands each rank's recv over as the
  // storage of R·M rows of H codes in which its received rows lie in order, received row 0 at storage row
  // anchor·M − (the rows of the sources before the anchor), anchor = receive_anchor(rank, R): so source
  // anchor − 1's rows end at storage row anchor·M and source anchor's start there, places each sender
  // knows from its own count alone (at R = 2, every source). Rank d says at the start of each dispatch
  // which storage that is: its word in every rank's ready words (u64 [R] at `ready`, this rank's: word d
  // from rank d, (seq << 8) | (r + 1), stored by plan_kernel's CTA 0 once its table is whole and stored to every rank: PlanReady) names its receive region r of the window, or
  // none (r = −1). The pack waits for that word (wait_ready), then stores the codes of its rows to d
  // straight into region r of d's window (at p[d] + region + r·region_bytes) when it is one of d's two
  // anchored sources, and into its slot row otherwise; its own rows' codes go to its own region, or to
  // `fallback` (R·M rows of H: the pool's recv) where its word says none. Scales and meta always go to the
  // slot row. `sent` is this rank's plan table (word d: its rows to rank d).
  const uint64_t* ready;
  const int32_t* sent;
  int64_t region, region_bytes;
  int regions;  // the receive regions a window holds (a word naming another traps)
  uint64_t fallback;
  int me;
  // The own expansion (with `ready`; null `ex`: none): this rank's own rows' codes and scales also to
  // their places in its expertX (ex: E4M3 [ex_rows, H], ex_scales: f32 [ex_rows, H/128]), which the
  // scatter then leaves alone (ScatterArgs::own_expanded), so that the expansion of half the rows runs
  // while the pack waits on the link instead of after it. A place is recv_scan_kernel's base[me, l] +
  // the pair's rank among this rank's pairs to l; the bases come from every rank's table in `tables`
  // (this rank's gathered tables, i32 [R, table_words]), there once every rank's ready word is
  // (PlanReady), and block size bs. Places past ex_rows are not written (nor by the scatter: expertX is
  // then gathered anew).
  uint8_t* ex;
  float* ex_scales;
  int64_t ex_rows;
  const int32_t* tables;
  int table_words, bs;
};

// The source rank whose rows start at row anchor·M of rank d's receive storage (DestRows' receive
// codes): d itself but for rank 0, whose anchor is 1 (so that at R = 2 both ranks anchor between sources
// 0 and 1); 0 with one rank. Source anchor − 1's rows end there. src/ops/moe.ts's receiveAnchor is the same.
__host__ __device__ __forceinline__ int receive_anchor(int d, int R) { return d < 1 ? (R > 1 ? 1 : 0) : d; }

// The receive codes' first row in rank d's storage of what this rank (`me`) sends it, `rows` of them
// (≤ M), or −1 when they go to its slot instead: anchored sources only.
__host__ __device__ __forceinline__ int64_t receive_first_row(int me, int d, int R, int64_t M, int64_t rows) {
  const int a = receive_anchor(d, R);
  if (me == a) return (int64_t)a * M;
  if (me == a - 1) return (int64_t)a * M - rows;
  return -1;
}

// The windows dispatch's signal words (u32, after the data halves of each rank's window, zero at first):
// word 0 this rank's pack CTA count (DestRows::done), then word SIGNAL_HEAD + c·R + s piece c's landing
// signal from rank s (src/native/nccl.ts sizes the area).
constexpr int SIGNAL_HEAD = 1;

// The end of a pack kernel, by every thread of every CTA (a no-op without to.done): each thread's row
// stores (some into peers' memory) fenced at system scope, then a CTA's arrival counted; the CTA that
// arrives last (every other CTA's stores fenced before its count) resets the counter for the next
// launch on the stream and stores the signal into each destination, after a fence of its own.
__device__ __forceinline__ void pack_signal(const DestRows& to, int R) {
  if (to.done == nullptr) return;
  __threadfence_system();
  __syncthreads();
  if (threadIdx.x != 0) return;
  if (atomicAdd(to.done, 1u) != gridDim.x - 1) return;
  __threadfence_system();
  *to.done = 0;
  for (int d = 0; d < R; d++) {
    uint32_t* flag = reinterpret_cast<uint32_t*>((uintptr_t)(to.p[d] + to.signal));
    asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(flag), "r"(to.seq) : "memory");
  }
}

// A wait's clock (wait_signal's and wait_ready's, called after each miss): every 1024 misses it reads
// the global timer, the first time into t0; true once 30 s have passed since, when the caller traps
// with its message instead of hanging the stream.
__device__ __forceinline__ bool waited_30s(uint32_t spin, uint64_t& t0) {
  if ((spin & 1023) != 0) return false;
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  if (spin == 0) t0 = t;
  return spin != 0 && t - t0 > 30000000000ull;
}

// A receiver's wait for a landing signal (every thread that will read the rows calls it): until *flag
// has reached seq (u32 sequence numbers, compared modulo 2^32), loads with acquire semantics at system
// scope, so that the rows read after it are those stored before the signal. A sender that never
// signals (a rank that stopped or called a different op) would hang the stream: after 30 s the kernel
// traps instead, with a message, and the next CUDA call reports the error.
__device__ __forceinline__ void wait_signal(const uint32_t* flag, uint32_t seq, int source) {
  uint64_t t0 = 0;  // the clock at the first miss
  for (uint32_t spin = 0;; spin++) {
    uint32_t v;
    asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(flag) : "memory");
    if ((int32_t)(v - seq) >= 0) return;
    if (waited_30s(spin, t0)) {
      if ((threadIdx.x & 31) == 0) printf("hotpaths: moe.dispatch waited 30 s for rank %d's rows (signal %u, want %u): a rank stopped or called another op\n", source, v, seq);
      __trap();
    }
  }
}

// Rank d's ready word for dispatch `seq` (DestRows::ready, every thread that asks): waits until the
// word's sequence number has reached seq (acquire at system scope, like wait_signal; a rank that never
// posts traps after 30 s with a message), then returns the receive region it names, or −1 for none.
__device__ __forceinline__ int wait_ready(const uint64_t* word, uint32_t seq, int d) {
  uint64_t t0 = 0;
  for (uint32_t spin = 0;; spin++) {
    uint64_t v;
    asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(word) : "memory");
    if ((int32_t)((uint32_t)(v >> 8) - seq) >= 0) return (int)(v & 0xff) - 1;
    if (waited_30s(spin, t0)) {
      printf("hotpaths: moe.dispatch waited 30 s for rank %d to start dispatch %u (its word %llu): a rank stopped or called another op\n", d, seq, (unsigned long long)v);
      __trap();
    }
  }
}

// Token t's destinations, one slot each: row[j] = the address of its send row when slot j is the first
// of the token on its expert's rank (drank[j] = that rank), else null; and the same addresses without
// the nulls, dst[0, *nd) in slot order, so that the payload's stores loop over the token's destinations
// (≤ R) instead of its k slots. Then the meta of every destination row: [local ids | weight bits | pair
// ranks], −1 / 0 / −1 for slots whose expert is elsewhere. Ends with the CTA synchronized.
__device__ __forceinline__ void pack_head(int64_t t, const int32_t* __restrict__ indices, const float* __restrict__ weights, int k, int E, int R,
                                          const int32_t* __restrict__ send_row, const int32_t* __restrict__ pair_rank, int64_t S,
                                          const DestRows& to, int64_t stride, int64_t meta_at, uint8_t** row, int* drank, uint8_t** dst, int* nd) {
  const int per = E / R;
  const int j = threadIdx.x;
  if (j < k) {
    const int e = indices[t * k + j];
    uint8_t* r = nullptr;
    int d = -1;
    if (e >= 0 && e < E) {
      d = e / per;
      bool first = true;
      for (int q = 0; q < j; q++) {
        const int f = indices[t * k + q];
        if (f >= 0 && f < E && f / per == d) first = false;
      }
      if (first) {
        const int64_t s = (int64_t)send_row[t * R + d] - d * to.slot;
        if (s >= 0 && s < S) r = (uint8_t*)(uintptr_t)to.p[d] + s * stride;
      }
    }
    row[j] = r;
    drank[j] = d;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < k * k; i += blockDim.x) {
    const int jd = i / k, js = i % k;  // the destination slot, the slot described
    if (row[jd] == nullptr) continue;
    const int e = indices[t * k + js];
    const bool here = e >= 0 && e < E && e / per == drank[jd];
    int32_t* m = reinterpret_cast<int32_t*>(row[jd] + meta_at);
    m[js] = here ? e - drank[jd] * per : -1;
    m[k + js] = here ? __float_as_int(weights[t * k + js]) : 0;
    m[2 * k + js] = here ? pair_rank[t * k + js] : -1;
  }
  if (threadIdx.x == 0) {
    int n = 0;
    for (int j = 0; j < k; j++) {
      if (row[j] != nullptr) dst[n++] = row[j];
    }
    *nd = n;
  }
  __syncthreads();
}

// x rows [T, units] (U units) -> the payload of each destination row of each token. A CTA per token.
template <typename U>
__global__ void __launch_bounds__(EP_THREADS) pack_rows_kernel(const U* __restrict__ x, int64_t T, int64_t units, const int32_t* __restrict__ indices,
                                                               const float* __restrict__ weights, int k, int E, int R, const int32_t* __restrict__ send_row,
                                                               const int32_t* __restrict__ pair_rank, int64_t S, const DestRows to,
                                                               int64_t stride, int64_t meta_at) {
  __shared__ uint8_t* row[EP_MAX_K];
  __shared__ uint8_t* dst[EP_MAX_K];
  __shared__ int drank[EP_MAX_K];
  __shared__ int nd;
  for (int64_t t = blockIdx.x; t < T; t += gridDim.x) {
    pack_head(t, indices, weights, k, E, R, send_row, pair_rank, S, to, stride, meta_at, row, drank, dst, &nd);
    for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
      const U v = x[t * units + u];
      for (int i = 0; i < nd; i++) reinterpret_cast<U*>(dst[i])[u] = v;
    }
    __syncthreads();  // row and dst are rewritten for the next token
  }
  pack_signal(to, R);
}

// Four f32 bit patterns -> four E4M3 codes (element 0 in the low byte): the hardware conversion on
// sm_89+ (cvt.rn.satfinite: round to nearest even, saturate, NaN -> 0x7F — fp8_encode_bits exactly,
// as native/cuda/fp8.cu checks), the integer codec elsewhere.
__device__ __forceinline__ uint32_t e4m3_encode4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  unsigned short lo, hi;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(lo) : "f"(__uint_as_float(b)), "f"(__uint_as_float(a)));
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(hi) : "f"(__uint_as_float(d)), "f"(__uint_as_float(c)));
  return (uint32_t)lo | ((uint32_t)hi << 16);
#else
  return fp8_encode_bits<FP8_E4M3>(a) | (fp8_encode_bits<FP8_E4M3>(b) << 8) | (fp8_encode_bits<FP8_E4M3>(c) << 16) |
         (fp8_encode_bits<FP8_E4M3>(d) << 24);
#endif
}

__device__ __forceinline__ void load8_bits(const uint16_t* p, uint32_t v[8]) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    v[2 * i] = w[i] << 16;
    v[2 * i + 1] = w[i] & 0xFFFF0000u;
  }
}
__device__ __forceinline__ void load8_bits(const float* p, uint32_t v[8]) {
  const uint4 a = *reinterpret_cast<const uint4*>(p), b = *reinterpret_cast<const uint4*>(p + 4);
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}

// x / scale for a bf16 x, from r = __frcp_rn(scale): one reciprocal for a thread's 8 elements of a
// block instead of a division each. q = x·r, then two steps with the exact remainder x − q·scale (an
// fma); the sign is x's (copysign: a zero remainder's fma would turn −0 into +0). The result can differ from __fdiv_rn(x, scale) in the f32 quotient's last place (when
// x / scale lies very near a midpoint of two f32s), but never in its E4M3 code: for every bf16 x and
// every bf16 amax with |x| ≤ amax (all the pairs a block of bf16 x can hold), the codes are the same —
// native/cuda/dev/quotient_check.cu checks them all. For f32 x the pack divides (__fdiv_rn): sampled
// pairs agree too, but they cannot all be checked.
__device__ __forceinline__ float quotient_rn(float x, float scale, float r) {
  float q = __fmul_rn(x, r);
  q = __fmaf_rn(__fmaf_rn(-q, scale, x), r, q);
  q = __fmaf_rn(__fmaf_rn(-q, scale, x), r, q);
  return copysignf(q, x);
}

// A lane's 8 elements (f32 bit patterns) -> their E4M3 codes (element 0 in the low byte) and, in
// `scale`, their 1×128 block's scale; 16 consecutive lanes hold a block (the amax by shuffles, so every
// lane of the warp calls it). The arithmetic is pack_fp8_kernel's, described below.
template <typename In>
__device__ __forceinline__ uint2 quantize8(const uint32_t v[8], float& scale) {
  uint32_t amax = 0;
#pragma unroll
  for (int i = 0; i < 8; i++) amax = max(amax, v[i] & 0x7FFFFFFFu);
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) amax = max(amax, __shfl_xor_sync(FULL, amax, o));
  scale = fp8_scale_from_amax_bits<FP8_E4M3>(amax, false);
  uint32_t y[8];
  if constexpr (sizeof(In) == 2) {
    const float r = __frcp_rn(scale);
#pragma unroll
    for (int i = 0; i < 8; i++) y[i] = __float_as_uint(quotient_rn(__uint_as_float(v[i]), scale, r));
  } else {
#pragma unroll
    for (int i = 0; i < 8; i++) y[i] = __float_as_uint(__fdiv_rn(__uint_as_float(v[i]), scale));
  }
  if (amax >= 0x7F800000u) return make_uint2(0x7F7F7F7Fu, 0x7F7F7F7Fu);  // a NaN or ±inf in the block
  return make_uint2(e4m3_encode4(y[0], y[1], y[2], y[3]), e4m3_encode4(y[4], y[5], y[6], y[7]));
}

// A token's H/128 scales, gathered in shared memory (row4: whole float4s), to the scales of each of its
// n destination rows (at scales_at, 16-byte aligned): 16-byte stores of the whole groups of 4, then the
// last few alone (a destination may be a peer's memory, where a lone 4-byte store costs a whole NVLink
// write of its own). This thread takes items u0, u0 + step, …
__device__ __forceinline__ void store_scales(uint8_t* const* dst, int n, const float4* row4, int64_t nb, int64_t scales_at, int64_t u0, int64_t step) {
  const float* row = reinterpret_cast<const float*>(row4);
  const int64_t n4 = nb / 4;
  for (int64_t u = u0; u < n4 + (nb - 4 * n4); u += step) {
    for (int i = 0; i < n; i++) {
      uint8_t* r = dst[i];
      if (u < n4) reinterpret_cast<float4*>(r + scales_at)[u] = row4[u];
      else reinterpret_cast<float*>(r + scales_at)[4 * n4 + (u - n4)] = row[4 * n4 + (u - n4)];
    }
  }
}

constexpr int PACK_UNROLL = 4;

// One token's payload, by thread i of `threads` (a CTA's or a warp's, a multiple of 16): x's row xt [H]
// -> its E4M3 codes at each of the n destination rows dst, its H/128 scales into srow (shared memory,
// stored to the rows after by store_scales). 8 elements a thread a step, 16 threads a 1×128 block (their
// amax by shuffles); PACK_UNROLL steps' loads in flight before the first is quantized (the kernels are
// bound by the latency of x's loads otherwise: one 16-byte load a thread at a time); each destination's
// stores of a step together (its address read once).
template <typename In>
__device__ __forceinline__ void pack_payload(const In* __restrict__ xt, int64_t H, uint8_t* const* dst, int n, float* srow, int i, int threads) {
  for (int64_t h0 = 0; h0 < H; h0 += (int64_t)threads * 8 * PACK_UNROLL) {
    uint32_t v[PACK_UNROLL][8];
#pragma unroll
    for (int s = 0; s < PACK_UNROLL; s++) {
      const int64_t h = h0 + ((int64_t)s * threads + i) * 8;
#pragma unroll
      for (int j = 0; j < 8; j++) v[s][j] = 0;
      if (h < H) load8_bits(xt + h, v[s]);
    }
    uint2 codes[PACK_UNROLL];
#pragma unroll
    for (int s = 0; s < PACK_UNROLL; s++) {
      const int64_t h = h0 + ((int64_t)s * threads + i) * 8;
      const bool valid = h < H;  // whole 16-thread groups are in or out (H % 128 == 0)
      float scale;
      codes[s] = quantize8<In>(v[s], scale);
      if (valid && (i & 15) == 0) srow[h / 128] = scale;
    }
    for (int d = 0; d < n; d++) {
      uint8_t* r = dst[d];
#pragma unroll
      for (int s = 0; s < PACK_UNROLL; s++) {
        const int64_t h = h0 + ((int64_t)s * threads + i) * 8;
        if (h < H) *reinterpret_cast<uint2*>(r + h) = codes[s];
      }
    }
  }
}

// x: f32|bf16 [T, H] (H % 128 == 0, 16-byte aligned rows) -> rows: E4M3 codes [S, H], scales: f32
// [S, H/128] of each destination row, quantized like fp8.quantize (1×128 blocks, plain scales): a
// block's amax as integer bits, scale = fp8_scale_from_amax_bits, code = e4m3(x / scale) with x / scale
// an IEEE division (for bf16 x quotient_rn, which gives the same codes), and a block holding NaN or ±inf
// all 0x7F (scale NaN). A CTA per token; each thread holds 8 elements a step, 16 threads a block (their
// amax by shuffles), so x is read once and each code computed once, then stored to each of the token's
// destinations.
// The row's scales are gathered in shared memory (dynamic, H/128 floats) and stored 16 bytes at a time
// once the codes are out: a destination may be a peer's memory, where a lone 4-byte store costs a
// whole NVLink write of its own.
template <typename In>
__global__ void __launch_bounds__(EP_THREADS, 8) pack_fp8_kernel(const In* __restrict__ x, int64_t T, int64_t H, const int32_t* __restrict__ indices,
                                                              const float* __restrict__ weights, int k, int E, int R, const int32_t* __restrict__ send_row,
                                                              const int32_t* __restrict__ pair_rank, int64_t S, const DestRows to,
                                                              int64_t stride, int64_t scales_at, int64_t meta_at) {
  __shared__ uint8_t* row[EP_MAX_K];
  __shared__ uint8_t* dst[EP_MAX_K];
  __shared__ int drank[EP_MAX_K];
  __shared__ int nd;
  extern __shared__ float4 scale_row4[];  // [ceil(H/512)]: the token's H/128 scales
  float* scale_row = reinterpret_cast<float*>(scale_row4);
  const int64_t nb = H / 128;
  for (int64_t t = blockIdx.x; t < T; t += gridDim.x) {
    pack_head(t, indices, weights, k, E, R, send_row, pair_rank, S, to, stride, meta_at, row, drank, dst, &nd);
    const int n = nd;
    pack_payload(x + t * H, H, dst, n, scale_row, threadIdx.x, blockDim.x);
    __syncthreads();  // the scales are all in shared memory
    store_scales(dst, n, scale_row4, nb, scales_at, threadIdx.x, blockDim.x);
    __syncthreads();  // row, dst and the scales are rewritten for the next token
  }
  pack_signal(to, R);
}

// DestRows' own expansion: base[l] = recv_scan_kernel's base[me, l] for this rank's per local experts
// (the first place of this rank's pairs to l in expertX), from the gathered tables, by warp 0 of the CTA
// (32 experts a step: their counts over the ranks, padded to bs, a shuffle scan; the same int32 and int64
// arithmetic as recv_scan_kernel, so the same places). The tables are read through L2 (written by the
// other ranks' plans, seen through their ready words). Every thread of the CTA calls it; ends synchronized.
__device__ __forceinline__ void own_bases(const DestRows& to, int R, int per, int32_t* base) {
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    const int W = to.table_words;
    int64_t carry = 0;
    for (int l0 = 0; l0 < per; l0 += 32) {
      const int l = l0 + lane;
      int32_t c = 0, before = 0;
      if (l < per) {
        for (int s = 0; s < R; s++) {
          if (s == to.me) before = c;
          c += __ldcg(to.tables + (int64_t)s * W + R + to.me * per + l);
        }
      }
      const int64_t padded = l < per ? ((int64_t)c + to.bs - 1) / to.bs * to.bs : 0;
      int64_t incl = padded;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int64_t y = __shfl_up_sync(FULL, incl, o);
        if (lane >= o) incl += y;
      }
      if (l < per) base[l] = (int32_t)(carry + incl - padded) + before;
      carry += __shfl_sync(FULL, incl, 31);
    }
  }
  __syncthreads();
}

// pack_fp8_kernel with a warp per token at a time (k ≤ 32; pack_fp8_kernel for more): the token's
// destinations come from lanes < k by shuffles and ballots and the scales are gathered in the warp's
// own row of shared memory, so nothing waits at a CTA-wide barrier, and each warp goes through its
// tokens on its own. Same arithmetic and stores as pack_fp8_kernel, so the same bytes
// (native/cuda/dev/pack_check.cu compares them).
constexpr int PACK_WARPS = 8;  // warps a CTA
template <typename In>
__global__ void __launch_bounds__(PACK_WARPS * 32, 4) pack_fp8_warp_kernel(const In* __restrict__ x, int64_t T, int64_t H, const int32_t* __restrict__ indices,
                                                                        const float* __restrict__ weights, int k, int E, int R, const int32_t* __restrict__ send_row,
                                                                        const int32_t* __restrict__ pair_rank, int64_t S, const DestRows to, int64_t stride,
                                                                        int64_t scales_at, int64_t meta_at) {
  __shared__ uint8_t* dst_of[PACK_WARPS][32];
  __shared__ uint8_t* codes_of[PACK_WARPS][32];  // where each destination's codes go, then (own expansion) the expertX rows'
  __shared__ float* ex_scales_of[PACK_WARPS][32];  // (own expansion) the expertX rows' scales
  __shared__ uint64_t codes_at[EP_MAX_RANKS];    // per destination: its receive codes' row 0 of this rank's, or 0: the slot
  extern __shared__ float4 scale_rows4[];  // [PACK_WARPS, ceil(H/512)]: each warp's token's H/128 scales; then (own expansion) i32 [E/R] bases
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  // DestRows' receive codes: each destination's ready word, then where this rank's rows' codes go there
  for (int d = threadIdx.x; d < R; d += blockDim.x) {
    uint64_t at = 0;
    if (to.ready != nullptr) {
      const int r = wait_ready(to.ready + d, to.seq, d);
      if (r >= to.regions) {
        printf("hotpaths: moe.dispatch: rank %d names receive region %d of %d\n", d, r, to.regions);
        __trap();
      }
      const int64_t rows = min(max((int64_t)to.sent[d], (int64_t)0), S);
      const int64_t first = receive_first_row(to.me, d, R, S, rows);
      if (r >= 0 && first >= 0) at = to.p[d] + to.region + (uint64_t)r * to.region_bytes + (uint64_t)first * H;
      else if (d == to.me && to.fallback != 0) at = to.fallback + (uint64_t)first * H;  // (first ≥ 0: a rank is one of its own anchored sources)
    }
    codes_at[d] = at;
  }
  __syncthreads();
  uint8_t** dst = dst_of[w];
  uint8_t** codes = codes_of[w];
  float** exs = ex_scales_of[w];
  const int64_t nb = H / 128;
  float4* srow4 = scale_rows4 + w * ((nb + 3) / 4);
  float* srow = reinterpret_cast<float*>(srow4);
  const int per = E / R;
  // (own expansion: every rank's table is here, since every rank's ready word is)
  int32_t* own_base = reinterpret_cast<int32_t*>(scale_rows4 + PACK_WARPS * ((nb + 3) / 4));
  if (to.ex != nullptr) own_bases(to, R, per, own_base);
  for (int64_t t = (int64_t)blockIdx.x * PACK_WARPS + w; t < T; t += (int64_t)gridDim.x * PACK_WARPS) {
    // slot `lane`'s rank d (−1 for a bad id or lane ≥ k) and, when no earlier slot of the token is on d,
    // its send row's address there
    int e = -1, d = -1;
    float wt = 0.f;
    int32_t pr = -1;
    if (lane < k) {
      e = indices[t * k + lane];
      wt = weights[t * k + lane];
      pr = pair_rank[t * k + lane];
      if (e >= 0 && e < E) d = e / per;
    }
    bool first = d >= 0;
    for (int q = 0; q < k; q++) {
      const int dq = __shfl_sync(FULL, d, q);
      if (q < lane && dq == d) first = false;
    }
    uint8_t *r = nullptr, *c = nullptr;
    if (first) {
      const int64_t srow_ = (int64_t)send_row[t * R + d] - d * to.slot;
      if (srow_ >= 0 && srow_ < S) {
        r = (uint8_t*)(uintptr_t)to.p[d] + srow_ * stride;
        c = codes_at[d] != 0 ? (uint8_t*)(uintptr_t)codes_at[d] + srow_ * H : r;
      }
    }
    // (own expansion) slot `lane`'s place in expertX when its expert is on this rank and the token's row
    // to this rank is sent
    int64_t xp = -1;
    if (to.ex != nullptr && d == to.me && pr >= 0) {
      const int64_t so = (int64_t)send_row[t * R + d] - d * to.slot;
      const int64_t p = (int64_t)own_base[e - d * per] + pr;
      if (so >= 0 && so < S && p >= 0 && p < to.ex_rows) xp = p;
    }
    const unsigned has = __ballot_sync(FULL, r != nullptr), hasx = __ballot_sync(FULL, xp >= 0);
    const int n = __popc(has), nx = __popc(hasx);
    __syncwarp();  // the last token's list has been read by every lane
    if (r != nullptr) {
      const int at = __popc(has & ((1u << lane) - 1));
      dst[at] = r;
      codes[at] = c;
    }
    if (xp >= 0) {
      const int at = __popc(hasx & ((1u << lane) - 1));
      codes[n + at] = to.ex + xp * H;
      exs[at] = to.ex_scales + xp * nb;
    }
    // the meta of every destination row: [local ids | weight bits | pair ranks], −1 / 0 / −1 elsewhere
    for (unsigned m = has; m; m &= m - 1) {
      const int jd = __ffs(m) - 1;
      uint8_t* rd = reinterpret_cast<uint8_t*>(__shfl_sync(FULL, reinterpret_cast<unsigned long long>(r), jd));
      const int dd = __shfl_sync(FULL, d, jd);
      if (lane < k) {
        const bool here = d == dd;
        int32_t* mm = reinterpret_cast<int32_t*>(rd + meta_at);
        mm[lane] = here ? e - dd * per : -1;
        mm[k + lane] = here ? __float_as_int(wt) : 0;
        mm[2 * k + lane] = here ? pr : -1;
      }
    }
    __syncwarp();
    pack_payload(x + t * H, H, codes, n + nx, srow, lane, 32);
    __syncwarp();  // the scales are all in shared memory
    store_scales(dst, n, srow4, nb, scales_at, lane, 32);
    for (int64_t u = lane; u < nb && nx > 0; u += 32) {
      const float v = srow[u];
      for (int i = 0; i < nx; i++) exs[i][u] = v;
    }
  }
  pack_signal(to, R);
}

// pack_fp8_warp_kernel's dynamic shared memory: each warp's token's H/128 scales (whole float4s), then
// with DestRows' own expansion its bases (own_per = E/R ints; 0 without).
inline size_t warp_pack_smem(uint64_t H, uint64_t own_per) { return (size_t)((H / 128 + 3) / 4 * 16 * PACK_WARPS + 4 * own_per); }

// Whether the FP8 pack can be pack_fp8_warp_kernel (a warp a token: k ≤ 32 and every warp's scales in
// shared memory), the one pack that writes DestRows' receive codes elsewhere.
inline bool warp_pack_fits(uint64_t k, uint64_t H) { return k <= 32 && warp_pack_smem(H, 0) <= 48 * 1024; }

// Whether pack_fp8_warp_kernel can also take DestRows' own expansion: a token's destinations and
// expertX rows (at most min(k, R) + k) in its warp's 32-entry list, and the bases beside the scales in
// shared memory.
inline bool own_expansion_fits(uint64_t k, uint64_t H, uint64_t E, uint64_t R) {
  return warp_pack_fits(k, H) && k + (k < R ? k : R) <= 32 && warp_pack_smem(H, E / R) <= 48 * 1024;
}

// ---------------------------------------------------------------- receive layout

// One CTA. tables: i32 [R, W ≥ R + E + 1] -> base [R, per], counts [per]; work: start [per + 1]
// (start[per] = P), then n (rows received).
static __global__ void __launch_bounds__(1024) recv_scan_kernel(const int32_t* __restrict__ tables, int R, int W, int E, int rank, int bs,
                                                                int32_t* __restrict__ base, int32_t* __restrict__ counts, int32_t* __restrict__ work) {
  __shared__ int64_t wsum[32];
  const int per = E / R;
  int64_t carry = 0;
  for (int l0 = 0; l0 < per; l0 += 1024) {
    const int l = l0 + threadIdx.x;
    int64_t padded = 0;
    if (l < per) {
      int32_t c = 0;
      for (int s = 0; s < R; s++) {
        base[s * per + l] = c;  // the offset within the segment; the start is added below
        c += tables[s * W + R + rank * per + l];
      }
      counts[l] = c;
      padded = ((int64_t)c + bs - 1) / bs * bs;
    }
    int64_t total;
    const int64_t incl = cta1024_inclusive_scan(padded, wsum, total);
    if (l < per) {
      const int32_t st = (int32_t)(carry + incl - padded);
      work[l] = st;
      for (int s = 0; s < R; s++) base[s * per + l] += st;
    }
    carry += total;
  }
  if (threadIdx.x == 0) {
    int32_t n = 0;
    for (int s = 0; s < R; s++) n += tables[s * W + rank];
    work[per] = (int32_t)carry;
    work[per + 1] = n;
  }
}

// A thread per row of [0, Pmax): sortedPairs = the sentinel n·k, rowExpert and blockExpert as align.
static __global__ void recv_fill_kernel(int per, int bs, int k, int64_t pmax, const int32_t* __restrict__ counts, const int32_t* __restrict__ work,
                                        int32_t* __restrict__ sorted, int32_t* __restrict__ block_expert, int32_t* __restrict__ row_expert) {
  const int64_t P = work[per], sentinel = (int64_t)work[per + 1] * k;
  for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < pmax; r += (int64_t)gridDim.x * blockDim.x) {
    int l = -1;
    bool real = false;
    if (r < P) {
      // the last expert whose segment starts at or before r (empty segments share their start)
      int lo = 0, hi = per - 1;
      while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (work[mid] <= r) lo = mid;
        else hi = mid - 1;
      }
      l = lo;
      real = r - work[lo] < counts[lo];
    }
    sorted[r] = (int32_t)sentinel;
    row_expert[r] = real ? l : -1;
    if (r % bs == 0) block_expert[r / bs] = l;
  }
}

// A CTA per (local expert l, padding slot i < bs) at a time: row start[l] + count[l] + i, when it is
// still in l's segment (and below exRows), gets zero bytes in expertX and its scales.
template <typename U>
__global__ void recv_zero_kernel(int per, int bs, const int32_t* __restrict__ counts, const int32_t* __restrict__ work, U* __restrict__ ex, int64_t ex_rows,
                                 int64_t units, uint32_t* __restrict__ exs, int64_t scale_words) {
  for (int64_t slot = blockIdx.x; slot < (int64_t)per * bs; slot += gridDim.x) {
    const int l = (int)(slot / bs);
    const int64_t r = (int64_t)work[l] + counts[l] + slot % bs;
    if (r >= work[l + 1] || r >= ex_rows) continue;
    for (int64_t u = threadIdx.x; u < units; u += blockDim.x) ex[r * units + u] = U{};
    if (exs) {
      for (int64_t u = threadIdx.x; u < scale_words; u += blockDim.x) exs[r * scale_words + u] = 0;
    }
  }
}

// ---------------------------------------------------------------- scatter

// Up to SCATTER_MAX_SOURCES sources in one launch: source q's packed rows [first[q], first[q] + rows) of
// src[q] (rank source[q]'s rows), to the received rows from recv_row[q]; end[q] = the rows of sources
// 0..q together (the CTAs stride over [0, end[n − 1])). With `tables` those three come from the windows'
// gathered tables on the device instead (scatter_ranges), so that the launch can be queued before the
// host has read them; the host's end[] then only bounds the grid.
constexpr int SCATTER_MAX_SOURCES = 8;
struct ScatterArgs {
  int n;
  const uint8_t* src[SCATTER_MAX_SOURCES];  // packed rows [*, stride]
  int32_t source[SCATTER_MAX_SOURCES], first[SCATTER_MAX_SOURCES], recv_row[SCATTER_MAX_SOURCES], end[SCATTER_MAX_SOURCES];
  // null, or the gathered tables i32 [ranks, table_words] (row s: rank s's plan table, R + E + 1 + C·R
  // words): piece `piece` of `pieces` of each source's rows to rank `me`, counts clamped to [0, slot_rows]
  const int32_t* tables = nullptr;
  int table_words = 0, ranks = 0, experts = 0, me = 0, piece = 0, pieces = 0;
  int32_t slot_rows = 0;
  // recv holds DestRows' receive codes, where some sources' codes are already: 1, rank me's own (the
  // pack's fallback: no receive region); 2, those of the two anchored sources (receive_first_row: a
  // receive region). With tables recv is their whole storage (R·slot_rows rows, received row q at
  // storage row q + anchor·slot_rows − (the rows of the sources before the anchor)); without, it starts
  // at received row 0 (the host's ranges). The kernels copy no codes of those sources (their scales and
  // index outputs only; scatter_kernel reads their codes from recv for expertX). 0: none such, recv is
  // the received rows. (`me` and `ranks` are set with in_place too.)
  int in_place = 0;
  // 1: rank me's rows' expertX codes and scales were written by its pack (DestRows' own expansion, places
  // below P): scatter_kernel copies none of them (their index outputs and recv's scales only)
  int own_expanded = 0;
  // null, or this rank's landing signals of the piece (u32 [ranks]: source s's at landed[s], set by its
  // pack_signal): the rows of source s are read once landed[s] has reached seq (wait_signal)
  const uint32_t* landed = nullptr;
  uint32_t seq = 0;
  int64_t stride, scales_at, meta_at;
  const int32_t* base;  // [R, per]
  int per, k;
  void* ex;              // [P, units], or null: recv and the index outputs only
  uint32_t* ex_scales;   // [P, scale_words] or null (null with ex)
  int64_t P, units, scale_words;
  int32_t* sorted;       // [Pmax]
  int64_t pmax;
  int32_t* pair_pos;     // [n, k]
  int32_t* recv_indices; // [n, k]
  float* recv_weights;   // [n, k]
  void* recv;            // [n, units]
  uint32_t* recv_scales; // [n, scale_words] or null
};

constexpr int SCATTER_UNROLL = 4;

// Before a thread first reads rows of the launch's source s: with landing signals, the wait for that
// source's (once a thread: `waited` holds the sources, bits of s, whose signal it has seen).
__device__ __forceinline__ void wait_source_once(const ScatterArgs& a, int s, uint32_t& waited) {
  if (a.landed == nullptr || (waited >> s & 1)) return;
  wait_signal(a.landed + a.source[s], a.seq, a.source[s]);
  waited |= 1u << s;
}

// The launch's ranges into shared memory (thread 0; the caller syncs): a's own, or with a.tables the
// host's dispatchWindows arithmetic on the device — source s's rows to `me` are its table's column me,
// clamped to [0, slot_rows]; its received rows start after those of every source before it; piece c
// takes slot rows [end of piece c − 1, end of piece c) (the table's column R + E + 1 + c·R + me, the last
// piece to the count), clamped inside [0, count]. So every row read lies in the source's slot and every
// row written below ranks · slot_rows, whatever the tables hold; the host checks them after its read.
// *shift: the storage row of received row 0 (0 but with a.in_place).
__device__ __forceinline__ void scatter_ranges(const ScatterArgs& a, int32_t* first, int32_t* recv_row, int32_t* end, int64_t* shift) {
  if (threadIdx.x != 0) return;
  *shift = 0;
  if (!a.tables) {
    for (int i = 0; i < a.n; i++) {
      first[i] = a.first[i];
      recv_row[i] = a.recv_row[i];
      end[i] = a.end[i];
    }
    return;
  }
  const int32_t* t = a.tables;
  const int W = a.table_words, ends_at = a.ranks + a.experts + 1;
  auto count = [&](int s) { return min(max(t[(int64_t)s * W + a.me], 0), a.slot_rows); };
  auto piece_end = [&](int s, int c, int32_t lo, int32_t rows) { return min(max(t[(int64_t)s * W + ends_at + c * a.ranks + a.me], lo), rows); };
  auto rows_before = [&](int s) {  // the received rows of the sources before s
    int32_t c = 0;
    for (int p = 0; p < s; p++) c += count(p);
    return c;
  };
  if (a.in_place) {
    const int anchor = receive_anchor(a.me, a.ranks);
    *shift = (int64_t)anchor * a.slot_rows - rows_before(anchor);
  }
  int32_t total = 0;
  for (int i = 0; i < a.n; i++) {
    const int s = a.source[i];
    const int32_t start = rows_before(s);
    const int32_t rows = count(s);
    const int32_t lo = a.piece == 0 ? 0 : piece_end(s, a.piece - 1, 0, rows);
    const int32_t hi = a.piece == a.pieces - 1 ? rows : piece_end(s, a.piece, lo, rows);
    first[i] = lo;
    recv_row[i] = start + lo;
    total += hi - lo;
    end[i] = total;
  }
}

// Whether the codes of rank `source`'s rows are in recv already (ScatterArgs::in_place).
__device__ __forceinline__ bool scatter_placed(const ScatterArgs& a, int source) {
  return a.in_place == 1 ? source == a.me : a.in_place == 2 && receive_first_row(source, a.me, a.ranks, 0, 0) >= 0;
}

// Slot j of received row q (its meta m, from rank `source`): the row's index outputs for the slot, and
// the slot's place p in expert order (−1 for none, or one past sortedPairs' pmax), with sortedPairs[p] =
// q·k + j. Returns p. (expertX's rows may be fewer than the places, a.P < P: the windows dispatch's
// expertX sized before the counts are known; the caller copies a row only to places below a.P.)
__device__ __forceinline__ int64_t scatter_slot(const ScatterArgs& a, const int32_t* m, int source, int64_t q, int j) {
  const int k = a.k;
  const int32_t l = m[j];
  a.recv_indices[q * k + j] = l;
  a.recv_weights[q * k + j] = __int_as_float(m[k + j]);
  int64_t p = -1;
  if (l >= 0 && l < a.per) {
    p = (int64_t)a.base[source * a.per + l] + m[2 * k + j];
    if (p < 0 || p >= a.pmax) p = -1;
  }
  a.pair_pos[q * k + j] = (int32_t)p;
  if (p >= 0) a.sorted[p] = (int32_t)(q * k + j);
  return p;
}

// A CTA per packed row at a time: its slots' places from the meta and the source's bases, the index
// outputs, then the payload (read once) to recv and to each of its experts' rows, and the scales.
template <typename U>
__global__ void __launch_bounds__(EP_THREADS) scatter_kernel(ScatterArgs a) {
  __shared__ int32_t dst[EP_MAX_K];
  __shared__ int32_t first[SCATTER_MAX_SOURCES], recv_row[SCATTER_MAX_SOURCES], end[SCATTER_MAX_SOURCES];
  __shared__ int64_t shift;  // recv's storage row of received row 0
  scatter_ranges(a, first, recv_row, end, &shift);
  __syncthreads();
  const int k = a.k;
  U* ex = (U*)a.ex;
  U* recv = (U*)a.recv + shift * a.units;
  const int64_t total = end[a.n - 1];
  uint32_t waited = 0;  // (wait_source_once's)
  for (int64_t i = blockIdx.x; i < total; i += gridDim.x) {
    int s = 0;
    while (i >= end[s]) s++;
    const int64_t off = i - (s ? end[s - 1] : 0);
    const int64_t q = recv_row[s] + off;
    const int source = a.source[s];
    wait_source_once(a, s, waited);
    const uint8_t* row = a.src[s] + (first[s] + off) * a.stride;
    const int j = threadIdx.x;
    const bool own_done = a.own_expanded && source == a.me;
    if (j < k) {
      const int64_t p = scatter_slot(a, reinterpret_cast<const int32_t*>(row + a.meta_at), source, q, j);
      dst[j] = ex && p < a.P && !own_done ? (int32_t)p : -1;  // (no expert-ordered copy without ex, past its rows, or where the pack made it)
    }
    __syncthreads();
    // the payload: SCATTER_UNROLL loads in flight a thread before their stores (a row is 448 16-byte
    // units at H = 7168 FP8: one pass of 128 threads); a source whose codes are in recv already
    // (a.in_place, as scatter_warp_kernel) has them read from there and not written again, and not
    // read at all when no expertX row wants them
    const bool placed = scatter_placed(a, source);
    bool wanted = !placed;
    for (int jj = 0; jj < k && !wanted; jj++) wanted = dst[jj] >= 0;
    const U* src = placed ? recv + q * a.units : reinterpret_cast<const U*>(row);
    for (int64_t u0 = threadIdx.x; wanted && u0 < a.units; u0 += (int64_t)SCATTER_UNROLL * blockDim.x) {
      U v[SCATTER_UNROLL];
#pragma unroll
      for (int i = 0; i < SCATTER_UNROLL; i++) {
        const int64_t u = u0 + (int64_t)i * blockDim.x;
        if (u < a.units) v[i] = src[u];
      }
#pragma unroll
      for (int i = 0; i < SCATTER_UNROLL; i++) {
        const int64_t u = u0 + (int64_t)i * blockDim.x;
        if (u >= a.units) break;
        if (!placed) recv[q * a.units + u] = v[i];
        for (int jj = 0; jj < k; jj++) {
          if (dst[jj] >= 0) ex[(int64_t)dst[jj] * a.units + u] = v[i];
        }
      }
    }
    if (a.recv_scales) {  // (and ex_scales, when ex is given: the host checked)
      const uint32_t* sc = reinterpret_cast<const uint32_t*>(row + a.scales_at);
      for (int64_t u = threadIdx.x; u < a.scale_words; u += blockDim.x) {
        const uint32_t v = sc[u];
        a.recv_scales[q * a.scale_words + u] = v;
        for (int jj = 0; jj < k; jj++) {
          if (dst[jj] >= 0) a.ex_scales[(int64_t)dst[jj] * a.scale_words + u] = v;
        }
      }
    }
    __syncthreads();  // dst is rewritten for the next row
  }
}

// scatter_kernel without expertX (a.ex null: the launcher's check), a warp per packed row at a time
// (k ≤ 32): lanes < k take the row's slots, and each lane's first SCATTER_WARP_UNROLL payload loads are
// issued before them, so a row's payload does not wait for its meta and no warp waits for another (no
// CTA-wide barrier). Same outputs as scatter_kernel, bit for bit (native/cuda/dev/scatter_check.cu
// compares them). With expertX the stores bound both forms alike (a first version of this one that
// wrote expertX too ran at 0.98–0.99× scatter_kernel), so scatter_kernel does that.
constexpr int SCATTER_WARPS = 8;  // warps a CTA
constexpr int SCATTER_WARP_UNROLL = 8;
template <typename U>
__global__ void __launch_bounds__(SCATTER_WARPS * 32, 4) scatter_warp_kernel(ScatterArgs a) {
  __shared__ int32_t first[SCATTER_MAX_SOURCES], recv_row[SCATTER_MAX_SOURCES], end[SCATTER_MAX_SOURCES];
  __shared__ int64_t shift;  // recv's storage row of received row 0
  scatter_ranges(a, first, recv_row, end, &shift);
  __syncthreads();
  const int lane = threadIdx.x & 31;
  U* recv = (U*)a.recv + shift * a.units;
  const int64_t total = end[a.n - 1];
  const int64_t warps = (int64_t)gridDim.x * SCATTER_WARPS;
  uint32_t waited = 0;  // (wait_source_once's)
  for (int64_t i = (int64_t)blockIdx.x * SCATTER_WARPS + (threadIdx.x >> 5); i < total; i += warps) {
    int s = 0;
    while (i >= end[s]) s++;
    wait_source_once(a, s, waited);
    const int64_t off = i - (s ? end[s - 1] : 0);
    const int64_t q = recv_row[s] + off;
    const uint8_t* row = a.src[s] + (first[s] + off) * a.stride;
    const U* src = reinterpret_cast<const U*>(row);
    // (the codes already in recv, a.in_place: the source's scales and slots alone)
    const int source = a.source[s];
    const bool placed = scatter_placed(a, source);
    const int64_t units = placed ? 0 : a.units;
    // the first step's payload, then the slots (lanes < k)
    U v[SCATTER_WARP_UNROLL];
#pragma unroll
    for (int b = 0; b < SCATTER_WARP_UNROLL; b++) {
      const int64_t u = lane + 32 * b;
      if (u < units) v[b] = src[u];
    }
    if (lane < a.k) scatter_slot(a, reinterpret_cast<const int32_t*>(row + a.meta_at), source, q, lane);
    for (int64_t u0 = 0; units > 0;) {
#pragma unroll
      for (int b = 0; b < SCATTER_WARP_UNROLL; b++) {
        const int64_t u = u0 + lane + 32 * b;
        if (u < a.units) recv[q * a.units + u] = v[b];
      }
      u0 += 32 * SCATTER_WARP_UNROLL;
      if (u0 >= a.units) break;
#pragma unroll
      for (int b = 0; b < SCATTER_WARP_UNROLL; b++) {
        const int64_t u = u0 + lane + 32 * b;
        if (u < a.units) v[b] = src[u];
      }
    }
    if (a.recv_scales) {
      const uint32_t* sc = reinterpret_cast<const uint32_t*>(row + a.scales_at);
      for (int64_t u = lane; u < a.scale_words; u += 32) a.recv_scales[q * a.scale_words + u] = sc[u];
    }
  }
}

}  // namespace moe
}  // namespace hp
