"""Gradebooks: the CSV a batch writes, their merge, a roster, and the files
an LMS imports.

A gradebook has one row per student folder. Every row says which lab it
grades, which slice of the class it came from (`shard`: K/N, or `only` for
a regrade of named students), the batch's seed and the deadline it was
collected at, so that `batch-merge` can tell a complete set of shards from
an incomplete or mixed one without trusting file names. `graded_at` says
when the row was made: of two rows for one student, the newer wins.

Every cell is safe to open in a spreadsheet: a text that a spreadsheet
would read as a formula (it starts with = + - @, a tab or a carriage
return) gets a leading apostrophe, as spreadsheet programs expect; so does
a text that already starts with one, so that reading a gradebook back
gives every name exactly. Numbers are written as numbers.

A roster (--roster) is a CSV with a `folder` column (the submission's
folder name) or a `github_username` column (GitHub Classroom's roster:
the folder is that name, or ends with `-NAME` as Classroom names its
repositories); `name` and `late_days` (a student's late-day allowance)
are read when present, and every other column is kept for the LMS files.
The simplest roster is the LMS's own gradebook export with one column
added, `github_username` or `folder`.
"""
import csv
import datetime
import math
import re
from pathlib import Path

from . import labs as labs_mod

BASE = ["student", "score", "max", "challenge", "status", "seed", "seconds", "first_failing"]
ROSTER = ["name"]  # after `student`, with --roster
DEADLINE = ["commit", "committed_at", "after_deadline"]  # after `status`, with --deadline
LATE = ["days_late", "late_days_allowed", "penalty", "final"]  # after `challenge`, with a late-day policy
META = ["lab", "shard", "batch_seed", "deadline", "graded_at"]  # last, always
CHECK_PREFIX = "check: "  # --columns checks: one column per check, before META
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class GradebookError(labs_mod.LabError):
    """A gradebook that cannot be read, merged or exported (one line)."""


def columns(roster=False, late=False, deadline=False, checks=()):
    """The gradebook's header for these options."""
    out = ["student"] + (ROSTER if roster else []) + ["score", "max", "challenge"]
    out += LATE if late else []
    out += ["status"] + (DEADLINE if deadline else [])
    out += ["seed", "seconds", "first_failing"]
    out += [CHECK_PREFIX + t for t in checks]
    return out + META


# --- cells ----------------------------------------------------------------------------


def safe(value):
    """A cell a spreadsheet shows as text and never runs: numbers as they are,
    a text starting with = + - @ tab CR (or an apostrophe) behind an apostrophe."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return value
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START) and not NUMBER.match(text):
        return "'" + text
    return text


def unsafe(text):
    """The value `safe` was given (for a text it wrote)."""
    return text[1:] if text.startswith("'") and text[1:2] and text[1:2] in "=+-@\t\r'" else text


def write_rows(path, header, rows):
    """Write rows (dicts keyed by the header's names) to a CSV, every cell made safe."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([safe(h) for h in header])
        for row in rows:
            w.writerow([safe(row.get(h, "")) for h in header])
    tmp.replace(path)


def read(path):
    """(header, rows as dicts) of a gradebook that `batch` wrote."""
    try:
        with open(path, newline="") as f:
            lines = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise GradebookError(f"{path} cannot be read as a gradebook: {e}") from None
    if not lines:
        raise GradebookError(f"{path} is empty: a gradebook of `batch` starts with its header")
    header = [unsafe(h) for h in lines[0]]
    missing = [c for c in ["student", "score", "max", "status"] + META if c not in header]
    if missing:
        raise GradebookError(
            f"{path} is not a gradebook of `batch` (no column {', '.join(missing)}); "
            "a gradebook from before deadlines and shards were recorded cannot be merged: grade again"
        )
    rows = []
    for n, line in enumerate(lines[1:], 2):
        if len(line) != len(header):
            raise GradebookError(f"{path}, line {n}: {len(line)} cells where the header has {len(header)}")
        rows.append({h: unsafe(v) for h, v in zip(header, line)})
    return header, rows


# --- merging ----------------------------------------------------------------------------


def _shard(value, where):
    try:
        k, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise GradebookError(f"{where}: the shard `{value}` is not K/N") from None
    return k, n


def merge(parts, replacements=()):
    """(header, rows, what changed) of the gradebooks `parts`, a complete set
    of shards of one batch, with each row of `replacements` (regrades)
    taking the place of that student's row when it is newer. Refuses a
    missing or doubled shard, and parts or regrades of another lab, another
    batch seed or, for the shards, another deadline."""
    if not parts:
        raise GradebookError("batch-merge needs at least one gradebook")
    header, first = None, None
    rows, where = {}, {}
    shards = {}  # K -> the file that holds it
    total = set()
    meta = None
    for i, path in enumerate(parts):
        h, rs = read(path)
        if header is None:
            header, first = h, path
        elif h != header:
            raise GradebookError(f"{path} has other columns than {first}: grade both with the same options")
        if not rs:
            raise GradebookError(f"{path} has no rows")
        for r in rs:
            if r["shard"] == "only":
                raise GradebookError(f"{path} is a regrade of named students (--only): merge it with --replace {path}")
            this = (r["lab"], r["batch_seed"], r["deadline"])
            if meta is None:
                meta = this
            elif this != meta:
                raise GradebookError(
                    f"{path}: {_mismatch(meta, this)} (row {r['student']}); {first} is of {_meta(meta)}"
                )
            k, n = _shard(r["shard"], path)
            total.add(n)
            if len(total) > 1:
                raise GradebookError(f"{path}: shards of {' and '.join(map(str, sorted(total)))} slices are mixed")
            if shards.setdefault(k, (i, path))[0] != i:
                raise GradebookError(f"shard {k}/{n} is in both {shards[k][1]} and {path}")
            if r["student"] in rows:
                raise GradebookError(f"{r['student']} is graded in both {where[r['student']]} and {path}")
            rows[r["student"]], where[r["student"]] = r, path
    n = total.pop()
    missing = sorted(set(range(1, n + 1)) - set(shards))
    if missing:
        raise GradebookError(
            f"shard {', '.join(f'{k}/{n}' for k in missing)} missing: {len(shards)} of {n} gradebooks given "
            f"({len(rows)} students); grade the missing shard or pass its gradebook"
        )
    changes = []
    for path in replacements:
        h, rs = read(path)
        if h != header:
            raise GradebookError(f"{path} has other columns than {first}: regrade with the same options")
        for r in rs:
            if (r["lab"], r["batch_seed"]) != meta[:2]:
                raise GradebookError(
                    f"{path}: {_mismatch(meta, (r['lab'], r['batch_seed'], meta[2]))} (row {r['student']}); "
                    f"a regrade takes the batch's --seed {meta[1]}"
                )
            old = rows.get(r["student"])
            if old is not None and r["graded_at"] <= old["graded_at"]:
                changes.append(f"kept {r['student']}: the row in {path} ({r['graded_at']}) is not newer")
                continue
            rows[r["student"]] = r
            changes.append(_change(old, r, path, meta[2]))
    return header, [rows[s] for s in sorted(rows)], changes


def _meta(m):
    return f"lab {m[0]}, seed {m[1]}" + (f", deadline {m[2]}" if m[2] else ", no deadline")


def _mismatch(a, b):
    names = ("lab", "batch seed", "deadline")
    diff = [f"{n} {y or '(none)'} where the others have {x or '(none)'}" for n, x, y in zip(names, a, b) if x != y]
    return "; ".join(diff)


def _score(row):
    return f"{row['score']}/{row['max']}" + (f" (final {row['final']})" if row.get("final", "") != "" else "")


def _change(old, new, path, deadline):
    extra = f", deadline {new['deadline']}" if new["deadline"] != deadline else ""
    if old is None:
        return f"added {new['student']}: {_score(new)}, {new['status']}, from {path}{extra}"
    return f"replaced {new['student']}: {_score(old)} -> {_score(new)}, {new['status']}, from {path}{extra}"


# --- rosters -----------------------------------------------------------------------------


class Roster:
    """Who is behind each folder: the roster's rows, found by folder name."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            with open(self.path, newline="", encoding="utf-8-sig") as f:
                lines = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise GradebookError(f"roster {path}: {e}") from None
        if not lines:
            raise GradebookError(f"roster {path} is empty")
        self.header = [h.strip() for h in lines[0]]
        lower = [h.lower() for h in self.header]
        key = next((k for k in ("folder", "github_username") if k in lower), None)
        if key is None:
            raise GradebookError(
                f"roster {path} has no `folder` or `github_username` column (its columns: "
                f"{', '.join(self.header[:8])}): add one that names each student's submission folder"
            )
        self.key, self.by_suffix = key, key == "github_username"
        self.rows = []
        for line in lines[1:]:
            row = dict(zip(self.header, (c.strip() for c in line)))
            first = line[0].strip() if line else ""
            if not any(line) or first.lower() == "points possible":  # a Canvas export's second row
                continue
            row["_key"] = row.get(self.header[lower.index(key)], "")
            if row["_key"]:
                self.rows.append(row)
        self.lower = dict(zip(lower, self.header))

    def get(self, row, *names):
        """The first non-empty value of these columns (any case), or ''."""
        for n in names:
            col = self.lower.get(n.lower())
            if col and row.get(col):
                return row[col]
        return ""

    def find(self, folder):
        """The roster row of a folder, or None."""
        for row in self.rows:
            k = row["_key"]
            if folder == k or (self.by_suffix and folder.lower().endswith("-" + k.lower())):
                return row
        return None

    def name(self, folder):
        row = self.find(folder)
        if row is None:
            return ""
        full = " ".join(x for x in (self.get(row, "first name"), self.get(row, "last name")) if x)
        return self.get(row, "name", "student") or full

    def late_days(self, folder):
        """The student's late-day allowance from the roster, or None."""
        row = self.find(folder)
        text = self.get(row, "late_days") if row else ""
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            raise GradebookError(f"roster {self.path}: late_days of {folder} is `{text}`, not a number") from None

    def unmatched(self, folders):
        """Roster rows that no folder matches."""
        return [row for row in self.rows if not any(self.find(f) is row for f in folders)]


# --- deadlines and late days -----------------------------------------------------------


def parse_deadline(text):
    """A timezone-aware datetime from "YYYY-MM-DD HH:MM" (this machine's
    timezone) or with an offset ("2027-03-01 23:59 +01:00", "...Z")."""
    t = text.strip().replace("T", " ")
    t = re.sub(r"\s*Z$", "+00:00", t)
    t = re.sub(r"\s+([+-]\d\d:?\d\d)$", r"\1", t)
    try:
        when = datetime.datetime.fromisoformat(t)
    except ValueError:
        raise GradebookError(
            f'--deadline is "YYYY-MM-DD HH:MM", with an optional offset such as +01:00 or Z, not "{text}"'
        ) from None
    return when if when.tzinfo else when.astimezone()


def days_late(when, deadline):
    """Days begun after the deadline (0 when on time)."""
    late = (when - deadline).total_seconds()
    return max(0, math.ceil(late / 86400))


def span(seconds):
    """A duration in words a reader takes in at once: 26h13m, 3d 4h, 45m."""
    m = int(seconds // 60)
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h < 48 else f"{h // 24}d {h % 24}h"


def late_columns(score, max_score, late, allowed, penalty_pct):
    """The late-day policy's columns for one row."""
    penalty = min(score, round(max_score * penalty_pct / 100 * late, 2)) if late else 0
    if isinstance(penalty, float) and penalty.is_integer():
        penalty = int(penalty)
    final = score - penalty
    return {
        "days_late": late,
        "late_days_allowed": int(allowed) if float(allowed).is_integer() else allowed,
        "penalty": penalty,
        "final": round(final, 2) if isinstance(final, float) else final,
    }


# --- the files an LMS imports ---------------------------------------------------------------

LMS = ("canvas", "moodle")
CANVAS_ID = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_ID = ["ID number", "Email address", "Username"]


def lms_rows(kind, rows, roster, assignment, points):
    """(header, rows, roster rows with no gradebook row) of the grade-import
    CSV of `kind`. Canvas reads its own export's identity columns (Student,
    ID, SIS User ID, SIS Login ID, Section) and one column per assignment,
    named as in its export ("Lab 03 (123456)" for an existing assignment);
    its second row gives the points possible. Moodle maps any identity
    column (ID number, email address or username) and a grade and a
    feedback column in its import form."""
    if roster is None:
        raise GradebookError(f"--lms {kind} needs --roster: the LMS knows students by its own identities")
    score = "final" if rows and "final" in rows[0] else "score"
    graded = {roster_row_id(roster, r["student"]): r for r in rows if roster.find(r["student"]) is not None}
    ids = CANVAS_ID if kind == "canvas" else MOODLE_ID
    have = [c for c in ids if c.lower() in roster.lower]
    if kind == "canvas" and not {"student", "id", "sis user id", "sis login id"} & set(roster.lower):
        raise GradebookError(
            f"--lms canvas: roster {roster.path} has none of Student, ID, SIS User ID, SIS Login ID "
            "(start from Canvas's gradebook export and add a `folder` or `github_username` column)"
        )
    if kind == "moodle" and not have:
        raise GradebookError(
            f"--lms moodle: roster {roster.path} has none of ID number, Email address, Username "
            "(start from Moodle's grade export and add a `folder` or `github_username` column)"
        )
    header = (CANVAS_ID if kind == "canvas" else have) + [assignment]
    header += [] if kind == "canvas" else [f"{assignment} (feedback)"]
    out = []
    if kind == "canvas":
        out.append({"Student": "    Points Possible", assignment: points})
    missing = []
    for row in roster.rows:
        r = graded.get(id(row))
        ident = {c: roster.get(row, c) for c in header[: len(header) - (1 if kind == "canvas" else 2)]}
        if r is None:
            missing.append(row)
            value, feedback = 0, "no submission found"
        else:
            value = r[score]
            feedback = r["status"] + (f": {r['first_failing']}" if r.get("first_failing") else "")
        line = dict(ident, **{assignment: value})
        if kind == "moodle":
            line[f"{assignment} (feedback)"] = feedback
        out.append(line)
    return header, out, missing


def roster_row_id(roster, folder):
    return id(roster.find(folder))


def write_lms(kind, rows, roster, path, assignment, points):
    header, out, missing = lms_rows(kind, rows, roster, assignment, points)
    write_rows(path, header, out)
    return missing
