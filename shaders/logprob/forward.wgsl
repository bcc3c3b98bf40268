// logprob/forward.wgsl — logits: [N, V] (f32 or bf16), targets: i32 [N], T -> logp, lse, entropy: f32 [N]
// (common.wgsl prepended). One workgroup per row: each invocation keeps an online (max, Σ exp(x − max),
// Σ exp(x − max)·(x − max)) over its share of x = z/T — one exp per entry, one pass over the row —
// then the workgroup merges the WG states in a tree. The target's entry is read once by invocation 0.
// Loads: the row's u32 words w ≡ lid (mod WG), four independent loads in flight per invocation (one
// at a time left too few bytes in flight to cover memory latency: 7–15% of copy on an H100), their
// entries added max first (add4); a bf16 word's two entries both count when they lie in the row (a
// row may start or end mid-word).
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

// Adds four entries, given as f32 bit patterns (x = u · invT): −inf adds nothing, NaN or +inf marks
// the state bad. Max first: the block's max, one rescale when it passes the running max, then four
// exps with no branch between them. Every bit pattern is used before the first branch, so the loads
// that produced them are all in flight together.
fn add4(st: ptr<function, Online>, u: vec4<u32>, invT: f32) {
  let special = (u & vec4<u32>(0x7fffffffu)) >= vec4<u32>(F32_POS_INF); // NaN or ±inf, from the bits
  let fin = !special;
  let bad = special & (u != vec4<u32>(F32_NEG_INF));
  let x = bitcast<vec4<f32>>(select(vec4<u32>(0u), u, fin)) * invT;
  if (any(bad)) { (*st).bad = true; }
  if (!any(fin)) { return; }
  let xm = select(vec4<f32>(-3.0e38), x, fin);
  let mb = max(max(xm.x, xm.y), max(xm.z, xm.w));
  if (!(*st).has) {
    (*st).m = mb; (*st).s = 0.0; (*st).w = 0.0; (*st).has = true;
  } else if (mb > (*st).m) {
    // the block's max becomes the running max: rescale the old sums by a = exp(m − mb)
    let a = exp((*st).m - mb);
    (*st).w = a * ((*st).w + ((*st).m - mb) * (*st).s);
    (*st).s = a * (*st).s;
    (*st).m = mb;
  }
  let d = select(vec4<f32>(0.0), x - vec4<f32>((*st).m), fin);
  let e = select(vec4<f32>(0.0), exp(d), fin);
  (*st).s = (*st).s + (e.x + e.y + e.z + e.w);
  (*st).w = (*st).w + dot(e, d);
}

// The entries of bf16 words q (word indices wi) as f32 bit patterns: the low halves (entries 2·wi) and
// the high halves (2·wi + 1); an entry outside the row [e0, e1) becomes −inf, which add4 skips.
fn bf16_lo(q: vec4<u32>, wi: vec4<u32>, e0: u32, e1: u32) -> vec4<u32> {
  let e = 2u * wi;
  return select(vec4<u32>(F32_NEG_INF), (q & vec4<u32>(0xffffu)) << vec4<u32>(16u), (e >= vec4<u32>(e0)) & (e < vec4<u32>(e1)));
}
fn bf16_hi(q: vec4<u32>, wi: vec4<u32>, e0: u32, e1: u32) -> vec4<u32> {
  let e = 2u * wi + vec4<u32>(1u);
  return select(vec4<u32>(F32_NEG_INF), q & vec4<u32>(0xffff0000u), (e >= vec4<u32>(e0)) & (e < vec4<u32>(e1)));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wg.x + wg.y * nwg.x;
  if (t >= params.N) { return; } // uniform per workgroup: the barriers below stay uniform
  let V = params.V;
  let invT = bitcast<f32>(params.invT);
  let base = t * V;
  let e0 = base;
  let e1 = base + V;
  // the row's words [w0, w1): entries [base, base + V), two to a word for bf16
  let w0 = select(base, base >> 1u, BF16);
  let w1 = select(base + V, (base + V + 1u) >> 1u, BF16);
  var st = Online(0.0, 0.0, 0.0, false, false);
  var wi = w0 + lid;
  loop {
    if (wi + 3u * WG >= w1) { break; }
    let q = vec4<u32>(logits[wi], logits[wi + WG], logits[wi + 2u * WG], logits[wi + 3u * WG]);
    if (BF16) {
      let ws = vec4<u32>(wi, wi + WG, wi + 2u * WG, wi + 3u * WG);
      add4(&st, bf16_lo(q, ws, e0, e1), invT);
      add4(&st, bf16_hi(q, ws, e0, e1), invT);
    } else {
      add4(&st, q, invT);
    }
    wi = wi + 4u * WG;
  }
  for (; wi < w1; wi = wi + WG) {
    let q = vec4<u32>(logits[wi], F32_NEG_INF, F32_NEG_INF, F32_NEG_INF);
    if (BF16) {
      // lanes 1–3 are not words of the row: word w1's entries lie past e1, so they become −inf
      let ws = vec4<u32>(wi, w1, w1, w1);
      add4(&st, bf16_lo(q, ws, e0, e1), invT);
      add4(&st, bf16_hi(q, ws, e0, e1), invT);
    } else {
      add4(&st, q, invT);
    }
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
