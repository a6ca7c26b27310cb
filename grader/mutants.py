"""Deliberate breaks, graded for real. A lab's mutants.py declares them:

    from grader.mutants import mutant, check_of, skeleton

    @mutant("NN", patches=[("solutions/NN-name/file.c", "old text", "new text")])
    def divisor_off_by_one(st):
        assert not check_of(st, "serial: divisor").passed

Each mutant grades a copy of the kit's labs/ and solutions/ with its patches
applied (every old text must be found), by default with the student files
from solutions/. Options: skeleton=True grades the student files of labs/
(below=True: on the reference labs below), emulator, seed, memory_mb,
timeouts, boots=["default"] (only those boots of the stage, and their
checks); also=[{...}, ...] grades the same tree again with other options,
and the function then receives every result; seeds=N grades it with N random
seeds (and the fixed one) and calls the function on each result: a classic
bug must be caught whatever the seed (MUTANT_SEEDS=N in the environment
gives every seeded mutant N random seeds: 0 in `make check`, 20 for a long
hunt; an escape prints the command that replays its seed). The test suite
(grader/tests/test_mutants.py) runs every mutant of every lab.
"""
import os
import random
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import build as build_mod, grade, labs as labs_mod, stage as stage_mod

SEED = 0x5EED1234


@dataclass
class Mutant:
    name: str
    lab: labs_mod.Lab  # the lab whose mutants.py declares it
    stage: str
    patches: list
    expect: object
    options: dict = field(default_factory=dict)
    also: list = field(default_factory=list)


def mutant(stage, patches=(), also=(), **options):
    """Declare a mutant: grade `stage` of the patched kit, then call the function on the result(s)."""

    def deco(fn):
        fn.kit_mutant = (str(stage), list(patches), dict(options), [dict(a) for a in also])
        return fn

    return deco


def skeleton(path):
    """A patch that puts the skeleton of a student file in place of its solution:
    skeleton("NN-name/f.c") copies labs/NN-name/f.c over solutions/NN-name/f.c."""

    def apply(root):
        (root / "solutions" / path).write_text((root / "labs" / path).read_text())

    apply.shown = f"skeleton of {path}"
    return apply


def collect(root=labs_mod.ROOT):
    """Every mutant of every lab under root, in lab order."""
    found = []
    for lab in labs_mod.discover(root):
        module = lab.module("mutants")
        for name, obj in vars(module).items() if module else ():
            if hasattr(obj, "kit_mutant"):
                stage, patches, options, also = obj.kit_mutant
                found.append(Mutant(name, lab, stage, patches, obj, options, also))
    return found


def given_code_checks(root=labs_mod.ROOT):
    """Checks that test given code (or the clean end of a run), which a skeleton may pass."""
    titles = set()
    for lab in labs_mod.discover(root):
        module = lab.module("mutants")
        titles |= set(getattr(module, "GIVEN_CODE_CHECKS", ()))
    return titles


def make_tree(dest, patches=(), root=labs_mod.ROOT):
    """Copy labs/ and solutions/ of the kit to dest and apply the patches:
    (relative path, old text, new text), or a function of the tree's root."""
    dest = Path(dest)
    for d in ("labs", "solutions"):
        if (Path(root) / d).is_dir():
            shutil.copytree(Path(root) / d, dest / d, ignore=shutil.ignore_patterns("__pycache__"))
    for p in patches:
        if callable(p):
            p(dest)
            continue
        rel, old, new = p
        path = dest / rel
        path.write_text(apply_patch(path.read_text(), rel, old, new))
    return dest


def apply_patch(text, rel, old, new):
    """text with a mutant's patch (rel, old, new) applied: old must be in it."""
    if old not in text:
        raise AssertionError(f"mutant patch does not apply: {old!r} not in {rel}")
    return text.replace(old, new, 1)


def _stage_of(tree, stage, options):
    origin = (
        stage_mod.Origin("labs", None, options.get("below", False))
        if options.get("skeleton")
        else stage_mod.Origin("solutions")
    )
    return stage_mod.make(stage, origin, tree)


def grade_tree(tree, stage, skeleton=False, below=False, seed=SEED, emulator="qemu", **options):
    st = _stage_of(tree, stage, {"skeleton": skeleton, "below": below})
    return grade.grade_stage(st, seed, emulator=emulator, **options)


def seeds_of(m):
    """The seeds mutant m is graded with: the fixed one, then its own count
    of random ones (seeds=N). MUTANT_SEEDS=N gives every seeded mutant N
    random seeds instead (0: the fixed seed only); MUTANT_SEED=0x... grades
    that one seed (the replay of an escape)."""
    if os.environ.get("MUTANT_SEED"):
        return [int(os.environ["MUTANT_SEED"], 0)]
    n = m.options.get("seeds", 0)
    if n and os.environ.get("MUTANT_SEEDS", "") != "":
        n = int(os.environ["MUTANT_SEEDS"])
    return [m.options.get("seed", SEED)] + [random.SystemRandom().randrange(1, 1 << 32) for _ in range(n)]


def replay_command(m, seed):
    """The one command that grades mutant m again with exactly this seed."""
    return (
        f"MUTANT_SEED=0x{seed:08x} python3 -m pytest -q "
        f"'grader/tests/test_mutants.py::test_mutant[{m.lab.name}::{m.name}]'"
    )


def run(m, workdir, jobs=2):
    """Grade the mutant; returns what its function returns (it asserts)."""
    tree = make_tree(Path(workdir) / "tree", m.patches, m.lab.root)
    options = {k: v for k, v in m.options.items() if k not in ("seeds", "seed")}
    try:
        if "seeds" in m.options or os.environ.get("MUTANT_SEED"):
            return _every_seed(m, tree, options, seeds_of(m), jobs)
        seed = seeds_of(m)[0]
        results = [grade_tree(tree, m.stage, seed=seed, **options)] + [
            grade_tree(tree, m.stage, **{**options, "seed": seed, **a}) for a in m.also
        ]
        return m.expect(*results)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def _every_seed(m, tree, options, seeds, jobs):
    """The mutant must be caught with every seed; an escape names the
    command that replays it."""
    build_mod.build(_stage_of(tree, m.stage, options))  # build once, before the parallel boots
    slots = grade.emulator_slots(jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda s: grade_tree(tree, m.stage, seed=s, slots=slots, **options), seeds))
    escaped = []
    for seed, st in zip(seeds, results):
        try:
            m.expect(st)
        except AssertionError as e:
            escaped.append((seed, e))
    if escaped:
        seed, e = escaped[0]
        others = "".join(f"; seed 0x{s:08x}" for s, _ in escaped[1:3])
        raise AssertionError(
            f"{m.lab.name}::{m.name} escapes with seed 0x{seed:08x}: {e}{others}\n"
            f"replay exactly that seed: {replay_command(m, seed)}"
        )


def check_of(st, title_start):
    """The check of a graded stage whose title starts so."""
    found = [c for c in st.checks if c.title.startswith(title_start)]
    assert found, f"no check titled {title_start!r} in {[c.title for c in st.checks]}"
    return found[0]


def diagnosis_text(st, boot="default"):
    return "\n".join(st.diagnoses.get(boot, []))


# --- forgers: a lab's skeleton plus its whole expected transcript, printed ---------------

_REFERENCE = {}


def reference_lines(stage, seed):
    """The default boot's serial output of the reference solutions (the
    kit's own labs/ and solutions/) for this seed, under QEMU."""
    key = (str(stage), seed)
    if key not in _REFERENCE:
        st = stage_mod.make(stage, stage_mod.Origin("solutions"))
        built = build_mod.build(st)
        plan = grade.plan_for(st, "qemu", only=set())
        run = grade.plan_runs(plan, seed, "qemu")["default"]
        _REFERENCE[key] = grade.boot(built, run, talk=grade.talks_with(plan, "default")).lines
    return _REFERENCE[key]


def c_string(text):
    """`text` as a C string literal."""
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else f'\\x{ord(c):02x}" "' for c in text) + '"'


FORGED_BYTES = 24 * 1024  # the forger's text lives in an array of this fixed size: its length moves nothing


def forged_text(stage, seed, work=(), symbols=None):
    """What a forger prints: the reference transcript of this seed, except
    the lines that only the work computes (those starting with a prefix of
    `work`), which it can only take from a run of another seed (as if
    replayed), with this run's seed put in. With `symbols` (the forger's own
    kernel), every value the grader computes from a kernel's symbols (its
    sections' and probes' addresses, and what the given code derives from
    them) is the forger's own, as a forger computes it at run time. The
    grader's waiting lines and the final line are left to the kernel."""
    ours = reference_lines(stage, seed)
    if symbols is not None:
        ours = refit(stage, seed, ours, symbols)
    if work:
        other = next(s for s in range(seed + 3, seed + 300, 3) if s % 3 == seed % 3)  # the same machine size
        theirs = reference_lines(stage, other)
        assert len(theirs) == len(ours), "the two reference runs differ in length"
        ours = [b.replace(f"0x{other:08x}", f"0x{seed:08x}") if a.startswith(work) else a for a, b in zip(ours, theirs)]
    return [ln for ln in ours if not ln.startswith("[power] ")]


def refit(stage, seed, lines, symbols):
    """The reference output with each expected line rendered again with the
    values the grader computes for a kernel of these symbols (the builtin
    placeholders keep what the reference printed)."""
    from types import SimpleNamespace

    from . import run as run_mod, transcript

    st = stage_mod.make(stage, stage_mod.Origin("solutions"))
    plan = grade.plan_for(st, "qemu", only=set())
    runs = grade.plan_runs(plan, seed, "qemu")
    boot = run_mod.RunResult("exited", output=("\n".join(lines) + "\n").encode())
    pre = {"_seeded": []}
    for fn in plan.precompute:
        pre.update(fn(seed, st.top))

    def values(syms):
        built = SimpleNamespace(symbols=syms, stage=st)
        return grade.placeholder_values(plan, st, runs, {"default": boot}, built, seed, dict(pre))

    ref, ours = values(build_mod.build(st).symbols), values(symbols)
    specs = grade.expected_transcript(st.top)
    out = list(lines)
    for spec in specs:
        for r in transcript.match(specs, lines, ref)[spec.title]:
            if r.status == "matched":
                out[r.index] = rerender(r.expect, lines[r.index], ref, ours)
    return out


def rerender(expect, line, old, new):
    """`line`, which matches `expect` with the values `old`, with the values `new`."""
    from .transcript import BUILTINS, TOKEN

    parts, pos, groups = [], 0, []
    for m in TOKEN.finditer(expect.text):
        parts.append(re.escape(expect.text[pos : m.start()]))
        name = m.group(1)
        if m.group(0) in ("{{", "}}"):
            parts.append(re.escape(m.group(0)[0]))
        elif name in old:
            parts.append(f"({re.escape(str(old[name]))})")
            groups.append(str(new[name]))
        else:
            alternatives = "|".join(re.escape(a) for a in name.split("|"))
            parts.append(f"({BUILTINS.get(name, alternatives)})")
            groups.append(None)
        pos = m.end()
    parts.append(re.escape(expect.text[pos:]))
    m = re.fullmatch("".join(parts), line)
    if m is None:
        return line
    out, at = [], 0
    for i, value in enumerate(groups, 1):
        out += [line[at : m.start(i)], m.group(i) if value is None else value]
        at = m.end(i)
    return "".join(out) + line[at:]


def forger(student_file, stage, seed=SEED, work=(), filtered=True, extra_c=""):
    """A patch that makes solutions/<student_file> a forger: the skeleton of
    the file, whose every function first prints the lab's whole transcript
    (forged_text, fitted to the forger's own kernel: it is built once to
    learn its symbols). filtered: straight to the UART (early_putc), then
    the console points at a sink that drops everything the kernel prints
    later (only the power-off lines, written with early_putc, still go out);
    otherwise through con_puts, before the kernel's own lines. extra_c runs
    in the sink, at each character the kernel prints (a forger's answer to
    another boot, once the command line is known)."""

    def write(root, lines):
        text = (root / "labs" / student_file).read_text()
        body = "\n".join(f"    {c_string(ln + chr(10))}" for ln in lines)
        assert sum(len(ln) + 1 for ln in lines) < FORGED_BYTES, "the forged transcript does not fit"
        helpers = f"""
/* A forger (grader/mutants.py): it prints what a finished lab prints. */
#include "kernel.h"
static const char forge_text[{FORGED_BYTES}] =
{body};
static int forge_done;
static void
forge_drop(char c)
{{
    (void)c;
{extra_c}
}}
static void
forge_install(void)
{{
    if (forge_done)
        return;
    forge_done = 1;
    {"for (const char *p = forge_text; *p; p++) early_putc(*p); con_sink = forge_drop;" if filtered
     else "con_puts(forge_text); (void)forge_drop;"}
}}
"""
        last_include = max(i for i, ln in enumerate(text.splitlines()) if ln.startswith("#include"))
        head = text.splitlines(keepends=True)
        text = "".join(head[: last_include + 1]) + helpers + "".join(head[last_include + 1 :])
        text = re.sub(r"(// LAB \d+: your code here\.\n)", r"\1    forge_install();\n", text)
        (root / "solutions" / student_file).write_text(text)

    def apply(root):
        write(root, forged_text(stage, seed, work))  # a first build: the forger's layout
        symbols = build_mod.build(stage_mod.make(stage, stage_mod.Origin("solutions"), root)).symbols
        write(root, forged_text(stage, seed, work, symbols))

    apply.shown = f"forger in {student_file}"
    return apply


def earned_without_work(st, allowed=()):
    """The checks a forger passed that test more than the given code."""
    return [c.title for c in st.checks if c.passed and c.title not in allowed and c.points]
