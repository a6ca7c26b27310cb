"""Skeletons and solutions: the same files, different only inside the LAB
regions, each skeleton small, each region marked with the lab's number."""
import pytest

from grader import labs

pytestmark = pytest.mark.instructor  # needs solutions/: not in a student's copy

LABS = labs.discover()


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_solution_differs_from_skeleton_only_inside_regions(lab):
    assert labs.skeleton_drift(lab) == []


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_regions_carry_the_lab_number(lab):
    for name in lab.student:
        text = (lab.dir / name).read_text()
        assert f"LAB {lab.number}: your code here." in text, name


def test_drift_outside_a_region_is_reported(tmp_path):
    lab = labs.Lab(9, "09-x", tmp_path / "labs" / "09-x", "x", ("f.c",), root=tmp_path)
    lab.dir.mkdir(parents=True)
    (tmp_path / "solutions" / "09-x").mkdir(parents=True)
    (lab.dir / "f.c").write_text("a\n// LAB 9: your code here.\nstub\n// LAB 9: end of your code.\nb\n")
    (tmp_path / "solutions/09-x/f.c").write_text("a\n// LAB 9: your code here.\nreal\n// LAB 9: end of your code.\nB\n")
    assert labs.skeleton_drift(lab) == ["09-x/f.c: differs outside the LAB regions: -b"]
    (tmp_path / "solutions/09-x/f.c").write_text("a\n// LAB 9: your code here.\nreal\nb\n")
    assert "never closed" in labs.skeleton_drift(lab)[0]


def test_student_files_are_small():
    for lab in LABS:
        for name in lab.student:
            code = [
                ln
                for ln in (lab.dir / name).read_text().splitlines()
                if ln.strip() and not ln.strip().startswith(("/*", "*", "//"))
            ]
            assert len(code) < 40, f"{lab.name}/{name}: {len(code)} lines of code in a skeleton"
