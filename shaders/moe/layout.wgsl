// moe/layout.wgsl — the dispatch layout: indices: i32 [T, k]
// -> tokensPerExpert: i32 [E] (pairs per expert), isTokenInRank: u8 [T, R], tokensPerRank: i32 [R]
// (tokens once per rank). Rank r holds experts [r·E/R, (r+1)·E/R); an index outside [0, E) is ignored.
// Invocation i has two jobs: pair i adds one to its expert's count, and word i of isTokenInRank (four
// (token, rank) bytes, packed little-endian) is computed from its tokens' k indices and written whole
// (no two invocations share a word), each set byte adding one to its rank's count. The counts are
// integer atomics into arrays the launcher zeroed: their totals do not depend on the order of the
// invocations.
// Bindings: 0 params (uniform) {pairs = T·k, words = ceil(T·R / 4), k, E, R, perRank = E/R}
//           1 indices: array<i32>   2 tokensPerExpert: array<atomic<i32>>
//           3 isTokenInRank: array<u32>   4 tokensPerRank: array<atomic<i32>>
// Overrides: WG. Dispatch: ceil(max(pairs, words) / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { pairs: u32, words: u32, k: u32, E: u32, R: u32, perRank: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> indices: array<i32>;
@group(0) @binding(2) var<storage, read_write> tokensPerExpert: array<atomic<i32>>;
@group(0) @binding(3) var<storage, read_write> isTokenInRank: array<u32>;
@group(0) @binding(4) var<storage, read_write> tokensPerRank: array<atomic<i32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  let k = params.k;
  let E = params.E;
  if (i < params.pairs) {
    let e = indices[i];
    if (e >= 0 && u32(e) < E) { atomicAdd(&tokensPerExpert[u32(e)], 1); }
  }
  if (i < params.words) {
    let R = params.R;
    let cells = (params.pairs / k) * R; // T·R
    var word = 0u;
    for (var b = 0u; b < 4u; b = b + 1u) {
      let cell = i * 4u + b;
      if (cell >= cells) { break; }
      let t = cell / R;
      let r = cell % R;
      var hit = false;
      for (var j = 0u; j < k; j = j + 1u) {
        let e = indices[t * k + j];
        if (e >= 0 && u32(e) < E && u32(e) / params.perRank == r) { hit = true; }
      }
      if (hit) {
        word = word | (1u << (8u * b));
        atomicAdd(&tokensPerRank[r], 1);
      }
    }
    isTokenInRank[i] = word;
  }
}
