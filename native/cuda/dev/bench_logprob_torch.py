# PyTorch eager peer for the fused token-level GRPO kernel, in the same run as logprob_check:
# log_softmax + gather + the TRL-style clipped loss with k3 KL + autograd backward, from bf16 logits
# [N, V] (V = 151,936), at N = 32768 and smaller N where the larger ones run out of memory. Two
# variants: logits upcast to f32 first (TRL / verl's usual path) and log_softmax in bf16.
#   python3 bench_logprob_torch.py logprob_cuda.csv
import csv
import sys

import torch

V = 151936
EPS_LOW, EPS_HIGH, BETA, TEMP = 0.2, 0.28, 0.04, 1.0


def step(logits, y, old, ref, adv, mask, upcast):
    logits.grad = None
    x = logits.float() if upcast else logits
    lp = torch.log_softmax(x / TEMP, dim=-1).gather(-1, y[:, None]).squeeze(-1).float()
    ratio = torch.exp(lp - old)
    pg = -torch.min(ratio * adv, torch.clamp(ratio, 1 - EPS_LOW, 1 + EPS_HIGH) * adv)
    d = ref - lp
    per_tok = pg + BETA * (torch.exp(d) - d - 1)
    loss = (per_tok * mask).sum() / mask.sum()
    loss.backward()
    return loss


def time_ms(fn, reps=5):
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]


def peer(N, upcast):
    g = torch.Generator(device='cuda').manual_seed(N)
    logits = (torch.rand(N, V, device='cuda', generator=g) * 16 - 8).to(torch.bfloat16).requires_grad_(True)
    y = torch.randint(0, V, (N,), device='cuda', generator=g)
    with torch.no_grad():
        lp0 = torch.log_softmax(logits.float(), -1).gather(-1, y[:, None]).squeeze(-1) if N <= 8192 else torch.zeros(N, device='cuda')
    old, ref = lp0.clone(), lp0.clone()
    adv = torch.randn(N, device='cuda', generator=g)
    mask = torch.ones(N, device='cuda')
    try:
        return time_ms(lambda: step(logits, y, old, ref, adv, mask, upcast))
    finally:
        del logits
        torch.cuda.empty_cache()


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
