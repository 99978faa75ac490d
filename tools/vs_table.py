#!/usr/bin/env python3
"""Medians of `bench_cuda TYPE --vs ...` logs, as the markdown rows the
bench/results records quote.

    tools/vs_table.py A=a1.log,a2.log B=b1.log,b2.log [C=...]
        the first group is the baseline: for every (rows, spec, depth) the
        median tok/s of each group over all its files' rounds, and each
        later group's change against the baseline
    tools/vs_table.py one.log [more.log ...]
        one group whose files hold several tunings (--vs default x=1 ...):
        each tuning's median against the default's, per (rows, depth)

A round line reads "vs round R rows N depth D [SPEC] X tok/s, ...". Medians
(not means): a round now and then runs slow when the card's clock or the
host hiccups, and one such round should not move the number.
"""
import re
import statistics
import sys
from collections import defaultdict

ROUND = re.compile(r"vs round \d+ rows (\d+) depth (\d+) \[([^\]]*)\] ([\d.]+) tok/s")


def load(paths):
    """(rows, spec, depth) -> [tok/s of every round in paths]"""
    out = defaultdict(list)
    for path in paths:
        with open(path) as f:
            for line in f:
                m = ROUND.match(line)
                if m:
                    rows, depth, spec, v = m.groups()
                    out[(int(rows), spec, int(depth))].append(float(v))
    return out


def change(new, old):
    return f"{(new / old - 1) * 100:+.1f}%"


def groups_table(groups):
    names = [g[0] for g in groups]
    data = [load(g[1]) for g in groups]
    base = data[0]
    print("| rows | spec | depth | " + " | ".join(names) + " |")
    print("|---:|---|---:|" + "---:|" * len(names))
    for key in sorted(base):
        rows, spec, depth = key
        b = statistics.median(base[key])
        cells = [f"{b:.1f}"]
        for d in data[1:]:
            m = statistics.median(d[key]) if key in d else None
            cells.append(f"{m:.1f} ({change(m, b)})" if m is not None else "-")
        print(f"| {rows} | {spec} | {depth} | " + " | ".join(cells) + " |")


def specs_table(paths):
    data = load(paths)
    specs = sorted({k[1] for k in data} - {"default"})
    print("| rows | depth | default | " + " | ".join(specs) + " |")
    print("|---:|---:|---:|" + "---:|" * len(specs))
    for rows, depth in sorted({(k[0], k[2]) for k in data}):
        if (rows, "default", depth) not in data:
            continue
        b = statistics.median(data[(rows, "default", depth)])
        cells = [
            change(statistics.median(data[(rows, s, depth)]), b) if (rows, s, depth) in data else "-"
            for s in specs
        ]
        print(f"| {rows} | {depth} | {b:.1f} | " + " | ".join(cells) + " |")


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2 if not argv else 0
    if all("=" in a for a in argv):
        groups = [(a.split("=", 1)[0], a.split("=", 1)[1].split(",")) for a in argv]
        groups_table(groups)
    else:
        specs_table(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
