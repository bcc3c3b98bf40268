// moe/update_bias.wgsl — aux-loss-free balancing, one workgroup:
// bias: f32 [E], load: i32 [E] -> out: f32 [E] = bias + γ·sign(mean(load) − load_e).
// The sign is that of the exact integer Σload − E·load_e (the reference's rule), found without
// forming E·load_e (which may pass 2^31): with Σload = q·E + r, 0 ≤ r < E, it is sign(q − load_e),
// or sign(r) when q == load_e. bias + γ·(±1 or 0) is one f32 addition: exact to the reference.
// Bindings: 0 params (uniform) {E, gamma (f32 bits)}
//           1 bias: array<f32>   2 loads: array<i32>   3 out: array<f32>
// Overrides: WG (a power of two ≤ 256). Dispatch: 1 workgroup.

struct Params { E: u32, gamma: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<storage, read> loads: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<i32, 256>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let E = params.E;
  var s = 0i;
  for (var e = lid; e < E; e = e + WG) { s = s + loads[e]; }
  red[lid] = s;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lid < half) { red[lid] = red[lid] + red[lid + half]; }
    workgroupBarrier();
  }
  let total = red[0];
  // floor division of total by E
  let Ei = i32(E);
  var q = total / Ei;
  var r = total % Ei;
  if (r < 0) { q = q - 1; r = r + Ei; }
  let g = bitcast<f32>(params.gamma);
  for (var e = lid; e < E; e = e + WG) {
    let l = loads[e];
    var sgn = 0.0;
    if (q > l || (q == l && r > 0)) { sgn = 1.0; } else if (q < l) { sgn = -1.0; }
    out[e] = bias[e] + g * sgn;
  }
}
