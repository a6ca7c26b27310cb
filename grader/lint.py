"""make lint and make format: the kit's code in the shape its formatters give it.

    python3 -m grader.lint            black --check, flake8, clang-format --dry-run --Werror
    python3 -m grader.lint --fix      black and clang-format rewrite the files (make format)

The settings live at the root: pyproject.toml (black), .flake8 (flake8) and
.clang-format (clang-format). Every file of the kit that git tracks is
checked; in a students' copy the student files of labs/ are left out, since
their shape is the student's business (the staff's copy checks them too:
skeletons are read by every student).
"""
import argparse
import subprocess
import sys

from . import deps, labs

TIMEOUT = 300


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
