"""Lab 03: the grader's model of the bump allocator, fed with the same seeded
numbers as heap_selftest.c, gives the offsets, the bytes used and the
exhaustion count the kernel must print; a diagnosis names the heap, and a
fault beyond the boot identity map points at the fixed-address pitfall."""
from grader.api import Hint, place, sequence, values

REGION, BLOCKS, MAX_SIZE, PAGE = 64 * 1024, 10, 3000, 4096
ALIGNS = (16, 16, 16, 64, 4096)


def align_up(v, a):
    return (v + a - 1) & ~(a - 1)


def heap_values(seed):
    """Twin: heap_selftest in labs/03-bss-heap/heap_selftest.c prints these."""
    r = sequence(seed)
    nxt, out, total = 0, {}, 0
    for b in range(BLOCKS):
        size = 1 + next(r) % MAX_SIZE
        align = ALIGNS[next(r) % 5]
        addr = align_up(nxt, align)
        assert addr + size <= REGION  # 10 blocks of at most 3000 bytes always fit
        nxt = addr + size
        total += size
        out.update({f"s{b}": size, f"a{b}": align, f"r{b}": f"+0x{addr:x}"})
    out.update(bytes=total, used=nxt)
    count = 0
    while align_up(nxt, 16) + PAGE <= REGION:
        nxt = align_up(nxt, 16) + PAGE
        count += 1
    out.update(exhausted=count, exhausted_used=nxt)
    return out


@values(seeded=True)
def heap_expected(ctx):
    return heap_values(ctx.seed)


@place
def heap(addr, ev):
    r = ev.symbols.range("__heap_start", "__heap_end")
    return "the heap" if r and r[0] <= addr < r[1] and not ev.code else None


HINTS = [
    Hint(
        lambda ev: ev.fault is not None
        and ev.fault.vector == 14
        and ev.fault.regs.get("CR2", 0) >= ev.defines["BOOT_IDMAP_SIZE"]
        and ev.fault.regs.get("CR3") == ev.symbols.get("boot_pml4"),  # still on the boot tables
        "CR2 is beyond the boot identity map (1 GiB): the address was never mapped. A heap or buffer "
        'at a made-up fixed address does this. Book: chapter 3, "Pitfalls".',
    ),
]
