// nn/embedding_backward.wgsl — dOut: f32 [N, D], ids: i32 [N] -> dTable: f32 [V, D] += the rows of dOut
// scattered by id. One invocation per element (v, d) of the table walks all N ids in order and adds
// the rows whose id is v: no atomics, the same order every run (deterministic), O(V·N·D) work — fine
// at a character vocabulary, slow for a large one. Ids outside [0, V) match no row.
// Bindings: 0 params (uniform) {N, D, V}   1 dOut   2 ids   3 dTable
// Overrides: WG. Dispatch: ceil(V·D / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { N: u32, D: u32, V: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> dtable: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= params.V * params.D) { return; }
  let v = i32(i / params.D);
  let d = i % params.D;
  var acc = dtable[i];
  for (var n = 0u; n < params.N; n = n + 1u) {
    if (ids[n] == v) { acc = acc + dout[n * params.D + d]; }
  }
  dtable[i] = acc;
}
