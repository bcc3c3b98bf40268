#!/usr/bin/env bash
# On a GPU machine of 2 (or 4) GPUs, from an unpacked tree with node_modules, a CUDA build/ and dist/:
# the moe tests that need CUDA and NCCL, then the dispatch/combine stages (bench/moe-nccl-parts.mjs),
# bench (bench/moe-nccl.mjs) and the torch all_to_all_single peer of the same bytes, in one go. Logs and JSON go to $OUT (or ./out).
# The bench lines: "dispatch fp8" (counts first), "dispatch fp8 fixed slots (M = …)", "dispatch fp8
# symmetric windows (M = …)" (NCCL's device API, where the addon was built with nccl_device.h),
# "dispatch fp8 fresh routing" (counts first | fixed slots | windows, new indices every iteration),
# "combine bf16" (and its fixed-slot and windows rows), each with its ratio to the raw a2a of the same
# bytes; "aggregate over N ranks: …" the same rows. The tests also run dispatch-check with the
# windows when the group has them (HOTPATHS_REQUIRE=nccl-windows makes their absence fail). With
# "bench", also the windows dispatch's timeline (bench/moe-nccl-trace.mjs, HOTPATHS_EP_TRACE=1) and
# the NVLink store/load rates between the GPUs (native/cuda/dev/nvlink_check.sh, needs nvcc).
#   scripts/moe-ep-gpu.sh [nproc] [tests|bench|all]
set -u
n=${1:-2}
what=${2:-all}
out=${OUT:-out}
mkdir -p "$out"
# NVLink multicast stays off (the machine's GPUs are shared)
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | tee "$out/device.txt"
nvidia-smi topo -m 2>&1 | head -6 | tee -a "$out/device.txt"
if [[ $what != bench ]]; then
  HOTPATHS_REQUIRE=cuda,nccl timeout 200 node node_modules/vitest/vitest.mjs run tests/moe-cuda.test.ts tests/moe-nccl.test.ts ${MOE_EP_MORE_TESTS:-} >"$out/tests.log" 2>&1
  echo "tests exit $?"
  grep -E "Test Files|Tests |FAIL|×" "$out/tests.log" | head -20
fi
if [[ $what != tests ]]; then
  rm -rf /tmp/moe-counts
  timeout 90 node dist/src/cli.js launch --nproc "$n" bench/moe-nccl-parts.mjs >"$out/parts.log" 2>&1
  echo "parts exit $?"
  grep -E "stages" "$out/parts.log" | cut -c1-1500
  HOTPATHS_EP_TRACE=1 timeout 60 node dist/src/cli.js launch --nproc "$n" bench/moe-nccl-trace.mjs --calls 40 --chunks 2 >"$out/trace.log" 2>&1
  echo "trace exit $?"
  grep -E "rank 0: moe.dispatch" "$out/trace.log" | tail -2 | cut -c1-1400
  timeout 90 bash native/cuda/dev/nvlink_check.sh "$out" >/dev/null 2>&1
  echo "nvlink_check exit $?"
  cat "$out/nvlink_check.log" 2>/dev/null
  timeout 240 node dist/src/cli.js launch --nproc "$n" bench/moe-nccl.mjs --chunks "${MOE_EP_CHUNKS:-1,2,3,4}" --save-counts /tmp/moe-counts --json "$out/bench" >"$out/bench.log" 2>&1
  echo "bench exit $?"
  timeout 90 torchrun --nproc_per_node "$n" bench/peers/torch_alltoall.py /tmp/moe-counts >"$out/torch.log" 2>&1
  echo "torch exit $?"
  grep -E "aggregate|dispatch fp8|combine bf16|breakdown|torch" "$out/bench.log" "$out/torch.log" | cut -c1-900
fi
