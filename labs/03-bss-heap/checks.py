"""Lab 03: the grader's model of the bump allocator, fed with the same seeded
numbers as heap_selftest.c, gives the offsets, the bytes used and the
exhaustion count the kernel must print; QEMU shows the kernel heap's bounds,
the self-test's blocks and their bytes in guest memory (the kernel waits at
power-off while the grader reads them); a diagnosis names the heap, and a
fault beyond the boot identity map points at the fixed-address pitfall."""
import re

from grader.api import Fail, Hint, at_power_off, observed, place, seen_memory, sequence, values

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


CHEAP = re.compile(r"^(s|a)\d+$|^bytes$")  # the sizes and alignments asked for: the given code draws them


@values(seeded=True)
def heap_expected(ctx):
    """What only heap_alloc's work gives: the offsets, the use, the exhaustion."""
    return {k: v for k, v in heap_values(ctx.seed).items() if not CHEAP.match(k)}


@values
def heap_requests(ctx):
    return {k: v for k, v in heap_values(ctx.seed).items() if CHEAP.match(k)}


INTERACTION = at_power_off()
# The edge cases refuse every request, as the skeleton's heap_alloc does: they
# count where the seeded allocations are right too.
BACKED_BY = {"heap: size 0, huge sizes and bad alignments give NULL": "heap: allocation sequence at the seeded offsets"}


def pattern(seed, block, i):
    """Twin: selftest_pattern in labs/03-bss-heap/heap_selftest.c."""
    return ((seed >> ((i % 8) * 8)) ^ (block * 37) ^ (i * 7)) & 0xFF


@observed("heap: kernel heap inside .bss and the identity map")
def kernel_heap_seen(ctx):
    mem, syms = seen_memory(ctx), ctx.symbols
    start, end, nxt = (mem.u64(syms["kernel_heap"] + 8 * i) for i in range(3))
    if (start, end) != (syms["__heap_start"], syms["__heap_end"]) or not start <= nxt <= end:
        raise Fail(
            f"in memory, kernel_heap is start 0x{start:x}, end 0x{end:x}, next 0x{nxt:x}; bss.ld reserves "
            f"0x{syms['__heap_start']:x}-0x{syms['__heap_end']:x} (heap_init, labs/03-bss-heap/heap.c)"
        )
    said = [ln for ln in ctx.boot.lines if ln.startswith("[heap] kernel heap 0x")]
    if said[:1] != [f"[heap] kernel heap 0x{start:016x}-0x{end:016x} ({(end - start) // 1024} KiB)"]:
        raise Fail(f"the kernel printed {said[:1] or 'no heap line'}, but kernel_heap is 0x{start:x}-0x{end:x}")


@observed("heap: write/read pattern over every block")
def blocks_seen(ctx):
    """The ten blocks lie at the seeded offsets of the test region, and guest
    memory holds each block's pattern, byte for byte."""
    mem, seen = seen_memory(ctx), ctx.symbols["heap_selftest_seen"]
    region, want = mem.u64(seen), heap_values(ctx.seed)
    r = sequence(ctx.seed)
    for b in range(BLOCKS):
        size = 1 + next(r) % MAX_SIZE
        next(r)
        addr = mem.u64(seen + 8 * (1 + b))
        if not region or addr != region + int(want[f"r{b}"], 16):
            raise Fail(
                f"in memory, block {b} is at 0x{addr:x}, not at the seeded offset {want[f'r{b}']} of 0x{region:x}"
            )
        if not mem.has(addr, size):  # the grader read the heap that bss.ld reserves, and no more
            lo, hi = ctx.symbols["__heap_start"], ctx.symbols["__heap_end"]
            raise Fail(
                f"in memory, block {b} is at 0x{addr:x}, outside the heap that bss.ld reserves "
                f"(0x{lo:x}-0x{hi:x}): the blocks must come from there (heap_init, labs/03-bss-heap/heap.c)"
            )
        got = mem.read(addr, size)
        bad = next((i for i in range(size) if got[i] != pattern(ctx.seed, b, i)), None)
        if bad is not None:
            raise Fail(
                f"QEMU shows byte {bad} of block {b} (0x{addr + bad:x}) as 0x{got[bad]:02x}, not the pattern's "
                f"0x{pattern(ctx.seed, b, bad):02x}"
            )


FREELIST = ("small remainder", "seeded churn", "sizes that wrap", "three blocks coalesced", "everything freed")


def freelist_seen(ctx, which):
    mem = seen_memory(ctx)
    for i in which:
        v = mem.u32(ctx.symbols["freelist_selftest_seen"] + 4 * i)
        if v != 1:
            raise Fail(
                f"in memory, freelist_selftest's verdict on the {FREELIST[i]} test is "
                f"{ {2: 'failed', 3: 'skipped: fl_alloc is not written'}.get(v, 'never given')} "
                "(labs/03-bss-heap/heap_selftest.c)"
            )


@observed("challenge: free list keeps a small remainder")
def remainder_seen(ctx):
    freelist_seen(ctx, (0,))


@observed("challenge: seeded alloc and free, bytes intact")
def churn_seen(ctx):
    freelist_seen(ctx, (1, 2))


@observed("challenge: coalescing gives back one block")
def coalescing_seen(ctx):
    freelist_seen(ctx, (3, 4))


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
