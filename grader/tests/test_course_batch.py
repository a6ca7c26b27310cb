"""Batch grading of a class: 20 generated submissions of lab 03 (solutions
loose and in a repository, skeletons, broken builds, hangs, floods, a missing
file) graded two at a time with short timeouts: the right row for each, no
build folder or emulator left behind, and two shards merged equal the whole."""
import csv
import json
import os
import re
import subprocess
import sys

import pytest

from grader import labs
from conftest import ROOT

pytestmark = [pytest.mark.instructor, pytest.mark.slow]

LAB = labs.find("03")
HANG = '    for (;;)\n        __asm__ volatile("pause");   /* a hang */\n'
FLOOD = '    for (;;)\n        kprintf("[heap] flood\\n");   /* a flood */\n'
KINDS = (
    ["solution"] * 6
    + ["repository"] * 3
    + ["skeleton"] * 3
    + ["broken"] * 3
    + ["hang"] * 2
    + ["flood"] * 2
    + ["missing"]
)
EXPECT = {
    "solution": "full marks",
    "repository": "full marks",
    "skeleton": "partial",
    "broken": "build failed",
    "hang": "did not finish",
    "flood": "did not finish",
    "missing": "not handed in",
}


def heap_with(body):
    text = (
        (LAB.solution_dir / "heap.c")
        .read_text()
        .replace('#include "heap.h"\n', '#include "heap.h"\n#include "serial.h"\n')
    )
    return text.replace("    // LAB 3: your code here.\n", "    // LAB 3: your code here.\n" + body, 1)


def make_class(folder):
    """One sub-folder per student, named after what it holds."""
    for i, kind in enumerate(KINDS):
        d = folder / f"s{i:02d}-{kind}"
        files = {f: (LAB.solution_dir / f).read_text() for f in LAB.student}
        if kind == "skeleton":
            files = {f: (LAB.dir / f).read_text() for f in LAB.student}
        elif kind == "broken":
            files["heap.c"] += "\nint broken(void) { return nope; }\n"
        elif kind == "hang":
            files["heap.c"] = heap_with(HANG)
        elif kind == "flood":
            files["heap.c"] = heap_with(FLOOD)
        elif kind == "missing":
            del files["freelist.c"]
        where = d / "kit/labs" / LAB.name if kind == "repository" else d
        where.mkdir(parents=True)
        for name, text in files.items():
            (where / name).write_text(text)
        if kind == "repository":
            (d / "kit/README.md").write_text("my kernel\n")


def batch(*args, tmp):
    env = dict(os.environ, TMPDIR=str(tmp))
    return subprocess.run(
        [sys.executable, "-m", "grader", *args], cwd=ROOT, capture_output=True, text=True, timeout=900, env=env
    )


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def another_tests_build(folder, tmp_path):
    """A submission's build folder made meanwhile by a test in another
    worker (the suite runs on two): a stage that is not a submission's
    (a batch builds only those), or a submission's that names nothing under
    tmp_path."""
    if not re.fullmatch(r"stage-\d\d(-below)?-sub-[0-9a-f]{10}", folder.name):
        return True
    for f in folder.rglob("*"):
        if f.is_file() and f.stat().st_size < 4 << 20 and str(tmp_path).encode() in f.read_bytes():
            return False
    return True


def test_a_class_of_twenty_graded_in_parallel_and_in_shards(tmp_path):
    cls, runs = tmp_path / "class", tmp_path / "runs"
    runs.mkdir()
    make_class(cls)
    before = set((ROOT / "build").iterdir()) if (ROOT / "build").is_dir() else set()
    # limits a loaded 2-core machine meets (QEMU under TCG can take seconds to say its first word)
    short = ["--progress-timeout", "6", "--total-timeout", "30", "--seed", "0x1234"]
    r = batch("batch", "--lab", "03", str(cls), "--csv", str(tmp_path / "g.csv"), "-j", "2", *short, tmp=runs)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "batch: 20/20 " in r.stderr and "left)" in r.stderr  # plain progress lines off a terminal
    got = rows(tmp_path / "g.csv")
    assert [g["student"] for g in got] == sorted(p.name for p in cls.iterdir())
    for g in got:
        kind = g["student"].split("-", 1)[1]
        assert g["status"] == EXPECT[kind], (g["student"], g["status"], g["first_failing"], g["seconds"])
        assert g["max"] == "90" and g["seed"].startswith("0x")
        if kind in ("solution", "repository"):
            assert g["score"] == "90" and g["challenge"] == "30" and g["first_failing"] == ""
        else:
            assert int(g["score"]) < 90 and g["first_failing"]
        if kind == "broken":
            assert "does not compile" in g["first_failing"]
        if kind == "missing":
            assert "missing freelist.c" in g["first_failing"]
        if kind in ("hang", "flood"):
            assert float(g["seconds"]) < 60
    assert len({g["seed"] for g in got}) == 20
    report = json.loads((tmp_path / "g-reports" / "s16-hang.json").read_text())
    assert report["student"] == "s16-hang" and "timeout" in report["stages"][0]["stopped"]
    assert (
        "--submission" in report["stages"][0]["reproduce"] and str(cls / "s16-hang") in report["stages"][0]["reproduce"]
    )
    flood = json.loads((tmp_path / "g-reports" / "s18-flood.json").read_text())
    assert "output flood" in flood["stages"][0]["stopped"]
    # nothing left behind: no run or build folder, no emulator, nothing new under build/
    assert list(runs.iterdir()) == []
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(runs) not in ps
    after = set((ROOT / "build").iterdir()) if (ROOT / "build").is_dir() else set()
    assert [p for p in after - before if not another_tests_build(p, tmp_path)] == []
    # two shards, merged, give the same gradebook (the seconds aside)
    for k in (1, 2):
        r = batch(
            "batch",
            "--lab",
            "03",
            str(cls),
            "--csv",
            str(tmp_path / f"part{k}.csv"),
            "-j",
            "2",
            "--shard",
            f"{k}/2",
            *short,
            tmp=runs,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        assert len(rows(tmp_path / f"part{k}.csv")) == 10
    r = batch(
        "batch-merge", str(tmp_path / "merged.csv"), str(tmp_path / "part1.csv"), str(tmp_path / "part2.csv"), tmp=runs
    )
    assert r.returncode == 0, r.stderr

    def same(rs):  # what may differ: the time taken, when, and which shard
        return [{k: v for k, v in g.items() if k not in ("seconds", "graded_at", "shard")} for g in rs]

    assert same(rows(tmp_path / "merged.csv")) == same(got)
    r = batch(
        "batch-merge", str(tmp_path / "twice.csv"), str(tmp_path / "part1.csv"), str(tmp_path / "part1.csv"), tmp=runs
    )
    assert r.returncode == 2 and "shard 1/2 is in both" in r.stderr


def test_shards_are_slices_of_the_sorted_class():
    from grader import batch as b

    names = [f"s{i}" for i in range(7)]
    parts = [b.shard_of(names, f"{k}/3") for k in (1, 2, 3)]
    assert sorted(sum(parts, [])) == names and [len(p) for p in parts] == [3, 2, 2]
    with pytest.raises(b.BatchError):
        b.shard_of(names, "4/3")
    with pytest.raises(b.BatchError, match="leave one empty"):
        b.shard_of(names, "1/8")
    assert b.student_seed(1, "ann") == b.student_seed(1, "ann") != b.student_seed(1, "bob")


def test_a_students_seconds_leave_out_the_wait_behind_other_students():
    """Two boots: one waited 20 s for a slot another student's hang held and
    then ran 1 s; the other ran 1.5 s at once. Built in 1 s, checked in
    0.1 s: 22.1 s of wall time, of which 3.6 s were its own."""
    from types import SimpleNamespace as NS
    from grader import batch as b

    st = NS(elapsed=22.1, boots={"default": NS(waited=0.0, elapsed=1.5), "other": NS(waited=20.0, elapsed=1.0)})
    assert round(b.own_seconds(st), 1) == 3.6
    both = NS(elapsed=3.0, boots={"a": NS(waited=0.0, elapsed=1.5), "b": NS(waited=0.5, elapsed=1.5)})
    assert round(b.own_seconds(both), 1) == 3.0  # overlapping runs: nothing waited
