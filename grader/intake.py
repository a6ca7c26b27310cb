"""What a student hands in, mapped onto the kit's layout.

An upload is a folder: a whole repository (labs/NN-name/heap.c), a copy of
one lab's folder, or a few loose files (heap.c, freelist.c). For each
student file the stage needs (lab.json's "student" list), the intake looks
for a file of that name:
  - at labs/NN-name/NAME, anywhere in the upload, first (the kit's layout);
  - else the files called NAME wherever they are;
  - never under build/, __pycache__/ or a hidden folder (.git/, __MACOSX/);
  - several candidates with the same bytes count as one; with different
    bytes the upload is ambiguous, and the verdict names them.
What it finds is copied (a regular file, never through a link, at most
build.STUDENT_FILE_CAP bytes) into a fresh tree with the kit's layout,
which the build then grades as a submission.

Which labs come from the upload: `below="submission"` takes every student
file of labs 01..NN from it; `below="reference"` takes lab NN's only and
the labs below it from the reference files (the kit's solutions/, or the
reference/ folder of a Gradescope bundle).
"""
import hashlib
import os
import shutil
import stat
from pathlib import Path

from . import build as build_mod, grade, labs as labs_mod, stage as stage_mod

SKIP_DIRS = {"build", "__pycache__", "node_modules"}
BELOW = ("submission", "reference")


class IntakeError(Exception):
    """The upload cannot be graded: `summary` is one line, `details` says what to do."""

    def __init__(self, summary, details=""):
        super().__init__(summary)
        self.summary = summary
        self.details = details


def needed(spec, below="submission", root=labs_mod.ROOT):
    """[(lab, file name)]: the student files the upload must hold for lab `spec`."""
    if below not in BELOW:
        raise ValueError(f"below is one of {BELOW}")
    every = labs_mod.discover(root)
    top = labs_mod.find(spec, root, every)
    chosen = [top] if below == "reference" else [lab for lab in every if lab.number <= top.number]
    return [(lab, name) for lab in chosen for name in lab.student]


def scan(upload):
    """{file name: [paths]} of every file and link in the upload, outside skipped folders."""
    found = {}
    for d, dirs, files in os.walk(upload):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS and not x.startswith("."))
        for f in sorted(files):
            found.setdefault(f, []).append(Path(d) / f)
    return found


def _shown(p, upload):
    return str(p.relative_to(upload))


def _read(p, upload):
    """The bytes of a candidate, or IntakeError: a link, not a regular file, too large."""
    rel = _shown(p, upload)
    info = os.lstat(p)
    if stat.S_ISLNK(info.st_mode):
        raise IntakeError(f"{rel} is a symbolic link: a student file must be a regular file")
    if not stat.S_ISREG(info.st_mode):
        raise IntakeError(f"{rel} is not a regular file")
    cap = build_mod.STUDENT_FILE_CAP
    if info.st_size > cap:
        raise IntakeError(f"{rel} is {info.st_size // 1024} KiB: a student file may have at most {cap // 1024} KiB")
    fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        return f.read(cap + 1)[:cap]


def locate(upload, wanted):
    """{(lab name, file name): bytes} for every wanted (lab, name), or IntakeError."""
    upload = Path(upload)
    if not upload.is_dir():
        raise IntakeError(f"the submission {upload.name or upload} is not a folder")
    found, out = scan(upload), {}
    for lab, name in wanted:
        cands = found.get(name, [])
        exact = [p for p in cands if p.parent.name == lab.name and p.parent.parent.name == "labs"]
        pool = exact or cands
        if not pool:
            names = sorted(n for n in found if not n.startswith("."))
            seen = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "") if names else "nothing"
            need = ", ".join(n for lab_, n in wanted if lab_ is lab)
            raise IntakeError(
                f"missing {name}: lab {lab.name} needs {need}; the submission has {seen}",
                f"hand in the files that labs/{lab.name}/README.md names, loose or in the "
                f"kit's layout (labs/{lab.name}/{name})",
            )
        contents = {}
        for p in pool:
            contents.setdefault(_read(p, upload), []).append(p)
        if len(contents) > 1:
            where = ", ".join(_shown(p, upload) for p in pool[:4])
            raise IntakeError(
                f"{len(pool)} different files called {name}: {where}",
                f"keep one, or put the one to grade at labs/{lab.name}/{name}",
            )
        out[(lab.name, name)] = next(iter(contents))
    return out


def materialize(upload, spec, dest, below="submission", root=labs_mod.ROOT, reference=None):
    """Copy the upload's student files for lab `spec` into dest (the kit's
    layout) and return the stage.Origin that grades them; IntakeError when
    a file is missing or ambiguous. dest is emptied first."""
    files = locate(upload, needed(spec, below, root))
    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    for (lab_name, name), data in files.items():
        (dest / "labs" / lab_name).mkdir(parents=True, exist_ok=True)
        (dest / "labs" / lab_name / name).write_bytes(data)
    dest.mkdir(parents=True, exist_ok=True)
    return stage_mod.Origin(
        "submission", dest, below == "reference", Path(reference) if reference else None, Path(upload)
    )


def tree_for(upload, root=labs_mod.ROOT):
    """A stable folder under build/ for the tree made from this upload, so
    that grading the same upload twice reuses its build."""
    key = hashlib.sha256(str(Path(upload).resolve()).encode()).hexdigest()[:10]
    return Path(root) / "build" / "submissions" / f"{Path(upload).resolve().name}-{key}"


def refused(stage, error, seed, emulator="qemu"):
    """The result of a stage that was never built: every check fails with
    the intake's verdict, as a build failure would."""
    return grade.failed_stage(
        stage,
        seed,
        emulator,
        f"build failed: {error.summary}",
        build_error=build_mod.BuildError(error.summary, error.details),
    )
