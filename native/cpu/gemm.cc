// CPU GEMM kernels: FP8 block-scaled GEMM (three groupings), f32/bf16 matmul, transpose, and the
// bench's peer (the system's OpenBLAS, loaded at run time with dlopen).
//
// One blocked GEMM serves both products (the BLIS loop order):
//   for each group g and its list of output rows (all rows; the rows of group g; the valid rows of g)
//     for jc in N step NC                 B panel columns
//       for ib in rows step MB            A block rows
//         for pc in K step KC             K block: one pool job, tiles of MC rows x NT columns
//           micro-kernel MR x NR per (ir, jr), kc long, on packed f32 micro-panels: B[jc:jc+NC,
//           pc:pc+KC] in NR-wide panels, A[ib:ib+MB, pc:pc+KC] in MR-tall ones, each made once by the
//           first tile that needs it (FP8 decoded and multiplied by its scale there, once)
// The FP8 scales are folded into the packed values ((a·sa)·(b·sb) summed in f32, which common.md
// allows): every KC block is a multiple of 128, so one scale covers each 128-long run of a row.
//
// The micro-kernel writes its MR x NR sums to a small tile; an epilogue adds them to the output
// rows it maps to (gathered row lists for the grouped modes), adds C on the first K block, and
// rounds to bf16 on the last one (bf16 outputs keep their partial sums in an f32 scratch block).
//
// AVX2/FMA paths (HP_AVX2, picked at run time by cpu_use_avx2(); HOTPATHS_SIMD=scalar forces the
// scalar ones) for packing, the micro-kernel and the epilogue. Both sum each output over k in order;
// the AVX2 micro-kernel rounds once per step (FMA), the scalar one twice (multiply, then add).
// Packing is exact either way (decode is exact, the scale product rounds once).
#include <dlfcn.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/check.h"
#include "common/entry_points.h"
#include "common/fp8_codec.h"
#include "common/promise_worker.h"
#include "common/simd.h"
#include "common/threadpool.h"

namespace hp {

static const bool g_gemm_avx2 = cpu_use_avx2();

// ---------------------------------------------------------------- blocking

static constexpr int MR = 6;                  // micro-tile rows (A values broadcast per k)
static constexpr int NR = 16;                 // micro-tile columns (two 8-wide vectors of B per k)
static constexpr int64_t KC = 256;            // K block: a multiple of 128, so one FP8 scale per run
static constexpr int64_t NC = 2048;           // B panel columns packed at once (KC x NC f32 = 2 MiB)
static constexpr int64_t MB = 1056;           // A rows packed at once (MB x KC f32 = 1056 KiB)
static constexpr int64_t MC = 96;             // rows of one pool task (an A block of 96 KiB, in L2)
static constexpr int64_t NT = 256;            // columns of one pool task (B part of 256 KiB, in L2)
static constexpr int64_t SCALE_COLS = 128;    // every FP8 scale covers 128 values along K
static_assert(KC % SCALE_COLS == 0 && MB % MC == 0 && MC % MR == 0 && NC % NT == 0 && NT % NR == 0, "blocking");

// ---------------------------------------------------------------- small helpers

// f32 value (bits) -> bf16 bits, round to nearest even; NaN stays a quiet NaN (src/dtype.ts).
static inline uint16_t bf16_rne(float x) {
  const uint32_t u = f32_bits(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// E4M3 code -> f32 value (exact; NaN codes -> NaN), for the scalar paths.
struct E4m3Table {
  float value[256];
  E4m3Table() {
    for (uint32_t c = 0; c < 256; c++) value[c] = f32_from_bits(fp8_decode_bits<FP8_E4M3>(c));
  }
};
static const E4m3Table g_e4m3;

// An uninitialised f32 buffer aligned to 64 bytes (packing buffers; every value used is written first).
struct AlignedFloats {
  std::unique_ptr<float[]> storage;
  float* data = nullptr;
  explicit AlignedFloats(int64_t n) {
    if (n <= 0) return;
    storage.reset(new float[(size_t)n + 16]);
    data = (float*)(((uintptr_t)storage.get() + 63) & ~(uintptr_t)63);
  }
};

// ---------------------------------------------------------------- operands

enum ElemKind : int { KIND_E4M3 = 0, KIND_F32 = 1, KIND_BF16 = 2 };

// How to read element (i, k) of op(A) (i a row) or of op(B)ᵀ (i a column of the product): at
// data[i * ld + k] when k_contig, else at data[k * ld + i]. E4M3 operands are always k_contig and
// carry scales: scale of (i, k) = scales[(i / scale_rows) * scale_ld + k / 128].
struct Operand {
  int kind;
  const void* data;
  int64_t ld;
  bool k_contig;
  const float* scales;
  int64_t scale_ld;
  int64_t scale_rows;
};

// Element (i, k) as f32 (E4M3: decoded by table, times its scale). Scalar; used for edges and tails.
static inline float elem_scalar(const Operand& op, int64_t i, int64_t k) {
  if (op.kind == KIND_E4M3) {
    const uint8_t code = ((const uint8_t*)op.data)[op.k_contig ? i * op.ld + k : k * op.ld + i];
    return g_e4m3.value[code] * op.scales[(i / op.scale_rows) * op.scale_ld + k / SCALE_COLS];
  }
  const int64_t at = op.k_contig ? i * op.ld + k : k * op.ld + i;
  if (op.kind == KIND_F32) return ((const float*)op.data)[at];
  return f32_from_bits((uint32_t)((const uint16_t*)op.data)[at] << 16);
}

// ---------------------------------------------------------------- packing (scalar)
//
// A micro-panel of R (MR or NR) lines (rows of op(A), or columns of op(B)) over k in [k0, k0 + kc):
// dst[k * R + r] = element(line[r], k0 + k); lines r >= count are zeros (ragged M or N edge).
// `lines` gives each line's index into the operand (a gathered row list for A).

template <int R>
static void pack_panel_scalar(const Operand& op, const int64_t* lines, int count, int64_t k0, int64_t kc, float* dst) {
  for (int r = 0; r < R; r++) {
    if (r >= count) {
      for (int64_t k = 0; k < kc; k++) dst[k * R + r] = 0.0f;
      continue;
    }
    const int64_t i = lines[r];
    if (op.kind == KIND_E4M3) {
      // one scale per 128-long run; the table gives exact values, the product rounds once
      const uint8_t* row = (const uint8_t*)op.data + i * op.ld;
      const float* srow = op.scales + (i / op.scale_rows) * op.scale_ld;
      for (int64_t k = 0; k < kc; k++) dst[k * R + r] = g_e4m3.value[row[k0 + k]] * srow[(k0 + k) / SCALE_COLS];
    } else {
      for (int64_t k = 0; k < kc; k++) dst[k * R + r] = elem_scalar(op, i, k0 + k);
    }
  }
}

// ---------------------------------------------------------------- packing (AVX2)
#if HP_X86

// 8 E4M3 codes -> 8 f32 values, exact, without passing through f32 subnormals:
//   normal codes (e > 0): the magnitude bits shifted into place and the exponent rebased (+120);
//   subnormal codes (e = 0): m * 2^-9 through an integer conversion; 0x7F/0xFF: NaN.
HP_AVX2 static inline __m256 e4m3_decode8(const uint8_t* p) {
  const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p));
  const __m256i mag = _mm256_and_si256(c, _mm256_set1_epi32(0x7F));
  const __m256 normal = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(mag, 20), _mm256_set1_epi32(120 << 23)));
  const __m256 sub = _mm256_mul_ps(_mm256_cvtepi32_ps(mag), _mm256_set1_ps(1.0f / 512.0f));  // e = 0: mag = m
  const __m256i is_sub = _mm256_cmpeq_epi32(_mm256_and_si256(c, _mm256_set1_epi32(0x78)), _mm256_setzero_si256());
  __m256 v = _mm256_blendv_ps(normal, sub, _mm256_castsi256_ps(is_sub));
  v = _mm256_or_ps(v, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(c, _mm256_set1_epi32(0x80)), 24)));
  const __m256i is_nan = _mm256_cmpeq_epi32(mag, _mm256_set1_epi32(0x7F));
  return _mm256_blendv_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32((int)F32_NAN_BITS)), _mm256_castsi256_ps(is_nan));
}

// Element (i, k..k+7) of a k_contig operand as 8 f32 (E4M3: times the scale of that run).
HP_AVX2 static inline __m256 load8_kcontig(const Operand& op, int64_t i, int64_t k) {
  if (op.kind == KIND_E4M3) {
    const float s = op.scales[(i / op.scale_rows) * op.scale_ld + k / SCALE_COLS];
    return _mm256_mul_ps(e4m3_decode8((const uint8_t*)op.data + i * op.ld + k), _mm256_set1_ps(s));
  }
  if (op.kind == KIND_F32) return _mm256_loadu_ps((const float*)op.data + i * op.ld + k);
  const __m128i h = _mm_loadu_si128((const __m128i*)((const uint16_t*)op.data + i * op.ld + k));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// r[0..7] (8 lines x 8 k) -> r[j] = k j across the 8 lines.
HP_AVX2 static inline void transpose8(__m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// pack_panel_scalar for a k_contig operand: 8 lines x 8 k at a time, loaded (decoded) along k and
// transposed in registers; the k tail (kc % 8) goes element by element.
template <int R>
HP_AVX2 static void pack_panel_kcontig_avx2(const Operand& op, const int64_t* lines, int count, int64_t k0, int64_t kc,
                                            float* dst) {
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    for (int g0 = 0; g0 < R; g0 += 8) {
      __m256 v[8];
      for (int r = 0; r < 8; r++) {
        v[r] = (g0 + r < R && g0 + r < count) ? load8_kcontig(op, lines[g0 + r], k0 + k) : _mm256_setzero_ps();
      }
      transpose8(v);
      float* d = dst + k * R + g0;
      if (R - g0 >= 8) {
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(d + j * R, v[j]);
      } else {
        // R = 6: 6 of the 8 lanes are wanted. Each 8-wide store spills 2 lanes into the next k's
        // slots, which the next store overwrites; the last one stores 4 + 2 lanes.
        static_assert(R % 8 == 6 || R % 8 == 0, "panel widths: 6 or multiples of 8");
        for (int j = 0; j < 7; j++) _mm256_storeu_ps(d + j * R, v[j]);
        _mm_storeu_ps(d + 7 * R, _mm256_castps256_ps128(v[7]));
        _mm_storel_pi((__m64*)(d + 7 * R + 4), _mm256_extractf128_ps(v[7], 1));
      }
    }
  }
  for (; k < kc; k++) {
    for (int r = 0; r < R; r++) dst[k * R + r] = r < count ? elem_scalar(op, lines[r], k0 + k) : 0.0f;
  }
}

#endif  // HP_X86

// A micro-panel of R lines starting at line `first` (consecutive) or at lines[0..count) (gathered).
template <int R>
static void pack_panel(const Operand& op, const int64_t* lines, int count, int64_t k0, int64_t kc, float* dst) {
  if (!op.k_contig) {
    // the R lines are consecutive in memory for each k (matmul's transposed layouts; lines[r] = lines[0] + r)
    const int64_t i0 = lines[0];
    for (int64_t k = 0; k < kc; k++) {
      float* d = dst + k * R;
      if (op.kind == KIND_F32) {
        const float* s = (const float*)op.data + (k0 + k) * op.ld + i0;
        for (int r = 0; r < R; r++) d[r] = r < count ? s[r] : 0.0f;
      } else {
        const uint16_t* s = (const uint16_t*)op.data + (k0 + k) * op.ld + i0;
        for (int r = 0; r < R; r++) d[r] = r < count ? f32_from_bits((uint32_t)s[r] << 16) : 0.0f;
      }
    }
    return;
  }
#if HP_X86
  if (g_gemm_avx2) {
    pack_panel_kcontig_avx2<R>(op, lines, count, k0, kc, dst);
    return;
  }
#endif
  pack_panel_scalar<R>(op, lines, count, k0, kc, dst);
}

// ---------------------------------------------------------------- micro-kernels
//
// a: [kc, MR] packed, b: [kc, NR] packed -> t: [MR, NR] = Σ_k a[k, i] · b[k, j] (f32).

// Two rows of t per pass over k: 2 x 16 accumulators, which the compiler keeps in vector registers
// (SSE on any x86-64) with the loop over j vectorized; plain C++ elsewhere.
static void micro_kernel_scalar(int64_t kc, const float* a, const float* b, float* t) {
  static_assert(MR % 2 == 0, "rows in pairs");
  for (int i = 0; i < MR; i += 2) {
    float acc0[NR], acc1[NR];
    for (int j = 0; j < NR; j++) acc0[j] = acc1[j] = 0.0f;
    for (int64_t k = 0; k < kc; k++) {
      const float a0 = a[k * MR + i], a1 = a[k * MR + i + 1];
      const float* bk = b + k * NR;
      for (int j = 0; j < NR; j++) {
        acc0[j] += a0 * bk[j];
        acc1[j] += a1 * bk[j];
      }
    }
    for (int j = 0; j < NR; j++) {
      t[i * NR + j] = acc0[j];
      t[(i + 1) * NR + j] = acc1[j];
    }
  }
}

#if HP_X86
// 12 accumulators (6 rows x 2 vectors of 8), 2 loads of b and 6 broadcasts of a per k: 12 FMAs
// per k keep both FMA pipes busy with enough independent chains to cover their latency.
HP_AVX2 static void micro_kernel_avx2(int64_t kc, const float* a, const float* b, float* t) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 ai;
    ai = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(ai, b0, c00);
    c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10);
    c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20);
    c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30);
    c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40);
    c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50);
    c51 = _mm256_fmadd_ps(ai, b1, c51);
    a += MR;
    b += NR;
  }
  _mm256_storeu_ps(t + 0 * NR, c00);
  _mm256_storeu_ps(t + 0 * NR + 8, c01);
  _mm256_storeu_ps(t + 1 * NR, c10);
  _mm256_storeu_ps(t + 1 * NR + 8, c11);
  _mm256_storeu_ps(t + 2 * NR, c20);
  _mm256_storeu_ps(t + 2 * NR + 8, c21);
  _mm256_storeu_ps(t + 3 * NR, c30);
  _mm256_storeu_ps(t + 3 * NR + 8, c31);
  _mm256_storeu_ps(t + 4 * NR, c40);
  _mm256_storeu_ps(t + 4 * NR + 8, c41);
  _mm256_storeu_ps(t + 5 * NR, c50);
  _mm256_storeu_ps(t + 5 * NR + 8, c51);
}
#endif

// ---------------------------------------------------------------- the blocked GEMM

// Where the sums go. out_f32 / out_bf16: [*, N] row-major (one of them); c: f32 [*, N] added on the
// first K block, or null; scratch: f32 [MB, NC] partial sums of a bf16 output between K blocks.
struct GemmDest {
  float* out_f32;
  uint16_t* out_bf16;
  const float* c;
  int64_t N;
  float* scratch;
};

// The rows one micro-tile reads before it writes (C on the first K block, then the sums so far) and
// writes: prev[i] may be null (nothing to add). rows: output rows rows[0..mr), columns [n0, n0 + NR);
// lrow0: the first row's index inside the current A block (its scratch row); jc: the panel's first column.
struct TileRows {
  const float* prev[MR];
  float* dst_f32[MR];       // f32 output or scratch row (null when writing bf16)
  uint16_t* dst_bf16[MR];   // bf16 output row on the last K block
};

static inline void tile_rows(int mr, const int64_t* rows, int64_t lrow0, int64_t n0, int64_t jc, bool first, bool last,
                             const GemmDest& d, TileRows* tr) {
  for (int i = 0; i < mr; i++) {
    const int64_t r = rows[i];
    float* scratch_row = d.scratch ? d.scratch + (lrow0 + i) * NC + (n0 - jc) : nullptr;
    if (first) tr->prev[i] = d.c ? d.c + r * d.N + n0 : nullptr;
    else tr->prev[i] = d.out_f32 ? d.out_f32 + r * d.N + n0 : scratch_row;
    tr->dst_f32[i] = d.out_f32 ? d.out_f32 + r * d.N + n0 : (last ? nullptr : scratch_row);
    tr->dst_bf16[i] = d.out_f32 || !last ? nullptr : d.out_bf16 + r * d.N + n0;
  }
}

// The C rows are far from the core (the whole output is visited once per K block): fetch them while
// the micro-kernel runs, so the epilogue does not wait on them.
static inline void prefetch_tile(int mr, const TileRows& tr) {
  for (int i = 0; i < mr; i++) {
    const void* p = tr.prev[i] ? (const void*)tr.prev[i] : tr.dst_f32[i] ? (const void*)tr.dst_f32[i] : (const void*)tr.dst_bf16[i];
    if (p == nullptr) continue;
    __builtin_prefetch(p, 1, 3);
    __builtin_prefetch((const char*)p + 60, 1, 3);  // a 64-byte row may straddle two lines
  }
}

// t: [MR, NR] sums of one K block -> v = t + prev, written as f32 or as bf16 (columns [0, nr)).
static void store_tile(const float* t, int mr, int nr, const TileRows& tr) {
  for (int i = 0; i < mr; i++) {
    const float* ti = t + i * NR;
    const float* prev = tr.prev[i];
    float v[NR];
    if (prev) {
      for (int j = 0; j < nr; j++) v[j] = ti[j] + prev[j];
    } else {
      for (int j = 0; j < nr; j++) v[j] = ti[j] + 0.0f;
    }
    if (tr.dst_f32[i]) {
      float* o = tr.dst_f32[i];
      for (int j = 0; j < nr; j++) o[j] = v[j];
    } else {
      uint16_t* o = tr.dst_bf16[i];
      for (int j = 0; j < nr; j++) o[j] = bf16_rne(v[j]);
    }
  }
}

#if HP_X86
// bf16_rne on 8 lanes (f32 bits in, bf16 bits in the low half of each 32-bit lane out).
HP_AVX2 static inline __m256i bf16_rne8(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  const __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
  const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7F800000));
  return _mm256_blendv_epi8(rounded, quiet, nan);
}

// store_tile for a whole MR x NR tile (the common case), 8 columns at a time.
HP_AVX2 static void store_tile_full_avx2(const float* t, const TileRows& tr) {
  for (int i = 0; i < MR; i++) {
    __m256 v0 = _mm256_load_ps(t + i * NR), v1 = _mm256_load_ps(t + i * NR + 8);
    // + C, + the sums so far, or + 0 (as the reference, whose accumulator starts at +0: -0 -> +0)
    const __m256 p0 = tr.prev[i] ? _mm256_loadu_ps(tr.prev[i]) : _mm256_setzero_ps();
    const __m256 p1 = tr.prev[i] ? _mm256_loadu_ps(tr.prev[i] + 8) : _mm256_setzero_ps();
    v0 = _mm256_add_ps(v0, p0);
    v1 = _mm256_add_ps(v1, p1);
    if (tr.dst_f32[i]) {
      _mm256_storeu_ps(tr.dst_f32[i], v0);
      _mm256_storeu_ps(tr.dst_f32[i] + 8, v1);
    } else {
      // 16 bf16: pack the two halves (packus interleaves 128-bit lanes; the permute restores order)
      const __m256i h = _mm256_packus_epi32(bf16_rne8(v0), bf16_rne8(v1));
      _mm256_storeu_si256((__m256i*)tr.dst_bf16[i], _mm256_permute4x64_epi64(h, 0xD8));
    }
  }
}
#endif

// "Made once" flags of the packed micro-panels of one K block: the first task to need panel i makes
// it; a task that finds it in the making waits for it (a few microseconds of packing).
class PanelFlags {
 public:
  explicit PanelFlags(int64_t n) : state_(new std::atomic<int>[(size_t)n]) {}
  void reset(int64_t n) {
    for (int64_t i = 0; i < n; i++) state_[i].store(0, std::memory_order_relaxed);
  }
  template <typename Make>
  void once(int64_t i, Make&& make) {
    if (state_[i].load(std::memory_order_acquire) == 2) return;
    int expected = 0;
    if (state_[i].compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      make();
      state_[i].store(2, std::memory_order_release);
      return;
    }
    while (state_[i].load(std::memory_order_acquire) != 2) std::this_thread::yield();
  }

 private:
  std::unique_ptr<std::atomic<int>[]> state_;  // 0 not made, 1 in the making, 2 ready
};

// D[rows[m], n] (+)= Σ_k A(rows[m], k) · B(n, k) for m in [0, m_count), n in [0, N), k in [0, K).
// a: line i of A is output row i (rows gathered); b: line n of B is output column n.
static void gemm_blocked(const Operand& a, const Operand& b, const int64_t* rows, int64_t m_count, int64_t N, int64_t K,
                         const GemmDest& dest_in) {
  if (m_count == 0 || N == 0) return;
  const bool avx2 = g_gemm_avx2;
  const int64_t k_blocks = std::max<int64_t>(1, (K + KC - 1) / KC);  // K = 0: one empty block (D = C or 0)
  AlignedFloats packed_b(KC * NC);
  AlignedFloats packed_a(MB * KC);
  GemmDest dest = dest_in;
  std::unique_ptr<AlignedFloats> scratch;
  if (dest.out_bf16 && k_blocks > 1) {
    scratch.reset(new AlignedFloats(std::min(m_count, MB) * NC));
    dest.scratch = scratch->data;
  }
  // A blocks of equal size (a multiple of MR, at most MB), so that no block is a thin remainder
  const int64_t mb_blocks = (m_count + MB - 1) / MB;
  const int64_t mb_step = ((m_count + mb_blocks - 1) / mb_blocks + MR - 1) / MR * MR;
  float* pb = packed_b.data;
  float* pa = packed_a.data;
  PanelFlags b_flags(NC / NR), a_flags(MB / MR);

  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    const int64_t nb_panels = (nc + NR - 1) / NR;
    for (int64_t ib = 0; ib < m_count; ib += mb_step) {
      const int64_t mb = std::min(mb_step, m_count - ib);
      const int64_t ma_panels = (mb + MR - 1) / MR;
      for (int64_t kbi = 0; kbi < k_blocks; kbi++) {
        const int64_t pc = kbi * KC;
        const int64_t kc = std::max<int64_t>(0, std::min(KC, K - pc));
        const bool first = kbi == 0, last = kbi == k_blocks - 1;

        // One pool job per K block: each packed micro-panel is made by the first tile that needs it
        // (B: NR columns of this panel, A: MR rows of this block), so packing needs no barrier.
        b_flags.reset(nb_panels);
        a_flags.reset(ma_panels);
        auto pack_b = [&](int64_t p) {
          int64_t lines[NR];
          const int64_t n0 = jc + p * NR;
          const int count = (int)std::min<int64_t>(NR, N - n0);
          for (int r = 0; r < NR; r++) lines[r] = n0 + std::min(r, count - 1);
          pack_panel<NR>(b, lines, count, pc, kc, pb + p * kc * NR);
        };
        auto pack_a = [&](int64_t q) {
          int64_t lines[MR];
          const int64_t m0 = ib + q * MR;
          const int count = (int)std::min<int64_t>(MR, m_count - m0);
          for (int r = 0; r < MR; r++) lines[r] = rows[m0 + std::min(r, count - 1)];
          pack_panel<MR>(a, lines, count, pc, kc, pa + q * kc * MR);
        };

        // multiply: tiles of MC rows x NT columns, micro-panels B outer (in L1), A inner (from L2)
        const int64_t tiles_m = (mb + MC - 1) / MC, tiles_n = (nc + NT - 1) / NT;
        thread_pool().parallel_for(0, tiles_m * tiles_n, 1, [&](int64_t t0, int64_t t1) {
          const FlushDenormals ftz;  // subnormal operands are ~100 cycles each on Intel cores (common/simd.h)
          alignas(32) float tile[MR * NR];
          TileRows tr;
          for (int64_t t = t0; t < t1; t++) {
            const int64_t tm = t / tiles_n, tn = t % tiles_n;
            const int64_t m_end = std::min(mb, (tm + 1) * MC), n_end = std::min(nc, (tn + 1) * NT);
            for (int64_t jr = tn * NT; jr < n_end; jr += NR) {
              b_flags.once(jr / NR, [&] { pack_b(jr / NR); });
              const float* bp = pb + (jr / NR) * kc * NR;
              const int nr = (int)std::min<int64_t>(NR, n_end - jr);
              for (int64_t ir = tm * MC; ir < m_end; ir += MR) {
                a_flags.once(ir / MR, [&] { pack_a(ir / MR); });
                const float* ap = pa + (ir / MR) * kc * MR;
                const int mr = (int)std::min<int64_t>(MR, m_end - ir);
                tile_rows(mr, rows + ib + ir, ir, jc + jr, jc, first, last, dest, &tr);
                prefetch_tile(mr, tr);
#if HP_X86
                if (avx2) micro_kernel_avx2(kc, ap, bp, tile);
                else micro_kernel_scalar(kc, ap, bp, tile);
#else
                micro_kernel_scalar(kc, ap, bp, tile);
#endif
#if HP_X86
                if (avx2 && mr == MR && nr == NR) {
                  store_tile_full_avx2(tile, tr);
                  continue;
                }
#endif
                store_tile(tile, mr, nr, tr);
              }
            }
          }
        });
      }
    }
  }
}

// Rows not computed (padding rows, masked-off rows) are written as zeros.
static void zero_rows(const std::vector<int64_t>& rows, int64_t N, float* out_f32, uint16_t* out_bf16) {
  if (rows.empty() || N == 0) return;
  thread_pool().parallel_for(0, (int64_t)rows.size(), std::max<int64_t>(1, 16384 / N), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      if (out_f32) memset(out_f32 + rows[t] * N, 0, (size_t)N * 4);
      else memset(out_bf16 + rows[t] * N, 0, (size_t)N * 2);
    }
  });
}

// ---------------------------------------------------------------- argument helpers

// out: Float32Array (f32) or Uint16Array (bf16 bits).
static HostView out_array(const Args& args, size_t i, const char* name, uint64_t n) {
  HostView v = args.typed_array(i, name);
  if (v.type != napi_float32_array && v.type != napi_uint16_array) {
    args.fail("E_ARG", std::string(name) + " must be a Float32Array (f32) or a Uint16Array (bf16 bits), got a " +
                           typed_array_name(v.type));
  }
  args.check_length(v, name, n);
  return v;
}

// null, or a Float32Array of at least n elements.
static bool optional_f32(const Args& args, const Napi::CallbackInfo& info, size_t i, const char* name, uint64_t n,
                         HostView* view) {
  if (info[i].IsNull() || info[i].IsUndefined()) return false;
  *view = args.typed_array(i, name, napi_float32_array, n);
  return true;
}

// A whole number in [lo, hi] (an enum code).
static int small_int(const Args& args, const Napi::CallbackInfo& info, size_t i, const char* name, int lo, int hi) {
  Napi::Value v = info[i];
  const std::string range = " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (!v.IsNumber()) args.fail("E_ARG", std::string(name) + range + ", got " + Args::type_of(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || (double)(int)d != d) args.fail("E_ARG", std::string(name) + range + ", got " + Args::number_text(d));
  return (int)d;
}

// Row counts and K above INT32_MAX are refused (row lists and the OpenBLAS peer use 32-bit sizes).
static void check_dim(const Args& args, uint64_t v, const char* name) {
  if (v > (uint64_t)INT_MAX) args.fail("E_TOO_LARGE", std::string(name) + " must be at most " + std::to_string(INT_MAX) + ", got " + std::to_string(v));
}

// ---------------------------------------------------------------- FP8 GEMM entry point

// cpuGemmFp8(a, aScales, b, bScales, M, N, K, G, Mmax, bBlockRows, mode, rowGroups, c, out): Promise<void>
// a: u8 e4m3 [M, K] (mode 2: [G, Mmax, K], M = G·Mmax), aScales: f32 [M, KB] (KB = ceil(K/128)),
// b: u8 e4m3 [G, N, K], bScales: f32 [G·ceil(N/128), KB] (bBlockRows 128) or [G·N, KB] (1),
// mode 0 none (G = 1, rowGroups null) | 1 contiguous (rowGroups = groupIndex i32 [M], −1 = zero row)
// | 2 masked (rowGroups = maskedM i32 [G]), c: f32 [M, N] or null (mode 0 only), out: f32|bf16 [M, N].
Napi::Value CpuGemmFp8(const Napi::CallbackInfo& info) {
  const char* fn = "cpuGemmFp8";
  Args args(info, fn, 14);
  Napi::Env env = info.Env();
  HostView a = args.typed_array(0, "a", napi_uint8_array, 0);
  HostView a_scales = args.typed_array(1, "aScales", napi_float32_array, 0);
  HostView b = args.typed_array(2, "b", napi_uint8_array, 0);
  HostView b_scales = args.typed_array(3, "bScales", napi_float32_array, 0);
  const uint64_t M = args.size(4, "M"), N = args.size(5, "N"), K = args.size(6, "K");
  const uint64_t G = args.size(7, "G"), Mmax = args.size(8, "Mmax");
  const int b_block_rows = args.block_rows(9);
  const int mode = small_int(args, info, 10, "mode", 0, 2);
  check_dim(args, M, "M");
  check_dim(args, N, "N");
  check_dim(args, K, "K");
  if (G < 1) args.fail("E_ARG", "G must be at least 1, got 0");
  if (mode == 0 && G != 1) args.fail("E_ARG", "G must be 1 when mode is 0 (none), got " + std::to_string(G));
  if (mode == 2) {
    if (checked_mul(env, fn, G, Mmax, "G * Mmax") != M) {
      args.fail("E_SHAPE", "M (" + std::to_string(M) + ") must equal G * Mmax (" + std::to_string(G) + " * " + std::to_string(Mmax) + ") when mode is 2 (masked)");
    }
  } else if (Mmax != M) {
    args.fail("E_SHAPE", "Mmax (" + std::to_string(Mmax) + ") must equal M (" + std::to_string(M) + ") when mode is " + std::to_string(mode));
  }
  const uint64_t KB = ceil_div(K, 128);
  const uint64_t b_scale_rows = b_block_rows == 128 ? checked_mul(env, fn, G, ceil_div(N, 128), "G * ceil(N/128)")
                                                    : checked_mul(env, fn, G, N, "G * N");
  args.check_length(a, "a", checked_mul(env, fn, M, K, "M * K"));
  args.check_length(a_scales, "aScales", checked_mul(env, fn, M, KB, "M * ceil(K/128)"));
  args.check_length(b, "b", checked_mul(env, fn, checked_mul(env, fn, G, N, "G * N"), K, "G * N * K"));
  args.check_length(b_scales, "bScales", checked_mul(env, fn, b_scale_rows, KB, "bScales rows * ceil(K/128)"));
  const uint64_t MN = checked_mul(env, fn, M, N, "M * N");

  // rowGroups: copied here (JS may change the array while the worker runs) and every value checked
  std::vector<int32_t> groups;
  HostView row_groups{};
  if (mode == 0) {
    if (!info[11].IsNull() && !info[11].IsUndefined()) args.fail("E_ARG", "rowGroups must be null when mode is 0 (none), got " + Args::type_of(info[11]));
  } else {
    const uint64_t need = mode == 1 ? M : G;
    row_groups = args.typed_array(11, "rowGroups", napi_int32_array, need);
    const int32_t* rg = (const int32_t*)row_groups.data;
    groups.assign(rg, rg + need);
    for (uint64_t i = 0; i < need; i++) {
      const int64_t v = groups[i];
      if (mode == 1 && (v < -1 || v >= (int64_t)G)) {
        args.fail("E_ARG", "rowGroups (groupIndex) [" + std::to_string(i) + "] = " + std::to_string(v) + " is outside [-1, G = " + std::to_string(G) + ")");
      }
      if (mode == 2 && (v < 0 || v > (int64_t)Mmax)) {
        args.fail("E_ARG", "rowGroups (maskedM) [" + std::to_string(i) + "] = " + std::to_string(v) + " is outside [0, Mmax = " + std::to_string(Mmax) + "]");
      }
    }
  }
  HostView c{};
  const bool has_c = optional_f32(args, info, 12, "c", MN, &c);
  if (has_c && mode != 0) args.fail("E_ARG", "c must be null when mode is " + std::to_string(mode) + " (only mode 0 adds C)");
  HostView out = out_array(args, 13, "out", MN);

  // the rows of each group (in order) and the rows written as zeros
  const bool out_bf16 = out.type == napi_uint16_array;
  const uint8_t* ap = (const uint8_t*)a.data;
  const uint8_t* bp = (const uint8_t*)b.data;
  const float* asp = (const float*)a_scales.data;
  const float* bsp = (const float*)b_scales.data;
  const float* cp = has_c ? (const float*)c.data : nullptr;
  void* op = out.data;
  const int64_t m = (int64_t)M, n = (int64_t)N, k = (int64_t)K, g_count = (int64_t)G, m_max = (int64_t)Mmax;
  const int64_t kb = (int64_t)KB;
  auto* worker = new PromiseWorker(
      env, fn, {a.value, a_scales.value, b.value, b_scales.value, out.value, has_c ? c.value : out.value},
      [=](double*) {
        if (m == 0 || n == 0) return std::string();
        std::vector<std::vector<int64_t>> rows_of((size_t)g_count);
        std::vector<int64_t> zero;
        if (mode == 0) {
          rows_of[0].resize((size_t)m);
          for (int64_t r = 0; r < m; r++) rows_of[0][(size_t)r] = r;
        } else if (mode == 1) {
          for (int64_t r = 0; r < m; r++) {
            const int32_t g = groups[(size_t)r];
            if (g < 0) zero.push_back(r);
            else rows_of[(size_t)g].push_back(r);
          }
        } else {
          for (int64_t g = 0; g < g_count; g++) {
            for (int64_t i = 0; i < m_max; i++) {
              const int64_t r = g * m_max + i;
              if (i < groups[(size_t)g]) rows_of[(size_t)g].push_back(r);
              else zero.push_back(r);
            }
          }
        }
        float* of = out_bf16 ? nullptr : (float*)op;
        uint16_t* oh = out_bf16 ? (uint16_t*)op : nullptr;
        zero_rows(zero, n, of, oh);
        const int64_t b_scale_groups = b_block_rows == 128 ? (n + 127) / 128 : n;  // scale rows per group
        for (int64_t g = 0; g < g_count; g++) {
          const std::vector<int64_t>& rows = rows_of[(size_t)g];
          if (rows.empty()) continue;
          const Operand a_op{KIND_E4M3, ap, k, true, asp, kb, 1};
          const Operand b_op{KIND_E4M3, bp + g * n * k, k, true, bsp + g * b_scale_groups * kb, kb, b_block_rows};
          const GemmDest dest{of, oh, cp, n, nullptr};
          gemm_blocked(a_op, b_op, rows.data(), (int64_t)rows.size(), n, k, dest);
        }
        return std::string();
      });
  worker->Queue();
  return worker->promise();
}

// ---------------------------------------------------------------- matmul entry point

// cpuMatmul(a, b, M, N, K, transA, transB, c, out): Promise<void>
// a: f32|bf16 [M, K] ([K, M] when transA), b: same kind, [K, N] ([N, K] when transB),
// c: f32 [M, N] or null, out: f32|bf16 [M, N] = op(A)·op(B) (+ C).
Napi::Value CpuMatmul(const Napi::CallbackInfo& info) {
  const char* fn = "cpuMatmul";
  Args args(info, fn, 9);
  Napi::Env env = info.Env();
  HostView a = args.typed_array(0, "a");
  HostView b = args.typed_array(1, "b");
  if (a.type != napi_float32_array && a.type != napi_uint16_array) {
    args.fail("E_ARG", std::string("a must be a Float32Array (f32) or a Uint16Array (bf16 bits), got a ") + typed_array_name(a.type));
  }
  if (b.type != a.type) {
    args.fail("E_ARG", std::string("b must be the same kind as a (") + typed_array_name(a.type) + "), got a " + typed_array_name(b.type));
  }
  const uint64_t M = args.size(2, "M"), N = args.size(3, "N"), K = args.size(4, "K");
  check_dim(args, M, "M");
  check_dim(args, N, "N");
  check_dim(args, K, "K");
  const bool trans_a = args.boolean(5, "transA");
  const bool trans_b = args.boolean(6, "transB");
  args.check_length(a, "a", checked_mul(env, fn, M, K, "M * K"));
  args.check_length(b, "b", checked_mul(env, fn, K, N, "K * N"));
  const uint64_t MN = checked_mul(env, fn, M, N, "M * N");
  HostView c{};
  const bool has_c = optional_f32(args, info, 7, "c", MN, &c);
  HostView out = out_array(args, 8, "out", MN);

  const int kind = a.type == napi_float32_array ? KIND_F32 : KIND_BF16;
  const int64_t m = (int64_t)M, n = (int64_t)N, k = (int64_t)K;
  // op(A) line i = row i: a[i, k] (ld K) or, transposed, a[k, i] (ld M)
  const Operand a_op{kind, a.data, trans_a ? m : k, !trans_a, nullptr, 0, 1};
  // op(B)ᵀ line j = column j: b[j, k] (transB, ld K) or b[k, j] (ld N)
  const Operand b_op{kind, b.data, trans_b ? k : n, trans_b, nullptr, 0, 1};
  const bool out_bf16 = out.type == napi_uint16_array;
  const GemmDest dest{out_bf16 ? nullptr : (float*)out.data, out_bf16 ? (uint16_t*)out.data : nullptr,
                      has_c ? (const float*)c.data : nullptr, n, nullptr};
  auto* worker = new PromiseWorker(env, fn, {a.value, b.value, out.value, has_c ? c.value : out.value}, [=](double*) {
    if (m == 0 || n == 0) return std::string();
    std::vector<int64_t> rows((size_t)m);
    for (int64_t r = 0; r < m; r++) rows[(size_t)r] = r;
    gemm_blocked(a_op, b_op, rows.data(), m, n, k, dest);
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// ---------------------------------------------------------------- transpose

static constexpr int64_t TR_BLOCK = 64;  // 64 x 64 elements per block (at most 16 KiB, in L1)

// x: T [rows, cols] -> out: T [cols, rows], block by block over the pool. Each block is first copied
// row by row into a local buffer and then written column by column from it: the strided accesses
// hit only that buffer. (Walking x down a column directly touches 64 rows whose addresses are a
// power of two apart for the usual shapes, all in one L1 set, and ran ~10x below copy speed.)
template <typename T>
static void transpose_blocked(const T* x, int64_t rows, int64_t cols, T* out) {
  const int64_t br = (rows + TR_BLOCK - 1) / TR_BLOCK, bc = (cols + TR_BLOCK - 1) / TR_BLOCK;
  thread_pool().parallel_for(0, br * bc, 8, [=](int64_t t0, int64_t t1) {
    T tmp[TR_BLOCK * TR_BLOCK];
    for (int64_t t = t0; t < t1; t++) {
      const int64_t r0 = (t / bc) * TR_BLOCK, c0 = (t % bc) * TR_BLOCK;
      const int64_t nr = std::min(rows - r0, TR_BLOCK), ncols = std::min(cols - c0, TR_BLOCK);
      for (int64_t r = 0; r < nr; r++) memcpy(tmp + r * TR_BLOCK, x + (r0 + r) * cols + c0, (size_t)ncols * sizeof(T));
      for (int64_t c = 0; c < ncols; c++) {
        T* o = out + (c0 + c) * rows + r0;
        for (int64_t r = 0; r < nr; r++) o[r] = tmp[r * TR_BLOCK + c];
      }
    }
  });
}

// cpuTranspose(x, rows, cols, out): Promise<void>; x: [rows, cols] -> out: [cols, rows], elements of
// 1, 2 or 4 bytes (x's typed-array width; out's must match), copied bit for bit.
Napi::Value CpuTranspose(const Napi::CallbackInfo& info) {
  const char* fn = "cpuTranspose";
  Args args(info, fn, 4);
  HostView x = args.typed_array(0, "x");
  const uint64_t rows = args.size(1, "rows"), cols = args.size(2, "cols");
  HostView out = args.typed_array(3, "out");
  const size_t width = typed_array_element_size(x.type);
  if (width != 1 && width != 2 && width != 4) {
    args.fail("E_ARG", std::string("x must have 1-, 2- or 4-byte elements, got a ") + typed_array_name(x.type));
  }
  if (typed_array_element_size(out.type) != width) {
    args.fail("E_ARG", std::string("out must have the element width of x (") + std::to_string(width) + " bytes), got a " + typed_array_name(out.type));
  }
  const uint64_t n = checked_mul(info.Env(), fn, rows, cols, "rows * cols");
  args.check_length(x, "x", n);
  args.check_length(out, "out", n);
  const void* xp = x.data;
  void* op = out.data;
  const int64_t r = (int64_t)rows, c = (int64_t)cols;
  auto* worker = new PromiseWorker(info.Env(), fn, {x.value, out.value}, [=](double*) {
    if (n == 0) return std::string();
    if (width == 1) transpose_blocked((const uint8_t*)xp, r, c, (uint8_t*)op);
    else if (width == 2) transpose_blocked((const uint16_t*)xp, r, c, (uint16_t*)op);
    else transpose_blocked((const uint32_t*)xp, r, c, (uint32_t*)op);
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// ---------------------------------------------------------------- the OpenBLAS peer (bench only)
//
// libopenblas is loaded on first use with dlopen (no headers or link-time dependency); the few
// CBLAS prototypes are declared here. Debian's libopenblas0 uses 32-bit integers (not ILP64).

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
typedef void (*cblas_sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                               int lda, const float* b, int ldb, float beta, float* c, int ldc);
typedef char* (*openblas_get_config_fn)(void);
typedef char* (*openblas_get_corename_fn)(void);
typedef int (*openblas_get_num_threads_fn)(void);
typedef void (*openblas_set_num_threads_fn)(int);

struct OpenBlas {
  void* handle = nullptr;
  std::string library;
  cblas_sgemm_fn sgemm = nullptr;
  openblas_get_config_fn get_config = nullptr;
  openblas_get_corename_fn get_corename = nullptr;
  openblas_get_num_threads_fn get_num_threads = nullptr;
  openblas_set_num_threads_fn set_num_threads = nullptr;
};

static const OpenBlas& openblas() {
  static OpenBlas lib;
  static std::once_flag once;
  std::call_once(once, [] {
    for (const char* name : {"libopenblas.so.0", "libopenblas.so"}) {
      void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (h == nullptr) continue;
      cblas_sgemm_fn sgemm = (cblas_sgemm_fn)dlsym(h, "cblas_sgemm");
      if (sgemm == nullptr) {
        dlclose(h);
        continue;
      }
      lib.handle = h;
      lib.library = name;
      lib.sgemm = sgemm;
      lib.get_config = (openblas_get_config_fn)dlsym(h, "openblas_get_config");
      lib.get_corename = (openblas_get_corename_fn)dlsym(h, "openblas_get_corename");
      lib.get_num_threads = (openblas_get_num_threads_fn)dlsym(h, "openblas_get_num_threads");
      lib.set_num_threads = (openblas_set_num_threads_fn)dlsym(h, "openblas_set_num_threads");
      break;
    }
  });
  return lib;
}

// cpuBlasInfo(): string; "OpenBLAS 0.3.21 ... (libopenblas.so.0, core Cooperlake, 2 threads)", or ''.
Napi::Value CpuBlasInfo(const Napi::CallbackInfo& info) {
  const OpenBlas& lib = openblas();
  if (lib.sgemm == nullptr) return Napi::String::New(info.Env(), "");
  std::string text = lib.get_config ? std::string(lib.get_config()) : std::string("OpenBLAS");
  text += " (" + lib.library;
  if (lib.get_corename) text += ", core " + std::string(lib.get_corename());
  if (lib.set_num_threads) lib.set_num_threads(thread_pool().size());
  if (lib.get_num_threads) text += ", " + std::to_string(lib.get_num_threads()) + " threads";
  text += ")";
  return Napi::String::New(info.Env(), text);
}

// cpuBlasSgemm(a, b, M, N, K, out): Promise<void>; a: f32 [M, K], b: f32 [N, K] -> out: f32 [M, N] =
// a·bᵀ through cblas_sgemm (row-major, B transposed), with OpenBLAS set to the pool's thread count.
Napi::Value CpuBlasSgemm(const Napi::CallbackInfo& info) {
  const char* fn = "cpuBlasSgemm";
  Args args(info, fn, 6);
  Napi::Env env = info.Env();
  HostView a = args.typed_array(0, "a", napi_float32_array, 0);
  HostView b = args.typed_array(1, "b", napi_float32_array, 0);
  const uint64_t M = args.size(2, "M"), N = args.size(3, "N"), K = args.size(4, "K");
  check_dim(args, M, "M");
  check_dim(args, N, "N");
  check_dim(args, K, "K");
  args.check_length(a, "a", checked_mul(env, fn, M, K, "M * K"));
  args.check_length(b, "b", checked_mul(env, fn, N, K, "N * K"));
  HostView out = args.typed_array(5, "out", napi_float32_array, checked_mul(env, fn, M, N, "M * N"));
  const OpenBlas& lib = openblas();
  if (lib.sgemm == nullptr) {
    args.fail("E_BACKEND", "no OpenBLAS found (tried libopenblas.so.0 and libopenblas.so; on Debian: apt-get install libopenblas0)");
  }
  const float* ap = (const float*)a.data;
  const float* bp = (const float*)b.data;
  float* op = (float*)out.data;
  const int m = (int)M, n = (int)N, k = (int)K;
  const int threads = thread_pool().size();
  auto* worker = new PromiseWorker(env, fn, {a.value, b.value, out.value}, [=](double*) {
    if (m == 0 || n == 0) return std::string();
    const OpenBlas& blas = openblas();
    if (blas.set_num_threads) blas.set_num_threads(threads);
    // lda >= max(1, K) is required even when K = 0
    blas.sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_TRANS, m, n, k, 1.0f, ap, std::max(k, 1), bp, std::max(k, 1), 0.0f, op, n);
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

}  // namespace hp
