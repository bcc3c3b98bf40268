// The dev harnesses' counter-based random numbers: hash32(i) is the 64-bit finalizer of MurmurHash3
// (two multiply-xorshift rounds) of i, its top 32 bits. Each harness draws element i of a buffer as
// hash32(seed · 0x9E3779B97F4A7C15 + i), so every GPU thread makes its own without state.
#pragma once
#include <stdint.h>

__host__ __device__ __forceinline__ uint32_t hash32(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return (uint32_t)x;
}
