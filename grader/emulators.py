"""How each emulator is started for a run. The runner (run.py) is the same
for every emulator: it gets a command, a serial stream and a log file back.

QEMU runs under TCG by default: `-d int,cpu_reset` logs exceptions only under
TCG, and KVM on these machines is slower than TCG for a boot this short.
"""
import shutil
from dataclasses import dataclass, field
from pathlib import Path

QEMU = "qemu-system-x86_64"
EXIT_OK, EXIT_PANIC, EXIT_BOOTFAIL, EXIT_DOUBLEFAULT = 0x10, 0x11, 0x12, 0x13


def qemu_status(value):
    """The exit status QEMU gives for a value written to isa-debug-exit."""
    return (value << 1) | 1


# What each exit status of QEMU means: isa-debug-exit values from kernel.h.
QEMU_STATUS = {
    qemu_status(EXIT_OK): "ok",
    qemu_status(EXIT_PANIC): "panic",
    qemu_status(EXIT_BOOTFAIL): "boot failure",
    qemu_status(EXIT_DOUBLEFAULT): "double fault",
    0: "reset or plain power-off (a triple fault under -no-reboot exits 0)",
    1: "QEMU error",
}


@dataclass
class Launch:
    """One emulator run: the command, its files, and how to read its exit."""
    name: str
    argv: list
    log: Path
    files: dict = field(default_factory=dict)   # name -> path of extra files made

    def status_meaning(self, status):
        return QEMU_STATUS.get(status, f"unexpected exit status {status}")

    def success(self, status):
        return status == qemu_status(EXIT_OK)


def make_args_disk(tmpdir, kargs):
    """A GRUB environment block (grub-editenv) holding `kargs`; grub.cfg reads
    it from the first disk as raw sectors and passes it to the kernel."""
    import subprocess
    env = Path(tmpdir) / "args.env"
    subprocess.run(["grub-editenv", str(env), "create"], check=True, timeout=30)
    subprocess.run(["grub-editenv", str(env), "set", f"kargs={kargs}"], check=True, timeout=30)
    return env


def qemu(iso, tmpdir, kargs, memory_mb=128, gdb_port=None, kvm=False, extra=()):
    tmpdir = Path(tmpdir)
    log = tmpdir / "qemu.log"
    env = make_args_disk(tmpdir, kargs)
    argv = [QEMU, "-nodefaults", "-vga", "none", "-display", "none", "-no-reboot",
            "-machine", "pc", "-m", str(memory_mb),
            "-accel", "kvm" if kvm else "tcg",
            "-serial", "stdio", "-monitor", "none",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-drive", f"file={env},format=raw,if=ide,index=0",
            "-drive", f"file={iso},media=cdrom,if=ide,index=2,readonly=on", "-boot", "d",
            "-d", "int,cpu_reset", "-D", str(log)]
    if gdb_port:
        argv += ["-S", "-gdb", f"tcp:127.0.0.1:{gdb_port}"]
    argv += list(extra)
    return Launch("qemu", argv, log, {"args": env})


EMULATORS = {"qemu": qemu}   # bochs joins here (issue 3)


def available(name):
    return shutil.which({"qemu": QEMU}.get(name, name)) is not None
