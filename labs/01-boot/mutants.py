"""Lab 01's deliberate breaks (grader/mutants.py runs them): what the report
must say for each classic mistake of the boot lab, and for the ways a run
can end badly."""
from grader.mutants import SEED, check_of, diagnosis_text, mutant, skeleton


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
    assert check_of(st, "boot: long mode").message == check_of(st, "power").message == st.unproven["default"] == \
        f"no points from this boot: its output never shows this run's command line `seed=0x{SEED:08x} tests=all`, " \
        "so none of it can be shown to belong to this run"
    assert check_of(st, "mb2: command line").message == \
        f"expected `[boot] cmdline: seed=0x{SEED:08x} tests=all`, got `[boot] cmdline: (none)`"
    assert check_of(st, "mb2: boot loader name").message == \
        "expected `[boot] loader: GRUB {any}`, got `[boot] loader: (none)`"
    assert "mb2_read_mmap recorded no region" in check_of(st, "mb2: memory map matches").message
    assert "mb2_parse returned 0" in check_of(st, "mb2: tag walk").message


NULL_IDT_INT3 = ("labs/01-boot/kmain.c", "    (void)bi;\n",
                 "    (void)bi;\n    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) none = {0, 0};\n"
                 "    __asm__ volatile(\"lidt %0; int3\" : : \"m\"(none));   /* mutant */\n")


@mutant("02", patches=[NULL_IDT_INT3])
def null_idt_and_int3_triple_faults_with_diagnosis(st):
    assert not st.full and "triple fault" in st.stopped
    diag = diagnosis_text(st)
    assert "#BP (breakpoint, vector 3)" in diag and "#GP (general protection, vector 13)" in diag
    assert "#DF (double fault, vector 8)" in diag and "triple fault" in diag
    assert "in kmain (labs/01-boot/kmain.c:" in diag
    assert "no IDT before lab 05" in diag


@mutant("02", patches=[("labs/01-boot/kmain.c", "    poweroff(EXIT_OK);",
                        "    for (;;)\n        __asm__ volatile(\"cli; hlt\");   /* mutant */")],
        timeouts={"progress": 2.0})
def never_powers_off_times_out(st):
    power = check_of(st, "power")
    assert not power.passed and power.message.startswith("timeout: no new output for 2s")
    assert "last output: [kmain] all done" in power.details


@mutant("02", patches=[("labs/01-boot/power.c", "    outl(QEMU_EXIT_PORT, (uint32_t)exit_value);",
                        "    struct { uint16_t l; uint64_t b; } __attribute__((packed)) none = {0, 0};\n"
                        "    __asm__ volatile(\"lidt %0; int3\" : : \"m\"(none));   /* mutant */")])
def prints_everything_then_triple_faults(st):
    assert "[power] off: ok" in st.boots["default"].lines
    transcript_checks = [c for c in st.checks if c.title.startswith(("kprintf", "serial"))]
    assert all(c.passed for c in transcript_checks)          # every line printed...
    power = check_of(st, "power")
    assert not power.passed and not st.full                   # ...and still a failure
    assert "triple fault" in power.message
    assert "triple fault" in diagnosis_text(st)


@mutant("01", patches=[("solutions/01-boot/longmode.S", "    mov %eax, %cr3\n", "    /* mutant: CR3 never loaded */\n")])
def lm_enable_without_cr3_faults_in_lm_enable(st):
    # Paging switched on with CR3 still 0: the next fetch walks garbage tables.
    diag = diagnosis_text(st)
    assert "#PF (page fault, vector 14)" in diag and "in lm_enable (solutions/01-boot/longmode.S:" in diag
    assert "triple fault" in diag and "PAE and CR3 before CR0.PG" in diag
    assert "triple fault" in st.stopped


L_AND_D = ("labs/01-boot/boot.S", "    .quad 0x00af9b000000ffff", "    .quad 0x00ef9b000000ffff   /* mutant: L=1, D=1 */")


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
        "stricter emulator refuses (see its diagnosis above)"]


PAGING_BEFORE_PAE = ("solutions/01-boot/longmode.S", "    mov %cr4, %eax                    /* 1. PAE */",
                     "    mov 4(%esp), %eax\n    mov %eax, %cr3\n    mov $MSR_EFER, %ecx\n    rdmsr\n"
                     "    or $(EFER_LME | EFER_NXE), %eax\n    wrmsr\n    mov %cr0, %eax\n    or $CR0_PG, %eax\n"
                     "    mov %eax, %cr0                    /* mutant: paging before PAE */\n    mov %cr4, %eax")


@mutant("01", patches=[PAGING_BEFORE_PAE], also=[{"emulator": "bochs"}])
def paging_before_pae_fails_only_under_bochs(under_qemu, under_bochs):
    assert under_qemu.full                      # QEMU 7.2 accepts it
    diag = diagnosis_text(under_bochs)
    assert "#GP" in diag and "in lm_enable (solutions/01-boot/longmode.S:" in diag
    assert "PAE and CR3 before CR0.PG" in diag
