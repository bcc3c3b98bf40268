#!/bin/bash
# Builds and runs the check of the pack's division against __fdiv_rn (native/cuda/dev/quotient_check.cu).
#   native/cuda/dev/quotient_check.sh [outdir]   (from the repo root; needs nvcc and a GPU of sm_90)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-.}
if [ ! -x "$here/quotient_check" ] || [ "$here/quotient_check.cu" -nt "$here/quotient_check" ] || [ "$here/../moe_dispatch.cuh" -nt "$here/quotient_check" ]; then
  nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=sm_90 -I "$here/../.." -o "$here/quotient_check" "$here/quotient_check.cu"
fi
"$here/quotient_check" | tee "$out/quotient_check.log"
