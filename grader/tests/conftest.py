"""Shared helpers: the kit's root on sys.path, its tools installed, and a
grade of a stage by its usual options."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from grader import deps, grade, stage  # noqa: E402

SEED = 0x5EED1234           # the fixed seed of the tests (grader/mutants.py uses the same)


def pytest_configure(config):
    config.addinivalue_line("markers", "instructor: needs solutions/ or an instructor's tool; "
                            "a student's copy (make handout) leaves the test out")
    try:
        deps.ensure("kernel", install=True)
    except deps.MissingTools as e:
        raise pytest.UsageError(str(e))


def grade_stage(lab, solutions=False, solutions_below=False, submission=None, root=ROOT, **kw):
    """Grade stage `lab` with its student files from labs/, solutions/ or a submission."""
    st = stage.make(lab, stage.origin_of(solutions, submission, solutions_below), root)
    return grade.grade_stage(st, **kw)


def pytest_collection_modifyitems(config, items):
    """Tests marked `instructor` need solutions/ (and the instructor's tools);
    a student's copy of the kit has neither, so there they are skipped."""
    if (ROOT / "solutions").is_dir():
        return
    skip = pytest.mark.skip(reason="instructor-only: needs solutions/, which a student's copy has not")
    for item in items:
        if item.get_closest_marker("instructor"):
            item.add_marker(skip)
