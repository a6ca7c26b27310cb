"""Values: the addresses, sizes and bytes that the prose and the text figures
quote from a build or a run, written by `python3 book/build.py --sync` and
compared by `--check`, never typed by hand.

In the prose, an HTML comment names where the number after it comes from
(a forge does not show the comment; the number reads as usual):

    the `movb` at <!-- value: sym 05 probe_write_insn -->`0x106bc8` faulted

The number the directive governs is the first one right after it: a bare
number, or the first number inside the code span that follows (so
`` <!-- value: ... -->`cr2 0x0000000000107c3f` `` rewrites only the
address). Several expressions separated by ` ; ` govern the first numbers
of that code span in turn; `_` leaves one alone.

A text figure with numbers in it is a template, book/text-figures/NAME.txt,
whose `{{EXPRESSION}}` placeholders are filled in; the chapter asks for it
with `<!-- figure: text NAME -->`, and the block under it is the rendering.
A transcript's command may use placeholders too (`x/4i {{sym 01 _start}}`):
they are filled in before it runs, and the `$ command` line shows the
number.

An expression is a source, then modifiers, then a format:

    sym LAB NAME          the address of NAME in kernel.sym of stage LAB,
                          built from the reference solutions
    size LAB NAME         its size (llvm-nm -S)
    end LAB NAME          its address plus its size: the top of a stack
    asm LAB FUNC RE [N]   the address of the Nth (default 1st) instruction
                          of FUNC in kernel.asm whose text matches RE
    define LAB NAME       a #define of the stage's given headers (memlayout.h)
    run NAME RE           group 1 of RE (or the whole match) in the block of
                          the transcript `name=NAME` of the same chapter:
                          a real run, re-run and compared by --verify
    fixed: WHY            a number that is not ours (another kernel's, a
                          story's): the directive only says so, and why
  modifiers, applied in order: +N, -N, *N, &N (&-16 aligns down), >>N, <<N,
  bits=HI:LO; `hex` reads a run's number as hexadecimal without 0x
  format: %#x (default for addresses), %#018x, %04x, %d, %,d (101,156),
  %le8 (the 8 little-endian bytes, `00 40 15 00 ...`); a run value with
  no modifier and no format keeps the text the run printed.

Python 3 standard library only.
"""
import re
import shlex
from pathlib import Path

from fences import in_code
from kernel_facts import BookError, built_kernel, figure_lab

BOOK = Path(__file__).resolve().parent
TEMPLATES = BOOK / "text-figures"
SOURCES = ("sym", "size", "end", "asm", "define", "run", "fixed")
NEEDS_BUILD = ("sym", "size", "end", "asm", "define")
# <!-- value: EXPR --> and what follows it on the line
DIRECTIVE = re.compile(r"<!--\s*value:\s*(.*?)\s*-->")
NUMBER = re.compile(r"(?<![\w.$/-])(0x[0-9a-fA-F]+|\d[\d,]*\d|\d[0-9a-fA-F]*)(?![\w/-])")
BARE = re.compile(r"(0x[0-9a-fA-F]+|\d[\d,]*\d|\d[0-9a-fA-F]*)(?![\w])")
PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
FORMAT = re.compile(r"%[-#0]*\d*[xXd]|%,d|%le\d+")
OPERATOR = re.compile(r"^(\+|-|\*|&|>>|<<)(-?(?:0x[0-9a-fA-F]+|\d+))$")
# A kernel-range address, 0x100000-0x5fffff, however many leading zeros.
KERNEL_ADDRESS = re.compile(r"(?<![\w])0x0*[1-5][0-9a-fA-F]{5}(?![\w])")


class ValueProblem(BookError):
    """A value that cannot be worked out; the message is one line."""


class Expr:
    def __init__(self, text):
        self.text = " ".join(text.split())
        if self.text.split(" ")[0].rstrip(":") == "fixed":  # free text: no quoting rules
            self.source, self.args, self.ops, self.fmt = "fixed", self.text.split(" ")[1:], [], None
            return
        try:
            words = shlex.split(text)
        except ValueError as e:
            raise ValueProblem(f"`{text}`: {e}") from None
        if not words or words[0] not in SOURCES:
            raise ValueProblem(f"`{text}`: an expression starts with a source: {', '.join(SOURCES)}")
        self.source = words[0]
        need = {"sym": 2, "size": 2, "end": 2, "define": 2, "run": 2, "asm": 3}[self.source]
        self.args = words[1 : 1 + need]
        rest = words[1 + need :]
        if len(self.args) < need:
            raise ValueProblem(f"`{text}`: {self.source} takes {need} arguments")
        if self.source == "asm" and rest and rest[0].isdigit():
            self.args.append(rest.pop(0))
        self.ops, self.fmt, self.hex = [], None, False
        for w in rest:
            if w == "hex" and self.source == "run":
                self.hex = True
            elif w.startswith("%"):
                if not FORMAT.fullmatch(w):
                    raise ValueProblem(f"`{text}`: format {w} is none of %#x, %#018x, %-#10x, %04x, %d, %,d, %le8")
                self.fmt = w
            elif w.startswith("bits="):
                m = re.fullmatch(r"bits=(\d+):(\d+)", w)
                if not m or int(m.group(1)) < int(m.group(2)):
                    raise ValueProblem(f"`{text}`: bits=HI:LO, such as bits=31:16")
                self.ops.append(("bits", (int(m.group(1)), int(m.group(2)))))
            elif OPERATOR.match(w):
                op, n = OPERATOR.match(w).groups()
                self.ops.append((op, int(n, 0)))
            else:
                raise ValueProblem(f"`{text}`: `{w}` is neither a modifier (+N, &N, bits=H:L) nor a format (%#x)")
        if self.source in NEEDS_BUILD and not re.fullmatch(r"\d{1,2}", self.args[0]):
            raise ValueProblem(f"`{text}`: the stage is a lab number such as 05")
        if self.source == "run" or self.source == "asm":
            try:
                re.compile(self.args[-1] if self.source == "run" else self.args[2])
            except re.error as e:
                raise ValueProblem(f"`{text}`: {e}") from None


def parse_number(text):
    t = text.replace(",", "")
    return int(t, 16) if t.lower().startswith("0x") else int(t)


def default_format(text):
    """The format that prints a number the way the run printed it."""
    if text.lower().startswith("0x"):
        return f"%#0{len(text)}x" if len(text) > 3 and text[2] == "0" else "%#x"
    return "%,d" if "," in text else "%d"


def render(n, fmt):
    if fmt == "%,d":
        return f"{n:,}"
    m = re.fullmatch(r"%le(\d+)", fmt)
    if m:
        return " ".join(f"{b:02x}" for b in n.to_bytes(int(m.group(1)), "little"))
    try:
        return fmt % n
    except (TypeError, ValueError) as e:
        raise ValueProblem(f"format {fmt}: {e}") from None


class Context:
    """Where values come from for one chapter: its transcripts' blocks, and
    the builds of the stages (built once, cached across chapters)."""

    builds = {}

    def __init__(self, chapter_lines, transcript_blocks, builds_ok=True):
        self.lines = chapter_lines
        self.blocks = transcript_blocks  # {name: text of the block}
        self.builds_ok = builds_ok

    def build(self, stage):
        if stage not in Context.builds:
            lab = figure_lab("memory-layout", stage)
            b, _ = built_kernel(lab)
            Context.builds[stage] = (b, lab)
        return Context.builds[stage]

    def functions(self, stage):
        """{name: [(address, instruction text)]} from kernel.asm; a function
        listed twice (the 32-bit code, decoded again as i386) keeps the last."""
        b, _ = self.build(stage)
        key = ("asm", stage)
        if key not in Context.builds:
            path = b.outdir / "kernel.asm"
            if not path.is_file():
                raise ValueProblem(f"stage {stage}: no kernel.asm beside kernel.elf")
            found, current = {}, None
            for line in path.read_text(errors="replace").splitlines():
                m = re.match(r"^([0-9a-f]+) <(.+)>:$", line)
                if m:
                    current = []
                    found[m.group(2)] = current
                    continue
                m = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line)
                if m and current is not None:
                    current.append((int(m.group(1), 16), m.group(2).strip()))
            Context.builds[key] = found
        return Context.builds[key]

    def raw(self, e):
        """(number, default format), or None when it cannot be known here."""
        if e.source in NEEDS_BUILD and not self.builds_ok:
            return None
        if e.source in ("sym", "size", "end"):
            b, _ = self.build(e.args[0])
            name = e.args[1]
            if name not in b.symbols:
                raise ValueProblem(f"stage {e.args[0]}: kernel.sym has no symbol `{name}`")
            addr, size = b.symbols[name], b.symbols.size(name)
            return {"sym": addr, "size": size, "end": addr + size}[e.source], "%#x"
        if e.source == "define":
            b, lab = self.build(e.args[0])
            defines = b.stage.defines()
            if e.args[1] not in defines:
                raise ValueProblem(f"stage {e.args[0]}: no #define {e.args[1]} with a number in its headers")
            return defines[e.args[1]], "%#x"
        if e.source == "asm":
            stage, func, pattern = e.args[:3]
            nth = int(e.args[3]) if len(e.args) > 3 else 1
            insns = self.functions(stage).get(func)
            if insns is None:
                raise ValueProblem(f"stage {stage}: kernel.asm has no function `{func}`")
            hits = [a for a, text in insns if re.search(pattern, text)]
            if len(hits) < nth:
                raise ValueProblem(f"stage {stage}: {func} has {len(hits)} instructions matching {pattern!r}")
            return hits[nth - 1], "%#x"
        if e.source == "run":
            name, pattern = e.args
            if name not in self.blocks:
                raise ValueProblem(f"no transcript name={name} in this chapter")
            m = re.search(pattern, self.blocks[name] or "", re.M)
            if not m:
                raise ValueProblem(f"transcript {name}: nothing matches {pattern!r}")
            text = m.group(1) if m.groups() else m.group(0)
            try:
                if e.hex:
                    return int(text, 16), "%#x"
                return parse_number(text), default_format(text)
            except ValueError:
                raise ValueProblem(f"transcript {name}: {pattern!r} matched `{text}`, not a number") from None
        raise ValueProblem(f"`{e.text}`: no value to compute")

    def value(self, e):
        """The text of the value, or None when it cannot be known here (a
        student's copy has no reference build; `fixed` is not ours)."""
        if e.source == "fixed":
            return None
        got = self.raw(e)
        if got is None:
            return None
        n, fmt = got
        for op, arg in e.ops:
            if op == "bits":
                hi, lo = arg
                n = (n >> lo) & ((1 << (hi - lo + 1)) - 1)
            else:
                n = {
                    "+": lambda: n + arg,
                    "-": lambda: n - arg,
                    "*": lambda: n * arg,
                    "&": lambda: n & arg,
                    ">>": lambda: n >> arg,
                    "<<": lambda: n << arg,
                }[op]()
        if e.fmt is None and e.source == "run" and not e.ops and not e.hex:
            m = re.search(e.args[1], self.blocks[e.args[0]], re.M)
            return m.group(1) if m.groups() else m.group(0)
        return render(n, e.fmt or fmt)


# --- the prose ------------------------------------------------------------------


def outside_fences(lines):
    """Indices of the lines that are prose: outside every fenced block."""
    for i, code in enumerate(in_code(lines)):
        if not code:
            yield i


def governed(line, end):
    """[(start, end)] of the numbers a directive ending at `end` governs: the
    bare number right after it, or the numbers of the code span after it."""
    rest = line[end:]
    if rest.startswith("`"):
        close = rest.find("`", 1)
        if close < 0:
            return []
        return [(end + m.start(), end + m.end()) for m in NUMBER.finditer(rest, 1, close)]
    m = BARE.match(rest)
    return [(end + m.start(), end + m.end())] if m else []


class Use:
    """One `<!-- value: ... -->` in a chapter."""

    def __init__(self, index, match, line):
        self.index, self.line = index, index + 1
        self.text = match.group(1)
        self.exprs = [None if part.strip() == "_" else Expr(part) for part in self.text.split(" ; ")]
        self.spans = governed(line, match.end())
        if len(self.spans) < len(self.exprs):
            raise ValueProblem(
                f"`<!-- value: {self.text} -->` is followed by {len(self.spans)} number(s), "
                f"not {len(self.exprs)}: put the number right after the comment, bare or in a code span"
            )
        self.spans = self.spans[: len(self.exprs)]


def uses(lines):
    """Every value directive of the prose, in order; raises ValueProblem."""
    found = []
    for i in outside_fences(lines):
        for m in DIRECTIVE.finditer(lines[i]):
            try:
                found.append(Use(i, m, lines[i]))
            except ValueProblem as e:
                raise ValueProblem(f"line {i + 1}: {e}") from None
    return found


def rewrite_prose(lines, ctx):
    """Write every value into `lines` (in place). Returns [(line, old, new)]."""
    changed = []
    for use in reversed(uses(lines)):
        line = lines[use.index]
        for e, (a, b) in reversed(list(zip(use.exprs, use.spans))):
            if e is None:
                continue
            new = ctx.value(e)
            if new is not None and line[a:b] != new:
                changed.append((use.line, line[a:b], new))
                line = line[:a] + new + line[b:]
        lines[use.index] = line
    return changed


def check_prose(lines, ctx):
    """[(line, expression, in the book, from its source)] for every value that drifted."""
    found = []
    for use in uses(lines):
        line = lines[use.index]
        for e, (a, b) in zip(use.exprs, use.spans):
            if e is None:
                continue
            new = ctx.value(e)
            if new is not None and line[a:b] != new:
                found.append((use.line, e.text, line[a:b], new))
    return found


# --- templates and transcripts ------------------------------------------------------


def fill(text, ctx, what):
    """text with every {{EXPRESSION}} replaced; None when one cannot be known here."""
    out, pos = [], 0
    for m in PLACEHOLDER.finditer(text):
        try:
            v = ctx.value(Expr(m.group(1)))
        except ValueProblem as e:
            raise ValueProblem(f"{what}: {e}") from None
        if v is None:
            return None
        out.append(text[pos : m.start()] + v)
        pos = m.end()
    return "".join(out) + text[pos:]


def template(name):
    """The text of book/text-figures/NAME.txt, or raises ValueProblem."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise ValueProblem(f"a text figure is named like `trap-frame`, not `{name}`")
    path = TEMPLATES / f"{name}.txt"
    if not path.is_file():
        raise ValueProblem(f"no template book/text-figures/{name}.txt")
    return path.read_text().rstrip("\n")


def uncovered_addresses(lines, directives):
    """[(line, text)] of the kernel-range addresses of a chapter that no
    generated block, value or placeholder covers: typed by hand."""
    covered = set()
    for d in directives:
        if d.block:
            covered.update(range(d.block[0], d.block[1]))
    prose = set(outside_fences(lines))
    found = []
    for i, line in enumerate(lines):
        if i in covered:
            continue
        text = PLACEHOLDER.sub("", line)
        for m in reversed(list(DIRECTIVE.finditer(text)) if i in prose else []):
            spans = governed(text, m.end())
            n = max(1, len(m.group(1).split(" ; ")))
            for a, b in reversed(spans[:n]):
                text = text[:a] + text[b:]
            text = text[: m.start()] + text[m.end() :]
        for m in KERNEL_ADDRESS.finditer(text):
            found.append((i + 1, m.group(0)))
    return found
