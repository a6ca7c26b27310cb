"""The book: every listing reference resolves to our own given code."""
import subprocess
import sys

from grader import labs


def test_book_listings_resolve():
    r = subprocess.run([sys.executable, "book/build.py", "--check"], cwd=labs.ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_lab_has_a_chapter_and_a_handout():
    for lab in labs.discover():
        assert (labs.ROOT / lab.chapter).is_file(), lab.chapter
        handout = (lab.dir / "README.md").read_text()
        assert lab.chapter in handout and all(name in handout for name in lab.student)


def test_a_broken_listing_or_figure_is_reported(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("book_build", labs.ROOT / "book" / "build.py")
    book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(book)
    ch = tmp_path / "99-broken.md"
    ch.write_text("# Broken\n\n<!-- listing: labs/01-boot/kmain.c no_such_function -->\n\n"
                  "<!-- listing: solutions/01-boot/mb2.c mb2_parse -->\n\n<!-- figure: memory-layout 77 -->\n")
    problems = book.check([ch])
    assert len(problems) == 3, problems
    assert "no_such_function" in problems[0] and "solutions" in problems[1] and "77" in problems[2]
