// moe/align_scan.wgsl — pass 2 of align, one workgroup per expert e:
// hist: u32 [nChunks, E] (pair counts) -> column e rewritten as each chunk's first rank within expert
// e (the exclusive prefix over chunks, in chunk order); segs[E + 1 + e] = kept = min(total, capacity)
// (total when capacity is 0), segs[e] = kept rounded up to blockSize (align_offsets.wgsl turns these
// into offsets); counts: i32 [E] = kept; info[1] += total − kept (dropped; integer atomics, so the
// total does not depend on the order of the workgroups).
// Invocation lid owns the chunks [lid·per, (lid+1)·per), per = ceil(nChunks / WG): its sum, then an
// exclusive scan of the WG sums by invocation 0, then its chunks' prefixes.
// Bindings: 0 params (uniform) {E, nChunks, blockSize, capacity}
//           1 hist: array<u32>   2 segs: array<u32> [2E + 1]   3 counts: array<i32>
//           4 info: array<atomic<i32>> [4]
// Overrides: WG (≤ 256). Dispatch: E workgroups, folded into x + y·num_workgroups.x.

struct Params { E: u32, nChunks: u32, blockSize: u32, capacity: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> hist: array<u32>;
@group(0) @binding(2) var<storage, read_write> segs: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<i32>;
@group(0) @binding(4) var<storage, read_write> info: array<atomic<i32>>;

var<workgroup> part: array<u32, 256>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = wg.x + wg.y * nwg.x;
  let E = params.E;
  if (e >= E) { return; } // uniform per workgroup
  let n = params.nChunks;
  let per = (n + WG - 1u) / WG;
  let c0 = min(lid * per, n);
  let c1 = min(c0 + per, n);
  var sum = 0u;
  for (var c = c0; c < c1; c = c + 1u) { sum = sum + hist[c * E + e]; }
  part[lid] = sum;
  workgroupBarrier();
  if (lid == 0u) {
    var run = 0u;
    for (var i = 0u; i < WG; i = i + 1u) {
      let v = part[i];
      part[i] = run;
      run = run + v;
    }
    var kept = run;
    if (params.capacity > 0u) { kept = min(run, params.capacity); }
    segs[E + 1u + e] = kept;
    segs[e] = (kept + params.blockSize - 1u) / params.blockSize * params.blockSize;
    counts[e] = i32(kept);
    if (run > kept) { atomicAdd(&info[1], i32(run - kept)); }
  }
  workgroupBarrier();
  var run = part[lid];
  for (var c = c0; c < c1; c = c + 1u) {
    let h = hist[c * E + e];
    hist[c * E + e] = run;
    run = run + h;
  }
}
