"""make release LAB=NN OUT=DIR: lab NN's reference code, for the students,
after its deadline.

It writes OUT/solutions/NN-name/ (the completed student files of lab NN,
nothing else: no other lab's, no hidden checks, no mutants) and
OUT/RELEASE.md saying what it is. OUT is a new folder, or a clone of a
student's repository: there only solutions/NN-name/ is written, and a file
already there with other bytes stops it. In the students' copy,
`make grade LAB=MM BELOW=solutions` (MM above NN) then takes lab NN from
this reference code (book/91-instructors.md, "Releasing the solutions").

Until its release, the handout carries no line of the reference code:
`solution_lines` lists the lines a student writes (inside a LAB region,
absent from every given file and skeleton, long enough to mean something)
and `leaks` finds them in a set of files; a test greps the whole handout.
"""
import re
import sys
from pathlib import Path

from . import labs as labs_mod
from .handout import left_out

MIN_LINE = 8  # characters, spaces left out: shorter lines (`return 0;`, `}`) are everybody's
OPEN = re.compile(r"LAB \d+: your code here")
CLOSE = re.compile(r"LAB \d+: end of your code")


def _norm(line):
    return " ".join(line.split())


def solution_lines(root=labs_mod.ROOT):
    """{line: 'NN-name/file'} of every line a student writes that no given file or skeleton holds."""
    root = Path(root)
    every = labs_mod.discover(root)
    given = []
    for lab in every:
        for p in sorted(lab.dir.rglob("*")):
            rel = str(p.relative_to(root))
            if p.is_file() and p.suffix in (".c", ".h", ".S", ".ld", ".py", ".md", ".txt") and not left_out(rel):
                given.append(_norm(p.read_text(errors="replace")))
    given = "\n".join(given)
    out = {}
    for lab in every:
        for name in lab.student:
            inside = False
            path = lab.solution_dir / name
            if not path.is_file():
                continue
            for line in path.read_text(errors="replace").splitlines():
                if OPEN.search(line):
                    inside = True
                elif CLOSE.search(line):
                    inside = False
                elif inside:
                    n = _norm(line)
                    if len(n.replace(" ", "")) >= MIN_LINE and n not in given:
                        out.setdefault(n, f"{lab.name}/{name}")
    return out


def leaks(files, lines):
    """[(path, line, where it comes from)] of the solution lines found in
    files ({path: bytes}), each line compared with its spaces normalised."""
    found = []
    for rel, data in sorted(files.items()):
        try:
            text = data.decode()
        except UnicodeDecodeError:
            continue
        flat = _norm(text)
        for line, src in lines.items():
            if line in flat:
                found.append((rel, line, src))
    return found


def write(lab, out, root=labs_mod.ROOT):
    """Write lab's reference code into out; returns the paths written."""
    root, out = Path(root), Path(out)
    lab = labs_mod.find(lab, root)
    if not lab.solution_dir.is_dir():
        raise labs_mod.LabError("no solutions/ here: `make release` runs in the staff's copy of the kit")
    other = [p.name for p in out.iterdir() if p.name not in ("solutions", "RELEASE.md")] if out.is_dir() else []
    if other and not (out / "labs" / lab.name).is_dir():
        raise labs_mod.LabError(
            f"{out} is neither a new folder, a release nor a copy of the kit (no labs/{lab.name}/): "
            "the release goes into one"
        )
    dest = out / "solutions" / lab.name
    files = {name: (lab.solution_dir / name).read_bytes() for name in lab.student}
    for name, data in files.items():
        p = dest / name
        if p.exists() and p.read_bytes() != data:
            raise labs_mod.LabError(f"{p} exists with other contents: the release does not overwrite it")
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        (dest / name).write_bytes(data)
        written.append(dest / name)
    if not (out / "labs").is_dir():  # a new folder: say what it is
        (out / "RELEASE.md").write_text(
            f"# Reference code of lab {lab.name}\n\n"
            f"`solutions/{lab.name}/` holds the course's reference version of the files you wrote in lab "
            f"{lab.number:02d} ({', '.join(lab.student)}). Copy that folder into your repository, at the same "
            "path, and commit it. From then on `make grade LAB=NN BELOW=solutions` grades a later lab on this "
            "code instead of yours, and `make grade` still grades your own.\n"
        )
        written.append(out / "RELEASE.md")
    return written


def add_parsers(sub):
    r = sub.add_parser("release", help="write lab NN's reference code as solutions/NN-name/ (after its deadline)")
    r.add_argument("--lab", required=True)
    r.add_argument("out", type=Path, help="a new folder, or a clone of a student's repository")
    r.set_defaults(run=run)


def run(args):
    written = write(args.lab, args.out)
    print(
        f"release: {len(written)} files in {args.out}: " + ", ".join(str(p.relative_to(args.out)) for p in written),
        file=sys.stderr,
    )
    return 0
