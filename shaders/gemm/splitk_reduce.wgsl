// gemm/splitk_reduce.wgsl — part: f32 [S, n] (split-K partial sums of a GEMM, n = rows·N) -> out:
// f32 or bf16 [n] = Σ_s part[s, i] (+ c[i] when HAS_C); bf16 rounds to nearest even, NaN -> 0x7FC0.
// C_IS_OUT (with HAS_C, f32 out): C is `out` itself (out += Σ_s part), read from the read_write
// binding by the invocation that then writes the element.
// Each invocation writes one whole u32 word of out (one f32, or two bf16: rows may end mid-word, the
// word's two elements are summed independently), so no two invocations share a word.
// Bindings: 0 params (uniform) {n, words (n or ceil(n/2)), S}; 1 part: array<f32> [S·n];
//           2 c: array<f32> [n] (a dummy unless HAS_C and not C_IS_OUT); 3 out: array<u32> [words].
// Overrides: HAS_C, C_IS_OUT, OUT_BF16, WG. Dispatch: ceil(words / WG) workgroups, folded into x + y·num_workgroups.x.

struct Params { n: u32, words: u32, S: u32, pad0: u32 }

override HAS_C: bool = false;
override C_IS_OUT: bool = false;
override OUT_BF16: bool = false;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read> c: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

fn sum_at(i: u32) -> f32 {
  var v = 0.0;
  for (var s = 0u; s < params.S; s = s + 1u) { v = v + part[s * params.n + i]; }
  if (HAS_C) {
    if (C_IS_OUT) { v = v + bitcast<f32>(out[i]); } else { v = v + c[i]; }
  }
  return v;
}

fn bf16_bits(u: u32) -> u32 {
  if ((u & 0x7fffffffu) > 0x7f800000u) { return 0x7fc0u; }
  return (u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = (wg.x + wg.y * nwg.x) * WG + lid;
  if (w >= params.words) { return; }
  if (!OUT_BF16) {
    out[w] = bitcast<u32>(sum_at(w));
    return;
  }
  let lo = bf16_bits(bitcast<u32>(sum_at(2u * w)));
  var hi = 0u;
  if (2u * w + 1u < params.n) { hi = bf16_bits(bitcast<u32>(sum_at(2u * w + 1u))); }
  out[w] = lo | (hi << 16u);
}
