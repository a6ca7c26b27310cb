"""What the book's figures read from a built kernel: its sections (llvm-objdump
-h), its symbols (kernel.sym), and the text figure of the memory layout that
`<!-- figure: memory-layout NN -->` asks for. book/build.py writes the
figures into the chapters; book/figures.py draws the SVG ones from the same
facts (a module of its own, so that neither imports the other).
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class BookError(Exception):
    """The book cannot be built; the message is one line."""


class FigureError(BookError):
    """A figure directive that names no known figure or no stage, or whose
    kernel cannot be built or read."""


FIGURE_KINDS = ("memory-layout",)
TOOL_TIMEOUT = 60
TABLE_SIZE = 4096  # every x86-64 page table is one 4 KiB page
BOOT_TABLES = ("boot_pml4", "boot_pdpt", "boot_pd")
SECTION_NOTES = {
    ".multiboot": "Multiboot2 header",
    ".text": "code",
    ".rodata": "constants, strings",
    ".data": "variables with a value, the GDT",
}
BOUNDARY_SYMBOLS = (
    "__kernel_start",
    "__bss_start",
    "__heap_start",
    "__heap_end",
    "__stack_guard",
    "__stack_bottom",
    "__stack_top",
    "__bss_end",
    "__kernel_end",
)
BOX = 24  # inner width of the figure's boxes


def grader():
    """The kit's grader modules that the figures use: (grader.labs, grader.build, grader.stage)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from grader import build as grader_build, labs as grader_labs, stage as grader_stage

    return grader_labs, grader_build, grader_stage


def figure_lab(kind, stage):
    """The lab whose stage the figure draws, or raises FigureError."""
    if kind not in FIGURE_KINDS:
        raise FigureError(f"no figure `{kind}` (figures: {', '.join(FIGURE_KINDS)})")
    if not re.fullmatch(r"\d{1,2}", stage):
        raise FigureError(f"the stage is a lab number such as 03, not `{stage}`")
    labs, _, _ = grader()
    try:
        return labs.find(stage, ROOT)
    except labs.LabError as e:
        raise FigureError(str(e)) from None


def tool_output(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    except FileNotFoundError:
        raise FigureError(f"{cmd[0]} is missing (Debian package llvm; `make setup` as root installs it)") from None
    except subprocess.TimeoutExpired:
        raise FigureError(f"{cmd[0]} took more than {TOOL_TIMEOUT}s") from None
    if r.returncode != 0:
        first = (r.stderr.strip().splitlines() or ["(no message)"])[0]
        raise FigureError(f"{' '.join(cmd[:2])} failed: {first}")
    return r.stdout


def built_kernel(lab):
    """(the grader's Build, where its student files came from)."""
    glabs, gbuild, gstage = grader()
    kind = "solutions" if glabs.staff_copy(ROOT) else "labs"  # a students' copy draws from its own labs/
    st = gstage.make(lab.name, gstage.Origin(kind), ROOT)
    try:
        return gbuild.build(st), ("solutions/" if st.origin.kind == "solutions" else "labs/")
    except gbuild.BuildError as e:
        raise FigureError(f"stage {lab.number:02d} does not build: {e.summary}") from None
    except OSError as e:
        raise FigureError(f"stage {lab.number:02d} does not build: {e}") from None


def elf_sections(elf):
    """{name: (address, size, type)} of the sections loaded in memory (llvm-objdump -h)."""
    found = {}
    for line in tool_output(["llvm-objdump", "-h", str(elf)]).splitlines():
        m = re.match(r"^\s*\d+\s+(\.\S+)\s+([0-9a-fA-F]+)\s+([0-9a-fA-F]+)\s*(\S*)", line)
        if m and int(m.group(3), 16) != 0:
            found[m.group(1)] = (int(m.group(3), 16), int(m.group(2), 16), m.group(4))
    return found


def elf_symbols(b):
    """[(address, type letter, name)] sorted by address: the build's own kernel.sym."""
    return [(s.addr, s.kind, s.name) for s in b.symbols.all]


def size_text(n):
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def bss_regions(bss, symbols):
    """The parts of .bss, in address order: [(start, end, name, note)]. The
    heap (lab 03) and the guard page (lab 04) appear in the stages that have them."""
    addr = {name: a for a, _, name in symbols}
    need = BOOT_TABLES + ("__stack_bottom", "__stack_top")
    missing = [n for n in need if n not in addr]
    if missing:
        raise FigureError(f"kernel.elf has no symbol {', '.join(missing)}")
    start, end = bss[0], bss[0] + bss[1]
    tables = (min(addr[t] for t in BOOT_TABLES), max(addr[t] for t in BOOT_TABLES) + TABLE_SIZE)
    later = [
        (lo, hi, name, note)
        for lo, hi, name, note in (
            ("__heap_start", "__heap_end", "  heap", "HEAP_SIZE bytes, for kmalloc"),
            ("__stack_guard", "__stack_bottom", "  stack guard page", "left unmapped from lab 04"),
        )
        if lo in addr and hi in addr
    ]
    first_later = addr[later[0][0]] if later else addr["__stack_bottom"]
    others = [
        name
        for a, kind, name in symbols
        if tables[1] <= a < first_later and kind in "bBdD" and not name.startswith("__")
    ]
    note = ", ".join(others)
    if len(note) > 48:
        note = note[: note.rfind(", ", 0, 44)] + ", ..."
    parts = [
        (tables[0], tables[1], "  boot page tables", ", ".join(BOOT_TABLES)),
        (tables[1], first_later, "  other variables", note),
    ]
    for lo, hi, name, note_ in later:
        if addr[lo] > parts[-1][1]:
            parts.append((parts[-1][1], addr[lo], "  (padding)", ""))
        parts.append((addr[lo], addr[hi], name, note_))
    if addr["__stack_bottom"] > parts[-1][1]:
        parts.append((parts[-1][1], addr["__stack_bottom"], "  (padding)", ""))
    parts.append((addr["__stack_bottom"], addr["__stack_top"], "  kernel stack", "RSP starts at __stack_top"))
    edges = [start] + [x for p in parts for x in p[:2]] + [end]
    if any(b < a for a, b in zip(edges, edges[1:])):
        raise FigureError("the .bss symbols are not in the order kernel.ld gives them")
    if tables[0] > start:
        parts.insert(0, (start, tables[0], "  variables", ""))
    if addr["__stack_top"] < end:
        parts.append((addr["__stack_top"], end, "  rest of .bss", ""))
    return [p for p in parts if p[1] > p[0]]


def memory_layout(lab):
    """The lines of the memory-layout figure of stage `lab`."""
    b, source = built_kernel(lab)
    elf = b.elf
    sections, symbols = elf_sections(elf), elf_symbols(b)
    if ".bss" not in sections:
        raise FigureError("kernel.elf has no .bss section")
    regions = []  # (start, end, name, note), in address order
    ordered = sorted(sections.items(), key=lambda kv: kv[1][0])
    for i, (name, (start, size, _)) in enumerate(ordered):
        if name == ".bss":
            regions += bss_regions(sections[".bss"], symbols)
        else:
            regions.append((start, start + size, name, SECTION_NOTES.get(name, "")))
        following = ordered[i + 1][1][0] if i + 1 < len(ordered) else None
        if following is not None and following > start + size:
            regions.append((start + size, following, "(padding)", "up to the next section"))
    bss_start, bss_size, bss_type = sections[".bss"]
    width = 8 if regions[-1][1] < 1 << 32 else 16
    names = {}
    for a, _, name in sorted(
        symbols, key=lambda s: (s[0], BOUNDARY_SYMBOLS.index(s[2]) if s[2] in BOUNDARY_SYMBOLS else 0)
    ):
        if name in BOUNDARY_SYMBOLS:
            names.setdefault(a, []).append(name)

    def edge(a):
        line = "=" if a in (bss_start, bss_start + bss_size) else "-"
        marks = ", ".join(names.get(a, []))
        return (f" 0x{a:0{width}x} +{line * BOX}+ {marks}").rstrip()

    rel = elf.relative_to(ROOT) if ROOT in elf.parents else elf
    out = [f" stage {lab.number:02d}, built from {source}: llvm-objdump -h of {rel} and its kernel.sym", ""]
    for k, (start, end, name, note) in enumerate(regions):
        if k == 0 or regions[k - 1][1] != start:
            out.append(edge(start))
        out.append(f" {'':{width + 2}} | {name:<{BOX - 2}} | {size_text(end - start):>8}  {note}".rstrip())
        out.append(edge(end))
    out += [
        "",
        f" between the = lines: .bss, {size_text(bss_size)} (type {bss_type or '?'} in llvm-objdump):",
        "   it takes memory but no room in kernel.elf, and _start zeroes it",
    ]
    return out


FIGURES = {}


def figure(kind, stage):
    """The text of a figure (cached: each figure is drawn once per run)."""
    key = (kind, stage)
    if key not in FIGURES:
        lab = figure_lab(kind, stage)
        FIGURES[key] = "\n".join(memory_layout(lab))
    return FIGURES[key]
