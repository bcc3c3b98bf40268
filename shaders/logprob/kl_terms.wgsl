// logprob/kl_terms.wgsl — exp(d) − 1 and the k3 estimator exp(d) − 1 − d in f32, shared by
// logprob/kl.wgsl, grpo/loss.wgsl and grpo/fused_token.wgsl (prepended to them). exp(d) − 1 − d in f32
// loses about ulp(1) / (d²/2) of relative precision (WGSL has no expm1): 2.4e-5 at |d| = 0.1, 1e-6 at
// 0.5. Below |d| = 0.5 both come from their Taylor series, to a truncation error under 3e-8 relative.

fn expm1_f32(d: f32) -> f32 {
  if (abs(d) < 0.5) {
    return d * (1.0 + d * (0.5 + d * (1.0 / 6.0 + d * (1.0 / 24.0 + d * (1.0 / 120.0 + d * (1.0 / 720.0 + d * (1.0 / 5040.0 + d / 40320.0)))))));
  }
  return exp(d) - 1.0;
}

fn k3_of(d: f32) -> f32 {
  if (abs(d) < 0.5) {
    return d * d * (0.5 + d * (1.0 / 6.0 + d * (1.0 / 24.0 + d * (1.0 / 120.0 + d * (1.0 / 720.0 + d * (1.0 / 5040.0 + d * (1.0 / 40320.0 + d / 362880.0)))))));
  }
  return exp(d) - 1.0 - d;
}
