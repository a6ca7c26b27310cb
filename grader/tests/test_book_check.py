"""make book-check: the HTML book in headless Chromium at 1200, 600 and 400 px, and the EPUB.
Runs when chromium is installed (make book-check installs it; the test group
does not, it is large) and skips with the reason otherwise. The maintainers'
tests: a students' copy holds the same book, checked here (a handout leaves
them out, and the students' suite stays short)."""
import shutil
import subprocess
import sys

import pytest

from grader import labs

ROOT = labs.ROOT
pytestmark = [
    pytest.mark.skipif(
        not (shutil.which("chromium") and shutil.which("pandoc")),
        reason="chromium or pandoc is not installed: `make book-check` installs both "
        "(apt-get install --no-install-recommends chromium pandoc)",
    ),
    pytest.mark.slow,
    pytest.mark.instructor,
]


def browser_check(folder):
    return subprocess.run(
        [sys.executable, "book/build.py", "--browser-check", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_the_committed_book_passes_in_a_real_browser():
    r = subprocess.run([sys.executable, "book/build.py"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    r = browser_check(ROOT / "build" / "book")
    assert r.returncode == 0 and "0 problems" in r.stdout, r.stdout + r.stderr


def test_a_wrapped_figure_and_a_broken_link_fail(tmp_path):
    shutil.copy2(ROOT / "book" / "style" / "book.css", tmp_path / "book.css")
    figure = "\n".join(
        " 0x%08x +%s+ a line of a text figure, longer than a phone is wide" % (i, "-" * 24) for i in range(3)
    )
    (tmp_path / "wrapped.html").write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="stylesheet" href="book.css">'
        "<style>pre.figure { white-space: pre-wrap; }</style></head><body><main>"
        f'<pre class="figure">{figure}</pre></main></body></html>'
    )
    (tmp_path / "links.html").write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="stylesheet" href="book.css"></head><body>'
        '<main><p><a href="wrapped.html">fine</a> <a href="03-bss-heap.html">a chapter that is not there</a> '
        '<a href="wrapped.html#no-such-section">an anchor that is not there</a></p>'
        '<img src="figures/missing.svg" alt="a figure that is not there"></main></body></html>'
    )
    r = browser_check(tmp_path)
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert "wrapped.html at 600 px: pre" in out and "a line wraps" in out and "white-space is pre-wrap" in out
    assert 'links.html: <a href="03-bss-heap.html">: 03-bss-heap.html does not exist' in out
    assert "no anchor #no-such-section in wrapped.html" in out
    assert "links.html at 1200 px: image figures/missing.svg did not load" in out
    assert '<a href="wrapped.html">:' not in out


def test_a_javascript_error_and_a_pre_without_scrollbar_fail(tmp_path):
    (tmp_path / "page.html").write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        '<pre style="overflow: visible">' + "x" * 400 + "</pre><script>no_such_function();</script></body></html>"
    )
    r = browser_check(tmp_path)
    assert r.returncode == 1
    assert "javascript error: Uncaught ReferenceError" in r.stdout
    assert "with no scrollbar (overflow-x visible)" in r.stdout


def test_a_phone_a_scroll_without_cue_and_small_figure_text_fail(tmp_path):
    """At 400 px (a frame: Chromium will not open so narrow a window) a
    480 px wide box makes the page scroll; a pre that scrolls with a plain
    background gives no cue; a 640-unit figure with 11-unit text shown 300
    px wide has 5 px text."""
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "small.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="100" viewBox="0 0 640 100">'
        '<text x="10" y="50" font-size="11">tiny</text></svg>'
    )
    (tmp_path / "phone.html").write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        "</head><body><div style='width: 480px'>a box of 480 px</div>"
        '<pre style="overflow-x: auto; background: #eee">' + "y" * 300 + "</pre>"
        '<figure style="margin: 0"><img src="figures/small.svg" style="width: 300px" alt="small"></figure>'
        "</body></html>"
    )
    r = browser_check(tmp_path)
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert "phone.html at 400 px: the page scrolls sideways: 488 px in a window of 400 px" in out, out  # 8 px of margin
    assert "phone.html at 600 px: the page scrolls sideways" not in out, out
    assert "phone.html at 1200 px: pre `yyyy" in out and "with no visible cue" in out, out
    assert "phone.html at 1200 px: figure figures/small.svg: its smallest text is 5.2 px at 300 px wide" in out, out
    assert "laid out" not in out, out  # each size is the width the page really had


def test_an_epub_whose_figure_wraps_fails(tmp_path):
    """The EPUB's pages are unpacked and loaded like the HTML's."""
    import zipfile

    page = (
        '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml">'
        "<head><title>c</title><style>code { white-space: pre-wrap; }</style></head><body>"
        "<pre><code>" + " ".join(["0x00108000"] * 30) + "</code></pre></body></html>"
    )
    with zipfile.ZipFile(tmp_path / "book.epub", "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("EPUB/text/ch001.xhtml", page)
    (tmp_path / "index.html").write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body></body></html>')
    r = browser_check(tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "book.epub: ch001.xhtml at 400 px: pre `0x00108000" in r.stdout and "a line wraps" in r.stdout, r.stdout
