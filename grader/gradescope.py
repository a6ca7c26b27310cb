"""Gradescope: `make gradescope LAB=NN` writes build/gradescope/lab-NN-autograder.zip.

The zip holds, at its root (Gradescope unpacks it into /autograder/source):
  setup.sh         run once as root when Gradescope builds the image (Ubuntu
                   22.04 or 24.04): python3, then the kit's own package list
                   (python3 -m grader setup --for qemu, grader/deps.py)
  run_autograder   run for each submission: python3 -m grader.gradescope run,
                   and if even that fails, a results.json that says so
  bundle.json      the lab, and where the labs below it come from
  labs/ grader/    the kit's given files and its engine; the graded lab's
                   hidden/ folder; no solutions/, no mutants, no tests, no book
  reference/       with `below=reference` (the default), the reference student
                   files of the labs below the graded one, never of the lab itself

A run takes the submission from $AUTOGRADER_ROOT/submission (default
/autograder): loose files or a whole repository (grader/intake.py), grades it
in a temporary build folder with a new seed, and writes
$AUTOGRADER_ROOT/results/results.json (report.gradescope_results). Whatever
happens, a results file says what happened.

Sealed on every host (grader/sandbox.py); results.json's output says how:
  - bubblewrap, where the container lets it make namespaces;
  - else, as root (Gradescope runs run_autograder as root), a user of its
    own: before the build, the autograder's root (the bundle with its
    reference/ and hidden checks, submission_metadata.json, the results)
    is made readable by root only, and checked to be so, so that an
    `#include` or `.incbin` of any of it, or of /etc/shadow, fails;
  - else (not root, or no user can be switched to), only what cannot leak
    is graded: the labs below come from the submission itself, and
    reference/, the hidden checks (loaded first) and the metadata are moved
    to random names, out of the compiler's reach, for the time of the
    grading. As root without any seal, nothing is built.
KIT_SANDBOX=off grades with the bundle as it is (trusted code only): the
hidden checks are still moved away.
"""
import argparse
import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

from . import labs as labs_mod, scratch

ROOT = labs_mod.ROOT
KEEP = ("labs/", "grader/", "Makefile")
DROP = ("grader/tests/", "grader/handout.py", "grader/batch.py", "grader/bench.py", "grader/native.py")
EXECUTABLE = 0o100755 << 16

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image
# (Ubuntu 22.04 or 24.04): python3, then the packages of the kit's own list
# (grader/deps.py: the compiler, GRUB, QEMU, bubblewrap).
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends python3 ca-certificates
python3 -m grader setup --for qemu
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for each submission: grade lab @LAB@ from
# $AUTOGRADER_ROOT/submission into $AUTOGRADER_ROOT/results/results.json.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
[ -d "$SOURCE/grader" ] || SOURCE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$ROOT/results"
rm -f "$ROOT/results/results.json"
# Gradescope gives a container part of a CPU while os.cpu_count() sees the
# whole host: two compilers at a time keep the memory well under its limit.
export KIT_BUILD_JOBS="${KIT_BUILD_JOBS:-2}"
cd "$SOURCE" && python3 -m grader.gradescope run --root "$ROOT"
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then
    why="The autograder itself failed (exit status $status) before it could grade this submission"
    printf '{"score": 0, "execution_time": 0, "stdout_visibility": "hidden", "tests": [], "output": "%s"}\\n' \\
        "$why: nothing was graded. Please tell the course staff." \\
        > "$ROOT/results/results.json"
fi
exit 0
"""


def contents(lab, below="reference", root=ROOT):
    """{path in the zip: bytes} of lab's bundle."""
    from . import handout  # an instructor's tool: not in the bundle itself

    root = Path(root)
    every = labs_mod.discover(root)
    top = labs_mod.find(lab, root, every)
    files, _ = handout.contents(root)
    out = {rel: data for rel, data in files.items() if rel.startswith(KEEP) and not rel.startswith(DROP)}
    out["grader/gradescope.py"] = (root / "grader/gradescope.py").read_bytes()
    for p in sorted((top.dir / "hidden").rglob("*.py")) if (top.dir / "hidden").is_dir() else []:
        out[str(p.relative_to(root))] = p.read_bytes()
    if below == "reference":
        for lower in every:
            if lower.number < top.number:
                for name in lower.student:
                    out[f"reference/{lower.name}/{name}"] = (lower.solution_dir / name).read_bytes()
    out["bundle.json"] = json.dumps({"lab": top.name, "below": below}, indent=1).encode() + b"\n"
    out["setup.sh"] = SETUP.encode()
    out["run_autograder"] = RUN.replace("@LAB@", top.name).encode()
    return out


def write_zip(lab, below="reference", root=ROOT, outdir=None):
    top = labs_mod.find(lab, root)
    outdir = Path(outdir or Path(root) / "build" / "gradescope")
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"lab-{top.name[:2]}-autograder.zip"
    tmp = path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for rel, data in sorted(contents(lab, below, root).items()):
            info = zipfile.ZipInfo(rel, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = EXECUTABLE if rel in ("setup.sh", "run_autograder") else 0o100644 << 16
            z.writestr(info, data)
    os.replace(tmp, path)
    return path


# --- one submission, inside Gradescope's container ------------------------------


def student_reproduce(st):
    """What a student runs in their own tree to repeat this test."""
    return (
        f"make grade LAB={st.lab.number:02d} SEED=0x{st.seed:08x}"
        + ("" if st.runs["default"].memory_chosen_by_seed else f" MEMORY={st.memory_mb}")
        + " (on your own labs below it)" * (st.lab.number > 1)
    )


def failure_results(what, started):
    return {
        "score": 0,
        "execution_time": round(time.monotonic() - started),
        "stdout_visibility": "hidden",
        "output": f"The autograder failed: {what}. Nothing was graded; please tell the course staff.",
        "tests": [],
    }


class MovedAway:
    """Without a sandbox the compiler could read any file by name: a file or
    folder is moved to a random name for the time of the grading (a
    compiler cannot list folders, it can only name files)."""

    def __init__(self, path):
        self.src, self.away = Path(path), None

    def __enter__(self):
        if self.src.exists():
            away = Path(tempfile.gettempdir()) / f"kit-{secrets.token_hex(16)}"
            try:
                shutil.move(str(self.src), str(away))
                self.away = away
            except OSError:
                pass
        return self

    def __exit__(self, *exc):
        if self.away is not None:
            shutil.move(str(self.away), str(self.src))


class HiddenAway(MovedAway):
    """The graded lab's hidden checks (loaded first), out of the compiler's reach."""

    def __init__(self, lab):
        super().__init__(lab.dir / "hidden")


def lock(root, source):
    """For the user seal: the autograder's root, the bundle and the metadata
    readable by root only. Returns the files the seal's user could still read."""
    for path, mode in ((root, 0o700), (source, 0o700), (root / "results", 0o700), (root / METADATA, 0o600)):
        if path.exists():
            path.chmod(mode)
    from . import sandbox

    return sandbox.exposed([root / METADATA] + [p for p in sorted(source.rglob("*")) if p.is_file()])


METADATA = "submission_metadata.json"


def grade_upload(upload, bundle, source, notes, root=None):
    """Grade one upload under the best seal here; returns the StageResult."""
    from . import build as build_mod, grade, intake, sandbox, stage as stage_mod

    root = Path(root) if root else Path(upload).parent
    lab = labs_mod.find(bundle["lab"], source)
    seed = stage_mod.new_seed()
    below = bundle["below"]
    seal = sandbox.mode()
    trusted = os.environ.get("KIT_SANDBOX", "").lower() in sandbox.OFF
    away = []
    if seal == "user":
        open_to_it = lock(root, source)
        if open_to_it:
            notes.append(f"The sandbox's user could still read {len(open_to_it)} files of the autograder.")
            seal = None
        else:
            notes.append(
                "This submission was built and run as a user of its own (this container cannot make "
                "namespaces): no file of the autograder was readable to it."
            )
    if seal is None and not trusted:
        if os.geteuid() == 0:
            st = stage_mod.make(lab.name, stage_mod.Origin("submission", upload), source)
            why = (
                f"nothing was built: the autograder runs as root, and can neither make a sandbox nor "
                f"switch to a user of its own here ({sandbox.why_not()})"
            )
            return grade.failed_stage(st, seed, "qemu", why, build_error=build_mod.BuildError(why))
        notes.append(
            f"No sandbox here ({sandbox.why_not()}): graded on the submission's own files only"
            + (
                " (every lab up to this one: the bundle's reference code was kept out of reach)"
                if below != "submission"
                else ""
            )
            + "; the hidden checks and the submission's metadata were moved out of reach."
        )
        below = "submission"
        away = [source / "reference", root / METADATA]
    reference = source / "reference" if below == "reference" else None
    with scratch.folder("kit-autograder-") as tmp:
        try:
            origin = intake.materialize(upload, lab.name, Path(tmp) / "tree", below, source, reference)
        except intake.IntakeError as e:
            return intake.refused(stage_mod.make(lab.name, stage_mod.Origin("submission", upload), source), e, seed)
        st = stage_mod.make(lab.name, origin, source)
        if seal is None:
            if trusted:
                notes.append(f"This submission was built without the sandbox ({sandbox.why_not()}).")
            os.environ["KIT_SANDBOX"] = "off"
            lab.module("hidden.checks")  # loaded now, then out of the compiler's reach
            with contextlib.ExitStack() as stack:
                for path in [lab.dir / "hidden"] + away:
                    stack.enter_context(MovedAway(path))
                return grade.grade_stage(st, seed=seed, outdir=Path(tmp) / "build")
        return grade.grade_stage(st, seed=seed, outdir=Path(tmp) / "build")


def autograde(root):
    """The whole of run_autograder: never leaves without a results file."""
    from . import report

    started = time.monotonic()
    root = Path(root)
    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    try:
        source = Path(__file__).resolve().parent.parent
        bundle = json.loads((source / "bundle.json").read_text())
        upload = root / "submission"
        notes = []
        st = grade_upload(upload, bundle, source, notes, root)
        report.terminal([st], color=False)
        data = report.gradescope_results([st], " ".join(notes), reproduce=student_reproduce)
        data["execution_time"] = round(time.monotonic() - started)
    except Exception as e:  # the student still gets a results file that says what happened
        traceback.print_exc()
        data = failure_results(f"{type(e).__name__}: {e}", started)
    results.write_text(json.dumps(data, indent=2) + "\n")
    return 0


def add_parsers(sub):
    g = sub.add_parser("gradescope", help="write build/gradescope/lab-NN-autograder.zip (LAB=all: every lab)")
    g.add_argument("--lab", required=True, help="a lab, or all")
    g.add_argument(
        "--below",
        choices=("reference", "submission"),
        default="reference",
        help="the labs below the graded one: the reference files in the bundle (default), "
        "or the student's own from the submission",
    )
    g.set_defaults(run=run_make)


def seal_lines(lab, below="reference", root=ROOT):
    """What `make gradescope` says of the bundle's seal: which one it will
    use in the container, and what a submission can see under each."""
    from . import sandbox

    every = labs_mod.discover(root)
    top = labs_mod.find(lab, root, every)
    lower = [x.name[:2] for x in every if x.number < top.number]
    out = [
        "  seal: bubblewrap where the container can make namespaces (nothing of the autograder visible);",
        f"        else, as root (Gradescope's way), a user of its own (uid {sandbox.UID_BASE}+): the autograder's",
        "        root, the bundle, reference/, hidden/ and submission_metadata.json readable by root only, so that an",
        "        #include or .incbin of them (or of /etc/shadow) fails; a submission can name the files every user",
        "        may read (/usr, /etc/passwd) and write where every user may (/tmp);",
        "        else the labs below come from the submission itself, reference/, hidden/ and the metadata are",
        "        moved out of its reach (as root with no seal at all: nothing is built). results.json says which.",
    ]
    if below == "reference" and lower:
        out += [
            f"  exposes: the reference code of labs {', '.join(lower)} (reference/), compiled into every student's",
            "        kernel under a seal: a determined student can print it (bundle once those labs are past due,",
            "        or make the bundle with --below submission)",
        ]
    else:
        out.append("  exposes: no reference code (the labs below come from the submission)")
    out.append(f"  this machine's seal would be: {sandbox.describe()}")
    return out


def run_make(args):
    names = [lab.name for lab in labs_mod.discover()] if args.lab == "all" else [args.lab]
    for name in names:
        path = write_zip(name, args.below)
        with zipfile.ZipFile(path) as z:
            n = len(z.namelist())
        print(f"gradescope: {path.relative_to(ROOT)} ({n} files, {path.stat().st_size // 1024} KiB)")
        for line in seal_lines(name, args.below):
            print(line)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python3 -m grader.gradescope", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("what", choices=["run"])
    ap.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    args = ap.parse_args(argv)
    return autograde(args.root)


if __name__ == "__main__":
    sys.exit(main())
