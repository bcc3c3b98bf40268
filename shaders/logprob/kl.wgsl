// logprob/kl.wgsl — logp, ref: f32 [n] -> kl, dlogp: f32 [n], with d = ref − logp:
//   k1 = −d (dlogp 1); k2 = ½d² (dlogp −d); k3 = exp(d) − d − 1 (dlogp 1 − exp(d));
//   k3_clamped: d clamped to [−20, 20], the result to [−10, 10], dlogp 0 where a clamp acts.
// exp(d) − 1 and exp(d) − 1 − d lose their relative precision for small |d| in f32 (WGSL has no
// expm1), so below |d| = 0.5 they come from their Taylor series: the functions of
// logprob/kl_terms.wgsl, prepended.
// Bindings: 0 params (uniform) {n}   1 logp   2 ref: array<f32>   3 kl   4 dlogp: array<f32>
// Overrides: ESTIMATOR (0 k1, 1 k2, 2 k3, 3 k3_clamped), WG.
// Dispatch: ceil(n / WG) workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { n: u32 }

override WG: u32 = 256u;
override ESTIMATOR: u32 = 2u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logp: array<f32>;
@group(0) @binding(2) var<storage, read> ref_logp: array<f32>;
@group(0) @binding(3) var<storage, read_write> kl: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogp: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  let d = ref_logp[i] - logp[i];
  if (ESTIMATOR == 0u) {
    kl[i] = -d; dlogp[i] = 1.0;
  } else if (ESTIMATOR == 1u) {
    kl[i] = 0.5 * d * d; dlogp[i] = -d;
  } else if (ESTIMATOR == 2u) {
    kl[i] = k3_of(d); dlogp[i] = -expm1_f32(d);
  } else {
    let dc = clamp(d, -20.0, 20.0);
    let k = k3_of(dc);
    kl[i] = clamp(k, -10.0, 10.0);
    let clamped = d < -20.0 || d > 20.0 || k < -10.0 || k > 10.0;
    dlogp[i] = select(-expm1_f32(d), 0.0, clamped);
  }
}
