"""Lab 01 checks computed by the grader: the tag count and the memory map."""
import re

from . import Fail, check, variables

LAB = "01-boot"
MMAP = re.compile(r"^\[mmap\] 0x([0-9a-f]{16})-0x([0-9a-f]{16}) (\w+)$")


@variables(LAB)
def values(ctx):
    return {}


@check(LAB, "mb2: tag walk counts the tags", 5)
def tag_count(ctx):
    lines = ctx.find("[boot] multiboot2 tags: ")
    if not lines:
        raise Fail("no `[boot] multiboot2 tags: N` line (did the kernel reach kmain?)")
    n = int(lines[0].split(": ")[1])
    if n < 4:
        raise Fail(f"mb2_parse returned {n}: GRUB passes at least the command line, loader name, "
                   "memory map and more (labs/01-boot/mb2.c, mb2_parse)")


@check(LAB, "mb2: memory map matches the machine", 15)
def memory_map(ctx):
    regions = []
    for ln in ctx.run.lines:
        m = MMAP.match(ln)
        if m:
            regions.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
    total = ctx.find("[mmap] usable: ")
    if not regions:
        raise Fail("no `[mmap] 0x...-0x... type` lines: mb2_read_mmap recorded no region "
                   "(labs/01-boot/mb2.c)", total)
    for (b0, e0, _), (b1, _, _) in zip(regions, regions[1:]):
        if b1 <= e0:
            raise Fail(f"regions overlap or are out of order at {b1:#x}: read entries "
                       "entry_size bytes apart, not sizeof(struct mb2_mmap_entry)")
    usable = sum(e - b + 1 for b, e, t in regions if t == "usable")
    mib = usable >> 20
    if not (ctx.memory_mb - 2 <= mib <= ctx.memory_mb):
        raise Fail(f"the usable regions add up to {mib} MiB, but this machine has {ctx.memory_mb} MiB "
                   f"(the grader chose -m {ctx.memory_mb} from the seed): entries were lost or misread")
    if not total or not total[0].startswith(f"[mmap] usable: {mib} MiB"):
        raise Fail(f"the printed total does not match the regions ({mib} MiB)", total)
