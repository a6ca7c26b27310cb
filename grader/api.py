"""What a lab's own Python (labs/NN-name/checks.py) may use: the engine's
side of the contract. A lab's checks module defines, all optional:

    @check("title", points[, boot="name"][, emulators=("qemu",)][, seeded=True][, visibility="hidden"])
    def f(ctx): ...             a computed check; raise Fail(...) when it fails
    @values  or  @values(seeded=True)
    def v(ctx): ...             {name: value} for the transcript's placeholders (after the boot)
    @precompute  or  @precompute(seeded=True)
    def p(seed, lab): ...       slow values that need only the seed (run while the kernel boots)
    BOOTS = {"panic": "panic"}  more boots of the stage, by name: their tests= word, or a
                                Boot(tests, seed=f) whose seed is f(this run's seed)
    INTERACTION = Interaction(on_line, kargs=..., emulators=..., qmp=True)
                                a conversation with the default boot
    HINTS = [Hint(test, text, rank)]   diagnosis hints; test(ev) looks at the evidence
    @place
    def where(addr, ev): ...    a name for an address (a section, a region), or None

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
from dataclasses import dataclass, field, replace


class Fail(Exception):
    """A check failed: what was expected and what was seen, and the output around it."""

    def __init__(self, message, details=()):
        super().__init__(message)
        self.message = message
        self.details = list(details)


VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


@dataclass(frozen=True)
class CheckDef:
    title: str
    points: int
    fn: object
    boot: str = "default"
    emulators: tuple = ("qemu", "bochs")
    seeded: bool = False  # what it checks depends on this run's seed
    visibility: str = None  # None: "visible", or the hidden module's default
    hidden: bool = False  # declared in the lab's hidden/ folder


def check(title, points, boot="default", emulators=("qemu", "bochs"), seeded=False, visibility=None):
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
    seed: object = None

    def seed_for(self, run_seed):
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


def place(fn):
    fn.kit_place = True
    return fn


@dataclass(frozen=True)
class Interaction:
    """A conversation with the running kernel: extra command-line words, and
    a hook called on each serial line (it may answer on the serial input)."""

    on_line: object
    kargs: str = ""
    emulators: tuple = ("qemu",)
    launch: dict = field(default_factory=dict)  # options for the emulator (qmp=True)


@dataclass(frozen=True)
class Hint:
    """A diagnosis hint: shown when test(ev) is true and no hint of a lower
    rank (then of a higher lab, at the same rank) was shown first. `text` is
    a string, or a function of the evidence that returns one."""

    test: object
    text: str
    rank: int = 50
    key: str = ""  # words every version of the text has (for a text that is a function)

    @property
    def words(self):
        """The words a test of this hint looks for in a report."""
        return self.key or " ".join(str(self.text).split()[:8])


@dataclass
class Context:
    """What a check may look at."""

    stage: object  # stage.Stage
    run: object  # stage.Run of this check's boot: seed, tests, memory, command line
    boot: object  # run.RunResult of this check's boot: its output, outcome, log
    boots: dict  # every boot of the stage, by name
    build: object  # build.Build: kernel.elf, its symbols
    values: dict = field(default_factory=dict)

    @property
    def seed(self):
        return self.run.seed

    @property
    def memory_mb(self):
        return self.run.memory_mb

    @property
    def lab(self):
        return self.stage.top

    @property
    def symbols(self):
        return self.build.symbols

    def find(self, prefix):
        return [ln for ln in self.boot.lines if ln.startswith(prefix)]


@dataclass
class Evidence:
    """What a diagnosis hint may look at."""

    chain: object  # diagnosis.Chain: the exceptions, in order
    fault: object  # its first Fault, or None
    stage: object  # stage.Stage
    symbols: object  # symbols.Symbols of the kernel
    lines: list  # the serial output
    said: list = field(default_factory=list)  # the kernel's own fault report, if it gave one
    code: bool = False  # for a place: is the address one that ran (RIP), not data (CR2)?


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


def transcript_again(ctx, prefixes, values):
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
