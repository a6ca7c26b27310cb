"""Lab 04's deliberate breaks (grader/mutants.py runs them)."""
from grader.mutants import check_of, diagnosis_text, mutant


@mutant("04", skeleton=True, below=True)
def skeleton_keeps_the_boot_tables_and_says_why(st):
    assert st.boots["default"].outcome.ok                  # the skeleton boots and powers off
    cr3 = check_of(st, "paging: new tables built")
    assert not cr3.passed and cr3.message.endswith("pages could not be mapped (pt_map, pt_entry)`")
    assert "is not mapped (pt_map, pt_translate): keeping the boot page tables" in st.boots["default"].text
    assert "the kernel never printed `[paging] tables final" in check_of(st, "paging: QEMU's own view").message


@mutant("04", patches=[("labs/04-paging/paging.c", "#define KERNEL_TEXT   (PTE_P)",
                        "#define KERNEL_TEXT   (PTE_P | PTE_NX)   /* mutant */")])
def text_mapped_no_execute(st):
    diag = diagnosis_text(st)
    assert "#PF (page fault, vector 14)" in diag and "I=instruction fetch" in diag and "(.text)" in diag
    assert "mapped no-execute" in diag and "triple fault" in diag


@mutant("04", patches=[("labs/04-paging/paging.c",
                        "        uint64_t a = (r->base + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1), end = r->base + r->length;",
                        "        uint64_t a = (r->base + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1), end = r->base + r->length;\n"
                        "        end = end > 0x400000 ? 0x400000 : end;   /* mutant: the first 4 MiB only */")])
def identity_map_too_small(st):
    diag = diagnosis_text(st)
    assert "#PF (page fault, vector 14)" in diag and "beyond the kernel's identity map" in diag
    assert "must cover every usable region" in diag


@mutant("04", patches=[("solutions/04-paging/pt.c", "    invlpg(va);\n", "    /* mutant: no invlpg */\n")])
def missing_invlpg(st):
    remap = check_of(st, "paging: map, unmap and remap")
    assert not remap.passed and "reads A: a stale TLB entry (invlpg missing?)" in remap.message


@mutant("04", patches=[("labs/04-paging/paging.c", "#define KERNEL_TEXT   (PTE_P)",
                        "#define KERNEL_TEXT   (PTE_P | PTE_W)   /* mutant */")])
def writable_text_is_caught_by_qemus_view(st):
    view = check_of(st, "paging: QEMU's own view")
    assert not view.passed and "QEMU says .text page" in view.message and "is rwx, not r-x" in view.message


@mutant("04", patches=[("labs/04-paging/paging.c", "run->flags & PTE_NX ? '-' : 'x');",
                        "'-');   /* mutant: never admits x */")])
def dump_that_lies_is_caught_only_by_qemus_view(st):
    failed = [c.title for c in st.checks if not c.passed]
    assert failed == ["paging: QEMU's own view matches the dump and the sections"]
    assert "differ" in check_of(st, "paging: QEMU's own view").message


@mutant("04", patches=[("labs/04-paging/paging.c", "        *pd_entry = pa | flags | PTE_P | PTE_PS;",
                        "        *pd_entry = (pa | 0x2000) | flags | PTE_P | PTE_PS;   /* mutant: not 2 MiB-aligned */")])
def large_page_not_aligned_sets_a_reserved_bit(st):
    diag = diagnosis_text(st)
    assert "#PF (page fault, vector 14)" in diag and "RSVD=reserved bit set in a paging entry" in diag
    assert "a reserved bit is set in a paging entry on the walk to CR2" in diag


@mutant("04", patches=[("labs/04-paging/paging.c", "#define KERNEL_DATA   (PTE_P | PTE_W | PTE_NX)",
                        "#define KERNEL_DATA   (PTE_P | PTE_NX)   /* mutant: data read-only */")])
def data_mapped_read_only(st):
    diag = diagnosis_text(st)
    assert "#PF (page fault, vector 14)" in diag and "P=protection violation (page present), W=write" in diag
    assert "a write to a present page faulted: PTE_W is clear" in diag
