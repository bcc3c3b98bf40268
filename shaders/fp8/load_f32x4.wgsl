// fp8/load_f32x4.wgsl — binding 1 of the fused quantize kernel for f32 input, and its loader.
// x: f32 [M·K] as array<vec4<u32>> (bit patterns, 16-byte loads; M·K % 4 == 0).
// load_x4(e): the bit patterns of elements e..e+3 (e a multiple of 4).

@group(0) @binding(1) var<storage, read> x: array<vec4<u32>>;

fn load_x4(e: u32) -> vec4<u32> {
  return x[e >> 2u];
}
