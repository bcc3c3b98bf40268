# Peers for gemm_check's timings, in the same run: torch._scaled_mm (cuBLASLt FP8, row-wise scales:
# scale_a [M,1], scale_b [1,N], bf16 out) and bf16 torch.matmul at the same shapes (grouped shapes:
# one dense product of the same M_sum x N x K, an upper bound for a grouped peer). CUDA events,
# warm-up, median, rotating input sets. Prints one table joined with gemm_check's CSV.
import csv, sys, statistics
import torch

def bench(fn, sets, ms_target=300):
    for i in range(3):
        fn(*sets[i % len(sets)])
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    def once(i):
        e0.record(); fn(*sets[i % len(sets)]); e1.record(); e1.synchronize()
        return e0.elapsed_time(e1)
    warm = once(0)
    reps = max(5, min(100, int(ms_target / max(warm, 1e-3))))
    return statistics.median(once(i) for i in range(reps))

def peers(M, N, K):
    nsets = max(1, min(8, (200 << 20) // (M * K + N * K) + 1))
    f8 = []
    for _ in range(nsets):
        a = torch.randn(M, K, device='cuda').to(torch.float8_e4m3fn)
        b = torch.randn(N, K, device='cuda').to(torch.float8_e4m3fn)
        sa = torch.rand(M, 1, device='cuda') + 0.5
        sb = torch.rand(1, N, device='cuda') + 0.5
        f8.append((a, b.t(), sa, sb))
    t_f8 = bench(lambda a, bt, sa, sb: torch._scaled_mm(a, bt, scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16), f8)
    del f8
    nsets = max(1, min(8, (200 << 20) // (2 * (M * K + N * K)) + 1))
    bf = [(torch.randn(M, K, device='cuda', dtype=torch.bfloat16), torch.randn(N, K, device='cuda', dtype=torch.bfloat16).t()) for _ in range(nsets)]
    t_bf = bench(torch.matmul, bf)
    del bf
    torch.cuda.empty_cache()
    return t_f8, t_bf

rows = list(csv.DictReader(open(sys.argv[1])))
print(f"{'shape':<10}{'M':>7}{'N':>7}{'K':>7}{'G':>3} | {'ours TF/s':>10} {'_scaled_mm':>10} {'bf16 mm':>9} | {'ours/scaled':>11}")
for r in rows:
    M, N, K, G = int(r['M']), int(r['N']), int(r['K']), int(r['G'])
    t_f8, t_bf = peers(M, N, K)
    fl = 2 * M * N * K / 1e9
    ours = float(r['tflops']); f8 = fl / t_f8; bf = fl / t_bf
    print(f"{r['label']:<10}{M:>7}{N:>7}{K:>7}{G:>3} | {ours:>10.1f} {f8:>10.1f} {bf:>9.1f} | {ours / f8:>11.2f}", flush=True)
