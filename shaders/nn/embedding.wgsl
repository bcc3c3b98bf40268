// nn/embedding.wgsl — table: f32 [V, D], ids: i32 [N] -> out: f32 [N, D], out[n, d] = table[ids[n], d].
// An id outside [0, V) (host backends check; a GPU never reads past the table) gives a NaN row.
// Bindings: 0 params (uniform) {N, D, V}   1 table   2 ids   3 out (u32: f32 bits)
// Overrides: WG. Dispatch: ceil(N·D / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { N: u32, D: u32, V: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>; // f32 bit patterns (a NaN constant is not valid WGSL)

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= params.N * params.D) { return; }
  let n = i / params.D;
  let d = i % params.D;
  let id = ids[n];
  if (id < 0 || u32(id) >= params.V) {
    out[i] = 0x7fc00000u;
    return;
  }
  out[i] = bitcast<u32>(table[u32(id) * params.D + d]);
}
