// fp8/quantize_scales.wgsl — pass 1 of the two-pass quantize (codec.wgsl prepended):
// x: f32 | bf16 [M, K] -> scales: f32 [nbM, nbK], nbM = ceil(M / BLOCK_ROWS), nbK = ceil(K / 128).
// GROUP invocations per scale block (bm, bk), WG / GROUP blocks per workgroup (1×128 blocks: 32
// invocations, 4 elements each; 128×128 blocks: the whole workgroup). amax over the block's existing
// elements (ragged edges count only what exists), taken on |x| bit patterns as integers
// (order-preserving for finite floats; any NaN or inf gives amax >= 0x7F800000, so a NaN scale),
// reduced with a workgroup atomicMax per block.
// Bindings: 0 params (uniform) {M, K, nbM, nbK}
//           1 x: array<u32> — f32 bit patterns [M·K], or bf16 packed two to a word [ceil(M·K/2)]
//           2 scales: array<u32> (f32 bit patterns) [nbM·nbK]
// Overrides: FP8_FORMAT (codec.wgsl), BLOCK_ROWS (1 or 128), INPUT_BF16, UE8M0, WG,
//            GROUP (divides WG; a multiple of 128 when BLOCK_ROWS > 1).
// Dispatch: ceil(nbM·nbK / (WG/GROUP)) workgroups, folded into x + y·num_workgroups.x past 65535.

struct Params { M: u32, K: u32, nbM: u32, nbK: u32 }

override WG: u32 = 256u;
override GROUP: u32 = 32u;
override BLOCK_ROWS: u32 = 1u;
override INPUT_BF16: bool = false;
override UE8M0: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> scales: array<u32>;

var<workgroup> block_amax: array<atomic<u32>, WG / GROUP>;

// f32 bit pattern of element i (bf16 widened exactly).
fn load_x_bits(i: u32) -> u32 {
  if (INPUT_BF16) { return ((x[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu) << 16u; }
  return x[i];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let slot = lid / GROUP;
  let lane = lid - slot * GROUP;
  let block = (wg.x + wg.y * nwg.x) * (WG / GROUP) + slot;
  if (lid < WG / GROUP) { atomicStore(&block_amax[lid], 0u); }
  workgroupBarrier();
  // invocations past the last block still reach the barrier
  let valid = block < params.nbM * params.nbK;
  var amax = 0u;
  if (valid) {
    let bm = block / params.nbK;
    let bk = block - bm * params.nbK;
    let r0 = bm * BLOCK_ROWS;
    let c0 = bk * 128u;
    let width = min(128u, params.K - c0);
    let rows = min(BLOCK_ROWS, params.M - r0);
    let base = r0 * params.K + c0;
    if (BLOCK_ROWS == 1u) {
      for (var c = lane; c < width; c = c + GROUP) { amax = max(amax, load_x_bits(base + c) & 0x7fffffffu); }
    } else {
      // GROUP is a multiple of 128: lane owns column lane % 128 of every (GROUP/128)-th row
      let c = lane % 128u;
      if (c < width) {
        for (var r = lane / 128u; r < rows; r = r + GROUP / 128u) {
          amax = max(amax, load_x_bits(base + r * params.K + c) & 0x7fffffffu);
        }
      }
    }
  }
  atomicMax(&block_amax[slot], amax);
  workgroupBarrier();
  if (valid && lane == 0u) { scales[block] = fp8_scale_from_amax_bits(atomicLoad(&block_amax[slot]), UE8M0); }
}
