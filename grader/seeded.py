"""The seeded sequence the kernel's self-tests draw from (seed_next in the
kernel's cmdline.c): the seed comes on the kernel command line, and the
grader draws the same numbers to compute what each self-test must print."""
MASK64 = (1 << 64) - 1


def sequence(seed):
    """splitmix64 from `seed`, as seed_next() in the kernel.
    Twin: seed_next in the kernel's cmdline.c."""
    state = seed & MASK64
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        yield z ^ (z >> 31)


def signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v
