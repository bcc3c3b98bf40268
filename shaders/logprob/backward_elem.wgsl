// logprob/backward_elem.wgsl — one element of the log-prob backward, shared by backward.wgsl and
// backward_inplace.wgsl (prepended after common.wgsl). Needs `logits`, `targets`, `lse`, `g` and
// `params` declared by the including kernel.
//   dz = (onehot(y) − p) · g / T, p = exp(z/T − lse): p = 0 for a −inf logit; NaN for a NaN logit or
//   a row whose lse is not finite (as the reference gives).

struct BackwardParams { N: u32, V: u32, invT: u32, total: u32 }

override WG: u32 = 256u;
override UNROLL: u32 = 4u;

fn lp_backward_elem(i: u32) -> u32 {
  let t = i / params.V;
  let v = i - t * params.V;
  let lu = lse[t];
  let u = lp_logit_bits(i);
  if (lp_is_nan(u) || u == F32_POS_INF || (lu & 0x7fffffffu) >= F32_POS_INF) { return F32_NAN; }
  let invT = bitcast<f32>(params.invT);
  let scale = g[t] * invT;
  var p = 0.0;
  if (u != F32_NEG_INF) { p = exp(bitcast<f32>(u) * invT - bitcast<f32>(lu)); }
  let onehot = select(0.0, 1.0, targets[t] == i32(v));
  return bitcast<u32>((onehot - p) * scale);
}
