"""A stage and a run: values computed once and passed down, never rebuilt.

Stage N is the union of labs 01..N. Its sources are every .c and .S file of
those labs; each student file comes from the student's tree (labs/), from
solutions/, or from a submission (Origin says which, as data). A Run holds
what one boot is given: the seed, the tests, the memory size and the kernel
command line they make.
"""
import random
import re
from dataclasses import dataclass
from pathlib import Path

from . import labs as labs_mod

SOURCE_SUFFIXES = (".c", ".S")
MEMORY_CHOICES = (128, 192, 256)  # MiB: the seed picks one, so the memory map cannot be hard-coded
# `#define NAME 0x1234ull`: a name whose value is one integer literal (a C suffix allowed)
DEFINE = re.compile(r"^#define\s+([A-Z][A-Z0-9_]*)\s+(0x[0-9a-fA-F]+|\d+)(?:[uUlL]{0,3})\b", re.M)


@dataclass(frozen=True)
class Origin:
    """Where a stage's student files come from."""

    kind: str = "labs"  # labs (the student's own tree), solutions, or submission
    submission: Path = None  # the submission's folder, for kind "submission"
    below_from_solutions: bool = False  # labs below the graded one come from solutions/
    reference: Path = None  # where the reference student files are (default: the kit's solutions/)
    upload: Path = None  # what the student handed in, when `submission` is the tree made from it

    def __post_init__(self):
        if self.kind not in ("labs", "solutions", "submission"):
            raise ValueError(f"no origin kind {self.kind}")

    @property
    def sentence(self):
        """How a report says it, without knowing which labs were released
        (Stage.sentence says that)."""
        below = " (labs below it from solutions/)" if self.below_from_solutions else ""
        if self.kind == "submission":
            return f"{self.upload or self.submission}{below}"
        return "solutions/" if self.kind == "solutions" else f"labs/ (your code){below}"

    def make_args(self):
        """The make variables that select this origin again."""
        return (["SOLUTIONS=1"] if self.kind == "solutions" else []) + (
            ["BELOW=solutions"] if self.below_from_solutions else []
        )


def origin_of(solutions=False, submission=None, solutions_below=False):
    if submission is not None:
        return Origin("submission", Path(submission), bool(solutions_below))
    if solutions:
        return Origin("solutions")
    return Origin("labs", None, bool(solutions_below))


@dataclass(frozen=True)
class Source:
    path: Path  # the file compiled
    shown: str  # how reports name it: labs/NN-name/f.c
    lab: labs_mod.Lab
    student: bool


@dataclass(frozen=True)
class Stage:
    root: Path
    labs: tuple  # Lab 01..N
    all_labs: tuple  # every lab of the kit (for the LAB_n switches of stage.h)
    origin: Origin
    sources: tuple  # Source, in lab order
    from_reference: frozenset = frozenset()  # names of the labs whose student files come from the reference

    @property
    def top(self):
        return self.labs[-1]

    @property
    def reference(self):
        """The folder of the reference student files: the kit's solutions/, or the origin's own."""
        return Path(self.origin.reference) if self.origin.reference else self.root / "solutions"

    def released_below(self):
        """The labs below the top one whose reference code is here in full (BELOW=solutions takes them)."""
        return [lab for lab in self.labs[:-1] if released(lab, self.reference)]

    @property
    def sentence(self):
        """Where the student files come from, as a report's header says it: with
        BELOW=solutions, which labs below came from the reference code and which
        from the student's own tree (a lab not released yet)."""
        o = self.origin
        if not o.below_from_solutions or o.kind == "solutions" or len(self.labs) == 1:
            return o.sentence
        own = f"{o.upload or o.submission}" if o.kind == "submission" else "labs/ (your code)"
        below = self.labs[:-1]
        ref = [lab for lab in below if lab.name in self.from_reference]
        mine = [lab for lab in below if lab.name not in self.from_reference]
        where = f"{self.reference.name}/"
        if not mine:
            return f"{own} (labs below it from {where})"
        if not ref:
            return f"{own} (below it: {lab_words(mine)} from labs/ too, none released in {where})"
        return f"{own} (below it: {lab_words(ref)} from {where}; {lab_words(mine)} from labs/, not released in {where})"

    @property
    def number(self):
        return self.top.number

    @property
    def include_dirs(self):
        return [lab.dir for lab in self.labs]

    @property
    def modules(self):
        """The Multiboot2 module files of the stage's labs."""
        return [lab.dir / name for lab in self.labs for name in lab.modules]

    def given(self, suffixes):
        """The stage's given files with these suffixes, in lab order."""
        return [
            p
            for lab in self.labs
            for p in sorted(lab.dir.iterdir())
            if p.suffix in suffixes and p.name not in lab.student
        ]

    def first(self, name):
        """The first file called `name` in the stage's labs (kernel.ld, grub.cfg)."""
        for lab in self.labs:
            if (lab.dir / name).is_file():
                return lab.dir / name
        raise labs_mod.LabError(f"no lab of stage {self.number:02d} has a {name}")

    def defines(self):
        """{NAME: value} of every #define of the stage's given headers whose value
        is one integer literal: what the kernel and the grader must agree on
        (memlayout.h's addresses, kernel.h's EXIT_* values)."""
        found = {}
        for h in self.given((".h",)):
            for name, value in DEFINE.findall(h.read_text()):
                found[name] = int(value, 0)
        return found

    def exit_values(self):
        """{"OK": 0x10, "PANIC": 0x11, ...}: the EXIT_* values of the kernel's headers."""
        found = {name[len("EXIT_") :]: v for name, v in self.defines().items() if name.startswith("EXIT_")}
        if "OK" not in found:
            raise labs_mod.LabError("no header of the stage defines EXIT_OK")
        return found

    def lab_modules(self, name):
        """[(lab, module)] for the labs of the stage that have labs/NN/<name>.py, highest lab first."""
        return [(lab, m) for lab in reversed(self.labs) if (m := lab.module(name)) is not None]

    def missing_files(self):
        return [s for s in self.sources if not s.path.is_file()]


def released(lab, reference):
    """Is the reference code of `lab` here in full (every student file in reference/NN-name/)?"""
    d = Path(reference) / lab.name
    return d.is_dir() and all((d / name).is_file() for name in lab.student)


def lab_words(chosen):
    """`lab 05`, `labs 01-04`, `labs 01, 03`: labs named by number."""
    nums = [lab.number for lab in chosen]
    if len(nums) == 1:
        return f"lab {nums[0]:02d}"
    if nums == list(range(nums[0], nums[-1] + 1)):
        return f"labs {nums[0]:02d}-{nums[-1]:02d}"
    return "labs " + ", ".join(f"{n:02d}" for n in nums)


NO_SOLUTIONS = (
    "this copy of the kit has no solutions/ (a student's copy has none until the course staff release "
    "the reference code of a lab): `make demo` and SOLUTIONS=1 run the reference code, which the course "
    "staff's copy holds. Grade your own code with `make grade LAB=NN`"
)


def not_released(top, missing, reference):
    """What SOLUTIONS=1 says when the reference code of some labs of the stage is not here."""
    return (
        f"`make demo` and SOLUTIONS=1 run the reference code of every lab up to {top.name}, and "
        f"{reference.name}/ has none for {lab_words(missing)} (the course staff release it lab by lab). "
        f"Grade your own code with "
        f"`make grade LAB={top.number:02d}`, or lab {top.number:02d} alone on the reference code released "
        f"so far with `make grade LAB={top.number:02d} BELOW=solutions`"
    )


def make(spec, origin=Origin(), root=labs_mod.ROOT):
    """The stage of lab `spec` (its number, folder name or name), its student files from `origin`.
    With origin.below_from_solutions, each lab below the top one comes from the
    reference code when it is released in full, else from the student's own
    tree (a submission must have the reference code of every lab below)."""
    root = Path(root)
    every = labs_mod.discover(root)
    top = labs_mod.find(spec, root, every)
    chosen = tuple(lab for lab in every if lab.number <= top.number)
    reference = Path(origin.reference) if origin.reference else root / "solutions"
    if origin.kind == "solutions":
        missing = [lab for lab in chosen if not released(lab, reference)]
        if missing and origin.reference is not None:
            raise labs_mod.LabError(f"no reference code of {lab_words(missing)} in {reference}")
        if missing:
            raise labs_mod.LabError(NO_SOLUTIONS if not reference.is_dir() else not_released(top, missing, reference))
        from_reference = {lab.name for lab in chosen}
    elif origin.below_from_solutions:
        from_reference = {lab.name for lab in chosen[:-1] if released(lab, reference)}
        missing = [lab for lab in chosen[:-1] if lab.name not in from_reference]
        if missing and origin.kind == "submission":
            raise labs_mod.LabError(f"no reference code of {lab_words(missing)} in {reference}")
    else:
        from_reference = set()
    sources = []
    for lab in chosen:
        for f in sorted(lab.dir.iterdir()):
            if f.suffix not in SOURCE_SUFFIXES:
                continue
            student = f.name in lab.student
            path, shown = f, f"labs/{lab.name}/{f.name}"
            if student and lab.name in from_reference:
                path, shown = reference / lab.name / f.name, f"{reference.name}/{lab.name}/{f.name}"
            elif student and origin.kind == "submission":
                path = origin.submission / "labs" / lab.name / f.name
            sources.append(Source(path, shown, lab, student))
    return Stage(root, chosen, tuple(every), origin, tuple(sources), frozenset(from_reference))


def new_seed():
    """A fresh seed: a run's, a batch's base, an uploaded submission's."""
    return random.SystemRandom().randrange(1, 1 << 32)


def seed_or_new(seed):
    """The seed a command was given, or a fresh one: the one place where a
    seed gets its default (grader/request.py and the batch use it)."""
    return new_seed() if seed is None else seed


def memory_for(seed):
    return MEMORY_CHOICES[seed % len(MEMORY_CHOICES)]


@dataclass(frozen=True)
class Run:
    """What one boot is given."""

    seed: int
    tests: str = "all"
    memory_mb: int = None  # None: chosen by the seed
    extra: tuple = ()  # more command-line words (an interaction's `monitor=1`)
    emulator: str = "qemu"

    def __post_init__(self):
        if self.memory_mb is None:
            object.__setattr__(self, "memory_mb", memory_for(self.seed))

    @property
    def cmdline(self):
        return " ".join([f"seed=0x{self.seed:08x}", f"tests={self.tests}", *self.extra])

    @property
    def memory_chosen_by_seed(self):
        return self.memory_mb == memory_for(self.seed)
