// fp8/quantize_fused_1x128.wgsl — single-pass quantize for 1×128 blocks when K % 4 == 0
// (codec.wgsl and one of load_f32x4.wgsl / load_bf16x4.wgsl prepended; the latter declares binding 1
// and load_x4): x: f32 | bf16 [M, K] -> q: fp8 [M, K], scales: f32 [M, nbK], nbK = ceil(K/128).
// Reads x once. Each group of 32 invocations owns one (row, 128-wide block): invocation t of the group
// handles elements c = 128·bk + 4t .. +3, i.e. exactly one output word (K % 4 == 0 keeps every word
// inside one row and one block). The group's amax comes from a workgroup atomicMax on |x| bit
// patterns (order-preserving for finite floats; NaN/inf give >= 0x7F800000 and so a NaN scale).
// Bindings: 0 params (uniform) {M, K, nbK, groups = M·nbK}
//           1 x: f32 as array<vec4<u32>> [M·K/4], or bf16 as array<vec2<u32>> [M·K/4] (load_*.wgsl)
//           2 scales: array<u32> (f32 bit patterns) [M·nbK]
//           3 q: array<u32> [M·K/4]
// Overrides: FP8_FORMAT (codec.wgsl), UE8M0, WG (a multiple of 32).
// Dispatch: ceil(groups / (WG/32)) workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { M: u32, K: u32, nbK: u32, groups: u32 }

override WG: u32 = 256u;
override UE8M0: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read_write> scales: array<u32>;
@group(0) @binding(3) var<storage, read_write> q: array<u32>;

var<workgroup> group_amax: array<atomic<u32>, WG / 32u>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let slot = lid / 32u;
  let lane = lid - slot * 32u;
  let g = (wg.x + wg.y * nwg.x) * (WG / 32u) + slot;
  if (lid < WG / 32u) { atomicStore(&group_amax[lid], 0u); }
  // invalid invocations still reach the barriers (they contribute amax 0 and write nothing)
  var valid = g < params.groups;
  var e = 0u; // element index of this invocation's first element
  if (valid) {
    let row = g / params.nbK;
    let c = (g - row * params.nbK) * 128u + 4u * lane;
    valid = c < params.K;
    e = row * params.K + c;
  }
  var xb = vec4<u32>(0u);
  if (valid) { xb = load_x4(e); }
  let a = xb & vec4<u32>(0x7fffffffu);
  workgroupBarrier();
  atomicMax(&group_amax[slot], max(max(a.x, a.y), max(a.z, a.w)));
  workgroupBarrier();
  let amax = atomicLoad(&group_amax[slot]);
  if (!valid) { return; }
  let sb = fp8_scale_from_amax_bits(amax, UE8M0);
  if (lane == 0u) { scales[g] = sb; }
  q[e >> 2u] = fp8_quantize_elem(xb.x, sb) | (fp8_quantize_elem(xb.y, sb) << 8u)
             | (fp8_quantize_elem(xb.z, sb) << 16u) | (fp8_quantize_elem(xb.w, sb) << 24u);
}
