// moe/aux_sum.wgsl — last pass of the sequence-wise aux loss, one workgroup: term: f32 [T]
// -> result: f32 [1] = a·Σ_t term[t] (the mean over sequences of α Σ_i f_i P_i). Each invocation
// sums a strided slice, then a tree: a fixed order, so the result does not vary from run to run.
// Bindings: 0 params (uniform) {T, a (f32 bits)}   1 term: array<f32>   2 result: array<f32>
// Overrides: WG (a power of two ≤ 256). Dispatch: 1 workgroup.

struct Params { T: u32, a: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> term: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var t = lid; t < params.T; t = t + WG) { s = s + term[t]; }
  red[lid] = s;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lid < half) { red[lid] = red[lid] + red[lid + half]; }
    workgroupBarrier();
  }
  if (lid == 0u) { result[0] = bitcast<f32>(params.a) * red[0]; }
}
