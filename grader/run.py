"""Running an emulator: start it in a fresh temporary directory, stream its
serial output, stop on the final line, on silence (progress timeout) or after
the total timeout, cap the output, and always reap its whole process group.
"""
import os
import re
import select
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FINAL_LINE = re.compile(rb"^\[power\] off: .*$", re.M)
PRINTABLE = set(range(0x20, 0x7f)) | {0x0a, 0x0d, 0x09}


@dataclass
class RunResult:
    reason: str                 # exited, final-line-no-exit, silent, timeout, flood, start-failed
    status: int = None          # the emulator's exit status, if it exited
    output: bytes = b""
    log: str = ""               # the emulator's own log (-D), possibly trimmed
    stderr: str = ""
    elapsed: float = 0.0
    limits: dict = field(default_factory=dict)
    emulator: str = "qemu"
    launch: object = None
    outcome: object = None      # emulators.Outcome, once the run is over
    extra: dict = field(default_factory=dict)   # what on_line hooks gathered (the QEMU monitor's view)

    @property
    def text(self):
        return render(self.output)

    @property
    def lines(self):
        return self.text.splitlines()

    @property
    def binary_bytes(self):
        return sum(1 for b in self.output if b not in PRINTABLE)

    def last_lines(self, n=3):
        return [ln for ln in self.lines if ln.strip()][-n:]


def render(data):
    """Serial bytes as text: printable ASCII kept, anything else shown as \\xNN."""
    out = []
    for b in data:
        if b in PRINTABLE and b != 0x0d:
            out.append(chr(b))
        elif b != 0x0d:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def _kill_group(proc):
    """SIGTERM the process group, then SIGKILL what is left; reap the child."""
    for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)   # grandchildren that outlived the leader
    except ProcessLookupError:
        pass


def run(make_launch, total_timeout=30.0, progress_timeout=10.0, cap=256 * 1024,
        exit_grace=3.0, on_output=None, log_cap=4 * 1024 * 1024,
        on_line=None):
    """Run one emulator. make_launch(tmpdir) returns an emulators.Launch.
    on_output(bytes) sees output as it comes (for `make qemu`); on_line(line,
    result, send) sees each complete line and may answer with send(bytes) on
    the serial input (the emulator's stdin)."""
    with tempfile.TemporaryDirectory(prefix="kit-run-") as tmp:
        launch = make_launch(tmp)
        result = RunResult("start-failed", emulator=launch.name, launch=launch,
                           limits={"total": total_timeout, "progress": progress_timeout, "cap": cap})
        errf = open(Path(tmp) / "stderr.txt", "w+")
        fifo_fd = None
        if launch.serial_fifo:      # O_RDWR: the FIFO never reports EOF while we hold it
            fifo_fd = os.open(launch.serial_fifo, os.O_RDWR | os.O_NONBLOCK)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(launch.argv, cwd=tmp, stdin=subprocess.PIPE,
                                    stdout=errf if fifo_fd is not None else subprocess.PIPE,
                                    stderr=errf, start_new_session=True)
        except OSError as e:
            result.stderr = f"could not start {launch.argv[0]}: {e.strerror}"
            errf.close()
            if fifo_fd is not None:
                os.close(fifo_fd)
            return result
        try:
            fd = fifo_fd if fifo_fd is not None else proc.stdout.fileno()
            def send(data):
                proc.stdin.write(data)
                proc.stdin.flush()
            hook = (lambda line: on_line(line, result, send)) if on_line else None
            _pump(proc, fd, fifo_fd is not None, result, start, total_timeout, progress_timeout, cap,
                  exit_grace, on_output, hook)
        finally:
            _kill_group(proc)
            for f in (proc.stdin, proc.stdout):
                try:
                    if f:
                        f.close()
                except OSError:
                    pass
            if fifo_fd is not None:
                os.close(fifo_fd)
            result.elapsed = time.monotonic() - start
            errf.seek(0)
            result.stderr = errf.read()[-4000:]
            errf.close()
            if launch.log.is_file():
                with open(launch.log, "rb") as f:
                    size = launch.log.stat().st_size
                    if size > log_cap:           # keep the end: the fault is there
                        f.seek(size - log_cap)
                    result.log = f.read().decode("latin-1")
            result.outcome = launch.outcome(result.status, result.log, result.lines)
        return result


def _pump(proc, fd, eof_on_exit, result, start, total_timeout, progress_timeout, cap, exit_grace, on_output,
          on_line=None):
    """Read serial output from fd until the emulator is done. With a FIFO
    (eof_on_exit) the end of the stream is the end of the process."""
    buf = bytearray()
    seen = 0                    # bytes of buf already handed to on_line
    last = start
    final_deadline = None
    open_ = True
    while True:
        now = time.monotonic()
        if eof_on_exit and open_ and proc.poll() is not None:
            ready, _, _ = select.select([fd], [], [], 0)
            if not ready:
                open_ = False       # exited and drained
        if proc.poll() is not None and not open_:
            result.reason, result.status = "exited", proc.returncode
            break
        if now - start > total_timeout:
            result.reason = "timeout"
            break
        if final_deadline is None and progress_timeout and now - last > progress_timeout:
            result.reason = "silent"
            break
        if final_deadline is not None and now > final_deadline:
            result.reason = "final-line-no-exit"
            break
        if not open_:
            try:
                proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
            continue
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            continue
        if not chunk:
            open_ = False
            continue
        last = time.monotonic()
        take = chunk[: max(0, cap - len(buf))]
        buf += take
        if on_output:
            on_output(take)
        if len(buf) >= cap:
            result.reason = "flood"
            break
        while on_line and b"\n" in buf[seen:]:
            end = buf.index(b"\n", seen)
            on_line(render(bytes(buf[seen:end])))
            seen = end + 1
            last = time.monotonic()             # time spent answering is not silence
        if final_deadline is None and FINAL_LINE.search(buf):
            final_deadline = time.monotonic() + exit_grace
    result.output = bytes(buf)
