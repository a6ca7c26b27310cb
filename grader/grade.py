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
    bonus: bool = False         # a challenge: optional points, outside the total

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
    build: object = None        # build.Build, when the stage built

    @property
    def score(self):
        return sum(c.score for c in self.checks if not c.bonus)

    @property
    def bonus(self):
        return sum(c.score for c in self.checks if c.bonus)

    @property
    def total(self):
        return sum(c.points for c in self.checks if not c.bonus)

    @property
    def full(self):
        return bool(self.checks) and all(c.passed for c in self.checks if not c.bonus)


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


def boot(build, seed, tests, emulator="qemu", timeouts=None, memory_mb=None, talk=None, **kw):
    """One boot of a built stage with this seed and test selection; `talk`
    (a checks.Interaction) adds command-line words and a line hook."""
    timeouts = dict(TIMEOUTS, **(timeouts or {}))
    make = emulators.EMULATORS[emulator]
    kargs = kargs_for(seed, tests) + (f" {talk.kargs}" if talk and talk.kargs else "")
    memory_mb = memory_mb or memory_for(seed)
    opts = talk.launch if talk else {}
    if talk:
        kw["on_line"] = talk.on_line
    with _EMULATOR_SLOTS:
        return run.run(lambda tmp: make(build.iso, tmp, kargs, memory_mb=memory_mb, **opts),
                       total_timeout=timeouts["total"], progress_timeout=timeouts["progress"], **kw)


def source_name(solutions, submission, solutions_below):
    below = " (labs below it from solutions/)" if solutions_below and not solutions else ""
    if submission:
        return str(submission) + below
    return "solutions/" if solutions else "labs/ (your code)" + below


def grade_stage(lab_spec, solutions=False, submission=None, seed=None, emulator="qemu",
                root=labs.ROOT, outdir=None, timeouts=None, solutions_below=False, memory_mb=None):
    """Build, boot and check one stage. memory_mb overrides the machine size
    the seed would pick (a mutant test boots a deliberately small machine)."""
    t0 = time.monotonic()
    lab = labs.find(lab_spec, root)
    seed = new_seed() if seed is None else seed
    memory_mb = memory_mb or memory_for(seed)
    result = StageResult(lab, seed, memory_mb, emulator, source_name(solutions, submission, solutions_below))
    spec_path = lab.dir / "expected.txt"
    specs = transcript.parse(spec_path.read_text(), str(spec_path)) if spec_path.is_file() else []
    pychecks = [c for c in checks_mod.for_lab(lab.name) if emulator in c.emulators]
    boots = {"default": "all", **checks_mod.BOOTS.get(lab.name, {})}
    talk = checks_mod.INTERACTIONS.get(lab.name)
    talk = talk if talk and emulator in talk.emulators else None
    try:
        b = build_mod.build(lab.number, solutions, submission, root, outdir, solutions_below=solutions_below)
    except build_mod.BuildError as e:
        result.build_error = e
        msg = f"build failed: {e.summary}"
        result.checks = ([CheckResult(s.title, s.points, False, msg, bonus=s.bonus) for s in specs]
                         + [CheckResult(c.title, c.points, False, msg, boot=c.boot) for c in pychecks])
        result.elapsed = time.monotonic() - t0
        return result
    result.build = b
    with ThreadPoolExecutor(max_workers=len(boots) + 1) as pool:
        futures = {name: pool.submit(boot, b, seed, tests, emulator, timeouts, memory_mb,
                                     talk if name == "default" else None)
                   for name, tests in boots.items()}
        early = checks_mod.PRECOMPUTE.get(lab.name)
        early = pool.submit(early, seed, root) if early else None
        result.runs = {name: f.result() for name, f in futures.items()}
        precomputed = early.result() if early else {}
    result.kargs = {name: kargs_for(seed, tests) for name, tests in boots.items()}
    if talk and talk.kargs:
        result.kargs["default"] += f" {talk.kargs}"

    default = result.runs["default"]
    ctx = checks_mod.Context(lab, seed, memory_mb, default, result.runs, build=b, root=root)
    ctx.values = {"seed": f"0x{seed:08x}", "cmdline": result.kargs["default"], **precomputed}
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
            seconds=default.elapsed, bonus=s.bonus))
    for c in pychecks:
        ctx.run = result.runs[c.boot]
        try:
            c.fn(ctx)
            result.checks.append(CheckResult(c.title, c.points, True, boot=c.boot, seconds=ctx.run.elapsed))
        except checks_mod.Fail as f:
            result.checks.append(CheckResult(c.title, c.points, False, f.message, f.details,
                                             boot=c.boot, seconds=ctx.run.elapsed))
        except Exception as e:      # a grader bug must not hide the other checks
            result.checks.append(CheckResult(c.title, c.points, False, f"internal error in this check: "
                                             f"{type(e).__name__}: {e} (please report it)", boot=c.boot))
    problem = end_of_run(default)
    if problem:
        for c in result.checks:     # hints about code the kernel never reached only mislead
            if not c.passed and not c.details and c.message.startswith("missing") and not default.output:
                c.hints = []
        result.stopped = problem[0]
        fails = [ln for ln in default.lines if ln.startswith("[boot] FAIL") or ln.startswith("[panic]")]
        if fails and lab.number > 1 and not solutions and not solutions_below:
            result.stopped += (f". Stage {lab.number:02d} runs your code of every lab up to {lab.name}: "
                               f"to grade {lab.name} alone on the reference labs below it, add BELOW=solutions")
    # Only a boot that ended badly has a fault worth explaining: from lab 05 on,
    # the log of a clean run is full of faults the kernel provoked and handled.
    failing_boots = {c.boot for c in result.checks if not c.passed
                     and not (result.runs[c.boot].outcome and result.runs[c.boot].outcome.ok)}
    roots = [str(root)] + ([str(Path(submission).resolve())] if submission else [])
    for name in failing_boots:
        lines, _ = diagnosis.diagnose(result.runs[name].log, b.elf, lab.number, roots, emulator,
                                      result.runs[name].lines)
        if lines:
            result.diagnoses[name] = lines
    result.elapsed = time.monotonic() - t0
    return result
