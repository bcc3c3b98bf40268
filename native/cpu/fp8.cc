// CPU FP8 kernels: encode, decode, scaled quantize (1x128 and 128x128 blocks), dequantize, and a
// multithreaded copy (the bench's bandwidth ceiling). They agree bit for bit with
// src/reference/fp8.ts through the codec in common/fp8_codec.h.
//
// Each entry point checks its arguments on the main thread, then runs the kernel in a PromiseWorker
// (a Napi::AsyncWorker) that splits it over the thread pool. Encode and quantize have an AVX2 path
// (compiled per function with target("avx2,fma"), chosen at run time with __builtin_cpu_supports)
// and a scalar path; the environment variable HOTPATHS_SIMD=scalar forces the scalar path.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <string>


#include "common/check.h"
#include "common/entry_points.h"
#include "common/fp8_codec.h"
#include "common/promise_worker.h"
#include "common/simd.h"
#include "common/threadpool.h"

namespace hp {

// ---------------------------------------------------------------- SIMD choice (common/simd.h)

static const bool g_use_avx2 = cpu_use_avx2();

// "avx2+fma+avx512f" where the log-prob forward also takes its AVX-512 sweep (common/simd.h)
const char* cpu_simd_name() { return cpu_use_avx512() ? "avx2+fma+avx512f" : g_use_avx2 ? "avx2+fma" : "scalar"; }

// ---------------------------------------------------------------- shared pieces

// f32 bit patterns of the 256 codes of each format (decode is a table lookup on the CPU)
struct Fp8DecodeTables {
  uint32_t bits[2][256];
  Fp8DecodeTables() {
    for (uint32_t c = 0; c < 256; c++) {
      bits[FP8_E4M3][c] = fp8_decode_bits<FP8_E4M3>(c);
      bits[FP8_E5M2][c] = fp8_decode_bits<FP8_E5M2>(c);
    }
  }
};
static const Fp8DecodeTables g_decode;

// An input element as an f32 bit pattern: f32 as is, bf16 widened exactly.
static inline uint32_t widen(uint32_t u) { return u; }
static inline uint32_t widen(uint16_t h) { return (uint32_t)h << 16; }

static constexpr int64_t COLS_PER_BLOCK = 128;  // every scaling block is 128 columns wide

// ---------------------------------------------------------------- scalar kernels

// x: f32 [n] (bit patterns) -> out: u8 [n]
template <int FMT>
static void fp8_encode_scalar(const uint32_t* x, uint8_t* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = (uint8_t)fp8_encode_bits<FMT>(x[i]);
}

// x: f32|bf16 [n] -> bit pattern of max |x| (NaN and inf patterns are larger than any finite)
template <typename In>
static uint32_t fp8_amax_bits_scalar(const In* x, int64_t n) {
  uint32_t m = 0;
  for (int64_t i = 0; i < n; i++) m = std::max(m, widen(x[i]) & 0x7FFFFFFFu);
  return m;
}

// x: f32|bf16 [n] -> out: u8 [n] = encode(x / scale); scale finite and > 0. For ue8m0 scales (powers
// of two) x * (1 / scale) is the same correctly rounded value, so it multiplies instead.
template <int FMT, typename In>
static void fp8_encode_scaled_scalar(const In* x, int64_t n, float scale, bool ue8m0, uint8_t* out) {
  if (ue8m0) {
    const float inv = 1.0f / scale;
    for (int64_t i = 0; i < n; i++) out[i] = (uint8_t)fp8_encode_bits<FMT>(f32_bits(f32_from_bits(widen(x[i])) * inv));
  } else {
    for (int64_t i = 0; i < n; i++) out[i] = (uint8_t)fp8_encode_bits<FMT>(f32_bits(f32_from_bits(widen(x[i])) / scale));
  }
}

// A band of scaling blocks: rows [r0, r1) x column blocks [kb0, kb1) (kb1 - kb0 <= BAND_BLOCKS) of an
// [*, cols] matrix, where the rows of each column block form one scaling block. Both passes (amax,
// then encode) walk whole row segments of up to BAND_BLOCKS * 128 contiguous elements.
static constexpr int64_t BAND_BLOCKS = 8;

template <int FMT, typename In>
static void fp8_quantize_band_scalar(const In* x, int64_t cols, int64_t r0, int64_t r1, int64_t kb0, int64_t kb1,
                                     bool ue8m0, uint8_t* data, float* scales) {
  uint32_t amax[BAND_BLOCKS] = {0};
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t kb = kb0; kb < kb1; kb++) {
      const int64_t c0 = kb * COLS_PER_BLOCK, c1 = std::min(cols, c0 + COLS_PER_BLOCK);
      amax[kb - kb0] = std::max(amax[kb - kb0], fp8_amax_bits_scalar(x + r * cols + c0, c1 - c0));
    }
  }
  float scale[BAND_BLOCKS];
  for (int64_t kb = kb0; kb < kb1; kb++) scale[kb - kb0] = scales[kb] = fp8_scale_from_amax_bits<FMT>(amax[kb - kb0], ue8m0);
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t kb = kb0; kb < kb1; kb++) {
      const int64_t c0 = kb * COLS_PER_BLOCK, c1 = std::min(cols, c0 + COLS_PER_BLOCK);
      uint8_t* q = data + r * cols + c0;
      if (amax[kb - kb0] >= 0x7F800000u) {
        memset(q, (int)FP8_NAN_CODE, (size_t)(c1 - c0));  // NaN or inf in the block: scale NaN, every code NaN
      } else {
        fp8_encode_scaled_scalar<FMT>(x + r * cols + c0, c1 - c0, scale[kb - kb0], ue8m0, q);
      }
    }
  }
}

// ---------------------------------------------------------------- AVX2 kernels
#if HP_X86

HP_AVX2 static inline __m256i load8_bits(const uint32_t* p) { return _mm256_loadu_si256((const __m256i*)p); }
HP_AVX2 static inline __m256i load8_bits(const uint16_t* p) {
  return _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16);
}

// 8 f32 bit patterns -> 8 codes (one per 32-bit lane): fp8_encode_bits<FMT> lane by lane.
template <int FMT>
HP_AVX2 static inline __m256i fp8_encode8_avx2(__m256i u) {
  typedef Fp8Traits<FMT> T;
  constexpr int shift = 23 - T::kManBits;
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
  const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(u, 24), _mm256_set1_epi32(0x80));
  const __m256i exp = _mm256_srli_epi32(a, 23);

  // normal in fp8: rebias, round the mantissa to nearest even
  const __m256i r = _mm256_sub_epi32(a, _mm256_set1_epi32((127 - T::kBias) << 23));
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(r, shift), one);
  const __m256i rounded = _mm256_add_epi32(_mm256_add_epi32(r, _mm256_set1_epi32((1 << (shift - 1)) - 1)), odd);
  const __m256i normal = _mm256_srli_epi32(rounded, shift);

  // subnormal in fp8: q = RNE(mant >> s), s = 151 - bias - man - max(exp, 1), clamped at 25 (-> 0)
  const __m256i f32_subnormal = _mm256_cmpeq_epi32(exp, _mm256_setzero_si256());
  const __m256i mant = _mm256_or_si256(_mm256_and_si256(a, _mm256_set1_epi32(0x7FFFFF)),
                                       _mm256_andnot_si256(f32_subnormal, _mm256_set1_epi32(0x800000)));
  const __m256i e = _mm256_max_epi32(exp, one);
  const __m256i s = _mm256_min_epi32(_mm256_sub_epi32(_mm256_set1_epi32(151 - T::kBias - T::kManBits), e),
                                     _mm256_set1_epi32(25));
  __m256i q = _mm256_srlv_epi32(mant, s);
  const __m256i rem = _mm256_and_si256(mant, _mm256_sub_epi32(_mm256_sllv_epi32(one, s), one));
  const __m256i half = _mm256_sllv_epi32(one, _mm256_sub_epi32(s, one));
  const __m256i q_odd = _mm256_cmpeq_epi32(_mm256_and_si256(q, one), one);
  const __m256i round_up = _mm256_or_si256(_mm256_cmpgt_epi32(rem, half),
                                           _mm256_and_si256(_mm256_cmpeq_epi32(rem, half), q_odd));
  q = _mm256_sub_epi32(q, round_up);  // round_up lanes are -1

  const __m256i is_normal = _mm256_cmpgt_epi32(exp, _mm256_set1_epi32(127 - T::kBias));
  __m256i code = _mm256_or_si256(sign, _mm256_blendv_epi8(q, normal, is_normal));
  const __m256i saturate = _mm256_cmpgt_epi32(a, _mm256_set1_epi32((int)(T::kMaxBits - 1)));
  code = _mm256_blendv_epi8(code, _mm256_or_si256(sign, _mm256_set1_epi32((int)T::kMaxCode)), saturate);
  if (T::kInfCode >= 0) {
    const __m256i inf = _mm256_cmpeq_epi32(a, _mm256_set1_epi32(0x7F800000));
    code = _mm256_blendv_epi8(code, _mm256_or_si256(sign, _mm256_set1_epi32(T::kInfCode)), inf);
  }
  const __m256i nan = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7F800000));
  return _mm256_blendv_epi8(code, _mm256_set1_epi32((int)FP8_NAN_CODE), nan);
}

// 4 x 8 codes (one per 32-bit lane) -> 32 bytes at out
HP_AVX2 static inline void store32_codes(uint8_t* out, __m256i c0, __m256i c1, __m256i c2, __m256i c3) {
  const __m256i p01 = _mm256_packus_epi32(c0, c1);  // per 128-bit lane: c0[0..3] c1[0..3] | c0[4..7] c1[4..7]
  const __m256i p23 = _mm256_packus_epi32(c2, c3);
  const __m256i p = _mm256_packus_epi16(p01, p23);  // dwords: c0lo c1lo c2lo c3lo c0hi c1hi c2hi c3hi
  const __m256i ordered = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256((__m256i*)out, ordered);
}

// x: f32 [n] (bit patterns) -> out: u8 [n]
template <int FMT>
HP_AVX2 static void fp8_encode_avx2(const uint32_t* x, uint8_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    store32_codes(out + i, fp8_encode8_avx2<FMT>(load8_bits(x + i)), fp8_encode8_avx2<FMT>(load8_bits(x + i + 8)),
                  fp8_encode8_avx2<FMT>(load8_bits(x + i + 16)), fp8_encode8_avx2<FMT>(load8_bits(x + i + 24)));
  }
  for (; i < n; i++) out[i] = (uint8_t)fp8_encode_bits<FMT>(x[i]);
}

// x: f32|bf16 [n] -> bit pattern of max |x|
template <typename In>
HP_AVX2 static uint32_t fp8_amax_bits_avx2(const In* x, int64_t n) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
  __m256i m = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_epu32(m, _mm256_and_si256(load8_bits(x + i), abs_mask));
  alignas(32) uint32_t lanes[8];
  _mm256_store_si256((__m256i*)lanes, m);
  uint32_t amax = 0;
  for (int l = 0; l < 8; l++) amax = std::max(amax, lanes[l]);
  for (; i < n; i++) amax = std::max(amax, widen(x[i]) & 0x7FFFFFFFu);
  return amax;
}

// 8 inputs -> 8 codes of x / scale (MUL: x * inv_scale, exact for power-of-two scales)
template <int FMT, bool MUL, typename In>
HP_AVX2 static inline __m256i fp8_encode8_scaled_avx2(const In* x, __m256 s) {
  const __m256 v = _mm256_castsi256_ps(load8_bits(x));
  const __m256 y = MUL ? _mm256_mul_ps(v, s) : _mm256_div_ps(v, s);
  return fp8_encode8_avx2<FMT>(_mm256_castps_si256(y));
}

template <int FMT, bool MUL, typename In>
HP_AVX2 static void fp8_encode_scaled_avx2_loop(const In* x, int64_t n, float s, uint8_t* out) {
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    store32_codes(out + i, fp8_encode8_scaled_avx2<FMT, MUL>(x + i, vs), fp8_encode8_scaled_avx2<FMT, MUL>(x + i + 8, vs),
                  fp8_encode8_scaled_avx2<FMT, MUL>(x + i + 16, vs), fp8_encode8_scaled_avx2<FMT, MUL>(x + i + 24, vs));
  }
  for (; i < n; i++) {
    const float v = f32_from_bits(widen(x[i]));
    out[i] = (uint8_t)fp8_encode_bits<FMT>(f32_bits(MUL ? v * s : v / s));
  }
}

// fp8_quantize_band_scalar with AVX2
template <int FMT, typename In>
HP_AVX2 static void fp8_quantize_band_avx2(const In* x, int64_t cols, int64_t r0, int64_t r1, int64_t kb0, int64_t kb1,
                                           bool ue8m0, uint8_t* data, float* scales) {
  uint32_t amax[BAND_BLOCKS] = {0};
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t kb = kb0; kb < kb1; kb++) {
      const int64_t c0 = kb * COLS_PER_BLOCK, c1 = std::min(cols, c0 + COLS_PER_BLOCK);
      amax[kb - kb0] = std::max(amax[kb - kb0], fp8_amax_bits_avx2(x + r * cols + c0, c1 - c0));
    }
  }
  float scale[BAND_BLOCKS];
  for (int64_t kb = kb0; kb < kb1; kb++) scale[kb - kb0] = scales[kb] = fp8_scale_from_amax_bits<FMT>(amax[kb - kb0], ue8m0);
  for (int64_t r = r0; r < r1; r++) {
    for (int64_t kb = kb0; kb < kb1; kb++) {
      const int64_t c0 = kb * COLS_PER_BLOCK, c1 = std::min(cols, c0 + COLS_PER_BLOCK);
      uint8_t* q = data + r * cols + c0;
      if (amax[kb - kb0] >= 0x7F800000u) {
        memset(q, (int)FP8_NAN_CODE, (size_t)(c1 - c0));
      } else if (ue8m0) {
        fp8_encode_scaled_avx2_loop<FMT, true>(x + r * cols + c0, c1 - c0, 1.0f / scale[kb - kb0], q);
      } else {
        fp8_encode_scaled_avx2_loop<FMT, false>(x + r * cols + c0, c1 - c0, scale[kb - kb0], q);
      }
    }
  }
}

#endif  // HP_X86

// ---------------------------------------------------------------- kernels over the thread pool

// x: f32 [n] -> out: u8 [n]
static void fp8_encode(const uint32_t* x, uint8_t* out, int64_t n, int format) {
  thread_pool().parallel_for(0, n, 1 << 16, [=](int64_t b, int64_t e) {
#if HP_X86
    if (g_use_avx2) {
      if (format == FP8_E4M3) fp8_encode_avx2<FP8_E4M3>(x + b, out + b, e - b);
      else fp8_encode_avx2<FP8_E5M2>(x + b, out + b, e - b);
      return;
    }
#endif
    if (format == FP8_E4M3) fp8_encode_scalar<FP8_E4M3>(x + b, out + b, e - b);
    else fp8_encode_scalar<FP8_E5M2>(x + b, out + b, e - b);
  });
}

// q: u8 [n] -> out: f32 [n] (bit patterns)
static void fp8_decode(const uint8_t* q, uint32_t* out, int64_t n, int format) {
  const uint32_t* table = g_decode.bits[format];
  thread_pool().parallel_for(0, n, 1 << 16, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) out[i] = table[q[i]];
  });
}

// x: f32|bf16 [rows, cols] -> data: u8 [rows, cols], scales: f32 [ceil(rows/br), ceil(cols/128)]
// Parallel over bands of br rows x up to BAND_BLOCKS column blocks.
template <int FMT, typename In>
static void fp8_quantize(const In* x, int64_t rows, int64_t cols, int64_t br, bool ue8m0, uint8_t* data, float* scales) {
  const int64_t nbr = (rows + br - 1) / br;
  const int64_t nbk = (cols + COLS_PER_BLOCK - 1) / COLS_PER_BLOCK;
  const int64_t bands_per_row = (nbk + BAND_BLOCKS - 1) / BAND_BLOCKS;
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / (br * BAND_BLOCKS * COLS_PER_BLOCK));  // ~64K elements
  thread_pool().parallel_for(0, nbr * bands_per_row, grain, [=](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; t++) {
      const int64_t bm = t / bands_per_row;
      const int64_t kb0 = (t % bands_per_row) * BAND_BLOCKS, kb1 = std::min(nbk, kb0 + BAND_BLOCKS);
      const int64_t r0 = bm * br, r1 = std::min(rows, r0 + br);
      float* band_scales = scales + bm * nbk;
#if HP_X86
      if (g_use_avx2) {
        fp8_quantize_band_avx2<FMT>(x, cols, r0, r1, kb0, kb1, ue8m0, data, band_scales);
        continue;
      }
#endif
      fp8_quantize_band_scalar<FMT>(x, cols, r0, r1, kb0, kb1, ue8m0, data, band_scales);
    }
  });
}

// data: u8 [rows, cols], scales: f32 [ceil(rows/br), ceil(cols/128)] -> out: f32 [rows, cols] (bits)
// out = decode(q) * scale as an f32 product; NaN results are written as the canonical 0x7FC00000.
static void fp8_dequantize(const uint8_t* data, const float* scales, int64_t rows, int64_t cols, int64_t br, int format,
                           uint32_t* out) {
  const float* table = (const float*)(const void*)g_decode.bits[format];
  const int64_t nbk = (cols + COLS_PER_BLOCK - 1) / COLS_PER_BLOCK;
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(cols, 1));
  thread_pool().parallel_for(0, rows, grain, [=](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const float* srow = scales + (r / br) * nbk;
      for (int64_t bk = 0; bk < nbk; bk++) {
        const float s = srow[bk];
        const int64_t c0 = bk * COLS_PER_BLOCK, c1 = std::min(cols, c0 + COLS_PER_BLOCK);
        for (int64_t c = c0; c < c1; c++) {
          uint32_t v = f32_bits(table[data[r * cols + c]] * s);
          if ((v & 0x7FFFFFFFu) > 0x7F800000u) v = F32_NAN_BITS;
          out[r * cols + c] = v;
        }
      }
    }
  });
}

// ---------------------------------------------------------------- entry points

// cpuFp8Encode(x: Float32Array, out: Uint8Array, format): Promise<void>; x: f32 [n] -> out: u8 [n]
Napi::Value CpuFp8Encode(const Napi::CallbackInfo& info) {
  Args args(info, "cpuFp8Encode", 3);
  HostView x = args.typed_array(0, "x", napi_float32_array, 0);
  HostView out = args.typed_array(1, "out", napi_uint8_array, x.length);
  const int format = args.format(2);
  const uint32_t* xp = (const uint32_t*)x.data;
  uint8_t* op = (uint8_t*)out.data;
  const int64_t n = (int64_t)x.length;
  auto* worker = new PromiseWorker(info.Env(), "cpuFp8Encode", {x.value, out.value}, [=](double*) {
    fp8_encode(xp, op, n, format);
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// cpuFp8Decode(q: Uint8Array, out: Float32Array, format): Promise<void>; q: u8 [n] -> out: f32 [n]
Napi::Value CpuFp8Decode(const Napi::CallbackInfo& info) {
  Args args(info, "cpuFp8Decode", 3);
  HostView q = args.typed_array(0, "q", napi_uint8_array, 0);
  HostView out = args.typed_array(1, "out", napi_float32_array, q.length);
  const int format = args.format(2);
  const uint8_t* qp = (const uint8_t*)q.data;
  uint32_t* op = (uint32_t*)out.data;
  const int64_t n = (int64_t)q.length;
  auto* worker = new PromiseWorker(info.Env(), "cpuFp8Decode", {q.value, out.value}, [=](double*) {
    fp8_decode(qp, op, n, format);
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// cpuFp8Quantize(x: Float32Array | Uint16Array (bf16 bits), rows, cols, blockRows, format, ue8m0,
//                data: Uint8Array, scales: Float32Array): Promise<void>
// x: f32|bf16 [rows, cols] -> data: u8 [rows, cols], scales: f32 [ceil(rows/blockRows), ceil(cols/128)]
Napi::Value CpuFp8Quantize(const Napi::CallbackInfo& info) {
  Args args(info, "cpuFp8Quantize", 8);
  HostView x = args.typed_array(0, "x");
  if (x.type != napi_float32_array && x.type != napi_uint16_array) {
    args.fail("E_ARG", std::string("x must be a Float32Array or a Uint16Array (bf16 bits), got a ") + typed_array_name(x.type));
  }
  const uint64_t rows = args.size(1, "rows");
  const uint64_t cols = args.size(2, "cols");
  const int br = args.block_rows(3);
  const int format = args.format(4);
  const bool ue8m0 = args.boolean(5, "ue8m0");
  const uint64_t n = checked_mul(info.Env(), "cpuFp8Quantize", rows, cols, "rows * cols");
  if (n != (uint64_t)x.length) {
    args.fail("E_SHAPE", "rows * cols (" + std::to_string(rows) + " * " + std::to_string(cols) + " = " + std::to_string(n) +
                             ") must equal x.length (" + std::to_string(x.length) + ")");
  }
  const uint64_t n_scales = checked_mul(info.Env(), "cpuFp8Quantize", ceil_div(rows, br), ceil_div(cols, 128), "scale count");
  HostView data = args.typed_array(6, "data", napi_uint8_array, n);
  HostView scales = args.typed_array(7, "scales", napi_float32_array, n_scales);

  const bool bf16 = x.type == napi_uint16_array;
  const void* xp = x.data;
  uint8_t* dp = (uint8_t*)data.data;
  float* sp = (float*)scales.data;
  const int64_t r = (int64_t)rows, c = (int64_t)cols;
  auto* worker = new PromiseWorker(info.Env(), "cpuFp8Quantize", {x.value, data.value, scales.value}, [=](double*) {
    if (n == 0) return std::string();
    if (bf16) {
      const uint16_t* in = (const uint16_t*)xp;
      if (format == FP8_E4M3) fp8_quantize<FP8_E4M3>(in, r, c, br, ue8m0, dp, sp);
      else fp8_quantize<FP8_E5M2>(in, r, c, br, ue8m0, dp, sp);
    } else {
      const uint32_t* in = (const uint32_t*)xp;
      if (format == FP8_E4M3) fp8_quantize<FP8_E4M3>(in, r, c, br, ue8m0, dp, sp);
      else fp8_quantize<FP8_E5M2>(in, r, c, br, ue8m0, dp, sp);
    }
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// cpuFp8Dequantize(data: Uint8Array, scales: Float32Array, rows, cols, blockRows, format,
//                  out: Float32Array): Promise<void>
// data: u8 [rows, cols], scales: f32 [ceil(rows/blockRows), ceil(cols/128)] -> out: f32 [rows, cols]
Napi::Value CpuFp8Dequantize(const Napi::CallbackInfo& info) {
  Args args(info, "cpuFp8Dequantize", 7);
  HostView data = args.typed_array(0, "data", napi_uint8_array, 0);
  HostView scales = args.typed_array(1, "scales", napi_float32_array, 0);
  const uint64_t rows = args.size(2, "rows");
  const uint64_t cols = args.size(3, "cols");
  const int br = args.block_rows(4);
  const int format = args.format(5);
  HostView out = args.typed_array(6, "out", napi_float32_array, 0);
  const uint64_t n = checked_mul(info.Env(), "cpuFp8Dequantize", rows, cols, "rows * cols");
  const uint64_t n_scales = checked_mul(info.Env(), "cpuFp8Dequantize", ceil_div(rows, br), ceil_div(cols, 128), "scale count");
  args.check_length(data, "data", n);
  args.check_length(scales, "scales", n_scales);
  args.check_length(out, "out", n);

  const uint8_t* dp = (const uint8_t*)data.data;
  const float* sp = (const float*)scales.data;
  uint32_t* op = (uint32_t*)out.data;
  const int64_t r = (int64_t)rows, c = (int64_t)cols;
  auto* worker = new PromiseWorker(info.Env(), "cpuFp8Dequantize", {data.value, scales.value, out.value}, [=](double*) {
    if (n != 0) fp8_dequantize(dp, sp, r, c, br, format, op);
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

// cpuCopy(dst: TypedArray, src: TypedArray): Promise<void>; copies src.byteLength bytes, in 1 MiB
// chunks over the pool (overlapping views of one buffer: one memmove).
Napi::Value CpuCopy(const Napi::CallbackInfo& info) {
  Args args(info, "cpuCopy", 2);
  HostView dst = args.typed_array(0, "dst");
  HostView src = args.typed_array(1, "src");
  if (dst.bytes < src.bytes) {
    args.fail("E_SHAPE", "dst (" + std::to_string(dst.bytes) + " bytes) is smaller than src (" + std::to_string(src.bytes) +
                             " bytes)");
  }
  uint8_t* d = (uint8_t*)dst.data;
  const uint8_t* s = (const uint8_t*)src.data;
  const int64_t bytes = (int64_t)src.bytes;
  auto* worker = new PromiseWorker(info.Env(), "cpuCopy", {dst.value, src.value}, [=](double*) {
    if (bytes == 0) return std::string();
    if (d < s + bytes && s < d + bytes) {
      memmove(d, s, (size_t)bytes);
      return std::string();
    }
    thread_pool().parallel_for(0, bytes, 1 << 20, [=](int64_t b, int64_t e) { memcpy(d + b, s + b, (size_t)(e - b)); });
    return std::string();
  });
  worker->Queue();
  return worker->promise();
}

}  // namespace hp
