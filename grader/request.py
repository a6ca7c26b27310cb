"""What a command asks for, made once where the command line is parsed and
passed down: the labs, where their student files come from, the seed, the
emulators, the machine's memory, the tests, the reports to write. Nothing
below __main__ reads the command line or fills in a default again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import intake, labs, stage as stage_mod


@dataclass(frozen=True)
class Reports:
    """The reports a grade writes besides the terminal's."""

    json: Path | None = None
    junit: Path | None = None
    gradescope: Path | None = None
    show_output: bool = False  # each boot's serial output before the report (make demo)


@dataclass(frozen=True)
class Request:
    labs: tuple[str, ...]  # lab specs, in order (every lab of the kit for a grade that named none)
    seed: int
    solutions: bool = False  # student files from solutions/ (the staff's reference code)
    below: bool = False  # labs below the graded one from solutions/ (BELOW=solutions)
    submission: Path | None = None  # a student's tree or loose files, graded instead of labs/
    emulators: tuple[str, ...] = ("qemu",)
    memory_mb: int | None = None  # None: the seed chooses
    tests: str = "all"  # the tests= word of a boot that is watched, not graded
    jobs: int = 2  # emulators at once
    reports: Reports = field(default_factory=Reports)
    install: bool = True  # install missing Debian packages (as root)

    @property
    def origin(self) -> stage_mod.Origin:
        return stage_mod.origin_of(self.solutions, self.submission, self.below)

    def stage(self, spec: str) -> stage_mod.Stage:
        """The Stage of lab `spec`: computed here once, passed down. A submission
        is first mapped onto the kit's layout (grader/intake.py): loose files or
        a whole tree; IntakeError when a file is missing."""
        if self.submission is None:
            return stage_mod.make(spec, self.origin)
        below = "reference" if self.below else "submission"
        tree = intake.tree_for(self.submission) / f"lab-{labs.find(spec).name}"
        return stage_mod.make(spec, intake.materialize(self.submission, spec, tree, below))
