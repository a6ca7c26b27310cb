"""Build the book: each book/NN-name.md becomes build/book/NN-name.html.

    python3 book/build.py           preprocess the chapters, run pandoc
    python3 book/build.py --check   only check the listing references

A chapter pulls code from the kernel with a line of its own:

    <!-- listing: labs/01-boot/boot.S _start -->

which becomes a fenced code block holding that function, read from the file
at build time, so the book cannot drift from the code:
  - C (.c, .h): from the comment block directly above the definition through
    the closing `}` in column 0. Definitions put the return type on its own
    line and the name at the start of the next one: `^name(`.
  - Assembly (.S, .s): from the line `NAME:` through the end of the last
    blank-line-separated paragraph before the next paragraph that holds a
    top-level label or a section directive (or the end of the file).
A listing may never point into solutions/: the book is given to students.
Python 3 standard library only; pandoc is needed for HTML, not for --check.
"""
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
OUT = ROOT / "build" / "book"
PANDOC_INSTALL = "apt-get install -y --no-install-recommends pandoc"
PANDOC_TIMEOUT = 120

LISTING = re.compile(r"^\s*<!--\s*listing:\s*(\S+)\s+(\S+)\s*-->\s*$")
LISTING_START = re.compile(r"^\s*<!--\s*listing:")
FENCE = re.compile(r"^\s*(```+|~~~+)")
ASM_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*:")          # top level: no .L, no 1:
ASM_SECTION = re.compile(r"^\s*\.(section|text|data|bss|rodata|previous|pushsection|popsection)\b")
LANGUAGES = {".c": "c", ".h": "c", ".S": "asm", ".s": "asm"}


class BookError(Exception):
    """The book cannot be built; the message is one line."""


class ListingError(BookError):
    """A listing reference that does not resolve."""


def chapters():
    return sorted(p for p in BOOK.glob("[0-9][0-9]-*.md") if p.is_file())


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
            continue                            # a prototype or a call
        end = next((k for k in range(body + 1, len(lines)) if lines[k].startswith("}")), None)
        if end is None:
            raise ListingError(f"function `{name}` has no closing `}}` in column 0")
        start = i
        above = lines[i - 1] if i > 0 else ""
        if above.strip() and not above.startswith("#") and not above.rstrip().endswith(("*/", ";", "}")):
            start = i - 1                       # the return type, on its own line
        start = comment_above(lines, start)
        return lines[start:end + 1]
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
    return lines[start:end + 1]


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


# --- chapters ---------------------------------------------------------------

def listing_lines(text):
    """(line number, line) of every listing reference outside fenced blocks."""
    fence = None
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m:
            mark = m.group(1)
            if fence is None:
                fence = mark
            elif mark[0] == fence[0] and len(mark) >= len(fence):
                fence = None
            continue
        if fence is None and LISTING_START.match(line):
            yield n, line


def check(chapter_paths):
    """One message per broken listing reference; [] when all resolve."""
    problems = []
    for ch in chapter_paths:
        shown = ch.relative_to(ROOT)
        for n, line in listing_lines(ch.read_text()):
            m = LISTING.match(line)
            if not m:
                problems.append(f"{shown}:{n}: a listing line is `<!-- listing: PATH NAME -->`")
                continue
            try:
                resolve(m.group(1), m.group(2))
            except ListingError as e:
                problems.append(f"{shown}:{n}: listing {m.group(1)} {m.group(2)}: {e}")
    return problems


def expand(text):
    """The chapter with every listing line replaced by its code block."""
    refs = dict(listing_lines(text))
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if n not in refs:
            out.append(line)
            continue
        m = LISTING.match(line)
        lang, code = resolve(m.group(1), m.group(2))
        ticks = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", code)), default=0))
        out.append(f"{ticks}{lang}")
        out.append(code)
        out.append(ticks)
    return "\n".join(out) + "\n"


def split_title(text, fallback):
    """(title, body): the first `# ` heading becomes the page title."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# "):
            return line[2:].strip(), "\n".join(lines[:i] + lines[i + 1:]) + "\n"
    return fallback, text


def pandoc(markdown, title, out_path, before=""):
    with tempfile.TemporaryDirectory(prefix="book-") as tmp:
        src = Path(tmp) / "in.md"
        src.write_text(markdown)
        cmd = ["pandoc", "--standalone", "--toc", "--from", "markdown", "--to", "html5",
               "--metadata", f"title={title}", "--output", str(out_path), str(src)]
        if before:
            nav = Path(tmp) / "nav.html"
            nav.write_text(before)
            cmd[1:1] = ["--include-before-body", str(nav), "--include-after-body", str(nav)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=PANDOC_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise BookError(f"pandoc took more than {PANDOC_TIMEOUT}s on {out_path.name}") from None
        if r.returncode != 0:
            first = (r.stderr.strip().splitlines() or ["(no message)"])[0]
            raise BookError(f"pandoc failed on {out_path.name}: {first}")


def nav_html(prev, nxt):
    parts = ['<a href="index.html">Contents</a>']
    if prev:
        parts.insert(0, f'<a href="{prev[0]}">&larr; {html.escape(prev[1])}</a>')
    if nxt:
        parts.append(f'<a href="{nxt[0]}">{html.escape(nxt[1])} &rarr;</a>')
    return '<nav class="chapter-nav"><p>' + " | ".join(parts) + "</p></nav>\n"


def build(chapter_paths):
    OUT.mkdir(parents=True, exist_ok=True)
    pages = []
    for ch in chapter_paths:
        title, body = split_title(expand(ch.read_text()), ch.stem)
        (OUT / ch.name).write_text(f"# {title}\n{body}")      # the preprocessed chapter, for reference
        pages.append((ch.stem + ".html", title, body))
    for i, (name, title, body) in enumerate(pages):
        prev = pages[i - 1][:2] if i > 0 else None
        nxt = pages[i + 1][:2] if i + 1 < len(pages) else None
        pandoc(body, title, OUT / name, nav_html(prev, nxt))
    index = "\n".join(f"- [{title}]({name})" for name, title, _ in pages)
    pandoc("One chapter per lab. Each lab's handout is `labs/NN-name/README.md`.\n\n" + index + "\n",
           "Contents", OUT / "index.html")
    return [OUT / p[0] for p in pages] + [OUT / "index.html"]


def main(argv):
    if argv not in ([], ["--check"]):
        print("usage: python3 book/build.py [--check]", file=sys.stderr)
        return 2
    paths = chapters()
    if not paths:
        print(f"book: no chapters (book/NN-name.md) under {BOOK}", file=sys.stderr)
        return 1
    if argv == ["--check"]:
        problems = check(paths)
        for p in problems:
            print(p)
        if problems:
            return 1
        count = sum(1 for ch in paths for _ in listing_lines(ch.read_text()))
        print(f"book: {count} listings in {len(paths)} chapters resolve")
        return 0
    if shutil.which("pandoc") is None:
        print("book: pandoc is missing; install it (as root) with:", file=sys.stderr)
        print(PANDOC_INSTALL, file=sys.stderr)
        return 2
    problems = check(paths)
    if problems:
        for p in problems:
            print(p)
        return 1
    try:
        written = build(paths)
    except BookError as e:
        print(f"book: {e}", file=sys.stderr)
        return 1
    print(f"book: wrote {len(written)} pages under {OUT.relative_to(ROOT)}/ (start at index.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
