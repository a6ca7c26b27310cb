"""The JIT's encoder, checked by a real disassembler: every instruction form
the emitter supports is emitted by the Linux build of the lab 06 JIT
(labs/06-jit-model/native), wrapped into an object file with llvm-objcopy,
and disassembled by llvm-objdump; each line must be the intended instruction."""
import subprocess

import pytest

from grader import build as build_mod, labs, native


@pytest.mark.instructor
@pytest.mark.parametrize("solutions", [True])
def test_every_form_disassembles_to_the_intended_instruction(tmp_path, solutions):
    exe = native.build(solutions=solutions, outdir=tmp_path / "native")
    intended, mismatches = native.encoder_mismatches(exe, tmp_path)
    assert len(intended) > 1500
    assert not mismatches, mismatches[:5]


@pytest.mark.instructor
def test_a_wrong_encoder_is_caught(tmp_path):
    """The comparison fails on a broken encoder: disp8 used for every displacement."""
    root = tmp_path / "tree"
    for d in ("labs", "solutions"):
        subprocess.run(["cp", "-r", str(labs.ROOT / d), str(root / d)], check=False) if root.exists() else \
            (root.mkdir(), subprocess.run(["cp", "-r", str(labs.ROOT / d), str(root / d)], check=True))
    enc = root / "solutions/06-jit-model/jit_encode.c"
    enc.write_text(enc.read_text().replace("(disp >= -128 && disp <= 127) ? 1 : 2", "1"))
    exe = native.build(root=root, outdir=tmp_path / "native")
    _, mismatches = native.encoder_mismatches(exe, tmp_path)
    assert mismatches and mismatches[0][1] != mismatches[0][2]


def test_the_skeleton_encoder_is_reported_not_crashed(tmp_path):
    exe = native.build(solutions=False, outdir=tmp_path / "native")
    r = subprocess.run([str(exe), "bench", str(labs.ROOT / "labs/06-jit-model/chars.model")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "finish it first" in r.stderr
