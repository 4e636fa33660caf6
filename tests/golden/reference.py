#!/usr/bin/env python3
"""Independent reference for march's golden fixtures.

Written from the model specification in issue #2 (T5-style encoder-decoder of
the original march project), in NumPy float64, sharing no code with march.
It draws weights and inputs from a seeded NumPy generator, runs the forward
pass in evaluation mode (no dropout) and writes weights, inputs, logits and
loss to tests/golden/fixtures.json, which tests/golden.rs loads into the Rust
model by parameter name and compares.

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install numpy
    /tmp/ref/bin/python tests/golden/reference.py

NumPy is not a dependency of march: the fixture is committed.
"""

import json
import math
import os

import numpy as np

EPS = 1e-6
NEG = -1e9

# The tiny configurations; tests/golden.rs declares the same ones with
# #[march_model] (names must match).
CONFIGS = [
    dict(name="GoldenOriginal", dim_model=8, layers=2, heads=[2, 1], dim_qkv=4,
         dim_ff=12, vocab=13, max_len=10, ffn=("dense", "relu"),
         combine="mean", residual=dict(self_attn=True, cross_attn=True, ffn=True),
         cross="reuse_encoder_kv", attention="softmax"),
    dict(name="GoldenT5Glu", dim_model=8, layers=2, heads=[2, 2], dim_qkv=3,
         dim_ff=6, vocab=13, max_len=10, ffn=("glu", "gelu"),
         combine="sum", residual=dict(self_attn=False, cross_attn=True, ffn=True),
         cross="own_kv", attention="softmax"),
    dict(name="GoldenMixedUniform", dim_model=8, layers=2, heads=[1, 2], dim_qkv=4,
         dim_ff=6, vocab=13, max_len=10, ffn=("mixed", "sum"),
         combine="mean", residual=dict(self_attn=True, cross_attn=True, ffn=True),
         cross="reuse_encoder_kv", attention="uniform_encoder"),
    # per-layer head dimensions and feed-forward widths, 1/sqrt(d) scaling
    dict(name="GoldenPerLayerScaled", dim_model=8, layers=2, heads=[2, 1], dim_qkv=[3, 5],
         dim_ff=[12, 6], vocab=13, max_len=10, ffn=("dense", "gelu"),
         combine="mean", residual=dict(self_attn=True, cross_attn=True, ffn=True),
         cross="own_kv", attention="softmax", scale="inv_sqrt_dim"),
    # attention only: no feed-forward sub-layers, nor their norms
    dict(name="GoldenNoFfn", dim_model=8, layers=2, heads=[2, 1], dim_qkv=4,
         dim_ff=12, vocab=13, max_len=10, ffn=("none", None),
         combine="mean", residual=dict(self_attn=True, cross_attn=True, ffn=True),
         cross="reuse_encoder_kv", attention="softmax"),
    # an output head of its own (T5 v1.1): logits y Wᵀ, no dim^-0.5
    dict(name="GoldenUntied", dim_model=8, layers=2, heads=[2, 2], dim_qkv=3,
         dim_ff=6, vocab=13, max_len=10, ffn=("glu", "gelu"),
         combine="sum", residual=dict(self_attn=True, cross_attn=True, ffn=True),
         cross="own_kv", attention="softmax", tie=False),
    # decoder layer i projects encoder layer i's keys and values
    dict(name="GoldenProjectKv", dim_model=8, layers=2, heads=[2, 1], dim_qkv=4,
         dim_ff=12, vocab=13, max_len=10, ffn=("dense", "relu"),
         combine="mean", residual=dict(self_attn=True, cross_attn=True, ffn=True),
         cross="project_encoder_kv", attention="softmax"),
    # no position table: the input is the embedding alone
    dict(name="GoldenNoPosition", dim_model=8, layers=2, heads=[2, 2], dim_qkv=3,
         dim_ff=6, vocab=13, max_len=10, ffn=("glu", "gelu"),
         combine="mean", residual=dict(self_attn=True, cross_attn=True, ffn=True),
         cross="own_kv", attention="softmax", position="none"),
    # T5's relative position bias (8 buckets up to distance 6), no table
    dict(name="GoldenT5Relative", dim_model=8, layers=2, heads=[2, 2], dim_qkv=3,
         dim_ff=6, vocab=13, max_len=10, ffn=("glu", "gelu"),
         combine="mean", residual=dict(self_attn=True, cross_attn=True, ffn=True),
         cross="own_kv", attention="softmax", position=("t5_relative", 8, 6)),
    # rotary embeddings (theta 100) in every attention, cross included
    dict(name="GoldenRope", dim_model=8, layers=2, heads=[2, 1], dim_qkv=4,
         dim_ff=12, vocab=13, max_len=10, ffn=("dense", "relu"),
         combine="mean", residual=dict(self_attn=True, cross_attn=True, ffn=True),
         cross="reuse_encoder_kv", attention="softmax", position=("rope", 100.0)),
    # one gain per norm (the original's RMSNorm before its commit 85b377a)
    dict(name="GoldenScalarGain", dim_model=8, layers=2, heads=[2, 1], dim_qkv=4,
         dim_ff=12, vocab=13, max_len=10, ffn=("dense", "relu"),
         combine="mean", residual=dict(self_attn=True, cross_attn=True, ffn=True),
         cross="reuse_encoder_kv", attention="softmax", norm_gain="scalar"),
]


def per_layer(cfg, key, i):
    """A per-layer dimension: one number for all layers, or a list."""
    v = cfg[key]
    return v[i] if isinstance(v, list) else v


def logit_scale(cfg, i):
    """1 (T5), or 1/sqrt(dim_qkv) with attention_scale = inv_sqrt_dim."""
    if cfg.get("scale") == "inv_sqrt_dim":
        return 1.0 / math.sqrt(per_layer(cfg, "dim_qkv", i))
    return 1.0


def position_kind(cfg):
    p = cfg.get("position", "learned")
    return p[0] if isinstance(p, tuple) else p


def t5_bucket(rel, bidirectional, num_buckets, max_distance):
    """Hugging Face's T5 _relative_position_bucket, its logarithm in float32."""
    out = 0
    if bidirectional:
        num_buckets //= 2
        out += num_buckets if rel > 0 else 0
        dist = abs(rel)
    else:
        dist = -min(rel, 0)
    max_exact = num_buckets // 2
    if dist < max_exact:
        return out + dist
    f32 = np.float32
    large = max_exact + int(np.log(f32(dist) / f32(max_exact))
                            / f32(math.log(max_distance / max_exact))
                            * f32(num_buckets - max_exact))
    return out + min(large, num_buckets - 1)


def relative_bias(cfg, table, s, bidirectional):
    """[h, s, s]: table[bucket(k - q), head]."""
    _, nb, md = cfg["position"]
    idx = np.array([[t5_bucket(k - q, bidirectional, nb, md) for k in range(s)]
                    for q in range(s)])
    return table[idx].transpose(2, 0, 1)


def rope(x, h, theta):
    """Rotary embedding of [b, s, h*d], GPT-NeoX halves: pair (j, j + d/2)
    at position p turned by p * theta^(-2j/d)."""
    b, s, inner = x.shape
    d = inner // h
    x = x.reshape(b, s, h, d)
    inv = theta ** (-np.arange(0, d, 2) / d)  # [d/2]
    ang = np.arange(s)[:, None] * inv[None, :]  # [s, d/2]
    cos = np.concatenate([np.cos(ang)] * 2, axis=-1)[None, :, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, axis=-1)[None, :, None, :]
    half = np.concatenate([-x[..., d // 2:], x[..., : d // 2]], axis=-1)
    return (x * cos + half * sin).reshape(b, s, inner)


def rms_norm(x, w):
    var = np.mean(x * x, axis=-1, keepdims=True)
    return x / np.sqrt(var + EPS) * w


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def act(name, x):
    return {
        "relu": lambda v: np.maximum(v, 0.0),
        "gelu": gelu,
        "silu": lambda v: v / (1.0 + np.exp(-v)),
        "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    }[name](x)


def heads_of(x, h):
    b, s, inner = x.shape
    return x.reshape(b, s, h, inner // h).transpose(0, 2, 1, 3)  # [b, h, s, d]


def merge(x):
    b, h, s, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, s, h * d)


def attend(q, k, v, h, bias, scale=1.0, head_bias=None, theta=None):
    """softmax(scale · q kᵀ + bias + head_bias) v (T5: scale 1). bias: [b, sq,
    sk]; head_bias: [h, sq, sk]; theta: rotate q and k first (rope)."""
    if theta is not None:
        q, k = rope(q, h, theta), rope(k, h, theta)
    q, k, v = heads_of(q, h), heads_of(k, h), heads_of(v, h)
    logits = scale * (q @ k.transpose(0, 1, 3, 2)) + bias[:, None, :, :]
    if head_bias is not None:
        logits = logits + head_bias[None]
    return merge(softmax(logits) @ v)


def uniform(v, h, mask, sq):
    """Uniform attention over the unpadded keys."""
    p = mask / mask.sum(axis=-1, keepdims=True)  # [b, sk]
    p = np.repeat(p[:, None, :], sq, axis=1)  # [b, sq, sk]
    v = heads_of(v, h)
    return merge(p[:, None, :, :] @ v)


def ffn(cfg, p, x):
    kind, arg = cfg["ffn"]
    if kind == "dense":
        return act(arg, x @ p["up"]) @ p["down"]
    if kind == "glu":
        return (act(arg, x @ p["gate"]) * (x @ p["up"])) @ p["down"]
    slow = act("sigmoid", x @ p["up_slow"])
    fast = act("relu", x @ p["up_fast"])
    h = slow + fast if arg == "sum" else (slow + fast) / 2
    return h @ p["down"]


def forward(cfg, w, enc_ids, enc_mask, dec_ids, labels):
    m = cfg["dim_model"]
    emb, table = w["embedding"], w.get("position")

    def embed(ids):
        if position_kind(cfg) != "learned":
            return emb[ids]
        x, t = emb[ids], table[: ids.shape[1]][None]
        return x + t if cfg["combine"] == "sum" else (x + t) / 2

    def sub(x, residual, y):
        return x + y if residual else y

    res = cfg["residual"]
    softmax_attn = cfg["attention"] == "softmax"
    b, se = enc_ids.shape
    sd = dec_ids.shape[1]
    pad = np.repeat(((1.0 - enc_mask) * NEG)[:, None, :], se, axis=1)
    cross_pad = np.repeat(((1.0 - enc_mask) * NEG)[:, None, :], sd, axis=1)
    causal = np.triu(np.full((sd, sd), NEG), k=1)[None].repeat(b, axis=0)
    kind = position_kind(cfg)
    theta = cfg["position"][1] if kind == "rope" else None
    enc_rel = dec_rel = None
    if kind == "t5_relative":
        enc_rel = relative_bias(cfg, w["relative_bias.encoder"], se, True)
        dec_rel = relative_bias(cfg, w["relative_bias.decoder"], sd, False)

    # encoder: every layer fully (dead outputs are simply not used)
    x = embed(enc_ids)
    kvs = []
    for i, h in enumerate(cfg["heads"]):
        p = f"encoder.{i}."
        n = rms_norm(x, w[p + "self_attn_norm.weight"])
        k, v = n @ w[p + "self_attn.w_k"], n @ w[p + "self_attn.w_v"]
        kvs.append((k, v))
        if softmax_attn:
            a = attend(n @ w[p + "self_attn.w_q"], k, v, h, pad, logit_scale(cfg, i),
                       enc_rel, theta)
        else:
            a = uniform(v, h, enc_mask, se)
        x = sub(x, res["self_attn"], a @ w[p + "self_attn.w_o"])
        if cfg["ffn"][0] != "none":
            f = ffn(cfg, {k2.split(".")[-1]: w[k2] for k2 in w if k2.startswith(p + "ffn.")},
                    rms_norm(x, w[p + "ffn_norm.weight"]))
            x = sub(x, res["ffn"], f)
    memory = rms_norm(x, w["encoder_norm.weight"])

    y = embed(dec_ids)
    for i, h in enumerate(cfg["heads"]):
        p = f"decoder.{i}."
        n = rms_norm(y, w[p + "self_attn_norm.weight"])
        a = attend(n @ w[p + "self_attn.w_q"], n @ w[p + "self_attn.w_k"],
                   n @ w[p + "self_attn.w_v"], h, causal, logit_scale(cfg, i), dec_rel, theta)
        y = sub(y, res["self_attn"], a @ w[p + "self_attn.w_o"])
        n = rms_norm(y, w[p + "cross_attn_norm.weight"])
        if cfg["cross"] == "reuse_encoder_kv":
            k, v = kvs[i]
            wq, wo = w[p + "cross_attn.w_q"], w[p + "cross_attn.w_o"]
        elif cfg["cross"] == "project_encoder_kv":
            k, v = kvs[i][0] @ w[p + "cross_attn.w_k"], kvs[i][1] @ w[p + "cross_attn.w_v"]
            wq, wo = w[p + "cross_attn.w_q"], w[p + "cross_attn.w_o"]
        else:
            k = memory @ w[p + "cross_attn.attn.w_k"]
            v = memory @ w[p + "cross_attn.attn.w_v"]
            wq, wo = w[p + "cross_attn.attn.w_q"], w[p + "cross_attn.attn.w_o"]
        if softmax_attn:
            a = attend(n @ wq, k, v, h, cross_pad, logit_scale(cfg, i), None, theta)
        else:
            a = uniform(v, h, enc_mask, sd)
        y = sub(y, res["cross_attn"], a @ wo)
        if cfg["ffn"][0] != "none":
            f = ffn(cfg, {k2.split(".")[-1]: w[k2] for k2 in w if k2.startswith(p + "ffn.")},
                    rms_norm(y, w[p + "ffn_norm.weight"]))
            y = sub(y, res["ffn"], f)
    y = rms_norm(y, w["decoder_norm.weight"])
    if cfg.get("tie", True):
        logits = (y * m ** -0.5) @ emb.T
    else:
        logits = y @ w["lm_head.weight"].T

    flat = logits.reshape(-1, logits.shape[-1])
    lab = labels.reshape(-1)
    keep = lab >= 0
    lse = np.log(np.exp(flat - flat.max(-1, keepdims=True)).sum(-1)) + flat.max(-1)
    nll = lse - flat[np.arange(len(lab)), np.where(keep, lab, 0)]
    loss = nll[keep].mean()
    return logits, loss


def shapes(cfg):
    m, v, L = cfg["dim_model"], cfg["vocab"], cfg["max_len"]
    kind = cfg["ffn"][0]
    ffn_names = {"dense": ["up", "down"], "glu": ["gate", "up", "down"],
                 "mixed": ["up_slow", "up_fast", "down"], "none": []}[kind]

    def ffn_shapes(p, i):
        ff = per_layer(cfg, "dim_ff", i)
        out = {p + "ffn_norm.weight": (g,)} if ffn_names else {}
        out.update({p + "ffn." + n: ((ff, m) if n == "down" else (m, ff)) for n in ffn_names})
        return out

    g = 1 if cfg.get("norm_gain") == "scalar" else m
    out = {"embedding": (v, m)}
    if position_kind(cfg) == "learned":
        out["position"] = (L, m)
    for i, h in enumerate(cfg["heads"]):
        inner = h * per_layer(cfg, "dim_qkv", i)
        p = f"encoder.{i}."
        out[p + "self_attn_norm.weight"] = (g,)
        for n in ["w_q", "w_k", "w_v"]:
            out[p + "self_attn." + n] = (m, inner)
        out[p + "self_attn.w_o"] = (inner, m)
        out.update(ffn_shapes(p, i))
    out["encoder_norm.weight"] = (g,)
    for i, h in enumerate(cfg["heads"]):
        inner = h * per_layer(cfg, "dim_qkv", i)
        p = f"decoder.{i}."
        out[p + "self_attn_norm.weight"] = (g,)
        for n in ["w_q", "w_k", "w_v"]:
            out[p + "self_attn." + n] = (m, inner)
        out[p + "self_attn.w_o"] = (inner, m)
        out[p + "cross_attn_norm.weight"] = (g,)
        c = "cross_attn.attn." if cfg["cross"] == "own_kv" else "cross_attn."
        out[p + c + "w_q"] = (m, inner)
        if cfg["cross"] == "own_kv":
            out[p + c + "w_k"] = (m, inner)
            out[p + c + "w_v"] = (m, inner)
        if cfg["cross"] == "project_encoder_kv":
            out[p + c + "w_k"] = (inner, inner)
            out[p + c + "w_v"] = (inner, inner)
        out[p + c + "w_o"] = (inner, m)
        out.update(ffn_shapes(p, i))
    out["decoder_norm.weight"] = (g,)
    if not cfg.get("tie", True):
        out["lm_head.weight"] = (v, m)
    if position_kind(cfg) == "t5_relative":
        nb, h = cfg["position"][1], cfg["heads"][0]
        out["relative_bias.encoder"] = (nb, h)
        out["relative_bias.decoder"] = (nb, h)
    return out


def main():
    rng = np.random.default_rng(20261128)
    fixtures = []
    for cfg in CONFIGS:
        w = {}
        for name, shape in shapes(cfg).items():
            if name.endswith("norm.weight"):
                w[name] = 1.0 + 0.2 * rng.standard_normal(shape)
            else:
                w[name] = 0.4 * rng.standard_normal(shape)
        b, se, sd, v = 2, 7, 5, cfg["vocab"]
        enc_ids = rng.integers(0, v, (b, se))
        enc_mask = np.ones((b, se))
        enc_mask[1, 5:] = 0.0
        dec_ids = rng.integers(0, v, (b, sd))
        labels = rng.integers(0, v, (b, sd))
        labels[1, 3:] = -100
        logits, loss = forward(cfg, w, enc_ids, enc_mask, dec_ids, labels)
        fixtures.append(dict(
            name=cfg["name"],
            weights={k: a.reshape(-1).tolist() for k, a in w.items()},
            enc_ids=enc_ids.reshape(-1).tolist(),
            enc_mask=enc_mask.reshape(-1).tolist(),
            dec_ids=dec_ids.reshape(-1).tolist(),
            labels=labels.reshape(-1).tolist(),
            batch=b, enc_len=se, dec_len=sd,
            logits=logits.reshape(-1).tolist(),
            loss=float(loss),
        ))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures.json")
    with open(out, "w") as f:
        json.dump(fixtures, f)
    print(f"wrote {out}: " + ", ".join(f"{x['name']} loss {x['loss']:.6f}" for x in fixtures))


if __name__ == "__main__":
    main()
