"""Every stage booted for real: the solutions get full marks under both
emulators and several seeds, and every check of a lab fails on that lab's
skeleton (except the checks of given code its mutants.py names). The
deliberate breaks of each lab are in test_mutants.py."""
import pytest

from grader import grade, labs, mutants, observe
from conftest import SEED, grade_stage

pytestmark = pytest.mark.instructor  # needs solutions/: not in a student's copy

LABS = [lab.name for lab in labs.discover()]


@pytest.mark.parametrize("emulator", ["qemu", pytest.param("bochs", marks=pytest.mark.slow)])
@pytest.mark.parametrize("lab", LABS)
def test_solutions_get_full_marks(lab, emulator):
    st = grade_stage(lab, solutions=True, seed=SEED, emulator=emulator)
    failed = [(c.title, c.message) for c in st.checks if not c.passed]
    assert not failed and st.full and st.score == st.total > 0
    # every check has evidence of its own; under Bochs, where QEMU's observations are not made, the told ones
    # are named in a note
    own = {observe.SEED, observe.OBSERVED, observe.BORROWED} | ({observe.TOLD} if emulator == "bochs" else set())
    common = {c.title for c in grade.COMMON_CHECKS}
    assert [c.title for c in st.checks if c.title not in common and c.evidence not in own] == []
    told = [c.title for c in st.checks if c.evidence == observe.TOLD]
    assert all(t in " ".join(st.notes) for t in told) and bool(told) == bool(st.notes)


@pytest.mark.slow
def test_solutions_pass_with_other_seeds_and_memory_sizes():
    for seed in (1, 2, 0xFFFFFFFF):  # the seed also picks 128, 192 or 256 MiB
        st = grade_stage(LABS[1], solutions=True, seed=seed)
        assert st.full, [(c.title, c.message) for c in st.checks if not c.passed]


@pytest.mark.parametrize("lab", LABS)
def test_every_check_fails_on_the_skeleton_of_its_lab(lab):
    st = grade_stage(lab, seed=SEED, solutions_below=True)
    passing = {c.title for c in st.checks if c.passed}
    given = mutants.given_code_checks() | {"power: final line and clean power-off"}
    assert passing <= given, passing - given
    assert all(c.message for c in st.checks if not c.passed)
