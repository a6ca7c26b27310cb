"""The seal where namespaces cannot be made, tried as a hostile student in a
root that imitates a Docker-like container (docker_like.py: Docker's
default capabilities and a seccomp filter that refuses namespaces; the lead
may also run the suite in a chroot, which is another such root).

run_autograder there builds and boots as a user of its own, with the
autograder's files readable by root only: a submission whose `.incbin`
names the bundle's reference code, submission_metadata.json or /etc/shadow
gets the compiler's error and none of their bytes. Without any seal the
same submission prints all three (the attack is real). Where even that
user is impossible, only what cannot leak is graded."""
import json
import os
import re
import secrets
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

import docker_like
from grader import build, gradescope, labs, sandbox
from conftest import ROOT

pytestmark = [pytest.mark.instructor, pytest.mark.slow]  # the bundle carries reference code: a staff's copy makes it

LAB03 = labs.find("03")
WHY = docker_like.why_not()
in_a_container = pytest.mark.skipif(WHY is not None, reason=f"cannot imitate a Docker-like container: {WHY}")
SHADOW = Path("/etc/shadow")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return gradescope.write_zip("03", outdir=tmp_path_factory.mktemp("bundle"))


def autograder_root(tmp_path, bundle, files):
    """R/source (the bundle, a marker first in reference/02-serial/uart.c),
    R/submission (files), R/submission_metadata.json (a marker)."""
    r = tmp_path / "R"
    (r / "source").mkdir(parents=True)
    (r / "submission").mkdir()
    with zipfile.ZipFile(bundle) as z:
        z.extractall(r / "source")
    (r / "source/run_autograder").chmod(0o755)
    marks = {"reference": f"REFERENCE-MARK-{secrets.token_hex(6)}", "metadata": f"METADATA-MARK-{secrets.token_hex(6)}"}
    uart = r / "source/reference/02-serial/uart.c"
    uart.write_text(f"/* {marks['reference']} */\n" + uart.read_text())
    meta = {"id": 1, "users": [{"email": "student@example.com", "name": marks["metadata"]}], "previous_submissions": []}
    (r / "submission_metadata.json").write_text(json.dumps(meta))
    for name, data in files.items():
        (r / "submission" / name).write_bytes(data)
    return r, marks


def leaking(paths):
    """heap.c of the solution, whose heap_init prints the first line of each file
    (an .incbin each), then stops the machine (ud2, no IDT yet: a triple
    fault), so that the lines are the last of the serial output every failed
    test quotes."""
    heap = (LAB03.solution_dir / "heap.c").read_text()
    head = '#include "serial.h"\n'
    show = ""
    for i, p in enumerate(paths):
        head += (
            f'__asm__(".section .rodata\\n.globl kit_leak{i}\\nkit_leak{i}:\\n.incbin \\"{p}\\"\\n.byte 0\\n.text");\n'
            f"extern const char kit_leak{i}[];\n"
        )
        show += f"    kit_show(kit_leak{i});\n"
    head += (
        "static void\nkit_show(const char *s)\n{\n    char line[161];\n    int n = 0;\n"
        "    while (s[n] && s[n] != '\\n' && n < 160) {\n        line[n] = s[n];\n        n++;\n    }\n"
        '    line[n] = 0;\n    kprintf("leaked: %s\\n", line);\n}\n'
    )
    anchor = "heap_init(struct heap *h, void *start, void *end)\n{\n"
    assert anchor in heap
    heap = heap.replace(anchor, anchor + show + '    __asm__ volatile("ud2");\n')
    return {"heap.c": (head + heap).encode(), "freelist.c": (LAB03.solution_dir / "freelist.c").read_bytes()}


def run_autograder(r, confined, env=None):
    cmd = ["bash", str(r / "source/run_autograder")]
    env = dict(os.environ, AUTOGRADER_ROOT=str(r), **(env or {}))
    if confined:
        cmd = docker_like.command(cmd)
        env.pop("KIT_SANDBOX", None)  # conftest's KIT_SANDBOX=off is not the container's
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads((r / "results/results.json").read_text()), p


def secret_lines(r, marks):
    out = {"reference": marks["reference"], "metadata": marks["metadata"]}
    if os.access(SHADOW, os.R_OK):
        first = SHADOW.read_text().splitlines()[0]
        out["shadow"] = first
    return out


def targets(r):
    return {
        "reference": r / "source/reference/02-serial/uart.c",
        "metadata": r / "submission_metadata.json",
        "shadow": SHADOW,
    }


def test_without_a_seal_the_incbin_attack_prints_every_secret(tmp_path, bundle):
    r, marks = autograder_root(tmp_path, bundle, {})
    for name, data in leaking(list(targets(r).values())).items():
        (r / "submission" / name).write_bytes(data)
    data, _ = run_autograder(r, confined=False, env={"KIT_SANDBOX": "off"})
    text = json.dumps(data)
    for what, line in secret_lines(r, marks).items():
        assert line in text, f"the {what} attack did not work without a seal: the test proves nothing"


@in_a_container
def test_in_a_container_the_probe_that_decides_is_the_one_that_explains():
    code = "from grader import sandbox; print(sandbox.mode()); print(sandbox.why_not()); print(sandbox.describe())"
    env = {k: v for k, v in os.environ.items() if k != "KIT_SANDBOX"}
    p = subprocess.run(
        docker_like.command([docker_like.PYTHON, "-c", code]), capture_output=True, text=True, cwd=ROOT, env=env
    )
    mode, why, seal = p.stdout.splitlines()
    assert mode == "user", p.stderr
    assert why.startswith("bubblewrap cannot make namespaces here: bwrap: ") and "(no message)" not in why
    assert seal.startswith("a user of its own")


@in_a_container
@pytest.mark.parametrize("what", ["reference", "metadata", "shadow"])
def test_in_a_container_an_incbin_of_a_secret_prints_none_of_it(tmp_path, bundle, what):
    r, marks = autograder_root(tmp_path, bundle, {})
    target = targets(r)[what]
    for name, data in leaking([target]).items():
        (r / "submission" / name).write_bytes(data)
    data, p = run_autograder(r, confined=True)
    text = json.dumps(data) + p.stdout + p.stderr
    for line in secret_lines(r, marks).values():
        assert line not in text
    assert data["score"] == 0
    assert "as a user of its own" in data["output"]
    assert "Could not find incbin file" in data["output"] and target.name in data["output"]


@in_a_container
def test_in_a_container_the_solution_gets_full_marks_sealed(tmp_path, bundle):
    files = {f: (LAB03.solution_dir / f).read_bytes() for f in LAB03.student}
    r, _ = autograder_root(tmp_path, bundle, files)
    data, _ = run_autograder(r, confined=True)
    assert all(t["status"] == "passed" for t in data["tests"]), [t for t in data["tests"] if t["status"] != "passed"]
    assert "as a user of its own" in data["output"]
    assert [t for t in data["tests"] if "again" in t["name"]]  # the hidden checks, read by root
    assert (os.stat(r).st_mode & 0o777, os.stat(r / "source").st_mode & 0o777) == (0o700, 0o700)
    assert os.stat(r / "submission_metadata.json").st_mode & 0o777 == 0o600


def test_with_no_seal_at_all_only_what_cannot_leak_is_graded(tmp_path, bundle, monkeypatch):
    """Not root, no namespaces: the labs below come from the submission, and
    reference/, the hidden checks and the metadata are out of the compiler's reach."""
    r, marks = autograder_root(tmp_path, bundle, {})
    sub = r / "submission"
    for lab in labs.discover():
        if lab.number < 3:
            for f in lab.student:
                shutil.copyfile(lab.solution_dir / f, sub / f)
    for name, data in leaking([targets(r)["reference"]]).items():
        (sub / name).write_bytes(data)
    monkeypatch.delenv("KIT_SANDBOX", raising=False)
    monkeypatch.setattr(sandbox, "mode", lambda: None)
    monkeypatch.setattr(sandbox, "why_not", lambda: "bubblewrap cannot make namespaces here: (a test)")
    monkeypatch.setattr(gradescope.os, "geteuid", lambda: 1000)
    notes = []
    bundle_info = json.loads((r / "source/bundle.json").read_text())
    st = gradescope.grade_upload(sub, bundle_info, r / "source", notes, r)
    assert st.build_error and "Could not find incbin file" in st.build_error.details
    assert marks["reference"] not in json.dumps([c.message for c in st.checks])
    assert "graded on the submission's own files only" in notes[-1]
    assert (r / "source/reference/02-serial/uart.c").is_file() and (r / "submission_metadata.json").is_file()
    assert (r / "source/labs/03-bss-heap/hidden/checks.py").is_file()  # moved back


def test_as_root_with_no_seal_at_all_nothing_is_built(tmp_path, bundle, monkeypatch):
    r, _ = autograder_root(tmp_path, bundle, {f: (LAB03.solution_dir / f).read_bytes() for f in LAB03.student})
    monkeypatch.delenv("KIT_SANDBOX", raising=False)
    monkeypatch.setattr(sandbox, "mode", lambda: None)
    monkeypatch.setattr(sandbox, "why_not", lambda: "no namespaces, no setpriv (a test)")
    monkeypatch.setattr(gradescope.os, "geteuid", lambda: 0)
    st = gradescope.grade_upload(r / "submission", {"lab": "03-bss-heap", "below": "reference"}, r / "source", [], r)
    assert st.score == 0 and st.build is None
    assert st.build_error.summary.startswith("nothing was built: the autograder runs as root")


def test_a_kit_whose_solutions_the_seals_user_could_read_builds_no_submission(tmp_path, monkeypatch):
    """Under the user seal, grading a submission in a staff's copy whose solutions are world-readable."""
    monkeypatch.setattr(sandbox, "mode", lambda: "user")
    monkeypatch.setattr(sandbox, "exposed", lambda paths: [str(p) for p in paths][:4])
    from grader import stage

    sub = tmp_path / "sub"
    (sub / "labs/01-boot").mkdir(parents=True)
    for f in labs.find("01").student:
        shutil.copyfile(labs.find("01").solution_dir / f, sub / "labs/01-boot" / f)
    with pytest.raises(build.BuildError) as e:
        build.build(stage.make("01", stage.origin_of(False, sub, False)), outdir=tmp_path / "out")
    assert re.match(
        r"the sandbox here is a user of its own \(no namespaces\), and it could read solutions/", e.value.summary
    )
    assert "and 1 more: a submission is not built where it could print them" in e.value.summary
    assert "chmod -R go-rwx solutions labs/*/hidden" in e.value.details


def test_what_the_imitation_needs_is_in_the_test_packages():
    from grader import deps

    items = {n.item: n.package for n in deps.GROUPS["test"]}
    assert items.get("py:seccomp") == "python3-seccomp" and items.get("setpriv") == "util-linux"
    assert "setpriv" in {n.item for n in deps.GROUPS["qemu"]}  # the seal itself, in Gradescope's image too
