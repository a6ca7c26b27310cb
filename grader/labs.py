"""The labs that exist: each a folder labs/NN-name/ with a lab.json, found
by looking, never named by the engine.

lab.json says what the engine needs to know of a lab:
    title      one line
    student    the files the student writes (solutions/NN-name/ holds them completed)
    chapter    the book chapter, book/NN-name.md
    header     the header kmain includes for the lab's calls (optional)
    modules    files GRUB loads as Multiboot2 modules (optional)
Everything else a lab knows lives in its folder as code: checks.py (computed
checks, hints, places), mutants.py (its deliberate breaks), its .ld
fragments, its tools, and hidden/checks.py (checks the students' copy leaves
out). Those Python files are loaded as a package of their
own, so a lab's modules can import each other (`from . import model_ref`).
"""
import hashlib
import importlib
import json
import os
import re
import subprocess
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB_DIR = re.compile(r"^(\d\d)-[a-z0-9-]+$")
STAFF_MARK = ".staff-copy"  # at the root of the course staff's copy only: `make handout` leaves it out


def staff_copy(root=ROOT):
    """Is this the course staff's copy of the kit? Told by its marker file,
    never by the presence of solutions/ (the staff release reference code
    into a students' copy during a term)."""
    return (Path(root) / STAFF_MARK).is_file()


class LabError(Exception):
    """A lab name that does not exist, or a lab folder that is broken."""


@dataclass(frozen=True)
class Lab:
    number: int
    name: str  # the folder's name: NN-name
    dir: Path
    title: str
    student: tuple = ()
    chapter: str = ""
    header: str = ""
    modules: tuple = ()
    root: Path = field(default=ROOT, compare=False)

    @property
    def short(self):
        return self.name.split("-", 1)[1]

    @property
    def solution_dir(self):
        return self.root / "solutions" / self.name

    def module(self, name):
        """The lab's Python module `name` (checks, mutants, hidden.checks for
        hidden/checks.py, ...), or None. A module once loaded stays loaded,
        even if its file is moved away."""
        package = "kitlab_" + hashlib.sha1(str(self.dir).encode()).hexdigest()[:12]
        if not (self.dir / (name.replace(".", "/") + ".py")).is_file():
            return sys.modules.get(f"{package}.{name}")  # loaded before its file was moved away, or None
        if package not in sys.modules:
            pkg = types.ModuleType(package)
            pkg.__path__ = [str(self.dir)]
            pkg.LAB = self
            sys.modules[package] = pkg
        try:
            return importlib.import_module(f"{package}.{name}")
        except SyntaxError as e:
            raise LabError(f"labs/{self.name}/{name}.py: {e}") from None


def read_lab(d, root):
    conf = d / "lab.json"
    try:
        meta = json.loads(conf.read_text())
    except ValueError as e:
        raise LabError(f"labs/{d.name}/lab.json: not valid JSON ({e})") from None
    return Lab(
        int(d.name[:2]),
        d.name,
        d,
        meta.get("title", d.name),
        tuple(meta.get("student", [])),
        meta.get("chapter", ""),
        meta.get("header", ""),
        tuple(meta.get("modules", [])),
        root,
    )


def discover(root=ROOT):
    """Every lab under root/labs, in order."""
    labs_dir = Path(root) / "labs"
    found = [
        read_lab(d, Path(root))
        for d in sorted(labs_dir.glob("[0-9][0-9]-*"))
        if LAB_DIR.match(d.name) and (d / "lab.json").is_file()
    ]
    numbers = [lab.number for lab in found]
    if len(set(numbers)) != len(numbers):
        raise LabError("two lab folders share a number under labs/")
    return found


def find(spec, root=ROOT, labs=None):
    """The lab named by spec: its number ('2', '02'), its folder's name, or the name after the number."""
    labs = discover(root) if labs is None else labs
    spec = str(spec).strip()
    for lab in labs:
        if spec in (lab.name, lab.short) or (re.fullmatch(r"\d+", spec) and int(spec) == lab.number):
            return lab
    names = ", ".join(lab.name for lab in labs) or "none"
    raise LabError(f"no lab called '{spec}' (labs here: {names})")


def lab_of(path):
    """The lab whose folder holds `path` (for a lab's own tests and tools)."""
    d = Path(path).resolve().parent
    while d != d.parent and not (d / "lab.json").is_file():
        d = d.parent
    if not (d / "lab.json").is_file():
        raise LabError(f"{path} is not inside a lab folder")
    return read_lab(d, d.parent.parent)


BEGIN = re.compile(r"LAB (\d+): your code here\.")
END = re.compile(r"LAB (\d+): end of your code\.")


def outside_regions(text):
    """The file's lines with the inside of every `LAB n` region removed (the
    marker lines kept), and the number of regions; raises LabError on a
    region that is not closed or is closed twice."""
    kept, inside, regions = [], None, 0
    for n, line in enumerate(text.splitlines(), 1):
        b, e = BEGIN.search(line), END.search(line)
        if b:
            if inside is not None:
                raise LabError(f"line {n}: a LAB region opens inside another")
            inside = b.group(1)
            kept.append(line)
        elif e:
            if inside != e.group(1):
                raise LabError(f"line {n}: LAB {e.group(1)} region closed but not open")
            inside = None
            regions += 1
            kept.append(line)
        elif inside is None:
            kept.append(line)
    if inside is not None:
        raise LabError(f"a LAB {inside} region is never closed")
    return kept, regions


def skeleton_drift(lab):
    """Where the solution of each student file of `lab` differs from its
    skeleton outside the LAB regions: a list of one-line problems."""
    problems = []
    for name in lab.student:
        skel, sol = lab.dir / name, lab.solution_dir / name
        if not skel.is_file() or not sol.is_file():
            problems.append(f"{lab.name}/{name}: missing in labs/ or solutions/")
            continue
        try:
            a, na = outside_regions(skel.read_text())
            b, nb = outside_regions(sol.read_text())
        except LabError as e:
            problems.append(f"{lab.name}/{name}: {e}")
            continue
        if na == 0:
            problems.append(f"{lab.name}/{name}: no LAB region")
        elif a != b:
            import difflib

            first = next(
                d
                for d in difflib.unified_diff(a, b, lineterm="", n=0)
                if d[:1] in "+-" and not d.startswith(("+++", "---"))
            )
            problems.append(f"{lab.name}/{name}: differs outside the LAB regions: {first.strip()}")
    return problems


def kit_files(root=ROOT):
    """The files of the kit: git's list when it is a checkout, else every file
    outside build/, .git/ and caches."""
    root = Path(root)
    if (root / ".git").exists():
        r = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, timeout=60)
        if r.returncode == 0:
            return [p for p in r.stdout.decode().split("\0") if p and (root / p).is_file()]
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in ("build", ".git", "__pycache__", ".pytest_cache")]
        out += [str((Path(d) / f).relative_to(root)) for f in files if not f.endswith(".pyc")]
    return sorted(out)
