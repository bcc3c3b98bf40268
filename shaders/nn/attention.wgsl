// nn/attention.wgsl — causal attention, one invocation per query row (b, h, i):
// q: f32 [B, Tq, nH, Dh], k, v: f32 [B, S, nH, Dh] -> out [B, Tq, nH, Dh], lse [B, nH, Tq].
// Query i sits at position qOffset + i and sees keys j ≤ min(qOffset + i, kvLen − 1); one pass over
// them with an online softmax (running max m, sum l, accumulator rescaled when m grows). Dh ≤ 128
// (private arrays; the launcher checks).
// Bindings: 0 params (uniform) {B, Tq, S, nH, Dh, qOffset, kvLen, scale (f32 bits)}
//           1 q   2 k   3 v   4 out   5 lse
// Overrides: WG. Dispatch: ceil(B·nH·Tq / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { B: u32, Tq: u32, S: u32, nH: u32, Dh: u32, qOffset: u32, kvLen: u32, scale: u32 }

override WG: u32 = 64u;
const DH_MAX: u32 = 128u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wg.x + wg.y * nwg.x) * WG + lid;
  let Tq = params.Tq;
  let nH = params.nH;
  let Dh = params.Dh;
  if (r >= params.B * nH * Tq) { return; }
  let i = r % Tq;
  let bh = r / Tq;
  let h = bh % nH;
  let b = bh / nH;
  let row = nH * Dh;
  let qo = (b * Tq + i) * row + h * Dh;
  let kb = b * params.S * row + h * Dh;
  let scale = bitcast<f32>(params.scale);
  var qv: array<f32, DH_MAX>;
  var acc: array<f32, DH_MAX>;
  for (var d = 0u; d < Dh; d = d + 1u) { qv[d] = q[qo + d]; acc[d] = 0.0; }
  let n = min(params.qOffset + i, params.kvLen - 1u) + 1u;
  var m = -3.4e38;
  var l = 0.0;
  for (var j = 0u; j < n; j = j + 1u) {
    let ko = kb + j * row;
    var s = 0.0;
    for (var d = 0u; d < Dh; d = d + 1u) { s = s + qv[d] * k[ko + d]; }
    s = s * scale;
    var p = 1.0;
    if (s > m) {
      let c = exp(m - s);
      l = l * c;
      for (var d = 0u; d < Dh; d = d + 1u) { acc[d] = acc[d] * c; }
      m = s;
    } else {
      p = exp(s - m);
    }
    l = l + p;
    for (var d = 0u; d < Dh; d = d + 1u) { acc[d] = acc[d] + p * v[ko + d]; }
  }
  let inv = 1.0 / l;
  for (var d = 0u; d < Dh; d = d + 1u) { out[qo + d] = acc[d] * inv; }
  lse[bh * Tq + i] = m + log(l);
}
