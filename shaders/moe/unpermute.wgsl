// moe/unpermute.wgsl — expert outputs back to tokens (common.wgsl prepended):
// y: [P, H] f32 or bf16 (Y_BF16), pairPos: i32 [T, k], weights: f32 [T, k] (HAS_W)
// -> out: [T, H] f32 or bf16 (OUT_BF16): out[t] = Σ_j w[t,j]·y[pairPos[t,j]], accumulated in f32 in
// slot order with one fma per step (the reference rounds once per step too); a position outside
// [0, P) (−1: dropped) adds nothing. Each invocation writes whole u32 words of out (one f32, or two
// bf16 that may belong to two tokens), PER_INVOCATION of them WG apart.
// Bindings: 0 params (uniform) {T, H, k, P, words = words of out}
//           1 y: array<u32>   2 pairPos: array<i32>   3 weights: array<f32> (any buffer when !HAS_W)
//           4 out: array<u32>
// Overrides: WG, PER_INVOCATION, Y_BF16, OUT_BF16, HAS_W.
// Dispatch: ceil(words / (WG·PER_INVOCATION)) workgroups, folded into x + y·num_workgroups.x.

struct Params { T: u32, H: u32, k: u32, P: u32, words: u32 }

override WG: u32 = 256u;
override PER_INVOCATION: u32 = 4u;
override Y_BF16: bool = false;
override OUT_BF16: bool = false;
override HAS_W: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y: array<u32>;
@group(0) @binding(2) var<storage, read> pairPos: array<i32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

fn y_at(i: u32) -> f32 {
  if (Y_BF16) { return bitcast<f32>(((y[i >> 1u] >> (16u * (i & 1u))) & 0xffffu) << 16u); }
  return bitcast<f32>(y[i]);
}

// out element i = (t, h) as f32
fn element(i: u32) -> f32 {
  let H = params.H;
  let k = params.k;
  let t = i / H;
  let h = i - t * H;
  var acc = 0.0;
  for (var j = 0u; j < k; j = j + 1u) {
    let pos = pairPos[t * k + j];
    if (pos < 0 || u32(pos) >= params.P) { continue; }
    var w = 1.0;
    if (HAS_W) { w = weights[t * k + j]; }
    acc = fma(w, y_at(u32(pos) * H + h), acc);
  }
  return acc;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let base = (wg.x + wg.y * nwg.x) * WG * PER_INVOCATION + lid;
  let n = params.T * params.H;
  for (var u = 0u; u < PER_INVOCATION; u = u + 1u) {
    let w = base + u * WG;
    if (w >= params.words) { return; }
    if (OUT_BF16) {
      let i = 2u * w;
      var word = moe_bf16(element(i));
      if (i + 1u < n) { word = word | (moe_bf16(element(i + 1u)) << 16u); }
      out[w] = word;
    } else {
      out[w] = bitcast<u32>(element(w));
    }
  }
}
