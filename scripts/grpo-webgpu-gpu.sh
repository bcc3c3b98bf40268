#!/usr/bin/env bash
# On the GPU machine (H100, Dawn over NVIDIA's Vulkan driver), from a tree packed by
# ../shared/device/pack.sh after `npx tsc -p tsconfig.json` (dist/) and the addon build: the GRPO loss
# from hidden states on webgpu (issue 5: time ≤ 1.1× the unfused path, peak extra memory ≤ 1/16 of
# the f32 logits).
#   1. tests/grpo.test.ts, tests/gemm.test.ts, tests/logprob.test.ts with webgpu required
#      (fusedTokenLoss, the single pass, matmul with c === out and split K, on the real GPU);
#   2. `hotpaths bench logprob grpo --backend webgpu`: the from-hidden rows — single pass
#      (grpo.fusedLossFromHidden), two passes (fromHidden fwd+bwd, chunked) and unfused — at N = 2048
#      (times, ratio to the unfused path) and N = 16384 (peak memory), H 896, V 151,936; each path
#      runs once untimed first (its first-run time, pipeline compilation included, goes to the log);
#      and grpo.fusedLoss with the fused kernel;
#   3. scripts/webgpu-grpo-hidden.mjs at N = 2048: the three paths end to end three times in turn
#      (medians), then every kernel they issue, alone on the timestamp timer, matmul with automatic K
#      splits and without, and each pipeline's first call on a fresh device.
# Logs and JSON go to $OUT (or ./gpu-out). The three parts' time limits add up to 9.5 minutes (one
# device command may run 10); PARTS picks some of them.
# Usage: [PARTS="tests bench kernels"] [SHAPES="2048,896,151936 …"] bash scripts/grpo-webgpu-gpu.sh
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
if [[ -x /opt/node/bin/node && -d node_modules/vitest ]]; then export PATH=/opt/node/bin:$PATH; [[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; else source .device/setup.sh >/dev/null; fi
export HOTPATHS_CACHE=$OUT/cache
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"

parts=" ${PARTS:-tests bench kernels} "
if [[ $parts == *" tests "* ]]; then
  echo "== tests (webgpu required)"
  HOTPATHS_REQUIRE=webgpu timeout 180 node node_modules/vitest/vitest.mjs run --testTimeout=300000 tests/grpo.test.ts tests/gemm.test.ts tests/logprob.test.ts >"$OUT/tests.txt" 2>&1
  echo "tests exit $?"
  grep -E "Test Files|Tests |FAIL|AssertionError" "$OUT/tests.txt" | head -20
fi

if [[ $parts == *" bench "* ]]; then
  echo "== bench logprob grpo --backend webgpu"
  timeout 240 node dist/src/cli.js bench logprob grpo --backend webgpu --json >"$OUT/bench_webgpu.jsonl" 2>"$OUT/bench_webgpu.err"
  echo "bench exit $?"
  grep -E "first run|peak extra" "$OUT/bench_webgpu.err"
  node -e '
const l = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").filter(Boolean).map(JSON.parse);
for (const m of l) console.log([m.family, m.op, m.shape, m.ms.toFixed(3) + " ms", m.gbps !== undefined ? m.gbps.toFixed(0) + " GB/s" : "",
  m.peer ? `${m.peer} ${m.peer_ms.toFixed(3)} ms (${(m.ms / m.peer_ms).toFixed(2)}x its time)` : "",
  m.peak_extra_bytes !== undefined ? `peak ${(m.peak_extra_bytes / 2 ** 20).toFixed(0)} MiB = ${(100 * m.peak_fraction_of_logits).toFixed(1)}% of the f32 logits (${(100 * m.peak_scratch_fraction_of_logits).toFixed(1)}% beyond the outputs)` : ""].join("  "));
' "$OUT/bench_webgpu.jsonl"
fi

if [[ $parts == *" kernels "* ]]; then
  echo "== the from-hidden paths end to end (medians of 3) and kernel by kernel"
  timeout 150 node scripts/webgpu-grpo-hidden.mjs ${SHAPES:-2048,896,151936} --repeat 3 >"$OUT/hidden_kernels.txt" 2>&1
  echo "kernels exit $?"
  grep -v "^Warning" "$OUT/hidden_kernels.txt"
fi
