// nn/wg_sum.wgsl — a workgroup-wide f32 sum through workgroup memory (prepended by the row kernels).
// Every invocation of the workgroup must call it (it has barriers); WG is a power of two ≤ 256.

var<workgroup> nn_sh: array<f32, 256>;

fn nn_wg_sum(x: f32, lid: u32) -> f32 {
  nn_sh[lid] = x;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { nn_sh[lid] = nn_sh[lid] + nn_sh[lid + s]; }
    workgroupBarrier();
  }
  let r = nn_sh[0];
  workgroupBarrier();
  return r;
}
