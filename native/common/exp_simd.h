// 2^x on 8 f32 lanes (AVX2/FMA) for the CPU kernels that need many exponentials: native/cpu/logprob_rows.h
// (softmax over the vocabulary) and native/cpu/nn.cc (attention's softmax, SwiGLU's sigmoid); and on
// 16 lanes (AVX-512F) for the log-prob forward's sweep. Working in base 2 saves the Cody–Waite
// reduction: callers fold log2(e) into a scale they multiply by anyway.
#pragma once

#include "common/simd.h"

namespace hp {

#if HP_X86

// 2^r for |r| ≤ ½: a degree-5 polynomial with constant term 1, its other coefficients (highest degree
// first) fitted for the least maximum relative error on [−½, ½] (9e-8 in exact arithmetic, 1.6e-7
// evaluated in f32 by Horner with FMA: about one ulp). One table for the 8- and 16-lane forms.
static constexpr float EXP2_POLY[6] = {1.3264730e-3f, 9.6715130e-3f, 5.5507336e-2f, 2.4022242e-1f, 6.9314700e-1f, 1.0f};

HP_AVX2 static inline __m256 exp2_poly8(__m256 r) {
  __m256 p = _mm256_set1_ps(EXP2_POLY[0]);
  for (int i = 1; i < 6; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP2_POLY[i]));
  return p;
}

// 2^d for d in [−150, 127], 8 lanes: d = n + r with n = round(d) and |r| ≤ ½, 2^r by exp2_poly8
// (relative error ≤ 1.6e-7), 2^n built in the exponent field in two halves so that n below −126
// gives the subnormal (or 0 from −150 on) that exp gives.
HP_AVX2 static inline __m256 exp2_8(__m256 d) {
  // operand order keeps a NaN d NaN (max/min return their second operand when one is NaN)
  d = _mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(_mm256_set1_ps(-150.0f), d));
  const __m256 n = _mm256_round_ps(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 r = _mm256_sub_ps(d, n);
  const __m256 p = exp2_poly8(r);
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i h1 = _mm256_srai_epi32(ni, 1);
  const __m256i h2 = _mm256_sub_epi32(ni, h1);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h1, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h2, _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// 2^d for d in [−126, 127] (the log-prob forward's d = (x − max)·log2 e, floored at EXP_FLOOR·log2 e
// > −126), in 4 operations besides the polynomial: adding M = 1.5·2^23 + 127 rounds d to the nearest
// integer n (the spacing of floats there is 1) and leaves n + 127, the biased exponent of 2^n, in the
// low mantissa bits of t; shifting t's bits left by 23 moves those into the exponent field. A NaN d
// gives NaN (its polynomial is NaN).
HP_AVX2 static inline __m256 exp2_8_nonpositive(__m256 d) {
  const __m256 M = _mm256_set1_ps(12583039.0f);  // 1.5·2^23 + 127
  const __m256 t = _mm256_add_ps(d, M);
  const __m256 r = _mm256_sub_ps(d, _mm256_sub_ps(t, M));
  const __m256 p = exp2_poly8(r);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23)));
}

#pragma GCC diagnostic push  // GCC 12's false "uninitialized" on AVX-512 intrinsics: see cpu/logprob_rows.h
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// 2^r for |r| ≤ ½ on 16 lanes: the same polynomial (EXP2_POLY).
HP_AVX512 static inline __m512 exp2_poly16(__m512 r) {
  __m512 p = _mm512_set1_ps(EXP2_POLY[0]);
  for (int i = 1; i < 6; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP2_POLY[i]));
  return p;
}

// exp2_8_nonpositive on 16 lanes, d in [−126, 127]: n = round(d), 2^(d − n) by the polynomial, and
// vscalefps multiplies by 2^n in one instruction. A NaN d gives NaN.
HP_AVX512 static inline __m512 exp2_16_nonpositive(__m512 d) {
  const __m512 n = _mm512_roundscale_ps(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm512_scalef_ps(exp2_poly16(_mm512_sub_ps(d, n)), n);
}

#pragma GCC diagnostic pop

#endif

}  // namespace hp
