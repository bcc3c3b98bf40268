// SIMD choice for the CPU kernels, shared by every native/cpu/*.cc: AVX2/FMA functions are compiled
// per function (HP_AVX2 = target("avx2,fma")) and taken at run time when the CPU has both, so the
// addon runs on any x86-64 (and builds elsewhere with the scalar paths only).
// HOTPATHS_SIMD=scalar forces the scalar paths (CI runs the fp8 tests that way too).
#pragma once

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define HP_X86 1
#include <immintrin.h>
#define HP_AVX2 __attribute__((target("avx2,fma")))
#else
#define HP_X86 0
#endif

namespace hp {

// Whether the AVX2/FMA paths run here; decided once per process.
inline bool cpu_use_avx2() {
  static const bool use = [] {
#if HP_X86
    const char* force = getenv("HOTPATHS_SIMD");
    if (force != nullptr && strcmp(force, "scalar") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
  }();
  return use;
}

}  // namespace hp
