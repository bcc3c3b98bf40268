// util/copy.wgsl — dst = src in vec4<u32> (16-byte) accesses: the copy that measures the bandwidth
// ceiling (src/webgpu/ceiling.ts). A compute pass, so the backend's timestamp timer sees it.
// Each invocation copies PER_INVOCATION vec4s, WG apart (a workgroup covers WG·PER_INVOCATION
// consecutive vec4s, every access coalesced): fewer invocations for the same bytes, which is what a
// software adapter needs to reach its bandwidth (lavapipe: about 1.7× faster with 4 than with 1) and
// costs a GPU nothing.
// Bindings: 0 params (uniform) {n4 = vec4 elements}
//           1 src: array<vec4<u32>> [n4]
//           2 dst: array<vec4<u32>> [n4]
// Overrides: WG (workgroup size), PER_INVOCATION.
// Dispatch: ceil(n4 / (WG·PER_INVOCATION)) workgroups, folded into x + y·num_workgroups.x past the
// per-dimension limit.

struct Params { n4: u32, pad0: u32, pad1: u32, pad2: u32 }

override WG: u32 = 256u;
override PER_INVOCATION: u32 = 4u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let base = (wg.x + wg.y * nwg.x) * WG * PER_INVOCATION + lid;
  for (var j = 0u; j < PER_INVOCATION; j = j + 1u) {
    let i = base + j * WG;
    if (i < params.n4) { dst[i] = src[i]; }
  }
}
