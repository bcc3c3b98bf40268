// fp8/load_f32x4.wgsl — binding 1 (x) and the unit helpers of the single-pass quantize kernels
// (quantize_1x128.wgsl, quantize_128x128.wgsl) for f32 input. A unit is UNIT = 4 consecutive elements
// of one row and one 128-column block (K % 4 == 0), loaded as one vec4<u32> (16 bytes).
// x: f32 [M·K] as array<vec4<u32>> (bit patterns) [M·K/4].
// load_unit(e): the unit whose first element is e (e % 4 == 0). unit_amax(u): max |x| bit pattern.
// store_unit(e, u, sb): encode(x / scale) of the unit into q (the kernel's binding 3), word e/4.

@group(0) @binding(1) var<storage, read> x: array<vec4<u32>>;

const UNIT: u32 = 4u;
alias XUnit = vec4<u32>;

fn load_unit(e: u32) -> XUnit {
  return x[e >> 2u];
}

fn unit_amax(u: XUnit) -> u32 {
  let a = u & vec4<u32>(0x7fffffffu);
  return max(max(a.x, a.y), max(a.z, a.w));
}

fn store_unit(e: u32, u: XUnit, sb: u32) {
  q[e >> 2u] = fp8_quantize4(u, sb);
}
