// FP8 (E4M3 / E5M2) codec shared by the CPU and CUDA kernels. It mirrors src/reference/fp8.ts
// (encodeBits, decodeBits, scaleFromAmax) step for step and must agree with it bit for bit:
//   encode: integer work on the f32 bit pattern; round to nearest even; finite values beyond the
//           largest finite saturate to it; NaN -> 0x7F; e4m3 +-inf -> +-448 (0x7E/0xFE);
//           e5m2 +-inf -> +-inf (0x7C/0xFC); fp8 subnormals handled exactly.
//   decode: exact; NaN codes -> the canonical f32 NaN 0x7FC00000.
//   scale:  amax (given as the bit pattern of max |x|; >= 0x7F800000 means a NaN or inf was seen)
//           -> NaN, or max(amax, 1e-4f) / maxFinite as an IEEE f32 division, optionally rounded up
//           to a power of two (ue8m0).
// Compiled by nvcc the functions are __host__ __device__; by a plain C++ compiler, plain inline.
#pragma once

#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define HP_HD __host__ __device__ __forceinline__
#else
#define HP_HD inline
#endif

namespace hp {

enum Fp8Format : int { FP8_E4M3 = 0, FP8_E5M2 = 1 };

static constexpr uint32_t F32_NAN_BITS = 0x7FC00000u;  // canonical f32 NaN
static constexpr uint32_t FP8_NAN_CODE = 0x7Fu;        // canonical fp8 NaN (sign dropped)
static constexpr float AMAX_FLOOR = 1e-4f;             // amax is clamped below at this

// Per-format constants (see FP8_FORMATS in src/reference/fp8.ts).
template <int FMT> struct Fp8Traits;
template <> struct Fp8Traits<FP8_E4M3> {
  static constexpr int kExpBits = 4;
  static constexpr int kManBits = 3;
  static constexpr int kBias = 7;
  static constexpr uint32_t kMaxBits = 0x43E00000u;  // f32 bits of 448
  static constexpr uint32_t kMaxCode = 0x7Eu;
  static constexpr int kInfCode = -1;  // no infinity: +-inf saturates to +-448
  static constexpr float kMaxFinite = 448.0f;
};
template <> struct Fp8Traits<FP8_E5M2> {
  static constexpr int kExpBits = 5;
  static constexpr int kManBits = 2;
  static constexpr int kBias = 15;
  static constexpr uint32_t kMaxBits = 0x47600000u;  // f32 bits of 57344
  static constexpr uint32_t kMaxCode = 0x7Bu;
  static constexpr int kInfCode = 0x7C;
  static constexpr float kMaxFinite = 57344.0f;
};

HP_HD uint32_t f32_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u;
  memcpy(&u, &x, 4);
  return u;
#endif
}

HP_HD float f32_from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  memcpy(&x, &u, 4);
  return x;
#endif
}

// IEEE f32 division and product, rounded to nearest even, whatever the compiler flags.
HP_HD float f32_div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
HP_HD float f32_mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

// One f32 value (its bit pattern u) -> fp8 code (0..255).
template <int FMT>
HP_HD uint32_t fp8_encode_bits(uint32_t u) {
  typedef Fp8Traits<FMT> T;
  const uint32_t sign = (u >> 24) & 0x80u;
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return FP8_NAN_CODE;
  if (T::kInfCode >= 0 && a == 0x7F800000u) return sign | (uint32_t)T::kInfCode;
  if (a >= T::kMaxBits) return sign | T::kMaxCode;
  const uint32_t exp = a >> 23;
  const int shift = 23 - T::kManBits;
  if (exp > (uint32_t)(127 - T::kBias)) {
    // normal in fp8: rebias the exponent, then round the mantissa to nearest even
    const uint32_t r = a - ((uint32_t)(127 - T::kBias) << 23);
    const uint32_t rounded = r + ((1u << (shift - 1)) - 1u) + ((r >> shift) & 1u);
    return sign | (rounded >> shift);
  }
  // subnormal (or zero) in fp8: value = mant * 2^(e-150); code = RNE(value / 2^(1-bias-man))
  const uint32_t mant = exp == 0 ? (a & 0x7FFFFFu) : ((a & 0x7FFFFFu) | 0x800000u);
  const int e = exp == 0 ? 1 : (int)exp;
  const int s = 151 - T::kBias - T::kManBits - e;  // >= 1 here
  if (s > 24) return sign;                         // below half the smallest subnormal
  uint32_t q = mant >> s;
  const uint32_t rem = mant & ((1u << s) - 1u);
  const uint32_t half = 1u << (s - 1);
  if (rem > half || (rem == half && (q & 1u))) q += 1;
  return sign | q;
}

// One fp8 code -> the f32 bit pattern of its value (exact; NaN -> 0x7FC00000).
template <int FMT>
HP_HD uint32_t fp8_decode_bits(uint32_t code) {
  typedef Fp8Traits<FMT> T;
  const uint32_t sign = (code & 0x80u) << 24;
  const uint32_t e = (code >> T::kManBits) & ((1u << T::kExpBits) - 1u);
  const uint32_t m = code & ((1u << T::kManBits) - 1u);
  const uint32_t e_max = (1u << T::kExpBits) - 1u;
  if (FMT == FP8_E4M3 && e == e_max && m == 7u) return F32_NAN_BITS;
  if (FMT == FP8_E5M2 && e == e_max) return m == 0 ? (sign | 0x7F800000u) : F32_NAN_BITS;
  if (e == 0) {
    // subnormal: m * 2^(1-bias-man), exact in f32 (2^-9 for e4m3, 2^-16 for e5m2)
    const float unit = FMT == FP8_E4M3 ? 1.0f / 512.0f : 1.0f / 65536.0f;
    return sign | f32_bits((float)m * unit);
  }
  return sign | ((e - T::kBias + 127u) << 23) | (m << (23 - T::kManBits));
}

// The scale of one block from the bit pattern of its amax (max |x|, compared as integers: for
// non-negative floats integer order is float order, and NaN/inf patterns are >= 0x7F800000).
template <int FMT>
HP_HD float fp8_scale_from_amax_bits(uint32_t amax_bits, bool ue8m0) {
  if (amax_bits >= 0x7F800000u) return f32_from_bits(F32_NAN_BITS);
  float amax = f32_from_bits(amax_bits);
  if (!(amax >= AMAX_FLOOR)) amax = AMAX_FLOOR;
  float scale = f32_div_rn(amax, Fp8Traits<FMT>::kMaxFinite);
  if (ue8m0) {
    const uint32_t b = f32_bits(scale);
    // round up to a power of two: drop the mantissa and step the exponent when it was non-zero
    if (b & 0x7FFFFFu) scale = f32_from_bits((b & 0xFF800000u) + 0x800000u);
  }
  return scale;
}

// Runtime-format wrappers (format: 0 = e4m3, 1 = e5m2).
HP_HD uint32_t fp8_encode_bits(uint32_t u, int format) {
  return format == FP8_E4M3 ? fp8_encode_bits<FP8_E4M3>(u) : fp8_encode_bits<FP8_E5M2>(u);
}
HP_HD uint32_t fp8_decode_bits(uint32_t code, int format) {
  return format == FP8_E4M3 ? fp8_decode_bits<FP8_E4M3>(code) : fp8_decode_bits<FP8_E5M2>(code);
}

}  // namespace hp
