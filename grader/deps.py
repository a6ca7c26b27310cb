"""The Debian packages the kit needs, checked before anything runs.

As root, missing packages are installed (apt-get update once, then
apt-get install --no-install-recommends); otherwise the exact command is
printed and the run stops with a clear message.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

# tool or file -> Debian package
TOOLS = {
    "clang": "clang",
    "ld.lld": "lld",
    "llvm-symbolizer": "llvm",
    "llvm-objdump": "llvm",
    "llvm-nm": "llvm",
    "llvm-objcopy": "llvm",
    "grub-mkrescue": "grub-common",
    "grub-editenv": "grub-common",
    "/usr/lib/grub/i386-pc/multiboot2.mod": "grub-pc-bin",
    "xorriso": "xorriso",
    "mformat": "mtools",
    "qemu-system-x86_64": "qemu-system-x86",
}
# Bochs: its own BIOS images, and bochs-term to satisfy its dependency on a
# display plugin without pulling in wxWidgets (we use the built-in rfb display).
# (Debian 12's bochs package ships the VGA BIOS image itself.)
BOCHS_TOOLS = {"bochs": "bochs", "/usr/share/bochs/BIOS-bochs-latest": "bochsbios",
               "/usr/lib/x86_64-linux-gnu/bochs/plugins/libbx_term_gui.so": "bochs-term",
               "unshare": "util-linux"}
TOOLS.update(BOCHS_TOOLS)
KERNEL = [t for t in TOOLS if t not in BOCHS_TOOLS]
GROUPS = {
    "kernel": KERNEL,
    "qemu": KERNEL,
    "bochs": KERNEL + list(BOCHS_TOOLS),
    "test": list(TOOLS) + ["python3-pytest"],
    "book": KERNEL + ["pandoc"],            # the memory-layout figure builds a stage
    "gdb": ["gdb"],
}
PACKAGE_ONLY = {"python3-pytest": lambda: _python_has("pytest"), "pandoc": lambda: shutil.which("pandoc"),
                "gdb": lambda: shutil.which("gdb")}


class MissingTools(Exception):
    pass


def _python_has(module):
    return subprocess.run([sys.executable, "-c", f"import {module}"],
                          capture_output=True).returncode == 0


def _present(item):
    if item in PACKAGE_ONLY:
        return bool(PACKAGE_ONLY[item]())
    if item.startswith("/"):
        return Path(item).exists()
    return shutil.which(item) is not None


def missing_packages(group="kernel"):
    packages = []
    for item in GROUPS[group]:
        if not _present(item):
            pkg = TOOLS.get(item, item)
            if pkg not in packages:
                packages.append(pkg)
    return packages


def all_packages(group="kernel"):
    """Every Debian package of `group`, installed or not (for CI)."""
    return list(dict.fromkeys(TOOLS.get(item, item) for item in GROUPS[group]))


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
    raise MissingTools(f"missing Debian packages: {' '.join(packages)}. "
                       f"Install them with: sudo {install_line(packages)}")
