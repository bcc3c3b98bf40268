// logprob/common.wgsl — helpers shared by the logprob kernels (prepended by src/webgpu/logprob.ts).
// Logits arrive as u32 words: f32 bit patterns (BF16 = false) or two bf16 values per word
// (BF16 = true, element 2w+j in bits 16j..16j+15). Non-finite values are recognised from their bit
// patterns, never by float comparisons: WGSL lets an implementation assume floats are finite.

override BF16: bool = false;

const F32_NAN: u32 = 0x7fc00000u;
const F32_NEG_INF: u32 = 0xff800000u;
const F32_POS_INF: u32 = 0x7f800000u;

// The f32 bit pattern of logit i (flat index into [N, V]).
fn lp_logit_bits(i: u32) -> u32 {
  if (BF16) {
    let word = logits[i >> 1u];
    return ((word >> (16u * (i & 1u))) & 0xffffu) << 16u;
  }
  return logits[i];
}

fn lp_is_nan(u: u32) -> bool { return (u & 0x7fffffffu) > F32_POS_INF; }
