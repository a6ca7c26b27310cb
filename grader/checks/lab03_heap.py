"""Lab 03: the grader's model of the bump allocator, fed with the same seeded
numbers as heap_selftest.c, gives the offsets, the bytes used and the
exhaustion count the kernel must print."""
from . import variables
from ..seeded import sequence

LAB = "03-bss-heap"
REGION, BLOCKS, MAX_SIZE, PAGE = 64 * 1024, 10, 3000, 4096
ALIGNS = (16, 16, 16, 64, 4096)


def align_up(v, a):
    return (v + a - 1) & ~(a - 1)


def heap_values(seed):
    r = sequence(seed)
    nxt, values, total = 0, {}, 0
    for b in range(BLOCKS):
        size = 1 + next(r) % MAX_SIZE
        align = ALIGNS[next(r) % 5]
        addr = align_up(nxt, align)
        assert addr + size <= REGION        # 10 blocks of at most 3000 bytes always fit
        nxt = addr + size
        total += size
        values.update({f"s{b}": size, f"a{b}": align, f"r{b}": f"+0x{addr:x}"})
    values.update(bytes=total, used=nxt)
    count = 0
    while align_up(nxt, 16) + PAGE <= REGION:
        nxt = align_up(nxt, 16) + PAGE
        count += 1
    values.update(exhausted=count, exhausted_used=nxt)
    return values


@variables(LAB)
def values(ctx):
    return heap_values(ctx.seed)
