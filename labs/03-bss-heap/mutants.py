"""Lab 03's deliberate breaks (grader/mutants.py runs them)."""
from grader.mutants import check_of, diagnosis_text, mutant

FIXED_HEAP = ("labs/03-bss-heap/heap_selftest.c", "    heap_init(&kernel_heap, __heap_start, __heap_end);",
              "    heap_init(&kernel_heap, (void *)0x2100000, (void *)(0x2100000 + HEAP_SIZE));   /* mutant */")


@mutant("03", patches=[FIXED_HEAP], memory_mb=32)
def heap_at_a_fixed_address_beyond_ram(st):
    # 32 MiB of RAM: 0x2100000 (33 MiB) is inside the 1 GiB identity map but is no memory at all.
    bounds, pattern = check_of(st, "heap: kernel heap inside"), check_of(st, "heap: write/read pattern")
    assert not bounds.passed and "is not inside .bss" in bounds.details[-1]
    assert not pattern.passed and "must not appear: `[heap] READ_MISMATCH in block 0" in pattern.message
    assert any("made-up address" in h and "chapter 3" in h for h in pattern.hints)


@mutant("03", patches=[("solutions/03-bss-heap/heap.c", "    uint64_t addr = h->next + pad;",
                        "    uint64_t addr = h->next + pad / 2;   /* mutant */")])
def misaligned_kmalloc(st):
    seq = check_of(st, "heap: allocation sequence")
    assert not seq.passed and "must not appear: `[heap] FAIL: block 1 at" in seq.message
    assert "is not aligned to 16" in seq.message
    assert any(d.strip().startswith("WRONG") for d in seq.details)     # and the offsets are off


@mutant("03", patches=[("solutions/03-bss-heap/heap.c", "    if (size > h->end - addr)",
                        "    if (addr + size > h->end)   /* mutant: wraps */")])
def allocator_that_wraps_on_a_huge_size(st):
    edges = check_of(st, "heap: size 0, huge sizes")
    assert not edges.passed and "size 2^64-9 gave a block" in edges.message
    assert check_of(st, "heap: allocation sequence").passed


@mutant("03", patches=[("solutions/03-bss-heap/freelist.c", "        if (b->size - need >= FL_MIN_BLOCK) {",
                        "        if (b->size - need >= FL_MIN_BLOCK * 5) {   /* mutant: only large remainders */")])
def challenge_bug_from_the_seeds_free_list_left_empty(st):
    assert st.full                                       # the challenge is optional...
    small = check_of(st, "challenge: free list keeps a small remainder")
    assert not small.passed and small.bonus and "were not kept free" in small.message



@mutant("03", patches=[("labs/03-bss-heap/heap_selftest.c", "    heap_init(&kernel_heap, __heap_start, __heap_end);",
                        "    heap_init(&kernel_heap, (void *)0x50000000, (void *)(0x50000000 + HEAP_SIZE));   /* mutant */")])
def heap_at_a_fixed_address_beyond_the_boot_map(st):
    # 1.25 GiB: beyond the 1 GiB the boot tables map, so the first write faults (no IDT yet: triple fault).
    diag = diagnosis_text(st)
    assert "#PF (page fault, vector 14)" in diag and "CR2=0x50000000" in diag
    assert "CR2 is beyond the boot identity map (1 GiB)" in diag and "made-up fixed address" in diag
