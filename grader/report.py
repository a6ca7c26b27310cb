"""Reports of a grading: the terminal (one line per check), JSON, JUnit XML
and Gradescope's results.json. The three files carry, besides each check,
the compiler's error lines and the tail of each boot's serial output, with
no host path; a challenge is extra credit there, never a failed test; each
check's time is its share of the stage's time.

Safe to read and bounded, everywhere: every string that comes from a
submission or a kernel (names, compiler messages, serial output, symbols)
shows its control characters as text (grader/safe.py); a line is cut at
safe.LINE_CAP characters, what a check quotes at CHECK_LINES lines, and
Gradescope's results.json at RESULTS_CAP bytes in all, each cut saying
what it left out."""
import functools
import json
import math
import os
import re
import sys
import textwrap

from . import safe

WIDTH = 58
CHECK_LINES = 60  # lines a report quotes for one check (its details, its diagnosis, the serial tail)
RESULTS_CAP = 256 * 1024  # bytes of a whole results.json: Gradescope's own limit is far above


def _color(enabled):
    def paint(text, code):
        return f"\033[{code}m{text}\033[0m" if enabled else text

    return paint


def use_color(stream, env=os.environ):
    """Colour only on a terminal; NO_COLOR set to a non-empty value turns it
    off (no-color.org: an empty NO_COLOR= changes nothing), and so does TERM=dumb."""
    return stream.isatty() and not env.get("NO_COLOR") and env.get("TERM") != "dumb"


def reproduce_command(st):
    """The command that runs this grading again, with the same seed."""
    origin = st.stage.origin
    if origin.kind == "submission":
        folder = safe.shell_word(origin.upload or origin.submission)
        parts = [f"python3 -m grader grade --lab {st.lab.number:02d} --submission {folder}"]
        parts += ["--solutions-below"] if origin.below_from_solutions else []
        parts.append(f"--seed 0x{st.seed:08x}")
        parts += [] if st.runs["default"].memory_chosen_by_seed else [f"--memory {st.memory_mb}"]
        parts += [] if st.emulator == "qemu" else [f"--emulator {st.emulator}"]
        return " ".join(parts)
    parts = [f"make grade LAB={st.lab.number:02d}"] + [a for a in origin.make_args() if a.startswith("SOLUTIONS")]
    parts.append(f"SEED=0x{st.seed:08x}")
    if not st.runs["default"].memory_chosen_by_seed:
        parts.append(f"MEMORY={st.memory_mb}")
    parts += [a for a in origin.make_args() if a.startswith("BELOW")]
    if st.emulator != "qemu":
        parts.append(f"EMULATOR={st.emulator}")
    return " ".join(parts)


def terminal(stages, stream=sys.stdout, verbose=False, color=None):
    """The report on a terminal. `show` is for every string the kit did not
    write itself: on one line, control characters as text, cut."""
    paint = _color(use_color(stream) if color is None else color)
    w = stream.write
    show = safe.line

    def quoted(lines, indent):
        for ln in safe.lines(lines, CHECK_LINES):
            w(f"{indent}{show(ln)}\n")

    for st in stages:
        w(paint(f"== Stage {st.lab.name}: {st.lab.title}", "1") + "\n")
        w(f"   from {show(st.source)}, {st.emulator}, seed 0x{st.seed:08x}, {st.memory_mb} MiB\n")
        if st.build_error:
            w(paint("   build failed: ", "31") + show(st.build_error.summary) + "\n")
            quoted(st.build_error.details.splitlines(), "      ")
        for boot, why in st.unproven.items():
            w(paint(f"   {boot} boot: ", "31") + show(why) + "\n")
        if st.stopped:
            w(paint("   the run did not end cleanly: ", "31") + show(st.stopped) + "\n")
            r = st.boots.get("default")
            for ln in r.last_lines(3) if r else []:
                w(f"      last output | {show(ln)}\n")
        for c in st.checks:
            verdict = paint(" OK ", "32") if c.passed else paint("FAIL", "31")
            title = (c.title + " ").ljust(WIDTH, ".")
            pts = f"+{c.score:>1}/{c.points:<2}" if c.bonus else f"{c.score:>2}/{c.points:<2}"
            w(f"{title} {verdict}  {pts} ({c.seconds:.1f}s)\n")
            if c.passed and c.note:
                w(f"    note: {show(c.note)}\n")
            if not c.passed:
                if c.message:
                    w(f"    {show(c.message)}\n")
                quoted(c.details, "    ")
                for h in c.hints:
                    w(paint(f"    hint: {show(h)}", "33") + "\n")
        for boot, lines in st.diagnoses.items():
            w(paint(f"   diagnosis ({boot} boot, {st.runs[boot].cmdline}):", "1") + "\n")
            quoted(lines, "      ")
        for note in st.notes:  # the kit's own sentences, naming the lab's checks: wrapped, never cut
            w("   note: " + "\n         ".join(textwrap.wrap(safe.line(note, cap=None), 100)) + "\n")
        if verbose and st.boots:
            for name, r in st.boots.items():
                w(f"   serial output of the {name} boot ({r.reason}, status {r.status}, {r.elapsed:.2f}s):\n")
                for ln in r.lines:
                    w(f"      | {show(ln)}\n")
        score = f"Score: {st.score}/{st.total}" + (f" (+{st.bonus} challenge)" if st.bonus else "")
        w(paint(score, "32" if st.full else "31") + f"   ({st.elapsed:.1f}s)")
        w("" if st.full else f"   reproduce: {reproduce_command(st)}")
        w("\n")
    for line in disagreements(stages):
        w(paint(line, "33") + "\n")
    if len(stages) > 1:
        for line in summary_table(stages):
            w(line + "\n")
        ok = all(s.full for s in stages)
        w(paint(f"Total score: {total_score(stages)}", "32" if ok else "31") + "\n")


def total_score(stages):
    """The sum over the stages, for each emulator on its own: two emulators
    grade the same work, so their points are never added together."""
    emus = list(dict.fromkeys(s.emulator for s in stages))
    sums = [
        (e, sum(s.score for s in stages if s.emulator == e), sum(s.total for s in stages if s.emulator == e))
        for e in emus
    ]
    if len(sums) == 1:
        return f"{sums[0][1]}/{sums[0][2]}"
    names = {"qemu": "QEMU", "bochs": "Bochs"}
    return (
        ", ".join(f"{names.get(e, e)} {got}/{out_of}" for e, got, out_of in sums) + " (the same work, graded by each)"
    )


def one_line(st):
    """A stage in one line, as it finishes."""
    verdict = "OK" if st.full else "FAIL"
    bonus = f" +{st.bonus}" if st.bonus else ""
    score = f"{st.score:>3}/{st.total:<3}{bonus:<4}"
    return f"stage {st.lab.name:<14} {st.emulator:<5} {score} {verdict:<4} {st.elapsed:5.1f}s"


def summary_table(stages):
    """Stages down, emulators across: the scores of a multi-stage grade."""
    emus = sorted({s.emulator for s in stages}, key=["qemu", "bochs"].index)
    by = {(s.lab.name, s.emulator): s for s in stages}
    names = list(dict.fromkeys(s.lab.name for s in sorted(stages, key=lambda s: s.lab.number)))
    out = ["Summary", "  " + "stage".ljust(16) + "".join(e.ljust(16) for e in emus)]
    for name in names:
        cells = []
        for e in emus:
            s = by.get((name, e))
            cells.append(
                (
                    "-"
                    if s is None
                    else f"{s.score}/{s.total}" + (f" +{s.bonus}" if s.bonus else "") + ("" if s.full else " FAIL")
                ).ljust(16)
            )
        out.append("  " + name.ljust(16) + "".join(cells))
    return out


class Progress:
    """What a grade shows while it runs. With more than one stage, one line per
    stage as it finishes. On a terminal only (never in a pipe, a log or a file):
    a line per boot as it starts and as it ends, and a live line that the next
    line overwrites: `done/total` for several stages, and during a silent boot
    the countdown to the progress timeout that will stop it."""

    def __init__(self, total, out, status):
        import threading

        self.total, self.count, self.out, self.status = total, 0, out, status
        self.live = status.isatty() and os.environ.get("TERM") != "dumb"
        self.lock = threading.Lock()
        self.silent = {}  # (stage, emulator, boot) -> (seconds of silence, the progress timeout)
        self.shown = ""
        self.show("")

    def show(self, text):
        """The live line (the caller holds the lock, or no boot runs yet)."""
        if self.live:
            head = f"[{self.count}/{self.total} done]" if self.total > 1 else ""
            self.shown = (head + text).strip()
            self.status.write(f"\r\033[K{self.shown}")
            self.status.flush()

    def say(self, line):
        """A line that stays, above the live line (on a terminal only)."""
        if self.live:
            with self.lock:
                self.status.write(f"\r\033[K{line}\n")
                self.show(self.countdown())

    @staticmethod
    def boot_name(st, emulator, boot):
        return f"stage {st.top.name} {emulator}, {boot} boot"

    def boot_started(self, st, boot, r):
        self.say(f"{self.boot_name(st, r.emulator, boot)}: started (`{r.cmdline}`, {r.memory_mb} MiB)")

    def boot_ended(self, st, boot, r, result):
        from .ending import end_of_run

        with self.lock:
            self.silent.pop((st.top.name, r.emulator, boot), None)
        problem = end_of_run(result)
        self.say(
            f"{self.boot_name(st, r.emulator, boot)}: ended, "
            + (problem[0] if problem else "clean power-off")
            + f" ({result.elapsed:.1f}s)"
        )

    def quiet(self, st, boot, r, seconds, limit):
        """The boot has printed nothing for `seconds`; the grader stops it at `limit`."""
        if not self.live:
            return
        key = (st.top.name, r.emulator, boot)
        with self.lock:
            before = self.silent.get(key, (0, limit))[0]
            self.silent[key] = (seconds, limit)
            if int(seconds) != int(before):  # once a second is enough
                self.show(self.countdown())

    def countdown(self):
        """The live line's text: the silent boots and the time each has left."""
        waits = [
            f"{boot} boot of {lab} silent for {int(s)}s, stopped in {max(0, math.ceil(limit - s))}s unless it prints"
            for (lab, _, boot), (s, limit) in sorted(self.silent.items())
            if s >= 1 and limit
        ]
        return (" " + "; ".join(waits)) if waits else ""

    def done(self, st):
        with self.lock:
            self.count += 1
            if self.total > 1:
                if self.live:
                    self.status.write("\r\033[K")
                    self.status.flush()
                self.out.write(one_line(st) + "\n")
                self.out.flush()
            self.show(self.countdown() or ("" if self.count == self.total else " ..."))

    def close(self):
        if self.live:
            self.status.write("\r\033[K")
            self.status.flush()


def disagreements(stages):
    """Stages that pass under one emulator and fail under another."""
    by_lab = {}
    for st in stages:
        by_lab.setdefault(st.lab.name, []).append(st)
    lines = []
    for lab, group in by_lab.items():
        passed = sorted(s.emulator for s in group if s.full)
        failed = sorted(s.emulator for s in group if not s.full)
        if passed and failed:
            seen = any(s.diagnoses for s in group if not s.full)
            lines.append(
                f"Stage {lab} passes under {', '.join(passed)} but fails under {', '.join(failed)}: "
                "the kernel depends on something the stricter emulator refuses"
                + (" (see its diagnosis above)" if seen else " (compare the two reports above)")
            )
    return lines


SERIAL_TAIL = 20  # lines of serial output a report keeps, per boot
HOST_PATH = re.compile(r"(?<![\w.~-])/(?:tmp|home|root|autograder|work|var|srv|mnt|run)/[^\s'\"`:;,()]*")


def host_roots(st):
    """Folders of this machine a report must not show: the kit, the build,
    the submission and what the student handed in."""
    o = st.stage.origin
    roots = [st.stage.root, o.submission, o.upload, o.reference, st.build.outdir if st.build else None]
    return sorted({str(r) for r in roots if r}, key=len, reverse=True)


def sanitize(text, roots=()):
    """Text fit for a student's eyes: the machine's folders cut (a path
    inside the kit or the submission keeps its part below it, any other
    one its last component), control characters shown as text
    (\\x1b), newlines and tabs kept."""
    for root in roots:
        text = re.sub(re.escape(root) + r"(/|(?![\w.-]))", lambda m: "" if m.group(1) else ".", text)
    text = HOST_PATH.sub(lambda m: ".../" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)
    return safe.text(text)


def clean_line(text, roots=()):
    """One line of a report file: sanitized, cut at safe.LINE_CAP characters."""
    return safe.cut(sanitize(text, roots))


def serial_tail(st, boot, n=SERIAL_TAIL):
    r = st.boots.get(boot)
    return r.lines[-n:] if r is not None else []


def compiler_errors(st):
    """The build's one-line verdict and the compiler's first error lines, or []."""
    if not st.build_error:
        return []
    return [f"build failed: {st.build_error.summary}"] + st.build_error.details.splitlines()


def shares(st):
    """Each check's share of the stage's time: a boot's time split between
    the checks it feeds, scaled so that the shares add up to the stage's time."""
    if not st.checks:
        return []
    per_boot = {}
    for c in st.checks:
        per_boot[c.boot] = per_boot.get(c.boot, 0) + 1
    weights = [(st.boots[c.boot].elapsed if c.boot in st.boots else 1.0) / per_boot[c.boot] for c in st.checks]
    if sum(weights) <= 0:
        weights = [1.0] * len(st.checks)
    return [st.elapsed * w / sum(weights) for w in weights]


def check_text(st, c, roots, tail=True):
    """What a report says of a failed check: the message, its details and
    hints, the diagnosis of its boot, the compiler's errors, the end of its
    boot's serial output; every line cut, at most CHECK_LINES of them."""
    out = [c.message] + safe.lines(c.details, CHECK_LINES) + [f"hint: {h}" for h in c.hints]
    out += st.diagnoses.get(c.boot, [])
    if c.message.startswith("build failed:"):  # the one check that says why (grade.failed_stage)
        out += compiler_errors(st)[1:]
    lines = serial_tail(st, c.boot) if tail else []
    if lines:
        out += [f"last {len(lines)} lines of the serial output ({st.runs[c.boot].cmdline}):"] + [
            f"  | {ln}" for ln in lines
        ]
    shown = [safe.cut(ln) for x in out if x for ln in sanitize(x, roots).split("\n")]
    return "\n".join(safe.lines(shown, CHECK_LINES))


def as_dict(stages):
    from .run import STOP

    out = {
        "interrupted": STOP.is_set(),
        "score": sum(s.score for s in stages),
        "max_score": sum(s.total for s in stages),
        "challenge_score": sum(s.bonus for s in stages),
        "stages": [],
    }
    for s in stages:
        roots = host_roots(s)
        clean = functools.partial(clean_line, roots=roots)
        out["stages"].append(
            {
                "lab": s.lab.name,
                "seed": f"0x{s.seed:08x}",
                "memory_mb": s.memory_mb,
                "emulator": s.emulator,
                "source": clean(s.source),
                "score": s.score,
                "max_score": s.total,
                "challenge_score": s.bonus,
                "build_error": clean(s.build_error.summary) if s.build_error else None,
                "compiler_errors": [clean(ln) for ln in safe.lines(compiler_errors(s)[1:], CHECK_LINES)],
                "stopped": clean(s.stopped),
                "diagnosis": {
                    b: [clean(ln) for ln in safe.lines(lines, CHECK_LINES)] for b, lines in s.diagnoses.items()
                },
                "unproven": {b: clean(why) for b, why in s.unproven.items()},
                "seconds": round(s.elapsed, 3),
                "reproduce": reproduce_command(s),
                "boots": {
                    name: {
                        "cmdline": s.runs[name].cmdline,
                        "seed": f"0x{s.runs[name].seed:08x}",
                        "ended": r.reason,
                        "status": r.status,
                        "seconds": round(r.elapsed, 3),
                        "serial_tail": [clean(ln) for ln in serial_tail(s, name)],
                    }
                    for name, r in s.boots.items()
                },
                "checks": [
                    {
                        "title": c.title,
                        "score": c.score,
                        "max_score": 0 if c.bonus else c.points,
                        "points": c.points,
                        "passed": c.passed,
                        "challenge": c.bonus,
                        "visibility": c.visibility,
                        "hidden": c.hidden,
                        "seconds": round(t, 3),
                        "message": clean(c.message),
                        "note": clean(c.note),
                        "details": [clean(d) for d in safe.lines(c.details, CHECK_LINES)],
                        "hints": [clean(h) for h in c.hints],
                        "boot": c.boot,
                    }
                    for c, t in zip(s.checks, shares(s))
                ],
            }
        )
    return out


def write_json(stages, path):
    with open(path, "w") as f:
        json.dump(as_dict(stages), f, indent=2)


def write_junit(stages, path):
    """JUnit XML: a suite per stage, a case per check with its own share of
    the time; a challenge not earned is skipped (optional), not failed."""
    from xml.etree import ElementTree as ET

    suites = ET.Element("testsuites")
    for s in stages:
        roots = host_roots(s)
        failures = sum(not c.passed and not c.bonus for c in s.checks)
        skipped = sum(not c.passed and c.bonus for c in s.checks)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"lab {s.lab.name}",
            tests=str(len(s.checks)),
            failures=str(failures),
            skipped=str(skipped),
            time=f"{s.elapsed:.3f}",
        )
        for c, t in zip(s.checks, shares(s)):
            case = ET.SubElement(suite, "testcase", classname=s.lab.name, name=c.title, time=f"{t:.3f}")
            if c.passed:
                continue
            if c.bonus:
                ET.SubElement(case, "skipped", message=clean_line(f"extra credit not earned: {c.message}", roots))
                continue
            fail = ET.SubElement(case, "failure", message=clean_line(c.message, roots))
            fail.text = check_text(s, c, roots)
        out = compiler_errors(s) + [f"seed 0x{s.seed:08x}; reproduce: {reproduce_command(s)}"]
        for name in s.boots:
            out += [f"serial output of the {name} boot ({s.runs[name].cmdline}), last lines:"]
            out += [f"  | {ln}" for ln in serial_tail(s, name)]
        ET.SubElement(suite, "system-out").text = "\n".join(clean_line(ln, roots) for ln in out)
    ET.ElementTree(suites).write(path, encoding="unicode", xml_declaration=True)


def gradescope_results(stages, note="", reproduce=None):
    """Gradescope's results.json as a dict (gradescope-autograders.readthedocs.io,
    "Autograder Specifications"): a test per check with its visibility; a
    challenge is extra credit (max_score 0, its points added to the score),
    never a failed test. `reproduce(st)` is the command shown for a stage."""
    tests, lines = [], []
    for s in stages:
        roots = host_roots(s)
        for c in s.checks:
            test = {
                "name": f"{s.lab.name}: {c.title}",
                "score": c.score,
                "max_score": c.points,
                "status": "passed" if c.passed else "failed",
                "visibility": c.visibility,
                "output": sanitize(c.note, roots) if c.passed else check_text(s, c, roots),
            }
            if c.bonus:
                test.update(
                    name=f"{s.lab.name}: {c.title} (extra credit)",
                    max_score=0,
                    status="passed",
                    output=f"extra credit: +{c.score} of {c.points} points"
                    if c.passed
                    else f"extra credit, optional: not earned this time (0 of {c.points}).\n"
                    + check_text(s, c, roots, tail=False),
                )
            tests.append(test)
        hidden = any(c.visibility != "visible" for c in s.checks)
        lines.append(
            f"Lab {s.lab.name}, seed 0x{s.seed:08x}, {s.memory_mb} MiB, {s.emulator}"
            + ("" if hidden else f": {s.score}/{s.total}")
            + (f", +{s.bonus} extra credit" if s.bonus else "")
            + "."
        )
        lines += [clean_line(ln, roots) for ln in safe.lines(compiler_errors(s), CHECK_LINES)]
        shown = {c.boot for c in s.checks if c.visibility == "visible"}  # a hidden boot's name stays hidden
        lines += [clean_line(f"{b} boot: {why}", roots) for b, why in s.unproven.items() if b in shown]
        lines += [clean_line(f"Note: {note}", roots) for note in s.notes]
        if s.stopped:
            lines.append(clean_line(f"The run did not end cleanly: {s.stopped}", roots))
        lines.append(f"Run the same test: {(reproduce or reproduce_command)(s)}")
    return within(
        {
            "score": sum(s.score + s.bonus for s in stages),
            "execution_time": round(sum(s.elapsed for s in stages)),
            "output": "\n".join(([note] if note else []) + lines),
            "stdout_visibility": "hidden",
            "tests": tests,
            "extra_data": {"seeds": {s.lab.name: f"0x{s.seed:08x}" for s in stages}},
        }
    )


def within(data, cap=RESULTS_CAP):
    """results.json at most `cap` bytes: if it is larger, the longest
    outputs are cut (at a line) to an equal share, each saying how many
    lines it left out."""

    def size():
        return len(json.dumps(data, indent=2).encode())

    holders = [data] + data["tests"]
    while size() > cap:
        fixed = size() - sum(len(json.dumps(h["output"]).encode()) for h in holders)
        share = max(256, (cap - fixed) // len(holders) - 64)
        longest = max(holders, key=lambda h: len(h["output"]))
        if len(longest["output"].encode()) <= share:
            break  # nothing long is left: the many short ones stay whole
        for h in holders:
            h["output"] = cut_text(h["output"], share, cap)
    return data


def cut_text(text, budget, cap):
    """text, cut after the last whole line within `budget` bytes, saying how much is left out."""
    if len(text.encode()) <= budget:
        return text
    kept, used = [], 0
    lines = text.split("\n")
    for ln in lines:
        if used + len(ln.encode()) + 1 > budget:
            break
        kept.append(ln)
        used += len(ln.encode()) + 1
    return "\n".join(
        kept + [f"... {len(lines) - len(kept)} more lines (a results.json is capped at {cap // 1024} KiB)"]
    )


def write_gradescope(stages, path, note="", reproduce=None):
    with open(path, "w") as f:
        json.dump(gradescope_results(stages, note, reproduce), f, indent=2)
