"""Load every page of the built book in headless Chromium and check it as a
reader would see it: at 1200 px (a laptop), 600 px (a small tablet) and
400 px (a phone), and the pages of book.epub at 600 and 400 px.

    python3 book/build.py --browser-check [DIR]      (make book-check)

For each page, a copy with book/style/check.js injected is loaded with
`chromium --headless --dump-dom`; the script measures the laid-out page and
posts its findings to the page that holds it. Chromium is started once per
page: a page of our own holds the copy in one frame per width (a frame is its
page's viewport, and headless Chromium opens no window narrower than 500 px)
and writes what each frame posts into its DOM. It fails on:
  - a pre (code, transcript or text figure) whose content is wider than its
    box without a scrollbar, or that scrolls sideways with no visible cue
    (book.css shades the edge that has more), whose computed white-space is
    not `pre`, or whose lines take more line boxes than they have newlines
    (a wrap);
  - a figure wider than its box, or scrolling with no cue; a drawn figure
    whose smallest text is drawn smaller than READABLE_PX pixels (the SVG's
    smallest font-size, scaled as the page shows the image);
  - a page that scrolls sideways, an image that did not load, a JavaScript
    error;
and, read from the HTML itself, a relative link to a file or an anchor that
does not exist; and book.epub with epubcheck (Debian's package epubcheck,
which `make book-check` installs). Nothing is downloaded: the pages are
files, and Chromium runs with a new empty profile and no network features.
"""
import html
import html.parser
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "build" / "book"
SCRIPT = Path(__file__).resolve().parent / "style" / "check.js"
SIZES = ((1200, 900), (600, 900), (400, 900))
EPUB_SIZES = ((600, 900), (400, 900))
NARROWEST_WINDOW = 500  # headless Chromium's smallest window: narrower pages go in a frame
READABLE_PX = 9  # the smallest text a drawn figure may show, in CSS pixels
BROWSERS = ("chromium", "chromium-browser")
TIMEOUT = 60
INSTALL = "apt-get install -y --no-install-recommends chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars=false",
    "--allow-file-access-from-files",
    "--virtual-time-budget=4000",
    "--dump-dom",
]
RESULT = re.compile(r'<pre class="book-check-result" data-frame="(\d+)">(.*?)</pre>', re.S)
# One launch of Chromium per page: the page in one frame per window size (a
# frame is its page's viewport: its media queries and its width are the
# frame's), each frame's findings posted to this page and written into its DOM.
FRAMES = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>frames</title></head><body style="margin:0">
{frames}
<script>
window.addEventListener("message", function (e) {{
  var frames = document.getElementsByTagName("iframe");
  for (var i = 0; i < frames.length; i++) {{
    if (frames[i].contentWindow === e.source) {{
      var out = document.createElement("pre");
      out.className = "book-check-result";
      out.setAttribute("data-frame", String(i));
      out.textContent = e.data;
      document.body.appendChild(out);
    }}
  }}
}});
</script></body></html>
"""
FRAME = '<iframe src="{src}" width="{w}" height="{h}" style="border:0;display:block"></iframe>'


def browser():
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for key in ("href", "src"):
            if a.get(key):
                self.links.append((tag, key, a[key]))


def parse(page):
    p = Links()
    p.feed(page.read_text(errors="replace"))
    return p


def link_problems(page, cache):
    """Relative links to files or anchors that do not exist."""
    problems = []
    for tag, key, url in cache[page].links:
        parts = urlsplit(url)
        if parts.scheme or url.startswith("//"):
            continue  # no network: external links are not followed
        target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if not target.exists():
            problems.append(f'{page.name}: <{tag} {key}="{url}">: {unquote(parts.path)} does not exist')
            continue
        if parts.fragment and target.suffix in (".html", ".xhtml"):
            if target not in cache:
                cache[target] = parse(target)
            if unquote(parts.fragment) not in cache[target].ids:
                problems.append(f'{page.name}: <{tag} {key}="{url}">: no anchor #{parts.fragment} in {target.name}')
    return problems


def svg_text_px(svg, shown_width):
    """The size in CSS pixels of the smallest text of an SVG file shown
    `shown_width` pixels wide, or None when it has no text."""
    text = svg.read_text(errors="replace")
    m = re.search(r'<svg[^>]*\bviewBox="[-\d.]+ [-\d.]+ ([\d.]+) [\d.]+"', text) or re.search(
        r'<svg[^>]*\bwidth="([\d.]+)"', text
    )
    sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)', text)]
    if not m or not sizes:
        return None
    return min(sizes) * shown_width / float(m.group(1))


def image_problems(page, images):
    """Drawn figures whose smallest text the page shows too small to read."""
    found = []
    for src, shown, natural in images:
        path = (page.parent / unquote(urlsplit(src).path)).resolve()
        if path.suffix != ".svg" or not path.is_file():
            continue
        px = svg_text_px(path, shown)
        if px is not None and px < READABLE_PX:
            found.append(f"figure {src}: its smallest text is {px:.1f} px at {shown:.0f} px wide (under {READABLE_PX})")
    return found


def load(exe, page, sizes, profile):
    """The findings of check.js for one page at each window size: {size: [finding]}."""
    text = page.read_text(errors="replace")
    probe = page.with_name(f".check-{page.stem}.html")  # an XHTML page of the EPUB is read as HTML
    tag = f"<script>{SCRIPT.read_text()}</script>"
    head = re.search(r"<head[^>]*>", text)
    probe.write_text(text[: head.end()] + "\n" + tag + text[head.end() :] if head else tag + text)
    frames = page.with_name(f".check-frames-{page.stem}.html")
    src = html.escape(probe.name)
    frames.write_text(FRAMES.format(frames="\n".join(FRAME.format(src=src, w=w, h=h) for w, h in sizes)))
    window = (max(NARROWEST_WINDOW, max(w for w, _ in sizes) + 40), sum(h for _, h in sizes))
    try:
        cmd = [exe] + FLAGS + [f"--window-size={window[0]},{window[1]}", f"--user-data-dir={profile}"]
        try:
            r = subprocess.run(
                cmd + [frames.resolve().as_uri()],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired:
            return {size: [f"chromium took more than {TIMEOUT}s"] for size in sizes}
    finally:
        probe.unlink(missing_ok=True)
        frames.unlink(missing_ok=True)
    results = {int(n): body for n, body in RESULT.findall(r.stdout)}
    found = {}
    for n, size in enumerate(sizes):
        if n not in results:
            tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
            found[size] = [f"the check script left no result (chromium exit {r.returncode}: {tail})"]
            continue
        result = json.loads(html.unescape(results[n]))
        found[size] = result["found"] + image_problems(page, result["images"])
        if abs(result["width"] - size[0]) > 20:
            found[size].append(f"the page was laid out {result['width']} px wide, not {size[0]}")
    return found


def check_pages(exe, pages, sizes, tmp, label=lambda p: p.name):
    problems = []
    found = {}
    for n, page in enumerate(pages):
        profile = Path(tmp) / f"profile-{n}-{page.stem}"
        profile.mkdir()
        found[page] = load(exe, page, sizes, profile)
    for size in sizes:
        for page in pages:
            problems += [f"{label(page)} at {size[0]} px: {finding}" for finding in found[page][size]]
    return problems


def check_dir(folder, out=print):
    """Every problem of every page, as lines; [] when the book is clean."""
    folder = Path(folder)
    pages = sorted(p for p in folder.glob("*.html") if not p.name.startswith(".check-"))
    if not pages:
        return [f"no pages (*.html) in {folder}"]
    exe = browser()
    if exe is None:
        raise FileNotFoundError(f"chromium is missing; install it (as root) with: {INSTALL}")
    cache = {p: parse(p) for p in pages}
    problems = []
    for page in pages:
        problems += link_problems(page, cache)
    with tempfile.TemporaryDirectory(prefix="book-chromium-") as tmp:
        problems += check_pages(exe, pages, SIZES, tmp)
    out(
        f"book-check: {len(pages)} pages at {', '.join(str(s[0]) for s in SIZES)} px: "
        f"{len(problems)} problem{'s' * (len(problems) != 1)}"
    )
    return problems


def epub_pages(folder, out=print):
    """The pages of book.epub, unpacked and loaded like the HTML's, at a
    tablet's and a phone's width; [] when there is no book.epub."""
    epub = Path(folder) / "book.epub"
    if not epub.is_file():
        return []
    exe = browser()
    if exe is None:
        raise FileNotFoundError(f"chromium is missing; install it (as root) with: {INSTALL}")
    with tempfile.TemporaryDirectory(prefix="book-epub-") as tmp:
        unpacked = Path(tmp) / "epub"
        try:
            with zipfile.ZipFile(epub) as z:
                for name in z.namelist():
                    if name.startswith("/") or ".." in Path(name).parts:
                        return [f"book.epub: a member outside the book: {name}"]
                z.extractall(unpacked)
        except zipfile.BadZipFile as e:
            return [f"book.epub: {e}"]
        pages = sorted(unpacked.rglob("*.xhtml"))
        cache = {p: parse(p) for p in pages}
        problems = []
        for page in pages:
            problems += [f"book.epub: {p}" for p in link_problems(page, cache)]
        problems += check_pages(exe, pages, EPUB_SIZES, tmp, label=lambda p: f"book.epub: {p.name}")
    out(
        f"book-check: book.epub, {len(pages)} pages at {', '.join(str(s[0]) for s in EPUB_SIZES)} px: "
        f"{len(problems)} problem{'s' * (len(problems) != 1)}"
    )
    return problems


EPUBCHECK_JAR = Path("/usr/share/java/epubcheck.jar")  # Debian's epubcheck (it needs a Java runtime)
EPUBCHECK_TIMEOUT = 600


def epub_problems(folder, out=print):
    """epubcheck's errors for book.epub, when Debian's epubcheck is installed."""
    epub = Path(folder) / "book.epub"
    if not epub.is_file():
        return []
    if not (EPUBCHECK_JAR.is_file() and shutil.which("java")):
        out(
            "book-check: epubcheck is not installed (apt-get install epubcheck, which brings a Java runtime; "
            "`make book-check` installs it as root): book.epub not validated"
        )
        return []
    try:
        r = subprocess.run(
            ["java", "-jar", str(EPUBCHECK_JAR), str(epub)],
            capture_output=True,
            text=True,
            timeout=EPUBCHECK_TIMEOUT,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        return [f"epubcheck took more than {EPUBCHECK_TIMEOUT}s"]
    if r.returncode == 0:
        out("book-check: epubcheck: book.epub has no errors or warnings")
        return []
    return [
        f"book.epub: {ln}" for ln in (r.stdout + r.stderr).splitlines() if ln.startswith(("ERROR", "FATAL", "WARN"))
    ] or [f"book.epub: epubcheck exit status {r.returncode}"]


def main(argv):
    folder = Path(argv[0]) if argv else DEFAULT_DIR
    try:
        problems = check_dir(folder) + epub_pages(folder) + epub_problems(folder)
    except FileNotFoundError as e:
        print(f"book-check: {e}", file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
