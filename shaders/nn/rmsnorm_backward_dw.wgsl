// nn/rmsnorm_backward_dw.wgsl — dOut, x: f32 [N, D], rstd [N] -> dWeight [D] += Σ_n dOut·x·rstd.
// One invocation per column d sums the rows in order (deterministic, no atomics).
// Bindings: 0 params (uniform) {N, D}   1 dOut   2 x   3 rstd   4 dWeight
// Overrides: WG. Dispatch: ceil(D / WG) workgroups.

struct Params { N: u32, D: u32 }

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> dweight: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let d = (wg.x + wg.y * nwg.x) * WG + lid;
  if (d >= params.D) { return; }
  var acc = 0.0;
  for (var n = 0u; n < params.N; n = n + 1u) {
    let i = n * params.D + d;
    acc = acc + dout[i] * x[i] * rstd[n];
  }
  dweight[d] = dweight[d] + acc;
}
