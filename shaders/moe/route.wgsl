// moe/route.wgsl — the DeepSeek-V3 gate, one workgroup per token (common.wgsl prepended):
// logits: f32 [T, E], bias: f32 [E] (HAS_BIAS) -> scores: f32 [T, E], weights: f32 [T, k], indices: i32 [T, k].
//   s = sigmoid(z) (SOFTMAX = false) or softmax over E; s' = s + b (f32, selection only)
//   group score = sum of the group's two best s' (f32) or its best (GROUP_MAX); keep topkGroup groups
//   top-k of s' among the kept groups' experts by repeated argmax, best first
//   w_j = s[i_j], divided by (Σ_j s[i_j] + 1e-20) when NORM, times the scaling factor (f32 math)
// Every comparison is on moe_key (exact integers): larger score first, then the lower group / expert
// index, as src/reference/moe.ts. A NaN logit makes the token's weights NaN (indices stay valid).
// The scores themselves are f32 GPU math (exp, division): a few ulps from the reference's f64-then-
// rounded ones, so a near-tie of two experts within those ulps may order differently; the selection
// is always the exact rule applied to the scores this kernel wrote.
// Bindings: 0 params (uniform) {T, E, k, nGroup, topkGroup, scale (f32 bits)}
//           1 logits: array<f32>   2 bias: array<f32> (any buffer when !HAS_BIAS)
//           3 scores: array<u32> (f32 bits)   4 weights: array<u32> (f32 bits)   5 indices: array<i32>
// Overrides: WG (a power of two ≤ 256), MAX_E (a power of two ≥ E: the workgroup's key array),
//            SOFTMAX, HAS_BIAS, GROUP_MAX, NORM.
// Dispatch: T workgroups, folded into x + y·num_workgroups.x past the per-dimension limit.

struct Params { T: u32, E: u32, k: u32, nGroup: u32, topkGroup: u32, scale: u32 }

override WG: u32 = 64u;
override MAX_E: u32 = 256u;
override SOFTMAX: bool = false;
override HAS_BIAS: bool = false;
override GROUP_MAX: bool = false;
override NORM: bool = true;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> scores: array<u32>;
@group(0) @binding(4) var<storage, read_write> weights: array<u32>;
@group(0) @binding(5) var<storage, read_write> indices: array<i32>;

var<workgroup> key: array<u32, MAX_E>;   // s' keys; KEY_NONE once taken or outside the kept groups
var<workgroup> red_k: array<u32, 256>;   // argmax reduction: key
var<workgroup> red_i: array<u32, 256>;   //                   expert
var<workgroup> red_f: array<f32, 256>;   // softmax max / sum
var<workgroup> group_key: array<u32, 256>; // nGroup ≤ 256 (the launcher checks)
var<workgroup> kept_group: array<u32, 256>;
var<workgroup> nan_seen: atomic<u32>;

fn reduce_max(lid: u32, v: f32) -> f32 {
  red_f[lid] = v;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lid < half) { red_f[lid] = max(red_f[lid], red_f[lid + half]); }
    workgroupBarrier();
  }
  let r = red_f[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum(lid: u32, v: f32) -> f32 {
  red_f[lid] = v;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half = half / 2u) {
    if (lid < half) { red_f[lid] = red_f[lid] + red_f[lid + half]; }
    workgroupBarrier();
  }
  let r = red_f[0];
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
  if (lid == 0u) { atomicStore(&nan_seen, 0u); }
  workgroupBarrier();

  // scores and selection keys
  if (SOFTMAX) {
    var m = -3.4028234663852886e38; // the lowest f32: an all −inf row still gives 0/0 = NaN scores, as the reference's

    for (var e = lid; e < E; e = e + WG) {
      let x = logits[row + e];
      if (moe_is_nan(bitcast<u32>(x))) { atomicOr(&nan_seen, 1u); }
      m = max(m, x);
    }
    m = reduce_max(lid, m);
    var s = 0.0;
    for (var e = lid; e < E; e = e + WG) { s = s + exp(logits[row + e] - m); }
    s = reduce_sum(lid, s);
    let nan = atomicLoad(&nan_seen) != 0u;
    for (var e = lid; e < E; e = e + WG) {
      var v = exp(logits[row + e] - m) / s;
      // a NaN anywhere makes the whole row NaN (bits: a NaN constant is not a WGSL value)
      scores[row + e] = select(bitcast<u32>(v), F32_NAN_BITS, nan);
      if (HAS_BIAS) { v = v + bias[e]; }
      key[e] = select(moe_key(v), KEY_NEG_INF, nan);
    }
  } else {
    for (var e = lid; e < E; e = e + WG) {
      let x = logits[row + e];
      if (moe_is_nan(bitcast<u32>(x))) { atomicOr(&nan_seen, 1u); }
      var v = 1.0 / (1.0 + exp(-x));
      scores[row + e] = bitcast<u32>(v);
      if (HAS_BIAS) { v = v + bias[e]; }
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
      if (!GROUP_MAX) {
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

  // top-k by repeated argmax: each invocation offers the best of its experts e ≡ lid (mod WG)
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
      if (NORM) { w = w / denom; }
      w = w * scale;
      weights[t * k + j] = select(bitcast<u32>(w), F32_NAN_BITS, nan);
    }
  }
}
