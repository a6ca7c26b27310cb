"""Every deliberate break that a lab's mutants.py declares, graded for real:
each must produce the report its function asserts."""
import os
import shutil

import pytest

from grader import labs, mutants

pytestmark = pytest.mark.instructor  # needs solutions/: not in a student's copy

MUTANTS = mutants.collect()


def test_every_lab_has_mutants():
    from grader import labs

    assert {m.lab.name for m in MUTANTS} == {lab.name for lab in labs.discover()}


@pytest.fixture
def mutant_dir():
    """One folder per test worker, the same for every mutant it grades: a
    mutant's tree then lies where the last one did, and its build reuses
    every object its patches leave alone (grader/build.py, ObjectCache)."""
    d = labs.ROOT / "build" / "mutants" / os.environ.get("PYTEST_XDIST_WORKER", "main")
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("m", MUTANTS, ids=[f"{m.lab.name}::{m.name}" for m in MUTANTS])
def test_mutant(m, mutant_dir):
    mutants.run(m, mutant_dir)


def asserted_texts():
    """Every string an `assert` of a lab's mutants.py looks for (15 characters or more)."""
    import ast
    from grader import labs

    found = set()
    for lab in labs.discover():
        path = lab.dir / "mutants.py"
        if not path.is_file():
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assert):
                found |= {
                    c.value
                    for c in ast.walk(node)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str) and len(c.value) >= 15
                }
    return found


def test_every_hint_that_names_a_cause_has_a_mutant_that_checks_its_words():
    """A diagnosis hint is only as good as the break that shows it: each lab's
    hints must be asserted, by their words, in some lab's mutants.py."""
    from grader import api, labs

    asserted = asserted_texts()
    missing = []
    for lab in labs.discover():
        for h in api.collect(lab.module("checks"))["hints"]:
            if h.rank >= 95:  # the last resort names no cause
                continue
            text = h.key if callable(h.text) else h.text
            if not any(a in text or (callable(h.text) and text in a) for a in asserted):
                missing.append(f"{lab.name}: {text[:70]}")
    assert missing == []
