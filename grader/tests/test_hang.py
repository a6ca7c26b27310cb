"""A hang says where the kernel was stuck: on a progress timeout the grader
looks at the CPU through QEMU's monitor a few times before stopping the run,
and names the function and the lines it spins in."""
import pytest

from grader import grade, mutants, stage
from conftest import SEED

pytestmark = [pytest.mark.instructor, pytest.mark.slow]  # the spins are patches of solutions/

SPIN = (
    "solutions/02-serial/uart.c",
    "    while (!(inb(COM1_PORT + UART_LSR) & LSR_THRE))",
    "    while (inb(COM1_PORT + UART_LSR) & LSR_THRE)   /* mutant: the test inverted */",
)
IRQS_ON = (
    "solutions/02-serial/uart.c",
    "    // LAB 2: your code here.\n    while (",
    "    // LAB 2: your code here.\n    outb(0x21, 0xff);\n    outb(0xa1, 0xff);   /* mask the PICs */\n"
    '    __asm__ volatile("sti");\n    while (',
)
PROGRESS = 3.0


@pytest.mark.parametrize("interrupts", ["off", "on"])
def test_a_spin_in_a_student_function_is_named(interrupts, tmp_path):
    patches = [SPIN] + ([IRQS_ON] if interrupts == "on" else [])
    tree = mutants.make_tree(tmp_path / "tree", patches)
    st0 = stage.make("02", stage.Origin("solutions"), tree)
    st = grade.grade_stage(st0, seed=SEED, timeouts={"progress": PROGRESS})
    run = st.boots["default"]
    # from the kernel's last line to the end of the run: the timeout, the five looks, the reaping
    assert run.elapsed - run.extra["last_output_at"] < PROGRESS + 2
    line = st.diagnoses["default"][0]
    assert line.startswith("the kernel was still running in serial_putc (solutions/02-serial/uart.c:"), line
    assert line.endswith(f"in 5 of 5 samples, interrupts {interrupts}"), line
    assert "serial_putc (solutions/02-serial/uart.c:" in st.stopped


FOREVER = (
    "solutions/02-serial/uart.c",
    "    while (!(inb(COM1_PORT + UART_LSR) & LSR_THRE))",
    "    for (;;)   /* mutant: a spin that never ends, whatever the UART's timing */",
)


def test_under_bochs_the_report_says_where_to_look(tmp_path):
    # (Bochs models the baud rate: the inverted test above ends there, with garbage on the line.)
    tree = mutants.make_tree(tmp_path / "tree", [FOREVER])
    st = grade.grade_stage(
        stage.make("02", stage.Origin("solutions"), tree), seed=SEED, emulator="bochs", timeouts={"progress": PROGRESS}
    )
    assert "grade under QEMU (EMULATOR=qemu)" in st.diagnoses["default"][0]
