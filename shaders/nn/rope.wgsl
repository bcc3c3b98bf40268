// nn/rope.wgsl — x: f32 [N, nH, Dh], positions: i32 [N] -> out [N, nH, Dh]: pair i of every head turns
// by a = pos·theta^(−2i/Dh) (−a when INVERSE): (x0 cos a − x1 sin a, x0 sin a + x1 cos a).
// f32 cannot hold pos·freq to the accuracy the rotation needs (at pos 4095 its rounding alone moves a
// by 2e-4), so the launcher builds cos and sin in f64 for |pos| split into three 11-bit digits,
// |pos| = c0 + c1·2^11 + c2·2^22, and the shader multiplies the three unit complex numbers
// (angle addition): a few f32 roundings, whatever the position. A negative position flips sin.
// Bindings: 0 params (uniform) {N, nH, Dh}   1 x   2 positions   3 table: vec2<f32> [3, 2048, Dh/2]   4 out
// Overrides: WG, INVERSE. Dispatch: ceil(N·nH·Dh/2 / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { N: u32, nH: u32, Dh: u32 }

override WG: u32 = 256u;
override INVERSE: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<i32>;
@group(0) @binding(3) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let half = params.Dh / 2u;
  let t = (wg.x + wg.y * nwg.x) * WG + lid;
  if (t >= params.N * params.nH * half) { return; }
  let i = t % half;
  let nh = t / half;
  let n = nh / params.nH;
  let p = positions[n];
  // |p| as u32 (also for −2^31)
  let a = select(u32(p), 0u - u32(p), p < 0);
  let c0 = table[(a & 2047u) * half + i];
  let c1 = table[(2048u + ((a >> 11u) & 2047u)) * half + i];
  let c2 = table[(4096u + (a >> 22u)) * half + i];
  var cs = cmul(cmul(c0, c1), c2);
  if ((p < 0) != INVERSE) { cs.y = -cs.y; }
  let o = nh * params.Dh + 2u * i;
  let x0 = x[o];
  let x1 = x[o + 1u];
  out[o] = x0 * cs.x - x1 * cs.y;
  out[o + 1u] = x0 * cs.y + x1 * cs.x;
}
