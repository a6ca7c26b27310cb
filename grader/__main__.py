"""The kit's command line: python3 -m grader COMMAND (the Makefile calls it).

  grade   grade one stage (--lab) or every stage; exit 0 only at full marks
  demo    build the highest stage from solutions/, show its output, grade it
  qemu    build a stage and boot it with the serial line on this terminal
  bochs   the same in Bochs;  bochs-debug: in the Bochs debugger, stopped at _start
  build   build a stage only
  setup   install (as root) or name the Debian packages the kit needs
Instructors' copies also have: batch, batch-merge, gradescope, handout, similarity, release.
"""
import argparse
import importlib
import os
import re
import sys
from pathlib import Path

# What a grade needs before its emulator starts, and no more: the report, the
# diagnosis and the thread pools of multi-stage grades are imported later,
# while the kernel boots (a student waits for `make grade`, not for imports).
from . import build as build_mod
from . import deps, emulators, grade, intake, labs, run, safe, scratch, stage as stage_mod, transcript
from .request import Reports, Request
from .stage import Run

INSTRUCTOR_TOOLS = ("batch", "gradescope", "handout", "similarity", "release")  # modules a student's copy leaves out
COMMANDS = ("grade", "demo", "qemu", "bochs", "bochs-debug", "build", "gdb", "setup")  # the parser builds one


def parse_seed(text):
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a number such as 0x1a2b3c4d, not '{text}'") from None
    if not 0 <= v < 1 << 32:
        raise argparse.ArgumentTypeError("a seed fits in 32 bits")
    return v


def flag(value):
    return str(value).strip().lower() not in ("", "0", "no", "false")


def add_common(p, lab_required=False):
    p.add_argument(
        "--lab", required=lab_required, help="a lab: its number (1 or 01), its folder name or the name after the number"
    )
    p.add_argument(
        "--solutions",
        default=os.environ.get("SOLUTIONS", "0"),
        nargs="?",
        const="1",
        help="take student files from solutions/",
    )
    p.add_argument("--seed", type=parse_seed, help="the per-run seed (default: random)")
    p.add_argument(
        "--emulator", default=os.environ.get("EMULATOR", "qemu"), choices=sorted(emulators.EMULATORS) + ["both"]
    )
    p.add_argument("--no-install", action="store_true", help="never run apt-get, only say what is missing")
    # what only some commands have, so that request_of reads every command's arguments alike
    # (a parser-level default overrides an argument's own: these are the only ones)
    p.set_defaults(
        submission=None, solutions_below=False, memory=None, jobs=os.cpu_count() or 2, tests="all", gdb=False
    )
    p.set_defaults(json=None, junit=None, gradescope=None, show_output=False, raw=False)


def below_option(p):
    p.add_argument(
        "--solutions-below",
        action="store_true",
        help="each lab before --lab from solutions/ where its reference code is released, else from your "
        "code (your code, or --submission, for --lab itself); BELOW=solutions",
    )


def make_parser(command=None):
    """The command line's parser; with `command`, only that command's part
    (building every part and importing the instructors' tools costs a
    student's `make grade` about 10 ms)."""

    def want(name):
        return command is None or command == name

    ap = argparse.ArgumentParser(
        prog="python3 -m grader", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    if want("grade"):
        g = sub.add_parser("grade", help="grade stages")
        add_common(g)
        g.add_argument("--submission", type=Path, help="a student tree: only its student files are used")
        below_option(g)
        g.add_argument("--memory", type=int, help="the machine's RAM in MiB (default: chosen by the seed)")
        g.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2, help="parallel boots")
        g.add_argument("--json", type=Path, help="write a JSON report here")
        g.add_argument("--junit", type=Path, help="write a JUnit XML report here")
        g.add_argument("--gradescope", type=Path, help="write Gradescope's results.json here")
        g.add_argument("--show-output", action="store_true", help="print each boot's serial output")
    if want("demo"):
        d = sub.add_parser("demo", help="build, boot and grade the finished kernel from solutions/")
        add_common(d)
    for name, text in (
        ("qemu", "boot a stage in QEMU, serial on this terminal"),
        ("bochs", "boot a stage in Bochs, serial on this terminal"),
        ("bochs-debug", "boot a stage in the Bochs debugger, stopped at _start"),
    ):
        if not want(name):
            continue
        q = sub.add_parser(name, help=text)
        add_common(q, lab_required=True)
        q.add_argument("--gdb", action="store_true", help="QEMU: wait for GDB on a free local port")
        q.add_argument("--tests", default="all", help="the tests= list on the command line")
        q.add_argument("--submission", type=Path, help="boot a student's submission (loose files or a tree)")
        below_option(q)
        q.add_argument(
            "--raw",
            action="store_true",
            help="the serial bytes as they come, escape sequences included (default: shown as text, \\x1b[2J)",
        )
    if want("build"):
        b = sub.add_parser("build", help="build a stage")
        add_common(b, lab_required=True)
        below_option(b)
    if want("gdb"):
        gd = sub.add_parser("gdb", help="attach GDB to the QEMU that `make qemu-gdb` started")
        gd.add_argument("--no-install", action="store_true")
    if want("setup"):
        s = sub.add_parser("setup", help="install or name the Debian packages the kit needs")
        s.add_argument("--for", dest="group", default="kernel", choices=sorted(deps.GROUPS))
        s.add_argument("--no-install", action="store_true")
        s.add_argument("--list", action="store_true", help="print the package names and stop")
        s.add_argument(
            "--apptainer", action="store_true", help="print an Apptainer definition file with these packages"
        )
    for name in INSTRUCTOR_TOOLS:
        if not (want(name) or (command or "").startswith(name)):
            continue
        try:
            importlib.import_module(f"grader.{name}").add_parsers(sub)
        except ModuleNotFoundError as e:
            if e.name != f"grader.{name}":
                raise
            sub.add_parser(
                name, help="an instructor's tool (not in a student's copy)", add_help=False, prefix_chars="\0"
            ).add_argument("rest", nargs="*")
    return ap


def cmd_setup(args):
    if args.list:
        print(" ".join(deps.all_packages(args.group)))
        return 0
    if args.apptainer:
        print(deps.apptainer_definition(args.group), end="")
        return 0
    deps.ensure(args.group, install=not args.no_install)
    print(f"setup: every tool for '{args.group}' is installed")
    if any(n.item == emulators.QEMU for n in deps.GROUPS[args.group]):
        from . import host

        h = host.probe()
        print(f"setup: {h.summary()}")
        if h.offers("avx2") is False:
            print(f"setup: {h.lacks('avx2')}: lab 06 grades its SSE2 path here, not the AVX2 one")
    return 0


def emulator_names(choice):
    return ["qemu", "bochs"] if choice == "both" else [choice]


def request_of(args):
    """The Request of a command that builds, boots or grades: made here once."""
    return Request(
        labs=(args.lab,) if args.lab else (),
        seed=stage_mod.seed_or_new(args.seed),
        solutions=flag(args.solutions),
        below=args.solutions_below,
        submission=args.submission,
        emulators=("bochs",) if args.cmd in ("bochs", "bochs-debug") else tuple(emulator_names(args.emulator)),
        memory_mb=args.memory,
        tests=args.tests,
        jobs=args.jobs or 1,
        reports=Reports(args.json, args.junit, args.gradescope, args.show_output),
        install=not args.no_install,
    )


def grade_many(req, stages):
    """Grade each stage under each emulator asked for; the same seed for all."""
    slots = grade.emulator_slots(req.jobs)
    jobs = [(st, emu) for st in stages for emu in req.emulators]
    progress = None
    if len(jobs) > 1 or sys.stderr.isatty():  # a lone grade in a pipe shows nothing while it runs
        from . import report

        progress = report.Progress(len(jobs), sys.stdout, sys.stderr)

    def one(job):
        return grade.grade_stage(
            job[0], req.seed, emulator=job[1], memory_mb=req.memory_mb, slots=slots, progress=progress
        )

    if len(jobs) <= 1:
        try:
            return [one(job) for job in jobs]
        finally:
            if progress:
                progress.close()
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), req.jobs))) as pool:
        futures = [pool.submit(one, job) for job in jobs]
        for f in as_completed(futures):
            progress.done(f.result())
    progress.close()
    return [f.result() for f in futures]


def cmd_grade(req):
    for emu in req.emulators:
        deps.ensure(emu, install=req.install)
    run.mark("tools-checked")
    if req.submission and not req.submission.is_dir():
        raise labs.LabError(f"submission '{req.submission}' is not a directory")
    specs = list(req.labs) or [lab.name for lab in labs.discover()]
    todo, refused = [], {}
    for spec in specs:
        try:
            todo.append(req.stage(spec))
        except intake.IntakeError as e:
            refused[spec] = (stage_mod.make(spec, req.origin), e)
    graded = iter(grade_many(req, todo))
    stages = [
        intake.refused(*refused[spec], req.seed, emu) if spec in refused else next(graded)
        for spec in specs
        for emu in req.emulators
    ]
    built = [st.build for st in stages if st.build is not None]
    if built and not req.submission:
        build_mod.link_compile_commands(max(built, key=lambda b: b.lab.number))
    if req.reports.show_output:
        for st in stages:
            r = st.boots.get("default")
            if r is not None:
                print(f"--- serial output of stage {st.lab.name} ({st.runs['default'].cmdline}) ---")
                print(r.text, end="" if r.text.endswith("\n") else "\n")
                print("--- end of serial output ---")
    from . import report

    report.terminal(stages)
    if req.reports.json:
        report.write_json(stages, req.reports.json)
    if req.reports.junit:
        report.write_junit(stages, req.reports.junit)
    if req.reports.gradescope:
        report.write_gradescope(stages, req.reports.gradescope)
    return 0 if all(s.full for s in stages) else 1


def cmd_demo(req):
    """The finished kernel: the highest lab from solutions/, its serial output shown, then graded."""
    return cmd_grade(
        Request(
            labs=req.labs or (labs.discover()[-1].name,),
            seed=req.seed,
            solutions=True,
            emulators=req.emulators,
            reports=Reports(show_output=True),
            install=req.install,
        )
    )


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cmd_build(req):
    deps.ensure("kernel", install=req.install)
    b = build_mod.build(req.stage(req.labs[0]))
    build_mod.link_compile_commands(b)
    print(f"built {b.elf.relative_to(labs.ROOT)} and {b.iso.name}" + (" (up to date)" if b.cached else ""))
    say_below(b.stage)
    return 0


def say_below(st):
    """With BELOW=solutions, which labs below came from where (on stderr)."""
    if st.origin.below_from_solutions and len(st.labs) > 1:
        print(f"stage {st.number:02d}: student files from {st.sentence}", file=sys.stderr)


def cmd_bochs_debug(req, raw=False):
    """Bochs's own debugger on this terminal: a breakpoint at _start, magic
    breakpoints (xchg %bx,%bx) on, serial output copied to this terminal
    (control characters shown as text unless `raw`)."""
    import threading

    deps.ensure("bochs", install=req.install)
    b = build_mod.build(req.stage(req.labs[0]))
    say_below(b.stage)
    start = b.symbols.get("_start")
    r = Run(req.seed, req.tests, emulator="bochs")
    print(
        f"Bochs debugger: stops at _start ({start:#x}) and at every `xchg %bx, %bx` in the kernel.\n"
        "Commands: c continue, s step, n next, r registers, sreg, creg, info gdt, info idt, info tab,\n"
        "page ADDR, x /8gx ADDR, u /10 (disassemble), lb ADDR (breakpoint), q quit. "
        "Serial output appears here too.",
        file=sys.stderr,
    )
    with scratch.folder("kit-run-") as tmp:
        launch = emulators.bochs(
            b.iso,
            tmp,
            r.cmdline,
            memory_mb=r.memory_mb,
            exits=b.stage.exit_values(),
            debugger=True,
            breakpoints=[start],
        )
        fd = os.open(launch.serial_fifo, os.O_RDWR | os.O_NONBLOCK)
        done = threading.Event()

        def copy():
            import select

            while not done.is_set():
                if select.select([fd], [], [], 0.1)[0]:
                    data = os.read(fd, 4096)
                    sys.stdout.buffer.write(data if raw else safe.output(data).encode())
                    sys.stdout.flush()

        t = threading.Thread(target=copy, daemon=True)
        t.start()
        import subprocess

        proc = subprocess.Popen(launch.argv, cwd=tmp)
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.wait()  # Ctrl-C breaks into the debugger; quit with q
        finally:
            if proc.poll() is None:
                proc.kill()
            done.set()
            t.join()
            os.close(fd)
    return 0


def cmd_qemu(req, gdb=False, raw=False):
    """Boot a stage with its serial line on this terminal (QEMU or Bochs, as
    the request says): what the kernel sends is shown as text, an escape
    sequence as \\x1b[...; `raw` passes its bytes through as they are."""
    emulator = req.emulators[0]
    deps.ensure(emulator, install=req.install)
    b = build_mod.build(req.stage(req.labs[0]))
    build_mod.link_compile_commands(b)
    r = Run(req.seed, req.tests, emulator=emulator)
    port = free_port() if gdb else None
    gdbinit = labs.ROOT / "build" / "gdbinit"
    if port:
        gdbinit.unlink(missing_ok=True)  # never let `make gdb` find an old session
    print(
        f"booting {b.iso.relative_to(labs.ROOT)} in {emulator} with `{r.cmdline}`, "
        f"{r.memory_mb} MiB; Ctrl-C stops it",
        file=sys.stderr,
    )
    say_below(b.stage)
    if port:
        gdbinit.write_text(
            f"# written by `make qemu-gdb` (grader process {os.getpid()}), removed when it stops\n"
            f"file {b.elf}\nset architecture i386:x86-64\n"
            f"target remote 127.0.0.1:{port}\nhbreak kmain\n"
        )
        print(
            f"QEMU waits for GDB on 127.0.0.1:{port}. In another terminal: make gdb "
            f"(or: gdb -x {gdbinit.relative_to(labs.ROOT)})",
            file=sys.stderr,
        )
    out = sys.stdout.buffer

    def show(data):
        out.write(data if raw else safe.output(data).encode())
        out.flush()

    exits = b.stage.exit_values()
    try:
        result = run.run(
            lambda tmp: emulators.EMULATORS[emulator](
                b.iso, tmp, r.cmdline, memory_mb=r.memory_mb, exits=exits, gdb_port=port
            ),
            total_timeout=24 * 3600 if port else 120,
            progress_timeout=None if port else 60,
            on_output=show,
        )
    finally:
        if port:
            gdbinit.unlink(missing_ok=True)
    if result.reason == "interrupted" or run.STOP.is_set():
        meaning = "stopped by Ctrl-C"
    else:
        meaning = result.outcome.text if result.outcome else result.reason
    print(f"\n[{emulator} stopped: {meaning}]", file=sys.stderr)
    # Watching a run is not grading it: a kernel that panics or double-faults on
    # purpose (TESTS=overflow) ran as asked. Only an emulator that did not run fails.
    return 1 if result.reason == "start-failed" else 0


def instructor_only(args):
    print(
        f"`{args.cmd}` is an instructor's tool: it is not part of this copy of the kit (a student's copy "
        "has no instructor tools)",
        file=sys.stderr,
    )
    return 2


GDB_WRITER = re.compile(r"grader process (\d+)")


def cmd_gdb(args):
    """Attach GDB to the QEMU that `make qemu-gdb` started, if one is waiting."""
    gdbinit = labs.ROOT / "build" / "gdbinit"
    text = gdbinit.read_text() if gdbinit.is_file() else ""
    m = GDB_WRITER.search(text)
    alive = bool(m) and Path(f"/proc/{m.group(1)}").exists()
    if not alive:
        gdbinit.unlink(missing_ok=True)
        print(
            "gdb: no QEMU is waiting for GDB. Start one first, in another terminal: "
            "make qemu-gdb LAB=NN (it prints `QEMU waits for GDB on ...`), then run make gdb again",
            file=sys.stderr,
        )
        return 1
    deps.ensure("gdb", install=not args.no_install)
    os.execvp("gdb", ["gdb", "-q", "-x", str(gdbinit)])


def _stop(signum, _frame):
    """Ctrl-C (or SIGTERM, SIGHUP): every run ends at once and its emulator is
    reaped; the grading goes on to its (partial) report. A second Ctrl-C
    leaves at once."""
    if run.STOP.is_set():
        raise KeyboardInterrupt
    run.STOP.set()
    # Threads may still be computing a lab's reference values (pure Python,
    # which nobody will read now); at the default 5 ms switch interval they
    # hold the interpreter so long that stopping the emulators and writing
    # the partial report took 1.5 s instead of 0.2 s.
    sys.setswitchinterval(1e-4)


def main(argv=None):
    import signal

    run.mark("main")
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and argv[0] in COMMANDS else None
    args = make_parser(command).parse_args(argv)
    if args.cmd != "bochs-debug":  # there Ctrl-C belongs to the Bochs debugger
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _stop)
    requested = {  # the commands that build, boot or grade: they take the Request
        "grade": cmd_grade,
        "demo": cmd_demo,
        "qemu": lambda req: cmd_qemu(req, gdb=args.gdb, raw=args.raw),
        "bochs": lambda req: cmd_qemu(req, raw=args.raw),
        "bochs-debug": lambda req: cmd_bochs_debug(req, raw=args.raw),
        "build": cmd_build,
    }
    plain = {"setup": cmd_setup, "gdb": cmd_gdb}
    try:
        if args.cmd in requested:
            status = requested[args.cmd](request_of(args))
        else:
            status = plain.get(args.cmd, getattr(args, "run", instructor_only))(args)
        if run.STOP.is_set():
            print("\ninterrupted (Ctrl-C): every emulator was stopped; what is above is partial", file=sys.stderr)
            return 130
        return status
    except deps.MissingTools as e:
        print(f"setup: {e}", file=sys.stderr)
    except labs.LabError as e:
        print(f"error: {safe.line(e, None)}", file=sys.stderr)
    except intake.IntakeError as e:
        print(f"error: {safe.line(e.summary)}" + (f" ({safe.line(e.details)})" if e.details else ""), file=sys.stderr)
    except transcript.TranscriptError as e:
        print(f"error in an expected transcript: {safe.line(e, None)}", file=sys.stderr)
    except build_mod.BuildError as e:
        print(f"build failed: {safe.line(e.summary)}\n{safe.block(e.details, 40)}", file=sys.stderr)
        return 130 if run.STOP.is_set() else 1
    except KeyboardInterrupt:
        print("\ninterrupted; every emulator was stopped", file=sys.stderr)
        return 130
    except Exception as e:  # a grader bug: one line, details on request
        if os.environ.get("KIT_DEBUG"):
            raise
        print(
            f"internal error in the grader: {type(e).__name__}: {safe.line(e)} "
            "(run again with KIT_DEBUG=1 for the traceback, and report it)",
            file=sys.stderr,
        )
    return 2


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every file is closed, every run folder removed, every emulator reaped by
    # now, but after a second Ctrl-C, by a thread stopped halfway: what it
    # left goes here. Then leave without the interpreter's teardown
    # (milliseconds a student waits).
    scratch.clean_up()
    os._exit(status)
