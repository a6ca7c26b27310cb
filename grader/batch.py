"""Batch grading: a folder of submissions, one sub-folder per student.

    python3 -m grader batch --lab 03 SUBMISSIONS --csv grades.csv [-j N] [--reports DIR]
            [--shard K/N | --only NAME...] [--seed S] [--below reference|submission]
            [--deadline "YYYY-MM-DD HH:MM" [--late-days N] [--late-penalty PCT]]
            [--roster FILE] [--lms canvas|moodle] [--assignment NAME] [--columns checks]
            [--bench [ROUNDS]]
    python3 -m grader batch-merge grades.csv part-1.csv part-2.csv ... [--replace regrade.csv]
            [--roster FILE --lms canvas|moodle]

Each student's folder (loose files or a whole repository, grader/intake.py)
is mapped onto the kit's layout and graded in a temporary folder of its own
(the tree, the build, the runs), removed as soon as its report is written.
A build that fails or a kernel that hangs costs at most the timeouts; an
error of the grader itself costs that student a row saying so; nothing
stops the batch but Ctrl-C, which leaves a partial gradebook.

Seeds: the batch has one (--seed, or a new one, printed); each student's seed
is drawn from it and the student's folder name, so a shard, a re-run, a
regrade or a merge gives every student the same seed. --shard K/N grades the
K-th of N slices of the sorted class (every N-th student from the K-th), so
that a Slurm array job, GNU parallel or a CI matrix spreads a class over
machines; batch-merge joins their gradebooks (grader/gradebook.py) and
refuses a missing or doubled shard. --only regrades named students; their
gradebook goes into a merge with --replace.

Deadlines (grader/collect.py): with --deadline, a folder that is a git
repository is graded as it was at its last commit at or before the deadline
(plus the student's late days, with a late-day policy), and the gradebook
says which commit, when, and what came later.
"""
import datetime
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from . import build as build_mod, collect, grade, gradebook, intake, labs as labs_mod, report, run, safe, scratch
from . import stage as stage_mod


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
    if n > len(names):
        raise BatchError(
            f"--shard {spec}: the class has {len(names)} students, so {n} shards would leave one empty "
            f"(and an empty shard cannot prove it was graded): use at most {len(names)} shards"
        )
    return names[k - 1 :: n]


def only_of(names, only):
    """The named students (--only), each of which must be a folder of the class."""
    unknown = [n for n in only if n not in names]
    if unknown:
        raise BatchError(f"--only: no folder {', '.join(unknown)} in the class ({len(names)} folders)")
    return [n for n in names if n in set(only)]


def student_seed(base, name):
    """The seed of one student: drawn from the batch's seed and the folder's name."""
    digest = hashlib.sha256(f"{base:08x}/{name}".encode()).digest()
    return int.from_bytes(digest[:4], "little") or 1


def own_seconds(st):
    """The time grading this student took, less the time it waited, with
    none of its own boots running, for an emulator slot that other
    students' kernels held (a hang beside it costs it nothing)."""
    spans = sorted((r.waited, r.waited + r.elapsed) for r in st.boots.values())
    if not spans:
        return st.elapsed
    running, start, end = 0.0, None, None
    for a, b in spans:
        if end is None or a > end:
            running += 0.0 if end is None else end - start
            start, end = a, b
        else:
            end = max(end, b)
    running += end - start
    return max(0.0, st.elapsed - max(b for _, b in spans) + running)


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


def now():
    """When a row was made: UTC, to the millisecond (rows compare as text)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class Policy:
    """The deadline and the late-day policy of a batch: the cutoff of each
    student, and the columns they add."""

    def __init__(self, deadline=None, late_days=None, late_penalty=0.0, roster=None):
        self.deadline = gradebook.parse_deadline(deadline) if deadline else None
        self.late_days, self.late_penalty, self.roster = late_days, late_penalty or 0.0, roster
        if (late_days is not None or late_penalty) and self.deadline is None:
            raise BatchError("--late-days and --late-penalty need --deadline")
        self.late = self.deadline is not None and (
            late_days is not None or bool(late_penalty) or bool(roster and "late_days" in roster.lower)
        )

    def allowed(self, name):
        """The student's late days: the roster's allowance, else --late-days, else none."""
        if not self.late:
            return 0
        mine = self.roster.late_days(name) if self.roster else None
        return mine if mine is not None else (self.late_days or 0)

    def cutoff(self, name):
        return self.deadline + datetime.timedelta(days=self.allowed(name))

    def shown(self):
        return self.deadline.isoformat(timespec="minutes") if self.deadline else ""


class Batch:
    def __init__(
        self,
        lab,
        folder,
        names,
        base_seed,
        below="reference",
        jobs=2,
        reports=None,
        timeouts=None,
        keep=None,
        policy=None,
        roster=None,
        checks=False,
        shard="1/1",
    ):
        self.lab, self.folder, self.names = labs_mod.find(lab), Path(folder), names
        self.base_seed, self.below, self.jobs = base_seed, below, max(1, jobs)
        self.reports, self.timeouts, self.keep = reports, timeouts, keep
        self.policy, self.roster, self.checks, self.shard = policy or Policy(), roster, checks, shard
        self.titles = []  # the checks' titles, in order (--columns checks)
        self.rows, self.done, self.lock = {}, 0, threading.Lock()
        self.slots = grade.emulator_slots(self.jobs)
        self.t0 = time.monotonic()

    def header(self):
        p = self.policy
        titles = self.titles if self.checks else ()
        return gradebook.columns(self.roster is not None, p.late, p.deadline is not None, titles)

    def collect(self, name, upload, tmp):
        """(the folder to grade, the deadline's columns, a verdict when nothing can be graded)."""
        p = self.policy
        if p.deadline is None:
            return upload, {}, None
        if not collect.is_repository(upload):
            return upload, {"after_deadline": "not a git repository: graded as found"}, None
        try:
            found = collect.at(upload, p.cutoff(name))
        except collect.CollectError as e:
            return upload, {}, intake.IntakeError(f"its repository cannot be read: {e}")
        cols = {"after_deadline": found.after(p.deadline)}
        if found.commit is None:
            return upload, cols, intake.IntakeError(f"no commit at or before {p.cutoff(name).isoformat()}")
        tz = p.deadline.tzinfo
        cols.update(commit=found.commit.sha[:12], committed_at=found.commit.when.astimezone(tz).isoformat())
        cols["_late"] = gradebook.days_late(found.commit.when, p.deadline)
        checkout = tmp / "at-deadline"
        collect.export(upload, found.commit.sha, checkout, collect.student_names())
        return checkout, cols, None

    def one(self, name):
        """Grade one student in a folder of its own, removed afterwards."""
        if run.STOP.is_set():
            return None
        seed = student_seed(self.base_seed, name)
        upload = self.folder / name
        t = time.monotonic()
        tmp = scratch.made("kit-batch-")  # removed below, or at exit after a second Ctrl-C
        row = {"student": name, "score": 0, "max": 0, "challenge": 0, "seed": f"0x{seed:08x}"}
        try:
            where, cols, refusal = self.collect(name, upload, tmp)
            late = cols.pop("_late", 0)
            row.update(cols)
            try:
                if refusal:
                    raise refusal
                origin = intake.materialize(where, self.lab.name, tmp / "tree", self.below)
                st = grade.grade_stage(
                    stage_mod.make(self.lab.name, replace(origin, upload=upload)),
                    seed=seed,
                    timeouts=self.timeouts,
                    outdir=tmp / "build",
                    slots=self.slots,
                )
                status, seconds = status_of(st), own_seconds(st)
            except intake.IntakeError as e:
                st = intake.refused(stage_mod.make(self.lab.name, stage_mod.Origin("submission", upload)), e, seed)
                status, seconds = "not handed in", time.monotonic() - t
            row.update(
                score=st.score, max=st.total, challenge=st.bonus, status=status, seconds=round(seconds, 1),
                first_failing=first_failing(st),
            )  # fmt: skip
            if self.policy.late:
                row.update(
                    gradebook.late_columns(
                        st.score, st.total, late, self.policy.allowed(name), self.policy.late_penalty
                    )
                )
            with self.lock:
                if not self.titles:
                    self.titles = [c.title for c in st.checks]
            if self.checks:
                row.update({gradebook.CHECK_PREFIX + c.title: c.score for c in st.checks})
            if self.reports:
                data = report.as_dict([st])
                data["student"] = name
                if "commit" in cols:
                    data["collected"] = {
                        "commit": cols["commit"], "committed_at": cols["committed_at"],
                        "deadline": self.policy.shown(), "checkout": f"git -C {upload} checkout {cols['commit']}",
                    }  # fmt: skip
                (self.reports / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
            if self.keep is not None:
                self.keep[name] = (st, tmp)  # the benchmark builds it again there
        except Exception as e:  # a grader bug costs this student a row, not the batch
            row.update(status=f"grader error: {type(e).__name__}: {e}"[:160], seconds=round(time.monotonic() - t, 1))
        finally:
            if self.keep is None or name not in self.keep:
                scratch.remove(tmp)
        if self.roster is not None:
            row["name"] = self.roster.name(name)
        row.update(
            lab=self.lab.name, shard=self.shard, batch_seed=f"0x{self.base_seed:08x}",
            deadline=self.policy.shown(), graded_at=now(),
        )  # fmt: skip
        self.progress(row)
        return row

    def progress(self, row):
        with self.lock:
            self.rows[row["student"]] = row
            self.done += 1
            total, elapsed = len(self.names), time.monotonic() - self.t0
            left = elapsed / self.done * (total - self.done)
            score = f"{row.get('score', 0)}/{row.get('max', 0)}"
            shown = safe.line(row["student"])
            if sys.stderr.isatty():
                sys.stderr.write(
                    f"\r\033[Kbatch: {self.done}/{total} graded, {elapsed:.0f}s so far, "
                    f"about {left:.0f}s left (last: {shown} {score})"
                )
                if self.done == total:
                    sys.stderr.write("\n")
            else:
                sys.stderr.write(
                    f"batch: {self.done}/{total} {shown}: {score} "
                    f"{row['status']} ({row['seconds']:.1f}s; about {left:.0f}s left)\n"
                )
            sys.stderr.flush()

    def run(self):
        os.environ.setdefault("KIT_BUILD_JOBS", str(max(1, (os.cpu_count() or 2) // self.jobs)))
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            list(pool.map(self.one, self.names))
        return [self.rows[n] for n in self.names if n in self.rows]


def write_csv(rows, path, header):
    gradebook.write_rows(path, header, sorted(rows, key=lambda r: r["student"]))


# --- the benchmark -----------------------------------------------------------------


def cpu_of_children():
    """CPU seconds (user + system) of every process this one has reaped so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def floor(batch, kept):
    """Each student's build and boots alone, one after another, under the
    batch's own build settings (its KIT_BUILD_JOBS, the sandbox): each
    build cold in a new folder, each boot as the emulator command the batch
    ran (a boot the batch stopped for silence or a flood counts for the
    time the batch gave it, since a bare emulator cannot tell silence from
    work). Returns (build seconds, boot seconds, CPU seconds)."""
    import subprocess
    from . import emulators

    limit = (batch.timeouts or {}).get("total", grade.TIMEOUTS["total"])
    builds = boots = 0.0
    cpu0 = cpu_of_children()
    for name, (st, tmp) in kept.items():
        if st.build is None and not (st.build_error and "does not compile" in st.build_error.summary):
            continue  # not handed in: nothing was built
        outdir = Path(tempfile.mkdtemp(prefix="bench-build-", dir=tmp))
        try:
            t = time.monotonic()
            try:
                b = build_mod.build(st.stage, outdir)
            except build_mod.BuildError:
                builds += time.monotonic() - t
                continue
            builds += time.monotonic() - t
            exits = b.stage.exit_values()
            for boot_name, r in st.runs.items():
                if st.boots[boot_name].reason != "exited":
                    boots += st.boots[boot_name].elapsed
                    continue
                with tempfile.TemporaryDirectory(prefix="kit-bench-") as rundir:
                    talk = grade.talks_with(grade.plan_for(st.stage, "qemu"), boot_name)
                    opts = dict(talk.launch) if talk else {}
                    opts["qmp"] = r.emulator == "qemu"  # as grade.boot starts it
                    # no grader answers here: the kernel must not wait for one (monitor=...)
                    bare = " ".join(w for w in r.cmdline.split() if not w.startswith("monitor="))
                    launch = emulators.EMULATORS[r.emulator](
                        b.iso, rundir, bare, memory_mb=r.memory_mb, exits=exits, **opts
                    )
                    t = time.monotonic()
                    proc = subprocess.Popen(
                        launch.argv, cwd=rundir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, start_new_session=True,
                    )  # fmt: skip
                    try:
                        proc.wait(timeout=limit)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, 9)
                        proc.wait()
                    boots += time.monotonic() - t
        finally:
            shutil.rmtree(outdir, ignore_errors=True)
    return builds, boots, cpu_of_children() - cpu0


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def bench(first, kept, first_wall, first_cpu, rounds, again):
    """The batch against its floor, measured in alternation (batch, floor,
    floor, batch, ...) so that a change of the machine's load falls on both;
    `again()` grades the class once more (rows discarded) and returns
    (wall, CPU). Lines to print: every figure, their medians, the ratio."""
    cores = os.cpu_count() or 1
    walls, cpus, floors, loads = [first_wall], [first_cpu], [], [os.getloadavg()[0]]
    order = ["batch"]
    for i in range(1, 2 * rounds):
        kind = "floor" if i % 4 in (1, 2) else "batch"
        order.append(kind)
        loads.append(os.getloadavg()[0])
        if run.STOP.is_set():
            break
        if kind == "floor":
            floors.append(floor(first, kept))
        else:
            w, c = again()
            walls.append(w)
            cpus.append(c)
    alone = [b + t for b, t, _ in floors]
    wall, one = median(walls), median(alone) if alone else 0.0
    ideal = one / cores if one else 0.0
    return [
        f"bench: {len(kept)} submissions, -j {first.jobs}, {cores} cores, KIT_BUILD_JOBS="
        f"{os.environ.get('KIT_BUILD_JOBS')} for both; {len(order)} measurements in this order: {' '.join(order)}",
        f"bench: batch: wall {wall:.1f}s (median of {', '.join(f'{w:.1f}' for w in walls)}), "
        f"CPU {median(cpus):.1f}s",
        f"bench: floor, each submission alone: builds {median([b for b, _, _ in floors]):.1f}s + boots "
        f"{median([t for _, t, _ in floors]):.1f}s = {one:.1f}s (median of {', '.join(f'{a:.1f}' for a in alone)}), "
        f"CPU {median([c for _, _, c in floors]):.1f}s; / {cores} cores = {ideal:.1f}s",
        f"bench: ratio {wall / ideal:.2f}x (batch wall / floor per core; target at most 1.30x); "
        f"load average (1 min) at each measurement: {' '.join(f'{x:.1f}' for x in loads)}"
        if ideal
        else "bench: no floor measured",
    ]


# --- the command line ---------------------------------------------------------------


def add_parsers(sub):
    b = sub.add_parser("batch", help="grade a folder of submissions (one sub-folder each) into a CSV gradebook")
    b.add_argument("--lab", required=True)
    b.add_argument("folder", type=Path, help="one sub-folder per student: loose files or a repository")
    b.add_argument("--csv", type=Path, required=True, help="the gradebook to write")
    b.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2, help="students graded at once")
    b.add_argument("--reports", type=Path, help="a JSON report per student here (default: CSV's name + -reports)")
    which = b.add_mutually_exclusive_group()
    which.add_argument("--shard", help="K/N: grade only the K-th of N slices of the class")
    which.add_argument("--only", nargs="+", metavar="NAME", help="regrade only these students (folder names)")
    b.add_argument("--seed", type=lambda t: int(t, 0), help="the batch's seed (default: a new one, printed)")
    b.add_argument(
        "--below",
        choices=intake.BELOW,
        default="reference",
        help="labs below --lab: the kit's solutions/ (default) or each student's own",
    )
    b.add_argument("--deadline", help='"YYYY-MM-DD HH:MM" [+HH:MM]: grade each repository\'s last commit by then')
    b.add_argument("--late-days", type=float, help="accept commits this many days after the deadline")
    b.add_argument("--late-penalty", type=float, default=0.0, help="percent of the maximum taken per day late")
    add_export(b)
    b.add_argument("--columns", choices=["checks"], help="checks: one more column per check (a rubric)")
    b.add_argument(
        "--progress-timeout", type=float, help=f"seconds without output (default {grade.TIMEOUTS['progress']:.0f})"
    )
    b.add_argument("--total-timeout", type=float, help=f"seconds of a boot (default {grade.TIMEOUTS['total']:.0f})")
    b.add_argument(
        "--entry-timeout",
        type=float,
        help=f"seconds of one submission, build and boots (default {grade.TIMEOUTS['stage']:.0f})",
    )
    b.add_argument(
        "--bench",
        type=int,
        nargs="?",
        const=2,
        metavar="ROUNDS",
        help="then measure the batch against its floor, alternating, ROUNDS times each (default 2)",
    )
    b.set_defaults(run=run_batch)
    m = sub.add_parser("batch-merge", help="join the gradebooks of shards into one; --replace takes regrades")
    m.add_argument("out", type=Path)
    m.add_argument("parts", type=Path, nargs="+", help="the gradebook of every shard")
    m.add_argument("--replace", type=Path, action="append", default=[], metavar="FILE", help="a regrade's gradebook")
    add_export(m)
    m.set_defaults(run=run_merge)


def add_export(p):
    p.add_argument("--roster", type=Path, help="CSV: a `folder` or `github_username` column, names, LMS identities")
    p.add_argument("--lms", choices=gradebook.LMS, help="also write that LMS's grade-import CSV (needs --roster)")
    p.add_argument("--assignment", help='the LMS\'s column for this lab (default "Lab NN")')


def export(args, rows, out, lab):
    """The LMS file next to the gradebook, and what the roster has that the class has not."""
    roster = gradebook.Roster(args.roster) if args.roster else None
    if roster is None:
        return
    folders = [r["student"] for r in rows]
    unknown = [f for f in folders if roster.find(f) is None]
    if unknown:
        shown = ", ".join(safe.line(f) for f in unknown[:6]) + (" ..." if len(unknown) > 6 else "")
        print(f"roster: {len(unknown)} graded folder(s) not in {args.roster}: {shown}", file=sys.stderr)
    if args.lms:
        path = out.with_name(f"{out.stem}-{args.lms}.csv")
        top = labs_mod.find(lab)
        points = max((int(r["max"]) for r in rows if str(r["max"]).isdigit()), default=0)
        missing = gradebook.write_lms(args.lms, rows, roster, path, args.assignment or f"Lab {top.number:02d}", points)
        print(
            f"{args.lms}: {path} ({len(roster.rows) - len(missing)} graded, {len(missing)} on the roster with no "
            "submission, given 0)",
            file=sys.stderr,
        )


def run_batch(args):
    from . import deps

    deps.ensure("qemu", install=not getattr(args, "no_install", False))
    if args.deadline:
        deps.ensure("collect", install=not getattr(args, "no_install", False))
    if args.lms and not args.roster:
        raise BatchError(f"--lms {args.lms} needs --roster: the LMS knows students by its own identities")
    roster = gradebook.Roster(args.roster) if args.roster else None
    policy = Policy(args.deadline, args.late_days, args.late_penalty, roster)
    every = students(args.folder)
    names = only_of(every, args.only) if args.only else shard_of(every, args.shard)
    if not names:
        raise BatchError(f"{args.folder} has no sub-folder: one folder per student")
    shard = "only" if args.only else (args.shard or "1/1")
    base = stage_mod.seed_or_new(args.seed)
    reports = args.reports or args.csv.with_name(args.csv.stem + "-reports")
    reports.mkdir(parents=True, exist_ok=True)
    asked = (("progress", args.progress_timeout), ("total", args.total_timeout), ("stage", args.entry_timeout))
    timeouts = {k: v for k, v in asked if v}
    print(
        f"batch: lab {labs_mod.find(args.lab).name}, {len(names)} submissions"
        + (f" (shard {args.shard})" if args.shard else "")
        + (f" (only {len(names)} named)" if args.only else "")
        + (f", deadline {policy.shown()}" if policy.deadline else "")
        + f", seed 0x{base:08x}, -j {args.jobs}",
        file=sys.stderr,
    )

    def make(keep=None, quiet_reports=False):
        return Batch(
            args.lab, args.folder, names, base, args.below, args.jobs, None if quiet_reports else reports,
            timeouts or None, keep, policy, roster, args.columns == "checks", shard,
        )  # fmt: skip

    kept = {} if args.bench else None
    cpu0 = cpu_of_children()
    b = make(kept)
    rows = b.run()
    wall, cpu = time.monotonic() - b.t0, cpu_of_children() - cpu0
    write_csv(rows, args.csv, b.header())
    full = sum(r["status"] == "full marks" for r in rows)
    print(
        f"batch: {len(rows)} graded in {wall:.1f}s ({full} at full marks): {args.csv}, reports in {reports}",
        file=sys.stderr,
    )
    export(args, rows, args.csv, args.lab)
    if kept is not None:

        def again():
            c0 = cpu_of_children()
            again_batch = make(quiet_reports=True)
            again_batch.run()
            return time.monotonic() - again_batch.t0, cpu_of_children() - c0

        try:
            for line in bench(b, kept, wall, cpu, max(1, args.bench), again):
                print(line)
        finally:
            for _, tmp in kept.values():
                shutil.rmtree(tmp, ignore_errors=True)
    return 130 if run.STOP.is_set() else 0


def run_merge(args):
    if args.lms and not args.roster:
        raise BatchError(f"--lms {args.lms} needs --roster: the LMS knows students by its own identities")
    header, rows, changes = gradebook.merge(args.parts, args.replace)
    gradebook.write_rows(args.out, header, rows)
    for line in changes:
        print(f"batch-merge: {safe.line(line)}", file=sys.stderr)
    print(
        f"batch-merge: {len(rows)} students from {len(args.parts)} gradebooks"
        + (f" and {len(args.replace)} regrade(s)" if args.replace else "")
        + f" into {args.out}",
        file=sys.stderr,
    )
    export(args, rows, args.out, rows[0]["lab"])
    return 0
