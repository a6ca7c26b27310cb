"""The book's drawn figures: SVG files under book/figures/, one or more per
chapter, written by `python3 book/build.py --sync` and checked by
`--check` (grader/tests/test_book.py): a figure that is out of date with
what draws it fails the tests.

Several are drawn from the kernel's own data rather than by hand: the
UART's registers from labs/01-boot/uart.h, the heap inside .bss from the
kernel.sym of stage 03 (built by the grader's recipe, as the memory-layout
text figure is), the trap frame from struct trap_frame in
labs/05-faults/trap.h. The others are drawings of the hardware facts the
chapters state, with the section of the manual named in their captions.

Python 3 standard library only. Every figure is at most 640 units wide and
uses 13-unit text, so that it stays readable when a phone scales it down.
"""
import html
import re
from pathlib import Path

import kernel_facts

BOOK = Path(__file__).resolve().parent
ROOT = BOOK.parent
DIR = BOOK / "figures"

SANS = "DejaVu Sans, Liberation Sans, Arial, sans-serif"
MONO = "DejaVu Sans Mono, Liberation Mono, Consolas, monospace"
INK, MUTED, LINE = "#1d1f21", "#5c6166", "#6b7075"
FILL = {
    "16": "#f3e3c3",
    "32": "#dbe7f5",
    "compat": "#e6dcf3",
    "64": "#d7efd9",
    "grey": "#eef0f2",
    "warn": "#f8d7d3",
    "cpu": "#dbe7f5",
    "stub": "#f3e3c3",
    "common": "#d7efd9",
    "white": "#ffffff",
}


class Svg:
    def __init__(self, width, height, title):
        self.w, self.h, self.title, self.parts = width, height, title, []

    def rect(self, x, y, w, h, fill="white", stroke=LINE, rx=3, dash=False):
        d = ' stroke-dasharray="4 3"' if dash else ""
        self.parts.append(
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="{rx}" '
            f'fill="{FILL.get(fill, fill)}" stroke="{stroke}"{d}/>'
        )

    def text(self, x, y, s, anchor="start", size=13, mono=False, bold=False, color=INK):
        font = MONO if mono else SANS
        weight = ' font-weight="bold"' if bold else ""
        self.parts.append(
            f'<text x="{x}" y="{y}" text-anchor="{anchor}" font-family="{font}" '
            f'font-size="{size}" fill="{color}"{weight}>{html.escape(s)}</text>'
        )

    def line(self, x1, y1, x2, y2, arrow=False, color=LINE, dash=False):
        m = ' marker-end="url(#arrow)"' if arrow else ""
        d = ' stroke-dasharray="4 3"' if dash else ""
        self.parts.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{color}" stroke-width="1.3"{m}{d}/>')

    def path(self, d, color=INK, width=2):
        self.parts.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="{width}"/>')

    def render(self):
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.w}" height="{self.h}" '
            f'viewBox="0 0 {self.w} {self.h}" role="img" aria-label="{html.escape(self.title)}">\n'
            f"<title>{html.escape(self.title)}</title>\n"
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{LINE}"/>'
            "</marker></defs>\n"
            f'<rect x="0" y="0" width="{self.w}" height="{self.h}" fill="#ffffff"/>\n'
        )
        return head + "\n".join(self.parts) + "\n</svg>\n"


# --- chapter 1: the boot chain ----------------------------------------------------


def boot_chain():
    steps = [
        ("16", "firmware (SeaBIOS)", "16-bit real mode, paging off", "loads GRUB from the CD"),
        (
            "32",
            "GRUB 2",
            "32-bit protected mode, paging off",
            "loads kernel.elf at 1 MiB; EAX = 0x36d76289, EBX = info",
        ),
        (
            "32",
            "_start (boot.S)",
            "32-bit, GRUB's CS, ESP undefined",
            "zero .bss, stack, COM1, magic, CPUID, tables, lgdt",
        ),
        (
            "compat",
            "lm_enable (longmode.S)",
            "1 CR4.PAE  2 CR3  3 EFER.LME, NXE  4 CR0.PG, WP",
            "the CPU sets EFER.LMA: long mode, compatibility sub-mode",
        ),
        ("compat", "boot_check_long_mode", "still 32-bit code", "checks each bit, or prints [boot] FAIL"),
        ("64", "ljmp $0x08, $start64", "loads CS from our GDT: L=1, D=0", "64-bit code from here on"),
        ("64", "start64 (boot.S)", "DS, ES, SS = 0x10; RSP = __stack_top", "RDI = magic, RSI = info"),
        ("64", "kmain (kmain.c)", "64-bit C", "one call line per lab"),
    ]
    top, bh, gap = 44, 52, 14
    s = Svg(640, top + len(steps) * (bh + gap) + 40, "The boot chain, from the firmware to kmain")
    s.text(320, 24, "From power-on to kmain: each box is a state of the CPU", "middle", bold=True)
    for i, (mode, name, state, does) in enumerate(steps):
        y = top + i * (bh + gap)
        s.rect(20, y, 600, bh, mode)
        s.text(32, y + 21, name, bold=True, mono=True)
        s.text(608, y + 21, state, "end", size=12, color=MUTED)
        s.text(32, y + 41, does, size=12.5)
        if i:
            s.line(320, y - gap, 320, y - 1, arrow=True)
    y = top + len(steps) * (bh + gap) + 8
    for j, (mode, label) in enumerate(
        (("16", "16-bit"), ("32", "32-bit protected"), ("compat", "IA-32e, compatibility"), ("64", "64-bit mode"))
    ):
        x = 20 + j * 152
        s.rect(x, y, 18, 14, mode, rx=2)
        s.text(x + 24, y + 12, label, size=12)
    return s.render()


# --- chapter 2: the UART ---------------------------------------------------------


def uart_registers():
    """Offsets and names from labs/01-boot/uart.h, then one byte on the wire."""
    defs = re.findall(
        r"^#define (UART_[A-Z]+)\s+(\d+)\s+/\*\s*(.*?)\s*\*/", (ROOT / "labs/01-boot/uart.h").read_text(), re.M
    )
    by_off = {}
    for name, off, note in defs:
        by_off.setdefault(int(off), []).append((name[5:], note))
    s = Svg(640, 560, "The 16550's registers at COM1 and the timing of one byte in 8N1")
    s.text(320, 24, "COM1 = I/O port 0x3f8 + offset (names from labs/01-boot/uart.h)", "middle", bold=True)
    y = 40
    for off in range(0, 8):
        regs = by_off.get(off, [])
        s.rect(20, y, 70, 30, "grey")
        s.text(55, y + 20, f"+{off}  0x{0x3f8 + off:x}", "middle", size=12, mono=True)
        s.rect(90, y, 530, 30, "white")
        label = "   ".join(f"{n}: {note}" for n, note in regs) or "(not used by the kit: MSR, SCR)"
        if len(label) > 78:
            label = label[:76] + "..."
        s.text(100, y + 20, label, size=12)
        y += 34
    y += 18
    s.text(20, y, "One byte on the TX wire: 'K' (0x4b) in 8N1, least significant bit first", bold=True)
    y += 16
    bits = [("idle", 1)] + [("start", 0)] + [(f"d{i}", (0x4B >> i) & 1) for i in range(8)] + [("stop", 1), ("idle", 1)]
    x0, bw, hi, lo = 30, 50, y + 20, y + 70
    d = f"M{x0},{hi if bits[0][1] else lo}"
    for i, (name, level) in enumerate(bits):
        xa, xb = x0 + i * bw, x0 + (i + 1) * bw
        yl = hi if level else lo
        d += f" L{xa},{yl} L{xb},{yl}"
        s.line(xb, y + 10, xb, y + 80, color="#c5c9cc", dash=True)
        s.text((xa + xb) / 2, y + 98, name, "middle", size=12, mono=True)
        if name.startswith("d"):
            s.text((xa + xb) / 2, y + 50, str(level), "middle", size=12, mono=True, color=MUTED)
    s.path(d)
    s.text(x0 - 4, hi + 4, "1", "end", size=11, color=MUTED)
    s.text(x0 - 4, lo + 4, "0", "end", size=11, color=MUTED)
    y += 122
    s.line(x0 + bw, y, x0 + 11 * bw, y, arrow=True)
    s.line(x0 + 11 * bw, y, x0 + bw, y, arrow=True)
    s.text(
        x0 + 6 * bw, y - 6, "10 bit times = one frame: at 115200 baud, 8.68 us a bit, 86.8 us a byte", "middle", size=12
    )
    y += 26
    s.text(
        20,
        y,
        "LSR.THRE (bit 5) is set when the holding register (the FIFO) is empty: the next byte may be written.",
        size=12,
    )
    s.text(
        20,
        y + 18,
        "LSR.TEMT (bit 6) is set only when the shift register has sent the stop bit too: the line is idle.",
        size=12,
    )
    s.text(
        20, y + 36, "Divisor = 115200 / baud, written to DLL (+0) and DLM (+1) while LCR.DLAB (bit 7) is set.", size=12
    )
    return s.render()


# --- chapter 3: the heap inside .bss ------------------------------------------------


def heap_in_bss():
    """The parts of .bss of stage 03, from its kernel.sym (as the text figure)."""
    lab = kernel_facts.figure_lab("memory-layout", "03")
    b, source = kernel_facts.built_kernel(lab)
    sections = kernel_facts.elf_sections(b.elf)
    bss = sections[".bss"]
    parts = kernel_facts.bss_regions(bss, kernel_facts.elf_symbols(b))
    s = Svg(640, 100 + 46 * len(parts) + 40, "The heap inside .bss, stage 03")
    s.text(320, 24, f"Inside .bss of stage 03 (built from {source}, kernel.sym)", "middle", bold=True)
    s.text(320, 42, "higher addresses at the top; heights are not to scale", "middle", size=12, color=MUTED)
    y = 58
    fills = {"heap": "64", "kernel stack": "cpu", "stack guard page": "warn", "boot page tables": "16"}
    for lo, hi, name, note in reversed(parts):
        name = name.strip()
        big = name == "heap"
        h = 70 if big else 40
        s.rect(170, y, 300, h, fills.get(name, "grey"), dash=name in ("(padding)", "stack guard page"))
        s.text(320, y + h / 2 + (0 if note else 5), name, "middle", bold=big)
        if note:
            note = note if len(note) <= 44 else note[: note.rfind(", ", 0, 40)] + ", ..."
            s.text(320, y + h / 2 + 17, note, "middle", size=11.5, color=MUTED)
        s.text(160, y + 5, f"0x{hi:x}", "end", size=12, mono=True)
        size = hi - lo
        s.text(
            480,
            y + h / 2 + 5,
            f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B",
            size=12,
            mono=True,
        )
        y += h + 6
    s.text(160, y, f"0x{parts[0][0]:x}", "end", size=12, mono=True)
    s.text(170, y + 22, "__bss_start: _start zeroes .bss up to __bss_end before anything uses it", size=12)
    return s.render()


# --- chapter 4: the page walk and an entry ------------------------------------------


def page_walk():
    s = Svg(640, 470, "A four-level page walk and the bits of an entry")
    s.text(320, 22, "A 48-bit virtual address, split for the walk (SDM vol. 3A, 4.5)", "middle", bold=True)
    fields = [
        ("63..48", "sign", 70, "grey"),
        ("47..39", "PML4", 100, "16"),
        ("38..30", "PDPT", 100, "32"),
        ("29..21", "PD", 100, "compat"),
        ("20..12", "PT", 100, "64"),
        ("11..0", "offset", 90, "white"),
    ]
    x, y = 40, 40
    centers = []
    for bits, name, w, fill in fields:
        s.rect(x, y, w, 40, fill, rx=0)
        s.text(x + w / 2, y + 17, name, "middle", bold=True)
        s.text(x + w / 2, y + 33, bits, "middle", size=11.5, mono=True, color=MUTED)
        centers.append(x + w / 2)
        x += w
    tables = [("CR3 -> PML4", "16"), ("PDPT", "32"), ("PD", "compat"), ("PT", "64")]
    ty = 130
    step, tw = 132, 110  # four tables, then the page, side by side with a gap between each
    for i, (name, fill) in enumerate(tables):
        tx = 30 + i * step
        s.rect(tx, ty, tw, 120, fill)
        s.text(tx + tw / 2, ty + 18, name, "middle", bold=True, size=12.5)
        for k in range(4):
            s.rect(tx + 10, ty + 30 + k * 20, tw - 20, 16, "white", rx=1)
        s.text(tx + tw / 2, ty + 112, "512 x 8 bytes", "middle", size=11, color=MUTED)
        s.line(centers[i + 1], y + 40, tx + tw / 2, ty + 30, arrow=True)
        if i < 3:
            s.line(tx + tw - 10, ty + 60, tx + step, ty + 60, arrow=True)
    px = 30 + 4 * step  # the 4 KiB page, right of the page table
    s.rect(px, ty, 600 - px + 10, 120, "white")
    s.text(px + (610 - px) / 2, ty + 55, "4 KiB", "middle", size=12)
    s.text(px + (610 - px) / 2, ty + 71, "page", "middle", size=12)
    s.line(30 + 3 * step + tw - 10, ty + 60, px, ty + 60, arrow=True)
    s.line(centers[5], y + 40, px + (610 - px) / 2, ty, arrow=True, dash=True)
    s.text(
        320,
        ty + 142,
        "A PD entry with PS = 1 maps a 2 MiB page: the walk stops there, bits 20..0 are the offset.",
        "middle",
        size=12,
    )
    ey = 320
    s.text(320, ey, "One 8-byte entry (x86.h names each bit: PTE_P, PTE_W, ... PTE_NX)", "middle", bold=True)
    cells = [
        ("63", "NX", 40, "warn"),
        ("62..52", "ign.", 56, "grey"),
        ("51..12", "physical address", 190, "64"),
        ("11..9", "ign.", 44, "grey"),
        ("8", "G", 30, "white"),
        ("7", "PS", 30, "compat"),
        ("6", "D", 30, "white"),
        ("5", "A", 30, "white"),
        ("4", "PCD", 36, "white"),
        ("3", "PWT", 36, "white"),
        ("2", "U", 30, "white"),
        ("1", "W", 30, "32"),
        ("0", "P", 30, "16"),
    ]
    x = 20
    for bits, name, w, fill in cells:
        s.rect(x, ey + 14, w, 44, fill, rx=0)
        s.text(x + w / 2, ey + 33, name, "middle", size=12, bold=name in ("P", "W", "NX", "PS"))
        s.text(x + w / 2, ey + 51, bits, "middle", size=10.5, mono=True, color=MUTED)
        x += w
    notes = [
        "P present; W writable (ring 0 too, with CR0.WP); U user; NX no execute (with EFER.NXE);",
        "PS: a 2 MiB page (in a PD entry); A and D are set by the CPU; PCD, PWT: caching (MMIO);",
        "Permissions combine along the walk: writable only if W in every level, executable only if no NX.",
    ]
    for k, n in enumerate(notes):
        s.text(20, ey + 84 + k * 18, n, size=12)
    return s.render()


# --- chapter 5: the trap frame on the stacks ------------------------------------


def trap_frame():
    """struct trap_frame, read from labs/05-faults/trap.h, as it lies on the stack."""
    text = (ROOT / "labs/05-faults/trap.h").read_text()
    body = re.search(r"struct trap_frame \{(.*?)\};", text, re.S).group(1)
    fields = [f.strip() for decl in re.findall(r"uint64_t ([^;]+);", body) for f in decl.split(",")]
    cpu = ["rip", "cs", "rflags", "rsp", "ss"]
    who = {f: ("cpu" if f in cpu else "stub" if f in ("vector", "error") else "common") for f in fields}
    rows = list(reversed(fields))  # highest address first: ss at the top
    rh = 19
    s = Svg(640, 80 + rh * len(rows) + 150, "The trap frame, and the IST stack of the double fault")
    s.text(
        320, 22, "struct trap_frame on the stack (labs/05-faults/trap.h), highest address first", "middle", bold=True
    )
    y0 = 40
    for i, f in enumerate(rows):
        y = y0 + i * rh
        s.rect(150, y, 160, rh, who[f], rx=0)
        s.text(230, y + 14, f, "middle", size=12.5, mono=True)
        s.text(140, y + 14, f"+{8 * (len(rows) - 1 - i)}", "end", size=11.5, mono=True, color=MUTED)
    groups = [
        ("cpu", "pushed by the CPU (SDM vol. 3A, 6.14.2)"),
        ("stub", "the stub: the vector (and a 0 error code if none)"),
        ("common", "trap_common: the 15 general registers"),
    ]
    for kind, label in groups:
        idx = [i for i, f in enumerate(rows) if who[f] == kind]
        ya, yb = y0 + idx[0] * rh, y0 + (idx[-1] + 1) * rh
        s.line(318, ya + 2, 318, yb - 2)
        s.text(326, (ya + yb) / 2 + 4, label, size=12)
    yb = y0 + len(rows) * rh
    s.text(150, yb + 16, "RSP -> r15: the struct trap_frame * in RDI for trap_handler", size=12)
    s.text(150, yb + 32, f"{len(rows)} words = {8 * len(rows)} bytes, a multiple of 16", size=12, color=MUTED)
    y = yb + 56
    s.rect(20, y, 190, 70, "warn")
    s.text(115, y + 20, "kernel stack", "middle", bold=True)
    s.text(115, y + 38, "an overflow runs into", "middle", size=12)
    s.text(115, y + 54, "the unmapped guard page", "middle", size=12)
    s.rect(420, y, 200, 70, "64")
    s.text(520, y + 20, "ist_stack, 8 KiB", "middle", bold=True)
    s.text(520, y + 38, "#DF: the CPU loads RSP", "middle", size=12)
    s.text(520, y + 54, "from TSS.IST1 first", "middle", size=12)
    s.line(210, y + 35, 418, y + 35, arrow=True)
    s.text(314, y + 28, "gate 8 has IST = 1", "middle", size=12)
    return s.render()


# --- chapter 6: the JIT pipeline ------------------------------------------------------


def jit_pipeline():
    steps = [
        ("grey", "chars.model", "int8 weights, int32 biases: a Multiboot2 module GRUB loads"),
        ("16", "model_load", "checks the header and the checksum; points at the arrays"),
        ("32", "jit_compile_layer", "each layer's code for the path simd_choose took: scalar, SSE2, AVX2 or VNNI"),
        ("warn", "heap pages, RW and NX", "kmalloc_pages: the code is written here, and cannot run"),
        ("64", "jit_seal", "pt entries changed to R-X, invlpg: now it runs, and cannot be written"),
        ("compat", "forward pass", "embedding -> 256 ReLU -> 256 ReLU -> 27 logits, integers only"),
        ("grey", "sampler", "exp table, xorshift32: the words, checked against the grader's Python"),
    ]
    top, bh, gap = 44, 48, 14
    s = Svg(640, top + len(steps) * (bh + gap) + 10, "The JIT pipeline, from weights to sealed pages")
    s.text(320, 24, "From the weights to sealed code: W^X at every moment", "middle", bold=True)
    for i, (fill, name, what) in enumerate(steps):
        y = top + i * (bh + gap)
        s.rect(20, y, 600, bh, fill)
        s.text(32, y + 20, name, bold=True, mono=True)
        s.text(32, y + 38, what, size=12.5)
        if i:
            s.line(320, y - gap, 320, y - 1, arrow=True)
    return s.render()


def roofline():
    """The roofline of chapter 6, drawn by labs/06-jit-model/roofline.py from
    the book's measurement, book/roofline.json (make bench-jit BOOK=1)."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("kit_roofline", ROOT / "labs/06-jit-model/roofline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.draw(json.loads((BOOK / "roofline.json").read_text()))


# name -> (function, needs the reference solutions to draw)
FIGURES = {
    "boot-chain.svg": (boot_chain, False),
    "uart.svg": (uart_registers, False),
    "heap-in-bss.svg": (heap_in_bss, True),
    "page-walk.svg": (page_walk, False),
    "trap-frame.svg": (trap_frame, False),
    "jit-pipeline.svg": (jit_pipeline, False),
    "roofline.svg": (roofline, False),
}


def staff_copy():
    """Figures drawn from the reference kernel are drawn and compared in the
    course staff's copy only (its .staff-copy mark: grader/labs.py staff_copy)."""
    import sys

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from grader import labs

    return labs.staff_copy(ROOT)


def write_all(out=print):
    """Draw every figure; returns how many files changed."""
    DIR.mkdir(exist_ok=True)
    changed = 0
    for name, (draw, needs) in FIGURES.items():
        if needs and not staff_copy():
            continue
        text = draw()
        path = DIR / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            changed += 1
    return changed


def check_all():
    """One message per figure that is missing, out of date, or never shown."""
    problems = []
    shown = "\n".join(p.read_text() for p in BOOK.glob("[0-9][0-9]-*.md"))
    for name, (draw, needs) in FIGURES.items():
        path = DIR / name
        if not path.is_file():
            problems.append(f"book/figures/{name}: missing (run python3 book/build.py --sync)")
            continue
        if f"figures/{name}" not in shown:
            problems.append(f"book/figures/{name}: no chapter shows it")
        if needs and not staff_copy():
            continue
        if path.read_text() != draw():
            problems.append(f"book/figures/{name}: out of date with what draws it (run python3 book/build.py --sync)")
    for path in DIR.glob("*.svg"):
        if path.name not in FIGURES:
            problems.append(f"book/figures/{path.name}: not drawn by book/figures.py")
    return problems
