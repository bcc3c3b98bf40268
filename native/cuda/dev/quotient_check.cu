// The bf16 pack's division (quotient_rn in native/cuda/moe_dispatch.cuh: one reciprocal a block, a
// multiply and two correction steps an element) against __fdiv_rn, the IEEE division fp8.quantize and
// the reference use:
//   bf16  every bf16 amax (finite, > 0; the scale fp8_scale_from_amax_bits makes of it) × every bf16 x
//         with |x| ≤ amax (as in a block): ~2^30 quotients, exhaustive for bf16 inputs
//   f32   2^32 random f32 pairs (x finite, amax = |x| / u with u in (0, 1], so |x| ≤ amax as in a block)
// Counts, per suite: quotients whose f32 bits differ (in the last place, near an f32 midpoint), of
// those how many are normal, and E4M3 codes that differ (what the pack stores). The pack uses
// quotient_rn for bf16 x only, so the check passes iff the bf16 suite's codes never differ; the f32
// suite is for information (the pack divides f32 x).
//   native/cuda/dev/quotient_check.sh [outdir]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#include "cuda/moe_dispatch.cuh"
#include "dev_hash.cuh"

using namespace hp;

struct Counts {
  unsigned long long bits, normal, codes;
};

__device__ uint32_t e4m3_of(float q) { return moe::e4m3_encode4(__float_as_uint(q), 0, 0, 0) & 0xFF; }

__device__ void compare(float x, float scale, float r, Counts* c) {
  const float a = __fdiv_rn(x, scale), b = moe::quotient_rn(x, scale, r);
  if (__float_as_uint(a) != __float_as_uint(b)) {
    atomicAdd(&c->bits, 1ull);
    if (fabsf(a) >= 1.17549435e-38f) atomicAdd(&c->normal, 1ull);
    if (e4m3_of(a) != e4m3_of(b)) atomicAdd(&c->codes, 1ull);
  }
}

// a CTA per amax bit pattern (bf16 upper half), a thread per 256 x patterns
__global__ void bf16_kernel(Counts* c) {
  const uint32_t amax_bits = (uint32_t)blockIdx.x << 16;
  if (amax_bits == 0 || amax_bits >= 0x7F800000u) return;
  const float scale = fp8_scale_from_amax_bits<FP8_E4M3>(amax_bits, false);
  const float r = __frcp_rn(scale);
  for (uint32_t xb = threadIdx.x; xb < 65536; xb += blockDim.x) {
    const uint32_t u = xb << 16;
    if ((u & 0x7FFFFFFFu) > amax_bits) continue;
    compare(__uint_as_float(u), scale, r, c);
  }
}

__global__ void f32_kernel(uint64_t first, uint64_t n, Counts* c) {
  for (uint64_t i = first + blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < first + n; i += (uint64_t)gridDim.x * blockDim.x) {
    uint32_t xb = hash32(2 * i);
    if ((xb & 0x7FFFFFFFu) >= 0x7F800000u) xb &= 0x807FFFFFu;  // finite
    const float x = __uint_as_float(xb);
    const float u = ((hash32(2 * i + 1) >> 8) + 1) * (1.0f / 16777216.0f);  // (0, 1]
    const float amax = fminf(fabsf(x) / u, 3.0e38f);
    const float scale = fp8_scale_from_amax_bits<FP8_E4M3>(__float_as_uint(fmaxf(amax, fabsf(x))), false);
    compare(x, scale, __frcp_rn(scale), c);
  }
}

int main() {
  Counts* c;
  cudaMallocManaged(&c, 2 * sizeof(Counts));
  c[0] = c[1] = Counts{0, 0, 0};
  bf16_kernel<<<32768, 256>>>(&c[0]);
  for (int part = 0; part < 16; part++) f32_kernel<<<4096, 256>>>((uint64_t)part << 28, 1ull << 28, &c[1]);
  const cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    printf("CUDA error: %s\n", cudaGetErrorString(e));
    return 1;
  }
  printf("bf16 exhaustive (|x| <= amax): f32 bits differ %llu (normal %llu), e4m3 codes differ %llu\n", c[0].bits, c[0].normal, c[0].codes);
  printf("f32 random (2^32):      f32 bits differ %llu (normal %llu), e4m3 codes differ %llu\n", c[1].bits, c[1].normal, c[1].codes);
  const bool ok = c[0].codes == 0;
  printf("%s\n", ok ? "OK: for every bf16 x and amax the pack's quotient has __fdiv_rn's e4m3 code" : "MISMATCH in the bf16 suite's codes");
  return ok ? 0 : 1;
}
