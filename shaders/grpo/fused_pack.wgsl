// grpo/fused_pack.wgsl — gathers the fused kernel's small inputs into one buffer, so that the fused
// kernel (grpo/fused_token.wgsl) binds 6 storage buffers instead of 11 (WebGPU guarantees 8 per stage):
//   small[4t .. 4t+4) = (targets[t], oldLogp[t] (f32 bits), refLogp[t] (f32 bits; 0 without), mask 0/1)  t < N
//   small[4N + 2b .. +2) = (advantages[b], seqWeight[b]) (f32 bits)                                     b < B
// A mask entry is on when it is not 0 (f32: neither 0 nor −0; u8: not 0).
// Bindings: 0 params (uniform) {N, B}
//           1 targets 2 oldLogp 3 refLogp (oldLogp again without HAS_REF) 4 mask (f32 bits, or four u8
//           per word with MASK_U8) 5 advantages 6 seqWeight: array<u32>   7 small: array<u32> [4N + 2B]
// Overrides: HAS_REF, MASK_U8, WG. Dispatch: ceil(N / WG) workgroups (B ≤ N), folded past 65535.

struct Params { N: u32, B: u32 }

override HAS_REF: bool = true;
override MASK_U8: bool = false;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> targets: array<u32>;
@group(0) @binding(2) var<storage, read> old_logp: array<u32>;
@group(0) @binding(3) var<storage, read> ref_logp: array<u32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read> adv: array<u32>;
@group(0) @binding(6) var<storage, read> seq_weight: array<u32>;
@group(0) @binding(7) var<storage, read_write> small: array<u32>;

fn mask_on(i: u32) -> bool {
  if (MASK_U8) { return ((mask[i >> 2u] >> (8u * (i & 3u))) & 0xffu) != 0u; }
  return (mask[i] & 0x7fffffffu) != 0u;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i < params.N) {
    var r = 0u;
    if (HAS_REF) { r = ref_logp[i]; }
    small[4u * i] = targets[i];
    small[4u * i + 1u] = old_logp[i];
    small[4u * i + 2u] = r;
    small[4u * i + 3u] = select(0u, 1u, mask_on(i));
  }
  if (i < params.B) {
    small[4u * params.N + 2u * i] = adv[i];
    small[4u * params.N + 2u * i + 1u] = seq_weight[i];
  }
}
