// moe/route.wgsl — the DeepSeek-V3 gate, one workgroup per token (common.wgsl and exact.wgsl prepended):
// logits: f32 [T, E], bias: f32 [E] (flags & 1) -> scores: f32 [T, E], weights: f32 [T, k], indices: i32 [T, k].
//   s = sigmoid(z) (SOFTMAX = false) or softmax over E, correctly rounded to f32 (exact.wgsl: the
//   reference's f64-then-rounded value); s' = s + b (f32, selection only)
//   group score = sum of the group's two best s' (f32) or its best (flags & 2); keep topkGroup groups
//   top-k of s' among the kept groups' experts, best first: per-invocation sorted lists merged in a
//   tree when k ≤ 8, else by repeated argmax
//   w_j = s[i_j], divided by (Σ_j s[i_j] + 1e-20) when normalising (flags & 4), times the scaling factor (f32 math; the
//   division is WGSL's, within 2.5 ulp)
// Every comparison is on moe_key (exact integers): larger score first, then the lower group / expert
// index, as src/reference/moe.ts; with the scores equal to the reference's, so are the indices.
// A NaN logit makes the token's weights NaN (indices stay valid); with softmax, its scores too.
// Softmax: Σ_e e^(x_e − max) is summed in 96-bit fixed point (exact integer adds: the same total in
// any order), each term then divided by it in fixed point (exact.wgsl).
// Bindings: 0 params (uniform) {T, E, k, nGroup, topkGroup, scale (f32 bits), flags: 1 bias, 2 group
//           score = max, 4 normalise} (uniform flags, not overrides: fewer pipelines to compile)
//           1 logits: array<f32>   2 bias: array<f32> (any buffer without one)
//           3 scores: array<u32> (f32 bits)   4 weights: array<u32> (f32 bits)   5 indices: array<i32>
//           6 exact_consts: array<u32> (exact.wgsl)
// Overrides: WG (a power of two ≤ 256), MAX_E (a power of two ≥ E: the workgroup's key array), SOFTMAX.
// Dispatch: T workgroups, folded into x + y·num_workgroups.x past the per-dimension limit.

struct Params { T: u32, E: u32, k: u32, nGroup: u32, topkGroup: u32, scale: u32, flags: u32 }

override WG: u32 = 64u;
override MAX_E: u32 = 256u;
override SOFTMAX: bool = false;

// the longest per-invocation candidate list of the fast top-k (WG·KL ≤ 512: red_k, red_i)
const KL: u32 = 8u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>; // read only when flags & 1
@group(0) @binding(3) var<storage, read_write> scores: array<u32>;
@group(0) @binding(4) var<storage, read_write> weights: array<u32>;
@group(0) @binding(5) var<storage, read_write> indices: array<i32>;
@group(0) @binding(6) var<storage, read> exact_consts: array<u32>;

var<workgroup> key: array<u32, MAX_E>;   // s' keys; KEY_NONE once taken or outside the kept groups
// reductions: softmax max (key) and sum (96 bits: red_k, red_i, red_w); the top-k candidate lists
// (KL a invocation: red_k keys, red_i experts); argmax (k > KL: red_k, red_i)
var<workgroup> red_k: array<u32, 512>;
var<workgroup> red_i: array<u32, 512>;
var<workgroup> red_w: array<u32, 256>;
var<workgroup> group_key: array<u32, 256>; // nGroup ≤ 256 (the launcher checks)
var<workgroup> kept_group: array<u32, 256>;
var<workgroup> nan_seen: atomic<u32>;

fn reduce_max_key(lid: u32, v: u32) -> u32 {
  red_k[lid] = v;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lid < half) { red_k[lid] = max(red_k[lid], red_k[lid + half]); }
    workgroupBarrier();
  }
  let r = red_k[0];
  workgroupBarrier();
  return r;
}

// Σ over the workgroup of 96-bit integers (exact)
fn reduce_sum96(lid: u32, v: vec3<u32>) -> vec3<u32> {
  red_k[lid] = v.x;
  red_i[lid] = v.y;
  red_w[lid] = v.z;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lid < half) {
      let r = u96_add(vec3<u32>(red_k[lid], red_i[lid], red_w[lid]), vec3<u32>(red_k[lid + half], red_i[lid + half], red_w[lid + half]));
      red_k[lid] = r.x;
      red_i[lid] = r.y;
      red_w[lid] = r.z;
    }
    workgroupBarrier();
  }
  let r = vec3<u32>(red_k[0], red_i[0], red_w[0]);
  workgroupBarrier();
  return r;
}

// The best (key, expert) of the workgroup: each invocation offers its own best.
fn reduce_argmax(lid: u32, k: u32, i: u32) -> u32 {
  red_k[lid] = k;
  red_i[lid] = i;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lid < half && moe_before(red_k[lid + half], red_i[lid + half], red_k[lid], red_i[lid])) {
      red_k[lid] = red_k[lid + half];
      red_i[lid] = red_i[lid + half];
    }
    workgroupBarrier();
  }
  let r = red_i[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = wg.x + wg.y * nwg.x;
  if (t >= params.T) { return; } // uniform per workgroup
  let E = params.E;
  let k = params.k;
  let row = t * E;
  let has_bias = (params.flags & 1u) != 0u;
  let group_max = (params.flags & 2u) != 0u;
  let norm = (params.flags & 4u) != 0u;
  if (lid == 0u) { atomicStore(&nan_seen, 0u); }
  workgroupBarrier();

  // scores (correctly rounded) and selection keys
  if (SOFTMAX) {
    var mk = KEY_NONE;
    for (var e = lid; e < E; e = e + WG) {
      let x = logits[row + e];
      if (moe_is_nan(bitcast<u32>(x))) { atomicOr(&nan_seen, 1u); }
      mk = max(mk, moe_key(x));
    }
    mk = reduce_max_key(lid, mk);
    let m = moe_key_value(mk);
    // a NaN logit, or an infinite max (inf − inf), makes the whole row NaN, as in the reference
    let bad = atomicLoad(&nan_seen) != 0u || (bitcast<u32>(m) & 0x7fffffffu) == 0x7f800000u;
    if (bad && lid == 0u) { atomicOr(&nan_seen, 1u); } // NaN weights too, from bits (not from NaN arithmetic)
    // S = Σ_e e^(x_e − m) in Q63 (96 bits), terms below 2^−63 dropped (S ≥ 1: relative error < E·2^−63)
    var part = vec3<u32>(0u, 0u, 0u);
    if (!bad) {
      for (var e = lid; e < E; e = e + WG) {
        let g = exact_gap(m, logits[row + e]);
        if (g.big) { continue; }
        let ex = exp_neg(g.a);
        let t = u64_shr(ex.e, ex.n);
        part = u96_add(part, vec3<u32>(0u, t.x, t.y));
      }
    }
    let S = reduce_sum96(lid, part);
    // S = Sn · 2^(tb − 63) with Sn = S / 2^tb in [1, 2) as Q62 (tb: S's leading bit, ≥ 62)
    var tb = 0u;
    var Sn = vec2<u32>(0u, 0u);
    if (S.x != 0u) {
      tb = 95u - countLeadingZeros(S.x);
      let sh = tb - 62u; // 1..33
      Sn = u64_add(u64_shr(vec2<u32>(S.y, S.z), sh), u64_shl(vec2<u32>(0u, S.x), 64u - sh));
    } else if (S.y != 0u || S.z != 0u) {
      tb = 63u - select(countLeadingZeros(S.y), 32u + countLeadingZeros(S.z), S.y == 0u);
      Sn = select(u64_shl(vec2<u32>(S.y, S.z), 62u - tb), u64_shr(vec2<u32>(S.y, S.z), tb - 62u), tb >= 62u);
    } else { // a NaN row: no terms
      tb = 62u;
      Sn = vec2<u32>(0x40000000u, 0u);
    }
    let q = recip_q62(Sn);
    for (var e = lid; e < E; e = e + WG) {
      var bits = F32_NAN_BITS;
      if (!bad) {
        let g = exact_gap(m, logits[row + e]);
        bits = 0u;
        if (!g.big) {
          let ex = exp_neg(g.a);
          // s = (E/2^63)·2^−n / (Sn·2^(tb−63)) = mulhi(E, q) / 2^(n + tb − 1)
          bits = to_f32_bits(mulhi64(ex.e, q), ex.n + tb - 1u);
        }
      }
      scores[row + e] = bits;
      var v = bitcast<f32>(bits);
      if (has_bias) { v = v + bias[e]; }
      key[e] = select(moe_key(v), KEY_NEG_INF, bad);
    }
  } else {
    for (var e = lid; e < E; e = e + WG) {
      let x = logits[row + e];
      if (moe_is_nan(bitcast<u32>(x))) { atomicOr(&nan_seen, 1u); }
      let bits = exact_sigmoid_bits(x);
      scores[row + e] = bits;
      var v = bitcast<f32>(bits);
      if (has_bias) { v = v + bias[e]; }
      key[e] = moe_key(v);
    }
  }
  workgroupBarrier();

  // group-limited routing: invocations score the groups g ≡ lid (mod WG); invocation 0 keeps the topkGroup best
  let G = params.nGroup;
  let per = E / G;
  if (params.topkGroup < G) {
    for (var g = lid; g < G; g = g + WG) {
      var a = KEY_NEG_INF;
      var b = KEY_NEG_INF;
      for (var e = g * per; e < (g + 1u) * per; e = e + 1u) {
        let v = key[e];
        if (v > a) { b = a; a = v; } else if (v > b) { b = v; }
      }
      var gk = a;
      if (!group_max) {
        // −inf + anything is −inf (or NaN for +inf, which the reference also sorts as −inf)
        gk = select(moe_key(moe_key_value(a) + moe_key_value(b)), KEY_NEG_INF, a == KEY_NEG_INF || b == KEY_NEG_INF);
      }
      group_key[g] = gk;
      kept_group[g] = 0u;
    }
    workgroupBarrier();
    if (lid == 0u) {
      for (var r = 0u; r < params.topkGroup; r = r + 1u) {
        var best = 0xffffffffu;
        for (var g = 0u; g < G; g = g + 1u) {
          if (kept_group[g] == 0u && (best == 0xffffffffu || moe_before(group_key[g], g, group_key[best], best))) { best = g; }
        }
        kept_group[best] = 1u;
      }
    }
    workgroupBarrier();
    for (var e = lid; e < E; e = e + WG) {
      if (kept_group[e / per] == 0u) { key[e] = KEY_NONE; }
    }
    workgroupBarrier();
  }

  if (k <= KL) {
    // top-k, k ≤ KL: each invocation keeps the sorted top-k of its experts e ≡ lid (mod WG) by
    // insertion, then the WG lists are merged pairwise in log2(WG) rounds (few barriers)
    var lk: array<u32, KL>;
    var li: array<u32, KL>;
    var n = 0u;
    for (var e = lid; e < E; e = e + WG) {
      let v = key[e];
      if (v == KEY_NONE) { continue; } // outside the kept groups
      if (n == k && !moe_before(v, e, lk[k - 1u], li[k - 1u])) { continue; }
      var j = k - 1u;
      if (n < k) { j = n; n = n + 1u; }
      while (j > 0u && moe_before(v, e, lk[j - 1u], li[j - 1u])) {
        lk[j] = lk[j - 1u];
        li[j] = li[j - 1u];
        j = j - 1u;
      }
      lk[j] = v;
      li[j] = e;
    }
    for (var j = 0u; j < KL; j = j + 1u) {
      red_k[lid * KL + j] = select(KEY_NONE, lk[j], j < n);
      red_i[lid * KL + j] = select(0xffffffffu, li[j], j < n);
    }
    workgroupBarrier();
    // after the round of width s, list lid (a multiple of 2s) holds the best k of lists lid .. lid + 2s − 1
    for (var s = 1u; s < WG; s = s * 2u) {
      if (lid % (2u * s) == 0u) {
        let a = lid * KL;
        let b = (lid + s) * KL;
        var ia = 0u;
        var ib = 0u;
        for (var j = 0u; j < k; j = j + 1u) {
          let take_a = ib >= k || (ia < k && moe_before(red_k[a + ia], red_i[a + ia], red_k[b + ib], red_i[b + ib]));
          if (take_a) { lk[j] = red_k[a + ia]; li[j] = red_i[a + ia]; ia = ia + 1u; }
          else { lk[j] = red_k[b + ib]; li[j] = red_i[b + ib]; ib = ib + 1u; }
        }
        for (var j = 0u; j < k; j = j + 1u) {
          red_k[a + j] = lk[j];
          red_i[a + j] = li[j];
        }
      }
      workgroupBarrier();
    }
    if (lid == 0u) {
      for (var j = 0u; j < k; j = j + 1u) { indices[t * k + j] = i32(red_i[j]); }
    }
  } else {
  // top-k, k > KL: repeated argmax, each invocation offering the best of its experts e ≡ lid (mod WG)
  for (var j = 0u; j < k; j = j + 1u) {
    var bk = KEY_NONE;
    var bi = 0xffffffffu;
    for (var e = lid; e < E; e = e + WG) {
      let v = key[e];
      if (bi == 0xffffffffu || moe_before(v, e, bk, bi)) { bk = v; bi = e; }
    }
    let best = reduce_argmax(lid, bk, bi);
    if (lid == 0u) {
      indices[t * k + j] = i32(best);
      key[best] = KEY_NONE;
    }
    workgroupBarrier();
  }
  }

  // weights from the unbiased scores this workgroup wrote (storageBarrier makes them visible)
  storageBarrier();
  workgroupBarrier();
  if (lid == 0u) {
    let nan = atomicLoad(&nan_seen) != 0u;
    var sum = 0.0;
    for (var j = 0u; j < k; j = j + 1u) {
      sum = sum + bitcast<f32>(scores[row + u32(indices[t * k + j])]);
    }
    let denom = sum + 1e-20;
    let scale = bitcast<f32>(params.scale);
    for (var j = 0u; j < k; j = j + 1u) {
      var w = bitcast<f32>(scores[row + u32(indices[t * k + j])]);
      if (norm) { w = w / denom; }
      w = w * scale;
      weights[t * k + j] = select(bitcast<u32>(w), F32_NAN_BITS, nan);
    }
  }
}
