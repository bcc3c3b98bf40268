// logprob/kl_terms.wgsl — exp(d) − 1 and the k3 estimator exp(d) − 1 − d in f32, shared by
// logprob/kl.wgsl and grpo/fused_token.wgsl (prepended to them). f32 loses their relative precision
// for small |d| (WGSL has no expm1), so below |d| = 0.1 they come from their Taylor series.

fn expm1_f32(d: f32) -> f32 {
  if (abs(d) < 0.1) { return d * (1.0 + d * (0.5 + d * (1.0 / 6.0 + d * (1.0 / 24.0 + d * (1.0 / 120.0 + d / 720.0))))); }
  return exp(d) - 1.0;
}

fn k3_of(d: f32) -> f32 {
  if (abs(d) < 0.1) { return d * d * (0.5 + d * (1.0 / 6.0 + d * (1.0 / 24.0 + d * (1.0 / 120.0 + d * (1.0 / 720.0 + d / 5040.0))))); }
  return exp(d) - 1.0 - d;
}
