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
                        list(meta.get("student", [])), meta.get("chapter", "")))
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
