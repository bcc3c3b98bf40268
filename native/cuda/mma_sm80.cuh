// Thin PTX wrappers for the sm_80+ tensor-core matmul (matmul_mma.cuh): cp.async (16-byte global ->
// shared copies with zero fill), ldmatrix (plain and transposing) and mma.sync m16n8k16 bf16 with f32
// accumulation. Every pass the addon compiles (sm_90a, sm_90, compute_80) has them; the host pass sees
// empty bodies (never called there).
#pragma once

#include <stdint.h>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define HP_SM80 1
#else
#define HP_SM80 0
#endif

namespace hp {
namespace sm80 {

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// 16 bytes global -> shared, asynchronous; when !pred nothing is read (src may be any valid address)
// and the 16 bytes are zeros. Cached in L2 only (.cg): the tiles are reused through shared memory.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool pred) {
#if HP_SM80
  const int n = pred ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(n) : "memory");
#endif
}

// 4 bytes global -> shared (through L1: .ca, the only cache mode below 16 bytes), zero-filled when
// !pred; dst and src 4-byte aligned.
__device__ __forceinline__ void cp_async_4(uint32_t dst, const void* src, bool pred) {
#if HP_SM80
  const int n = pred ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(dst), "l"(src), "r"(n) : "memory");
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if HP_SM80
  asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if HP_SM80
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
#endif
}

// Four 8x8 b16 matrices; lanes 8j..8j+7 give the row addresses (16 bytes each) of matrix j, and lane
// l receives r[j] = row l/4, columns 2(l%4), 2(l%4)+1 of matrix j (the transposing form: rows
// 2(l%4), 2(l%4)+1 of column l/4).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
#if HP_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
#if HP_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}

// d (+)= a·b for one 16x8x16 tile: a is 16x16 row-major (a0: rows g, k 2t..2t+1; a1: rows g+8;
// a2: k+8; a3: rows g+8, k+8, with g = lane/4, t = lane%4), b is 16x8 (b0: k 2t..2t+1 of column g,
// b1: k+8), d is 16x8 f32 (d0, d1: row g, columns 2t, 2t+1; d2, d3: row g+8). bf16 products are
// exact in f32; the sums are f32.
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if HP_SM80
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

}  // namespace sm80
}  // namespace hp
