"""Grading a stage: build it, boot it (one boot per set of tests, in
parallel), match the transcript, run the computed checks, diagnose failures.

Stage N scores lab N's checks (its expected.txt and its checks.py) plus the
common end-of-run check; the diagnosis asks every lab of the stage.
"""
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import api, diagnosis, emulators, run, transcript
from . import build as build_mod
from .ending import COMMON_CHECKS, end_of_run
from .stage import Run, new_seed

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
    stage: object               # stage.Stage
    seed: int
    memory_mb: int
    emulator: str
    checks: list = field(default_factory=list)
    build_error: object = None
    runs: dict = field(default_factory=dict)        # boot name -> stage.Run (what it was given)
    boots: dict = field(default_factory=dict)       # boot name -> run.RunResult (what came back)
    diagnoses: dict = field(default_factory=dict)
    stopped: str = ""           # why the default boot did not end cleanly
    elapsed: float = 0.0
    build: object = None        # build.Build, when the stage built

    @property
    def lab(self):
        return self.stage.top

    @property
    def source(self):
        return self.stage.origin.sentence

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


@dataclass
class Plan:
    """What grading the stage's top lab takes, read once from its folder."""
    specs: list                 # transcript.CheckSpec from expected.txt
    checks: list                # api.CheckDef: the lab's computed checks and the common ones
    boots: dict                 # boot name -> tests=
    interaction: object         # api.Interaction for the default boot, or None
    values: list                # functions ctx -> {name: value}
    precompute: list            # functions (seed, lab) -> {name: value}


def plan_for(stage, emulator):
    lab = stage.top
    spec_path = lab.dir / "expected.txt"
    specs = transcript.parse(spec_path.read_text(), f"labs/{lab.name}/expected.txt") if spec_path.is_file() else []
    found = api.collect(lab.module("checks"))
    talk = found["interaction"]
    return Plan(specs, [c for c in COMMON_CHECKS + found["checks"] if emulator in c.emulators],
                {"default": "all", **found["boots"]}, talk if talk and emulator in talk.emulators else None,
                found["values"], found["precompute"])


def knowledge_of(stage):
    """The hints, places and kernel-report readers of every lab of the stage:
    hints by rank, then from the highest lab down; places from the highest lab down."""
    k = diagnosis.Knowledge()
    for lab, module in stage.lab_modules("checks"):
        found = api.collect(module)
        k.hints += found["hints"]
        k.places += found["places"]
        if found["kernel_report"]:
            k.kernel_report.append(found["kernel_report"])
    k.hints.sort(key=lambda h: h.rank)
    return k


_EMULATOR_SLOTS = threading.BoundedSemaphore(2)


def set_parallel(jobs):
    global _EMULATOR_SLOTS
    _EMULATOR_SLOTS = threading.BoundedSemaphore(max(1, jobs))


def boot(b, r, timeouts=None, talk=None, **kw):
    """One boot of a built stage with the Run `r`; `talk` (an api.Interaction)
    adds its line hook and emulator options."""
    timeouts = dict(TIMEOUTS, **(timeouts or {}))
    make = emulators.EMULATORS[r.emulator]
    opts = dict(talk.launch) if talk else {}
    if talk:
        kw["on_line"] = talk.on_line
    exits = b.stage.exit_values()
    with _EMULATOR_SLOTS:
        return run.run(lambda tmp: make(b.iso, tmp, r.cmdline, memory_mb=r.memory_mb, exits=exits, **opts),
                       total_timeout=timeouts["total"], progress_timeout=timeouts["progress"], **kw)


def plan_runs(plan, seed, emulator, memory_mb=None):
    extra = tuple(plan.interaction.kargs.split()) if plan.interaction and plan.interaction.kargs else ()
    return {name: Run(seed, tests, memory_mb, extra if name == "default" else (), emulator)
            for name, tests in plan.boots.items()}


def grade_stage(stage, seed=None, emulator="qemu", memory_mb=None, timeouts=None, outdir=None, boots=None):
    """Build, boot and check one stage (a stage.Stage). memory_mb overrides
    the machine size the seed would pick (a mutant may boot a small machine);
    boots, a list of boot names, keeps only those boots (and the default one)
    and their checks: a mutant that needs one boot is graded sooner."""
    t0 = time.monotonic()
    seed = new_seed() if seed is None else seed
    plan = plan_for(stage, emulator)
    if boots is not None:
        boots = {"default", *boots}
        plan.boots = {name: tests for name, tests in plan.boots.items() if name in boots}
        plan.checks = [c for c in plan.checks if c.boot in boots]
    result = StageResult(stage, seed, 0, emulator)
    result.runs = plan_runs(plan, seed, emulator, memory_mb)
    result.memory_mb = result.runs["default"].memory_mb
    try:
        result.build = build_mod.build(stage, outdir)
    except build_mod.BuildError as e:
        result.build_error = e
        msg = f"build failed: {e.summary}"
        result.checks = ([CheckResult(s.title, s.points, False, msg, bonus=s.bonus) for s in plan.specs]
                         + [CheckResult(c.title, c.points, False, msg, boot=c.boot) for c in plan.checks])
        result.elapsed = time.monotonic() - t0
        return result
    precomputed = boot_all(result, plan, timeouts)
    default = result.boots["default"]
    ctx = api.Context(stage, result.runs["default"], default, result.boots, result.build)
    ctx.values = {"seed": f"0x{seed:08x}", "cmdline": result.runs["default"].cmdline, **precomputed}
    for fn in plan.values:
        ctx.values.update(fn(ctx))
    result.checks = transcript_checks(plan.specs, default, ctx.values) + computed_checks(plan.checks, result, ctx)
    explain_the_end(result)
    diagnose(result)
    result.elapsed = time.monotonic() - t0
    return result


def boot_all(result, plan, timeouts):
    """Every boot of the stage in parallel, and the lab's slow values meanwhile."""
    lab = result.stage.top
    with ThreadPoolExecutor(max_workers=len(result.runs) + len(plan.precompute)) as pool:
        futures = {name: pool.submit(boot, result.build, r, timeouts, plan.interaction if name == "default" else None)
                   for name, r in result.runs.items()}
        early = [pool.submit(fn, result.seed, lab) for fn in plan.precompute]
        result.boots = {name: f.result() for name, f in futures.items()}
        precomputed = {}
        for f in early:
            precomputed.update(f.result())
    return precomputed


def transcript_checks(specs, default, values):
    matched = transcript.match(specs, default.lines, values)
    out = []
    for s in specs:
        lr = matched[s.title]
        bad = transcript.failed(lr)
        partial = any(r.status in ("matched", "wrong", "forbidden") for r in lr if not r.expect.never)
        show_diff = bad and (partial or any(r.status == "forbidden" for r in lr))
        out.append(CheckResult(s.title, s.points, not bad, transcript.explain(lr, values, default.lines),
                               transcript.diff_view(lr, values, default.lines) if show_diff else [],
                               s.hints if bad else [], seconds=default.elapsed, bonus=s.bonus))
    return out


def computed_checks(checks, result, ctx):
    out = []
    for c in checks:
        ctx.boot, ctx.run = result.boots[c.boot], result.runs[c.boot]
        seconds = ctx.boot.elapsed
        try:
            c.fn(ctx)
            out.append(CheckResult(c.title, c.points, True, boot=c.boot, seconds=seconds))
        except api.Fail as f:
            out.append(CheckResult(c.title, c.points, False, f.message, f.details, boot=c.boot, seconds=seconds))
        except Exception as e:      # a grader bug must not hide the other checks
            out.append(CheckResult(c.title, c.points, False, f"internal error in this check: "
                                   f"{type(e).__name__}: {e} (please report it)", boot=c.boot))
    return out


def explain_the_end(result):
    """Why the default boot did not end cleanly, once, for the report's head."""
    default = result.boots["default"]
    problem = end_of_run(default)
    if not problem:
        return
    for c in result.checks:     # hints about code the kernel never reached only mislead
        if not c.passed and not c.details and c.message.startswith("missing") and not default.output:
            c.hints = []
    result.stopped = problem[0]
    stage = result.stage
    fails = [ln for ln in default.lines if ln.startswith("[boot] FAIL") or ln.startswith("[panic]")]
    if fails and len(stage.labs) > 1 and stage.origin.kind != "solutions" and not stage.origin.below_from_solutions:
        result.stopped += (f". Stage {stage.number:02d} runs your code of every lab up to {stage.top.name}: "
                           f"to grade {stage.top.name} alone on the reference labs below it, add BELOW=solutions")


def diagnose(result):
    """Only a boot that ended badly has a fault worth explaining: from lab 05
    on, the log of a clean run is full of faults the kernel provoked and handled."""
    failing = {c.boot for c in result.checks if not c.passed
               and not (result.boots[c.boot].outcome and result.boots[c.boot].outcome.ok)}
    if not failing:
        return
    stage = result.stage
    knowledge = knowledge_of(stage)
    roots = [str(stage.root)] + ([str(stage.origin.submission.resolve())] if stage.origin.submission else [])
    for name in sorted(failing):
        boot_result = result.boots[name]
        lines, _ = diagnosis.diagnose(boot_result.log, result.build, knowledge, result.emulator,
                                      boot_result.lines, roots)
        if lines:
            result.diagnoses[name] = lines
