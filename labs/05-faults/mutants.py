"""Lab 05's deliberate breaks (grader/mutants.py runs them)."""
from grader.mutants import check_of, diagnosis_text, mutant


@mutant("05", skeleton=True, below=True)
def skeleton_names_the_gate_that_is_wrong(st):
    assert st.boots["default"].outcome.ok
    setup = check_of(st, "faults: IDT, TSS and fix-up table")
    assert not setup.passed and "idt_set_gate(0): the present bit is clear" in setup.message
    assert "[fault] FAIL: exceptions are not set up: no self-test" in st.boots["default"].text


NO_IST = [("labs/05-faults/fault.c", "        idt_set_gate(v, trap_stubs[v], v == 8 ? IST_DOUBLE_FAULT : 0);",
           "        idt_set_gate(v, trap_stubs[v], 0);   /* mutant: no IST for #DF */"),
          ("labs/05-faults/fault.c", "        ok = fault_check_gate(v, trap_stubs[v], v == 8 ? IST_DOUBLE_FAULT : 0);",
           "        ok = fault_check_gate(v, trap_stubs[v], 0);")]


@mutant("05", patches=NO_IST)
def double_fault_without_an_ist_stack(st):
    assert check_of(st, "faults: page fault writing .text").passed         # the probes still work...
    over = check_of(st, "faults: stack overflow")
    assert not over.passed and "triple fault" in over.message           # ...the overflow does not
    diag = diagnosis_text(st, "overflow")
    first = st.diagnoses["overflow"][0]
    assert first.startswith("#PF (page fault, vector 14)") and "(the stack guard page)" in first
    assert "then #DF (double fault, vector 8)" in diag and "then triple fault" in diag
    assert "vector 8 needs its own stack, IST1" in diag


@mutant("05", patches=[("labs/05-faults/vectors.S", "    .if !TRAP_HAS_ERROR(\\v)",
                        "    .if !TRAP_HAS_ERROR(\\v) || \\v == 13 || \\v == 14   /* mutant */")])
def error_code_left_on_the_stack(st):
    # The stubs push a dummy error code for #GP and #PF too: iretq then takes the real one for RIP.
    assert "[fault] test ud2 -> vector 6 error 0x0" in st.boots["default"].lines   # no error code: fine
    assert not check_of(st, "faults: general protection").passed
    diag = diagnosis_text(st)
    assert "the kernel handled this fault itself and reported: [fault] #GP general protection at rip " \
           "0x0000000000000000" in diag
    assert "the trap frame was read one word off" in diag


@mutant("05", patches=[("solutions/05-faults/trap.c", "    g->type_attr = GATE_PRESENT | GATE_INTERRUPT;",
                        "    g->type_attr = GATE_INTERRUPT;   /* mutant */")])
def gate_without_present_bit(st):
    assert "idt_set_gate(0): the present bit is clear (type_attr 0xe" in check_of(st, "faults: IDT, TSS").message


@mutant("05", patches=[("solutions/05-faults/trap.c", "    g->type_attr = GATE_PRESENT | GATE_INTERRUPT;",
                        "    g->type_attr = GATE_PRESENT | 0x0c;   /* mutant: a call gate */")])
def gate_of_the_wrong_type(st):
    assert "the type is not a 64-bit interrupt gate" in check_of(st, "faults: IDT, TSS").message


@mutant("05", patches=[("labs/05-faults/probes.S", "    FIXUP(probe_read_insn, 1f)\n", "")])
def probe_without_its_fixup_entry(st):
    assert "panic" in st.stopped
    diag = diagnosis_text(st)
    assert "reported: [fault] #GP general protection at rip" in diag and "unexpected, powering off" in diag
    assert "had no fix-up entry" in diag
