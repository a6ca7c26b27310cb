"""The book's drawn figures: SVG files under book/figures/, written by
`python3 book/build.py --sync` and checked by the tests. (stub)"""
from pathlib import Path

BOOK = Path(__file__).resolve().parent
FIGURES = {}


def write_all(out=print):
    return 0


def check_all():
    return []
