#!/usr/bin/env python3
"""PyTorch peers for `hotpaths bench gemm --backend cuda`, on the same GPU in the same run:
torch._scaled_mm (cuBLASLt FP8, row-wise scales: scale_a [M,1], scale_b [1,N], bf16 out) and bf16
torch.matmul at the same shapes; a grouped case runs one call per group (what a PyTorch user writes).
A 'matmul bf16' case (bf16 x·Wᵀ) gets the bf16 torch.matmul alone. Also the tensor-core ceilings:
_scaled_mm and bf16 torch.matmul at 8192^3. Reads the cases (op, M, N, K, G, key) as JSON on stdin,
prints {"byKey": {key: {"scaled_mm_ms"?, "bf16_ms"}}, "ceilingTflops", "bf16CeilingTflops"} on stdout.
Timing: CUDA events around 5 launches, median of 10, after a warm-up."""
import json
import sys

import torch
from timing import time_ms

FP8 = torch.float8_e4m3fn


def operands(m, n, k, g):
    # random normal values, cast to e4m3 with unit row scales: the kernel's work does not depend on them
    a = [torch.randn(m, k, device="cuda").to(FP8) for _ in range(g)]
    b = [torch.randn(n, k, device="cuda").to(FP8) for _ in range(g)]
    sa = torch.ones(m, 1, device="cuda", dtype=torch.float32)
    sb = torch.ones(1, n, device="cuda", dtype=torch.float32)
    return a, b, sa, sb


def scaled_mm_ms(m, n, k, g):
    a, b, sa, sb = operands(m, n, k, g)

    def run():
        for i in range(g):
            torch._scaled_mm(a[i], b[i].t(), scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16)

    return time_ms(run, inner=5)


def bf16_ms(m, n, k, g):
    a = [torch.randn(m, k, device="cuda", dtype=torch.bfloat16) for _ in range(g)]
    b = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for _ in range(g)]

    def run():
        for i in range(g):
            torch.matmul(a[i], b[i].t())

    return time_ms(run, inner=5)


def main():
    cases = json.load(sys.stdin)
    out = {}
    for c in cases:
        m, n, k, g = c["M"], c["N"], c["K"], c["G"]
        if c["op"] == "matmul bf16":
            out[c["key"]] = {"bf16_ms": bf16_ms(m, n, k, g)}
        else:
            out[c["key"]] = {"scaled_mm_ms": scaled_mm_ms(m, n, k, g), "bf16_ms": bf16_ms(m, n, k, g)}
        torch.cuda.empty_cache()
    ceiling_ms = scaled_mm_ms(8192, 8192, 8192, 1)
    bf16_ceiling_ms = bf16_ms(8192, 8192, 8192, 1)
    json.dump({"byKey": out, "ceilingTflops": 2 * 8192**3 / (ceiling_ms * 1e9), "bf16CeilingTflops": 2 * 8192**3 / (bf16_ceiling_ms * 1e9)},
              sys.stdout)


if __name__ == "__main__":
    main()
