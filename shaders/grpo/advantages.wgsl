// grpo/advantages.wgsl — rewards: f32 [B] -> out: f32 [B], groups of G consecutive rewards:
// A_i = (r_i − mean_g) / (std + eps) with the unbiased std of the group (SCALE 0), of the batch
// (SCALE 1), or no division (SCALE 2); a group whose rewards are all equal gets exactly 0.
// One workgroup: the batch std by a workgroup reduction, then one invocation per group. f32 math.
// Bindings: 0 params (uniform) {B, G, eps (f32 bits)}   1 rewards: array<f32>   2 out: array<f32>
// Overrides: SCALE, WG (256). Dispatch: 1 workgroup. (grpo/wg_sum.wgsl prepended.)

struct Params { B: u32, G: u32, eps: u32 }

override SCALE: u32 = 0u;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rewards: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;


@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let B = params.B;
  let G = params.G;
  let eps = bitcast<f32>(params.eps);
  var batch_std = 0.0;
  if (SCALE == 1u) {
    var s = 0.0;
    for (var i = lid; i < B; i = i + WG) { s = s + rewards[i]; }
    let mean = wg_sum(lid, s) / f32(B);
    var ss = 0.0;
    for (var i = lid; i < B; i = i + WG) { let d = rewards[i] - mean; ss = ss + d * d; }
    batch_std = sqrt(wg_sum(lid, ss) / f32(B - 1u));
  }
  for (var g0 = lid * G; g0 < B; g0 = g0 + WG * G) {
    var sum = 0.0;
    var equal = true;
    for (var i = g0; i < g0 + G; i = i + 1u) {
      sum = sum + rewards[i];
      if (rewards[i] != rewards[g0]) { equal = false; }
    }
    if (equal) {
      for (var i = g0; i < g0 + G; i = i + 1u) { out[i] = 0.0; }
      continue;
    }
    let mean = sum / f32(G);
    var divisor = 1.0;
    if (SCALE == 0u) {
      var ss = 0.0;
      for (var i = g0; i < g0 + G; i = i + 1u) { let d = rewards[i] - mean; ss = ss + d * d; }
      divisor = sqrt(ss / f32(G - 1u)) + eps;
    } else if (SCALE == 1u) {
      divisor = batch_std + eps;
    }
    for (var i = g0; i < g0 + G; i = i + 1u) { out[i] = (rewards[i] - mean) / divisor; }
  }
}
