"""Lab 04's deliberate breaks (grader/mutants.py runs them)."""
import re

from grader.mutants import check_of, diagnosis_text, earned_without_work, forger, mutant


@mutant("04", skeleton=True, below=True)
def skeleton_keeps_the_boot_tables_and_says_why(st):
    assert st.boots["default"].outcome.ok  # the skeleton boots and powers off
    cr3 = check_of(st, "paging: new tables built")
    assert not cr3.passed and cr3.message.endswith("pages could not be mapped (pt_map, pt_entry)`")
    mapping_first(st)
    assert "is not mapped (pt_map, pt_translate): keeping the boot page tables" in st.boots["default"].text
    assert "the kernel never printed `[paging] tables final" in check_of(st, "paging: QEMU's own view").message


@mutant(
    "04",
    patches=[
        (
            "labs/04-paging/paging.c",
            "#define KERNEL_TEXT   (PTE_P)",
            "#define KERNEL_TEXT   (PTE_P | PTE_NX)   /* mutant */",
        )
    ],
)
def text_mapped_no_execute(st):
    diag = diagnosis_text(st)
    assert "#PF (page fault, vector 14)" in diag and "I=instruction fetch" in diag and "(.text)" in diag
    assert "mapped no-execute" in diag and "triple fault" in diag


@mutant(
    "04",
    patches=[
        (
            "labs/04-paging/paging.c",
            "        uint64_t a = (r->base + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1), end = r->base + r->length;",
            "        uint64_t a = (r->base + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1), end = r->base + r->length;\n"
            "        end = end > 0x400000 ? 0x400000 : end;   /* mutant: the first 4 MiB only */",
        )
    ],
)
def identity_map_too_small(st):
    diag = diagnosis_text(st)
    assert "#PF (page fault, vector 14)" in diag and "beyond the kernel's identity map" in diag
    assert "must cover every usable region" in diag


@mutant("04", patches=[("solutions/04-paging/pt.c", "    invlpg(va);\n", "    /* mutant: no invlpg */\n")], seeds=2)
def missing_invlpg(st):
    remap = check_of(st, "paging: map, unmap and remap")
    assert not remap.passed and "reads A: a stale TLB entry (invlpg missing?)" in remap.message


@mutant(
    "04",
    patches=[
        (
            "labs/04-paging/paging.c",
            "#define KERNEL_TEXT   (PTE_P)",
            "#define KERNEL_TEXT   (PTE_P | PTE_W)   /* mutant */",
        )
    ],
    also=[{"emulator": "bochs"}],
)
def writable_text_is_caught_by_qemus_view(st, under_bochs):
    view = check_of(st, "paging: QEMU's own view")
    assert not view.passed and "QEMU says .text page" in view.message and "is rwx, not r-x" in view.message
    dump = check_of(under_bochs, "paging: the kernel's dump")
    assert not dump.passed and "the kernel's dump says .text page" in dump.message and "is rwx, not r-x" in dump.message


@mutant(
    "04",
    patches=[("labs/04-paging/paging.c", "run->flags & PTE_NX ? '-' : 'x');", "'-');   /* mutant: never admits x */")],
)
def dump_that_lies_is_caught_only_by_qemus_view(st):
    failed = [c.title for c in st.checks if not c.passed]
    assert failed == ["paging: QEMU's own view matches the dump and the sections"]
    assert "differ" in check_of(st, "paging: QEMU's own view").message


@mutant(
    "04",
    patches=[
        (
            "labs/04-paging/paging.c",
            "        *pd_entry = pa | flags | PTE_P | PTE_PS;",
            "        *pd_entry = (pa | 0x2000) | flags | PTE_P | PTE_PS;   /* mutant: not 2 MiB-aligned */",
        )
    ],
)
def large_page_not_aligned_sets_a_reserved_bit(st):
    diag = diagnosis_text(st)
    assert "#PF (page fault, vector 14)" in diag and "RSVD=reserved bit set in a paging entry" in diag
    assert "a reserved bit is set in a paging entry on the walk to CR2" in diag


@mutant(
    "04",
    patches=[
        (
            "labs/04-paging/paging.c",
            "#define KERNEL_DATA   (PTE_P | PTE_W | PTE_NX)",
            "#define KERNEL_DATA   (PTE_P | PTE_NX)   /* mutant: data read-only */",
        )
    ],
)
def data_mapped_read_only(st):
    diag = diagnosis_text(st)
    assert "#PF (page fault, vector 14)" in diag and "P=protection violation (page present), W=write" in diag
    assert "a write to a present page faulted: PTE_W is clear" in diag


# Classic mistakes in pt_entry, pt_map, pt_unmap and pt_translate (pt.c). The
# seeded translations and the remap address come from the seed; the made-up
# mappings (selftest_high, selftest_entries) are the same on every run.
PT = "solutions/04-paging/pt.c"


def wrong(st, title, *words):
    c = check_of(st, title)
    assert not c.passed and all(w in c.message for w in words), c.message


SELF_TESTED = ("paging: kernel sections", "paging: the stack guard", "paging: translations", "paging: map, unmap")


def mapping_first(st):
    """Nothing could be mapped: the self-tests' checks fail, and their hints give way to one that
    says to make the mapping work first (none sends the student to flags, PAT or invlpg)."""
    hints = " ".join(check_of(st, "paging: new tables built").hints)
    assert "PT_INDEX(va, level)" in hints, hints
    for title in SELF_TESTED:
        c = check_of(st, title)
        assert not c.passed and any("make the mapping work first" in h for h in c.hints), (title, c.hints)
        assert not any(w in h for h in c.hints for w in ("returns the flags", "PAT", "invlpg")), (title, c.hints)


@mutant(
    "04",
    patches=[
        (
            PT,
            "        pte_t *e = &table[PT_INDEX(va, l)];",
            "        pte_t *e = &table[(va >> (12 + 9 * l)) & 511];   /* mutant: each level's index one level up */",
        )
    ],
)
def walk_with_the_wrong_index_shift(st):
    # A student's walkthrough: every page collides, yet the report sent the student to flags and invlpg.
    wrong(st, "paging: new tables built", "pages could not be mapped (pt_map, pt_entry)")
    mapping_first(st)


@mutant(
    "04",
    patches=[(PT, "    *e = pa | flags | PTE_P;", "    *e = PTE_ADDR(pa) | flags;   /* mutant: PTE_P left out */")],
)
def pt_map_leaves_out_the_present_bit(st):
    # paging_init's flags carry PTE_P, the self-test's do not: the CR3 line is right, and the
    # report says so; the self-tests' checks name PTE_P.
    assert check_of(st, "paging: new tables built").passed
    wrong(st, "paging: translations", "got `[paging] translate 0xffff8000deadb123 -> not mapped (4 KiB, made up)`")
    wrong(st, "paging: map, unmap", "did not map it")
    for title in ("paging: translations", "paging: map, unmap"):
        hints = check_of(st, title).hints
        assert any("PTE_P in the entry itself" in h for h in hints), hints


@mutant(
    "04",
    patches=[
        (
            PT,
            "            *e = (uint64_t)next | PTE_P | PTE_W;",
            "            *e = (uint64_t)next | PTE_P;   /* mutant */",
        )
    ],
    seeds=2,
)
def upper_entries_without_write(st):
    # The leaves say writable, the tables above them do not: the first write after CR3 faults.
    assert "triple fault" in st.stopped
    diag = diagnosis_text(st)
    assert "P=protection violation" in diag and "W=write" in diag and "upper entries must allow writing" in diag
    assert st.score == 0  # nothing of lab 04 was printed, nor could QEMU be asked at the end


@mutant(
    "04",
    patches=[
        (
            PT,
            "            *e = (uint64_t)next | PTE_P | PTE_W;",
            "            *e = (uint64_t)next | PTE_P | PTE_W | PTE_NX;   /* mutant */",
        )
    ],
    seeds=2,
)
def upper_entries_no_execute(st):
    assert "triple fault" in st.stopped
    assert "an instruction fetch from .text faulted" in diagnosis_text(st)


@mutant(
    "04",
    patches=[
        (
            PT,
            "        table = (pte_t *)PTE_ADDR(*e);",
            "        table = (pte_t *)*e;   /* mutant: flags kept in the pointer */",
        )
    ],
    seeds=2,
)
def table_address_with_the_flag_bits(st):
    assert not st.full and not check_of(st, "paging: new tables built").passed


@mutant(
    "04",
    patches=[
        (
            PT,
            "        } else if (*e & PTE_PS) {\n            return NULL;\n        }\n",
            "        }   /* mutant: PTE_PS ignored */\n",
        )
    ],
    seeds=2,
)
def pt_entry_walks_into_a_large_page(st):
    wrong(
        st, "paging: translations", "got `[paging] pt_entry inside a 2 MiB page:", "FAIL: pt_entry went below a PTE_PS"
    )
    # the line shows what pt_entry returned (an entry, not NULL), and that pt_map was not tried after it
    assert re.search(r"inside a 2 MiB page: 0x[0-9a-f]{16}, pt_map there: not tried,", st.boots["default"].text)


@mutant(
    "04",
    patches=[
        (
            PT,
            "            if (!create)\n                return NULL;\n",
            "            (void)create;   /* mutant: always made */\n",
        )
    ],
    seeds=2,
)
def pt_entry_creates_without_create(st):
    wrong(st, "paging: translations", "FAIL: pt_entry made a table with create 0")
    assert "inside a 2 MiB page: NULL, pt_map there: -1, no table made" in st.boots["default"].text


@mutant(
    "04",
    patches=[
        (
            PT,
            "    if (e == NULL || (*e & PTE_P))\n        return -1;\n    *e = pa | flags | PTE_P;",
            "    if (e == NULL)   /* mutant: maps over a mapped page */\n        return -1;\n"
            "    *e = pa | flags | PTE_P;",
        )
    ],
    seeds=2,
)
def pt_map_over_a_mapped_page(st):
    wrong(st, "paging: map, unmap and remap", "got `[paging] map it while mapped: 0,")


@mutant(
    "04",
    patches=[
        (PT, "    *e = pa | flags | PTE_P;", "    *e = (uint32_t)pa | flags | PTE_P;   /* mutant: 32-bit addresses */")
    ],
    seeds=2,
)
def pt_map_drops_address_bits_above_4_gib(st):
    wrong(
        st,
        "paging: translations",
        "expected `[paging] translate 0xffff8000deadb123 -> 0x000000fedcba9123",
        "-> 0x00000000dcba9123",
    )


@mutant(
    "04",
    patches=[
        (
            PT,
            "    *e = pa | flags | PTE_P;",
            "    *e = pa | PTE_P | PTE_W;   /* mutant: flags ignored */\n    (void)flags;",
        )
    ],
    seeds=2,
)
def pt_map_ignores_the_flags(st):
    wrong(st, "paging: kernel sections", "expected `[paging] .text", "rwx")


@mutant(
    "04",
    patches=[
        (PT, "    *e = pa | flags | PTE_P;", "    *e = pa | flags | PTE_P | PTE_W;   /* mutant: always writable */")
    ],
)
def pt_map_adds_a_flag_is_told_by_the_entry_not_pt_translate(st):
    wrong(st, "paging: translations", "flags FAIL: pt_map set 0x8000000000000003, asked for 0x8000000000000001")
    assert check_of(st, "paging: translations").hints == [
        "pt_map wrote other flags than it was asked for into the entry (the line shows both, in hex): "
        "the entry is exactly pa | flags | PTE_P."
    ]
    c = check_of(st, "paging: kernel sections")
    wrong(st, c.title, "expected `[paging] .text", "rwx")
    assert len(c.hints) == 1 and c.hints[0].startswith("the entries themselves have other flags than paging_init")
    assert "pt_translate" not in " ".join(c.hints)


@mutant(
    "04",
    patches=[
        (
            PT,
            "    if (e == NULL || !(*e & PTE_P))\n        return -1;\n    *e = 0;",
            "    if (e == NULL)   /* mutant: an empty entry unmapped */\n        return -1;\n    *e = 0;",
        )
    ],
    seeds=2,
)
def pt_unmap_of_a_page_not_mapped(st):
    wrong(st, "paging: map, unmap and remap", "unmap it while not mapped: 0`")


@mutant(
    "04",
    patches=[(PT, "    invlpg(va);\n", "    invlpg((uint64_t)e);   /* mutant: the entry's address */\n")],
    emulator="bochs",
    seeds=1,
)
def invlpg_of_the_entry_not_the_page_under_bochs(st):
    # QEMU flushes everything when the address falls among its cached 2 MiB pages; Bochs follows the SDM.
    wrong(st, "paging: map, unmap and remap", "reads A: a stale TLB entry (invlpg missing?)")


@mutant(
    "04",
    patches=[
        (
            PT,
            "        *pa = (PTE_ADDR(*e) & ~(uint64_t)(LARGE_PAGE_SIZE - 1)) | (va & (LARGE_PAGE_SIZE - 1));",
            "        *pa = PTE_ADDR(*e) | (va & (LARGE_PAGE_SIZE - 1));   /* mutant: bit 12 (PAT) kept */",
        )
    ],
    seeds=2,
)
def large_page_address_keeps_the_pat_bit(st):
    # Our own 2 MiB pages never set PAT: only the made-up one does.
    wrong(
        st,
        "paging: translations",
        "-> 0x000000fedcbfedc8 (2 MiB, PAT, made up)",
        "got `[paging] translate 0xffff8000beffedc8",
    )
    assert check_of(st, "paging: kernel sections").passed


@mutant(
    "04",
    patches=[
        (
            PT,
            "        *pa = (PTE_ADDR(*e) & ~(uint64_t)(LARGE_PAGE_SIZE - 1)) | (va & (LARGE_PAGE_SIZE - 1));",
            "        *pa = (PTE_ADDR(*e) & ~(uint64_t)(LARGE_PAGE_SIZE - 1)) | (va & (PAGE_SIZE - 1));   /* mutant */",
        )
    ],
    seeds=20,
)
def large_page_offset_of_4_kib(st):
    wrong(st, "paging: translations", "expected `[paging] translate 0x")


@mutant(
    "04",
    patches=[(PT, "    *flags = *e & (PTE_NX | 0xfff);", "    *flags = *e & 0xfff;   /* mutant: NX lost */")],
    seeds=2,
)
def translate_loses_no_execute(st):
    wrong(st, "paging: kernel sections", "expected `[paging] .rodata", "r-x")


@mutant(
    "04",
    patches=[
        (
            PT,
            "        e = pt_entry(va, 1, 0);\n        if (e == NULL || !(*e & PTE_P))\n            return -1;\n"
            "        *pa = PTE_ADDR(*e) | (va & (PAGE_SIZE - 1));",
            "        pte_t *leaf = pt_entry(va, 1, 0);   /* mutant: the flags of the PD entry */\n"
            "        if (leaf == NULL || !(*leaf & PTE_P))\n            return -1;\n"
            "        *pa = PTE_ADDR(*leaf) | (va & (PAGE_SIZE - 1));",
        )
    ],
    seeds=2,
)
def translate_gives_the_flags_of_the_table_entry(st):
    wrong(st, "paging: kernel sections", "expected `[paging] .text", "rwx")
    assert "pt_translate returns the flags of the entry" in check_of(st, "paging: kernel sections").hints[0]
    wrong(st, "paging: translations", "flags FAIL: pt_translate's are not those of the entry")
    assert check_of(st, "paging: translations").hints == [
        "pt_translate returns the flags of the entry that maps the page (the low 12 bits and PTE_NX), "
        "not those of a table above it."
    ]


@mutant(
    "04",
    patches=[
        (
            PT,
            "        *pa = (PTE_ADDR(*e) & ~(uint64_t)(LARGE_PAGE_SIZE - 1)) | (va & (LARGE_PAGE_SIZE - 1));",
            "        return -1;   /* mutant: a 2 MiB page not followed */",
        )
    ],
    boots=["default"],
)
def translate_that_stops_at_a_large_page(st):
    wrong(st, "paging: translations", "expected `[paging] translate 0x", "-> not mapped`")
    details = "\n".join(check_of(st, "paging: translations").details)
    # the beyond-RAM line is right: the kernel's wrong attempts at the lines above it do not contradict it
    assert "CONTRA" not in details, details
    assert re.search(r"^   ok      \[paging\] translate 0x[0-9a-f]{16} -> not mapped$", details, re.M), details


@mutant(
    "04",
    patches=[
        (
            PT,
            "        if (e == NULL || !(*e & PTE_P))\n            return -1;\n"
            "        *pa = PTE_ADDR(*e) | (va & (PAGE_SIZE - 1));",
            "        if (e == NULL)   /* mutant: an empty leaf translated */\n            return -1;\n"
            "        *pa = PTE_ADDR(*e) | (va & (PAGE_SIZE - 1));",
        )
    ],
    seeds=2,
)
def translate_of_an_empty_entry(st):
    # paging_init asks pt_translate before it maps a page: an empty entry "maps" to 0.
    wrong(st, "paging: new tables built", "maps elsewhere: keeping the boot page tables")
    # each check whose lines are missing shows the kernel's own FAIL line that says why
    wrong(st, "paging: kernel sections", "missing `[paging] .text", "; the kernel said at line ", "maps elsewhere")


FAKE_FLAGS = [
    (
        PT,
        "    *e = pa | flags | PTE_P;",
        "    *e = pa | PTE_P | PTE_W;   /* mutant: flags ignored */\n    (void)flags;",
    ),
    (
        PT,
        "    *flags = *e & (PTE_NX | 0xfff);",
        "    *flags = *e & (PTE_NX | 0xfff);   /* mutant: and the answer the self-test wants */\n"
        "    if (va >= (uint64_t)__text_start && va < (uint64_t)__text_end)\n        *flags = PTE_P;\n"
        "    else if (va >= (uint64_t)__rodata_start && va < (uint64_t)__rodata_end)\n"
        "        *flags = PTE_P | PTE_NX;\n"
        "    else\n        *flags |= PTE_NX;",
    ),
]


@mutant("04", patches=FAKE_FLAGS, also=[{"emulator": "bochs"}])
def translate_that_fakes_the_permissions_is_caught_under_both(st, under_bochs):
    # pt_translate tells the self-test what it expects; the tables say rwx. What reads the
    # tables without pt_translate sees it: QEMU's walk, and under Bochs the kernel's own dump.
    assert check_of(under_bochs, "paging: kernel sections").passed  # Bochs is not asked: the lines stand
    assert "QEMU says .text page" in check_of(st, "paging: kernel sections").message
    assert "QEMU says .text page" in check_of(st, "paging: QEMU's own view").message
    assert "the kernel's dump says .text page" in check_of(under_bochs, "paging: the kernel's dump").message


@mutant(
    "04",
    patches=[
        (
            "labs/04-paging/paging.c",
            "#define RAM           (PTE_P | PTE_W | PTE_NX) /* rw- */",
            "#define RAM           (PTE_P | PTE_W)   /* mutant: rwx */",
        )
    ],
    also=[{"emulator": "bochs"}],
)
def executable_ram_is_caught_under_both(st, under_bochs):
    # The sections are right; the rest of RAM is writable and executable.
    assert check_of(st, "paging: kernel sections").passed
    assert "only the kernel's code may be executable" in check_of(st, "paging: QEMU's own view").message
    assert "only the kernel's code may be executable" in check_of(under_bochs, "paging: the kernel's dump").message


# A forger (issue 20): pt.c's skeleton, and the lab's whole transcript printed
# (every value of it is one the given code computes or a forger can know).
@mutant("04", patches=[forger("04-paging/pt.c", "04")])
def forger_printing_the_whole_transcript_earns_nothing(st):
    assert earned_without_work(st) == [] and st.score == 0, earned_without_work(st)
    assert "QEMU shows CR3 still on the boot page tables" in check_of(st, "paging: new tables").message
