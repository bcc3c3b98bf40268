// grpo/wg_sum.wgsl — a workgroup sum shared by the one-workgroup GRPO kernels (prepended by
// src/webgpu/grpo.ts). Needs the including kernel's override WG (a power of two ≤ 256).

var<workgroup> sh: array<f32, 256>;

// Σ over the workgroup of each invocation's v (every invocation gets the total)
fn wg_sum(lid: u32, v: f32) -> f32 {
  sh[lid] = v;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lid < half) { sh[lid] = sh[lid] + sh[lid + half]; }
    workgroupBarrier();
  }
  let total = sh[0];
  workgroupBarrier();
  return total;
}
