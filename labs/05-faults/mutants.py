"""Lab 05's deliberate breaks (grader/mutants.py runs them)."""
from grader.mutants import check_of, diagnosis_text, earned_without_work, forger, mutant


@mutant("05", skeleton=True, below=True)
def skeleton_names_the_gate_that_is_wrong(st):
    assert st.boots["default"].outcome.ok
    setup = check_of(st, "faults: IDT, TSS and fix-up table")
    assert not setup.passed and "idt_set_gate(0): the present bit is clear" in setup.message
    assert "[fault] FAIL: exceptions are not set up: no self-test" in st.boots["default"].text


NO_IST = [
    (
        "labs/05-faults/fault.c",
        "        idt_set_gate(v, trap_stubs[v], v == 8 ? IST_DOUBLE_FAULT : 0);",
        "        idt_set_gate(v, trap_stubs[v], 0);   /* mutant: no IST for #DF */",
    ),
    (
        "labs/05-faults/fault.c",
        "        ok = fault_check_gate(v, trap_stubs[v], v == 8 ? IST_DOUBLE_FAULT : 0);",
        "        ok = fault_check_gate(v, trap_stubs[v], 0);",
    ),
]


@mutant("05", patches=NO_IST)
def double_fault_without_an_ist_stack(st):
    assert check_of(st, "faults: page fault writing .text").passed  # the probes still work...
    over = check_of(st, "faults: stack overflow")
    assert not over.passed and "triple fault" in over.message  # ...the overflow does not
    diag = diagnosis_text(st, "overflow")
    first = st.diagnoses["overflow"][0]
    assert first.startswith("#PF (page fault, vector 14)") and "(the stack guard page)" in first
    assert "then #DF (double fault, vector 8)" in diag and "then triple fault" in diag
    assert "vector 8 needs its own stack, IST1" in diag


@mutant(
    "05",
    patches=[
        (
            "labs/05-faults/vectors.S",
            "    .if !TRAP_HAS_ERROR(\\v)",
            "    .if !TRAP_HAS_ERROR(\\v) || \\v == 13 || \\v == 14   /* mutant */",
        )
    ],
)
def error_code_left_on_the_stack(st):
    # The stubs push a dummy error code for #GP and #PF too: iretq then takes the real one for RIP.
    assert "[fault] test ud2 -> vector 6 error 0x0" in st.boots["default"].lines  # no error code: fine
    assert not check_of(st, "faults: general protection").passed
    diag = diagnosis_text(st)
    assert (
        "the kernel handled this fault itself and reported: [fault] #GP general protection at rip "
        "0x0000000000000000" in diag
    )
    assert "the trap frame was read one word off" in diag


@mutant(
    "05",
    patches=[
        (
            "solutions/05-faults/trap.c",
            "    g->type_attr = GATE_PRESENT | GATE_INTERRUPT;",
            "    g->type_attr = GATE_INTERRUPT;   /* mutant */",
        )
    ],
    seeds=2,
    boots=["default"],
)
def gate_without_present_bit(st):
    assert "idt_set_gate(0): the present bit is clear (type_attr 0xe" in check_of(st, "faults: IDT, TSS").message


@mutant(
    "05",
    patches=[
        (
            "solutions/05-faults/trap.c",
            "    g->type_attr = GATE_PRESENT | GATE_INTERRUPT;",
            "    g->type_attr = GATE_PRESENT | 0x0c;   /* mutant: a call gate */",
        )
    ],
    seeds=2,
    boots=["default"],
)
def gate_of_the_wrong_type(st):
    assert "the type is not a 64-bit interrupt gate" in check_of(st, "faults: IDT, TSS").message


@mutant("05", patches=[("labs/05-faults/probes.S", "    FIXUP(probe_read_insn, 1f)\n", "")])
def probe_without_its_fixup_entry(st):
    assert "panic" in st.stopped
    diag = diagnosis_text(st)
    assert "reported: [fault] #GP general protection at rip" in diag and "unexpected, powering off" in diag
    assert "had no fix-up entry" in diag


# Classic mistakes in idt_set_gate, tss_descriptor, fixup_find and pf_decode
# (trap.c). fault_init checks each against fixed values (the real gates, a
# made-up gate and TSS at 0xffff8000deadbeef, every fix-up entry and a decoy
# after them) and pf_decode against fixed error codes: what catches them is
# the same on every seed, and the overflow boot plays no part.
T = "solutions/05-faults/trap.c"
ONE = {"seeds": 2, "boots": ["default"]}


def setup_fails(st, *words):
    c = check_of(st, "faults: IDT, TSS and fix-up table")
    assert not c.passed and all(w in c.message for w in words), c.message


@mutant("05", patches=[(T, "    g->offset_high = (uint32_t)(a >> 32);\n", "")], **ONE)
def gate_without_offset_bits_63_to_32(st):
    # The kernel lives below 4 GiB: only the made-up gate shows it.
    setup_fails(st, "FAIL: idt_set_gate(255, 0xffff8000deadbeef, ist 5) gives `ef be 08 00 05 8e ad de ff ff ff ff")
    assert check_of(st, "faults: page fault writing .text").passed


@mutant("05", patches=[(T, "    g->reserved = 0;\n", "")], **ONE)
def gate_reserved_field_not_cleared(st):
    setup_fails(st, "gives `ef be 08 00 05 8e ad de 00 80 ff ff ff ff ff ff`")


@mutant(
    "05",
    patches=[(T, "    g->offset_mid = (uint16_t)(a >> 16);", "    g->offset_mid = (uint16_t)(a >> 8);   /* mutant */")],
    **ONE,
)
def gate_offset_mid_shifted_wrong(st):
    setup_fails(st, "idt_set_gate(0): the offset fields do not give the handler's address")


@mutant(
    "05", patches=[(T, "    g->ist = (uint8_t)(ist & 7);", "    g->ist = 0;   /* mutant */\n    (void)ist;")], **ONE
)
def gate_ist_ignored(st):
    setup_fails(st, "idt_set_gate(8): the IST field is wrong")


@mutant(
    "05",
    patches=[
        (
            T,
            "    g->type_attr = GATE_PRESENT | GATE_INTERRUPT;",
            "    g->type_attr = GATE_PRESENT | GATE_TRAP;   /* mutant */",
        )
    ],
    **ONE,
)
def trap_gate_not_interrupt_gate(st):
    setup_fails(st, "the type is not a 64-bit interrupt gate")


@mutant(
    "05",
    patches=[
        (
            T,
            "    g->type_attr = GATE_PRESENT | GATE_INTERRUPT;",
            "    g->type_attr = GATE_PRESENT | 0x60 | GATE_INTERRUPT;   /* mutant: DPL 3 */",
        )
    ],
    **ONE,
)
def gate_with_dpl_3(st):
    setup_fails(st, "the DPL is not 0")


@mutant("05", patches=[(T, "    g->selector = SEG_KCODE;", "    g->selector = SEG_KDATA;   /* mutant */")], **ONE)
def gate_with_the_data_selector(st):
    setup_fails(st, "the selector is not SEG_KCODE")


@mutant(
    "05",
    patches=[
        (
            T,
            " | ((base >> 24 & 0xff) << 56);\n    desc[1] = base >> 32;",
            ";   /* mutant: base bits 31..24 and 63..32 left out */\n    desc[1] = 0;",
        )
    ],
    **ONE,
)
def tss_base_high_bits_left_out(st):
    # The TSS lives below 16 MiB: only the made-up descriptor shows it.
    setup_fails(st, "FAIL: tss_descriptor(0xffff8000deadbeef, limit 0xabcde) gives 0000000000000000 000a89adbeefbcde")


@mutant(
    "05",
    patches=[
        (
            T,
            "              (((uint64_t)limit >> 16 & 0xf) << 48) |",
            "              /* mutant: limit bits 19..16 left out */",
        )
    ],
    **ONE,
)
def tss_limit_high_bits_left_out(st):
    setup_fails(st, "gives 00000000ffff8000 de0089adbeefbcde")


@mutant(
    "05",
    patches=[
        (T, "    desc[1] = base >> 32;", "    desc[1] |= base >> 32;   /* mutant: the upper half never cleared */")
    ],
    **ONE,
)
def tss_descriptor_upper_half_not_cleared(st):
    setup_fails(st, "gives ffffffffffffffff de0a89adbeefbcde")


@mutant("05", patches=[(T, " | (1ull << 47)", " | (1ull << 47) | (1ull << 55)   /* mutant: G set */")], **ONE)
def tss_descriptor_with_granularity_set(st):
    setup_fails(st, "gives 00000000ffff8000 de8a89adbeefbcde")


@mutant("05", patches=[(T, "((uint64_t)TSS_TYPE << 40)", "((uint64_t)0xb << 40)   /* mutant: busy */")], **ONE)
def tss_descriptor_busy(st):
    setup_fails(st, "tss_descriptor: the type is not an available 64-bit TSS (9)")


@mutant("05", patches=[(T, "f < __fixup_end; f++)", "f <= __fixup_end; f++)   /* mutant */")], **ONE)
def fixup_find_reads_one_entry_past_the_end(st):
    setup_fails(st, "fixup_find finds an entry that is not in the table (one past __fixup_end?)")


@mutant("05", patches=[(T, "f < __fixup_end; f++)", "f < __fixup_end - 1; f++)   /* mutant */")], **ONE)
def fixup_find_stops_one_entry_early(st):
    setup_fails(st, "fixup_find does not find entry 3 of 4")


@mutant("05", patches=[(T, "            return f->resume;", "            return f->insn;   /* mutant */")], **ONE)
def fixup_find_returns_the_faulting_address(st):
    setup_fails(st, "not the resume address")
    setup_fails(st, "of entry 0 of 4: the entry's insn, its first field")
    assert "does not find" not in check_of(st, "faults: IDT, TSS").message


@mutant("05", patches=[("labs/05-faults/vectors.S", "    iretq\n", "    ret   /* mutant: not iretq */\n")], **ONE)
def trap_return_with_ret_names_the_code_selector(st):
    # the first trap returns to its fix-up with ret; the next ret pops the frame's CS word (0x8)
    diag = diagnosis_text(st)
    assert "rip 0x8 is no address: it is the kernel code selector (SEG_KCODE" in diag, diag
    assert "takes iretq" in diag and "in usable RAM" not in diag
    assert "rip 0x8 is in page 0, which the kernel leaves unmapped so that a null pointer faults" in diag


def decode_fails(st, *words):
    c = check_of(st, "faults: pf_decode")
    assert not c.passed and all(w in c.message for w in words), c.message


@mutant("05", patches=[(T, "buf[n++] = '|';", "buf[n++] = ',';   /* mutant */")], **ONE)
def pf_decode_joins_with_commas(st):
    decode_fails(st, "got `[fault] pf_decode(0x7f): protection,write,user")
    assert not check_of(st, "faults: page fault reading").passed


@mutant(
    "05",
    patches=[
        (
            T,
            'error & 8 ? "reserved-bit" : NULL,        error & 16 ? "fetch" : NULL,  '
            'error & 32 ? "protection-key" : NULL,\n'
            '        error & 64 ? "shadow-stack" : NULL,',
            'NULL, error & 16 ? "fetch" : NULL, NULL, NULL, /* mutant: only the bits the tests show */',
        )
    ],
    **ONE,
)
def pf_decode_ignores_bits_3_5_and_6(st):
    # The probes' error codes are 0x0, 0x3 and 0x11: only pf_decode(0x7f) shows it.
    decode_fails(st, "got `[fault] pf_decode(0x7f): protection|write|user|fetch`")
    assert check_of(st, "faults: page fault executing .data").passed


@mutant(
    "05",
    patches=[
        (T, "n < size - 1; w++)", "n < 1000; w++)   /* mutant: size ignored */"),
        (T, "if (i + 1 < 7 && words[i + 1] && n < size - 1)", "if (i + 1 < 7 && words[i + 1] && size)"),
    ],
    **ONE,
)
def pf_decode_ignores_the_buffer_size(st):
    decode_fails(st, "got `[fault] pf_decode(0x7f) into 16 bytes: FAIL: it wrote past them`")


@mutant(
    "05",
    patches=[
        (T, "n < size - 1; w++)", "n < size; w++)   /* mutant: no room kept for the NUL */"),
        (T, "if (i + 1 < 7 && words[i + 1] && n < size - 1)", "if (i + 1 < 7 && words[i + 1] && n < size)"),
    ],
    **ONE,
)
def pf_decode_writes_the_nul_past_the_end(st):
    decode_fails(st, "FAIL: it wrote past them")


@mutant(
    "05",
    patches=[(T, 'error & 4 ? "user" : "kernel",', 'error & 4 ? "kernel" : "user", /* mutant */')],
    **ONE,
)
def pf_decode_user_and_kernel_swapped(st):
    decode_fails(st, "pf_decode(0x7f): protection|write|kernel")
    assert not check_of(st, "faults: page fault reading an unmapped page").passed


# A forger (issue 20): trap.c's skeleton, and the lab's whole transcript
# printed (the probes' addresses are the given code's: a forger knows them).
@mutant("05", patches=[forger("05-faults/trap.c", "05")])
def forger_printing_the_whole_transcript_earns_nothing(st):
    assert earned_without_work(st) == [] and st.score == 0, earned_without_work(st)
    assert "QEMU shows IDTR" in check_of(st, "faults: IDT").message
    assert "QEMU's -d int log shows no vector 14 error 0x3" in check_of(st, "faults: page fault writing .text").message
