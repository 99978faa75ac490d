#!/usr/bin/env python3
"""Which source functions a profiled kernel's code belongs to, and how much
of it ran about once a warp (the code a launch fetches cold:
bench/results/2026-11-29-cuda-h200-8.md, -9):

    tools/ncu_lines.py SOURCE.csv DISASM.txt KERNEL [SRC_ROOT]

SOURCE.csv: ncu's source page of a report with the SourceCounters section,
    `ncu --import R.ncu-rep --page source --csv --print-source sass`
    (as tools/device_cuda.sh's icache stage writes it);
DISASM.txt: `nvdisasm -gi -c` of the cubin holding that kernel, built with
    -lineinfo (line info leaves the SASS as it is, so the profiled binary
    may be built without it): on the GPU machine,
    `cuobjdump -xelf all decode_r1.cu.o && nvdisasm -gi -c decode_r1.sm_90a.cubin`;
KERNEL: a piece of the kernel's name as ncu prints it, e.g.
    "cu_attn_wo_kernel<(int)0>"; the same kernel's mangled name is found in
    DISASM.txt by its instruction count;
SRC_ROOT: the tree the cubin was built from, for the functions' names
    (default: this checkout).

Prints the kernel's bytes that ran and ran about once a warp (as
tools/ncu_footprint.py counts them), then the once-a-warp bytes by the
innermost inlined function (its file and the name on the line that opens
it) and by source line. The two listings must hold the same instructions
in the same order; the script checks every opcode and stops if not.
"""
import os
import re
import sys
from collections import Counter

from ncu_footprint import kernels, number  # the CSV's kernels, its counts

LINE = re.compile(r'\s*//## File "([^"]+)", line (\d+)')
INSN = re.compile(r"\s*/\*([0-9a-f]+)\*/\s+(.*?)\s*;")
SECTION = re.compile(r"\.section\s+\.text\.(\S+?),")
PRED = re.compile(r"^@!?U?P\w+\s+")


def opcode(sass):
    sass = PRED.sub("", sass.strip())
    return sass.split()[0] if sass else ""


def ncu_kernel(path, piece):
    """[(sass, executions)] of the first kernel whose name holds piece"""
    with open(path) as f:
        for name, header, rows in kernels(f):
            if piece in name:
                col = {h: i for i, h in enumerate(header)}
                return [(r[col["Source"]], number(r[col["Instructions Executed"]])) for r in rows]
    return []


def disasm_functions(path):
    """{mangled name: [(sass, (file:line, ...) innermost first)]}"""
    funcs, cur, pending, loc = {}, None, [], ()
    with open(path) as f:
        for line in f:
            m = SECTION.search(line)
            if m:
                cur = funcs.setdefault(m.group(1), [])
                pending, loc = [], ()
                continue
            if cur is None:
                continue
            m = LINE.match(line)
            if m:
                pending.append(line)
                continue
            m = INSN.match(line)
            if m:
                if pending:  # the first comment: the innermost place, then where it was inlined
                    places = re.findall(r'"([^"]+)", line (\d+)', pending[0])
                    loc = tuple(os.path.basename(p) + ":" + n for p, n in places)
                    pending = []
                cur.append((m.group(2), loc))
    return funcs


def opener(path_cache, root, place):
    """file:name of the function whose definition line most recently opened before place"""
    file, line = place.rsplit(":", 1)
    if file not in path_cache:
        names = []
        for d in ("src/backend/cuda", "src", "include"):
            p = os.path.join(root, d, file)
            if os.path.exists(p):
                with open(p) as f:
                    name, kernel_next = None, False
                    for text in f:
                        m = re.match(r"^(?:__\w+__\s+|static\s+|inline\s+)*[\w:<>,\s\*&]*?\b(\w+)\s*\(", text)
                        if kernel_next:  # a kernel's name, on the line after __launch_bounds__
                            m2 = re.match(r"\s+(\w+)\s*\(", text)
                            name, kernel_next = (m2.group(1) if m2 else name), False
                        elif m and not text.startswith((" ", "\t", "#", "/", "}")):
                            kernel_next = m.group(1).startswith("__")
                            name = name if kernel_next else m.group(1)
                        names.append(name)
                break
        path_cache[file] = names
    names = path_cache[file]
    n = int(line)
    return file + ":" + (names[n - 1] if 0 < n <= len(names) and names[n - 1] else "?")


def main():
    if len(sys.argv) < 4:
        print(__doc__.strip())
        return 2
    src, dis, piece = sys.argv[1:4]
    top = 15
    rows = ncu_kernel(src, piece)
    if not rows:
        sys.exit(f"no kernel matching {piece!r} in {src}")
    funcs = [(n, i) for n, i in disasm_functions(dis).items() if len(i) == len(rows)]
    funcs = [(n, i) for n, i in funcs if all(opcode(a[0]) == opcode(b[0]) for a, b in zip(rows, i))]
    if len(funcs) != 1:
        sys.exit(f"{len(funcs)} functions of {dis} match the kernel's {len(rows)} instructions")
    name, insns = funcs[0]
    warps = rows[0][1]  # the entry instruction: once a warp
    ran = sum(16 for _, n in rows if n > 0)
    by_func, by_line, cache = Counter(), Counter(), {}
    root = sys.argv[4] if len(sys.argv) > 4 else os.path.join(os.path.dirname(__file__), "..")
    for (_, n), (_, loc) in zip(rows, insns):
        if n <= 0 or n > warps * 1.05 or not loc:
            continue
        by_func[opener(cache, root, loc[0])] += 16
        by_line[loc[0] + (" <- " + loc[1] if len(loc) > 1 else "")] += 16
    print(f"{name}: ran {ran / 1024:.1f} KB, once a warp ({warps} warps) "
          f"{sum(by_func.values()) / 1024:.1f} KB")
    print("  once a warp, by innermost function:")
    for k, v in by_func.most_common(top):
        print(f"  {v:6d} B  {k}")
    print("  once a warp, by source line (<- where it was inlined):")
    for k, v in by_line.most_common(top):
        print(f"  {v:6d} B  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
