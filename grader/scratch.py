"""Temporary folders and external processes, gone on every way out.

Every temporary folder the kit makes is made here (`folder`) and every tool
it starts gets a private TMPDIR of its own (`tool_env`), removed when the
tool is done, so that what a tool leaves there (grub-mkrescue's
grub.XXXXXX, xorriso's files) goes with it, Ctrl-C included. The folders
and the process groups still alive are listed, and `clean_up()` (called by
`python3 -m grader` on its way out, and at exit) kills the groups and
removes the folders that a thread stopped halfway (a second Ctrl-C) left.
"""
import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

_LOCK = threading.Lock()
_FOLDERS = set()
_GROUPS = set()


def _keep(kind, item, add):
    with _LOCK:
        (kind.add if add else kind.discard)(item)


@contextlib.contextmanager
def folder(prefix="kit-"):
    """A new temporary folder (in TMPDIR), removed when the block ends, on
    any exception, and by clean_up()."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    _keep(_FOLDERS, path, True)
    try:
        yield path
    finally:
        remove(path)


def made(prefix="kit-"):
    """A temporary folder that outlives the block that made it: remove() it
    (clean_up() does, if nobody did)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    _keep(_FOLDERS, path, True)
    return path


def remove(path):
    shutil.rmtree(path, ignore_errors=True)
    _keep(_FOLDERS, Path(path), False)


def started(proc):
    """proc (a Popen with start_new_session=True) is killed by clean_up() if still there."""
    _keep(_GROUPS, proc.pid, True)
    return proc


def ended(proc):
    _keep(_GROUPS, proc.pid, False)


def tool_env(tmpdir, env=None):
    """The environment of a tool whose temporary files go to tmpdir."""
    return dict(os.environ if env is None else env, TMPDIR=str(tmpdir))


def run_tool(cmd, timeout, **kw):
    """subprocess.run for a tool of the kit (not sealed): its own process
    group, killed with everything it started on a timeout, and a private
    TMPDIR removed afterwards."""
    with folder("kit-tool-") as tmp:
        proc = started(subprocess.Popen(cmd, env=tool_env(tmp, kw.pop("env", None)), start_new_session=True, **kw))
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            kill_group(proc.pid)
            proc.communicate()
            raise
        finally:
            kill_group(proc.pid)  # anything it left in the background
            ended(proc)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def clean_up():
    """Kill every process group still listed, remove every folder still listed."""
    with _LOCK:
        groups, folders = list(_GROUPS), list(_FOLDERS)
        _GROUPS.clear()
        _FOLDERS.clear()
    for pgid in groups:
        kill_group(pgid)
    for path in folders:
        shutil.rmtree(path, ignore_errors=True)


atexit.register(clean_up)
