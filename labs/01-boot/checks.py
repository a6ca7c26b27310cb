"""Lab 01's computed checks (the tag count and the made-up blocks of
mb2_selftest.c, the memory map against the machine the grader chose), what
QEMU shows of them (the kernel waits at power-off while the grader reads the
control registers, the Multiboot2 information GRUB left in memory and the
kernel's struct boot_info), the names of the kernel's sections for a
diagnosis, and the hints for faults during the switch to long mode."""
import re

from grader.api import Fail, Hint, at_power_off, check, observed, place, seen_memory, seen_registers

MMAP = re.compile(r"^\[mmap\] 0x([0-9a-f]{16})-0x([0-9a-f]{16}) (\w+)$")
CR0_PG, EFER_LME = 1 << 31, 1 << 8  # x86.h
MADE_UP = ("tags", "bad blocks")  # lines of mb2_selftest.c that the tag-walk check reads


def ram_regions(lines, usable_only=True):
    """[(start, end)] (end exclusive) of the memory map the kernel printed."""
    return [
        (int(m.group(1), 16), int(m.group(2), 16) + 1)
        for m in map(MMAP.match, lines)
        if m and (m.group(3) == "usable" or not usable_only)
    ]


MB2_INFO_MAX = 64 * 1024  # bytes of boot information the grader reads at most


def read_boot_information(talk):
    """GRUB's Multiboot2 information, at the address boot.S kept in boot_mbi."""
    mbi = talk.extra["memory"].u32(talk.symbols["boot_mbi"])
    head = talk.read(mbi, 8)
    talk.read(mbi, min(max(int.from_bytes(head[:4], "little"), 8), MB2_INFO_MAX))


INTERACTION = at_power_off(read_boot_information)

# struct boot_info (mb2.h): cmdline, loader, nregions, regions[32] of {base, length, type}
BI_CMDLINE, BI_LOADER, BI_NREGIONS, BI_REGIONS, REGION_SIZE = 0, 8, 16, 24, 24
BOOT_MAX_REGIONS = 32
CR0_WP, CR4_PAE, EFER_LMA, EFER_NXE = 1 << 16, 1 << 5, 1 << 10, 1 << 11  # x86.h


def mb2_tags(mem, mbi):
    """[(type, address of the tag)] of the boot information at mbi, before
    its end tag, walked by the grader from guest memory (Multiboot2, 3.6)."""
    total, tags, at = mem.u32(mbi), [], mbi + 8
    while at + 8 <= mbi + total:
        kind, size = mem.u32(at), mem.u32(at + 4)
        if kind == 0 or size < 8:
            break
        tags.append((kind, at))
        at += (size + 7) & ~7
    return tags


def seen_boot(ctx):
    """(memory, the tags, the kernel's boot_info address) as QEMU shows them."""
    mem = seen_memory(ctx)
    return mem, mb2_tags(mem, mem.u32(ctx.symbols["boot_mbi"])), ctx.symbols["boot_info"]


@observed("boot: long mode reached, kmain called")
def long_mode_seen(ctx):
    """The CPU, stopped in power.c at the end of the run, is in 64-bit mode
    with the bits lm_enable sets, on the boot page tables."""
    regs, syms = seen_registers(ctx), ctx.symbols
    wait = syms.by_name.get("power_wait_for_grader")
    rip = regs.get("RIP", 0)
    if wait is None or not wait.addr <= rip < wait.addr + max(wait.size, 1):
        raise Fail(f"QEMU found the CPU at rip 0x{rip:x}, not in power.c's wait: the kernel never ran its 64-bit code")
    want = (
        ("EFER.LME", regs.get("EFER", 0) & EFER_LME),
        ("EFER.LMA", regs.get("EFER", 0) & EFER_LMA),
        ("EFER.NXE", regs.get("EFER", 0) & EFER_NXE),
        ("CR4.PAE", regs.get("CR4", 0) & CR4_PAE),
        ("CR0.PG", regs.get("CR0", 0) & CR0_PG),
        ("CR0.WP", regs.get("CR0", 0) & CR0_WP),
        ("a 64-bit code segment", regs.get("CS64")),
    )
    missing = [name for name, bit in want if not bit]
    if missing:
        raise Fail(
            f"QEMU shows {', '.join(missing)} clear (CR0=0x{regs.get('CR0', 0):x}, CR4=0x{regs.get('CR4', 0):x}, "
            f"EFER=0x{regs.get('EFER', 0):x}): the CPU is not in long mode as lm_enable must leave it"
        )
    if regs.get("CR3") != syms["boot_pml4"]:
        raise Fail(f"QEMU shows CR3=0x{regs.get('CR3', 0):x}, not the boot PML4 (boot_pml4, 0x{syms['boot_pml4']:x})")


def string_tag(ctx, kind, offset, what, prefix):
    """The kernel's bi->cmdline or bi->loader points at the string of tag `kind`,
    and its line shows that string."""
    mem, tags, bi = seen_boot(ctx)
    found = [at for k, at in tags if k == kind]
    if not found:
        raise Fail(f"QEMU shows no tag of type {kind} in GRUB's boot information")
    text, kept = mem.string(found[0] + 8), mem.u64(bi + offset)
    if kept != found[0] + 8:
        raise Fail(
            f"in memory, bi->{what} is 0x{kept:x}; the string of tag {kind} (`{text}`) is at 0x{found[0] + 8:x} "
            "(labs/01-boot/mb2.c, mb2_parse)"
        )
    said = ctx.find(prefix)
    if said != [prefix + text]:
        raise Fail(f"the kernel printed {said[:2] or 'nothing'} for this, but its bi->{what} is `{text}`")


@observed("mb2: boot loader name")
def loader_seen(ctx):
    string_tag(ctx, 2, BI_LOADER, "loader", "[boot] loader: ")


@observed("mb2: command line")
def cmdline_seen(ctx):
    string_tag(ctx, 1, BI_CMDLINE, "cmdline", "[boot] cmdline: ")


def entries(mem, tags):
    """The memory map's entries in guest memory: [(base, length, type)]."""
    out = []
    for at in [at for k, at in tags if k == 6]:
        size, stride = mem.u32(at + 4), mem.u32(at + 8)
        for e in range(at + 16, at + size, max(stride, 1)):
            out.append((mem.u64(e), mem.u64(e + 8), mem.u32(e + 16)))
    return out


TYPE_NAMES = {1: "usable", 3: "acpi", 4: "nvs", 5: "bad"}  # bootinfo.c


@observed("mb2: memory map regions", "mb2: memory map matches the machine")
def memory_map_seen(ctx):
    """struct boot_info holds GRUB's memory map, entry for entry, and the
    kernel's [mmap] lines show those regions."""
    mem, tags, bi = seen_boot(ctx)
    theirs = entries(mem, tags)[:BOOT_MAX_REGIONS]
    n = mem.u32(bi + BI_NREGIONS)
    ours = [
        (mem.u64(r), mem.u64(r + 8), mem.u32(r + 16))
        for r in range(bi + BI_REGIONS, bi + BI_REGIONS + REGION_SIZE * min(n, BOOT_MAX_REGIONS), REGION_SIZE)
    ]
    if ours != theirs:
        raise Fail(
            f"in memory, bi->regions holds {n} regions that differ from the {len(theirs)} entries of GRUB's "
            f"memory-map tag: {ours[:3]} against {theirs[:3]} (labs/01-boot/mb2.c, mb2_read_mmap)"
        )
    printed = [ln for ln in ctx.boot.lines if MMAP.match(ln)]
    shown = [f"[mmap] 0x{b:016x}-0x{b + ln - 1:016x} {TYPE_NAMES.get(t, 'reserved')}" for b, ln, t in theirs]
    if printed != shown:
        raise Fail(f"the kernel's [mmap] lines are not GRUB's map in memory: `{shown[0] if shown else ''}` ...")


SELFTEST = ("made-up memory map", "made-up tags", "made-up bad blocks")  # mb2_selftest_seen's order


def selftest_seen(ctx, which):
    mem = seen_memory(ctx)
    for i in which:
        v = mem.u32(ctx.symbols["mb2_selftest_seen"] + 4 * i)
        if v != 1:
            raise Fail(
                f"in memory, mb2_selftest's verdict on the {SELFTEST[i]} block is "
                f"{'failed' if v == 2 else 'never given'} (labs/01-boot/mb2_selftest.c)"
            )


@observed("mb2: memory map regions")
def made_up_map_seen(ctx):
    selftest_seen(ctx, (0,))


@observed("mb2: tag walk counts the tags")
def tag_count_seen(ctx):
    mem, tags, _ = seen_boot(ctx)
    kept = int.from_bytes(mem.read(ctx.symbols["boot_ntags"], 4), "little", signed=True)
    if kept != len(tags):
        raise Fail(f"mb2_parse returned {kept}; QEMU shows {len(tags)} tags before the end tag in GRUB's information")
    said = ctx.find("[boot] multiboot2 tags: ")
    if said != [f"[boot] multiboot2 tags: {kept}"]:
        raise Fail(f"the kernel printed {said[:2] or 'nothing'}, but mb2_parse returned {kept}")
    selftest_seen(ctx, (1, 2))


@check("mb2: tag walk counts the tags", 5)
def tag_count(ctx):
    lines = ctx.find("[boot] multiboot2 tags: ")
    if not lines:
        raise Fail("no `[boot] multiboot2 tags: N` line (did the kernel reach kmain?)")
    for what in MADE_UP:
        said = ctx.find(f"[mb2] made-up {what}: ")
        if not said:
            raise Fail(
                f"no `[mb2] made-up {what}: ...` line: the kernel stopped before mb2_selftest "
                "(labs/01-boot/mb2_selftest.c)"
            )
        if not said[0].endswith(": ok"):
            raise Fail(f"on a made-up block (labs/01-boot/mb2_selftest.c): {said[0]}")
    n = int(lines[0].split(": ")[1])
    if n < 4:
        raise Fail(
            f"mb2_parse returned {n}: GRUB passes at least the command line, loader name, "
            "memory map and more (labs/01-boot/mb2.c, mb2_parse)"
        )


@check("mb2: memory map matches the machine", 15)
def memory_map(ctx):
    regions = []
    for ln in ctx.boot.lines:
        m = MMAP.match(ln)
        if m:
            regions.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
    total = ctx.find("[mmap] usable: ")
    if not regions:
        raise Fail("no `[mmap] 0x...-0x... type` lines: mb2_read_mmap recorded no region (labs/01-boot/mb2.c)", total)
    for (b0, e0, _), (b1, _, _) in zip(regions, regions[1:]):
        if b1 <= e0:
            raise Fail(
                f"regions overlap or are out of order at {b1:#x}: read entries "
                "entry_size bytes apart, not sizeof(struct mb2_mmap_entry)"
            )
    usable = sum(e - b + 1 for b, e, t in regions if t == "usable")
    mib = usable >> 20
    if not (ctx.memory_mb - 2 <= mib <= ctx.memory_mb):
        raise Fail(
            f"the usable regions add up to {mib} MiB, but this machine has {ctx.memory_mb} MiB "
            f"(the grader chose -m {ctx.memory_mb} from the seed): entries were lost or misread"
        )
    if not total or not total[0].startswith(f"[mmap] usable: {mib} MiB"):
        raise Fail(f"the printed total does not match the regions ({mib} MiB)", total)


SECTIONS = (
    (".text", "__text_start", "__text_end"),
    (".rodata", "__rodata_start", "__rodata_end"),
    (".data", "__data_start", "__data_end"),
    ("the stack", "__stack_bottom", "__stack_top"),
    (".bss", "__bss_start", "__bss_end"),
)


@place
def section(addr, ev):
    """The kernel section addr lies in; or, outside the kernel, whether RAM is there at all."""
    for name, lo, hi in SECTIONS:
        r = ev.symbols.range(lo, hi)
        if r and r[0] <= addr < r[1]:
            return name
    ram = ram_regions(ev.lines)
    if ram and not any(a <= addr < b for a, b in ram):
        return "no usable RAM (the memory map lists nothing there)"
    return None


def in_lm_enable(ev):
    return ev.fault is not None and "lm_enable" in ev.fault.where


EFER_LME, CR0_PG = 1 << 8, 1 << 31  # x86.h
STEPS = (
    "lm_enable's four steps, in this order: 1. CR4.PAE; 2. CR3 = the PML4 passed in; 3. EFER.LME and "
    "EFER.NXE (rdmsr, or, wrmsr); 4. CR0.PG and CR0.WP in one write"
)


def lme_clear_with_paging(ev):
    """At the fault in lm_enable, EFER.LME is clear while CR0.PG is set (or
    being set, or Bochs refused that write): the CPU took legacy 32-bit paging."""
    f = ev.fault
    if not in_lm_enable(ev) or f.regs.get("EFER") is None or f.regs["EFER"] & EFER_LME:
        return False
    return bool(
        f.regs.get("CR0", 0) & CR0_PG or f.regs.get("RAX", 0) & CR0_PG or any("SetCR0" in m for m in ev.chain.messages)
    )


def paging_before_long_mode(ev):
    """LME clear and EFER still 0: step 3's wrmsr has not run (yet)."""
    return lme_clear_with_paging(ev) and ev.fault.regs["EFER"] == 0


def wrong_efer_bit(ev):
    """LME clear, but EFER is not 0: the wrmsr ran and set other bits."""
    return lme_clear_with_paging(ev) and ev.fault.regs["EFER"] != 0


EFER_BITS = {0: "SCE", 8: "LME", 10: "LMA", 11: "NXE"}  # x86.h names LME, LMA and NXE


def wrong_efer_bit_text(ev):
    efer = ev.fault.regs["EFER"]
    names = ", ".join(EFER_BITS.get(b, f"bit {b}") for b in range(64) if efer >> b & 1)
    return (
        f"EFER is {efer:#x} at the fault ({names}): the wrmsr of step 3 ran, in its place before CR0.PG, but "
        "it left EFER.LME clear, so CR0.PG started legacy 32-bit paging, which cannot use our four-level "
        "tables. The bit to set is EFER_LME, bit 8 (x86.h), with EFER_NXE, in %eax between rdmsr and wrmsr. "
        'Book: chapter 1, "Entering long mode".'
    )


def cr3_is_wrong(ev):
    pml4 = ev.symbols.get("boot_pml4")
    return pml4 is not None and ev.fault.regs.get("CR3") not in (None, pml4)


def paging_fault_text(ev):
    f = ev.fault
    if cr3_is_wrong(ev):
        why = (
            f"CR3 holds {f.regs['CR3']:#x}, not the PML4 (boot_pml4, {ev.symbols['boot_pml4']:#x}): the walk "
            "read whatever lies there"
        )
    else:
        why = "CR3 does not point at the page tables, or was loaded after CR0.PG"
    return (
        f"paging went on inside lm_enable and the next instruction fetch faulted (CR2 is next to RIP): {why}. "
        f'{STEPS}. Book: chapter 1, "Entering long mode".'
    )


HINTS = [
    Hint(
        wrong_efer_bit,
        wrong_efer_bit_text,
        rank=40,
        key="the wrmsr of step 3 ran, in its place before CR0.PG, but it left EFER.LME clear",
    ),
    Hint(
        paging_before_long_mode,
        "paging was switched on before long mode: at the fault EFER.LME is still clear while CR0.PG is set (or "
        "being set), and EFER is 0: the wrmsr of step 3 had not run, so the CPU started legacy 32-bit paging "
        "instead of long mode, and that cannot use our four-level tables (the fault's CR2 need not be an "
        f'address the code used). {STEPS}. Book: chapter 1, "Entering long mode".',
        rank=40,
    ),
    Hint(
        lambda ev: any("Both CS.L and CS.D_B" in m for m in ev.chain.messages),
        "the 64-bit code segment has both L and D set: Bochs refuses it (QEMU lets it pass). With L=1, "
        'D must be 0: see the gdt in labs/01-boot/boot.S. Book: chapter 1, "Pitfalls".',
        rank=40,
    ),
    Hint(
        lambda ev: any("SetEFER" in m and "reserved bits" in m for m in ev.chain.messages),
        "wrmsr wrote reserved bits of EFER (Bochs refuses them, QEMU lets them pass): read EFER with rdmsr "
        "first (%ecx = MSR_EFER, the value comes in %edx:%eax), set LME and NXE in %eax and write %edx:%eax "
        'back. Book: chapter 1, "Entering long mode".',
        rank=40,
    ),
    Hint(
        lambda ev: in_lm_enable(ev)
        and ev.fault.vector == 14
        and abs(ev.fault.regs.get("CR2", 0) - ev.fault.rip) < 0x1000,
        paging_fault_text,
        rank=40,
        key="paging went on inside lm_enable and the next instruction fetch faulted",
    ),
    Hint(
        lambda ev: in_lm_enable(ev) and ev.fault.vector == 14,
        "paging went on inside lm_enable and an access faulted at CR2, which the page tables do not map "
        "(the stack, if CR2 is near RSP): the identity map must cover all the kernel touches. "
        'Book: chapter 1, "Pitfalls".',
        rank=40,
    ),
    Hint(
        in_lm_enable,
        f"the first fault is inside lm_enable, before any IDT exists: check the order of the steps: {STEPS}. "
        'Book: chapter 1, "Entering long mode".',
        rank=40,
    ),
    Hint(
        lambda ev: ev.chain.triple and ev.fault is not None and ev.fault.regs.get("IDT", (0, 0))[1] == 0,
        "there is no IDT before lab 05, so any exception in the kernel ends in a triple fault: the "
        'first exception of the chain is the real problem. Book: chapter 0, "Reading a grader report".',
        rank=90,
    ),
    Hint(
        lambda ev: ev.chain.triple and ev.fault is None and ev.chain.stray is not None,
        lambda ev: f"the CPU was running outside the kernel when it faulted (rip {ev.chain.stray.rip:#x}): a jump, "
        "a call or a return through a bad address, such as a smashed stack or a wrong function pointer. "
        'Book: chapter 1, "Pitfalls".',
        rank=94,
        key="the CPU was running outside the kernel when it faulted",
    ),
    Hint(
        lambda ev: ev.chain.triple and ev.fault is None and ev.chain.stray is None,
        "the log shows no exception before the reset: start from the last line printed, and from boot.S if "
        'nothing was. Book: chapter 1, "Pitfalls".',
        rank=95,
    ),
]
