"""Lab 02's computed checks: the kprintf self-test values are drawn from the
per-run seed exactly as serial.c draws them, and the deliberate panic must
name the file and line of its call and power off with EXIT_PANIC. What the
UART was programmed with, and how each byte reached it, QEMU's serial trace
events show (every register write and read, in order); the kernel waits at
power-off while the grader reads where its console points."""
from grader.api import (
    Fail,
    at_power_off,
    check,
    end_of_run,
    observed,
    qemu_exit_status,
    seen_memory,
    sequence,
    serial_trace,
    signed,
    values,
)

BOOTS = {"panic": "panic"}
TRACE = ("serial_write", "serial_read")  # QEMU 7.2's trace events of its 16550, into the -D log
INTERACTION = at_power_off(launch={"trace": TRACE})


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


LENGTHS = ("n_width", "n_s")  # the lengths of two lines: their widths are fixed, so the same on every run


@values(seeded=True)
def kprintf_expected(ctx):
    return {k: v for k, v in kprintf_values(ctx.seed).items() if k not in LENGTHS}


@values
def kprintf_lengths(ctx):
    return {k: v for k, v in kprintf_values(ctx.seed).items() if k in LENGTHS}


# The edge values are the same on every run: they count where the seeded
# values print right too (the same kvprintf's work on this run's seed).
BACKED_BY = {"kprintf: edge values": "kprintf: %d %u %x"}


def panic_site(lab):
    """labs/<this lab>/serial.c and the line of its `/* panic-test */` call."""
    path = lab.dir / "serial.c"
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if "panic-test" in line:
            return f"labs/{lab.name}/serial.c", n
    raise Fail(f"{path} has no panic-test line")


def panic_number(seed, defines):
    """The number the deliberate panic's message holds (serial_selftest)."""
    return signed(next(sequence(seed ^ defines["SERIAL_PANIC_FAMILY"])) | 1 << 31, 32)


@check("panic: file, line and failure exit", 10, boot="panic", seeded=True)
def panic_report(ctx):
    lab = ctx.lab
    file, line = panic_site(lab)
    want = (
        f"[panic] {file}:{line}: deliberate panic, seed 0x{ctx.seed & 0xFFFFFFFF:x}, "
        f"check {panic_number(ctx.seed, ctx.defines)}"
    )
    got = ctx.find("[panic]")
    if not got and not ctx.boot.lines:
        raise Fail(
            f"with tests=panic, expected `{want}`; the kernel printed nothing at all in this boot, "
            "so the serial driver is the first suspect, not kpanic"
        )
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


# What QEMU saw of the UART (its serial trace) and of the console (memory).
COM1 = "[serial] COM1: "
MOVED = "[serial] console moved to serial_putc"
FLUSHED = "[serial] serial_flush: the transmitter is empty"
MCR_DTR_RTS_OUT2, LOOPBACK_BYTE = 0x0B, 0xAE  # uart.h, serial.h


def sent_from(trace, text):
    """The lines the UART sent from the first one whose text is `text` on."""
    at = trace.first(text)
    return [] if at is None else trace.lines[at:]


@observed("serial: serial_init passes its loopback test")
def loopback_seen(ctx):
    trace = serial_trace(ctx)
    if (LOOPBACK_BYTE, LOOPBACK_BYTE) not in trace.loopback:
        raise Fail(
            f"QEMU's serial trace shows no byte 0x{LOOPBACK_BYTE:x} sent and read back in loopback mode "
            f"(MCR bit 4): {len(trace.loopback)} loopback byte(s), {trace.writes} register writes in all"
        )
    if trace.mcr != MCR_DTR_RTS_OUT2:
        raise Fail(f"QEMU's serial trace shows MCR left at 0x{trace.mcr:02x}, not DTR, RTS and OUT2 (0x0b)")


@observed("serial: divisor, 8N1 and FIFO programmed")
def settings_seen(ctx):
    """Each `[serial] COM1:` line went out while the UART had the settings
    it names, and the last line went out at 115200 baud, 8N1, FIFOs on."""
    trace = serial_trace(ctx)
    for sent in trace.lines:
        if sent.text.startswith(COM1) and sent.text != COM1 + str(sent.settings):
            raise Fail(
                f"the kernel said `{sent.text}` while QEMU's UART had {sent.settings} "
                "(QEMU's serial trace of the register writes)"
            )
    want = "divisor 1 (115200 baud), LCR 0x03, FIFO on"
    last = trace.lines[-1] if trace.lines else None
    if last is None:
        raise Fail("QEMU's serial trace shows no line sent: serial_init did not program the UART")
    if str(last.settings) != want:
        raise Fail(
            f"QEMU's serial trace shows the kernel's last line sent at {last.settings}, not {want}: "
            + "; ".join(setting_errors(last.settings))
            + " (serial_init, labs/02-serial/uart.c)"
        )


def setting_errors(got):
    """What differs from 115200 baud, 8N1, FIFOs on, register by register."""
    errors = []
    if got.divisor != 1:
        errors.append(
            f"the divisor latch holds {got.divisor}, not 1 (DLL, then DLM, each written while LCR.DLAB is set)"
        )
    if got.lcr != 0x03:
        errors.append(f"LCR is 0x{got.lcr:02x}, not 0x03 (8 data bits, no parity, 1 stop bit, DLAB clear)")
    if not got.fifo:
        errors.append("the FIFOs are off (FCR bit 0 enables them)")
    return errors


@observed("serial: every line goes through serial_putc")
def putc_seen(ctx):
    """The console points at serial_putc at the end, and each byte sent after
    the console moved was written once LSR had been read (polled)."""
    sink = seen_memory(ctx).u64(ctx.symbols["con_sink"])
    if sink != ctx.symbols.get("serial_putc"):
        name = ctx.symbols.code_symbol(sink) or "nowhere in the kernel"
        raise Fail(f"in memory, con_sink points at 0x{sink:x} ({name}), not at serial_putc")
    after = sent_from(serial_trace(ctx), MOVED)
    unpolled = sum(1 for sent in after for n in sent.polls if n == 0)
    if not after or unpolled:
        raise Fail(
            f"QEMU's serial trace shows {unpolled} byte(s) written to THR without a read of LSR before them: "
            "serial_putc must wait for LSR.THRE"
            if after
            else f"QEMU's serial trace shows no `{MOVED}` line"
        )


@observed("serial: serial_flush waits until the transmitter is empty")
def flush_seen(ctx):
    """serial.c sends the start of the flush line, `[serial] serial_flush: `,
    then calls serial_flush: before the next byte LSR is read by serial_flush,
    by serial.c, then by serial_putc, more often than serial_putc alone reads
    it before a byte."""
    trace = serial_trace(ctx)
    at = trace.first(FLUSHED)
    k = len(FLUSHED) - len("the transmitter is empty")
    if at is None or len(trace.lines[at].polls) <= k:
        raise Fail(f"QEMU's serial trace shows no `{FLUSHED}` line")
    polls = trace.lines[at].polls
    per_byte = min(polls[1:k], default=1)
    reads = polls[k]
    if reads < per_byte + 2:
        raise Fail(
            f"QEMU's serial trace shows {reads} read(s) of LSR where the flush line's serial_flush ran, "
            f"as many as serial.c and serial_putc make: serial_flush never read LSR"
        )
