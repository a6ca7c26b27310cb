"""Benchmark (not a test): how much the grader adds to a raw emulator boot,
and how long grading every stage takes. Prints medians over several runs.

    make bench            or   python3 -m grader.bench [--runs N]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from . import build, deps, emulators, grade, labs, sandbox, stage


CRASHES = []  # bare boots that ended wrongly, run again and named in the summary


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
        name = launch.serial_fifo.name  # the bochsrc names it relative to the run's folder
        text = rc.read_text()
        assert f"dev={name}\n" in text, "the bochsrc names no serial FIFO to replace"
        rc.write_text(text.replace(f"dev={name}\n", f"dev={name}.txt\n"))
    expected = emulators.qemu_status(exits["OK"]) if emulator == "qemu" else 1

    def once():
        r = subprocess.run(
            launch.argv,
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
        if r.returncode != expected:  # not timed: said at the end, and run again
            CRASHES.append(f"{emulator} stage {b.stage.top.name}: a bare boot ended with status {r.returncode}")
            if len(CRASHES) > 10:
                sys.exit("bench: bare boots keep ending wrongly: " + "; ".join(CRASHES[-3:]))
            once()

    return once, tmp


def interleaved(fns, runs):
    """Each function run `runs` times, in turn (a, b, a, b, ...): medians, mins, maxes."""
    times = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t)
    return [(statistics.median(t), min(t), max(t)) for t in times]


def fmt(m):
    return f"{m[0]:.3f}s ({m[1]:.3f}..{m[2]:.3f})"


def whole_process(runs, seed):
    """What a student waits for: `make grade LAB=01` as a whole process,
    against the same QEMU boot started bare; and where the difference goes,
    from the marks the grader prints with KIT_TIMING (one monotonic clock)."""
    first = labs.discover()[0]
    b = build.build(stage.make(first.name, stage.Origin("solutions")))
    r = stage.Run(seed)
    tmp = tempfile.mkdtemp(prefix="kit-bench-")
    launch = emulators.qemu(b.iso, tmp, r.cmdline, memory_mb=r.memory_mb, exits=b.stage.exit_values())
    expected = emulators.qemu_status(launch.exits["OK"])
    marks = []

    def bare():
        p = subprocess.run(
            launch.command,
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
        assert p.returncode == expected, p.returncode

    def student():
        t0 = time.monotonic()
        p = subprocess.run(
            ["make", "-s", "grade", f"LAB={first.number:02d}", "SOLUTIONS=1", f"SEED=0x{seed:x}"],
            cwd=labs.ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env=dict(os.environ, KIT_TIMING="1"),
        )
        t1 = time.monotonic()
        assert p.returncode == 0, p.returncode
        ev = {ln.split()[1]: float(ln.split()[2]) for ln in p.stderr.splitlines() if ln.startswith("kit-timing: ")}
        marks.append(
            (
                ev["main"] - t0,
                ev["emulator-started"] - ev["main"],
                ev["emulator-done"] - ev["emulator-started"],
                t1 - ev["emulator-done"],
            )
        )

    whole, raw = interleaved([student, bare], runs)
    subprocess.run(["rm", "-rf", tmp])
    parts = [statistics.median(m[i] for m in marks) for i in range(4)]
    print(
        f"  make grade LAB={first.number:02d} (whole process, build cached) {fmt(whole)}   bare QEMU boot "
        f"{fmt(raw)}   ratio {whole[0] / raw[0]:.2f}x (target at most 1.15x)"
    )
    print(
        f"    where it goes (medians): make, python3 and the grader's imports {parts[0]:.3f}s; tools, cache "
        f"check, plan, args disk {parts[1]:.3f}s; the boot in its sandbox {parts[2]:.3f}s; checks and report "
        f"{parts[3]:.3f}s"
    )
    return whole[0] / raw[0]


def sandbox_cost(runs):
    """A fresh build of the last stage with and without the sandbox (every
    object compiled: the object cache is off for these builds)."""
    os.environ["KIT_OBJECT_CACHE"] = "off"
    last = labs.discover()[-1]
    st = stage.make(last.name, stage.Origin("solutions"))

    def fresh_build(off):
        def go():
            tmp = tempfile.mkdtemp(prefix="kit-bench-")
            old = os.environ.get("KIT_SANDBOX")
            os.environ["KIT_SANDBOX"] = "off" if off else "on"
            sandbox.mode.cache_clear()
            try:
                build.build(st, outdir=tmp)
            finally:
                os.environ.pop("KIT_SANDBOX") if old is None else os.environ.__setitem__("KIT_SANDBOX", old)
                sandbox.mode.cache_clear()
                subprocess.run(["rm", "-rf", tmp])

        return go

    sealed, open_ = interleaved([fresh_build(False), fresh_build(True)], runs)
    print(
        f"  fresh build of stage {last.name}: sealed (sandbox) {fmt(sealed)}, unsealed {fmt(open_)}: "
        f"the sandbox costs {sealed[0] - open_[0]:+.3f}s per build ({sealed[0] / open_[0]:.2f}x)"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python3 -m grader.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(
        f"benchmark, {time.strftime('%Y-%m-%d')}, {cpu}, {os.cpu_count()} cores: medians of {args.runs} runs "
        f"(min..max), {len(all_labs)} stages, QEMU under TCG"
    )
    summary = [f"make grade LAB=01 is {whole_process(args.runs, seed):.2f}x a bare QEMU boot"]
    sandbox_cost(max(3, args.runs // 2))
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
            print(
                f"  {emulator:5s} stage {lab.name:12s} raw boot {fmt(raw)}   grader's runner {fmt(graded)}   "
                f"ratio {graded[0] / raw[0]:.2f}x"
            )

        def grade_all():
            r = subprocess.run(
                [sys.executable, "-m", "grader", "grade", "--solutions", "--seed", hex(seed), "--emulator", emulator],
                cwd=labs.ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=600,
            )
            assert r.returncode == 0

        whole = median_time(grade_all, max(3, args.runs // 2))
        print(
            f"  {emulator:5s} whole course: `python3 -m grader grade --solutions --emulator {emulator}` (every "
            f"stage, builds cached, a new process each time): {fmt(whole)}"
        )
        summary.append(
            f"{emulator}: runner overhead at most {max(ratios):.2f}x a raw boot, "
            f"all {len(all_labs)} stages graded in {whole[0]:.2f}s"
        )
    print("summary: " + "; ".join(summary))
    for crash in CRASHES:
        print(f"  note: {crash} (that run's time counts with its rerun)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
