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

The build is sealed: it copies the stage's given files from the kit and
only the declared student files from their origin (regular files, at most
STUDENT_FILE_CAP bytes each) into a private folder, build/.../src, and runs
the compiler and the linker in the sandbox (grader/sandbox.py), which shows
them that folder and the toolchain and nothing else: an `#include` or an
`.incbin` of any other file fails with the compiler's own error.

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
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import labs as labs_mod, sandbox, scratch
from .stage import Stage
from .symbols import Symbols

ROOT = labs_mod.ROOT
CFLAGS = [
    "--target=x86_64-unknown-none-elf",
    "-std=c11",
    "-ffreestanding",
    "-fno-pic",
    "-fno-pie",
    "-fno-stack-protector",
    "-mno-red-zone",
    "-mno-mmx",
    "-mno-sse",
    "-mno-sse2",
    "-fno-asynchronous-unwind-tables",
    "-fno-omit-frame-pointer",
    "-fwrapv",
    "-O2",
    "-g",
    "-Wall",
    "-Wextra",
    "-Werror",
]
LDFLAGS = ["-nostdlib", "-static", "-z", "max-page-size=4096", "--no-dynamic-linker"]
TOOL_TIMEOUT = 60
LINKER_SCRIPT, GRUB_CFG, MODULES_MARK = "kernel.ld", "grub.cfg", "@MODULES@"
GIVEN_SUFFIXES = (".c", ".S", ".h", ".ld", ".cfg")
STUDENT_FILE_CAP = 256 * 1024  # bytes: a student file larger than this is refused
OBJECTS_CAP = 32 << 20  # bytes: all objects of a stage together
OBJECT_CACHE_KEEP = 4000  # compiled objects kept in build/objects/, the oldest removed first


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


def _run(cmd, cwd=None, sealed=None, deadline=None):
    """Run a tool; with sealed=outdir, inside the sandbox that sees only
    outdir (the tool names its files relative to cwd). The tool has its own
    process group and a private TMPDIR, both gone when it ends, Ctrl-C
    included; it is stopped after TOOL_TIMEOUT seconds, or at `deadline`
    (time.monotonic()) if that comes first."""
    tool = cmd[0]
    from .run import STOP

    if STOP.is_set():
        raise BuildError("interrupted (Ctrl-C)")
    limit = time.monotonic() + TOOL_TIMEOUT
    if deadline is not None and deadline < limit:
        if deadline <= time.monotonic():
            raise BuildError(out_of_time(tool))
        limit = deadline
    with scratch.folder("kit-tool-") as tmp:
        if sealed is not None:
            cmd = sandbox.wrap(cmd, rw=[sealed], cwd=cwd, memory=True)
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,
                env=scratch.tool_env(tmp),
            )
        except FileNotFoundError:
            raise BuildError(f"missing tool: {cmd[0]} (run `make setup` as root, or see README)") from None
        scratch.started(proc)
        try:
            while True:
                try:
                    out, err = proc.communicate(timeout=0.1)
                    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
                except subprocess.TimeoutExpired:
                    if STOP.is_set() or time.monotonic() > limit:
                        os.killpg(proc.pid, 9)
                        proc.communicate()
                        if STOP.is_set():
                            raise BuildError("interrupted (Ctrl-C)") from None
                        if limit == deadline:
                            raise BuildError(out_of_time(tool)) from None
                        raise BuildError(f"{tool} took more than {TOOL_TIMEOUT}s: stopped") from None
        finally:
            scratch.kill_group(proc.pid)  # what it started in the background goes with it
            scratch.ended(proc)


def out_of_time(tool):
    return f"the stage's time limit was reached while {tool} ran: stopped"


def first_errors(text, *roots, limit=8):
    """The compiler's first error lines, with paths shown relative to the roots."""
    lines = text.splitlines()
    for root in roots:
        lines = [ln.replace(str(root) + "/", "") for ln in lines]
    errors = [i for i, ln in enumerate(lines) if re.search(r"\berror\b", ln)]
    if not errors:
        return "\n".join(lines[:limit])
    keep = []
    for i in errors[:3]:
        keep.extend(lines[i : i + 3])
    return "\n".join(keep[:limit])


# --- what the labs add to the core -------------------------------------------


def stage_header(stage):
    """The text of gen/stage.h."""
    out = [
        f"/* Made by the build for stage {stage.number:02d} (grader/build.py); kmain.c includes it.",
        " * The headers of the stage's labs, then LAB_n(...): its argument in a stage",
        " * that has lab n, nothing in one that has not. */",
        "#ifndef STAGE_H",
        "#define STAGE_H",
    ]
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
            indent = line[: len(line) - len(line.lstrip())]
            lines += [f"{indent}module2 /boot/{m.name} {m.name}" for m in stage.modules]
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def generated(stage):
    """{path under gen/: text}: everything the build writes for the core to include."""
    return {"stage.h": stage_header(stage), **fragments(stage)}


# --- the sealed tree -----------------------------------------------------------


def read_student_file(src, stage):
    """The bytes of a student file, if it is a regular file inside its origin,
    not a link, at most STUDENT_FILE_CAP bytes; else BuildError, one line."""
    o = stage.origin
    handed_in = o.kind == "submission" and src.shown.startswith("labs/")  # not a reference file below it
    where = f" in {o.upload or o.submission}" if handed_in else ""
    base = Path(o.submission if handed_in else o.reference or stage.root).resolve()
    name = f"{src.shown}{where}"
    try:
        info = os.lstat(src.path)
    except FileNotFoundError:
        raise BuildError(
            f"missing file {name}",
            "a submission must contain every student file of the labs up to this one"
            if handed_in
            else "every student file of the labs below comes from the reference files",
        ) from None
    except OSError as e:
        raise BuildError(f"{name} cannot be read: {e.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise BuildError(f"{name} is a symbolic link: a student file must be a regular file")
    if not stat.S_ISREG(info.st_mode):
        raise BuildError(f"{name} is not a regular file")
    if base not in Path(src.path).resolve().parents:
        raise BuildError(f"{name} lies outside {'the submission' if where else 'the kit'} (a link on its way?)")
    if info.st_size > STUDENT_FILE_CAP:
        raise BuildError(
            f"{name} is {info.st_size // 1024} KiB: a student file may have at most {STUDENT_FILE_CAP // 1024} KiB"
        )
    fd = os.open(src.path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        return f.read(STUDENT_FILE_CAP + 1)[:STUDENT_FILE_CAP]


def seal(stage, outdir):
    """outdir/src: the given files of the stage's labs, copied from the kit,
    and its student files, copied from their origin, each where reports name
    it (labs/NN-name/f.c, or solutions/NN-name/f.c)."""
    student = {s.shown: read_student_file(s, stage) for s in stage.sources if s.student}
    src = outdir / "src"
    shutil.rmtree(src, ignore_errors=True)
    for lab in stage.labs:
        d = src / "labs" / lab.name
        d.mkdir(parents=True)
        for p in sorted(lab.dir.iterdir()):
            if p.is_file() and p.suffix in GIVEN_SUFFIXES and p.name not in lab.student:
                shutil.copyfile(p, d / p.name)
    for shown, data in student.items():
        (src / shown).parent.mkdir(parents=True, exist_ok=True)
        (src / shown).write_bytes(data)
    return src


# --- the build ---------------------------------------------------------------


def _inputs_hash(stage, gen, outdir):
    h = hashlib.sha256(Path(__file__).read_bytes())  # a new recipe makes a new kernel
    flags = (CFLAGS, LDFLAGS, _include_flags(stage), _debug_map(stage, outdir / "src"))
    h.update(repr((flags, stage.number, stage.origin, sorted(gen.items()))).encode())
    files = [s.path for s in stage.sources] + stage.given((".h", ".ld", ".cfg")) + stage.modules
    for f in files:
        h.update(str(f).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def build(stage, outdir=None, deadline=None):
    """Build `stage` (a stage.Stage); returns a Build or raises BuildError.
    Builds of the same folder wait for each other (a lock file), across
    threads and processes: `EMULATOR=both` grades one stage twice at once.
    `deadline` (time.monotonic()) stops the build if it is not done by then."""
    outdir = Path(outdir) if outdir else stage_dir(stage)
    outdir.mkdir(parents=True, exist_ok=True)
    with open(outdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _build_locked(stage, outdir, deadline)
        finally:
            sandbox.reap(outdir)


def _include_flags(stage):
    """-I of the generated headers and of every lab of the stage, relative to the sealed src/."""
    return ["-I../gen"] + [f"-Ilabs/{lab.name}" for lab in stage.labs]


def _debug_map(stage, srcdir):
    """Debug information names the files where the student sees them (the kit),
    except for a submission, whose copies stay in the build folder."""
    if stage.origin.kind == "submission":
        return []
    # the compilation directory covers assembly files too, whose line tables the prefix map misses
    return [f"-fdebug-prefix-map={srcdir}={stage.root}", f"-fdebug-compilation-dir={stage.root}"]


def _editor_commands(stage, jobs, gendir):
    """compile_commands.json for clangd: the kit's own files, as if unsealed."""
    incs = [f"-I{gendir}"] + [f"-I{d}" for d in stage.include_dirs]
    return [
        {
            "directory": str(stage.root),
            "file": str(s.path),
            "arguments": ["clang"] + CFLAGS + incs + ["-c", str(s.path), "-o", str(obj)],
        }
        for s, obj in jobs
    ]


def secrets(root, reference=None):
    """The files a submission must never read: the kit's solutions, every
    lab's hidden checks, the reference files its origin names."""
    folders = [Path(root) / "solutions"] + sorted(Path(root).glob("labs/*/hidden"))
    folders += [Path(reference)] if reference else []
    return [p for d in folders if d.is_dir() for p in sorted(d.rglob("*")) if p.is_file()]


def refuse_if_exposed(root, reference=None, what="a submission is not built"):
    """Under the user seal, BuildError if its user could read one of the kit's secrets."""
    open_to_it = sandbox.exposed(secrets(root, reference))
    if open_to_it:
        shown = [os.path.relpath(p, root) if p.startswith(str(root)) else p for p in open_to_it]
        raise BuildError(
            "the sandbox here is a user of its own (no namespaces), and it could read "
            f"{', '.join(shown[:3])}"
            + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")
            + f": {what} where it could print them",
            "make them readable by root only (for example chmod -R go-rwx solutions labs/*/hidden), "
            "or grade where bubblewrap works",
        )


def _sealed_or_refused(stage):
    """Is the sandbox here? A submission is never built without it, unless
    the instructor said KIT_SANDBOX=off; under the user seal, only if it
    cannot read the kit's secrets (they must be readable by root only)."""
    if stage.origin.kind != "submission":
        return
    if sandbox.mode() is None and os.environ.get("KIT_SANDBOX", "").lower() not in ("0", "off", "no"):
        raise BuildError(
            "a submission is built only in the sandbox, and there is none here: " + sandbox.why_not(),
            "to grade without it anyway (trusted code only): KIT_SANDBOX=off",
        )
    refuse_if_exposed(stage.root, stage.origin.reference)


def _build_locked(stage, outdir, deadline=None):
    _sealed_or_refused(stage)
    gen = generated(stage)
    digest = _inputs_hash(stage, gen, outdir)
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
    srcdir = seal(stage, outdir)
    incs, debug = _include_flags(stage), _debug_map(stage, srcdir)
    jobs = [
        (src, objdir / f"{i:02d}-{src.path.stem}{src.path.suffix.replace('.', '_')}.o")
        for i, src in enumerate(stage.sources)
    ]
    # every path relative to the tool's working folder: under the user seal the folders above may be closed to it
    cmds = [["clang"] + CFLAGS + debug + incs + ["-c", src.shown, "-o", f"../obj/{obj.name}"] for src, obj in jobs]
    from concurrent.futures import ThreadPoolExecutor

    cache = ObjectCache(srcdir, gendir)
    workers = int(os.environ.get("KIT_BUILD_JOBS", "0") or 0) or os.cpu_count() or 2  # compilers at once
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(
            pool.map(
                lambda job: cache.compile(job[1], srcdir / job[0][0].shown, job[0][1], outdir, deadline),
                zip(jobs, cmds),
            )
        )
    for (src, obj), r in zip(jobs, results):
        if r.returncode != 0:
            raise BuildError(f"{src.shown} does not compile", first_errors(r.stderr, srcdir, stage.root))
    cache.prune()
    size = sum(obj.stat().st_size for _, obj in jobs if obj.is_file())
    if size > OBJECTS_CAP:
        raise BuildError(
            f"the objects add up to {size >> 20} MiB, more than {OBJECTS_CAP >> 20} MiB: "
            "is something filling a section on purpose?"
        )
    (outdir / "compile_commands.json").write_text(json.dumps(_editor_commands(stage, jobs, gendir), indent=1))

    ldscript = outdir / "kernel.ld"
    linker_script = stage.first(LINKER_SCRIPT).relative_to(stage.first(LINKER_SCRIPT).parents[2])
    r = _run(
        ["clang", "-E", "-P", "-x", "c", "-D__ASSEMBLER__"] + incs + [str(linker_script), "-o", f"../{ldscript.name}"],
        cwd=srcdir,
        sealed=outdir,
        deadline=deadline,
    )
    if r.returncode != 0:
        raise BuildError("the linker script does not preprocess", first_errors(r.stderr, srcdir, stage.root))
    r = _run(
        ["ld.lld"] + LDFLAGS + ["-T", ldscript.name, "-o", elf.name] + [f"obj/{obj.name}" for _, obj in jobs],
        cwd=outdir,
        sealed=outdir,
        deadline=deadline,
    )
    if r.returncode != 0:
        raise BuildError("the kernel does not link", first_errors(r.stderr, srcdir, stage.root))
    with ThreadPoolExecutor(max_workers=2) as pool:  # two tools of about 0.4 s each, side by side
        done = [
            pool.submit(_listings, elf, outdir, Path(stage.root).resolve() == ROOT.resolve()),
            pool.submit(_make_iso, elf, iso, grub_config(stage), stage.modules, deadline),
        ]
        for f in done:
            f.result()
    stamp.write_text(digest)
    return Build(stage, outdir, elf, iso, False)


class ObjectCache:
    """Compiled objects kept by a hash of everything that makes them: the
    compiler's command (flags, include folders, where debug information
    says the files are), the folder it runs in, the source's bytes and the
    bytes of every header of the build. A build that changes one file (a
    mutant, a student's edit) compiles that file only. The objects live in
    the kit's build/objects/, shared by every build of this kit."""

    def __init__(self, srcdir, gendir):
        h = hashlib.sha256()
        for d in (srcdir, gendir):
            for p in sorted(Path(d).rglob("*")):
                if p.is_file() and p.suffix in (".h", ".inc"):
                    h.update(str(p.relative_to(d)).encode() + b"\0" + p.read_bytes() + b"\0")
        self.headers = h.hexdigest()
        self.dir = labs_mod.ROOT / "build" / "objects"
        self.stored = 0
        self.on = os.environ.get("KIT_OBJECT_CACHE", "").lower() not in ("0", "off", "no")  # bench: cold builds

    def key(self, cmd, cwd, source):
        h = hashlib.sha256(self.headers.encode())
        h.update(json.dumps([cmd, str(cwd)]).encode())
        h.update(source.read_bytes())
        return h.hexdigest()

    def compile(self, cmd, source, obj, sealed, deadline=None):
        """Run the compile `cmd` in the sandbox, or copy its object from the cache."""
        cwd = Path(sealed) / "src"
        key = self.key(cmd, cwd, source)  # the object's name in cmd is the same in every copy of the kit
        kept = self.dir / key[:2] / f"{key}.o"
        if not self.on:
            return _run(cmd, cwd=cwd, sealed=sealed, deadline=deadline)
        if kept.is_file():
            shutil.copyfile(kept, obj)
            return subprocess.CompletedProcess(cmd, 0, "", "")
        r = _run(cmd, cwd=cwd, sealed=sealed, deadline=deadline)
        if r.returncode == 0 and Path(obj).is_file():
            kept.parent.mkdir(parents=True, exist_ok=True)
            part = kept.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
            shutil.copyfile(obj, part)
            os.replace(part, kept)
            self.stored += 1
        return r

    def prune(self):
        """Keep the newest OBJECT_CACHE_KEEP objects."""
        if not self.stored:
            return
        kept = [p for p in self.dir.glob("*/*.o")]
        if len(kept) <= OBJECT_CACHE_KEEP:
            return
        kept.sort(key=lambda p: p.stat().st_mtime)
        for p in kept[: len(kept) - OBJECT_CACHE_KEEP]:
            p.unlink(missing_ok=True)


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


def _listings(elf, outdir, asm=True):
    """kernel.sym (llvm-nm) and kernel.asm (llvm-objdump): the 64-bit code,
    then the 32-bit code between __code32_start and __code32_end again,
    decoded as i386 (one ELF cannot say which bytes are 32-bit code).
    kernel.asm is for people: a kit copied elsewhere for a test or a mutant
    (asm=False) writes kernel.sym only, which the grader reads."""
    with open(outdir / "kernel.sym", "w") as f:
        scratch.run_tool(["llvm-nm", "-n", "-S", str(elf)], TOOL_TIMEOUT, stdout=f, stderr=subprocess.DEVNULL)
    if not asm:
        return
    code32 = Symbols.read(outdir / "kernel.sym").range("__code32_start", "__code32_end")
    with open(outdir / "kernel.asm", "w") as f:
        f.write("; 64-bit code (the 32-bit code is listed again at the end, decoded as i386)\n")
        f.flush()
        scratch.run_tool(
            ["llvm-objdump", "-d", "-l", "--no-show-raw-insn", str(elf)],
            TOOL_TIMEOUT,
            stdout=f,
            stderr=subprocess.DEVNULL,
        )
        if code32 and code32[1] > code32[0]:
            lo, hi = code32
            f.write(f"\n; 32-bit code 0x{lo:x}-0x{hi:x}, decoded as i386\n")
            f.flush()
            scratch.run_tool(
                [
                    "llvm-objdump",
                    "-d",
                    "-l",
                    "--no-show-raw-insn",
                    "--triple=i386",
                    f"--start-address=0x{lo:x}",
                    f"--stop-address=0x{hi:x}",
                    str(elf),
                ],
                TOOL_TIMEOUT,
                stdout=f,
                stderr=subprocess.DEVNULL,
            )


def _make_iso(elf, iso, grub_cfg_text, modules=(), deadline=None):
    """An ISO with GRUB, grub.cfg, the kernel and the stage's module files in /boot.
    The ISO's kernel has no debug information (GDB and the diagnosis read
    kernel.elf, which keeps it): debug information names the folder the kit
    lives in, and GRUB, which reads the whole file, would then place its boot
    information elsewhere and take other time in every clone of the kit."""
    with scratch.folder("kit-iso-") as tmp:
        boot = Path(tmp) / "boot"
        (boot / "grub").mkdir(parents=True)
        r = _run(["llvm-objcopy", "--strip-debug", str(elf), str(boot / "kernel.elf")], deadline=deadline)
        if r.returncode != 0:
            raise BuildError("llvm-objcopy --strip-debug failed", first_errors(r.stderr, ROOT))
        for m in modules:
            shutil.copy(m, boot / m.name)
        (boot / "grub" / "grub.cfg").write_text(grub_cfg_text)
        r = _run(["grub-mkrescue", "-o", str(iso), str(tmp)], deadline=deadline)
        if r.returncode != 0 or not iso.is_file():
            raise BuildError("grub-mkrescue failed", first_errors(r.stderr, ROOT))
