#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Source lines of the perf samples taken inside a BPF program.

scripts/bench.sh, BENCH_PROFILE=lines: `perf script -F comm,ip,sym,symoff`
of a `perf record -g` on stdin, the program's line table from build/tests/tools/jit_lines as the
first argument, the path's ns/packet as the second. Prints the lines that
took the most samples and their share of the path's time.

This VM has no PMU: perf samples on cpu-clock, and a sample lands on the
oldest instruction not yet retired, so a line waiting for a cache miss
shows as the line *after* the load (or the load itself when what follows
needs it).
"""
import bisect
import collections
import re
import sys


def samples(lines):
    """Call chains (leaf first) of the samples taken inside a test run.

    Input: `perf script -F comm,ip,sym,symoff` of a `perf record -g`: a
    block per sample, the command alone on its first line, a frame a line.
    A test run is a test_run frame or JITed code; the dispatcher switch at
    the start of each run (set-up the kernel does not time) is left out.
    """
    block = []
    for line in list(lines) + [""]:
        line = line.strip()
        if line:
            block.append(line)
            continue
        frames, block = block[1:], []
        if not frames:
            continue
        if any("bpf_dispatcher_change_prog" in f for f in frames):
            continue
        if any("test_run" in f or re.search(r"bpf_prog_[0-9a-f]{16}_", f)
               for f in frames):
            yield frames


def main():
    table, ns = sys.argv[1], float(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    funcs, tag, cur = {}, None, None
    with open(table) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("tag "):
                tag = line[4:]
            elif line.startswith("func "):
                cur = funcs.setdefault(line[5:], [])
            elif cur is not None:
                off, rest = line.split(" ", 1)
                cur.append((int(off, 16), rest))
    starts = {f: [o for o, _ in sorted(v)] for f, v in funcs.items()}
    recs = {f: sorted(v) for f, v in funcs.items()}
    counts, total, prog, foreign = collections.Counter(), 0, 0, 0
    for frames in samples(sys.stdin):
        total += 1
        m = re.search(r"bpf_prog_([0-9a-f]{16})_(\w+)\+0x([0-9a-f]+)", frames[0])
        if not m or m.group(2) not in recs:
            continue
        # the main function carries the program's tag; a subprogram its own
        if m.group(2) == next(iter(recs)) and m.group(1) != tag:
            foreign += 1
            continue
        prog += 1
        i = bisect.bisect_right(starts[m.group(2)], int(m.group(3), 16)) - 1
        # by record, not by text: an inlined line has one record per site
        counts[(m.group(2),) + recs[m.group(2)][i] if i >= 0 else ("?", 0, "?")] += 1
    if not prog:
        print("  no samples in the program")
        return
    print(f"  {prog} of {total} samples inside the test runs in the program ({100 * prog / total:.1f}%, {ns * prog / total:.1f} ns of {ns:.1f})"
          + (f"; {foreign} in another build of it, left out" if foreign else ""))
    for (func, off, src), c in counts.most_common(top):
        print(f"  {100 * c / prog:5.1f}%  {ns * c / total:6.1f} ns  "
              f"{func}+{off:#x} {' '.join(src.split())[:90]}")


if __name__ == "__main__":
    main()
