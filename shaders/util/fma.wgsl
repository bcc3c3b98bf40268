// util/fma.wgsl — the FP32 FLOP/s ceiling (src/webgpu/ceiling.ts): every invocation runs 8 independent
// chains of vec4<f32> FMAs, c = fma(c, a, b), for params.iters steps of 4 rounds each, so
// FLOPs = invocations · iters · 4 rounds · 8 chains · 4 lanes · 2. With a = 1 - 2^-20 and b = 2^-10
// (uniforms, so nothing folds) every chain converges to 1024: no overflow, no denormals.
// The chains' sum is stored by invocation 0 of each workgroup, and by any other with a negative lane
// in its sum (never, but the compiler cannot know), so no chain or lane can be dropped.
// Bindings: 0 params (uniform) {iters, a (f32 bits), b (f32 bits)}
//           1 out: array<vec4<f32>> [SINK]
// Overrides: WG (workgroup size).
// Dispatch: any number of workgroups (folded like the others; the linear index picks the sink slot).

struct Params { iters: u32, a: u32, b: u32, pad0: u32 }

override WG: u32 = 256u;
const SINK: u32 = 1024u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let a = vec4<f32>(bitcast<f32>(params.a));
  let b = vec4<f32>(bitcast<f32>(params.b));
  let s = f32(lid) * b.x;
  var c0 = vec4<f32>(s, s + 1.0, s + 2.0, s + 3.0);
  var c1 = c0 + 4.0;
  var c2 = c0 + 8.0;
  var c3 = c0 + 12.0;
  var c4 = c0 + 16.0;
  var c5 = c0 + 20.0;
  var c6 = c0 + 24.0;
  var c7 = c0 + 28.0;
  for (var i = 0u; i < params.iters; i = i + 1u) {
    for (var r = 0u; r < 4u; r = r + 1u) {
      c0 = fma(c0, a, b);
      c1 = fma(c1, a, b);
      c2 = fma(c2, a, b);
      c3 = fma(c3, a, b);
      c4 = fma(c4, a, b);
      c5 = fma(c5, a, b);
      c6 = fma(c6, a, b);
      c7 = fma(c7, a, b);
    }
  }
  let sum = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7));
  if (lid == 0u || any(sum < vec4<f32>(0.0))) {
    out[(wg.x + wg.y * nwg.x) % SINK] = sum;
  }
}
