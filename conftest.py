"""The test suite's tiers (CONTRIBUTING.md, "Running the tests"):

    make check             the inner loop: every test not marked `slow`, every
                           mutant on the fixed seed only (MUTANT_SEEDS=0)
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
    config.addinivalue_line("markers", "slow: a long end-to-end test; `make check` leaves it out, `make test` runs it")


def pytest_collection_modifyitems(config, items):
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
