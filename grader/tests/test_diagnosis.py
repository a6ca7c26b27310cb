"""The QEMU log parser, the error-code decoders and the symbolizer wrapper,
on real logs (fixtures/README.md says how each was made)."""
import subprocess
from pathlib import Path

import pytest

from grader import build, diagnosis, stage

FIX = Path(__file__).parent / "fixtures"


def test_null_idt_int3_chain():
    chain = diagnosis.parse_qemu_log((FIX / "qemu-int3-null-idt.log").read_text(), (0x100000, 0x600000))
    assert [f.vector for f in chain.faults] == [3, 13, 8]
    assert chain.faults[0].software and not chain.faults[1].software
    assert chain.faults[1].error == 0x32
    assert chain.triple
    assert chain.faults[0].regs["IDT"] == (0, 0)


def test_faults_outside_the_kernel_are_skipped():
    text = (FIX / "qemu-int3-null-idt.log").read_text()
    assert "Servicing hardware INT" in text  # firmware's timer interrupts are in the log
    assert len(diagnosis.parse_qemu_log(text, None).faults) == 3
    assert diagnosis.parse_qemu_log(text, (0x200000, 0x300000)).faults == []


def test_page_fault_chain_and_cr2():
    chain = diagnosis.parse_qemu_log((FIX / "qemu-pf-beyond-idmap.log").read_text(), (0x100000, 0x600000))
    pf = chain.faults[0]
    assert pf.vector == 14 and pf.error == 0x2 and pf.regs["CR2"] == 0x50000000
    assert "W=write" in pf.error_text() and "CR2=0x50000000" in pf.error_text()
    assert chain.triple


def test_decoders():
    assert diagnosis.decode_pf(0x11) == "P=protection violation (page present), read, kernel mode, I=instruction fetch"
    assert diagnosis.decode_pf(0x0) == "page not present, read, kernel mode"
    assert "IDT gate" in diagnosis.decode_selector(0x32)
    assert diagnosis.decode_selector(0x10) == "refers to GDT selector 0x10"
    assert diagnosis.decode_selector(0) == "no selector involved"


def test_empty_log_has_no_chain():
    chain = diagnosis.parse_qemu_log("", None)
    assert not chain and not chain.triple


@pytest.mark.instructor
def test_symbolizer_maps_kmain_to_its_source():
    b = build.build(stage.make("01", stage.Origin("solutions")))
    nm = subprocess.run(["llvm-nm", str(b.elf)], capture_output=True, text=True).stdout
    addr = next(int(ln.split()[0], 16) for ln in nm.splitlines() if ln.endswith(" kmain"))
    assert b.symbols["kmain"] == addr  # kernel.sym, read once, says the same
    names = diagnosis.symbolize(b.elf, [addr + 4], [str(build.ROOT)])
    assert names[addr + 4].startswith("kmain (labs/01-boot/kmain.c:")
    start, end = b.symbols.kernel_range
    assert start == 0x100000 < addr < end


@pytest.mark.instructor
def test_no_location_names_line_0():
    """Code the compiler made without a line of its own has line 0 in the
    debug information: a location names its file alone, and a stall's range
    of lines starts at a real line (never `cmdline.c:0-61`)."""
    b = build.build(stage.make("01", stage.Origin("solutions")))
    table = subprocess.run(
        ["llvm-dwarfdump", "--debug-line", str(b.elf)], capture_output=True, text=True, timeout=60
    ).stdout
    zero = [int(ln.split()[0], 16) for ln in table.splitlines() if ln.startswith("0x") and ln.split()[1] == "0"]
    raw = subprocess.run(
        ["llvm-symbolizer", f"--obj={b.elf}"] + [hex(a) for a in zero], capture_output=True, text=True, timeout=60
    ).stdout.strip()
    pairs = [(a, blk.splitlines()[-1]) for a, blk in zip(zero, raw.split("\n\n"))]
    addr = next(a for a, loc in pairs if "/labs/01-boot/cmdline.c:0:" in loc)  # given code: the same in every copy
    names = diagnosis.symbolize(b.elf, [addr], [str(build.ROOT)])
    assert names[addr].endswith("(labs/01-boot/cmdline.c)"), names
    func = names[addr].split(" (")[0]
    near = diagnosis.symbolize(b.elf, list(range(addr - 64, addr + 64)), [str(build.ROOT)])
    real = next(a for a, n in near.items() if n.startswith(func + " (") and not n.endswith("cmdline.c)"))
    samples = [{"rip": a, "interrupts": False, "halted": False} for a in (addr, real, addr)]
    stuck = diagnosis.where_stuck(samples, b, [str(build.ROOT)])
    assert "cmdline.c:" in stuck and "cmdline.c:0" not in stuck, stuck


def test_no_advice_to_grade_the_labs_below_when_the_fault_is_in_the_top_lab():
    """A stage 03 of the student's own labs stopped: 'grade the labs below'
    (or BELOW=solutions) is advised unless the diagnosis names a line of
    lab 03's own files and none of a lab below."""
    from grader.grade import below_advice

    st = stage.make("03", stage.Origin("labs"))
    top = "page fault at rip 0x102345 in heap_init (labs/03-bss-heap/heap.c:41)"
    low = "page fault at rip 0x101000 in serial_init (labs/02-serial/uart.c:12)"
    assert below_advice(st) != ""
    assert below_advice(st, [top]) == ""
    assert below_advice(st, [top, low]) != ""
    assert below_advice(st, ["the kernel was still running in kmain (labs/01-boot/kmain.c:9)"]) != ""
