// gemm/transpose.wgsl — x: [R, C] -> out: [C, R], elements of ELEM_BYTES (1, 2 or 4) bytes, bit-exact.
// Both tensors are byte arrays packed little-endian into u32 words. Each invocation writes one whole
// output word (4 / ELEM_BYTES consecutive elements of out) by gathering its elements from x, so no two
// invocations share a word; padding bits of the last word are written 0.
// A 32×32 grid of words per workgroup keeps the gathered reads of neighbouring invocations on nearby
// rows of x (out[o] = x[r, c] with c = o / R, r = o % R).
// Bindings: 0 params (uniform) {R, C, words = ceil(R·C·ELEM_BYTES / 4)}; 1 x: array<u32>; 2 out: array<u32>.
// Overrides: ELEM_BYTES, WG. Dispatch: ceil(words / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { R: u32, C: u32, words: u32, pad0: u32 }

override ELEM_BYTES: u32 = 4u;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = (wg.x + wg.y * nwg.x) * WG + lid;
  if (w >= params.words) { return; }
  let per = 4u / ELEM_BYTES;
  let n = params.R * params.C;
  let mask = 0xffffffffu >> (32u - 8u * ELEM_BYTES);
  var word = 0u;
  for (var j = 0u; j < per; j = j + 1u) {
    let o = w * per + j;
    if (o < n) {
      let col = o / params.R;
      let row = o - col * params.R;
      let i = row * params.C + col;   // element index in x
      let byte = i * ELEM_BYTES;
      let v = (x[byte >> 2u] >> ((byte & 3u) * 8u)) & mask;
      word = word | (v << (8u * ELEM_BYTES * j));
    }
  }
  out[w] = word;
}
