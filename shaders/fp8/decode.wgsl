// fp8/decode.wgsl — q: fp8 [n] -> out: f32 [n] (codec.wgsl prepended). Exact.
// q is packed four codes to a u32 (element 4w+j in bits 8j..8j+7 of word w); out is written as u32 bit
// patterns so NaN payloads never pass through float operations. Invocation `lid` of workgroup `b` owns
// the UNROLL words w = b·WG·UNROLL + j·WG + lid (j < UNROLL): it loads them first (all in flight,
// consecutive across the workgroup), then stores each word's four values as one vec4 (16 bytes).
// The last word, when n % 4 != 0, is stored component by component: nothing past out's n elements
// is written.
// Bindings: 0 params (uniform) {n, words = ceil(n/4)}
//           1 q: array<u32> [words]
//           2 out: array<vec4<u32>> (f32 bit patterns) [n/4 rounded up]; the bound range is the payload
//             rounded up to 16 bytes
// Workgroup memory: lut, the 256 decoded values (filled by the workgroup before use).
// Overrides: FP8_FORMAT (codec.wgsl), WG (workgroup size), UNROLL (1..MAX_UNROLL).
// Dispatch: ceil(words / (WG·UNROLL)) workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { n: u32, words: u32, pad0: u32, pad1: u32 }

override WG: u32 = 256u;
override UNROLL: u32 = 4u;
const MAX_UNROLL: u32 = 8u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<u32>>;
var<workgroup> lut: array<u32, 256>; // decode table: lut[code] = f32 bits of its value

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w0 = (wg.x + wg.y * nwg.x) * (WG * UNROLL) + lid;
  var c: array<u32, MAX_UNROLL>;
  for (var j = 0u; j < UNROLL; j = j + 1u) {
    let w = w0 + j * WG;
    if (w < params.words) { c[j] = q[w]; }
  }
  // the 256 decoded values in workgroup memory, built while the loads above are in flight: a table
  // lookup per element instead of the codec's branches (2.4x slower through Tint + Vulkan on the H100)
  for (var k = lid; k < 256u; k = k + WG) { lut[k] = fp8_decode_bits(k); }
  workgroupBarrier();
  for (var j = 0u; j < UNROLL; j = j + 1u) {
    let w = w0 + j * WG;
    if (w < params.words) {
      let cw = c[j];
      let d = vec4<u32>(lut[cw & 0xffu], lut[(cw >> 8u) & 0xffu], lut[(cw >> 16u) & 0xffu], lut[cw >> 24u]);
      let left = params.n - 4u * w; // elements of this word that exist (>= 1)
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
