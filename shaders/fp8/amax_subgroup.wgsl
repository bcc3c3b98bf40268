// fp8/amax_subgroup.wgsl — the group amax of the single-pass quantize kernels with subgroup operations,
// for devices with the 'subgroups' feature. It holds the `enable` directive, so it comes first in the
// module (before codec.wgsl); amax_workgroup.wgsl is the same function without subgroups.
// group_amax(a, lid): the max of `a` over the LANES invocations that share lid / LANES (the kernel
// declares LANES and WG). Every invocation of the workgroup calls it, from uniform control flow.
//   LANES < WG: a group's lanes lie in one subgroup (the launcher keeps LANES <= the device's smallest
//     subgroup size; subgroups are runs of consecutive invocation indices): an xor butterfly, no
//     barrier, no workgroup memory.
//   LANES == WG (one group per workgroup): subgroupMax, then one atomicMax per subgroup into workgroup
//     memory between two barriers.
// No bindings, no entry point.

enable subgroups;

var<workgroup> amax_wg: atomic<u32>;

fn group_amax(a: u32, lid: u32) -> u32 {
  var m = a;
  if (LANES < WG) {
    for (var s = 1u; s < LANES; s = s << 1u) { m = max(m, subgroupShuffleXor(m, s)); }
    return m;
  }
  if (lid == 0u) { atomicStore(&amax_wg, 0u); }
  m = subgroupMax(m);
  workgroupBarrier();
  if (subgroupElect()) { atomicMax(&amax_wg, m); }
  workgroupBarrier();
  return atomicLoad(&amax_wg);
}
