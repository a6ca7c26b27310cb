"""The labs that exist, and which files make up a stage.

A lab is a directory labs/NN-name/ with a lab.json naming its student files.
Stage N is the union of labs 01..N; each student file comes from the
student's tree, from solutions/, or from a submission, never mixed per lab.
"""
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_SUFFIXES = (".c", ".S")


class LabError(Exception):
    """A lab name that does not exist, or a lab directory that is broken."""


@dataclass
class Lab:
    number: int
    name: str                   # "01-boot"
    dir: Path
    title: str
    student: list = field(default_factory=list)
    chapter: str = ""
    modules: list = field(default_factory=list)     # files GRUB loads as Multiboot2 modules

    @property
    def short(self):
        return self.name.split("-", 1)[1] if "-" in self.name else self.name


def discover(root=ROOT):
    """Every lab under root/labs, in order."""
    labs = []
    for d in sorted((root / "labs").glob("[0-9][0-9]-*")):
        conf = d / "lab.json"
        if not conf.is_file():
            continue
        try:
            meta = json.loads(conf.read_text())
        except ValueError as e:
            raise LabError(f"{conf}: not valid JSON ({e})") from None
        labs.append(Lab(int(d.name[:2]), d.name, d, meta.get("title", d.name),
                        list(meta.get("student", [])), meta.get("chapter", ""), list(meta.get("modules", []))))
    return labs


def find(spec, root=ROOT):
    """The lab named by spec: '2', '02', '02-serial' or 'serial'."""
    labs = discover(root)
    spec = str(spec).strip()
    for lab in labs:
        if spec in (lab.name, lab.short) or (re.fullmatch(r"\d+", spec) and int(spec) == lab.number):
            return lab
    names = ", ".join(lab.name for lab in labs) or "none"
    raise LabError(f"no lab called '{spec}' (labs here: {names})")


@dataclass
class Source:
    path: Path                  # the file compiled
    shown: str                  # how reports name it: labs/01-boot/mb2.c
    lab: Lab
    student: bool


def stage_sources(number, solutions=False, submission=None, root=ROOT, solutions_below=False):
    """The source files of stage `number`, with student files taken from
    `submission` (a student tree) or from solutions/ when asked. With
    solutions_below, labs before `number` use solutions/ whatever the source:
    lab N graded alone on top of the reference labs."""
    sources = []
    for lab in discover(root):
        if lab.number > number:
            break
        for f in sorted(lab.dir.iterdir()):
            if f.suffix not in SOURCE_SUFFIXES:
                continue
            student = f.name in lab.student
            path, shown = f, f"labs/{lab.name}/{f.name}"
            below = solutions_below and lab.number < number
            if student and submission is not None and not below:
                path = Path(submission) / "labs" / lab.name / f.name
            elif student and (solutions or below):
                path, shown = root / "solutions" / lab.name / f.name, f"solutions/{lab.name}/{f.name}"
            sources.append(Source(path, shown, lab, student))
    return sources


def include_dirs(number, root=ROOT):
    return [lab.dir for lab in discover(root) if lab.number <= number]


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


def skeleton_drift(lab, root=ROOT):
    """Where the solution of each student file of `lab` differs from its
    skeleton outside the LAB regions: a list of one-line problems."""
    problems = []
    for name in lab.student:
        skel, sol = lab.dir / name, root / "solutions" / lab.name / name
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
            first = next(d for d in difflib.unified_diff(a, b, lineterm="", n=0) if d[:1] in "+-"
                         and not d.startswith(("+++", "---")))
            problems.append(f"{lab.name}/{name}: differs outside the LAB regions: {first.strip()}")
    return problems
