"""make handout OUT=DIR [LAB=NN]: the students' repository.

A fresh `git init` with one commit: the kit's tracked files less everything
that is the instructor's (LEAVE_OUT): the reference solutions, each lab's
hidden/ folder and mutants.py, the instructors' tools and guide, the kit's
own CI, and the tests marked `instructor` (a module whose `pytestmark` is
the marker is left out whole; a marked test function is cut out of its
module). The kit's README gives way to the students' one
(.github/handout/README.md), and .github/handout/workflows/grade.yml becomes
the repository's GitHub Actions workflow (GitHub Classroom), with LAB filled in.
"""
import ast
import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path

from . import labs as labs_mod

ROOT = labs_mod.ROOT
TEMPLATES = ".github/handout"
LEAVE_OUT = [
    ("solutions/*", "the reference solutions"),
    ("labs/*/hidden/*", "hidden checks and variants"),
    ("labs/*/mutants.py", "deliberate breaks, written against solutions/"),
    ("grader/mutants.py", "the instructors' mutant runner"),
    ("grader/handout.py", "this tool"),
    ("grader/gradescope.py", "the Gradescope bundle"),
    ("grader/batch.py", "batch grading"),
    ("grader/gradebook.py", "gradebooks, rosters and LMS files"),
    ("grader/collect.py", "repositories collected at a deadline"),
    ("grader/similarity.py", "the similarity report"),
    ("book/91-instructors.md", "the instructors' guide"),
    ("book/92-maintainers.md", "the kit's design, for its maintainers"),
    ("CONTRIBUTING.md", "the maintainers' loop and habits"),
    ("book/experiments_staff.py", "the book's experiments on the reference code (they quote it)"),
    ("grader/release.py", "the solution release"),
    (".ci/*", "the kit's own CI (the handout has .github/workflows/grade.yml)"),
    (".github/*", "the templates the handout is made from"),
    ("README.md", "the kit's README: the handout has the students' one"),
    (labs_mod.STAFF_MARK, "the mark of the staff's copy"),
]
MARK = "instructor"


def left_out(path):
    """Why `path` stays out of the handout, or None."""
    for pattern, why in LEAVE_OUT:
        if fnmatch.fnmatch(path, pattern):
            return why
    return None


def _is_mark(node):
    """pytest.mark.instructor, bare or called."""
    node = node.func if isinstance(node, ast.Call) else node
    return (
        isinstance(node, ast.Attribute)
        and node.attr == MARK
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "mark"
    )


def strip_instructor_tests(text):
    """A test module less its instructor-only tests: None when the whole
    module is marked (pytestmark = pytest.mark.instructor), else its text
    without the marked functions (decorators included)."""
    tree = ast.parse(text)
    cut = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            marks = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            if any(_is_mark(m) for m in marks):
                return None
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and any(_is_mark(d) for d in node.decorator_list):
            start = min(d.lineno for d in node.decorator_list)
            cut.append((start, node.end_lineno))
    lines = text.splitlines(keepends=True)
    for start, end in sorted(cut, reverse=True):
        del lines[start - 1 : end]
    return re.sub(r"\n{4,}", "\n\n\n", "".join(lines))  # no run of blank lines where a test was


def contents(root=ROOT):
    """{relative path: bytes} of the handout, and [(path, why)] left out."""
    root = Path(root)
    out, dropped = {}, []
    for rel in labs_mod.kit_files(root):
        why = left_out(rel)
        data = (root / rel).read_bytes()
        if why is None and rel.endswith(".py") and re.search(r"(^|/)test_[^/]*\.py$", rel):
            text = strip_instructor_tests(data.decode())
            if text is None:
                why = "instructor-only tests (pytestmark = pytest.mark.instructor)"
            else:
                data = text.encode()
        if why:
            dropped.append((rel, why))
        else:
            out[rel] = data
    return out, dropped


def workflow(root, lab):
    text = (Path(root) / TEMPLATES / "workflows" / "grade.yml").read_text()
    return text.replace("@LAB@", lab)


def write(out, root=ROOT, lab=None):
    """Write the handout to `out` (which must not exist or be empty) and
    commit it; returns the list of what was left out."""
    out, root = Path(out), Path(root)
    if out.exists() and any(out.iterdir()):
        raise labs_mod.LabError(f"{out} exists and is not empty: the handout goes into a new folder")
    if not (root / TEMPLATES / "README.md").is_file():
        raise labs_mod.LabError("no .github/handout/README.md here: `make handout` runs in an instructor's copy")
    first = labs_mod.discover(root)[0]
    lab = labs_mod.find(lab, root).name[:2] if lab else first.name[:2]
    files, dropped = contents(root)
    files["README.md"] = (root / TEMPLATES / "README.md").read_bytes()
    files[".github/workflows/grade.yml"] = workflow(root, lab).encode()
    files[".gitignore"] = files.get(".gitignore", b"") + b"reports/\n"
    for rel, data in files.items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        src = root / rel
        if src.is_file() and os.access(src, os.X_OK):
            p.chmod(0o755)
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="Course staff",
        GIT_AUTHOR_EMAIL="staff@course.invalid",
        GIT_COMMITTER_NAME="Course staff",
        GIT_COMMITTER_EMAIL="staff@course.invalid",
    )
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "The kit: labs, grader and book"],
    ):
        r = subprocess.run(cmd, cwd=out, capture_output=True, text=True, env=env, timeout=120)
        if r.returncode != 0:
            raise labs_mod.LabError(f"{' '.join(cmd)} failed in {out}: {r.stderr.strip()}")
    return dropped


def add_parsers(sub):
    h = sub.add_parser("handout", help="write the students' repository (no solutions, no hidden checks)")
    h.add_argument("out", type=Path, help="a new folder")
    h.add_argument("--lab", help="the lab the repository's GitHub workflow grades (default: the first)")
    h.set_defaults(run=run)


def run(args):
    dropped = write(args.out, lab=args.lab)
    n = len(list((args.out).rglob("*")))
    print(f"handout: {args.out} ({n} files and folders, one commit); left out:", file=sys.stderr)
    groups = {}
    for rel, why in dropped:
        groups.setdefault(why, []).append(rel)
    for why, rels in groups.items():
        shown = ", ".join(rels[:3]) + (f" and {len(rels) - 3} more" if len(rels) > 3 else "")
        print(f"  {why}: {shown}", file=sys.stderr)
    return 0
