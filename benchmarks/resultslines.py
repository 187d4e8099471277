"""Reading benchmark JSON Lines files (RESULTS.md format), shared by plot.py and summarize.py."""

import json
import sys


def load_jsonl(paths):
    """Every record of the files, in order; a bad line is skipped with a note on stderr."""
    recs = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    recs.append(json.loads(line))
                except json.JSONDecodeError as e:
                    sys.stderr.write("%s:%d: skipped bad line (%s)\n" % (path, n, e))
    return recs


def is_timing(r):
    """A timing line: a median time, neither an error nor an accuracy line."""
    return (isinstance(r.get("median_ms"), (int, float)) and "error" not in r
            and "metric" not in r)
