// SIMD choice for the CPU kernels, shared by every native/cpu/*.cc: AVX2/FMA functions are compiled
// per function (HP_AVX2 = target("avx2,fma")) and taken at run time when the CPU has both, so the
// addon runs on any x86-64 (and builds elsewhere with the scalar paths only).
// HOTPATHS_SIMD=scalar forces the scalar paths (CI runs the fp8 tests that way too). The log-prob
// forward also has AVX-512 (HP_AVX512, cpu_use_avx512()); HOTPATHS_SIMD=avx2 stops at AVX2, so that
// CI covers that path on AVX-512 machines too.
#pragma once

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define HP_X86 1
#include <immintrin.h>
#define HP_AVX2 __attribute__((target("avx2,fma")))
#define HP_AVX512 __attribute__((target("avx512f,avx2,fma")))
#else
#define HP_X86 0
#endif

namespace hp {

// The widest SIMD HOTPATHS_SIMD allows: 0 scalar, 1 AVX2, 2 AVX-512 (unset or anything else).
inline int simd_cap_from_env() {
  const char* force = getenv("HOTPATHS_SIMD");
  if (force != nullptr && strcmp(force, "scalar") == 0) return 0;
  if (force != nullptr && strcmp(force, "avx2") == 0) return 1;
  return 2;
}

// Whether the AVX2/FMA paths run here; decided once per process.
inline bool cpu_use_avx2() {
  static const bool use = [] {
#if HP_X86
    if (simd_cap_from_env() < 1) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
  }();
  return use;
}

// Whether the AVX-512 paths run here (AVX-512F with AVX2/FMA, and HOTPATHS_SIMD not scalar or avx2).
inline bool cpu_use_avx512() {
  static const bool use = [] {
#if HP_X86
    if (simd_cap_from_env() < 2) return false;
    __builtin_cpu_init();
    return cpu_use_avx2() && __builtin_cpu_supports("avx512f");
#else
    return false;
#endif
  }();
  return use;
}

// Flush-to-zero and denormals-are-zero for the calling thread while in scope (x86: the MXCSR's FTZ
// and DAZ bits; elsewhere nothing). On Intel cores every SSE/AVX operation with a subnormal f32
// operand or result takes a microcode assist of ~100 cycles (AMD Zen runs them at full speed): the
// CPU GEMMs over softmax gradients, where many exp(x − lse)·g are subnormal, ran 15× slower on a Xeon
// than on normal values. Flushing changes each affected product or sum by less than 2^−126.
struct FlushDenormals {
#if HP_X86
  unsigned saved;
  FlushDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040u); }
  ~FlushDenormals() { _mm_setcsr(saved); }
#else
  FlushDenormals() {}
#endif
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;
};

}  // namespace hp
