"""The transcript matcher: ordered matching, placeholders, alternatives,
never-lines, and the difference between a wrong line and a missing one."""
import pytest

from grader import transcript

SPEC = """
# comment
== first [5]
hint: look here
[a] seed={seed} n={dec}
[a] {yes|no} done
! [panic] {any}
== second [3]
[b] literal {{braces}} {hex}
"""


def run(lines, values=None):
    checks = transcript.parse(SPEC)
    return checks, transcript.match(checks, lines, values or {"seed": "0x2a"})


def test_parse_titles_points_hints():
    checks = transcript.parse(SPEC)
    assert [(c.title, c.points) for c in checks] == [("first", 5), ("second", 3)]
    assert checks[0].hints == ["look here"]
    assert [e.never for e in checks[0].lines] == [False, False, True]


def test_all_lines_matched_in_order_with_noise_between():
    _, res = run(["noise", "[a] seed=0x2a n=-12", "more noise", "[a] no done", "[b] literal {braces} 0xff"])
    assert all(not transcript.failed(r) for r in res.values())


def test_order_matters():
    _, res = run(["[a] no done", "[a] seed=0x2a n=1", "[b] literal {braces} 0x1"])
    assert [r.status for r in res["first"]][:2] == ["matched", "missing"]


def test_computed_value_must_be_exact():
    checks, res = run(["[a] seed=0x2b n=1", "[a] yes done", "[b] literal {braces} 0x1"])
    bad = transcript.failed(res["first"])
    assert bad[0].status == "wrong" and bad[0].got == "[a] seed=0x2b n=1"
    msg = transcript.explain(res["first"], {"seed": "0x2a"}, [])
    assert msg == "expected `[a] seed=0x2a n={dec}`, got `[a] seed=0x2b n=1`"


def test_alternatives_reject_other_words():
    _, res = run(["[a] seed=0x2a n=1", "[a] maybe done"])
    assert transcript.failed(res["first"])[0].status == "wrong"


def test_never_line_fails_its_check_anywhere():
    _, res = run(["[panic] oops", "[a] seed=0x2a n=1", "[a] yes done", "[b] literal {braces} 0x1"])
    bad = transcript.failed(res["first"])
    assert [b.status for b in bad] == ["forbidden"] and bad[0].index == 0
    assert not transcript.failed(res["second"])


def test_missing_after_last_match_and_nothing_printed():
    _, res = run(["[a] seed=0x2a n=1"])
    assert "missing `[a] {yes|no} done` (after `[a] seed=0x2a n=1`)" == transcript.explain(
        res["first"], {"seed": "0x2a"}, ["[a] seed=0x2a n=1"]
    )
    _, res = run([])
    assert "the kernel printed nothing" in transcript.explain(res["first"], {"seed": "0x2a"}, [])


def test_a_missing_line_is_placed_after_the_line_before_it_not_after_the_last_match():
    checks = transcript.parse("== t [1]\n[a] one\n[b] two\n[c] three\n")
    out = ["[a] one", "noise", "[c] three"]
    res = transcript.match(checks, out, {})
    assert transcript.explain(res["t"], {}, out) == "missing `[b] two` (after `[a] one`)"


def test_whole_line_must_match():
    _, res = run(["[a] seed=0x2a n=1 trailing", "[a] yes done"])
    assert transcript.failed(res["first"])[0].status == "wrong"


def test_a_line_with_a_control_byte_in_it_is_its_near_miss_not_missing():
    # as grader/run.py renders the serial bytes: \x01 inside the tag, where the key of the line is
    lines = ["[a] seed=0x2a n=1", "[a] y\\x01es d\\x01one"]
    _, res = run(lines)
    r = res["first"][1]
    assert (r.status, r.index) == ("wrong", 1)
    said = transcript.explain(res["first"], {"seed": "0x2a"}, lines)
    assert said == (
        "expected `[a] {yes|no} done`, got `[a] y\\x01es d\\x01one`: the line differs only by a control byte "
        "(`\\x01`): the kernel sent a byte that is not text"
    )
    assert "(the line differs only by a control byte" in "\n".join(transcript.diff_view(res["first"], {}, lines))
    _, res = run(["[a] seed=0x2a n=1", "[\\x00a] no done"])  # before the key: no longer missing either
    assert res["first"][1].status == "wrong" and "`\\x00`" in res["first"][1].note


def test_diff_view_marks_each_line():
    lines = ["[a] seed=0x2a n=1", "[x] something else"]
    _, res = run(lines)
    view = "\n".join(transcript.diff_view(res["first"], {"seed": "0x2a"}, lines))
    assert "ok      [a] seed=0x2a n=1" in view
    assert "MISSING [a] {yes|no} done" in view and "| [x] something else" in view


@pytest.mark.parametrize("bad", ["== no points\n", "line before any check\n", "== t [1]\n[a] {nosuch}\n"])
def test_broken_spec_is_an_error(bad):
    with pytest.raises(transcript.TranscriptError):
        checks = transcript.parse(bad)
        transcript.match(checks, ["x"], {})


def test_every_lab_transcript_parses():
    from grader import labs

    for lab in labs.discover():
        checks = transcript.parse((lab.dir / "expected.txt").read_text())
        assert checks and all(c.lines and c.points > 0 for c in checks), lab.name


CONSTANT = """
== uart [10]
[serial] COM1: divisor 1 (115200 baud), LCR 0x03, FIFO on
== seeded [5]
[k] d={d}
[k] d={d} again
"""


def constant(lines, values=None):
    checks = transcript.parse(CONSTANT)
    return transcript.match(checks, lines, values or {"d": "-7"})


def test_a_line_with_other_numbers_contradicts_an_earlier_copy():
    forged = "[serial] COM1: divisor 1 (115200 baud), LCR 0x03, FIFO on"
    res = constant([forged, "noise", "[serial] COM1: divisor 3 (38400 baud), LCR 0x03, FIFO on"])
    (r,) = res["uart"]
    assert r.status == "contradicted" and r.index == 2
    assert transcript.explain(res["uart"], {}, []) == (
        f"output line 3 contradicts `{forged}`: `[serial] COM1: divisor 3 (38400 baud), LCR 0x03, FIFO on`"
    )
    assert any("CONTRA" in ln for ln in transcript.diff_view(res["uart"], {}, []))


def test_a_computed_value_contradicted_after_its_match_fails_the_check():
    res = constant(["[k] d=-7", "[k] d=-7 again", "[k] d=12"])
    assert [r.status for r in res["seeded"]] == ["contradicted", "matched"]


def test_lines_of_other_words_or_that_are_expected_elsewhere_contradict_nothing():
    res = constant(
        [
            "[serial] COM1: divisor 1 (115200 baud), LCR 0x03, FIFO on",
            "[serial] COM1 is fine",
            "[k] d=-7",
            "[k] d=-7 again",
        ]
    )
    assert not any(transcript.failed(r) for r in res.values())


def test_a_right_line_is_not_contradicted_by_the_kernels_attempt_at_another():
    checks = transcript.parse("== t [5]\n[p] translate {t0} -> {t0}\n[p] translate {beyond} -> not mapped\n")
    out = ["[p] translate 0x10 -> not mapped", "[p] translate 0x99 -> not mapped"]
    res = transcript.match(checks, out, {"t0": "0x10", "beyond": "0x99"})
    assert [(r.status, r.index) for r in res["t"]] == [("wrong", 0), ("matched", 1)]


def test_a_missing_line_shows_the_kernels_fail_line_of_its_subsystem_where_it_should_be():
    checks = transcript.parse("== a [1]\n[p] start\n== b [1]\n[p] .text r-x\n[p] .data rw-\n")
    out = ["[p] start", "[x] other", "[x] more", "[x] FAIL: not mine", "[p] FAIL: 0x1000 maps elsewhere", "[q] end"]
    res = transcript.match(checks, out, {})
    assert transcript.explain(res["b"], {}, out) == (
        "missing `[p] .text r-x`; the kernel said at line 5: `[p] FAIL: 0x1000 maps elsewhere`"
    )
    view = transcript.diff_view(res["b"], {}, out)
    assert "           | ... line 5: [p] FAIL: 0x1000 maps elsewhere" in view and "FAIL: not mine" not in "".join(view)
