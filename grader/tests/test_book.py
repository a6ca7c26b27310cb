"""The book: every listing, figure and transcript in book/*.md is what its
source gives; no absolute path of a machine appears anywhere in book/."""
import importlib.util
import re
import shutil
import subprocess
import sys

import pytest

from grader import labs

BOOK = labs.ROOT / "book"


def book_module(name):
    sys.path.insert(0, str(BOOK))
    try:
        spec = importlib.util.spec_from_file_location(f"book_{name}", BOOK / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BOOK))


def test_book_is_up_to_date_with_its_sources():
    """Listings, the text figure, the SVG figures and the transcripts' inputs."""
    r = subprocess.run(
        [sys.executable, "book/build.py", "--check"], cwd=labs.ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.instructor  # the transcripts are runs of solutions/
@pytest.mark.slow  # after a change to grader/ or labs/ it runs all of them again
@pytest.mark.long
def test_every_transcript_matches_a_real_run():
    """A transcript whose inputs changed since the last sync is run again and
    compared (durations masked); unchanged inputs mean an unchanged run."""
    if not labs.staff_copy():
        pytest.skip("a students' copy: transcripts are run again in the course staff's copy only")
    r = subprocess.run(
        [sys.executable, "book/build.py", "--check"], cwd=labs.ROOT, capture_output=True, text=True, timeout=300
    )
    if "made from other inputs" in r.stdout:
        from grader import deps  # running them needs the book's tools (gdb, bochs)

        try:
            deps.ensure("book", install=True)
        except deps.MissingTools as e:
            pytest.fail(f"transcripts must be run again and their tools are missing: {e}")
    r = subprocess.run(
        [sys.executable, "book/build.py", "--verify"], cwd=labs.ROOT, capture_output=True, text=True, timeout=1800
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


def test_no_absolute_path_of_a_machine_in_book():
    build = book_module("build")
    pattern = build.MACHINE_PATH
    found = []
    for p in sorted(BOOK.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{p.relative_to(labs.ROOT)}:{n}: {line.strip()[:100]}")
    assert not found, "\n".join(found)
    assert pattern.search("at /home/ann/kit/labs/01-boot/kmain.c:14") and pattern.search("-D /tmp/q.log")
    assert pattern.search("file /work/main/build/stage-01-sol/kernel.elf")
    assert not pattern.search("labs/01-boot/kmain.c") and not pattern.search("$TMPDIR/run")


def test_every_lab_has_a_chapter_and_a_handout():
    for lab in labs.discover():
        assert (labs.ROOT / lab.chapter).is_file(), lab.chapter
        handout = (lab.dir / "README.md").read_text()
        assert lab.chapter in handout and all(name in handout for name in lab.student)


def test_every_listing_and_transcript_is_followed_by_its_block():
    build = book_module("build")
    for ch in build.chapters():
        lines = ch.read_text().split("\n")
        for d in build.directives(lines):
            assert d.block is not None, f"{ch.name}:{d.line}: {d.text}"
            assert lines[d.block[0]].strip().startswith("```"), f"{ch.name}:{d.line}"


def test_a_broken_listing_or_figure_is_reported(tmp_path):
    build = book_module("build")
    ch = tmp_path / "99-broken.md"
    ch.write_text(
        "# Broken\n\n<!-- listing: labs/01-boot/kmain.c no_such_function -->\n\n"
        "<!-- listing: solutions/01-boot/mb2.c mb2_parse -->\n\n<!-- figure: memory-layout 77 -->\n"
    )
    problems = build.check([ch], transcripts=False, figures=False)
    assert len(problems) == 3, problems
    assert "no_such_function" in problems[0] and "solutions" in problems[1] and "77" in problems[2]


def test_a_listing_that_drifts_from_its_source_is_reported(tmp_path):
    build = book_module("build")
    lang, code = build.resolve("labs/01-boot/kmain.c", "kmain")
    ch = tmp_path / "99-drift.md"
    good = f"# Drift\n\n<!-- listing: labs/01-boot/kmain.c kmain -->\n```{lang}\n{code}\n```\n"
    ch.write_text(good)
    assert build.check([ch], transcripts=False, figures=False) == []
    ch.write_text(good.replace("kmain(", "kmain_of_an_older_day(", 1))
    problems = build.check([ch], transcripts=False, figures=False)
    assert len(problems) == 1 and "differs from its source" in problems[0], problems
    ch.write_text("# Missing\n\n<!-- listing: labs/01-boot/kmain.c kmain -->\n\nsome text\n")
    assert "no fenced block" in build.check([ch], transcripts=False, figures=False)[0]
    assert build.rewrite(ch, lambda d: build.fenced(*build.wanted(d))) == 1
    assert build.check([ch], transcripts=False, figures=False) == []


@pytest.mark.instructor
@pytest.mark.slow
def test_a_transcript_that_drifts_from_a_real_run_is_reported(tmp_path, monkeypatch):
    """A transcript block that says something else than its command prints
    fails --verify with a diff; --sync writes what the run printed."""
    if not labs.staff_copy():
        pytest.skip("a students' copy: transcripts are run in the course staff's copy only")
    build = book_module("build")
    monkeypatch.setattr(build.tr, "LOCK", tmp_path / "transcripts.json")
    ch = tmp_path / "99-transcript.md"
    ch.write_text(
        "# T\n\n<!-- transcript: sh run='printf \"one\\ntwo\\nthree\\n\"' drop='^two' -->\n"
        '```text\n$ printf "one\\ntwo\\nthree\\n"\none\n[...]\nfour\n```\n'
    )
    problems = build.sync([ch], verify_only=True, out=lambda *a: None)
    assert len(problems) == 1 and "drifted from a real run" in problems[0] and "+three" in problems[0], problems
    assert build.sync([ch], out=lambda *a: None) == []
    assert "one\n[...]\nthree\n```" in ch.read_text()
    assert build.sync([ch], verify_only=True, out=lambda *a: None) == []
    assert build.check([ch], figures=False) == []
    ch.write_text(ch.read_text().replace("drop='^two'", "drop='^one'"))
    assert "made from other inputs" in build.check([ch], figures=False)[0]


def test_a_racy_transcript_is_compared_by_its_characters():
    """Two streams may cut each other anywhere, even inside a word; a changed
    number still counts as a drift."""
    tr = book_module("transcripts")
    t = tr.Transcript("sh racy run='true'")
    book = ["[mb2] made-up tags: 9 tags, ok", "[power] off: ok", "=====", "Bochs is exiting", "=====", "t=83419246"]
    run = ["[mb2] made-up tags: 9 ta=====", "Bochs is exiting", "=====", "gs, ok", "[power] off: ok", "t=83419246"]
    assert tr.masked(t, book) == tr.masked(t, run)
    assert tr.masked(t, book) != tr.masked(t, run[:-1] + ["t=83419916"])
    assert tr.masked(tr.Transcript("sh run='true'"), book) != tr.masked(tr.Transcript("sh run='true'"), run)


def test_a_transcript_run_under_make_shows_no_sub_make_lines(monkeypatch):
    """`make test` runs the transcripts: the make they start is not a sub-make."""
    tr = book_module("transcripts")
    monkeypatch.setenv("MAKELEVEL", "1")
    monkeypatch.setenv("MAKEFLAGS", "w")
    out = tr.run_cmd(["make", "-f", "/dev/null", "-n", "--eval=x:;@:", "x"], labs.ROOT)
    assert "Entering directory" not in out and "Leaving directory" not in out, out


@pytest.mark.instructor
@pytest.mark.slow
def test_the_booted_kernel_is_the_same_wherever_the_kit_lives(tmp_path):
    """Debug information names the kit's folder; the kernel GRUB loads from
    the ISO has none, so a boot (GRUB's boot information address, Bochs's
    instruction counts in the book) is the same in every clone."""
    kernels = []
    for name in ("kit", "a-kit-in-a-folder-with-a-much-longer-name"):
        root = tmp_path / name
        for d in ("labs", "solutions", "grader"):
            shutil.copytree(labs.ROOT / d, root / d, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        r = subprocess.run(
            [sys.executable, "-m", "grader", "build", "--lab", "01", "--solutions", "--no-install"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        out = root / "boot.elf"
        r = subprocess.run(
            [
                "xorriso",
                "-osirrox",
                "on",
                "-indev",
                str(root / "build/stage-01-sol/kernel.iso"),
                "-extract",
                "/boot/kernel.elf",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        kernels.append(((root / "build/stage-01-sol/kernel.elf").read_bytes(), out.read_bytes()))
    (elf_a, boot_a), (elf_b, boot_b) = kernels
    assert elf_a != elf_b  # the debug information does differ between the two folders
    assert boot_a == boot_b


def test_a_transcript_line_is_checked_before_anything_runs(tmp_path):
    build = book_module("build")
    ch = tmp_path / "99-bad.md"
    ch.write_text(
        "# B\n\n<!-- transcript: grade seed=0x1 -->\n\n<!-- transcript: qemu lab=01 experiment=nope -->\n\n"
        "<!-- transcript: gdb lab=01 color=red -->\n"
    )
    problems = build.check([ch], figures=False)
    assert len(problems) == 3, problems
    assert "lab=NN is missing" in problems[0] and "color" in problems[2]
    # a students' copy lacks the staff's experiments: there the name is not checked, the missing block is
    assert ("no experiment `nope`" if labs.staff_copy() else "has no fenced block") in problems[1], problems


def test_every_experiment_still_applies():
    exps = book_module("experiments").EXPERIMENTS
    for name, patches in exps.items():
        for rel, old, new in patches:
            if rel.startswith("solutions/") and not labs.staff_copy():
                continue  # a students' copy holds the reference code of the released labs at most
            assert old in (labs.ROOT / rel).read_text(), f"experiment {name}: {old[:50]!r} not in {rel}"


def test_figures_are_readable_on_a_phone():
    figures = book_module("figures")
    for name in figures.FIGURES:
        svg = (BOOK / "figures" / name).read_text()
        width = int(re.search(r'<svg[^>]* width="(\d+)"', svg).group(1))
        sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', svg)]
        assert width <= 640, name
        assert min(sizes) * 600 / width >= 9.5, f"{name}: text of {min(sizes)} units in {width} is too small at 600 px"


def test_no_hand_typed_kernel_address_in_the_prose():
    """Every kernel address (0x100000-0x5fffff) in a chapter, in its prose,
    its hand-drawn figures or a transcript's line, is written by --sync: it
    lies in a generated block, follows a value comment, or is a placeholder."""
    build = book_module("build")
    values = build.vals
    found = []
    for ch in build.chapters():
        lines = ch.read_text().split("\n")
        found += [f"{ch.name}:{n}: {a}" for n, a in values.uncovered_addresses(lines, build.directives(lines))]
    for t in sorted(values.TEMPLATES.glob("*.txt")):
        lines = t.read_text().split("\n")
        found += [
            f"text-figures/{t.name}:{n}: {a} (a template: use a {{{{placeholder}}}})"
            for n, a in values.uncovered_addresses(lines, [])
        ]
    assert not found, "typed by hand (book/values.py says how to generate them):\n" + "\n".join(found)
    # the scan itself: a bare address, one in a code span, a padded one are found; covered ones are not
    text = [
        "at 0x106bc8 and `rip 0x0000000000106bc8`, not 0x1234 nor 0x600000",
        "<!-- value: sym 05 probe_write_insn -->`0x106bc8` and <!-- value: fixed: a story -->0x300000",
        "```",
        " 0x51aed8   a hand-drawn figure",
        "```",
        "<!-- figure: text idt -->",
        "```text",
        " IDTR base 0x110d40",
        "```",
    ]
    lines = text
    got = values.uncovered_addresses(lines, build.directives(lines))
    assert got == [(1, "0x106bc8"), (1, "0x0000000000106bc8"), (4, "0x51aed8")], got


def chapter_with_a_value(tmp_path):
    """A chapter with a transcript and a value that quotes it, as --sync writes them."""
    build = book_module("build")
    ch = tmp_path / "99-value.md"
    ch.write_text(
        "# V\n\n<!-- transcript: sh name=boot run='true' -->\n```text\n$ true\n"
        "[fault] #PF page fault at rip 0x0000000000106be8 error 0x3 cr2 0x0000000000107c3f\n```\n\n"
        "The write at <!-- value: run boot 'rip (0x\\w+)' %#x -->`0x106be8` faulted on "
        "<!-- value: run boot 'cr2 (0x\\w+)' -->`cr2 0x0000000000107c3f`, 3 bytes past "
        "<!-- value: run boot 'cr2 (0x\\w+)' -3 %#x -->0x107c3c.\n"
    )
    return build, ch


def test_a_value_that_drifts_from_its_source_fails_the_check(tmp_path):
    build, ch = chapter_with_a_value(tmp_path)
    assert build.check([ch], transcripts=False, figures=False) == []
    good = ch.read_text()
    ch.write_text(good.replace("`0x106be8` faulted", "`0x106bc8` faulted"))  # an older build's address
    problems = build.check([ch], transcripts=False, figures=False)
    assert len(problems) == 1 and "gives 0x106be8, the text says 0x106bc8" in problems[0], problems
    assert build.sync_values([ch], out=lambda *a: None) == 1 and ch.read_text() == good
    # a run that printed something else moves every value that quotes it
    ch.write_text(good.replace("cr2 0x0000000000107c3f\n", "cr2 0x0000000000107d00\n"))
    assert len(build.check([ch], transcripts=False, figures=False)) == 2
    build.sync_values([ch], out=lambda *a: None)
    assert (
        "`cr2 0x0000000000107d00`, 3 bytes past <!-- value: run boot 'cr2 (0x\\w+)' -3 %#x -->0x107cfd."
        in ch.read_text()
    )


def test_a_value_that_cannot_be_worked_out_is_reported(tmp_path):
    build = book_module("build")
    ch = tmp_path / "99-bad.md"
    for body, says in (
        ("<!-- value: run nowhere 'x' -->`0x1`", "no transcript name=nowhere"),
        ("<!-- value: sym 05 -->`0x1`", "sym takes 2 arguments"),
        ("<!-- value: sym 05 idt -->, then text", "followed by 0 number(s)"),
        ("<!-- value: sym 05 idt %q -->`0x1`", "format %q"),
        ("<!-- figure: text no-such-figure -->\n```text\n```", "no template book/text-figures/no-such-figure.txt"),
    ):
        ch.write_text(f"# B\n\n{body}\n")
        problems = build.check([ch], transcripts=False, figures=False) + build.check(
            [ch], transcripts=False, figures=False, only_broken=True
        )
        assert problems and says in problems[0], (body, problems)


@pytest.mark.instructor  # the addresses are those of the reference build
def test_reverting_a_synced_address_fails_the_check():
    """The check of the real book: chapter 5 with one address of kernel.sym
    put back to an older build's fails `--check`, which names it."""
    build = book_module("build")
    text = (BOOK / "05-faults.md").read_text()
    m = re.search(r"<!-- value: sym 05 probe_write_insn -->`(0x[0-9a-f]+)`", text)
    assert m, "chapter 5 names probe_write_insn's address with a value comment"
    old = hex(int(m.group(1), 16) - 0x90)
    path = labs.ROOT / "build" / "book-test" / "05-faults.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text[: m.start(1)] + old + text[m.end(1) :])
    problems = build.check([path], transcripts=False)
    assert any(f"gives {m.group(1)}, the text says {old}" in p for p in problems), problems


def test_a_chapter_in_parts_reads_in_order():
    """Chapter 6 comes in parts: the lab's file first, then its parts by number,
    before the appendices; each part under about 6,000 words, opening with a
    line that links the previous and the next part."""
    build = book_module("build")
    names = [ch.name for ch in build.chapters()]
    assert "06-jit-model.md" in names and "06-jit-model-2-simd.md" in names, names
    for first in names:
        parts = [n for n in names if n.startswith(first[: -len(".md")] + "-")]
        if parts:
            check_the_parts(names, first, parts)


def check_the_parts(names, first, parts):
    assert names.index(first) + 1 == names.index(parts[0]), names
    assert [int(n[len(first) - 2 :].split("-")[0]) for n in parts] == list(range(2, len(parts) + 2)), parts
    assert names.index(parts[-1]) < min(i for i, n in enumerate(names) if n >= "90-"), names
    chain = [first] + parts
    for k, name in enumerate(chain):
        text = (BOOK / name).read_text()
        assert len(text.split()) < 6000, f"{name}: {len(text.split())} words"
        lead = next(line for line in text.split("\n")[1:] if line.strip())
        assert f"part {k + 1}" in lead.lower(), (name, lead)
        assert k == 0 or f"({chain[k - 1]})" in lead, (name, lead)
        assert k + 1 == len(chain) or f"({chain[k + 1]})" in lead, (name, lead)
    assert all(f"]({n})" in (BOOK / first).read_text() for n in parts), "the first part lists every part"


def test_a_value_may_quote_a_run_of_another_part(tmp_path):
    build = book_module("build")
    run = "<!-- transcript: sh name=boot run='true' -->\n```text\n$ true\nrip 0x0000000000106be8\n```\n"
    (tmp_path / "98-other.md").write_text("# Another chapter, its own run named boot\n\n" + run)
    first = tmp_path / "99-v.md"
    first.write_text("# V\n\nThe write at <!-- value: run boot 'rip (0x\\w+)' %#x -->`0x106be8` faulted.\n")
    second = tmp_path / "99-v-2-run.md"
    second.write_text("# V, part 2\n\n" + run)
    assert build.check([first, second], transcripts=False, figures=False) == []
    assert build.check([first], transcripts=False, figures=False) == []  # the parts beside it are read
    second.unlink()
    problems = build.check([first], transcripts=False, figures=False)
    assert problems and "no transcript name=boot" in problems[0], problems
    second.write_text("# V, part 2\n\n" + run)
    (tmp_path / "99-v-3-again.md").write_text("# V, part 3\n\n" + run.replace("true", "true "))
    problems = build.check([first], transcripts=False, figures=False)
    assert problems and "two transcripts are named boot" in problems[0], problems


def test_the_parts_of_a_chapter_in_the_pages():
    """Figures numbered on through the parts, the parts nested under their
    chapter, links between chapter files made links to the pages (or, in the
    EPUB, to the start of the part), never inside a code block."""
    pages = book_module("pages")
    book = [
        pages.Page("05-a", "Chapter 5: A", "![a](figures/a.svg)\n"),
        pages.Page("06-b", "Chapter 6: B", "![b](figures/b.svg)\n\nOn in [part 2](06-b-2-c.md).\n"),
        pages.Page(
            "06-b-2-c",
            "Chapter 6, part 2: C",
            '![c](figures/c.svg)\n\nSee ["Sec"](06-b.md#sec).\n\n```text\n[x](06-b.md)\n```\n',
        ),
        pages.Page("90-d", "Appendix: D", "![d](figures/d.svg)\n"),
    ]
    pages.number(book)
    assert book[2].part_of is book[1] and book[1].part_of is None and book[3].part_of is None
    html_text = [pages.pandoc_markdown(p) for p in book]
    assert "Figure 5.1." in html_text[0] and "Figure 6.1." in html_text[1] and "Figure A.1." in html_text[3]
    assert "Figure 6.2." in html_text[2] and "Figure 6.1." not in html_text[2]
    assert "](06-b-2-c.html)" in html_text[1] and '["Sec"](06-b.html#sec)' in html_text[2]
    assert "[x](06-b.md)" in html_text[2], "a link in a code block is left as it is"
    epub = pages.pandoc_markdown(book[2], epub=True)
    assert '["Sec"](#chapter-06-b)' in epub and "[x](06-b.md)" in epub
    side = pages.chapter_list_html(book, "06-b-2-c.html")
    assert side.count("<li>") == 4 and '<ol class="parts">' in side
    assert '<a href="06-b-2-c.html" aria-current="page">Part 2: C</a>' in side
    assert '<a href="06-b.html">Chapter 6: B</a><ol class="parts">' in side


def test_the_search_index_leaves_out_a_drawn_figures_labels():
    pages = book_module("pages")
    page = (
        '<main><h2 id="df">Double fault</h2><p>The CPU gives up.</p>'
        "<figure><svg><text>DOUBLE FAULT</text><text>IST 1</text></svg>"
        "<figcaption>Figure 5.2: the IST stack</figcaption></figure></main>"
    )
    [(sid, heading, text)] = pages.section_texts(page)
    assert (sid, heading) == ("df", "Double fault")
    assert "The CPU gives up." in text and "Figure 5.2" in text and "DOUBLE FAULT" not in text
