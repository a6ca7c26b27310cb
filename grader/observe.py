"""What the emulator saw, outside the kernel, and how it backs each check.

The grader believes, in this order: what the emulator observed (QEMU's trace
events and `-d int` log, guest memory and registers read over QMP while the
kernel waits), a value only the student's work computes for this run's seed,
and last what the kernel printed. This module reads the first kind out of a
boot (the 16550's register writes from QEMU's serial trace, every exception
from the `-d int` log) and applies a lab's @observed functions to its checks;
grade.py's `prove` then gives points only to checks with evidence of their own.
"""
import re
from dataclasses import dataclass, field, replace

from . import api

# --- the 16550, as QEMU's serial trace events saw it ------------------------------

SERIAL_EVENT = re.compile(r"^serial_(read|write) (?:read|write) addr 0x([0-9a-f]+) val 0x([0-9a-f]+)$")
TRACE_EVENTS = ("serial_write", "serial_read", "serial_update_parameters")  # -trace, QEMU 7.2's log backend
THR, IER, FCR, LCR, MCR, LSR = 0, 1, 2, 3, 4, 5  # the PC16550D's register offsets from its base port
LCR_DLAB, MCR_LOOP, FCR_ENABLE = 0x80, 0x10, 0x01
UART_CLOCK_DIV = 115200


@dataclass(frozen=True)
class Settings:
    """The line parameters the UART had when a byte left it."""

    divisor: int
    lcr: int
    fifo: bool

    def __str__(self):
        baud = f"{UART_CLOCK_DIV // self.divisor} baud" if self.divisor else "no baud rate"
        return f"divisor {self.divisor} ({baud}), LCR 0x{self.lcr:02x}, FIFO {'on' if self.fifo else 'off'}"


@dataclass
class Sent:
    """One line as it left the UART: its text, the settings at its first
    byte, and how many times LSR was read before each of its bytes (since the
    byte before it)."""

    text: str
    settings: Settings
    polls: list = field(default_factory=list)


@dataclass
class SerialTrace:
    lines: list  # Sent, in order
    loopback: list  # (byte written, byte read back) while MCR.LOOP was set
    mcr: int  # the last value written to MCR
    writes: int  # register writes seen

    def first(self, text):
        """The index of the first line sent whose text is `text`, or None."""
        return next((i for i, s in enumerate(self.lines) if s.text == text), None)


def serial_trace(log):
    """The UART's story from QEMU's serial trace events in the -D log, or
    None if the log has none (Bochs, or a QEMU built without them)."""
    regs = {LCR: 0, MCR: 0, "dll": 0, "dlm": 0, "fifo": False}
    lines, loopback, writes = [], [], 0
    text, settings, polls, pending, pending_loop = [], None, [], 0, None
    for line in log.splitlines():
        m = SERIAL_EVENT.match(line)
        if not m:
            continue
        kind, addr, val = m.group(1), int(m.group(2), 16), int(m.group(3), 16)
        dlab = regs[LCR] & LCR_DLAB
        if kind == "read":
            if addr == LSR:
                pending += 1
            elif addr == THR and not dlab and pending_loop is not None:
                loopback.append((pending_loop, val))
                pending_loop = None
            continue
        writes += 1
        if addr == THR and dlab:
            regs["dll"] = val
        elif addr == IER and dlab:
            regs["dlm"] = val
        elif addr == FCR:
            regs["fifo"] = bool(val & FCR_ENABLE)
        elif addr in (LCR, MCR):
            regs[addr] = val
        elif addr == THR and regs[MCR] & MCR_LOOP:
            pending_loop = val
        elif addr == THR:
            if not text:
                settings = Settings(regs["dlm"] << 8 | regs["dll"], regs[LCR], regs["fifo"])
            polls.append(pending)
            pending = 0
            if val == 0x0A:
                lines.append(Sent("".join(text), settings, polls))
                text, polls = [], []
            elif val != 0x0D:
                text.append(chr(val) if 0x20 <= val < 0x7F else f"\\x{val:02x}")
    if text:
        lines.append(Sent("".join(text), settings, polls))
    if not writes:
        return None
    return SerialTrace(lines, loopback, regs[MCR], writes)


# --- exceptions, from QEMU's -d int log ------------------------------------------

TAKEN = re.compile(
    r"^\s*\d+: v=([0-9a-f]+) e=([0-9a-f]+) i=(\d) cpl=(\d) IP=[0-9a-f]+:([0-9a-f]+) pc=[0-9a-f]+ "
    r"SP=[0-9a-f]+:([0-9a-f]+)(?: CR2=([0-9a-f]+))?"
)


@dataclass(frozen=True)
class Taken:
    """One exception the CPU delivered (QEMU's `-d int`)."""

    vector: int
    error: int
    software: bool  # int n, int3
    rip: int
    rsp: int
    cr2: int = None  # page faults

    def __str__(self):
        cr2 = f" cr2 0x{self.cr2:x}" if self.cr2 is not None else ""
        return f"vector {self.vector} error 0x{self.error:x} at rip 0x{self.rip:x}{cr2}"


def exceptions(log, kernel_range=None):
    """Every exception of the -d int log, in order; with kernel_range
    (start, end), only those whose RIP lies in the kernel (the BIOS's and
    GRUB's interrupts are left out)."""
    found = []
    for m in map(TAKEN.match, log.splitlines()):
        if not m:
            continue
        t = Taken(
            int(m.group(1), 16),
            int(m.group(2), 16),
            m.group(3) == "1",
            int(m.group(5), 16),
            int(m.group(6), 16),
            int(m.group(7), 16) if m.group(7) else None,
        )
        if kernel_range is None or kernel_range[0] <= t.rip < kernel_range[1]:
            found.append(t)
    return found


# --- evidence per check --------------------------------------------------------------

SEED, OBSERVED, BORROWED, TOLD = "seed-bound", "observed", "borrowed", "told"
REFUTED = "refuted"  # its lines matched, and what the emulator saw says otherwise


def seeded_evidence(checks, plan, specs, matched, work_names):
    """Each check that passed on a value only the student's work computes
    for this run's seed: a transcript check with a matched line that holds
    one, or a computed check declared seeded=True."""
    out = []
    seeded_defs = {d.title for d in plan.checks if d.seeded}
    by_title = {s.title: s for s in specs}
    for c in checks:
        spec = by_title.get(c.title)
        bound = (
            c.title in seeded_defs
            or spec is not None
            and any(
                r.status == "matched" and work_names & set(PLACEHOLDER.findall(r.expect.text))
                for r in matched[spec.title]
                if not r.expect.never
            )
        )
        out.append(replace(c, evidence=SEED) if c.passed and bound else c)
    return out


PLACEHOLDER = re.compile(r"\{([^{}|]*)\}")


def apply_observers(checks, observers, make_context, emulator):
    """Each @observed function on the checks it names: where this emulator
    can observe, the check passes only if the observation agrees (its
    evidence is then "observed"), and fails with what the emulator saw if it
    does not; elsewhere the check stands on what the kernel printed ("told";
    told_note names them). Returns (checks, notes on what this host's
    emulator could not observe at all)."""
    checks = list(checks)
    index = {c.title: i for i, c in enumerate(checks)}
    unavailable = []
    for fn in observers:
        spec = fn.kit_observed
        targets = [index[t] for t in spec.titles if t in index]
        if not targets:
            continue
        if emulator not in spec.emulators:
            for i in targets:
                if checks[i].evidence != SEED:
                    checks[i] = replace(checks[i], evidence=TOLD)
            continue
        ctx = make_context(checks[targets[0]].boot, {c.title: c.passed for c in checks})
        try:
            fn(ctx)
            failure = None
        except api.Unavailable as f:  # this host's emulator cannot see it: as if it were Bochs
            for i in targets:
                if checks[i].evidence != SEED:
                    checks[i] = replace(checks[i], evidence=TOLD)
            unavailable.append(f"{', '.join(spec.titles)}: {f.message}")
            continue
        except api.Fail as f:
            failure = f
        except Exception as e:  # a grader bug must not hide the other checks
            failure = api.Fail(f"internal error while observing: {type(e).__name__}: {e} (please report it)")
        for i in targets:
            c = checks[i]
            if failure is None:
                checks[i] = replace(c, evidence=OBSERVED if c.evidence != SEED else SEED)
            elif c.passed:
                checks[i] = replace(c, passed=False, message=failure.message, details=failure.details, evidence=REFUTED)
            elif not c.message.startswith("missing") and not isinstance(failure, api.Unseen):  # what it saw
                checks[i] = replace(c, details=[f"{spec.who}: {failure.message}"] + failure.details + c.details)
    notes = [f"not observed here, so it stands on the kernel's own lines: {n}" for n in unavailable]
    return checks, notes


def told_note(checks, emulator):
    """The note that names the checks which stand on the kernel's lines
    because this emulator cannot be asked (observe.TOLD), or None."""
    told = [c.title for c in checks if c.evidence == TOLD]
    if not told or emulator == "qemu":
        return None
    return (
        f"{NAMES.get(emulator, emulator)} cannot be asked what these checks' facts were, so here they stand "
        f"on the kernel's own lines (they are observed under QEMU only): " + "; ".join(told)
    )


NAMES = {"qemu": "QEMU", "bochs": "Bochs"}


def borrow_evidence(checks, backed):
    """A check of constant lines named in a lab's BACKED_BY counts where the
    check it names passed on evidence of its own; where that one failed, it
    fails too, and says why."""
    by_title = {c.title: c for c in checks}
    out = []
    for c in checks:
        names = backed.get(c.title, ())
        other = next((by_title[n] for n in ((names,) if isinstance(names, str) else names) if n in by_title), None)
        if other is None or not c.passed or c.evidence in (SEED, OBSERVED):
            out.append(c)
        elif other.passed and other.evidence in (SEED, OBSERVED, TOLD):
            out.append(replace(c, evidence=BORROWED if other.evidence != TOLD else TOLD))
        else:
            out.append(
                replace(
                    c,
                    passed=False,
                    message=f"no points: these lines matched, but they read the same on every run (they do not "
                    f"depend on the seed), so they cannot be told from a copy printed without the work; they count "
                    f"where `{other.title}` passes, which shows the work",
                    details=[],
                )
            )
    return out
