"""Grading a stage: build it, boot it (one boot per set of tests, in
parallel), match the transcript, run the computed checks, diagnose failures.

Stage N scores lab N's checks (its expected.txt and its checks.py) plus the
common end-of-run check; the diagnosis asks every lab of the stage. Each
step returns what it found, and the StageResult is made once, at the end.
"""
from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field, replace

from . import api, emulators, run, transcript
from . import build as build_mod
from .ending import end_of_run
from .stage import Run, Stage, lab_words

TIMEOUTS = {"total": 60.0, "progress": 15.0, "stage": 300.0}  # seconds: a boot, its silence, a whole stage
EMULATORS_AT_ONCE = 2  # a stage's boots run in parallel, this many emulators at a time


@dataclass(frozen=True)
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
    evidence: str = ""  # what its points rest on (observe.SEED, OBSERVED, BORROWED, TOLD), REFUTED, or ""
    note: str = ""  # what a passing check says of how it was graded (a feature this host lacks)

    @property
    def score(self):
        return self.points if self.passed else 0


@dataclass(frozen=True)
class StageResult:
    stage: Stage
    seed: int
    memory_mb: int
    emulator: str
    checks: list
    runs: dict  # boot name -> stage.Run (what it was given)
    boots: dict = field(default_factory=dict)  # boot name -> run.RunResult (what came back)
    build_error: object = None
    diagnoses: dict = field(default_factory=dict)
    unproven: dict = field(default_factory=dict)  # boot name -> why its output cannot count for this run
    stopped: str = ""  # why the default boot did not end cleanly
    elapsed: float = 0.0
    notes: list = field(default_factory=list)  # what this emulator could not observe
    build: object = None  # build.Build, when the stage built

    @property
    def lab(self):
        return self.stage.top

    @property
    def source(self):
        return self.stage.sentence

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


@api.check("power: final line and clean power-off", 10)
def clean_power_off(ctx):
    """The kit's protocol between kernel and grader, graded on every stage."""
    problem = end_of_run(ctx.boot)
    if problem:
        raise api.Fail(*problem)


COMMON_CHECKS = [clean_power_off.kit_check]


@dataclass(frozen=True)
class Plan:
    """What grading the stage's top lab takes, read once from its folder
    (its expected transcript is read later, while the kernel boots)."""

    checks: tuple  # api.CheckDef: the lab's computed checks and the common ones
    boots: dict  # boot name -> api.Boot
    interaction: object  # api.Interaction for the default boot, or None
    values: tuple  # functions ctx -> {name: value}
    precompute: tuple  # functions (seed, lab) -> {name: value}
    observers: tuple = ()  # @observed functions, in the order they are declared
    backed: dict = field(default_factory=dict)  # BACKED_BY: check title -> the check whose evidence it shares


def with_hidden():
    """Are the labs' hidden checks graded? Yes where they exist, unless
    KIT_HIDDEN=off (an instructor previewing what students see)."""
    return os.environ.get("KIT_HIDDEN", "").lower() not in ("0", "off", "no")


def expected_transcript(lab):
    """The checks of labs/NN-name/expected.txt (read while the kernel boots)."""
    spec_path = lab.dir / "expected.txt"
    return transcript.parse(spec_path.read_text(), f"labs/{lab.name}/expected.txt") if spec_path.is_file() else []


def plan_for(stage, emulator, only=None):
    """The plan of the stage's top lab under `emulator`; `only`, a set of
    boot names, keeps those boots (and the default one) and their checks."""
    lab = stage.top
    found = api.collect(lab.module("checks"))
    hidden = api.collect(lab.module("hidden.checks") if with_hidden() else None, hidden=True)
    talk = found["interaction"]
    keep = None if only is None else {"default", *only}
    boots = {"default": "all", **found["boots"], **hidden["boots"]}
    checks = [replace(c, visibility=c.visibility or "visible") for c in COMMON_CHECKS + found["checks"]]
    return Plan(
        tuple(c for c in checks + hidden["checks"] if emulator in c.emulators and (keep is None or c.boot in keep)),
        {n: b if isinstance(b, api.Boot) else api.Boot(b) for n, b in boots.items() if keep is None or n in keep},
        talk if talk and emulator in talk.emulators else None,
        tuple(found["values"] + hidden["values"]),
        tuple(found["precompute"] + hidden["precompute"]),
        tuple(found["observers"] + hidden["observers"]),
        {**found["backed"], **hidden["backed"]},
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
        if found["recovered"]:
            k.recovered.append(found["recovered"])
    k.hints.sort(key=lambda h: h.rank)
    return k


def emulator_slots(n=EMULATORS_AT_ONCE):
    """How many emulators may run at once: one value shared by everything
    graded together (the stages of one command, the students of a batch)."""
    return threading.BoundedSemaphore(max(1, n))


def boot(b, r, timeouts=None, talk=None, slots=None, deadline=None, progress=None, name="default", **kw):
    """One boot of a built stage with the Run `r`; `talk` (an api.Interaction)
    adds its line hook and emulator options; `slots` (emulator_slots) bounds
    the emulators running at once; `deadline` (time.monotonic()), the
    stage's, ends the boot if it comes before the boot's own limit;
    `progress` (report.Progress) hears when the boot `name` starts, stays
    silent and ends."""
    timeouts = dict(TIMEOUTS, **(timeouts or {}))
    make = emulators.EMULATORS[r.emulator]
    opts = dict(talk.launch) if talk else {}
    if talk:
        kw["on_line"] = lambda line, result, send: talk.on_line(line, api.Talk(result, send, b.symbols))
    if r.emulator == "qemu":
        opts["qmp"] = True  # so that a hang can be asked where it is
        kw.setdefault("on_stall", ask_where)
    exits = b.stage.exit_values()
    if progress:
        kw["on_tick"] = lambda silent: progress.quiet(b.stage, name, r, silent, timeouts["progress"])
    asked = time.monotonic()
    with slots or emulator_slots():
        waited = time.monotonic() - asked
        total, left = timeouts["total"], (deadline - time.monotonic()) if deadline is not None else None
        if left is not None and left <= 0:
            limits = {"total": 0.0, "progress": timeouts["progress"], "cap": 0, "stage": timeouts["stage"]}
            return run.RunResult("timeout", limits=limits, emulator=r.emulator)
        if progress:
            progress.boot_started(b.stage, name, r)
        result = run.run(
            lambda tmp: make(b.iso, tmp, r.cmdline, memory_mb=r.memory_mb, exits=exits, **opts),
            total_timeout=min(total, left) if left is not None else total,
            progress_timeout=timeouts["progress"],
            **kw,
        )
        if left is not None and left < total and result.reason == "timeout":
            result.limits["stage"] = timeouts["stage"]  # the stage's limit, not the boot's, stopped it
        if progress:
            progress.boot_ended(b.stage, name, r, result)
    result.waited = waited
    return result


def ask_where(result):
    """The run is stalled: where is the CPU? Five looks through QEMU's monitor."""
    qmp = result.launch.files.get("qmp") if result.launch else None
    if qmp:
        from . import monitor

        result.extra["samples"] = monitor.sample_registers(qmp)


def talks_with(plan, name):
    """The interaction of the boot called `name`, or None."""
    return plan.interaction if plan.interaction and name in plan.interaction.boots else None


def plan_runs(plan, seed, emulator, memory_mb=None):
    def extra(name):
        talk = talks_with(plan, name)
        return tuple(talk.kargs.split()) if talk and talk.kargs else ()

    return {name: Run(b.seed_for(seed), b.tests, memory_mb, extra(name), emulator) for name, b in plan.boots.items()}


def failed_stage(stage, seed, emulator, message, memory_mb=None, build_error=None, stopped="", elapsed=0.0, plan=None):
    """A stage whose every check fails: it did not build, its submission was
    refused, or Ctrl-C stopped it. The first check says why (`message`); the
    others say that they were not graded, so that a report, a JSON file or a
    Gradescope results.json says the one cause once, not once per check."""
    plan = plan or plan_for(stage, emulator)
    runs = plan_runs(plan, seed, emulator, memory_mb)
    checks = [CheckResult(s.title, s.points, False, bonus=s.bonus) for s in expected_transcript(stage.top)]
    checks += [
        CheckResult(c.title, c.points, False, boot=c.boot, visibility=c.visibility, hidden=c.hidden)
        for c in plan.checks
    ]
    if checks:
        why = "the stage did not build" if build_error else message
        rest = f"not graded: {why} (see `{checks[0].title}`)"
        checks = [replace(checks[0], message=message)] + [replace(c, message=rest) for c in checks[1:]]
    return StageResult(
        stage, seed, runs["default"].memory_mb, emulator, checks, runs,
        build_error=build_error, stopped=stopped, elapsed=elapsed,
    )  # fmt: skip


def grade_stage(
    stage, seed, emulator="qemu", memory_mb=None, timeouts=None, outdir=None, boots=None, slots=None, progress=None
):
    """Build, boot and check one stage (a stage.Stage) for the run `seed`.
    memory_mb overrides the machine size the seed would pick (a mutant may
    boot a small machine); boots, a list of boot names, keeps only those
    boots (and the default one) and their checks: a mutant that needs one
    boot is graded sooner. slots (emulator_slots) is shared by stages
    graded together; progress (report.Progress) shows each boot on a terminal.
    timeouts["stage"] bounds the whole stage, build and boots (TIMEOUTS)."""
    t0 = time.monotonic()
    deadline = t0 + dict(TIMEOUTS, **(timeouts or {}))["stage"]  # the build and every boot, together
    plan = plan_for(stage, emulator, boots)
    try:
        built = build_mod.build(stage, outdir, deadline=deadline)
    except build_mod.BuildError as e:
        return failed_stage(
            stage, seed, emulator, f"build failed: {e.summary}", memory_mb, e, elapsed=time.monotonic() - t0, plan=plan
        )
    run.mark("built")
    runs = plan_runs(plan, seed, emulator, memory_mb)
    results, precomputed, specs = boot_all(built, plan, runs, seed, timeouts, slots, deadline, progress)
    if run.STOP.is_set():
        return failed_stage(
            stage, seed, emulator, "interrupted", memory_mb,
            stopped="interrupted (Ctrl-C): the runs were stopped", elapsed=time.monotonic() - t0, plan=plan,
        )  # fmt: skip
    values = placeholder_values(plan, stage, runs, results, built, seed, precomputed)
    default = results["default"]
    matched = transcript.match(specs, default.lines, values)
    checks = transcript_checks(specs, matched, default, values) + computed_checks(
        plan.checks, stage, runs, results, built, values
    )
    checks, notes = observe_checks(checks, plan, specs, matched, stage, runs, results, built, values, precomputed)
    checks, unproven = prove(checks, plan, specs, matched, runs, results, seeded_names(plan, values, precomputed))
    diagnoses, stuck = diagnose(checks, stage, emulator, results, built)
    checks, stopped = explain_the_end(checks, stage, default, diagnoses.get("default", []) + [stuck or ""])
    if stuck and stopped:
        stopped += f"; {stuck}"
    if diagnoses.get("default"):  # the fault explains the lines never printed, not their hints
        checks = [
            replace(c, hints=[])
            if c.boot == "default" and not c.passed and not c.details and c.message.startswith("missing")
            else c
            for c in checks
        ]
    return StageResult(
        stage, seed, runs["default"].memory_mb, emulator, checks, runs, results,
        diagnoses=diagnoses, unproven=unproven, stopped=stopped, elapsed=time.monotonic() - t0, build=built,
        notes=notes,
    )  # fmt: skip


def observe_checks(checks, plan, specs, matched, stage, runs, results, built, values, precomputed):
    """The evidence of each check: seed-bound values its lines or its
    function read, then what the emulator observed (the lab's @observed
    functions, which may fail it). Returns (checks, notes)."""
    from . import observe

    checks = observe.seeded_evidence(checks, plan, specs, matched, work_names(plan, values, precomputed))

    def make_context(boot_name, passed):
        return replace(context(stage, runs, results, built, values, boot_name), checks=passed)

    emulator = runs["default"].emulator
    checks, notes = observe.apply_observers(checks, plan.observers, make_context, emulator)
    checks = observe.borrow_evidence(checks, plan.backed)
    told = observe.told_note(checks, emulator)
    return checks, ([told] if told else []) + notes


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


def boot_all(built, plan, runs, seed, timeouts, slots, deadline=None, progress=None):
    """Every boot of the stage in parallel, and the lab's slow values meanwhile
    (in threads that Ctrl-C does not wait for); while they run, this thread
    reads the expected transcript. Returns (results by boot, precomputed
    values, the transcript's checks)."""
    lab = built.stage.top
    slots = slots or emulator_slots()
    early = [(fn, *in_thread(fn, seed, lab)) for fn in plan.precompute]
    started = {
        name: in_thread(boot, built, r, timeouts, talks_with(plan, name), slots, deadline, progress, name)
        for name, r in runs.items()
    }
    specs = expected_transcript(lab)
    results = {}
    for name, (t, box) in started.items():
        t.join()
        if "error" in box:
            raise box["error"]
        results[name] = box["value"]
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
    return results, precomputed, specs


def context(stage, runs, results, built, values, boot_name="default"):
    """What a check of `boot_name` (or a @values function) may look at."""
    return api.Context(stage, runs[boot_name], results[boot_name], results, built, values)


def placeholder_values(plan, stage, runs, results, built, seed, precomputed):
    """The transcript's placeholders for this run: the seed, the command line,
    the precomputed values, then each @values function's (which may read
    what the ones before it gave)."""
    values = {"seed": f"0x{seed:08x}", "cmdline": runs["default"].cmdline, **precomputed}
    for fn in plan.values:
        got = fn(context(stage, runs, results, built, dict(values)))
        values.update(got)
        values[f"_from_{fn.__name__}"] = list(got)
    return values


def transcript_checks(specs, matched, default, values):
    out = []
    for s in specs:
        lr = matched[s.title]
        bad = transcript.failed(lr)
        partial = any(r.status in ("matched", "wrong", "contradicted", "forbidden") for r in lr if not r.expect.never)
        show_diff = bad and (partial or any(r.status == "forbidden" for r in lr))
        out.append(
            CheckResult(
                s.title,
                s.points,
                not bad,
                transcript.explain(lr, values, default.lines),
                transcript.diff_view(lr, values, default.lines) if show_diff else [],
                # a stray byte or letter case already says what is wrong: only hints keyed to the output's words
                (s.hints_for(default.lines) if not all(r.note for r in bad) else s.keyed_hints(default.lines))
                if bad
                else [],
                seconds=default.elapsed,
                bonus=s.bonus,
            )
        )
    return out


def work_names(plan, values, precomputed):
    """The placeholders whose values only the student's work computes for
    this run's seed (@values(seeded=True), @precompute(seeded=True))."""
    names = set(precomputed.get("_seeded", ()))
    for fn in plan.values:
        if getattr(fn, "kit_values", "") == "seeded":
            names |= set(values.get(f"_from_{fn.__name__}", ()))
    return names


def seeded_names(plan, values, precomputed):
    """The placeholders whose values depend on this run's seed."""
    return {"seed"} | work_names(plan, values, precomputed)


OTHER_SEED = re.compile(r"seed=0x([0-9a-f]{8})\b")
PLACEHOLDER = re.compile(r"\{([^{}|]*)\}")


def unproven_why(r, boot):
    """Why the output of a boot cannot count for the run r."""
    others = {m for ln in boot.lines for m in OTHER_SEED.findall(ln)} - {f"{r.seed:08x}"}
    if others:
        return (
            f"this output was computed for seed 0x{sorted(others)[0]}, this run's seed is "
            f"0x{r.seed:08x}: no point can come from it"
        )
    if not any(r.cmdline in ln for ln in boot.lines):
        return (
            f"no points from this boot: its output never shows this run's command line "
            f"`{r.cmdline}`, so none of it can be shown to belong to this run"
        )
    if end_of_run(boot):  # a crash, not a replay: say that the end of the run is what to fix
        return (
            "no points from this boot: it did not finish, and none of its lines that "
            "depend on this run's seed matched before it stopped; without one, the lines that do not "
            "depend on the seed cannot be shown to belong to this run"
        )
    return (
        "no points from this boot: none of its lines that depend on this run's seed matched, so "
        "the lines that do not depend on the seed cannot be shown to belong to this run either"
    )


NO_EVIDENCE = (
    "no points: nothing backs this check but the kernel's own lines (from lab 02 on, student code owns the "
    "output path); it needs a value only the work computes for this run's seed, or a fact the emulator saw"
)


def prove(checks, plan, specs, matched, runs, results, seeded):
    """Every point rests on evidence of its own. A boot counts only if its
    output shows this run's command line and no other seed's output; then a
    check earns points only on its own evidence (observe.seeded_evidence,
    observe.apply_observers): a value only the student's work computes for
    this seed, or a fact the emulator observed. A check whose fact this
    emulator cannot observe stands on the kernel's lines where the boot shows
    one of its seed-dependent lines (the rule before observations); the
    common check (the clean end) counts where another check of its boot has
    evidence. Returns (checks, {boot: why it earns nothing})."""
    from .observe import BORROWED, OBSERVED, REFUTED, SEED, TOLD

    computed = dict(zip(plan.checks, checks[len(specs) :]))
    common = {d.title for d in COMMON_CHECKS}
    unproven, told_ok = {}, {}
    for name, r in runs.items():
        boot = results[name]
        echo = any(r.cmdline in ln for ln in boot.lines)
        items = [res.passed for d, res in computed.items() if d.boot == name and d.seeded]
        if name == "default":
            items += [
                lr.status == "matched"
                for spec in specs
                for lr in matched[spec.title]
                if not lr.expect.never and seeded & set(PLACEHOLDER.findall(lr.expect.text))
            ]
        told_ok[name] = echo and (not items or any(items))
        others = {m for ln in boot.lines for m in OTHER_SEED.findall(ln)} - {f"{r.seed:08x}"}
        if not echo or others:
            unproven[name] = unproven_why(r, boot)
    foreign = set(unproven)  # output that cannot belong to this run: that comes before anything seen
    own = [c for c in checks if c.title not in common]
    for name in runs:
        mine = [c for c in own if c.boot == name]
        shown = (
            any(c.passed and c.evidence in (SEED, OBSERVED, BORROWED) for c in mine)
            or told_ok[name]
            and any(c.passed and c.evidence == TOLD for c in mine)
        )
        if name not in unproven and not shown and any(c.passed for c in checks if c.boot == name):
            unproven[name] = (
                "no points from this boot: none of its checks showed this run's work (a value only the work "
                "computes for this seed, or a fact the emulator observed), so nothing it printed can count"
                if told_ok[name]
                else unproven_why(runs[name], results[name])
            )

    def verdict(c):
        if not c.passed and c.evidence == REFUTED and c.boot in foreign:  # the boot's own reason comes first
            return replace(c, message=unproven[c.boot], details=[], hints=[])
        if not c.passed:
            return c
        if c.boot in unproven:
            return replace(c, passed=False, message=unproven[c.boot], details=[], hints=[])
        if c.title in common or c.evidence in (SEED, OBSERVED, BORROWED) or c.evidence == TOLD and told_ok[c.boot]:
            return c
        why = NO_EVIDENCE if c.evidence != TOLD else unproven_why(runs[c.boot], results[c.boot])
        return replace(c, passed=False, message=why, details=[], hints=[])

    return [verdict(c) for c in checks], unproven


def computed_checks(defs, stage, runs, results, built, values):
    out = []
    for c in defs:
        ctx = context(stage, runs, results, built, values, c.boot)
        seconds, shown = ctx.boot.elapsed, {"visibility": c.visibility, "hidden": c.hidden}
        try:
            note = c.fn(ctx)
            note = note if isinstance(note, str) else ""
            out.append(CheckResult(c.title, c.points, True, boot=c.boot, seconds=seconds, note=note, **shown))
        except api.Fail as f:
            out.append(
                CheckResult(c.title, c.points, False, f.message, f.details, boot=c.boot, seconds=seconds, **shown)
            )
        except Exception as e:  # a grader bug must not hide the other checks
            message = f"internal error in this check: {type(e).__name__}: {e} (please report it)"
            out.append(CheckResult(c.title, c.points, False, message, boot=c.boot, **shown))
    return out


def explain_the_end(checks, stage, default, blamed=()):
    """Why the default boot did not end cleanly, once, for the report's head:
    (checks, that sentence or ""). `blamed`: the diagnosis of the default
    boot, whose naming of a file tells whose code stopped it."""
    problem = end_of_run(default)
    if not problem:
        return checks, ""
    if not default.output:  # hints about code the kernel never reached only mislead
        checks = [
            replace(c, hints=[]) if not c.passed and not c.details and c.message.startswith("missing") else c
            for c in checks
        ]
    return checks, problem[0] + below_advice(stage, blamed)


def names_a_file_of(labs, lines):
    """Whether `lines` (a diagnosis) name a source line of a student file of one of `labs`."""
    said = "\n".join(lines)
    return any(re.search(rf"\b{re.escape(f)}:\d", said) for lab in labs for f in lab.student)


def below_advice(stage, blamed=()):
    """What to do when a stage of several labs did not finish: any lab of the
    student's own below the top one may be what stopped it. With reference
    code released, BELOW=solutions grades the top lab on it; without, grade
    the labs below first. "" when every lab below is the reference code, or
    when the diagnosis names a file of the top lab and none of a lab below."""
    if len(stage.labs) < 2 or stage.origin.kind == "solutions":
        return ""
    top, below = stage.top, stage.labs[:-1]
    own = [lab for lab in below if lab.name not in stage.from_reference]
    if not own:
        return ""
    if names_a_file_of([top], blamed) and not names_a_file_of(own, blamed):
        return ""
    if stage.origin.below_from_solutions:
        return (
            f". Below {top.name}, {lab_words(own)} {'is' if len(own) == 1 else 'are'} still your code "
            f"(not released in {stage.reference.name}/): grade {'it' if len(own) == 1 else 'them'} first "
            f"(`make grade LAB={own[0].number:02d}`)"
        )
    text = f". Stage {stage.number:02d} runs your code of every lab up to {top.name}: "
    released = stage.released_below()
    if len(released) == len(below):
        return text + f"to grade {top.name} alone on the reference labs below it, add BELOW=solutions"
    if released:
        rest = [lab for lab in below if lab not in released]
        return text + (
            f"to grade {top.name} on the reference code released so far ({lab_words(released)}; "
            f"{lab_words(rest)} stay{'s' if len(rest) == 1 else ''} yours), add BELOW=solutions"
        )
    first = f"`make grade LAB={below[0].number:02d}` and up"
    return text + f"a lab below it may be the one that fails, so grade those first ({first})"


def diagnose(checks, stage, emulator, results, built):
    """Only a boot that ended badly has a fault worth explaining: from lab 05
    on, the log of a clean run is full of faults the kernel provoked and
    handled. Returns ({boot: lines}, where the default boot was stuck or "")."""
    failing = {c.boot for c in checks if not c.passed and not (results[c.boot].outcome and results[c.boot].outcome.ok)}
    if not failing:
        return {}, ""
    from . import diagnosis

    knowledge = knowledge_of(stage)
    roots = [str(built.outdir / "src"), str(stage.root)] + (
        [str(stage.origin.submission.resolve())] if stage.origin.submission else []
    )
    diagnoses, stuck_default = {}, ""
    for name in sorted(failing):
        boot_result = results[name]
        lines, _ = diagnosis.diagnose(boot_result.log, built, knowledge, emulator, boot_result.lines, roots)
        stuck = stall_report(boot_result, built, knowledge, roots)
        if stuck:
            lines = [stuck] + lines
            stuck_default = stuck if name == "default" else stuck_default
        if lines:
            diagnoses[name] = lines
    return diagnoses, stuck_default


def stall_report(boot_result, built, knowledge, roots):
    """Where a run that timed out was stuck, or why that cannot be said."""
    if boot_result.reason not in ("silent", "timeout"):
        return None
    if boot_result.emulator == "bochs":
        return (
            "Bochs cannot be asked where the CPU was stuck; grade under QEMU (EMULATOR=qemu) to have the "
            "function and the source line named"
        )
    from . import diagnosis

    return diagnosis.where_stuck(boot_result.extra.get("samples"), built, roots, knowledge)
