"""The engine knows no lab: nothing under grader/ (its tests aside) names
one; and a lab knows the engine through one door, grader/api.py."""
import re

from grader import labs

NAMES = re.compile(r"0[1-6]-(boot|serial|bss-heap|paging|faults|jit-model)|lab0[1-6]_")


def test_the_engine_names_no_lab():
    found = [
        f"{p.relative_to(labs.ROOT)}:{n}: {line.strip()}"
        for p in sorted((labs.ROOT / "grader").rglob("*.py"))
        if "tests" not in p.parts
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if NAMES.search(line)
    ]
    assert found == []


def test_lab_code_imports_the_grader_through_one_door():
    """A lab's checks.py and hidden/checks.py import grader.api only;
    mutants keep grader.mutants."""
    pattern = re.compile(r"^\s*(from|import) grader(\.\w+)?")
    found = []
    for path in list(labs.ROOT.glob("labs/*/checks.py")) + list(labs.ROOT.glob("labs/*/hidden/checks.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = pattern.match(line)
            if m and m.group(2) != ".api":
                found.append(f"{path.relative_to(labs.ROOT)}:{n}: {line.strip()}")
    assert found == []
