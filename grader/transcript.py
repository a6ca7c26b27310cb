"""The expected serial transcript of a stage, and the matcher.

Format of labs/NN-name/expected.txt (documented for students in
book/00-introduction.md):

    # a comment
    == mb2: command line [10]      a check: its title and points
    == challenge: free list [+10]  a challenge: optional points, not needed for full marks
    hint: text                     shown when the check fails
    hint if `words`: text          shown instead, when an output line has these words
    [boot] cmdline: {cmdline}      a line expected in the output, in order
    ! [panic] {any}                a line that must never appear anywhere

Expected lines are matched in order; other output may come in between.
A line matches the whole output line. An output line anywhere that has an
expected line's fixed text but other values (another number where the line
has a number or a computed value) and matches no expected line contradicts
it: the check fails, whichever copy came first. Inside a line:
    {hex} 0x and hex digits   {dec} a decimal integer   {word} no spaces
    {any} anything            {a|b|c} one of these texts
    {name} a value the grader computes for this run (the seed, ...)
    {{ and }} stand for literal braces.
"""
import re
from dataclasses import dataclass, field

BUILTINS = {"hex": r"0x[0-9a-fA-F]+", "dec": r"-?[0-9]+", "word": r"\S+", "any": r".*"}
TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
NUMBER = re.compile(r"\b(?:0x[0-9a-fA-F]+|[0-9]+)\b")  # a value written in an expected line's text
ANY_NUMBER = r"(?:0x[0-9a-fA-F]+|[0-9]+)"


def wildcard(value):
    """What may stand for a computed value in a line's shape: another value of
    its kind (a number for a number, one word for a word, any text for text)."""
    if re.fullmatch(r"[-+]?(?:0x[0-9a-fA-F]+|[0-9]+)", value):
        return r"[-+]?" + ANY_NUMBER
    return r"\S+" if value and not re.search(r"\s", value) else ".*"


class TranscriptError(Exception):
    """The expected file itself is wrong (an unknown placeholder, ...)."""


@dataclass
class Expect:
    text: str  # as written in the file
    line_no: int
    never: bool = False

    def regex(self, values, shape=False):
        """The line as a regular expression; with shape=True, its fixed text
        only: every computed value and every number in the text may be any
        other (an output line of this shape that is not the line itself
        contradicts it)."""
        out, pos = [], 0

        def literal(text):
            if not shape:
                return re.escape(text)
            parts, at = [], 0
            for n in NUMBER.finditer(text):
                parts += [re.escape(text[at : n.start()]), ANY_NUMBER]
                at = n.end()
            return "".join(parts) + re.escape(text[at:])

        for m in TOKEN.finditer(self.text):
            out.append(literal(self.text[pos : m.start()]))
            tok, name = m.group(0), m.group(1)
            if tok in ("{{", "}}"):
                out.append(re.escape(tok[0]))
            elif name in values:
                out.append(wildcard(str(values[name])) if shape else re.escape(str(values[name])))
            elif name in BUILTINS:
                out.append(BUILTINS[name])
            elif "|" in name:
                out.append("(?:" + "|".join(re.escape(a) for a in name.split("|")) + ")")
            else:
                raise TranscriptError(f"line {self.line_no}: unknown placeholder {{{name}}}")
            pos = m.end()
        out.append(literal(self.text[pos:]))
        return re.compile("".join(out))

    def shown(self, values):
        """The line as a student should read it: computed values filled in."""

        def sub(m):
            if m.group(0) in ("{{", "}}"):
                return m.group(0)[0]
            return str(values[m.group(1)]) if m.group(1) in values else m.group(0)

        return TOKEN.sub(sub, self.text)

    def prefix(self, values):
        """The key of the line: its `[subsystem]` tag and the text up to the
        first ':' or '=', or else the tag and the first word. An output line
        that starts with it is the kernel's attempt at this line."""
        cut = TOKEN.search(self.text)
        head = self.text[: cut.start()] if cut else self.text
        m = (
            re.match(r"\[[^\]]*\][^:=]*?[:=]", head)
            or re.match(r"\[[^\]]*\] [^\s{]+(?= )", head)
            or re.match(r"\[[^\]]*\]", head)
        )
        return m.group(0) if m else ""


@dataclass
class CheckSpec:
    title: str
    points: int
    lines: list = field(default_factory=list)
    hints: list = field(default_factory=list)
    bonus: bool = False
    keyed: list = field(default_factory=list)  # (words, hint): shown when an output line has the words

    def keyed_hints(self, lines):
        """The hints keyed to words that the output has (they name the cause)."""
        return [h for words, h in self.keyed if any(words in ln for ln in lines)]

    def hints_for(self, lines):
        """The hints of a failed check: the keyed ones the output calls for, if any, else the others."""
        return self.keyed_hints(lines) or self.hints


def parse(text, source="expected.txt"):
    checks = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("=="):
            m = re.fullmatch(r"==\s*(.+?)\s*\[(\+?)(\d+)\]", line)
            if not m:
                raise TranscriptError(f"{source}:{n}: a check line is `== title [points]` or `[+points]`")
            checks.append(CheckSpec(m.group(1), int(m.group(3)), bonus=m.group(2) == "+"))
            continue
        if not checks:
            raise TranscriptError(f"{source}:{n}: an expected line before the first `== check [points]`")
        if line.startswith("hint if"):
            m = re.fullmatch(r"hint if `([^`]+)`:\s*(.+)", line)
            if not m:
                raise TranscriptError(f"{source}:{n}: a keyed hint is `hint if `words`: text`")
            checks[-1].keyed.append((m.group(1), m.group(2)))
        elif line.startswith("hint:"):
            checks[-1].hints.append(line[5:].strip())
        elif line.startswith("!"):
            checks[-1].lines.append(Expect(line[1:].strip(), n, never=True))
        else:
            checks[-1].lines.append(Expect(line, n))
    return checks


@dataclass
class LineResult:
    expect: Expect
    status: str  # matched, wrong, missing, contradicted, forbidden, absent (never-line fine)
    index: int = None  # output line index (matched, wrong, contradicted, forbidden)
    got: str = None
    after: int = -1  # the output line the search started after (for context)
    note: str = ""  # why a wrong line is wrong, when the grader can tell (a control byte, letter case)


CONTROL = re.compile(r"\\x[0-9a-f]{2}")  # a byte that is not text, as grader/run.py renders it


def control_only(rx, lines, start):
    """The first output line from `start` that is the expected line once its
    rendered control bytes (`\\x01`, `\\x00`, ...) are taken out, and the note
    that says so; (None, "") when there is none."""
    for i in range(start, len(lines)):
        if "\\x" in lines[i] and rx.fullmatch(CONTROL.sub("", lines[i])):
            shown = ", ".join(f"`{b}`" for b in dict.fromkeys(CONTROL.findall(lines[i])))
            return i, f"the line differs only by a control byte ({shown}): the kernel sent a byte that is not text"
    return None, ""


def case_only(rx, line):
    """The note for a line that is the expected one but for letter case
    (`A7AFEA62` for `a7afea62`), or ""."""
    if re.compile(rx.pattern, rx.flags | re.IGNORECASE).fullmatch(line):
        return "the line differs from the expected one only in letter case"
    return ""


def match(checks, lines, values):
    """Match every check's lines against the output lines, in one ordered pass.
    Returns {check title: [LineResult, ...]}."""
    results = {}
    pos = 0
    for chk in checks:
        res = []
        for exp in chk.lines:
            rx = exp.regex(values)
            if exp.never:
                hit = next((i for i, ln in enumerate(lines) if rx.fullmatch(ln)), None)
                res.append(
                    LineResult(
                        exp, "forbidden" if hit is not None else "absent", hit, lines[hit] if hit is not None else None
                    )
                )
                continue
            start = pos
            hit = next((i for i in range(pos, len(lines)) if rx.fullmatch(lines[i])), None)
            if hit is not None:
                res.append(LineResult(exp, "matched", hit, lines[hit]))
                pos = hit + 1
                continue
            prefix = exp.prefix(values)
            near = (
                next((i for i in range(pos, len(lines)) if lines[i].startswith(prefix)), None)
                if len(prefix) >= 3
                else None
            )
            stray, note = control_only(rx, lines, pos)
            if stray is not None and (near is None or stray <= near):
                res.append(LineResult(exp, "wrong", stray, lines[stray], note=note))
                pos = stray + 1
            elif near is not None:
                res.append(LineResult(exp, "wrong", near, lines[near], note=case_only(rx, lines[near])))
                pos = near + 1
            else:
                res.append(LineResult(exp, "missing", after=start - 1))
        results[chk.title] = res
    return contradictions(checks, lines, values, results)


def contradictions(checks, lines, values, results):
    """A matched or missing expected line becomes `contradicted` when some
    output line, anywhere, has its fixed text with other values and is no
    expected line at all: a forged copy printed before the kernel's own line
    (or after it) does not hide the kernel's."""
    exact = [e.regex(values) for chk in checks for e in chk.lines if not e.never]
    # the kernel's attempt at another expected line (its near miss) says nothing of this one
    attempts = {r.index for res in results.values() for r in res if r.status == "wrong"}
    expected_somewhere = [i in attempts or any(rx.fullmatch(ln) for rx in exact) for i, ln in enumerate(lines)]
    for chk in checks:
        res = results[chk.title]
        for k, r in enumerate(res):
            if r.expect.never or r.status not in ("matched", "missing"):
                continue
            shape = r.expect.regex(values, shape=True)
            hit = next((i for i, ln in enumerate(lines) if not expected_somewhere[i] and shape.fullmatch(ln)), None)
            if hit is not None:
                res[k] = LineResult(r.expect, "contradicted", hit, lines[hit], r.after)
    return results


def kernel_fails(r, line_results, lines, most=2):
    """For a missing line: the kernel's own `FAIL` lines of its subsystem (the
    line's `[tag]`) where it should have been, after the line before it and
    before the next line of its check that matched: often they say why."""
    tag = re.match(r"\[[^\]]*\]", r.expect.text)
    if not tag:
        return []
    end = min((x.index for x in line_results if x.status == "matched" and x.index > r.after), default=len(lines))
    found = [i for i in range(r.after + 1, end) if lines[i].startswith(tag.group(0)) and "FAIL" in lines[i]]
    return found[:most]


def failed(line_results):
    return [r for r in line_results if r.status in ("wrong", "missing", "contradicted", "forbidden")]


def explain(line_results, values, lines):
    """A one-line reason for the first failing line of a check."""
    bad = failed(line_results)
    if not bad:
        return ""
    forbidden = [r for r in bad if r.status == "forbidden"]
    r = forbidden[0] if forbidden else bad[0]  # a forbidden line says most about what went wrong
    want = r.expect.shown(values)
    if r.status == "wrong":
        return f"expected `{want}`, got `{r.got}`" + (f": {r.note}" if r.note else "")
    if r.status == "contradicted":
        return f"output line {r.index + 1} contradicts `{want}`: `{r.got}`"
    if r.status == "forbidden":
        return f"line {r.index + 1} must not appear: `{r.got}`"
    if not lines:
        return f"missing `{want}`: the kernel printed nothing"
    # the output line it was looked for after: the line of the expected line before it
    after = f" (after `{lines[r.after]}`)" if 0 <= r.after < len(lines) else ""
    said = [f"; the kernel said at line {i + 1}: `{lines[i]}`" for i in kernel_fails(r, line_results, lines, 1)]
    return f"missing `{want}`" + (said[0] if said else after)  # the kernel's own FAIL line says more


def diff_view(line_results, values, lines, context=2):
    """Each expected line marked as matched, wrong or missing, with the output
    around the place it should have been: like a diff, for the terminal."""
    out = []
    last, shown_after = None, None
    for r in line_results:
        want = r.expect.shown(values)
        if r.status == "matched":
            out.append(f"   ok      {r.got}")
            last = r.index
        elif r.status == "absent":
            continue
        elif r.status == "wrong":
            out.append(f"   WRONG   expected: {want}")
            out.append(f"           got:      {r.got}   (output line {r.index + 1})")
            if r.note:
                out.append(f"           ({r.note})")
            last = r.index
        elif r.status == "forbidden":
            out.append(f"   FORBID  {r.got}   (output line {r.index + 1}, matches `! {r.expect.text}`)")
        elif r.status == "contradicted":
            out.append(f"   CONTRA  expected: {want}")
            out.append(f"           said:     {r.got}   (output line {r.index + 1}: same words, other values)")
        else:
            out.append(f"   MISSING {want}")
            last = r.after if last is None else last
            if shown_after == last:
                continue  # the same output was shown for the line before
            shown_after = last
            around = lines[last + 1 : last + 1 + context]
            if around:
                out.extend(f"           | {ln}" for ln in around)
            else:
                out.append("           | (end of output)")
            said = [i for i in kernel_fails(r, line_results, lines) if i > last + context]
            out.extend(f"           | ... line {i + 1}: {lines[i]}" for i in said)
    return out
