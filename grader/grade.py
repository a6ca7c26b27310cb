"""Grading a stage: build it, boot it (one boot per set of tests, in
parallel), match the transcript, run the computed checks, diagnose failures.

Stage N scores lab N's checks (its expected.txt and its checks.py) plus the
common end-of-run check; the diagnosis asks every lab of the stage.
"""
import os
import re
import threading
import time
from dataclasses import dataclass, field, replace

from . import api, emulators, run, transcript
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
    bonus: bool = False  # a challenge: optional points, outside the total
    visibility: str = "visible"  # when Gradescope shows it to students (api.VISIBILITIES)
    hidden: bool = False  # declared in the lab's hidden/ folder

    @property
    def score(self):
        return self.points if self.passed else 0


@dataclass
class StageResult:
    stage: object  # stage.Stage
    seed: int
    memory_mb: int
    emulator: str
    checks: list = field(default_factory=list)
    build_error: object = None
    runs: dict = field(default_factory=dict)  # boot name -> stage.Run (what it was given)
    boots: dict = field(default_factory=dict)  # boot name -> run.RunResult (what came back)
    diagnoses: dict = field(default_factory=dict)
    unproven: dict = field(default_factory=dict)  # boot name -> why its output cannot count for this run
    stopped: str = ""  # why the default boot did not end cleanly
    elapsed: float = 0.0
    build: object = None  # build.Build, when the stage built

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

    specs: list  # transcript.CheckSpec from expected.txt (None until read)
    checks: list  # api.CheckDef: the lab's computed checks and the common ones
    boots: dict  # boot name -> tests=
    interaction: object  # api.Interaction for the default boot, or None
    values: list  # functions ctx -> {name: value}
    precompute: list  # functions (seed, lab) -> {name: value}


def with_hidden():
    """Are the labs' hidden checks graded? Yes where they exist, unless
    KIT_HIDDEN=off (an instructor previewing what students see)."""
    return os.environ.get("KIT_HIDDEN", "").lower() not in ("0", "off", "no")


def expected_transcript(lab):
    """The checks of labs/NN-name/expected.txt (read while the kernel boots)."""
    spec_path = lab.dir / "expected.txt"
    return transcript.parse(spec_path.read_text(), f"labs/{lab.name}/expected.txt") if spec_path.is_file() else []


def plan_for(stage, emulator):
    """The plan; its transcript (specs) is read later, while the kernel boots."""
    lab = stage.top
    specs = None
    found = api.collect(lab.module("checks"))
    hidden = api.collect(lab.module("hidden.checks") if with_hidden() else None, hidden=True)
    talk = found["interaction"]
    checks = [replace(c, visibility=c.visibility or "visible") for c in COMMON_CHECKS + found["checks"]]
    return Plan(
        specs,
        [c for c in checks + hidden["checks"] if emulator in c.emulators],
        {"default": "all", **found["boots"], **hidden["boots"]},
        talk if talk and emulator in talk.emulators else None,
        found["values"] + hidden["values"],
        found["precompute"] + hidden["precompute"],
    )


def knowledge_of(stage):
    """The hints, places and kernel-report readers of every lab of the stage:
    hints by rank, then from the highest lab down; places from the highest lab down."""
    from . import diagnosis

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
    if r.emulator == "qemu":
        opts["qmp"] = True  # so that a hang can be asked where it is
        kw.setdefault("on_stall", ask_where)
    exits = b.stage.exit_values()
    with _EMULATOR_SLOTS:
        return run.run(
            lambda tmp: make(b.iso, tmp, r.cmdline, memory_mb=r.memory_mb, exits=exits, **opts),
            total_timeout=timeouts["total"],
            progress_timeout=timeouts["progress"],
            **kw,
        )


def ask_where(result):
    """The run is stalled: where is the CPU? Five looks through QEMU's monitor."""
    qmp = result.launch.files.get("qmp") if result.launch else None
    if qmp:
        from . import monitor

        result.extra["samples"] = monitor.sample_registers(qmp)


def plan_runs(plan, seed, emulator, memory_mb=None):
    extra = tuple(plan.interaction.kargs.split()) if plan.interaction and plan.interaction.kargs else ()
    boots = {name: b if isinstance(b, api.Boot) else api.Boot(b) for name, b in plan.boots.items()}
    return {
        name: Run(b.seed_for(seed), b.tests, memory_mb, extra if name == "default" else (), emulator)
        for name, b in boots.items()
    }


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
        plan.specs = expected_transcript(stage.top)
        msg = f"build failed: {e.summary}"
        result.checks = [CheckResult(s.title, s.points, False, msg, bonus=s.bonus) for s in plan.specs] + [
            CheckResult(c.title, c.points, False, msg, boot=c.boot, visibility=c.visibility, hidden=c.hidden)
            for c in plan.checks
        ]
        result.elapsed = time.monotonic() - t0
        return result
    run.mark("built")
    precomputed = boot_all(result, plan, timeouts)
    if run.STOP.is_set():
        result.stopped = "interrupted (Ctrl-C): the runs were stopped"
        result.checks = [CheckResult(s.title, s.points, False, "interrupted", bonus=s.bonus) for s in plan.specs] + [
            CheckResult(c.title, c.points, False, "interrupted", boot=c.boot, visibility=c.visibility, hidden=c.hidden)
            for c in plan.checks
        ]
        result.elapsed = time.monotonic() - t0
        return result
    default = result.boots["default"]
    ctx = api.Context(stage, result.runs["default"], default, result.boots, result.build)
    ctx.values = {"seed": f"0x{seed:08x}", "cmdline": result.runs["default"].cmdline, **precomputed}
    for fn in plan.values:
        got = fn(ctx)
        ctx.values.update(got)
        ctx.values[f"_from_{fn.__name__}"] = list(got)
    seeded = seeded_names(plan, ctx.values, precomputed)
    matched = transcript.match(plan.specs, default.lines, ctx.values)
    result.checks = transcript_checks(plan.specs, matched, default, ctx.values) + computed_checks(
        plan.checks, result, ctx
    )
    prove(result, plan, matched, seeded)
    explain_the_end(result)
    diagnose(result)
    if result.diagnoses.get("default"):  # the fault explains the lines never printed, not their hints
        for c in result.checks:
            if c.boot == "default" and not c.passed and not c.details and c.message.startswith("missing"):
                c.hints = []
    result.elapsed = time.monotonic() - t0
    return result


def in_thread(fn, *args):
    """Start fn(*args) in a thread of its own; (thread, box): box["value"] or box["error"] when done."""
    box = {}

    def work():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # handed to whoever waits for it
            box["error"] = e

    t = threading.Thread(target=work, daemon=True)
    t.start()
    return t, box


def boot_all(result, plan, timeouts):
    """Every boot of the stage in parallel, and the lab's slow values meanwhile
    (in threads that Ctrl-C does not wait for); while they run, this thread
    reads the expected transcript."""
    lab = result.stage.top
    early = [(fn, *in_thread(fn, result.seed, lab)) for fn in plan.precompute]
    boots = {
        name: in_thread(boot, result.build, r, timeouts, plan.interaction if name == "default" else None)
        for name, r in result.runs.items()
    }
    plan.specs = expected_transcript(lab)
    result.boots = {}
    for name, (t, box) in boots.items():
        t.join()
        if "error" in box:
            raise box["error"]
        result.boots[name] = box["value"]
    precomputed = {"_seeded": []}
    for fn, t, box in early:
        while t.is_alive() and not run.STOP.is_set():
            t.join(0.05)
        if "error" in box:
            raise box["error"]
        got = box.get("value", {})
        precomputed.update(got)
        if getattr(fn, "kit_precompute", "") == "seeded":
            precomputed["_seeded"] += list(got)
    return precomputed


def transcript_checks(specs, matched, default, values):
    out = []
    for s in specs:
        lr = matched[s.title]
        bad = transcript.failed(lr)
        partial = any(r.status in ("matched", "wrong", "forbidden") for r in lr if not r.expect.never)
        show_diff = bad and (partial or any(r.status == "forbidden" for r in lr))
        out.append(
            CheckResult(
                s.title,
                s.points,
                not bad,
                transcript.explain(lr, values, default.lines),
                transcript.diff_view(lr, values, default.lines) if show_diff else [],
                s.hints if bad else [],
                seconds=default.elapsed,
                bonus=s.bonus,
            )
        )
    return out


def seeded_names(plan, values, precomputed):
    """The placeholders whose values depend on this run's seed."""
    names = {"seed"} | set(precomputed.get("_seeded", ()))
    for fn in plan.values:
        if getattr(fn, "kit_values", "") == "seeded":
            names |= set(values.get(f"_from_{fn.__name__}", ()))
    return names


OTHER_SEED = re.compile(r"seed=0x([0-9a-f]{8})\b")


def prove(result, plan, matched, seeded):
    """Every point depends on this run: a boot counts only if its output
    shows this run's command line and, where the lab has seed-dependent
    lines or checks for it, at least one of them matched. A check on a boot
    that fails the proof earns nothing."""
    placeholders = re.compile(r"\{([^{}|]*)\}")
    for name, r in result.runs.items():
        boot = result.boots[name]
        lines = boot.lines
        echo = any(r.cmdline in ln for ln in lines)
        items = [c.passed for c, d in zip(result.checks[len(plan.specs) :], plan.checks) if d.boot == name and d.seeded]
        if name == "default":
            items += [
                lr.status == "matched"
                for spec in plan.specs
                for lr in matched[spec.title]
                if not lr.expect.never and seeded & set(placeholders.findall(lr.expect.text))
            ]
        if echo and (not items or any(items)):
            continue
        others = {m for ln in lines for m in OTHER_SEED.findall(ln)} - {f"{r.seed:08x}"}
        if others:
            why = (
                f"this output was computed for seed 0x{sorted(others)[0]}, this run's seed is "
                f"0x{r.seed:08x}: no point can come from it"
            )
        elif not echo:
            why = (
                f"no points from this boot: its output never shows this run's command line "
                f"`{r.cmdline}`, so none of it can be shown to belong to this run"
            )
        elif end_of_run(boot):  # a crash, not a replay: say that the end of the run is what to fix
            why = (
                "no points from this boot: it did not finish, and none of its lines that "
                "depend on this run's seed matched before it stopped; without one, the lines that do not "
                "depend on the seed cannot be shown to belong to this run"
            )
        else:
            why = (
                "no points from this boot: none of its lines that depend on this run's seed matched, so "
                "the lines that do not depend on the seed cannot be shown to belong to this run either"
            )
        result.unproven[name] = why
        for c in result.checks:
            if c.boot == name and c.passed:
                c.passed, c.message, c.details, c.hints = False, why, [], []


def computed_checks(checks, result, ctx):
    out = []
    for c in checks:
        ctx.boot, ctx.run = result.boots[c.boot], result.runs[c.boot]
        seconds, shown = ctx.boot.elapsed, {"visibility": c.visibility, "hidden": c.hidden}
        try:
            c.fn(ctx)
            out.append(CheckResult(c.title, c.points, True, boot=c.boot, seconds=seconds, **shown))
        except api.Fail as f:
            out.append(
                CheckResult(c.title, c.points, False, f.message, f.details, boot=c.boot, seconds=seconds, **shown)
            )
        except Exception as e:  # a grader bug must not hide the other checks
            out.append(
                CheckResult(
                    c.title,
                    c.points,
                    False,
                    f"internal error in this check: {type(e).__name__}: {e} (please report it)",
                    boot=c.boot,
                    **shown,
                )
            )
    ctx.boot, ctx.run = result.boots["default"], result.runs["default"]
    return out


def explain_the_end(result):
    """Why the default boot did not end cleanly, once, for the report's head."""
    default = result.boots["default"]
    problem = end_of_run(default)
    if not problem:
        return
    for c in result.checks:  # hints about code the kernel never reached only mislead
        if not c.passed and not c.details and c.message.startswith("missing") and not default.output:
            c.hints = []
    result.stopped = problem[0]
    stage = result.stage
    fails = [ln for ln in default.lines if ln.startswith("[boot] FAIL") or ln.startswith("[panic]")]
    if fails and len(stage.labs) > 1 and stage.origin.kind != "solutions" and not stage.origin.below_from_solutions:
        result.stopped += f". Stage {stage.number:02d} runs your code of every lab up to {stage.top.name}: "
        if stage.has_reference_below():
            result.stopped += f"to grade {stage.top.name} alone on the reference labs below it, add BELOW=solutions"
        else:  # a student's copy: no reference code to stand on
            result.stopped += (
                f"a lab below it may be the one that fails, so grade those first "
                f"(`make grade LAB={stage.labs[0].number:02d}` and up)"
            )


def diagnose(result):
    """Only a boot that ended badly has a fault worth explaining: from lab 05
    on, the log of a clean run is full of faults the kernel provoked and handled."""
    failing = {
        c.boot
        for c in result.checks
        if not c.passed and not (result.boots[c.boot].outcome and result.boots[c.boot].outcome.ok)
    }
    if not failing:
        return
    from . import diagnosis

    stage = result.stage
    knowledge = knowledge_of(stage)
    roots = [str(result.build.outdir / "src"), str(stage.root)] + (
        [str(stage.origin.submission.resolve())] if stage.origin.submission else []
    )
    for name in sorted(failing):
        boot_result = result.boots[name]
        lines, _ = diagnosis.diagnose(
            boot_result.log, result.build, knowledge, result.emulator, boot_result.lines, roots
        )
        stuck = stall_report(boot_result, result, knowledge, roots)
        if stuck:
            lines = [stuck] + lines
            if name == "default" and result.stopped:
                result.stopped += f"; {stuck}"
        if lines:
            result.diagnoses[name] = lines


def stall_report(boot_result, result, knowledge, roots):
    """Where a run that timed out was stuck, or why that cannot be said."""
    if boot_result.reason not in ("silent", "timeout"):
        return None
    if boot_result.emulator == "bochs":
        return (
            "Bochs cannot be asked where the CPU was stuck; grade under QEMU (EMULATOR=qemu) to have the "
            "function and the source line named"
        )
    from . import diagnosis

    return diagnosis.where_stuck(boot_result.extra.get("samples"), result.build, roots, knowledge)
