// moe/align_offsets.wgsl — pass 3 of align, one workgroup: segs[e] (each expert's padded rows, from
// align_scan.wgsl) -> segs[e] = where expert e's segment starts (the exclusive prefix sum),
// segs[E] = P = the padded total, info[0] = P.
// Invocation lid owns the experts [lid·per, (lid+1)·per), per = ceil(E / WG): its sum, an exclusive
// scan of the WG sums by invocation 0, then its experts' offsets.
// Bindings: 0 params (uniform) {E}   1 segs: array<u32> [2E + 1]   2 info: array<i32> [4]
// Overrides: WG (≤ 256). Dispatch: 1 workgroup.

struct Params { E: u32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> segs: array<u32>;
@group(0) @binding(2) var<storage, read_write> info: array<i32>;

var<workgroup> part: array<u32, 256>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let E = params.E;
  let per = (E + WG - 1u) / WG;
  let e0 = min(lid * per, E);
  let e1 = min(e0 + per, E);
  var sum = 0u;
  for (var e = e0; e < e1; e = e + 1u) { sum = sum + segs[e]; }
  part[lid] = sum;
  workgroupBarrier();
  if (lid == 0u) {
    var run = 0u;
    for (var i = 0u; i < WG; i = i + 1u) {
      let v = part[i];
      part[i] = run;
      run = run + v;
    }
    segs[E] = run;
    info[0] = i32(run);
  }
  workgroupBarrier();
  var run = part[lid];
  for (var e = e0; e < e1; e = e + 1u) {
    let padded = segs[e];
    segs[e] = run;
    run = run + padded;
  }
}
