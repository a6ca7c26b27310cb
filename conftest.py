"""The test suite's tiers (CONTRIBUTING.md, "Running the tests"):

    make check             the inner loop (about a minute): every test not
                           marked `slow`, one mutant per lab (MUTANT_SEEDS=0)
    make test              everything (the README's test command, and CI's)
    make test-lab LAB=NN   everything about one lab (pytest --lab NN)

A test is about lab NN when it lives in labs/NN-name/ or its id names the lab
(a parameter such as `02-serial`, or a mutant `02-serial::name`).
"""
import pytest

from grader import labs


def pytest_addoption(parser):
    parser.addoption("--lab", help="only the tests about this lab: its number or its name (make test-lab LAB=NN)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: not in the inner loop (`make check`): many boots, or minutes; `make test` runs it"
    )
    config.addinivalue_line(
        "markers", "long: minutes on its own (a whole students' suite, a term): run first, so the workers end together"
    )


def pytest_collection_modifyitems(config, items):
    # the longest tests first: started last, one would keep a worker busy alone at the end
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
    spec = config.getoption("--lab")
    if not spec:
        return
    try:
        lab = labs.find(spec)
    except labs.LabError as e:
        raise pytest.UsageError(str(e)) from None
    keep = [item for item in items if lab.name in item.nodeid]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep
