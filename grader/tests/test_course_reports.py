"""Running a course, the grader's side: hidden variants with their own
seeds and visibility, submissions handed in as loose files, and reports
that carry the compiler's errors and the serial output, count a challenge
as extra credit and give each check its own share of the time."""
import json
import os
import shutil
import subprocess
import sys
from xml.etree import ElementTree as ET

import pytest

from grader import api, grade, intake, labs, report, stage
from conftest import ROOT, SEED

pytestmark = [pytest.mark.instructor, pytest.mark.slow]

LAB02, LAB03 = labs.find("02"), labs.find("03")


def cli(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "grader", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, **(env or {})),
    )


def loose(tmp_path, lab, name="loose", change=None):
    """The solution files of one lab, loose in a folder (as uploaded to Gradescope)."""
    d = tmp_path / name
    d.mkdir()
    for f in lab.student:
        shutil.copyfile(lab.solution_dir / f, d / f)
    if change:
        change(d)
    return d


# --- hidden variants ------------------------------------------------------------


def test_hidden_checks_come_from_the_hidden_folder_with_their_visibility(monkeypatch):
    st = stage.make("02", stage.Origin("solutions"))
    plan = grade.plan_for(st, "qemu")
    hidden = [c for c in plan.checks if c.hidden]
    assert hidden and all(c.visibility == "after_due_date" for c in hidden)
    assert all(c.visibility == "visible" for c in plan.checks if not c.hidden)
    assert isinstance(plan.boots["short-numbers"], api.Boot)
    monkeypatch.setenv("KIT_HIDDEN", "off")  # what a student's copy grades
    assert not [c for c in grade.plan_for(st, "qemu").checks if c.hidden]


def test_a_hidden_variant_boots_another_seed_family_and_catches_what_the_visible_seed_may_not():
    module = LAB02.module("hidden.checks")
    seed = module.short_numbers_seed(SEED)
    v = LAB02.module("checks").kprintf_values(seed)
    assert seed != SEED and len(v["width"].strip()) == 1 and int(v["neg"]) > -100
    st = grade.grade_stage(stage.make("03", stage.Origin("solutions")), seed=SEED)
    assert st.full, [(c.title, c.message) for c in st.checks if not c.passed]
    variant = [c for c in st.checks if c.hidden]
    assert len(variant) == 1 and variant[0].passed and variant[0].boot == "page-aligned"
    assert st.runs["page-aligned"].seed == LAB03.module("hidden.checks").page_aligned_seed(SEED) != SEED
    assert st.runs["page-aligned"].cmdline in st.boots["page-aligned"].text


def test_visibility_must_be_one_gradescope_knows():
    with pytest.raises(ValueError):
        api.check("x", 1, visibility="later")


# --- submissions -----------------------------------------------------------------


def test_loose_files_a_tree_and_a_repository_map_onto_the_kit_layout(tmp_path):
    up = loose(tmp_path, LAB03)
    origin = intake.materialize(up, "03", tmp_path / "t1", below="reference")
    assert sorted(p.name for p in (tmp_path / "t1/labs/03-bss-heap").iterdir()) == sorted(LAB03.student)
    assert origin.below_from_solutions and origin.upload == up
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "labs", repo / "kit/labs", ignore=shutil.ignore_patterns("hidden", "__pycache__"))
    for lab in labs.discover():
        for f in lab.student:
            shutil.copyfile(lab.solution_dir / f, repo / "kit/labs" / lab.name / f)
    (repo / "build/stage-03/src/labs/03-bss-heap").mkdir(parents=True)  # a build copy is never looked at
    (repo / "build/stage-03/src/labs/03-bss-heap/heap.c").write_text("old\n")
    (repo / "notes").mkdir()
    (repo / "notes/heap.c").write_text("a draft\n")  # the kit's layout wins
    intake.materialize(repo, "03", tmp_path / "t2")
    assert (tmp_path / "t2/labs/03-bss-heap/heap.c").read_bytes() == (LAB03.solution_dir / "heap.c").read_bytes()
    assert (tmp_path / "t2/labs/01-boot/longmode.S").is_file()


def test_a_missing_an_ambiguous_or_a_linked_file_gets_a_clear_verdict(tmp_path):
    up = loose(tmp_path, LAB03, change=lambda d: (d / "freelist.c").unlink())
    with pytest.raises(intake.IntakeError) as e:
        intake.materialize(up, "03", tmp_path / "t", below="reference")
    assert e.value.summary == (
        "missing freelist.c: lab 03-bss-heap needs heap.c, freelist.c; the submission has heap.c"
    )
    two = loose(tmp_path, LAB03, "two")
    (two / "old").mkdir()
    (two / "old/heap.c").write_text("int x;\n")
    with pytest.raises(intake.IntakeError) as e:
        intake.materialize(two, "03", tmp_path / "t", below="reference")
    assert e.value.summary == "2 different files called heap.c: heap.c, old/heap.c"
    same = loose(tmp_path, LAB03, "same")
    (same / "copy").mkdir()
    shutil.copyfile(same / "heap.c", same / "copy/heap.c")  # the same bytes: no doubt
    intake.materialize(same, "03", tmp_path / "t", below="reference")
    link = loose(
        tmp_path, LAB03, "link", change=lambda d: ((d / "heap.c").unlink(), (d / "heap.c").symlink_to("/etc/passwd"))
    )
    with pytest.raises(intake.IntakeError, match="heap.c is a symbolic link"):
        intake.materialize(link, "03", tmp_path / "t", below="reference")


def test_a_student_copy_without_solutions_says_so_in_one_sentence(tmp_path):
    shutil.copytree(ROOT / "labs", tmp_path / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    # BELOW=solutions with nothing released: the student's own code of every lab, and the header says so
    st = stage.make("02", stage.Origin("labs", None, True), tmp_path)
    assert not st.from_reference and all(str(s.path).startswith(str(tmp_path / "labs")) for s in st.sources)
    assert st.sentence == "labs/ (your code) (below it: lab 01 from labs/ too, none released in solutions/)"
    with pytest.raises(labs.LabError) as e:  # SOLUTIONS=1 cannot stand on the student's code
        stage.make("02", stage.Origin("solutions"), tmp_path)
    assert "has no solutions/" in str(e.value) and "`make grade LAB=NN`" in str(e.value)
    stage.make("01", stage.Origin("labs", None, True), tmp_path)  # nothing below lab 01


# --- reports ---------------------------------------------------------------------


def test_reports_of_loose_files_name_them_and_carry_errors_output_and_extra_credit(tmp_path):
    broken = loose(
        tmp_path,
        LAB03,
        "broken",
        change=lambda d: (d / "heap.c").write_text(
            (d / "heap.c").read_text() + "\nint broken(void) { return nope; }\n"
        ),
    )
    r = cli(
        "grade",
        "--lab",
        "03",
        "--submission",
        str(broken),
        "--solutions-below",
        "--seed",
        "0x33",
        "--json",
        str(tmp_path / "r.json"),
        "--junit",
        str(tmp_path / "r.xml"),
        "--gradescope",
        str(tmp_path / "g.json"),
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert (
        f"reproduce: python3 -m grader grade --lab 03 --submission {broken} --solutions-below --seed 0x00000033"
        in r.stdout
    )
    data = json.loads((tmp_path / "r.json").read_text())["stages"][0]
    assert "error: use of undeclared identifier 'nope'" in "\n".join(data["compiler_errors"])
    gs = json.loads((tmp_path / "g.json").read_text())
    assert "error: use of undeclared identifier 'nope'" in gs["output"]
    said = ["use of undeclared identifier" in t["output"] for t in gs["tests"]]
    assert said == [True] + [False] * (len(said) - 1)  # once, under the first check; the others: not graded
    xml = (tmp_path / "r.xml").read_text()
    assert "use of undeclared identifier" in xml
    for text in (json.dumps(data), json.dumps(gs), xml):  # only the reproduce line names the folder
        text = text.replace(f"--submission {broken} ", "")
        assert str(tmp_path) not in text and str(ROOT) not in text


def test_a_challenge_is_extra_credit_and_case_times_add_up_to_the_stage(tmp_path):
    up = loose(tmp_path, LAB03, change=lambda d: shutil.copyfile(LAB03.dir / "freelist.c", d / "freelist.c"))
    st = stage.make("03", intake.materialize(up, "03", tmp_path / "t", below="reference"))
    result = grade.grade_stage(st, seed=SEED)
    assert result.full and result.bonus == 0
    report.write_junit([result], tmp_path / "r.xml")
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert suite.get("failures") == "0" and suite.get("skipped") == "3"
    assert all(c.find("skipped") is not None for c in cases if c.get("name").startswith("challenge"))
    assert abs(sum(float(c.get("time")) for c in cases) - float(suite.get("time"))) < 0.01 * len(cases)
    assert "[power] off: ok" in suite.find("system-out").text
    gs = report.gradescope_results([result])
    challenges = [t for t in gs["tests"] if "(extra credit)" in t["name"]]
    assert len(challenges) == 3 and all(t["max_score"] == 0 and t["status"] == "passed" for t in challenges)
    assert gs["score"] == result.score and all(t["status"] == "passed" for t in gs["tests"])
    hidden = [t for t in gs["tests"] if t["visibility"] != "visible"]
    assert [t["name"] for t in hidden] == ["03-bss-heap: heap again: page-aligned blocks, another seed family"]
    assert ": 90/90" not in gs["output"]  # hidden tests: Gradescope hides the total, so do we


def test_a_hidden_boot_that_earns_nothing_stays_hidden_in_gradescope():
    from dataclasses import replace

    result = grade.grade_stage(stage.make("03", stage.Origin("solutions")), seed=SEED, boots=["page-aligned"])
    why = "no points from this boot: its output never shows this run's command line"
    failed = [replace(c, passed=False, message=why) if c.hidden else c for c in result.checks]
    gs = report.gradescope_results([replace(result, checks=failed, unproven={"page-aligned": why})])
    assert "page-aligned" not in gs["output"] and why not in gs["output"]
    (hidden,) = [t for t in gs["tests"] if t["visibility"] != "visible"]
    assert hidden["visibility"] == "after_due_date" and why in hidden["output"]  # shown after the due date


def test_sanitize_cuts_host_paths_and_shows_control_characters_as_text():
    text = "/tmp/kit-run-x/heap.c:3: error\x1b[31m at /home/ann/kit/labs/03-bss-heap/heap.c\x07"
    assert report.sanitize(text, ["/home/ann/kit"]) == ".../heap.c:3: error\\x1b[31m at labs/03-bss-heap/heap.c\\x07"
    # a root is cut only where a name ends: a sibling whose name starts the same keeps its own
    assert report.sanitize("/r/sub and /r/submission_metadata.json", ["/r/sub"]) == ". and /r/submission_metadata.json"


def test_the_reproduce_line_of_a_submission_repeats_it_and_qemu_boots_it(tmp_path):
    up = loose(tmp_path, LAB03, change=lambda d: (d / "heap.c").write_text((LAB03.dir / "heap.c").read_text()))
    r = cli("grade", "--lab", "03", "--submission", str(up), "--solutions-below", env={"NO_COLOR": "1"})
    assert r.returncode == 1
    score = next(ln for ln in r.stdout.splitlines() if ln.startswith("Score:"))
    again = score.split("reproduce: ", 1)[1].split()
    assert again[:2] == ["python3", "-m"] and str(up) in again
    r2 = cli(*again[3:], env={"NO_COLOR": "1"})
    assert next(ln for ln in r2.stdout.splitlines() if ln.startswith("Score:")).split("   ")[0] == score.split("   ")[0]
    seed = again[again.index("--seed") + 1]
    r3 = cli("qemu", "--lab", "03", "--submission", str(up), "--solutions-below", "--seed", seed)
    assert r3.returncode == 0 and "[power] off: ok" in r3.stdout and f"seed={seed}" in r3.stdout, r3.stderr
