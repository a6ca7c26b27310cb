"""Lab 06's deliberate breaks (grader/mutants.py runs them)."""
from grader.mutants import check_of, diagnosis_text, earned_without_work, forger, mutant, skeleton

# Checks of given code: a skeleton of this lab may pass them.
GIVEN_CODE_CHECKS = {
    "model: module found and checked",
    "model: the interpreter's logits hash",
    "model: the interpreter is bit-exact",
}


@mutant("06", skeleton=True, below=True)
def skeleton_runs_the_interpreter_and_refuses_the_jit(st):
    assert st.boots["default"].outcome.ok
    assert check_of(st, "model: the interpreter is bit-exact").passed
    enc = check_of(st, "jit: the encoder is right")
    assert not enc.passed and "for `mov rax, [rdx+0x10]` the encoder gives `8b`, the SDM `48 8b 42 10`" in enc.message
    assert "no `[model] jit sse2: each context" in check_of(st, "jit: the SSE2 JIT is bit-exact").message


@mutant(
    "06",
    patches=[
        (
            "solutions/06-jit-model/jit_seal.c",
            "        *e &= ~(PTE_W | PTE_NX);",
            "        *e &= ~PTE_NX;   /* mutant */",
        )
    ],
    seeds=2,
)
def jit_pages_left_writable(st):
    assert not check_of(st, "jit: W^X").passed and not check_of(st, "jit: the encoder is right").passed
    c = check_of(st, "jit: the encoder is right")
    assert c.message.count(" writable and page ") == 1 and " writable: clear both PTE_W and PTE_NX" in c.message


@mutant(
    "06",
    patches=[
        (
            "labs/06-jit-model/model_jit.c",
            "    cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT | (xcr0 ? CR4_OSXSAVE : 0);",
            "    cr4 |= xcr0 ? CR4_OSXSAVE : 0;   /* mutant: SSE left off */",
        )
    ],
)
def sse_not_enabled(st):
    diag = diagnosis_text(st)
    assert "reported: [fault] #UD invalid opcode at rip" in diag
    assert "an invalid-opcode fault in the JIT's code, at an SSE instruction: SSE is off until" in diag
    assert check_of(st, "jit: the scalar JIT is bit-exact").passed  # no SSE in the scalar path


@mutant(
    "06",
    patches=[
        (
            "labs/06-jit-model/model_jit.c",
            "    jm->in = jit_alloc(2 * MODEL_IN);",
            "    jm->in = (char *)jit_alloc(2 * MODEL_IN + 16) + 8;   /* mutant */",
        )
    ],
)
def misaligned_sse_operand(st):
    diag = diagnosis_text(st)
    assert "reported: [fault] #GP general protection at rip" in diag and "16-byte aligned" in diag


@mutant(
    "06",
    patches=[
        (
            "labs/06-jit-model/model_jit.c",
            "        xsetbv(XCR0, xcr0);\n",
            "        (void)0;   /* mutant: no xsetbv */\n",
        )
    ],
)
def xsetbv_skipped(st):
    # CR4.OSXSAVE set, XCR0 left at x87 only: the first VEX instruction of the AVX2 code is #UD.
    diag = diagnosis_text(st)
    assert "reported: [fault] #UD invalid opcode at rip" in diag
    assert "an invalid-opcode fault in the JIT's AVX code, at a VEX or EVEX instruction" in diag
    assert "xsetbv" in diag and "CR4.OSFXSR" not in diag
    assert check_of(st, "jit: the SSE2 JIT is bit-exact").passed  # legacy SSE needs no XCR0
    assert check_of(st, "jit: SSE2 fallback").passed  # nor does the fallback
    assert not check_of(st, "jit: the widest path").passed


@mutant("06", also=[{"emulator": "bochs"}])
def the_jit_path_follows_cpuid_in_each_emulator(under_qemu, under_bochs):
    # QEMU -cpu max: AVX and AVX2, no VNNI, no AVX-512. Bochs 2.7's default CPU: SSE2, no XSAVE, no AVX.
    for st, path, facts in (
        (under_qemu, "avx2", "XSAVE yes, AVX yes, AVX2 yes, AVX-VNNI no, AVX512F no"),
        (under_bochs, "sse2", "XSAVE no, AVX no, AVX2 no, AVX-VNNI no, AVX512F no"),
    ):
        lines = st.boots["default"].lines
        assert any(ln.startswith(f"[jit] path: {path} (CPUID: ") for ln in lines), st.emulator
        assert any(ln.startswith("[simd] CPUID: ") and facts in ln for ln in lines), st.emulator
        assert f"[model] words (jit {path}): " in st.boots["default"].text
        assert any(ln.startswith("[jit] path: sse2 (forced by tests=jit-sse2; ") for ln in st.boots["jit-sse2"].lines)
        assert st.full, [(c.title, c.message) for c in st.checks if not c.passed]
    # QEMU's AVX2 has a batched form; Bochs's SSE2 has none, and the report says so on a passing check
    assert (
        "[model] held-out (jit avx2-batch4): 439 positions in 110 calls of up to 4" in under_qemu.boots["default"].text
    )
    assert check_of(under_qemu, "jit: the batched forward pass").note == ""
    note = check_of(under_bochs, "jit: the batched forward pass").note
    assert "sse2, the path this CPU offers, has no batched form: the held-out positions ran one at a time" in note


@mutant(
    "06",
    patches=[
        (
            "labs/06-jit-model/model.c",
            "    int64_t v = (acc * mult + (1ll << 23)) >> 24;",
            "    int64_t v = (acc * mult) >> 24;   /* mutant: rounds down, not to nearest */",
        )
    ],
)
def rounding_changed_by_one_names_the_first_context(st):
    interp = check_of(st, "model: the interpreter is bit-exact")
    assert not interp.passed and interp.message.startswith("context ") and "is the first that differs" in interp.message
    assert check_of(st, "jit: the SSE2 JIT is bit-exact").passed  # the JIT does not share the bug


def corrupt_weights(root):
    p = root / "labs/06-jit-model/chars.model"
    data = bytearray(p.read_bytes())
    data[5000] ^= 1
    p.write_bytes(bytes(data))


@mutant("06", patches=[corrupt_weights])
def corrupt_weights_module_panics_clearly(st):
    assert "panic" in st.stopped
    module = check_of(st, "model: module found and checked")
    assert not module.passed and "model: checksum mismatch: the module is corrupt" in module.message


@mutant(
    "06",
    patches=[("solutions/06-jit-model/jit_seal.c", "        invlpg(va);\n", "        /* mutant: no invlpg */\n")],
    seeds=2,
)
def seal_without_invlpg_is_caught_under_qemu(st):
    enc = check_of(st, "jit: the encoder is right")
    assert not enc.passed and "still writable through the TLB after jit_seal: invlpg missing?" in enc.message
    assert st.diagnoses == {}  # the run ended cleanly: no fault to blame


@mutant(
    "06",
    patches=[("solutions/06-jit-model/jit_seal.c", "        invlpg(va);\n", "        /* mutant: no invlpg */\n")],
    emulator="bochs",
    seeds=1,
)
def seal_without_invlpg_is_caught_under_bochs(st):
    # Bochs has no monitor for the grader: the kernel's own probe (a write through the TLB) tells.
    seal_without_invlpg_is_caught_under_qemu(st)


@mutant("06", patches=[("labs/06-jit-model/lab.json", '"modules": ["chars.model"]', '"modules": []')])
def missing_model_module_panics_clearly(st):
    module = check_of(st, "model: module found and checked")
    assert not module.passed and "model: no Multiboot2 module `chars.model`" in module.message


@mutant(
    "06",
    patches=[
        (
            "labs/06-jit-model/jit.c",
            "    jit_mov_imm64(j, R9, 1ull << 23);",
            "    jit_mov_imm64(j, R9, 0);   /* mutant: the JIT rounds down */",
        )
    ],
)
def a_jit_only_difference_points_at_the_generated_code(st):
    # the encoder passes its table, the interpreter is right, the generated code is not
    assert check_of(st, "jit: the encoder is right").passed
    assert check_of(st, "model: the interpreter is bit-exact").passed
    sse2 = check_of(st, "jit: the SSE2 JIT is bit-exact")
    assert (
        not sse2.passed
        and "the interpreter agrees with the reference, so the difference is in the code" in sse2.message
    )


# Classic mistakes in jit_rex and jit_modrm_mem (jit_encode.c) and jit_seal
# (jit_seal.c). jit_encoder_ok compares the encoder with fixed bytes from the
# SDM, and jit_build reads the sealed pages back and probes them: what catches
# these is the same on every seed.
E = "solutions/06-jit-model/jit_encode.c"
S = "solutions/06-jit-model/jit_seal.c"
ONE = {"seeds": 2}


def encoder_fails(st, text, got, sdm):
    c = check_of(st, "jit: the encoder is right")
    want = f"for `{text}` the encoder gives `{got}`, the SDM `{sdm}`"
    assert not c.passed and want in c.message, c.message


@mutant(
    "06", patches=[(E, "x = index > 0 && (index & 8)", "x = (index >> 3) & 1   /* mutant: JIT_NOREG is -1 */")], **ONE
)
def rex_x_from_jit_noreg(st):
    encoder_fails(st, "mov rax, [rdx+0x10]", "4a 8b 42 10", "48 8b 42 10")


@mutant(
    "06",
    patches=[(E, "(r ? 4 : 0) | (x ? 2 : 0) | (b ? 1 : 0)", "(b ? 4 : 0) | (x ? 2 : 0) | (r ? 1 : 0)   /* mutant */")],
    **ONE,
)
def rex_r_and_b_swapped(st):
    encoder_fails(st, "mov ecx, [r13]", "44 8b 4d 00", "41 8b 4d 00")


@mutant("06", patches=[(E, "    if (w || r || x || b)\n", "    /* mutant: a REX prefix always */\n")], **ONE)
def rex_prefix_always(st):
    encoder_fails(st, "movdqa xmm1, [rdx+0x200]", "66 40 0f 6f 8a 00 02 00 00", "66 0f 6f 8a 00 02 00 00")


@mutant("06", patches=[(E, "(w ? 8 : 0)", "0   /* mutant: W never set */")], **ONE)
def rex_w_never_set(st):
    encoder_fails(st, "mov rax, [rdx+0x10]", "40 8b 42 10", "48 8b 42 10")


@mutant(
    "06",
    patches=[
        (
            E,
            "    int mod = (disp == 0 && (base & 7) != 5) ? 0",
            "    int mod = (disp == 0) ? 0   /* mutant: RBP, R13 */",
        )
    ],
    **ONE,
)
def mod_00_with_rbp_or_r13_as_base(st):
    encoder_fails(st, "mov ecx, [r13]", "41 8b 0d", "41 8b 4d 00")


@mutant(
    "06",
    patches=[
        (
            E,
            "    if (index != JIT_NOREG || (base & 7) == 4) {",
            "    if (index != JIT_NOREG) {   /* mutant: RSP, R12 */",
        )
    ],
    **ONE,
)
def no_sib_for_rsp_or_r12_as_base(st):
    encoder_fails(st, "mov r9, [r12]", "4d 8b 0c", "4d 8b 0c 24")


@mutant(
    "06",
    patches=[
        (
            E,
            "    int ss = scale == 8 ? 3 : scale == 4 ? 2 : scale == 2 ? 1 : 0;",
            "    int ss = scale >> 1;   /* mutant: not a logarithm */",
        )
    ],
    **ONE,
)
def scale_bits_not_a_logarithm(st):
    encoder_fails(st, "mov rax, [rbx+r14*8-8]", "4a 8b 44 33 f8", "4a 8b 44 f3 f8")


@mutant(
    "06",
    patches=[
        (
            E,
            "    int idx = index == JIT_NOREG ? 4 : index & 7;",
            "    int idx = index & 7;   /* mutant: JIT_NOREG is 7 */",
        )
    ],
    **ONE,
)
def sib_index_of_jit_noreg(st):
    encoder_fails(st, "mov r9, [r12]", "4d 8b 0c 3c", "4d 8b 0c 24")


@mutant(
    "06", patches=[(E, "    if (base == JIT_NOREG) {", "    if (0) {   /* mutant: no base, as any other */")], **ONE
)
def no_base_not_special(st):
    c = check_of(st, "jit: the encoder is right")
    assert not c.passed and "for `mov eax, [rcx*4+0x1000]` the encoder gives" in c.message, c.message


@mutant("06", patches=[(S, "        *e &= ~(PTE_W | PTE_NX);", "        *e &= ~PTE_W;   /* mutant: NX kept */")], **ONE)
def jit_pages_left_no_execute(st):
    c = check_of(st, "jit: the encoder is right")
    assert not c.passed and " no-execute and page " in c.message and " no-execute: clear both PTE_W" in c.message


# Mistakes that the encoder's table of SDM bytes (displacements of 0x7f, 0x80,
# -0x80, -0x1000, an r8 register) and jit_seal_ok (a range across two pages, an
# address with no table) catch in model_selftest.c (jit_encoder_ok, jit_seal_ok).


@mutant("06", patches=[(E, "int r = reg > 0 && (reg & 8)", "int r = reg > 8   /* mutant: R8 forgotten */")], **ONE)
def rex_r_misses_r8(st):
    # needs `mov r8, [rax]` (4c 8b 00) in jit_encoder_ok
    encoder_fails(st, "mov r8, [rax]", "48 8b 00", "4c 8b 00")


@mutant(
    "06",
    patches=[(E, "(disp >= -128 && disp <= 127) ? 1 : 2", "(disp >= -128 && disp <= 255) ? 1 : 2   /* mutant */")],
    **ONE,
)
def disp8_up_to_255(st):
    # needs `mov rax, [rdx+0x80]` (48 8b 82 80 00 00 00) in jit_encoder_ok
    encoder_fails(st, "mov rax, [rdx+0x80]", "48 8b 42 80", "48 8b 82 80 00 00 00")


@mutant(
    "06",
    patches=[(E, "(disp >= -128 && disp <= 127) ? 1 : 2", "(disp > -128 && disp <= 127) ? 1 : 2   /* mutant */")],
    **ONE,
)
def disp8_stops_at_minus_127(st):
    # needs `mov rax, [rdx-0x80]` (48 8b 42 80) in jit_encoder_ok
    encoder_fails(st, "mov rax, [rdx-0x80]", "48 8b 82 80 ff ff ff", "48 8b 42 80")


@mutant(
    "06",
    patches=[(E, "(disp >= -128 && disp <= 127) ? 1 : 2", "(disp <= 127) ? 1 : 2   /* mutant: no lower bound */")],
    **ONE,
)
def disp8_for_every_negative_displacement(st):
    # needs `mov rax, [rdx-0x1000]` (48 8b 82 00 f0 ff ff) in jit_encoder_ok
    encoder_fails(st, "mov rax, [rdx-0x1000]", "48 8b 42 00", "48 8b 82 00 f0 ff ff")


@mutant(
    "06",
    patches=[
        (
            S,
            "    uint64_t start = (uint64_t)code & ~(uint64_t)(PAGE_SIZE - 1);",
            "    uint64_t start = (uint64_t)code;   /* mutant: not rounded down */",
        )
    ],
    **ONE,
)
def jit_seal_start_not_rounded_down(st):
    # needs jit_seal(page + PAGE_SIZE - 16, 32) over two fresh pages, both read back r-x: stepping from
    # the unaligned start itself seals the first page and leaves the last one out
    c = check_of(st, "jit: the encoder is right")
    assert not c.passed and "r-x and page 0x" in c.message and "writable and no-execute, as before" in c.message
    assert "the last page was left out: step a page at a time from the start rounded down" in c.message, c.message


@mutant(
    "06",
    patches=[(S, "va += PAGE_SIZE)", "va += 0)   /* mutant: never moves on */")],
    boots=["default"],
    timeouts={"progress": 4.0},
)
def a_hang_after_the_fault_self_test_names_no_recovered_fault(st):
    # lab 05's probes fault on purpose and are recovered long before jit_seal spins: the hang's
    # report names where the CPU spins, not the last (recovered) exception of the log
    diag = diagnosis_text(st)
    assert "the kernel was still running in " in diag and "jit_seal" + " (" in diag + st.stopped, diag
    assert "probe_" not in diag and "#PF" not in diag and "chapter 4" not in diag, diag


@mutant("06", patches=[(S, "        *e &= ~(PTE_W | PTE_NX);\n", "")], **ONE)
def jit_seal_that_changes_no_bit_is_told_so(st):
    c = check_of(st, "jit: the encoder is right")
    assert not c.passed and "it changed no bit of either entry: clear PTE_W and PTE_NX" in c.message, c.message
    assert "rounded down" not in c.message


@mutant(
    "06",
    patches=[
        (
            S,
            "        if (e == NULL || !(*e & PTE_P))\n            return -1;\n",
            "        if (!(*e & PTE_P))   /* mutant: NULL not checked */\n            return -1;\n",
        )
    ],
    **ONE,
)
def jit_seal_without_its_null_check(st):
    # needs jit_seal of an address with no page table (0x00007e8000000000) to return -1
    assert not st.full and "cr2 0x0000000000000000 (not mapped): unexpected, powering off" in diagnosis_text(st)


# A forger (issue 20): the JIT's skeleton, and the lab's whole transcript
# printed: the hashes, the held-out count and the words are the given
# interpreter's too, the code sizes and addresses made up or replayed.
@mutant("06", patches=[skeleton("06-jit-model/jit_seal.c"), forger("06-jit-model/jit_encode.c", "06")])
def forger_printing_the_whole_transcript_earns_only_the_given_code(st):
    given = GIVEN_CODE_CHECKS | {"power: final line and clean power-off"}  # the skeleton's score, 40
    assert earned_without_work(st, given) == [], earned_without_work(st, given)
    assert "logits of context 0" in check_of(st, "jit: the scalar JIT is bit-exact").message


# The batched code (given, jit_wide.c): B contexts a call, each a stride
# apart. The one-context JIT of the same path agrees with the reference, so
# the check points at the batch.
W = "labs/06-jit-model/jit_wide.c"


def batch_fails_at(st, context):
    c = check_of(st, "jit: the batched forward pass is bit-exact")
    assert not c.passed and c.message.startswith(f"context {context} ("), c.message
    assert "`jit avx2` (the same path, one context a call) agrees with the reference" in c.message, c.message
    assert "is in the batched code" in c.message
    assert check_of(st, "jit: the widest path QEMU's CPU offers is bit-exact").passed


@mutant(
    "06",
    patches=[
        (
            W,
            "RDI, JIT_NOREG, 1, c * in_stride + 4 * s);",
            "RDI, JIT_NOREG, 1, (c ? c - 1 : 0) * in_stride + 4 * s);   /* mutant: the previous context's inputs */",
        )
    ],
)
def batch_loads_the_wrong_contexts_inputs(st):
    batch_fails_at(st, 1)


@mutant(
    "06",
    patches=[
        (
            W,
            "c * out_stride + (l->mult ? 1 : 4) * wd->lanes * r,",
            "c * (out_stride ? in_stride : 0) + (l->mult ? 1 : 4) * wd->lanes * r,   /* mutant: the input's stride */",
        )
    ],
)
def batch_writes_its_outputs_at_the_wrong_stride(st):
    # layer 1 of AVX2 reads 192-byte rows (96 int16) and writes 256-byte ones: context 0 is right, 1 is not
    batch_fails_at(st, 1)


@mutant(
    "06",
    patches=[
        (
            "labs/06-jit-model/jit.c",
            "    return kind >= JIT_AVX2 ? jit_wide_batch(kind) : 0;",
            "    return kind < 0;   /* mutant: no batched form anywhere */",
        )
    ],
)
def avx2_claimed_to_have_no_batched_form(st):
    c = check_of(st, "jit: the batched forward pass is bit-exact")
    assert not c.passed and "avx2 has a batched form, but the held-out positions ran on `jit avx2`" in c.message
    assert check_of(st, "model: held-out top-1 count").passed  # the one-context run counts the same
