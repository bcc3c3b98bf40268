#!/bin/bash
# Builds and runs the FP8 pack's harness (native/cuda/dev/pack_check.cu).
#   native/cuda/dev/pack_check.sh [outdir]   (from the repo root; needs nvcc and a GPU of sm_90)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-.}
nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=sm_90 -I "$here/../.." -o "$out/pack_check" "$here/pack_check.cu"
"$out/pack_check" | tee "$out/pack_check.log"
