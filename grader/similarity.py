"""A similarity report of a class: which submissions share code the
skeleton did not give them.

    python3 -m grader similarity --lab 03 SUBMISSIONS --csv pairs.csv [--html DIR]
                                 [--min-run N] [--export DIR]

For each student folder, the lab's student files are found as the batch
finds them (grader/intake.py). In each, every line that the skeleton
already has is blanked (kept as an empty line, so line numbers stay the
student's): the contracts, the markers, the given code around the regions.
What is left is the student's own text, and Debian's similarity tester
compares it: `sim_c` for C (tokens, so renamed variables and changed
layout or comments still match), `sim_text` for assembly (words). Each
student's text is compared with every other's in isolation (sim's -e -S),
which gives, for each ordered pair, the share of one's text found in the
other. A pair's similarity is the larger of its two shares; pairs are
ranked by it. Two identical submissions rank first at 100%.

A high share is a reason to read two submissions side by side, never a
verdict: short labs have few ways to write a loop. --html DIR writes a page
per pair with the runs sim found, side by side. --export DIR writes each
student's files as handed in, with the skeleton as base code, for JPlag or
MOSS (book/91-instructors.md).
"""
import difflib
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import gradebook, intake, labs as labs_mod, safe

TIMEOUT = 600
LANGS = {".c": ("sim_c", "C"), ".h": ("sim_c", "C"), ".S": ("sim_text", "assembly"), ".s": ("sim_text", "assembly")}
SHARE = re.compile(r"^(\S+) consists for (\d+) % of (\S+) material$")
RUN_HEAD = re.compile(r"^(\S+): line (\d+)-(\d+)\s*\|(\S+): line (\d+)-(\d+)\s*\[(\d+)\]\s*$")
DETAIL_PAGES = 50


class SimilarityError(labs_mod.LabError):
    """The report cannot be made (one line)."""


def without_comments(text):
    """C text with every comment blanked (its newlines kept), strings and
    characters untouched: so that blanking lines never cuts a comment in two."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def own_lines(text, skeleton):
    """The student's file with every line the skeleton has blanked (and every comment)."""
    mine, given = without_comments(text).splitlines(), without_comments(skeleton).splitlines()
    keep = [""] * len(mine)
    sm = difflib.SequenceMatcher(None, [x.strip() for x in given], [x.strip() for x in mine], autojunk=False)
    for op, _, _, j1, j2 in sm.get_opcodes():
        if op in ("insert", "replace"):
            keep[j1:j2] = mine[j1:j2]
    return "\n".join(keep) + "\n"


def gather(lab, folder, names):
    """{student: {file name: text}} of every student whose files the intake finds,
    and {student: why not} for the others."""
    found, refused = {}, {}
    wanted = intake.needed(lab.name, "reference")
    for name in names:
        try:
            files = intake.locate(Path(folder) / name, wanted)
        except intake.IntakeError as e:
            refused[name] = e.summary
            continue
        found[name] = {f: data.decode("utf-8", errors="replace") for (_, f), data in files.items()}
    return found, refused


def prepare(lab, found, work):
    """Write each student's own text, one file per language: work/LANG/NNNN.ext.
    Returns ({language: [(path, student)]}, {path name: (student, [(file, first line)])})."""
    by_lang, where = {}, {}
    for i, (student, files) in enumerate(sorted(found.items())):
        texts = {}
        for fname in lab.student:
            ext = Path(fname).suffix
            if ext not in LANGS:
                continue
            tool, lang = LANGS[ext]
            skeleton = (lab.dir / fname).read_text(errors="replace")
            texts.setdefault((tool, lang, ext), []).append((fname, own_lines(files[fname], skeleton)))
        for (tool, lang, ext), parts in texts.items():
            d = Path(work) / tool
            d.mkdir(parents=True, exist_ok=True)
            p = d / f"s{i:04d}{ext}"
            starts, line, out = [], 1, []
            for fname, text in parts:
                starts.append((fname, line))
                out.append(text)
                line += text.count("\n")
            p.write_text("".join(out))
            by_lang.setdefault((tool, lang), []).append((p, student))
            where[p.name] = (student, starts)
    return by_lang, where


def sim(tool, args, cwd):
    try:
        r = subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise SimilarityError(f"{tool} took more than {TIMEOUT} s") from None
    if r.returncode != 0:
        raise SimilarityError(f"{tool} failed: {(r.stderr.strip().splitlines() or ['(no message)'])[-1]}")
    return r.stdout


def shares(tool, files, min_run, cwd):
    """{(a, b): percent of a's text found in b} for every ordered pair that shares a run."""
    out = {}
    names = [p.name for p, _ in files]
    for p, _ in files:
        others = [n for n in names if n != p.name]
        if not others:
            continue
        text = sim(tool, ["-p", "-e", "-S", "-T", "-t", "1", "-r", str(min_run), p.name, "/", *others], cwd)
        for line in text.splitlines():
            m = SHARE.match(line.strip())
            if m and m.group(1) == p.name:
                out[(m.group(1), m.group(3))] = int(m.group(2))
    return out


def rank(by_lang, where, min_run, work):
    """Every pair that shares a run, best first: dicts for the CSV."""
    pairs = {}
    for (tool, lang), files in by_lang.items():
        cwd = files[0][0].parent
        for (a, b), pct in shares(tool, files, min_run, cwd).items():
            sa, sb = where[a][0], where[b][0]
            key = tuple(sorted((sa, sb)))
            p = pairs.setdefault(key, {"student_a": key[0], "student_b": key[1], "a_in_b": 0, "b_in_a": 0})
            p.setdefault("files", {})[lang] = (a, b) if sa == key[0] else (b, a)
            side = "a_in_b" if sa == key[0] else "b_in_a"
            p[side] = max(p[side], pct)
    out = []
    for p in pairs.values():
        p["similarity"] = max(p["a_in_b"], p["b_in_a"])
        p["languages"] = " ".join(sorted(p["files"]))
        out.append(p)
    out.sort(key=lambda p: (-p["similarity"], -(p["a_in_b"] + p["b_in_a"]), p["student_a"], p["student_b"]))
    for i, p in enumerate(out, 1):
        p["rank"] = i
    return out


COLUMNS = ["rank", "student_a", "student_b", "similarity", "a_in_b", "b_in_a", "languages"]


def runs_text(p, by_lang, where, width=160):
    """sim's side-by-side runs of one pair, with the students' names and file lines."""
    chunks = []
    for lang, (a, b) in sorted(p["files"].items()):
        tool = next(t for (t, lg) in by_lang if lg == lang)
        cwd = next(files[0][0].parent for (t, lg), files in by_lang.items() if lg == lang)
        text = sim(tool, ["-T", "-w", str(width), a, b], cwd)
        chunks.append(relabel(text, where))
    return "\n".join(chunks)


def relabel(text, where):
    """sim's `s0003.c: line 40-52` as `ann heap.c: line 12-24` (a run may
    cross from one of the student's files into the next), and the lines
    blank on both sides (the skeleton's) folded into one."""

    def at(fname, line):
        student, starts = where[fname]
        src, start = max((s for s in starts if s[1] <= line), key=lambda s: s[1], default=starts[0])
        return student, src, line - start + 1

    def name(fname, first, last):
        student, a, x = at(fname, first)
        _, b, y = at(fname, last)
        return f"{student} {a}: line {x}-{y}" if a == b else f"{student} {a}: line {x} to {b}: line {y}"

    out, blank = [], False
    for line in text.splitlines():
        m = RUN_HEAD.match(line)
        if m:
            left = name(m.group(1), int(m.group(2)), int(m.group(3)))
            right = name(m.group(4), int(m.group(5)), int(m.group(6)))
            line = f"{left}  |  {right}  [{m.group(7)} tokens]"
        elif line.startswith("Total input"):
            continue
        empty = not line.replace("|", "").strip()
        if empty and blank:
            continue
        blank = empty
        out.append("" if empty else line)
    return "\n".join(out).strip("\n") + "\n"


def write_html(out, pairs, by_lang, where, lab, refused):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    esc = html.escape
    rows = []
    for p in pairs:
        link = f"pair-{p['rank']:04d}.html"
        cell = f'<a href="{link}">{p["rank"]}</a>' if p["rank"] <= DETAIL_PAGES else str(p["rank"])
        rows.append(
            f"<tr><td>{cell}</td><td>{esc(p['student_a'])}</td><td>{esc(p['student_b'])}</td>"
            f"<td>{p['similarity']}%</td><td>{p['a_in_b']}%</td><td>{p['b_in_a']}%</td>"
            f"<td>{esc(p['languages'])}</td></tr>"
        )
        if p["rank"] <= DETAIL_PAGES:
            body = esc(runs_text(p, by_lang, where))
            (out / link).write_text(
                page(
                    f"{esc(p['student_a'])} and {esc(p['student_b'])}: {p['similarity']}%",
                    f"<p>{p['a_in_b']}% of {esc(p['student_a'])}'s own text is in {esc(p['student_b'])}'s, "
                    f"{p['b_in_a']}% the other way. Each run below is a stretch of tokens the two share "
                    "(layout, comments and names aside); line numbers are those of the files handed in.</p>"
                    f'<pre>{body}</pre><p><a href="index.html">all pairs</a></p>',
                )
            )
    skipped = "".join(f"<li>{esc(s)}: {esc(why)}</li>" for s, why in sorted(refused.items()))
    (out / "index.html").write_text(
        page(
            f"Similarity of lab {esc(lab.name)}",
            "<p>Pairs of submissions ranked by the larger share of one's own text (the skeleton's lines left "
            "out) found in the other, by Debian's similarity tester. A high share is a reason to read the two "
            "side by side, not a verdict.</p>"
            "<table><tr><th>rank</th><th>student</th><th>student</th><th>similarity</th><th>first in second</th>"
            "<th>second in first</th><th>language</th></tr>"
            + "".join(rows)
            + "</table>"
            + (f"<p>Not compared (files not found):</p><ul>{skipped}</ul>" if skipped else ""),
        )
    )


def page(title, body):
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}"
        "pre{font-size:85%;overflow-x:auto}</style></head>"
        f"<body><h1>{title}</h1>{body}</body></html>\n"
    )


def export(out, lab, found):
    """Each student's files as handed in (out/students/NAME/) and the
    skeleton as base code (out/base/), the layout JPlag and MOSS take."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise SimilarityError(f"{out} exists and is not empty: --export writes a new folder")
    (out / "base").mkdir(parents=True, exist_ok=True)
    for fname in lab.student:
        shutil.copyfile(lab.dir / fname, out / "base" / fname)
    for i, (student, files) in enumerate(sorted(found.items())):
        safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", student) or f"student-{i}"
        d = out / "students" / safe_name
        if d.exists():
            d = d.with_name(f"{safe_name}-{i}")
        d.mkdir(parents=True)
        for fname, text in files.items():
            (d / fname).write_text(text)


def add_parsers(sub):
    s = sub.add_parser("similarity", help="rank pairs of submissions by shared code (Debian's similarity-tester)")
    s.add_argument("--lab", required=True)
    s.add_argument("folder", type=Path, help="one sub-folder per student, as for batch")
    s.add_argument("--csv", type=Path, required=True, help="the ranked pairs")
    s.add_argument("--html", type=Path, help="a folder for index.html and a page per pair")
    s.add_argument("--min-run", type=int, default=24, help="the shortest shared run, in tokens (sim's -r; 24)")
    s.add_argument("--export", type=Path, help="a new folder: the files as handed in, and the skeleton as base code")
    s.add_argument("--no-install", action="store_true")
    s.set_defaults(run=run)


def run(args):
    from . import batch, deps

    deps.ensure("similarity", install=not args.no_install)
    lab = labs_mod.find(args.lab)
    names = batch.students(args.folder)
    found, refused = gather(lab, args.folder, names)
    if args.export:
        export(args.export, lab, found)
    with tempfile.TemporaryDirectory(prefix="kit-similarity-") as work:
        by_lang, where = prepare(lab, found, work)
        pairs = rank(by_lang, where, args.min_run, work)
        gradebook.write_rows(args.csv, COLUMNS, pairs)
        if args.html:
            write_html(args.html, pairs, by_lang, where, lab, refused)
    for name, why in sorted(refused.items()):
        print(f"similarity: {safe.line(name)} not compared: {why}", file=sys.stderr)
    top = pairs[0] if pairs else None
    print(
        f"similarity: lab {lab.name}, {len(found)} submissions compared, {len(pairs)} pairs share a run of "
        f"{args.min_run} tokens or more: {args.csv}"
        + (f"; first: {safe.line(top['student_a'])} and "
           f"{safe.line(top['student_b'])}, {top['similarity']}%" if top else "")
        + (f"; pages in {args.html}" if args.html else ""),
        file=sys.stderr,
    )  # fmt: skip
    return 0
