"""Lab 05: the addresses each probe touches come from the seed and the
section symbols of kernel.elf, the faulting instructions from the probes'
labels (llvm-nm); a second boot overflows the stack on purpose."""
import re

from . import Fail, boot, check, variables
from .common import end_of_run
from .. import diagnosis
from ..seeded import sequence

LAB = "05-faults"
PAGE = 0x1000
boot(LAB, "overflow", "overflow")
DOUBLE = re.compile(r"^\[fault\] #DF double fault on IST1: rsp 0x([0-9a-f]{16}) is at the stack guard page "
                    r"0x([0-9a-f]{16}): a kernel stack overflow \(cr2 0x([0-9a-f]{16})\)$")


def hx(v):
    return f"0x{v:016x}"


def fault_values(seed, syms):
    r = sequence(seed)
    v = {name: hx(syms[f"probe_{name}_insn"]) for name in ("divide", "ud2", "read", "write")}
    v = {f"rip_{k}": a for k, a in v.items()}
    v["gp"] = hx(0x0000800000000000 + (next(r) & 0xFFFFF000))
    v["unmapped"] = hx(0x00007E0000000000 + PAGE * (next(r) % 4096))
    v["ro"] = hx(syms["__rodata_start"] + next(r) % (syms["__rodata_end"] - syms["__rodata_start"]))
    v["nx"] = hx(syms["__data_start"] + next(r) % (syms["__data_end"] - syms["__data_start"]))
    v["code"] = hx(syms["__text_start"] + next(r) % (syms["__text_end"] - syms["__text_start"]))
    return v


@variables(LAB)
def values(ctx):
    return fault_values(ctx.seed, diagnosis.nm_symbols(ctx.build.elf))


@check(LAB, "faults: stack overflow ends in a double fault on IST1", 15, boot="overflow")
def stack_overflow(ctx):
    syms = diagnosis.nm_symbols(ctx.build.elf)
    hits = [m for m in map(DOUBLE.match, ctx.run.lines) if m]
    if not hits:
        problem = end_of_run(ctx.run)
        raise Fail("with tests=overflow, no `[fault] #DF double fault on IST1: ... a kernel stack overflow` line"
                   + (f"; the run: {problem[0]}" if problem else ""), problem[1] if problem else [])
    rsp, guard = int(hits[0].group(1), 16), int(hits[0].group(2), 16)
    if guard != syms["__stack_guard"] or not guard <= rsp <= syms["__stack_bottom"] + 64:
        raise Fail(f"the report names rsp {hx(rsp)} and guard {hx(guard)}, but the guard page is "
                   f"{hx(syms['__stack_guard'])}-{hx(syms['__stack_bottom'])}")
    if ctx.run.outcome is None or ctx.run.outcome.kind != "double fault":
        raise Fail("the double-fault handler must power off with EXIT_DOUBLEFAULT (QEMU exit status 39); got: "
                   + (ctx.run.outcome.text if ctx.run.outcome else ctx.run.reason))
