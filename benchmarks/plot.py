#!/usr/bin/env python3
"""Plot TFLOPS against sequence length from benchmark JSON Lines files (RESULTS.md format).

One subplot per (D, causal); one line per (impl, mode, scope) (and per B/H/Hkv/Nq when a subplot
holds several); x is Nk on a log2 axis. Only lines with timings of one `run` are drawn.
"""

import argparse
import sys

import resultslines
from resultslines import load_jsonl


def is_timing(r):
    return resultslines.is_timing(r) and isinstance(r.get("tops"), (int, float))


def pick_run(recs, run=None):
    """The requested run, or the run of the last timing line (with a warning if several)."""
    timed = [r for r in recs if is_timing(r)]
    runs = []
    for r in timed:
        if r.get("run") not in runs:
            runs.append(r.get("run"))
    if run is None:
        if not runs:
            return None, []
        run = runs[-1]
        if len(runs) > 1:
            sys.stderr.write("several runs (%s); using the last: %s (choose with --run)\n"
                             % (", ".join(str(x) for x in runs), run))
    return run, [r for r in timed if r.get("run") == run]


def series(recs, direction):
    """{(D, causal): {label: [(x, tops), ...] sorted by x}}"""
    panels = {}
    for r in recs:
        if r.get("direction", "fwd") != direction:
            continue
        key = (int(r["D"]), bool(r.get("causal", False)))
        line = (r.get("impl"), r.get("mode"), r.get("scope", "kernel"),
                int(r.get("B", 0)), int(r.get("H", 0)), int(r.get("Hkv", r.get("H", 0))),
                int(r["Nq"]) if int(r["Nq"]) != int(r["Nk"]) else None)
        panels.setdefault(key, {}).setdefault(line, []).append((int(r["Nk"]), float(r["tops"])))
    out = {}
    for key, lines in panels.items():
        shapes = set(l[3:] for l in lines)
        labelled = {}
        for line, pts in lines.items():
            label = "%s %s %s" % line[:3]
            if len(shapes) > 1:
                label += " B%d H%d" % line[3:5]
                if line[5] != line[4]:
                    label += " Hkv%d" % line[5]
                if line[6] is not None:
                    label += " Nq%d" % line[6]
            # several measurements of one point (repeats): keep their median-of-medians order
            byx = {}
            for x, y in pts:
                byx.setdefault(x, []).append(y)
            labelled[label] = sorted((x, sorted(ys)[len(ys) // 2]) for x, ys in byx.items())
        out[key] = labelled
    return out


def plot(recs, out, direction="fwd", run=None, title=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run, recs = pick_run(recs, run)
    if not recs:
        raise SystemExit("plot.py: no timing lines%s" % (" for run %s" % run if run else ""))
    panels = series(recs, direction)
    if not panels:
        raise SystemExit("plot.py: no timing lines with direction %s in run %s" % (direction, run))
    keys = sorted(panels)
    ncols = min(2, len(keys))
    nrows = (len(keys) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(7 * ncols, 4.6 * nrows), squeeze=False)
    gpus = sorted(set(str(r.get("gpu", "?")) for r in recs))
    for i, key in enumerate(keys):
        ax = axes[i // ncols][i % ncols]
        for label in sorted(panels[key]):
            pts = panels[key][label]
            style = "-o" if label.startswith("sagejit") else "--s"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label, markersize=4)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length N (keys)")
        ax.set_ylabel("TFLOPS")
        ax.set_title("D=%d, %s" % (key[0], "causal" if key[1] else "non-causal"))
        ax.grid(True, which="both", alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
    for j in range(len(keys), nrows * ncols):
        axes[j // ncols][j % ncols].axis("off")
    fig.suptitle(title or "%s attention %s, run %s" % (", ".join(gpus), direction, run))
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def build_parser():
    p = argparse.ArgumentParser(description="Plot TFLOPS vs sequence length from JSONL results.")
    p.add_argument("jsonl", nargs="+", help="one or more JSONL files")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--direction", default="fwd", choices=("fwd", "bwd", "fwdbwd"))
    p.add_argument("--run", default=None, help="run id to plot (default: the last run found)")
    p.add_argument("--title", default=None, help="override the title")
    return p


def main(argv=None):
    a = build_parser().parse_args(argv)
    out = plot(load_jsonl(a.jsonl), a.out, a.direction, a.run, a.title)
    sys.stderr.write("wrote %s\n" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
