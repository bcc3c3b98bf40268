// fp8/load_bf16x4.wgsl — binding 1 (x) and the unit helpers of the single-pass quantize kernels
// (quantize_1x128.wgsl, quantize_128x128.wgsl) for bf16 input when K % 8 != 0 (K % 4 == 0). A unit is
// UNIT = 4 consecutive elements of one row and one 128-column block, loaded as one vec2<u32> (8 bytes,
// two bf16 to a word, the lower-indexed one in the low half); widening to f32 is exact (<< 16).
// x: bf16 [M·K] as array<vec2<u32>> [M·K/4].
// load_unit(e): the unit whose first element is e (e % 4 == 0). unit_amax(u): max |x| as f32 bits.
// store_unit(e, u, sb): encode(x / scale) of the unit into q (the kernel's binding 3), word e/4.

@group(0) @binding(1) var<storage, read> x: array<vec2<u32>>;

const UNIT: u32 = 4u;
alias XUnit = vec2<u32>;

fn load_unit(e: u32) -> XUnit {
  return x[e >> 2u];
}

fn unit_amax(u: XUnit) -> u32 {
  let a = max((u & vec2<u32>(0x7fffu)) << vec2<u32>(16u), u & vec2<u32>(0x7fff0000u));
  return max(a.x, a.y);
}

fn bf16_widen4(w: vec2<u32>) -> vec4<u32> {
  return vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u);
}

fn store_unit(e: u32, u: XUnit, sb: u32) {
  q[e >> 2u] = fp8_quantize4(bf16_widen4(u), sb);
}
