#!/bin/bash
# Builds and runs the bf16 tensor-core matmul harness, then the PyTorch bf16 peer at its main shapes.
#   native/cuda/dev/matmul_check.sh [outdir] [quick]
# From the repo root (needs nvcc, or a matmul_check built beside this script elsewhere; python3 with
# PyTorch for the peer). Built for the addon's targets (90a-real;90-real;80-virtual).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
native=$(cd "$here/../.." && pwd)
out=${1:-.}
if [ ! -x "$here/matmul_check" ] || [ "$here/matmul_check.cu" -nt "$here/matmul_check" ]; then
  nvcc -std=c++17 -O3 -I"$native" -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=sm_90 \
    -gencode=arch=compute_80,code=compute_80 -o "$here/matmul_check" "$here/matmul_check.cu"
fi
"$here/matmul_check" ${2:-} | tee "$out/matmul_check.log"
if [ "${2:-}" != quick ]; then
  # the bench's peer (bf16 torch.matmul, x·Wᵀ, bf16 out) at the main shapes; ms per call, and the bf16 ceiling at 8192³
  echo '[{"op":"matmul bf16","M":4096,"N":4096,"K":4096,"G":1,"key":"NT 4096^3"},
         {"op":"matmul bf16","M":16384,"N":256,"K":7168,"G":1,"key":"gate"},
         {"op":"matmul bf16","M":128,"N":256,"K":7168,"G":1,"key":"NT small-M"}]' |
    python3 "$native/../bench/peers/torch_gemm.py" | tee "$out/matmul_torch.json"
  echo
fi
