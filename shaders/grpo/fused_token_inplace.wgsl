// grpo/fused_token_inplace.wgsl — the fused kernel's bindings when dlogits is the logits themselves
// (prepended to grpo/fused_token.wgsl): 1 logits: array<u32> (read_write; same dtype in and out).
// WebGPU cannot bind one buffer as read and read_write in a dispatch, hence one binding; every word is
// read (both sweeps) and then written by the same invocation, and the target's logit is read before
// the barrier that starts the writes.

@group(0) @binding(1) var<storage, read_write> logits: array<u32>;

fn store_out(w: u32, bits: u32) { logits[w] = bits; }
