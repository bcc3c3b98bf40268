// moe/copy_bytes.wgsl — copyRows when the byte range is not whole u32 words (bf16 rows of odd
// length, u8 / fp8 rows): dst bytes [d0, d0 + n) = src bytes [s0, s0 + n) (offsets within the bound
// ranges; src and dst are different buffers). Each invocation writes one whole word of dst, keeping
// the bytes of its first and last word that lie outside the range: no two invocations share a word.
// Bindings: 0 params (uniform) {d0, s0, n, firstWord = d0 / 4, words}
//           1 src: array<u32>   2 dst: array<u32>
// Overrides: WG. Dispatch: ceil(words / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { d0: u32, s0: u32, n: u32, firstWord: u32, words: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= params.words) { return; }
  let w = params.firstWord + i;
  var word = dst[w];
  for (var b = 0u; b < 4u; b = b + 1u) {
    let q = w * 4u + b; // dst byte
    if (q < params.d0 || q >= params.d0 + params.n) { continue; }
    let sb = params.s0 + (q - params.d0);
    let v8 = (src[sb >> 2u] >> (8u * (sb & 3u))) & 0xffu;
    word = (word & ~(0xffu << (8u * b))) | (v8 << (8u * b));
  }
  dst[w] = word;
}
