"""Checks: each a function with a title and points, registered by a decorator
for one lab. A check reads one boot's result (several checks share a boot)
and raises Fail with what was expected and what was seen.

Transcript checks come from labs/NN-name/expected.txt; the computed ones
(seeded references, exit status) live in this package, one module per lab.
"""
import importlib
import pkgutil
from dataclasses import dataclass, field


class Fail(Exception):
    def __init__(self, message, details=()):
        super().__init__(message)
        self.message = message
        self.details = list(details)


@dataclass
class Interaction:
    """A conversation with the running kernel: extra command-line words, and
    a hook called on each serial line (it may answer on the serial input)."""
    on_line: object
    kargs: str = ""
    emulators: tuple = ("qemu",)
    launch: dict = field(default_factory=dict)      # options for the emulator (qmp=True)


def interaction(lab, on_line, kargs="", emulators=("qemu",), **launch):
    INTERACTIONS[lab] = Interaction(on_line, kargs, emulators, launch)


@dataclass
class CheckDef:
    lab: str                    # "02-serial", or "*" for every stage
    title: str
    points: int
    fn: object
    boot: str = "default"
    emulators: tuple = ("qemu", "bochs")


CHECKS = []
VARIABLES = {}                  # lab -> fn(ctx) -> {name: value}
BOOTS = {}                      # lab -> {boot name: tests= value}
INTERACTIONS = {}               # lab -> Interaction, for the default boot
PRECOMPUTE = {}                 # lab -> fn(seed, root) -> {name: value}, run while the kernel boots


def check(lab, title, points, boot="default", emulators=("qemu", "bochs")):
    def deco(fn):
        CHECKS.append(CheckDef(lab, title, points, fn, boot, emulators))
        return fn
    return deco


def variables(lab):
    def deco(fn):
        VARIABLES[lab] = fn
        return fn
    return deco


def precompute(lab):
    """Values that need only the seed (slow references): computed in parallel with the boots."""
    def deco(fn):
        PRECOMPUTE[lab] = fn
        return fn
    return deco


def boot(lab, name, tests):
    BOOTS.setdefault(lab, {})[name] = tests


@dataclass
class Context:
    """What a check may look at."""
    lab: object
    seed: int
    memory_mb: int
    run: object                 # run.RunResult of this check's boot
    runs: dict                  # every boot of the stage, by name
    values: dict = field(default_factory=dict)
    build: object = None
    root: object = None

    def find(self, prefix):
        return [ln for ln in self.run.lines if ln.startswith(prefix)]


def load_all():
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


def for_lab(lab_name):
    return [c for c in CHECKS if c.lab in (lab_name, "*")]


load_all()
