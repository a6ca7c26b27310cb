"""Bochs's tigerlake model has AVX-512 VNNI (no emulator here offers it
otherwise): the kernel enables opmask, ZMM_Hi256 and Hi16_ZMM in XCR0
(0xe7), and its zmm code, one context a call and batched, matches the
reference bit for bit."""
import pytest

from grader import build, emulators, labs, run, stage


pytestmark = [pytest.mark.instructor, pytest.mark.slow]  # it needs solutions/

LAB = labs.lab_of(__file__)
SEED = 0x5EED1234


def test_a_tigerlake_cpu_runs_the_avx512_vnni_jit_bit_exactly():
    b = build.build(stage.make(LAB.name, stage.Origin("solutions")))
    r0 = stage.Run(SEED, emulator="bochs")
    r = run.run(
        lambda tmp: emulators.bochs(
            b.iso, tmp, r0.cmdline, memory_mb=r0.memory_mb, exits=b.stage.exit_values(), cpu_model="tigerlake"
        ),
        total_timeout=120,
        progress_timeout=60,
    )
    assert "[power] off: ok" in r.lines, r.last_lines(5)
    assert "[jit] path: avx512-vnni (CPUID: AVX2 yes, AVX-VNNI no, AVX-512 VNNI yes)" in r.lines
    assert any(ln.startswith("[simd] enabled: ") and "CR4.OSXSAVE, XCR0 = 0xe7" in ln for ln in r.lines)
    checks = LAB.module("checks")
    want = " ".join(f"{h:x}" for h in checks.model_expected(SEED, LAB)["_each"])
    assert f"[model] jit avx512-vnni: each context: {want}" in r.lines
    assert f"[model] jit avx512-vnni-batch6: each context: {want}" in r.lines
    held = checks.model_file(SEED, LAB)
    assert (
        f"[model] held-out (jit avx512-vnni-batch6): {held['total']} positions in {-(-held['total'] // 6)} calls "
        f"of up to 6, logits hash 0x{held['_heldout_hash']:x}" in r.lines
    )
