"""Shared helpers: the kit's tools installed, and a grade of a stage by its
usual options (pyproject.toml puts the kit's root on the path)."""
import os
from pathlib import Path

import pytest

from grader import deps, grade, stage

ROOT = Path(__file__).resolve().parents[2]

SEED = 0x5EED1234  # the fixed seed of the tests (grader/mutants.py uses the same)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "instructor: the staff's: needs solutions/ or an instructor's tool, or checks what a student never changes "
        "(the book in a browser); a student's copy (make handout) leaves the test out",
    )
    try:
        deps.ensure("kernel", install=True)
    except deps.MissingTools as e:
        raise pytest.UsageError(str(e))
    # Where bubblewrap cannot make namespaces (a chroot, some containers), a
    # submission is refused, or built by a user of its own only if the kit's
    # solutions are readable by root only (they are not in a clone); the tests
    # of everything else a submission meets then run with KIT_SANDBOX=off,
    # those of bubblewrap's sandbox are skipped with the reason (test_seal.py),
    # and the user seal is tested in a copy of its own (test_seal_user.py).
    # The refusal has a test of its own.
    from grader import sandbox

    if sandbox.mode() != "bwrap" and not os.environ.get("KIT_SANDBOX"):
        os.environ["KIT_NO_SANDBOX_REASON"] = sandbox.why_not()
        os.environ["KIT_SANDBOX"] = "off"
        sandbox.forget()


def pytest_report_header(config):
    why = os.environ.get("KIT_NO_SANDBOX_REASON")
    return (
        [
            f"sandbox: no bubblewrap here ({why}); submissions are graded with KIT_SANDBOX=off, "
            "bubblewrap's own tests are skipped, the user seal is tested on its own"
        ]
        if why
        else []
    )


def grade_stage(lab, solutions=False, solutions_below=False, submission=None, root=ROOT, **kw):
    """Grade stage `lab` with its student files from labs/, solutions/ or a submission."""
    st = stage.make(lab, stage.origin_of(solutions, submission, solutions_below), root)
    return grade.grade_stage(st, **kw)


def pytest_collection_modifyitems(config, items):
    """Tests marked `instructor` need the reference code of every lab (and the
    instructor's tools): only the course staff's copy (its .staff-copy mark)
    has them. A student's copy may hold some released labs in solutions/;
    there the marked tests are skipped all the same."""
    from grader import labs

    if labs.staff_copy(ROOT):
        return
    skip = pytest.mark.skip(reason="instructor-only: needs the course staff's copy of the kit")
    for item in items:
        if item.get_closest_marker("instructor"):
            item.add_marker(skip)
