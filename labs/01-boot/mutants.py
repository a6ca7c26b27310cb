"""Lab 01's deliberate breaks (grader/mutants.py runs them): what the report
must say for each classic mistake of the boot lab, and for the ways a run
can end badly."""
import json

from grader.mutants import SEED, check_of, diagnosis_text, earned_without_work, forged_text, forger, mutant, skeleton


@mutant("01", skeleton=True)
def skeleton_fails_on_lm_enable_and_says_so(st):
    assert st.score == 0
    assert "exit status 37 (boot failure)" in st.stopped
    assert "[boot] FAIL: lm_enable: CR4.PAE is clear" in st.boots["default"].text
    assert "longmode.S" in " ".join(check_of(st, "boot: long mode").hints)


@mutant("01", patches=[skeleton("01-boot/mb2.c")])
def skeleton_mb2_fails_exactly_the_tag_walk(st):
    # lm_enable from the solution, mb2.c from the skeleton: the boot reaches kmain, but without the
    # command line nothing in its output can be shown to belong to this run, so nothing counts.
    assert "long mode reached" not in " ".join(c.title for c in st.checks if c.passed) and st.score == 0
    assert (
        check_of(st, "boot: long mode").message
        == check_of(st, "power").message
        == st.unproven["default"]
        == "no points from this boot: its output never shows this run's command line "
        f"`seed=0x{SEED:08x} tests=all monitor=power`, "
        "so none of it can be shown to belong to this run"
    )
    assert (
        check_of(st, "mb2: command line").message
        == f"expected `[boot] cmdline: seed=0x{SEED:08x} tests=all monitor=power`, got `[boot] cmdline: (none)`"
    )
    assert (
        check_of(st, "mb2: boot loader name").message
        == "expected `[boot] loader: GRUB {any}`, got `[boot] loader: (none)`"
    )
    assert "mb2_read_mmap recorded no region" in check_of(st, "mb2: memory map matches").message
    assert "mb2_parse returned 0" in check_of(st, "mb2: tag walk").message


NULL_IDT_INT3 = (
    "labs/01-boot/kmain.c",
    "    (void)bi;\n",
    "    (void)bi;\n    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) none = {0, 0};\n"
    '    __asm__ volatile("lidt %0; int3" : : "m"(none));   /* mutant */\n',
)


@mutant("02", patches=[NULL_IDT_INT3])
def null_idt_and_int3_triple_faults_with_diagnosis(st):
    assert not st.full and "triple fault" in st.stopped
    diag = diagnosis_text(st)
    assert "#BP (breakpoint, vector 3)" in diag and "#GP (general protection, vector 13)" in diag
    assert "#DF (double fault, vector 8)" in diag and "triple fault" in diag
    assert "in kmain (labs/01-boot/kmain.c:" in diag
    assert "no IDT before lab 05" in diag


@mutant(
    "02",
    patches=[
        (
            "labs/01-boot/kmain.c",
            "    uint64_t seed = cmdline_seed();\n",
            "    uint64_t seed = cmdline_seed();\n" + NULL_IDT_INT3[2].split("\n", 1)[1],
        )
    ],
)
def a_fault_right_after_boot_drops_the_hints_of_what_it_kept_quiet(st):
    # the kprintf lines were never printed: the fault says why, not their hints (which blame kvprintf)
    assert "#BP (breakpoint, vector 3)" in diagnosis_text(st)
    missing = [c for c in st.checks if c.message.startswith("missing")]
    assert missing and not [c.title for c in missing if c.hints]


@mutant(
    "02",
    patches=[
        (
            "labs/01-boot/kmain.c",
            "    poweroff(EXIT_OK);",
            '    for (;;)\n        __asm__ volatile("cli; hlt");   /* mutant */',
        )
    ],
    timeouts={"progress": 6.0},  # GRUB and the boot must print within it on a loaded machine too
)
def never_powers_off_times_out(st):
    power = check_of(st, "power")
    assert not power.passed and power.message.startswith("timeout: no new output for 6s"), power.message
    assert "last output: [kmain] all done" in power.details


@mutant(
    "02",
    patches=[
        (
            "labs/01-boot/power.c",
            "    outl(QEMU_EXIT_PORT, (uint32_t)exit_value);",
            "    struct { uint16_t l; uint64_t b; } __attribute__((packed)) none = {0, 0};\n"
            '    __asm__ volatile("lidt %0; int3" : : "m"(none));   /* mutant */',
        )
    ],
)
def prints_everything_then_triple_faults(st):
    assert "[power] off: ok" in st.boots["default"].lines
    transcript_checks = [c for c in st.checks if c.title.startswith(("kprintf", "serial"))]
    assert all(c.passed for c in transcript_checks)  # every line printed...
    power = check_of(st, "power")
    assert not power.passed and not st.full  # ...and still a failure
    assert "triple fault" in power.message
    assert "triple fault" in diagnosis_text(st)


@mutant(
    "01",
    patches=[("solutions/01-boot/longmode.S", "    mov %eax, %cr3\n", "    /* mutant: CR3 never loaded */\n")],
    seeds=2,
)
def lm_enable_without_cr3_faults_in_lm_enable(st):
    # Paging switched on with CR3 still 0: the next fetch walks garbage tables.
    diag = diagnosis_text(st)
    assert "#PF (page fault, vector 14)" in diag and "in lm_enable (solutions/01-boot/longmode.S:" in diag
    assert "triple fault" in diag and "CR3 holds 0x0, not the PML4 (boot_pml4, 0x" in diag
    assert "paging went on inside lm_enable and the next instruction fetch faulted" in diag
    assert "1. CR4.PAE; 2. CR3 = the PML4 passed in; 3. EFER.LME" in diag
    assert "triple fault" in st.stopped


L_AND_D = (
    "labs/01-boot/boot.S",
    "    .quad 0x00af9b000000ffff",
    "    .quad 0x00ef9b000000ffff   /* mutant: L=1, D=1 */",
)


@mutant("01", patches=[L_AND_D], also=[{"emulator": "bochs"}])
def code_segment_with_l_and_d_fails_only_under_bochs(under_qemu, under_bochs):
    from grader import report

    assert under_qemu.full
    assert not under_bochs.full and "triple fault" in under_bochs.stopped
    diag = diagnosis_text(under_bochs)
    assert "#GP (general protection, vector 13)" in diag and "in _start (labs/01-boot/boot.S:" in diag
    assert "error 0x8: refers to GDT selector 0x8" in diag
    assert "bochs says: check_cs(0x0008): Both CS.L and CS.D_B bits enabled !" in diag
    assert "With L=1, D must be 0" in diag
    assert report.disagreements([under_qemu, under_bochs]) == [
        "Stage 01-boot passes under qemu but fails under bochs: the kernel depends on something the "
        "stricter emulator refuses (see its diagnosis above)"
    ]


PAGING_BEFORE_PAE = (
    "solutions/01-boot/longmode.S",
    "    mov %cr4, %eax                    /* 1. PAE */",
    "    mov 4(%esp), %eax\n    mov %eax, %cr3\n    mov $MSR_EFER, %ecx\n    rdmsr\n"
    "    or $(EFER_LME | EFER_NXE), %eax\n    wrmsr\n    mov %cr0, %eax\n    or $CR0_PG, %eax\n"
    "    mov %eax, %cr0                    /* mutant: paging before PAE */\n    mov %cr4, %eax",
)


@mutant("01", patches=[PAGING_BEFORE_PAE], also=[{"emulator": "bochs"}])
def paging_before_pae_fails_only_under_bochs(under_qemu, under_bochs):
    assert under_qemu.full  # QEMU 7.2 accepts it
    diag = diagnosis_text(under_bochs)
    assert "#GP" in diag and "in lm_enable (solutions/01-boot/longmode.S:" in diag
    assert "check the order of the steps: lm_enable's four steps, in this order: 1. CR4.PAE; 2. CR3" in diag


STEPS_3_AND_4_SWAPPED = (
    "solutions/01-boot/longmode.S",
    """    mov $MSR_EFER, %ecx               /* 3. EFER.LME and EFER.NXE */
    rdmsr
    or $(EFER_LME | EFER_NXE), %eax
    wrmsr
    mov %cr0, %eax                    /* 4. paging on, write protect on */
    or $(CR0_PG | CR0_WP), %eax
    mov %eax, %cr0
""",
    """    mov %cr0, %eax                    /* 4. paging on, write protect on */
    or $(CR0_PG | CR0_WP), %eax
    mov %eax, %cr0                    /* mutant: before step 3 */
    mov $MSR_EFER, %ecx               /* 3. EFER.LME and EFER.NXE */
    rdmsr
    or $(EFER_LME | EFER_NXE), %eax
    wrmsr
""",
)


@mutant("01", patches=[STEPS_3_AND_4_SWAPPED], also=[{"emulator": "bochs"}])
def paging_before_efer_lme_names_the_order_under_both_emulators(under_qemu, under_bochs):
    for st in (under_qemu, under_bochs):
        diag = diagnosis_text(st)
        assert "in lm_enable (solutions/01-boot/longmode.S:" in diag, diag
        assert "paging was switched on before long mode: at the fault EFER.LME is still clear" in diag, diag
        assert "1. CR4.PAE; 2. CR3 = the PML4 passed in; 3. EFER.LME and EFER.NXE" in diag
        assert "identity map must cover" not in diag  # not the hint for a small map


@mutant(
    "03",
    patches=[
        (
            "labs/01-boot/boot.S",
            "    cmp $(BOOT_IDMAP_SIZE / LARGE_PAGE_SIZE), %ecx",
            "    cmp $1, %ecx                      /* mutant: only the first 2 MiB */",
        )
    ],
)
def boot_identity_map_too_small_faults_on_the_stack(st):
    # From stage 03 the 4 MiB heap puts the stack above 2 MiB: lm_enable's `ret` reads an unmapped stack.
    diag = diagnosis_text(st)
    assert "#PF (page fault, vector 14) at rip" in diag and "in lm_enable (" in diag, diag
    assert "an access faulted at CR2, which the page tables do not map (the stack, if CR2 is near RSP)" in diag


@mutant(
    "01",
    patches=[
        (
            "solutions/01-boot/longmode.S",
            "    mov %cr4, %eax                    /* 1. PAE */",
            "    ud2                               /* mutant */\n    mov %cr4, %eax",
        )
    ],
)
def any_fault_in_lm_enable_names_the_steps(st):
    diag = diagnosis_text(st)
    assert diag.startswith("#UD (invalid opcode, vector 6) at rip") and "in lm_enable (" in diag
    assert "then #GP (general protection, vector 13)" in diag  # delivering it failed
    assert "the first fault is inside lm_enable, before any IDT exists: check the order of the steps" in diag


@mutant(
    "01",
    patches=[
        (
            "labs/01-boot/kmain.c",
            "    (void)bi;\n",
            "    (void)bi;\n    ((void (*)(void))0x40000000)();   /* mutant: a call through a bad pointer */\n",
        )
    ],
)
def a_jump_outside_the_kernel_is_named(st):
    diag = diagnosis_text(st)
    assert diag.startswith("#PF (page fault, vector 14) at rip 0x40000000, outside the kernel"), diag
    assert "the CPU was running outside the kernel when it faulted (rip 0x40000000)" in diag


# Classic mistakes in lm_enable (longmode.S). It runs before the seed is read,
# the same instructions on every machine the seed picks: a few seeds suffice.
LM = "solutions/01-boot/longmode.S"


def boot_fail(st, step):
    """The boot check fails with boot.S's line naming `step`, and nothing else boots."""
    boot = check_of(st, "boot: long mode")
    assert not boot.passed and f"[boot] FAIL: lm_enable: {step} is clear" in boot.message, boot.message


@mutant("01", patches=[(LM, "    or $CR4_PAE, %eax\n", "")], seeds=2)
def lm_enable_without_pae(st):
    boot_fail(st, "CR4.PAE")


@mutant("01", patches=[(LM, "    or $(EFER_LME | EFER_NXE), %eax\n", "    or $EFER_NXE, %eax\n")], seeds=2)
def lm_enable_without_lme_faults_in_32_bit_paging(st):
    # the order is right: the hint names the bit, not the order
    assert "triple fault" in st.stopped
    diag = diagnosis_text(st)
    assert "in lm_enable (solutions/01-boot/longmode.S:" in diag
    assert "EFER is 0x800 at the fault (NXE): the wrmsr of step 3 ran, in its place before CR0.PG, but it left " in diag
    assert "The bit to set is EFER_LME, bit 8" in diag and "paging was switched on before long mode" not in diag


@mutant("01", patches=[(LM, "    or $(EFER_LME | EFER_NXE), %eax\n", "    or $(EFER_LMA | EFER_NXE), %eax\n")])
def lm_enable_sets_lma_for_lme_is_told_the_bit(st):
    # LMA (bit 10) is the CPU's to set: writing it changes nothing, and LME stays clear
    diag = diagnosis_text(st)
    assert "(NXE): the wrmsr of step 3 ran, in its place before CR0.PG, but it left EFER.LME clear" in diag, diag
    assert "paging was switched on before long mode" not in diag


@mutant("01", patches=[(LM, "    or $(EFER_LME | EFER_NXE), %eax\n", "    or $EFER_LME, %eax\n")], seeds=2)
def lm_enable_without_nxe(st):
    boot_fail(st, "EFER.NXE")


@mutant("01", patches=[(LM, "    or $(CR0_PG | CR0_WP), %eax\n", "    or $CR0_PG, %eax\n")], seeds=2)
def lm_enable_without_write_protect(st):
    boot_fail(st, "CR0.WP")


@mutant(
    "01",
    patches=[(LM, "    rdmsr\n    or $(EFER_LME | EFER_NXE), %eax\n", "    mov $(EFER_LME | EFER_NXE), %eax\n")],
    emulator="bochs",
    seeds=2,
)
def wrmsr_without_rdmsr_writes_reserved_bits_under_bochs(st):
    # %edx still holds what cpuid left there: QEMU ignores the reserved bits, Bochs faults.
    assert "triple fault" in st.stopped
    diag = diagnosis_text(st)
    assert "in lm_enable (solutions/01-boot/longmode.S:" in diag and "read EFER with rdmsr first" in diag


@mutant("01", patches=[(LM, "    mov 4(%esp), %eax ", "    mov (%esp), %eax ")], seeds=2)
def lm_enable_loads_its_return_address_into_cr3(st):
    boot_fail_cr3 = check_of(st, "boot: long mode")
    assert not boot_fail_cr3.passed and "triple fault" in st.stopped
    assert "in lm_enable (solutions/01-boot/longmode.S:" in diagnosis_text(st)


# Classic mistakes in mb2_parse and mb2_read_mmap (mb2.c). What catches them
# is the made-up blocks of mb2_selftest.c, the same on every run (GRUB's own
# block changes with the seed only in the digits of the command line and the
# memory size): a few seeds suffice.
MB = "solutions/01-boot/mb2.c"


def made_up(st, what, words):
    """The made-up block's line `what` says FAIL with these words, in the check that reads it."""
    title = "mb2: memory map regions" if what == "memory map" else "mb2: tag walk counts the tags"
    c = check_of(st, title)
    assert not c.passed and f"[mb2] made-up {what}: FAIL: " in c.message and words in c.message, c.message


@mutant(
    "01",
    patches=[
        (
            MB,
            "        p += (tag->size + MB2_TAG_ALIGN - 1) & ~(uint64_t)(MB2_TAG_ALIGN - 1);",
            "        p += tag->size;   /* mutant: not rounded up to 8 */",
        )
    ],
    seeds=2,
)
def tag_size_not_rounded_up(st):
    assert not check_of(st, "mb2: command line").passed or not check_of(st, "mb2: boot loader name").passed
    made_up(st, "tags", "rounded up to 8")
    # long mode was reached: its 20 points fall to the proof rule (no command line echoed), and
    # its hints, which send the student to lm_enable, stay out of the report
    boot = check_of(st, "boot: long mode")
    assert not [h for h in boot.hints if "lm_enable" in h] and "mb2_parse says" not in boot.message, boot


@mutant(
    "01",
    patches=[
        (
            MB,
            "        p += (tag->size + MB2_TAG_ALIGN - 1) & ~(uint64_t)(MB2_TAG_ALIGN - 1);",
            "        p += (tag->size + 3) & ~3ull;   /* mutant: rounded up to 4 */",
        )
    ],
    seeds=2,
)
def tag_size_rounded_up_to_4(st):
    made_up(st, "tags", "rounded up to 8")


KNOWN_ONLY = [
    (MB, "        ntags++;\n", ""),
    (
        MB,
        "            bi->loader = ((const struct mb2_tag_string *)tag)->string;",
        "            bi->loader = ((const struct mb2_tag_string *)tag)->string, ntags++;   /* mutant */",
    ),
    (
        MB,
        "            bi->cmdline = ((const struct mb2_tag_string *)tag)->string;",
        "            bi->cmdline = ((const struct mb2_tag_string *)tag)->string, ntags++;",
    ),
    (
        MB,
        "            mb2_read_mmap((const struct mb2_tag_mmap *)tag, bi);",
        "            mb2_read_mmap((const struct mb2_tag_mmap *)tag, bi), ntags++;",
    ),
    (MB, "            bm->cmdline = m->cmdline;", "            bm->cmdline = m->cmdline;\n            ntags++;"),
]


@mutant("01", patches=KNOWN_ONLY, seeds=2)
def unknown_tags_not_counted(st):
    made_up(st, "tags", "known or not")


@mutant(
    "01",
    patches=[(MB, "            return ntags;", "            return ntags + 1;   /* mutant: the end tag counted */")],
    seeds=2,
)
def end_tag_counted(st):
    made_up(st, "tags", "mb2_parse returned 10 for 9 tags")


@mutant(
    "01",
    patches=[
        (
            MB,
            "tag->type == MB2_TAG_MODULE && bi->nmodules < BOOT_MAX_MODULES",
            "tag->type == MB2_TAG_MODULE && bi->nmodules <= BOOT_MAX_MODULES   /* mutant */",
        )
    ],
    seeds=2,
)
def module_table_overrun(st):
    made_up(st, "tags", "must record BOOT_MAX_MODULES (4) modules, no more")


@mutant(
    "01",
    patches=[
        (
            MB,
            "        if (p + sizeof *tag > end || tag->size < sizeof *tag || p + tag->size > end)",
            "        if (p + sizeof *tag > end || p + tag->size > end)   /* mutant */",
        )
    ],
    seeds=2,
)
def tag_size_below_8_accepted(st):
    made_up(st, "bad blocks", "a tag of size 4 was accepted")


@mutant(
    "01",
    patches=[
        (
            MB,
            "        if (p + sizeof *tag > end || tag->size < sizeof *tag || p + tag->size > end)",
            "        if (p + sizeof *tag > end || tag->size < sizeof *tag)   /* mutant */",
        )
    ],
    seeds=2,
)
def tag_past_total_size_accepted(st):
    made_up(st, "bad blocks", "a tag reaching past total_size was accepted or read")


@mutant("01", patches=[(MB, "p += t->entry_size) {", "p += sizeof(struct mb2_mmap_entry)) {   /* mutant */")], seeds=2)
def memory_map_stride_is_sizeof(st):
    # GRUB's entry_size is sizeof(struct mb2_mmap_entry): only the made-up map shows the mistake.
    made_up(st, "memory map", "entries are entry_size bytes apart (here 32), not sizeof")


@mutant(
    "01",
    patches=[(MB, "bi->nregions < BOOT_MAX_REGIONS;", "bi->nregions <= BOOT_MAX_REGIONS;   /* mutant */")],
    seeds=2,
)
def region_table_overrun(st):
    made_up(st, "memory map", "a write past the end of bi->regions")


@mutant("01", patches=[(MB, "p + t->entry_size <= end &&", "p <= end &&   /* mutant */")], seeds=2)
def memory_map_entry_read_past_the_tag(st):
    made_up(st, "memory map", "an entry read past the end of the tag")


# Forgers (issue 20): the lab's whole transcript printed, the work not done.
FORGED_LM_ENABLE = """    mov $forge_text, %%ecx
1:  mov $0x3fd, %%dx                   /* COM1's LSR: wait for THRE */
2:  inb %%dx, %%al
    test $0x20, %%al
    jz 2b
    movb (%%ecx), %%al
    test %%al, %%al
    jz 3f
    mov $0x3f8, %%dx
    outb %%al, %%dx
    inc %%ecx
    cmpb $0, (%%ecx)
    jne 1b
    cmp $forge_wait_end, %%ecx          /* after the waiting line, wait for the grader's byte */
    jne 1b
    mov $0x3fd, %%dx
4:  inb %%dx, %%al
    test $1, %%al
    jz 4b
    mov $0x3f8, %%dx
    inb %%dx, %%al
    inc %%ecx
    jmp 1b
3:  mov $0xf4, %%dx                    /* isa-debug-exit: EXIT_OK */
    mov $0x10, %%eax
    outl %%eax, %%dx
    hlt
    .section .rodata
forge_text:
    .ascii %s
    .ascii "[power] waiting for the grader\\n"
forge_wait_end:
    .byte 0
    .ascii "[power] off: ok\\n"
    .byte 0
    .section .text.code32, "ax"
"""


def forged_lm_enable(seed):
    """longmode.S whose lm_enable prints the lab's whole transcript (this
    run's reference output: every value of lab 01 is one a forger can
    know), waits for the grader as power.c does, and powers off, all in
    32-bit protected mode."""

    def apply(root):
        text = "".join(f"{ln}\n" for ln in forged_text("01", seed))
        skeleton = (root / "labs/01-boot/longmode.S").read_text()
        body = FORGED_LM_ENABLE % json.dumps(text)
        (root / "solutions/01-boot/longmode.S").write_text(
            skeleton.replace("    // LAB 1: your code here.\n", "    // LAB 1: your code here.\n" + body)
        )

    return apply


@mutant("01", patches=[skeleton("01-boot/mb2.c"), forged_lm_enable(SEED)])
def forger_in_32_bit_mode_earns_nothing(st):
    assert earned_without_work(st) == [] and st.score == 0, earned_without_work(st)
    assert check_of(st, "boot: long mode").message.startswith("QEMU found the CPU at rip 0x")
    assert "not in power.c's wait: the kernel never ran its 64-bit code" in check_of(st, "boot: long mode").message


@mutant("01", patches=[forger("01-boot/mb2.c", "01")])
def forger_of_the_boot_information_earns_nothing_of_mb2(st):
    # lm_enable is done: the kernel reaches kmain; mb2.c prints GRUB's information and drops the rest. Without
    # the command line parsed, the kernel never waits for the grader, and nothing can be observed.
    assert earned_without_work(st) == [] and st.score == 0, earned_without_work(st)
    assert "QEMU was never asked" in check_of(st, "mb2: command line").message
