// fp8/encode.wgsl — x: f32 [n] -> q: fp8 [n] (codec.wgsl prepended).
// q is packed four codes to a u32, little-endian: element 4w+j in bits 8j..8j+7 of word w; the unused
// bytes of the last word are written as 0. Invocation `lid` of workgroup `b` owns the UNROLL words
// w = b·WG·UNROLL + j·WG + lid (j < UNROLL): it loads their UNROLL vec4s of x first (16-byte loads, all
// in flight together, consecutive across the workgroup), then encodes and stores one u32 per vec4.
// Every word has exactly one writer.
// Bindings: 0 params (uniform) {n, words = ceil(n/4)}
//           1 x: array<vec4<u32>> (f32 bit patterns) [words]; the bound range is the payload rounded up
//             to 16 bytes, so the last vec4 may hold bytes past x's end (their codes are masked off)
//           2 q: array<u32> [words]
// Overrides: FP8_FORMAT (codec.wgsl), WG (workgroup size), UNROLL (1..MAX_UNROLL).
// Dispatch: ceil(words / (WG·UNROLL)) workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { n: u32, words: u32, pad0: u32, pad1: u32 }

override WG: u32 = 256u;
override UNROLL: u32 = 4u;
const MAX_UNROLL: u32 = 8u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> q: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w0 = (wg.x + wg.y * nwg.x) * (WG * UNROLL) + lid;
  var v: array<vec4<u32>, MAX_UNROLL>;
  for (var j = 0u; j < UNROLL; j = j + 1u) {
    let w = w0 + j * WG;
    if (w < params.words) { v[j] = x[w]; }
  }
  for (var j = 0u; j < UNROLL; j = j + 1u) {
    let w = w0 + j * WG;
    if (w < params.words) {
      var packed = fp8_encode4(v[j]);
      let left = params.n - 4u * w; // elements of this word that exist (>= 1)
      if (left < 4u) { packed = packed & ((1u << (8u * left)) - 1u); }
      q[w] = packed;
    }
  }
}
