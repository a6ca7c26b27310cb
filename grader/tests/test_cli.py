"""The command line as users meet it: one-line errors and hints, never a
traceback, exit statuses, machine-readable reports, no emulator left behind."""
import json
import os
import shutil
import subprocess
import sys
from xml.etree import ElementTree as ET

import pytest

from grader import deps, labs

ROOT = labs.ROOT


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "grader", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, **(env or {})),
    )


def test_wrong_lab_name_is_one_line():
    r = cli("grade", "--lab", "07-nope", "--no-install")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert (
        r.stderr.strip()
        == "error: no lab called '07-nope' (labs here: " + ", ".join(lab.name for lab in labs.discover()) + ")"
    )


def test_bad_seed_is_a_usage_error():
    r = cli("grade", "--seed", "banana")
    assert r.returncode == 2 and "a seed is a number" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
@pytest.mark.instructor
def test_full_marks_exit_zero_and_reports(tmp_path):
    r = cli(
        "grade",
        "--lab",
        "01",
        "--solutions",
        "--seed",
        "0x10",
        "--json",
        str(tmp_path / "r.json"),
        "--junit",
        str(tmp_path / "r.xml"),
        "--gradescope",
        str(tmp_path / "results.json"),
        env={"NO_COLOR": "1"},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Score: 80/80" in r.stdout and "\033[" not in r.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["score"] == data["max_score"] == 80 and data["stages"][0]["seed"] == "0x00000010"
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite.get("failures") == "0" and len(suite.findall("testcase")) == len(data["stages"][0]["checks"])
    gs = json.loads((tmp_path / "results.json").read_text())
    assert gs["score"] == 80 and all(t["status"] == "passed" for t in gs["tests"])


STUB_LM_ENABLE = '    .section .text.code32, "ax"\n    .code32\n    .globl lm_enable\nlm_enable:\n    ret\n'


def test_missing_marks_exit_one_with_reproduce_line(tmp_path):
    """In a copy of the kit whose lm_enable does nothing (whatever state the
    student's own lab 01 is in)."""
    kit = tmp_path / "kit"
    for d in ("grader", "labs"):
        shutil.copytree(ROOT / d, kit / d, ignore=shutil.ignore_patterns("__pycache__", "tests", "build"))
    (kit / "labs/01-boot/longmode.S").write_text(STUB_LM_ENABLE)
    r = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "--lab", "01", "--seed", "0x10"]
        + ["--gradescope", str(tmp_path / "results.json")],
        cwd=kit,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Score: 0/80" in r.stdout and "reproduce: make grade LAB=01 SEED=0x00000010" in r.stdout
    gs = json.loads((tmp_path / "results.json").read_text())
    assert gs["score"] == 0 and "lm_enable" in json.dumps(gs)


@pytest.mark.slow
@pytest.mark.instructor
def test_submission_uses_only_student_files(tmp_path):
    sub = tmp_path / "student"
    for lab in labs.discover():
        (sub / "labs" / lab.name).mkdir(parents=True)
        for name in lab.student:
            (sub / "labs" / lab.name / name).write_text((ROOT / "solutions" / lab.name / name).read_text())
    (sub / "Makefile").write_text("all:\n\tfalse\n")  # never used
    (sub / "labs/01-boot/kmain.c").write_text("this is not C\n")  # a given file: ignored
    r = cli("grade", "--lab", "02", "--submission", str(sub), "--seed", "3")
    assert r.returncode == 0, r.stdout


def test_missing_tools_give_the_install_line(monkeypatch):
    monkeypatch.setattr(deps.shutil, "which", lambda name: None if name == "qemu-system-x86_64" else "/x")
    assert deps.missing_packages("kernel") == ["qemu-system-x86"]
    monkeypatch.setattr(deps.os, "geteuid", lambda: 1000)
    try:
        deps.ensure("kernel", install=True)
    except deps.MissingTools as e:
        assert str(e) == (
            "missing Debian packages: qemu-system-x86. Install them with: "
            "sudo apt-get install -y --no-install-recommends qemu-system-x86"
        )
    else:
        raise AssertionError("no error for a missing tool")


@pytest.mark.slow
@pytest.mark.instructor
def test_no_emulator_left_behind(tmp_path):
    # A private TMPDIR: every run directory, and so every emulator command line, names it.
    mark = tmp_path / "runs"
    mark.mkdir()
    r = cli("grade", "--lab", "02", "--solutions", "--seed", "9", "--emulator", "both", env={"TMPDIR": str(mark)})
    assert r.returncode == 0, r.stdout
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert str(mark) not in ps, ps
    assert list(mark.iterdir()) == []  # every run directory was removed


@pytest.mark.slow
@pytest.mark.instructor
def test_demo_builds_boots_shows_and_grades_the_last_stage():
    r = cli("demo", "--seed", "0x42", env={"NO_COLOR": "1"})
    last = labs.discover()[-1]
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"--- serial output of stage {last.name} (seed=0x00000042 tests=all" in r.stdout
    assert "[power] off: ok" in r.stdout and "Score: " in r.stdout and "FAIL" not in r.stdout


class FakeTerminal:
    def isatty(self):
        return True


def test_no_color_only_when_set_to_something():
    from grader import report

    tty = FakeTerminal()
    assert report.use_color(tty, {"TERM": "xterm"})
    assert report.use_color(tty, {"TERM": "xterm", "NO_COLOR": ""})  # empty: colour stays on
    assert not report.use_color(tty, {"TERM": "xterm", "NO_COLOR": "1"})
    assert not report.use_color(tty, {"TERM": "dumb"})


def test_compile_commands_at_the_root_follow_the_last_stage_built():
    for lab in ("02", "01"):
        r = cli("build", "--lab", lab, "--no-install")
        assert r.returncode == 0, r.stderr
    link = ROOT / "compile_commands.json"
    entries = json.loads(link.read_text())
    assert link.is_symlink() and os.readlink(link) == "build/stage-01/compile_commands.json"
    assert any(e["file"].endswith("labs/01-boot/kmain.c") for e in entries)
    assert not any("02-serial" in e["file"] for e in entries)


def test_make_help_lists_every_target():
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    phony = next(ln for ln in (ROOT / "Makefile").read_text().splitlines() if ln.startswith(".PHONY:"))
    listed = {ln.split()[1] for ln in out.splitlines() if ln.startswith("make ")}
    assert set(phony.split()[1:]) <= listed, out
    assert all(len(ln.split(None, 2)) == 3 for ln in out.splitlines() if ln.startswith("make ")), out


def test_make_gdb_refuses_a_stale_session():
    gdbinit = ROOT / "build" / "gdbinit"
    gdbinit.parent.mkdir(exist_ok=True)
    gdbinit.write_text(
        "# written by `make qemu-gdb` (grader process 999999999), removed when it stops\ntarget remote 127.0.0.1:1\n"
    )
    r = cli("gdb", "--no-install")
    assert r.returncode == 1 and "no QEMU is waiting for GDB" in r.stderr and "Traceback" not in r.stderr
    assert not gdbinit.exists()
