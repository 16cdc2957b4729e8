#!/usr/bin/env python3
"""Time command sequences side by side, alternating per iteration.

usage: pairs.py RUNS [--warmup N] LABEL 'CMD' ['CMD'...] [-- LABEL 'CMD'...]...

Each variant is a label and one or more command lines (split with shlex,
run one after the other without a shell, stdout to /dev/null).  Every
iteration runs each variant once, in turn, so a change in the machine's
load falls on all of them alike.  Per variant it prints the median and the
quartiles of the wall time and of the CPU time (user + sys of the commands,
from wait4's rusage: microseconds, unlike time(1)'s centiseconds) of one
sequence (and the CPU of each command), and the ratio of each variant's medians to the last variant's.
A command that fails stops the benchmark.
"""
import os
import shlex
import statistics
import sys
import time


def parse(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    runs = int(argv[0])
    rest = argv[1:]
    warmup = 3
    if rest[0] == "--warmup":
        warmup = int(rest[1])
        rest = rest[2:]
    variants, cur = [], None
    for a in rest:
        if a == "--":
            cur = None
        elif cur is None:
            cur = (a, [])
            variants.append(cur)
        else:
            cur[1].append(shlex.split(a))
    if not variants or any(not cmds for _, cmds in variants):
        sys.exit("pairs.py: each variant needs a label and at least one command")
    return runs, warmup, variants


def run_sequence(cmds, devnull):
    """Run the commands in turn: (wall, [(user, sys) of each command]) in seconds."""
    t0 = time.perf_counter()
    cpu = []
    for argv in cmds:
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status, ru = os.wait4(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("pairs.py: `%s` failed (status %d)" % (shlex.join(argv), os.waitstatus_to_exitcode(status)))
        cpu.append((ru.ru_utime, ru.ru_stime))
    return time.perf_counter() - t0, cpu


def quartiles(xs):
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], statistics.median(xs), q[2]


def main():
    runs, warmup, variants = parse(sys.argv[1:])
    devnull = os.open(os.devnull, os.O_WRONLY)
    wall = {label: [] for label, _ in variants}
    cpu = {label: [] for label, _ in variants}
    steps = {label: [[] for _ in cmds] for label, cmds in variants}

    for i in range(warmup + runs):
        for label, cmds in variants:
            w, c = run_sequence(cmds, devnull)
            if i >= warmup:
                wall[label].append(w * 1000)
                cpu[label].append(sum(u + s for u, s in c) * 1000)
                for k, (u, s) in enumerate(c):
                    steps[label][k].append((u + s) * 1000)
    ref = variants[-1][0]
    ref_w, ref_c = statistics.median(wall[ref]), statistics.median(cpu[ref])
    for label, _ in variants:
        wq, cq = quartiles(wall[label]), quartiles(cpu[label])
        line = "%-16s wall %7.3f ms (%.3f-%.3f)  cpu %7.3f ms (%.3f-%.3f)" % (label, wq[1], wq[0], wq[2], cq[1], cq[0],
                                                                            cq[2])
        if label != ref:
            line += "  ratio wall %.2f cpu %.2f" % (wq[1] / ref_w, cq[1] / ref_c)
        print(line)
        if len(steps[label]) > 1:
            print("%-16s cpu of each command: %s" % ("", ", ".join("%.3f ms" % statistics.median(x)
                                                                    for x in steps[label])))


if __name__ == "__main__":
    main()
