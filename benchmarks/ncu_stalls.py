"""Summarize Nsight Compute's per-instruction stall samples.

Reads the CSV that `ncu --import REPORT --csv --page source --print-source sass` prints (one section
per profiled kernel) and prints, per kernel, the share of each stall reason and the instructions
with the most samples.

    python3 benchmarks/ncu_stalls.py attn-sass.csv [--top 20]
"""

import argparse
import csv
from collections import Counter


def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return 0.0


def sections(lines):
    """Splits the export at its "Kernel Name" lines: (kernel, rows) per profiled kernel."""
    current = None
    for line in lines:
        if line.startswith('"Kernel Name"'):
            current = (next(csv.reader([line]))[1], [])
            yield current
        elif current is not None:
            current[1].append(line)


def summarize(kernel, lines, top):
    rows = list(csv.reader(lines))
    header, data = rows[0], rows[1:]
    source, address = header.index("Source"), header.index("Address")
    samples = header.index("Warp Stall Sampling (All Samples)")
    reasons = [(i, c) for i, c in enumerate(header) if c.startswith("stall_") and "Not Issued" not in c]
    totals = Counter()
    for row in data:
        for i, name in reasons:
            if i < len(row):
                totals[name] += number(row[i])
    total = sum(totals.values()) or 1.0
    print("== %s: %d samples" % (kernel, total))
    print("   " + ", ".join("%s %.1f%%" % (name[6:], 100 * v / total) for name, v in totals.most_common(10)))
    for row in sorted(data, key=lambda r: -number(r[samples]))[:top]:
        worst = sorted(((number(row[i]), name) for i, name in reasons if i < len(row)), reverse=True)[:3]
        print("   %s %5.2f%% %-58s | %s" % (row[address][-6:], 100 * number(row[samples]) / total, row[source][:58],
                                          ", ".join("%s %.1f" % (n[6:], 100 * v / total) for v, n in worst if v > 0)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    with open(args.csv, encoding="utf-8") as fh:
        seen = set()
        for kernel, lines in list(sections(fh.read().splitlines())):
            if kernel not in seen:  # ncu repeats a section per launch of the same kernel
                seen.add(kernel)
                summarize(kernel, lines, args.top)


if __name__ == "__main__":
    main()
