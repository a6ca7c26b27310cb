"""The one door of a lab's own Python: labs/NN-name/checks.py and
hidden/checks.py import from here and from nowhere else in the grader
(grader/tests/test_engine.py holds them to it). A lab's checks module
defines, all optional:

    @check("title", points[, boot="name"][, emulators=("qemu",)][, seeded=True][, visibility="hidden"])
    def f(ctx): ...             a computed check; raise Fail(...) when it fails, or return
                                a note (what it graded, on this host) that the report shows
    @values  or  @values(seeded=True)
    def v(ctx): ...             {name: value} for the transcript's placeholders (after the boot)
    @precompute  or  @precompute(seeded=True)
    def p(seed, lab): ...       slow values that need only the seed (run while the kernel boots)
    BOOTS = {"panic": "panic"}  more boots of the stage, by name: their tests= word, or a
                                Boot(tests, seed=f) whose seed is f(this run's seed)
    INTERACTION = Interaction(on_line, kargs=..., emulators=..., launch={"qmp": True})
                                a conversation with the default boot: on_line(line, talk);
                                at_power_off(look) waits at power-off while look(talk) reads
    @observed("title", ...[, emulators=("qemu",)])
    def o(ctx): ...             what the emulator saw backs these checks: raise Fail when it
                                contradicts them or cannot be seen (a check's evidence, below)
    HINTS = [Hint(test, text, rank)]   diagnosis hints; test(ev) looks at the evidence
    BACKED_BY = {"title": "other title"}   a check of constant lines counts only where the
                                named check passes on evidence of its own (the same work)
    def kernel_report(lines): ...   the kernel's own report of a fault it could not handle (its lines)
    def recovered(lines): ...   the RIPs of the faults the kernel says it handled and went on from:
                                a diagnosis leaves such a chain out (a self-test's probe is no cause)
    @place
    def where(addr, ev): ...    a name for an address (a section, a region), or None

and may use what the engine offers labs:

    sequence(seed), signed(v, bits)     the seeded numbers the kernel draws (seed_next)
    end_of_run(boot), qemu_exit_status(stage, name)   how a boot ended, the exit status of EXIT_<name>
    ctx.defines, ev.defines             {NAME: value} of the kernel's headers (memlayout.h's addresses)
    ctx.host                            what this host's QEMU offers, asked of it: .offers("avx2"),
                                        .trace("serial_write"), .version, .lacks("avx2") (a sentence)
    ctx.lab_checks("boot")              another lab's checks module, by its name
    talk.send(b"g"), talk.ask("info tlb"), talk.extra   inside on_line: the serial input, QEMU's
                                        monitor, and what the boot keeps for the checks
    talk.registers(), talk.read(addr, n), talk.read_symbols(lo, hi)   the CPU and guest memory
                                        while the kernel waits (kept in talk.extra)
    walk(memory, cr3, va)               the page tables in that memory: (pa, writable, executable)
    seen_registers(ctx), seen_memory(ctx)   what at_power_off's look kept for the checks
    serial_trace(ctx.boot), exceptions_taken(ctx)   QEMU's serial trace events, its -d int log
    transcript_again(ctx, prefixes, values)   visible transcript checks again on another boot

Every check earns points only on evidence of its own (grade.py's `prove`):
a value that only the student's work computes for this run's seed
(`seeded=True` on a check, or on the @values/@precompute function whose
placeholders its lines hold: never mark so a value a forger can compute
cheaply, such as the seed, an address the given code derives, or what the
given code computes), or an observed fact (an @observed function that
names it). A boot earns nothing unless its output shows this run's command
line. Where an emulator cannot observe a fact (Bochs), the check stands on
the kernel's lines and the report says so. The engine finds all this by
looking at the module; it never names a lab.

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
from .monitor import Memory, MonitorError, human_commands, registers, talk as qmp_talk, tlb_ranges, walk
from .seeded import sequence, signed

if TYPE_CHECKING:  # the engine's values a lab is handed, for readers and editors
    from .build import Build
    from .diagnosis import Chain, Fault
    from .host import Host
    from .run import RunResult
    from .stage import Run, Stage
    from .symbols import Symbols

__all__ = [
    "Boot", "Context", "Evidence", "Fail", "Hint", "Interaction", "Memory", "MonitorError", "Talk",
    "POWER_WAIT", "Unavailable", "Unseen", "at_power_off", "check", "end_of_run", "exceptions_taken",
    "observed", "place", "precompute", "qemu_exit_status", "seen_memory", "seen_registers", "sequence",
    "serial_trace", "signed", "tlb_ranges", "transcript_again", "values", "walk",
]  # fmt: skip


class Fail(Exception):
    """A check failed: what was expected and what was seen, and the output around it."""

    def __init__(self, message: str, details: Iterable[str] = ()):
        super().__init__(message)
        self.message = message
        self.details = list(details)


class Unseen(Fail):
    """An observer could not observe (the kernel never waited for the grader):
    no evidence, but nothing seen against the kernel's lines either."""


class Unavailable(Unseen):
    """This host's emulator cannot observe the fact at all (a QEMU built
    without the trace backend that writes to the log): as under Bochs, the
    check stands on the kernel's lines, and the report says so."""


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


@dataclass(frozen=True)
class ObservedDef:
    titles: tuple[str, ...]
    emulators: tuple[str, ...]
    who: str  # how the report names the observer: "QEMU saw"


def observed(*titles: str, emulators: Iterable[str] = ("qemu",), who: str = "QEMU saw"):
    """fn(ctx) backs the checks with these titles (of expected.txt or of
    @check) with what the emulator saw: it returns when the observation
    agrees, raises Fail (saying what was seen) when it contradicts them or
    could not be made. Observers run in the order they are declared; an
    observer may ask ctx.passed(title) of a check named by one before it."""

    def deco(fn):
        fn.kit_observed = ObservedDef(tuple(titles), tuple(emulators), who)
        return fn

    return deco


class Talk:
    """What an interaction's on_line hook may do while the kernel runs:
    answer on the serial input, ask QEMU's monitor, read the CPU and guest
    memory, keep what it learnt."""

    def __init__(self, result: RunResult, send: Callable[[bytes], None], symbols: Symbols | None = None):
        self._result, self._send = result, send
        self.symbols = symbols if symbols is not None else {}

    @property
    def extra(self) -> dict:
        """What the boot keeps for its checks (ctx.boot.extra)."""
        return self._result.extra

    def send(self, data: bytes) -> None:
        """Bytes on the kernel's serial input (a kernel that has powered off does not hear them)."""
        self._send(data)

    def _socket(self):
        sock = self._result.launch.files.get("qmp") if self._result.launch else None
        if sock is None:
            raise MonitorError("this boot has no monitor (Interaction(launch={'qmp': True}))")
        return sock

    def ask(self, *commands: str) -> list[str]:
        """The texts of monitor commands (`info tlb`) asked of this boot's QEMU
        (Interaction(launch={"qmp": True})); MonitorError if it cannot be asked."""
        return human_commands(self._socket(), list(commands))

    def pause(self) -> None:
        """Stop the guest's CPU (QMP `stop`) while the grader looks."""
        qmp_talk(self._socket(), [("stop",)])

    def resume(self) -> None:
        """Let the guest's CPU run again (QMP `cont`)."""
        qmp_talk(self._socket(), [("cont",)])

    def registers(self) -> dict:
        """The CPU's registers now (monitor.registers), kept in extra["registers"]."""
        (text,) = self.ask("info registers")
        self.extra["registers"] = registers(text)
        return self.extra["registers"]

    def read(self, addr: int, size: int) -> bytes:
        """`size` bytes of guest physical memory at addr (the kernel is
        identity-mapped), kept in extra["memory"] (a monitor.Memory)."""
        sock = self._socket()
        path = sock.parent / f"mem-{addr:x}-{size:x}.bin"
        # named relative to QEMU's working folder, its cell: under the user seal the folders above may be closed to it
        qmp_talk(sock, [("pmemsave", addr, size, path.name)])
        try:
            data = path.read_bytes()
            path.unlink()
        except OSError as e:
            raise MonitorError(f"QEMU's memory dump could not be read: {e}") from None
        if len(data) != size:
            raise MonitorError(f"QEMU dumped {len(data)} bytes of guest memory, not {size}")
        self.extra.setdefault("memory", Memory()).add(addr, data)
        return data

    def read_symbols(self, start: str, end: str) -> bytes:
        """The guest memory between two of the kernel's symbols (end exclusive)."""
        return self.read(self.symbols[start], self.symbols[end] - self.symbols[start])


@dataclass(frozen=True)
class Interaction:
    """A conversation with the running kernel: extra command-line words, and
    a hook called on each serial line, on_line(line, talk)."""

    on_line: Callable[[str, Talk], None]
    kargs: str = ""
    emulators: tuple[str, ...] = ("qemu",)
    launch: dict = field(default_factory=dict)  # options for the emulator (qmp=True, trace=(events...))
    boots: tuple[str, ...] = ("default",)  # the boots it talks with


POWER_WAIT = "[power] waiting for the grader"  # power.c prints it when the command line says monitor=power


def look_at_kernel(talk: Talk) -> None:
    """The CPU's registers and the kernel's whole image, from .text to the
    end of .bss (its variables, its heap, the code a JIT wrote there)."""
    talk.registers()
    talk.read_symbols("__kernel_start", "__kernel_end")


def at_power_off(
    *looks: Callable[[Talk], None],
    launch: dict | None = None,
    boots: Iterable[str] = ("default",),
    also: str = "",
    other: Callable[[str, Talk], None] | None = None,
) -> Interaction:
    """An interaction in which the kernel waits at power-off (power.c, with
    `monitor=power` on its command line) while the grader reads the CPU and
    the kernel's image (look_at_kernel), then each look(talk), before
    letting it go on. `also` adds monitor points (`paging`) and `other`
    hears every other line (to answer at them); `launch` adds QEMU options
    (trace=("serial_write", ...))."""
    points = ",".join(p for p in (also, "power") if p)

    def on_line(line: str, talk: Talk) -> None:
        if line != POWER_WAIT:
            if other:
                other(line, talk)
            return
        try:
            talk.pause()  # the kernel waits a few seconds at most: the clock stops while the grader looks
            look_at_kernel(talk)
            for look in looks:
                look(talk)
        except MonitorError as e:
            talk.extra["monitor_error"] = str(e)
        finally:
            talk.extra["looked"] = True
            try:
                talk.resume()
            except MonitorError:
                pass
            talk.send(b"g")

    return Interaction(on_line, f"monitor={points}", ("qemu",), {"qmp": True, **(launch or {})}, tuple(boots))


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
    checks: dict[str, bool] = field(default_factory=dict)  # for an observer: check title -> passed so far

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

    @property
    def host(self) -> Host:
        """What the grading host's QEMU offers (grader/host.py), probed once."""
        from .host import probe

        return probe()

    def find(self, prefix: str) -> list[str]:
        return [ln for ln in self.boot.lines if ln.startswith(prefix)]

    def passed(self, title: str) -> bool:
        """For an observer: has the check of this title passed (so far)?"""
        return self.checks.get(title, False)


def seen_registers(ctx: Context) -> dict:
    """The registers at_power_off's look read; Fail if QEMU was never asked."""
    _looked(ctx)
    return ctx.boot.extra["registers"]


def seen_memory(ctx: Context) -> Memory:
    """The guest memory at_power_off's look read; Fail if QEMU was never asked."""
    _looked(ctx)
    return ctx.boot.extra["memory"]


def _looked(ctx: Context) -> None:
    extra = ctx.boot.extra
    if extra.get("monitor_error"):
        raise Unseen(f"QEMU could not be asked: {extra['monitor_error']}")
    if not extra.get("looked") or "registers" not in extra or "memory" not in extra:
        raise Unseen(
            f"QEMU was never asked: the kernel never printed `{POWER_WAIT}` (it waits there at power-off, "
            f"with monitor=power on its command line, while the grader reads its memory), so nothing it "
            f"says here could be checked"
        )


def serial_trace(ctx: Context):
    """The UART's register writes and the lines it sent, from QEMU's serial
    trace (observe.SerialTrace), or Fail if the boot's log has none."""
    from .observe import serial_trace as read

    trace = read(ctx.boot.log)
    if trace is None:
        raise Unavailable("this QEMU writes no serial trace events to its log (its trace backend is not `log`)")
    return trace


def exceptions_taken(ctx: Context):
    """Every exception the CPU took inside the kernel, from QEMU's -d int log (observe.Taken)."""
    from .observe import exceptions

    return exceptions(ctx.boot.log, ctx.symbols.kernel_range)


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
    found = {"checks": [], "values": [], "precompute": [], "places": [], "observers": []}
    if module is None:
        return dict(found, boots={}, interaction=None, hints=[], kernel_report=None, backed={}, recovered=None)
    default = getattr(module, "VISIBILITY", "after_due_date") if hidden else "visible"
    for obj in vars(module).values():
        if hasattr(obj, "kit_check"):
            c = obj.kit_check
            found["checks"].append(replace(c, visibility=c.visibility or default, hidden=hidden))
        for attr, key in (
            ("kit_values", "values"),
            ("kit_precompute", "precompute"),
            ("kit_place", "places"),
            ("kit_observed", "observers"),
        ):
            if getattr(obj, attr, False):
                found[key].append(obj)  # values and precompute: obj.kit_values says "seeded" or "fixed"
    return dict(
        found,
        boots=dict(getattr(module, "BOOTS", {})),
        interaction=getattr(module, "INTERACTION", None),
        hints=list(getattr(module, "HINTS", [])),
        kernel_report=getattr(module, "kernel_report", None),
        backed=dict(getattr(module, "BACKED_BY", {})),
        recovered=getattr(module, "recovered", None),
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
