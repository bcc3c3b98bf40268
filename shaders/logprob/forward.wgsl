// logprob/forward.wgsl — logits: [N, V] (f32 or bf16), targets: i32 [N], T -> logp, lse, entropy: f32 [N]
// (common.wgsl prepended). One workgroup per row: each invocation keeps an online (max, Σ exp(x − max),
// Σ exp(x − max)·(x − max)) over its share of x = z/T — one exp per entry, one pass over the row —
// then the workgroup merges the WG states in a tree. The target's entry is read once by invocation 0.
// Loads: the row's u32 words w ≡ lid (mod WG), four independent loads in flight per invocation (one
// at a time left too few bytes in flight to cover memory latency: 7–15% of copy on an H100); a bf16
// word's two entries both count when they lie in the row (a row may start or end mid-word).
// Rows: a NaN or +inf logit makes the row NaN; −inf logits add nothing (an all −inf row has lse −inf,
// logp and entropy NaN); a target outside [0, V) gives logp NaN.
// Bindings: 0 params (uniform) {N, V, invT (f32 bits)}
//           1 logits: array<u32>   2 targets: array<i32> [N]
//           3 logp, 4 lse, 5 entropy: array<u32> (f32 bit patterns) [N]
// Overrides: BF16 (common.wgsl), WG (a power of two ≤ 256).
// Dispatch: N workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { N: u32, V: u32, invT: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<u32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> logp: array<u32>;
@group(0) @binding(4) var<storage, read_write> lse: array<u32>;
@group(0) @binding(5) var<storage, read_write> entropy: array<u32>;

// per invocation: running max m (valid when has != 0), s = Σ exp(x − m), w = Σ exp(x − m)·(x − m)
var<workgroup> sh_m: array<f32, 256>;
var<workgroup> sh_s: array<f32, 256>;
var<workgroup> sh_w: array<f32, 256>;
var<workgroup> sh_flags: array<u32, 256>; // bit 0: has a finite entry, bit 1: NaN or +inf seen

// An invocation's online state: running max m (valid when has), s = Σ exp(x − m), w = Σ exp(x − m)·(x − m);
// bad: a NaN or +inf entry was seen.
struct Online { m: f32, s: f32, w: f32, has: bool, bad: bool }

// Adds the entry whose f32 bit pattern is u (x = u · invT).
fn online_add(st: ptr<function, Online>, u: u32, invT: f32) {
  if (u == F32_NEG_INF) { return; }
  if (lp_is_nan(u) || u == F32_POS_INF) { (*st).bad = true; return; }
  let x = bitcast<f32>(u) * invT;
  if (!(*st).has) {
    (*st).m = x; (*st).s = 1.0; (*st).w = 0.0; (*st).has = true;
  } else if (x > (*st).m) {
    // the new entry becomes the max: rescale the old sums by a = exp(m − x)
    let a = exp((*st).m - x);
    (*st).w = a * ((*st).w + ((*st).m - x) * (*st).s);
    (*st).s = a * (*st).s + 1.0;
    (*st).m = x;
  } else {
    let d = x - (*st).m;
    let e = exp(d);
    (*st).s = (*st).s + e;
    (*st).w = (*st).w + e * d;
  }
}

// Adds the entries of u32 word `wi` that lie in the row [e0, e1) (flat element indices).
fn add_word(st: ptr<function, Online>, word: u32, wi: u32, e0: u32, e1: u32, invT: f32) {
  if (!BF16) {
    online_add(st, word, invT);
    return;
  }
  // an entry outside the row becomes −inf, which online_add skips: the word is used unconditionally, so
  // the compiler keeps its load where it is written instead of sinking it under a branch
  let lo = 2u * wi;
  online_add(st, select(F32_NEG_INF, (word & 0xffffu) << 16u, lo >= e0 && lo < e1), invT);
  online_add(st, select(F32_NEG_INF, word & 0xffff0000u, lo + 1u >= e0 && lo + 1u < e1), invT);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wg.x + wg.y * nwg.x;
  if (t >= params.N) { return; } // uniform per workgroup: the barriers below stay uniform
  let V = params.V;
  let invT = bitcast<f32>(params.invT);
  let base = t * V;
  // the row's words [w0, w1): entries [base, base + V), two to a word for bf16
  let w0 = select(base, base >> 1u, BF16);
  let w1 = select(base + V, (base + V + 1u) >> 1u, BF16);
  var st = Online(0.0, 0.0, 0.0, false, false);
  var wi = w0 + lid;
  loop {
    if (wi + 3u * WG >= w1) { break; }
    let a = logits[wi];
    let b = logits[wi + WG];
    let c = logits[wi + 2u * WG];
    let d = logits[wi + 3u * WG];
    add_word(&st, a, wi, base, base + V, invT);
    add_word(&st, b, wi + WG, base, base + V, invT);
    add_word(&st, c, wi + 2u * WG, base, base + V, invT);
    add_word(&st, d, wi + 3u * WG, base, base + V, invT);
    wi = wi + 4u * WG;
  }
  for (; wi < w1; wi = wi + WG) {
    add_word(&st, logits[wi], wi, base, base + V, invT);
  }
  let m = st.m;
  let s = st.s;
  let w = st.w;
  let has = st.has;
  let bad = st.bad;
  sh_m[lid] = m;
  sh_s[lid] = s;
  sh_w[lid] = w;
  sh_flags[lid] = select(0u, 1u, has) | select(0u, 2u, bad);
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lid < half) {
      let fa = sh_flags[lid];
      let fb = sh_flags[lid + half];
      if ((fb & 1u) != 0u) {
        if ((fa & 1u) == 0u) {
          sh_m[lid] = sh_m[lid + half]; sh_s[lid] = sh_s[lid + half]; sh_w[lid] = sh_w[lid + half];
        } else {
          let ma = sh_m[lid]; let mb = sh_m[lid + half];
          let M = max(ma, mb);
          let ea = exp(ma - M); let eb = exp(mb - M);
          let sa = sh_s[lid]; let sb = sh_s[lid + half];
          sh_w[lid] = ea * (sh_w[lid] + (ma - M) * sa) + eb * (sh_w[lid + half] + (mb - M) * sb);
          sh_s[lid] = ea * sa + eb * sb;
          sh_m[lid] = M;
        }
      }
      sh_flags[lid] = fa | fb;
    }
    workgroupBarrier();
  }
  if (lid != 0u) { return; }
  let flags = sh_flags[0];
  let y = targets[t];
  if ((flags & 2u) != 0u) {
    logp[t] = F32_NAN; lse[t] = F32_NAN; entropy[t] = F32_NAN;
    return;
  }
  if ((flags & 1u) == 0u) { // every logit −inf
    logp[t] = F32_NAN; lse[t] = F32_NEG_INF; entropy[t] = F32_NAN;
    return;
  }
  let M = sh_m[0];
  let S = sh_s[0];
  let row_lse = M + log(S);
  lse[t] = bitcast<u32>(row_lse);
  entropy[t] = bitcast<u32>(log(S) - sh_w[0] / S);
  if (y < 0 || u32(y) >= V) {
    logp[t] = F32_NAN;
    return;
  }
  let uy = lp_logit_bits(base + u32(y));
  if (uy == F32_NEG_INF) { logp[t] = F32_NEG_INF; return; }
  logp[t] = bitcast<u32>(bitcast<f32>(uy) * invT - row_lse);
}
