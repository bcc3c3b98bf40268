// nn/swiglu_backward.wgsl — gate, up, dOut: f32 [n] -> dGate = dOut·up·σ(g)·(1 + g·(1 − σ(g))),
// dUp = dOut·g·σ(g), both [n].
// Bindings: 0 params (uniform) {n}   1 gate   2 up   3 dOut   4 dGate   5 dUp
// Overrides: WG. Dispatch: ceil(n / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { n: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(5) var<storage, read_write> dup: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  let g = gate[i];
  let s = 1.0 / (1.0 + exp(-g));
  let d = dout[i];
  dgate[i] = d * up[i] * s * (1.0 + g * (1.0 - s));
  dup[i] = d * g * s;
}
