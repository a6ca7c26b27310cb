"""Lab 02's deliberate breaks (grader/mutants.py runs them)."""
from grader.mutants import SEED, check_of, mutant

from .checks import kprintf_values


@mutant("02", skeleton=True, below=True, also=[{"emulator": "bochs"}])
def skeleton_on_reference_lab_01_fails_exactly_lab_02(st, under_bochs):
    assert st.score == 0        # the clean power-off alone does not prove that the output belongs to this run
    assert check_of(st, "power").message.startswith("no points from this boot: none of its lines that depend "
                                                    "on this run's seed matched")
    assert "serial_init returned an error" in st.boots["default"].text
    v = kprintf_values(SEED)
    assert check_of(st, "kprintf: %d %u %x").message == \
        f"expected `[kprintf] d={v['d']} u={v['u']} x={v['x']}`, got `[kprintf] d=%d u=%u x=%x`"
    assert "forbidden" not in check_of(st, "serial: serial_init").message
    assert "no [panic] line was printed" in check_of(st, "panic").message
    assert "got `[kprintf] d=%d u=%u x=%x`" in check_of(under_bochs, "kprintf: %d %u %x").message
    assert check_of(under_bochs, "serial: divisor").message.endswith(
        "got `[serial] COM1: divisor 3 (38400 baud), LCR 0x03, FIFO off`")


@mutant("02", skeleton=True)
def skeleton_alone_points_at_lab_01(st):
    assert st.score == 0 and "BELOW=solutions" in st.stopped


def fake_selftest(seed):
    """A kprintf self-test that prints the text another run (seed 1) expected."""
    v = kprintf_values(seed)
    return (f'    con_puts("[kprintf] d={v["d"]} u={v["u"]} x={v["x"]}\\n'
            f'[kprintf] ld={v["ld"]} lu={v["lu"]} lx={v["lx"]}\\n'
            f'[kprintf] width=[{v["width"]}] zero=[{v["zero"]}] neg=[{v["neg"]}] hex=[{v["hex8"]}]\\n'
            f'[kprintf] s={v["s"]} ws=[{v["ws"]}] c={v["c"]} pct=% p={v["p"]}\\n");\n'
            '    return;   /* mutant */\n')


@mutant("02", patches=[("labs/02-serial/serial.c", "    uint64_t st = seed;\n", "    uint64_t st = seed;\n" + fake_selftest(1))],
        also=[{"seed": 1}])
def printing_the_transcript_text_fails_kprintf(st, at_seed_1):
    for title in ("kprintf: %d %u %x", "kprintf: 64-bit", "kprintf: width", "kprintf: %s"):
        c = check_of(st, title)
        assert not c.passed and c.message.startswith("expected `[kprintf]"), title
    assert at_seed_1.full is False                            # edge line missing even at seed 1


@mutant("02", patches=[("solutions/02-serial/uart.c", "    unsigned divisor", "    unsigned divisor = oops;\n    unsigned d2")])
def compile_error_names_file_and_line(st):
    assert st.build_error and st.build_error.summary == "solutions/02-serial/uart.c does not compile"
    assert "solutions/02-serial/uart.c:" in st.build_error.details and "error:" in st.build_error.details
    assert all(not c.passed and c.message.startswith("build failed") for c in st.checks)
