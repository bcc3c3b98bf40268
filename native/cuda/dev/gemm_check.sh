#!/bin/bash
# Builds and runs the GEMM harness on an sm_90a GPU, then the torch peers.
#   native/cuda/dev/gemm_check.sh [outdir] [quick | gathered | timeonly | profile]   (gathered: the
#   correctness cases, then the gathered-A timing alone; timeonly: that timing alone; profile: the
#   gathered-A shape's three kernels launched once each, for ncu --kernel-name regex:gemm_fp8_sm90)
# From the repo root (needs nvcc; python3 with PyTorch for the peer table). Builds with the addon's
# arch list (90a-real;90-real;80-virtual) so that the run shows which cubin the driver picks.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
native=$(cd "$here/../.." && pwd)
out=${1:-.}
# rebuild when the harness or any header it includes (native/cuda, native/common) is newer than the binary
if [ ! -x "$here/gemm_check" ] || [ -n "$(find "$here/gemm_check.cu" "$native/cuda" "$native/common" -newer "$here/gemm_check" \( -name '*.cu' -o -name '*.cuh' -o -name '*.h' \) -print -quit)" ]; then
  nvcc -std=c++17 -O3 -I"$native" -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=sm_90 \
    -gencode=arch=compute_80,code=compute_80 -o "$here/gemm_check" "$here/gemm_check.cu"
fi
"$here/gemm_check" "$out/gemm_cuda.csv" ${2:-} | tee "$out/gemm_check.log"
if [ -z "${2:-}" ]; then
  PYTHONUNBUFFERED=1 python3 "$here/bench_torch.py" "$out/gemm_cuda.csv" | tee "$out/gemm_table.txt"
fi
