// moe/permute_rows.wgsl — permute.wgsl for rows of whole 16-byte units (H % 4 == 0 for f32,
// H % 8 == 0 for bf16), one workgroup per output row (common.wgsl prepended): the row's pair id is
// read once, then the invocations stride over its vec4<u32> units (4 f32 or 8 bf16 each).
// x: [T, H] f32 or bf16 (BF16), rows: i32 [≥ P], weights: f32 [T·k] (HAS_W) -> out: [P, H]:
// out[p] = w[id]·x[id / k] (f32 product, bf16 rounded to nearest even), the bits as they are without
// weights, zeros for an id outside [0, T·k).
// Bindings: 0 params (uniform) {P, U = vec4 units a row, pairs = T·k, k}
//           1 x: array<vec4<u32>>   2 rows: array<i32>   3 weights: array<f32> (any buffer when !HAS_W)
//           4 out: array<vec4<u32>>
// Overrides: WG, BF16, HAS_W. Dispatch: P workgroups, folded into x + y·num_workgroups.x.

struct Params { P: u32, U: u32, pairs: u32, k: u32 }

override WG: u32 = 128u;
override BF16: bool = false;
override HAS_W: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> rows: array<i32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<u32>>;

// w · (two bf16 in a word), rounded back to two bf16
fn scale_bf16x2(word: u32, w: f32) -> u32 {
  let lo = moe_bf16(w * bitcast<f32>(word << 16u));
  let hi = moe_bf16(w * bitcast<f32>(word & 0xffff0000u));
  return lo | (hi << 16u);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let p = wg.x + wg.y * nwg.x;
  if (p >= params.P) { return; }
  let U = params.U;
  let dst = p * U;
  let id = rows[p];
  if (id < 0 || u32(id) >= params.pairs) {
    for (var u = lid; u < U; u = u + WG) { out[dst + u] = vec4<u32>(0u); }
    return;
  }
  let src = (u32(id) / params.k) * U;
  var w = 1.0;
  if (HAS_W) { w = weights[u32(id)]; }
  for (var u = lid; u < U; u = u + WG) {
    let v = x[src + u];
    if (!HAS_W) {
      out[dst + u] = v;
    } else if (BF16) {
      out[dst + u] = vec4<u32>(scale_bf16x2(v.x, w), scale_bf16x2(v.y, w), scale_bf16x2(v.z, w), scale_bf16x2(v.w, w));
    } else {
      out[dst + u] = bitcast<vec4<u32>>(w * bitcast<vec4<f32>>(v));
    }
  }
}
