"""The dependency list follows from what the kit opens: every path an
emulator's command or configuration names, every program the build runs, and
every data file an emulator opens belong to a listed package (or to a hard
dependency of one). A missing file, or a dangling symlink, is named with its
package."""
import os
import re
import shutil
import subprocess

import pytest

from grader import build, deps, emulators, labs, stage

pytestmark = pytest.mark.slow  # a long end-to-end test: `make test` runs it, `make check` not

# Data files and plugins, as the emulator names them (shared libraries and
# /etc/localtime come with the packages' own dependencies).
ARCH_DATA = re.compile(r"^/usr/(bin/\.\./)?(share/(?!zoneinfo|locale)|lib/x86_64-linux-gnu/(qemu|bochs)/)")


def launch_for(emulator, tmp_path):
    iso = tmp_path / "kernel.iso"
    iso.write_bytes(b"")
    run = tmp_path / "run"
    run.mkdir()
    return emulators.EMULATORS[emulator](iso, run, "seed=0x1 tests=all", memory_mb=128), tmp_path


@pytest.mark.parametrize("emulator", sorted(emulators.EMULATORS))
def test_every_path_a_launch_names_is_listed_and_present(emulator, tmp_path):
    launch, own = launch_for(emulator, tmp_path)
    named = [p for p in emulators.named_paths(launch) if not p.startswith(str(own))]
    assert named, "the launch names no installed file at all: the check is blind"
    uncovered = [p for p in named if deps.covers(p) is None]
    assert uncovered == [], f"named by the {emulator} command or bochsrc, but not in grader/deps.py"
    group = "bochs" if emulator == "bochs" else "qemu"
    listed = {n.item for n in deps.GROUPS[group]}
    assert set(named) <= listed, set(named) - listed
    absent = [p for p in named if not deps.present(p)]
    assert absent == [], f"listed but not installed (dangling link?): {absent}"


def fake_root(tmp_path, group):
    """A file tree holding every file and program of `group`."""
    root = tmp_path / "root"
    for need in deps.GROUPS[group]:
        if need.item.startswith("py:"):
            continue
        path = root / (need.item.lstrip("/") if need.item.startswith("/") else "usr/bin/" + need.item)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    return root


def test_a_missing_or_dangling_vga_bios_is_named_with_its_package(tmp_path):
    root = fake_root(tmp_path, "bochs")
    assert deps.missing_packages("bochs", root) == []
    vga = root / deps.BOCHS_VGABIOS.lstrip("/")
    vga.unlink()
    assert deps.missing_packages("bochs", root) == ["vgabios"]
    vga.symlink_to("../vgabios/vgabios.bin")  # as the bochsbios package ships it
    assert deps.missing_packages("bochs", root) == ["vgabios"]
    (root / "usr/share/vgabios").mkdir(parents=True)
    (root / "usr/share/vgabios/vgabios.bin").write_bytes(b"")
    assert deps.missing_packages("bochs", root) == []


def test_a_missing_firmware_or_program_is_named(tmp_path):
    root = fake_root(tmp_path, "qemu")
    (root / deps.QEMU_BIOS.lstrip("/")).unlink()
    (root / "usr/bin/ld.lld").unlink()
    assert deps.missing_packages("qemu", root) == ["lld", "seabios"]


@pytest.mark.instructor
def test_every_program_the_build_runs_is_listed(tmp_path, monkeypatch):
    ran = []
    real = subprocess.Popen

    def spy(cmd, *a, **kw):
        # every program in the command: the sandbox's and the tool's inside it
        ran.extend(w for w in cmd if "/" not in w and not w.startswith("-") and shutil.which(w))
        return real(cmd, *a, **kw)

    build.sandbox.mode()  # its probe (`bwrap ... true`) is not the build's, and is cached
    monkeypatch.setattr(build.subprocess, "Popen", spy)  # subprocess.run starts its process with it too
    last = labs.discover()[-1]
    build.build(stage.make(last.name, stage.Origin("solutions")), outdir=tmp_path / "out")
    assert {"clang", "ld.lld", "grub-mkrescue", "prlimit"} <= set(ran)
    assert [p for p in ran if deps.covers(p) is None] == []


def hard_dependencies(packages):
    """The packages apt must install with these, followed level by level:
    Depends that are not one of alternatives (the vgabios trap: bochs
    depends on "vgabios | seabios", and seabios is already there)."""
    hard, todo = set(), list(packages)
    while todo:
        hard.update(todo)
        out = subprocess.run(
            [
                "apt-cache",
                "depends",
                "--no-recommends",
                "--no-suggests",
                "--no-conflicts",
                "--no-breaks",
                "--no-replaces",
                "--no-enhances",
                *todo,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        found, alternative = set(), False
        for line in out.splitlines():
            m = re.match(r"^\s*(\|?)(?:Pre)?Depends: (\S+)$", line)
            if not m:
                alternative = False
                continue
            if not m.group(1) and not alternative and not m.group(2).startswith("<"):
                found.add(m.group(2).split(":")[0])
            alternative = bool(m.group(1))
        todo = sorted(found - hard)
    return hard


def owner(path):
    r = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, timeout=60)
    return r.stdout.split(":")[0] if r.returncode == 0 else None


@pytest.mark.instructor
@pytest.mark.skipif(not shutil.which("strace") or not shutil.which("dpkg"), reason="needs strace and dpkg")
@pytest.mark.parametrize("emulator", sorted(emulators.EMULATORS))
def test_every_data_file_an_emulator_opens_comes_from_a_listed_package(emulator, tmp_path):
    b = build.build(stage.make("01", stage.Origin("solutions")))
    run = tmp_path / "run"
    run.mkdir()
    launch = emulators.EMULATORS[emulator](b.iso, run, "seed=0x1 tests=all", memory_mb=128)
    fifo = os.open(launch.serial_fifo, os.O_RDWR | os.O_NONBLOCK) if launch.serial_fifo else None
    trace = tmp_path / "trace"
    try:
        subprocess.run(
            ["strace", "-f", "-qq", "-e", "trace=openat,open", "-o", str(trace)] + launch.argv,
            cwd=run,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
    finally:
        if fifo is not None:
            os.close(fifo)
    opened = set()
    for line in trace.read_text().splitlines():
        m = re.search(r'open(?:at)?\((?:AT_FDCWD, )?"([^"]+)".*\) = \d+', line)
        if m:
            path = os.path.realpath(os.path.join(run, m.group(1)))  # through symlinks, to the owner
            if ARCH_DATA.match(os.path.normpath(m.group(1))) and os.path.isfile(path):
                opened.add(path)
    assert any("bios" in p.lower() for p in opened), f"no firmware among the opened files: {sorted(opened)}"
    group = "bochs" if emulator == "bochs" else "qemu"
    allowed = hard_dependencies(deps.all_packages(group))
    strays = {p: owner(p) for p in sorted(opened) if owner(p) not in allowed}
    assert strays == {}, "opened, but its package is neither in grader/deps.py nor a hard dependency of one"
