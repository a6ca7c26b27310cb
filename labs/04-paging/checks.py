"""Lab 04: the section addresses come from the kernel's symbols, the seeded
translations from the memory map the kernel printed and the seed, and the
independent check asks QEMU itself, through its monitor, what is mapped
(under Bochs, which has no monitor here, the kernel's own dump of its tables
stands in: given code that never calls pt_translate). QEMU's view (CR3 and
its walk of the tables, while the kernel waits with its tables final) backs
every check; the map, unmap, remap test's verdicts are read from memory at
power-off. A diagnosis names the stack guard page and memory the new tables
leave out."""
import difflib
import re

from grader.api import (
    Fail,
    Hint,
    MonitorError,
    Unseen,
    at_power_off,
    check,
    observed,
    place,
    registers,
    seen_memory,
    sequence,
    tlb_ranges,
    values,
)

TRIGGER = "[paging] tables final, waiting for the grader"
DUMP = re.compile(r"^\[paging\] (map 0x[0-9a-f]{16}-0x[0-9a-f]{16} r[w-][x-](?: -> 0x[0-9a-f]{16})?)$")
MAP_LINE = re.compile(r"^\[paging\] map 0x([0-9a-f]{16})-0x([0-9a-f]{16}) ")
PAGE = 0x1000


def ask_qemu(line, talk):
    """When the kernel's tables are final, read them from QEMU, then let it go on."""
    if line != TRIGGER:
        return
    try:
        talk.extra["tlb"], text = talk.ask("info tlb", "info registers")
        talk.extra["paging_registers"] = registers(text)
    except MonitorError as e:
        talk.extra["paging_error"] = str(e)
    talk.send(b"g")


INTERACTION = at_power_off(also="paging", other=ask_qemu)


def hx(v):
    return f"0x{v:016x}"


def section_values(syms):
    return {
        "text": f"{hx(syms['__text_start'])}-{hx(syms['__text_end'])}",
        "rodata": f"{hx(syms['__rodata_start'])}-{hx(syms['__rodata_end'])}",
        "data": f"{hx(syms['__data_start'])}-{hx(syms['__data_end'])}",
        "bss": f"{hx(syms['__bss_start'])}-{hx(syms['__stack_guard'])}",
        "guard": hx(syms["__stack_guard"]),
    }


def paging_values(seed, syms, usable, defines):
    """The seeded translations: five addresses inside the largest usable
    region above the kernel, one beyond RAM, one virtual address.
    Twin: paging_selftest in labs/04-paging/paging_selftest.c draws these."""
    v = {}
    if not usable:
        return {**{f"t{i}": "(no memory map printed)" for i in range(5)}, "beyond": "?", "va": "?"}
    big = max(usable, key=lambda r: r[1] - r[0])  # the first of the largest, as the kernel
    top = max(end for _, end in usable)
    lo = max(big[0], (syms["__kernel_end"] + PAGE - 1) & ~(PAGE - 1))  # above the kernel image
    r = sequence(seed)
    for i in range(5):
        v[f"t{i}"] = hx(lo + ((next(r) % (big[1] - lo)) & ~7))
    v["beyond"] = hx(((top + PAGE - 1) & ~(PAGE - 1)) + PAGE * (next(r) % 256))
    v["va"] = hx(defines["SELFTEST_MAP_VA"] + PAGE * (next(r) % 4096))
    return v


@values
def sections_expected(ctx):
    return section_values(ctx.symbols)


@values  # the given code draws these addresses too: a forger can, so they are no evidence of work
def paging_expected(ctx):
    return paging_values(ctx.seed, ctx.symbols, ctx.lab_checks("boot").ram_regions(ctx.boot.lines), ctx.defines)


RANGE = re.compile(r"^map 0x([0-9a-f]{16})-0x([0-9a-f]{16}) (r[w-][x-])")


def perms_at(ranges, addr):
    for m in map(RANGE.match, ranges):
        if m and int(m.group(1), 16) <= addr < int(m.group(2), 16):
            return m.group(3)
    return "not mapped"


def seen_tables(ctx):
    """QEMU's walk of CR3's tables while the kernel waited, as ranges."""
    if "tlb" not in ctx.boot.extra:
        why = ctx.boot.extra.get("paging_error") or f"the kernel never printed `{TRIGGER}`"
        raise Unseen(f"no view from QEMU's monitor: {why}")
    return tlb_ranges(ctx.boot.extra["tlb"])


@check("paging: QEMU's own view matches the dump and the sections", 15, emulators=("qemu",))
def qemu_view(ctx):
    theirs = seen_tables(ctx)
    ours = [m.group(1) for m in map(DUMP.match, ctx.boot.lines) if m]
    if theirs != ours:
        diff = [
            d
            for d in difflib.unified_diff(ours, theirs, "kernel's dump", "QEMU's info tlb", lineterm="", n=0)
            if not d.startswith("@@")
        ]
        raise Fail(
            "the kernel's dump and QEMU's walk of CR3 differ: the tables CR3 points to are not the "
            "ones printed (tables built but not loaded, or a dump that lies)",
            diff[:12],
        )
    sections_in(theirs, ctx.symbols, "QEMU says")


def sections_in(ranges, syms, who, parts=("sections", "unmapped", "w^x")):
    """Each kernel section has its permissions in `ranges`, the guard page and
    page 0 are not mapped, and nothing else is executable (of these parts)."""
    want = [
        (".text", "__text_start", "__text_end", "r-x"),
        (".rodata", "__rodata_start", "__rodata_end", "r--"),
        (".data", "__data_start", "__data_end", "rw-"),
        (".bss", "__bss_start", "__stack_guard", "rw-"),
    ]
    for name, lo, hi, perms in want if "sections" in parts else ():
        for addr in range(syms[lo], syms[hi], PAGE):
            got = perms_at(ranges, addr)
            if got != perms:
                raise Fail(f"{who} {name} page {hx(addr)} is {got}, not {perms} (W^X: code read-only, data no-execute)")
    for name, addr in (("the stack guard page", syms["__stack_guard"]), ("page 0", 0)) if "unmapped" in parts else ():
        if perms_at(ranges, addr) != "not mapped":
            raise Fail(f"{who} {name} ({hx(addr)}) is mapped: it must stay unmapped")
    for m in (
        filter(None, map(RANGE.match, ranges)) if "w^x" in parts else ()
    ):  # and nothing else runs: RAM, the stack, the tables
        lo, hi, perms = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
        if perms.endswith("x") and not (syms["__kernel_start"] <= lo and hi <= syms["__text_end"]):
            raise Fail(f"{who} {hx(lo)}-{hx(hi)} is {perms}: only the kernel's code may be executable (W^X)")


@check("paging: the kernel's dump of the tables in CR3 shows W^X", 10, emulators=("bochs",))
def dump_view(ctx):
    """Bochs has no monitor for the grader: the dump, which paging.c reads from
    the tables themselves (never through pt_translate), stands in for it."""
    ours = [m.group(1) for m in map(DUMP.match, ctx.boot.lines) if m]
    if not ours:
        raise Fail(
            "no `[paging] map 0x...-0x... perms` lines: the kernel never loaded its own tables "
            "(look for a `[paging] FAIL` line)"
        )
    sections_in(ours, ctx.symbols, "the kernel's dump says")


@place
def unmapped(addr, ev):
    """The guard page by name; memory that the kernel's printed page map leaves out."""
    guard = ev.symbols.range("__stack_guard", "__stack_bottom")
    if guard and guard[0] <= addr < guard[1]:
        return "the stack guard page"
    maps = [(int(m.group(1), 16), int(m.group(2), 16)) for m in map(MAP_LINE.match, ev.lines) if m]
    if not maps or any(a <= addr < b for a, b in maps):
        return None
    if addr < PAGE:
        return "page 0, which the kernel leaves unmapped so that a null pointer faults"
    end = max(b for a, b in maps if a < 1 << 47)
    if any(a <= addr < b for a, b in ev.lab_checks("boot").ram_regions(ev.lines)):
        if addr >= end:
            return f"usable RAM beyond the kernel's identity map (its last range ends at 0x{end:x})"
        return "usable RAM that the kernel's identity map leaves out"
    return "an address the kernel's page map does not cover"


def pf(ev):
    return ev.fault is not None and ev.fault.vector == 14


HINTS = [
    Hint(
        lambda ev: pf(ev) and ev.fault.error & 0x8,
        "a reserved bit is set in a paging entry on the walk to CR2: an address not aligned to its page "
        "size (a 2 MiB page must be 2 MiB-aligned), PS where the level allows none, or address bits beyond "
        'the CPU\'s physical width. Book: chapter 4, "What an entry says".',
    ),
    Hint(
        lambda ev: pf(ev) and ev.fault.error & 0x3 == 0x3,
        "a write to a present page faulted: PTE_W is clear in its entry or in a table above it (upper "
        'entries must allow writing for the leaf to decide). Book: chapter 4, "What an entry says".',
    ),
    Hint(
        lambda ev: pf(ev) and ev.fault.error & 0x10 and ev.fault.place == ".text",
        "an instruction fetch from .text faulted: the kernel's code is mapped no-execute (PTE_NX) or not at "
        'all. Book: chapter 4, "Pitfalls".',
    ),
    Hint(
        lambda ev: pf(ev) and "beyond the kernel's identity map" in ev.fault.place,
        "CR2 is usable RAM that the new page tables do not map: the identity map must cover every usable "
        'region of the memory map, not just the first megabytes. Book: chapter 4, "Pitfalls".',
    ),
]


# What QEMU shows backs each check: CR3 and its walk of the tables while the
# kernel waited with them final, and the remap test's verdicts at power-off.
@observed("paging: new tables built and loaded in CR3", "paging: QEMU's own view matches the dump and the sections")
def new_tables_seen(ctx):
    seen_tables(ctx)
    cr3 = ctx.boot.extra.get("paging_registers", {}).get("CR3")
    said = [ln for ln in ctx.boot.lines if ln.startswith("[paging] CR3 = ")]
    if cr3 is None or cr3 == ctx.symbols["boot_pml4"]:
        raise Fail("QEMU shows CR3 still on the boot page tables (boot_pml4): no new tables were loaded")
    if not said or not said[0].startswith(f"[paging] CR3 = 0x{cr3:016x},"):
        raise Fail(f"QEMU shows CR3 = 0x{cr3:x}; the kernel said {said[:1] or 'nothing'}")


@observed("paging: kernel sections with their permissions")
def sections_seen(ctx):
    sections_in(seen_tables(ctx), ctx.symbols, "QEMU says", ("sections",))


@observed("paging: the stack guard page and page 0 stay unmapped")
def unmapped_seen(ctx):
    new_tables_seen(ctx)
    sections_in(seen_tables(ctx), ctx.symbols, "QEMU says", ("unmapped",))


@observed("paging: translations of seeded addresses")
def translations_seen(ctx):
    new_tables_seen(ctx)
    ranges = seen_tables(ctx)
    for i in range(5):
        addr = int(ctx.values[f"t{i}"], 16)
        if perms_at(ranges, addr & ~(PAGE - 1)) == "not mapped":
            raise Fail(f"QEMU's walk of CR3 does not map {ctx.values[f't{i}']}, which the kernel says it translates")
    beyond = ctx.values["beyond"]
    if perms_at(ranges, int(beyond, 16)) != "not mapped":
        raise Fail(f"QEMU's walk of CR3 maps {beyond}, beyond RAM, which the kernel says is not mapped")


REMAP = ("reading page A", "the unmap", "the refused map and unmap", "reading page B after the remap")


@observed("paging: map, unmap and remap a page (invlpg)")
def remap_seen(ctx):
    seen_tables(ctx)
    mem = seen_memory(ctx)
    for i, what in enumerate(REMAP):
        v = mem.u32(ctx.symbols["paging_selftest_seen"] + 4 * i)
        if v != 1:
            raise Fail(
                f"in memory, paging_selftest's verdict on {what} is {'failed' if v == 2 else 'never given'} "
                "(labs/04-paging/paging_selftest.c)"
            )


@observed("paging: the kernel's dump of the tables in CR3 shows W^X")
def dump_only_under_bochs(ctx):
    """A check of Bochs only: QEMU grades the same facts with its own view."""
