"""The one door of a lab's own Python: labs/NN-name/checks.py and
hidden/checks.py import from here and from nowhere else in the grader
(grader/tests/test_engine.py holds them to it). A lab's checks module
defines, all optional:

    @check("title", points[, boot="name"][, emulators=("qemu",)][, seeded=True][, visibility="hidden"])
    def f(ctx): ...             a computed check; raise Fail(...) when it fails; it may
                                return a sentence on how it was graded (the report shows it)
    @values  or  @values(seeded=True)
    def v(ctx): ...             {name: value} for the transcript's placeholders (after the boot)
    @precompute  or  @precompute(seeded=True)
    def p(seed, lab): ...       slow values that need only the seed (run while the kernel boots)
    BOOTS = {"panic": "panic"}  more boots of the stage, by name: their tests= word, or a
                                Boot(tests, seed=f) whose seed is f(this run's seed)
    INTERACTION = Interaction(on_line, kargs=..., emulators=..., launch={"qmp": True})
                                a conversation with the default boot: on_line(line, talk)
    HINTS = [Hint(test, text, rank)]   diagnosis hints; test(ev) looks at the evidence
    @place
    def where(addr, ev): ...    a name for an address (a section, a region), or None

and may use what the engine offers labs:

    sequence(seed), signed(v, bits)     the seeded numbers the kernel draws (seed_next)
    end_of_run(boot), qemu_exit_status(stage, name)   how a boot ended, the exit status of EXIT_<name>
    ctx.defines, ev.defines             {NAME: value} of the kernel's headers (memlayout.h's addresses)
    ctx.lab_checks("boot")              another lab's checks module, by its name
    talk.send(b"g"), talk.ask("info tlb"), talk.extra   inside on_line: the serial input, QEMU's
                                        monitor, and what the boot keeps for the checks
    transcript_again(ctx, prefixes, values)   visible transcript checks again on another boot

`seeded=True` says that what is checked depends on this run's seed: a boot
earns points only if it shows this run's command line and at least one of
its seed-dependent lines or checks matched (a replayed transcript earns
nothing). The engine finds all this by looking at the module; it never
names a lab.

A lab may keep checks out of the students' copy in labs/NN-name/hidden/
(checks.py there has the same form; the handout leaves the folder out).
`visibility` says when Gradescope shows a check to students: "visible",
"hidden", "after_due_date" or "after_published"; the hidden folder's checks
default to its module's VISIBILITY, or "after_due_date".
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Iterable

from .ending import end_of_run, qemu_exit_status
from .monitor import MonitorError, human_commands, tlb_ranges
from .seeded import sequence, signed

if TYPE_CHECKING:  # the engine's values a lab is handed, for readers and editors
    from .build import Build
    from .diagnosis import Chain, Fault
    from .run import RunResult
    from .stage import Run, Stage
    from .symbols import Symbols

__all__ = [
    "Boot", "Context", "Evidence", "Fail", "Hint", "Interaction", "MonitorError", "Talk",
    "check", "end_of_run", "place", "precompute", "qemu_exit_status", "sequence", "signed",
    "tlb_ranges", "transcript_again", "values",
]  # fmt: skip


class Fail(Exception):
    """A check failed: what was expected and what was seen, and the output around it."""

    def __init__(self, message: str, details: Iterable[str] = ()):
        super().__init__(message)
        self.message = message
        self.details = list(details)


VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


@dataclass(frozen=True)
class CheckDef:
    title: str
    points: int
    fn: Callable[[Context], None]
    boot: str = "default"
    emulators: tuple[str, ...] = ("qemu", "bochs")
    seeded: bool = False  # what it checks depends on this run's seed
    visibility: str | None = None  # None: "visible", or the hidden module's default
    hidden: bool = False  # declared in the lab's hidden/ folder


def check(
    title: str,
    points: int,
    boot: str = "default",
    emulators: Iterable[str] = ("qemu", "bochs"),
    seeded: bool = False,
    visibility: str | None = None,
) -> Callable[[Callable[[Context], None]], Callable[[Context], None]]:
    if visibility is not None and visibility not in VISIBILITIES:
        raise ValueError(f"check {title!r}: visibility is one of {', '.join(VISIBILITIES)}")

    def deco(fn):
        fn.kit_check = CheckDef(title, points, fn, boot, tuple(emulators), seeded, visibility)
        return fn

    return deco


@dataclass(frozen=True)
class Boot:
    """One more boot of the stage: its tests= word, and its seed as a
    function of this run's seed (another family of seeds), or this run's."""

    tests: str = "all"
    seed: Callable[[int], int] | None = None

    def seed_for(self, run_seed: int) -> int:
        return run_seed if self.seed is None else self.seed(run_seed) & 0xFFFFFFFF


def _marker(attr):
    """A decorator usable bare (@values) or with seeded=True (@values(seeded=True))."""

    def deco(fn=None, *, seeded=False):
        def mark(f):
            setattr(f, attr, "seeded" if seeded else "fixed")
            return f

        return mark(fn) if fn is not None else mark

    return deco


values = _marker("kit_values")
precompute = _marker("kit_precompute")


def place(fn: Callable[[int, Evidence], str | None]) -> Callable[[int, Evidence], str | None]:
    fn.kit_place = True
    return fn


class Talk:
    """What an interaction's on_line hook may do while the kernel runs:
    answer on the serial input, ask QEMU's monitor, keep what it learnt."""

    def __init__(self, result: RunResult, send: Callable[[bytes], None]):
        self._result, self._send = result, send

    @property
    def extra(self) -> dict:
        """What the boot keeps for its checks (ctx.boot.extra)."""
        return self._result.extra

    def send(self, data: bytes) -> None:
        """Bytes on the kernel's serial input (a kernel that has powered off does not hear them)."""
        self._send(data)

    def ask(self, *commands: str) -> list[str]:
        """The texts of monitor commands (`info tlb`) asked of this boot's QEMU
        (Interaction(launch={"qmp": True})); MonitorError if it cannot be asked."""
        sock = self._result.launch.files.get("qmp") if self._result.launch else None
        if sock is None:
            raise MonitorError("this boot has no monitor (Interaction(launch={'qmp': True}))")
        return human_commands(sock, list(commands))


@dataclass(frozen=True)
class Interaction:
    """A conversation with the running kernel: extra command-line words, and
    a hook called on each serial line, on_line(line, talk)."""

    on_line: Callable[[str, Talk], None]
    kargs: str = ""
    emulators: tuple[str, ...] = ("qemu",)
    launch: dict = field(default_factory=dict)  # options for the emulator (qmp=True)


@dataclass(frozen=True)
class Hint:
    """A diagnosis hint: shown when test(ev) is true and no hint of a lower
    rank (then of a higher lab, at the same rank) was shown first. `text` is
    a string, or a function of the evidence that returns one."""

    test: Callable[[Evidence], bool]
    text: str | Callable[[Evidence], str]
    rank: int = 50
    key: str = ""  # words every version of the text has (for a text that is a function)

    @property
    def words(self) -> str:
        """The words a test of this hint looks for in a report."""
        return self.key or " ".join(str(self.text).split()[:8])


def lab_checks(stage: Stage, name: str) -> ModuleType:
    """The checks module of the stage's lab called `name` (its name after the
    number), for the values another lab computes."""
    for lab in stage.labs:
        if name in (lab.short, lab.name):
            module = lab.module("checks")
            if module is not None:
                return module
    raise LookupError(f"stage {stage.number:02d} has no lab '{name}' with a checks.py")


@dataclass(frozen=True)
class Context:
    """What a check may look at: the stage, and the boot the check belongs to."""

    stage: Stage
    run: Run  # this check's boot was given: seed, tests, memory, command line
    boot: RunResult  # what came back: its output, outcome, log, extra
    boots: dict[str, RunResult]  # every boot of the stage, by name
    build: Build  # kernel.elf and its symbols
    values: dict[str, object] = field(default_factory=dict)  # the transcript's placeholders, computed

    @property
    def seed(self) -> int:
        return self.run.seed

    @property
    def memory_mb(self) -> int:
        return self.run.memory_mb

    @property
    def lab(self):
        return self.stage.top

    @property
    def symbols(self) -> Symbols:
        return self.build.symbols

    @property
    def defines(self) -> dict[str, int]:
        return self.stage.defines()

    def lab_checks(self, name: str) -> ModuleType:
        return lab_checks(self.stage, name)

    def find(self, prefix: str) -> list[str]:
        return [ln for ln in self.boot.lines if ln.startswith(prefix)]


@dataclass
class Evidence:
    """What a diagnosis hint may look at."""

    chain: Chain  # the exceptions, in order
    fault: Fault | None  # its first Fault, or None
    stage: Stage
    symbols: Symbols  # of the kernel
    lines: list[str]  # the serial output
    said: list[str] = field(default_factory=list)  # the kernel's own fault report, if it gave one
    code: bool = False  # for a place: is the address one that ran (RIP), not data (CR2)?

    @property
    def defines(self) -> dict[str, int]:
        return self.stage.defines()

    def lab_checks(self, name: str) -> ModuleType:
        return lab_checks(self.stage, name)


def collect(module, hidden=False):
    """The check definitions, value and precompute functions, places, boots,
    interaction and hints a lab's module declares (hidden: the module is the
    lab's hidden/checks.py)."""
    found = {"checks": [], "values": [], "precompute": [], "places": []}
    if module is None:
        return dict(found, boots={}, interaction=None, hints=[], kernel_report=None)
    default = getattr(module, "VISIBILITY", "after_due_date") if hidden else "visible"
    for obj in vars(module).values():
        if hasattr(obj, "kit_check"):
            c = obj.kit_check
            found["checks"].append(replace(c, visibility=c.visibility or default, hidden=hidden))
        for attr, key in (("kit_values", "values"), ("kit_precompute", "precompute"), ("kit_place", "places")):
            if getattr(obj, attr, False):
                found[key].append(obj)  # values and precompute: obj.kit_values says "seeded" or "fixed"
    return dict(
        found,
        boots=dict(getattr(module, "BOOTS", {})),
        interaction=getattr(module, "INTERACTION", None),
        hints=list(getattr(module, "HINTS", [])),
        kernel_report=getattr(module, "kernel_report", None),
    )


def transcript_again(ctx: Context, prefixes: Iterable[str], values: dict[str, object]) -> None:
    """The checks of the lab's expected.txt whose titles start with one of
    `prefixes`, matched again against this check's boot with `values` (what
    the placeholders are for this boot's seed): a hidden variant re-runs
    visible checks on another seed. Raises Fail at the first that fails."""
    from . import transcript

    lab = ctx.lab
    shown = f"labs/{lab.name}/expected.txt"
    specs = [
        s
        for s in transcript.parse((lab.dir / "expected.txt").read_text(), shown)
        if s.title.startswith(tuple(prefixes))
    ]
    values = {"seed": f"0x{ctx.seed:08x}", "cmdline": ctx.run.cmdline, **values}
    matched = transcript.match(specs, ctx.boot.lines, values)
    for s in specs:
        if transcript.failed(matched[s.title]):
            raise Fail(
                f"with `{ctx.run.cmdline}`, {s.title}: " + transcript.explain(matched[s.title], values, ctx.boot.lines),
                transcript.diff_view(matched[s.title], values, ctx.boot.lines),
            )
