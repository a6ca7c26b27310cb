"""Fenced code blocks in a chapter's Markdown: which lines are prose."""
import re

FENCE = re.compile(r"^\s*(```+|~~~+)")


def in_code(lines):
    """For each line, True when it opens, closes or lies inside a fenced
    block. A block closes at a fence of the same character, at least as long
    as the one that opened it, with nothing after it."""
    marks, fence = [], None
    for line in lines:
        m = FENCE.match(line)
        if m:
            mark = m.group(1)
            if fence is None:
                fence = mark
            elif mark[0] == fence[0] and len(mark) >= len(fence) and not line.strip()[len(mark) :].strip():
                fence = None
            marks.append(True)
        else:
            marks.append(fence is not None)
    return marks
