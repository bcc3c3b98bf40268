// logprob/backward_inplace.wgsl — the same as backward.wgsl, written over f32 logits in place (one
// read_write binding: WebGPU forbids binding one buffer range as both read and read_write). Each
// element is read before it is written by the same invocation.
// Bindings: 0 params (uniform) {N, V, invT (f32 bits), total = N·V}
//           1 logits: array<u32> (read_write)   2 targets: array<i32>   3 lse: array<u32>   4 g: array<f32>
// Overrides: WG, UNROLL (BF16 must stay false).

@group(0) @binding(0) var<uniform> params: BackwardParams;
@group(0) @binding(1) var<storage, read_write> logits: array<u32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read> lse: array<u32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i0 = ((wg.x + wg.y * nwg.x) * WG + lid) * UNROLL;
  for (var j = 0u; j < UNROLL; j = j + 1u) {
    let i = i0 + j;
    if (i >= params.total) { return; }
    logits[i] = lp_backward_elem(i);
  }
}
