// moe/route_backward.wgsl — backward of route through the chosen weights, one workgroup per token:
// scores: f32 [T, E], indices: i32 [T, k], dWeights: f32 [T, k], dScores: f32 [T, E] (HAS_DS)
// -> dLogits: f32 [T, E].
//   ds_e = dScores[e] + Σ_{j: i_j = e} c·(g_j / D − Σ_l g_l s_l / D²)  (NORM; D = Σ_l s_{i_l} + 1e-20)
//                     + Σ_{j: i_j = e} c·g_j                           (otherwise)
//   sigmoid: dz = ds·s·(1 − s);  softmax: dz_e = s_e·(ds_e − Σ_f ds_f s_f)
// f32 math (the reference's is f64). Every invocation computes D and Σ g s over the k slots itself
// (k reads); an index outside [0, E) is skipped.
// Bindings: 0 params (uniform) {T, E, k, scale (f32 bits)}
//           1 scores: array<f32>   2 indices: array<i32>   3 dWeights: array<f32>
//           4 dScores: array<f32> (any buffer when !HAS_DS)   5 dLogits: array<f32>
// Overrides: WG (a power of two ≤ 256), SOFTMAX, HAS_DS, NORM.
// Dispatch: T workgroups, folded into x + y·num_workgroups.x past the per-dimension limit.

struct Params { T: u32, E: u32, k: u32, scale: u32 }

override WG: u32 = 64u;
override SOFTMAX: bool = false;
override HAS_DS: bool = false;
override NORM: bool = true;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read> indices: array<i32>;
@group(0) @binding(3) var<storage, read> dWeights: array<f32>;
@group(0) @binding(4) var<storage, read> dScores: array<f32>;
@group(0) @binding(5) var<storage, read_write> dLogits: array<f32>;

var<workgroup> red: array<f32, 256>;

fn reduce_sum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lid < half) { red[lid] = red[lid] + red[lid + half]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wg.x + wg.y * nwg.x;
  if (t >= params.T) { return; } // uniform per workgroup
  let E = params.E;
  let k = params.k;
  let row = t * E;
  let c = bitcast<f32>(params.scale);
  var S = 0.0;
  var dot = 0.0;
  for (var j = 0u; j < k; j = j + 1u) {
    let i = indices[t * k + j];
    if (i < 0 || u32(i) >= E) { continue; }
    let s = scores[row + u32(i)];
    S = S + s;
    dot = dot + dWeights[t * k + j] * s;
  }
  let D = S + 1e-20;
  var gs = 0.0;
  for (var e = lid; e < E; e = e + WG) {
    var g = 0.0;
    if (HAS_DS) { g = dScores[row + e]; }
    for (var j = 0u; j < k; j = j + 1u) {
      if (indices[t * k + j] != i32(e)) { continue; }
      let gw = dWeights[t * k + j];
      if (NORM) { g = g + c * (gw / D - dot / (D * D)); } else { g = g + c * gw; }
    }
    let s = scores[row + e];
    if (SOFTMAX) {
      dLogits[row + e] = g; // read back by this invocation below
      gs = gs + g * s;
    } else {
      dLogits[row + e] = g * s * (1.0 - s);
    }
  }
  if (SOFTMAX) {
    let total = reduce_sum(lid, gs);
    for (var e = lid; e < E; e = e + WG) {
      let s = scores[row + e];
      dLogits[row + e] = s * (dLogits[row + e] - total);
    }
  }
}
