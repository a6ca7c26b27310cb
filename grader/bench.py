"""Benchmark (not a test): how much the grader adds to a raw emulator boot,
and how long grading every stage takes. Prints medians over several runs.

    make bench            or   python3 -m grader.bench [--runs N]
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time

from . import build, deps, emulators, grade, labs


def median_time(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), max(times)


def raw_boot(iso, seed):
    """The grader's exact QEMU command, run bare: no runner, no checks."""
    # the args disk is made once, outside the timing
    tmp = tempfile.mkdtemp(prefix="kit-bench-")
    launch = emulators.qemu(iso, tmp, grade.kargs_for(seed, "all"), memory_mb=grade.memory_for(seed))
    def once():
        r = subprocess.run(launch.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
        assert r.returncode == emulators.qemu_status(emulators.EXIT_OK), r.returncode
    return once, tmp


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m grader.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args(argv)
    try:
        deps.ensure("kernel")
    except deps.MissingTools as e:
        print(f"setup: {e}", file=sys.stderr)
        return 2
    seed = 0x5EED
    all_labs = labs.discover()
    print(f"benchmark: medians of {args.runs} runs (min..max), QEMU TCG, {len(all_labs)} stages")
    rows = []
    for lab in all_labs:
        b = build.build(lab.number, solutions=True)
        once, tmp = raw_boot(b.iso, seed)
        raw = median_time(once, args.runs)
        graded = median_time(lambda: grade.boot(b, seed, "all"), args.runs)
        subprocess.run(["rm", "-rf", tmp])
        rows.append((lab.name, raw, graded))
        print(f"  stage {lab.name:12s} raw qemu boot {raw[0]:.3f}s ({raw[1]:.3f}..{raw[2]:.3f})   "
              f"through the grader's runner {graded[0]:.3f}s ({graded[1]:.3f}..{graded[2]:.3f})   "
              f"ratio {graded[0] / raw[0]:.2f}x")
    def grade_all():
        r = subprocess.run([sys.executable, "-m", "grader", "grade", "--solutions", "--seed", hex(seed)],
                           cwd=labs.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        assert r.returncode == 0
    whole = median_time(grade_all, max(3, args.runs // 2))
    print(f"  `python3 -m grader grade --solutions` (every stage, builds cached, new process each time): "
          f"{whole[0]:.3f}s ({whole[1]:.3f}..{whole[2]:.3f})")
    worst = max(g[0] / r[0] for _, r, g in rows)
    print(f"summary: grader overhead at most {worst:.2f}x a raw boot (target 1.10x); "
          f"grading all {len(all_labs)} stages {whole[0]:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
