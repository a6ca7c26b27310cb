"""The book: chapters in Markdown that carry their own code, figures and
transcripts, and the HTML and EPUB made from them.

    python3 book/build.py --sync     write every generated block into the chapters
                                     (listings, text figures, transcripts) and the
                                     SVG figures into book/figures/
    python3 book/build.py --check    fast: every listing, figure and value is what
                                     the sources give; every transcript has its
                                     block and the inputs it was made from
    python3 book/build.py --verify   --check, and every transcript whose inputs
                                     changed is run again and compared
    python3 book/build.py            the HTML under build/book/ and build/book/book.epub
                                     (pandoc), from the chapters as they are
    python3 book/build.py --browser-check [DIR]
                                     load every page of DIR (default build/book) in
                                     headless Chromium at 1200 and 600 px (book/check.py)

A generated block follows the HTML comment that asks for it, in the Markdown
itself, so a chapter reads complete on a forge or in an editor:

    <!-- listing: labs/01-boot/boot.S _start -->
    ```asm
    ... the code of _start, as labs/01-boot/boot.S has it ...
    ```

  - C (.c, .h): from the comment block directly above the definition through
    the closing `}` in column 0. Definitions put the return type on its own
    line and the name at the start of the next one: `^name(`.
  - Assembly (.S, .s): from the line `NAME:` through the end of the last
    blank-line-separated paragraph before the next paragraph that holds a
    top-level label or a section directive (or the end of the file).
  A listing may never point into solutions/: the book is given to students.

    <!-- figure: memory-layout 03 -->

builds stage 03 with the grader's own recipe and draws its physical memory
layout from `llvm-objdump -h` of kernel.elf and the kernel.sym the build wrote.

    <!-- transcript: grade lab=03 solutions seed=0x1234 -->

runs the command and writes what it printed (book/transcripts.py says how).

    <!-- figure: text trap-frame -->

fills in the template book/text-figures/trap-frame.txt, whose {{...}}
placeholders are values, and in the prose

    the write at <!-- value: sym 05 probe_write_insn -->`0x106bc8` faulted

writes the number after the comment: an address or a size from kernel.sym
or kernel.asm of a reference build, or a number printed by a named
transcript of the chapter (book/values.py says how). No number of the
build or of a run is typed by hand: grader/tests/test_book.py fails on a
kernel address in the prose that no generated block or value covers.

The drawn figures (book/figures/*.svg) are made by book/figures.py, some from
the kernel's own data; the chapters show them with ordinary image links.

In a students' copy of the kit (no .staff-copy mark: grader/labs.py), the book
is the students' to read, never to rewrite: the plain build renders the
chapters as they are, --check compares only the listings of given files (a
student file's listing shows the skeleton as it was handed out, whatever the
student has written since), and --sync and --verify refuse, even once the staff
have released reference code into solutions/.

Python 3 standard library only; pandoc is needed for HTML and EPUB.
"""
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import figures as figures_mod
from fences import FENCE, in_code
import pages
import transcripts as tr
import kernel_facts
import values as vals
from kernel_facts import BookError, FigureError, figure, figure_lab

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
OUT = ROOT / "build" / "book"

PANDOC_INSTALL = "apt-get install -y --no-install-recommends pandoc"

LISTING = re.compile(r"^\s*<!--\s*listing:\s*(\S+)\s+(\S+)\s*-->\s*$")
FIGURE = re.compile(r"^\s*<!--\s*figure:\s*(\S+)\s+(\S+)\s*-->\s*$")
DIRECTIVE_START = re.compile(r"^\s*<!--\s*(listing|figure|transcript):")
ASM_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*:")  # top level: no .L, no 1:
ASM_SECTION = re.compile(r"^\s*\.(section|text|data|bss|rodata|previous|pushsection|popsection)\b")
LANGUAGES = {".c": "c", ".h": "c", ".S": "asm", ".s": "asm"}
# An absolute path of some machine: none may appear anywhere in book/.
MACHINE_PATH = re.compile(r"(?<![\w.~$-])/(root|home|tmp|work|Users|var/tmp|mnt|srv|opt|builds?)/")


class ListingError(BookError):
    """A listing reference that does not resolve."""


def chapters():
    """The chapters in reading order. A long chapter comes in parts: its first
    file is the lab's chapter, NN-name.md, and the others NN-name-K-what.md
    (K = 2, 3, ...). Sorted by stem, since a name sorts before the longer
    names it begins, while '-' sorts before '.' in whole file names."""
    return sorted((p for p in BOOK.glob("[0-9][0-9]-*.md") if p.is_file()), key=lambda p: p.stem)


def parts_of(ch):
    """Every file of the chapter that ch belongs to (the same NN- beside it), ch's own first."""
    if not re.match(r"^[0-9][0-9]-", ch.name):
        return [ch]
    return [ch] + sorted(p for p in ch.parent.glob(ch.name[:3] + "*.md") if p.is_file() and p != ch)


# --- pulling a function out of a source file ------------------------------


def c_function(lines, name):
    """The lines of C function `name`: comment block, return type, body."""
    head = re.compile(r"^" + re.escape(name) + r"\(")
    for i, line in enumerate(lines):
        if not head.match(line):
            continue
        # A definition reaches a `{` in column 0 before any line ending in ';'.
        body = None
        for j in range(i, len(lines)):
            if lines[j].startswith("{"):
                body = j
                break
            if lines[j].rstrip().endswith(";"):
                break
        if body is None:
            continue  # a prototype or a call
        end = next((k for k in range(body + 1, len(lines)) if lines[k].startswith("}")), None)
        if end is None:
            raise ListingError(f"function `{name}` has no closing `}}` in column 0")
        start = i
        above = lines[i - 1] if i > 0 else ""
        if above.strip() and not above.startswith("#") and not above.rstrip().endswith(("*/", ";", "}")):
            start = i - 1  # the return type, on its own line
        start = comment_above(lines, start)
        return lines[start : end + 1]
    raise ListingError(f"no definition `{name}(` at the start of a line")


def comment_above(lines, start):
    """Move start up over a comment block that ends on the line just above."""
    k = start - 1
    if k < 0:
        return start
    if lines[k].rstrip().endswith("*/"):
        while k >= 0 and "/*" not in lines[k]:
            k -= 1
        return k if k >= 0 else start
    while k >= 0 and lines[k].lstrip().startswith("//"):
        k -= 1
    return k + 1


def asm_function(lines, name):
    """The lines from `name:` to the end of its last paragraph (see above)."""
    label = re.compile(r"^\s*" + re.escape(name) + r":")
    start = next((i for i, ln in enumerate(lines) if label.match(ln)), None)
    if start is None:
        raise ListingError(f"no label `{name}:`")
    end = start
    i = start + 1
    while i < len(lines):
        if lines[i].strip():
            end = i
            i += 1
            continue
        # A blank line: look at the next paragraph.
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        k = j
        while k < len(lines) and lines[k].strip():
            k += 1
        paragraph = lines[j:k]
        if not paragraph or any(ASM_LABEL.match(p) or ASM_SECTION.match(p) for p in paragraph):
            break
        end = k - 1
        i = k
    return lines[start : end + 1]


def resolve(path_text, name):
    """(language, text) of the listing, or raises ListingError."""
    rel = Path(path_text)
    if rel.is_absolute() or ".." in rel.parts:
        raise ListingError(f"{path_text}: give a path inside the repository, relative to its root")
    if rel.parts and rel.parts[0] == "solutions":
        raise ListingError(f"{path_text}: a listing may not point into solutions/ (the book is given to students)")
    src = ROOT / rel
    if not src.is_file():
        raise ListingError(f"{path_text}: no such file")
    real = src.resolve()
    if ROOT not in real.parents or (ROOT / "solutions") in real.parents:
        raise ListingError(f"{path_text}: leads outside the repository or into solutions/ (a link?)")
    lang = LANGUAGES.get(src.suffix)
    if lang is None:
        raise ListingError(f"{path_text}: only .c, .h, .S and .s files can be listed")
    lines = src.read_text().splitlines()
    picked = asm_function(lines, name) if lang == "asm" else c_function(lines, name)
    while picked and not picked[-1].strip():
        picked.pop()
    if not any(ln.strip() for ln in picked[1:]):
        raise ListingError(f"{path_text}: `{name}` is empty")
    return lang, "\n".join(picked)


# --- chapters: directives and the blocks that follow them -------------------


class Directive:
    """A `<!-- kind: ... -->` comment outside any fenced block, and the fenced
    block right under it (lines are 0-based, end exclusive)."""

    def __init__(self, kind, text, start, end, block):
        self.kind, self.text, self.start, self.end = kind, text, start, end
        self.block = block  # (first, last+1) of the fenced block, or None

    @property
    def line(self):
        return self.start + 1


def directives(lines):
    """Every directive of a chapter, in order."""
    found, code, i = [], in_code(lines), 0
    while i < len(lines):
        line = lines[i]
        d = DIRECTIVE_START.match(line) if not code[i] else None
        if not d:
            i += 1
            continue
        j = i
        while "-->" not in lines[j] and j + 1 < len(lines):
            j += 1
        text = " ".join(ln.strip() for ln in lines[i : j + 1])
        block = None
        k = j + 1
        if k < len(lines) and FENCE.match(lines[k]):
            mark = FENCE.match(lines[k]).group(1)
            close = next(
                (
                    n
                    for n in range(k + 1, len(lines))
                    if re.fullmatch(re.escape(mark[0]) + "{%d,}" % len(mark), lines[n].strip())
                ),
                None,
            )
            if close is not None:
                block = (k, close + 1)
        found.append(Directive(d.group(1), text, i, j + 1, block))
        i = block[1] if block else j + 1
    return found


def fenced(lang, body):
    ticks = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", body)), default=0))
    return [f"{ticks}{lang}"] + body.split("\n") + [ticks]


def block_body(lines, d):
    """The text inside the directive's fenced block, or None."""
    if d.block is None:
        return None
    pad = tr.indent_of(lines[d.start])
    return "\n".join(ln[len(pad) :] if ln.startswith(pad) else ln for ln in lines[d.block[0] + 1 : d.block[1] - 1])


def transcript_of(d):
    m = re.match(r"^\s*<!--\s*transcript:(.*)-->\s*$", d.text, re.S)
    if not m:
        raise tr.TranscriptError("a transcript line is `<!-- transcript: KIND OPTIONS -->`")
    return tr.Transcript(m.group(1))


def chapter_context(ch, builds_ok, lines=None):
    """Where the values of a chapter come from (book/values.py): the blocks of
    its named transcripts, those of every part of the chapter (a value of one
    part may quote a run shown in another), and the reference builds when
    builds_ok. lines: ch's text as it is being checked, if not its file's."""
    lines = ch.read_text().split("\n") if lines is None else lines
    blocks, where = {}, {}
    for n, part in enumerate(parts_of(ch)):
        text = lines if n == 0 else part.read_text().split("\n")
        for d in directives(text):
            if d.kind != "transcript":
                continue
            try:
                name = transcript_of(d).get("name")
            except tr.TranscriptError:
                continue
            if name in blocks:
                also = "" if where[name] == part else f" (in {where[name].name} and {part.name})"
                raise vals.ValueProblem(f"two transcripts are named {name}{also}")
            if name:
                blocks[name], where[name] = block_body(text, d), part
    return vals.Context(lines, blocks, builds_ok)


def is_text_figure(d):
    m = FIGURE.match(d.text)
    return d.kind == "figure" and m is not None and m.group(1) == "text"


def wanted(d, figures_ok=True, ctx=None):
    """(language, text) the block under a listing or figure directive must
    hold; None when it cannot be known here. A text figure (a template of
    book/text-figures/) is filled in from ctx, or only parsed without one."""
    if d.kind == "listing":
        m = LISTING.match(d.text)
        if not m:
            raise ListingError("a listing line is `<!-- listing: PATH NAME -->`")
        return resolve(m.group(1), m.group(2))
    m = FIGURE.match(d.text)
    if not m:
        raise FigureError("a figure line is `<!-- figure: KIND STAGE -->` or `<!-- figure: text NAME -->`")
    if m.group(1) == "text":
        body = vals.template(m.group(2))
        where = f"book/text-figures/{m.group(2)}.txt"
        exprs = [vals.Expr(p) for p in vals.PLACEHOLDER.findall(body)]
        if ctx is None:
            return None
        for e in exprs:
            if e.source == "run" and e.args[0] not in ctx.blocks:
                raise vals.ValueProblem(f"{where}: no transcript name={e.args[0]} in this chapter")
        filled = vals.fill(body, ctx, where)
        return None if filled is None else ("text", filled)
    figure_lab(m.group(1), m.group(2))
    if not figures_ok:
        return None
    return "text", figure(m.group(1), m.group(2))


def shown(ch):
    return ch.relative_to(ROOT) if ch.is_relative_to(ROOT) else ch


def check(chapter_paths, transcripts=True, figures=None, only_broken=False):
    """One message per problem: a listing or figure that does not resolve or
    whose block differs from what the sources give, a transcript that cannot
    be parsed, has no block, or was made from other inputs (run --sync or
    --verify), an absolute path. [] when all is well. Figures drawn from a
    built kernel are compared only in the staff's copy (figures=None). In a
    students' copy the listings of student files are not compared: they show
    the skeleton as handed out."""
    staff = tr.staff_copy()
    figures = staff if figures is None else figures
    theirs = set() if staff else student_files()
    lock = tr.read_lock()
    problems = []
    for ch in chapter_paths:
        text = ch.read_text()
        lines = text.split("\n")
        try:
            ctx = None if only_broken else chapter_context(ch, figures, lines)
        except vals.ValueProblem as e:
            problems.append(f"{shown(ch)}: {e}")
            continue
        for d in directives(lines):
            where = f"{shown(ch)}:{d.line}"
            if d.kind == "transcript":
                try:
                    t = transcript_of(d)
                    for p in vals.PLACEHOLDER.findall(t.text):
                        if vals.Expr(p).source == "fixed":
                            raise tr.TranscriptError(f"{{{{{p}}}}}: a command cannot run a number that is not ours")
                except (tr.TranscriptError, vals.ValueProblem) as e:
                    problems.append(f"{where}: transcript: {e}")
                    continue
                if only_broken:
                    continue
                if d.block is None:
                    problems.append(f"{where}: transcript has no fenced block under it (run --sync)")
                elif transcripts and lock.get(t.key) != tr.inputs_of(t):
                    problems.append(
                        f"{where}: transcript made from other inputs: run `python3 book/build.py --verify`"
                        " (or --sync)"
                    )
                continue
            m = LISTING.match(d.text) if d.kind == "listing" else None
            if m and m.group(1) in theirs:
                continue  # the student's own code now: the chapter shows it as handed out
            try:
                want = wanted(d, figures and not only_broken, ctx)
            except BookError as e:
                problems.append(f"{where}: {d.text.strip('<!-> ')}: {e}")
                continue
            if only_broken:
                continue
            if d.block is None:
                problems.append(f"{where}: {d.kind} has no fenced block under it (run --sync)")
            elif want is not None and block_body(lines, d) != want[1]:
                problems.append(f"{where}: the block under `{d.text}` differs from its source (run --sync)")
        try:
            if only_broken:
                vals.uses(lines)
            else:
                for n, expr, old, new in vals.check_prose(lines, ctx):
                    problems.append(
                        f"{shown(ch)}:{n}: `<!-- value: {expr} -->` gives {new}, the text says {old} (run --sync)"
                    )
        except vals.ValueProblem as e:
            problems.append(f"{shown(ch)}: {e}")
        for n, line in enumerate([] if only_broken else lines, 1):
            if MACHINE_PATH.search(line):
                problems.append(f"{shown(ch)}:{n}: an absolute path of a machine: {line.strip()[:80]}")
    return problems


def student_files():
    """labs/NN-name/FILE of every file a student writes (lab.json's "student")."""
    labs, _, _ = kernel_facts.grader()
    return {f"labs/{lab.name}/{name}" for lab in labs.discover(ROOT) for name in lab.student}


def rewrite(ch, produce):
    """Replace the block under each directive with produce(directive) (a list
    of lines, or None to leave it). Returns the number of blocks changed."""
    lines = ch.read_text().split("\n")
    changed = 0
    for d in reversed(directives(lines)):
        new = produce(d)
        if new is None:
            continue
        pad = tr.indent_of(lines[d.start])
        new = [pad + ln if ln else ln for ln in new]
        old = lines[d.block[0] : d.block[1]] if d.block else []
        if old != new:
            changed += 1
            if d.block:
                lines[d.block[0] : d.block[1]] = new
            else:
                lines[d.end : d.end] = new
    if changed:
        ch.write_text("\n".join(lines))
    return changed


def sync(chapter_paths, rerun_all=False, verify_only=False, jobs=2, out=print):
    """Write (or, with verify_only, compare) every generated block. Returns problems."""
    if not tr.staff_copy():
        return [
            "book: this is a students' copy of the kit (no .staff-copy): its chapters are rendered as they are "
            "and never rewritten; `make book` builds the HTML and the EPUB from them"
        ]
    problems = check(chapter_paths, transcripts=False, only_broken=True)
    if problems:
        return problems
    changed = 0
    if not verify_only:
        for ch in chapter_paths:

            def listing_block(d):
                if d.kind == "transcript" or is_text_figure(d):
                    return None
                want = wanted(d)
                return fenced(*want) if want else None

            changed += rewrite(ch, listing_block)
        changed += figures_mod.write_all(out=out)
    lock = tr.read_lock()
    todo = {}
    for ch in chapter_paths:
        lines = ch.read_text().split("\n")
        for d in directives(lines):
            if d.kind != "transcript":
                continue
            t = transcript_of(d)
            if rerun_all or d.block is None or lock.get(t.key) != tr.inputs_of(t):
                todo.setdefault(t.key, (t, ch, d.line, block_body(lines, d)))
    if todo:
        out(f"book: running {len(todo)} transcript{'s' * (len(todo) != 1)} ...")
    builds = vals.Context([], {}, True)

    def one(item):
        key, (t, ch, line, _) = item
        ctx = chapter_context(ch, True) if uses_runs(t) else builds
        try:
            return key, tr.produce(t.filled(lambda text: vals.fill(text, ctx, "the transcript's line"))), None
        except (tr.TranscriptError, BookError) as e:
            return key, None, f"{shown(ch)}:{line}: transcript: {e}"

    # A transcript whose line quotes another's numbers ({{run NAME RE}}) runs
    # once the others' blocks are written.
    for batch in (
        {k: v for k, v in todo.items() if not uses_runs(v[0])},
        {k: v for k, v in todo.items() if uses_runs(v[0])},
    ):
        done = {}
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for key, produced, err in pool.map(one, batch.items()):
                if err:
                    problems.append(err)
                else:
                    done[key] = produced
        for key, produced in done.items():
            t, ch, line, old = todo[key]
            if verify_only:
                if old is None or tr.masked(t, old.split("\n")[0:]) != tr.masked(t, produced):
                    problems.append(
                        f"{shown(ch)}:{line}: transcript `{t.text[:60]}` drifted from a real run "
                        f"(run `python3 book/build.py --sync`):\n" + diff_text(old or "", produced)
                    )
                    continue
            lock[t.key] = tr.inputs_of(t)
        if verify_only:
            continue
        for ch in chapter_paths:

            def transcript_block(d):
                if d.kind != "transcript" or transcript_of(d).key not in done:
                    return None
                return fenced(transcript_of(d).lang, "\n".join(done[transcript_of(d).key]))

            changed += rewrite(ch, transcript_block)
    if not verify_only:
        changed += sync_values(chapter_paths, out)
    keys = {
        transcript_of(d).key
        for ch in chapter_paths
        for d in directives(ch.read_text().split("\n"))
        if d.kind == "transcript"
    }
    if not verify_only:  # a check never writes into the repository
        tr.write_lock({k: v for k, v in lock.items() if k in keys})
        out(f"book: {changed} block{'s' * (changed != 1)} rewritten")
    return problems


def uses_runs(t):
    """Does the transcript's line quote another transcript's numbers?"""
    return any(vals.Expr(p).source == "run" for p in vals.PLACEHOLDER.findall(t.text))


def sync_values(chapter_paths, out=print):
    """After the transcripts: every text figure filled in, every value of the
    prose written. Returns the number of blocks and values changed."""
    changed = 0
    for ch in chapter_paths:
        ctx = chapter_context(ch, True)

        def text_block(d):
            if not is_text_figure(d):
                return None
            want = wanted(d, True, ctx)
            return fenced(*want) if want else None

        changed += rewrite(ch, text_block)
        lines = ch.read_text().split("\n")
        moved = vals.rewrite_prose(lines, ctx)
        if moved:
            ch.write_text("\n".join(lines))
            for n, old, new in moved:
                out(f"book: {shown(ch)}:{n}: {old} -> {new}")
            changed += len(moved)
    return changed


def diff_text(old, new):
    import difflib

    d = difflib.unified_diff(old.split("\n"), new, "in the book", "from the run", lineterm="", n=1)
    return "\n".join(list(d)[:40])


# --- HTML and EPUB (book/pages.py) -------------------------------------------


def strip_directives(body):
    """The Markdown pandoc sees: the directive comments dropped (their blocks
    stay), and the value comments of the prose (their numbers stay)."""
    lines = body.split("\n")
    for i in vals.outside_fences(lines):
        lines[i] = vals.DIRECTIVE.sub("", lines[i])
    for d in reversed(directives(lines)):
        del lines[d.start : d.end]
    return "\n".join(lines)


def build(chapter_paths):
    return pages.build([(ch.stem, strip_directives(ch.read_text())) for ch in chapter_paths], OUT)


def main(argv):
    usage = "usage: python3 book/build.py [--sync [--all] | --check | --verify | --browser-check [DIR]]"
    paths = chapters()
    if not paths:
        print(f"book: no chapters (book/NN-name.md) under {BOOK}", file=sys.stderr)
        return 1
    if argv[:1] == ["--browser-check"]:
        import check as browser

        return browser.main(argv[1:])
    if argv in (["--sync"], ["--sync", "--all"], ["--verify"]):
        try:
            problems = sync(paths, rerun_all="--all" in argv, verify_only=argv == ["--verify"])
        except BookError as e:
            problems = [f"book: {e}"]
        for p in problems:
            print(p)
        if not problems and argv == ["--verify"]:
            print("book: every listing, figure and transcript matches its source")
        return 1 if problems else 0
    if argv == ["--check"]:
        problems = check(paths, transcripts=False) + figures_mod.check_all()
        for p in problems:
            print(p)
        if problems:
            return 1
        stale = [p for p in check(paths, figures=False) if "made from other inputs" in p]
        if stale and not tr.staff_copy():
            print(
                f"book: {len(stale)} transcripts are run again only in the course staff's copy (this is a "
                "students' copy); they were checked against real runs when the book was made"
            )
        elif stale:
            print(
                f"book: {len(stale)} transcripts were made from other inputs than the kit's now: "
                "`python3 book/build.py --verify` runs them again and compares"
            )
        kinds = [d.kind for ch in paths for d in directives(ch.read_text().split("\n"))]
        values = sum(len(u.exprs) for ch in paths for u in vals.uses(ch.read_text().split("\n")))
        print(
            f"book: {kinds.count('listing')} listings, {kinds.count('figure')} text figures, "
            f"{kinds.count('transcript')} transcripts, {values} values and {len(figures_mod.FIGURES)} drawn "
            f"figures in {len(paths)} chapters are up to date"
        )
        return 0
    if argv:
        print(usage, file=sys.stderr)
        return 2
    if shutil.which("pandoc") is None:
        print("book: pandoc is missing; install it (as root) with:", file=sys.stderr)
        print(PANDOC_INSTALL, file=sys.stderr)
        return 2
    problems = check(paths, transcripts=False, figures=False) if tr.staff_copy() else []
    if problems:
        for p in problems:
            print(p)
        return 1
    try:
        written = build(paths)
    except BookError as e:
        print(f"book: {e}", file=sys.stderr)
        return 1
    print(f"book: wrote {len(written) - 1} pages and book.epub under {OUT.relative_to(ROOT)}/ (start at index.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
