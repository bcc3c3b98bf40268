#!/bin/bash
# Builds and runs the scatter's harness (native/cuda/dev/scatter_check.cu).
#   native/cuda/dev/scatter_check.sh [outdir]   (from the repo root; needs nvcc and a GPU of sm_90)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-.}
nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=sm_90 -I "$here/../.." -o "$out/scatter_check" "$here/scatter_check.cu"
"$out/scatter_check" | tee "$out/scatter_check.log"
