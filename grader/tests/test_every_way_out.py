"""Every temporary file goes, on every way out: Ctrl-C while grub-mkrescue
writes the ISO (once, or twice in a row) leaves nothing in TMPDIR and no
process behind. And nothing runs unbounded: a stage has an overall time
limit over its build and all its boots, and so has a batch entry."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from grader import batch, build, grade, mutants, stage
from conftest import ROOT, SEED

pytestmark = [pytest.mark.instructor, pytest.mark.slow]  # builds and boots; Ctrl-C and time limits take seconds each

HANG = (
    "labs/01-boot/kmain.c",
    "    LAB_2(serial_setup());",
    '    LAB_2(serial_setup());\n    for (;;) __asm__ volatile("cli; hlt");',
)


def processes_naming(mark):
    """(pid, command) of every process whose command line or working folder names `mark`."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                args = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if str(mark) in args or str(mark) in cwd:
                found.append((int(pid), args))
    return found


def lab01(folder):
    (folder / "labs/01-boot").mkdir(parents=True)
    for name in ("longmode.S", "mb2.c"):
        shutil.copyfile(ROOT / "solutions/01-boot" / name, folder / "labs/01-boot" / name)
    return folder


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_during_grub_mkrescue_leaves_nothing_in_tmpdir(tmp_path, presses):
    mark = tmp_path / "tmp"
    mark.mkdir()
    sub = lab01(tmp_path / "sub")  # a submission of its own: a fresh build every time
    p = subprocess.Popen(
        [sys.executable, "-m", "grader", "grade", "--lab", "01", "--submission", str(sub)],
        cwd=ROOT,
        env=dict(os.environ, TMPDIR=str(mark), NO_COLOR="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.poll() is None:
        if any("grub-mkrescue" in args for _, args in processes_naming(mark)):
            break
        time.sleep(0.005)
    assert any("grub-mkrescue" in args for _, args in processes_naming(mark)), "grub-mkrescue was never seen"
    for _ in range(presses):
        p.send_signal(signal.SIGINT)
        time.sleep(0.02)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130 and "Traceback" not in err, err
    assert "interrupted" in out + err
    time.sleep(0.2)
    assert processes_naming(mark) == []
    assert sorted(os.listdir(mark)) == []


def test_a_stage_has_an_overall_time_limit(tmp_path):
    tree = mutants.make_tree(tmp_path / "tree", [HANG])
    st = stage.make("02", stage.Origin("solutions"), tree)
    build.build(st)  # built first: the limit then falls on the boots
    t = time.monotonic()
    got = grade.grade_stage(st, seed=SEED, timeouts={"stage": 6, "progress": 60, "total": 60})
    took = time.monotonic() - t
    assert took < 15, f"{took:.1f}s"
    assert got.boots["default"].reason == "timeout" and got.score == 0
    assert "the stage's time limit (6s for the build and every boot) was reached" in got.stopped


def test_a_batch_entry_has_an_overall_time_limit(tmp_path):
    cls = tmp_path / "class"
    sub = lab01(cls / "ann")
    mb2 = sub / "labs/01-boot/mb2.c"  # the student's mb2.c hangs, interrupts off
    anchor = "mb2_parse(uint64_t mbi, struct boot_info *bi)\n{\n"
    mb2.write_text(mb2.read_text().replace(anchor, anchor + '    for (;;) __asm__ volatile("cli; hlt");\n'))
    kept = {}
    b = batch.Batch(
        "01", cls, ["ann"], SEED, "submission", 1, timeouts={"stage": 8, "progress": 60, "total": 60}, keep=kept
    )
    try:
        rows = b.run()
    finally:
        for _, folder in kept.values():
            shutil.rmtree(folder, ignore_errors=True)
    st = kept["ann"][0]
    assert rows[0]["seconds"] < 20 and rows[0]["status"] in ("did not finish", "build failed"), rows[0]
    said = st.stopped or st.build_error.summary
    assert "the stage's time limit" in said, said


def test_ctrl_c_while_watching_a_boot_says_so(tmp_path):
    """`make qemu` stopped with Ctrl-C: the last line says the run was
    stopped, not that QEMU failed, and no QEMU is left behind."""
    sub = lab01(tmp_path / "sub")
    mb2 = sub / "labs/01-boot/mb2.c"  # a kernel that never ends on its own
    anchor = "mb2_parse(uint64_t mbi, struct boot_info *bi)\n{\n"
    mb2.write_text(mb2.read_text().replace(anchor, anchor + '    for (;;) __asm__ volatile("cli; hlt");\n'))
    p = subprocess.Popen(
        [sys.executable, "-m", "grader", "qemu", "--lab", "01", "--submission", str(sub)],
        cwd=ROOT,
        env=dict(os.environ, NO_COLOR="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = p.stderr.readline()  # "booting ... Ctrl-C stops it", printed as QEMU starts
    assert first.startswith("booting "), first
    time.sleep(2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert "[qemu stopped: stopped by Ctrl-C]" in err, err
    assert "QEMU itself failed" not in err
    time.sleep(0.2)
    iso = first.split()[1]
    assert [a for _, a in processes_naming(iso) if "qemu-system" in a] == []
