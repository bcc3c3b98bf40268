#!/bin/bash
# Builds and runs the NVLink store/load probe (peer access between the GPUs of one host).
#   native/cuda/dev/nvlink_check.sh [outdir] [MB a transfer, default 64]
# From the repo root (needs nvcc, or an nvlink_check built beside this script elsewhere).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-.}
if [ ! -x "$here/nvlink_check" ] || [ "$here/nvlink_check.cu" -nt "$here/nvlink_check" ]; then
  nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=sm_90 -o "$here/nvlink_check" "$here/nvlink_check.cu"
fi
"$here/nvlink_check" ${2:-} | tee "$out/nvlink_check.log"
