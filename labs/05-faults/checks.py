"""Lab 05: the addresses each probe touches come from the seed and the
section symbols of the kernel, the faulting instructions from the probes'
labels; a second boot overflows the stack on purpose. A diagnosis reads the
kernel's own fault report and hints at the IST, the trap frame and fix-ups."""
import re

from grader.api import Fail, Hint, check, end_of_run, qemu_exit_status, sequence, values

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


@values(seeded=True)
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
