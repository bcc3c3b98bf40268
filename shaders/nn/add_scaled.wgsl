// nn/add_scaled.wgsl — a, b: f32 [n] -> out [n] = a + alpha·b. (In place, out = a or b, the launcher
// writes to a scratch and copies: WebGPU forbids binding one buffer as both read and read_write.)
// Bindings: 0 params (uniform) {n, alpha (f32 bits)}   1 a   2 b   3 out
// Overrides: WG. Dispatch: ceil(n / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { n: u32, alpha: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  out[i] = a[i] + bitcast<f32>(params.alpha) * b[i];
}
