#!/usr/bin/env python3
"""PyTorch eager peer for `hotpaths bench fp8 --backend cuda`: the same ops at the same shapes on the
same GPU, written the way a PyTorch user would (DeepGEMM's per-token / per-block cast recipes, with a
clamp so the cast saturates as hotpaths does). Reads the cases as JSON on stdin, prints
{"<op> <shape>": median_ms} on stdout. Timing: CUDA events around 10 launches, median of 10."""
import json
import sys

import torch
from timing import time_ms

FP8 = torch.float8_e4m3fn
MAX = 448.0


def quant_1x128(x):
    m, k = x.shape
    xv = x.view(m, k // 128, 128).float()
    amax = xv.abs().amax(dim=2).clamp(min=1e-4)
    scale = amax / MAX
    q = (xv / scale.unsqueeze(2)).clamp(-MAX, MAX).to(FP8)
    return q.view(m, k), scale


def quant_128x128(x):
    m, k = x.shape
    xv = x.view(m // 128, 128, k // 128, 128).float()
    amax = xv.abs().amax(dim=(1, 3)).clamp(min=1e-4)
    scale = amax / MAX
    q = (xv / scale[:, None, :, None]).clamp(-MAX, MAX).to(FP8)
    return q.view(m, k), scale


def dequant_1x128(q, scale):
    m, k = q.shape
    return (q.view(m, k // 128, 128).float() * scale.unsqueeze(2)).view(m, k)


def main():
    cases = json.load(sys.stdin)
    out = {}
    for c in cases:
        m, k = c["shape"]
        x = torch.sin(torch.arange(m * k, device="cuda", dtype=torch.float32) * 0.618).view(m, k) * 3
        if c["dtype"] == "bf16":
            x = x.to(torch.bfloat16)
        q, s = quant_1x128(x) if c["block"][0] == 1 else quant_128x128(x)
        fn = {
            "encode": lambda: x.clamp(-MAX, MAX).to(FP8),
            "decode": lambda: q.float(),
            "quantize": (lambda: quant_1x128(x)) if c["block"][0] == 1 else (lambda: quant_128x128(x)),
            "dequantize": lambda: dequant_1x128(q, s),
        }[c["op"]]
        out[c["key"]] = time_ms(fn)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
