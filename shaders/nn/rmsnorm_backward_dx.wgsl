// nn/rmsnorm_backward_dx.wgsl — dOut, x: f32 [N, D], weight [D], rstd [N] -> dx [N, D] with r = rstd:
//   dx_j = r·w_j·g_j − x_j·(r³/D)·Σ_k g_k·w_k·x_k
// One workgroup per row (wg_sum.wgsl prepended). dWeight is rmsnorm_backward_dw.wgsl's.
// Bindings: 0 params (uniform) {N, D}   1 dOut   2 x   3 weight   4 rstd   5 dx
// Overrides: WG (a power of two ≤ 256). Dispatch: N workgroups, folded into x + y·num_workgroups.x.

struct Params { N: u32, D: u32 }

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n = wg.x + wg.y * nwg.x;
  if (n >= params.N) { return; } // uniform per workgroup
  let D = params.D;
  let base = n * D;
  var dot = 0.0;
  for (var d = lid; d < D; d = d + WG) { dot = dot + dout[base + d] * weight[d] * x[base + d]; }
  let total = nn_wg_sum(dot, lid);
  let r = rstd[n];
  let c = r * r * r * total / f32(D);
  for (var d = lid; d < D; d = d + WG) { dx[base + d] = r * weight[d] * dout[base + d] - x[base + d] * c; }
}
