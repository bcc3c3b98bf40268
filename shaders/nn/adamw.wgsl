// nn/adamw.wgsl — one AdamW step in place over n elements (PyTorch's form; the launcher folds the
// bias corrections into step_size = lr/(1 − β1^t) and inv_sqrt_bc2 = 1/sqrt(1 − β2^t), in f64):
//   m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²;
//   p ← p·(1 − lr·wd) − step_size · m / (sqrt(v)·inv_sqrt_bc2 + eps)
// Bindings: 0 params (uniform) {n, beta1, beta2, eps, decay, stepSize, invSqrtBc2 (f32 bits)}
//           1 param   2 grad   3 m   4 v
// Overrides: WG. Dispatch: ceil(n / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { n: u32, beta1: u32, beta2: u32, eps: u32, decay: u32, stepSize: u32, invSqrtBc2: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= params.n) { return; }
  let b1 = bitcast<f32>(params.beta1);
  let b2 = bitcast<f32>(params.beta2);
  let g = grad[i];
  let mi = b1 * m[i] + (1.0 - b1) * g;
  let vi = b2 * v[i] + (1.0 - b2) * g * g;
  m[i] = mi;
  v[i] = vi;
  let denom = sqrt(vi) * bitcast<f32>(params.invSqrtBc2) + bitcast<f32>(params.eps);
  param[i] = param[i] * bitcast<f32>(params.decay) - bitcast<f32>(params.stepSize) * mi / denom;
}
