#!/usr/bin/env python3
"""Summarize `sagejit tune` rows (RESULTS.md lines with "tuning": true) from one or more files.

Per case (mode, B, H, N, D, causal), the latest run that tuned it: the default config and the
fastest one that passed its check, with the speed-up; cases sorted by speed-up, then a count of
cases per mode and how many the default already won. Markdown on stdout.

    python3 benchmarks/tune_summary.py benchmarks/results/*tune*.jsonl [--top 15]
"""

import argparse
import sys

from resultslines import load_jsonl


def case_key(r):
    return (r["mode"], r["B"], r["H"], r["Nq"], r["Nk"], r["D"], bool(r.get("causal")))


def cases(recs):
    """{case: (run, default row or None, best row)} from the latest run of each case."""
    by_case = {}
    for r in recs:
        if not r.get("tuning") or not isinstance(r.get("tops"), (int, float)) or "error" in r:
            continue
        by_case.setdefault(case_key(r), {}).setdefault(r["run"], []).append(r)
    out = {}
    for key, runs in by_case.items():
        run = max(runs)
        rows = runs[run]
        default = next((r for r in rows if r.get("default")), None)
        best = max(rows, key=lambda r: r["tops"])
        out[key] = (run, default, best)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--top", type=int, default=15, help="cases listed, largest gain first")
    args = ap.parse_args(argv)
    table = cases(load_jsonl(args.files))
    if not table:
        sys.stderr.write("no tuning rows in the files\n")
        return 1
    rows = []
    for (mode, b, h, nq, nk, d, causal), (run, default, best) in table.items():
        gain = best["tops"] / default["tops"] if default else float("nan")
        rows.append((gain, mode, "B%d H%d N%d D%d" % (b, h, nk, d), causal, default, best, run))
    rows.sort(key=lambda x: -x[0] if x[0] == x[0] else 0)
    print("| mode | problem | causal | default (TOPS) | tuned (TOPS) | speed-up | run |")
    print("|---|---|---|---|---|---|---|")
    for gain, mode, prob, causal, default, best, run in rows[: args.top]:
        d = "%s (%.0f)" % (default["config"], default["tops"]) if default else "-"
        print("| %s | %s | %s | %s | %s (%.0f) | %.3fx | %s |"
              % (mode, prob, "yes" if causal else "no", d, best["config"], best["tops"], gain, run))
    print()
    print("| mode | cases | default was fastest | largest speed-up |")
    print("|---|---|---|---|")
    for mode in sorted({r[1] for r in rows}):
        mine = [r for r in rows if r[1] == mode]
        kept = sum(1 for r in mine if r[4] is not None and r[5]["config"] == r[4]["config"])
        print("| %s | %d | %d | %.3fx |" % (mode, len(mine), kept, max(r[0] for r in mine)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
