"""Text from a submission or a kernel, fit to be read: on a terminal, in a
report, in a gradebook's neighbour, the JSON.

A string the kit did not write itself (a file or folder name from an
upload, a compiler message, a line of serial output, a symbol name from a
student's ELF) may hold control sequences that a terminal would obey: clear
the screen, set the clipboard (OSC 52), paint a fake green score. Every
such string is shown through `text` or `line`: each control character (C0,
DEL, C1, and the bidirectional overrides that reorder what is shown) as
visible text, `\\x1b[2J` for ESC [2J. The kit's own colours are added
after, by the report, and only on a terminal.

And every report is bounded: `line` cuts a line at LINE_CAP characters,
`lines` a list at a count, each saying how much it left out ("... N more
lines"), so that a kernel printing a 256 KiB line or a fault loop cannot
flood a terminal or a results.json.
"""
import re
import shlex

LINE_CAP = 400  # characters of one line shown
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(m):
    o = ord(m.group(0))
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def text(s, keep="\n\t"):
    """s with every control character shown as text, but those in `keep`."""
    s = "" if s is None else str(s)
    return CONTROL.sub(lambda m: m.group(0) if m.group(0) in keep else _visible(m), s)


def cut(s, cap=LINE_CAP):
    """s, at most `cap` characters and a note of how many more there were."""
    if cap is None or len(s) <= cap:
        return s
    return s[:cap] + f"... ({len(s) - cap} more characters)"


def line(s, cap=LINE_CAP):
    """One line: every control character shown (a newline too), cut at `cap` characters."""
    return cut(text(s, keep=""), cap)


def lines(items, cap, what="lines"):
    """At most `cap` items: the first cap-1 and "... N more lines" when more."""
    items = list(items)
    if cap is None or len(items) <= cap:
        return items
    return items[: cap - 1] + [f"... {len(items) - cap + 1} more {what}"]


def block(s, max_lines, cap=LINE_CAP):
    """Text of several lines: each line shown and cut, at most max_lines of them."""
    return "\n".join(lines((line(ln, cap) for ln in text(s).split("\n")), max_lines))


def shell_word(s):
    """s quoted for a POSIX shell, printable: a control character as
    bash's $'\\x1b' (copied into bash, the command still names the folder)."""
    s = str(s)
    if not CONTROL.search(s):
        return shlex.quote(s)
    body = "".join(_visible(re.match(".", c, re.S)) if CONTROL.match(c) else "\\" + c if c in "\\'" else c for c in s)
    return f"$'{body}'"


def output(data):
    """Bytes a program or a kernel wrote, as text: printable ASCII, newlines
    and tabs kept, carriage returns dropped, any other byte as \\xNN."""
    from .run import render

    return render(data)
