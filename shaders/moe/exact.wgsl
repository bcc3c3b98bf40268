// moe/exact.wgsl — correctly rounded f32 sigmoid and softmax terms from integer arithmetic (prepended
// to route.wgsl by src/webgpu/moe.ts). Why: the router's selection compares s + b and sums of two of
// them exactly, so a score 1 ulp away from the reference's (f64 math rounded once to f32) can flip a
// tie. A GPU's f32 exp is a few ulps off (lavapipe: a third of sigmoid values 1 ulp off), and WGSL
// gives no way to stop a driver from rewriting float error-free transformations, so these work in
// fixed point on u32 words: e^−a to about 2^−60 relative, the reciprocal by Newton steps, then one
// rounding to nearest even. The result equals the reference's unless the exact value lies within
// about 2^−50 of a rounding midpoint (the reference's own f64 error is of that order).
//
// 64-bit values are vec2<u32>(hi, lo); "Qf" means value = integer / 2^f. The constants come in
// `exact_consts` (built in src/webgpu/moe.ts with BigInt): ln 2 in Q64, 1/k! in Q63 for k = 0..8, and
// e^(−j/64) in Q64 for j = 0..44 (j = 0 as 2^64 − 1).
// Needs the including kernel to declare:  @binding(...) var<storage, read> exact_consts: array<u32>;

const EXACT_CK: u32 = 2u;   // word offset of 1/k!
const EXACT_TAB: u32 = 20u; // word offset of e^(−j/64)

fn u64c(i: u32) -> vec2<u32> { return vec2<u32>(exact_consts[i], exact_consts[i + 1u]); }

fn u64_add(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let lo = a.y + b.y;
  return vec2<u32>(a.x + b.x + select(0u, 1u, lo < a.y), lo);
}
fn u64_sub(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  return vec2<u32>(a.x - b.x - select(0u, 1u, a.y < b.y), a.y - b.y);
}
fn u64_lt(a: vec2<u32>, b: vec2<u32>) -> bool { return a.x < b.x || (a.x == b.x && a.y < b.y); }
fn u64_shr(a: vec2<u32>, s: u32) -> vec2<u32> {
  if (s == 0u) { return a; }
  if (s >= 64u) { return vec2<u32>(0u, 0u); }
  if (s >= 32u) { return vec2<u32>(0u, a.x >> (s - 32u)); }
  return vec2<u32>(a.x >> s, (a.y >> s) | (a.x << (32u - s)));
}
fn u64_shl(a: vec2<u32>, s: u32) -> vec2<u32> {
  if (s == 0u) { return a; }
  if (s >= 64u) { return vec2<u32>(0u, 0u); }
  if (s >= 32u) { return vec2<u32>(a.y << (s - 32u), 0u); }
  return vec2<u32>((a.x << s) | (a.y >> (32u - s)), a.y << s);
}

// the 64-bit product of two u32 (16-bit halves)
fn mul32(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let mid = p01 + p10;
  let mid_carry = select(0u, 0x10000u, mid < p01);
  let lo = p00 + (mid << 16u);
  return vec2<u32>(a1 * b1 + (mid >> 16u) + mid_carry + select(0u, 1u, lo < p00), lo);
}

// the high 64 bits of the 128-bit product (exact)
fn mulhi64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
  let hh = mul32(a.x, b.x);
  let hl = mul32(a.x, b.y);
  let lh = mul32(a.y, b.x);
  let ll = mul32(a.y, b.y);
  let mid = u64_add(u64_add(vec2<u32>(0u, hl.y), vec2<u32>(0u, lh.y)), vec2<u32>(0u, ll.x));
  return u64_add(u64_add(u64_add(hh, vec2<u32>(0u, hl.x)), vec2<u32>(0u, lh.x)), vec2<u32>(0u, mid.x));
}

// 96-bit values as vec3<u32>(w2, w1, w0), two's complement where signed.
fn u96_add(a: vec3<u32>, b: vec3<u32>) -> vec3<u32> {
  let w0 = a.z + b.z;
  let c0 = select(0u, 1u, w0 < a.z);
  let w1a = a.y + b.y;
  let c1 = select(0u, 1u, w1a < a.y);
  let w1 = w1a + c0;
  let c2 = c1 + select(0u, 1u, w1 < w1a);
  return vec3<u32>(a.x + b.x + c2, w1, w0);
}
fn u96_neg(a: vec3<u32>) -> vec3<u32> { return u96_add(vec3<u32>(~a.x, ~a.y, ~a.z), vec3<u32>(0u, 0u, 1u)); }

// |v| · 2^64 of a finite f32 with |v| < 2^31, truncated below 2^−64, as 96 bits; negated when v < 0.
fn fixed96(v: f32) -> vec3<u32> {
  let u = bitcast<u32>(v);
  let ex = (u >> 23u) & 0xffu;
  if (ex == 0u) { return vec3<u32>(0u, 0u, 0u); } // |v| < 2^−126: below 2^−64
  let m = (u & 0x7fffffu) | 0x800000u;
  // v = m · 2^(ex − 150); · 2^64 -> m · 2^(ex − 86)
  let s = i32(ex) - 86;
  var r = vec3<u32>(0u, 0u, 0u);
  if (s <= -24) { return r; }
  if (s < 0) {
    r = vec3<u32>(0u, 0u, m >> u32(-s));
  } else {
    let su = u32(s); // ≤ 71 for |v| < 2^31
    if (su < 32u) { r = vec3<u32>(0u, select(0u, m >> (32u - su), su > 0u), m << su); }
    else if (su < 64u) { let t = su - 32u; r = vec3<u32>(select(0u, m >> (32u - t), t > 0u), m << t, 0u); }
    else { r = vec3<u32>(m << (su - 64u), 0u, 0u); }
  }
  if ((u & 0x80000000u) != 0u) { r = u96_neg(r); }
  return r;
}

// e^−a for 0 ≤ a < 2^8 given as A = a · 2^64 (96 bits) -> (n, E): e^−a = 2^−n · E / 2^63, E in (2^62, 2^63].
// a = n·ln2 + r (0 ≤ r < ln2), r = j/64 + r' (r' < 2^−6): e^−r = e^(−j/64) · Σ_k (−r')^k / k! (degree 8).
struct ExpNeg { n: u32, e: vec2<u32> }
fn exp_neg(A: vec3<u32>) -> ExpNeg {
  let ln2 = u64c(0u);
  let af = f32(A.x) + f32(A.y) * 2.3283064365386963e-10; // a, roughly
  var n = u32(af * 1.4426950408889634);
  // R = A − n·ln2 (96 bits), then one step either way: the estimate is off by at most one near a multiple of ln 2
  let lo = mul32(n, ln2.y);
  let hi = mul32(n, ln2.x);
  let nl = u96_add(vec3<u32>(0u, lo.x, lo.y), vec3<u32>(hi.x, hi.y, 0u));
  var R = u96_add(A, u96_neg(nl));
  let L = vec3<u32>(0u, ln2.x, ln2.y);
  if ((R.x & 0x80000000u) != 0u) {
    R = u96_add(R, L);
    n = n - 1u;
  } else if (R.x != 0u || !u64_lt(vec2<u32>(R.y, R.z), ln2)) {
    R = u96_add(R, u96_neg(L));
    n = n + 1u;
  }
  let r = vec2<u32>(R.y, R.z); // Q64, < ln 2
  let j = r.x >> 26u;
  let rp = vec2<u32>(r.x & 0x3ffffffu, r.y);
  var p = u64c(EXACT_CK + 16u); // 1/8!
  for (var k = 7; k >= 0; k = k - 1) {
    p = u64_sub(u64c(EXACT_CK + 2u * u32(k)), mulhi64(rp, p));
  }
  return ExpNeg(n, mulhi64(u64c(EXACT_TAB + 2u * j), p));
}

// 1/D for D = d · 2^62 with d in [1, 2] -> 2^63 / d (Q63): an f32 guess, two Newton steps y ← y·(2 − d·y).
fn recip_q62(D: vec2<u32>) -> vec2<u32> {
  let guess = 1.0 / (f32(D.x) * 9.313225746154785e-10); // D.x = d · 2^30
  var y = vec2<u32>(u32(guess * 2147483648.0), 0u);
  for (var i = 0; i < 2; i = i + 1) {
    let dy = mulhi64(D, y);                               // Q61
    let err = u64_sub(vec2<u32>(0x40000000u, 0u), dy);    // 2 − d·y, Q61
    y = u64_shl(mulhi64(y, err), 3u);                     // Q60 -> Q63
  }
  return y;
}

// f32 bits of V / 2^F (V > 0), rounded to nearest even, subnormals included (0 when too small).
fn to_f32_bits(V: vec2<u32>, F: u32) -> u32 {
  if (V.x == 0u && V.y == 0u) { return 0u; }
  let lz = select(countLeadingZeros(V.x), 32u + countLeadingZeros(V.y), V.x == 0u);
  let top = 63 - i32(lz);              // V's leading bit
  var biased = top - i32(F) + 127;     // the exponent field if normal
  var sh = top - 23;                   // V >> sh keeps 24 bits
  if (biased < 1) {                    // subnormal: the last bit is 2^−149
    sh = i32(F) - 149;
    biased = 0;
  }
  if (sh <= 0) {                       // fewer than 24 significant bits: exact
    let m = u64_shl(V, u32(-sh)).y;
    return select(m, (u32(biased) << 23u) | (m & 0x7fffffu), biased > 0);
  }
  let shu = u32(sh);
  var m = u64_shr(V, shu).y;
  if (shu <= 64u) {
    let rem = u64_sub(V, u64_shl(vec2<u32>(0u, m), shu));
    let half = u64_shl(vec2<u32>(0u, 1u), shu - 1u);
    if (u64_lt(half, rem) || (rem.x == half.x && rem.y == half.y && (m & 1u) == 1u)) { m = m + 1u; }
  }
  if (biased == 0) { return m; }        // 2^23 after rounding up is the smallest normal: same bits
  if (m == 0x1000000u) { return (u32(biased + 1) << 23u) | 0u; }
  return (u32(biased) << 23u) | (m & 0x7fffffu);
}

// sigmoid(x) = 1 / (1 + e^−x), correctly rounded f32 bits (x not NaN).
fn exact_sigmoid_bits(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  if (moe_is_nan(u)) { return F32_NAN_BITS; }
  let neg = (u & 0x80000000u) != 0u;
  let a = bitcast<f32>(u & 0x7fffffffu);
  if (a >= 128.0) { return select(0x3f800000u, 0u, neg); } // 1, or below the smallest subnormal
  let ex = exp_neg(fixed96(a));
  // D = 1 + e^−a in Q62; q = 1/D
  let D = u64_add(vec2<u32>(0x40000000u, 0u), u64_shr(ex.e, ex.n + 1u));
  let q = recip_q62(D);
  if (!neg) { return to_f32_bits(q, 63u); }
  // x < 0: e^−a / (1 + e^−a) = 2^−n · E · q
  return to_f32_bits(mulhi64(ex.e, q), 62u + ex.n);
}

// a = m − x (m ≥ x, both finite f32) exactly as 96 bits of a · 2^64, or `big` when a ≥ 128 (e^−a below
// 2^−184: no f32 softmax probability).
struct Gap { big: bool, a: vec3<u32> }
fn exact_gap(m: f32, x: f32) -> Gap {
  if (bitcast<u32>(m) == bitcast<u32>(x) || m == x) { return Gap(false, vec3<u32>(0u, 0u, 0u)); }
  if (m - x >= 128.0 || abs(m) >= 2147483648.0 || abs(x) >= 2147483648.0) {
    // with |m| or |x| ≥ 2^31 and a < 128 the two would be equal (their ulps are ≥ 2^7): a is ≥ 128
    return Gap(true, vec3<u32>(0u, 0u, 0u));
  }
  return Gap(false, u96_add(fixed96(m), u96_neg(fixed96(x))));
}
