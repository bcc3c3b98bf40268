// nn/swiglu.wgsl — gate, up: f32 [n] -> out [n] = silu(gate)·up = gate·σ(gate)·up, σ(x) = 1/(1 + exp(−x))
// (exp(−x) overflows to +inf for x < −88: gate/inf = −0, as σ → 0 should give).
// Bindings: 0 params (uniform) {n}   1 gate   2 up   3 out
// Overrides: WG. Dispatch: ceil(n / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { n: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  let g = gate[i];
  out[i] = g / (1.0 + exp(-g)) * up[i];
}
