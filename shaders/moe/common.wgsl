// moe/common.wgsl — helpers shared by the moe kernels (prepended by src/webgpu/moe.ts).
// Selection keys are f32 values mapped to u32 so that unsigned order is numeric order: comparisons
// are then exact integer ones, immune to any assumption the compiler makes about NaN or ±inf (WGSL
// lets an implementation assume floats are finite). NaN maps to the key of −inf (the reference sorts
// a NaN score as −∞) and −0 to the key of +0 (they compare equal); key 0 is below every value and
// marks an expert that can no longer be chosen.

const KEY_NONE: u32 = 0u;
const KEY_NEG_INF: u32 = 0x007fffffu; // ~0xff800000
const F32_NAN_BITS: u32 = 0x7fc00000u;

fn moe_is_nan(u: u32) -> bool { return (u & 0x7fffffffu) > 0x7f800000u; }

fn moe_key(v: f32) -> u32 {
  var u = bitcast<u32>(v);
  if (moe_is_nan(u)) { return KEY_NEG_INF; }
  if (u == 0x80000000u) { u = 0u; }
  return select(u | 0x80000000u, ~u, (u & 0x80000000u) != 0u);
}

// The f32 value of a key made by moe_key (not KEY_NONE).
fn moe_key_value(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}

// (ka, a) ranks before (kb, b): the larger key, then the lower index.
fn moe_before(ka: u32, a: u32, kb: u32, b: u32) -> bool { return ka > kb || (ka == kb && a < b); }

// f32 -> bf16 bits, round to nearest even; NaN stays a quiet NaN (src/dtype.ts f32ToBf16Bits).
fn moe_bf16(v: f32) -> u32 {
  let u = bitcast<u32>(v);
  if (moe_is_nan(u)) { return ((u >> 16u) | 0x40u) & 0xffffu; }
  return ((u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u) & 0xffffu;
}
