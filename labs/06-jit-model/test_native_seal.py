"""The native JIT harness runs a student's jit_encode.c on the host itself:
it builds and runs it in the kernel build's sandbox, through every door
(`make jit-check`, `make bench-jit`, and native.build(solutions=False) as
the tests use it). A constructor in jit_encode.c runs before main(): it
tries to write a file outside its folder and to print a variable of the
caller's environment. Without the sandbox (KIT_SANDBOX=off) it does both;
under each seal this machine has, neither."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from grader import build, labs, sandbox

pytestmark = pytest.mark.slow  # each seal builds and runs the native harness

LAB = labs.lab_of(__file__)
native = LAB.module("native")
SECRET = "kit-test-secret-5eed"

CONSTRUCTOR = r"""
#include <stdio.h>
#include <stdlib.h>

__attribute__((constructor)) static void
planted(void)
{
    FILE *f = fopen("@TARGET@", "w");
    if (f) {
        fputs("written by a constructor in jit_encode.c\n", f);
        fclose(f);
    }
    printf("planted: KIT_TEST_SECRET=%s\n", getenv("KIT_TEST_SECRET") ? getenv("KIT_TEST_SECRET") : "(unset)");
    fflush(stdout);
}
"""


def seals():
    """The seals to try: each one, skipped with the reason where this machine has none."""
    return [
        pytest.param(seal, marks=pytest.mark.skipif(not sandbox.can(seal)[0], reason=f"no {seal} seal here: {why}"))
        for seal, why in (("bwrap", sandbox.can("bwrap")[1]), ("user", sandbox.can("user")[1]))
    ]


def students_copy(tmp_path, target):
    """The kit as a student has it (no solutions/), with the planted constructor."""
    tree = tmp_path / "tree"
    for d in ("labs", "grader"):
        shutil.copytree(LAB.root / d, tree / d, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    shutil.copyfile(LAB.root / "Makefile", tree / "Makefile")
    enc = tree / "labs" / LAB.name / "jit_encode.c"
    enc.write_text(enc.read_text() + CONSTRUCTOR.replace("@TARGET@", str(target)))
    return tree


def make(tree, target_name, seal, timeout=300):
    env = dict(os.environ, KIT_SANDBOX=seal, KIT_TEST_SECRET=SECRET, NO_COLOR="1")
    return subprocess.run(
        ["make", "-s", "-C", str(tree), target_name],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def planted(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    outside.chmod(0o1777)  # even a user of its own could write here, if the folder could be reached
    target = outside / "planted.txt"
    return students_copy(tmp_path, target), target


def test_without_the_sandbox_the_constructor_writes_and_reads_the_environment(planted):
    tree, target = planted
    make(tree, "jit-check", "off")
    assert target.is_file() and "written by a constructor" in target.read_text()
    r = make(tree, "bench-jit", "off")
    assert f"KIT_TEST_SECRET={SECRET}" in r.stdout


@pytest.mark.parametrize("seal", seals())
@pytest.mark.parametrize("door", ["jit-check", "bench-jit"])
def test_a_constructor_writes_nothing_through_make(planted, seal, door):
    tree, target = planted
    r = make(tree, door, seal)
    assert "Traceback" not in r.stderr
    if door == "bench-jit":  # the benchmark shows what the program prints: it ran, in an empty environment
        assert "planted: KIT_TEST_SECRET=(unset)" in r.stdout
    assert SECRET not in r.stdout + r.stderr
    assert not target.exists()
    # whatever state the student's encoder is in, the check and the benchmark say it, in their exit status too
    if door == "jit-check":
        m = re.search(r"encoder check: (\d+) of (\d+) forms disassemble as intended", r.stdout)
        assert m and (r.returncode == 0) == (m.group(1) == m.group(2)), r.stdout[-2000:]
    else:
        assert (r.returncode != 0) == ("finish it first" in r.stdout), r.stdout[-2000:]


@pytest.mark.parametrize("seal", seals())
def test_a_constructor_writes_nothing_through_the_tests_door(planted, seal, tmp_path, monkeypatch):
    tree, target = planted
    monkeypatch.setenv("KIT_SANDBOX", seal)
    monkeypatch.setenv("KIT_TEST_SECRET", SECRET)
    sandbox.forget()
    try:
        exe = native.build(root=tree, solutions=False, outdir=tmp_path / "native")
        r = native.run(exe, ["paths"])
        intended, _ = native.encoder_mismatches(exe, tmp_path / "work")  # right or not: the student's encoder ran
    finally:
        monkeypatch.undo()
        sandbox.forget()
    assert "planted: KIT_TEST_SECRET=(unset)" in r.stdout and intended
    assert not target.exists()


def test_without_any_sandbox_a_students_encoder_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("KIT_SANDBOX", raising=False)
    monkeypatch.setattr(sandbox, "mode", lambda: None)
    monkeypatch.setattr(sandbox, "why_not", lambda: "bubblewrap is not installed (apt-get install bubblewrap)")
    with pytest.raises(build.BuildError) as e:
        native.build(solutions=False, outdir=tmp_path / "native")
    assert e.value.summary == (
        "your jit_encode.c runs natively only in the sandbox, and there is none here: "
        "bubblewrap is not installed (apt-get install bubblewrap)"
    )
    assert "KIT_SANDBOX=off" in e.value.details
    assert not (tmp_path / "native").exists()
    r = subprocess.run(
        [sys.executable, str(LAB.dir / "native.py"), "check", "--labs"],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, KIT_SANDBOX="off"),
    )
    assert "Traceback" not in r.stderr and "forms disassemble as intended" in r.stdout  # off: it runs, as asked


@pytest.mark.instructor  # it needs solutions/ to be readable
def test_under_the_user_seal_a_students_encoder_is_refused_while_solutions_are_readable(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "mode", lambda: "user")
    monkeypatch.setattr(sandbox, "exposed", lambda paths: [str(p) for p in paths if "/solutions/" in str(p)][:2])
    with pytest.raises(build.BuildError) as e:
        native.build(solutions=False, outdir=tmp_path / "native")
    assert e.value.summary.startswith("the sandbox here is a user of its own (no namespaces), and it could read ")
    assert e.value.summary.endswith(": a student's jit_encode.c is not built where it could print them")
