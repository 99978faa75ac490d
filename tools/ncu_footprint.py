#!/usr/bin/env python3
"""How much code each profiled kernel runs, from ncu's source page as CSV:

    ncu --import R.ncu-rep --page source --csv --print-source sass | tools/ncu_footprint.py

A line a kernel: its SASS (every instruction, 16 bytes each), the part that
ran (instructions executed at least once), and of that the part that ran
about once a warp (executed no more often than the kernel's first
instruction, which every warp runs once, plus 5%): straight-line code that a
launch fetches cold when the kernels of a step do not fit the instruction
caches together (bench/results/2026-11-29-cuda-h200-8.md). Then the share of
the kernel's warp-stall samples that waited for an instruction.
"""
import csv
import sys


def number(text):
    try:
        return int(text.replace(",", ""))
    except ValueError:
        return 0


def kernels(lines):
    """(kernel name, header, rows) for each kernel of the CSV"""
    name, header, rows = None, None, []
    for row in csv.reader(lines):
        if not row:
            continue
        if row[0] == "Kernel Name":
            if name is not None:
                yield name, header, rows
            name, header, rows = row[1], None, []
        elif row[0] == "Address":
            header = row
        elif header is not None:
            rows.append(row)
    if name is not None:
        yield name, header, rows


def main():
    if len(sys.argv) > 1:
        print(__doc__.strip())
        return 0
    for name, header, rows in kernels(sys.stdin):
        col = {h: i for i, h in enumerate(header)}
        runs = [number(r[col["Instructions Executed"]]) for r in rows]
        ran = [n for n in runs if n > 0]
        warps = runs[0] if runs else 0  # the entry instruction: once a warp
        once = sum(1 for n in ran if n <= warps * 1.05)
        samples = sum(number(r[col["Warp Stall Sampling (All Samples)"]]) for r in rows)
        no_inst = sum(number(r[col["stall_no_inst"]]) for r in rows) if "stall_no_inst" in col else 0
        short = name.replace("void ", "").replace("(int)", "")
        short = short[: short.index(">(") + 1] if ">(" in short else short
        print(f"{short[:48]:48s} SASS {len(rows) * 16 / 1024:6.1f} KB  ran {len(ran) * 16 / 1024:5.1f} KB"
              f"  once a warp ({warps} warps) {once * 16 / 1024:5.1f} KB"
              f"  no_instruction {no_inst}/{samples} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
