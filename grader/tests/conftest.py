"""Shared helpers: a temporary copy of the kit's sources with deliberate
breaks applied (a mutant), and grading of it."""
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from grader import deps, grade  # noqa: E402

SEED = 0x5EED1234


def pytest_configure(config):
    try:
        deps.ensure("kernel", install=True)
    except deps.MissingTools as e:
        raise pytest.UsageError(str(e))


def make_tree(dest, patches=()):
    """Copy labs/ and solutions/ to dest and apply patches: a list of
    (relative path, old text, new text); every old text must be found."""
    for d in ("labs", "solutions"):
        shutil.copytree(ROOT / d, dest / d)
    for rel, old, new in patches:
        p = dest / rel
        text = p.read_text()
        assert old in text, f"mutant patch does not apply: {old!r} not in {rel}"
        p.write_text(text.replace(old, new, 1))
    return dest


@pytest.fixture
def mutant(tmp_path):
    """mutant(patches, lab, **grade options) -> StageResult of the patched tree."""
    count = iter(range(1000))

    def grade_mutant(patches, lab, solutions=True, seed=SEED, **kw):
        root = make_tree(tmp_path / f"tree{next(count)}", patches)
        return grade.grade_stage(lab, solutions=solutions, seed=seed, root=root, **kw)
    return grade_mutant


def check(stage, title_start):
    found = [c for c in stage.checks if c.title.startswith(title_start)]
    assert found, f"no check titled {title_start!r} in {[c.title for c in stage.checks]}"
    return found[0]
