"""What the emulator saw, read by the grader: QEMU's serial trace events
turned into the UART's settings and the lines it sent, the exceptions of its
-d int log, and how a check of constant lines shares another's evidence."""
from grader import grade, observe


def trace(*events):
    return "\n".join(f"serial_{kind} {kind} addr 0x{addr:02x} val 0x{val:02x}" for kind, addr, val in events)


def sends(text, polls=1):
    for ch in text:
        yield from [("read", 5, 0x60)] * polls
        yield ("write", 0, ord(ch))


def test_the_serial_trace_gives_each_line_its_settings_and_its_polls():
    early = [("write", 3, 0x80), ("write", 0, 3), ("write", 1, 0), ("write", 3, 0x03)]
    init = [("write", 3, 0x80), ("write", 0, 1), ("write", 1, 0), ("write", 3, 0x03), ("write", 2, 0xC7)]
    loop = [("write", 4, 0x12), ("write", 0, 0xAE), ("read", 5, 0x61), ("read", 0, 0xAE), ("write", 4, 0x0B)]
    log = trace(*early, *sends("early\n"), *init, *loop, *sends("late\n", polls=2), ("write", 0, ord("x")))
    t = observe.serial_trace("noise\n" + log)
    assert [s.text for s in t.lines] == ["early", "late", "x"]
    assert str(t.lines[0].settings) == "divisor 3 (38400 baud), LCR 0x03, FIFO off"
    assert str(t.lines[1].settings) == "divisor 1 (115200 baud), LCR 0x03, FIFO on"
    assert t.lines[1].polls == [3, 2, 2, 2, 2] and t.lines[2].polls == [0]  # the loopback test's read counts
    assert t.loopback == [(0xAE, 0xAE)] and t.mcr == 0x0B and t.first("late") == 1


def test_no_trace_events_no_trace():
    assert observe.serial_trace("CPU Reset (CPU 0)\n") is None


def test_exceptions_from_the_int_log_keep_vector_error_rip_and_cr2():
    log = (
        "     0: v=0e e=0003 i=0 cpl=0 IP=0008:0000000000106be8 pc=0000000000106be8 SP=0010:000000000051aed8 "
        "CR2=00000000001075a6\n"
        "     1: v=03 e=0000 i=1 cpl=0 IP=0008:000000000010676a pc=000000000010676a SP=0010:000000000051aee0 "
        "env->regs[R_EAX]=0000000000000017\n"
        "     2: v=10 e=0000 i=1 cpl=0 IP=c000:0000000000000100 pc=00000000000c0100 SP=0000:0000000000006f00 "
        "env->regs[R_EAX]=0000000000000017\n"
    )
    found = observe.exceptions(log, (0x100000, 0x200000))
    assert [(t.vector, t.error, t.software, t.rip, t.cr2) for t in found] == [
        (14, 3, False, 0x106BE8, 0x1075A6),
        (3, 0, True, 0x10676A, None),
    ]


def test_constant_lines_count_only_with_the_evidence_of_the_check_they_lean_on():
    def c(title, passed=True, evidence=""):
        return grade.CheckResult(title, 5, passed, evidence=evidence)

    backed = {"edges": "offsets", "tail": ("nowhere", "offsets")}
    good = observe.borrow_evidence([c("offsets", evidence=observe.SEED), c("edges"), c("tail")], backed)
    assert [x.evidence for x in good] == [observe.SEED, observe.BORROWED, observe.BORROWED]
    bad = observe.borrow_evidence([c("offsets", passed=False), c("edges")], backed)
    assert not bad[1].passed and "they count where `offsets` passes, which shows the work" in bad[1].message


def test_the_page_walk_reads_the_tables_in_guest_memory_and_ands_the_rights():
    from grader.monitor import Memory, walk

    mem, tables = Memory(), bytearray(5 * 4096)

    def entry(table, index, value):
        tables[table * 4096 + 8 * index : table * 4096 + 8 * index + 8] = value.to_bytes(8, "little")

    base = 0x10000
    entry(0, 0, base + 0x1000 | 3)  # PML4[0] -> PDPT, rw
    entry(1, 0, base + 0x2000 | 3)  # PDPT[0] -> PD, rw
    entry(2, 1, 0x200000 | 0x83)  # PD[1]: a 2 MiB page at 2 MiB, rw
    entry(2, 2, base + 0x3000 | 1)  # PD[2] -> PT, read-only above the leaf
    entry(3, 5, 0x7000 | 3 | 1 << 63)  # PT[5]: 4 KiB, rw at the leaf, no-execute
    mem.add(base, bytes(tables))
    assert walk(mem, base, 0x234567) == (0x234567, True, True)
    assert walk(mem, base, 0x405123) == (0x7123, False, False)  # W cleared above, NX at the leaf
    assert walk(mem, base, 0x406000) is None


def test_a_fact_this_emulator_cannot_see_stands_on_the_lines_with_a_note():
    from grader import api

    def refuted(ctx):
        raise api.Fail("QEMU saw divisor 3")

    def no_trace(ctx):
        raise api.Unavailable("this QEMU writes no serial trace events")

    refuted.kit_observed = api.ObservedDef(("a",), ("qemu",), "QEMU saw")
    no_trace.kit_observed = api.ObservedDef(("b",), ("qemu",), "QEMU saw")
    checks = [grade.CheckResult("a", 5, True), grade.CheckResult("b", 5, True)]
    got, notes = observe.apply_observers(checks, [refuted, no_trace], lambda boot, passed: None, "qemu")
    assert (got[0].passed, got[0].message, got[0].evidence) == (False, "QEMU saw divisor 3", observe.REFUTED)
    assert (got[1].passed, got[1].evidence) == (True, observe.TOLD) and "no serial trace events" in notes[0]
    got, _ = observe.apply_observers(checks, [refuted], lambda boot, passed: None, "bochs")
    note = observe.told_note(got, "bochs")
    assert note.startswith("Bochs cannot be asked") and note.endswith("observed under QEMU only): a")
