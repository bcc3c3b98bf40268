// nn/attention_backward_dkv.wgsl — backward of training attention (T = Tq = S), one invocation per key
// row (b, h, j), after attention_backward_dq.wgsl wrote D_i = dO_i·O_i to rowD; for i ≥ j,
// P_ij = exp(scale·q_i·k_j − lse_i), dS_ij = P_ij·(dO_i·v_j − D_i):
//   dk_j = scale · Σ_i dS_ij·q_i,   dv_j = Σ_i P_ij·dO_i
// Each invocation owns its rows of dk and dv: no atomics, a fixed order.
// Bindings: 0 params (uniform) {B, T, nH, Dh, scale (f32 bits)}
//           1 q   2 k   3 v   4 lse   5 dOut   6 rowD   7 dk   8 dv
// Overrides: WG. Dispatch: ceil(B·nH·T / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { B: u32, T: u32, nH: u32, Dh: u32, scale: u32 }

override WG: u32 = 64u;
const DH_MAX: u32 = 128u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> lse: array<f32>;
@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read> rowD: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wg.x + wg.y * nwg.x) * WG + lid;
  let T = params.T;
  let nH = params.nH;
  let Dh = params.Dh;
  if (r >= params.B * nH * T) { return; }
  let j = r % T;
  let bh = r / T;
  let h = bh % nH;
  let b = bh / nH;
  let row = nH * Dh;
  let base = b * T * row + h * Dh;
  let ko = base + j * row;
  let scale = bitcast<f32>(params.scale);
  var kv: array<f32, DH_MAX>;
  var vv: array<f32, DH_MAX>;
  var gk: array<f32, DH_MAX>;
  var gv: array<f32, DH_MAX>;
  for (var d = 0u; d < Dh; d = d + 1u) { kv[d] = k[ko + d]; vv[d] = v[ko + d]; gk[d] = 0.0; gv[d] = 0.0; }
  for (var i = j; i < T; i = i + 1u) {
    let qo = base + i * row;
    var s = 0.0;
    var dp = 0.0;
    for (var d = 0u; d < Dh; d = d + 1u) {
      s = s + q[qo + d] * kv[d];
      dp = dp + dout[qo + d] * vv[d];
    }
    let ri = bh * T + i;
    let p = exp(scale * s - lse[ri]);
    let ds = p * (dp - rowD[ri]);
    for (var d = 0u; d < Dh; d = d + 1u) {
      gk[d] = gk[d] + ds * q[qo + d];
      gv[d] = gv[d] + p * dout[qo + d];
    }
  }
  for (var d = 0u; d < Dh; d = d + 1u) { dk[ko + d] = scale * gk[d]; dv[ko + d] = gv[d]; }
}
