// moe/aux_grad.wgsl — second pass of the sequence-wise aux loss, one workgroup per token t of
// sequence q = t / L: scores: f32 [T, E], counts: u32 [nSeq, E] -> dScores: f32 [T, E], term: f32 [T]
//   f_e = counts[q, e] · E / (k·L),  S = Σ_e s_e + 1e-20,  F = Σ_e f_e s_e
//   dScores[t, e] = a·(f_e / S − F / S²) with a = α / (nSeq·L);  term[t] = F / S
// (the loss is a·Σ_t term[t]: aux_sum.wgsl). f32 math; the reference's is f64.
// Bindings: 0 params (uniform) {T, E, L, fScale = E/(k·L) (f32 bits), a (f32 bits)}
//           1 scores: array<f32>   2 counts: array<u32>   3 dScores: array<f32>   4 term: array<f32>
// Overrides: WG (a power of two ≤ 256). Dispatch: T workgroups, folded into x + y·num_workgroups.x.

struct Params { T: u32, E: u32, L: u32, fScale: u32, a: u32 }

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read> counts: array<u32>;
@group(0) @binding(3) var<storage, read_write> dScores: array<f32>;
@group(0) @binding(4) var<storage, read_write> term: array<f32>;

var<workgroup> red_s: array<f32, 256>;
var<workgroup> red_f: array<f32, 256>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wg.x + wg.y * nwg.x;
  if (t >= params.T) { return; } // uniform per workgroup
  let E = params.E;
  let row = t * E;
  let crow = (t / params.L) * E;
  let fs = bitcast<f32>(params.fScale);
  var S = 0.0;
  var F = 0.0;
  for (var e = lid; e < E; e = e + WG) {
    let s = scores[row + e];
    S = S + s;
    F = F + f32(counts[crow + e]) * fs * s;
  }
  red_s[lid] = S;
  red_f[lid] = F;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lid < half) {
      red_s[lid] = red_s[lid] + red_s[lid + half];
      red_f[lid] = red_f[lid] + red_f[lid + half];
    }
    workgroupBarrier();
  }
  let St = red_s[0] + 1e-20;
  let Ft = red_f[0];
  let a = bitcast<f32>(params.a);
  for (var e = lid; e < E; e = e + WG) {
    let f = f32(counts[crow + e]) * fs;
    dScores[row + e] = a * (f / St - Ft / (St * St));
  }
  if (lid == 0u) { term[t] = Ft / St; }
}
