#!/usr/bin/env python3
"""Markdown tables from benchmark JSON Lines (RESULTS.md format): sagejit against its peers.

For every run, sagejit's timing lines (impl == "sagejit") are grouped by
(B, H, Hkv, Nq, Nk, D, causal, mode, direction, scope). Each group is one row: sagejit's median_ms
and TOPS, and beside it each peer's (every other impl) on the same problem and direction, with the
speedup peer_ms / sagejit_ms written as "1.23x" (> 1: sagejit faster). Peers are matched whatever
their mode, since sagejit's quantized modes are compared against BF16/FP16 peers; --same-mode
restricts the match to equal modes. Lines of different runs are never compared.

With --accuracy, every accuracy line is tabulated, and the gradients get a table of their own (issue
5's bar): per (problem, inputs, mode, tensor) sagejit's rel L2 and rel L1 error of dQ, dK and dV
against FP64 beside PyTorch SDPA's (cuDNN and flash backends, same inputs, FP64 torch reference), with
the ratio sagejit / torch against the better (lower-error) backend, which the bar of "within 2x of
PyTorch's own error" is judged on, and against the worse one.
"""

import argparse
import sys

from resultslines import is_timing, load_jsonl

PROBLEM = ("B", "H", "Hkv", "Nq", "Nk", "D", "causal")
PEER_ORDER = ("torch-sdpa-cudnn", "torch-sdpa-flash", "torch-sdpa-efficient", "torch-sdpa-math")
GRAD_TENSORS = ("dQ", "dK", "dV")
TORCH_BWD = ("torch-sdpa-cudnn", "torch-sdpa-flash")
GRAD_METRICS = ("rel_l2", "rel_l1")
BWD_BAR = 2.0  # sagejit's gradient error at most this many times PyTorch's (issue 5)


def problem_key(r):
    return (int(r["B"]), int(r["H"]), int(r.get("Hkv", r["H"])), int(r["Nq"]), int(r["Nk"]),
            int(r["D"]), bool(r.get("causal", False)))


def problem_label(p):
    B, H, Hkv, Nq, Nk, D, causal = p
    s = "B%d H%d" % (B, H)
    if Hkv != H:
        s += " Hkv%d" % Hkv
    s += (" N%d" % Nq) if Nq == Nk else (" Nq%d Nk%d" % (Nq, Nk))
    s += " D%d" % D
    return s


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def collect(recs):
    """{run: {(problem, impl, mode, direction, scope, protocol): (median_ms, tops)}} (repeats: median).

    Lines of different timing protocols (RESULTS.md `protocol`; None in lines older than the field) never
    share a group: under the H200's power cap the protocol moves the figures."""
    acc = {}
    for r in recs:
        if not is_timing(r):
            continue
        key = (problem_key(r), r.get("impl"), r.get("mode"), r.get("direction", "fwd"),
               r.get("scope", "kernel"), r.get("protocol"))
        acc.setdefault(r.get("run"), {}).setdefault(key, ([], []))
        acc[r.get("run")][key][0].append(float(r["median_ms"]))
        if isinstance(r.get("tops"), (int, float)):
            acc[r.get("run")][key][1].append(float(r["tops"]))
    out = {}
    for run, groups in acc.items():
        out[run] = {k: (median(ms), median(tp) if tp else None) for k, (ms, tp) in groups.items()}
    return out


def fmt_ms(x):
    return "-" if x is None else ("%.3f" % x if x >= 0.1 else "%.4f" % x)


def fmt_tops(x):
    return "-" if x is None else "%.0f" % x


def peer_columns(groups):
    peers = sorted(set((k[1], k[2]) for k in groups if k[1] != "sagejit"),
                   key=lambda pm: (PEER_ORDER.index(pm[0]) if pm[0] in PEER_ORDER else 99,
                                   pm[0], str(pm[1])))
    impls = [p[0] for p in peers]
    return [(i, m, i if impls.count(i) == 1 else "%s (%s)" % (i, m)) for i, m in peers]


def run_table(groups, same_mode=False):
    """Markdown lines for one run's groups."""
    peers = peer_columns(groups)
    protocols = any(k[5] is not None for k in groups)
    head = ["problem", "causal", "dir", "sagejit mode", "scope"] + (["protocol"] if protocols else []) + \
        ["sagejit ms", "sagejit TOPS"]
    for _, _, name in peers:
        head += ["%s ms" % name, "%s TOPS" % name, "vs %s" % name]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = sorted((k for k in groups if k[1] == "sagejit"), key=lambda k: tuple(str(x) for x in k))
    if not rows:  # peers only: one row per problem, direction and protocol
        rows = sorted(set((k[0], None, None, k[3], None, k[5]) for k in groups), key=lambda k: tuple(str(x) for x in k))
    for p, impl, mode, direction, scope, protocol in rows:
        mine = groups.get((p, impl, mode, direction, scope, protocol)) if impl else None
        ms = mine[0] if mine else None
        cells = [problem_label(p), "yes" if p[6] else "no", direction, mode or "-", scope or "-"] + \
            ([protocol or "-"] if protocols else []) + [fmt_ms(ms), fmt_tops(mine[1] if mine else None)]
        for pimpl, pmode, _ in peers:
            if same_mode and mode is not None and pmode != mode:
                cells += ["-", "-", "-"]
                continue
            cand = [v for k, v in groups.items()
                    if k[0] == p and k[1] == pimpl and k[2] == pmode and k[3] == direction and k[5] == protocol]
            if not cand:
                cells += ["-", "-", "-"]
                continue
            pms, ptops = min(cand)  # a peer measured at several scopes: its fastest
            speed = "%.2fx" % (pms / ms) if ms else "-"
            cells += [fmt_ms(pms), fmt_tops(ptops), speed]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def accuracy_lines(recs, run):
    acc = {}
    for r in recs:
        if r.get("run") != run or "metric" not in r or "error" in r:
            continue
        key = (r.get("impl"), r.get("mode"), problem_key(r), r.get("inputs", "-"),
               r.get("tensor", "O"), r.get("reference", "-"))
        acc.setdefault(key, {})[r["metric"]] = r.get("value")
    if not acc:
        return []
    metrics = ("cosine", "rel_l1", "rel_l2", "rmse", "max_abs")
    head = ["impl", "mode", "problem", "causal", "inputs", "tensor", "reference"] + list(metrics)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in sorted(acc, key=lambda k: (k[2], k[3], k[0] != "sagejit", str(k[0]), str(k[1]))):
        impl, mode, p, inputs, tensor, ref = key
        vals = ["-" if acc[key].get(m) is None else "%.5g" % acc[key][m] for m in metrics]
        lines.append("| " + " | ".join([str(impl), str(mode), problem_label(p),
                                        "yes" if p[6] else "no", str(inputs), str(tensor),
                                        str(ref)] + vals) + " |")
    return lines


def gradient_errors(recs, run):
    """{(problem, mode, inputs, tensor): {impl: {metric: value}}} of one run's dQ, dK, dV lines of
    sagejit and the SDPA backends (error lines and other impls left out)."""
    out = {}
    for r in recs:
        impl = r.get("impl")
        if (r.get("run") != run or "metric" not in r or "error" in r
                or r.get("tensor") not in GRAD_TENSORS or (impl != "sagejit" and impl not in TORCH_BWD)):
            continue
        key = (problem_key(r), r.get("mode"), r.get("inputs", "-"), r["tensor"])
        out.setdefault(key, {}).setdefault(impl, {})[r["metric"]] = r.get("value")
    return out


def torch_ratios(mine, theirs):
    """(sagejit / the better torch error, sagejit / the worse one); None where either is missing."""
    theirs = [t for t in theirs if t is not None]
    if mine is None or not theirs:
        return None, None
    best, worst = min(theirs), max(theirs)
    return (mine / best if best > 0 else None), (mine / worst if worst > 0 else None)


def within_bar(ratios):
    """'yes' (every ratio against the better backend <= the bar), 'vs worse only', 'no' or '-'."""
    if any(r is None for pair in ratios for r in pair):
        return "-"
    if all(better <= BWD_BAR for better, _ in ratios):
        return "yes"
    return "vs worse only" if all(worse <= BWD_BAR for _, worse in ratios) else "no"


def fmt_ratio(x):
    return "-" if x is None else "%.2f" % x


def backward_lines(recs, run):
    """Markdown of sagejit's gradient errors against SDPA's (issue 5's bar), with a count of rows that meet it."""
    errs = gradient_errors(recs, run)
    keys = sorted((k for k in errs if "sagejit" in errs[k]),
                  key=lambda k: (k[0], str(k[1]), k[2], GRAD_TENSORS.index(k[3])))
    if not keys:
        return []
    short = [i.replace("torch-sdpa-", "") for i in TORCH_BWD]
    head = ["problem", "causal", "inputs", "mode", "tensor"]
    for m in GRAD_METRICS:
        head += ["sagejit %s" % m] + ["%s %s" % (n, m) for n in short]
        head += ["%s ratio vs better" % m, "%s ratio vs worse" % m]
    head.append("within %gx of the better" % BWD_BAR)
    lines = ["Backward accuracy (issue 5): dQ, dK, dV against FP64 on identical inputs (sagejit: FP64 CPU"
             " reference, SDPA: FP64 torch); ratio = sagejit / SDPA, the bar (<= %gx) is judged against"
             " the better SDPA backend of cuDNN and flash, 'vs worse' against the other." % BWD_BAR, "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    verdicts = []
    for key in keys:
        p, mode, inputs, tensor = key
        by_impl = errs[key]
        cells = [problem_label(p), "yes" if p[6] else "no", str(inputs), str(mode), tensor]
        ratios = []
        for m in GRAD_METRICS:
            mine = by_impl["sagejit"].get(m)
            theirs = [by_impl.get(i, {}).get(m) for i in TORCH_BWD]
            pair = torch_ratios(mine, theirs)
            ratios.append(pair)
            cells += ["-" if x is None else "%.4g" % x for x in [mine] + theirs]
            cells += [fmt_ratio(pair[0]), fmt_ratio(pair[1])]
        verdicts.append(within_bar(ratios))
        cells.append(verdicts[-1])
        lines.append("| " + " | ".join(cells) + " |")
    judged = [v for v in verdicts if v != "-"]
    lines += ["", "within %gx of the better SDPA backend (rel L2 and rel L1): %d of %d rows; of the worse: %d of %d"
              % (BWD_BAR, judged.count("yes"), len(judged), judged.count("yes") + judged.count("vs worse only"),
                 len(judged))]
    return lines


def summarize(recs, run=None, same_mode=False, accuracy=False):
    data = collect(recs)
    runs = [run] if run is not None else list(data)
    if accuracy:
        for r in recs:
            if "metric" in r and r.get("run") not in runs and run is None:
                runs.append(r.get("run"))
    out = []
    for rid in runs:
        groups = data.get(rid, {})
        gpus = sorted(set(str(r.get("gpu", "?")) for r in recs if r.get("run") == rid))
        out.append("### run %s (%s)" % (rid, ", ".join(gpus) or "?"))
        out.append("")
        if groups:
            out += run_table(groups, same_mode)
            out.append("")
        if accuracy:
            acc = accuracy_lines(recs, rid)
            if acc:
                out += acc
                out.append("")
            bwd = backward_lines(recs, rid)
            if bwd:
                out += bwd
                out.append("")
    return "\n".join(out)


def build_parser():
    p = argparse.ArgumentParser(description="Markdown tables: sagejit vs peers, per run.")
    p.add_argument("jsonl", nargs="+", help="one or more JSONL files")
    p.add_argument("--run", default=None, help="only this run id (default: every run, separately)")
    p.add_argument("--same-mode", action="store_true",
                   help="compare sagejit only with peers of the same mode")
    p.add_argument("--accuracy", action="store_true", help="also tabulate accuracy lines")
    return p


def main(argv=None):
    a = build_parser().parse_args(argv)
    sys.stdout.write(summarize(load_jsonl(a.jsonl), a.run, a.same_mode, a.accuracy) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
