// fp8/encode_scalar.wgsl — x: f32 [n] -> q: fp8 [n] (codec.wgsl prepended).
// Scalar fallback of encode.wgsl (4-byte accesses only), used when the x buffer is a caller's
// (wrapBuffer) too small to bind its range rounded up to 16 bytes.
// q is packed four codes to a u32, little-endian: element 4w+j in bits 8j..8j+7 of word w; the unused
// bytes of the last word are written as 0. One invocation per output word.
// Bindings: 0 params (uniform) {n, words = ceil(n/4)}
//           1 x: array<u32> (f32 bit patterns) [n]
//           2 q: array<u32> [words]
// Overrides: FP8_FORMAT (codec.wgsl), WG (workgroup size).
// Dispatch: ceil(words / WG) workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { n: u32, words: u32, pad0: u32, pad1: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> q: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = (wg.x + wg.y * nwg.x) * WG + lid;
  if (w >= params.words) { return; }
  let i0 = 4u * w;
  var packed = 0u;
  for (var j = 0u; j < 4u; j = j + 1u) {
    if (i0 + j < params.n) { packed = packed | (fp8_encode_bits(x[i0 + j]) << (8u * j)); }
  }
  q[w] = packed;
}
