"""How each emulator is started for a run, and how its end is read. The
runner (run.py) is the same for every emulator.

QEMU runs under TCG by default: `-d int,cpu_reset` logs exceptions only under
TCG, and KVM on these machines is slower than TCG for a boot this short.
Bochs is the stricter second emulator: it runs with the rfb display (Debian's
Bochs 2.7 has no headless display) inside its own network namespace, so the
rfb listener on port 5900 is reachable from nowhere.
"""
import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import deps, host, sandbox, scratch

QEMU = "qemu-system-x86_64"
BOCHS = "bochs"
ARGS_DISK_BYTES = 16 * 63 * 512  # one cylinder: a geometry Bochs accepts for a flat disk


def qemu_status(value):
    """The exit status QEMU gives for a value written to isa-debug-exit."""
    return (value << 1) | 1


def exit_words(exits):
    """{value: word} from the kernel's {"BOOT_FAILURE": 0x12, ...}: the word
    its final line `[power] off: WORD` says for that value."""
    return {v: name.lower().replace("_", " ") for name, v in (exits or {}).items()}


@dataclass
class Outcome:
    """How the run ended, in the same words for every emulator."""

    kind: str  # ok, panic, boot failure, double fault, triple fault, other
    text: str  # a phrase for the report

    @property
    def ok(self):
        return self.kind == "ok"


@dataclass
class Launch:
    """One emulator run: the command, its files, and how to read its end."""

    name: str
    argv: list  # the command that runs: the emulator, in its sandbox
    log: Path
    serial_fifo: Path = None  # read serial here instead of stdout
    files: dict = field(default_factory=dict)
    exits: dict = field(default_factory=dict)  # the kernel's EXIT_* values: {"OK": 0x10, ...}
    command: list = field(default_factory=list)  # the emulator's own command, outside the sandbox

    def outcome(self, status, log, lines):
        if self.name == "bochs":
            return bochs_outcome(status, log, lines, self.exits)
        return qemu_outcome(status, log, self.exits)


def qemu_outcome(status, log, exits=None):
    for value, kind in exit_words(exits).items():
        if status == qemu_status(value):
            return Outcome(kind, f"exit status {status} ({kind})")
    if status == 0 and "Triple fault" in log:
        return Outcome("triple fault", "exit status 0: triple fault, the CPU reset instead of powering off")
    if status == 0:
        return Outcome("other", "exit status 0: a reset or a plain power-off, not the isa-debug-exit value")
    if status is None:
        return Outcome("other", "no exit status: QEMU was stopped before it ended")
    return Outcome("other", f"exit status {status} (QEMU itself failed?)")


def bochs_outcome(status, log, lines, exits=None):
    if "3rd (" in log and "exception with no resolution" in log:
        return Outcome("triple fault", "triple fault: Bochs stopped at the third exception")
    if "Shutdown port: shutdown requested" in log or "ACPI control: soft power off" in log:
        final = [ln for ln in lines if ln.startswith("[power] off: ")]
        kind = final[-1][len("[power] off: ") :] if final else "other"
        if kind in exit_words(exits).values():
            return Outcome(kind, f"powered off ({kind})")
        return Outcome("other", "powered off without the final `[power] off:` line")
    panics = [ln.split(">>PANIC<<", 1)[1].strip() for ln in log.splitlines() if ">>PANIC<<" in ln]
    if panics:
        return Outcome("other", f"Bochs stopped: {panics[-1]}")
    errors = BOCHS_ERROR.findall(log)
    said = f"; its log's last error: {errors[-1].strip()}" if errors else ""
    if status is not None and status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return Outcome("other", f"Bochs was killed by {name} (status {status}){said}")
    return Outcome("other", f"Bochs exited with status {status}{said}")


BOCHS_ERROR = re.compile(r"^\d+e\[[^\]]*\] (.*)$", re.M)  # Bochs's log: ticks, level (e: error), module, text


SAFE_KARGS = re.compile(r"^[A-Za-z0-9=,._ -]*$")
_EMPTY_ENV = []


def empty_env_block():
    """The block `grub-editenv FILE create` writes (its header, then '#'
    padding to 1 KiB): made once, and kept in build/ for the next process."""
    if not _EMPTY_ENV:
        from .labs import ROOT

        kept = ROOT / "build" / ".grubenv-empty"
        try:
            data = kept.read_bytes()
        except OSError:
            data = b""
        if len(data) != 1024 or not data.startswith(b"# GRUB Environment Block\n"):
            with scratch.folder("kit-env-") as tmp:
                r = scratch.run_tool(["grub-editenv", f"{tmp}/env", "create"], 30)
                if r.returncode != 0:
                    raise subprocess.CalledProcessError(r.returncode, r.args)
                data = Path(f"{tmp}/env").read_bytes()
            try:
                kept.parent.mkdir(exist_ok=True)
                kept.write_bytes(data)
            except OSError:
                pass
        _EMPTY_ENV.append(data)
    return _EMPTY_ENV[0]


def env_block(kargs):
    """What `grub-editenv FILE set kargs=...` makes of the empty block: the
    variable's line after the header, the padding shorter by as much (a test
    compares the two byte for byte). Two processes less per boot."""
    if not SAFE_KARGS.match(kargs):
        raise ValueError(f"kernel arguments with characters GRUB would escape: {kargs!r}")
    empty = empty_env_block()
    body = empty.rstrip(b"#")
    line = f"kargs={kargs}\n".encode()
    if len(body) + len(line) > len(empty):
        raise ValueError("kernel arguments too long for a GRUB environment block")
    return body + line + b"#" * (len(empty) - len(body) - len(line))


def make_args_disk(tmpdir, kargs):
    """A GRUB environment block holding `kargs`, padded to a disk geometry
    both emulators accept; grub.cfg reads its first two sectors with
    load_env and passes kargs to the kernel."""
    env = Path(tmpdir) / "args.img"
    env.write_bytes(env_block(kargs))
    os.truncate(env, ARGS_DISK_BYTES)
    return env


def boxed(argv, iso, tmpdir, net=False):
    """The emulator in the sandbox: it reads its image, writes only its run
    folder (its working folder: it names its files relative to it)."""
    return sandbox.wrap(argv, rw=[tmpdir], ro=[iso], net=net, cwd=tmpdir, file_cap=sandbox.EMULATOR_FILE_CAP)


def qemu(iso, tmpdir, kargs, memory_mb=128, exits=None, gdb_port=None, extra=(), qmp=False, trace=(), **_):
    """trace: QEMU trace events to record in the log (-trace NAME: the log
    backend of Debian's QEMU writes them to the -D file, in order with -d int)."""
    tmpdir = Path(tmpdir)
    log = tmpdir / "qemu.log"
    env = make_args_disk(tmpdir, kargs)
    image = sandbox.inside(tmpdir, iso)
    argv = [
        QEMU,
        "-nodefaults",
        "-vga",
        "none",
        "-display",
        "none",
        "-no-reboot",
        "-machine",
        "pc",
        "-m",
        str(memory_mb),
        "-bios",
        deps.QEMU_BIOS,
        "-accel",
        "tcg",
        "-cpu",
        host.cpu_model(),  # max, or KIT_QEMU_CPU: what the host offers is probed (host.py)
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-drive",
        f"file={env.name},format=raw,if=ide,index=0",
        "-drive",
        f"file={image},media=cdrom,if=ide,index=2,readonly=on",
        "-boot",
        "d",
        "-d",
        "int,cpu_reset",
        "-D",
        log.name,
    ]
    files = {"args": env}
    if gdb_port:
        argv += ["-S", "-gdb", f"tcp:127.0.0.1:{gdb_port}"]
    if qmp:  # QEMU's machine protocol, for the grader's questions about the guest
        files["qmp"] = tmpdir / "qmp.sock"
        argv += ["-qmp", "unix:qmp.sock,server=on,wait=off"]
    for event in trace:
        argv += ["-trace", event]
    argv += list(extra)
    return Launch(
        "qemu", boxed(argv, iso, tmpdir, net=bool(gdb_port)), log, files=files, exits=dict(exits or {}), command=argv
    )


BOCHSRC = """\
# Written by the grader for one run (grader/emulators.py).
megs: {memory_mb}
romimage: file={bios}
vgaromimage: file={vgabios}
display_library: {display}, options="timeout=0"
ata0-master: type=disk, path={disk}, mode=flat, cylinders=1, heads=16, spt=63
ata1-master: type=cdrom, path={iso}, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev={fifo}
sound: driver=dummy
log: {log}
panic: action=fatal
error: action=report
info: action=report
debug: action=ignore, cpu0=report
speaker: enabled=0
clock: sync=none, time0=1
cpu: {cpu_model}reset_on_triple_fault=0, ips=4000000
magic_break: enabled={magic}
"""


def netns_prefix(always=False):
    """A network namespace of its own, where the sandbox does not give one:
    as root `unshare -n`, otherwise in a user namespace too (`unshare -rn`).
    The user seal makes one itself where root may; where it may not (a
    Docker-like container), Bochs's rfb listener would be reachable: refused."""
    seal = sandbox.mode()
    if seal == "bwrap" and not always:
        return []  # the sandbox has no network
    if seal == "user" and not always:
        if not sandbox.netns():
            raise sandbox.Refused(
                "Bochs's display listens on TCP port 5900, and no network namespace can hide it here "
                f"({sandbox.why_not()}): grade under QEMU (EMULATOR=qemu)"
            )
        return []  # the seal puts it in a network namespace of its own
    return ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]


def bochs(iso, tmpdir, kargs, memory_mb=128, exits=None, debugger=False, breakpoints=(), cpu_model=None, **_):
    """cpu_model: one of `bochs -help cpu` (tigerlake has AVX-512 VNNI), or Bochs's default CPU."""
    tmpdir = Path(tmpdir)
    prefix = netns_prefix(always=True) if debugger else netns_prefix()
    disk = make_args_disk(tmpdir, kargs)
    fifo = tmpdir / "serial.fifo"
    os.mkfifo(fifo, 0o600)
    log = tmpdir / "bochs.log"
    rc = tmpdir / "bochsrc"
    rc.write_text(
        BOCHSRC.format(
            memory_mb=memory_mb,
            bios=deps.BOCHS_BIOS,
            vgabios=deps.BOCHS_VGABIOS,
            display=deps.BOCHS_DISPLAY,
            disk=disk.name,  # names relative to the run folder, Bochs's working folder
            iso=sandbox.inside(tmpdir, iso),
            fifo=fifo.name,
            log=log.name,
            magic=1 if debugger else 0,
            cpu_model=f"model={cpu_model}, " if cpu_model else "",
        )
    )
    commands = tmpdir / "debugger.rc"
    if debugger:
        commands.write_text("".join(f"lb {a:#x}\n" for a in breakpoints) + "c\n")
    else:
        commands.write_text("c\nquit\n")  # the built-in debugger would stop at a prompt
    command = [BOCHS, "-q", "-f", rc.name, "-rc", commands.name]
    argv = prefix + command if debugger else boxed(prefix + command, iso, tmpdir)
    return Launch(
        "bochs",
        argv,
        log,
        serial_fifo=fifo,
        files={"args": disk, "bochsrc": rc},
        exits=dict(exits or {}),
        command=command,
    )


EMULATORS = {"qemu": qemu, "bochs": bochs}
PATH_IN_CONFIG = re.compile(r"(?:file|path|dev)=([^,\s]+)")


def named_paths(launch):
    """Every program and absolute path that the launch's command line and
    configuration files name: what must be installed for it to start."""
    named = []
    for word in launch.command:
        named += [p for p in re.split(r"[=,]", word) if p.startswith("/")]
    named += [w for w in launch.argv if w in (QEMU, BOCHS, "unshare", "bwrap", "prlimit")]
    rc = launch.files.get("bochsrc")
    if rc:
        text = Path(rc).read_text()
        named += [p for p in PATH_IN_CONFIG.findall(text) if p.startswith("/")]  # the run's own are relative
        named += [deps.bochs_plugin(m) for m in re.findall(r"^display_library: (\w+)", text, re.M)]
    return list(dict.fromkeys(named))
