// moe/aux_count.wgsl — first pass of the sequence-wise aux loss: how many of each sequence's pairs
// chose each expert. indices: i32 [T, k] -> counts: u32 [nSeq, E] (zeroed by the launcher) with
// sequences of L consecutive tokens; an index outside [0, E) counts for nothing. Integer atomics:
// the totals do not depend on the order the invocations run in.
// Bindings: 0 params (uniform) {pairs = T·k, k, E, L}
//           1 indices: array<i32>   2 counts: array<atomic<u32>>
// Overrides: WG. Dispatch: ceil(pairs / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { pairs: u32, k: u32, E: u32, L: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> indices: array<i32>;
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let id = (wg.x + wg.y * nwg.x) * WG + lid;
  if (id >= params.pairs) { return; }
  let e = indices[id];
  if (e < 0 || u32(e) >= params.E) { return; }
  let seq = (id / params.k) / params.L;
  atomicAdd(&counts[seq * params.E + u32(e)], 1u);
}
