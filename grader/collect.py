"""A student's repository as it was at a deadline: `batch --deadline`.

The graded commit is the last one reachable from the repository's HEAD
whose commit time is at or before the cutoff (the deadline, or the deadline
plus the student's late days). Commit time, not author time: git keeps the
author time through a rebase, an amend or a cherry-pick, so an old author
time says nothing about when the work took its final form; the commit time
is set again each time a commit is made. Both are written by the student's
own machine, so neither proves when work was pushed: where that matters,
clone the repositories at the deadline (GitHub Classroom keeps the push
times) and let this module say what came after.

The commit's files are read with git's plumbing (ls-tree, cat-file), which
runs no hook, filter or pager from the student's repository, and only the
files named like a lab's student files are written out, each a regular file
(or a link, which the intake then refuses, as it would in a folder).
"""
import datetime
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import build as build_mod, gradebook, labs as labs_mod

TIMEOUT = 60


class CollectError(Exception):
    """The repository cannot be read (one line)."""


@dataclass
class Commit:
    sha: str
    when: datetime.datetime  # the commit time, timezone-aware


@dataclass
class Collected:
    """What the deadline found in one repository."""

    commit: Commit = None  # the graded commit, or None when none is early enough
    later: list = field(default_factory=list)  # commits after the cutoff, not graded

    def after(self, deadline):
        """The after_deadline cell: the commits not graded, and how late the last one is."""
        if not self.later:
            return ""
        last = max(c.when for c in self.later)
        n = len(self.later)
        return (
            f"{n} commit{'s' * (n > 1)} not graded, the last {gradebook.span((last - deadline).total_seconds())} "
            "after the deadline"
        )


def is_repository(folder):
    return (Path(folder) / ".git").exists()


def git(folder, *args, data=None):
    """Plumbing in the student's repository: no hook, pager or filter of its config runs."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
    }
    cmd = ["git", "-c", f"safe.directory={Path(folder).resolve()}", "-c", "core.fsmonitor=false"]
    cmd += ["--no-pager", "-C", str(folder), *args]
    try:
        r = subprocess.run(cmd, input=data, capture_output=True, timeout=TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        raise CollectError(f"git {args[0]} took more than {TIMEOUT} s") from None
    if r.returncode != 0:
        why = (r.stderr.decode(errors="replace").strip().splitlines() or ["(no message)"])[-1]
        raise CollectError(f"git {args[0]}: {why}")
    return r.stdout


def commits(folder):
    """Every commit reachable from HEAD, with its commit time."""
    try:
        out = git(folder, "log", "--format=%H %ct", "HEAD").decode()
    except CollectError as e:
        if "does not have any commits" in str(e) or "unknown revision" in str(e):
            return []
        raise
    found = []
    for line in out.splitlines():
        sha, t = line.split()
        found.append(Commit(sha, datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc)))
    return found


def at(folder, cutoff):
    """The last commit at or before `cutoff` (by commit time) and those after it."""
    every = commits(folder)
    early = [c for c in every if c.when <= cutoff]
    chosen = max(early, key=lambda c: c.when) if early else None  # the log lists it first on a tie
    return Collected(chosen, [c for c in every if c.when > cutoff])


def export(folder, sha, dest, names):
    """Write the files of commit `sha` whose names are in `names` under dest,
    at their paths in the commit. A file larger than a student file may be
    is written as a sparse file of its size (the intake then refuses it by
    its size, and nothing that large is read)."""
    dest = Path(dest)
    listing = git(folder, "ls-tree", "-r", "-z", "--full-tree", sha).split(b"\0")
    wanted = []
    for entry in filter(None, listing):
        meta, path = entry.split(b"\t", 1)
        mode, kind, obj = meta.decode().split()
        rel = path.decode(errors="replace")
        parts = rel.split("/")
        if kind != "blob" or parts[-1] not in names or any(p in ("", ".", "..") for p in parts):
            continue
        wanted.append((mode, obj, rel))
    if not wanted:
        dest.mkdir(parents=True, exist_ok=True)
        return
    sizes = git(folder, "cat-file", "--batch-check", data="".join(f"{o}\n" for _, o, _ in wanted).encode())
    cap = build_mod.STUDENT_FILE_CAP
    small = []
    for (mode, obj, rel), line in zip(wanted, sizes.decode().splitlines()):
        size = int(line.split()[2])
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if size > cap and mode != "120000":
            with open(p, "wb") as f:
                f.truncate(size)
            continue
        small.append((mode, obj, p))
    if not small:
        return
    out = git(folder, "cat-file", "--batch", data="".join(f"{o}\n" for _, o, _ in small).encode())
    pos = 0
    for mode, obj, p in small:
        head_end = out.index(b"\n", pos)
        size = int(out[pos:head_end].split()[2])
        body = out[head_end + 1 : head_end + 1 + size]
        pos = head_end + 1 + size + 1
        if mode == "120000":
            os.symlink(body.decode(errors="replace"), p)
        else:
            p.write_bytes(body)


def student_names(root=labs_mod.ROOT):
    """Every file name a lab's student writes."""
    return {name for lab in labs_mod.discover(root) for name in lab.student}
