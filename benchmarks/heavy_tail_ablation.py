#!/usr/bin/env python3
"""Where the int8-fp8 error on heavy-tailed inputs comes from: a NumPy emulation of the mode's
quantization (docs/int8-fp8-quantization.md, simplified: exact row maxima, FP64 accumulation) on
Student-t (3 dof) Q, K, V, against FP64 attention, with each quantizer switched off in turn, with
finer K scale groups and with Q/K channels balanced by powers of two (not part of the mode). Also
how much of the squared error the worst rows carry.

    python3 benchmarks/heavy_tail_ablation.py [--seed 0] [--heads 4] [--n 4096] [--d 128] [--causal]
        [--variants layout,balanced]

CPU only (about a minute at the defaults); prints one line per variant.
"""
import argparse

import numpy as np

# Mirrors of spec/Int8Fp8Layout.java (the decision lives there; this script only models it and its variants).
INT8_MAX = 127
FP8_MAX = 448.0
K_SCALE_TOKENS = 64      # a K scale block; its groups are the tokens with equal (token % 8) / 2
K_GROUPS_PER_BLOCK = 4


def bf16(x):
    b = x.astype(np.float32).view(np.uint32)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    return b.view(np.float32).astype(np.float64)


def e4m3(x):
    a = np.abs(x)
    e = np.maximum(np.floor(np.log2(np.maximum(a, 1e-30))), -6)
    step = 2.0 ** (e - 3)
    return np.sign(x) * np.minimum(np.round(a / step) * step, FP8_MAX)


def int8(x, scale):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(np.round(np.where(scale > 0, x / scale, 0)), -INT8_MAX, INT8_MAX)


def k_groups(kind, n):
    tok = np.arange(n)
    per_thread = (tok % 8) // 2
    return {"thread16": (tok // K_SCALE_TOKENS) * K_GROUPS_PER_BLOCK + per_thread,   # the layout
            "thread8": (tok // (K_SCALE_TOKENS // 2)) * K_GROUPS_PER_BLOCK + per_thread,
            "thread4": (tok // (K_SCALE_TOKENS // 4)) * K_GROUPS_PER_BLOCK + per_thread,
            "block64": tok // K_SCALE_TOKENS}[kind]


def attention(q, k, v, causal):
    s = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return p, (p @ v) / p.sum(-1, keepdims=True)


def balanced(q, k):
    """Q and K with every channel c scaled by s and 1/s (Q K^T unchanged): s = the power of two nearest
    sqrt(max |K_c - kmean_c| / max |Q_c|) over the tokens of a head, so both operands' channel ranges
    meet in the middle (SmoothQuant's migration; powers of two keep the scaling exact)."""
    kc = np.abs(k - k.mean(1, keepdims=True)).max(1, keepdims=True)
    qc = np.abs(q).max(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where((kc > 0) & (qc > 0), 2.0 ** np.round(0.5 * np.log2(kc / qc)), 1.0)
    return q * s, k / s


def rotated(q, k, block=None):
    """Q and K times the same orthogonal matrix (Q K^T unchanged): a Sylvester Hadamard matrix with
    fixed random column signs, normalised, which spreads a token's outlier channel over all channels
    (or, with block, a block-diagonal one of block x block Hadamard matrices: over its block only)."""
    d = q.shape[-1]
    h = np.ones((1, 1))
    while h.shape[0] < (block or d):
        h = np.block([[h, h], [h, -h]])
    h = np.kron(np.eye(d // h.shape[0]), h)
    signs = np.where(np.random.default_rng(12345).random(d) < 0.5, -1.0, 1.0)
    r = (signs[:, None] * h) / np.sqrt(block or d)
    return q @ r, k @ r


def quantized(q, k, v, causal, kgroup="thread16", qq=True, kq=True, vq=True, pq=True, balance=False,
              rotate=False, rotate_block=None):
    if balance:
        q, k = balanced(q, k)
    if rotate:
        q, k = rotated(q, k, rotate_block)
    h, n, d = k.shape
    ks = k - k.mean(1, keepdims=True)
    if qq:
        sc = np.abs(q).max(-1, keepdims=True) / INT8_MAX
        q = int8(q, sc) * sc
    if kq:
        if kgroup == "token":
            sc = np.abs(ks).max(-1, keepdims=True) / INT8_MAX
        else:
            g = k_groups(kgroup, n)
            amax = np.abs(ks).max(-1)
            gm = np.zeros((h, g.max() + 1))
            for i in range(h):
                np.maximum.at(gm[i], g, amax[i])
            sc = (gm[:, g] / INT8_MAX)[..., None]
        ks = int8(ks, sc) * sc
    if vq:
        sc = np.abs(v).max(1, keepdims=True) / FP8_MAX
        v = e4m3(v / sc) * sc
    s = q @ ks.transpose(0, 2, 1) / np.sqrt(d)
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    if pq:
        p = e4m3(p * FP8_MAX) / FP8_MAX
    return (p @ v) / p.sum(-1, keepdims=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--variants", default="", help="comma-separated words; only variants whose name holds one")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    q, k, v = (bf16(rng.standard_t(3, (a.heads, a.n, a.d))) for _ in range(3))
    _, ref = attention(q, k, v, a.causal)
    print("seed %d, H%d N%d D%d, causal %s" % (a.seed, a.heads, a.n, a.d, a.causal))
    variants = [("layout (K groups of 16 tokens)", {}), ("no INT8 on Q", dict(qq=False)),
                ("no INT8 on K", dict(kq=False)), ("no FP8 on V", dict(vq=False)), ("no FP8 on P", dict(pq=False)),
                ("K scale per 8 tokens", dict(kgroup="thread8")), ("K scale per 4 tokens", dict(kgroup="thread4")),
                ("K scale per token", dict(kgroup="token")), ("K scale per 64-token block", dict(kgroup="block64")),
                ("Q/K channels balanced", dict(balance=True)),
                ("Q/K rotated (Hadamard)", dict(rotate=True)),
                ("Q/K rotated in blocks of 8", dict(rotate=True, rotate_block=8)),
                ("Q/K rotated in blocks of 16", dict(rotate=True, rotate_block=16)),
                ("Q/K rotated in blocks of 32", dict(rotate=True, rotate_block=32))]
    words = [w for w in a.variants.split(",") if w]
    for name, kw in variants:
        if words and not any(w in name for w in words):
            continue
        o = quantized(q, k, v, a.causal, **kw)
        cos = (o * ref).sum() / np.sqrt((o * o).sum() * (ref * ref).sum())
        l1 = np.abs(o - ref).sum() / np.abs(ref).sum()
        row_err = np.sort(((o - ref) ** 2).sum(-1).ravel())[::-1]
        print("  %-32s cosine %.5f  rel L1 %.4f  worst 100 rows carry %4.1f%% of the squared error"
              % (name, cos, l1, 100 * row_err[:100].sum() / row_err.sum()), flush=True)


if __name__ == "__main__":
    main()
