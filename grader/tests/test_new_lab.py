"""A lab is a room: adding lab 07 takes files under labs/07-*/, solutions/07-*/
and one book/07-*.md, plus one call line in kmain, and nothing in the engine.
The engine discovers it, builds it into stage 07 and grades it."""
import hashlib
import shutil

import pytest

from grader import grade, labs, mutants, stage
from conftest import ROOT, SEED

pytestmark = [pytest.mark.instructor, pytest.mark.slow]  # needs solutions/: not in a student's copy

LAB07 = {
    "labs/07-hello/lab.json": """{
  "title": "Hello: a seeded greeting",
  "student": ["greet.c"],
  "chapter": "book/07-hello.md",
  "header": "hello.h"
}
""",
    "labs/07-hello/hello.h": """/* Lab 07: a seeded greeting. */
#ifndef HELLO_H
#define HELLO_H
#include "kernel.h"

/* greet.c (LAB 7): mix the seed into a greeting number. */
uint64_t greet_mix(uint64_t seed);

/* hello.c: print the greeting. */
void hello_selftest(uint64_t seed);
#endif
""",
    "labs/07-hello/hello.c": """/* Lab 07's given code: the greeting line the grader checks. */
#include "hello.h"

void
hello_selftest(uint64_t seed)
{
    con_puts("[hello] seed ");
    con_puthex(seed, 8);
    con_puts(" mix ");
    con_puthex(greet_mix(seed), 16);
    con_puts("\\n");
}
""",
    "labs/07-hello/greet.c": """/* Lab 07: the student's part. */
#include "hello.h"

/* uint64_t greet_mix(uint64_t seed)
 *
 * Contract: return seed * 0x9e3779b97f4a7c15 (modulo 2^64), xor the
 * product shifted right by 29.
 */
uint64_t
greet_mix(uint64_t seed)
{
    // LAB 7: your code here.
    (void)seed;
    return 0;
    // LAB 7: end of your code.
}
""",
    "solutions/07-hello/greet.c": """/* Lab 07: the student's part. */
#include "hello.h"

/* uint64_t greet_mix(uint64_t seed)
 *
 * Contract: return seed * 0x9e3779b97f4a7c15 (modulo 2^64), xor the
 * product shifted right by 29.
 */
uint64_t
greet_mix(uint64_t seed)
{
    // LAB 7: your code here.
    uint64_t p = seed * 0x9e3779b97f4a7c15ull;
    return p ^ (p >> 29);
    // LAB 7: end of your code.
}
""",
    "labs/07-hello/expected.txt": """# Stage 07: the greeting.
== hello: the seed is greeted [10]
[hello] seed {seed} mix {hex}
""",
    "labs/07-hello/checks.py": '''"""Lab 07's computed check: the mix of this run's seed."""
from grader.api import Fail, check

MASK = (1 << 64) - 1
# The transcript's line shows the seed, which anyone can print: it counts where the mix is right.
BACKED_BY = {"hello: the seed is greeted": "hello: greet_mix of the seed"}


def mix(seed):
    p = (seed * 0x9E3779B97F4A7C15) & MASK
    return p ^ (p >> 29)


@check("hello: greet_mix of the seed", 20, seeded=True)
def greeting(ctx):
    want = f"[hello] seed 0x{ctx.seed:08x} mix 0x{mix(ctx.seed):016x}"
    got = ctx.find("[hello] seed")
    if got != [want]:
        raise Fail(f"expected `{want}`, got `{got[0] if got else '(nothing)'}`")
''',
    "labs/07-hello/mutants.py": '''"""Lab 07's deliberate break."""
from grader.mutants import check_of, mutant


@mutant("07", patches=[("solutions/07-hello/greet.c", "p >> 29", "p >> 28")])
def shift_off_by_one(st):
    assert not check_of(st, "hello: greet_mix").passed
''',
    "labs/07-hello/README.md": "# Lab 07: hello\n\nRead `book/07-hello.md`; you write `greet.c`.\n",
    "book/07-hello.md": "# Lab 07: hello\n\nA seeded greeting: `greet_mix` in `labs/07-hello/greet.c`.\n",
}
CALL = "    LAB_7(hello_selftest(seed));           /* lab 07: a seeded greeting */\n"


def snapshot(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def add_lab_07(root):
    for rel, text in LAB07.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    kmain = next(root.glob("labs/*/kmain.c"))
    text = kmain.read_text()
    at = text.index("    (void)bi;\n")
    kmain.write_text(text[:at] + CALL + text[at:])
    return kmain


def test_new_lab_in_one_folder(tmp_path):
    root = tmp_path / "kit"
    for d in ("labs", "solutions", "book"):
        shutil.copytree(ROOT / d, root / d, ignore=shutil.ignore_patterns("__pycache__"))
    before = snapshot(root)
    kmain = add_lab_07(root)
    after = snapshot(root)

    changed = {p for p in after if before.get(p) != after[p]}
    allowed = {
        p
        for p in changed
        if p.startswith(("labs/07-", "solutions/07-")) or (p.startswith("book/07-") and p.endswith(".md"))
    }
    assert changed - allowed == {str(kmain.relative_to(root))}
    old, new = before[str(kmain.relative_to(root))], (ROOT / kmain.relative_to(root)).read_text()
    assert len(kmain.read_text().splitlines()) == len(new.splitlines()) + 1 and old

    lab = labs.find("07", root)
    assert lab.name == "07-hello" and labs.skeleton_drift(lab) == []
    solution = grade.grade_stage(stage.make("07", stage.Origin("solutions"), root), seed=SEED)
    assert solution.full and solution.score == solution.total == 40, [
        (c.title, c.message) for c in solution.checks if not c.passed
    ]
    skeleton = grade.grade_stage(stage.make("07", stage.Origin("labs", None, True), root), seed=SEED)
    # the transcript's line shows only what the given code prints: without the mix, nothing counts
    assert not skeleton.full and skeleton.score == 0
    greeted = next(c for c in skeleton.checks if c.title == "hello: the seed is greeted")
    assert "they count where `hello: greet_mix of the seed` passes" in greeted.message
    found = [m for m in mutants.collect(root) if m.lab.name == "07-hello"]
    assert [m.name for m in found] == ["shift_off_by_one"]
    mutants.run(found[0], tmp_path / "mutant")
    assert not grade.grade_stage(
        stage.make("07", stage.Origin("solutions"), mutants.make_tree(tmp_path / "m2", found[0].patches, root)),
        seed=SEED,
    ).full
