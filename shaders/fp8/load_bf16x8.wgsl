// fp8/load_bf16x8.wgsl — binding 1 (x) and the unit helpers of the single-pass quantize kernels
// (quantize_1x128.wgsl, quantize_128x128.wgsl) for bf16 input when K % 8 == 0. A unit is UNIT = 8
// consecutive elements of one row and one 128-column block, loaded as one vec4<u32> (16 bytes, two
// bf16 to a word, the lower-indexed one in the low half); widening to f32 is exact (<< 16).
// x: bf16 [M·K] as array<vec4<u32>> [M·K/8].
// load_unit(e): the unit whose first element is e (e % 8 == 0). unit_amax(u): max |x| as f32 bits.
// store_unit(e, u, sb): encode(x / scale) of the unit into q (the kernel's binding 3), words e/4, e/4+1.

@group(0) @binding(1) var<storage, read> x: array<vec4<u32>>;

const UNIT: u32 = 8u;
alias XUnit = vec4<u32>;

fn load_unit(e: u32) -> XUnit {
  return x[e >> 3u];
}

fn unit_amax(u: XUnit) -> u32 {
  let a = max((u & vec4<u32>(0x7fffu)) << vec4<u32>(16u), u & vec4<u32>(0x7fff0000u));
  return max(max(a.x, a.y), max(a.z, a.w));
}

fn bf16_widen4(w: vec2<u32>) -> vec4<u32> {
  return vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u);
}

fn store_unit(e: u32, u: XUnit, sb: u32) {
  q[e >> 2u] = fp8_quantize4(bf16_widen4(u.xy), sb);
  q[(e >> 2u) + 1u] = fp8_quantize4(bf16_widen4(u.zw), sb);
}
