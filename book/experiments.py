"""The book's experiments: the deliberate breaks whose reports the chapters show.

Each experiment is a list of patches (path, old text, new text), or FlipBit
for a binary file, applied with the grader's own mutant machinery
(grader/mutants.py make_tree) to a scratch copy of the kit; a transcript
line names it with experiment=NAME. Every old text must be found, so an
experiment that no longer applies stops the sync with its name instead of
leaving an old report in the book. An experiment with no patch is just a
scratch copy.

The experiments that patch the reference code (solutions/) quote its lines,
so they live in book/experiments_staff.py, which the students' copy has not;
they are added here when it is present.
"""


class FlipBit(tuple):
    """A patch that flips one bit of a binary file. The mutant machinery calls
    it with the scratch copy's root (a callable patch); read as a (path, old,
    new) triple, as the checks of every experiment read patches, it is the
    experiment's precondition, a text that must still be there and is left
    unchanged: the lab's lab.json still loads the file as a module. Its repr
    is stable, so that the transcripts that use it are made from the same
    inputs in every run."""

    def __new__(cls, rel, offset, bit, lab_json, module):
        self = super().__new__(cls, (lab_json, f'"{module}"', f'"{module}"'))
        self.rel, self.offset, self.bit = rel, offset, bit
        return self

    def __call__(self, root):
        path = root / self.rel
        data = bytearray(path.read_bytes())
        data[self.offset] ^= 1 << self.bit
        path.write_bytes(bytes(data))

    def __repr__(self):
        return f"FlipBit({self.rel!r}, {self.offset}, {self.bit})"


EXPERIMENTS = {
    # chapter 1: a boot identity map of 4 MiB instead of 1 GiB.
    "idmap-4mib": [
        ("labs/01-boot/memlayout.h", "#define BOOT_IDMAP_SIZE  0x40000000", "#define BOOT_IDMAP_SIZE  0x400000")
    ],
    # chapter 1: a 64-bit code descriptor with L=1 and D=1.
    "code-l-and-d": [("labs/01-boot/boot.S", "    .quad 0x00af9b000000ffff", "    .quad 0x00ef9b000000ffff")],
    # chapter 2: poweroff without its wait for TEMT.
    "no-temt-wait": [
        ("labs/01-boot/power.c", "    while ((inb(COM1_PORT + UART_LSR) & LSR_TEMT) == 0)\n        ;\n", "")
    ],
    # chapter 3: the kernel heap at a made-up fixed address, inside and past the boot identity map.
    "heap-at-33mib": [
        (
            "labs/03-bss-heap/kheap.c",
            "    heap_init(&kernel_heap, __heap_start, __heap_end);",
            "    heap_init(&kernel_heap, (void *)0x2100000, (void *)(0x2100000 + HEAP_SIZE));",
        )
    ],
    "heap-at-2gib": [
        (
            "labs/03-bss-heap/kheap.c",
            "    heap_init(&kernel_heap, __heap_start, __heap_end);",
            "    heap_init(&kernel_heap, (void *)0x80000000, (void *)(0x80000000 + HEAP_SIZE));",
        )
    ],
    # chapter 4: the identity map stops at 4 MiB.
    "paging-4mib": [
        (
            "labs/04-paging/paging.c",
            "        if (r->type != MB2_MEM_USABLE)\n            continue;\n",
            "        if (r->type != MB2_MEM_USABLE)\n            continue;\n"
            "        end = end > 0x400000 ? 0x400000 : end;\n",
        )
    ],
    # chapter 5: gate 8 without an IST stack (both lines, so the check agrees).
    "no-ist": [
        (
            "labs/05-faults/fault.c",
            "        idt_set_gate(v, trap_stubs[v], v == 8 ? IST_DOUBLE_FAULT : 0);",
            "        idt_set_gate(v, trap_stubs[v], 0);",
        ),
        (
            "labs/05-faults/fault.c",
            "        ok = fault_check_gate(v, trap_stubs[v], v == 8 ? IST_DOUBLE_FAULT : 0);",
            "        ok = fault_check_gate(v, trap_stubs[v], 0);",
        ),
    ],
    # chapter 5: the stubs of #GP and #PF push a dummy error code on top of the CPU's.
    "error-code-twice": [
        (
            "labs/05-faults/vectors.S",
            "    .if !TRAP_HAS_ERROR(\\v)",
            "    .if !TRAP_HAS_ERROR(\\v) || \\v == 13 || \\v == 14",
        )
    ],
    # chapter 5: a probe without its fix-up entry.
    "no-fixup-entry": [("labs/05-faults/probes.S", "    FIXUP(probe_read_insn, 1f)\n", "")],
    # chapter 4: a dump that prints `-` where the x goes.
    "dump-lies": [("labs/04-paging/paging.c", "run->flags & PTE_NX ? '-' : 'x');", "'-');")],
    # chapter 4: the kernel's code mapped no-execute.
    "text-nx": [
        ("labs/04-paging/paging.c", "#define KERNEL_TEXT   (PTE_P)  ", "#define KERNEL_TEXT   (PTE_P | PTE_NX)")
    ],
    # chapter 5: a fault report that reads address 0 after its first words.
    "handler-faults": [
        (
            "labs/05-faults/fault.c",
            '    kprintf("[fault] %s at rip %p", fault_names[tf->vector & 31], (void *)tf->rip);\n',
            '    kprintf("[fault] %s at rip %p", fault_names[tf->vector & 31], (void *)tf->rip);\n'
            "    (void)*(volatile char *)0;\n",
        )
    ],
    # chapter 5: the TSS's IST1 pointer never set.
    "ist-zero": [
        (
            "labs/05-faults/fault.c",
            "    tss.ist[IST_DOUBLE_FAULT - 1] = (uint64_t)ist_stack + sizeof ist_stack;\n",
            "    tss.ist[IST_DOUBLE_FAULT - 1] = 0;   /* experiment: IST1 left at 0 */\n    (void)ist_stack;\n",
        )
    ],
    # chapter 5: ltr twice.
    "ltr-twice": [("labs/05-faults/fault.c", '"lgdt %0; ltr %w1"', '"lgdt %0; ltr %w1; ltr %w1"')],
    # chapter 6: simd_enable without the SSE bits of CR4 (the AVX state is still enabled).
    "sse-off": [
        (
            "labs/06-jit-model/model_jit.c",
            "    cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT | (xcr0 ? CR4_OSXSAVE : 0);",
            "    cr4 |= (xcr0 ? CR4_OSXSAVE : 0);",
        )
    ],
    # chapter 6: CR4.OSXSAVE set, but XCR0 never written.
    "no-xsetbv": [("labs/06-jit-model/model_jit.c", "    if (xcr0)\n        xsetbv(XCR0, xcr0);\n", "")],
    # chapter 6: the input activations 8 bytes past a 16-byte boundary.
    "misaligned-in": [
        (
            "labs/06-jit-model/model_jit.c",
            "    jm->in = jit_alloc(2 * MODEL_IN);",
            "    jm->in = (char *)jit_alloc(2 * MODEL_IN + 16) + 8;",
        )
    ],
    # chapter 6: the interpreter rounds down instead of to nearest.
    "requant-down": [
        (
            "labs/06-jit-model/model.c",
            "    int64_t v = (acc * mult + (1ll << 23)) >> 24;",
            "    int64_t v = (acc * mult) >> 24;",
        )
    ],
    # chapter 6: one bit of the model flipped (byte 5000, inside w1).
    # chapter 6: the batched code broadcasts the previous context's inputs.
    "batch-previous-inputs": [
        (
            "labs/06-jit-model/jit_wide.c",
            "RDI, JIT_NOREG, 1, c * in_stride + 4 * s);",
            "RDI, JIT_NOREG, 1, (c ? c - 1 : 0) * in_stride + 4 * s);",
        )
    ],
    "model-bit-flip": [FlipBit("labs/06-jit-model/chars.model", 5000, 0, "labs/06-jit-model/lab.json", "chars.model")],
    # chapter 6: no change at all, a scratch copy of the kit for the commands that build
    # build/native/ (make jit-check, make bench-jit), so that two of them never share it.
    "kit-copy": [],
    # appendix: kmain loads an empty IDT and executes int3.
    "lidt-int3": [
        (
            "labs/01-boot/kmain.c",
            "    struct boot_info *bi = bootinfo_init(magic, mbi); /* lab 01: what GRUB told us */\n",
            "    struct boot_info *bi = bootinfo_init(magic, mbi); /* lab 01: what GRUB told us */\n"
            "    static const struct { uint16_t limit; uint64_t base; } __attribute__((packed)) no_idt = { 0, 0 };\n"
            '    __asm__ volatile("lidt %0\\n\\tint3" : : "m"(no_idt));   /* a breakpoint with no IDT */\n',
        )
    ],
}

try:  # the staff's copy: the experiments on the reference code
    from experiments_staff import STAFF_EXPERIMENTS
except ImportError:  # a students' copy
    STAFF_EXPERIMENTS = {}
EXPERIMENTS.update(STAFF_EXPERIMENTS)
