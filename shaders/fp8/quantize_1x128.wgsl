// fp8/quantize_1x128.wgsl — single-pass quantize for 1×128 blocks when K % 4 == 0 (K % 8 == 0 for the
// 8-element bf16 loader): x: f32 | bf16 [M, K] -> q: fp8 [M, K], scales: f32 [M, nbK], nbK = ceil(K/128).
// Module: amax_subgroup.wgsl or amax_workgroup.wgsl (group_amax), codec.wgsl, one of load_f32x4.wgsl /
// load_bf16x4.wgsl / load_bf16x8.wgsl (binding 1, UNIT, load_unit, unit_amax, store_unit), this file.
// Reads x once, into registers. LANES consecutive invocations own one (row, 128-column block) group;
// the block is 128/UNIT units of UNIT elements and lane l owns units l, l + LANES, l + 2·LANES, …
// (so a group's loads are consecutive): it loads all of them first (in flight together), reduces amax
// over the group with group_amax (subgroup shuffles: no barrier; or workgroup memory), then encodes
// from registers and writes its units' words. Units past a ragged block's end are neither read nor
// written; K % 4 == 0 keeps every output word inside one row and one block, so each word has one writer.
// amax is taken on |x| bit patterns as integers (order-preserving for finite floats; NaN or inf give
// >= 0x7F800000 and so a NaN scale).
// Bindings: 0 params (uniform) {M, K, nbK, groups = M·nbK}
//           1 x (the loader's)
//           2 scales: array<u32> (f32 bit patterns) [M·nbK]
//           3 q: array<u32> [M·K/4]
// Overrides: FP8_FORMAT (codec.wgsl), UE8M0, WG, LANES (a power of two dividing 128/UNIT and WG; at most
//            the subgroup size with amax_subgroup.wgsl).
// Dispatch: ceil(groups / (WG/LANES)) workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { M: u32, K: u32, nbK: u32, groups: u32 }

override WG: u32 = 256u;
override LANES: u32 = 16u;
override UE8M0: bool = false;
const MAX_UNITS: u32 = 32u; // units a lane holds at most (128 / UNIT / LANES)

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read_write> scales: array<u32>;
@group(0) @binding(3) var<storage, read_write> q: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = (wg.x + wg.y * nwg.x) * (WG / LANES) + lid / LANES;
  let lane = lid % LANES;
  let units = 128u / UNIT / LANES;
  // invocations past the last group still take part in group_amax (amax 0) and write nothing
  let valid = g < params.groups;
  var width = 0u; // columns of this group's block (a multiple of 4)
  var base = 0u;  // element index of the block's first element
  if (valid) {
    let row = g / params.nbK;
    let c0 = (g - row * params.nbK) * 128u;
    width = min(128u, params.K - c0);
    base = row * params.K + c0;
  }
  var v: array<XUnit, MAX_UNITS>;
  var amax = 0u;
  for (var j = 0u; j < units; j = j + 1u) {
    let c = (j * LANES + lane) * UNIT;
    if (c < width) { v[j] = load_unit(base + c); }
  }
  for (var j = 0u; j < units; j = j + 1u) { amax = max(amax, unit_amax(v[j])); } // unloaded units are 0
  amax = group_amax(amax, lid);
  if (!valid) { return; }
  let sb = fp8_scale_from_amax_bits(amax, UE8M0);
  if (lane == 0u) { scales[g] = sb; }
  for (var j = 0u; j < units; j = j + 1u) {
    let c = (j * LANES + lane) * UNIT;
    if (c < width) { store_unit(base + c, v[j], sb); }
  }
}
