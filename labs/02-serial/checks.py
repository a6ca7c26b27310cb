"""Lab 02's computed checks: the kprintf self-test values are drawn from the
per-run seed exactly as serial.c draws them, and the deliberate panic must
name the file and line of its call and power off with EXIT_PANIC."""
from grader.api import Fail, check, end_of_run, qemu_exit_status, sequence, signed, values

BOOTS = {"panic": "panic"}


def kprintf_values(seed):
    """What kprintf_selftest (serial.c) prints for this seed: its values keep
    their top bits set, so %d and %ld are negative, and %u and %lu above any
    signed value with a letter for their first hex digit, on every run.
    Twin: kprintf_selftest in labs/02-serial/serial.c prints these."""
    r = sequence(seed)
    d = signed(next(r) | 1 << 31, 32)
    u = next(r) & 0xFFFFFFFF | 0xA << 28
    ld = signed(next(r) | 1 << 63, 64)
    lu = next(r) | 0xA << 60
    small = next(r) % 1000
    neg = -(next(r) % 1000) - 1
    word = "".join(chr(ord("a") + next(r) % 26) for _ in range(7))
    c = chr(ord("A") + next(r) % 26)
    p = next(r) >> 16
    v = {
        "d": "%d" % d,
        "u": "%d" % u,
        "x": "%x" % u,
        "ld": "%d" % ld,
        "lu": "%d" % lu,
        "lx": "%x" % lu,
        "width": "%6d" % small,
        "zero": "%06d" % small,
        "neg": "%06d" % neg,
        "nwidth": "%6d" % neg,
        "hex8": "%08x" % small,
        "s": word,
        "ws": "%10s" % word,
        "c": c,
        "p": "0x%016x" % p,
    }
    width_line = "[kprintf] width=[{width}] zero=[{zero}] neg=[{neg}] nwidth=[{nwidth}] hex=[{hex8}]\n".format(**v)
    s_line = "[kprintf] s={s} ws=[{ws}] c={c} pct=% p={p}\n".format(**v)
    return dict(v, n_width=len(width_line), n_s=len(s_line))


@values(seeded=True)
def kprintf_expected(ctx):
    return kprintf_values(ctx.seed)


def panic_site(lab):
    """labs/<this lab>/serial.c and the line of its `/* panic-test */` call."""
    path = lab.dir / "serial.c"
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if "panic-test" in line:
            return f"labs/{lab.name}/serial.c", n
    raise Fail(f"{path} has no panic-test line")


@check("panic: file, line and failure exit", 10, boot="panic", seeded=True)
def panic_report(ctx):
    lab = ctx.lab
    file, line = panic_site(lab)
    want = f"[panic] {file}:{line}: deliberate panic, seed 0x{ctx.seed & 0xFFFFFFFF:x}"
    got = ctx.find("[panic]")
    if not got:
        raise Fail(
            f"with tests=panic, expected `{want}`; no [panic] line was printed "
            f"(kpanic in labs/{lab.name}/kprintf.c)",
            [f"last output: {ln}" for ln in ctx.boot.last_lines()],
        )
    if got[0] != want:
        raise Fail(f"expected `{want}`, got `{got[0]}`")
    outcome = ctx.boot.outcome
    if outcome is None or outcome.kind != "panic" or ctx.find("[power] off:") != ["[power] off: panic"]:
        problem = end_of_run(ctx.boot)
        raise Fail(
            "panic must power off with EXIT_PANIC (QEMU exit status "
            f"{qemu_exit_status(ctx.stage, 'PANIC')}); got: {problem[0] if problem else 'a clean power-off'}"
        )
