"""A term's gradebooks: repositories collected at a deadline (a later broken
commit is not graded; a late commit counts under a late-day policy), a
student whose folder is named like a formula neutralised in every format,
shards that merge only when all are there, a regrade that replaces one row,
and the files Canvas and Moodle import."""
import csv
import os
import subprocess
import sys

import pytest

from grader import gradebook, labs
from conftest import ROOT

pytestmark = [pytest.mark.instructor, pytest.mark.slow]  # a whole term of gradebooks

LAB = labs.find("01")
FORMULA = '=HYPERLINK("evil","y")'
DEADLINE = "2027-03-01 23:59 +00:00"


def commit(repo, files, when, message):
    for name, text in files.items():
        (repo / name).write_text(text)
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="s",
        GIT_AUTHOR_EMAIL="s@example.invalid",
        GIT_COMMITTER_NAME="s",
        GIT_COMMITTER_EMAIL="s@example.invalid",
        GIT_AUTHOR_DATE=when,
        GIT_COMMITTER_DATE=when,
    )
    for cmd in (["git", "add", "-A"], ["git", "commit", "-q", "-m", message]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True, timeout=60)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def make_class(folder):
    """ann: the solution before the deadline; bob: the same, then a broken
    commit after it; carol: the skeleton before, the solution a day late;
    and a folder of loose files named like a formula. {name: commit}."""
    sol = {f: (LAB.solution_dir / f).read_text() for f in LAB.student}
    skel = {f: (LAB.dir / f).read_text() for f in LAB.student}
    shas = {}
    for name in ("ann", "bob", "carol"):
        repo = folder / name / "labs" / LAB.name
        repo.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(folder / name)], check=True, timeout=60)
        shas[name] = commit(repo, skel if name == "carol" else sol, "2027-03-01T12:00:00+00:00", "lab 01")
    broken = dict(sol, **{"mb2.c": sol["mb2.c"] + "\nint broken(void) { return nope; }\n"})
    commit(folder / "bob" / "labs" / LAB.name, broken, "2027-03-02T09:30:00+00:00", "oops")
    shas["carol-late"] = commit(folder / "carol" / "labs" / LAB.name, sol, "2027-03-02T10:00:00+00:00", "late")
    (folder / FORMULA).mkdir()
    for name, text in sol.items():
        (folder / FORMULA / name).write_text(text)
    return shas


def grader(*args, tmp):
    env = dict(os.environ, TMPDIR=str(tmp))
    return subprocess.run(
        [sys.executable, "-m", "grader", *args], cwd=ROOT, capture_output=True, text=True, timeout=900, env=env
    )


def rows(path):
    with open(path, newline="") as f:
        return {r[next(iter(r))]: r for r in csv.DictReader(f)}


def raw(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_a_term_of_gradebooks(tmp_path):
    cls, runs = tmp_path / "class", tmp_path / "runs"
    runs.mkdir()
    shas = make_class(cls)
    roster = tmp_path / "roster.csv"
    with open(roster, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "github_username", "Email address"])
        w.writerow(["    Points Possible", "", "", "", "", "", ""])  # as in Canvas's export
        for i, who in enumerate(["ann", "bob", "carol", FORMULA, "dave"]):
            w.writerow([f"{who}, a student", 100 + i, 2000 + i, f"{who}@u", "A", who, f"{who}@u.example"])
    common = ["--lab", "01", str(cls), "-j", "2", "--seed", "0x2027", "--deadline", DEADLINE, "--roster", str(roster)]
    g = tmp_path / "g.csv"
    r = grader("batch", *common, "--csv", str(g), "--lms", "canvas", "--columns", "checks", tmp=runs)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    book = rows(g)
    assert book["ann"]["commit"] == shas["ann"][:12] and book["ann"]["status"] == "full marks"
    # bob's later broken commit is not graded: the earlier one is, and the row says what came after
    assert book["bob"]["commit"] == shas["bob"][:12] and book["bob"]["status"] == "full marks"
    assert book["bob"]["committed_at"] == "2027-03-01T12:00:00+00:00"
    assert book["bob"]["after_deadline"] == "1 commit not graded, the last 9h31m after the deadline"
    assert book["carol"]["status"] != "full marks" and "1 commit not graded" in book["carol"]["after_deadline"]
    assert book["carol"]["name"] == "carol, a student"
    assert all(r["lab"] == "01-boot" and r["shard"] == "1/1" and r["batch_seed"] == "0x00002027" for r in book.values())
    assert "check: mb2: command line" in book["ann"] and book["ann"]["check: mb2: command line"] == "10"
    # the formula-named student: neutralised in the gradebook and in the LMS file, read back exactly
    lines = raw(g)
    assert ["'" + FORMULA] == [ln[0] for ln in lines if "HYPERLINK" in ln[0]]
    assert not any(c.startswith(("=", "+", "@")) for ln in lines for c in ln)
    assert gradebook.read(g)[1][0]["student"] == FORMULA
    canvas = raw(tmp_path / "g-canvas.csv")
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 01"]
    assert canvas[1][0].strip() == "Points Possible" and canvas[1][-1] == "80"
    assert ["'" + FORMULA + ", a student", "103", "2003", "'" + FORMULA + "@u", "A", "80"] in canvas
    assert ["dave, a student", "104", "2004", "dave@u", "A", "0"] in canvas  # on the roster, no submission
    assert not any(c.startswith(("=", "+", "@", "-")) for ln in canvas for c in ln)

    # two shards under a late-day policy: carol's late commit counts, a day late, at 10% a day
    late = ["--late-days", "2", "--late-penalty", "10"]
    for k in (1, 2):
        r = grader("batch", *common, *late, "--shard", f"{k}/2", "--csv", str(tmp_path / f"p{k}.csv"), tmp=runs)
        assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path / "merged.csv"
    r = grader("batch-merge", str(out), str(tmp_path / "p1.csv"), tmp=runs)
    assert r.returncode == 2 and "shard 2/2 missing" in r.stderr and not out.exists()
    r = grader("batch-merge", str(out), str(tmp_path / "p1.csv"), str(tmp_path / "p1.csv"), tmp=runs)
    assert r.returncode == 2 and "shard 1/2 is in both" in r.stderr
    r = grader("batch-merge", str(out), str(tmp_path / "p1.csv"), str(g), tmp=runs)
    assert r.returncode == 2 and "other columns" in r.stderr
    merge = ["batch-merge", str(out), str(tmp_path / "p1.csv"), str(tmp_path / "p2.csv")]
    r = grader(*merge, "--roster", str(roster), "--lms", "moodle", tmp=runs)
    assert r.returncode == 0, r.stderr
    merged = rows(out)
    assert sorted(merged) == sorted(book)
    carol = merged["carol"]
    assert carol["commit"] == shas["carol-late"][:12] and carol["status"] == "full marks"
    assert (carol["days_late"], carol["late_days_allowed"], carol["penalty"], carol["final"]) == ("1", "2", "8", "72")
    # within the two late days, bob's broken commit is the last one: it is graded
    assert merged["bob"]["status"] == "build failed" and merged["bob"]["days_late"] == "1"
    assert merged["ann"]["final"] == "80" and merged["ann"]["days_late"] == "0"
    moodle = raw(tmp_path / "merged-moodle.csv")
    assert moodle[0] == ["Email address", "Lab 01", "Lab 01 (feedback)"]
    assert ["carol@u.example", "72", "full marks"] in moodle
    assert ["'" + FORMULA + "@u.example", "80", "full marks"] in moodle

    # a regrade of one student (bob's on-time commit: no late days for him) replaces that row only
    regrade = tmp_path / "regrade.csv"
    r = grader("batch", *common, "--late-days", "0", "--late-penalty", "10", "--only", "bob", "--csv", str(regrade),
               tmp=runs)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert rows(regrade)["bob"]["commit"] == shas["bob"][:12] and rows(regrade)["bob"]["shard"] == "only"
    r = grader("batch-merge", str(out), str(tmp_path / "p1.csv"), str(regrade), tmp=runs)
    assert r.returncode == 2 and "--replace" in r.stderr
    r = grader(*merge, "--replace", str(regrade), tmp=runs)
    assert r.returncode == 0, r.stderr
    assert "replaced bob: 0/80 (final 0) -> 80/80 (final 80), full marks" in r.stderr
    again = rows(out)
    assert again["bob"]["status"] == "full marks" and again["bob"]["late_days_allowed"] == "0"
    assert {k: v for k, v in again.items() if k != "bob"} == {k: v for k, v in merged.items() if k != "bob"}
    # a regrade with another batch seed is refused
    other = tmp_path / "other.csv"
    r = grader("batch", *common[:6], "0x9999", *common[7:], *late, "--only", "ann", "--csv", str(other), tmp=runs)
    assert r.returncode == 0, r.stderr[-2000:]
    r = grader(*merge, "--replace", str(other), tmp=runs)
    assert r.returncode == 2 and "batch seed 0x00009999 where the others have 0x00002027" in r.stderr
    assert list(runs.iterdir()) == []


def test_cells_a_spreadsheet_would_run_are_neutralised():
    for text in ("=1+2", "+1-2+", "-cmd", "@SUM(A1)", "\tx", "\rx", "'quoted"):
        assert gradebook.safe(text) == "'" + text and gradebook.unsafe(gradebook.safe(text)) == text
    for value in (-3, 2.5, "-3", "+1.5", "ann", "", "1e3"):
        assert gradebook.safe(value) == value
    assert gradebook.unsafe("'plain") == "'plain"


def test_a_roster_finds_classroom_repositories_by_their_suffix(tmp_path):
    p = tmp_path / "classroom_roster.csv"
    p.write_text('"identifier","github_username","github_id","name"\n"s1","octo","1","Octo Cat"\n')
    roster = gradebook.Roster(p)
    assert roster.name("lab-01-octo") == "Octo Cat" and roster.find("lab-01-octopus") is None
    assert roster.name("octo") == "Octo Cat"
    (tmp_path / "bad.csv").write_text("who,score\nx,1\n")
    with pytest.raises(gradebook.GradebookError, match="no `folder` or `github_username` column"):
        gradebook.Roster(tmp_path / "bad.csv")


def test_deadlines_are_read_with_their_timezone():
    d = gradebook.parse_deadline("2027-03-01 23:59 +01:00")
    assert d.isoformat() == "2027-03-01T23:59:00+01:00"
    assert gradebook.parse_deadline("2027-03-01T22:59Z") == d
    assert gradebook.parse_deadline("2027-03-01 23:59").tzinfo is not None
    with pytest.raises(gradebook.GradebookError):
        gradebook.parse_deadline("next friday")
