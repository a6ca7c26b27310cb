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


def in_the_inner_loop(m):
    """`make check` boots one mutant per lab (the first it declares); every
    mutant's patches are still checked there, without a boot
    (test_every_mutant_patch_applies). `make test` boots them all."""
    return m is next(x for x in MUTANTS if x.lab.name == m.lab.name)


@pytest.mark.parametrize(
    "m",
    [pytest.param(m, marks=() if in_the_inner_loop(m) else pytest.mark.slow) for m in MUTANTS],
    ids=[f"{m.lab.name}::{m.name}" for m in MUTANTS],
)
def test_mutant(m, mutant_dir):
    mutants.run(m, mutant_dir)


def test_every_mutant_patch_applies():
    """Each mutant's patches, applied in order to the texts of the kit's
    files (no copy, no boot): a declaration whose old text is no longer in
    its file is named with the file."""
    broken = []
    for m in MUTANTS:
        texts = {}
        for p in m.patches:
            if callable(p):  # skeleton("NN-name/f.c"): the skeleton's file must be there
                shown = getattr(p, "shown", "")
                rel = shown.removeprefix("skeleton of ") if shown.startswith("skeleton of ") else ""
                if rel and not (m.lab.root / "labs" / rel).is_file():
                    broken.append(f"{m.lab.name}::{m.name}: no labs/{rel}")
                continue
            rel, old, new = p
            path = m.lab.root / rel
            if rel not in texts:
                texts[rel] = path.read_text() if path.is_file() else ""
            try:
                texts[rel] = mutants.apply_patch(texts[rel], rel, old, new)
            except AssertionError as e:
                broken.append(f"{m.lab.name}::{m.name}: {e}")
    assert broken == []


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
