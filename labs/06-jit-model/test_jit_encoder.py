"""The JIT's encoder, checked by a real disassembler: every instruction form
the emitter supports (legacy, VEX and EVEX) is emitted by the Linux build of
the lab 06 JIT (labs/06-jit-model/native), wrapped into an object file with
llvm-objcopy, and disassembled by llvm-objdump; each line must be the
intended instruction."""
import shutil

import pytest

from grader import labs

pytestmark = pytest.mark.slow  # a long end-to-end test: `make test` runs it, `make check` not

LAB = labs.lab_of(__file__)
native = LAB.module("native")


@pytest.mark.instructor
@pytest.mark.parametrize("solutions", [True])
def test_every_form_disassembles_to_the_intended_instruction(tmp_path, solutions):
    exe = native.build(solutions=solutions, outdir=tmp_path / "native")
    intended, mismatches = native.encoder_mismatches(exe, tmp_path)
    assert len(intended) > 20000
    assert not mismatches, mismatches[:5]
    text = "\n".join(intended)
    for form in VECTOR_FORMS:
        assert form in text, form


# Every vector instruction the wide JITs emit, as llvm-objdump spells a sample of each.
VECTOR_FORMS = [
    "vpxor ymm",
    "vpbroadcastd ymm",
    "vpmaddubsw ymm",
    "vpmaddwd ymm",
    "vpaddd ymm",
    "{vex} vpdpbusd ymm",
    "vpmaxsd ymm",
    "vpminsd ymm",
    "vpmulld ymm",
    "vpsrld ymm",
    "vextracti128 xmm",
    "vpackusdw xmm",
    "vpackuswb xmm",
    "vmovq qword ptr",
    "vmovdqu ymm",
    "vmovdqu ymmword ptr",
    "vpxord zmm",
    "vpbroadcastd zmm",
    "vpaddd zmm",
    "vpaddd xmm16",
    "vpdpbusd zmm",
    "\nvpdpbusd ymm",
    "vpmaxsd zmm",
    "vpminsd zmm",
    "vpmulld zmm",
    "vpsrld zmm",
    "vpmovdb xmmword ptr",
    "vpmovdb xmm",
    "vmovdqu32 zmmword ptr",
    "vzeroupper",
    "zmm31",
    "[r13 + 8*r13 + 4]",
]


def kit_copy(tmp_path):
    """labs/ and solutions/ copied, for a test that breaks one file."""
    root = tmp_path / "tree"
    for d in ("labs", "solutions"):
        shutil.copytree(LAB.root / d, root / d, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.instructor
def test_a_wrong_encoder_is_caught(tmp_path):
    """The comparison fails on a broken encoder: disp8 used for every displacement."""
    root = kit_copy(tmp_path)
    enc = root / "solutions" / LAB.name / "jit_encode.c"
    enc.write_text(enc.read_text().replace("(disp >= -128 && disp <= 127) ? 1 : 2", "1"))
    exe = native.build(root=root, outdir=tmp_path / "native")
    _, mismatches = native.encoder_mismatches(exe, tmp_path)
    assert mismatches and mismatches[0][1] != mismatches[0][2]


@pytest.mark.instructor
def test_an_unscaled_evex_displacement_is_caught(tmp_path):
    """EVEX's disp8 counts in vectors: emitting the byte offset itself reads elsewhere."""
    root = kit_copy(tmp_path)
    jit = root / "labs/06-jit-model/jit.c"
    old = "jit_modrm_mem(j, reg, base, index, scale, disp / n);"
    assert old in jit.read_text()
    jit.write_text(jit.read_text().replace(old, "jit_modrm_mem(j, reg, base, index, scale, disp);"))
    exe = native.build(root=root, outdir=tmp_path / "native")
    _, mismatches = native.encoder_mismatches(exe, tmp_path)
    assert mismatches and any("zmm" in want and "+ 4096]" in got for _, want, got in mismatches)


def test_a_broken_encoder_is_reported_not_crashed(tmp_path):
    """Whatever state the student's jit_encode.c is in: with jit_op_mem made to
    emit a stray byte after the REX prefix (given code, in a copy of the lab),
    the native benchmark refuses to run generated code and says why."""
    lab = tmp_path / "tree" / "labs" / LAB.name
    shutil.copytree(LAB.dir, lab, ignore=shutil.ignore_patterns("__pycache__"))
    jit = lab / "jit.c"
    old = "    jit_rex(j, w, reg, index, base);\n"
    assert old in jit.read_text()
    jit.write_text(jit.read_text().replace(old, old + "    jit_emit8(j, 0x90);   /* a stray nop */\n", 1))
    exe = native.build(root=tmp_path / "tree", solutions=False, outdir=tmp_path / "native")
    r = native.run(exe, ["bench", LAB.dir / "chars.model"])  # in the sandbox: it runs the student's code
    assert r.returncode == 1 and "finish it first (make jit-check)" in r.stderr, r.stderr
