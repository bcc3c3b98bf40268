// moe/permute_bytes.wgsl — a row gather of any dtype, bytes moved as they are (FP8 codes into expert
// order): x: [T, W] (W = rowBytes bytes a row), rows: i32 [≥ P] pair ids -> out: [P, W],
// out[p] = x[rows[p] / k]; zero bytes for an id outside [0, T·k). Each invocation writes one whole
// u32 word of out (its bytes may come from two rows); past P·W the word's bytes are 0. ALIGNED
// (W % 4 == 0): whole words are moved.
// Bindings: 0 params (uniform) {P, W, pairs = T·k, k, words = ceil(P·W / 4)}
//           1 x: array<u32>   2 rows: array<i32>   3 out: array<u32>
// Overrides: WG, ALIGNED. Dispatch: ceil(words / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { P: u32, W: u32, pairs: u32, k: u32, words: u32 }

override WG: u32 = 256u;
override ALIGNED: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> rows: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

// The source row of out row p, or 0xffffffff for a zero row.
fn source_row(p: u32) -> u32 {
  let id = rows[p];
  if (id < 0 || u32(id) >= params.pairs) { return 0xffffffffu; }
  return u32(id) / params.k;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = (wg.x + wg.y * nwg.x) * WG + lid;
  if (w >= params.words) { return; }
  let W = params.W;
  if (ALIGNED) {
    let wpr = W / 4u; // words a row
    let p = w / wpr;
    let src = source_row(p);
    out[w] = select(x[src * wpr + (w - p * wpr)], 0u, src == 0xffffffffu);
    return;
  }
  let n = params.P * W;
  var word = 0u;
  for (var b = 0u; b < 4u; b = b + 1u) {
    let q = w * 4u + b;
    if (q >= n) { break; }
    let p = q / W;
    let src = source_row(p);
    if (src == 0xffffffffu) { continue; }
    let sb = src * W + (q - p * W);
    word = word | (((x[sb >> 2u] >> (8u * (sb & 3u))) & 0xffu) << (8u * b));
  }
  out[w] = word;
}
