"""Every deliberate break that a lab's mutants.py declares, graded for real:
each must produce the report its function asserts."""
import pytest

from grader import mutants

pytestmark = pytest.mark.instructor       # needs solutions/: not in a student's copy

MUTANTS = mutants.collect()


def test_every_lab_has_mutants():
    from grader import labs
    assert {m.lab.name for m in MUTANTS} == {lab.name for lab in labs.discover()}


@pytest.mark.parametrize("m", MUTANTS, ids=[f"{m.lab.name}::{m.name}" for m in MUTANTS])
def test_mutant(m, tmp_path):
    mutants.run(m, tmp_path)
