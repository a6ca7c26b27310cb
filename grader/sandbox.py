"""The sandbox that compilers and emulators run in, so that a submission sees
only its own files and the given ones.

With bubblewrap (`bwrap`, Debian package bubblewrap) a command runs in new
namespaces (mount, PID, IPC, UTS, network, user where needed) that show it
the toolchain (/usr, read-only), a fresh /proc, a minimal /dev and the one
folder it works in: no kit, no solutions, no hidden checks, no home, no /etc,
no network. prlimit (util-linux) caps the size of every file it writes and
its memory. If namespaces cannot be made here (some containers forbid them),
`mode()` says so, and the build decides what that means for its origin.
"""
import functools
import os
import shutil
import subprocess

FILE_SIZE_CAP = 16 << 20  # bytes: any one file the compiler or the linker writes
EMULATOR_FILE_CAP = 64 << 20  # bytes: the emulator's log
MEMORY_CAP = 4 << 30  # bytes of address space for a compiler
TOOLCHAIN_LINKS = (("usr/bin", "/bin"), ("usr/sbin", "/sbin"), ("usr/lib", "/lib"), ("usr/lib64", "/lib64"))


def _probe_key(bwrap):
    """What the probe's answer depends on: this bwrap, this kernel, this user."""
    st = os.stat(bwrap)
    return f"{bwrap} {st.st_ino} {st.st_mtime_ns} {os.uname().release} {os.geteuid()}"


@functools.lru_cache(maxsize=None)
def mode():
    """'bwrap' when bubblewrap can make its namespaces here, else None. The
    answer is kept in build/.sandbox for the next process (a probe costs a
    process start)."""
    if os.environ.get("KIT_SANDBOX", "").lower() in ("0", "off", "no"):
        return None
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return None
    from .labs import ROOT

    memo, key = ROOT / "build" / ".sandbox", _probe_key(bwrap)
    try:
        if memo.read_text() == key:
            return "bwrap"
    except OSError:
        pass
    found = _probe()
    if found:
        try:
            memo.parent.mkdir(exist_ok=True)
            memo.write_text(key)
        except OSError:
            pass
    return found


def _probe():
    try:
        r = subprocess.run(
            [
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
            ],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return "bwrap" if r.returncode == 0 else None


def why_not():
    """One line: why there is no sandbox here."""
    if os.environ.get("KIT_SANDBOX", "").lower() in ("0", "off", "no"):
        return "KIT_SANDBOX=off"
    if not shutil.which("bwrap"):
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    r = subprocess.run(["bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True, text=True)
    return "bubblewrap cannot make namespaces here: " + (r.stderr.strip().splitlines() or ["(no message)"])[-1]


def wrap(argv, rw=(), ro=(), net=False, cwd=None, file_cap=FILE_SIZE_CAP, memory=False):
    """argv run inside the sandbox, seeing /usr, the folders `rw` (writable)
    and the files or folders `ro` (read-only), with the network only if
    `net`; every file it writes capped at file_cap bytes (and its memory, if
    asked). Without a sandbox here, argv with the caps only."""
    caps = (
        (["prlimit", f"--fsize={file_cap}"] + ([f"--as={MEMORY_CAP}"] if memory else []) + ["--"])
        if file_cap and shutil.which("prlimit")
        else []
    )
    if mode() != "bwrap":
        return caps + list(argv)
    box = [
        "bwrap",
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "HOME",
        "/nonexistent",
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
