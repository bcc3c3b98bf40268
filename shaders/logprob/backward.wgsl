// logprob/backward.wgsl — logits: [N, V] (f32 or bf16), targets: i32 [N], lse, g: f32 [N], T
// -> dlogits: f32 [N, V] = (onehot(y) − exp(z/T − lse)) · g / T (common.wgsl and backward_elem.wgsl
// prepended). One invocation per UNROLL consecutive elements.
// Bindings: 0 params (uniform) {N, V, invT (f32 bits), total = N·V}
//           1 logits: array<u32>   2 targets: array<i32>   3 lse: array<u32>   4 g: array<f32>
//           5 dlogits: array<u32> (f32 bit patterns)
// Overrides: BF16 (common.wgsl), WG, UNROLL.
// Dispatch: ceil(total / (WG·UNROLL)) workgroups, folded into x + y·num_workgroups.x past 65535.

@group(0) @binding(0) var<uniform> params: BackwardParams;
@group(0) @binding(1) var<storage, read> logits: array<u32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read> lse: array<u32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i0 = ((wg.x + wg.y * nwg.x) * WG + lid) * UNROLL;
  for (var j = 0u; j < UNROLL; j = j + 1u) {
    let i = i0 + j;
    if (i >= params.total) { return; }
    dlogits[i] = lp_backward_elem(i);
  }
}
