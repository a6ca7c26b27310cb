"""Running an emulator: start it in a fresh temporary directory, stream its
serial output, stop on the final line, on silence (progress timeout) or after
the total timeout, cap the output, and always reap its whole process group.
"""
import os
import re
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from . import sandbox, scratch

FINAL_LINE = re.compile(rb"^\[power\] off: .*$", re.M)
STOP = threading.Event()  # set on Ctrl-C: every run ends at once, its emulator reaped
PRINTABLE = set(range(0x20, 0x7F)) | {0x0A, 0x0D, 0x09}


@dataclass
class RunResult:
    reason: str  # exited, final-line-no-exit, silent, timeout, flood, start-failed, interrupted
    status: int = None  # the emulator's exit status, if it exited
    output: bytes = b""
    log: str = ""  # the emulator's own log (-D), possibly trimmed
    stderr: str = ""
    elapsed: float = 0.0
    limits: dict = field(default_factory=dict)
    emulator: str = "qemu"
    launch: object = None
    outcome: object = None  # emulators.Outcome, once the run is over
    extra: dict = field(default_factory=dict)  # what on_line hooks gathered (the QEMU monitor's view)
    waited: float = 0.0  # seconds it waited for an emulator slot before it started (grade.boot)

    @property
    def text(self):
        if self.__dict__.get("_rendered", (None,))[0] is not self.output:  # render once per output
            self.__dict__["_rendered"] = (self.output, render(self.output))
        return self.__dict__["_rendered"][1]

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
        if b in PRINTABLE and b != 0x0D:
            out.append(chr(b))
        elif b != 0x0D:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def _kill_group(proc):
    """SIGTERM the process group, then SIGKILL what is left; reap the child.
    After Ctrl-C, SIGKILL at once."""
    steps = ((signal.SIGKILL, 5.0),) if STOP.is_set() else ((signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0))
    for sig, wait in steps:
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
        os.killpg(proc.pid, signal.SIGKILL)  # grandchildren that outlived the leader
    except ProcessLookupError:
        pass


def mark(event):
    """With KIT_TIMING set, say on stderr when an event happens (the monotonic
    clock that a parent process shares): make bench uses it to see where a
    student's wait goes."""
    if os.environ.get("KIT_TIMING"):
        import sys

        print(f"kit-timing: {event} {time.monotonic():.6f}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Limits:
    total: float = 30.0  # seconds of the whole run
    progress: float = 10.0  # seconds without output (None: no limit)
    cap: int = 256 * 1024  # bytes of serial output kept; more is a flood
    exit_grace: float = 3.0  # seconds to power off after the final line
    log_cap: int = 4 * 1024 * 1024


def run(
    make_launch,
    total_timeout=30.0,
    progress_timeout=10.0,
    cap=256 * 1024,
    exit_grace=3.0,
    on_output=None,
    log_cap=4 * 1024 * 1024,
    on_line=None,
    on_stall=None,
    on_tick=None,
):
    """Run one emulator. make_launch(tmpdir) returns an emulators.Launch.
    on_output(bytes) sees output as it comes (for `make qemu`); on_line(line,
    result, send) sees each complete line and may answer with send(bytes) on
    the serial input (the emulator's stdin); on_stall(result) is called when
    a timeout stops the run, while the emulator still runs (to ask where);
    on_tick(seconds of silence) is called about 20 times a second while the
    run waits (a countdown on a terminal)."""
    limits = Limits(total_timeout, progress_timeout, cap, exit_grace, log_cap)
    shown = {"total": total_timeout, "progress": progress_timeout, "cap": cap}
    if STOP.is_set():
        return RunResult("interrupted", limits=shown)
    with scratch.folder("kit-run-") as tmp:
        try:
            launch = make_launch(tmp)
        except sandbox.Refused as e:  # this emulator cannot run sealed here
            return RunResult("start-failed", stderr=str(e), limits=shown)
        session = Session(launch, tmp, limits, on_output, on_line, on_stall, on_tick)
        if session.start():
            try:
                session.pump()
            finally:
                session.stop()
        return session.result


class Session:
    """One emulator process: started in its folder, its serial output read
    until it is done, then reaped with everything it started."""

    def __init__(self, launch, tmp, limits, on_output=None, on_line=None, on_stall=None, on_tick=None):
        self.launch, self.tmp, self.limits = launch, tmp, limits
        self.on_output, self.on_line, self.on_stall, self.on_tick = on_output, on_line, on_stall, on_tick
        self.result = RunResult(
            "start-failed",
            emulator=launch.name,
            launch=launch,
            limits={"total": limits.total, "progress": limits.progress, "cap": limits.cap},
        )
        self.proc = self.fifo_fd = self.errf = None
        self.buf, self.seen = bytearray(), 0

    def start(self):
        self.errf = open(self.tmp / "stderr.txt", "w+")
        if self.launch.serial_fifo:  # O_RDWR: the FIFO never reports EOF while we hold it
            self.fifo_fd = os.open(self.launch.serial_fifo, os.O_RDWR | os.O_NONBLOCK)
        self.t0 = time.monotonic()
        mark("emulator-started")
        try:
            self.proc = subprocess.Popen(
                self.launch.argv,
                cwd=self.tmp,
                stdin=subprocess.PIPE,
                stdout=self.errf if self.fifo_fd is not None else subprocess.PIPE,
                stderr=self.errf,
                start_new_session=True,
                env=scratch.tool_env(self.tmp),
            )
        except OSError as e:
            self.result.stderr = f"could not start {self.launch.argv[0]}: {e.strerror}"
            self._close_files()
            return False
        scratch.started(self.proc)
        return True

    def send(self, data):
        """Answer the kernel on its serial input; a kernel that has already
        powered off simply does not hear it."""
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    def pump(self):
        """Read serial output until the emulator is done or a limit is hit;
        sets result.reason (and status). With a FIFO the end of the stream is
        the end of the process."""
        fd = self.fifo_fd if self.fifo_fd is not None else self.proc.stdout.fileno()
        self.last, self.final_deadline, self.open = self.t0, None, True
        while True:
            reason = self._limit_reached()
            if reason:
                self.result.reason = reason
                if reason in ("silent", "timeout") and self.on_stall and self.proc.poll() is None:
                    try:
                        self.on_stall(self.result)
                    except Exception as e:  # asking must never lose the report
                        self.result.extra["stall_error"] = f"{type(e).__name__}: {e}"
                break
            if self.on_tick:
                self.on_tick(time.monotonic() - self.last)
            if not self.open:
                try:
                    self.proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
                continue
            if not select.select([fd], [], [], 0.05)[0]:
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                self.open = False
            elif self._take(chunk):
                self.result.reason = "flood"
                break
        self.result.output = bytes(self.buf)

    def _limit_reached(self):
        """Why the run is over, or None."""
        now, lim = time.monotonic(), self.limits
        if STOP.is_set():
            return "interrupted"
        if self.fifo_fd is not None and self.open and self.proc.poll() is not None:
            if not select.select([self.fifo_fd], [], [], 0)[0]:
                self.open = False  # exited and drained
        if self.proc.poll() is not None and not self.open:
            self.result.status = self.proc.returncode
            return "exited"
        if now - self.t0 > lim.total:
            return "timeout"
        if self.final_deadline is None and lim.progress and now - self.last > lim.progress:
            return "silent"
        if self.final_deadline is not None and now > self.final_deadline:
            return "final-line-no-exit"
        return None

    def _take(self, chunk):
        """Keep a chunk of output (up to the cap), hand out its lines; True on a flood."""
        self.last = time.monotonic()
        self.result.extra["last_output_at"] = self.last - self.t0
        take = chunk[: max(0, self.limits.cap - len(self.buf))]
        self.buf += take
        if self.on_output:
            self.on_output(take)
        if len(self.buf) >= self.limits.cap:
            return True
        while self.on_line and b"\n" in self.buf[self.seen :]:
            end = self.buf.index(b"\n", self.seen)
            self.on_line(render(bytes(self.buf[self.seen : end])), self.result, self.send)
            self.seen = end + 1
            self.last = time.monotonic()  # time spent answering is not silence
        if self.final_deadline is None and FINAL_LINE.search(self.buf):
            self.final_deadline = time.monotonic() + self.limits.exit_grace
        return False

    def stop(self):
        """Reap the emulator's whole process group and gather what it left."""
        mark("emulator-done")
        _kill_group(self.proc)
        scratch.ended(self.proc)
        sandbox.reap(self.tmp)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass
        self.result.elapsed = time.monotonic() - self.t0
        self.errf.seek(0)
        self.result.stderr = self.errf.read()[-4000:]
        self._close_files()
        log = self.launch.log
        if log.is_file():
            with open(log, "rb") as f:
                size = log.stat().st_size
                if size > self.limits.log_cap:  # keep the end: the fault is there
                    f.seek(size - self.limits.log_cap)
                self.result.log = f.read().decode("latin-1")
        self.result.outcome = self.launch.outcome(self.result.status, self.result.log, self.result.lines)

    def _close_files(self):
        if self.fifo_fd is not None:
            os.close(self.fifo_fd)
            self.fifo_fd = None
        if self.errf:
            self.errf.close()
