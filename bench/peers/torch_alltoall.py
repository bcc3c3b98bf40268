#!/usr/bin/env python3
"""PyTorch peer for bench/moe-nccl.mjs: torch.distributed.all_to_all_single over NCCL with the same
per-peer byte counts as hotpaths' dispatch (FP8 payload) and combine (bf16 payload), which that run
saved with --save-counts DIR. Run right after it, on the same GPUs:
    torchrun --nproc_per_node N bench/peers/torch_alltoall.py DIR [iters] [warmup]
Timing per rank: wall clock around the call with a synchronize before and after (as the hotpaths bench
times its ops), and CUDA events; median of `iters` (100, as the hotpaths bench) after `warmup` (30) calls, each started at one instant
on every rank as the hotpaths bench starts its calls (each rank proposes its clock + 0.3 ms, all take the
latest, by an all_reduce MAX, and spin until it). GB/s = the
bytes this rank receives / its median; aggregate = Σ bytes / the slowest rank's median."""
import json
import os
import sys
import time

import torch
import torch.distributed as dist


def main():
    folder, iters = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100
    warmup = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    local = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local)
    dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    rank, world = dist.get_rank(), dist.get_world_size()
    counts = json.load(open(os.path.join(folder, f"counts-{rank}.json")))
    results = {}
    for name in ("dispatch", "combine"):
        send, recv = counts[name]["send"], counts[name]["recv"]
        inp = torch.randint(0, 255, (sum(send),), dtype=torch.uint8, device="cuda")
        out = torch.empty(sum(recv), dtype=torch.uint8, device="cuda")
        walls, events = [], []
        for i in range(warmup + iters):
            torch.cuda.synchronize()
            start = torch.tensor([time.time_ns() // 1000 + 300], dtype=torch.int64, device="cuda")
            dist.all_reduce(start, op=dist.ReduceOp.MAX)
            until = int(start.item())
            while time.time_ns() // 1000 < until:
                pass
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t0 = time.perf_counter()
            a.record()
            dist.all_to_all_single(out, inp, output_split_sizes=recv, input_split_sizes=send)
            b.record()
            torch.cuda.synchronize()
            t1 = time.perf_counter()
            if i >= warmup:
                walls.append((t1 - t0) * 1e3)
                events.append(a.elapsed_time(b))
        wall, ev = sorted(walls)[len(walls) // 2], sorted(events)[len(events) // 2]
        nbytes = sum(recv)
        results[name] = (wall, ev, nbytes)
        print(f"rank {rank}: torch all_to_all_single, {name} bytes: {nbytes / wall / 1e6:.1f} GB/s wall ({wall:.3f} ms), "
              f"{nbytes / ev / 1e6:.1f} GB/s events", flush=True)
    for name, (wall, ev, nbytes) in results.items():
        t = torch.tensor([wall, float(nbytes)], dtype=torch.float64, device="cuda")
        allv = [torch.zeros_like(t) for _ in range(world)]
        dist.all_gather(allv, t)
        if rank == 0:
            slow = max(float(v[0]) for v in allv)
            total = sum(float(v[1]) for v in allv)
            print(f"aggregate over {world} ranks: torch all_to_all_single, {name} bytes: {total / slow / 1e6:.1f} GB/s", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
