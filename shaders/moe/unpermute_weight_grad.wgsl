// moe/unpermute_weight_grad.wgsl — dWeights of unpermute, one workgroup per pair (t, j):
// dOut: [T, H] f32 or bf16 (D_BF16), y: [P, H] f32 or bf16 (Y_BF16), pairPos: i32 [T, k]
// -> dWeights: f32 [T, k] = dOut[t]·y[pairPos[t, j]] (0 for a position outside [0, P)).
// Each invocation sums the columns h ≡ lid (mod WG) in f32, then a tree (the reference sums in f64).
// Bindings: 0 params (uniform) {pairs = T·k, H, k, P}
//           1 dOut: array<u32>   2 y: array<u32>   3 pairPos: array<i32>   4 dWeights: array<f32>
// Overrides: WG (a power of two ≤ 256), D_BF16, Y_BF16.
// Dispatch: T·k workgroups, folded into x + y·num_workgroups.x.

struct Params { pairs: u32, H: u32, k: u32, P: u32 }

override WG: u32 = 64u;
override D_BF16: bool = false;
override Y_BF16: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dOut: array<u32>;
@group(0) @binding(2) var<storage, read> y: array<u32>;
@group(0) @binding(3) var<storage, read> pairPos: array<i32>;
@group(0) @binding(4) var<storage, read_write> dWeights: array<f32>;

var<workgroup> red: array<f32, 256>;

fn d_at(i: u32) -> f32 {
  if (D_BF16) { return bitcast<f32>(((dOut[i >> 1u] >> (16u * (i & 1u))) & 0xffffu) << 16u); }
  return bitcast<f32>(dOut[i]);
}
fn y_at(i: u32) -> f32 {
  if (Y_BF16) { return bitcast<f32>(((y[i >> 1u] >> (16u * (i & 1u))) & 0xffffu) << 16u); }
  return bitcast<f32>(y[i]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let pair = wg.x + wg.y * nwg.x;
  if (pair >= params.pairs) { return; } // uniform per workgroup
  let pos = pairPos[pair];
  if (pos < 0 || u32(pos) >= params.P) { // uniform per workgroup too
    if (lid == 0u) { dWeights[pair] = 0.0; }
    return;
  }
  let H = params.H;
  let d0 = (pair / params.k) * H;
  let y0 = u32(pos) * H;
  var s = 0.0;
  for (var h = lid; h < H; h = h + WG) { s = s + d_at(d0 + h) * y_at(y0 + h); }
  red[lid] = s;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lid < half) { red[lid] = red[lid] + red[lid + half]; }
    workgroupBarrier();
  }
  if (lid == 0u) { dWeights[pair] = red[0]; }
}
