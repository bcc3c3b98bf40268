#!/bin/bash
# Builds and runs the log-prob / GRPO harness on a GPU, then the PyTorch eager peer at the same shapes.
#   native/cuda/dev/logprob_check.sh [outdir] [quick]
# Builds with the addon's arch list (90a-real;90-real;80-virtual) unless a fresh binary is there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
native=$(cd "$here/../.." && pwd)
out=${1:-.}
if [ ! -x "$here/logprob_check" ] || [ "$here/logprob_check.cu" -nt "$here/logprob_check" ]; then
  nvcc -std=c++17 -O3 -I"$native" -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=sm_90 \
    -gencode=arch=compute_80,code=compute_80 -o "$here/logprob_check" "$here/logprob_check.cu"
fi
rc=0
"$here/logprob_check" "$out/logprob_cuda.csv" ${2:-} | tee "$out/logprob_check.log" || rc=$?
if [ "${2:-}" != quick ]; then
  PYTHONUNBUFFERED=1 python3 "$here/bench_logprob_torch.py" "$out/logprob_cuda.csv" | tee "$out/logprob_table.txt"
fi
exit $rc
