#!/usr/bin/env python3
"""PyTorch peer for `hotpaths bench moe --backend cuda`: DeepSeek-V3's router, the dispatch layout and
the block alignment in plain PyTorch on the same GPU, at the same shapes, written the way a PyTorch
user would (the model code's gate, then bincount/sort/cumsum for the layout and the alignment), plus
permute/unpermute as index_select and a gathered weighted sum.

  gate:   logits = x @ Wᵀ (bf16 matmul, f32 accumulation, as the fast path of a bf16 model), then in
          f32: sigmoid, + bias for selection, group score = sum of the group's top-2, keep topk_group
          groups, top-k among their experts (masked to -inf), gather the unbiased scores, normalise
          (+1e-20), times routed_scaling_factor.
  layout: tokens per expert (bincount), token x rank membership (scatter), tokens per rank (sum).
  align:  pair ids stably sorted by expert, each expert's segment padded to the block size (cumsum of
          the padded counts), sentinel T·k, an expert per block (searchsorted), an expert per row, the
          row of each pair; P read back (.item()), as hotpaths' alignBlocks reads it.

Reads the cases (op, T, H, E, nGroup, topkGroup, k, R, bs, rsf, key) as JSON on stdin, prints
{key: median_ms} on stdout. Timing: CUDA events (timing.py), median of 10 batches after a warm-up.
torch.topk does not promise the lower index on ties; with these inputs ties are rare, and the work
is the same either way."""
import json
import math
import sys

import torch
from timing import time_ms


def pattern(n, phase, scale, device="cuda"):
    # the same values as bench/moe.cases.ts moePattern: sin(i*0.618 + phase) * (1 + i % 7) * scale
    i = torch.arange(n, device=device, dtype=torch.float64)
    return (torch.sin(i * 0.618 + phase) * (1 + torch.remainder(i, 7)) * scale).float()


M32 = 0xFFFFFFFF


def _mul32(x, c):
    # (x * c) mod 2^32 for int64 x < 2^32, in pieces that stay below 2^48 (no int64 overflow)
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & M32


def noise(n, seed, scale, device="cuda"):
    # the same values as bench/moe.cases.ts moeNoise: lowbias32 of i + seed*0x9e3779b9 (mod 2^32),
    # ((h + 0.5) / 2^31 - 1) * scale in f64, rounded to f32
    h = (torch.arange(n, device=device, dtype=torch.int64) + ((seed * 0x9E3779B9) & M32)) & M32
    h = _mul32(h ^ (h >> 16), 0x7FEB352D)
    h = _mul32(h ^ (h >> 15), 0x846CA68B)
    h = h ^ (h >> 16)
    return (((h.double() + 0.5) / 2**31 - 1) * scale).float()


def route(logits, bias, c):
    t, e = logits.shape
    scores = logits.sigmoid()
    biased = scores + bias
    group_scores = biased.view(t, c["nGroup"], -1).topk(2, dim=-1)[0].sum(dim=-1)
    group_idx = group_scores.topk(c["topkGroup"], dim=-1, sorted=False)[1]
    group_mask = torch.zeros_like(group_scores).scatter_(1, group_idx, 1)
    score_mask = group_mask.unsqueeze(-1).expand(t, c["nGroup"], e // c["nGroup"]).reshape(t, e)
    masked = biased.masked_fill(~score_mask.bool(), float("-inf"))
    idx = masked.topk(c["k"], dim=-1, sorted=True)[1]
    w = scores.gather(1, idx)
    w = w / (w.sum(dim=-1, keepdim=True) + 1e-20) * c["rsf"]
    return scores, w, idx


def layout(idx, c):
    t = idx.shape[0]
    per_expert = torch.bincount(idx.flatten(), minlength=c["E"])
    rank = idx // (c["E"] // c["R"])
    in_rank = torch.zeros(t, c["R"], dtype=torch.uint8, device=idx.device).scatter_(1, rank, 1)
    per_rank = in_rank.sum(dim=0, dtype=torch.int32)
    return per_rank, per_expert, in_rank


def align(idx, c):
    t, k = idx.shape
    e, bs = c["E"], c["bs"]
    pairs = t * k
    p_max = -(-(pairs + e * (bs - 1)) // bs) * bs
    flat = idx.flatten()
    order = torch.sort(flat, stable=True)[1]  # pair ids grouped by expert, ascending within one
    sorted_e = flat[order]
    counts = torch.bincount(flat, minlength=e)
    padded = (counts + bs - 1) // bs * bs
    start = torch.cumsum(padded, 0) - padded
    cstart = torch.cumsum(counts, 0) - counts
    dest = start[sorted_e] + (torch.arange(pairs, device=idx.device) - cstart[sorted_e])
    sorted_pairs = torch.full((p_max,), pairs, dtype=torch.int32, device=idx.device)
    sorted_pairs[dest] = order.int()
    row_expert = torch.full((p_max,), -1, dtype=torch.int32, device=idx.device)
    row_expert[dest] = sorted_e.int()
    pair_pos = torch.empty(pairs, dtype=torch.int32, device=idx.device)
    pair_pos[order] = dest.int()
    block_end = torch.cumsum(padded // bs, 0)
    block_expert = torch.searchsorted(block_end, torch.arange(p_max // bs, device=idx.device), right=True)
    block_expert = torch.where(block_expert < e, block_expert, -1).int()
    total = int(padded.sum().item())
    return sorted_pairs, block_expert, row_expert, pair_pos.view(t, k), counts, total


def synthetic_indices(c):
    # bench/moe.cases.ts syntheticIndices: expert (131·t + j·E/k) mod E
    t = torch.arange(c["T"], device="cuda").unsqueeze(1)
    j = torch.arange(c["k"], device="cuda").unsqueeze(0)
    return (131 * t + j * (c["E"] // c["k"])) % c["E"]


def case_ms(c):
    op = c["op"]
    bias = pattern(c["E"], 2, 0.002)
    if op == "gate+layout+align":
        # bench/moe.cases.ts gateInputs: logits with a standard deviation of ~1
        x = noise(c["T"] * c["H"], 1, 1).view(c["T"], c["H"]).bfloat16()
        w = noise(c["E"] * c["H"], 2, 3 / math.sqrt(c["H"])).view(c["E"], c["H"]).bfloat16()

        def run():
            logits = (x @ w.t()).float()
            _, _, idx = route(logits, bias, c)
            layout(idx, c)
            align(idx, c)

        return time_ms(run, inner=3)
    if op == "route+layout+align":
        logits = noise(c["T"] * c["E"], 3, 1.75).view(c["T"], c["E"])  # bench/moe.cases.ts routeInputs

        def run():
            _, _, idx = route(logits, bias, c)
            layout(idx, c)
            align(idx, c)

        return time_ms(run, inner=3)
    idx = synthetic_indices(c)
    sorted_pairs, _, _, pair_pos, _, total = align(idx, c)
    sentinel = c["T"] * c["k"]
    if op == "permute":
        x = pattern(c["T"] * c["H"], 0, 1).view(c["T"], c["H"]).bfloat16()
        sp = sorted_pairs[:total].long()

        def run():
            rows = torch.clamp(sp // c["k"], max=c["T"] - 1)
            out = x.index_select(0, rows)
            out.masked_fill_((sp == sentinel).unsqueeze(1), 0)

        return time_ms(run, inner=5)
    assert op == "unpermute", op
    y = pattern(total * c["H"], 3, 1).view(total, c["H"]).bfloat16()
    weights = pattern(c["T"] * c["k"], 4, 0.1).view(c["T"], c["k"])
    pos = pair_pos.long()

    def run():
        g = y[pos]  # [T, k, H]
        (g.float() * weights.unsqueeze(-1)).sum(dim=1).bfloat16()

    return time_ms(run, inner=5)


def main():
    cases = json.load(sys.stdin)
    out = {}
    for c in cases:
        out[c["key"]] = case_ms(c)
        torch.cuda.empty_cache()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
