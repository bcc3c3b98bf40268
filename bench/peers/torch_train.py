#!/usr/bin/env python3
"""PyTorch peer for `hotpaths train --throughput`: the trainer's transformer (src/train/model.ts) in
plain PyTorch eager mode, same config, same batch shape, same step — forward, cross-entropy over every
position, backward, global-norm clip, AdamW, the MoE gates' bias update — written the way a PyTorch
user would (nn.Parameter tensors, F.scaled_dot_product_attention, a loop over the experts with
index_select/index_add_ in the DeepSeek-V3 reference manner). f32 throughout, like hotpaths' f32
master weights (--fp8 has no eager-PyTorch counterpart here).

  model:  embedding -> layers -> RMSNorm -> LM head. Layer: x += Wo·attn(rope(Wq·h), rope(Wk·h), Wv·h),
          h = rmsnorm(x); x += ffn(rmsnorm(x)). RoPE rotates interleaved pairs (x[2i], x[2i+1]) by
          pos·theta^(-2i/Dh). FFN: SwiGLU W2(silu(W1 h) * W3 h) in the first `denseLayers` layers,
          then MoE: shared SwiGLU expert + Σ_k w_k expert_k(h), sigmoid gate, selection by
          score + bias, group score = sum of the group's top-2, topkGroup groups kept, weights the
          unbiased scores of the chosen experts normalised (+1e-20) times routedScale.

Reads {"model": <ModelConfig as in src/train/model.ts>, "B": int, "T": int, "steps": int, "lr": float,
"clipNorm": float, "weightDecay": float, "seed": int} as JSON on stdin (`hotpaths train --throughput
--json` prints the same config it used as "peerInput"); prints {"tokens_per_s", "ms_per_step",
"parameters", "device", "B", "T"} on stdout. Timing: CUDA events (timing.py), the median of batches of
steps after a warm-up; on a machine without CUDA it falls back to the CPU with perf_counter (a sanity
run, not a measurement to report).
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, theta):
    # x: [B, T, H, Dh]; interleaved pairs rotated by pos * theta^(-2i/Dh)
    _, t, _, dh = x.shape
    pos = torch.arange(t, device=x.device, dtype=torch.float64)
    inv = theta ** (-torch.arange(0, dh, 2, device=x.device, dtype=torch.float64) / dh)
    ang = torch.outer(pos, inv)  # [T, Dh/2]
    cos = ang.cos().float()[None, :, None, :]
    sin = ang.sin().float()[None, :, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


def swiglu(x, w1, w3, w2):
    return F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2)


class Model(torch.nn.Module):
    def __init__(self, c, device):
        super().__init__()
        self.c = c
        d, std = c["dim"], c["initStd"]
        out_std = std / math.sqrt(2 * c["layers"])
        p = lambda *shape, s=std: torch.nn.Parameter(torch.randn(*shape, device=device) * s)
        ones = lambda n: torch.nn.Parameter(torch.ones(n, device=device))
        self.embed = p(c["vocab"], d)
        self.layers = torch.nn.ModuleList()
        self.biases = []
        for layer in range(c["layers"]):
            m = torch.nn.Module()
            m.attn_norm, m.ffn_norm = ones(d), ones(d)
            m.wq, m.wk, m.wv, m.wo = p(d, d), p(d, d), p(d, d), p(d, d, s=out_std)
            moe = c["moe"] if c["moe"] is not None and layer >= c["denseLayers"] else None
            m.moe = moe
            if moe:
                e, fe, fs = moe["experts"], moe["expertHidden"], moe["sharedHidden"]
                m.gate = p(e, d)
                if fs > 0:
                    m.s1, m.s3, m.s2 = p(fs, d), p(fs, d), p(d, fs, s=out_std)
                m.e1, m.e3, m.e2 = p(e, fe, d), p(e, fe, d), p(e, d, fe, s=out_std)
                m.bias = torch.zeros(e, device=device)
                self.biases.append(m)
            else:
                f = c["ffnHidden"]
                m.w1, m.w3, m.w2 = p(f, d), p(f, d), p(d, f, s=out_std)
            self.layers.append(m)
        self.final_norm = ones(d)
        self.head = p(c["vocab"], d)

    def moe_ffn(self, m, h):
        c = m.moe
        t, d = h.shape
        scores = torch.sigmoid(F.linear(h, m.gate))  # [T, E]
        biased = scores + m.bias
        e, g = c["experts"], c["nGroup"]
        group = biased.view(t, g, e // g).topk(2, dim=-1)[0].sum(-1)  # [T, G]
        keep = group.topk(c["topkGroup"], dim=-1)[1]
        mask = torch.zeros_like(group).scatter_(1, keep, 1).unsqueeze(-1).expand(t, g, e // g).reshape(t, e)
        idx = biased.masked_fill(mask == 0, float("-inf")).topk(c["topk"], dim=-1)[1]  # [T, k]
        w = scores.gather(1, idx)
        w = w / (w.sum(-1, keepdim=True) + 1e-20) * c["routedScale"]
        y = torch.zeros_like(h)
        for ex in range(e):
            tok, slot = torch.where(idx == ex)
            if tok.numel() == 0:
                continue
            out = swiglu(h.index_select(0, tok), m.e1[ex], m.e3[ex], m.e2[ex])
            y = y.index_add(0, tok, out * w[tok, slot, None])
        if c["sharedHidden"] > 0:
            y = y + swiglu(h, m.s1, m.s3, m.s2)
        load = torch.bincount(idx.flatten(), minlength=e)
        return y, load

    def forward(self, ids):
        c = self.c
        b, t = ids.shape
        heads, d = c["heads"], c["dim"]
        x = self.embed[ids]  # [B, T, D]
        loads = []
        for m in self.layers:
            h = rmsnorm(x, m.attn_norm, c["normEps"])
            q = rope(F.linear(h, m.wq).view(b, t, heads, d // heads), c["ropeTheta"])
            k = rope(F.linear(h, m.wk).view(b, t, heads, d // heads), c["ropeTheta"])
            v = F.linear(h, m.wv).view(b, t, heads, d // heads)
            o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
            x = x + F.linear(o.transpose(1, 2).reshape(b, t, d), m.wo)
            h2 = rmsnorm(x, m.ffn_norm, c["normEps"])
            if m.moe:
                y, load = self.moe_ffn(m, h2.view(b * t, d))
                x = x + y.view(b, t, d)
                loads.append(load)
            else:
                x = x + swiglu(h2, m.w1, m.w3, m.w2)
        return F.linear(rmsnorm(x, self.final_norm, c["normEps"]), self.head), loads


def main():
    cfg = json.load(sys.stdin)
    c = cfg["model"]
    B, T = cfg["B"], cfg["T"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(cfg.get("seed", 1))
    model = Model(c, device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.get("weightDecay", 0.0)}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.get("lr", 1e-3), betas=(0.9, 0.99), eps=1e-8)
    gen = torch.Generator(device="cpu").manual_seed(cfg.get("seed", 1))
    ids = torch.randint(0, c["vocab"], (B, T + 1), generator=gen).to(device)
    inputs, targets = ids[:, :-1], ids[:, 1:]

    def step():
        logits, loads = model(inputs)
        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.get("clipNorm", 0) > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clipNorm"])
        opt.step()
        with torch.no_grad():  # aux-loss-free balancing: b += gamma * sign(mean - load)
            for m, load in zip(model.biases, loads):
                m.bias += m.moe["biasGamma"] * torch.sign(load.float().mean() - load.float())

    steps = cfg.get("steps", 20)
    if device == "cuda":
        from timing import time_ms
        ms = time_ms(step, inner=max(1, steps // 5), reps=5)
        name = torch.cuda.get_device_name()
    else:
        for _ in range(2):
            step()
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(max(1, steps // 5)):
                step()
            samples.append((time.perf_counter() - t0) * 1000 / max(1, steps // 5))
        ms = sorted(samples)[2]
        name = "cpu (torch %d threads)" % torch.get_num_threads()
    print(json.dumps({"tokens_per_s": B * T / (ms / 1000), "ms_per_step": ms, "parameters": sum(p.numel() for p in model.parameters()),
                      "device": name, "B": B, "T": T}))


if __name__ == "__main__":
    main()
