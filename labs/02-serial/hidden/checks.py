"""Instructors only: the student handout leaves this folder out.

Lab 02's kprintf self-test once more, on a seed of another family: the
visible checks use this run's seed, whose padded numbers almost always have
three digits; this boot's seed is the first one (in a sequence drawn from
this run's seed) whose padded number has one digit and whose negative
number has at most two, so `%6d`, `%06d` and a sign before zeros are
tested where most padding is needed.
"""
from grader.api import Boot, check, sequence, transcript_again

from ..checks import kprintf_values

VISIBILITY = "after_due_date"
FAMILY = 0x5EED0002  # the family's seeds are drawn from this run's seed xor FAMILY


def short_numbers_seed(seed):
    for candidate in sequence(seed ^ FAMILY):
        s = candidate & 0xFFFFFFFF
        v = kprintf_values(s)
        if s and len(v["width"].strip()) == 1 and int(v["neg"]) > -100:
            return s


BOOTS = {"short-numbers": Boot("kprintf", seed=short_numbers_seed)}


@check("kprintf again: one-digit padding, another seed family", 10, boot="short-numbers", seeded=True)
def kprintf_on_short_numbers(ctx):
    transcript_again(ctx, ("kprintf:",), kprintf_values(ctx.seed))
