"""Lab 05: the addresses each probe touches come from the seed and the
section symbols of the kernel, the faulting instructions from the probes'
labels; a second boot overflows the stack on purpose. QEMU shows what
happened: every exception the CPU took (its -d int log: vector, error code,
RIP, CR2), and at power-off the IDT and TSS in its registers and in memory,
and pf_decode's words. A diagnosis reads the kernel's own fault report and
hints at the IST, the trap frame and fix-ups."""
import re

from grader.api import (
    Fail,
    Hint,
    at_power_off,
    check,
    end_of_run,
    exceptions_taken,
    observed,
    qemu_exit_status,
    seen_memory,
    seen_registers,
    sequence,
    values,
)

PAGE = 0x1000
BOOTS = {"overflow": "overflow"}
DOUBLE = re.compile(
    r"^\[fault\] #DF double fault on IST1: rsp 0x([0-9a-f]{16}) is at the stack guard page "
    r"0x([0-9a-f]{16}): a kernel stack overflow \(cr2 0x([0-9a-f]{16})\)$"
)
SAID_RIP = re.compile(r"at rip 0x([0-9a-f]+)")


def hx(v):
    return f"0x{v:016x}"


def probe_values(syms):
    return {f"rip_{name}": hx(syms[f"probe_{name}_insn"]) for name in ("divide", "ud2", "read", "write")}


def fault_values(seed, syms, defines):
    """The seeded addresses each probe touches.
    Twin: fault_selftest in labs/05-faults/fault.c probes these."""
    r = sequence(seed)
    v = {}
    v["gp"] = hx(defines["FAULT_NONCANONICAL_BASE"] + (next(r) & 0xFFFFF000))
    v["unmapped"] = hx(defines["FAULT_UNMAPPED_BASE"] + PAGE * (next(r) % 4096))
    v["ro"] = hx(syms["__rodata_start"] + next(r) % (syms["__rodata_end"] - syms["__rodata_start"]))
    v["nx"] = hx(syms["__data_start"] + next(r) % (syms["__data_end"] - syms["__data_start"]))
    v["code"] = hx(syms["__text_start"] + next(r) % (syms["__text_end"] - syms["__text_start"]))
    return v


@values
def probes_expected(ctx):
    return probe_values(ctx.symbols)


@values  # the given code draws these addresses: a forger can too, so they are no evidence of work
def fault_expected(ctx):
    return fault_values(ctx.seed, ctx.symbols, ctx.defines)


@check("faults: stack overflow ends in a double fault on IST1", 15, boot="overflow")
def stack_overflow(ctx):
    syms = ctx.symbols
    hits = [m for m in map(DOUBLE.match, ctx.boot.lines) if m]
    if not hits:
        problem = end_of_run(ctx.boot)
        raise Fail(
            "with tests=overflow, no `[fault] #DF double fault on IST1: ... a kernel stack overflow` line"
            + (f"; the run: {problem[0]}" if problem else ""),
            problem[1] if problem else [],
        )
    rsp, guard = int(hits[0].group(1), 16), int(hits[0].group(2), 16)
    if guard != syms["__stack_guard"] or not guard <= rsp <= syms["__stack_bottom"] + 64:
        raise Fail(
            f"the report names rsp {hx(rsp)} and guard {hx(guard)}, but the guard page is "
            f"{hx(syms['__stack_guard'])}-{hx(syms['__stack_bottom'])}"
        )
    if ctx.boot.outcome is None or ctx.boot.outcome.kind != "double fault":
        raise Fail(
            "the double-fault handler must power off with EXIT_DOUBLE_FAULT (QEMU exit status "
            f"{qemu_exit_status(ctx.stage, 'DOUBLE_FAULT')}); got: "
            + (ctx.boot.outcome.text if ctx.boot.outcome else ctx.boot.reason)
        )


def kernel_report(lines):
    """The kernel's own last word on a fault: its report line, if it gave one."""
    return [ln for ln in lines if ln.startswith("[fault] ") and ("unexpected" in ln or ln.startswith("[fault] #DF"))][
        -1:
    ]


RECOVERED = re.compile(r"^\[fault\] #\w+ [^:]* at (?:rip )?0x([0-9a-f]+)\b.*: (?:recovered by a fix-up|resuming)$")


def recovered(lines):
    """The RIPs of the faults the kernel reports it recovered from (fault.c's
    fault_report, a breakpoint it resumed after): a later hang or panic is
    not their doing."""
    return {int(m.group(1), 16) for m in map(RECOVERED.match, lines) if m}


def said_rip(ev):
    m = SAID_RIP.search(ev.said[0]) if ev.said else None
    return int(m.group(1), 16) if m else None


def in_a_probe(ev):
    """The kernel's report names the instruction of one of the probes."""
    probes = {a for n, a in ev.symbols.items() if n.startswith("probe_") and n.endswith("_insn")}
    return said_rip(ev) in probes


def rip_is_the_code_selector(ev):
    """RIP holds the kernel code selector (SEG_KCODE, 8): a `ret` took the CS
    word of an interrupt frame for its return address."""
    sel = ev.defines.get("SEG_KCODE")
    rip = said_rip(ev) if ev.said else (ev.fault.rip if ev.fault else None)
    return sel is not None and rip == sel


def overflow_without_ist(ev):
    return (
        ev.chain.triple
        and ev.fault is not None
        and ev.fault.vector == 14
        and 8 in [x.vector for x in ev.chain.faults]
        and "stack guard page" in ev.fault.place
    )


HINTS = [
    Hint(
        overflow_without_ist,
        "a page fault in the stack guard page could not be delivered (its frame goes on the same full stack), "
        "and neither could the double fault: vector 8 needs its own stack, IST1 in the TSS (idt_set_gate's "
        "ist argument), and the TSS's IST1 pointer must be set and mapped. "
        'Book: chapter 5, "The double fault and the IST".',
    ),
    Hint(
        rip_is_the_code_selector,
        lambda ev: f"rip {ev.defines['SEG_KCODE']:#x} is no address: it is the kernel code selector (SEG_KCODE in "
        "x86.h), the CS word of an interrupt frame. A `ret` popped it as a return address: returning from a trap "
        "takes iretq, which pops RIP, CS, RFLAGS, RSP and SS together, where a `ret` pops only RIP and leaves the "
        "other four on the stack for the next `ret` to find (trap_common in labs/05-faults/vectors.S). "
        'Book: chapter 5, "The trap frame".',
        key="is no address: it is the kernel code selector",
    ),
    Hint(
        lambda ev: ev.said and "at rip 0x0000000000000000" in ev.said[0],
        "the kernel's own report names rip 0, where nothing runs: the trap frame was read one word off, so "
        "the CPU's error code sits where rip should be. A stub must push a dummy error code only where the CPU "
        "pushes none, and trap_common must drop the vector and the error code (16 bytes) before iretq. "
        'Book: chapter 5, "The trap frame".',
    ),
    Hint(
        lambda ev: ev.said and "unexpected" in ev.said[0] and in_a_probe(ev),
        "a fault inside a probe had no fix-up entry: each instruction a probe expects to fault needs its "
        '(insn, resume) pair in .fixup_table, and fixup_find must find it. Book: chapter 5, "Probes and fix-ups".',
    ),
]


INTERACTION = at_power_off()
SEG_KCODE, SEG_TSS, GATE = 0x08, 0x18, 0x8E  # x86.h, trap.h: a present 64-bit interrupt gate, DPL 0
TSS_IST1, IST_STACK_SIZE = 36, 8192  # struct tss: ist[0]'s offset; trap.h
DECODED = "protection|write|user|reserved-bit|fetch|protection-key|shadow-stack"


@observed("faults: IDT, TSS and fix-up table in place")
def idt_seen(ctx):
    """IDTR and TR as QEMU shows them, each gate and the TSS in memory."""
    regs, mem, syms = seen_registers(ctx), seen_memory(ctx), ctx.symbols
    if regs.get("IDT") != (syms["idt"], 256 * 16 - 1):
        raise Fail(f"QEMU shows IDTR {regs.get('IDT')}, not the kernel's idt (0x{syms['idt']:x}, limit 0xfff)")
    tr = regs.get("TR", (0, 0))
    if tr[:2] != (SEG_TSS, syms["tss"]):
        raise Fail(f"QEMU shows TR selector 0x{tr[0]:x} base 0x{tr[1]:x}: the TSS (0x{syms['tss']:x}) is not loaded")
    for v in range(32):
        g = mem.read(syms["idt"] + 16 * v, 16)
        handler = int.from_bytes(g[0:2] + g[6:8] + g[8:12], "little")
        stub, ist = mem.u64(syms["trap_stubs"] + 8 * v), 1 if v == 8 else 0
        got = (handler, int.from_bytes(g[2:4], "little"), g[4] & 7, g[5])
        if got != (stub, SEG_KCODE, ist, GATE):
            raise Fail(
                f"in memory, gate {v} is handler 0x{got[0]:x}, selector 0x{got[1]:x}, ist {got[2]}, type 0x{got[3]:x}; "
                f"it must be 0x{stub:x}, 0x{SEG_KCODE:x}, {ist}, 0x{GATE:x} (idt_set_gate, labs/05-faults/trap.c)"
            )
    top = syms["ist_stack"] + IST_STACK_SIZE
    if mem.u64(syms["tss"] + TSS_IST1) != top:
        raise Fail(f"in memory, the TSS's IST1 is 0x{mem.u64(syms['tss'] + TSS_IST1):x}, not 0x{top:x}")
    entries = (syms["__fixup_end"] - syms["__fixup_start"]) // 16
    said = [ln for ln in ctx.boot.lines if ln.startswith("[fault] IDT: ")]
    if not said or not said[0].endswith(f"fix-ups: {entries} entries"):
        raise Fail(f"the fix-up table has {entries} entries; the kernel said {said[:1] or 'nothing'}")


@observed("faults: pf_decode names every bit and stays inside its buffer")
def decoded_seen(ctx):
    mem, syms = seen_memory(ctx), ctx.symbols
    words = mem.string(syms["fault_decoded_all"], 96)
    if words != DECODED:
        raise Fail(f"in memory, pf_decode(0x7f) wrote `{words}`, not `{DECODED}` (labs/05-faults/trap.c)")
    small = mem.read(syms["fault_decoded_small"], 16 + 96)
    if 0 not in small[:16] or any(b != ord("#") for b in small[16:]):
        raise Fail("in memory, pf_decode(0x7f) into 16 bytes left no NUL in them, or wrote past them")


def taken(ctx, vector, error=None, rip=None, cr2=None, software=False):
    """The exception the CPU took, from QEMU's -d int log, or Fail saying what it took."""
    seen = exceptions_taken(ctx)
    for t in seen:
        if (t.vector, t.software) == (vector, software) and all(
            want is None or got == want for want, got in ((error, t.error), (rip, t.rip), (cr2, t.cr2))
        ):
            return t
    want = f"vector {vector}" + (f" error 0x{error:x}" if error is not None else "")
    want += (f" at rip 0x{rip:x}" if rip is not None else "") + (f" cr2 0x{cr2:x}" if cr2 is not None else "")
    took = "; ".join(str(t) for t in seen[-8:]) or "none"
    raise Fail(f"QEMU's -d int log shows no {want}: the CPU took {took}")


def value(ctx, name):
    return int(ctx.values[name], 16)


@observed("faults: divide error and invalid opcode recovered")
def divide_seen(ctx):
    taken(ctx, 0, rip=value(ctx, "rip_divide"))
    taken(ctx, 6, rip=value(ctx, "rip_ud2"))


@observed("faults: int3 resumes after the breakpoint")
def int3_seen(ctx):
    taken(ctx, 3, software=True)


@observed("faults: general protection on a non-canonical address")
def gp_seen(ctx):
    taken(ctx, 13, 0, value(ctx, "rip_read"))


@observed("faults: page fault reading an unmapped page, error 0x0")
def pf_read_seen(ctx):
    taken(ctx, 14, 0, value(ctx, "rip_read"), value(ctx, "unmapped"))


@observed("faults: page fault writing .rodata, error 0x3")
def pf_rodata_seen(ctx):
    taken(ctx, 14, 3, value(ctx, "rip_write"), value(ctx, "ro"))


@observed("faults: page fault executing .data, error 0x11")
def pf_exec_seen(ctx):
    taken(ctx, 14, 0x11, value(ctx, "nx"), value(ctx, "nx"))


@observed("faults: page fault writing .text, error 0x3")
def pf_text_seen(ctx):
    taken(ctx, 14, 3, value(ctx, "rip_write"), value(ctx, "code"))


@observed("faults: stack overflow ends in a double fault on IST1")
def overflow_seen(ctx):
    """A page fault in the guard page, then a double fault, and no third."""
    guard = ctx.symbols["__stack_guard"]
    seen = exceptions_taken(ctx)
    at = next((i for i, t in enumerate(seen) if t.vector == 14 and guard <= (t.cr2 or 0) < guard + 0x1000), None)
    if at is None or not any(t.vector == 8 for t in seen[at:]):
        took = "; ".join(str(t) for t in seen[-4:]) or "none"
        raise Fail(f"QEMU's -d int log shows no page fault in the guard page followed by a double fault: {took}")
