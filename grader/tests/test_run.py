"""The runner against fake emulators: floods, silence, binary garbage, a final
line without exit, the total timeout, and reaping of the whole process group."""
import os
import sys
import time

from grader import emulators, run
from grader.ending import end_of_run


def fake(script):
    """A make_launch for the runner that runs `script` in Python instead of QEMU."""

    def make(tmp):
        return emulators.Launch(
            "fake",
            [sys.executable, "-c", script],
            log=os.path.join(tmp, "none.log") and __import__("pathlib").Path(tmp) / "none.log",
        )

    return make


def alive(pid):
    """True if pid runs (a zombie waiting for init to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_exit_status_and_output():
    r = run.run(fake("import sys; print('[power] off: ok'); sys.exit(33)"))
    assert (r.reason, r.status, r.lines) == ("exited", 33, ["[power] off: ok"])


def test_flood_is_capped_and_stopped():
    t = time.monotonic()
    r = run.run(fake("import sys\nwhile True: sys.stdout.write('x' * 4096)"), cap=64 * 1024)
    assert r.reason == "flood" and len(r.output) == 64 * 1024
    assert time.monotonic() - t < 10
    assert "output flood" in end_of_run(r)[0]


def test_silence_is_a_progress_timeout():
    r = run.run(
        fake("import time; print('[boot] hello', flush=True); time.sleep(60)"), progress_timeout=1.0, total_timeout=30
    )
    assert r.reason == "silent" and r.elapsed < 5
    msg, details = end_of_run(r)
    assert "no new output for 1s" in msg and details == ["last output: [boot] hello"]


def test_nothing_printed_at_all():
    r = run.run(fake("import time; time.sleep(60)"), progress_timeout=1.0)
    assert "nothing printed at all" in end_of_run(r)[0]


def test_total_timeout_while_printing():
    r = run.run(
        fake("import time\nwhile True:\n print('tick', flush=True); time.sleep(0.1)"),
        total_timeout=1.5,
        progress_timeout=1.0,
    )
    assert r.reason == "timeout" and "still running after 2s" in end_of_run(r)[0]


def test_final_line_without_exit():
    r = run.run(fake("import time; print('[power] off: ok', flush=True); time.sleep(60)"), exit_grace=0.5)
    assert r.reason == "final-line-no-exit"
    assert "did not power off" in end_of_run(r)[0]


def test_binary_garbage_is_named_not_crashing():
    r = run.run(fake("import os, sys; os.write(1, bytes(range(256)) * 8); sys.exit(33)"))
    assert r.binary_bytes > 1000
    assert "\\x00" in r.text  # shown escaped, never raw
    r.outcome = None
    assert "binary garbage" in end_of_run(r)[0]


def test_process_group_is_reaped():
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen(['sleep', '300'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(300)"
    )
    r = run.run(fake(script), progress_timeout=1.0)
    child = int(r.lines[0])
    time.sleep(0.2)
    assert not alive(child), "a grandchild of the emulator outlived the run"


def test_missing_emulator_is_a_verdict():
    r = run.run(lambda tmp: emulators.Launch("none", ["/nonexistent/qemu"], __import__("pathlib").Path(tmp) / "x"))
    assert r.reason == "start-failed" and "could not start" in r.stderr


def test_the_args_disk_is_what_grub_editenv_writes(tmp_path):
    import subprocess

    for kargs in ("seed=0x00000001 tests=all", "seed=0xffffffff tests=panic monitor=1", ""):
        real = tmp_path / "real.env"
        real.unlink(missing_ok=True)
        subprocess.run(["grub-editenv", str(real), "create"], check=True)
        subprocess.run(["grub-editenv", str(real), "set", f"kargs={kargs}"], check=True)
        assert emulators.env_block(kargs) == real.read_bytes()
        disk = emulators.make_args_disk(tmp_path, kargs)
        assert disk.read_bytes()[:1024] == real.read_bytes() and disk.stat().st_size == emulators.ARGS_DISK_BYTES


class Screen:
    """A stream that says it is a terminal (or not), keeping what is written."""

    def __init__(self, tty):
        self.tty, self.text = tty, ""

    def isatty(self):
        return self.tty

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_a_silent_boot_counts_down_on_a_terminal_only(monkeypatch):
    """One line as a boot starts and as it ends, and while it is silent the
    seconds left before the progress timeout; nothing at all in a pipe."""
    from types import SimpleNamespace

    from grader import report
    from grader.stage import Run

    monkeypatch.delenv("TERM", raising=False)
    st, r = SimpleNamespace(top=SimpleNamespace(name="03-bss-heap")), Run(0x1234, emulator="qemu")
    shown = {}
    for tty in (True, False):
        screen = Screen(tty)
        progress = report.Progress(1, Screen(tty), screen)
        progress.boot_started(st, "default", r)
        result = run.run(
            fake("import time; print('[boot] hello', flush=True); time.sleep(60)"),
            progress_timeout=3.0,
            on_tick=lambda silent: progress.quiet(st, "default", r, silent, 3.0),
        )
        progress.boot_ended(st, "default", r, result)
        progress.close()
        shown[tty] = screen.text
    assert shown[False] == ""
    text = shown[True]
    assert "stage 03-bss-heap qemu, default boot: started (`seed=0x00001234 tests=all`, 192 MiB)\n" in text
    assert "default boot of 03-bss-heap silent for 1s, stopped in 2s unless it prints" in text
    assert "default boot of 03-bss-heap silent for 2s, stopped in 1s unless it prints" in text
    assert "default boot: ended, timeout: no new output for 3s" in text
