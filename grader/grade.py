"""Grading a stage: build it, boot it (one boot per set of tests, in
parallel), match the transcript, run the computed checks, diagnose failures."""
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import build as build_mod
from . import checks as checks_mod
from . import diagnosis, emulators, labs, run, transcript
from .checks.common import end_of_run

MEMORY_CHOICES = (128, 192, 256)    # MiB: the seed picks one, so the memory map cannot be hard-coded
TIMEOUTS = {"total": 60.0, "progress": 15.0}


@dataclass
class CheckResult:
    title: str
    points: int
    passed: bool
    message: str = ""
    details: list = field(default_factory=list)
    hints: list = field(default_factory=list)
    boot: str = "default"
    seconds: float = 0.0

    @property
    def score(self):
        return self.points if self.passed else 0


@dataclass
class StageResult:
    lab: object
    seed: int
    memory_mb: int
    emulator: str
    source: str
    checks: list = field(default_factory=list)
    build_error: object = None
    runs: dict = field(default_factory=dict)
    kargs: dict = field(default_factory=dict)
    diagnoses: dict = field(default_factory=dict)
    stopped: str = ""           # why the default boot did not end cleanly
    elapsed: float = 0.0

    @property
    def score(self):
        return sum(c.score for c in self.checks)

    @property
    def total(self):
        return sum(c.points for c in self.checks)

    @property
    def full(self):
        return bool(self.checks) and all(c.passed for c in self.checks)


def new_seed():
    return random.SystemRandom().randrange(1, 1 << 32)


def memory_for(seed):
    return MEMORY_CHOICES[seed % len(MEMORY_CHOICES)]


def kargs_for(seed, tests):
    return f"seed=0x{seed:08x} tests={tests}"


_EMULATOR_SLOTS = threading.BoundedSemaphore(2)


def set_parallel(jobs):
    global _EMULATOR_SLOTS
    _EMULATOR_SLOTS = threading.BoundedSemaphore(max(1, jobs))


def boot(build, seed, tests, emulator="qemu", timeouts=None, **kw):
    """One boot of a built stage with this seed and test selection."""
    timeouts = dict(TIMEOUTS, **(timeouts or {}))
    make = emulators.EMULATORS[emulator]
    kargs = kargs_for(seed, tests)
    with _EMULATOR_SLOTS:
        return run.run(lambda tmp: make(build.iso, tmp, kargs, memory_mb=memory_for(seed)),
                       total_timeout=timeouts["total"], progress_timeout=timeouts["progress"], **kw)


def source_name(solutions, submission, solutions_below):
    below = " (labs below it from solutions/)" if solutions_below and not solutions else ""
    if submission:
        return str(submission) + below
    return "solutions/" if solutions else "labs/ (your code)" + below


def grade_stage(lab_spec, solutions=False, submission=None, seed=None, emulator="qemu",
                root=labs.ROOT, outdir=None, timeouts=None, solutions_below=False):
    t0 = time.monotonic()
    lab = labs.find(lab_spec, root)
    seed = new_seed() if seed is None else seed
    result = StageResult(lab, seed, memory_for(seed), emulator, source_name(solutions, submission, solutions_below))
    spec_path = lab.dir / "expected.txt"
    specs = transcript.parse(spec_path.read_text(), str(spec_path)) if spec_path.is_file() else []
    pychecks = checks_mod.for_lab(lab.name)
    boots = {"default": "all", **checks_mod.BOOTS.get(lab.name, {})}
    try:
        b = build_mod.build(lab.number, solutions, submission, root, outdir, solutions_below=solutions_below)
    except build_mod.BuildError as e:
        result.build_error = e
        msg = f"build failed: {e.summary}"
        result.checks = ([CheckResult(s.title, s.points, False, msg) for s in specs]
                         + [CheckResult(c.title, c.points, False, msg, boot=c.boot) for c in pychecks])
        result.elapsed = time.monotonic() - t0
        return result
    with ThreadPoolExecutor(max_workers=len(boots)) as pool:
        futures = {name: pool.submit(boot, b, seed, tests, emulator, timeouts) for name, tests in boots.items()}
        result.runs = {name: f.result() for name, f in futures.items()}
    result.kargs = {name: kargs_for(seed, tests) for name, tests in boots.items()}

    default = result.runs["default"]
    ctx = checks_mod.Context(lab, seed, memory_for(seed), default, result.runs, build=b, root=root)
    ctx.values = {"seed": f"0x{seed:08x}", "cmdline": result.kargs["default"]}
    if lab.name in checks_mod.VARIABLES:
        ctx.values.update(checks_mod.VARIABLES[lab.name](ctx))

    matched = transcript.match(specs, default.lines, ctx.values)
    for s in specs:
        lr = matched[s.title]
        bad = transcript.failed(lr)
        partial = any(r.status in ("matched", "wrong", "forbidden") for r in lr if not r.expect.never)
        show_diff = bad and (partial or any(r.status == "forbidden" for r in lr))
        result.checks.append(CheckResult(
            s.title, s.points, not bad, transcript.explain(lr, ctx.values, default.lines),
            transcript.diff_view(lr, ctx.values, default.lines) if show_diff else [], s.hints if bad else [],
            seconds=default.elapsed))
    for c in pychecks:
        ctx.run = result.runs[c.boot]
        try:
            c.fn(ctx)
            result.checks.append(CheckResult(c.title, c.points, True, boot=c.boot, seconds=ctx.run.elapsed))
        except checks_mod.Fail as f:
            result.checks.append(CheckResult(c.title, c.points, False, f.message, f.details,
                                             boot=c.boot, seconds=ctx.run.elapsed))
    problem = end_of_run(default)
    if problem:
        for c in result.checks:     # hints about code the kernel never reached only mislead
            if not c.passed and not c.details and c.message.startswith("missing") and not default.output:
                c.hints = []
        result.stopped = problem[0]
        fails = [ln for ln in default.lines if ln.startswith("[boot] FAIL") or ln.startswith("[panic]")]
        if fails and lab.number > 1:
            result.stopped += (f". Stage {lab.number:02d} runs your code of every lab up to {lab.name}: "
                               f"to grade {lab.name} alone on the reference labs below it, add BELOW=solutions")
    failing_boots = {c.boot for c in result.checks if not c.passed}
    roots = [str(root)] + ([str(Path(submission).resolve())] if submission else [])
    for name in failing_boots:
        lines, _ = diagnosis.diagnose(result.runs[name].log, b.elf, lab.number, roots, emulator)
        if lines:
            result.diagnoses[name] = lines
    result.elapsed = time.monotonic() - t0
    return result
