"""Lab 03's deliberate breaks (grader/mutants.py runs them)."""
from grader.mutants import check_of, diagnosis_text, earned_without_work, forger, mutant, skeleton

FIXED_HEAP = (
    "labs/03-bss-heap/kheap.c",
    "    heap_init(&kernel_heap, __heap_start, __heap_end);",
    "    heap_init(&kernel_heap, (void *)0x2100000, (void *)(0x2100000 + HEAP_SIZE));   /* mutant */",
)


@mutant("03", patches=[FIXED_HEAP], memory_mb=32)
def heap_at_a_fixed_address_beyond_ram(st):
    # 32 MiB of RAM: 0x2100000 (33 MiB) is inside the 1 GiB identity map but is no memory at all.
    bounds, pattern = check_of(st, "heap: kernel heap inside"), check_of(st, "heap: write/read pattern")
    assert not bounds.passed and "is not inside .bss" in bounds.details[-1]
    assert not pattern.passed and "must not appear: `[heap] READ_MISMATCH in block 0" in pattern.message
    assert any("made-up address" in h and "chapter 3" in h for h in pattern.hints)
    seen = " ".join(pattern.details)  # what QEMU saw: the blocks lie outside the heap it read
    assert "QEMU saw: in memory, block 0 is at 0x21" in seen and "outside the heap that bss.ld reserves" in seen, seen
    assert "internal error" not in seen, seen
    # the free list is written: memory that is not there is no sign of a challenge not begun
    assert not any("not begun" in c.message or "optional" in " ".join(c.hints) for c in st.checks)


@mutant(
    "03",
    patches=[
        (
            "solutions/03-bss-heap/heap.c",
            "    uint64_t addr = h->next + pad;",
            "    uint64_t addr = h->next + pad / 2;   /* mutant */",
        )
    ],
    seeds=20,
)
def misaligned_kmalloc(st):
    seq = check_of(st, "heap: allocation sequence")
    assert not seq.passed and "must not appear: `[heap] FAIL: block " in seq.message, seq.message
    assert "is not aligned to " in seq.message
    assert any(d.strip().startswith("WRONG") for d in seq.details)  # and the offsets are off


@mutant(
    "03",
    patches=[
        (
            "solutions/03-bss-heap/heap.c",
            "    if (size > h->end - addr)",
            "    if (addr + size > h->end)   /* mutant: wraps */",
        )
    ],
    seeds=2,
)
def allocator_that_wraps_on_a_huge_size(st):
    edges = check_of(st, "heap: size 0, huge sizes")
    assert not edges.passed and "size 2^64-9 gave a block" in edges.message
    assert check_of(st, "heap: allocation sequence").passed


@mutant(
    "03",
    patches=[
        (
            "solutions/03-bss-heap/freelist.c",
            "        if (b->size - need >= FL_MIN_BLOCK) {",
            "        if (b->size - need >= FL_MIN_BLOCK * 5) {   /* mutant: only large remainders */",
        )
    ],
    seeds=2,
)
def challenge_bug_from_the_seeds_free_list_left_empty(st):
    assert st.full  # the challenge is optional...
    small = check_of(st, "challenge: free list keeps a small remainder")
    assert not small.passed and small.bonus and "were not kept free" in small.message


@mutant(
    "03",
    patches=[
        (
            "labs/03-bss-heap/kheap.c",
            "    heap_init(&kernel_heap, __heap_start, __heap_end);",
            "    heap_init(&kernel_heap, (void *)0x50000000, (void *)(0x50000000 + HEAP_SIZE));   /* mutant */",
        )
    ],
)
def heap_at_a_fixed_address_beyond_the_boot_map(st):
    # 1.25 GiB: beyond the 1 GiB the boot tables map, so the first write faults (no IDT yet: triple fault).
    diag = diagnosis_text(st)
    assert "#PF (page fault, vector 14)" in diag and "CR2=0x50000000" in diag
    assert "CR2 is beyond the boot identity map (1 GiB)" in diag and "made-up fixed address" in diag


# Classic mistakes in heap_init, heap_alloc and heap_used (heap.c). The
# allocation sequence comes from the seed; the heap of 100 bytes at a page + 8
# (selftest_small) and the edge requests are the same on every run.
H = "solutions/03-bss-heap/heap.c"
ALLOC_FIT = (
    "    uint64_t pad = (0 - h->next) & (align - 1); /* bytes up to the next multiple */\n"
    "    if (pad > h->end - h->next)\n        return NULL;\n    uint64_t addr = h->next + pad;\n"
)


def wrong_line(st, title, *words):
    c = check_of(st, title)
    assert not c.passed and all(w in c.message for w in words), c.message


SMALL = "got `[heap] 100 bytes at a page + 8:"


def hinted(st, title, *words):
    """The failed check's hints name the cause: each of the words is in one of them."""
    hints = " ".join(check_of(st, title).hints)
    assert all(w in hints for w in words), hints


FIT_HINT = "a block that ends on the heap's last byte fits"


@mutant("03", patches=[(H, "    h->next = (uint64_t)start;\n", "")], seeds=2)
def heap_init_forgets_next(st):
    wrong_line(st, "heap: allocation sequence", "missing `[heap] alloc")
    assert "[heap] FAIL: kmalloc_pages(16) returned NULL: no test region" in st.boots["default"].lines


@mutant(
    "03",
    patches=[
        (
            H,
            ALLOC_FIT,
            "    uint64_t addr = (h->next + align) & ~(align - 1);   /* mutant: always moves up */\n"
            "    if (addr > h->end)\n        return NULL;\n",
        )
    ],
    seeds=20,
)
def alignment_that_always_moves_up(st):
    wrong_line(st, "heap: allocation sequence", "expected `[heap] alloc", "-> +0x0`")
    hinted(st, "heap: allocation sequence", "needs no padding")


@mutant(
    "03",
    patches=[
        (
            H,
            "    uint64_t pad = (0 - h->next) & (align - 1);",
            "    uint64_t pad = align - (h->next & (align - 1));   /* mutant: a whole align when aligned */",
        )
    ],
    seeds=2,
)
def padding_of_a_whole_align_when_already_aligned(st):
    # A student's walkthrough: the exhaustion check blamed the fit test (87 bytes refused), the cause is the padding.
    full = check_of(st, "heap: exhaustion returns NULL")
    assert not full.passed and "3 align 1 -> +0x1," in "\n".join(full.details), full.details
    for title in ("heap: allocation sequence", "heap: exhaustion returns NULL"):
        hinted(st, title, "needs no padding", "pads it by a whole align")
    assert not any(FIT_HINT in h for h in check_of(st, "heap: exhaustion returns NULL").hints)
    # the edges line matched, and heap_alloc computed it: the report says why it earns nothing here
    edges = check_of(st, "heap: size 0, huge sizes").message
    assert "these lines matched, but they read the same on every run" in edges and "anyone can print" not in edges


@mutant("03", patches=[(H, "    h->next = addr + size;\n", "")], seeds=2)
def next_never_moved(st):
    # A student's walkthrough: `used ... 0 bytes` blamed heap_used; heap_alloc never moved next.
    wrong_line(st, "heap: used statistic", "got `[heap] used after 10 blocks: 0 bytes`")
    for title in ("heap: allocation sequence", "heap: used statistic", "heap: exhaustion returns NULL"):
        hinted(st, title, "heap_alloc must move h->next to the end of each block")
    assert not any("heap_used counts every byte" in h for h in check_of(st, "heap: used statistic").hints)


@mutant(
    "03",
    patches=[
        (
            H,
            "    uint64_t pad = (0 - h->next) & (align - 1);",
            "    uint64_t pad = (0 - (h->next - h->start)) & (align - 1);   /* mutant: the offset aligned */",
        )
    ],
    seeds=2,
)
def alignment_of_the_offset_not_the_address(st):
    # The test heap starts on a page, where offset and address agree: only the heap at a page + 8 tells.
    wrong_line(st, "heap: exhaustion returns NULL", SMALL, "5 align 16 -> +0x10")
    assert check_of(st, "heap: allocation sequence").passed


@mutant(
    "03",
    patches=[
        (H, "    if (size > h->end - addr)", "    if (size >= h->end - addr)   /* mutant: an exact fit refused */")
    ],
    seeds=2,
)
def exact_fit_refused(st):
    wrong_line(st, "heap: exhaustion returns NULL", SMALL, "87 align 1 -> NULL")
    hinted(st, "heap: exhaustion returns NULL", "a block that ends exactly at h->end fits")


@mutant(
    "03",
    patches=[
        (H, "    h->next = addr + size;", "    h->next = (addr + size + 15) & ~15ull;   /* mutant: next rounded up */")
    ],
    seeds=2,
)
def next_rounded_up_past_the_block(st):
    wrong_line(st, "heap: exhaustion returns NULL", SMALL, "87 align 1 -> NULL")
    hinted(st, "heap: exhaustion returns NULL", "next moves to the end of a block (+0xd after 5 bytes at +0x8)")


@mutant(
    "03",
    patches=[
        (
            H,
            "    uint64_t addr = h->next + pad;\n",
            "    h->next += pad;   /* mutant: moved before the block is known to fit */\n"
            "    uint64_t addr = h->next;\n",
        )
    ],
    seeds=2,
)
def failed_request_moves_next(st):
    wrong_line(st, "heap: exhaustion returns NULL", SMALL, "200 align 64 -> NULL, 5 align 16 -> +0x38")
    hinted(st, "heap: exhaustion returns NULL", "the refused request moved h->next")


@mutant(
    "03",
    patches=[(H, ALLOC_FIT, "    uint64_t addr = (h->next + align - 1) & ~(align - 1);   /* mutant: can wrap */\n")],
    seeds=2,
)
def alignment_rounding_that_wraps(st):
    wrong_line(st, "heap: size 0, huge sizes", "align 2^63 gave a block")
    hinted(st, "heap: size 0, huge sizes", "no address in the heap is a multiple of 2^63")
    assert not any("which reads as NULL" in h for h in check_of(st, "heap: size 0, huge sizes").hints)


@mutant(
    "03",
    patches=[
        (H, ALLOC_FIT, "    uint64_t addr = (h->next + align - 1) & ~(align - 1);   /* mutant */\n"),
        (H, "align == 0 || (align", "(align"),
    ],
    seeds=2,
)
def align_zero_rounds_to_address_zero(st):
    # The textbook round-up without the align == 0 test: address 0 comes back, which reads as NULL,
    # and h->next moves to 16 (a student's walkthrough found it passing the edges line before).
    wrong_line(st, "heap: size 0, huge sizes", "align 0 NULL but h->next moved")
    hinted(st, "heap: size 0, huge sizes", "which reads as NULL")


@mutant(
    "03", patches=[(H, "align == 0 || (align & (align - 1)) != 0", "align == 0   /* mutant: any alignment */")], seeds=2
)
def alignment_not_a_power_of_two_accepted(st):
    wrong_line(st, "heap: size 0, huge sizes", "align 24 gave a block")
    hinted(st, "heap: size 0, huge sizes", "24 is not a power of two")
    assert not any("which reads as NULL" in h for h in check_of(st, "heap: size 0, huge sizes").hints)


@mutant(
    "03",
    patches=[(H, "    if (size == 0 || align == 0", "    if (align == 0   /* mutant: size 0 accepted */")],
    seeds=2,
)
def size_zero_accepted(st):
    wrong_line(st, "heap: size 0, huge sizes", "size 0 gave a block")


@mutant(
    "03",
    patches=[(H, "    return h->next - h->start;", "    return h->end - h->next;   /* mutant: the room left */")],
    seeds=20,
)
def heap_used_gives_the_room_left(st):
    # The two counts agree only when the heap is exactly half used: then the exhaustion line tells.
    used, full = check_of(st, "heap: used statistic"), check_of(st, "heap: exhaustion")
    assert "expected `[heap] used after 10 blocks:" in used.message or "got `[heap] exhausted after" in full.message


# Classic mistakes in the challenge, fl_alloc and fl_free (freelist.c): the
# churn is seeded; the small remainder, the huge sizes and the order of the
# three frees are the same on every run.
F = "solutions/03-bss-heap/freelist.c"


def challenge_fails(st, title, *words):
    assert st.full  # the challenge is optional
    c = check_of(st, title)
    assert not c.passed and c.bonus and all(w in c.message for w in words), c.message


@mutant("03", patches=[skeleton("03-bss-heap/freelist.c")], boots=["default"])
def free_list_not_begun_is_said_to_be_optional(st):
    challenges = [c for c in st.checks if c.bonus]
    assert len(challenges) == 3 and st.full and st.bonus == 0
    for c in challenges:  # each says why, and no hint sends the student to a function that was not begun
        assert not c.passed and "fl_alloc gave nothing from a fresh block of 4096 bytes: not begun?" in c.message
        assert c.hints == [
            "the free list is optional: full marks need only the `heap:` checks. For these points, write fl_alloc "
            'and fl_free in labs/03-bss-heap/freelist.c (book chapter 3, "A free list (the challenge)").'
        ]
    assert not any(h for c in st.checks if not c.bonus for h in c.hints)


@mutant(
    "03",
    patches=[
        (
            F,
            "        if (b->size - need >= FL_MIN_BLOCK) {",
            "        if (b->size - need > FL_MIN_BLOCK) {   /* mutant */",
        )
    ],
    seeds=2,
)
def split_threshold_off_by_one(st):
    challenge_fails(st, "challenge: free list keeps a small remainder", "the 32 bytes left")


@mutant(
    "03",
    patches=[
        (
            F,
            "    uint64_t need = FL_HEADER + ((size + 15) & ~15ull);",
            "    uint64_t need = FL_HEADER + size;   /* mutant: not rounded up to 16 */",
        )
    ],
    seeds=20,
)
def block_size_not_rounded_up(st):
    challenge_fails(st, "challenge: seeded alloc and free", "patterns intact: FAIL (slot", "not 16-byte aligned")


@mutant(
    "03",
    patches=[
        (
            F,
            "    uint64_t need = FL_HEADER + ((size + 15) & ~15ull);",
            "    uint64_t need = (size + 15) & ~15ull;   /* mutant: no room for the header */",
        )
    ],
    seeds=20,
)
def header_not_counted(st):
    # Each block's data runs over the next block's header: the free list is corrupt from then on.
    c = check_of(st, "challenge: seeded alloc and free")
    assert not c.passed and c.bonus, c.message


@mutant(
    "03",
    patches=[(F, "    if (size == 0 || size > (1ull << 40))", "    if (size == 0)   /* mutant: rounding may wrap */")],
    seeds=2,
)
def huge_size_wraps_when_rounded_up(st):
    challenge_fails(st, "challenge: seeded alloc and free", "2^64-16: FAIL (a block; rounding up must not wrap")


@mutant(
    "03",
    patches=[
        (
            F,
            "        } else {\n            *link = b->next;\n        }\n",
            "        }   /* mutant: a whole block stays in the list */\n",
        )
    ],
    seeds=2,
    timeouts={"progress": 3.0},
)
def whole_block_left_in_the_free_list(st):
    # The list may then loop on itself, and the churn after the first test never end.
    c = check_of(st, "challenge: free list keeps a small remainder")
    assert not c.passed and "a block handed out twice" in c.message, c.message


@mutant(
    "03",
    patches=[
        (
            F,
            "    if (prev && (uint64_t)prev + prev->size == (uint64_t)b) {",
            "    if (0 && prev) {   /* mutant: never merged with the block before */",
        )
    ],
    seeds=2,
)
def free_never_merges_with_the_block_before(st):
    challenge_fails(st, "challenge: coalescing", "merges with the free block after it and with the one before it")


@mutant(
    "03",
    patches=[
        (
            F,
            "    if (b->next && (uint64_t)b + b->size == (uint64_t)b->next) {",
            "    if (0 && b->next) {   /* mutant: never merged with the block after */",
        )
    ],
    seeds=2,
)
def free_never_merges_with_the_block_after(st):
    challenge_fails(st, "challenge: coalescing", "merges with the free block after it and with the one before it")


@mutant(
    "03",
    patches=[
        (
            F,
            "    while (*link && *link < b) {",
            "    while (0 && *link && *link < b) {   /* mutant: pushed on the head */",
        )
    ],
    seeds=20,
)
def free_pushes_on_the_head(st):
    challenge_fails(st, "challenge: coalescing")


# Forgers (issue 20): the lab's whole transcript printed, the work not done. The
# offsets, the use and the exhaustion count come from heap_alloc's work: a
# forger has them only from another run (another seed); the rest it knows.
HEAP_WORK = ("[heap] alloc ", "[heap] used after", "[heap] exhausted after")


@mutant("03", patches=[skeleton("03-bss-heap/freelist.c"), forger("03-bss-heap/heap.c", "03", work=HEAP_WORK)])
def forger_printing_the_whole_transcript_earns_nothing(st):
    assert earned_without_work(st) == [] and st.score == st.bonus == 0, earned_without_work(st)
    assert "in memory, kernel_heap is start 0x0" in check_of(st, "heap: kernel heap").message
    assert "verdict on the small remainder test is never given" in check_of(st, "challenge: free list keeps").message


@mutant(
    "03",
    patches=[skeleton("03-bss-heap/freelist.c"), forger("03-bss-heap/heap.c", "03", work=HEAP_WORK, filtered=False)],
    boots=["default"],
)
def forger_printing_the_transcript_before_the_kernel_earns_nothing(st):
    assert earned_without_work(st) == [] and st.score == st.bonus == 0, earned_without_work(st)
