// nn/attention_backward_dq.wgsl — backward of training attention (T = Tq = S), one invocation per
// query row (b, h, i), with P_ij = exp(scale·q_i·k_j − lse_i) for j ≤ i:
//   D_i = dO_i·O_i (also written to `rowD` for attention_backward_dkv.wgsl),
//   dq_i = scale · Σ_j P_ij·(dO_i·v_j − D_i)·k_j
// Bindings: 0 params (uniform) {B, T, nH, Dh, scale (f32 bits)}
//           1 q   2 k   3 v   4 out   5 lse   6 dOut   7 dq   8 rowD [B, nH, T]
// Overrides: WG. Dispatch: ceil(B·nH·T / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { B: u32, T: u32, nH: u32, Dh: u32, scale: u32 }

override WG: u32 = 64u;
const DH_MAX: u32 = 128u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> o: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> dout: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
@group(0) @binding(8) var<storage, read_write> rowD: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wg.x + wg.y * nwg.x) * WG + lid;
  let T = params.T;
  let nH = params.nH;
  let Dh = params.Dh;
  if (r >= params.B * nH * T) { return; }
  let i = r % T;
  let bh = r / T;
  let h = bh % nH;
  let b = bh / nH;
  let row = nH * Dh;
  let base = b * T * row + h * Dh;
  let qo = base + i * row;
  let scale = bitcast<f32>(params.scale);
  var qv: array<f32, DH_MAX>;
  var gv: array<f32, DH_MAX>;
  var g: array<f32, DH_MAX>;
  var Di = 0.0;
  for (var d = 0u; d < Dh; d = d + 1u) {
    qv[d] = q[qo + d];
    gv[d] = dout[qo + d];
    g[d] = 0.0;
    Di = Di + gv[d] * o[qo + d];
  }
  rowD[r] = Di;
  let l = lse[r];
  for (var j = 0u; j <= i; j = j + 1u) {
    let ko = base + j * row;
    var s = 0.0;
    var dp = 0.0;
    for (var d = 0u; d < Dh; d = d + 1u) {
      s = s + qv[d] * k[ko + d];
      dp = dp + gv[d] * v[ko + d];
    }
    let ds = exp(scale * s - l) * (dp - Di);
    for (var d = 0u; d < Dh; d = d + 1u) { g[d] = g[d] + ds * k[ko + d]; }
  }
  for (var d = 0u; d < Dh; d = d + 1u) { dq[qo + d] = scale * g[d]; }
}
