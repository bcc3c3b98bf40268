// gemm/matmul.wgsl — D = op(A)·op(B) (+ C) with f32 accumulation (f32 FMA), f32 or bf16 inputs.
//   a: f32|bf16, [M, K] (or [K, M] when TRANS_A);  b: f32|bf16, [K, N] (or [N, K] when TRANS_B)
//   c: f32 [M, N] (HAS_C);  out: f32 or bf16 [M, N] (bf16 needs N even: the launcher sees to it)
// C_IS_OUT (with HAS_C, f32 out): C is `out` itself — out += op(A)·op(B), accumulated in place. WebGPU
// cannot bind one buffer as read and read_write in a dispatch, so C is read from the read_write `out`
// binding; each element is read and then written by the same invocation.
// Split K (params.splits > 1, for grids too small to fill the GPU): workgroup w works on tile
// w mod (tilesM·tilesN) over the K tiles of split s = w / (tilesM·tilesN), [s·splitTiles,
// (s+1)·splitTiles), and writes its f32 partial sums to out[s·M·N + …] (a scratch buffer the launcher
// reduces with gemm/splitk_reduce.wgsl; HAS_C and OUT_BF16 are then false here).
// bf16 inputs are read as u32 words holding two elements (element i in bits 16·(i & 1)..) and widened
// exactly to f32 (bf16 = upper half of an f32), so no shader-f16 is needed (the H100 has none).
//
// Tiling as gemm/fp8_tiled.wgsl: 256 invocations per 128×128 tile of D, an 8×8 register block each,
// BK-deep tiles of op(A) and op(B) in workgroup memory stored k-major (As[k][m], Bs[k][n]). Each
// invocation loads BK·128/256 elements of each operand per tile; the element → invocation mapping
// follows the operand's memory order (consecutive invocations read consecutive addresses).
// Bindings: 0 params (uniform) {M, N, K, tilesN, splits, splitTiles}; 1 a: array<u32>; 2 b: array<u32>;
//           3 c: array<f32> (a dummy unless HAS_C and not C_IS_OUT); 4 out: array<u32>.
// Overrides: TRANS_A, TRANS_B, IN_BF16, HAS_C, C_IS_OUT, OUT_BF16, BK (8 or 16).
// Dispatch: tilesM·tilesN·splits workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { M: u32, N: u32, K: u32, tilesN: u32, splits: u32, splitTiles: u32 }

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override IN_BF16: bool = false;
override HAS_C: bool = false;
override C_IS_OUT: bool = false;
override OUT_BF16: bool = false;
override BK: u32 = 16u;

const BM: u32 = 128u;
const BN: u32 = 128u;
const MAX_PER: u32 = 8u; // BK·128 / 256 at most

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

var<workgroup> As: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4u>;

fn load_a(i: u32) -> f32 {
  if (IN_BF16) { return bitcast<f32>(((a[i >> 1u] >> (16u * (i & 1u))) & 0xffffu) << 16u); }
  return bitcast<f32>(a[i]);
}

fn load_b(i: u32) -> f32 {
  if (IN_BF16) { return bitcast<f32>(((b[i >> 1u] >> (16u * (i & 1u))) & 0xffffu) << 16u); }
  return bitcast<f32>(b[i]);
}

fn bf16_bits(u: u32) -> u32 {
  if ((u & 0x7fffffffu) > 0x7f800000u) { return 0x7fc0u; }
  return (u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u;
}

// Columns [n, n + 4) of row r (those below N; rows below M): v (+ C), to out (at o0 + …: a split's partial sums).
fn store4(r: u32, n: u32, o0: u32, acc4: vec4<f32>) {
  let M = params.M;
  let N = params.N;
  if (r >= M || n >= N) { return; }
  var v = acc4;
  if (HAS_C) {
    for (var j = 0u; j < 4u; j = j + 1u) {
      if (n + j < N) {
        if (C_IS_OUT) { v[j] = v[j] + bitcast<f32>(out[r * N + n + j]); }
        else { v[j] = v[j] + c[r * N + n + j]; }
      }
    }
  }
  let bits = bitcast<vec4<u32>>(v);
  if (OUT_BF16) {
    let o = (r * N + n) / 2u;
    out[o] = bf16_bits(bits.x) | (bf16_bits(bits.y) << 16u);
    if (n + 2u < N) { out[o + 1u] = bf16_bits(bits.z) | (bf16_bits(bits.w) << 16u); }
  } else {
    let o = o0 + r * N + n;
    for (var j = 0u; j < 4u; j = j + 1u) {
      if (n + j < N) { out[o + j] = bits[j]; }
    }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let tilesM = (M + BM - 1u) / BM;
  let tiles = tilesM * params.tilesN;
  let wgf = wg.x + wg.y * nwg.x;
  if (wgf >= tiles * params.splits) { return; }
  let split = wgf / tiles;
  let wgi = wgf - split * tiles;
  let m0 = (wgi / params.tilesN) * BM;
  let n0 = (wgi % params.tilesN) * BN;
  let o0 = split * M * N; // this split's partial sums (0 without a split)
  let tx = lid % 16u;
  let ty = lid / 16u;
  let per = BK * BM / 256u;

  var acc: array<vec4<f32>, 16>;
  for (var i = 0u; i < 16u; i = i + 1u) { acc[i] = vec4<f32>(0.0); }
  var ra: array<f32, MAX_PER>;
  var rb: array<f32, MAX_PER>;

  let nk = min((K + BK - 1u) / BK, (split + 1u) * params.splitTiles);
  for (var kt = split * params.splitTiles; kt < nk; kt = kt + 1u) {
    let k0 = kt * BK;
    // global -> registers (element e of the tile; its (m, k) follows the memory order of a)
    for (var j = 0u; j < per; j = j + 1u) {
      let e = lid + 256u * j;
      var m: u32; var k: u32;
      if (TRANS_A) { m = e % BM; k = e / BM; } else { m = e / BK; k = e % BK; }
      ra[j] = 0.0;
      if (m0 + m < M && k0 + k < K) {
        ra[j] = load_a(select((m0 + m) * K + k0 + k, (k0 + k) * M + m0 + m, TRANS_A));
      }
      var n: u32; var kk: u32;
      if (TRANS_B) { n = e / BK; kk = e % BK; } else { n = e % BN; kk = e / BN; }
      rb[j] = 0.0;
      if (n0 + n < N && k0 + kk < K) {
        rb[j] = load_b(select((k0 + kk) * N + n0 + n, (n0 + n) * K + k0 + kk, TRANS_B));
      }
    }
    workgroupBarrier();
    for (var j = 0u; j < per; j = j + 1u) {
      let e = lid + 256u * j;
      var m: u32; var k: u32;
      if (TRANS_A) { m = e % BM; k = e / BM; } else { m = e / BK; k = e % BK; }
      As[k * (BM / 4u) + m / 4u][m % 4u] = ra[j];
      var n: u32; var kk: u32;
      if (TRANS_B) { n = e / BK; kk = e % BK; } else { n = e % BN; kk = e / BN; }
      Bs[kk * (BN / 4u) + n / 4u][n % 4u] = rb[j];
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k = k + 1u) {
      let a0 = As[k * (BM / 4u) + ty];
      let a1 = As[k * (BM / 4u) + 16u + ty];
      let b0 = Bs[k * (BN / 4u) + tx];
      let b1 = Bs[k * (BN / 4u) + 16u + tx];
      acc[0] = fma(vec4<f32>(a0.x), b0, acc[0]);
      acc[1] = fma(vec4<f32>(a0.x), b1, acc[1]);
      acc[2] = fma(vec4<f32>(a0.y), b0, acc[2]);
      acc[3] = fma(vec4<f32>(a0.y), b1, acc[3]);
      acc[4] = fma(vec4<f32>(a0.z), b0, acc[4]);
      acc[5] = fma(vec4<f32>(a0.z), b1, acc[5]);
      acc[6] = fma(vec4<f32>(a0.w), b0, acc[6]);
      acc[7] = fma(vec4<f32>(a0.w), b1, acc[7]);
      acc[8] = fma(vec4<f32>(a1.x), b0, acc[8]);
      acc[9] = fma(vec4<f32>(a1.x), b1, acc[9]);
      acc[10] = fma(vec4<f32>(a1.y), b0, acc[10]);
      acc[11] = fma(vec4<f32>(a1.y), b1, acc[11]);
      acc[12] = fma(vec4<f32>(a1.z), b0, acc[12]);
      acc[13] = fma(vec4<f32>(a1.z), b1, acc[13]);
      acc[14] = fma(vec4<f32>(a1.w), b0, acc[14]);
      acc[15] = fma(vec4<f32>(a1.w), b1, acc[15]);
    }
  }

  // acc[2i + h] holds row m0 + (i < 4 ? 4·ty + i : 64 + 4·ty + i − 4), columns n0 + 64h + 4tx + [0, 4).
  // Written out statement by statement, so that acc is only ever indexed by constants. With the
  // epilogue as a loop over acc[2u·i + h], the in-place variant (C_IS_OUT) ran at 2.0 TFLOP/s on the
  // H100 (Vulkan) against 19.5 without C, at every K — the main loop itself slowed down, as when acc
  // leaves registers; written out, it runs at 19.7.
  let ra0 = m0 + 4u * ty;
  let ra1 = m0 + 64u + 4u * ty;
  let nb0 = n0 + 4u * tx;
  let nb1 = n0 + 64u + 4u * tx;
  store4(ra0, nb0, o0, acc[0]);
  store4(ra0, nb1, o0, acc[1]);
  store4(ra0 + 1u, nb0, o0, acc[2]);
  store4(ra0 + 1u, nb1, o0, acc[3]);
  store4(ra0 + 2u, nb0, o0, acc[4]);
  store4(ra0 + 2u, nb1, o0, acc[5]);
  store4(ra0 + 3u, nb0, o0, acc[6]);
  store4(ra0 + 3u, nb1, o0, acc[7]);
  store4(ra1, nb0, o0, acc[8]);
  store4(ra1, nb1, o0, acc[9]);
  store4(ra1 + 1u, nb0, o0, acc[10]);
  store4(ra1 + 1u, nb1, o0, acc[11]);
  store4(ra1 + 2u, nb0, o0, acc[12]);
  store4(ra1 + 2u, nb1, o0, acc[13]);
  store4(ra1 + 3u, nb0, o0, acc[14]);
  store4(ra1 + 3u, nb1, o0, acc[15]);
}
