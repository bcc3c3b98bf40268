// fp8/dequantize_scalar.wgsl — q: fp8 [M, K], scales: f32 [nbM, nbK] -> out: f32 [M, K]
// (codec.wgsl prepended), out[i] = decode(q[i]) · scale of its block (f32 product, NaN canonical).
// Scalar fallback of dequantize.wgsl (4-byte accesses only), used when the out buffer is a caller's
// (wrapBuffer) too small to bind its range rounded up to 16 bytes.
// One invocation per input word (4 codes); out is written as u32 bit patterns.
// Bindings: 0 params (uniform) {M, K, nbK, words = ceil(M·K/4)}
//           1 q: array<u32> [words] (four codes to a word, element 4w+j in bits 8j..8j+7)
//           2 scales: array<u32> (f32 bit patterns) [nbM·nbK]
//           3 out: array<u32> (f32 bit patterns) [M·K]
// Overrides: FP8_FORMAT (codec.wgsl), BLOCK_ROWS (1 or 128), WG.
// Dispatch: ceil(words / WG) workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { M: u32, K: u32, nbK: u32, words: u32 }

override WG: u32 = 256u;
override BLOCK_ROWS: u32 = 1u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = (wg.x + wg.y * nwg.x) * WG + lid;
  if (w >= params.words) { return; }
  let n = params.M * params.K;
  let packed = q[w];
  let i0 = 4u * w;
  var r = i0 / params.K;
  var c = i0 - r * params.K;
  for (var j = 0u; j < 4u; j = j + 1u) {
    let i = i0 + j;
    if (i < n) {
      let sb = scales[(r / BLOCK_ROWS) * params.nbK + c / 128u];
      out[i] = fp8_dequantize_elem((packed >> (8u * j)) & 0xffu, sb);
    }
    c = c + 1u;
    if (c == params.K) { c = 0u; r = r + 1u; }
  }
}
