"""Every stage booted for real: the solutions get full marks, the skeletons
fail with messages naming what is missing, and each mutant (a deliberate
break in a copy of the solutions) fails with the diagnosis it must produce."""
import pytest

from grader import grade, labs
from grader.checks.lab02_serial import kprintf_values
from conftest import SEED, check

LABS = [lab.name for lab in labs.discover()]


@pytest.mark.parametrize("emulator", ["qemu", "bochs"])
@pytest.mark.parametrize("lab", LABS)
def test_solutions_get_full_marks(lab, emulator):
    st = grade.grade_stage(lab, solutions=True, seed=SEED, emulator=emulator)
    failed = [(c.title, c.message) for c in st.checks if not c.passed]
    assert not failed and st.full and st.score == st.total > 0


def test_solutions_pass_with_other_seeds_and_memory_sizes():
    for seed in (1, 2, 0xFFFFFFFF):          # the seed also picks 128, 192 or 256 MiB
        st = grade.grade_stage("02", solutions=True, seed=seed)
        assert st.full, [(c.title, c.message) for c in st.checks if not c.passed]


def test_skeleton_01_fails_on_lm_enable_and_says_so():
    st = grade.grade_stage("01", seed=SEED)
    assert st.score == 0
    assert "exit status 37 (boot failure)" in st.stopped
    assert "[boot] FAIL: lm_enable: CR4.PAE is clear" in st.runs["default"].text
    assert "longmode.S" in " ".join(check(st, "boot: long mode").hints)


def test_skeleton_mb2_fails_exactly_the_tag_walk(mutant):
    # lm_enable from the solution, mb2.c from the skeleton: boot passes, mb2 fails.
    skeleton = (labs.ROOT / "labs/01-boot/mb2.c").read_text()
    st = mutant([("solutions/01-boot/mb2.c", (labs.ROOT / "solutions/01-boot/mb2.c").read_text(), skeleton)], "01")
    assert check(st, "boot: long mode").passed and check(st, "power").passed
    assert check(st, "mb2: command line").message == \
        f"expected `[boot] cmdline: seed=0x{SEED:08x} tests=all`, got `[boot] cmdline: (none)`"
    assert check(st, "mb2: boot loader name").message == \
        "expected `[boot] loader: GRUB {any}`, got `[boot] loader: (none)`"
    assert "mb2_read_mmap recorded no region" in check(st, "mb2: memory map matches").message
    assert "mb2_parse returned 0" in check(st, "mb2: tag walk").message


def test_skeleton_02_on_reference_lab_01_fails_exactly_lab_02():
    st = grade.grade_stage("02", seed=SEED, solutions_below=True)
    assert st.score == check(st, "power").points == 10     # only the clean power-off passes
    assert "serial_init returned an error" in st.runs["default"].text
    d = kprintf_values(SEED)["d"]
    assert check(st, "kprintf: %d %u %x").message == \
        f"expected `[kprintf] d={d} u={kprintf_values(SEED)['u']} x={kprintf_values(SEED)['x']}`, " \
        "got `[kprintf] d=%d u=%u x=%x`"
    assert "forbidden" not in check(st, "serial: serial_init").message
    assert "no [panic] line was printed" in check(st, "panic").message


def test_skeleton_02_alone_points_at_lab_01():
    st = grade.grade_stage("02", seed=SEED)
    assert st.score == 0 and "BELOW=solutions" in st.stopped


NULL_IDT_INT3 = ("labs/01-boot/kmain.c", "    (void)bi;\n",
                 "    (void)bi;\n    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) none = {0, 0};\n"
                 "    __asm__ volatile(\"lidt %0; int3\" : : \"m\"(none));   /* mutant */\n")


def test_mutant_null_idt_and_int3_triple_faults_with_diagnosis(mutant):
    st = mutant([NULL_IDT_INT3], "02")
    assert not st.full and "triple fault" in st.stopped
    diag = "\n".join(st.diagnoses["default"])
    assert "#BP (breakpoint, vector 3)" in diag and "#GP (general protection, vector 13)" in diag
    assert "#DF (double fault, vector 8)" in diag and "triple fault" in diag
    assert "in kmain (labs/01-boot/kmain.c:" in diag
    assert "no IDT before lab 05" in diag


def test_mutant_that_never_powers_off_times_out(mutant):
    st = mutant([("labs/01-boot/kmain.c", "    poweroff(EXIT_OK);", "    for (;;)\n        __asm__ volatile(\"cli; hlt\");   /* mutant */")],
                "02", timeouts={"progress": 2.0})
    power = check(st, "power")
    assert not power.passed and power.message.startswith("timeout: no new output for 2s")
    assert "last output: [kmain] all done" in power.details


def test_mutant_that_prints_everything_then_triple_faults(mutant):
    patch = ("labs/01-boot/power.c", "    outl(QEMU_EXIT_PORT, (uint32_t)exit_value);",
             "    struct { uint16_t l; uint64_t b; } __attribute__((packed)) none = {0, 0};\n"
             "    __asm__ volatile(\"lidt %0; int3\" : : \"m\"(none));   /* mutant */")
    st = mutant([patch], "02")
    assert "[power] off: ok" in st.runs["default"].lines
    transcript_checks = [c for c in st.checks if c.title.startswith(("kprintf", "serial"))]
    assert all(c.passed for c in transcript_checks)          # every line printed...
    power = check(st, "power")
    assert not power.passed and not st.full                   # ...and still a failure
    assert "triple fault" in power.message
    assert "triple fault" in "\n".join(st.diagnoses["default"])


def test_mutant_printing_the_transcript_text_fails_kprintf(mutant):
    # A kprintf self-test that prints the text a previous run expected (seed 1).
    v = kprintf_values(1)
    fake = (f'    con_puts("[kprintf] d={v["d"]} u={v["u"]} x={v["x"]}\\n'
            f'[kprintf] ld={v["ld"]} lu={v["lu"]} lx={v["lx"]}\\n'
            f'[kprintf] width=[{v["width"]}] zero=[{v["zero"]}] neg=[{v["neg"]}] hex=[{v["hex8"]}]\\n'
            f'[kprintf] s={v["s"]} ws=[{v["ws"]}] c={v["c"]} pct=% p={v["p"]}\\n");\n'
            '    return;   /* mutant */\n')
    patch = ("labs/02-serial/serial.c", "    uint64_t st = seed;\n", "    uint64_t st = seed;\n" + fake)
    st = mutant([patch], "02", seed=SEED)
    for title in ("kprintf: %d %u %x", "kprintf: 64-bit", "kprintf: width", "kprintf: %s"):
        c = check(st, title)
        assert not c.passed and c.message.startswith("expected `[kprintf]"), title
    assert mutant([patch], "02", seed=1).full is False        # edge line missing even at seed 1


def test_mutant_lm_enable_without_cr3_faults_in_lm_enable(mutant):
    # Paging switched on with CR3 still 0: the next fetch walks garbage tables.
    patch = ("solutions/01-boot/longmode.S", "    mov %eax, %cr3\n", "    /* mutant: CR3 never loaded */\n")
    st = mutant([patch], "01")
    diag = "\n".join(st.diagnoses["default"])
    assert "#PF (page fault, vector 14)" in diag and "in lm_enable (solutions/01-boot/longmode.S:" in diag
    assert "triple fault" in diag and "PAE and CR3 before CR0.PG" in diag
    assert "triple fault" in st.stopped


def test_compile_error_names_file_and_line(mutant):
    st = mutant([("solutions/02-serial/uart.c", "    unsigned divisor", "    unsigned divisor = oops;\n    unsigned d2")], "02")
    assert st.build_error and st.build_error.summary == "solutions/02-serial/uart.c does not compile"
    assert "solutions/02-serial/uart.c:" in st.build_error.details and "error:" in st.build_error.details
    assert all(not c.passed and c.message.startswith("build failed") for c in st.checks)


FIXED_HEAP = ("labs/03-bss-heap/heap_selftest.c", "    heap_init(&kernel_heap, __heap_start, __heap_end);",
              "    heap_init(&kernel_heap, (void *)0x2100000, (void *)(0x2100000 + HEAP_SIZE));   /* mutant */")


def test_mutant_heap_at_a_fixed_address_beyond_ram(mutant):
    # 32 MiB of RAM: 0x2100000 (33 MiB) is inside the 1 GiB identity map but is no memory at all.
    st = mutant([FIXED_HEAP], "03", memory_mb=32)
    bounds, pattern = check(st, "heap: kernel heap inside"), check(st, "heap: write/read pattern")
    assert not bounds.passed and "is not inside .bss" in bounds.details[-1]
    assert not pattern.passed and "must not appear: `[heap] READ_MISMATCH in block 0" in pattern.message
    assert any("made-up address" in h and "chapter 3" in h for h in pattern.hints)


def test_mutant_misaligned_kmalloc(mutant):
    patch = ("solutions/03-bss-heap/heap.c", "    uint64_t addr = h->next + pad;", "    uint64_t addr = h->next + pad / 2;   /* mutant */")
    st = mutant([patch], "03")
    seq = check(st, "heap: allocation sequence")
    assert not seq.passed and "must not appear: `[heap] FAIL: block 1 at" in seq.message
    assert "is not aligned to 16" in seq.message
    assert any(d.strip().startswith("WRONG") for d in seq.details)     # and the offsets are off


def test_mutant_allocator_that_wraps_on_a_huge_size(mutant):
    patch = ("solutions/03-bss-heap/heap.c", "    if (size > h->end - addr)", "    if (addr + size > h->end)   /* mutant: wraps */")
    st = mutant([patch], "03")
    edges = check(st, "heap: size 0, huge sizes")
    assert not edges.passed and "size 2^64-9 gave a block" in edges.message
    assert check(st, "heap: allocation sequence").passed


def test_challenge_bug_from_the_seeds_free_list_left_empty(mutant):
    patch = ("solutions/03-bss-heap/freelist.c", "        if (b->size - need >= FL_MIN_BLOCK) {",
             "        if (b->size - need >= FL_MIN_BLOCK * 5) {   /* mutant: only large remainders */")
    st = mutant([patch], "03")
    assert st.full                                       # the challenge is optional...
    small = check(st, "challenge: free list keeps a small remainder")
    assert not small.passed and small.bonus and "were not kept free" in small.message


def test_skeleton_04_keeps_the_boot_tables_and_says_why():
    st = grade.grade_stage("04", seed=SEED, solutions_below=True)
    assert st.runs["default"].outcome.ok                  # the skeleton boots and powers off
    cr3 = check(st, "paging: new tables built")
    assert not cr3.passed and cr3.message.endswith("pages could not be mapped (pt_map, pt_entry)`")
    assert "is not mapped (pt_map, pt_translate): keeping the boot page tables" in st.runs["default"].text
    assert "the kernel never printed `[paging] tables final" in check(st, "paging: QEMU's own view").message


def test_mutant_text_mapped_no_execute(mutant):
    patch = ("labs/04-paging/paging.c", "#define KERNEL_TEXT   (PTE_P)", "#define KERNEL_TEXT   (PTE_P | PTE_NX)   /* mutant */")
    st = mutant([patch], "04")
    diag = "\n".join(st.diagnoses["default"])
    assert "#PF (page fault, vector 14)" in diag and "I=instruction fetch" in diag and "(.text)" in diag
    assert "mapped no-execute" in diag and "triple fault" in diag


def test_mutant_identity_map_too_small(mutant):
    patch = ("labs/04-paging/paging.c", "        uint64_t a = (r->base + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1), end = r->base + r->length;",
             "        uint64_t a = (r->base + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1), end = r->base + r->length;\n"
             "        end = end > 0x400000 ? 0x400000 : end;   /* mutant: the first 4 MiB only */")
    st = mutant([patch], "04")
    diag = "\n".join(st.diagnoses["default"])
    assert "#PF (page fault, vector 14)" in diag and "beyond the kernel's identity map" in diag
    assert "must cover every usable region" in diag


def test_mutant_missing_invlpg(mutant):
    st = mutant([("solutions/04-paging/pt.c", "    invlpg(va);\n", "    /* mutant: no invlpg */\n")], "04")
    remap = check(st, "paging: map, unmap and remap")
    assert not remap.passed and "reads A: a stale TLB entry (invlpg missing?)" in remap.message


def test_mutant_writable_text_is_caught_by_qemus_view(mutant):
    patch = ("labs/04-paging/paging.c", "#define KERNEL_TEXT   (PTE_P)", "#define KERNEL_TEXT   (PTE_P | PTE_W)   /* mutant */")
    st = mutant([patch], "04")
    view = check(st, "paging: QEMU's own view")
    assert not view.passed and "QEMU says .text page" in view.message and "is rwx, not r-x" in view.message


def test_mutant_dump_that_lies_is_caught_only_by_qemus_view(mutant):
    patch = ("labs/04-paging/paging.c", "run->flags & PTE_NX ? '-' : 'x');", "'-');   /* mutant: never admits x */")
    st = mutant([patch], "04")
    failed = [c.title for c in st.checks if not c.passed]
    assert failed == ["paging: QEMU's own view matches the dump and the sections"]
    assert "differ" in check(st, "paging: QEMU's own view").message


def test_skeleton_05_names_the_gate_that_is_wrong():
    st = grade.grade_stage("05", seed=SEED, solutions_below=True)
    assert st.runs["default"].outcome.ok
    setup = check(st, "faults: IDT, TSS and fix-up table")
    assert not setup.passed and "idt_set_gate(0): the present bit is clear" in setup.message
    assert "[fault] FAIL: exceptions are not set up: no self-test" in st.runs["default"].text


def test_mutant_double_fault_without_an_ist_stack(mutant):
    patch = ("labs/05-faults/fault.c", "        idt_set_gate(v, trap_stubs[v], v == 8 ? IST_DOUBLE_FAULT : 0);",
             "        idt_set_gate(v, trap_stubs[v], 0);   /* mutant: no IST for #DF */")
    check_patch = ("labs/05-faults/fault.c", "        ok = fault_check_gate(v, trap_stubs[v], v == 8 ? IST_DOUBLE_FAULT : 0);",
                   "        ok = fault_check_gate(v, trap_stubs[v], 0);")
    st = mutant([patch, check_patch], "05")
    assert check(st, "faults: page fault writing .text").passed         # the probes still work...
    over = check(st, "faults: stack overflow")
    assert not over.passed and "triple fault" in over.message           # ...the overflow does not
    diag = "\n".join(st.diagnoses["overflow"])
    first = st.diagnoses["overflow"][0]
    assert first.startswith("#PF (page fault, vector 14)") and "(the stack guard page)" in first
    assert "then #DF (double fault, vector 8)" in diag and "then triple fault" in diag
    assert "vector 8 needs its own stack, IST1" in diag


def test_mutant_error_code_left_on_the_stack(mutant):
    # The stubs push a dummy error code for #GP and #PF too: iretq then takes the real one for RIP.
    patch = ("labs/05-faults/vectors.S", "#define HAS_ERROR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) ||",
             "#define HAS_ERROR(v) ((v) == 8 || ((v) >= 10 && (v) <= 12) ||")
    st = mutant([patch], "05")
    assert "[fault] test ud2 -> vector 6 error 0x0" in st.runs["default"].lines   # no error code: fine
    gp = check(st, "faults: general protection")
    assert not gp.passed
    diag = "\n".join(st.diagnoses["default"])
    assert "the kernel handled this fault itself and reported: [fault] #GP general protection at rip 0x0000000000000000" in diag
    assert "the trap frame was read one word off" in diag


def test_mutant_gate_without_present_bit(mutant):
    patch = ("solutions/05-faults/trap.c", "    g->type_attr = GATE_PRESENT | GATE_INTERRUPT;",
             "    g->type_attr = GATE_INTERRUPT;   /* mutant */")
    st = mutant([patch], "05")
    assert "idt_set_gate(0): the present bit is clear (type_attr 0xe" in check(st, "faults: IDT, TSS").message


def test_mutant_gate_of_the_wrong_type(mutant):
    patch = ("solutions/05-faults/trap.c", "    g->type_attr = GATE_PRESENT | GATE_INTERRUPT;",
             "    g->type_attr = GATE_PRESENT | 0x0c;   /* mutant: a call gate */")
    st = mutant([patch], "05")
    assert "the type is not a 64-bit interrupt gate" in check(st, "faults: IDT, TSS").message


def test_mutant_probe_without_its_fixup_entry(mutant):
    patch = ("labs/05-faults/probes.S", "    FIXUP(probe_read_insn, 1f)\n", "")
    st = mutant([patch], "05")
    assert "panic" in st.stopped
    diag = "\n".join(st.diagnoses["default"])
    assert "reported: [fault] #GP general protection at rip" in diag and "unexpected, powering off" in diag
    assert "had no fix-up entry" in diag


def test_skeleton_06_runs_the_interpreter_and_refuses_the_jit():
    st = grade.grade_stage("06", seed=SEED, solutions_below=True)
    assert st.runs["default"].outcome.ok
    assert check(st, "model: the interpreter is bit-exact").passed
    enc = check(st, "jit: the encoder is right")
    assert not enc.passed and "for `mov rax, [rdx+0x10]` the encoder gives `8b`, the SDM `48 8b 42 10`" in enc.message
    assert "no `[model] jit sse2: each context" in check(st, "jit: the SSE2 JIT is bit-exact").message


def test_mutant_jit_pages_left_writable(mutant):
    st = mutant([("solutions/06-jit-model/jit_seal.c", "        *e &= ~(PTE_W | PTE_NX);", "        *e &= ~PTE_NX;   /* mutant */")], "06")
    wx = check(st, "jit: W^X")
    assert not wx.passed and not check(st, "jit: the encoder is right").passed
    assert "is not r-x after jit_seal" in check(st, "jit: the encoder is right").message


def test_mutant_sse_not_enabled(mutant):
    patch = ("labs/06-jit-model/model_selftest.c", "    cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT | (xcr0 ? CR4_OSXSAVE : 0);",
             "    cr4 |= xcr0 ? CR4_OSXSAVE : 0;   /* mutant: SSE left off */")
    st = mutant([patch], "06")
    diag = "\n".join(st.diagnoses["default"])
    assert "reported: [fault] #UD invalid opcode at rip" in diag and "CR4.OSFXSR" in diag
    assert check(st, "jit: the scalar JIT is bit-exact").passed            # no SSE in the scalar path


def test_mutant_xsetbv_skipped(mutant):
    # CR4.OSXSAVE set, XCR0 left at x87 only: the first VEX instruction of the AVX2 code is #UD.
    st = mutant([("labs/06-jit-model/model_selftest.c", "        xsetbv(XCR0, xcr0);\n",
                  "        (void)0;   /* mutant: no xsetbv */\n")], "06")
    diag = "\n".join(st.diagnoses["default"])
    assert "reported: [fault] #UD invalid opcode at rip" in diag
    assert "JIT's AVX code" in diag and "xsetbv" in diag and "CR4.OSFXSR" not in diag
    assert check(st, "jit: the SSE2 JIT is bit-exact").passed              # legacy SSE needs no XCR0
    assert check(st, "jit: SSE2 fallback").passed                          # nor does the fallback
    assert not check(st, "jit: the AVX2 path").passed


def test_mutant_misaligned_sse_operand(mutant):
    st = mutant([("labs/06-jit-model/model_selftest.c", "    jm->in = jit_alloc(2 * MODEL_IN);",
                  "    jm->in = (char *)jit_alloc(2 * MODEL_IN + 16) + 8;   /* mutant */")], "06")
    diag = "\n".join(st.diagnoses["default"])
    assert "reported: [fault] #GP general protection at rip" in diag and "16-byte aligned" in diag


def test_the_jit_path_follows_cpuid_in_each_emulator():
    # QEMU -cpu max: AVX and AVX2, no VNNI, no AVX-512. Bochs 2.7's default CPU: SSE2, no XSAVE, no AVX.
    for emulator, path, facts in (("qemu", "avx2", "XSAVE yes, AVX yes, AVX2 yes, AVX-VNNI no, AVX512F no"),
                                  ("bochs", "sse2", "XSAVE no, AVX no, AVX2 no, AVX-VNNI no, AVX512F no")):
        st = grade.grade_stage("06", solutions=True, seed=SEED, emulator=emulator)
        lines = st.runs["default"].lines
        assert any(ln.startswith(f"[jit] path: {path} (CPUID: ") for ln in lines), emulator
        assert any(ln.startswith("[simd] CPUID: ") and facts in ln for ln in lines), emulator
        assert f"[model] words (jit {path}): " in st.runs["default"].text
        assert any(ln.startswith("[jit] path: sse2 (forced by tests=jit-sse2; ") for ln in st.runs["jit-sse2"].lines)
        assert st.full, [(c.title, c.message) for c in st.checks if not c.passed]


def test_mutant_rounding_changed_by_one_names_the_first_context(mutant):
    st = mutant([("labs/06-jit-model/model.c", "    int64_t v = (acc * mult + (1ll << 23)) >> 24;",
                  "    int64_t v = (acc * mult) >> 24;   /* mutant: rounds down, not to nearest */")], "06")
    interp = check(st, "model: the interpreter is bit-exact")
    assert not interp.passed and interp.message.startswith("context ") and "is the first that differs" in interp.message
    assert check(st, "jit: the SSE2 JIT is bit-exact").passed              # the JIT does not share the bug


def test_mutant_corrupt_weights_module_panics_clearly(mutant, tmp_path):
    import shutil
    st = None
    def corrupt(root):
        p = root / "labs/06-jit-model/chars.model"
        data = bytearray(p.read_bytes())
        data[5000] ^= 1
        p.write_bytes(bytes(data))
    from conftest import make_tree
    root = make_tree(tmp_path / "corrupt")
    corrupt(root)
    st = grade.grade_stage("06", solutions=True, seed=SEED, root=root)
    assert "panic" in st.stopped
    module = check(st, "model: module found and checked")
    assert not module.passed and "model: checksum mismatch: the module is corrupt" in module.message
    shutil.rmtree(root)


def test_mutant_seal_without_invlpg_is_caught_under_qemu(mutant):
    st = mutant([("solutions/06-jit-model/jit_seal.c", "        invlpg(va);\n", "        /* mutant: no invlpg */\n")], "06")
    enc = check(st, "jit: the encoder is right")
    assert not enc.passed and "still writable through the TLB after jit_seal: invlpg missing?" in enc.message
    assert st.diagnoses == {}                     # the run ended cleanly: no fault to blame


# Checks that test given code (or the clean end of the run) may pass on a skeleton.
GIVEN_CODE_CHECKS = {"power: final line and clean power-off", "model: module found and checked",
                     "model: the interpreter's logits hash", "model: the interpreter is bit-exact"}


@pytest.mark.parametrize("lab", LABS)
def test_every_check_fails_on_the_skeleton_of_its_lab(lab):
    st = grade.grade_stage(lab, seed=SEED, solutions_below=True)
    passing = {c.title for c in st.checks if c.passed}
    assert passing <= GIVEN_CODE_CHECKS, passing - GIVEN_CODE_CHECKS
    assert all(c.message for c in st.checks if not c.passed)


def test_missing_model_module_panics_clearly(mutant):
    st = mutant([("labs/06-jit-model/lab.json", '"modules": ["chars.model"]', '"modules": []')], "06")
    module = check(st, "model: module found and checked")
    assert not module.passed and "model: no Multiboot2 module `chars.model`" in module.message
