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

A chapter draws a figure from the built kernel with:

    <!-- figure: memory-layout 03 -->

which builds stage 03 with the grader's own recipe (from solutions/, or from
labs/ when solutions/ is absent, as in a student handout), reads the section
addresses of its kernel.elf with `llvm-objdump -h` and the symbols from the
kernel.sym the build wrote, and draws the physical memory layout as a text figure: the
sections, the boot page tables, the heap, the stack guard page and the stack.
`--check` only checks that the figure is known and the stage exists; it
builds nothing.

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
FIGURE = re.compile(r"^\s*<!--\s*figure:\s*(\S+)\s+(\S+)\s*-->\s*$")
DIRECTIVE_START = re.compile(r"^\s*<!--\s*(listing|figure):")
FENCE = re.compile(r"^\s*(```+|~~~+)")
ASM_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*:")          # top level: no .L, no 1:
ASM_SECTION = re.compile(r"^\s*\.(section|text|data|bss|rodata|previous|pushsection|popsection)\b")
LANGUAGES = {".c": "c", ".h": "c", ".S": "asm", ".s": "asm"}


class BookError(Exception):
    """The book cannot be built; the message is one line."""


class ListingError(BookError):
    """A listing reference that does not resolve."""


class FigureError(BookError):
    """A figure directive that names no known figure or no stage, or whose
    kernel cannot be built or read."""


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


# --- figures drawn from the built kernel -----------------------------------

FIGURE_KINDS = ("memory-layout",)
TOOL_TIMEOUT = 60
TABLE_SIZE = 4096                               # every x86-64 page table is one 4 KiB page
BOOT_TABLES = ("boot_pml4", "boot_pdpt", "boot_pd")
SECTION_NOTES = {
    ".multiboot": "Multiboot2 header",
    ".text": "code",
    ".rodata": "constants, strings",
    ".data": "variables with a value, the GDT",
}
BOUNDARY_SYMBOLS = ("__kernel_start", "__bss_start", "__heap_start", "__heap_end", "__stack_guard",
                    "__stack_bottom", "__stack_top", "__bss_end", "__kernel_end")
BOX = 24                                        # inner width of the figure's boxes


def grader():
    """The kit's grader modules that the figures use: (grader.labs, grader.build, grader.stage)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from grader import build as grader_build, labs as grader_labs, stage as grader_stage
    return grader_labs, grader_build, grader_stage


def figure_lab(kind, stage):
    """The lab whose stage the figure draws, or raises FigureError."""
    if kind not in FIGURE_KINDS:
        raise FigureError(f"no figure `{kind}` (figures: {', '.join(FIGURE_KINDS)})")
    if not re.fullmatch(r"\d{1,2}", stage):
        raise FigureError(f"the stage is a lab number such as 03, not `{stage}`")
    labs, _, _ = grader()
    try:
        return labs.find(stage, ROOT)
    except labs.LabError as e:
        raise FigureError(str(e)) from None


def tool_output(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    except FileNotFoundError:
        raise FigureError(f"{cmd[0]} is missing (Debian package llvm; `make setup` as root installs it)") from None
    except subprocess.TimeoutExpired:
        raise FigureError(f"{cmd[0]} took more than {TOOL_TIMEOUT}s") from None
    if r.returncode != 0:
        first = (r.stderr.strip().splitlines() or ["(no message)"])[0]
        raise FigureError(f"{' '.join(cmd[:2])} failed: {first}")
    return r.stdout


def built_kernel(lab):
    """(the grader's Build, where its student files came from)."""
    _, gbuild, gstage = grader()
    kind = "solutions" if (ROOT / "solutions").is_dir() else "labs"     # a student handout has no solutions/
    st = gstage.make(lab.name, gstage.Origin(kind), ROOT)
    if st.missing_files():
        st = gstage.make(lab.name, gstage.Origin("labs"), ROOT)
    try:
        return gbuild.build(st), ("solutions/" if st.origin.kind == "solutions" else "labs/")
    except gbuild.BuildError as e:
        raise FigureError(f"stage {lab.number:02d} does not build: {e.summary}") from None
    except OSError as e:
        raise FigureError(f"stage {lab.number:02d} does not build: {e}") from None


def elf_sections(elf):
    """{name: (address, size, type)} of the sections loaded in memory (llvm-objdump -h)."""
    found = {}
    for line in tool_output(["llvm-objdump", "-h", str(elf)]).splitlines():
        m = re.match(r"^\s*\d+\s+(\.\S+)\s+([0-9a-fA-F]+)\s+([0-9a-fA-F]+)\s*(\S*)", line)
        if m and int(m.group(3), 16) != 0:
            found[m.group(1)] = (int(m.group(3), 16), int(m.group(2), 16), m.group(4))
    return found


def elf_symbols(b):
    """[(address, type letter, name)] sorted by address: the build's own kernel.sym."""
    return [(s.addr, s.kind, s.name) for s in b.symbols.all]


def size_text(n):
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def bss_regions(bss, symbols):
    """The parts of .bss, in address order: [(start, end, name, note)]. The
    heap (lab 03) and the guard page (lab 04) appear in the stages that have them."""
    addr = {name: a for a, _, name in symbols}
    need = BOOT_TABLES + ("__stack_bottom", "__stack_top")
    missing = [n for n in need if n not in addr]
    if missing:
        raise FigureError(f"kernel.elf has no symbol {', '.join(missing)}")
    start, end = bss[0], bss[0] + bss[1]
    tables = (min(addr[t] for t in BOOT_TABLES), max(addr[t] for t in BOOT_TABLES) + TABLE_SIZE)
    later = [(lo, hi, name, note) for lo, hi, name, note in (
        ("__heap_start", "__heap_end", "  heap", "HEAP_SIZE bytes, for kmalloc"),
        ("__stack_guard", "__stack_bottom", "  stack guard page", "left unmapped from lab 04"))
        if lo in addr and hi in addr]
    first_later = addr[later[0][0]] if later else addr["__stack_bottom"]
    others = [name for a, kind, name in symbols
              if tables[1] <= a < first_later and kind in "bBdD" and not name.startswith("__")]
    note = ", ".join(others)
    if len(note) > 48:
        note = note[:note.rfind(", ", 0, 44)] + ", ..."
    parts = [(tables[0], tables[1], "  boot page tables", ", ".join(BOOT_TABLES)),
             (tables[1], first_later, "  other variables", note)]
    for lo, hi, name, note_ in later:
        if addr[lo] > parts[-1][1]:
            parts.append((parts[-1][1], addr[lo], "  (padding)", ""))
        parts.append((addr[lo], addr[hi], name, note_))
    if addr["__stack_bottom"] > parts[-1][1]:
        parts.append((parts[-1][1], addr["__stack_bottom"], "  (padding)", ""))
    parts.append((addr["__stack_bottom"], addr["__stack_top"], "  kernel stack", "RSP starts at __stack_top"))
    edges = [start] + [x for p in parts for x in p[:2]] + [end]
    if any(b < a for a, b in zip(edges, edges[1:])):
        raise FigureError("the .bss symbols are not in the order kernel.ld gives them")
    if tables[0] > start:
        parts.insert(0, (start, tables[0], "  variables", ""))
    if addr["__stack_top"] < end:
        parts.append((addr["__stack_top"], end, "  rest of .bss", ""))
    return [p for p in parts if p[1] > p[0]]


def memory_layout(lab):
    """The lines of the memory-layout figure of stage `lab`."""
    b, source = built_kernel(lab)
    elf = b.elf
    sections, symbols = elf_sections(elf), elf_symbols(b)
    if ".bss" not in sections:
        raise FigureError("kernel.elf has no .bss section")
    regions = []                                # (start, end, name, note), in address order
    ordered = sorted(sections.items(), key=lambda kv: kv[1][0])
    for i, (name, (start, size, _)) in enumerate(ordered):
        if name == ".bss":
            regions += bss_regions(sections[".bss"], symbols)
        else:
            regions.append((start, start + size, name, SECTION_NOTES.get(name, "")))
        following = ordered[i + 1][1][0] if i + 1 < len(ordered) else None
        if following is not None and following > start + size:
            regions.append((start + size, following, "(padding)", "up to the next section"))
    bss_start, bss_size, bss_type = sections[".bss"]
    width = 8 if regions[-1][1] < 1 << 32 else 16
    names = {}
    for a, _, name in sorted(symbols, key=lambda s: (s[0], BOUNDARY_SYMBOLS.index(s[2])
                                                     if s[2] in BOUNDARY_SYMBOLS else 0)):
        if name in BOUNDARY_SYMBOLS:
            names.setdefault(a, []).append(name)

    def edge(a):
        line = "=" if a in (bss_start, bss_start + bss_size) else "-"
        marks = ", ".join(names.get(a, []))
        return (f" 0x{a:0{width}x} +{line * BOX}+ {marks}").rstrip()

    rel = elf.relative_to(ROOT) if ROOT in elf.parents else elf
    out = [f" stage {lab.number:02d}, built from {source}: llvm-objdump -h of {rel} and its kernel.sym", ""]
    for k, (start, end, name, note) in enumerate(regions):
        if k == 0 or regions[k - 1][1] != start:
            out.append(edge(start))
        out.append(f" {'':{width + 2}} | {name:<{BOX - 2}} | {size_text(end - start):>8}  {note}".rstrip())
        out.append(edge(end))
    out += ["", f" between the = lines: .bss, {size_text(bss_size)} (type {bss_type or '?'} in llvm-objdump):",
            "   it takes memory but no room in kernel.elf, and _start zeroes it"]
    return out


FIGURES = {}


def figure(kind, stage):
    """The text of a figure (cached: each figure is drawn once per run)."""
    key = (kind, stage)
    if key not in FIGURES:
        lab = figure_lab(kind, stage)
        FIGURES[key] = "\n".join(memory_layout(lab))
    return FIGURES[key]


# --- chapters ---------------------------------------------------------------

def directive_lines(text):
    """(line number, line) of every listing or figure line outside fenced blocks."""
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
        if fence is None and DIRECTIVE_START.match(line):
            yield n, line


# kind -> (its line's pattern, the form to show, what validates it, the error it raises)
CHECKED = {
    "figure": (FIGURE, "<!-- figure: KIND STAGE -->", figure_lab, FigureError),
    "listing": (LISTING, "<!-- listing: PATH NAME -->", resolve, ListingError),
}


def check(chapter_paths):
    """One message per broken listing or figure line; [] when all resolve.
    A figure is only checked for its kind and stage: nothing is built."""
    problems = []
    for ch in chapter_paths:
        shown = ch.relative_to(ROOT) if ch.is_relative_to(ROOT) else ch
        for n, line in directive_lines(ch.read_text()):
            kind = DIRECTIVE_START.match(line).group(1)
            pattern, form, validate, error = CHECKED[kind]
            m = pattern.match(line)
            if not m:
                problems.append(f"{shown}:{n}: a {kind} line is `{form}`")
                continue
            try:
                validate(m.group(1), m.group(2))
            except error as e:
                problems.append(f"{shown}:{n}: {kind} {m.group(1)} {m.group(2)}: {e}")
    return problems


def expand(text):
    """The chapter with every listing line replaced by its code block, and
    every figure line by its figure."""
    refs = dict(directive_lines(text))
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if n not in refs:
            out.append(line)
            continue
        m = FIGURE.match(line)
        if m:
            out += ["```text", figure(m.group(1), m.group(2)), "```"]
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
        kinds = [DIRECTIVE_START.match(line).group(1) for ch in paths for _, line in directive_lines(ch.read_text())]
        listings, figures = kinds.count("listing"), kinds.count("figure")
        print(f"book: {listings} listing{'s' * (listings != 1)} and {figures} figure{'s' * (figures != 1)} "
              f"in {len(paths)} chapters resolve")
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
