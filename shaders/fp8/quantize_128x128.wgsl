// fp8/quantize_128x128.wgsl — single-pass quantize for 128×128 blocks when K % 4 == 0 (K % 8 == 0 for
// the 8-element bf16 loader): x: f32 | bf16 [M, K] -> q: fp8 [M, K], scales: f32 [nbM, nbK],
// nbM = ceil(M/128), nbK = ceil(K/128).
// Module: amax_subgroup.wgsl or amax_workgroup.wgsl (group_amax), codec.wgsl, one of load_f32x4.wgsl /
// load_bf16x4.wgsl / load_bf16x8.wgsl (binding 1, UNIT, load_unit, unit_amax, store_unit), this file.
// One workgroup per tile (bm, bk), reading x once, into registers: a tile row is 128/UNIT units;
// invocation t owns unit column t % (128/UNIT) of rows t / (128/UNIT) + i·(WG·UNIT/128), i < ROUNDS
// = 128·128 / (WG·UNIT) (so each round's loads are whole consecutive row segments). It loads all its
// units first (in flight together), the workgroup reduces amax (group_amax with LANES = WG), then each
// invocation encodes from registers and writes its units' words. Rows past M and columns past K (a
// ragged tile) are neither read nor written; K % 4 == 0 keeps every output word inside one row and
// one block, so each word has one writer. amax on |x| bit patterns as in quantize_1x128.wgsl.
// Bindings: 0 params (uniform) {M, K, nbK, tiles = nbM·nbK}
//           1 x (the loader's)
//           2 scales: array<u32> (f32 bit patterns) [nbM·nbK]
//           3 q: array<u32> [M·K/4]
// Overrides: FP8_FORMAT (codec.wgsl), UE8M0, WG (256, 512 or 1024; 128/UNIT divides it).
// Dispatch: tiles workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { M: u32, K: u32, nbK: u32, tiles: u32 }

override WG: u32 = 256u;
override LANES: u32 = WG; // the whole workgroup is one group (group_amax)
override UE8M0: bool = false;
const MAX_ROUNDS: u32 = 16u; // 128·128 / (WG·UNIT) at most (WG = 256, UNIT = 4)

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read_write> scales: array<u32>;
@group(0) @binding(3) var<storage, read_write> q: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let tile = wg.x + wg.y * nwg.x;
  if (tile >= params.tiles) { return; } // uniform across the workgroup (folded grids overshoot)
  let row_units = 128u / UNIT;
  let rows_per_round = WG / row_units;
  let rounds = 128u / rows_per_round;
  let bm = tile / params.nbK;
  let bk = tile - bm * params.nbK;
  let c = bk * 128u + (lid % row_units) * UNIT;
  let col_ok = c < params.K; // K % UNIT == 0: a unit is whole or absent
  let r0 = bm * 128u + lid / row_units;
  var v: array<XUnit, MAX_ROUNDS>;
  var amax = 0u;
  for (var i = 0u; i < rounds; i = i + 1u) {
    let r = r0 + i * rows_per_round;
    if (col_ok && r < params.M) { v[i] = load_unit(r * params.K + c); }
  }
  for (var i = 0u; i < rounds; i = i + 1u) { amax = max(amax, unit_amax(v[i])); } // unloaded units are 0
  amax = group_amax(amax, lid);
  let sb = fp8_scale_from_amax_bits(amax, UE8M0);
  if (lid == 0u) { scales[tile] = sb; }
  for (var i = 0u; i < rounds; i = i + 1u) {
    let r = r0 + i * rows_per_round;
    if (col_ok && r < params.M) { store_unit(r * params.K + c, v[i], sb); }
  }
}
