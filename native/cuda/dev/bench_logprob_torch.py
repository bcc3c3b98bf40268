# PyTorch eager peer for the fused token-level GRPO kernel, in the same run as logprob_check:
# log_softmax + gather + the TRL-style clipped loss with k3 KL + autograd backward, from bf16 logits
# [N, V] (V = 151,936), at N = 32768 and smaller N where the larger ones run out of memory. Two
# variants: logits upcast to f32 first (TRL / verl's usual path) and log_softmax in bf16.
#   python3 bench_logprob_torch.py logprob_cuda.csv
import csv
import os
import sys

import torch

V = 151936

# the peer itself (the step, the timing, OOM handling) is bench/peers/torch_grpo.py's, shared with
# `hotpaths bench grpo`
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'bench', 'peers'))
from torch_grpo import peer as grpo_peer  # noqa: E402


def peer(N, upcast):
    t = grpo_peer(N, V, upcast)
    if t is None:
        raise torch.OutOfMemoryError()
    return t


def main():
    ours = {}
    copy = None
    with open(sys.argv[1]) as f:
        for r in csv.DictReader(f):
            if r['kernel'] == 'copy':
                copy = float(r['GBps'])
            if r['kernel'].startswith('fused bf16 -> bf16 (C=auto)'):
                ours[int(r['N'])] = float(r['ms'])
    print(f'device: {torch.cuda.get_device_name()}, torch {torch.__version__}; copy ceiling (harness, same run) {copy:.1f} GB/s')
    print(f'{"N":>6} {"V":>7} | {"ours fused ms":>13} {"% of floor":>10} | {"eager f32 ms":>12} {"x":>6} | {"eager bf16 ms":>13} {"x":>6}')
    for N in sorted(ours, reverse=True):
        floor_ms = 4.0 * N * V / (copy * 1e6)  # bf16 logits read once + bf16 dlogits written once
        res = {}
        for upcast in (True, False):
            try:
                res[upcast] = peer(N, upcast)
            except torch.OutOfMemoryError:
                res[upcast] = None
                torch.cuda.empty_cache()
        cells = []
        for upcast in (True, False):
            t = res[upcast]
            cells.append(f'{"OOM":>12} {"-":>6}' if t is None else f'{t:12.2f} {t / ours[N]:6.1f}')
        print(f'{N:6d} {V:7d} | {ours[N]:13.3f} {100 * floor_ms / ours[N]:9.1f}% | {cells[0]} | {cells[1].rjust(20)}')


if __name__ == '__main__':
    main()
