"""Batch grading: a folder of submissions, one sub-folder per student.

    python3 -m grader batch --lab 03 SUBMISSIONS --csv grades.csv [-j N] [--reports DIR]
                            [--shard K/N] [--seed S] [--below reference|submission] [--bench]
    python3 -m grader batch-merge grades.csv part-1.csv part-2.csv ...

Each student's folder (loose files or a whole repository, grader/intake.py)
is mapped onto the kit's layout and graded in a temporary folder of its own
(the tree, the build, the runs), removed as soon as its report is written.
A build that fails or a kernel that hangs costs at most the timeouts; an
error of the grader itself costs that student a row saying so; nothing
stops the batch but Ctrl-C, which leaves a partial gradebook.

Seeds: the batch has one (--seed, or a new one, printed); each student's seed
is drawn from it and the student's folder name, so a shard, a re-run or a
merge gives every student the same seed. --shard K/N grades the K-th of N
slices of the sorted class (every N-th student from the K-th), so that a
Slurm array job, GNU parallel or a CI matrix spreads a class over machines;
batch-merge joins their gradebooks.
"""
import csv
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import build as build_mod, grade, intake, labs as labs_mod, report, run, safe, scratch, stage as stage_mod

COLUMNS = ["student", "score", "max", "challenge", "status", "seed", "seconds", "first_failing"]


class BatchError(labs_mod.LabError):
    """The batch cannot start or a gradebook cannot be merged (one line)."""


def students(folder):
    """The sub-folders of `folder`, one per student, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BatchError(f"{folder} is not a folder of submissions")
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def shard_of(names, spec):
    """The K-th of N slices ('K/N', 1-based): every N-th name from the K-th."""
    if not spec:
        return names
    try:
        k, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise BatchError(f"--shard is K/N (for example 2/8), not '{spec}'") from None
    if not 1 <= k <= n:
        raise BatchError(f"--shard {spec}: K must be between 1 and N")
    return names[k - 1 :: n]


def student_seed(base, name):
    """The seed of one student: drawn from the batch's seed and the folder's name."""
    digest = hashlib.sha256(f"{base:08x}/{name}".encode()).digest()
    return int.from_bytes(digest[:4], "little") or 1


@dataclass
class Row:
    student: str
    score: int = 0
    max: int = 0
    challenge: int = 0
    status: str = ""
    seed: str = ""
    seconds: float = 0.0
    first_failing: str = ""

    def csv(self):
        return [
            self.student,
            self.score,
            self.max,
            self.challenge,
            self.status,
            self.seed,
            f"{self.seconds:.1f}",
            self.first_failing,
        ]


def status_of(st):
    if run.STOP.is_set():
        return "interrupted"
    if st.build_error:
        return "build failed"
    if st.stopped:
        return "did not finish"
    return "full marks" if st.full else "partial"


def first_failing(st):
    c = next((c for c in st.checks if not c.passed and not c.bonus), None)
    if c is None:
        return ""
    text = report.sanitize(f"{c.title}: {c.message}", report.host_roots(st))
    return text if len(text) <= 160 else text[:157] + "..."


class Batch:
    def __init__(
        self, lab, folder, names, base_seed, below="reference", jobs=2, reports=None, timeouts=None, keep=None
    ):
        self.lab, self.folder, self.names = labs_mod.find(lab), Path(folder), names
        self.base_seed, self.below, self.jobs = base_seed, below, max(1, jobs)
        self.reports, self.timeouts, self.keep = reports, timeouts, keep
        self.rows, self.done, self.lock = {}, 0, threading.Lock()
        self.slots = grade.emulator_slots(self.jobs)
        self.t0 = time.monotonic()

    def one(self, name):
        """Grade one student in a folder of its own, removed afterwards."""
        if run.STOP.is_set():
            return None
        seed = student_seed(self.base_seed, name)
        upload = self.folder / name
        t = time.monotonic()
        tmp = scratch.made("kit-batch-")  # removed below, or at exit after a second Ctrl-C
        try:
            try:
                origin = intake.materialize(upload, self.lab.name, tmp / "tree", self.below)
                st = grade.grade_stage(
                    stage_mod.make(self.lab.name, origin),
                    seed=seed,
                    timeouts=self.timeouts,
                    outdir=tmp / "build",
                    slots=self.slots,
                )
                status = status_of(st)
            except intake.IntakeError as e:
                st = intake.refused(stage_mod.make(self.lab.name, stage_mod.Origin("submission", upload)), e, seed)
                status = "not handed in"
            row = Row(
                name, st.score, st.total, st.bonus, status, f"0x{seed:08x}", time.monotonic() - t, first_failing(st)
            )
            if self.reports:
                data = report.as_dict([st])
                data["student"] = name
                (self.reports / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
            if self.keep is not None:
                self.keep[name] = (st, tmp)  # the benchmark builds it again there
        except Exception as e:  # a grader bug costs this student a row, not the batch
            row = Row(
                name,
                status=f"grader error: {type(e).__name__}: {e}"[:160],
                seed=f"0x{seed:08x}",
                seconds=time.monotonic() - t,
            )
        finally:
            if self.keep is None or name not in self.keep:
                scratch.remove(tmp)
        self.progress(row)
        return row

    def progress(self, row):
        with self.lock:
            self.rows[row.student] = row
            self.done += 1
            total, elapsed = len(self.names), time.monotonic() - self.t0
            left = elapsed / self.done * (total - self.done)
            if sys.stderr.isatty():
                sys.stderr.write(
                    f"\r\033[Kbatch: {self.done}/{total} graded, {elapsed:.0f}s so far, "
                    f"about {left:.0f}s left (last: {safe.line(row.student)} {row.score}/{row.max})"
                )
                if self.done == total:
                    sys.stderr.write("\n")
            else:
                sys.stderr.write(
                    f"batch: {self.done}/{total} {safe.line(row.student)}: {row.score}/{row.max} "
                    f"{row.status} ({row.seconds:.1f}s; about {left:.0f}s left)\n"
                )
            sys.stderr.flush()

    def run(self):
        os.environ.setdefault("KIT_BUILD_JOBS", str(max(1, (os.cpu_count() or 2) // self.jobs)))
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            list(pool.map(self.one, self.names))
        return [self.rows[n] for n in self.names if n in self.rows]


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for row in sorted(rows, key=lambda r: r.student):
            w.writerow(row.csv())


def read_csv(path):
    with open(path, newline="") as f:
        lines = list(csv.reader(f))
    if not lines or lines[0] != COLUMNS:
        raise BatchError(f"{path} is not a gradebook of `batch` (its first line should be {','.join(COLUMNS)})")
    return lines[1:]


def merge(out, parts):
    """Join shards' gradebooks into one, sorted by student; a student in two parts is an error."""
    rows, seen = [], {}
    for part in parts:
        for line in read_csv(part):
            if line[0] in seen:
                raise BatchError(f"{line[0]} is graded in both {seen[line[0]]} and {part}")
            seen[line[0]] = part
            rows.append(line)
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(sorted(rows, key=lambda r: r[0]))
    return len(rows)


# --- the benchmark -----------------------------------------------------------------


def bench(batch, kept, wall, cores):
    """Each student's build again, cold, and each of its boots as the bare
    emulator command, one at a time (a boot the batch stopped for silence
    or a flood counts for the time the batch gave it): the batch's wall
    time against (builds + boots) / cores."""
    import subprocess
    from . import emulators

    limit = (batch.timeouts or {}).get("total", grade.TIMEOUTS["total"])
    builds = boots = 0.0
    for name, (st, tmp) in kept.items():
        if st.build is None and not (st.build_error and "does not compile" in st.build_error.summary):
            continue  # not handed in: nothing was built
        outdir = tmp / "bench-build"
        t = time.monotonic()
        try:
            b = build_mod.build(st.stage, outdir)
        except build_mod.BuildError:
            builds += time.monotonic() - t
            continue
        builds += time.monotonic() - t
        exits = b.stage.exit_values()
        for boot_name, r in st.runs.items():
            if st.boots[boot_name].reason != "exited":  # a hang or a flood: the time the grader allowed it
                boots += st.boots[boot_name].elapsed
                continue
            with tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp:
                talk = grade.talks_with(grade.plan_for(st.stage, "qemu"), boot_name)
                # no grader answers here: the kernel must not wait for one (monitor=...)
                bare = " ".join(w for w in r.cmdline.split() if not w.startswith("monitor="))
                launch = emulators.EMULATORS[r.emulator](
                    b.iso, tmp, bare, memory_mb=r.memory_mb, exits=exits, **(dict(talk.launch) if talk else {})
                )
                t = time.monotonic()
                proc = subprocess.Popen(
                    launch.argv,
                    cwd=tmp,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                try:
                    proc.wait(timeout=limit)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait()
                boots += time.monotonic() - t
    ideal = (builds + boots) / cores
    return (
        f"bench: {len(kept)} submissions, -j {batch.jobs}, {cores} cores: batch {wall:.1f}s wall; "
        f"one at a time: builds {builds:.1f}s + boots {boots:.1f}s = {builds + boots:.1f}s, "
        f"/ {cores} cores = {ideal:.1f}s; ratio {wall / ideal:.2f}x (target at most 1.30x)"
    )


# --- the command line ---------------------------------------------------------------


def add_parsers(sub):
    b = sub.add_parser("batch", help="grade a folder of submissions (one sub-folder each) into a CSV gradebook")
    b.add_argument("--lab", required=True)
    b.add_argument("folder", type=Path, help="one sub-folder per student: loose files or a repository")
    b.add_argument("--csv", type=Path, required=True, help="the gradebook to write")
    b.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2, help="students graded at once")
    b.add_argument("--reports", type=Path, help="a JSON report per student here (default: CSV's name + -reports)")
    b.add_argument("--shard", help="K/N: grade only the K-th of N slices of the class")
    b.add_argument("--seed", type=lambda t: int(t, 0), help="the batch's seed (default: a new one, printed)")
    b.add_argument(
        "--below",
        choices=intake.BELOW,
        default="reference",
        help="labs below --lab: the kit's solutions/ (default) or each student's own",
    )
    b.add_argument(
        "--progress-timeout", type=float, help=f"seconds without output (default {grade.TIMEOUTS['progress']:.0f})"
    )
    b.add_argument("--total-timeout", type=float, help=f"seconds of a boot (default {grade.TIMEOUTS['total']:.0f})")
    b.add_argument(
        "--entry-timeout",
        type=float,
        help=f"seconds of one submission, build and boots (default {grade.TIMEOUTS['stage']:.0f})",
    )
    b.add_argument("--bench", action="store_true", help="then time each build and bare boot one at a time")
    b.set_defaults(run=run_batch)
    m = sub.add_parser("batch-merge", help="join the gradebooks of shards into one")
    m.add_argument("out", type=Path)
    m.add_argument("parts", type=Path, nargs="+")
    m.set_defaults(run=run_merge)


def run_batch(args):
    from . import deps

    deps.ensure("qemu", install=not getattr(args, "no_install", False))
    names = shard_of(students(args.folder), args.shard)
    base = stage_mod.seed_or_new(args.seed)
    reports = args.reports or args.csv.with_name(args.csv.stem + "-reports")
    reports.mkdir(parents=True, exist_ok=True)
    asked = (("progress", args.progress_timeout), ("total", args.total_timeout), ("stage", args.entry_timeout))
    timeouts = {k: v for k, v in asked if v}
    print(
        f"batch: lab {labs_mod.find(args.lab).name}, {len(names)} submissions"
        + (f" (shard {args.shard})" if args.shard else "")
        + f", seed 0x{base:08x}, -j {args.jobs}",
        file=sys.stderr,
    )
    kept = {} if args.bench else None
    b = Batch(args.lab, args.folder, names, base, args.below, args.jobs, reports, timeouts or None, kept)
    rows = b.run()
    wall = time.monotonic() - b.t0
    write_csv(rows, args.csv)
    full = sum(r.status == "full marks" for r in rows)
    print(
        f"batch: {len(rows)} graded in {wall:.1f}s ({full} at full marks): {args.csv}, reports in {reports}",
        file=sys.stderr,
    )
    if kept is not None:
        try:
            print(bench(b, kept, wall, os.cpu_count() or 1))
        finally:
            for _, tmp in kept.values():
                shutil.rmtree(tmp, ignore_errors=True)
    return 130 if run.STOP.is_set() else 0


def run_merge(args):
    n = merge(args.out, args.parts)
    print(f"batch-merge: {n} students from {len(args.parts)} gradebooks into {args.out}", file=sys.stderr)
    return 0
