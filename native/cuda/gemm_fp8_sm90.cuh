// The Hopper FP8 GEMM (sm_90a): TMA -> shared memory -> wgmma (e4m3 x e4m3 -> f32), with
// DeepSeek-V3's fine-grained scaling: each 128-wide K block's partial product comes out of the
// tensor cores into registers and is added, times aScale[row, kb] * bScale, into f32 accumulators
// (the "promotion" that keeps the tensor cores' reduced-precision accumulation to one 128-K block).
//
// One CTA = one BM x BN output tile, 3 warpgroups (384 threads):
//   warpgroup 0, the producer: for each K block waits until a pipeline stage is free, stores the
//     stage's scales (aScale of the tile's BM rows; bScale: one value for 128x128 blocks, BN values
//     for 1x128 blocks) with ordinary loads, and thread 0 starts two TMA copies (A: BM x 128 codes,
//     B: BN x 128 codes, 128-byte swizzle) that complete on the stage's "full" mbarrier.
//   warpgroups 1 and 2, the consumers: rows 0-63 and 64-127 of the tile. Per K block: wait "full",
//     4 wgmma m64nBNk32 into one of two partial accumulators; once the NEXT block's wgmmas are
//     issued, wait for this block's, read the scales, release the stage ("empty" mbarrier),
//     promote. After the last block: the epilogue stores straight from
//     registers (row kinds: computed, zero, NaN; + C; f32 or bf16).
// STAGES stages of (BM + BN) x 128 codes keep the copies ahead of the math. TMA zero-fills what is
// outside the tensors (rows past M or G*N, K past K), so any M, N and K % 16 == 0 work; rows of
// another group that a tile's box reaches (contiguous B at n >= N, masked A past Mmax) only feed
// outputs that are never stored. Not kept: clusters of 2 CTAs along M sharing the B tile by TMA
// multicast, which halves B's L2 reads: 0.92-0.995x this kernel, timed in turns on an H100
// (bench/RESULTS.md, 2026-11-23); L2's bytes are not what holds it back.
//
// Gathered A rows (GATHER, contiguous mode: GemmFp8Params.a_pairs): A cannot come by TMA. Producer
// thread tid resolves tile row m0 + tid's source row once (gemm_a_row; -1, and a row past the tile,
// is zero-filled) into shared memory; per K block the 128 producer threads copy the tile's 128 rows
// x 128 bytes, 8 threads a row (8 cp.async of 16 bytes each a thread, src-size 0 for zeros, also
// past K; the row's scale by a 4-byte cp.async alike), to the places TMA's 128-byte swizzle would put
// them; thread 0's TMA brings B alone. cp.async writes through the generic proxy and wgmma reads
// through the async proxy, so a thread arrives on a stage's "full" barrier for its copies only after
// they have completed (cp.async.wait_group, GATHER_LAG stages later, keeping that many in flight) and
// after fence.proxy.async. Thread 0 arrives twice per stage (B's expect_tx, then its copies): the full
// barriers count 129 arrivals in this mode. What limited it was the producer's own instruction
// stream: each copy waited on a generic load of its source row from the row table (see smem below),
// so the consumers starved on "full". With ld.shared and the 8 source rows held in registers, on an
// H100 at a DeepSeek-like shape (~32.7k rows gathered from ~8.2k or ~21.6k, N 4096, K 7168) it runs at
// ~605-630 TFLOP/s, 0.74-0.77x the TMA kernel on a materialised A and 0.80-0.82x materialise + TMA
// kernel, timed in turns with them (was ~520 before; bench/RESULTS.md). (The H100 sits at its 700 W
// cap running these, its clock swinging over ~2 s: timed one after the other, the same kernels had
// read 0.89-0.95x.) Measured and not kept: arriving through
// cp.async.mbarrier.arrive.noinc instead of waiting (same speed); 2 threads a row with 64-bit row
// pointers (~590); 32-bit row offsets (~2% faster, but 20 bytes of spills under
// the producer's 40 registers). Earlier: neither a longer lag nor dropping the fence moved it; one
// TMA a row (1-row boxes: TMA's swizzle follows the shared address, so the bits were right) ran at
// ~120 issued by one thread, and at ~350 (0.55x this, in turns; same bits) with each of the 128
// producer threads issuing its own row's: TMA's cost is per copy, and a 128-byte copy is too small.
//
#pragma once

#include <cuda.h>  // CUtensorMap (types only: the encoder is fetched from the driver at run time)

#include "cuda/gemm_common.cuh"
#include "cuda/mma_sm80.cuh"  // cp.async (gathered A rows)
#include "cuda/ptx_sm90.cuh"

namespace hp {
namespace sm90 {

static constexpr int BM = 128, BK = 128;
static constexpr int THREADS = 384;

template <int BN>
struct Fp8Config {
  static constexpr int STAGES = BN == 128 ? 6 : 8;
  static constexpr int A_TILE = BM * BK;  // bytes of one stage's A tile
  static constexpr int B_TILE = BN * BK;
  // (+ 16: the tile's group; + BM * 4: the gathered A rows' sources)
  static constexpr int SMEM = STAGES * (A_TILE + B_TILE) + STAGES * (BM + BN) * 4 + 2 * STAGES * 8 + 16 + BM * 4;
  static constexpr int SMEM_ALLOC = SMEM + 1024;  // slack to align the base to 1024 (128B swizzle atoms)
};

// Tiles in a band of this many N-tiles run next to each other (M fastest inside the band), so the
// CTAs in flight share B tiles and A panels in L2.
static constexpr int64_t BAND_N = 8;

// GATHER: stages a producer thread keeps its A copies in flight before it waits for the oldest.
// Consumers free stage j only once stage j + 1 is full (its wgmmas are issued before j's are
// promoted), and a producer arrives on stage j at its iteration j + GATHER_LAG, after waiting for
// stage j + GATHER_LAG - STAGES to be free: no deadlock needs GATHER_LAG <= STAGES - 2.
static constexpr int GATHER_LAG = 2;

// a (through tmap_a): e4m3 [M, K], or with GATHER [a_rows, K] read through p.a_pairs (tmap_a
// unused); b (through tmap_b): e4m3 [G*N, K]; scales, groups, c, out: see GemmFp8Params.
// B_ROWS1: bBlockRows == 1 (1x128 B scales, the 1D1D variant). Grid: m_tiles*n_tiles.
template <int BN, bool B_ROWS1, bool GATHER>
__global__ void __launch_bounds__(THREADS, 1)
    gemm_fp8_sm90_kernel(const GemmFp8Params p, const __grid_constant__ CUtensorMap tmap_a,
                         const __grid_constant__ CUtensorMap tmap_b, int64_t m_tiles, int64_t n_tiles) {
#if HP_SM90A
  typedef Fp8Config<BN> C;
  constexpr int STAGES = C::STAGES;
  static_assert(!GATHER || GATHER_LAG <= STAGES - 2, "gathered A: the producer's lag must leave two stages");
  extern __shared__ uint8_t smem_raw[];
  // aligned by an offset added to the shared array itself, so that every pointer derived from it
  // stays in the shared address space: ld/st.shared. (Rounding the address as an integer made them
  // generic ld/st, and each generic access to the scales and the row table waited like a global load.)
  uint8_t* smem = smem_raw + ((1024u - (smem_addr(smem_raw) & 1023u)) & 1023u);
  uint8_t* sA = smem;                                    // [STAGES][BM][128] swizzled
  uint8_t* sB = sA + STAGES * C::A_TILE;                 // [STAGES][BN][128] swizzled
  float* sSa = (float*)(sB + STAGES * C::B_TILE);        // [STAGES][BM]
  float* sSb = sSa + STAGES * BM;                        // [STAGES][BN] (only [s][0] for 128x128 blocks)
  uint64_t* full = (uint64_t*)(sSb + STAGES * BN);       // [STAGES]
  uint64_t* empty = full + STAGES;                       // [STAGES]
  int* s_tile_group = (int*)(empty + STAGES);
  int32_t* s_src = (int32_t*)(s_tile_group + 4);          // [BM] GATHER: tile row -> A row, -1 zeros

  // tile -> (mt, nt) through bands of BAND_N N-tiles
  const int64_t tile = blockIdx.x;
  const int64_t band = tile / (BAND_N * m_tiles);
  const int64_t in_band = tile - band * BAND_N * m_tiles;
  const int64_t band_w = min(BAND_N, n_tiles - band * BAND_N);
  const int64_t nt = band * BAND_N + in_band % band_w;
  const int64_t mt = in_band / band_w;
  const TileRows t = gemm_tile_rows(p, mt, BM);
  const int64_t n0 = nt * BN;

  if (threadIdx.x < 32) {
    const int tg = p.mode == GEMM_CONTIGUOUS ? contiguous_block_group(p.row_groups, p.M, t.m0) : 0;
    if (threadIdx.x == 0) {
      *s_tile_group = tg;
      for (int s = 0; s < STAGES; s++) {
        // every producer thread arrives (thread 0 with the TMA bytes; GATHER: once more for its A row)
        mbar_init(&full[s], GATHER ? 129 : 128);
        mbar_init(&empty[s], 256);  // every consumer thread arrives
      }
      mbar_init_fence();
    }
  }
  __syncthreads();
  const int tile_group = *s_tile_group;
  const int64_t g = gemm_tile_compute_group(p, t, tile_group);
  const int64_t KB = (p.K + BK - 1) / BK;
  const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;

  if (wg == 0) {
    // ---------------- producer
    setmaxnreg_dec<40>();
    if (g < 0) return;
    if (tid == 0) {
      if (!GATHER) tma_prefetch_desc(&tmap_a);
      tma_prefetch_desc(&tmap_b);
    }
    const int64_t r = t.m0 + tid;
    // the A row (codes and scales) tile row tid reads; GATHER: -1 = zeros (padding, or past the tile)
    const int64_t a_row = GATHER ? (r < t.m_end ? gemm_a_row(p, r) : -1) : r;
    const bool a_live = GATHER ? a_row >= 0 : r < t.m_end;
    const float* a_scale_row = p.a_scales + (GATHER ? max(a_row, (int64_t)0) : r) * KB;
    // GATHER: thread tid copies 16-byte chunk j of tile rows r0 + 16 i (i < 8, see below); their
    // source rows, read from shared memory once a tile rather than before every copy
    int32_t src[BM / 16];
    const int j = tid % 8, r0 = tid / 8;
    if (GATHER) {
      s_src[tid] = (int32_t)a_row;
      asm volatile("bar.sync 1, 128;" ::: "memory");  // the producer warpgroup alone
#pragma unroll
      for (int i = 0; i < BM / 16; i++) src[i] = s_src[r0 + 16 * i];
    }
    const int32_t a_c1 = (int32_t)t.m0, b_c1 = (int32_t)(g * p.N + n0);
    for (int64_t kb = 0; kb < KB; kb++) {
      const int s = (int)(kb % STAGES);
      const uint32_t phase = (uint32_t)((kb / STAGES) & 1);
      mbar_wait(&empty[s], phase ^ 1);  // a fresh barrier passes parity 1 at once
      // (GATHER: the scale comes with the row's copies below, so the thread never waits on a load)
      if (!GATHER) sSa[s * BM + tid] = a_live ? __ldg(a_scale_row + kb) : 0.0f;
      if (B_ROWS1) {
        if (tid < BN) sSb[s * BN + tid] = n0 + tid < p.N ? __ldg(p.b_scales + (g * p.N + n0 + tid) * KB + kb) : 0.0f;
      } else if (tid == 0) {
        sSb[s * BN] = __ldg(p.b_scales + (g * ((p.N + 127) / 128) + n0 / 128) * KB + kb);
      }
      if (tid == 0) {
        mbar_arrive_expect_tx(&full[s], GATHER ? C::B_TILE : C::A_TILE + C::B_TILE);
        if (!GATHER) tma_load_2d(sA + s * C::A_TILE, &tmap_a, &full[s], (int32_t)(kb * BK), a_c1);
        tma_load_2d(sB + s * C::B_TILE, &tmap_b, &full[s], (int32_t)(kb * BK), b_c1);
      } else if (!GATHER) {
        mbar_arrive(&full[s]);
      }
      if (GATHER) {
        // the stage's A tile [BM][128], 128-byte swizzle (the stage base is 1024-aligned): thread tid
        // copies 16-byte chunk j = tid % 8 of rows tid / 8 + 16 i (i < 8), so that 8 neighbouring
        // threads read one row's 128 bytes whole (each 32-byte sector requested once); chunk j of row
        // r sits at chunk j ^ (r % 8), and r % 8 = (tid / 8) % 8 for all of the thread's rows. K % 16
        // == 0: a chunk is all inside K or all past it. A zero chunk reads nothing (src-size 0) and
        // names p.a, a valid address.
        sm80::cp_async_4(sm80::smem_u32(sSa + s * BM + tid), a_live ? a_scale_row + kb : p.a_scales, a_live);
        const uint32_t dst = sm80::smem_u32(sA + s * C::A_TILE + r0 * BK + 16 * (j ^ (r0 % 8)));
        const bool k_live = j < (p.K - kb * BK) / 16;
        const uint8_t* col = p.a + kb * BK + 16 * j;
#pragma unroll
        for (int i = 0; i < BM / 16; i++) {
          const bool live = k_live && src[i] >= 0;
          sm80::cp_async_16(dst + 16 * i * BK, live ? col + (int64_t)src[i] * p.K : p.a, live);
        }
        sm80::cp_async_commit();
        if (kb >= GATHER_LAG) {  // stage kb - GATHER_LAG's copies are done: fence, then arrive
          sm80::cp_async_wait<GATHER_LAG>();
          fence_proxy_async_shared();
          mbar_arrive(&full[(kb - GATHER_LAG) % STAGES]);
        }
      }
    }
    if (GATHER) {  // the last GATHER_LAG stages
      sm80::cp_async_wait<0>();
      fence_proxy_async_shared();
      for (int64_t kb = max(KB - GATHER_LAG, (int64_t)0); kb < KB; kb++) mbar_arrive(&full[kb % STAGES]);
    }
  } else {
    // ---------------- consumers
    setmaxnreg_inc<232>();
    const int w = wg - 1, warp = tid / 32, lane = tid % 32;
    const int row_in_tile = w * 64 + warp * 16 + lane / 4;  // and row_in_tile + 8
    float acc[BN / 2], part0[BN / 2], part1[BN / 2];
#pragma unroll
    for (int i = 0; i < BN / 2; i++) acc[i] = 0.0f;
    // Two partial accumulators: K block kb+1's wgmmas are issued before block kb is promoted, so
    // the tensor cores have this warpgroup's next work queued while it does the promotion.
    auto issue = [&](float* part, int64_t kb) {
      const int s = (int)(kb % STAGES);
      mbar_wait(&full[s], (uint32_t)((kb / STAGES) & 1));
      const uint8_t* a_tile = sA + s * C::A_TILE + w * 64 * BK;
      const uint8_t* b_tile = sB + s * C::B_TILE;
      wgmma_fence();
#pragma unroll
      for (int k = 0; k < BK / 32; k++) {
        // advancing the start address by 32 bytes steps K by 32 inside the 128-byte swizzled rows
        if (BN == 128) wgmma_m64n128k32_e4m3(part, wgmma_desc_sw128(a_tile + 32 * k), wgmma_desc_sw128(b_tile + 32 * k), k);
        else wgmma_m64n64k32_e4m3(part, wgmma_desc_sw128(a_tile + 32 * k), wgmma_desc_sw128(b_tile + 32 * k), k);
      }
      wgmma_commit();
    };
    // acc += part * aScale * bScale for K block kb (its wgmmas have completed); frees the stage
    auto promote = [&](float* part, int64_t kb) {
#pragma unroll
      for (int i = 0; i < BN / 2; i++) reg_fence(part[i]);
      const int s = (int)(kb % STAGES);
      const float sa0 = sSa[s * BM + row_in_tile], sa1 = sSa[s * BM + row_in_tile + 8];
      if (B_ROWS1) {
        // column scales read from shared memory as they are used (an array of them would spill)
#pragma unroll
        for (int j = 0; j < BN / 8; j++) {
          const float2 sb = *reinterpret_cast<const float2*>(sSb + s * BN + 8 * j + 2 * (lane % 4));
          acc[4 * j + 0] = fmaf(part[4 * j + 0], sa0 * sb.x, acc[4 * j + 0]);
          acc[4 * j + 1] = fmaf(part[4 * j + 1], sa0 * sb.y, acc[4 * j + 1]);
          acc[4 * j + 2] = fmaf(part[4 * j + 2], sa1 * sb.x, acc[4 * j + 2]);
          acc[4 * j + 3] = fmaf(part[4 * j + 3], sa1 * sb.y, acc[4 * j + 3]);
        }
        mbar_arrive(&empty[s]);
      } else {
        const float sb = sSb[s * BN];
        mbar_arrive(&empty[s]);
        const float s0 = sa0 * sb, s1 = sa1 * sb;
#pragma unroll
        for (int j = 0; j < BN / 8; j++) {
          acc[4 * j + 0] = fmaf(part[4 * j + 0], s0, acc[4 * j + 0]);
          acc[4 * j + 1] = fmaf(part[4 * j + 1], s0, acc[4 * j + 1]);
          acc[4 * j + 2] = fmaf(part[4 * j + 2], s1, acc[4 * j + 2]);
          acc[4 * j + 3] = fmaf(part[4 * j + 3], s1, acc[4 * j + 3]);
        }
      }
    };
    if (g >= 0 && KB > 0) {
      // the loop body keeps one group in flight at every wait, the same on every path (ptxas
      // serializes wgmma where paths that merge disagree on what is in flight)
      issue(part0, 0);
      int64_t kb = 0;
      for (; kb + 2 < KB; kb += 2) {
        issue(part1, kb + 1);
        wgmma_wait_1();
        promote(part0, kb);
        issue(part0, kb + 2);
        wgmma_wait_1();
        promote(part1, kb + 1);
      }
      if (kb + 1 < KB) {  // blocks kb (in flight in part0) and kb + 1 are left
        issue(part1, kb + 1);
        wgmma_wait_1();
        promote(part0, kb);
        wgmma_wait_all();
        promote(part1, kb + 1);
      } else {  // only block kb is left
        wgmma_wait_all();
        promote(part0, kb);
      }
    }
    // epilogue: accumulator element 4j + {0,1} is (row, col .. col+1), 4j + {2,3} is (row + 8, ...)
    const int64_t r0 = t.m0 + row_in_tile, r1 = r0 + 8;
    const int kind0 = r0 < t.m_end ? gemm_row_kind(p, r0, t, tile_group) : -1;
    const int kind1 = r1 < t.m_end ? gemm_row_kind(p, r1, t, tile_group) : -1;
#pragma unroll
    for (int j = 0; j < BN / 8; j++) {
      const int64_t n = n0 + 8 * j + 2 * (lane % 4);
      if (kind0 >= 0) gemm_store_pair(p, kind0, r0, n, acc[4 * j + 0], acc[4 * j + 1]);
      if (kind1 >= 0) gemm_store_pair(p, kind1, r1, n, acc[4 * j + 2], acc[4 * j + 3]);
    }
  }
#endif
}

// Writes 1 when the sm_90a cubin is the code the driver loaded for this module (the probe lives in
// the same fatbinary as the GEMM kernel, so the same cubin is chosen for both).
__global__ void sm90a_probe_kernel(int* flag) { *flag = HP_SM90A; }

}  // namespace sm90
}  // namespace hp
