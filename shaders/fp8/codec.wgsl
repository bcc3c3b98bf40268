// fp8/codec.wgsl — FP8 (E4M3 / E5M2) codec helpers shared by the fp8 kernels (prepended to them).
// Everything here is integer work on u32 bit patterns, so results do not depend on the GPU's
// flush-to-zero or rounding behaviour; they match src/reference/fp8.ts bit for bit.
// No bindings, no entry point.
// Overrides: FP8_FORMAT — 0 = e4m3 (saturating, no infinities, NaN code 0x7F),
//                         1 = e5m2 (saturating finite values, keeps ±inf as 0x7C/0xFC).

override FP8_FORMAT: u32 = 0u;

// Per-format constants, derived from FP8_FORMAT at pipeline creation.
override FP8_MAN_BITS: u32 = select(3u, 2u, FP8_FORMAT == 1u);
override FP8_EXP_BITS: u32 = select(4u, 5u, FP8_FORMAT == 1u);
override FP8_BIAS: u32 = select(7u, 15u, FP8_FORMAT == 1u);
override FP8_MAX_CODE: u32 = select(0x7eu, 0x7bu, FP8_FORMAT == 1u);
// f32 bit pattern of the largest finite value: 448 (e4m3), 57344 (e5m2).
override FP8_MAX_BITS: u32 = select(0x43e00000u, 0x47600000u, FP8_FORMAT == 1u);
// maxFinite = 7 * 2^FP8_MAX_POW2 (448 = 7·2^6, 57344 = 7·2^13); used by the exact scale division.
override FP8_MAX_POW2: u32 = select(6u, 13u, FP8_FORMAT == 1u);

const FP8_NAN_CODE: u32 = 0x7fu;
const F32_NAN_BITS: u32 = 0x7fc00000u;
const F32_INF_BITS: u32 = 0x7f800000u;
// Bits of Math.fround(1e-4): amax is clamped below at this before the scale is taken.
const AMAX_FLOOR_BITS: u32 = 0x38d1b717u;

// f32 bit pattern -> fp8 code: round to nearest even, saturate finite values, NaN -> 0x7F.
fn fp8_encode_bits(u: u32) -> u32 {
  let sign = (u >> 24u) & 0x80u;
  let a = u & 0x7fffffffu;
  if (a > F32_INF_BITS) { return FP8_NAN_CODE; }
  if (a == F32_INF_BITS && FP8_FORMAT == 1u) { return sign | 0x7cu; }
  if (a >= FP8_MAX_BITS) { return sign | FP8_MAX_CODE; }
  let e = a >> 23u;
  let shift = 23u - FP8_MAN_BITS;
  if (e > 127u - FP8_BIAS) {
    // normal in fp8: rebias the exponent, round the mantissa to nearest even
    let r = a - ((127u - FP8_BIAS) << 23u);
    let rounded = r + ((1u << (shift - 1u)) - 1u) + ((r >> shift) & 1u);
    return sign | (rounded >> shift);
  }
  // subnormal (or zero) in fp8: code = RNE(mant · 2^(e-150) / 2^(1-bias-man))
  var mant = a & 0x7fffffu;
  var ee = e;
  if (e == 0u) { ee = 1u; } else { mant = mant | 0x800000u; }
  let s = 151u - FP8_BIAS - FP8_MAN_BITS - ee; // >= 21 here
  if (s > 24u) { return sign; } // below half the smallest subnormal
  var q = mant >> s;
  let rem = mant & ((1u << s) - 1u);
  let half = 1u << (s - 1u);
  if (rem > half || (rem == half && (q & 1u) == 1u)) { q = q + 1u; }
  return sign | q;
}

// fp8 code (low 8 bits) -> f32 bit pattern of its value (exact; NaN codes -> 0x7FC00000).
fn fp8_decode_bits(code: u32) -> u32 {
  let sign = (code & 0x80u) << 24u;
  let e = (code >> FP8_MAN_BITS) & ((1u << FP8_EXP_BITS) - 1u);
  let m = code & ((1u << FP8_MAN_BITS) - 1u);
  let e_max = (1u << FP8_EXP_BITS) - 1u;
  if (FP8_FORMAT == 0u && e == e_max && m == 7u) { return F32_NAN_BITS; }
  if (FP8_FORMAT == 1u && e == e_max) {
    if (m == 0u) { return sign | F32_INF_BITS; }
    return F32_NAN_BITS;
  }
  if (e == 0u) {
    if (m == 0u) { return sign; }
    // subnormal m · 2^(1-bias-man): normalise so the leading bit p of m becomes the implicit 1
    let p = firstLeadingBit(m);
    let e32 = p + 128u - FP8_BIAS - FP8_MAN_BITS;
    return sign | (e32 << 23u) | ((m ^ (1u << p)) << (23u - p));
  }
  return sign | ((e + 127u - FP8_BIAS) << 23u) | (m << (23u - FP8_MAN_BITS));
}

// Correctly rounded (RNE) f32 quotient a / maxFinite for a positive normal f32 `a` >= 1e-4, in integer
// arithmetic: maxFinite = 7·2^k, so divide the 24-bit significand by 7 and subtract k from the
// exponent (the result stays normal for every a in range). Exact on every GPU, unlike WGSL's f32 `/`.
fn fp8_div_max_finite(a: u32) -> u32 {
  let e = a >> 23u;
  let n = ((a & 0x7fffffu) | 0x800000u) << 8u; // significand · 2^8 < 2^32
  let quo = n / 7u;
  let rem = n - quo * 7u;
  var sh = firstLeadingBit(quo) - 23u; // quo has 29 or 30 bits: keep the top 24
  var mant = quo >> sh;
  let dropped = quo & ((1u << sh) - 1u);
  let half = 1u << (sh - 1u);
  if (dropped > half || (dropped == half && (rem != 0u || (mant & 1u) == 1u))) { mant = mant + 1u; }
  if (mant == 0x1000000u) { mant = mant >> 1u; sh = sh + 1u; }
  let e_out = e + sh - 8u - FP8_MAX_POW2;
  return (e_out << 23u) | (mant & 0x7fffffu);
}

// amax (bit pattern of |x| max over a block; >= 0x7F800000 when the block held NaN or inf) ->
// bit pattern of the block's scale: NaN for non-finite blocks, else max(amax, 1e-4) / maxFinite,
// rounded up to a power of two when ue8m0.
fn fp8_scale_from_amax_bits(amax: u32, ue8m0: bool) -> u32 {
  if (amax >= F32_INF_BITS) { return F32_NAN_BITS; }
  var s = fp8_div_max_finite(max(amax, AMAX_FLOOR_BITS));
  if (ue8m0 && (s & 0x7fffffu) != 0u) { s = (s & 0xff800000u) + 0x800000u; }
  return s;
}

// Code of x / scale for an f32 element `xb` (bits) and a block scale `sb` (bits); NaN scale -> 0x7F.
// The scale of a finite block is a positive normal number and x is finite, so the division meets
// no NaN or infinity.
fn fp8_quantize_elem(xb: u32, sb: u32) -> u32 {
  if ((sb & 0x7fffffffu) > F32_INF_BITS) { return FP8_NAN_CODE; }
  return fp8_encode_bits(bitcast<u32>(bitcast<f32>(xb) / bitcast<f32>(sb)));
}

// Bits of decode(code) · scale, with NaN and infinity handled in integers (WGSL lets an
// implementation assume floats never hold them): NaN results are the canonical 0x7FC00000.
fn fp8_dequantize_elem(code: u32, sb: u32) -> u32 {
  return fp8_scale_decoded(fp8_decode_bits(code), sb);
}

// The same from the code's decoded bits `d` (kernels that decode through a table).
fn fp8_scale_decoded(d: u32, sb: u32) -> u32 {
  let da = d & 0x7fffffffu;
  let sa = sb & 0x7fffffffu;
  if (da > F32_INF_BITS || sa > F32_INF_BITS) { return F32_NAN_BITS; }
  if (da == F32_INF_BITS || sa == F32_INF_BITS) {
    if (da == 0u || sa == 0u) { return F32_NAN_BITS; } // inf · 0
    return ((d ^ sb) & 0x80000000u) | F32_INF_BITS;
  }
  let p = bitcast<u32>(bitcast<f32>(d) * bitcast<f32>(sb));
  if ((p & 0x7fffffffu) > F32_INF_BITS) { return F32_NAN_BITS; }
  return p;
}

// ---- four-at-a-time packing helpers (the vectorised kernels): compositions of the functions above.

// Four f32 bit patterns -> their codes packed little-endian into one u32 (x.x in bits 0..7).
fn fp8_encode4(v: vec4<u32>) -> u32 {
  return fp8_encode_bits(v.x) | (fp8_encode_bits(v.y) << 8u) | (fp8_encode_bits(v.z) << 16u) | (fp8_encode_bits(v.w) << 24u);
}

// fp8_quantize_elem of four elements sharing the scale `sb`, packed into one u32.
fn fp8_quantize4(v: vec4<u32>, sb: u32) -> u32 {
  if ((sb & 0x7fffffffu) > F32_INF_BITS) { return 0x7f7f7f7fu; }
  let y = bitcast<vec4<u32>>(bitcast<vec4<f32>>(v) / vec4<f32>(bitcast<f32>(sb)));
  return fp8_encode4(y);
}
