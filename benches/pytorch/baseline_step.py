"""The seed-scale march Baseline train step in PyTorch eager, for a
side-by-side throughput comparison with `march bench Baseline`.

Not a march dependency: run it from a scratch virtual environment outside
the project (python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch
--index-url https://download.pytorch.org/whl/cpu), e.g.

    /tmp/torch/bin/python benches/pytorch/baseline_step.py --threads 2
    /tmp/torch/bin/python benches/pytorch/baseline_step.py --threads 2 --small --batch 16
    /tmp/torch/bin/python benches/pytorch/baseline_step.py --threads 2 --bf16

The model mirrors march's Baseline (36,340,224 parameters): tied embedding
30,000 × 512 with learned positions combined by mean, 3 + 3 pre-RMSNorm
layers, 8 heads of 64, ReLU feed-forward 2,048, no biases, dropout 0.1,
decoder layer i attending to encoder layer i's keys and values (the last
encoder layer computes only those), tied LM head scaled by 512^-0.5, masked
cross-entropy; AdamW (0.9, 0.95), weight decay 0.1. Workload: batch 8,
encoder 230, decoder 52 (span corruption of 256-token chunks: 2,048 corpus
tokens per step). Attention is written out (matmul, softmax), as the
original's Hugging Face T5 code runs in eager mode.
"""

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, M, H, DQK, FF, L, MAXLEN = 30_000, 512, 8, 64, 2048, 3, 1024


def small_scale():
    """march's SmallBaseline: dim 128, 4 heads of 32, feed-forward 512, vocab 8,192."""
    global V, M, H, DQK, FF, MAXLEN
    V, M, H, DQK, FF, MAXLEN = 8192, 128, 4, 32, 512, 512


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def heads(x):  # [b, s, H·DQK] → [b, H, s, DQK]
    b, s, _ = x.shape
    return x.view(b, s, H, DQK).transpose(1, 2)


def attend(q, k, v, bias, p, training):
    scores = q @ k.transpose(-1, -2) / DQK**0.5 + bias
    probs = F.dropout(scores.softmax(-1), p, training)
    out = probs @ v  # [b, H, s, DQK]
    b, _, s, _ = out.shape
    return out.transpose(1, 2).reshape(b, s, H * DQK)


class EncoderLayer(nn.Module):
    def __init__(self, last):
        super().__init__()
        self.last = last
        self.norm1 = RMSNorm(M)
        self.q, self.k, self.v, self.o = (nn.Linear(M, H * DQK, bias=False) for _ in range(4))
        self.o = nn.Linear(H * DQK, M, bias=False)
        self.norm2 = RMSNorm(M)
        self.up = nn.Linear(M, FF, bias=False)
        self.down = nn.Linear(FF, M, bias=False)

    def forward(self, x, bias, p):
        n = self.norm1(x)
        k, v = heads(self.k(n)), heads(self.v(n))
        if self.last:  # the rest of the last layer feeds nothing
            return x, (k, v)
        x = x + F.dropout(self.o(attend(heads(self.q(n)), k, v, bias, p, self.training)), p, self.training)
        h = F.dropout(F.relu(self.up(self.norm2(x))), p, self.training)
        x = x + F.dropout(self.down(h), p, self.training)
        return x, (k, v)


class DecoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = RMSNorm(M)
        self.q, self.k, self.v = (nn.Linear(M, H * DQK, bias=False) for _ in range(3))
        self.o = nn.Linear(H * DQK, M, bias=False)
        self.norm2 = RMSNorm(M)
        self.cq = nn.Linear(M, H * DQK, bias=False)
        self.co = nn.Linear(H * DQK, M, bias=False)
        self.norm3 = RMSNorm(M)
        self.up = nn.Linear(M, FF, bias=False)
        self.down = nn.Linear(FF, M, bias=False)

    def forward(self, y, kv, causal, cross, p):
        t = self.training
        n = self.norm1(y)
        y = y + F.dropout(self.o(attend(heads(self.q(n)), heads(self.k(n)), heads(self.v(n)), causal, p, t)), p, t)
        n = self.norm2(y)
        y = y + F.dropout(self.co(attend(heads(self.cq(n)), kv[0], kv[1], cross, p, t)), p, t)
        h = F.dropout(F.relu(self.up(self.norm3(y))), p, t)
        return y + F.dropout(self.down(h), p, t)


class Baseline(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(V, M))
        self.position = nn.Parameter(torch.randn(MAXLEN, M) * M**-0.5)
        self.encoder = nn.ModuleList(EncoderLayer(i == L - 1) for i in range(L))
        self.encoder_norm = RMSNorm(M)  # dead, as in march (counted, unused)
        self.decoder = nn.ModuleList(DecoderLayer() for _ in range(L))
        self.decoder_norm = RMSNorm(M)

    def embed(self, ids, p):
        x = (self.embedding[ids] + self.position[: ids.shape[1]]) / 2
        return F.dropout(x, p, self.training)

    def forward(self, enc_ids, dec_ids, labels, p=0.1):
        b, se = enc_ids.shape
        sd = dec_ids.shape[1]
        enc_bias = torch.zeros(b, 1, 1, se)  # no padding in this workload
        causal = torch.full((sd, sd), float("-inf")).triu(1)
        x = self.embed(enc_ids, p)
        kvs = []
        for layer in self.encoder:
            x, kv = layer(x, enc_bias, p)
            kvs.append(kv)
        y = self.embed(dec_ids, p)
        for layer, kv in zip(self.decoder, kvs):
            y = layer(y, kv, causal, enc_bias, p)
        logits = (self.decoder_norm(y) * M**-0.5) @ self.embedding.t()
        return F.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=-100)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--small", action="store_true", help="SmallBaseline instead of Baseline")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--enc-len", type=int, default=230)
    ap.add_argument("--dec-len", type=int, default=52)
    ap.add_argument("--chunk-tokens", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument(
        "--bf16",
        action="store_true",
        help="bf16 autocast (torch.autocast on the CPU: linear layers and matmuls in bf16)",
    )
    ap.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model (inductor; the warm-up steps include the compilation)",
    )
    a = ap.parse_args()
    if a.small:
        small_scale()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Baseline().train()
    n = sum(p.numel() for p in model.parameters())
    step_model = torch.compile(model) if a.compile else model
    decay = [p for name, p in model.named_parameters() if "norm" not in name]
    no_decay = [p for name, p in model.named_parameters() if "norm" in name]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-4,
        betas=(0.9, 0.95),
    )
    enc = torch.randint(0, V, (a.batch, a.enc_len))
    dec = torch.randint(0, V, (a.batch, a.dec_len))
    labels = torch.randint(0, V, (a.batch, a.dec_len))
    times, phases = [], []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = step_model(enc, dec, labels)
        loss.item()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        t3 = time.perf_counter()
        if i >= a.warmup:
            times.append(t3 - t0)
            phases.append((t1 - t0, t2 - t1, t3 - t2))
    ms = statistics.median(times) * 1e3
    fwd, bwd, optim = (statistics.median(p[k] for p in phases) * 1e3 for k in range(3))
    tokens = a.batch * a.chunk_tokens
    print(
        f"PyTorch {torch.__version__} {'compiled' if a.compile else 'eager'} {'bf16 autocast' if a.bf16 else 'f32'}, {a.threads} thread(s): {n:,} parameters, "
        f"batch {a.batch} × ({a.enc_len}, {a.dec_len}): {ms:.0f} ms/step (median of {a.steps}; "
        f"min {min(times) * 1e3:.0f}), {tokens / (ms / 1e3):.0f} tokens/s; "
        f"phases: forward {fwd:.0f}, backward {bwd:.0f}, optimizer {optim:.0f} ms (medians)"
    )


if __name__ == "__main__":
    main()
