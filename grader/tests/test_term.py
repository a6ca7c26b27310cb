"""A term, simulated: a students' copy made by `make handout` is walked
through the states a real term passes through, and at each one the
students' own commands are run as a student types them (make grade, make
qemu with BELOW=solutions, make jit-check, make bench-jit, make book, make
test). None may end in an internal error or a traceback, none may change a
tracked file (the student commits each state; `git status` must stay
clean), and each grade must give the score that state deserves.

The states, in order, each on top of the one before:
  0. the handout as given: every lab a skeleton, nothing released;
  1. lab 01 done (the reference files copied into the student's labs/);
  2. labs 01-04 released by the staff (copied into the copy's solutions/)
     and lab 05 done;
  3. every lab done.
"""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import ROOT
from grader import labs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.long,  # minutes
    pytest.mark.instructor,  # solutions/ make the "done" states
    pytest.mark.xdist_group("term"),  # one worker walks the states in order, on one copy
]

LABS = {lab.number: lab for lab in labs.discover()}
INTERNAL = re.compile(r"internal error|Traceback \(most recent call last\)")
MAKE_VARS = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES", "KIT_DEBUG", "KIT_TIMING", "KIT_HIDDEN")


def env():
    """A student's shell: no make above this one, no instructor's switches."""
    e = {k: v for k, v in os.environ.items() if k not in MAKE_VARS}
    return dict(e, NO_COLOR="1", TERM="dumb")


def git(copy, *args):
    r = subprocess.run(["git", *args], cwd=copy, capture_output=True, text=True, timeout=60, env=env())
    assert r.returncode == 0, r.stderr
    return r.stdout


def commit(copy, message):
    """The student commits the state, as they would before running anything."""
    git(copy, "add", "-A")
    git(copy, "-c", "user.name=A student", "-c", "user.email=student@course.invalid", "commit", "-q", "-m", message)


def make(copy, *words, ok=None, timeout=1800):
    """Run `make WORDS` in the copy; no internal error, no tracked file changed.
    ok: True (exit 0), False (exit non-zero) or None (either). Returns stdout + stderr."""
    r = subprocess.run(
        ["make", *words], cwd=copy, capture_output=True, text=True, timeout=timeout, env=env(), errors="replace"
    )
    out = r.stdout + r.stderr
    shown = f"make {' '.join(words)} (exit {r.returncode}):\n{out[-4000:]}"
    assert not INTERNAL.search(out), shown
    if ok is not None:
        assert (r.returncode == 0) == ok, shown
    changed = git(copy, "status", "--porcelain")
    assert changed == "", f"make {' '.join(words)} changed the student's files:\n{changed}"
    return out


def score(out, expected):
    assert f"Score: {expected}" in out, out[-3000:]


def do_lab(copy, n):
    """The student finishes lab n: their files are the reference ones."""
    lab = LABS[n]
    for name in lab.student:
        shutil.copy(lab.solution_dir / name, copy / "labs" / lab.name / name)


def release(copy, n):
    """The staff release lab n's reference code into the students' solutions/."""
    lab = LABS[n]
    (copy / "solutions" / lab.name).mkdir(parents=True, exist_ok=True)
    for name in lab.student:
        shutil.copy(lab.solution_dir / name, copy / "solutions" / lab.name / name)


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("term") / "kit"
    r = subprocess.run(
        ["make", "-s", "handout", f"OUT={out}"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env()
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (out / labs.STAFF_MARK).exists() and not (out / "solutions").exists()
    return out


def every_command(copy, lab_below, jit_done, suite):
    """What every state runs besides its grades: qemu on BELOW=solutions, the
    native JIT tools, the book, and (suite) the students' test suite: in the
    states a handout does not have, with labs released and done (the handout
    as given runs it in test_course_handout.py)."""
    out = make(copy, "qemu", f"LAB={lab_below:02d}", "BELOW=solutions", "SEED=0x1234", ok=True)
    assert "[qemu stopped: " in out
    out = make(copy, "jit-check", ok=jit_done)
    assert ("encoder check: " in out) and ("jit_encode.c from labs/ (your code)" in out)
    out = make(copy, "bench-jit", ok=jit_done)
    assert ("fastest JIT path" in out) if jit_done else ("finish it first (make jit-check)" in out), out[-2000:]
    make(copy, "book", ok=True)
    if suite:
        out = make(copy, "test", ok=True, timeout=3600)
        assert " passed" in out and " failed" not in out


def test_0_the_handout_as_given(copy):
    out = make(copy, "grade", "LAB=01", "SEED=0x1234", ok=False)
    score(out, "0/80")
    # nothing released: BELOW=solutions grades the student's own code of every lab, and says so
    out = make(copy, "grade", "LAB=02", "BELOW=solutions", "SEED=0x1234", ok=False)
    assert "(below it: lab 01 from labs/ too, none released in solutions/)" in out
    score(out, "0/95")
    out = make(copy, "demo", ok=False)
    assert "this copy of the kit has no solutions/" in out
    every_command(copy, 2, jit_done=False, suite=False)


def test_1_lab_01_done(copy):
    do_lab(copy, 1)
    commit(copy, "lab 01 done")
    score(make(copy, "grade", "LAB=01", "SEED=0x1234", ok=True), "80/80")
    out = make(copy, "grade", "LAB=02", "SEED=0x1234", ok=False)
    score(out, "0/95")
    every_command(copy, 2, jit_done=False, suite=False)


def test_2_labs_01_to_04_released_and_lab_05_done(copy):
    for n in (1, 2, 3, 4):
        release(copy, n)
    commit(copy, "the staff release labs 01-04")
    do_lab(copy, 5)
    commit(copy, "lab 05 done")
    out = make(copy, "grade", "LAB=05", "BELOW=solutions", "SEED=0x1234", ok=True)
    assert "from labs/ (your code) (labs below it from solutions/)" in out
    score(out, "105/105")
    out = make(copy, "grade", "LAB=06", "BELOW=solutions", "SEED=0x1234", ok=False)
    assert "(below it: labs 01-04 from solutions/; lab 05 from labs/, not released in solutions/)" in out
    score(out, "40/160")
    out = make(copy, "demo", ok=False)
    assert "solutions/ has none for labs 05-06" in out
    out = make(copy, "qemu", "LAB=05", "BELOW=solutions", "SEED=0x1234", ok=True)
    assert "[power] off: ok" in out and "labs 01-04 from solutions/" not in out
    assert "stage 05: student files from labs/ (your code) (labs below it from solutions/)" in out
    gdb_session_of_chapter_5(copy)
    every_command(copy, 5, jit_done=False, suite=True)


def gdb_session_of_chapter_5(copy):
    """Chapter 5's GDB walk-through on the student's trap.c over the released labs."""
    gdbinit = copy / "build" / "gdbinit"
    log = copy / "build" / "qemu-gdb.out"
    log.parent.mkdir(exist_ok=True)
    with open(log, "w") as f:
        q = subprocess.Popen(
            ["make", "qemu-gdb", "LAB=05", "BELOW=solutions", "SEED=0x1234"],
            cwd=copy,
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env(),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while not (gdbinit.is_file() and "target remote" in gdbinit.read_text()):
            assert q.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        r = subprocess.run(
            ["gdb", "-q", "-nx", "-batch", "-x", "build/gdbinit"]
            + ["-ex", "hbreak trap_handler if ((unsigned long *)$rdi)[15] == 14"]
            + ["-ex", "continue", "-ex", "continue", "-ex", "p/x *tf", "-ex", "bt"],
            cwd=copy,
            capture_output=True,
            text=True,
            timeout=300,
            env=env(),
        )
    finally:
        if q.poll() is None:
            os.killpg(q.pid, signal.SIGTERM)
            try:
                q.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(q.pid, signal.SIGKILL)
                q.wait()
    assert 'No symbol "tf"' not in r.stdout + r.stderr and "vector = 0xe" in r.stdout, r.stdout + r.stderr
    assert "in trap_common ()" in r.stdout
    assert git(copy, "status", "--porcelain") == ""


def test_3_every_lab_done(copy):
    for n in LABS:
        do_lab(copy, n)
    commit(copy, "every lab done")
    out = make(copy, "grade", "LAB=06", "SEED=0x1234", ok=True)
    score(out, "160/160")
    out = make(copy, "qemu", "LAB=06", "BELOW=solutions", "SEED=0x1234", ok=True)
    assert "[power] off: ok" in out
    every_command(copy, 6, jit_done=True, suite=True)
