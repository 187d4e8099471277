#!/usr/bin/env python3
"""How often the speculative softmax (TileTable.speculativeSoftmax) redoes a key block, in NumPy.

The kernel's steady key blocks take P~ against the running maximum of the rows seen so far; a warp
(16 query rows) redoes a block exactly when a row's block maximum exceeds that base by more than the
headroom (log2 units). This replays that rule on the benchmark input families (B1, 512 query rows
spread over N 4096 keys, d 128, 128-key blocks) and prints the fraction of warp-blocks redone.
Usage: spec_redo_rate.py [--seed 0]
"""
import argparse

import numpy as np


def inputs(kind, rng, rows, n, d):
    if kind == "gaussian":
        return rng.standard_normal((rows, d)), rng.standard_normal((n, d))
    if kind == "heavy-tail":
        return rng.standard_t(3, (rows, d)), rng.standard_t(3, (n, d))
    q, k = rng.standard_normal((rows, d)), rng.standard_normal((n, d))
    channels = rng.random(d) < 0.12  # k-channel-offset: +-20 on about 12% of the channels
    k[:, channels] += 20 * np.sign(rng.standard_normal(channels.sum()))
    return q, k - k.mean(0)  # after K smoothing


def redo_rate(q, k, causal, headroom, block=128, warp_rows=16):
    n, d = k.shape
    s = (q @ k.T) / np.sqrt(d) * np.log2(np.e)
    if causal:
        pos = np.arange(q.shape[0]) * (n // q.shape[0])
        s = np.where(np.arange(n)[None, :] <= pos[:, None], s, -np.inf)
    redone = total = 0
    for w in range(q.shape[0] // warp_rows):
        rows = s[w * warp_rows:(w + 1) * warp_rows]
        base = rows[:, :block].max(1)  # the first block runs the exact step
        for b in range(1, n // block):
            top = rows[:, b * block:(b + 1) * block].max(1)
            if np.all(np.isinf(top)):
                break
            total += 1
            if np.any(top > base + headroom):
                redone += 1
                base = np.maximum(base, top)
    return redone / max(total, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print("fraction of warp-blocks redone (non-causal / causal)")
    for kind in ("gaussian", "k-channel-offset", "heavy-tail"):
        q, k = inputs(kind, rng, 512, 4096, 128)
        print("  %-17s" % kind + "".join("  headroom %d: %.3f / %.3f" % (h, redo_rate(q, k, False, h),
                                                                      redo_rate(q, k, True, h)) for h in (2, 4, 7)))


if __name__ == "__main__":
    main()
