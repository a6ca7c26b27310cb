"""Load every page of the built book in headless Chromium and check it as a
reader would see it, at 1200 px and at 600 px (a phone).

    python3 book/build.py --browser-check [DIR]      (make book-check)

For each page, a copy with book/style/check.js injected is loaded with
`chromium --headless --dump-dom`; the script measures the laid-out page and
writes its findings into the DOM. It fails on:
  - a pre (code, transcript or text figure) whose content is wider than its
    box without a scrollbar, whose computed white-space is not `pre`, or
    whose lines take more line boxes than they have newlines (a wrap);
  - a figure wider than its box, a page that scrolls sideways;
  - an image that did not load (naturalWidth 0), a JavaScript error;
and, read from the HTML itself, a relative link to a file or an anchor that
does not exist; and book.epub with epubcheck, when Debian's epubcheck is
installed. Nothing is downloaded: the pages are files, and Chromium
runs with a new empty profile and no network features.
"""
import html.parser
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "build" / "book"
SCRIPT = Path(__file__).resolve().parent / "style" / "check.js"
SIZES = ((1200, 900), (600, 900))
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
    "--virtual-time-budget=3000",
    "--dump-dom",
]
RESULT = re.compile(r'<pre id="book-check-result"[^>]*>(.*?)</pre>', re.S)


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
            if a.get(key) and not (tag == "link" and a.get("rel") == "stylesheet" and key == "href" and False):
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
        if parts.fragment and target.suffix == ".html":
            if target not in cache:
                cache[target] = parse(target)
            if unquote(parts.fragment) not in cache[target].ids:
                problems.append(f'{page.name}: <{tag} {key}="{url}">: no anchor #{parts.fragment} in {target.name}')
    return problems


def load(exe, page, size, profile):
    """The findings of check.js for one page at one window size."""
    text = page.read_text(errors="replace")
    probe = page.with_name(f".check-{page.name}")
    tag = f"<script>{SCRIPT.read_text()}</script>"
    probe.write_text(text.replace("<head>", "<head>\n" + tag, 1) if "<head>" in text else tag + text)
    try:
        cmd = (
            [exe]
            + FLAGS
            + [f"--window-size={size[0]},{size[1]}", f"--user-data-dir={profile}", probe.resolve().as_uri()]
        )
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, start_new_session=True)
        except subprocess.TimeoutExpired:
            return [f"chromium took more than {TIMEOUT}s"]
    finally:
        probe.unlink(missing_ok=True)
    m = RESULT.search(r.stdout)
    if not m:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return [f"the check script left no result (chromium exit {r.returncode}: {tail})"]
    import html as h

    return json.loads(h.unescape(m.group(1)))


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
        for size in SIZES:
            for n, page in enumerate(pages):
                profile = Path(tmp) / f"profile-{size[0]}-{n}"
                profile.mkdir()
                for finding in load(exe, page, size, profile):
                    problems.append(f"{page.name} at {size[0]} px: {finding}")
    out(
        f"book-check: {len(pages)} pages at {' and '.join(str(s[0]) for s in SIZES)} px: "
        f"{len(problems)} problem{'s' * (len(problems) != 1)}"
    )
    return problems


EPUBCHECK_JAR = Path("/usr/share/java/epubcheck.jar")  # Debian's epubcheck (it needs a Java runtime)


def epub_problems(folder, out=print):
    """epubcheck's errors for book.epub, when Debian's epubcheck is installed."""
    epub = Path(folder) / "book.epub"
    if not epub.is_file():
        return []
    if not (EPUBCHECK_JAR.is_file() and shutil.which("java")):
        out(
            "book-check: epubcheck is not installed (apt-get install epubcheck, which brings a Java runtime): "
            "book.epub not validated"
        )
        return []
    try:
        r = subprocess.run(["java", "-jar", str(EPUBCHECK_JAR), str(epub)], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return ["epubcheck took more than 300s"]
    if r.returncode == 0:
        out("book-check: epubcheck: book.epub has no errors or warnings")
        return []
    return [
        f"book.epub: {ln}" for ln in (r.stdout + r.stderr).splitlines() if ln.startswith(("ERROR", "FATAL", "WARN"))
    ] or [f"book.epub: epubcheck exit status {r.returncode}"]


def main(argv):
    folder = Path(argv[0]) if argv else DEFAULT_DIR
    try:
        problems = check_dir(folder) + epub_problems(folder)
    except FileNotFoundError as e:
        print(f"book-check: {e}", file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
