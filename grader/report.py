"""Reports of a grading: the terminal (one line per check), JSON, JUnit XML
and Gradescope's results.json."""
import json
import os
import sys

WIDTH = 58


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
    parts = [f"make grade LAB={st.lab.number:02d}"] + [a for a in origin.make_args() if a.startswith("SOLUTIONS")]
    parts.append(f"SEED=0x{st.seed:08x}")
    if not st.runs["default"].memory_chosen_by_seed:
        parts.append(f"MEMORY={st.memory_mb}")
    parts += [a for a in origin.make_args() if a.startswith("BELOW")]
    if st.emulator != "qemu":
        parts.append(f"EMULATOR={st.emulator}")
    return " ".join(parts)


def terminal(stages, stream=sys.stdout, verbose=False, color=None):
    paint = _color(use_color(stream) if color is None else color)
    w = stream.write
    for st in stages:
        w(paint(f"== Stage {st.lab.name}: {st.lab.title}", "1") + "\n")
        w(f"   from {st.source}, {st.emulator}, seed 0x{st.seed:08x}, {st.memory_mb} MiB\n")
        if st.build_error:
            w(paint("   build failed: ", "31") + st.build_error.summary + "\n")
            for ln in st.build_error.details.splitlines():
                w(f"      {ln}\n")
        for boot, why in st.unproven.items():
            w(paint(f"   {boot} boot: ", "31") + why + "\n")
        if st.stopped:
            w(paint("   the kernel did not finish: ", "31") + st.stopped + "\n")
            r = st.boots.get("default")
            for ln in (r.last_lines(3) if r else []):
                w(f"      last output | {ln}\n")
        for c in st.checks:
            verdict = paint(" OK ", "32") if c.passed else paint("FAIL", "31")
            title = (c.title + " ").ljust(WIDTH, ".")
            pts = f"+{c.score:>1}/{c.points:<2}" if c.bonus else f"{c.score:>2}/{c.points:<2}"
            w(f"{title} {verdict}  {pts} ({c.seconds:.1f}s)\n")
            if not c.passed:
                if c.message:
                    w(f"    {c.message}\n")
                for ln in c.details:
                    w(f"    {ln}\n")
                for h in c.hints:
                    w(paint(f"    hint: {h}", "33") + "\n")
        for boot, lines in st.diagnoses.items():
            w(paint(f"   diagnosis ({boot} boot, {st.runs[boot].cmdline}):", "1") + "\n")
            for ln in lines:
                w(f"      {ln}\n")
        if verbose and st.boots:
            for name, r in st.boots.items():
                w(f"   serial output of the {name} boot ({r.reason}, status {r.status}, {r.elapsed:.2f}s):\n")
                for ln in r.lines:
                    w(f"      | {ln}\n")
        score = f"Score: {st.score}/{st.total}" + (f" (+{st.bonus} challenge)" if st.bonus else "")
        w(paint(score, "32" if st.full else "31") + f"   ({st.elapsed:.1f}s)")
        w("" if st.full else f"   reproduce: {reproduce_command(st)}")
        w("\n")
    for line in disagreements(stages):
        w(paint(line, "33") + "\n")
    if len(stages) > 1:
        for line in summary_table(stages):
            w(line + "\n")
        total = sum(s.score for s in stages)
        out_of = sum(s.total for s in stages)
        ok = all(s.full for s in stages)
        w(paint(f"Total score: {total}/{out_of}", "32" if ok else "31") + "\n")


def one_line(st):
    """A stage in one line, as it finishes."""
    verdict = "OK" if st.full else "FAIL"
    bonus = f" +{st.bonus}" if st.bonus else ""
    return f"stage {st.lab.name:<14} {st.emulator:<5} {st.score:>3}/{st.total:<3}{bonus:<4} {verdict:<4} {st.elapsed:5.1f}s"


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
            cells.append(("-" if s is None else f"{s.score}/{s.total}" + (f" +{s.bonus}" if s.bonus else "")
                          + ("" if s.full else " FAIL")).ljust(16))
        out.append("  " + name.ljust(16) + "".join(cells))
    return out


class Progress:
    """One line per stage as it finishes (when there is more than one), and on
    a terminal a live `done/total` line that the next line overwrites."""

    def __init__(self, total, out, status):
        self.total, self.count, self.out, self.status = total, 0, out, status
        self.live = status.isatty() and os.environ.get("TERM") != "dumb"
        self.show("")

    def show(self, text):
        if self.live:
            self.status.write(f"\r\033[K[{self.count}/{self.total} done]{text}")
            self.status.flush()

    def done(self, st):
        self.count += 1
        if self.total > 1:
            if self.live:
                self.status.write("\r\033[K")
                self.status.flush()
            self.out.write(one_line(st) + "\n")
            self.out.flush()
        self.show("" if self.count == self.total else " ...")

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
            lines.append(f"Stage {lab} passes under {', '.join(passed)} but fails under {', '.join(failed)}: "
                         "the kernel depends on something the stricter emulator refuses"
                         + (" (see its diagnosis above)" if seen else " (compare the two reports above)"))
    return lines


def as_dict(stages):
    from .run import STOP
    return {
        "interrupted": STOP.is_set(),
        "score": sum(s.score for s in stages),
        "max_score": sum(s.total for s in stages),
        "stages": [{
            "lab": s.lab.name, "seed": f"0x{s.seed:08x}", "memory_mb": s.memory_mb,
            "emulator": s.emulator, "source": s.source, "score": s.score, "max_score": s.total,
            "challenge_score": s.bonus,
            "build_error": s.build_error.summary if s.build_error else None,
            "diagnosis": s.diagnoses, "unproven": s.unproven, "seconds": round(s.elapsed, 3),
            "checks": [{"title": c.title, "score": c.score, "max_score": c.points, "passed": c.passed,
                        "challenge": c.bonus,
                        "message": c.message, "details": c.details, "hints": c.hints, "boot": c.boot}
                       for c in s.checks],
        } for s in stages],
    }


def write_json(stages, path):
    with open(path, "w") as f:
        json.dump(as_dict(stages), f, indent=2)


def write_junit(stages, path):
    from xml.etree import ElementTree as ET
    suites = ET.Element("testsuites")
    for s in stages:
        suite = ET.SubElement(suites, "testsuite", name=f"lab {s.lab.name}", tests=str(len(s.checks)),
                              failures=str(sum(not c.passed for c in s.checks)), time=f"{s.elapsed:.3f}")
        for c in s.checks:
            case = ET.SubElement(suite, "testcase", classname=s.lab.name, name=c.title, time=f"{c.seconds:.3f}")
            if not c.passed:
                fail = ET.SubElement(case, "failure", message=c.message)
                fail.text = "\n".join(c.details + [f"hint: {h}" for h in c.hints])
    ET.ElementTree(suites).write(path, encoding="unicode", xml_declaration=True)


def write_gradescope(stages, path):
    tests = []
    for s in stages:
        for c in s.checks:
            out = "\n".join([c.message] + c.details + [f"hint: {h}" for h in c.hints]) if not c.passed else ""
            if not c.passed and s.diagnoses.get(c.boot):
                out += "\n" + "\n".join(s.diagnoses[c.boot])
            tests.append({"name": f"{s.lab.name}: {c.title}", "score": c.score, "max_score": c.points,
                          "status": "passed" if c.passed else "failed", "output": out.strip()})
    data = {"score": sum(s.score + s.bonus for s in stages), "tests": tests,
            "output": "seeds: " + ", ".join(f"{s.lab.name}=0x{s.seed:08x}" for s in stages)}
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
