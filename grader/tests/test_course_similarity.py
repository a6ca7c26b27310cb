"""The similarity report: two identical submissions rank first at 100%,
one with its names and layout changed next, skeletons (only the given
lines) share nothing, a formula-named folder is neutralised in the CSV,
and the HTML escapes what the students wrote."""
import csv
import subprocess
import sys

import pytest

from grader import labs, similarity
from conftest import ROOT

pytestmark = pytest.mark.instructor

LAB = labs.find("03")


def test_identical_submissions_rank_first(tmp_path):
    cls = tmp_path / "class"
    sol = {f: (LAB.solution_dir / f).read_text() for f in LAB.student}
    skel = {f: (LAB.dir / f).read_text() for f in LAB.student}
    kinds = {
        "ann": sol,
        "=bob": sol,  # the same files, under a name a spreadsheet would run
        "carl": skel,
        "dora": skel,
        "eve": {f: t.replace("need", "want").replace("    ", "\t") for f, t in sol.items()},  # renamed, re-indented
        "fay": {"heap.c": sol["heap.c"]},  # freelist.c missing
    }
    for name, files in kinds.items():
        (cls / name).mkdir(parents=True)
        for f, text in files.items():
            (cls / name / f).write_text(text + ("\n// <script>alert(1)</script>\n" if name == "ann" else ""))
    out, pages = tmp_path / "pairs.csv", tmp_path / "html"
    cmd = ["similarity", "--lab", "03", str(cls), "--csv", str(out), "--html", str(pages)]
    r = subprocess.run([sys.executable, "-m", "grader", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert (rows[0]["student_a"], rows[0]["student_b"], rows[0]["similarity"]) == ("'=bob", "ann", "100")
    assert {rows[1]["student_a"], rows[1]["student_b"]} <= {"'=bob", "ann", "eve"}
    assert all("carl" not in (r["student_a"], r["student_b"]) for r in rows)  # the skeleton's lines are left out
    assert "fay not compared: missing freelist.c" in r.stderr
    first = (pages / "pair-0001.html").read_text()
    assert "ann heap.c: line" in first and "&lt;" in first and "<script>" not in first
    assert "=bob" in (pages / "index.html").read_text()


def test_blanking_keeps_lines_and_never_cuts_a_comment():
    skeleton = "int f(void)\n{\n    /* a contract\n       over two lines */\n    return 0;\n}\n"
    mine = "int f(void)\n{\n    /* a contract, edited\n       over two lines */\n    return 42; // mine\n}\n"
    own = similarity.own_lines(mine, skeleton).splitlines()
    assert len(own) == len(mine.splitlines()) and "/*" not in "".join(own)
    assert own[4].strip() == "return 42;" and not own[0] and not own[5]
