#!/usr/bin/env python3
"""PyTorch eager peer for `hotpaths bench grpo --backend cuda`, on the same GPU in the same run: the
GRPO loss forward+backward from bf16 logits [N, V] as a PyTorch user writes it (TRL style):
log_softmax + gather, ratio, the clipped surrogate (eps 0.2 / 0.28), beta = 0.04 times the k3 KL, the
masked mean, and autograd back to the logits. Two variants: logits upcast to f32 first (what TRL and
verl do) and log_softmax in bf16. Where the f32 variant runs out of memory on the whole batch (the
H100's 80 GB at 16 x 2048 x 151,936) it runs as 2, then 4 micro-batches of rows, each its own leaf
tensor and backward (gradient accumulation, what a PyTorch user does there), timed together. Reads
the cases [{N, V, key}] as JSON on stdin, prints {key: {"eager_f32_ms", "eager_f32_microbatches",
"eager_bf16_ms"}} (null where it ran out of memory).
Timing: bench/peers/timing.py (CUDA events around one call, median of 5, after its warm-ups)."""
import json
import sys

import torch
from timing import time_ms

EPS_LOW, EPS_HIGH, BETA = 0.2, 0.28, 0.04


def step(logits, y, old, ref, adv, mask, upcast, scale=1.0):
    logits.grad = None
    x = logits.float() if upcast else logits
    lp = torch.log_softmax(x, dim=-1).gather(-1, y[:, None]).squeeze(-1).float()
    ratio = torch.exp(lp - old)
    pg = -torch.min(ratio * adv, torch.clamp(ratio, 1 - EPS_LOW, 1 + EPS_HIGH) * adv)
    d = ref - lp
    per_tok = pg + BETA * (torch.exp(d) - d - 1)
    loss = (per_tok * mask).sum() / mask.sum() * scale
    loss.backward()


def peer(n, v, upcast, parts=1):
    """ms of forward+backward over n rows as `parts` micro-batches (None: out of memory)."""
    leaves = []
    try:
        g = torch.Generator(device="cuda").manual_seed(n)
        rows = [n // parts + (1 if i < n % parts else 0) for i in range(parts)]
        batches = []
        for r in rows:
            logits = (torch.rand(r, v, device="cuda", generator=g) * 16 - 8).to(torch.bfloat16).requires_grad_(True)
            leaves.append(logits)
            y = torch.randint(0, v, (r,), device="cuda", generator=g)
            old = torch.full((r,), -12.0, device="cuda")
            adv = torch.randn(r, device="cuda", generator=g)
            batches.append((logits, y, old, old + 0.05, adv, torch.ones(r, device="cuda")))

        def run():
            for b in batches:
                step(*b, upcast, 1.0 / parts)

        return time_ms(run, inner=1, reps=5)
    except torch.OutOfMemoryError:
        return None
    finally:
        del leaves
        torch.cuda.empty_cache()


def peer_fitting(n, v, upcast):
    """(ms, micro-batches): the whole batch, else the fewest micro-batches (2, 4) that fit."""
    for parts in (1, 2, 4):
        ms = peer(n, v, upcast, parts)
        if ms is not None:
            return ms, parts
    return None, None


def main():
    out = {}
    for c in json.load(sys.stdin):
        f32_ms, f32_parts = peer_fitting(c["N"], c["V"], True)
        out[c["key"]] = {"eager_f32_ms": f32_ms, "eager_f32_microbatches": f32_parts, "eager_bf16_ms": peer(c["N"], c["V"], False)}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
