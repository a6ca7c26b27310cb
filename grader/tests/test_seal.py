"""Sealed grading, tried as a hostile student would: a submission sees only
its own files and the given ones, a replayed transcript earns nothing, and no
input crashes, hangs or floods the grader."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader import build, grade, labs, mutants, sandbox, stage
from conftest import ROOT, SEED, grade_stage

pytestmark = [pytest.mark.instructor, pytest.mark.slow]  # needs solutions/: not in a student's copy

LABS = labs.discover()
needs_sandbox = pytest.mark.skipif(
    sandbox.mode() != "bwrap",
    reason="no bubblewrap here (the user seal, which shows what every user may read, has its own tests in "
    "test_seal_user.py): "
    + (os.environ.get("KIT_NO_SANDBOX_REASON") or sandbox.why_not() if sandbox.mode() != "bwrap" else ""),
)


def submission(tmp_path, upto, name="sub"):
    """A student tree with every student file of labs 01..upto from solutions/."""
    sub = tmp_path / name
    for lab in LABS:
        if lab.number > upto:
            break
        (sub / "labs" / lab.name).mkdir(parents=True)
        for f in lab.student:
            shutil.copyfile(lab.solution_dir / f, sub / "labs" / lab.name / f)
    return sub


def grade_submission(sub, lab, seed=SEED):
    return grade_stage(lab, submission=sub, seed=seed)


def cli(*args, timeout=300, **kw):
    return subprocess.run(
        [sys.executable, "-m", "grader", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw
    )


@needs_sandbox
def test_include_of_a_kit_path_fails_with_the_compilers_error(tmp_path):
    sub = submission(tmp_path, 4)
    pt = sub / "labs/04-paging/pt.c"
    pt.write_text('#include "../../solutions/04-paging/pt.c"\n')
    st = grade_submission(sub, "04")
    assert st.build_error and st.score == 0
    assert "labs/04-paging/pt.c does not compile" in st.build_error.summary
    assert "'../../solutions/04-paging/pt.c' file not found" in st.build_error.details


@needs_sandbox
@pytest.mark.parametrize("path", ["/etc/hostname", str(ROOT / "solutions/04-paging/pt.c")])
def test_incbin_of_a_host_file_fails_with_the_compilers_error(tmp_path, path):
    sub = submission(tmp_path, 2)
    uart = sub / "labs/02-serial/uart.c"
    uart.write_text(uart.read_text() + f'\n__asm__(".section .rodata\\n.incbin \\"{path}\\"\\n.text");\n')
    st = grade_submission(sub, "02")
    assert st.build_error and "error: Could not find incbin file" in st.build_error.details
    assert Path(path).name in st.build_error.details


def test_without_a_sandbox_a_submission_is_not_built(tmp_path, monkeypatch):
    monkeypatch.delenv("KIT_SANDBOX", raising=False)
    monkeypatch.setattr(sandbox, "mode", lambda: None)
    monkeypatch.setattr(sandbox, "why_not", lambda: "bubblewrap is not installed (apt-get install bubblewrap)")
    st = grade_submission(submission(tmp_path, 1), "01")
    assert st.build_error and st.score == 0
    assert st.build_error.summary == (
        "a submission is built only in the sandbox, and there is none here: "
        "bubblewrap is not installed (apt-get install bubblewrap)"
    )


def test_symlinks_in_and_out_of_the_kit_are_refused(tmp_path):
    for target in (ROOT / "solutions/02-serial/uart.c", Path("/etc/passwd")):
        sub = submission(tmp_path, 2, name=f"sub-{target.name}")
        uart = sub / "labs/02-serial/uart.c"
        uart.unlink()
        uart.symlink_to(target)
        st = grade_submission(sub, "02")
        assert st.build_error and st.score == 0
        assert st.build_error.summary.startswith("labs/02-serial/uart.c in ") and st.build_error.summary.endswith(
            "is a symbolic link: a student file must be a regular file"
        )
        assert "root:" not in json.dumps([c.message for c in st.checks])


def test_a_folder_that_links_into_the_kit_is_refused(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "labs").symlink_to(ROOT / "solutions")  # labs/02-serial/uart.c would be the solution
    st = grade_submission(sub, "01")
    assert st.build_error and "lies outside the submission" in st.build_error.summary


def test_a_given_header_in_the_submission_is_never_used(tmp_path):
    sub = submission(tmp_path, 4)
    (sub / "labs/04-paging/paging.h").write_text('#error "a given header from the submission was compiled"\n')
    (sub / "labs/01-boot/kernel.h").write_text('#error "a given header from the submission was compiled"\n')
    st = grade_submission(sub, "04")
    assert st.build_error is None and st.full


def test_an_oversized_student_file_is_refused(tmp_path):
    sub = submission(tmp_path, 1)
    mb2 = sub / "labs/01-boot/mb2.c"
    mb2.write_text(mb2.read_text() + "/*" + "x" * (300 * 1024) + "*/\n")
    st = grade_submission(sub, "01")
    assert st.build_error and st.build_error.summary.endswith("a student file may have at most 256 KiB")


@needs_sandbox
def test_a_section_filled_on_purpose_is_stopped_by_the_size_cap(tmp_path):
    sub = submission(tmp_path, 2)
    uart = sub / "labs/02-serial/uart.c"
    uart.write_text(uart.read_text() + '\n__asm__(".section .rodata\\n.fill 300*1024*1024, 1, 0\\n.text");\n')
    t = time.monotonic()
    st = grade_submission(sub, "02")
    assert st.build_error and "does not compile" in st.build_error.summary
    assert time.monotonic() - t < 60
    assert sum(p.stat().st_size for p in (ROOT / "build").rglob("*") if p.is_file()) < 2 << 30


def replay_patch(text):
    """kmain prints a transcript verbatim, then powers off cleanly."""
    lit = text.replace("\\", "\\\\").replace('"', '\\"').replace("?", "\\?").replace("\n", "\\n")
    return (
        "labs/01-boot/kmain.c",
        "kmain(uint32_t magic, uint64_t mbi)\n{\n",
        f'kmain(uint32_t magic, uint64_t mbi)\n{{\n    con_puts("{lit}");   /* a replay */\n'
        "    poweroff(EXIT_OK);\n",
    )


@pytest.mark.parametrize("lab", [lab.name for lab in LABS])
def test_a_replayed_transcript_of_another_seed_scores_nothing(lab, tmp_path):
    other = grade_stage(lab, solutions=True, seed=0x0BADF00D)
    assert other.full
    tree = mutants.make_tree(tmp_path / "tree", [replay_patch(other.boots["default"].text)])
    st = grade.grade_stage(stage.make(lab, stage.Origin("solutions"), tree), seed=SEED)
    assert st.score == 0 and st.bonus == 0, [(c.title, c.passed) for c in st.checks]
    assert st.unproven["default"] == (
        f"this output was computed for seed 0x0badf00d, this run's seed is 0x{SEED:08x}: no point can come from it"
    )


def test_a_kernel_that_exits_mid_conversation_gets_a_report(tmp_path):
    tree = mutants.make_tree(
        tmp_path / "tree",
        [
            (
                "labs/04-paging/paging.c",
                '    kprintf("[paging] tables final, waiting for the grader\\n");\n',
                '    kprintf("[paging] tables final, waiting for the grader\\n");\n'
                "    poweroff(EXIT_OK);   /* gone */\n",
            )
        ],
    )
    for seed in range(1, 6):  # the race was lost about 1 run in 5
        r = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from grader import __main__ as m, stage, grade;"
                "st = grade.grade_stage(stage.make('04', stage.Origin('solutions'), sys.argv[1]),"
                " seed=int(sys.argv[2])); print('REPORT', st.score, st.total)",
                str(tree),
                str(seed),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert "REPORT" in r.stdout


def emulators_naming(mark):
    """Emulators (or their sandboxes) whose command line or working folder names `mark`."""
    found = []
    for d in Path("/proc").iterdir():
        try:
            args = (
                (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace") if d.name.isdigit() else ""
            )
            cwd = os.readlink(d / "cwd") if args else ""
        except OSError:
            continue
        if (mark in args or mark in cwd) and ("qemu" in args or "bochs" in args):
            found.append(f"{d.name} {args}")
    return found


def test_ctrl_c_stops_every_emulator_and_returns_at_once(tmp_path):
    mark = tmp_path / "runs"
    mark.mkdir()
    for lab in LABS:  # builds cached, so the boots are what is interrupted
        build.build(stage.make(lab.name, stage.Origin("solutions")))
    env = dict(os.environ, TMPDIR=str(mark), NO_COLOR="1")
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "grader",
            "grade",
            "--solutions",
            "--emulator",
            "both",
            "--json",
            str(tmp_path / "r.json"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not emulators_naming(str(mark)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulators_naming(str(mark)), "no emulator started"
    time.sleep(0.3)
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    took = time.monotonic() - sent
    assert took < 1, f"Ctrl-C took {took:.1f}s"  # 0.2 s here; 1.5 s when reference threads held the interpreter
    assert p.returncode == 130 and "Traceback" not in err
    assert "interrupted" in err and "Score:" in out  # the partial report
    assert json.loads((tmp_path / "r.json").read_text())["interrupted"] is True
    assert emulators_naming(str(mark)) == []
    assert list(mark.iterdir()) == []
