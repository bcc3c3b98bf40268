// grpo/loss.wgsl — logp, oldLogp, refLogp: f32 [B, T], advantages: f32 [B], mask: f32 or u8 [B, T]
// -> dlogp: f32 [B, T] (d loss / d logp) and result[0..4) = loss, clipFraction, meanKl, meanRatio.
// The rules are src/reference/grpo.ts's, in f32 (the loss sum compensated, Kahan).
// One workgroup walks the sequences in order; its invocations split each sequence's tokens:
//   pass 1 per sequence: masked-token count n_b and Σ (logp − oldLogp) (GSPO's sequence log-ratio);
//   pass 2 per sequence: each token's loss term and gradient (sequence level: the policy part of the
//   gradient is reduced over the sequence and spread back over its masked tokens).
// Masked-out positions are never read (padding may hold anything) and get dlogp = 0.
// Bindings: 0 params (uniform) {B, T, epsLow, epsHigh, delta (0 = none), beta, maxLen, globalTokens
//             (0 = the mask's count): the last six as f32 bits}
//           1 logp 2 oldLogp 3 refLogp (logp again when HAS_REF is false) 4 advantages: array<f32>
//           5 mask: array<u32> (f32 bit patterns, or four u8 per word with MASK_U8)
//           6 dlogp: array<f32> [B·T]   7 result: array<f32> [4]   8 scratch: array<f32> [2·B]
// Overrides: HAS_REF, MASK_U8, SEQUENCE (level), AGG (0 grpo, 1 bnpo, 2 dr_grpo, 3 dapo), WG (256).
// Dispatch: 1 workgroup. (grpo/wg_sum.wgsl prepended.)

struct Params { B: u32, T: u32, epsLow: u32, epsHigh: u32, delta: u32, beta: u32, maxLen: u32, globalTokens: u32 }

override HAS_REF: bool = true;
override MASK_U8: bool = false;
override SEQUENCE: bool = false;
override AGG: u32 = 0u;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logp: array<f32>;
@group(0) @binding(2) var<storage, read> old_logp: array<f32>;
@group(0) @binding(3) var<storage, read> ref_logp: array<f32>;
@group(0) @binding(4) var<storage, read> adv: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<u32>;
@group(0) @binding(6) var<storage, read_write> dlogp: array<f32>;
@group(0) @binding(7) var<storage, read_write> result: array<f32>;
@group(0) @binding(8) var<storage, read_write> scratch: array<f32>;

fn masked(i: u32) -> bool {
  if (MASK_U8) { return ((mask[i >> 2u] >> (8u * (i & 3u))) & 0xffu) != 0u; }
  return mask[i] != 0u && mask[i] != 0x80000000u; // f32 0 or −0: not masked in
}


@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let B = params.B;
  let T = params.T;
  // pass 1: n_b and the sequence log-ratio sums -> scratch[b], scratch[B + b]
  var total = 0.0;
  var non_empty = 0.0;
  for (var b = 0u; b < B; b = b + 1u) {
    var n = 0.0;
    var lr = 0.0;
    for (var t = lid; t < T; t = t + WG) {
      let i = b * T + t;
      if (masked(i)) { n = n + 1.0; lr = lr + (logp[i] - old_logp[i]); }
    }
    let nb = wg_sum(lid, n);
    let lrb = wg_sum(lid, lr);
    if (lid == 0u) { scratch[b] = nb; scratch[B + b] = select(0.0, lrb / nb, nb > 0.0); }
    total = total + nb;
    non_empty = non_empty + select(0.0, 1.0, nb > 0.0);
  }
  storageBarrier();
  workgroupBarrier();

  let eps_low = bitcast<f32>(params.epsLow);
  let eps_high = bitcast<f32>(params.epsHigh);
  let delta = bitcast<f32>(params.delta);
  let beta = bitcast<f32>(params.beta);
  let global_tokens = select(total, bitcast<f32>(params.globalTokens), params.globalTokens != 0u);
  let lo = 1.0 - eps_low;
  let hi = 1.0 + eps_high;
  var loss = 0.0;
  var loss_c = 0.0; // Kahan compensation
  var clipped_n = 0.0;
  var kl_sum = 0.0;
  var ratio_sum = 0.0;
  for (var b = 0u; b < B; b = b + 1u) {
    let nb = scratch[b];
    var w = 0.0;
    if (AGG == 0u) { w = select(0.0, 1.0 / (nb * non_empty), nb > 0.0); }
    else if (AGG == 1u) { w = select(0.0, 1.0 / total, total > 0.0); }
    else if (AGG == 2u) { w = 1.0 / (f32(B) * bitcast<f32>(params.maxLen)); }
    else { w = select(0.0, 1.0 / global_tokens, global_tokens > 0.0); }
    let A = adv[b];
    var seq_grad = 0.0;
    for (var t = lid; t < T; t = t + WG) {
      let i = b * T + t;
      if (!masked(i)) { dlogp[i] = 0.0; continue; }
      var log_ratio = logp[i] - old_logp[i];
      if (SEQUENCE) { log_ratio = scratch[B + b]; }
      var rho = exp(log_ratio);
      var d_rho = rho;
      if (params.delta != 0u && rho > delta) { rho = delta; d_rho = 0.0; }
      let clipped = (A > 0.0 && rho > hi) || (A < 0.0 && rho < lo);
      let rho_clipped = clamp(rho, lo, hi);
      var l = -min(rho * A, rho_clipped * A);
      let g_policy = select(-A * d_rho, 0.0, clipped);
      var g_kl = 0.0;
      if (HAS_REF) {
        let d = ref_logp[i] - logp[i];
        let k3 = k3_of(d); // logprob/kl_terms.wgsl, prepended
        kl_sum = kl_sum + k3;
        if (beta != 0.0) { l = l + beta * k3; g_kl = -beta * expm1_f32(d); }
      }
      // loss += w·l, compensated
      let y = w * l - loss_c;
      let s = loss + y;
      loss_c = (s - loss) - y;
      loss = s;
      clipped_n = clipped_n + select(0.0, 1.0, clipped);
      ratio_sum = ratio_sum + rho;
      if (SEQUENCE) { seq_grad = seq_grad + w * g_policy; dlogp[i] = w * g_kl; }
      else { dlogp[i] = w * (g_policy + g_kl); }
    }
    if (SEQUENCE) {
      let sg = wg_sum(lid, seq_grad);
      if (nb > 0.0) {
        for (var t = lid; t < T; t = t + WG) {
          let i = b * T + t;
          if (masked(i)) { dlogp[i] = dlogp[i] + sg / nb; }
        }
      }
    }
  }
  let loss_total = wg_sum(lid, loss);
  let clipped_total = wg_sum(lid, clipped_n);
  let kl_total = wg_sum(lid, kl_sum);
  let ratio_total = wg_sum(lid, ratio_sum);
  if (lid == 0u) {
    let per = select(0.0, 1.0 / total, total > 0.0);
    result[0] = loss_total;
    result[1] = clipped_total * per;
    result[2] = select(0.0, kl_total * per, HAS_REF);
    result[3] = ratio_total * per;
  }
}
