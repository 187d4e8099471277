#!/usr/bin/env python3
"""Summarises `sagejit run --timeline` rows (one JSON object per key block of a consumer warpgroup).

Per step: the median cycles from each stamp to the next. Per SM that holds two recorded warpgroups
(co-resident blocks, or the two consumer warpgroups of one block): where one issues its MMAs within
the other's period (0.5 = halfway, anti-phase), and how much of one's post-Q K^T phase overlaps the
other's. clock64 counts SM cycles, so only rows of the same SM are compared.
Usage: timeline_report.py ROWS.jsonl [...]
"""
import collections
import json
import statistics
import sys


def steps(row):
    """The stamped steps, in order: the keys after global_ns (kernel/Timeline.java's STEPS)."""
    keys = list(row)
    return keys[keys.index("global_ns") + 1:]


def report(path):
    rows = [json.loads(line) for line in open(path)]
    print("== %s: %d rows" % (path, len(rows)))
    names = steps(rows[0])
    for a, b in zip(names, names[1:]):
        spans = sorted(r[b] - r[a] for r in rows)
        print("  %-15s -> %-15s median %6d cycles" % (a, b, spans[len(spans) // 2]))
    by_sm = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in rows:
        by_sm[r["smid"]][(r["cta"], r["consumer"])].append(r)
    phases, overlaps = [], []
    for groups in by_sm.values():
        if len(groups) != 2:
            continue
        a_rows, b_rows = (sorted(groups[k], key=lambda r: r["block"]) for k in sorted(groups))
        b_issue = [r["mma_issued"] for r in b_rows]
        for r in a_rows[2:-2]:
            before = [t for t in b_issue if t <= r["mma_issued"]]
            after = [t for t in b_issue if t > r["mma_issued"]]
            if before and after:
                phases.append((r["mma_issued"] - before[-1]) / (after[0] - before[-1]))
        a_soft = [(r["qk_done"], r["block_end"]) for r in a_rows]
        b_soft = [(r["qk_done"], r["block_end"]) for r in b_rows]
        total = sum(e - s for s, e in a_soft)
        shared = sum(max(0, min(e1, e2) - max(s1, s2)) for s1, e1 in a_soft for s2, e2 in b_soft)
        if total:
            overlaps.append(shared / total)
    if phases:
        hist = collections.Counter(min(9, int(p * 10)) for p in phases)
        print("  MMA issue of one warpgroup within the other's period: median %.2f, tenths %s"
              % (statistics.median(phases), [hist[i] for i in range(10)]))
    if overlaps:
        print("  post-Q K^T phases overlapping: median %.2f" % statistics.median(overlaps))


if __name__ == "__main__":
    for p in sys.argv[1:]:
        report(p)
