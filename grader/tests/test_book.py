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
