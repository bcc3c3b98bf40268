// fp8/load_bf16x4.wgsl — binding 1 of the fused quantize kernel for bf16 input, and its loader.
// x: bf16 [M·K] as array<vec2<u32>> (two bf16 to a word, 8-byte loads; M·K % 4 == 0).
// load_x4(e): the f32 bit patterns (exact widening) of elements e..e+3 (e a multiple of 4).

@group(0) @binding(1) var<storage, read> x: array<vec2<u32>>;

fn load_x4(e: u32) -> vec4<u32> {
  let w = x[e >> 2u];
  return vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u);
}
