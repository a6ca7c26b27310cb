"""Reading what went wrong: the exception chain from QEMU's `-d int,cpu_reset`
log (or Bochs's), each RIP mapped to function and source line, the place of
each address in words, and a hint. The places and the hints come from the
labs of the stage (their checks.py: @place functions, HINTS); this module
knows the CPU, not the labs.
"""
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import scratch

EXCEPTIONS = {
    0: ("#DE", "divide error"),
    1: ("#DB", "debug"),
    2: ("NMI", "non-maskable interrupt"),
    3: ("#BP", "breakpoint"),
    4: ("#OF", "overflow"),
    5: ("#BR", "bound range"),
    6: ("#UD", "invalid opcode"),
    7: ("#NM", "device not available"),
    8: ("#DF", "double fault"),
    10: ("#TS", "invalid TSS"),
    11: ("#NP", "segment not present"),
    12: ("#SS", "stack fault"),
    13: ("#GP", "general protection"),
    14: ("#PF", "page fault"),
    16: ("#MF", "x87 error"),
    17: ("#AC", "alignment check"),
    18: ("#MC", "machine check"),
    19: ("#XM", "SIMD exception"),
    20: ("#VE", "virtualization"),
    21: ("#CP", "control protection"),
    28: ("#HV", "hypervisor injection"),
    29: ("#VC", "VMM communication"),
    30: ("#SX", "security"),
}
HAS_ERROR_CODE = {8, 10, 11, 12, 13, 14, 17, 21, 29, 30}
PF_BITS = [
    (0, "P", "protection violation (page present)", "page not present"),
    (1, "W", "write", "read"),
    (2, "U", "user mode", "kernel mode"),
    (3, "RSVD", "reserved bit set in a paging entry", None),
    (4, "I", "instruction fetch", None),
    (5, "PK", "protection key", None),
    (6, "SS", "shadow stack", None),
    (15, "SGX", "SGX", None),
]

ENTRY = re.compile(
    r"^\s*\d+: v=([0-9a-f]+) e=([0-9a-f]+) i=(\d) cpl=(\d) IP=([0-9a-f]+):([0-9a-f]+) "
    r"pc=([0-9a-f]+) SP=([0-9a-f]+):([0-9a-f]+)"
)
REG = re.compile(r"\b(CR0|CR2|CR3|CR4|EFER|IDT|GDT|EAX|RAX)=\s*([0-9a-f]+)(?: ([0-9a-f]+))?")


@dataclass
class Fault:
    vector: int
    error: int
    software: bool  # int n / int3
    rip: int
    rsp: int
    regs: dict = field(default_factory=dict)
    where: str = ""  # function (file:line)
    place: str = ""  # where CR2 lies, for a page fault

    @property
    def name(self):
        mnemonic, long = EXCEPTIONS.get(self.vector, (f"vector {self.vector}", "interrupt"))
        return f"{mnemonic} ({long}, vector {self.vector})"

    def error_text(self):
        if self.vector not in HAS_ERROR_CODE or self.vector == 8:
            return ""
        if self.vector == 14:
            place = f" ({self.place})" if self.place else ""
            return f"error {self.error:#x}: {decode_pf(self.error)}; CR2={self.regs.get('CR2', 0):#x}{place}"
        return f"error {self.error:#x}: {decode_selector(self.error)}"


@dataclass
class Chain:
    faults: list
    triple: bool
    messages: list = field(default_factory=list)  # the emulator's own words (Bochs errors)
    handled: int = 0  # earlier exceptions in the kernel that it handled and survived
    kernel_said: list = field(default_factory=list)  # the kernel's own report line, if it has a handler
    stray: object = None  # the last fresh exception of the log, when it lies outside the kernel

    def __bool__(self):
        return bool(self.faults) or self.triple


def decode_pf(code):
    parts = []
    for bit, name, yes, no in PF_BITS:
        if code & (1 << bit):
            parts.append(f"{name}={yes}")
        elif no:
            parts.append(no)
    return ", ".join(parts)


def decode_selector(code):
    if code == 0:
        return "no selector involved"
    table = "IDT" if code & 2 else ("LDT" if code & 4 else "GDT")
    ext = ", during an external event" if code & 1 else ""
    if table == "IDT":
        return f"refers to an IDT gate{ext}: the gate is missing, not present or past the IDT limit"
    return f"refers to {table} selector {code & ~7:#x}{ext}"


CHECK = re.compile(r"^check_exception old: 0x([0-9a-f]+) new 0x([0-9a-f]+)")
SAID_RIP = re.compile(r"\brip (?:0x)?([0-9a-f]{6,16})\b")  # in the kernel's own report line


def parse_qemu_log(text, kernel_range=None):
    """The last chain of exceptions in the log whose RIP lies in the kernel
    (BIOS and GRUB interrupts are left out): a chain starts with a fresh
    exception (`check_exception old: 0xffffffff`, or a software interrupt) and
    goes on with those raised while delivering it. Earlier chains were
    handled by the kernel; they are only counted. Also: a triple fault?"""
    chains, current, old, tracking, prev, stray = [], None, None, False, None, None
    triple = "Triple fault" in text
    for line in text.splitlines():
        c = CHECK.match(line)
        if c:
            old = int(c.group(1), 16)
            continue
        m = ENTRY.match(line)
        if m:
            v, e, i, _, _, rip, pc, _, sp = m.groups()
            current = Fault(int(v, 16), int(e, 16), i == "1", int(pc, 16), int(sp, 16))
            delivering = (
                prev is not None
                and prev.rip == current.rip
                and not current.software  # a second int n at the same place is a loop, not a failed delivery
                and (prev.software or (current.error & 2 and current.error >> 3 == prev.vector))  # an int n that failed
            )  # its IDT gate was unusable
            fresh = (old is None or old == 0xFFFFFFFF) and not delivering
            old, prev = None, current
            if fresh:
                tracking = kernel_range is None or kernel_range[0] <= current.rip < kernel_range[1]
                stray = None if tracking else current
                if tracking:
                    chains.append([])
            if tracking:
                chains[-1].append(current)
            else:
                current = None
            continue
        if current is not None:
            for name, a, b in REG.findall(line):
                if name in ("IDT", "GDT"):
                    current.regs[name] = (int(a, 16), int(b, 16) if b else 0)
                else:
                    current.regs["RAX" if name == "EAX" else name] = int(a, 16)
    last = chains[-1] if chains else []
    chain = Chain(last, triple, handled=sum(len(c) for c in chains[:-1]))
    chain.stray = stray if triple else None
    return chain


BOCHS_EVENT = re.compile(
    r"^(\d+)[de]\[CPU0\s*\] (?:exception\(0x([0-9a-f]+)\): error_code=([0-9a-f]+)"
    r"|interrupt\(\): vector = ([0-9a-f]+), TYPE = (\d+), EXT = (\d+)|(.*))$"
)
BOCHS_TRIPLE = re.compile(r"^(\d+)p\[CPU0\s*\] >>PANIC<< exception\(\): 3rd \((\d+)\) exception with no resolution")
BOCHS_REG = re.compile(r"\b(RIP|EIP|RAX|EAX|CR0|CR2|CR3|CR4)=(?:0x)?([0-9a-f]+)")
BOCHS_EFER = re.compile(r"\bEFER\s*=\s*0x([0-9a-f]+)")
SOFTWARE_TYPES = {"4", "5", "6"}  # int n, privileged software interrupt, int3/into


def parse_bochs_log(text):
    """The exceptions Bochs raised in the instruction that ended the run (its
    debug lines for CPU0 carry the instruction count), whether it was a
    triple fault, and Bochs's own error messages about that instruction."""
    lines = text.splitlines()
    end = next((m for m in map(BOCHS_TRIPLE.match, lines) if m), None)
    if end is None:
        return Chain([], False)
    stamp = end.group(1)
    faults, messages, regs = [], [], {}
    for ln in lines:
        if not ln.startswith(stamp):
            continue
        m = BOCHS_EVENT.match(ln)
        if m and m.group(2):
            faults.append(Fault(int(m.group(2), 16), int(m.group(3), 16), False, 0, 0))
        elif m and m.group(4) and m.group(5) in SOFTWARE_TYPES:
            faults.append(Fault(int(m.group(4), 16), 0, True, 0, 0))
        elif m and m.group(7) and "e[CPU0" in ln[:20] and m.group(7) not in messages:
            messages.append(m.group(7).strip())
        if ln[len(stamp) :].startswith("i[CPU0") and not regs.get("_done"):
            e = BOCHS_EFER.search(ln)
            if e:
                regs["EFER"] = int(e.group(1), 16)
            for name, value in BOCHS_REG.findall(ln) if "|" in ln else ():
                regs[{"EIP": "RIP", "EAX": "RAX"}.get(name, name)] = int(value, 16)
        if ">>PANIC<<" in ln:
            regs["_done"] = bool(regs)
    regs.pop("_done", None)
    for f in faults:
        f.rip = regs.get("RIP", 0)
        f.regs = {k: v for k, v in regs.items() if k != "RIP"}
    return Chain(faults, True, messages)


def symbolize(elf, addresses, roots=(), place=None):
    """{address: 'function (file:line)'} from llvm-symbolizer (or addr2line):
    the function the code belongs to and its own source line (where a helper
    such as inb() was inlined, the line that called it); for an address with
    no source line, place(addr) names it if it can."""
    addresses = list(dict.fromkeys(addresses))
    if not addresses or not Path(elf).is_file():
        return {}
    tool = shutil.which("llvm-symbolizer")
    try:
        if tool:
            out = scratch.run_tool(
                [tool, f"--obj={elf}", "--inlining=true"] + [hex(a) for a in addresses],
                30,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ).stdout
            blocks = [b.splitlines()[-2:] for b in out.strip().split("\n\n")]  # the outermost frame
        elif shutil.which("addr2line"):
            out = scratch.run_tool(
                ["addr2line", "-f", "-e", str(elf)] + [hex(a) for a in addresses],
                30,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ).stdout.splitlines()
            blocks = [out[i : i + 2] for i in range(0, len(out), 2)]
        else:
            return {}
    except (OSError, subprocess.TimeoutExpired):
        return {}
    names = {}
    for addr, block in zip(addresses, blocks):
        if len(block) < 2 or block[0] in ("??", "") or block[1].startswith("??"):
            # no source line: a data symbol at best (code made at run time, a jump into data)
            where = place(addr) if place else ""
            if where:
                names[addr] = where
            continue
        loc = block[1].rsplit(":", 1)[0] if block[1].count(":") >= 2 else block[1]
        for r in roots:
            loc = loc.replace(str(r).rstrip("/") + "/", "")
        if loc.endswith(":0"):  # code the compiler made without a line of its own: name the file alone
            loc = loc[:-2]
        names[addr] = f"{block[0]} ({loc})"
    return names


def fix_marker_names(names, symbols):
    """llvm-symbolizer may name a linker marker (__text_start) that shares an
    address with the real function: name the function instead."""
    out = {}
    for addr, text in names.items():
        func = text.split(" (", 1)[0]
        if func.startswith("__") and symbols.code_symbol(addr):
            text = symbols.code_symbol(addr) + text[len(func) :]
        out[addr] = text
    return out


def place_of(addr, ev, places):
    """Where addr lies, in words, from the first of the labs' place functions that knows."""
    for fn in places:
        try:
            where = fn(addr, ev)
        except (KeyError, TypeError, ValueError, IndexError):
            where = None
        if where:
            return where
    return ""


def choose_hint(ev, hints):
    """The text of the first hint whose test holds (hints are in order)."""
    for h in hints:
        try:
            if h.test(ev):
                return h.text(ev) if callable(h.text) else h.text
        except (KeyError, TypeError, IndexError, AttributeError, ValueError):
            continue
    return None


@dataclass
class Knowledge:
    """What the stage's labs add to the diagnosis, in the order to ask them."""

    hints: list = field(default_factory=list)
    places: list = field(default_factory=list)
    kernel_report: list = field(default_factory=list)  # fn(lines) -> the kernel's own fault report
    recovered: list = field(default_factory=list)  # fn(lines) -> RIPs of faults the kernel handled and survived


def where_stuck(samples, build, roots=(), knowledge=None):
    """One line saying where a stalled kernel was, from RIP samples taken
    through QEMU's monitor, or None without samples."""
    if not samples:
        return None
    from .api import Evidence

    ev = Evidence(Chain([], False), None, build.stage, build.symbols, [], code=True)
    places = knowledge.places if knowledge else []
    names = fix_marker_names(
        symbolize(build.elf, [s["rip"] for s in samples], roots, place=lambda a: place_of(a, ev, places)), build.symbols
    )
    found = {}
    for s in samples:
        text = names.get(s["rip"], f"0x{s['rip']:x} (no symbol)")
        func, _, loc = text.partition(" (")
        found.setdefault(func, []).append(loc.rstrip(")"))
    func, locs = max(found.items(), key=lambda kv: len(kv[1]))
    files = sorted({loc.rsplit(":", 1)[0] for loc in locs if ":" in loc})
    lines = sorted({int(loc.rsplit(":", 1)[1]) for loc in locs if re.search(r":\d+$", loc)})
    if len(files) == 1 and lines:
        where = f"{files[0]}:{lines[0]}" + (f"-{lines[-1]}" if len(lines) > 1 else "")
    else:
        where = ", ".join(sorted(set(locs))) or "no source line"
    on = [s["interrupts"] for s in samples]
    state = "interrupts off" if not any(on) else "interrupts on" if all(on) else "interrupts on and off"
    if all(s["halted"] for s in samples):
        state = "halted (hlt) with " + state + (": nothing will wake it" if not any(on) else "")
    return f"the kernel was still running in {func} ({where}) in {len(locs)} of {len(samples)} samples, {state}"


DIAGNOSIS_LINES = 24  # lines of one diagnosis, its hint apart


def bounded(lines):
    """At most DIAGNOSIS_LINES lines, the last saying how many more there were."""
    from .safe import lines as capped

    return capped(lines, DIAGNOSIS_LINES)


def recovered_chain(chain, knowledge, lines_printed):
    """Is the chain one the kernel says it handled (a self-test's probe, recovered
    by a fix-up) and went on from? Never for a triple fault."""
    if chain.triple or not chain.faults:
        return False
    handled = set()
    for fn in knowledge.recovered:
        handled |= set(fn(lines_printed))
    return chain.faults[0].rip in handled


def diagnose(log_text, build, knowledge, emulator="qemu", lines_printed=(), roots=()):
    """Lines describing the exception chain in the log, or [] if there is none
    (at most DIAGNOSIS_LINES, a repeated exception said once with its count).
    lines_printed (the serial output) helps the places say where an address lies."""
    from .api import Evidence

    syms = build.symbols
    if emulator == "bochs":
        chain = parse_bochs_log(log_text)
    else:
        chain = parse_qemu_log(log_text, syms.kernel_range)
    for report in knowledge.kernel_report:
        chain.kernel_said = chain.kernel_said or list(report(lines_printed))
    if recovered_chain(chain, knowledge, lines_printed):
        chain = Chain([], False, kernel_said=chain.kernel_said)  # handled and survived: no cause here
    if not chain and not chain.kernel_said:
        return [], chain
    first = chain.faults[0] if chain.faults else None
    ev = Evidence(chain, first, build.stage, syms, list(lines_printed), chain.kernel_said)
    if chain.kernel_said and not chain.triple:
        lines = [f"the kernel handled this fault itself and reported: {chain.kernel_said[0]}"]
        m = SAID_RIP.search(chain.kernel_said[0])
        if m:
            code_ev = Evidence(chain, first, build.stage, syms, list(lines_printed), chain.kernel_said, code=True)
            rip = int(m.group(1), 16)
            where = fix_marker_names(
                symbolize(build.elf, [rip], roots, place=lambda a: place_of(a, code_ev, knowledge.places)), syms
            )
            if rip in where:
                lines.append(f"rip 0x{rip:x} is in {where[rip]}")
        hint = choose_hint(ev, knowledge.hints)
        return bounded(lines) + ([f"hint: {hint}"] if hint else []), chain
    code_ev = Evidence(chain, first, build.stage, syms, list(lines_printed), chain.kernel_said, code=True)
    names = symbolize(
        build.elf, [f.rip for f in chain.faults], roots, place=lambda a: place_of(a, code_ev, knowledge.places)
    )
    names = fix_marker_names(names, syms)
    for f in chain.faults:
        f.where = names.get(f.rip, "no symbol")
        if f.vector == 14:
            f.place = place_of(f.regs.get("CR2", 0), ev, knowledge.places)
    lines, same = [], 0
    for n, f in enumerate(chain.faults):
        kind = "raised by an instruction (int n)" if f.software else ""
        err = f.error_text()
        line = f"{f.name} at rip {f.rip:#x} in {f.where}" + (f"; {err}" if err else "") + (f" [{kind}]" if kind else "")
        if lines and lines[-1].removeprefix("then ") == line:
            same += 1
            continue
        if same:
            lines.append(f"then the same exception {same} more time(s)")
            same = 0
        lines.append(("then " if n else "") + line)
    if same:
        lines.append(f"then the same exception {same} more time(s)")
    if chain.stray is not None and not chain.faults:
        s = chain.stray
        lines.append(
            f"{s.name} at rip {s.rip:#x}, outside the kernel" + (f"; {s.error_text()}" if s.error_text() else "")
        )
    if chain.triple:
        lines.append(
            ("then " if lines else "")
            + "triple fault: "
            + (
                "Bochs stopped at the third exception"
                if emulator == "bochs"
                else "the CPU reset (QEMU exits 0 under -no-reboot)"
            )
        )
    lines += [f"bochs says: {m}" for m in chain.messages[:3]]
    if chain.handled:
        lines.append(f"(before this chain, the log shows {chain.handled} other exception(s) in the kernel)")
    hint = choose_hint(ev, knowledge.hints)
    return bounded(lines) + ([f"hint: {hint}"] if hint else []), chain
