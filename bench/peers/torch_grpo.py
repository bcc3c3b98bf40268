#!/usr/bin/env python3
"""PyTorch eager peer for `hotpaths bench grpo --backend cuda`, on the same GPU in the same run: the
GRPO loss forward+backward from bf16 logits [N, V] as a PyTorch user writes it (TRL style):
log_softmax + gather, ratio, the clipped surrogate (eps 0.2 / 0.28), beta = 0.04 times the k3 KL, the
masked mean, and autograd back to the logits. Two variants: logits upcast to f32 first (what TRL and
verl do) and log_softmax in bf16. Reads the cases [{N, V, key}] as JSON on stdin, prints
{key: {"eager_f32_ms", "eager_bf16_ms"}} (null where it ran out of memory).
Timing: bench/peers/timing.py (CUDA events around one call, median of 5, after its warm-ups)."""
import json
import sys

import torch
from timing import time_ms

EPS_LOW, EPS_HIGH, BETA = 0.2, 0.28, 0.04


def step(logits, y, old, ref, adv, mask, upcast):
    logits.grad = None
    x = logits.float() if upcast else logits
    lp = torch.log_softmax(x, dim=-1).gather(-1, y[:, None]).squeeze(-1).float()
    ratio = torch.exp(lp - old)
    pg = -torch.min(ratio * adv, torch.clamp(ratio, 1 - EPS_LOW, 1 + EPS_HIGH) * adv)
    d = ref - lp
    per_tok = pg + BETA * (torch.exp(d) - d - 1)
    loss = (per_tok * mask).sum() / mask.sum()
    loss.backward()


def peer(n, v, upcast):
    logits = None
    try:
        g = torch.Generator(device="cuda").manual_seed(n)
        logits = (torch.rand(n, v, device="cuda", generator=g) * 16 - 8).to(torch.bfloat16).requires_grad_(True)
        y = torch.randint(0, v, (n,), device="cuda", generator=g)
        old = torch.full((n,), -12.0, device="cuda")
        ref = old + 0.05
        adv = torch.randn(n, device="cuda", generator=g)
        mask = torch.ones(n, device="cuda")
        return time_ms(lambda: step(logits, y, old, ref, adv, mask, upcast), inner=1, reps=5)
    except torch.OutOfMemoryError:
        return None
    finally:
        del logits
        torch.cuda.empty_cache()


def main():
    out = {}
    for c in json.load(sys.stdin):
        out[c["key"]] = {"eager_f32_ms": peer(c["N"], c["V"], True), "eager_bf16_ms": peer(c["N"], c["V"], False)}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
