"""Lab 06's deliberate breaks (grader/mutants.py runs them)."""
from grader.mutants import check_of, diagnosis_text, mutant

# Checks of given code: a skeleton of this lab may pass them.
GIVEN_CODE_CHECKS = {"model: module found and checked", "model: the interpreter's logits hash",
                     "model: the interpreter is bit-exact"}


@mutant("06", skeleton=True, below=True)
def skeleton_runs_the_interpreter_and_refuses_the_jit(st):
    assert st.boots["default"].outcome.ok
    assert check_of(st, "model: the interpreter is bit-exact").passed
    enc = check_of(st, "jit: the encoder is right")
    assert not enc.passed and "for `mov rax, [rdx+0x10]` the encoder gives `8b`, the SDM `48 8b 42 10`" in enc.message
    assert "no `[model] jit sse2: each context" in check_of(st, "jit: the SSE2 JIT is bit-exact").message


@mutant("06", patches=[("solutions/06-jit-model/jit_seal.c", "        *e &= ~(PTE_W | PTE_NX);", "        *e &= ~PTE_NX;   /* mutant */")])
def jit_pages_left_writable(st):
    assert not check_of(st, "jit: W^X").passed and not check_of(st, "jit: the encoder is right").passed
    assert "is not r-x after jit_seal" in check_of(st, "jit: the encoder is right").message


@mutant("06", patches=[("labs/06-jit-model/model_selftest.c",
                        "    cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT | (xcr0 ? CR4_OSXSAVE : 0);",
                        "    cr4 |= xcr0 ? CR4_OSXSAVE : 0;   /* mutant: SSE left off */")])
def sse_not_enabled(st):
    diag = diagnosis_text(st)
    assert "reported: [fault] #UD invalid opcode at rip" in diag
    assert "an invalid-opcode fault in the JIT's code, at an SSE instruction: SSE is off until" in diag
    assert check_of(st, "jit: the scalar JIT is bit-exact").passed            # no SSE in the scalar path


@mutant("06", patches=[("labs/06-jit-model/model_selftest.c", "    jm->in = jit_alloc(2 * MODEL_IN);",
                        "    jm->in = (char *)jit_alloc(2 * MODEL_IN + 16) + 8;   /* mutant */")])
def misaligned_sse_operand(st):
    diag = diagnosis_text(st)
    assert "reported: [fault] #GP general protection at rip" in diag and "16-byte aligned" in diag


@mutant("06", patches=[("labs/06-jit-model/model_selftest.c", "        xsetbv(XCR0, xcr0);\n",
                        "        (void)0;   /* mutant: no xsetbv */\n")])
def xsetbv_skipped(st):
    # CR4.OSXSAVE set, XCR0 left at x87 only: the first VEX instruction of the AVX2 code is #UD.
    diag = diagnosis_text(st)
    assert "reported: [fault] #UD invalid opcode at rip" in diag
    assert "an invalid-opcode fault in the JIT's AVX code, at a VEX or EVEX instruction" in diag
    assert "xsetbv" in diag and "CR4.OSFXSR" not in diag
    assert check_of(st, "jit: the SSE2 JIT is bit-exact").passed              # legacy SSE needs no XCR0
    assert check_of(st, "jit: SSE2 fallback").passed                          # nor does the fallback
    assert not check_of(st, "jit: the AVX2 path").passed


@mutant("06", also=[{"emulator": "bochs"}])
def the_jit_path_follows_cpuid_in_each_emulator(under_qemu, under_bochs):
    # QEMU -cpu max: AVX and AVX2, no VNNI, no AVX-512. Bochs 2.7's default CPU: SSE2, no XSAVE, no AVX.
    for st, path, facts in ((under_qemu, "avx2", "XSAVE yes, AVX yes, AVX2 yes, AVX-VNNI no, AVX512F no"),
                            (under_bochs, "sse2", "XSAVE no, AVX no, AVX2 no, AVX-VNNI no, AVX512F no")):
        lines = st.boots["default"].lines
        assert any(ln.startswith(f"[jit] path: {path} (CPUID: ") for ln in lines), st.emulator
        assert any(ln.startswith("[simd] CPUID: ") and facts in ln for ln in lines), st.emulator
        assert f"[model] words (jit {path}): " in st.boots["default"].text
        assert any(ln.startswith("[jit] path: sse2 (forced by tests=jit-sse2; ")
                   for ln in st.boots["jit-sse2"].lines)
        assert st.full, [(c.title, c.message) for c in st.checks if not c.passed]


@mutant("06", patches=[("labs/06-jit-model/model.c", "    int64_t v = (acc * mult + (1ll << 23)) >> 24;",
                        "    int64_t v = (acc * mult) >> 24;   /* mutant: rounds down, not to nearest */")])
def rounding_changed_by_one_names_the_first_context(st):
    interp = check_of(st, "model: the interpreter is bit-exact")
    assert not interp.passed and interp.message.startswith("context ") and "is the first that differs" in interp.message
    assert check_of(st, "jit: the SSE2 JIT is bit-exact").passed              # the JIT does not share the bug


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


@mutant("06", patches=[("solutions/06-jit-model/jit_seal.c", "        invlpg(va);\n", "        /* mutant: no invlpg */\n")])
def seal_without_invlpg_is_caught_under_qemu(st):
    enc = check_of(st, "jit: the encoder is right")
    assert not enc.passed and "still writable through the TLB after jit_seal: invlpg missing?" in enc.message
    assert st.diagnoses == {}                     # the run ended cleanly: no fault to blame


@mutant("06", patches=[("labs/06-jit-model/lab.json", '"modules": ["chars.model"]', '"modules": []')])
def missing_model_module_panics_clearly(st):
    module = check_of(st, "model: module found and checked")
    assert not module.passed and "model: no Multiboot2 module `chars.model`" in module.message


@mutant("06", patches=[("solutions/06-jit-model/jit_encode.c", "(disp >= -128 && disp <= 127) ? 1 : 2",
                        "(disp >= -128 && disp <= 255) ? 1 : 2")])
def disp8_up_to_255_points_at_the_generated_code(st):
    # "fits in a byte": a displacement of 128..255 is then read back as negative
    assert check_of(st, "model: the interpreter is bit-exact").passed
    sse2 = check_of(st, "jit: the SSE2 JIT is bit-exact")
    assert not sse2.passed and "the interpreter agrees with the reference, so the difference is in the code" in sse2.message
