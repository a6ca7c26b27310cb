"""Build a stage: compile labs 01..N with the kernel's flags, link
kernel.elf, write kernel.sym, kernel.asm and compile_commands.json beside it,
and make a bootable ISO with grub-mkrescue.

Outputs are cached by a hash of every input: a second build of the same
sources is free.
"""
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import labs as labs_mod

ROOT = labs_mod.ROOT
CFLAGS = [
    "--target=x86_64-unknown-none-elf", "-std=c11", "-ffreestanding", "-fno-pic", "-fno-pie",
    "-fno-stack-protector", "-mno-red-zone", "-mno-mmx", "-mno-sse", "-mno-sse2",
    "-fno-asynchronous-unwind-tables", "-fno-omit-frame-pointer",
    "-O2", "-g", "-Wall", "-Wextra", "-Werror",
]
LDFLAGS = ["-nostdlib", "-static", "-z", "max-page-size=4096", "--no-dynamic-linker"]
TOOL_TIMEOUT = 120


class BuildError(Exception):
    """The stage did not build. `summary` is one line; `details` the first errors."""

    def __init__(self, summary, details=""):
        super().__init__(summary)
        self.summary = summary
        self.details = details


@dataclass
class Build:
    lab: object
    outdir: Path
    elf: Path
    iso: Path
    sources: list
    cached: bool


def stage_dir(number, solutions=False, root=ROOT, submission=None, solutions_below=False):
    """build/stage-NN[-sol][-below][-sub-HASH]: one directory per kind of build."""
    name = f"stage-{number:02d}" + ("-sol" if solutions and not submission else "")
    name += "-below" if solutions_below else ""
    if submission:
        name += "-sub-" + hashlib.sha256(str(Path(submission).resolve()).encode()).hexdigest()[:10]
    return root / "build" / name


def _run(cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    except FileNotFoundError:
        raise BuildError(f"missing tool: {cmd[0]} (run `make setup` as root, or see README)") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"{cmd[0]} took more than {TOOL_TIMEOUT}s") from None


def first_errors(text, root, limit=8):
    """The compiler's first error lines, with paths shown relative to root."""
    lines = [ln.replace(str(root) + "/", "") for ln in text.splitlines()]
    errors = [i for i, ln in enumerate(lines) if re.search(r"\berror\b", ln)]
    if not errors:
        return "\n".join(lines[:limit])
    keep = []
    for i in errors[:3]:
        keep.extend(lines[i:i + 3])
    return "\n".join(keep[:limit])


def _compile_cmd(src, obj, number, root):
    incs = [f"-I{d}" for d in labs_mod.include_dirs(number, root)]
    return (["clang"] + CFLAGS + [f"-DLAB={number}", f"-fmacro-prefix-map={src.path.parent}/={Path(src.shown).parent}/"]
            + incs + ["-c", str(src.path), "-o", str(obj)])


def _inputs_hash(sources, number, root, extra):
    h = hashlib.sha256()
    h.update(repr((CFLAGS, LDFLAGS, number, extra)).encode())
    files = [s.path for s in sources]
    for lab in labs_mod.discover(root):
        if lab.number <= number:
            files += sorted(p for p in lab.dir.iterdir() if p.suffix in (".h", ".ld", ".cfg"))
            files += [lab.dir / name for name in lab.modules]
    for f in files:
        h.update(str(f).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def build(number, solutions=False, submission=None, root=ROOT, outdir=None, solutions_below=False):
    """Build stage `number`; returns a Build or raises BuildError. Builds of
    the same directory wait for each other (a lock file), across threads and
    processes: `EMULATOR=both` grades one stage twice at once."""
    lab = labs_mod.find(number, root)
    outdir = Path(outdir) if outdir else stage_dir(lab.number, solutions, root, submission, solutions_below)
    outdir.mkdir(parents=True, exist_ok=True)
    with open(outdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(lab, solutions, submission, root, outdir, solutions_below)


def _build_locked(lab, solutions, submission, root, outdir, solutions_below):
    sources = labs_mod.stage_sources(lab.number, solutions, submission, root, solutions_below)
    for s in sources:
        if not s.path.is_file():
            raise BuildError(f"missing file {s.shown}" + (f" in {submission}" if submission else ""),
                             "a submission must contain every student file of the labs up to this one")
    digest = _inputs_hash(sources, lab.number, root, (str(submission), solutions_below))
    elf, iso, stamp = outdir / "kernel.elf", outdir / "kernel.iso", outdir / "inputs.sha256"
    if stamp.is_file() and stamp.read_text() == digest and elf.is_file() and iso.is_file():
        return Build(lab, outdir, elf, iso, sources, True)
    stamp.unlink(missing_ok=True)

    objdir = outdir / "obj"
    shutil.rmtree(objdir, ignore_errors=True)
    objdir.mkdir()
    jobs = []
    for i, src in enumerate(sources):
        obj = objdir / f"{i:02d}-{src.path.stem}{src.path.suffix.replace('.', '_')}.o"
        jobs.append((src, obj, _compile_cmd(src, obj, lab.number, root)))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda j: _run(j[2]), jobs))
    for (src, obj, cmd), r in zip(jobs, results):
        if r.returncode != 0:
            raise BuildError(f"{src.shown} does not compile", first_errors(r.stderr, root))
    (outdir / "compile_commands.json").write_text(json.dumps(
        [{"directory": str(root), "file": str(s.path), "arguments": c} for s, _, c in jobs], indent=1))

    ldscript = outdir / "kernel.ld"
    incs = [f"-I{d}" for d in labs_mod.include_dirs(lab.number, root)]
    r = _run(["clang", "-E", "-P", "-x", "c", f"-DLAB={lab.number}"] + incs
             + [str(labs_mod.find(1, root).dir / "kernel.ld"), "-o", str(ldscript)])
    if r.returncode != 0:
        raise BuildError("the linker script does not preprocess", first_errors(r.stderr, root))
    r = _run(["ld.lld"] + LDFLAGS + ["-T", str(ldscript), "-o", str(elf)] + [str(j[1]) for j in jobs])
    if r.returncode != 0:
        raise BuildError("the kernel does not link", first_errors(r.stderr, root))
    _listings(elf, outdir)
    modules = [lab_.dir / name for lab_ in labs_mod.discover(root) if lab_.number <= lab.number
               for name in lab_.modules]
    _make_iso(elf, iso, labs_mod.find(1, root).dir / "grub.cfg", modules)
    stamp.write_text(digest)
    return Build(lab, outdir, elf, iso, sources, False)


def link_compile_commands(b, root=ROOT):
    """compile_commands.json at the root, so that clangd works with no flags:
    a link to the one of the last stage built (replaced atomically)."""
    target = Path(b.outdir) / "compile_commands.json"
    if not target.is_file() or Path(root) not in target.parents:
        return
    tmp = Path(root) / f".compile_commands.json.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.relative_to(root))
    os.replace(tmp, Path(root) / "compile_commands.json")


def _listings(elf, outdir):
    """kernel.sym (llvm-nm) and kernel.asm (llvm-objdump): the 64-bit code,
    then the 32-bit boot code again, decoded as i386 (one ELF cannot say
    which bytes are 32-bit code, so the first listing gets those wrong)."""
    with open(outdir / "kernel.sym", "w") as f:
        subprocess.run(["llvm-nm", "-n", "-S", str(elf)], stdout=f, stderr=subprocess.DEVNULL, timeout=TOOL_TIMEOUT)
    syms = {}
    for line in (outdir / "kernel.sym").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            syms[parts[-1]] = (int(parts[0], 16), int(parts[1], 16) if len(parts) == 4 else 0)
    ranges = []
    if "_start" in syms and "start64" in syms:
        ranges.append((syms["_start"][0], syms["start64"][0]))
    if "lm_enable" in syms and syms["lm_enable"][1]:
        ranges.append((syms["lm_enable"][0], sum(syms["lm_enable"])))
    with open(outdir / "kernel.asm", "w") as f:
        f.write("; 64-bit code (the 32-bit boot code is listed again at the end, decoded as i386)\n")
        f.flush()
        subprocess.run(["llvm-objdump", "-d", "-l", "--no-show-raw-insn", str(elf)],
                       stdout=f, stderr=subprocess.DEVNULL, timeout=TOOL_TIMEOUT)
        for lo, hi in ranges:
            f.write(f"\n; 32-bit boot code 0x{lo:x}-0x{hi:x}, decoded as i386\n")
            f.flush()
            subprocess.run(["llvm-objdump", "-d", "-l", "--no-show-raw-insn", "--triple=i386",
                            f"--start-address=0x{lo:x}", f"--stop-address=0x{hi:x}", str(elf)],
                           stdout=f, stderr=subprocess.DEVNULL, timeout=TOOL_TIMEOUT)


def _make_iso(elf, iso, grub_cfg, modules=()):
    """An ISO with GRUB, grub.cfg, the kernel and the stage's module files in /boot."""
    with tempfile.TemporaryDirectory(prefix="kit-iso-") as tmp:
        boot = Path(tmp) / "boot"
        (boot / "grub").mkdir(parents=True)
        shutil.copy(elf, boot / "kernel.elf")
        for m in modules:
            shutil.copy(m, boot / m.name)
        shutil.copy(grub_cfg, boot / "grub" / "grub.cfg")
        r = _run(["grub-mkrescue", "-o", str(iso), tmp])
        if r.returncode != 0 or not iso.is_file():
            raise BuildError("grub-mkrescue failed", first_errors(r.stderr, ROOT))
