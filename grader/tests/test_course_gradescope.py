"""The Gradescope bundle: setup.sh and run_autograder at the root of the zip,
no solutions/, and run_autograder writing a results.json in Gradescope's
documented format for every kind of submission, a crash included."""
import json
import os
import re
import subprocess
import zipfile

import pytest

from grader import api, deps, gradescope, labs
from conftest import ROOT

pytestmark = [pytest.mark.instructor, pytest.mark.slow]

LAB03 = labs.find("03")
# Gradescope's "Autograder Specifications" (gradescope-autograders.readthedocs.io/en/latest/specs/):
# the fields results.json may have, at the top and per test.
TOP = {
    "score": (int, float),
    "execution_time": (int, float),
    "output": str,
    "output_format": str,
    "test_output_format": str,
    "test_name_format": str,
    "visibility": str,
    "stdout_visibility": str,
    "extra_data": dict,
    "tests": list,
    "leaderboard": list,
}
TEST = {
    "score": (int, float),
    "max_score": (int, float),
    "status": str,
    "name": str,
    "name_format": str,
    "number": str,
    "output": str,
    "output_format": str,
    "tags": list,
    "visibility": str,
    "extra_data": dict,
}


def check_format(data, roots):
    """Fails unless `data` is a results.json Gradescope documents, with every
    field the kit promises and nothing of this machine in its text."""
    assert set(data) <= set(TOP) and {"score", "execution_time", "output", "stdout_visibility", "tests"} <= set(data)
    for k, v in data.items():
        assert isinstance(v, TOP[k]) and not isinstance(v, bool), k
    assert data["stdout_visibility"] in api.VISIBILITIES
    for t in data["tests"]:
        assert set(t) <= set(TEST) and {"name", "score", "max_score", "status", "visibility", "output"} <= set(t)
        for k, v in t.items():
            assert isinstance(v, TEST[k]) and not isinstance(v, bool), (t["name"], k)
        assert t["status"] in ("passed", "failed") and t["visibility"] in api.VISIBILITIES
    text = json.dumps(data)
    assert not re.search(r"\\u00[01][0-9a-f]|\\u007f", text)  # no control character
    for root in roots:
        assert str(root) not in text, root


@pytest.fixture(scope="module")
def bundle():
    path = gradescope.write_zip("03")
    with zipfile.ZipFile(path) as z:
        return path, z.namelist(), {i.filename: i.external_attr >> 16 for i in z.infolist()}


def autograder(tmp_path, bundle, files, env=None, before=None):
    """Unzip the bundle into R/source, put `files` ({name: bytes}) in R/submission, run it."""
    r = tmp_path / "R"
    (r / "source").mkdir(parents=True)
    (r / "submission").mkdir()
    with zipfile.ZipFile(bundle[0]) as z:
        z.extractall(r / "source")
    for name in ("run_autograder", "setup.sh"):
        (r / "source" / name).chmod(0o755)
    for name, data in files.items():
        (r / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (r / "submission" / name).write_bytes(data)
    if before:
        before(r)
    p = subprocess.run(
        ["bash", str(r / "source/run_autograder")],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, AUTOGRADER_ROOT=str(r), **(env or {})),
    )
    assert p.returncode == 0, p.stderr
    data = json.loads((r / "results/results.json").read_text())
    check_format(data, [r, ROOT])
    return data, r, p


def solution(lab=LAB03):
    return {f: (lab.solution_dir / f).read_bytes() for f in lab.student}


def test_the_bundle_has_the_two_scripts_at_its_root_and_no_solutions(bundle):
    path, names, modes = bundle
    assert path == ROOT / "build/gradescope/lab-03-autograder.zip"
    assert {"setup.sh", "run_autograder", "bundle.json"} <= set(names)
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert not [n for n in names if n.startswith("solutions/") or n.endswith("mutants.py") or "/tests/" in n]
    assert not [n for n in names if n.startswith("reference/03-")]  # never the graded lab's own
    assert "labs/03-bss-heap/hidden/checks.py" in names and "labs/02-serial/hidden/checks.py" not in names
    setup = gradescope.SETUP
    assert "python3 -m grader setup --for qemu" in setup and "apt-get install" in setup


def test_full_marks_for_the_solution_files_loose(tmp_path, bundle):
    data, r, _ = autograder(tmp_path, bundle, solution())
    tests = data["tests"]
    assert all(t["status"] == "passed" for t in tests), [t for t in tests if t["status"] != "passed"]
    assert data["score"] == sum(t["max_score"] for t in tests) + 30  # plus the three challenges
    assert [t["visibility"] for t in tests if "again" in t["name"]] == ["after_due_date"]
    assert "make grade LAB=03 SEED=0x" in data["output"]
    assert (r / "source/labs/03-bss-heap/hidden/checks.py").is_file()


def test_the_skeleton_gets_less_with_its_messages(tmp_path, bundle):
    data, _, _ = autograder(tmp_path, bundle, {f: (LAB03.dir / f).read_bytes() for f in LAB03.student})
    assert 0 <= data["score"] < 40
    failed = [t for t in data["tests"] if t["status"] == "failed"]
    assert failed and all(t["output"] for t in failed)
    assert any("hint:" in t["output"] and "serial output" in t["output"] for t in failed)
    assert not [t for t in data["tests"] if "extra credit" in t["name"] and t["status"] == "failed"]


def test_a_submission_that_does_not_compile_shows_the_compilers_errors(tmp_path, bundle):
    files = solution()
    files["heap.c"] += b"\nint broken(void) { return nope; }\n"
    data, _, _ = autograder(tmp_path, bundle, {"repo/labs/03-bss-heap/" + k: v for k, v in files.items()})
    assert data["score"] == 0
    assert "labs/03-bss-heap/heap.c:" in data["output"] and "use of undeclared identifier 'nope'" in data["output"]
    # said once: the first test carries the compiler's errors, the others say they were not graded
    graded = [t for t in data["tests"] if t["max_score"]]
    assert ["use of undeclared identifier 'nope'" in t["output"] for t in graded] == [True] + [False] * (
        len(graded) - 1
    )
    assert all(t["output"].startswith("not graded: the stage did not build") for t in graded[1:])


def test_a_missing_file_is_named(tmp_path, bundle):
    data, _, _ = autograder(tmp_path, bundle, {"heap.c": solution()["heap.c"]})
    assert data["score"] == 0 and "missing freelist.c: lab 03-bss-heap needs heap.c, freelist.c" in data["output"]


def test_without_the_sandbox_it_grades_says_so_and_keeps_the_hidden_checks(tmp_path, bundle):
    data, r, _ = autograder(tmp_path, bundle, solution(), env={"KIT_SANDBOX": "off"})
    assert "built without the sandbox (KIT_SANDBOX=off)" in data["output"]
    assert all(t["status"] == "passed" for t in data["tests"])
    assert [t for t in data["tests"] if "again" in t["name"]]
    assert (r / "source/labs/03-bss-heap/hidden/checks.py").is_file()  # moved back


def test_a_crash_still_writes_a_results_file(tmp_path, bundle):
    data, _, _ = autograder(
        tmp_path,
        bundle,
        solution(),
        before=lambda r: (r / "bundle.json").unlink(missing_ok=True) or (r / "source/bundle.json").write_text("{"),
    )  # a broken bundle
    assert data["score"] == 0 and data["output"].startswith("The autograder failed: JSONDecodeError")
    data, _, _ = autograder(
        tmp_path / "2", bundle, solution(), before=lambda r: (r / "source/grader/report.py").unlink()
    )  # Python itself fails
    assert data["score"] == 0 and "The autograder itself failed (exit status 1)" in data["output"]


def test_every_package_setup_installs_has_the_same_name_on_ubuntu():
    # Checked by hand against packages.ubuntu.com for jammy (22.04) and noble (24.04); see
    # book/91-instructors.md. A package added to the list must be checked there too.
    assert set(deps.all_packages("qemu")) <= {
        "clang",
        "lld",
        "llvm",
        "grub-common",
        "grub-pc-bin",
        "xorriso",
        "mtools",
        "qemu-system-x86",
        "seabios",
        "bubblewrap",
        "util-linux",
    }
