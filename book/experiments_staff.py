"""The book's experiments on the reference code: deliberate breaks of the
files a student writes (solutions/), whose reports the chapters show.

They quote lines of the reference solutions, so this file is the staff's:
`make handout` leaves it out (grader/handout.py), and a test greps the whole
handout for every solution line (grader/tests/test_course_release.py). In a
students' copy the chapters keep these transcripts as they were made; they
cannot be run again there anyway, since they patch solutions/.
Their form is that of book/experiments.py, which adds them when present.
"""

STAFF_EXPERIMENTS = {
    # chapter 0: lm_enable sets CR0.PG first, before PAE, CR3 and LME.
    "pg-first": [
        (
            "solutions/01-boot/longmode.S",
            "    // LAB 1: your code here.\n",
            "    // LAB 1: your code here.\n    mov %cr0, %eax\n    or $CR0_PG, %eax\n    mov %eax, %cr0\n",
        )
    ],
    # chapter 2: serial_putc waits for LSR.DR (a byte received) instead of THRE: a hang.
    "putc-waits-for-dr": [
        (
            "solutions/02-serial/uart.c",
            "    while (!(inb(COM1_PORT + UART_LSR) & LSR_THRE))\n        ;\n    outb(COM1_PORT + UART_THR",
            "    while (!(inb(COM1_PORT + UART_LSR) & LSR_DR))\n        ;\n    outb(COM1_PORT + UART_THR",
        )
    ],
    # chapter 3: split only when five times FL_MIN_BLOCK would be left.
    "split-threshold": [
        (
            "solutions/03-bss-heap/freelist.c",
            "if (b->size - need >= FL_MIN_BLOCK) {",
            "if (b->size - need >= 5 * FL_MIN_BLOCK) {",
        )
    ],
    # chapter 4: pt_unmap without invlpg.
    "no-invlpg": [("solutions/04-paging/pt.c", "    invlpg(va);\n", "")],
    # chapter 4: new tables linked without PTE_W.
    "upper-entry-no-w": [
        ("solutions/04-paging/pt.c", "*e = (uint64_t)next | PTE_P | PTE_W;", "*e = (uint64_t)next | PTE_P;")
    ],
    # chapter 3: the room test written as a sum, which wraps.
    "sum-wraps": [("solutions/03-bss-heap/heap.c", "    if (size > h->end - addr)", "    if (addr + size > h->end)")],
    # chapter 4: invlpg given the address of the entry instead of the page.
    "invlpg-entry": [("solutions/04-paging/pt.c", "    invlpg(va);\n", "    invlpg((uint64_t)e);\n")],
    # chapter 4: the same, with the self-test's earlier unmap of a made-up page left out, so that the
    # remap test meets QEMU's TLB as it was before that unmap flushed it (QEMU forgives, Bochs does not).
    "invlpg-entry-first-unmap": [
        ("solutions/04-paging/pt.c", "    invlpg(va);\n", "    invlpg((uint64_t)e);\n"),
        ("labs/04-paging/paging_selftest.c", "    pt_unmap(SELFTEST_HIGH_VA);\n", ""),
    ],
    # chapter 6: jit_seal without invlpg.
    "seal-no-invlpg": [("solutions/06-jit-model/jit_seal.c", "        invlpg(va);\n", "")],
    # chapter 6: jit_seal clears PTE_NX only: writable and executable pages.
    "seal-writable": [
        ("solutions/06-jit-model/jit_seal.c", "        *e &= ~(PTE_W | PTE_NX);", "        *e &= ~PTE_NX;")
    ],
    # appendix: a magic breakpoint at the top of mb2_read_mmap.
    "magic-break": [
        (
            "solutions/01-boot/mb2.c",
            "mb2_read_mmap(const struct mb2_tag_mmap *t, struct boot_info *bi)\n{\n    // LAB 1: your code here.\n",
            "mb2_read_mmap(const struct mb2_tag_mmap *t, struct boot_info *bi)\n{\n    // LAB 1: your code here.\n"
            '    __asm__ volatile("xchg %bx, %bx");     /* Bochs: stop here */\n',
        )
    ],
}
