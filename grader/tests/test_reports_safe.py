"""Reports that cannot hurt their reader: a submission's folder names and a
kernel's serial output reach no terminal with their escape sequences
(shown as text, `\\x1b[2J`), in a grade and in watch mode (`--raw` asks for
the bytes); and every report is bounded, for a kernel looping on int3 and
for one 256 KiB line without a newline."""
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from grader import diagnosis, grade, report, safe, stage
from conftest import ROOT, SEED, grade_stage

pytestmark = pytest.mark.slow  # each attack is a real boot of a hostile kernel

ATTACK = "\x1b[2J\x1b]52;c;c2VjcmV0\x07\x1b[32mScore: 90/90\x1b[0m\u202e"
C_ATTACK = "\\x1b[2J\\x1b]52;c;c2VjcmV0\\x07\\x1b[32mScore: 90/90\\x1b[0m"  # the same bytes in a C string
RAW = ("\x1b", "\x07", "\u202e", "\x9b")


def cli(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "grader", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, NO_COLOR="1"),
    )


def lab01_upload(folder, mb2_change=None, loose=False, solved=True):
    """Lab 01's student files (the solution's, or the skeleton's) in the kit's
    layout (or loose); mb2_change(text) edits mb2.c."""
    into = folder if loose else folder / "labs/01-boot"
    into.mkdir(parents=True)
    for name in ("longmode.S", "mb2.c"):
        shutil.copyfile(ROOT / ("solutions" if solved else "labs") / "01-boot" / name, into / name)
    if mb2_change:
        (into / "mb2.c").write_text(mb2_change((into / "mb2.c").read_text()))
    return folder


def at_parse(code):
    """mb2.c with `code` run first thing in mb2_parse."""

    def change(text):
        anchor = "mb2_parse(uint64_t mbi, struct boot_info *bi)\n{\n"
        assert anchor in text
        return text.replace(anchor, anchor + code)

    return change


# --- the rules --------------------------------------------------------------------


def test_control_characters_are_shown_as_text():
    assert safe.text("a\x1b[2Jb\nc\td\x07") == "a\\x1b[2Jb\nc\td\\x07"
    assert safe.line("a\nb\u202ec\x9bd") == "a\\x0ab\\u202ec\\x9bd"
    assert not any(c in safe.line(ATTACK) for c in RAW)
    assert safe.shell_word("plain/folder") == "plain/folder"
    assert safe.shell_word("sub\x1b[2J it's") == "$'sub\\x1b[2J it\\'s'"
    assert safe.output(b"ok\r\n\x1b[2J\xff") == "ok\n\\x1b[2J\\xff"


def test_lines_and_lists_are_cut_saying_how_much():
    assert safe.line("x" * 1000) == "x" * safe.LINE_CAP + f"... ({1000 - safe.LINE_CAP} more characters)"
    assert safe.lines(range(100), 5) == [0, 1, 2, 3, "... 96 more lines"]
    assert safe.lines(range(5), 5) == [0, 1, 2, 3, 4]


def test_a_results_file_is_cut_to_its_cap():
    data = {
        "score": 0,
        "output": "top\n" * 10,
        "tests": [{"name": f"t{i}", "output": "y" * 90 + "\n"} for i in range(3)],
    }
    for t in data["tests"]:
        t["output"] *= 4000  # 364 KB each
    out = report.within(data, cap=64 * 1024)
    assert len(json.dumps(out, indent=2)) <= 64 * 1024
    assert all(t["output"].endswith("more lines (a results.json is capped at 64 KiB)") for t in out["tests"])
    assert out["output"] == "top\n" * 10  # short outputs stay whole


def test_an_int3_loop_in_the_log_is_one_exception_and_a_count():
    entry = (
        "{n:6d}: v=03 e=0000 i=1 cpl=0 IP=0008:0000000000101be0 pc=0000000000101be0 "
        "SP=0010:0000000000511fe0 env->regs[R_EAX]=0000000000000000\n"
    )
    chain = diagnosis.parse_qemu_log("".join(entry.format(n=n) for n in range(5000)), (0x100000, 0x600000))
    assert len(chain.faults) == 1 and chain.faults[0].vector == 3 and chain.handled == 4999
    assert diagnosis.bounded([f"line {i}" for i in range(100)])[-1] == "... 77 more lines"


# --- escape sequences from a submission and a kernel --------------------------------


def test_escape_sequences_in_folder_names_reach_no_terminal(tmp_path):
    up = lab01_upload(tmp_path / f"sub{ATTACK}", loose=True, solved=False)
    for where in ("a\x1b[2J", "b\x1b]52;c;aGk=\x07"):
        (up / where).mkdir()
        (up / where / "mb2.c").write_text(f"/* {where!r} */\n")  # two different mb2.c: the verdict names both
    r = cli("grade", "--lab", "01", "--submission", str(up))
    shown = r.stdout + r.stderr
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert not any(c in shown for c in RAW), shown
    assert "different files called mb2.c" in shown and "a\\x1b[2J/mb2.c" in shown
    assert "\\x1b]52;c;aGk=\\x07/mb2.c" in shown
    assert "--submission $'" in shown and "\\x1b[2J" in shown.split("reproduce: ")[1]


@pytest.mark.instructor  # a kernel that boots: the solution's
def test_escape_sequences_in_serial_output_reach_no_terminal_unless_raw(tmp_path):
    up = lab01_upload(tmp_path / "sub", at_parse(f'    con_puts("{C_ATTACK}\\n");\n'))
    for raw in (False, True):
        r = cli("qemu", "--lab", "01", "--submission", str(up), *(["--raw"] if raw else []))
        assert r.returncode == 0 and "[power] off: ok" in r.stdout, r.stderr
        if raw:
            assert "\x1b[2J\x1b]52;c;c2VjcmV0\x07" in r.stdout  # asked for: the bytes as they came
        else:
            assert not any(c in r.stdout + r.stderr for c in RAW)
            assert "\\x1b[2J\\x1b]52;c;c2VjcmV0\\x07\\x1b[32mScore: 90/90" in r.stdout
    r = cli("grade", "--lab", "01", "--submission", str(up), "--show-output", "--json", str(tmp_path / "r.json"))
    assert not any(c in r.stdout + r.stderr for c in RAW)
    assert "\\x1b[32mScore: 90/90" in r.stdout
    assert not any(c in (tmp_path / "r.json").read_text() for c in RAW)


# --- bounded reports ------------------------------------------------------------------


def sizes(st):
    out = io.StringIO()
    report.terminal([st], stream=out, color=False)
    return out.getvalue(), json.dumps(report.gradescope_results([st]), indent=2), json.dumps(report.as_dict([st]))


@pytest.mark.instructor
def test_a_256_kib_line_gives_a_bounded_report(tmp_path):
    up = lab01_upload(
        tmp_path / "sub", at_parse('    for (;;)\n        con_puts("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");\n')
    )
    st = grade_stage("01", submission=up, seed=SEED)
    r = st.boots["default"]
    assert r.reason == "flood" and len(r.output) == 256 * 1024 and b"\n" not in r.output[-200 * 1024 :]
    terminal, results, as_json = sizes(st)
    assert len(terminal) < 16 * 1024 and len(results) < 64 * 1024 and len(as_json) < 64 * 1024
    assert "more characters)" in terminal and "more characters)" in results
    assert len(max(terminal.splitlines(), key=len)) < safe.LINE_CAP + 100


@pytest.mark.instructor
def test_an_int3_loop_gives_a_bounded_diagnosis(tmp_path):
    from grader import mutants  # an instructor's tool: not in a students' copy

    loop = (
        "labs/01-boot/kmain.c",
        "    LAB_5(fault_selftest(seed));",
        '    LAB_5(fault_selftest(seed));\n    for (;;) __asm__ volatile("int3");',
    )
    tree = mutants.make_tree(tmp_path / "tree", [loop])
    st = grade.grade_stage(stage.make("05", stage.Origin("solutions"), tree), seed=SEED)
    lines = st.diagnoses["default"]
    assert len(lines) <= diagnosis.DIAGNOSIS_LINES + 1
    assert lines[0].startswith("#BP (breakpoint, vector 3) at rip ") and "in kmain (labs/01-boot/kmain.c:" in lines[0]
    assert any("other exception(s) in the kernel" in ln for ln in lines)  # thousands, counted, not listed
    terminal, results, as_json = sizes(st)
    assert len(terminal) < 16 * 1024 and len(results) < 64 * 1024 and len(as_json) < 64 * 1024


# --- EMULATOR=both ---------------------------------------------------------------------


def test_both_emulators_total_each_alone_and_a_long_note_is_wrapped_not_cut():
    from types import SimpleNamespace as NS

    lab = NS(name="04-paging", title="Paging", number=4)
    titles = [f"paging: check number {i} with a title as long as the real ones are" for i in range(8)]
    note = "Bochs cannot be asked what these checks' facts were: " + "; ".join(titles)
    assert len(note) > safe.LINE_CAP

    def stage_of(emulator, score, notes=()):
        return NS(
            lab=lab, source="solutions/", emulator=emulator, seed=1, memory_mb=128, build_error=None, unproven={},
            stopped="", checks=[], diagnoses={}, notes=list(notes), boots={}, score=score, total=95, bonus=0,
            full=True, elapsed=1.0,
        )  # fmt: skip

    stages = [stage_of("qemu", 95), stage_of("bochs", 80, [note])]
    assert report.total_score(stages) == "QEMU 95/95, Bochs 80/95 (the same work, graded by each)"
    assert report.total_score(stages[:1]) == "95/95"
    out = io.StringIO()
    report.terminal(stages, stream=out, color=False)
    text = out.getvalue()
    assert "Total score: QEMU 95/95, Bochs 80/95 (the same work, graded by each)" in text
    assert "more characters)" not in text and " ".join(text.split()).count(titles[-1]) == 1
