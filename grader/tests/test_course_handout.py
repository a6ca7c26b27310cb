"""`make handout`: the students' repository. One commit, no solutions, no
hidden check, no instructor test or tool; its two README commands work
there, and whatever needs the solutions says so in one sentence."""
import os
import subprocess

import pytest

from grader import grade, handout, labs, stage
from conftest import ROOT

pytestmark = [pytest.mark.instructor, pytest.mark.slow]


def run(cmd, cwd, timeout=600, env=None):
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ, NO_COLOR="1", **(env or {}))
    )


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    out = tmp_path_factory.mktemp("handout") / "kit"
    r = run(["make", "-s", "handout", f"OUT={out}", "LAB=03"], ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def hidden_words():
    """What would give a hidden check away: its title, its seed family."""
    words = []
    for lab in labs.discover():
        module = lab.module("hidden.checks")
        if module is None:
            continue
        plan = grade.plan_for(stage.make(lab.name, stage.Origin("solutions")), "qemu")
        words += [c.title for c in plan.checks if c.hidden]
        words += [f"0x{module.FAMILY:08X}", f"0x{module.FAMILY:08x}"] if hasattr(module, "FAMILY") else []
    return words


def test_one_commit_no_solutions_no_hidden_check_no_instructor_test(kit):
    assert run(["git", "log", "--oneline"], kit).stdout.count("\n") == 1
    assert run(["git", "status", "--porcelain"], kit).stdout == ""
    files = [p for p in kit.rglob("*") if p.is_file() and ".git" not in p.relative_to(kit).parts]
    rel = [str(p.relative_to(kit)) for p in files]
    assert not (kit / "solutions").exists()
    assert not [r for r in rel if "/hidden/" in r or r.endswith("mutants.py") or "test_course" in r]
    assert not [
        r
        for r in rel
        if r in ("grader/handout.py", "grader/gradescope.py", "grader/batch.py", "book/91-instructors.md", ".ci/run")
    ]
    words = hidden_words()
    assert len(words) >= 4
    for p in files:
        text = p.read_text(errors="replace")
        assert "pytest.mark.instructor" not in text, p
        assert not [w for w in words if w in text], (p, [w for w in words if w in text])
    assert "@LAB@" not in (kit / ".github/workflows/grade.yml").read_text()
    assert "'03'" in (kit / ".github/workflows/grade.yml").read_text()


@pytest.mark.long  # the students' whole suite
def test_the_students_two_commands(kit):
    r = run(["make", "grade", "LAB=01"], kit)
    assert "Score: 0/80" in r.stdout and "hint:" in r.stdout and "Traceback" not in r.stdout + r.stderr
    assert r.returncode == 2 and "Error 1" in r.stderr  # the grader's 1; make says 2 for any failure
    r = run(["python3", "-m", "grader", "grade", "--lab", "01"], kit)
    assert r.returncode == 1
    r = run(["make", "test"], kit, timeout=1800)  # the students' whole suite: minutes on a loaded machine
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    # nothing the handout has is skipped for want of solutions/ (a missing browser may skip the book's check)
    assert " passed" in r.stdout and "instructor-only" not in r.stdout


def test_what_needs_the_solutions_says_so(kit):
    for cmd in (
        ["make", "demo"],
        ["make", "grade", "LAB=01", "SOLUTIONS=1"],
        ["make", "qemu", "LAB=01", "SOLUTIONS=1"],
    ):
        r = run(cmd, kit)
        assert r.returncode != 0 and "Traceback" not in r.stdout + r.stderr, cmd
        assert "this copy of the kit has no solutions/" in r.stderr, (cmd, r.stderr)
        assert "a submission must contain" not in r.stderr
    # BELOW=solutions takes what is released, here nothing: the student's own code, and the header says so
    r = run(["make", "grade", "LAB=02", "BELOW=solutions"], kit)
    assert "from labs/ (your code) (below it: lab 01 from labs/ too, none released in solutions/)" in r.stdout
    for tool in ("batch", "gradescope", "handout", "similarity", "release"):
        r = run(["python3", "-m", "grader", tool, "x"], kit)
        assert r.returncode == 2 and "is an instructor's tool" in r.stderr and "Traceback" not in r.stderr
    r = run(["make", "bench"], kit)
    assert r.returncode != 0 and "only an instructor's copy" in r.stdout + r.stderr


def test_the_book_builds_from_the_students_labs(kit):
    r = run(["make", "book"], kit)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (kit / "build/book/03-bss-heap.html").is_file()


def test_marked_tests_are_cut_out_of_a_module():
    text = (
        '"""doc"""\nimport pytest\n\n\ndef test_a():\n    pass\n\n\n@pytest.mark.instructor\n'
        '@pytest.mark.parametrize("x", [1])\ndef test_b(x):\n    pass\n\n\ndef test_c():\n    pass\n'
    )
    assert (
        handout.strip_instructor_tests(text)
        == '"""doc"""\nimport pytest\n\n\ndef test_a():\n    pass\n\n\ndef test_c():\n    pass\n'
    )
    assert handout.strip_instructor_tests("import pytest\npytestmark = pytest.mark.instructor\n") is None
    assert handout.strip_instructor_tests("import pytest\npytestmark = [pytest.mark.slow]\n") is not None


def test_below_solutions_works_once_the_staff_hand_out_a_lab(kit, tmp_path):
    """A student's stage 02 stops on their unfinished lab 01: the report sends them to the
    labs below, not to a BELOW=solutions they cannot use; with lab 01's reference code
    released into solutions/, BELOW=solutions grades lab 02 alone."""
    r = run(["make", "grade", "LAB=02"], kit)
    assert "grade those first (`make grade LAB=01` and up)" in r.stdout and "add BELOW=solutions" not in r.stdout
    released = kit / "solutions" / "01-boot"
    try:
        r = run(["make", "-s", "release", "LAB=01", f"OUT={kit}"], ROOT)  # what the staff push after lab 01
        assert r.returncode == 0 and sorted(f.name for f in released.iterdir()) == ["longmode.S", "mb2.c"], r.stderr
        r = run(["make", "grade", "LAB=02", "BELOW=solutions"], kit)
        assert "from labs/ (your code) (labs below it from solutions/)" in r.stdout, r.stdout + r.stderr
        assert "Score: 0/95" in r.stdout and "Traceback" not in r.stdout + r.stderr
        assert "the run did not end cleanly" not in r.stdout  # lab 01 is the reference: the stage runs to the end
    finally:
        for f in released.iterdir():
            f.unlink()
        released.rmdir()
        released.parent.rmdir()
