"""Reading what went wrong: the exception chain from QEMU's `-d int,cpu_reset`
log, each RIP mapped to function and source line, and a hint keyed to the lab
that names the book section to read.
"""
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

EXCEPTIONS = {
    0: ("#DE", "divide error"), 1: ("#DB", "debug"), 2: ("NMI", "non-maskable interrupt"),
    3: ("#BP", "breakpoint"), 4: ("#OF", "overflow"), 5: ("#BR", "bound range"),
    6: ("#UD", "invalid opcode"), 7: ("#NM", "device not available"), 8: ("#DF", "double fault"),
    10: ("#TS", "invalid TSS"), 11: ("#NP", "segment not present"), 12: ("#SS", "stack fault"),
    13: ("#GP", "general protection"), 14: ("#PF", "page fault"), 16: ("#MF", "x87 error"),
    17: ("#AC", "alignment check"), 18: ("#MC", "machine check"), 19: ("#XM", "SIMD exception"),
    20: ("#VE", "virtualization"), 21: ("#CP", "control protection"), 28: ("#HV", "hypervisor injection"),
    29: ("#VC", "VMM communication"), 30: ("#SX", "security"),
}
HAS_ERROR_CODE = {8, 10, 11, 12, 13, 14, 17, 21, 29, 30}
PF_BITS = [(0, "P", "protection violation (page present)", "page not present"),
           (1, "W", "write", "read"), (2, "U", "user mode", "kernel mode"),
           (3, "RSVD", "reserved bit set in a paging entry", None),
           (4, "I", "instruction fetch", None), (5, "PK", "protection key", None),
           (6, "SS", "shadow stack", None), (15, "SGX", "SGX", None)]

ENTRY = re.compile(r"^\s*\d+: v=([0-9a-f]+) e=([0-9a-f]+) i=(\d) cpl=(\d) IP=([0-9a-f]+):([0-9a-f]+) "
                   r"pc=([0-9a-f]+) SP=([0-9a-f]+):([0-9a-f]+)")
REG = re.compile(r"\b(CR0|CR2|CR3|CR4|EFER|IDT|GDT)=\s*([0-9a-f]+)(?: ([0-9a-f]+))?")


@dataclass
class Fault:
    vector: int
    error: int
    software: bool              # int n / int3
    rip: int
    rsp: int
    regs: dict = field(default_factory=dict)
    where: str = ""             # function (file:line)
    place: str = ""             # where CR2 lies, for a page fault

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
    messages: list = field(default_factory=list)   # the emulator's own words (Bochs errors)
    handled: int = 0            # earlier exceptions in the kernel that it handled and survived
    kernel_said: list = field(default_factory=list)   # the kernel's own report line (lab 05 on)
    probe_fault: bool = False   # that report names a probe's instruction
    in_jit: bool = False        # that report names a rip in the JIT's code (the heap)
    jit_code: str = ""          # and the JIT whose code it is, from the kernel's `[jit] NAME: ...` lines

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


def parse_qemu_log(text, kernel_range=None):
    """The last chain of exceptions in the log whose RIP lies in the kernel
    (BIOS and GRUB interrupts are left out): a chain starts with a fresh
    exception (`check_exception old: 0xffffffff`, or a software interrupt) and
    goes on with those raised while delivering it. Earlier chains were
    handled by the kernel; they are only counted. Also: a triple fault?"""
    chains, current, old, tracking, prev = [], None, None, False, None
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
            fresh = (old is None or old == 0xFFFFFFFF) and not (
                prev is not None and prev.software and prev.rip == current.rip)   # int n that failed
            old, prev = None, current
            if fresh:
                tracking = kernel_range is None or kernel_range[0] <= current.rip < kernel_range[1]
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
                    current.regs[name] = int(a, 16)
    last = chains[-1] if chains else []
    return Chain(last, triple, handled=sum(len(c) for c in chains[:-1]))


BOCHS_EVENT = re.compile(r"^(\d+)[de]\[CPU0\s*\] (?:exception\(0x([0-9a-f]+)\): error_code=([0-9a-f]+)"
                         r"|interrupt\(\): vector = ([0-9a-f]+), TYPE = (\d+), EXT = (\d+)|(.*))$")
BOCHS_TRIPLE = re.compile(r"^(\d+)p\[CPU0\s*\] >>PANIC<< exception\(\): 3rd \((\d+)\) exception with no resolution")
BOCHS_REG = re.compile(r"\b(RIP|EIP|CR0|CR2|CR3|CR4)=(?:0x)?([0-9a-f]+)")
SOFTWARE_TYPES = {"4", "5", "6"}   # int n, privileged software interrupt, int3/into


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
        if ln[len(stamp):].startswith("i[CPU0") and "|" in ln and not regs.get("_done"):
            for name, value in BOCHS_REG.findall(ln):
                regs["RIP" if name == "EIP" else name] = int(value, 16)
        if ">>PANIC<<" in ln:
            regs["_done"] = bool(regs)
    regs.pop("_done", None)
    for f in faults:
        f.rip = regs.get("RIP", 0)
        f.regs = {k: v for k, v in regs.items() if k != "RIP"}
    return Chain(faults, True, messages)


def symbolize(elf, addresses, root=None):
    """{address: 'function (file:line)'} from llvm-symbolizer, or addr2line."""
    addresses = list(dict.fromkeys(addresses))
    if not addresses or not Path(elf).is_file():
        return {}
    names = {}
    tool = shutil.which("llvm-symbolizer")
    try:
        if tool:
            out = subprocess.run([tool, f"--obj={elf}", "--inlining=false"] + [hex(a) for a in addresses],
                                 capture_output=True, text=True, timeout=30).stdout
            blocks = [b.splitlines() for b in out.strip().split("\n\n")]
        elif shutil.which("addr2line"):
            out = subprocess.run(["addr2line", "-f", "-e", str(elf)] + [hex(a) for a in addresses],
                                 capture_output=True, text=True, timeout=30).stdout.splitlines()
            blocks = [out[i:i + 2] for i in range(0, len(out), 2)]
        else:
            return {}
    except (OSError, subprocess.TimeoutExpired):
        return {}
    for addr, block in zip(addresses, blocks):
        if len(block) < 2 or block[0] in ("??", ""):
            continue
        loc = block[1].rsplit(":", 1)[0] if block[1].count(":") >= 2 else block[1]
        if root:
            for r in root if isinstance(root, (list, tuple)) else [root]:
                loc = loc.replace(str(r).rstrip("/") + "/", "")
        func = block[0]
        if loc.startswith("??"):
            syms = nm_symbols(elf)
            if syms.get("__heap_start", 1) <= addr < syms.get("__heap_end", 0):
                names[addr] = "code generated at run time (in the heap: the JIT's pages)"
                continue
        if func.startswith("__"):
            func = code_symbol(nm_symbols(elf), addr) or func
        names[addr] = f"{func} ({loc})"
    return names


def nm_symbols(elf):
    """{name: address} of the kernel's symbols, from llvm-nm."""
    try:
        out = subprocess.run(["llvm-nm", str(elf)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {p[2]: int(p[0], 16) for p in (ln.split() for ln in out.splitlines()) if len(p) == 3}


def code_symbol(syms, addr):
    """The nearest code label at or below addr, skipping the linker script's
    __section_start markers that share an address with the real function."""
    best = max(((a, n) for n, a in syms.items() if a <= addr and not n.startswith("__")), default=None)
    return best[1] if best else None


def kernel_range(elf):
    """[start, end) of the kernel image, from llvm-nm."""
    syms = nm_symbols(elf)
    if "__kernel_start" in syms and "__kernel_end" in syms:
        return syms["__kernel_start"], syms["__kernel_end"]
    return None


SECTIONS = ((".text", "__text_start", "__text_end"), (".rodata", "__rodata_start", "__rodata_end"),
            (".data", "__data_start", "__data_end"), ("the stack guard page", "__stack_guard", "__stack_bottom"),
            ("the stack", "__stack_bottom", "__stack_top"), ("the heap", "__heap_start", "__heap_end"),
            (".bss", "__bss_start", "__bss_end"))
MAP_LINE = re.compile(r"^\[paging\] map 0x([0-9a-f]{16})-0x([0-9a-f]{16}) ")
MMAP_LINE = re.compile(r"^\[mmap\] 0x([0-9a-f]{16})-0x([0-9a-f]{16}) usable$")


def place_of(addr, syms, lines):
    """Where addr lies, in words: a kernel section, or usable RAM that the
    kernel's printed page map does (not) cover, or beyond RAM."""
    for name, lo, hi in SECTIONS:
        if lo in syms and hi in syms and syms[lo] <= addr < syms[hi]:
            return name
    maps = [(int(m.group(1), 16), int(m.group(2), 16)) for m in map(MAP_LINE.match, lines) if m]
    ram = [(int(m.group(1), 16), int(m.group(2), 16) + 1) for m in map(MMAP_LINE.match, lines) if m]
    if maps and not any(a <= addr < b for a, b in maps):
        end = max(b for a, b in maps if a < 1 << 47)
        if any(a <= addr < b for a, b in ram):
            return f"usable RAM beyond the kernel's identity map (its last range ends at 0x{end:x})"
        return "an address the kernel's page map does not cover"
    if ram and not any(a <= addr < b for a, b in ram):
        return "no usable RAM (the memory map lists nothing there)"
    return ""


# Hints: (test on the chain and its context, text). The first that applies is shown.
def _in(fault, *names):
    return fault is not None and any(n in fault.where for n in names)


def _overflow_without_ist(c, f, lab):
    return (c.triple and f is not None and f.vector == 14 and 8 in [x.vector for x in c.faults]
            and "stack guard page" in f.place)


def _in_jit_code(c, syms):
    """The kernel's report names a rip in the heap: the JIT's generated code."""
    m = re.search(r"at rip 0x([0-9a-f]+)", c.kernel_said[0]) if c.kernel_said else None
    return bool(m) and syms.get("__heap_start", 1) <= int(m.group(1), 16) < syms.get("__heap_end", 0)


JIT_CODE = re.compile(r"^\[jit\] (\S+): (\d+) bytes of code at 0x([0-9a-f]+), sealed r-x$")


def _jit_code_at(c, lines):
    """The name of the JIT whose code holds the rip of the kernel's report, or ''."""
    m = re.search(r"at rip 0x([0-9a-f]+)", c.kernel_said[0]) if c.kernel_said else None
    for j in filter(None, map(JIT_CODE.match, lines)) if m else ():
        if int(j.group(3), 16) <= int(m.group(1), 16) < int(j.group(3), 16) + int(j.group(2)):
            return j.group(1)
    return ""


HINTS = [
    (lambda c, f, lab: lab >= 6 and c.kernel_said and "#UD invalid opcode" in c.kernel_said[0]
     and c.jit_code.startswith("avx"),
     "an invalid-opcode fault in the JIT's AVX code, at a VEX or EVEX instruction: AVX is off until the kernel "
     "sets CR4.OSXSAVE and then writes XCR0 with xsetbv (x87, SSE and AVX state; for zmm also opmask, "
     "ZMM_Hi256 and Hi16_ZMM), before the first such instruction. Book: chapter 6, \"Turning AVX on\"."),
    (lambda c, f, lab: lab >= 6 and c.kernel_said and "#UD invalid opcode" in c.kernel_said[0] and c.in_jit,
     "an invalid-opcode fault in the JIT's code, at an SSE instruction: SSE is off until the kernel sets "
     "CR4.OSFXSR (and CR4.OSXMMEXCPT, CR0.MP, with CR0.EM clear). Book: chapter 6, \"Turning SSE on\"."),
    (lambda c, f, lab: lab >= 6 and c.kernel_said and "#GP general protection" in c.kernel_said[0] and c.in_jit,
     "a general-protection fault in the JIT's code: a legacy SSE instruction (movdqa, pmaddwd) with a memory "
     "operand that is not 16-byte aligned. Book: chapter 6, \"Turning SSE on\"."),
    (_overflow_without_ist,
     "a page fault in the stack guard page could not be delivered (its frame goes on the same full stack), "
     "and neither could the double fault: vector 8 needs its own stack, IST1 in the TSS (idt_set_gate's "
     "ist argument), and the TSS's IST1 pointer must be set and mapped. "
     "Book: chapter 5, \"The double fault and the IST\"."),
    (lambda c, f, lab: c.kernel_said and "at rip 0x0000000000000000" in c.kernel_said[0],
     "the kernel's own report names rip 0, where nothing runs: the trap frame was read one word off, so "
     "the CPU's error code sits where rip should be. A stub must push a dummy error code only where the CPU "
     "pushes none, and trap_common must drop the vector and the error code (16 bytes) before iretq. "
     "Book: chapter 5, \"The trap frame\"."),
    (lambda c, f, lab: c.kernel_said and "unexpected" in c.kernel_said[0]
     and re.search(r"rip 0x[0-9a-f]+ .*", c.kernel_said[0]) and c.probe_fault,
     "a fault inside a probe had no fix-up entry: each instruction a probe expects to fault needs its "
     "(insn, resume) pair in .fixup_table, and fixup_find must find it. Book: chapter 5, \"Probes and fix-ups\"."),
    (lambda c, f, lab: any("Both CS.L and CS.D_B" in m for m in c.messages),
     "the 64-bit code segment has both L and D set: Bochs refuses it (QEMU lets it pass). With L=1, "
     "D must be 0: see the gdt in labs/01-boot/boot.S. Book: chapter 1, \"Pitfalls\"."),
    (lambda c, f, lab: _in(f, "lm_enable") and f.vector == 14 and abs(f.regs.get("CR2", 0) - f.rip) < 0x1000,
     "paging went on inside lm_enable and the next instruction fetch faulted (CR2 is next to RIP): "
     "CR3 does not point at the page tables, or was loaded after CR0.PG. Do PAE and CR3 before CR0.PG. "
     "Book: chapter 1, \"Entering long mode\"."),
    (lambda c, f, lab: _in(f, "lm_enable") and f.vector == 14,
     "paging went on inside lm_enable and an access faulted at CR2, which the page tables do not map "
     "(the stack, if CR2 is near RSP): the identity map must cover all the kernel touches. "
     "Book: chapter 1, \"Pitfalls\"."),
    (lambda c, f, lab: _in(f, "lm_enable"),
     "the first fault is inside lm_enable, before any IDT exists: check the order of the four "
     "steps (PAE and CR3 before CR0.PG). Book: chapter 1, \"Entering long mode\"."),
    (lambda c, f, lab: f is not None and f.vector == 14 and f.error & 0x8,
     "a reserved bit is set in a paging entry on the walk to CR2: an address not aligned to its page "
     "size (a 2 MiB page must be 2 MiB-aligned), PS where the level allows none, or address bits beyond "
     "the CPU's physical width. Book: chapter 4, \"What an entry says\"."),
    (lambda c, f, lab: f is not None and f.vector == 14 and f.error & 0x3 == 0x3 and lab >= 4,
     "a write to a present page faulted: PTE_W is clear in its entry or in a table above it (upper "
     "entries must allow writing for the leaf to decide). Book: chapter 4, \"What an entry says\"."),
    (lambda c, f, lab: f is not None and f.vector == 14 and f.error & 0x10 and f.place == ".text",
     "an instruction fetch from .text faulted: the kernel's code is mapped no-execute (PTE_NX) or not at "
     "all. Book: chapter 4, \"Pitfalls\"."),
    (lambda c, f, lab: f is not None and f.vector == 14 and "beyond the kernel's identity map" in f.place,
     "CR2 is usable RAM that the new page tables do not map: the identity map must cover every usable "
     "region of the memory map, not just the first megabytes. Book: chapter 4, \"Pitfalls\"."),
    (lambda c, f, lab: f is not None and f.vector == 14 and f.regs.get("CR2", 0) >= 1 << 30 and lab <= 3,
     "CR2 is beyond the boot identity map (1 GiB): the address was never mapped. A heap or buffer "
     "at a made-up fixed address does this. Book: chapter 3, \"Pitfalls\"."),
    (lambda c, f, lab: c.triple and lab < 5 and f is not None and f.regs.get("IDT", (0, 0))[1] == 0,
     "there is no IDT before lab 05, so any exception in the kernel ends in a triple fault: the "
     "first exception of the chain is the real problem. Book: chapter 0, \"Reading a grader report\"."),
    (lambda c, f, lab: c.triple and f is None,
     "the CPU reset without a logged exception in the kernel: a fault during the mode switch "
     "(boot.S) or an emulator that cannot log (KVM). Book: chapter 1, \"Pitfalls\"."),
]


def _kernel_report(lines_printed):
    """The kernel's own last word on a fault (lab 05 on): its report line."""
    return [ln for ln in lines_printed if ln.startswith("[fault] ") and
            ("unexpected" in ln or ln.startswith("[fault] #DF"))][-1:]


def diagnose(log_text, elf, lab_number, roots=(), emulator="qemu", lines_printed=()):
    """Lines describing the exception chain in the log, or [] if there is none.
    lines_printed (the serial output) tells where a page fault's CR2 lies."""
    if emulator == "bochs":
        chain = parse_bochs_log(log_text)
    else:
        chain = parse_qemu_log(log_text, kernel_range(elf))
    chain.kernel_said = _kernel_report(lines_printed)
    syms = nm_symbols(elf) if (chain.faults or chain.kernel_said) else {}
    if chain.kernel_said:
        m = re.search(r"at rip 0x([0-9a-f]+)", chain.kernel_said[0])
        probes = {n: a for n, a in syms.items() if n.startswith("probe_") and n.endswith("_insn")}
        chain.probe_fault = bool(m) and int(m.group(1), 16) in probes.values()
        chain.in_jit = _in_jit_code(chain, syms)
        chain.jit_code = _jit_code_at(chain, lines_printed)
    if not chain and not chain.kernel_said:
        return [], chain
    if chain.kernel_said and not chain.triple:
        lines = [f"the kernel handled this fault itself and reported: {chain.kernel_said[0]}"]
        for test, text in HINTS:
            try:
                if test(chain, chain.faults[0] if chain.faults else None, lab_number):
                    lines.append("hint: " + text)
                    break
            except (KeyError, TypeError, IndexError, AttributeError):
                continue
        return lines, chain
    names = symbolize(elf, [f.rip for f in chain.faults], roots)
    for f in chain.faults:
        f.where = names.get(f.rip, "no symbol")
        if f.vector == 14:
            f.place = place_of(f.regs.get("CR2", 0), syms, lines_printed)
    lines = []
    for n, f in enumerate(chain.faults):
        kind = "raised by an instruction (int n)" if f.software else ""
        err = f.error_text()
        lines.append(f"{'then ' if n else ''}{f.name} at rip {f.rip:#x} in {f.where}"
                     + (f"; {err}" if err else "") + (f" [{kind}]" if kind else ""))
    if chain.triple:
        lines.append("then triple fault: " + ("Bochs stopped at the third exception" if emulator == "bochs"
                                              else "the CPU reset (QEMU exits 0 under -no-reboot)"))
    lines += [f"bochs says: {m}" for m in chain.messages[:3]]
    if chain.handled:
        lines.append(f"(before this chain, the log shows {chain.handled} other exception(s) in the kernel)")
    first = chain.faults[0] if chain.faults else None
    for test, text in HINTS:
        try:
            if test(chain, first, lab_number):
                lines.append("hint: " + text)
                break
        except (KeyError, TypeError, IndexError, AttributeError):
            continue
    return lines, chain
