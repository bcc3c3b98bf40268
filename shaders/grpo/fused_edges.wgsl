// grpo/fused_edges.wgsl — the words of bf16 dlogits that two rows share (V odd): word ((t+1)·V) >> 1
// holds the last element of row t (low half) and the first of row t+1 (high half; after the last row,
// the tensor's padding, kept). grpo/fused_token.wgsl writes no shared word (the next row's workgroup
// may still be reading it, in place) and leaves their values in edges[2t] (first element of row t,
// when it starts mid-word) and edges[2t+1] (last element, when it ends mid-word); this pass, run after
// it, writes each shared word from one invocation.
// Bindings: 0 params (uniform) {N, V}   1 edges: array<u32> [2N] (bf16 bits)   2 out: array<u32> (dlogits)
// Overrides: WG. Dispatch: ceil(N / WG) workgroups, folded past 65535.

struct Params { N: u32, V: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> edges: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = (wg.x + wg.y * nwg.x) * WG + lid;
  if (t >= params.N) { return; }
  let end = (t + 1u) * params.V; // first element past row t
  if ((end & 1u) == 0u) { return; }
  let w = end >> 1u;
  var hi = out[w] & 0xffff0000u;
  if (t + 1u < params.N) { hi = edges[2u * (t + 1u)] << 16u; }
  out[w] = (edges[2u * t + 1u] & 0xffffu) | hi;
}
