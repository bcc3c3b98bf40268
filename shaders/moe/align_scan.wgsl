// moe/align_scan.wgsl — pass 2 of align, one workgroup:
// hist: u32 [nChunks, E] (pair counts) -> hist rewritten as each chunk's first rank within each
// expert (the exclusive prefix over chunks, in chunk order); segs: u32 [2E + 1] = offsets [E + 1]
// (where each expert's padded segment starts; offsets[E] = P), then kept [E]; counts: i32 [E] =
// kept = min(total, capacity) (total when capacity is 0); info[0] = P, info[1] = dropped pairs.
// Invocation lid owns the experts [lid·per, (lid+1)·per), per = ceil(E / WG), so the exclusive scan of
// the padded sizes is a scan of WG partial sums (invocation 0 walks them in order).
// Bindings: 0 params (uniform) {E, nChunks, blockSize, capacity}
//           1 hist: array<u32>   2 segs: array<u32>   3 counts: array<i32>   4 info: array<i32> [4]
// Overrides: WG (a power of two ≤ 256). Dispatch: 1 workgroup.

struct Params { E: u32, nChunks: u32, blockSize: u32, capacity: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> hist: array<u32>;
@group(0) @binding(2) var<storage, read_write> segs: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<i32>;
@group(0) @binding(4) var<storage, read_write> info: array<i32>;

var<workgroup> part: array<u32, 256>;    // padded rows of each invocation's experts, then their start
var<workgroup> dropped: array<u32, 256>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let E = params.E;
  let bs = params.blockSize;
  let per = (E + WG - 1u) / WG;
  let e0 = min(lid * per, E);
  let e1 = min(e0 + per, E);
  var padded = 0u;
  var drop = 0u;
  for (var e = e0; e < e1; e = e + 1u) {
    var run = 0u;
    for (var c = 0u; c < params.nChunks; c = c + 1u) {
      let h = hist[c * E + e];
      hist[c * E + e] = run;
      run = run + h;
    }
    var kept = run;
    if (params.capacity > 0u) { kept = min(run, params.capacity); }
    drop = drop + (run - kept);
    segs[E + 1u + e] = kept;
    counts[e] = i32(kept);
    padded = padded + (kept + bs - 1u) / bs * bs;
  }
  part[lid] = padded;
  dropped[lid] = drop;
  workgroupBarrier();
  if (lid == 0u) {
    var run = 0u;
    var d = 0u;
    for (var i = 0u; i < WG; i = i + 1u) {
      let p = part[i];
      part[i] = run;
      run = run + p;
      d = d + dropped[i];
    }
    segs[E] = run;
    info[0] = i32(run);
    info[1] = i32(d);
  }
  workgroupBarrier();
  var start = part[lid];
  for (var e = e0; e < e1; e = e + 1u) {
    segs[e] = start;
    let kept = segs[E + 1u + e];
    start = start + (kept + bs - 1u) / bs * bs;
  }
}
