#!/usr/bin/env python3
"""Plot accuracy lines (RESULTS.md format: metric cosine / rel_l1 against FP64) of the quantized modes.

Left: relative L1 error of O per input family for every (mode, ablation) of one problem (the CPU
accuracy study, `sagejit accuracy`). Right: relative L1 against the key length for each mode that
has lines at several lengths (e.g. nvfp4-emulated on the GPU), one line per (inputs, D, causal),
with the issue's bars as dashed lines where given (--bar FAMILY=REL_L1).

    python3 benchmarks/plot_accuracy.py STUDY.jsonl GPU.jsonl --out accuracy.png \
        --problem 1x2x1024x128 --bar gaussian=0.21 --bar peaky=0.10
"""

import argparse
import sys

from resultslines import load_jsonl


def variant(r):
    return r["mode"] + (":" + r["ablation"] if r.get("ablation") else "")


def problem_key(r):
    return "%dx%dx%dx%d" % (r["B"], r["H"], r["Nq"], r["D"])


def rel_l1(recs):
    return [r for r in recs if r.get("metric") == "rel_l1" and r.get("tensor", "O") == "O"]


def study_panel(ax, recs, problem):
    rows = [r for r in rel_l1(recs) if problem_key(r) == problem and not r.get("causal")
            and r.get("impl", "").endswith("emulation")]
    if not rows:
        ax.set_title("no study lines for " + problem)
        return
    families = sorted({r["inputs"] for r in rows})
    variants = sorted({variant(r) for r in rows}, key=lambda v: (not v.startswith("bf16"), v))
    width = 0.8 / len(variants)
    for i, v in enumerate(variants):
        ys = []
        for f in families:
            match = [r["value"] for r in rows if r["inputs"] == f and variant(r) == v]
            ys.append(match[-1] if match else float("nan"))
        ax.bar([x + i * width for x in range(len(families))], ys, width, label=v)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(families))])
    ax.set_xticklabels(families)
    ax.set_yscale("log")
    ax.set_ylabel("relative L1 error of O vs FP64")
    ax.set_title("CPU emulation, " + problem + " (non-causal)")
    ax.legend(fontsize=7, ncol=4, loc="lower center")


def length_panel(ax, recs, bars):
    rows = [r for r in rel_l1(recs) if not r.get("impl", "").endswith("emulation")]
    lines = {}
    for r in rows:
        lines.setdefault((r["mode"], r["inputs"], r["D"], bool(r.get("causal"))), {})[r["Nk"]] = r["value"]
    lines = {k: v for k, v in lines.items() if len(v) > 1}
    if not lines:
        ax.set_title("no lines at several lengths")
        return
    for (mode, inputs, d, causal), pts in sorted(lines.items()):
        xs = sorted(pts)
        ax.plot(xs, [pts[x] for x in xs], marker="o",
                label="%s %s D%d%s" % (mode, inputs, d, " causal" if causal else ""))
    ax.set_xscale("log", base=2)
    for family, bar in bars.items():
        ax.axhline(bar, linestyle="--", color="gray", linewidth=0.8)
        ax.annotate("bar: " + family, (0.01, bar), xycoords=("axes fraction", "data"), fontsize=7, va="bottom")
    ax.set_xlabel("sequence length N")
    ax.set_ylabel("relative L1 error of O vs FP64")
    ax.set_title("GPU runs against FP64 (sampled rows)")
    ax.legend(fontsize=6)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--out", required=True, help="PNG to write")
    ap.add_argument("--problem", default="1x2x1024x128", help="BxHxNxD of the study panel")
    ap.add_argument("--bar", action="append", default=[], help="FAMILY=REL_L1 bar on the right panel")
    args = ap.parse_args(argv)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.stderr.write("matplotlib is not installed: pip install matplotlib\n")
        return 2
    bars = dict((b.split("=")[0], float(b.split("=")[1])) for b in args.bar)
    recs = load_jsonl(args.files)
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5.5))
    study_panel(left, recs, args.problem)
    length_panel(right, recs, bars)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print("wrote " + args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
