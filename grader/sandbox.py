"""The sandbox that compilers, emulators and the native JIT harness run in,
so that a submission sees only its own files and the given ones.

Three seals, the first that works here (`mode()` says which, `why_not()`
why not the first, `describe()` what the one in use shows):
  - "bwrap": bubblewrap (Debian package bubblewrap) runs a command in new
    namespaces (mount, PID, IPC, UTS, network, user where needed) that show
    it the toolchain (/usr, read-only), a fresh /proc, a minimal /dev, a
    private /tmp and the one folder it works in: no kit, no solutions, no
    hidden checks, no home, no /etc, no network, an empty environment.
  - "user": where namespaces cannot be made (Docker's default profile,
    Gradescope, a chroot) but the grader runs as root, the command runs as
    a user of its own (setpriv, util-linux): a uid of the kit's range with
    no account, no group, no capability and no way to gain one
    (no_new_privs), an empty environment, the network namespace only where
    root may still make one. It works in its folder (its "cell", given to
    it; the folders above may be closed to it: it names its files relative
    to its working folder), reads what every user may read, and nothing
    that is readable by root only: the secrets must be (`exposed()` says
    which are not; the Gradescope bundle locks its own). Each cell has its
    own uid, so two cells cannot read each other, and every process of that
    uid is killed when the cell's work is over (`reap()`).
  - None: no sandbox. A submission is then refused (build.py), unless
    KIT_SANDBOX=off says to trust it.
KIT_SANDBOX=bwrap|user|off chooses one. prlimit (util-linux) caps the size
of every file a sealed command writes and, where asked, its memory; under
the user seal also its user's number of processes.
"""
import functools
import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

FILE_SIZE_CAP = 16 << 20  # bytes: any one file the compiler or the linker writes
EMULATOR_FILE_CAP = 64 << 20  # bytes: the emulator's log
MEMORY_CAP = 4 << 30  # bytes of address space for a compiler
PROCESS_CAP = 256  # processes and threads of one cell's user (user seal)
TOOLCHAIN_LINKS = (("usr/bin", "/bin"), ("usr/sbin", "/sbin"), ("usr/lib", "/lib"), ("usr/lib64", "/lib64"))
UID_BASE, UID_SPAN = 1_900_000_000, 1 << 16  # the user seal's uids: no account has them
PATH = "/usr/bin:/bin"
PROBE_TIMEOUT = 30
OFF = ("0", "off", "no")


class Refused(Exception):
    """What was asked cannot run under the seal here (one line: why)."""


def _setting():
    return os.environ.get("KIT_SANDBOX", "").strip().lower()


def _last_line(text):
    return (text.strip().splitlines() or ["(no message)"])[-1]


# --- probes: the command that decides is the command that explains ----------------


def _bwrap_probe():
    return [
        "bwrap",
        "--unshare-all",
        "--ro-bind",
        "/usr",
        "/usr",
        *[a for src, dst in TOOLCHAIN_LINKS for a in ("--symlink", src, dst)],
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "true",
    ]


def _try(argv):
    """(worked, the last line it printed on stderr)."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=PROBE_TIMEOUT)
    except OSError as e:
        return False, f"{argv[0]}: {e.strerror}"
    except subprocess.TimeoutExpired:
        return False, f"{argv[0]} did not answer in {PROBE_TIMEOUT}s"
    return r.returncode == 0, _last_line(r.stderr)


@functools.lru_cache(maxsize=None)
def _bwrap():
    """(bubblewrap works here, why not)."""
    if not shutil.which("bwrap"):
        return False, "bubblewrap is not installed (apt-get install bubblewrap)"
    ok, said = _try(_bwrap_probe())
    return ok, "" if ok else f"bubblewrap cannot make namespaces here: {said}"


def user_prefix(uid):
    """The command that runs the rest as `uid`, with no group, no capability
    and no way to gain one."""
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


@functools.lru_cache(maxsize=None)
def _user():
    """(the user seal works here, why not)."""
    if os.geteuid() != 0:
        return False, "the grader does not run as root, so it cannot switch to a user of its own"
    if not shutil.which("setpriv"):
        return False, "setpriv is not installed (apt-get install util-linux)"
    ok, said = _try(user_prefix(UID_BASE) + ["true"])
    return ok, "" if ok else f"setpriv cannot switch to a user of its own here: {said}"


@functools.lru_cache(maxsize=None)
def netns():
    """Can root still make a network namespace here (a chroot can, Docker cannot)?"""
    return bool(shutil.which("unshare")) and _try(["unshare", "--net", "--", "true"])[0]


def _probe_key():
    """What the probes' answers depend on: bubblewrap, the kernel, the user,
    and the confinement of this process (its root, user namespace,
    capabilities and seccomp filter: the same kernel answers differently
    inside a container)."""
    bwrap = shutil.which("bwrap") or ""
    parts = [bwrap, os.uname().release, str(os.geteuid())]
    try:
        st = os.stat(bwrap) if bwrap else None
        parts += [f"{st.st_ino}:{st.st_mtime_ns}" if st else "-"]
        root = os.stat("/")
        parts += [f"{root.st_dev}:{root.st_ino}", os.readlink("/proc/self/ns/user")]
        status = Path("/proc/self/status").read_text().splitlines()
        parts += [ln.replace("\t", "") for ln in status if ln.startswith(("CapBnd", "CapEff", "Seccomp", "NoNewPrivs"))]
    except OSError:
        parts.append("?")
    return " ".join(parts)


@functools.lru_cache(maxsize=None)
def mode():
    """'bwrap', 'user' or None: the seal of this process. The answer is kept
    in build/.sandbox for the next process (a probe costs a process start)."""
    asked = _setting()
    if asked in OFF:
        return None
    if asked in ("bwrap", "user"):
        return asked if (_bwrap() if asked == "bwrap" else _user())[0] else None
    from .labs import ROOT

    memo, key = ROOT / "build" / ".sandbox", _probe_key()
    try:
        kept, _, kept_key = memo.read_text().partition(" ")
        if kept_key == key and kept in ("bwrap", "user"):
            return kept
    except OSError:
        pass
    found = "bwrap" if _bwrap()[0] else "user" if _user()[0] else None
    if found:
        try:
            memo.parent.mkdir(exist_ok=True)
            memo.write_text(f"{found} {key}")
        except OSError:
            pass
    return found


def can(seal):
    """(this seal ('bwrap' or 'user') works here, why not): what KIT_SANDBOX=seal would get."""
    return _bwrap() if seal == "bwrap" else _user()


def forget():
    """Probe again (after KIT_SANDBOX changed)."""
    for f in (mode, _bwrap, _user, netns):
        f.cache_clear()


def why_not():
    """One line: why bubblewrap is not the seal here, and, where there is no
    seal at all, why not the user seal either (the probes' own words)."""
    asked = _setting()
    if asked in OFF:
        return "KIT_SANDBOX=off"
    reasons = [] if asked == "user" else [_bwrap()[1]]
    if mode() is None and asked != "bwrap":
        reasons.append(_user()[1])
    return "; ".join(r for r in reasons if r) or "bubblewrap works here"


def describe():
    """One line: the seal in use and what a sealed command sees."""
    m = mode()
    if m == "bwrap":
        return (
            "bubblewrap: new namespaces that show /usr (read-only), a fresh /proc, a minimal /dev, a private /tmp "
            "and the command's own folder; no network, an empty environment, prlimit caps"
        )
    if m == "user":
        net = "no network (a namespace of its own)" if netns() else "the container's network (no namespace here)"
        return (
            f"a user of its own (uid {UID_BASE}+, no account, no group, no capability; {why_not()}): "
            "its own folder, and only the files every user may read (never what is readable by root only); "
            f"{net}, an empty environment, prlimit caps; it may write where every user may (/tmp)"
        )
    return f"none ({why_not()})"


# --- the user seal's cells ------------------------------------------------------------


def cell_uid(cell):
    """The uid of the cell (a folder): one of the kit's range, chosen by the folder's path."""
    digest = hashlib.sha256(str(Path(cell).absolute()).encode()).digest()
    return UID_BASE + int.from_bytes(digest[:4], "little") % UID_SPAN


def _give(folder, uid):
    """The folder and what it holds belong to uid (a file linked from
    elsewhere keeps its owner: it is only read). A file that goes while the
    folder is walked (a parallel compile renames its temporary object) is
    passed over."""
    for d, dirs, files in os.walk(folder):
        os.chown(d, uid, uid)
        for name in dirs + files:
            p = os.path.join(d, name)
            try:
                st = os.lstat(p)
                if st.st_nlink == 1 or stat.S_ISDIR(st.st_mode):
                    os.chown(p, uid, uid, follow_symlinks=False)
            except FileNotFoundError:
                continue


def _take_back(rw):
    """A folder the user seal gave away (an earlier build under another
    seal) is root's again: bubblewrap's root has no capability to write into
    another user's folder."""
    if os.geteuid() != 0:
        return
    for d in rw:
        try:
            if os.stat(d).st_uid != 0:
                _give(d, 0)
        except OSError:
            pass


def inside(cell, path):
    """The name by which a sealed command working in `cell` opens the file
    `path` from outside it: the path itself where the sandbox shows it (or
    where there is none); under the user seal a link (or a copy) in the cell,
    by its name, since the folders above the file may be closed to it."""
    if mode() != "user":
        return str(path)
    dest = Path(cell) / Path(path).name
    dest.unlink(missing_ok=True)
    try:
        os.link(path, dest)
    except OSError:
        shutil.copyfile(path, dest)
    return dest.name


def reap(cell):
    """Under the user seal, kill every process the cell's user still has (a
    program that forked into the background): what bubblewrap's PID
    namespace does when its first process ends."""
    if mode() != "user":
        return
    try:
        subprocess.run(
            user_prefix(cell_uid(cell)) + ["sh", "-c", "kill -KILL -1 2>/dev/null; true"],
            capture_output=True,
            timeout=PROBE_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired):
        pass


def exposed(paths):
    """Which of these files a user of the seal's range could read (the user
    seal hides only what is readable by root only); [] under another seal."""
    paths = [str(p) for p in paths]
    if mode() != "user" or not paths:
        return []
    script = 'for p; do [ -r "$p" ] && printf "%s\\n" "$p"; done; true'
    r = subprocess.run(
        user_prefix(UID_BASE) + ["sh", "-c", script, "sh"] + paths,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=PROBE_TIMEOUT,
    )
    return r.stdout.splitlines()


def wrap(argv, rw=(), ro=(), net=False, cwd=None, file_cap=FILE_SIZE_CAP, memory=False):
    """argv run inside the sandbox, seeing /usr, the folders `rw` (writable)
    and the files or folders `ro` (read-only), with the network only if
    `net`; every file it writes capped at file_cap bytes (and its memory, if
    asked), its TMPDIR private (bubblewrap's /tmp, its working folder). Under the user
    seal, rw[0] (or cwd) is the cell: every rw folder is given to the cell's
    user, and the command must name its files relative to cwd (see
    `inside`). Without a sandbox here, argv with the caps only (the caller
    gives its TMPDIR)."""
    m = mode()
    caps = ["prlimit"] + ([f"--fsize={file_cap}"] if file_cap else []) + ([f"--as={MEMORY_CAP}"] if memory else [])
    if m == "user":
        caps.append(f"--nproc={PROCESS_CAP}")
    caps = caps + ["--"] if len(caps) > 1 and shutil.which("prlimit") else []
    if m == "user":
        cell = Path(rw[0] if rw else cwd)
        uid = cell_uid(cell)
        for d in rw:
            _give(d, uid)
        cell.chmod(0o700)  # another cell's user cannot look in
        net_box = ["unshare", "--net", "--"] if not net and netns() else []
        # TMPDIR: its working folder, named through /proc (the folders above it may be closed to it)
        env = ["env", "-i", f"PATH={PATH}", "HOME=/nonexistent", "TMPDIR=/proc/self/cwd"]
        return caps + net_box + user_prefix(uid) + env + list(argv)
    _take_back(rw)
    if m != "bwrap":
        return caps + list(argv)
    box = [
        "bwrap",
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--setenv",
        "PATH",
        PATH,
        "--setenv",
        "HOME",
        "/nonexistent",
        "--setenv",
        "TMPDIR",
        "/tmp",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for src, dst in TOOLCHAIN_LINKS:
        box += ["--symlink", src, dst]
    box += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    if net:
        box.append("--share-net")
    for p in ro:
        box += ["--ro-bind", str(p), str(p)]
    for p in rw:
        box += ["--bind", str(p), str(p)]
    if cwd:
        box += ["--chdir", str(cwd)]
    return caps + box + list(argv)
