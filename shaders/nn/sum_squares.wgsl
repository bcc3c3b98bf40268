// nn/sum_squares.wgsl — x: f32 [n] -> partial: f32 [ceil(n / (WG·ITEMS))], each workgroup's Σ x² over
// its WG·ITEMS elements (wg_sum.wgsl prepended); the launcher reads the partials back and adds them
// in f64, in order.
// Bindings: 0 params (uniform) {n}   1 x   2 partial
// Overrides: WG (a power of two ≤ 256), ITEMS. Dispatch: one workgroup per partial, folded.

struct Params { n: u32 }

override WG: u32 = 256u;
override ITEMS: u32 = 16u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = wg.x + wg.y * nwg.x;
  let start = w * WG * ITEMS;
  if (start >= params.n) { return; } // uniform per workgroup
  var s = 0.0;
  for (var t = 0u; t < ITEMS; t = t + 1u) {
    let i = start + t * WG + lid;
    if (i < params.n) { s = s + x[i] * x[i]; }
  }
  let total = nn_wg_sum(s, lid);
  if (lid == 0u) { partial[w] = total; }
}
