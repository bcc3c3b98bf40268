// moe/align_fill.wgsl — pass 5 of align, one invocation per row of [0, Pmax): the rows the scatter
// does not write. A row at or past P = offsets[E], or in expert e's segment at or past
// offsets[e] + kept[e] (padding), gets sortedPairs = the sentinel T·k and rowExpert = −1; the first
// row of each block writes blockExpert = the segment's expert (−1 past P). The expert of a row is the
// last e with offsets[e] ≤ row (a binary search; empty experts have empty segments).
// Bindings: 0 params (uniform) {Pmax, E, blockSize, sentinel = T·k}
//           1 segs: array<u32> (offsets [E + 1], kept [E])
//           2 sortedPairs: array<i32>   3 rowExpert: array<i32>   4 blockExpert: array<i32>
// Overrides: WG. Dispatch: ceil(Pmax / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { Pmax: u32, E: u32, blockSize: u32, sentinel: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> segs: array<u32>;
@group(0) @binding(2) var<storage, read_write> sortedPairs: array<i32>;
@group(0) @binding(3) var<storage, read_write> rowExpert: array<i32>;
@group(0) @binding(4) var<storage, read_write> blockExpert: array<i32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = (wg.x + wg.y * nwg.x) * WG + lid;
  if (row >= params.Pmax) { return; }
  let E = params.E;
  let P = segs[E];
  var expert = -1;
  if (row < P) {
    // the last e in [0, E) with offsets[e] <= row
    var lo = 0u;
    var hi = E - 1u;
    while (lo < hi) {
      let mid = (lo + hi + 1u) / 2u;
      if (segs[mid] <= row) { lo = mid; } else { hi = mid - 1u; }
    }
    expert = i32(lo);
    if (row - segs[lo] >= segs[E + 1u + lo]) {
      sortedPairs[row] = i32(params.sentinel);
      rowExpert[row] = -1;
    }
  } else {
    sortedPairs[row] = i32(params.sentinel);
    rowExpert[row] = -1;
  }
  if (row % params.blockSize == 0u) { blockExpert[row / params.blockSize] = expert; }
}
