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

from . import build, deps, emulators, grade, labs, stage


def median_time(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), max(times)


def raw_boot(b, r):
    """The grader's exact emulator command, run bare: no runner, no checks.
    The args disk is made once, outside the timing; Bochs writes its serial
    output to a plain file instead of the runner's FIFO."""
    tmp = tempfile.mkdtemp(prefix="kit-bench-")
    emulator = r.emulator
    exits = b.stage.exit_values()
    launch = emulators.EMULATORS[emulator](b.iso, tmp, r.cmdline, memory_mb=r.memory_mb, exits=exits)
    if launch.serial_fifo:
        rc = launch.files["bochsrc"]
        rc.write_text(rc.read_text().replace(str(launch.serial_fifo), str(launch.serial_fifo) + ".txt"))
    expected = emulators.qemu_status(exits["OK"]) if emulator == "qemu" else 1

    def once():
        r = subprocess.run(launch.argv, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120)
        assert r.returncode == expected, r.returncode
    return once, tmp


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m grader.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--emulators", default="qemu,bochs", help="comma-separated: qemu,bochs")
    args = ap.parse_args(argv)
    try:
        for emulator in args.emulators.split(","):
            deps.ensure(emulator)
    except deps.MissingTools as e:
        print(f"setup: {e}", file=sys.stderr)
        return 2
    except KeyError as e:
        print(f"error: no emulator called {e}", file=sys.stderr)
        return 2
    seed = 0x5EED
    all_labs = labs.discover()
    print(f"benchmark: medians of {args.runs} runs (min..max), {len(all_labs)} stages, QEMU under TCG")
    summary = []
    for emulator in args.emulators.split(","):
        ratios = []
        for lab in all_labs:
            b = build.build(stage.make(lab.name, stage.Origin("solutions")))
            r = stage.Run(seed, emulator=emulator)
            once, tmp = raw_boot(b, r)
            raw = median_time(once, args.runs)
            graded = median_time(lambda: grade.boot(b, r), args.runs)
            subprocess.run(["rm", "-rf", tmp])
            ratios.append(graded[0] / raw[0])
            print(f"  {emulator:5s} stage {lab.name:12s} raw boot {raw[0]:.3f}s ({raw[1]:.3f}..{raw[2]:.3f})   "
                  f"grader's runner {graded[0]:.3f}s ({graded[1]:.3f}..{graded[2]:.3f})   "
                  f"ratio {graded[0] / raw[0]:.2f}x")

        def grade_all():
            r = subprocess.run([sys.executable, "-m", "grader", "grade", "--solutions", "--seed", hex(seed),
                                "--emulator", emulator], cwd=labs.ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=600)
            assert r.returncode == 0
        whole = median_time(grade_all, max(3, args.runs // 2))
        print(f"  {emulator:5s} `python3 -m grader grade --solutions --emulator {emulator}` (every stage, builds "
              f"cached, a new process each time): {whole[0]:.3f}s ({whole[1]:.3f}..{whole[2]:.3f})")
        summary.append(f"{emulator}: runner overhead at most {max(ratios):.2f}x a raw boot, "
                       f"all {len(all_labs)} stages graded in {whole[0]:.2f}s")
    print("summary: " + "; ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
