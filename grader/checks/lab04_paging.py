"""Lab 04: the section addresses come from kernel.elf (llvm-nm), the seeded
translations from the memory map the kernel printed and the seed, and the
independent check asks QEMU itself, through its monitor, what is mapped."""
import difflib
import re

from . import Fail, check, interaction, variables
from .lab01_boot import MMAP
from .. import diagnosis, monitor
from ..seeded import sequence

LAB = "04-paging"
TRIGGER = "[paging] tables final, waiting for the grader"
DUMP = re.compile(r"^\[paging\] (map 0x[0-9a-f]{16}-0x[0-9a-f]{16} r[w-][x-](?: -> 0x[0-9a-f]{16})?)$")
SELFTEST_VA = 0x00007F0000000000
PAGE = 0x1000


def ask_qemu(line, result, send):
    """When the kernel's tables are final, read them from QEMU, then let it go on."""
    if line != TRIGGER:
        return
    try:
        result.extra["tlb"], = monitor.human_commands(result.launch.files["qmp"], ["info tlb"])
    except monitor.MonitorError as e:
        result.extra["monitor_error"] = str(e)
    send(b"g")


interaction(LAB, ask_qemu, kargs="monitor=1", emulators=("qemu",), qmp=True)


def hx(v):
    return f"0x{v:016x}"


def usable_regions(lines):
    return [(int(m.group(1), 16), int(m.group(2), 16) + 1) for m in map(MMAP.match, lines)
            if m and m.group(3) == "usable"]


def paging_values(seed, syms, lines):
    v = {"text": f"{hx(syms['__text_start'])}-{hx(syms['__text_end'])}",
         "rodata": f"{hx(syms['__rodata_start'])}-{hx(syms['__rodata_end'])}",
         "data": f"{hx(syms['__data_start'])}-{hx(syms['__data_end'])}",
         "bss": f"{hx(syms['__bss_start'])}-{hx(syms['__stack_guard'])}",
         "guard": hx(syms["__stack_guard"])}
    usable = usable_regions(lines)
    if not usable:
        return dict(v, **{f"t{i}": "(no memory map printed)" for i in range(5)}, beyond="?", va="?")
    big = max(usable, key=lambda r: r[1] - r[0])           # the first of the largest, as the kernel
    top = max(end for _, end in usable)
    lo = max(big[0], (syms["__kernel_end"] + PAGE - 1) & ~(PAGE - 1))   # above the kernel image
    r = sequence(seed)
    for i in range(5):
        v[f"t{i}"] = hx(lo + ((next(r) % (big[1] - lo)) & ~7))
    v["beyond"] = hx(((top + PAGE - 1) & ~(PAGE - 1)) + PAGE * (next(r) % 256))
    v["va"] = hx(SELFTEST_VA + PAGE * (next(r) % 4096))
    return v


@variables(LAB)
def values(ctx):
    return paging_values(ctx.seed, diagnosis.nm_symbols(ctx.build.elf), ctx.run.lines)


RANGE = re.compile(r"^map 0x([0-9a-f]{16})-0x([0-9a-f]{16}) (r[w-][x-])")


def perms_at(ranges, addr):
    for m in map(RANGE.match, ranges):
        if m and int(m.group(1), 16) <= addr < int(m.group(2), 16):
            return m.group(3)
    return "not mapped"


@check(LAB, "paging: QEMU's own view matches the dump and the sections", 15, emulators=("qemu",))
def qemu_view(ctx):
    if "tlb" not in ctx.run.extra:
        why = ctx.run.extra.get("monitor_error") or f"the kernel never printed `{TRIGGER}`"
        raise Fail(f"no view from QEMU's monitor: {why}")
    theirs = monitor.tlb_ranges(ctx.run.extra["tlb"])
    ours = [m.group(1) for m in map(DUMP.match, ctx.run.lines) if m]
    if theirs != ours:
        diff = [d for d in difflib.unified_diff(ours, theirs, "kernel's dump", "QEMU's info tlb", lineterm="", n=0)
                if not d.startswith("@@")]
        raise Fail("the kernel's dump and QEMU's walk of CR3 differ: the tables CR3 points to are not the "
                   "ones printed (tables built but not loaded, or a dump that lies)", diff[:12])
    syms = diagnosis.nm_symbols(ctx.build.elf)
    want = [(".text", "__text_start", "__text_end", "r-x"), (".rodata", "__rodata_start", "__rodata_end", "r--"),
            (".data", "__data_start", "__data_end", "rw-"), (".bss", "__bss_start", "__stack_guard", "rw-")]
    for name, lo, hi, perms in want:
        for addr in range(syms[lo], syms[hi], PAGE):
            got = perms_at(theirs, addr)
            if got != perms:
                raise Fail(f"QEMU says {name} page {hx(addr)} is {got}, not {perms} (W^X: code read-only, "
                           "data no-execute)")
    for name, addr in (("the stack guard page", syms["__stack_guard"]), ("page 0", 0)):
        if perms_at(theirs, addr) != "not mapped":
            raise Fail(f"QEMU says {name} ({hx(addr)}) is mapped: it must stay unmapped")
