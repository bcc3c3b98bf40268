// moe/unpermute_rows.wgsl — unpermute.wgsl for rows of whole 4-element groups (H % 4 == 0), one
// workgroup per token (common.wgsl prepended): the token's k positions and weights are read once,
// then the invocations stride over its 4-element groups (a vec4<u32> of f32, or a vec2<u32> of bf16).
// y: [P, H] f32 or bf16 (Y_BF16), pairPos: i32 [T, k], weights: f32 [T, k] (HAS_W)
// -> out: [T, H] f32 or bf16 (OUT_BF16) = Σ_j w[t,j]·y[pairPos[t,j]], in f32, slot order, one fma a
// step; a position outside [0, P) adds nothing.
// Bindings: 0 params (uniform) {T, G = H / 4, k, P}
//           1 y: array<u32>   2 pairPos: array<i32>   3 weights: array<f32> (any buffer when !HAS_W)
//           4 out: array<u32>
// Overrides: WG, Y_BF16, OUT_BF16, HAS_W. Dispatch: T workgroups, folded into x + y·num_workgroups.x.

struct Params { T: u32, G: u32, k: u32, P: u32 }

override WG: u32 = 128u;
override Y_BF16: bool = false;
override OUT_BF16: bool = false;
override HAS_W: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y: array<u32>;
@group(0) @binding(2) var<storage, read> pairPos: array<i32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

// the 4 elements of group g (counting 4-element groups from the start of the tensor)
fn load4(g: u32) -> vec4<f32> {
  if (Y_BF16) {
    let a = y[2u * g];
    let b = y[2u * g + 1u];
    return vec4<f32>(bitcast<f32>(a << 16u), bitcast<f32>(a & 0xffff0000u), bitcast<f32>(b << 16u), bitcast<f32>(b & 0xffff0000u));
  }
  return vec4<f32>(bitcast<f32>(y[4u * g]), bitcast<f32>(y[4u * g + 1u]), bitcast<f32>(y[4u * g + 2u]), bitcast<f32>(y[4u * g + 3u]));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wg.x + wg.y * nwg.x;
  if (t >= params.T) { return; }
  let G = params.G;
  let k = params.k;
  for (var g = lid; g < G; g = g + WG) {
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < k; j = j + 1u) {
      let pos = pairPos[t * k + j];
      if (pos < 0 || u32(pos) >= params.P) { continue; }
      var w = 1.0;
      if (HAS_W) { w = weights[t * k + j]; }
      acc = fma(vec4<f32>(w), load4(u32(pos) * G + g), acc);
    }
    let o = t * G + g;
    if (OUT_BF16) {
      out[2u * o] = moe_bf16(acc.x) | (moe_bf16(acc.y) << 16u);
      out[2u * o + 1u] = moe_bf16(acc.z) | (moe_bf16(acc.w) << 16u);
    } else {
      out[4u * o] = bitcast<u32>(acc.x);
      out[4u * o + 1u] = bitcast<u32>(acc.y);
      out[4u * o + 2u] = bitcast<u32>(acc.z);
      out[4u * o + 3u] = bitcast<u32>(acc.w);
    }
  }
}
