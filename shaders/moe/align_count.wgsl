// moe/align_count.wgsl — pass 1 of align (moe_align_block_size), one invocation per pair:
// indices: i32 [T·k] -> hist: u32 [nChunks, E] (pairs of each expert in each chunk of CHUNK
// consecutive pair ids), info[2] += pairs whose index is outside [0, E). Both zeroed by the launcher;
// integer atomics, so the counts do not depend on the order the invocations run in.
// Bindings: 0 params (uniform) {pairs, E}
//           1 indices: array<i32>   2 hist: array<atomic<u32>>   3 info: array<atomic<i32>> [4]
// Overrides: WG, CHUNK (align_scatter.wgsl's workgroup size).
// Dispatch: ceil(pairs / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { pairs: u32, E: u32 }

override WG: u32 = 256u;
override CHUNK: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> indices: array<i32>;
@group(0) @binding(2) var<storage, read_write> hist: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> info: array<atomic<i32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let id = (wg.x + wg.y * nwg.x) * WG + lid;
  if (id >= params.pairs) { return; }
  let e = indices[id];
  if (e < 0 || u32(e) >= params.E) {
    atomicAdd(&info[2], 1);
    return;
  }
  atomicAdd(&hist[(id / CHUNK) * params.E + u32(e)], 1u);
}
