"""CUDA-event timing shared by the PyTorch peers: a warm-up, then the median over `reps` timed
batches of `inner` calls."""
import torch


def time_ms(fn, inner=10, reps=10):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(inner):
            fn()
        b.record()
        b.synchronize()
        samples.append(a.elapsed_time(b) / inner)
    samples.sort()
    return samples[len(samples) // 2]
