// fp8/amax_workgroup.wgsl — the group amax of the single-pass quantize kernels in workgroup memory,
// for devices without the 'subgroups' feature (amax_subgroup.wgsl is the faster variant).
// group_amax(a, lid): the max of `a` over the LANES invocations that share lid / LANES (the kernel
// declares LANES and WG; LANES divides WG): a workgroup atomicMax per group between two barriers.
// Every invocation of the workgroup calls it, from uniform control flow.
// No bindings, no entry point.

var<workgroup> amax_slots: array<atomic<u32>, WG / LANES>;

fn group_amax(a: u32, lid: u32) -> u32 {
  if (lid < WG / LANES) { atomicStore(&amax_slots[lid], 0u); }
  workgroupBarrier();
  atomicMax(&amax_slots[lid / LANES], a);
  workgroupBarrier();
  return atomicLoad(&amax_slots[lid / LANES]);
}
