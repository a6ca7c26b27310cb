"""The HTML book and the EPUB, made with pandoc from the chapters as they are
(book/build.py strips the directive comments first and calls build()).

What the reader gets beyond pandoc's own output:
  - a front page that is an index: the chapters with the lab each one goes
    with (its title, the files a student edits, its handout), then the
    appendices;
  - a long chapter in parts (NN-name.md, then NN-name-K-what.md: see
    chapters() in book/build.py) nested under its first part in the
    index and the sidebar;
  - the drawn figures numbered per chapter ("Figure 5.1"; the appendices
    are lettered: "Figure A.1"), on through the parts of a chapter;
  - links between chapters written as the Markdown files they point to
    ([part 2](06-jit-model-2-simd.md)), so that they work on a forge too,
    made links to the HTML pages, and in the EPUB to the part's start;
  - pandoc's syntax highlighting with its own styles, light (pygments) and
    dark (breezedark), chosen by the reader's system setting (highlight.css);
  - full-text search that works offline, from the files themselves:
    search-index.js holds the text of every section, search.js searches it.
Everything is made here, with pandoc and the Python standard library: no
npm package, no network, in the staff's copy and in a student's alike.
"""
import html
import html.parser
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from fences import in_code
from kernel_facts import BookError

BOOK = Path(__file__).resolve().parent
ROOT = BOOK.parent
STYLE = BOOK / "style"
METADATA = BOOK / "metadata.yaml"
PANDOC_TIMEOUT = 120
TITLE = "The teaching OS kit"
# pandoc names the assembly of our .S files gnuassembler (AT&T syntax); a
# forge knows `asm`, so the chapters say asm and the book's pandoc sees this.
PANDOC_LANG = {"asm": "gnuassembler"}
HIGHLIGHT = (("pygments", None), ("breezedark", "(prefers-color-scheme: dark)"))
TOKENS = {
    "Alert": "al", "Annotation": "an", "Attribute": "at", "BaseN": "bn", "BuiltIn": "bu",
    "ControlFlow": "cf", "Char": "ch", "Constant": "cn", "Comment": "co", "CommentVar": "cv",
    "Documentation": "do", "DataType": "dt", "DecVal": "dv", "Error": "er", "Extension": "ex",
    "Float": "fl", "Function": "fu", "Import": "im", "Information": "in", "Keyword": "kw",
    "Operator": "op", "Other": "ot", "Preprocessor": "pp", "SpecialChar": "sc",
    "SpecialString": "ss", "String": "st", "Variable": "va", "VerbatimString": "vs", "Warning": "wa",
}  # fmt: skip
IMAGE = re.compile(r"^!\[(.+)\]\((figures/[^)\s]+)\)\s*$")
CHAPTER_LINK = re.compile(r"\]\(([0-9][0-9]-[\w-]+)\.md(#[\w-]+)?\)")
PART_TITLE = re.compile(r"^Chapter \d+, part (\d+): (.+)$")
FENCE_LANG = re.compile(r"^(\s*(?:```+|~~~+))(\w+)\s*$")


class Page:
    def __init__(self, stem, title, body):
        self.stem, self.title, self.body = stem, title, body
        self.name = stem + ".html"
        number = stem.split("-", 1)[0]
        self.appendix = int(number) >= 90
        self.first_figure = 0  # the figures of the earlier parts of its chapter
        self.part_of = None  # the first part's Page, for the later parts of a chapter

    @property
    def short_title(self):
        """The title in a list of parts ("Part 2: ..." for a later part), else the title."""
        m = PART_TITLE.match(self.title)
        return f"Part {m.group(1)}: {m.group(2)}" if m and self.part_of else self.title

    @property
    def label(self):
        """What figures are numbered after: the chapter's number, or A, B, ... for appendices."""
        return self.letter if self.appendix else str(int(self.stem[:2]))


def split_title(text, fallback):
    """(title, body): the first `# ` heading becomes the page title."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# "):
            return line[2:].strip(), "\n".join(lines[:i] + lines[i + 1 :]) + "\n"
    return fallback, text


def run_pandoc(cmd, name, stdin=None):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=PANDOC_TIMEOUT, input=stdin)
    except subprocess.TimeoutExpired:
        raise BookError(f"pandoc took more than {PANDOC_TIMEOUT}s on {name}") from None
    if r.returncode != 0:
        first = (r.stderr.strip().splitlines() or ["(no message)"])[0]
        raise BookError(f"pandoc failed on {name}: {first}")
    return r.stdout


def chapter_links(line, epub):
    """A link to NN-name.md[#id] made one to NN-name.html[#id]; in the EPUB, one
    book, to the start of that chapter or part (ids of sections repeat across
    chapters, so pandoc renames them there)."""
    if epub:
        return CHAPTER_LINK.sub(lambda m: f"](#{part_id(m.group(1))})", line)
    return CHAPTER_LINK.sub(lambda m: f"]({m.group(1)}.html{m.group(2) or ''})", line)


def part_id(stem):
    return "chapter-" + stem


def pandoc_markdown(page, epub=False):
    """The Markdown pandoc sees: figures numbered, fenced languages named as
    pandoc knows them, links between chapters made to the pages."""
    out, n = [], page.first_figure
    lines = page.body.split("\n")
    for line, code in zip(lines, in_code(lines)):
        if not code:
            line = chapter_links(line, epub)
        m = IMAGE.match(line)
        if m:
            n += 1
            line = f"![[Figure {page.label}.{n}.]{{.figure-number}} {m.group(1)}]({m.group(2)})"
        m = FENCE_LANG.match(line)
        if m and m.group(2) in PANDOC_LANG:
            line = m.group(1) + PANDOC_LANG[m.group(2)]
        out.append(line)
    return "\n".join(out)


def highlight_css():
    """CSS for pandoc's highlighted code, from pandoc's own styles: light, and dark
    when the reader's system asks for it."""
    parts = ["/* Written by book/pages.py from `pandoc --print-highlight-style`: pygments, and breezedark. */"]
    for style, media in HIGHLIGHT:
        theme = json.loads(run_pandoc(["pandoc", "--print-highlight-style", style], f"the {style} style"))
        rules = []
        if theme.get("text-color") or theme.get("background-color"):
            rules.append(
                f"pre.sourceCode {{ color: {theme.get('text-color') or 'inherit'}; "
                f"background-color: {theme.get('background-color') or 'var(--code-bg)'}; }}"
            )
        for token, short in TOKENS.items():
            t = theme["text-styles"].get(token, {})
            rules.append(
                f"code span.{short} {{ color: {t.get('text-color') or 'inherit'}; "
                f"font-weight: {'bold' if t.get('bold') else 'normal'}; "
                f"font-style: {'italic' if t.get('italic') else 'normal'}; "
                f"text-decoration: {'underline' if t.get('underline') else 'none'}; }}"
            )
        if media:
            parts.append(f"@media {media} {{\n" + "\n".join("  " + r for r in rules) + "\n}")
        else:
            parts += rules
    return "\n".join(parts) + "\n"


def nav_html(pages, i):
    """The top bar: the book's title, previous and next."""
    prev = pages[i - 1] if i > 0 else None
    nxt = pages[i + 1] if i + 1 < len(pages) else None
    parts = [
        '<nav class="chapter-nav" aria-label="chapters">',
        f'<a class="home" href="index.html">{TITLE}</a>',
        (
            f'<a class="prev" rel="prev" href="{prev.name}">&larr; {html.escape(prev.title)}</a>'
            if prev
            else '<span class="prev"></span>'
        ),
        (
            f'<a class="next" rel="next" href="{nxt.name}">{html.escape(nxt.title)} &rarr;</a>'
            if nxt
            else '<span class="next"></span>'
        ),
    ]
    return "\n".join(parts) + "\n</nav>\n"


def chapter_list_html(pages, current=None):
    """The sidebar: the chapters, then the appendices (no list numbers: the titles carry them)."""
    out = []
    for part, appendix in (("Chapters", False), ("Appendices", True)):
        items = []
        for p in pages:
            if p.appendix == appendix and not p.part_of:
                items.append(f"<li>{sidebar_link(p, current)}{parts_html(pages, p, current)}</li>")
        if items:
            out.append(f'<p class="sidebar-part">{part}</p><ol class="chapters">' + "".join(items) + "</ol>")
    return "".join(out)


def sidebar_link(p, current):
    mark = ' aria-current="page"' if p.name == current else ""
    return f'<a href="{p.name}"{mark}>{html.escape(p.short_title)}</a>'


def parts_html(pages, head, current=None):
    """The later parts of head's chapter, as a nested list ("" if it has none)."""
    parts = [p for p in pages if p.part_of is head]
    if not parts:
        return ""
    return '<ol class="parts">' + "".join(f"<li>{sidebar_link(p, current)}</li>" for p in parts) + "</ol>"


def labs_by_chapter():
    """{chapter file name: the lab} for every lab of the kit."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from grader import labs

    try:
        return {Path(lab.chapter).name: lab for lab in labs.discover()}
    except labs.LabError:
        return {}


def index_markdown(pages):
    """The front page: an index of the chapters, the labs that go with them, and the appendices."""
    by_chapter = labs_by_chapter()
    lines = [
        "A course in writing a small x86-64 kernel, one lab at a time. Each chapter goes with a lab: it "
        "explains the hardware, walks through the kit's own code, shows real runs (and runs broken on "
        "purpose), and ends with pitfalls and exercises. The whole book is also an EPUB, "
        "[book.epub](book.epub), and the box at the top of every page searches all of it.",
        "",
        "## Chapters and labs",
        "",
        '<ul class="book-index">',
    ]
    for p in pages:
        if p.appendix or p.part_of:
            continue
        lab = by_chapter.get(p.stem + ".md")
        what = ""
        if lab:
            files = ", ".join(f"<code>{html.escape(s)}</code>" for s in lab.student)
            what = (
                f'<span class="lab">Lab {lab.number}, <code>labs/{html.escape(lab.name)}</code>: '
                f"{html.escape(lab.title)}. You edit {files}; the handout is "
                f"<code>labs/{html.escape(lab.name)}/README.md</code>, "
                f"and <code>make grade LAB={lab.number:02d}</code> grades it.</span>"
            )
        else:
            what = '<span class="lab">No lab: how the kit, the grader and the book work.</span>'
        lines.append(f'<li><a href="{p.name}">{html.escape(p.title)}</a>{what}{parts_html(pages, p)}</li>')
    lines += ["</ul>", "", "## Appendices", "", '<ul class="book-index">']
    for p in pages:
        if p.appendix:
            lines.append(f'<li><a href="{p.name}">{html.escape(p.title)}</a></li>')
    lines += ["</ul>", ""]
    return "\n".join(lines)


class SectionText(html.parser.HTMLParser):
    """The text of <main>, cut into sections at each heading that has an id."""

    SKIP = ("script", "style", "nav", "svg")  # a drawn figure's labels are not prose

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections = [["", "", []]]  # [id, heading, [text]]
        self.in_main = 0
        self.skipping = []  # the tags whose text is left out, innermost last
        self.heading = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "main":
            self.in_main += 1
        if not self.in_main:
            return
        if tag in self.SKIP or (tag == "a" and a.get("aria-hidden") == "true"):
            self.skipping.append(tag)
        if tag in ("h2", "h3", "h4") and a.get("id"):
            self.sections.append([a["id"], "", []])
            self.heading = tag
        if tag in ("p", "li", "pre", "div", "tr", "br", "figcaption"):
            self.sections[-1][2].append("\n")

    def handle_endtag(self, tag):
        if tag == "main":
            self.in_main -= 1
        if not self.in_main:
            return
        if self.skipping and tag == self.skipping[-1]:
            self.skipping.pop()
        if tag == self.heading:
            self.heading = None

    def handle_data(self, data):
        if not self.in_main or self.skipping:
            return
        if self.heading:
            self.sections[-1][1] += data
        else:
            self.sections[-1][2].append(data)


def section_texts(page_html):
    p = SectionText()
    p.feed(page_html)
    out = []
    for sid, heading, parts in p.sections:
        text = re.sub(r"[ \t]+", " ", "".join(parts))
        text = re.sub(r"\s*\n\s*", "\n", text).strip()
        if text or heading:
            out.append((sid, heading.strip(), text))
    return out


def search_index(pages, folder):
    """search-index.js: every section of every page, for search.js."""
    listed, sections = [], []
    for n, p in enumerate(pages):
        listed.append({"url": p.name, "title": p.title})
        for sid, heading, text in section_texts((folder / p.name).read_text()):
            sections.append([n, sid, heading or p.title, text])
    data = json.dumps({"pages": listed, "sections": sections}, ensure_ascii=False, separators=(",", ":"))
    (folder / "search-index.js").write_text(
        "/* The book's search index, written by book/pages.py; search.js reads it. */\n"
        f"window.BOOK_SEARCH = {data};\n"
    )
    return len(sections)


def metadata_args():
    return ["--metadata-file", str(METADATA)] if METADATA.is_file() else []


def html_page(page, pages, i, tmp, out):
    src = tmp / f"{i}.md"
    src.write_text(pandoc_markdown(page))
    nav = tmp / f"{i}-nav.html"
    nav.write_text(nav_html(pages, i))
    run_pandoc(
        ["pandoc", "--standalone", "--toc", "--toc-depth=2", "--from", "markdown-smart", "--to", "html5"]
        + metadata_args()
        + ["--template", str(STYLE / "template.html"), "--metadata", f"title={page.title}"]
        + ["--metadata", f"pagetitle={page.title} - {TITLE}"]
        + ["--variable", f"chapters={chapter_list_html(pages, page.name)}"]
        + ["--css", "book.css", "--css", "highlight.css"]
        + ["--include-before-body", str(nav), "--include-after-body", str(nav)]
        + ["--output", str(out / page.name), str(src)],
        page.name,
    )


def number(pages):
    """The appendices lettered; the later parts of a chapter tied to its first
    (the pages of one NN-), their figures numbered on from the parts before."""
    for k, p in enumerate(x for x in pages if x.appendix):
        p.letter = chr(ord("A") + k)
    figures = {}  # label: figures so far
    for k, p in enumerate(pages):
        p.part_of = next((q for q in pages[:k] if q.stem[:3] == p.stem[:3]), None)
        p.first_figure = figures.get(p.label, 0)
        figures[p.label] = p.first_figure + sum(1 for line in p.body.split("\n") if IMAGE.match(line))


def build(chapters, out):
    """chapters: [(stem, Markdown without directives)]. Writes the HTML pages,
    index.html, book.epub, the styles, the figures and the search index into
    `out`; returns the paths of the pages and the EPUB."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    for svg in (BOOK / "figures").glob("*.svg"):
        shutil.copy2(svg, out / "figures" / svg.name)
    for name in ("book.css", "search.js"):
        shutil.copy2(STYLE / name, out / name)
    (out / "highlight.css").write_text(highlight_css())
    pages = []
    for stem, text in chapters:
        title, body = split_title(text, stem)
        pages.append(Page(stem, title, body))
    number(pages)
    with tempfile.TemporaryDirectory(prefix="book-") as tmp:
        tmp = Path(tmp)
        for i, page in enumerate(pages):
            html_page(page, pages, i, tmp, out)
        index = tmp / "index.md"
        index.write_text(index_markdown(pages))
        run_pandoc(
            ["pandoc", "--standalone", "--from", "markdown-smart", "--to", "html5"]
            + metadata_args()
            + ["--template", str(STYLE / "template.html"), "--metadata", f"title={TITLE}"]
            + ["--variable", f"chapters={chapter_list_html(pages)}", "--variable", "index=1"]
            + ["--css", "book.css", "--css", "highlight.css", "--output", str(out / "index.html"), str(index)],
            "index.html",
        )
        epub_sources = []
        for i, page in enumerate(pages):
            src = tmp / f"epub-{i}.md"
            src.write_text(f"# {page.title} {{#{part_id(page.stem)}}}\n\n{pandoc_markdown(page, epub=True)}")
            epub_sources.append(str(src))
        run_pandoc(
            ["pandoc", "--from", "markdown-smart", "--to", "epub3", "--toc", "--toc-depth=2"]
            + metadata_args()
            + ["--metadata", f"title={TITLE}", "--css", str(STYLE / "epub.css"), "--resource-path", str(BOOK)]
            + ["--output", str(out / "book.epub")]
            + epub_sources,
            "book.epub",
        )
    search_index(pages, out)
    return [out / p.name for p in pages] + [out / "index.html", out / "book.epub"]
