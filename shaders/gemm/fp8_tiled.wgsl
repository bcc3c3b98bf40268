// gemm/fp8_tiled.wgsl — FP8 (E4M3) block-scaled GEMM on f32 FMA units (codec.wgsl prepended).
//   a: e4m3 [rowsA, K] (rowsA = M, or G·Mmax when masked), aScales: f32 [rowsA, KB]
//   b: e4m3 [G, N, K], bScales: f32 [G·ceil(N/128), KB] (B_BLOCK_ROWS 128) or [G·N, KB] (1)
//   rowGroups: i32 groupIndex [M] (contiguous) or maskedM [G] (masked); c: f32 [M, N] (HAS_C)
//   out: f32 or bf16 [rowsA, N];  D[r, n] = Σ_k (a[r,k]·sa[r,kb]) · (b[g,n,k]·sb[g,n,kb]) (+ c)
// The scales are folded into the decoded f32 tiles (allowed by the contract: every K tile lies in one
// 128-wide K block), so the product is a plain f32 FMA GEMM over scaled values.
//
// Tiling: a workgroup of 256 invocations computes a 128×128 tile of D; invocation (tx, ty) = (lid % 16,
// lid / 16) owns rows {ty·4 + i, 64 + ty·4 + i} and columns {tx·4 + j, 64 + tx·4 + j} (i, j < 4): an 8×8
// register block whose A and B values come from workgroup memory as two vec4 each per k (the 16
// invocations of a half-warp read 16 consecutive vec4 of Bs: no bank conflicts; As reads broadcast).
// Per K tile of BK codes: invocations 0..127 load one row of A each, 128..255 one row of B (BK/4 u32
// words of one row: whole 32-byte sectors when BK = 32), decode them through a 256-entry table in
// workgroup memory, multiply by the row's scale and store them transposed (As[k][m], consecutive
// invocations write consecutive addresses). The next tile's words are loaded into registers while the
// current tile is multiplied.
//
// Rows of a row-major fp8 matrix start at byte r·K. K_WORDS (K % 4 == 0): rows are word aligned and a
// word never straddles a row. Otherwise each 4-byte group is read from the two words it spans and bytes
// past the row's end are masked to 0 (and the word past the buffer's end is never read).
//
// Groupings (GROUPING): 0 none; 1 contiguous: the tile's group is that of the first non-padding row of
// its 128-row-aligned block (tiles never straddle such blocks); rows with index −1 are written 0, rows
// with another or an invalid index NaN; 2 masked: tiles never straddle groups (TPG tiles per group),
// rows r − g·Mmax ≥ maskedM[g] are written 0, a whole group NaN when maskedM[g] ∉ [0, Mmax].
// Tiles with nothing to compute skip the K loop.
// Split K (splits > 1, for grids too small to fill the GPU): workgroup wgi computes tile wgi % tiles
// over the K tiles of split wgi / tiles and writes its f32 partial sums (zero/NaN rows as above) at
// out[split·M·N + r·N + n]; gemm/splitk_reduce.wgsl adds the splits (+ c) into D. HAS_C and OUT_BF16
// are off then.
//
// Bindings: 0 params (uniform); 1 a: array<u32> [aWords]; 2 aScales; 3 b: array<u32> [bWords];
//           4 bScales; 5 rowGroups: array<i32> (a dummy when GROUPING == 0); 6 c (dummy unless HAS_C);
//           7 out: array<u32> (f32 bits, or two bf16 per word: needs N even, the launcher sees to it).
// Workgroup memory: As, Bs (BK·128 f32 each), lut (256 u32): 2·BK·512 + 1024 bytes.
// Overrides: FP8_FORMAT (0), GROUPING, B_BLOCK_ROWS, K_WORDS, HAS_C, OUT_BF16, BK (16 or 32).
// Dispatch: tilesM·tilesN·splits workgroups (tn fastest), folded into x + y·num_workgroups.x past 65535.

struct Params {
  M: u32,        // rows of A in all (rowsA)
  N: u32,
  K: u32,
  KB: u32,       // ceil(K / 128)
  G: u32,
  Mmax: u32,     // rows per group (masked)
  tilesN: u32,   // ceil(N / 128)
  tilesM: u32,   // row tiles in all
  TPG: u32,      // row tiles per group (masked): ceil(Mmax / 128)
  NB: u32,       // ceil(N / 128)
  aWords: u32,   // words of a (ceil(rowsA·K / 4))
  bWords: u32,   // words of b (ceil(G·N·K / 4))
  splits: u32,   // K splits (1: none); with more, split s writes f32 partials at out[s·M·N ..]
  splitTiles: u32, // BK-deep K tiles per split
}

override GROUPING: u32 = 0u;
override B_BLOCK_ROWS: u32 = 128u;
override K_WORDS: bool = true;
override HAS_C: bool = false;
override OUT_BF16: bool = false;
override BK: u32 = 16u;

const BM: u32 = 128u;
const BN: u32 = 128u;
const MAX_WORDS: u32 = 8u; // BK / 4 at most

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> aScales: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<u32>;
@group(0) @binding(4) var<storage, read> bScales: array<f32>;
@group(0) @binding(5) var<storage, read> rowGroups: array<i32>;
@group(0) @binding(6) var<storage, read> c: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<u32>;

var<workgroup> As: array<vec4<f32>, BK * BM / 4u>; // As[k][m], m fastest
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4u>; // Bs[k][n], n fastest
var<workgroup> lut: array<u32, 256>;
var<workgroup> firstRow: atomic<u32>;  // contiguous: first non-padding row of the 128-row block
var<workgroup> computeTile: u32;       // 1 when the K loop must run
var<workgroup> tileGroup: u32;

// The BK codes of one row from byte offset `o` (k0 of the row), bytes at or past `left` (K − k0)
// masked to 0, into words[0 .. BK/4). K_WORDS: o is word aligned. Otherwise the BK/4 + 1 aligned
// words covering the bytes are loaded (never past the buffer's `nWords`) and funnel-shifted.
fn load_row(isA: bool, o: u32, left: u32, nWords: u32) -> array<u32, MAX_WORDS> {
  var w: array<u32, MAX_WORDS>;
  var raw: array<u32, MAX_WORDS + 1u>;
  let nw = BK / 4u;
  let wi = o >> 2u;
  let sh = (o & 3u) * 8u;
  let count = select(nw + 1u, nw, K_WORDS || sh == 0u);
  for (var j = 0u; j < count; j = j + 1u) {
    raw[j] = 0u;
    // words wholly past the row's end are not needed (and may lie past the buffer)
    if (4u * j < left + (o & 3u) && wi + j < nWords) {
      if (isA) { raw[j] = a[wi + j]; } else { raw[j] = b[wi + j]; }
    }
  }
  for (var j = 0u; j < nw; j = j + 1u) {
    var v = raw[j];
    if (!K_WORDS && sh != 0u) { v = (raw[j] >> sh) | (raw[j + 1u] << (32u - sh)); }
    let l = left - min(left, 4u * j); // codes of this word inside the row
    if (l < 4u) { v = v & ((1u << (8u * l)) - 1u); }
    w[j] = v;
  }
  return w;
}

// Scale of A row r, or of B row n of group g, for K block kb.
fn row_scale(isA: bool, r: u32, g: u32, n: u32, kb: u32) -> f32 {
  if (isA) { return aScales[r * params.KB + kb]; }
  if (B_BLOCK_ROWS == 128u) { return bScales[(g * params.NB + n / 128u) * params.KB + kb]; }
  return bScales[(g * params.N + n) * params.KB + kb];
}

// 0: compute, 1: write zeros, 2: write NaN, for an existing row r of the tile (group g, valid or not).
fn row_status(r: u32, g: u32, gValid: bool) -> u32 {
  if (GROUPING == 1u) {
    let idx = rowGroups[r];
    if (idx == -1) { return 1u; }
    if (gValid && u32(idx) == g) { return 0u; }
    return 2u;
  }
  if (GROUPING == 2u) {
    let mm = rowGroups[g];
    if (mm < 0 || u32(mm) > params.Mmax) { return 2u; }
    if (r - g * params.Mmax >= u32(mm)) { return 1u; }
  }
  return 0u;
}

fn bf16_bits(u: u32) -> u32 {
  if ((u & 0x7fffffffu) > 0x7f800000u) { return 0x7fc0u; }
  return (u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let wgi = wg.x + wg.y * nwg.x;
  let tiles = params.tilesM * params.tilesN;
  if (wgi >= tiles * params.splits) { return; } // folded grids overshoot
  let split = wgi / tiles;
  let tn = (wgi % tiles) % params.tilesN;
  let tm = (wgi % tiles) / params.tilesN;
  let n0 = tn * BN;

  // ---- the tile's rows and group
  var g = 0u;
  var row0 = tm * BM;
  var rowLimit = params.M; // rows of this tile's group/matrix: [.., rowLimit)
  if (GROUPING == 2u) {
    g = tm / params.TPG;
    row0 = g * params.Mmax + (tm % params.TPG) * BM;
    rowLimit = g * params.Mmax + params.Mmax;
  }
  for (var k = lid; k < 256u; k = k + 256u) { lut[k] = fp8_decode_bits(k); }
  if (lid == 0u) {
    atomicStore(&firstRow, 128u);
    computeTile = 1u;
    tileGroup = g;
  }
  workgroupBarrier();
  if (GROUPING == 1u) {
    let blk = (row0 / 128u) * 128u;
    if (lid < 128u && blk + lid < params.M && rowGroups[blk + lid] != -1) { atomicMin(&firstRow, lid); }
    workgroupBarrier();
    if (lid == 0u) {
      let f = atomicLoad(&firstRow);
      if (f == 128u) {
        computeTile = 0u; // all padding
      } else {
        let gi = rowGroups[blk + f];
        if (gi < 0 || u32(gi) >= params.G) { computeTile = 0u; tileGroup = 0xffffffffu; } else { tileGroup = u32(gi); }
      }
    }
  } else if (GROUPING == 2u) {
    if (lid == 0u) {
      let mm = rowGroups[g];
      if (mm < 0 || u32(mm) > params.Mmax || row0 - g * params.Mmax >= u32(mm)) { computeTile = 0u; }
    }
  }
  let doCompute = workgroupUniformLoad(&computeTile);
  let gt = workgroupUniformLoad(&tileGroup);
  let gValid = gt != 0xffffffffu;
  if (GROUPING == 1u && gValid) { g = gt; }

  let tx = lid % 16u;
  let ty = lid / 16u;
  var acc: array<vec4<f32>, 16>; // acc[2i + h]: row i of the block, columns h·64 + tx·4 + 0..3
  for (var i = 0u; i < 16u; i = i + 1u) { acc[i] = vec4<f32>(0.0); }

  if (doCompute == 1u) {
    let K = params.K;
    let nk = (K + BK - 1u) / BK;
    let ktBegin = min(nk, split * params.splitTiles);
    let ktEnd = min(nk, ktBegin + params.splitTiles);
    let kStart = ktBegin * BK;
    let isA = lid < 128u;
    let rr = lid % 128u; // the row of the tile this invocation loads
    var rowOk: bool;
    var rowBase: u32; // byte offset of the row's first code
    if (isA) {
      rowOk = row0 + rr < rowLimit;
      rowBase = (row0 + rr) * K;
    } else {
      rowOk = n0 + rr < params.N;
      rowBase = (g * params.N + n0 + rr) * K;
    }
    let nWords = select(params.bWords, params.aWords, isA);
    // the scale of this row for K block kb (0 for rows past the matrix)
    var words = array<u32, MAX_WORDS>();
    var s = 0.0;
    if (rowOk && kStart < K) {
      words = load_row(isA, rowBase + kStart, K - kStart, nWords);
      s = row_scale(isA, row0 + rr, g, n0 + rr, kStart / 128u);
    }
    for (var kt = ktBegin; kt < ktEnd; kt = kt + 1u) {
      let k0 = kt * BK;
      workgroupBarrier(); // the previous tile's products are done with As/Bs
      for (var w = 0u; w < BK / 4u; w = w + 1u) {
        let cw = words[w];
        let v = vec4<f32>(bitcast<f32>(lut[cw & 0xffu]), bitcast<f32>(lut[(cw >> 8u) & 0xffu]),
                          bitcast<f32>(lut[(cw >> 16u) & 0xffu]), bitcast<f32>(lut[cw >> 24u])) * s;
        let base = (4u * w) * (BM / 4u) + rr / 4u;
        let comp = rr % 4u;
        if (isA) {
          As[base][comp] = v.x;
          As[base + BM / 4u][comp] = v.y;
          As[base + BM / 2u][comp] = v.z;
          As[base + 3u * BM / 4u][comp] = v.w;
        } else {
          Bs[base][comp] = v.x;
          Bs[base + BN / 4u][comp] = v.y;
          Bs[base + BN / 2u][comp] = v.z;
          Bs[base + 3u * BN / 4u][comp] = v.w;
        }
      }
      workgroupBarrier();
      // the next tile's words and scale travel while this one is multiplied
      if (kt + 1u < ktEnd && rowOk) {
        words = load_row(isA, rowBase + k0 + BK, K - k0 - BK, nWords);
        s = row_scale(isA, row0 + rr, g, n0 + rr, (k0 + BK) / 128u);
      }
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
  }

  // ---- epilogue: status per row, + c, f32 or bf16 out
  let N = params.N;
  for (var i = 0u; i < 8u; i = i + 1u) {
    let r = row0 + select(ty * 4u + i, 64u + ty * 4u + (i - 4u), i >= 4u);
    if (r >= rowLimit) { continue; }
    let st = row_status(r, g, gValid);
    for (var h = 0u; h < 2u; h = h + 1u) {
      let n = n0 + h * 64u + tx * 4u;
      if (n >= N) { continue; }
      var v = acc[2u * i + h];
      var bits = bitcast<vec4<u32>>(v);
      if (st == 0u && HAS_C) {
        for (var j = 0u; j < 4u; j = j + 1u) {
          if (n + j < N) { v[j] = v[j] + c[r * N + n + j]; }
        }
        bits = bitcast<vec4<u32>>(v);
      }
      if (st == 1u) { bits = vec4<u32>(0u); }
      if (st == 2u) { bits = vec4<u32>(F32_NAN_BITS); }
      if (OUT_BF16) {
        // N is even here, so a word holds columns n, n + 1 of one row (n even)
        let o = (r * N + n) / 2u;
        out[o] = bf16_bits(bits.x) | (bf16_bits(bits.y) << 16u);
        if (n + 2u < N) { out[o + 1u] = bf16_bits(bits.z) | (bf16_bits(bits.w) << 16u); }
      } else {
        let o = split * params.M * N + r * N + n;
        for (var j = 0u; j < 4u; j = j + 1u) {
          if (n + j < N) { out[o + j] = bits[j]; }
        }
      }
    }
  }
}
