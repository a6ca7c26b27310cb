"""Lab 02's deliberate breaks (grader/mutants.py runs them)."""
from pathlib import Path

from grader.mutants import SEED, check_of, earned_without_work, forger, mutant, skeleton

from .checks import kprintf_values

LAB = Path(__file__).parent


@mutant("02", skeleton=True, below=True, also=[{"emulator": "bochs"}])
def skeleton_on_reference_lab_01_fails_exactly_lab_02(st, under_bochs):
    assert st.score == 0  # the clean power-off alone does not prove that the output belongs to this run
    assert check_of(st, "power").message.startswith(
        "no points from this boot: none of its lines that depend on this run's seed matched"
    )
    assert "serial_init returned an error" in st.boots["default"].text
    v = kprintf_values(SEED)
    assert (
        check_of(st, "kprintf: %d %u %x").message
        == f"expected `[kprintf] d={v['d']} u={v['u']} x={v['x']}`, got `[kprintf] d=%d u=%u x=%x`"
    )
    assert "forbidden" not in check_of(st, "serial: serial_init").message
    assert "no [panic] line was printed" in check_of(st, "panic").message
    assert "got `[kprintf] d=%d u=%u x=%x`" in check_of(under_bochs, "kprintf: %d %u %x").message
    assert check_of(under_bochs, "serial: divisor").message.endswith(
        "got `[serial] COM1: divisor 3 (38400 baud), LCR 0x03, FIFO off`"
    )


@mutant("02", skeleton=True)
def skeleton_alone_points_at_lab_01(st):
    assert st.score == 0 and "BELOW=solutions" in st.stopped


def fake_selftest(seed):
    """A kprintf self-test that prints the text another run (seed 1) expected."""
    v = kprintf_values(seed)
    return (
        f'    con_puts("[kprintf] d={v["d"]} u={v["u"]} x={v["x"]}\\n'
        f'[kprintf] ld={v["ld"]} lu={v["lu"]} lx={v["lx"]}\\n'
        f'[kprintf] width=[{v["width"]}] zero=[{v["zero"]}] neg=[{v["neg"]}] hex=[{v["hex8"]}]\\n'
        f'[kprintf] s={v["s"]} ws=[{v["ws"]}] c={v["c"]} pct=% p={v["p"]}\\n");\n'
        "    return;   /* mutant */\n"
    )


@mutant(
    "02",
    patches=[("labs/02-serial/serial.c", "    uint64_t st = seed;\n", "    uint64_t st = seed;\n" + fake_selftest(1))],
    also=[{"seed": 1}],
)
def printing_the_transcript_text_fails_kprintf(st, at_seed_1):
    for title in ("kprintf: %d %u %x", "kprintf: 64-bit", "kprintf: width", "kprintf: %s"):
        c = check_of(st, title)
        assert not c.passed and c.message.startswith("expected `[kprintf]"), title
    assert at_seed_1.full is False  # edge line missing even at seed 1


@mutant(
    "02",
    patches=[("solutions/02-serial/uart.c", "    unsigned divisor", "    unsigned divisor = oops;\n    unsigned d2")],
)
def compile_error_names_file_and_line(st):
    assert st.build_error and st.build_error.summary == "solutions/02-serial/uart.c does not compile"
    assert "solutions/02-serial/uart.c:" in st.build_error.details and "error:" in st.build_error.details
    # said once: the first check gives the verdict, the others say they were not graded
    first, *rest = st.checks
    assert first.message == "build failed: solutions/02-serial/uart.c does not compile"
    assert rest and all(c.message == f"not graded: the stage did not build (see `{first.title}`)" for c in rest)
    from grader import report

    tests = report.gradescope_results([st])["tests"]
    assert sum("does not compile" in t["output"] for t in tests) == 1
    assert sum("error:" in t["output"] for t in tests) == 1


# Classic mistakes in serial_init, serial_putc and serial_flush (uart.c). The
# UART is programmed the same way whatever the seed: a few seeds suffice.
U = "solutions/02-serial/uart.c"
DIVISOR = "    outb(COM1_PORT + UART_DLL, divisor & 0xff);\n    outb(COM1_PORT + UART_DLM, divisor >> 8);\n"


def wrong_setting(st, got, register):
    c = check_of(st, "serial: divisor")
    assert not c.passed and c.message.endswith(f"got `[serial] COM1: {got}`"), c.message
    seen = " ".join(c.details)  # what QEMU saw names the register
    assert f"QEMU saw: QEMU's serial trace shows the kernel's last line sent at {got}, not" in seen, seen
    assert register in seen and "did not program" not in seen, seen


@mutant(
    "02",
    patches=[
        (
            U,
            DIVISOR,
            "    outb(COM1_PORT + UART_DLL, divisor >> 8);   /* mutant: DLL and DLM swapped */\n"
            "    outb(COM1_PORT + UART_DLM, divisor & 0xff);\n",
        )
    ],
    seeds=2,
    boots=["default"],
)
def divisor_bytes_swapped(st):
    wrong_setting(st, "divisor 256 (450 baud), LCR 0x03, FIFO on", "the divisor latch holds 256")


@mutant(
    "02",
    patches=[
        (
            U,
            "    outb(COM1_PORT + UART_LCR, LCR_DLAB);\n" + DIVISOR,
            DIVISOR + "    outb(COM1_PORT + UART_LCR, LCR_DLAB);   /* mutant: DLAB set too late */\n",
        )
    ],
    seeds=2,
    boots=["default"],
)
def divisor_written_before_dlab(st):
    wrong_setting(st, "divisor 3 (38400 baud), LCR 0x03, FIFO on", "the divisor latch holds 3")
    # the divisor's low byte went out as a character: the loopback check's line carries it, and its hint says why
    c = check_of(st, "serial: serial_init")
    assert "differs only by a control byte (`\\x01`)" in c.message, c.message
    assert any("the divisor's low byte (1 for 115200 baud) sent as a character" in h for h in c.hints), c.hints


@mutant(
    "02",
    patches=[
        (
            U,
            "    outb(COM1_PORT + UART_LCR, LCR_8N1);",
            "    outb(COM1_PORT + UART_LCR, 0x07);   /* mutant: 2 stop bits */",
        )
    ],
    seeds=2,
    boots=["default"],
)
def two_stop_bits(st):
    wrong_setting(st, "divisor 1 (115200 baud), LCR 0x07, FIFO on", "LCR is 0x07")


@mutant(
    "02",
    patches=[
        (
            U,
            "    outb(COM1_PORT + UART_FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX | FCR_TRIG_14);",
            "    outb(COM1_PORT + UART_FCR, FCR_CLEAR_RX | FCR_CLEAR_TX);   /* mutant: FIFOs off */",
        )
    ],
    seeds=2,
    boots=["default"],
)
def fifos_left_off(st):
    wrong_setting(st, "divisor 1 (115200 baud), LCR 0x03, FIFO off", "the FIFOs are off")


@mutant(
    "02",
    patches=[
        (
            U,
            "    outb(COM1_PORT + UART_LCR, LCR_8N1);",
            "    outb(COM1_PORT + UART_LCR, LCR_8N1 | LCR_DLAB);   /* mutant */",
        )
    ],
    seeds=2,
    boots=["default", "panic"],
)
def dlab_left_set_silences_the_kernel(st):
    silent_uart(st)
    # nothing at all reached the line: the panic check does not blame kpanic
    panic = check_of(st, "panic").message
    assert "printed nothing at all in this boot" in panic and "(kpanic in" not in panic


def silent_uart(st):
    assert st.score == 0 and "no byte reached the serial line" in st.stopped
    assert "left in loopback (MCR bit 4), or with LCR.DLAB set" in check_of(st, "power").message


@mutant(
    "02",
    patches=[
        (
            U,
            "    outb(COM1_PORT + UART_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);",
            "    outb(COM1_PORT + UART_MCR, MCR_LOOP | MCR_DTR | MCR_RTS | MCR_OUT2);   /* mutant */",
        )
    ],
    seeds=2,
    boots=["default"],
)
def loopback_left_on_silences_serial_putc(st):
    silent_uart(st)


@mutant(
    "02",
    patches=[
        (
            U,
            "    while (!(inb(COM1_PORT + UART_LSR) & LSR_THRE))\n        ;\n    outb(COM1_PORT + UART_THR",
            "    outb(COM1_PORT + UART_THR",
        )
    ],
    emulator="bochs",
    seeds=1,
    boots=["default"],
)
def serial_putc_without_thre_garbles_under_bochs(st):
    c = check_of(st, "serial: every line goes through serial_putc")
    assert not c.passed and "does not wait for LSR.THRE" in " ".join(c.hints)
    assert not st.full


FLUSH_WAIT = "    while (!(inb(COM1_PORT + UART_LSR) & LSR_TEMT))\n        ;\n"


def flush_caught(st, lsr):
    c = check_of(st, "serial: serial_flush")
    assert not c.passed and f"[serial] serial_flush: FAIL: returned with LSR {lsr}, still sending" in c.message
    assert [x.title for x in st.checks if not x.passed] == [c.title]


@mutant(
    "02",
    patches=[(U, FLUSH_WAIT, FLUSH_WAIT.replace("LSR_TEMT", "LSR_THRE"))],
    emulator="bochs",
    seeds=1,
    boots=["default"],
)
def serial_flush_waits_for_thre_not_temt(st):
    flush_caught(st, "0x20")  # THRE set, TEMT not: the last byte is in the shift register


@mutant("02", patches=[(U, FLUSH_WAIT, "")], emulator="bochs", seeds=1, boots=["default"])
def serial_flush_that_does_not_wait(st):
    flush_caught(st, "0x0")  # the FIFO still holds bytes of the line


# Classic mistakes in kprintf_number and kvprintf (kprintf.c). The self-test's
# values come from the seed, with their sign bits forced: every seed must
# catch them.
K = "solutions/02-serial/kprintf.c"


def kprintf_wrong(st, title, *words):
    c = check_of(st, title)
    assert not c.passed and c.message.startswith(("expected `[kprintf]", "missing `[kprintf]")), c.message
    assert all(w in c.message for w in words), c.message


@mutant(
    "02",
    patches=[
        (
            K,
            "    for (int len = n + neg; !zero && len < width; len++, out++)\n        con_putc(' ');\n"
            "    if (neg) {\n        con_putc('-');\n        out++;\n    }\n"
            "    for (int len = n + neg; zero && len < width; len++, out++)\n        con_putc('0');\n",
            "    for (int len = n + neg; len < width; len++, out++)   /* mutant: pads before the sign */\n"
            "        con_putc(zero ? '0' : ' ');\n    if (neg) {\n        con_putc('-');\n        out++;\n    }\n",
        )
    ],
    seeds=20,
    boots=["default"],
)
def zeros_before_the_sign(st):
    kprintf_wrong(st, "kprintf: width", "got `[kprintf] width=", "neg=[0")


@mutant(
    "02",
    patches=[
        (
            K,
            "    for (int len = n + neg; !zero && len < width; len++, out++)\n        con_putc(' ');\n"
            "    if (neg) {\n        con_putc('-');\n        out++;\n    }\n",
            "    if (neg) {   /* mutant: spaces after the sign */\n        con_putc('-');\n        out++;\n    }\n"
            "    for (int len = n + neg; !zero && len < width; len++, out++)\n        con_putc(' ');\n",
        )
    ],
    seeds=20,
    boots=["default"],
)
def spaces_after_the_sign(st):
    kprintf_wrong(st, "kprintf: width", "nwidth=[- ")


@mutant(
    "02",
    patches=[
        (
            K,
            "for (int len = n + neg; zero && len < width; len++, out++)",
            "for (int len = n; zero && len < width; len++, out++)   /* mutant: the sign not counted */",
        )
    ],
    seeds=20,
    boots=["default"],
)
def width_does_not_count_the_sign(st):
    kprintf_wrong(st, "kprintf: width", "got `[kprintf] width=", "neg=[-00")


@mutant(
    "02",
    patches=[
        (
            K,
            '    do {\n        digits[n++] = "0123456789abcdef"[v % (uint64_t)base];\n        v /= (uint64_t)base;\n'
            "    } while (v);\n",
            "    while (v) {   /* mutant: zero prints nothing */\n"
            '        digits[n++] = "0123456789abcdef"[v % (uint64_t)base];\n        v /= (uint64_t)base;\n    }\n',
        )
    ],
    seeds=20,
    boots=["default"],
)
def zero_prints_nothing(st):
    kprintf_wrong(st, "kprintf: edge values", "edges: -2147483648   -9223372036854775808")


@mutant(
    "02",
    patches=[(K, '"0123456789abcdef"[v % (uint64_t)base]', '"0123456789ABCDEF"[v % (uint64_t)base]')],
    seeds=20,
    boots=["default"],
)
def uppercase_hex_digits(st):
    kprintf_wrong(st, "kprintf: %d %u %x")
    kprintf_wrong(st, "kprintf: 64-bit")
    # each check says letter case, and none gives a hint about another cause (64-bit arguments, the sign, %p)
    for title in ("kprintf: %d %u %x", "kprintf: 64-bit", "kprintf: width", "kprintf: %s %c"):
        c = check_of(st, title)  # width and %p fail only when this seed's values have a letter digit
        assert c.passed or "differs from the expected one only in letter case" in c.message, c.message
        assert c.hints == [], c.hints


@mutant(
    "02",
    patches=[(K, "    for (out += n; n > 0;)", "    for (out = n; n > 0;) /* mutant: counts the digits only */")],
    seeds=20,
    boots=["default"],
)
def kprintf_number_counts_only_the_digits(st):
    kprintf_wrong(st, "kprintf: edge values", "[kprintf] tail: ", "the width and s= lines returned")


@mutant(
    "02",
    patches=[
        (
            K,
            "kprintf_number(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, zero)",
            "kprintf_number(v < 0 ? (uint64_t)(int64_t)(int32_t)-(uint32_t)v : (uint64_t)v, 10, v < 0, width, zero)"
            "   /* mutant: negated in 32 bits */",
        )
    ],
    seeds=20,
    boots=["default"],
)
def most_negative_int_negated_in_32_bits(st):
    kprintf_wrong(st, "kprintf: edge values", "edges: -18446744071562067968")


@mutant(
    "02",
    patches=[
        (
            K,
            "            int64_t v = is_long ? va_arg(ap, int64_t) : va_arg(ap, int);\n"
            "            out += kprintf_number(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, zero);\n",
            "            if (is_long) {   /* mutant: each negated in its own type */\n"
            "                int64_t v = va_arg(ap, int64_t);\n"
            "                out += kprintf_number(v < 0 ? -v : v, 10, v < 0, width, zero);\n"
            "            } else {\n"
            "                int v = va_arg(ap, int);\n"
            "                out += kprintf_number(v < 0 ? -v : v, 10, v < 0, width, zero);\n"
            "            }\n",
        )
    ],
    boots=["default"],
)
def most_negative_int_negated_as_an_int(st):
    # undefined in C: without -fwrapv clang assumes -v >= 0 and prints the right
    # digits by luck; with it (grader/build.py) the int stays negative and shows
    kprintf_wrong(st, "kprintf: edge values", "edges: -18446744071562067968 0 0 -9223372036854775808")


@mutant(
    "02",
    patches=[
        (
            K,
            "            uint64_t v = is_long ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);",
            "            uint64_t v = is_long ? va_arg(ap, uint64_t) : (uint64_t)va_arg(ap, int);   /* mutant */",
        )
    ],
    seeds=20,
    boots=["default"],
)
def unsigned_read_as_int_is_sign_extended(st):
    kprintf_wrong(st, "kprintf: %d %u %x", "x=ffffffff")


@mutant(
    "02",
    patches=[
        (
            K,
            "        for (; *fmt == 'l'; fmt++)\n            is_long = 1;\n",
            "        for (; *fmt == 'l'; fmt++)   /* mutant: l ignored */\n            ;\n",
        )
    ],
    seeds=20,
    boots=["default"],
)
def l_modifier_ignored(st):
    kprintf_wrong(st, "kprintf: 64-bit")


@mutant(
    "02",
    patches=[
        (
            K,
            "            out += 2 + kprintf_number((uint64_t)va_arg(ap, void *), 16, 0, 16, 1);",
            "            out += 2 + kprintf_number((uint64_t)va_arg(ap, void *), 16, 0, 0, 0);   /* mutant */",
        )
    ],
    seeds=20,
    boots=["default"],
)
def pointer_without_leading_zeros(st):
    kprintf_wrong(st, "kprintf: %s %c %% %p")


@mutant(
    "02",
    patches=[
        (
            K,
            "            for (int len = (int)strlen(s); len < width; len++, out++)\n                con_putc(' ');\n"
            "            for (; *s; s++, out++)\n                con_putc(*s);\n",
            "            int len = (int)strlen(s);   /* mutant: pads on the right */\n"
            "            for (; *s; s++, out++)\n                con_putc(*s);\n"
            "            for (; len < width; len++, out++)\n                con_putc(' ');\n",
        )
    ],
    seeds=20,
    boots=["default"],
)
def string_padded_on_the_right(st):
    kprintf_wrong(st, "kprintf: %s %c %% %p", "ws=[")


@mutant("02", patches=[(K, '            s = s ? s : "(null)";\n', "")], seeds=20, boots=["default"])
def null_string_not_handled(st):
    kprintf_wrong(st, "kprintf: edge values", "[kprintf] tail: ")


@mutant("02", patches=[(K, "        if (*fmt == 0)\n            break;\n", "")], seeds=20, boots=["default"])
def percent_at_the_end_reads_past_the_format(st):
    kprintf_wrong(st, "kprintf: edge values", "kvprintf read past the end of its format")


@mutant(
    "02",
    patches=[
        (
            K,
            "            if (*fmt != '%')\n                con_putc('%'), out++;\n"
            "            con_putc(*fmt);\n            out++;\n",
            "            if (*fmt == '%')   /* mutant: unknown conversions dropped */\n"
            "                con_putc('%'), out++;\n",
        )
    ],
    seeds=20,
    boots=["default"],
)
def unknown_conversion_dropped(st):
    kprintf_wrong(st, "kprintf: edge values", "tail: (null)  100")


@mutant(
    "02",
    patches=[
        (
            K,
            "    return out;\n    // LAB 2: end of your code.\n}\n\n/* void kpanic",
            "    con_putc(0);   /* mutant: the format's NUL sent too */\n"
            "    return out;\n    // LAB 2: end of your code.\n}\n\n/* void kpanic",
        )
    ],
    boots=["default"],
)
def the_terminating_nul_sent_shows_in_the_lines_it_begins(st):
    c = check_of(st, "kprintf: 64-bit")
    assert not c.passed and c.message.startswith("expected `[kprintf] ld="), c.message
    assert "got `\\x00[kprintf] ld=" in c.message, c.message
    assert c.message.endswith("differs only by a control byte (`\\x00`): the kernel sent a byte that is not text")
    assert c.hints == []  # the check's own hints name other causes


# Classic mistakes in kpanic: the deliberate panic's line names the seed.
@mutant(
    "02",
    patches=[
        (
            K,
            '    kvprintf(fmt, ap);\n    va_end(ap);\n    kprintf("\\n");\n',
            "    kvprintf(fmt, ap);\n    va_end(ap);\n",
        )
    ],
    seeds=2,
)
def panic_line_without_newline(st):
    c = check_of(st, "panic")
    assert not c.passed and "got `[panic] labs/02-serial/serial.c:" in c.message and "[power] off: panic`" in c.message


@mutant(
    "02", patches=[(K, "    kvprintf(fmt, ap);\n", "    kprintf(fmt);   /* mutant: the arguments lost */\n")], seeds=2
)
def panic_message_printed_without_its_arguments(st):
    c = check_of(st, "panic")
    assert not c.passed and "deliberate panic, seed 0x" in c.message and "got `[panic]" in c.message


# Forgers (issue 20): code that says the work was done, and does not do it.
LAZY_UART = """
/* A forger: nothing programmed, no loopback test, no waiting. */
static void
lazy_filter(char c)
{
    static char line[128];
    static int n;
    static const char said[] = "[serial] COM1: divisor 1 (115200 baud), LCR 0x03, FIFO on\\n";
    line[n++] = c;
    if (c != '\\n' && n < (int)sizeof line)
        return;
    const char *out = strncmp(line, "[serial] COM1:", 14) == 0 ? said : line;
    int len = out == said ? (int)sizeof said - 1 : n;
    for (int i = 0; i < len; i++)
        outb(COM1_PORT + UART_THR, (uint8_t)out[i]);
    n = 0;
}

int
serial_init(void)
{
    con_puts("[serial] COM1: divisor 1 (115200 baud), LCR 0x03, FIFO on\\n"
             "[serial] console moved to serial_putc\\n"
             "[boot] 64-bit kmain, magic 0x36d76289, stack top ");
    con_puthex((uint64_t)__stack_top, 8);
    con_puts("\\n");
    %s
    return 0;
}

void
serial_putc(char c)
{
    outb(COM1_PORT + UART_THR, (uint8_t)c);
}

void
serial_flush(void)
{
}
"""


def lazy_uart(filtered):
    """uart.c of the forgers of issue 20: three lines printed early from
    serial_init (the UART's settings, the console's move, the kmain line),
    a serial_putc that never waits, an empty serial_flush; `filtered`: the
    console then goes through a filter that rewrites the read-back line."""

    def apply(root):
        skeleton = (root / "labs/02-serial/uart.c").read_text()
        head = skeleton[: skeleton.index("/* int serial_init(void)")]
        init = "con_sink = lazy_filter;" if filtered else "(void)lazy_filter;"
        (root / "solutions/02-serial/uart.c").write_text(head + LAZY_UART % init)

    return apply


UART_CHECKS = (
    "serial: serial_init passes its loopback test",
    "serial: divisor, 8N1 and FIFO programmed",
    "serial: every line goes through serial_putc",
    "serial: serial_flush waits until the transmitter is empty",
)


@mutant("02", patches=[lazy_uart(filtered=False)], boots=["default"])
def forger_printing_three_lines_early_earns_no_uart_point(st):
    for title in UART_CHECKS:
        assert not check_of(st, title).passed, title
    c = check_of(st, "serial: divisor")  # the kernel's own read-back line, and what QEMU saw, both tell
    assert c.message == (
        "expected `[serial] COM1: divisor 1 (115200 baud), LCR 0x03, FIFO on`, "
        "got `[serial] COM1: divisor 3 (38400 baud), LCR 0x03, FIFO off`"
    )
    assert c.details[0] == (
        "QEMU saw: the kernel said `[serial] COM1: divisor 1 (115200 baud), LCR 0x03, FIFO on` while QEMU's UART "
        "had divisor 3 (38400 baud), LCR 0x03, FIFO off (QEMU's serial trace of the register writes)"
    )


@mutant("02", patches=[lazy_uart(filtered=True)], boots=["default"])
def forger_rewriting_the_read_back_line_earns_no_uart_point(st):
    for title in UART_CHECKS:
        assert not check_of(st, title).passed, title
    c = check_of(st, "serial: divisor")
    assert c.message == (
        "the kernel said `[serial] COM1: divisor 1 (115200 baud), LCR 0x03, FIFO on` while QEMU's UART had "
        "divisor 3 (38400 baud), LCR 0x03, FIFO off (QEMU's serial trace of the register writes)"
    )
    assert "without a read of LSR before them" in check_of(st, "serial: every line").message
    assert "serial_flush never read LSR" in check_of(st, "serial: serial_flush").message
    assert "no byte 0xae sent and read back in loopback mode" in check_of(st, "serial: serial_init").message


def panic_forgery(seed):
    """With tests=panic, the forger prints the panic line it can know: the
    file and line, this run's seed; the number it cannot compute."""
    line = next(n for n, t in enumerate((LAB / "serial.c").read_text().splitlines(), 1) if "panic-test" in t)
    text = f"[panic] labs/02-serial/serial.c:{line}: deliberate panic, seed 0x{seed:x}, check -1234\\n"
    return (
        '    if (test_named("panic")) {\n'
        f'        for (const char *p = "{text}"; *p; p++)\n'
        "            early_putc(*p);\n"
        "        poweroff(EXIT_PANIC);\n"
        "    }"
    )


@mutant(
    "02",
    patches=[
        skeleton("02-serial/kprintf.c"),
        forger("02-serial/uart.c", "02", work=("[kprintf]",), extra_c=panic_forgery(SEED)),
    ],
)
def forger_printing_the_whole_transcript_earns_nothing(st):
    assert earned_without_work(st) == [] and st.score == 0, earned_without_work(st)


@mutant("02", patches=[forger("02-serial/uart.c", "02", work=("[kprintf]",), filtered=False)], boots=["default"])
def forger_printing_the_transcript_before_the_kernel_earns_no_uart_point(st):
    for title in UART_CHECKS:
        assert not check_of(st, title).passed, title
