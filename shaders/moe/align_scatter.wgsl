// moe/align_scatter.wgsl — pass 4 of align, one workgroup per chunk of WG consecutive pair ids:
// indices: i32 [T·k], hist (each chunk's first rank per expert), segs (offsets, kept)
// -> sortedPairs, rowExpert: i32 [Pmax] at the real rows, pairPos: i32 [T·k].
// Pair id = c·WG + lid ranks r = hist[c, e] + #{lanes j < lid of the chunk with the same expert e}
// within expert e: ascending pair id within an expert, whatever order the workgroups run in (no
// atomics here). Rank r < kept[e] goes to row offsets[e] + r; a larger one is dropped (capacity), and
// a pair with an index outside [0, E) is skipped: both get pairPos −1.
// Bindings: 0 params (uniform) {pairs, E}
//           1 indices: array<i32>   2 hist: array<u32>   3 segs: array<u32>
//           4 sortedPairs: array<i32>   5 rowExpert: array<i32>   6 pairPos: array<i32>
// Overrides: WG (align_count.wgsl's CHUNK, ≤ 256).
// Dispatch: ceil(pairs / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { pairs: u32, E: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> indices: array<i32>;
@group(0) @binding(2) var<storage, read> hist: array<u32>;
@group(0) @binding(3) var<storage, read> segs: array<u32>;
@group(0) @binding(4) var<storage, read_write> sortedPairs: array<i32>;
@group(0) @binding(5) var<storage, read_write> rowExpert: array<i32>;
@group(0) @binding(6) var<storage, read_write> pairPos: array<i32>;

var<workgroup> lane_expert: array<u32, 256>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let c = wg.x + wg.y * nwg.x;
  let id = c * WG + lid;
  let E = params.E;
  var e = 0xffffffffu;
  if (id < params.pairs) {
    let i = indices[id];
    if (i >= 0 && u32(i) < E) { e = u32(i); }
  }
  lane_expert[lid] = e;
  workgroupBarrier();
  if (id >= params.pairs) { return; }
  if (e == 0xffffffffu) {
    pairPos[id] = -1;
    return;
  }
  var rank = hist[c * E + e];
  for (var j = 0u; j < lid; j = j + 1u) {
    if (lane_expert[j] == e) { rank = rank + 1u; }
  }
  if (rank >= segs[E + 1u + e]) {
    pairPos[id] = -1;
    return;
  }
  let pos = segs[e] + rank;
  sortedPairs[pos] = i32(id);
  rowExpert[pos] = i32(e);
  pairPos[id] = i32(pos);
}
