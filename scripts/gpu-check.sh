#!/usr/bin/env bash
# On the GPU machine (no Node, no registry): unpack what ../shared/device/pack.sh packed, then run the
# whole test suite with the cuda and webgpu backends required, `hotpaths info`, and the benchmarks on
# cuda (PyTorch peer), webgpu and cpu. Logs go to $OUT (or ./gpu-out).
# Usage: [FAMILIES="fp8 gemm logprob"] [SKIP_TESTS=1] bash scripts/gpu-check.sh [backends…]
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
# unpack once per machine (a second call on a warm machine reuses it)
if [[ -x /opt/node/bin/node && -d node_modules/vitest ]]; then export PATH=/opt/node/bin:$PATH; [[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; else source .device/setup.sh >/dev/null; fi
export PYTHONUNBUFFERED=1 HOTPATHS_CACHE=$OUT/cache
fams=${FAMILIES:-fp8 gemm logprob}
backends=${*:-cuda webgpu cpu}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
echo "== info";  node dist/src/cli.js info 2>&1 | tee "$OUT/info.txt"
[[ ${SKIP_TESTS:-} ]] || { echo "== tests"; HOTPATHS_REQUIRE=cpu,webgpu,cuda node node_modules/vitest/vitest.mjs run --testTimeout=600000 --hookTimeout=600000 2>&1 | tee "$OUT/tests.txt" | grep -v "^\s*$" | tail -25; }
for b in $backends; do
  echo "== bench $b"
  node dist/src/cli.js bench $fams --backend $b --json >"$OUT/bench_$b.jsonl" 2>"$OUT/bench_$b.err" || tail -5 "$OUT/bench_$b.err"
  node -e 'const l=require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").filter(Boolean).map(JSON.parse);for(const m of l)console.log([m.family,m.op,m.shape,m.ms.toFixed(4)+"ms",m.tflops!==undefined?m.tflops.toFixed(1)+"TF/s":(m.gbps??0).toFixed(0)+"GB/s",((m.ceiling_fraction??0)*100).toFixed(0)+"%",m.peer??"",m.peer_ms?.toFixed(4)??"",m.peer_ms?(m.peer_ms/m.ms).toFixed(2)+"x":"",m.peer_alt_ms?"alt "+(m.peer_alt_ms/m.ms).toFixed(2)+"x":"",m.peak_extra_bytes!==undefined?"peak "+(m.peak_extra_bytes/2**20).toFixed(0)+"MiB "+(100*m.peak_fraction_of_logits).toFixed(1)+"% scratch "+(100*m.peak_scratch_fraction_of_logits).toFixed(1)+"%":""].join(" "))' "$OUT/bench_$b.jsonl"
done
cat "$OUT"/cache/ceilings.json 2>/dev/null
