// gemm/f32_to_bf16.wgsl — x: f32 [n] -> out: bf16 [n] (round to nearest even, NaN -> 0x7FC0), two
// elements to a u32 word. Used after a GEMM into an f32 scratch buffer when an output row does not
// end on a word boundary (bf16 out with N odd), where the GEMM's invocations cannot own whole words.
// Bindings: 0 params (uniform) {n, words = ceil(n / 2)}; 1 x: array<u32> (f32 bits) [n];
//           2 out: array<u32> [words] (the upper half of the last word is padding, written 0).
// Overrides: WG. Dispatch: ceil(words / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { n: u32, words: u32, pad0: u32, pad1: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

fn to_bf16(u: u32) -> u32 {
  if ((u & 0x7fffffffu) > 0x7f800000u) { return 0x7fc0u; }
  return (u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = (wg.x + wg.y * nwg.x) * WG + lid;
  if (w >= params.words) { return; }
  let lo = to_bf16(x[2u * w]);
  var hi = 0u;
  if (2u * w + 1u < params.n) { hi = to_bf16(x[2u * w + 1u]); }
  out[w] = lo | (hi << 16u);
}
