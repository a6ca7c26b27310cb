"""The students' GitHub Classroom workflow: actions that run on Node 24,
read-only permissions, the Classroom bot's first commit skipped, actionlint
clean, and its own steps, run here in a handout, grade a partial lab as a
green run that reports the points as GitHub Classroom reads them."""
import json
import os
import re
import subprocess

import pytest

from grader import classroom, handout, lint
from conftest import ROOT

pytestmark = [pytest.mark.instructor, pytest.mark.slow]

# The first major version of each action that runs on Node 24 (its action.yml: `using: node24`).
NODE24 = {"actions/checkout": 5, "actions/upload-artifact": 6, "actions/download-artifact": 7}


def workflow():
    return handout.workflow(ROOT, "01")


def step_script(text, name):
    """The `run: |` block of the step called `name`."""
    lines = text.split("\n")
    start = next(i for i, ln in enumerate(lines) if re.match(rf"\s+- name: {re.escape(name)}", ln))
    run = next(i for i in range(start, len(lines)) if lines[i].strip() == "run: |")
    indent = len(lines[run + 1]) - len(lines[run + 1].lstrip())
    body = []
    for ln in lines[run + 1 :]:
        if ln.strip() and len(ln) - len(ln.lstrip()) < indent:
            break
        body.append(ln[indent:])
    return "\n".join(body)


def test_every_action_runs_on_node_24_with_read_only_permissions():
    text = workflow()
    used = re.findall(r"uses:\s*([\w.-]+/[\w.-]+)@v(\d+)", text)
    assert used and len(used) == text.count("uses:")
    for action, major in used:
        assert action in NODE24, f"{action}: which Node does it run on? add it to NODE24 once checked"
        assert int(major) >= NODE24[action], f"{action}@v{major} runs on Node 20 (Node 24 from v{NODE24[action]})"
    assert re.search(r"^permissions:\n  contents: read$", text, re.M)
    assert "if: github.actor != 'github-classroom[bot]'" in text
    assert "persist-credentials: false" in text


def test_actionlint_finds_nothing():
    found, said = lint.actionlint(ROOT)
    if found is None:
        pytest.skip(said)
    assert found == 0, said


def test_the_points_are_notices_classroom_reads(capsys, tmp_path):
    report = {"score": 45, "max_score": 80, "challenge_score": 5, "stages": []}
    (tmp_path / "r.json").write_text(json.dumps(report))
    assert classroom.main([str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "::notice title=Autograding complete::Points 50/80",
        '::notice title=Autograding report::{"totalPoints": 50, "maxPoints": 80}',
    ]
    assert classroom.main([str(tmp_path / "missing.json")]) == 1
    assert capsys.readouterr().out.startswith("::error title=Autograding::no points")


def test_the_workflow_steps_grade_a_partial_lab_green(tmp_path):
    kit = tmp_path / "kit"
    handout.write(kit, lab="01")
    text = (kit / ".github/workflows/grade.yml").read_text()
    summary = tmp_path / "summary.md"
    env = dict(os.environ, LAB="01", NO_COLOR="1", GITHUB_STEP_SUMMARY=str(summary))
    grade = subprocess.run(["bash", "-e", "-c", step_script(text, "Grade lab")], cwd=kit, env=env,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert grade.returncode == 0, grade.stdout + grade.stderr  # the skeleton: partial marks, a green step
    data = json.loads((kit / "reports/grade.json").read_text())
    assert data["score"] < data["max_score"] and (kit / "reports/junit.xml").is_file()
    points = subprocess.run(["bash", "-e", "-c", step_script(text, "Report the points")], cwd=kit, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert points.returncode == 0, points.stderr
    assert f"::notice title=Autograding complete::Points {data['score']}/{data['max_score']}" in points.stdout
    assert f"## Points {data['score']}/{data['max_score']}" in summary.read_text()
    broken = subprocess.run(["bash", "-e", "-c", step_script(text, "Grade lab")], cwd=kit,
                            env=dict(env, LAB="99"), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert broken.returncode == 2 and "no lab" in broken.stderr.lower()  # not graded: a red run
