// moe/permute.wgsl — rows into expert order (common.wgsl prepended):
// x: [T, H] f32 or bf16 (BF16), rows: i32 [≥ P] pair ids, weights: f32 [T·k] (HAS_W)
// -> out: [P, H], same dtype: out[p] = w[id]·x[id / k] (f32 product, then bf16 rounded to nearest
// even); without weights the bits are moved as they are. An id outside [0, T·k) (the sentinel) gives
// a zero row. Each invocation writes whole u32 words of out (one f32, or two bf16 that may belong to
// two rows), PER_INVOCATION of them WG apart.
// Bindings: 0 params (uniform) {P, H, pairs = T·k, k, words = words of out}
//           1 x: array<u32>   2 rows: array<i32>   3 weights: array<f32> (any buffer when !HAS_W)
//           4 out: array<u32>
// Overrides: WG, PER_INVOCATION, BF16, HAS_W.
// Dispatch: ceil(words / (WG·PER_INVOCATION)) workgroups, folded into x + y·num_workgroups.x.

struct Params { P: u32, H: u32, pairs: u32, k: u32, words: u32 }

override WG: u32 = 256u;
override PER_INVOCATION: u32 = 4u;
override BF16: bool = false;
override HAS_W: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> rows: array<i32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

// The bits of out element i (f32 bits, or bf16 bits in the low half).
fn element(i: u32) -> u32 {
  let H = params.H;
  let p = i / H;
  let id = rows[p];
  if (id < 0 || u32(id) >= params.pairs) { return 0u; }
  let src = (u32(id) / params.k) * H + (i - p * H);
  if (BF16) {
    let bits = (x[src >> 1u] >> (16u * (src & 1u))) & 0xffffu;
    if (!HAS_W) { return bits; }
    return moe_bf16(weights[u32(id)] * bitcast<f32>(bits << 16u));
  }
  if (!HAS_W) { return x[src]; }
  return bitcast<u32>(weights[u32(id)] * bitcast<f32>(x[src]));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let base = (wg.x + wg.y * nwg.x) * WG * PER_INVOCATION + lid;
  let n = params.P * params.H;
  for (var u = 0u; u < PER_INVOCATION; u = u + 1u) {
    let w = base + u * WG;
    if (w >= params.words) { return; }
    if (BF16) {
      let i = 2u * w;
      var word = element(i);
      if (i + 1u < n) { word = word | (element(i + 1u) << 16u); }
      out[w] = word;
    } else {
      out[w] = element(w);
    }
  }
}
