"""Instructors only: the student handout leaves this folder out.

Lab 03's allocation self-test once more, on a seed of another family: the
first seed (in a sequence drawn from this run's seed) whose ten blocks ask
for 4096-byte alignment at least four times, so the padding before a block
is often most of a page, and exhaustion starts from an odd offset.
"""
from grader.api import Boot, check, sequence, transcript_again

from ..checks import ALIGNS, BLOCKS, heap_values

VISIBILITY = "after_due_date"
FAMILY = 0x5EED0003
PAGE_ALIGNED_BLOCKS = 4


def page_aligns(seed):
    r = sequence(seed)
    count = 0
    for _ in range(BLOCKS):
        next(r)  # the size
        count += ALIGNS[next(r) % len(ALIGNS)] == 4096
    return count


def page_aligned_seed(seed):
    for candidate in sequence(seed ^ FAMILY):
        s = candidate & 0xFFFFFFFF
        if s and page_aligns(s) >= PAGE_ALIGNED_BLOCKS:
            return s


BOOTS = {"page-aligned": Boot("all", seed=page_aligned_seed)}


@check("heap again: page-aligned blocks, another seed family", 10, boot="page-aligned", seeded=True)
def heap_on_page_aligned_blocks(ctx):
    transcript_again(
        ctx, ("heap: allocation sequence", "heap: write/read", "heap: used", "heap: exhaustion"), heap_values(ctx.seed)
    )
