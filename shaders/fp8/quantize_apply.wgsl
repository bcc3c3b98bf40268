// fp8/quantize_apply.wgsl — pass 2 of the two-pass quantize (codec.wgsl prepended):
// x: f32 | bf16 [M, K], scales: f32 [nbM, nbK] (from quantize_scales.wgsl) -> q: fp8 [M, K],
// q[i] = encode(x[i] / scale of its block), or 0x7F where that scale is NaN.
// One invocation per output word (4 consecutive elements, which may span rows when K % 4 != 0), so no
// word is written by two invocations; the unused bytes of the last word are written as 0.
// Bindings: 0 params (uniform) {M, K, nbK, words = ceil(M·K/4)}
//           1 x: array<u32> — f32 bit patterns [M·K], or bf16 packed two to a word [ceil(M·K/2)]
//           2 scales: array<u32> (f32 bit patterns) [nbM·nbK]
//           3 q: array<u32> [words]
// Overrides: FP8_FORMAT (codec.wgsl), BLOCK_ROWS (1 or 128), INPUT_BF16, WG.
// Dispatch: ceil(words / WG) workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { M: u32, K: u32, nbK: u32, words: u32 }

override WG: u32 = 256u;
override BLOCK_ROWS: u32 = 1u;
override INPUT_BF16: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read_write> q: array<u32>;

fn load_x_bits(i: u32) -> u32 {
  if (INPUT_BF16) { return ((x[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu) << 16u; }
  return x[i];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = (wg.x + wg.y * nwg.x) * WG + lid;
  if (w >= params.words) { return; }
  let n = params.M * params.K;
  let i0 = 4u * w;
  var r = i0 / params.K;
  var c = i0 - r * params.K;
  var packed = 0u;
  for (var j = 0u; j < 4u; j = j + 1u) {
    let i = i0 + j;
    if (i < n) {
      let sb = scales[(r / BLOCK_ROWS) * params.nbK + c / 128u];
      packed = packed | (fp8_quantize_elem(load_x_bits(i), sb) << (8u * j));
    }
    c = c + 1u;
    if (c == params.K) { c = 0u; r = r + 1u; }
  }
  q[w] = packed;
}
