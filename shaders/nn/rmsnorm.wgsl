// nn/rmsnorm.wgsl — x: f32 [N, D], weight: f32 [D] -> out = x·rstd·weight [N, D], rstd = 1/sqrt(mean(x²) + eps) [N].
// One workgroup per row (wg_sum.wgsl prepended): each invocation sums the squares of the entries
// d ≡ lid (mod WG), the workgroup adds them, then every invocation scales its entries.
// Bindings: 0 params (uniform) {N, D, eps (f32 bits)}   1 x   2 weight   3 out   4 rstd
// Overrides: WG (a power of two ≤ 256). Dispatch: N workgroups, folded into x + y·num_workgroups.x.

struct Params { N: u32, D: u32, eps: u32 }

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = wg.x + wg.y * nwg.x;
  if (n >= params.N) { return; } // uniform per workgroup
  let D = params.D;
  let base = n * D;
  var ss = 0.0;
  for (var d = lid; d < D; d = d + WG) { ss = ss + x[base + d] * x[base + d]; }
  let total = nn_wg_sum(ss, lid);
  let r = 1.0 / sqrt(total / f32(D) + bitcast<f32>(params.eps));
  if (lid == 0u) { rstd[n] = r; }
  for (var d = lid; d < D; d = d + WG) { out[base + d] = x[base + d] * r * weight[d]; }
}
