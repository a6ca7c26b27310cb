"""Build a stage: compile its sources with the kernel's flags, link
kernel.elf, write kernel.sym, kernel.asm and compile_commands.json beside it,
and make a bootable ISO with grub-mkrescue.

What later labs add to the shared core is assembled here from the labs'
own files, so that the core names no later lab:
  - gen/stage.h: the header of each lab of the stage (lab.json "header"),
    and LAB_n(...) for every lab of the kit: the call inside it in a stage
    that has lab n, nothing in one that has not (kmain uses it);
  - gen/stage-NAME.ld: every NAME.ld fragment of the stage's labs, joined
    in lab order, for the `#include "stage-NAME.ld"` lines of kernel.ld;
  - grub.cfg: a `module2` line for each module of the stage's labs.

Outputs are cached by a hash of every input: a second build of the same
sources is free.
"""
import fcntl
import functools
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
from .stage import Stage
from .symbols import Symbols

ROOT = labs_mod.ROOT
CFLAGS = [
    "--target=x86_64-unknown-none-elf", "-std=c11", "-ffreestanding", "-fno-pic", "-fno-pie",
    "-fno-stack-protector", "-mno-red-zone", "-mno-mmx", "-mno-sse", "-mno-sse2",
    "-fno-asynchronous-unwind-tables", "-fno-omit-frame-pointer",
    "-O2", "-g", "-Wall", "-Wextra", "-Werror",
]
LDFLAGS = ["-nostdlib", "-static", "-z", "max-page-size=4096", "--no-dynamic-linker"]
TOOL_TIMEOUT = 120
LINKER_SCRIPT, GRUB_CFG, MODULES_MARK = "kernel.ld", "grub.cfg", "@MODULES@"


class BuildError(Exception):
    """The stage did not build. `summary` is one line; `details` the first errors."""

    def __init__(self, summary, details=""):
        super().__init__(summary)
        self.summary = summary
        self.details = details


@dataclass
class Build:
    stage: Stage
    outdir: Path
    elf: Path
    iso: Path
    cached: bool

    @property
    def lab(self):
        return self.stage.top

    @functools.cached_property
    def symbols(self):
        """The kernel's symbols, read once from kernel.sym."""
        return Symbols.read(self.outdir / "kernel.sym")


def stage_dir(stage):
    """build/stage-NN[-sol][-below][-sub-HASH]: one folder per kind of build."""
    o = stage.origin
    name = f"stage-{stage.number:02d}" + ("-sol" if o.kind == "solutions" else "")
    name += "-below" if o.below_from_solutions else ""
    if o.kind == "submission":
        name += "-sub-" + hashlib.sha256(str(Path(o.submission).resolve()).encode()).hexdigest()[:10]
    return stage.root / "build" / name


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


# --- what the labs add to the core -------------------------------------------

def stage_header(stage):
    """The text of gen/stage.h."""
    out = [f"/* Made by the build for stage {stage.number:02d} (grader/build.py); kmain.c includes it.",
           " * The headers of the stage's labs, then LAB_n(...): its argument in a stage",
           " * that has lab n, nothing in one that has not. */",
           "#ifndef STAGE_H", "#define STAGE_H"]
    out += [f'#include "{lab.header}"' for lab in stage.labs if lab.header]
    for lab in stage.all_labs:
        out.append(f"#define LAB_{lab.number}(...)" + (" __VA_ARGS__" if lab in stage.labs else ""))
    return "\n".join(out + ["#endif", ""])


def fragments(stage):
    """{file name: text} of gen/stage-NAME.ld for every NAME.ld fragment any lab has."""
    names = sorted({p.stem for lab in stage.all_labs for p in lab.dir.glob("*.ld") if p.name != LINKER_SCRIPT})
    out = {}
    for name in names:
        parts = [f"/* stage-{name}.ld, made by the build: the {name}.ld of each lab of stage {stage.number:02d} */"]
        for lab in stage.labs:
            p = lab.dir / f"{name}.ld"
            if p.is_file():
                parts.append(f"/* labs/{lab.name}/{name}.ld */\n{p.read_text()}")
        out[f"stage-{name}.ld"] = "\n".join(parts) + "\n"
    return out


def grub_config(stage):
    """The stage's grub.cfg: the given one, with a module2 line per module."""
    lines = []
    for line in stage.first(GRUB_CFG).read_text().splitlines():
        if MODULES_MARK in line:
            indent = line[:len(line) - len(line.lstrip())]
            lines += [f"{indent}module2 /boot/{m.name} {m.name}" for m in stage.modules]
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def generated(stage):
    """{path under gen/: text}: everything the build writes for the core to include."""
    return {"stage.h": stage_header(stage), **fragments(stage)}


# --- the build ---------------------------------------------------------------

def _inputs_hash(stage, gen):
    h = hashlib.sha256()
    h.update(repr((CFLAGS, LDFLAGS, stage.number, stage.origin, sorted(gen.items()))).encode())
    files = [s.path for s in stage.sources] + stage.given((".h", ".ld", ".cfg")) + stage.modules
    for f in files:
        h.update(str(f).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def build(stage, outdir=None):
    """Build `stage` (a stage.Stage); returns a Build or raises BuildError.
    Builds of the same folder wait for each other (a lock file), across
    threads and processes: `EMULATOR=both` grades one stage twice at once."""
    outdir = Path(outdir) if outdir else stage_dir(stage)
    outdir.mkdir(parents=True, exist_ok=True)
    with open(outdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(stage, outdir)


def _compile_cmd(stage, src, obj, gendir):
    incs = [f"-I{d}" for d in [gendir] + stage.include_dirs]
    return (["clang"] + CFLAGS + [f"-fmacro-prefix-map={src.path.parent}/={Path(src.shown).parent}/"]
            + incs + ["-c", str(src.path), "-o", str(obj)])


def _build_locked(stage, outdir):
    missing = stage.missing_files()
    if missing:
        where = f" in {stage.origin.submission}" if stage.origin.kind == "submission" else ""
        raise BuildError(f"missing file {missing[0].shown}{where}",
                         "a submission must contain every student file of the labs up to this one")
    gen = generated(stage)
    digest = _inputs_hash(stage, gen)
    elf, iso, stamp = outdir / "kernel.elf", outdir / "kernel.iso", outdir / "inputs.sha256"
    if stamp.is_file() and stamp.read_text() == digest and elf.is_file() and iso.is_file():
        return Build(stage, outdir, elf, iso, True)
    stamp.unlink(missing_ok=True)

    gendir, objdir = outdir / "gen", outdir / "obj"
    for d in (gendir, objdir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    for name, text in gen.items():
        (gendir / name).write_text(text)
    jobs = []
    for i, src in enumerate(stage.sources):
        obj = objdir / f"{i:02d}-{src.path.stem}{src.path.suffix.replace('.', '_')}.o"
        jobs.append((src, obj, _compile_cmd(stage, src, obj, gendir)))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda j: _run(j[2]), jobs))
    for (src, obj, cmd), r in zip(jobs, results):
        if r.returncode != 0:
            raise BuildError(f"{src.shown} does not compile", first_errors(r.stderr, stage.root))
    (outdir / "compile_commands.json").write_text(json.dumps(
        [{"directory": str(stage.root), "file": str(s.path), "arguments": c} for s, _, c in jobs], indent=1))

    ldscript = outdir / "kernel.ld"
    incs = [f"-I{d}" for d in [gendir] + stage.include_dirs]
    r = _run(["clang", "-E", "-P", "-x", "c", "-D__ASSEMBLER__"] + incs
             + [str(stage.first(LINKER_SCRIPT)), "-o", str(ldscript)])
    if r.returncode != 0:
        raise BuildError("the linker script does not preprocess", first_errors(r.stderr, stage.root))
    r = _run(["ld.lld"] + LDFLAGS + ["-T", str(ldscript), "-o", str(elf)] + [str(j[1]) for j in jobs])
    if r.returncode != 0:
        raise BuildError("the kernel does not link", first_errors(r.stderr, stage.root))
    _listings(elf, outdir)
    _make_iso(elf, iso, grub_config(stage), stage.modules)
    stamp.write_text(digest)
    return Build(stage, outdir, elf, iso, False)


def link_compile_commands(b):
    """compile_commands.json at the root, so that clangd works with no flags:
    a link to the one of the last stage built (replaced atomically)."""
    root = b.stage.root
    target = Path(b.outdir) / "compile_commands.json"
    if not target.is_file() or Path(root) not in target.parents:
        return
    tmp = Path(root) / f".compile_commands.json.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.relative_to(root))
    os.replace(tmp, Path(root) / "compile_commands.json")


def _listings(elf, outdir):
    """kernel.sym (llvm-nm) and kernel.asm (llvm-objdump): the 64-bit code,
    then the 32-bit code between __code32_start and __code32_end again,
    decoded as i386 (one ELF cannot say which bytes are 32-bit code)."""
    with open(outdir / "kernel.sym", "w") as f:
        subprocess.run(["llvm-nm", "-n", "-S", str(elf)], stdout=f, stderr=subprocess.DEVNULL, timeout=TOOL_TIMEOUT)
    code32 = Symbols.read(outdir / "kernel.sym").range("__code32_start", "__code32_end")
    with open(outdir / "kernel.asm", "w") as f:
        f.write("; 64-bit code (the 32-bit code is listed again at the end, decoded as i386)\n")
        f.flush()
        subprocess.run(["llvm-objdump", "-d", "-l", "--no-show-raw-insn", str(elf)],
                       stdout=f, stderr=subprocess.DEVNULL, timeout=TOOL_TIMEOUT)
        if code32 and code32[1] > code32[0]:
            lo, hi = code32
            f.write(f"\n; 32-bit code 0x{lo:x}-0x{hi:x}, decoded as i386\n")
            f.flush()
            subprocess.run(["llvm-objdump", "-d", "-l", "--no-show-raw-insn", "--triple=i386",
                            f"--start-address=0x{lo:x}", f"--stop-address=0x{hi:x}", str(elf)],
                           stdout=f, stderr=subprocess.DEVNULL, timeout=TOOL_TIMEOUT)


def _make_iso(elf, iso, grub_cfg_text, modules=()):
    """An ISO with GRUB, grub.cfg, the kernel and the stage's module files in /boot."""
    with tempfile.TemporaryDirectory(prefix="kit-iso-") as tmp:
        boot = Path(tmp) / "boot"
        (boot / "grub").mkdir(parents=True)
        shutil.copy(elf, boot / "kernel.elf")
        for m in modules:
            shutil.copy(m, boot / m.name)
        (boot / "grub" / "grub.cfg").write_text(grub_cfg_text)
        r = _run(["grub-mkrescue", "-o", str(iso), tmp])
        if r.returncode != 0 or not iso.is_file():
            raise BuildError("grub-mkrescue failed", first_errors(r.stderr, ROOT))
