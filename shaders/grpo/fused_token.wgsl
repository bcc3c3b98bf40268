// grpo/fused_token.wgsl — fused token-level GRPO (GrpoKernels.fusedTokenLoss), the rules of
// src/reference/grpo.ts grpoFusedTokenLoss in f32:
//   logits: f32|bf16 [N, V], the small inputs packed by grpo/fused_pack.wgsl
//   -> logp: f32 [N], stats: f32 [N, 4] = (w·l, clipped, k3, ρ), dlogits: f32|bf16 [N, V] (may be the logits)
// One workgroup per row t (b = t / T its sequence):
//   sweep 1: each invocation keeps an online (max m, Σ exp(x − m)) of x = z/T over its entries (one
//            exp per entry), then a tree merges the WG states;
//   invocation 0: logp = (x_y − m) − log s, ρ = exp(logp − oldLogp) (δ cap), the clipped policy term
//            and k3(ref − logp), stats, dlogp = w_b·(gPolicy + gKl) (grpo/loss.wgsl's rules);
//   sweep 2: dlogits = (onehot(y) − exp(x − m − log s)) · dlogp / T, f32, or bf16 rounded to nearest
//            even. The row is read from memory again (a row of V = 151,936 f32 is 594 KiB, past what a
//            workgroup can hold); where the row stays in the cache the second read is cheap.
// A masked-out row is never read: logp 0, stats 0, dlogits 0. A NaN or +inf logit, a row of only −inf
// logits, or a target outside [0, V) makes the row's logp, dlogits and stats (but `clipped`) NaN; −inf
// logits otherwise get probability 0.
// bf16 dlogits (OUT_BF16): invocations write whole words of two elements; a word shared with the
// neighbouring row (V odd) is left to grpo/fused_edges.wgsl through edges[2t] (the row's first
// element, when the row starts mid-word) and edges[2t+1] (its last, when it ends mid-word).
// Bindings: 0 params (uniform) {N, V, T, invT, epsLow, epsHigh, delta (0 = none), beta: the last five
//             as f32 bits}
//           1 logits (grpo/fused_token_out.wgsl or grpo/fused_token_inplace.wgsl, prepended)
//           2 small: array<u32> [4N + 2B]   3 logp: array<u32> [N]   4 stats: array<u32> [4N]
//           5 edges: array<u32> [2N] (a dummy unless OUT_BF16 with V odd)   6 dlogits (the _out file only)
// expm1_f32 and k3_of: logprob/kl_terms.wgsl, prepended.
// Overrides: IN_BF16, OUT_BF16, HAS_REF, WG (a power of two ≤ 256). Each sweep keeps UNROLL (4) loads
// in flight per invocation.
// Dispatch: N workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { N: u32, V: u32, T: u32, invT: u32, epsLow: u32, epsHigh: u32, delta: u32, beta: u32 }

override IN_BF16: bool = false;
override OUT_BF16: bool = false;
override HAS_REF: bool = true;
override WG: u32 = 256u;

const F32_NAN: u32 = 0x7fc00000u;
const F32_NEG_INF: u32 = 0xff800000u;
const F32_POS_INF: u32 = 0x7f800000u;

const BF16_NEG_INF_PAIR: u32 = 0xff80ff80u; // two bf16 −inf: what an absent word adds to the sums (nothing)
const UNROLL: u32 = 4u;

const ROW_OK: u32 = 0u;
const ROW_MASKED: u32 = 1u;
const ROW_NAN: u32 = 2u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> small: array<u32>;
@group(0) @binding(3) var<storage, read_write> logp: array<u32>;
@group(0) @binding(4) var<storage, read_write> stats: array<u32>;
@group(0) @binding(5) var<storage, read_write> edges: array<u32>;

var<workgroup> sh_m: array<f32, 256>;
var<workgroup> sh_s: array<f32, 256>;
var<workgroup> sh_flags: array<u32, 256>; // bit 0: has a finite entry, bit 1: NaN or +inf seen
var<workgroup> sh_state: u32;             // ROW_OK, ROW_MASKED or ROW_NAN
var<workgroup> sh_row: vec3<f32>;         // m, log s, dlogp / T of the row (ROW_OK)

// Online state of one invocation: m valid once has; s = Σ exp(x − m).
struct Online { m: f32, s: f32, has: bool, bad: bool }

// The f32 bit pattern of logit i (flat index into [N, V]). Non-finite values are recognised from their
// bits, never by float comparisons: WGSL lets an implementation assume floats are finite.
fn logit_bits(i: u32) -> u32 {
  if (IN_BF16) { return ((logits[i >> 1u] >> (16u * (i & 1u))) & 0xffffu) << 16u; }
  return logits[i];
}

fn online_add(o: ptr<function, Online>, u: u32, invT: f32) {
  if (u == F32_NEG_INF) { return; }
  if ((u & 0x7fffffffu) >= F32_POS_INF) { (*o).bad = true; return; } // NaN or +inf
  let x = bitcast<f32>(u) * invT;
  if (!(*o).has) {
    (*o).m = x; (*o).s = 1.0; (*o).has = true;
  } else if (x > (*o).m) {
    (*o).s = (*o).s * exp((*o).m - x) + 1.0;
    (*o).m = x;
  } else {
    (*o).s = (*o).s + exp(x - (*o).m);
  }
}

fn bf16_bits(u: u32) -> u32 {
  if ((u & 0x7fffffffu) > F32_POS_INF) { return 0x7fc0u; }
  return (u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u;
}

// f32 bits of d loss / d logit for a logit with bits u at column v of the row (u unread and ignored
// unless the row is ROW_OK)
fn grad_bits(u: u32, v: u32, state: u32, y: u32, r: vec3<f32>, invT: f32) -> u32 {
  if (state == ROW_MASKED) { return 0u; }
  if (state == ROW_NAN) { return F32_NAN; }
  var p = 0.0;
  if (u != F32_NEG_INF) { p = exp(bitcast<f32>(u) * invT - r.x - r.y); }
  return bitcast<u32>((select(0.0, 1.0, v == y) - p) * r.z);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wg.x + wg.y * nwg.x;
  if (t >= params.N) { return; } // uniform per workgroup: the barriers below stay uniform
  let V = params.V;
  let invT = bitcast<f32>(params.invT);
  let base = t * V;          // the row's first element
  let end = base + V;        // past its last
  let w0 = (base + 1u) >> 1u; // bf16: the words wholly inside the row are [w0, w1)
  let w1 = end >> 1u;
  if (lid == 0u) { sh_state = select(ROW_MASKED, ROW_OK, small[4u * t + 3u] != 0u); }
  let on = workgroupUniformLoad(&sh_state) == ROW_OK;

  if (on) {
    // sweep 1: UNROLL loads in flight per invocation before their exps (one workgroup sweeps a whole
    // row, so each invocation walks V / WG entries in sequence; independent loads hide the latency)
    var o = Online(0.0, 0.0, false, false);
    if (IN_BF16) {
      for (var w = w0 + lid; w < w1; w = w + UNROLL * WG) {
        var words: array<u32, UNROLL>;
        for (var j = 0u; j < UNROLL; j = j + 1u) {
          words[j] = BF16_NEG_INF_PAIR;
          if (w + j * WG < w1) { words[j] = logits[w + j * WG]; }
        }
        for (var j = 0u; j < UNROLL; j = j + 1u) {
          online_add(&o, words[j] << 16u, invT);
          online_add(&o, words[j] & 0xffff0000u, invT);
        }
      }
      if (lid == 0u && (base & 1u) == 1u) { online_add(&o, logit_bits(base), invT); }
      if (lid == WG - 1u && (end & 1u) == 1u) { online_add(&o, logit_bits(end - 1u), invT); }
    } else {
      for (var v = lid; v < V; v = v + UNROLL * WG) {
        var us: array<u32, UNROLL>;
        for (var j = 0u; j < UNROLL; j = j + 1u) {
          us[j] = F32_NEG_INF;
          if (v + j * WG < V) { us[j] = logits[base + v + j * WG]; }
        }
        for (var j = 0u; j < UNROLL; j = j + 1u) { online_add(&o, us[j], invT); }
      }
    }
    sh_m[lid] = o.m;
    sh_s[lid] = o.s;
    sh_flags[lid] = select(0u, 1u, o.has) | select(0u, 2u, o.bad);
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half = half / 2u) {
      if (lid < half) {
        let fa = sh_flags[lid];
        let fb = sh_flags[lid + half];
        if ((fb & 1u) != 0u) {
          if ((fa & 1u) == 0u) {
            sh_m[lid] = sh_m[lid + half]; sh_s[lid] = sh_s[lid + half];
          } else {
            let ma = sh_m[lid]; let mb = sh_m[lid + half];
            let M = max(ma, mb);
            sh_s[lid] = sh_s[lid] * exp(ma - M) + sh_s[lid + half] * exp(mb - M);
            sh_m[lid] = M;
          }
        }
        sh_flags[lid] = fa | fb;
      }
      workgroupBarrier();
    }

    if (lid == 0u) {
      let flags = sh_flags[0];
      let y = bitcast<i32>(small[4u * t]);
      if ((flags & 2u) != 0u || (flags & 1u) == 0u || y < 0 || u32(y) >= V) {
        sh_state = ROW_NAN;
        logp[t] = F32_NAN;
        stats[4u * t] = F32_NAN;
        stats[4u * t + 1u] = 0u;
        stats[4u * t + 2u] = select(0u, F32_NAN, HAS_REF);
        stats[4u * t + 3u] = F32_NAN;
      } else {
        let m = sh_m[0];
        let ls = log(sh_s[0]);
        // read before the barrier that starts sweep 2's writes (in place)
        let uy = logit_bits(base + u32(y));
        var lp = bitcast<f32>(uy); // −inf stays −inf (from runtime bits: WGSL has no −inf constant)
        if (uy != F32_NEG_INF) { lp = (bitcast<f32>(uy) * invT - m) - ls; }
        let b = t / params.T;
        let A = bitcast<f32>(small[4u * params.N + 2u * b]);
        let w = bitcast<f32>(small[4u * params.N + 2u * b + 1u]);
        let lo = 1.0 - bitcast<f32>(params.epsLow);
        let hi = 1.0 + bitcast<f32>(params.epsHigh);
        let delta = bitcast<f32>(params.delta);
        let beta = bitcast<f32>(params.beta);
        var rho = exp(lp - bitcast<f32>(small[4u * t + 1u]));
        var d_rho = rho; // d ρ / d logp
        if (params.delta != 0u && rho > delta) { rho = delta; d_rho = 0.0; }
        let clipped = (A > 0.0 && rho > hi) || (A < 0.0 && rho < lo);
        var l = -min(rho * A, clamp(rho, lo, hi) * A);
        let g_policy = select(-A * d_rho, 0.0, clipped);
        var g_kl = 0.0;
        var k3 = 0.0;
        if (HAS_REF) {
          let d = bitcast<f32>(small[4u * t + 2u]) - lp;
          k3 = k3_of(d);
          if (beta != 0.0) { l = l + beta * k3; g_kl = -beta * expm1_f32(d); }
        }
        let g = w * (g_policy + g_kl);
        logp[t] = bitcast<u32>(lp);
        stats[4u * t] = bitcast<u32>(w * l);
        stats[4u * t + 1u] = bitcast<u32>(select(0.0, 1.0, clipped));
        stats[4u * t + 2u] = bitcast<u32>(k3);
        stats[4u * t + 3u] = bitcast<u32>(rho);
        sh_row = vec3<f32>(m, ls, g * invT);
      }
    }
  } else if (lid == 0u) {
    logp[t] = 0u;
    for (var j = 0u; j < 4u; j = j + 1u) { stats[4u * t + j] = 0u; }
  }
  workgroupBarrier();

  // sweep 2
  let state = sh_state;
  let r = sh_row;
  let y = small[4u * t]; // as u32: a negative target matches no column (its row is ROW_NAN anyway)
  if (OUT_BF16) {
    for (var w = w0 + lid; w < w1; w = w + UNROLL * WG) {
      var lo: array<u32, UNROLL>;
      var hi: array<u32, UNROLL>;
      for (var j = 0u; j < UNROLL; j = j + 1u) {
        let wj = w + j * WG;
        lo[j] = 0u;
        hi[j] = 0u;
        if (state == ROW_OK && wj < w1) {
          if (IN_BF16) { let word = logits[wj]; lo[j] = word << 16u; hi[j] = word & 0xffff0000u; }
          else { lo[j] = logits[2u * wj]; hi[j] = logits[2u * wj + 1u]; }
        }
      }
      for (var j = 0u; j < UNROLL; j = j + 1u) {
        let wj = w + j * WG;
        if (wj >= w1) { break; }
        let v = 2u * wj - base;
        store_out(wj, bf16_bits(grad_bits(lo[j], v, state, y, r, invT)) | (bf16_bits(grad_bits(hi[j], v + 1u, state, y, r, invT)) << 16u));
      }
    }
    if (lid == 0u && (base & 1u) == 1u) {
      var u = 0u;
      if (state == ROW_OK) { u = logit_bits(base); }
      edges[2u * t] = bf16_bits(grad_bits(u, 0u, state, y, r, invT));
    }
    if (lid == WG - 1u && (end & 1u) == 1u) {
      var u = 0u;
      if (state == ROW_OK) { u = logit_bits(end - 1u); }
      edges[2u * t + 1u] = bf16_bits(grad_bits(u, V - 1u, state, y, r, invT));
    }
  } else {
    for (var v = lid; v < V; v = v + UNROLL * WG) {
      var us: array<u32, UNROLL>;
      for (var j = 0u; j < UNROLL; j = j + 1u) {
        us[j] = 0u;
        if (state == ROW_OK && v + j * WG < V) { us[j] = logit_bits(base + v + j * WG); }
      }
      for (var j = 0u; j < UNROLL; j = j + 1u) {
        let vj = v + j * WG;
        if (vj >= V) { break; }
        store_out(base + vj, grad_bits(us[j], vj, state, y, r, invT));
      }
    }
  }
}
