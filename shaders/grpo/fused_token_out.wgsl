// grpo/fused_token_out.wgsl — the fused kernel's bindings when dlogits is its own buffer (prepended to
// grpo/fused_token.wgsl): 1 logits: array<u32> (read), 6 dlogits: array<u32> (f32 bits, or two bf16
// per word with OUT_BF16).

@group(0) @binding(1) var<storage, read> logits: array<u32>;
@group(0) @binding(6) var<storage, read_write> dlogits: array<u32>;

// word (f32 element, or pair of bf16) w of dlogits
fn store_out(w: u32, bits: u32) { dlogits[w] = bits; }
