// fp8/dequantize.wgsl — q: fp8 [M, K], scales: f32 [nbM, nbK] -> out: f32 [M, K] (codec.wgsl
// prepended), out[i] = decode(q[i]) · scale of its block (f32 product, NaN canonical); out is written
// as u32 bit patterns. Invocation `lid` of workgroup `b` owns the UNROLL words w = b·WG·UNROLL + j·WG + lid
// (j < UNROLL, consecutive across the workgroup): it loads their codes (and, when K % 4 == 0, their
// scales) first, then stores each word's four values as one vec4 (16 bytes).
//   K_VEC (K % 4 == 0): a word's four elements share a row and a 128-column block, so one scale each;
//     with K_BLOCKS (K % 128 == 0) and 1×128 blocks that scale is scales[i / 128], no division.
//   otherwise: a word may span rows; each element finds its own scale. The last word, when
//     M·K % 4 != 0, is stored component by component: nothing past out's M·K elements is written.
// Bindings: 0 params (uniform) {M, K, nbK, words = ceil(M·K/4)}
//           1 q: array<u32> [words] (four codes to a word, element 4w+j in bits 8j..8j+7)
//           2 scales: array<u32> (f32 bit patterns) [nbM·nbK]
//           3 out: array<vec4<u32>> (f32 bit patterns) [M·K/4 rounded up]; the bound range is the
//             payload rounded up to 16 bytes
// Workgroup memory: lut, the 256 decoded values (filled by the workgroup before use).
// Overrides: FP8_FORMAT (codec.wgsl), BLOCK_ROWS (1 or 128), K_VEC, K_BLOCKS, WG, UNROLL (1..MAX_UNROLL).
// Dispatch: ceil(words / (WG·UNROLL)) workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { M: u32, K: u32, nbK: u32, words: u32 }

override WG: u32 = 256u;
override UNROLL: u32 = 4u;
override BLOCK_ROWS: u32 = 1u;
override K_VEC: bool = false;
override K_BLOCKS: bool = false;
const MAX_UNROLL: u32 = 8u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<u32>>;
var<workgroup> lut: array<u32, 256>; // decode table: lut[code] = f32 bits of its value

// Index into scales of element i.
fn scale_index(i: u32) -> u32 {
  if (BLOCK_ROWS == 1u && K_BLOCKS) { return i >> 7u; }
  let r = i / params.K;
  let c = i - r * params.K;
  return (r / BLOCK_ROWS) * params.nbK + (c >> 7u);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w0 = (wg.x + wg.y * nwg.x) * (WG * UNROLL) + lid;
  var c: array<u32, MAX_UNROLL>;
  var s: array<u32, MAX_UNROLL>;
  for (var j = 0u; j < UNROLL; j = j + 1u) {
    let w = w0 + j * WG;
    if (w < params.words) {
      c[j] = q[w];
      if (K_VEC) { s[j] = scales[scale_index(4u * w)]; }
    }
  }
  // the 256 decoded values in workgroup memory, built while the loads above are in flight (see
  // decode.wgsl: a lookup beats the codec's branches on the H100)
  for (var k = lid; k < 256u; k = k + WG) { lut[k] = fp8_decode_bits(k); }
  workgroupBarrier();
  let n = params.M * params.K;
  for (var j = 0u; j < UNROLL; j = j + 1u) {
    let w = w0 + j * WG;
    if (w < params.words) {
      if (K_VEC) {
        // K % 4 == 0: every word is whole, and its four elements share one scale
        let cw = c[j];
        let sb = s[j];
        out[w] = vec4<u32>(fp8_scale_decoded(lut[cw & 0xffu], sb), fp8_scale_decoded(lut[(cw >> 8u) & 0xffu], sb),
                           fp8_scale_decoded(lut[(cw >> 16u) & 0xffu], sb), fp8_scale_decoded(lut[cw >> 24u], sb));
      } else {
        let i0 = 4u * w;
        var r = i0 / params.K;
        var col = i0 - r * params.K;
        var d = vec4<u32>(0u);
        for (var e = 0u; e < 4u; e = e + 1u) {
          if (i0 + e < n) {
            let sb = scales[(r / BLOCK_ROWS) * params.nbK + (col >> 7u)];
            d[e] = fp8_scale_decoded(lut[(c[j] >> (8u * e)) & 0xffu], sb);
          }
          col = col + 1u;
          if (col == params.K) { col = 0u; r = r + 1u; }
        }
        let left = n - i0; // elements of this word that exist (>= 1)
        if (left >= 4u) {
          out[w] = d;
        } else {
          out[w].x = d.x;
          if (left > 1u) { out[w].y = d.y; }
          if (left > 2u) { out[w].z = d.z; }
        }
      }
    }
  }
}
