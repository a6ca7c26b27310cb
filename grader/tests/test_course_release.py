"""Solution releases: the handout carries no line of the reference code
(every file of it is searched for every line a student writes), and
`make release` writes lab NN's reference code, and only it."""
import subprocess

import pytest

from grader import handout, labs, release
from conftest import ROOT

pytestmark = pytest.mark.instructor


def test_the_handout_carries_no_solution_line():
    lines = release.solution_lines()
    assert len(lines) > 150  # the labs' own code, less what any given file already shows
    files, _ = handout.contents()
    found = release.leaks(files, lines)
    assert not found, "solution lines in the handout:\n" + "\n".join(f"  {p}: `{ln}` ({src})" for p, ln, src in found)


def test_the_search_finds_a_quoted_line(tmp_path):
    lines = release.solution_lines()
    quoted = next(ln for ln, src in lines.items() if src.startswith("03-bss-heap/heap.c"))
    files = {"book/notes.py": f'PATCH = ("{quoted}", "")\n'.encode(), "labs/x.c": b"int x;\n"}
    assert [(p, ln) for p, ln, _ in release.leaks(files, lines)] == [("book/notes.py", quoted)]


def test_a_release_is_one_labs_reference_code(tmp_path):
    out = tmp_path / "release-03"
    r = subprocess.run(["make", "-s", "release", "LAB=03", f"OUT={out}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lab = labs.find("03")
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["RELEASE.md"] + [f"solutions/03-bss-heap/{f}" for f in sorted(lab.student)]
    for f in lab.student:
        assert (out / "solutions/03-bss-heap" / f).read_bytes() == (lab.solution_dir / f).read_bytes()
    assert "BELOW=solutions" in (out / "RELEASE.md").read_text()
    (out / "solutions/03-bss-heap/heap.c").write_text("mine\n")
    r = subprocess.run(["make", "-s", "release", "LAB=03", f"OUT={out}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode != 0 and "exists with other contents" in r.stderr and "Traceback" not in r.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x\n")
    r = subprocess.run(["make", "-s", "release", "LAB=03", f"OUT={other}"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode != 0 and "neither a new folder, a release nor a copy of the kit" in r.stderr
