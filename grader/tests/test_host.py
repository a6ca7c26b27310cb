"""What the host's QEMU offers is asked of it: its version, the CPUID of the
CPU model the grader boots, its trace events. A kernel whose CPUID line
contradicts the answer fails lab 06's widest-path check; an older QEMU,
imitated with `-cpu max,-avx,-avx2`, still gives a correct lab 06 full marks,
and the report says which path was graded."""
import os
import re
import subprocess
import sys
from types import SimpleNamespace as NS

import pytest

from grader import api, host, labs
from conftest import ROOT, SEED


def test_the_probe_agrees_with_qemu_itself():
    h = host.ask("max")
    said = subprocess.run([host.QEMU, "--version"], capture_output=True, text=True, timeout=30).stdout
    assert not h.problem and h.version == re.search(r"version (\d+\.\d+\.\d+)", said).group(1)
    assert h.offers("sse2") and h.offers("lm")
    if h.version_tuple() >= (7, 2):
        assert h.offers("avx2")  # TCG has AVX2 from 7.2 on
    older = host.ask("max,-avx,-avx2")
    assert older.offers("avx2") is False and older.offers("avx") is False and older.offers("sse2")
    assert "offers no AVX2" in older.lacks("avx2")
    assert host.ask("no-such-cpu").problem and host.ask("no-such-cpu").offers("avx2") is None


def test_a_cpu_argument_becomes_a_model_to_expand():
    assert host.model_request("max") == {"name": "max"}
    assert host.model_request("max,-avx,+avx2,pmu=off") == {
        "name": "max",
        "props": {"avx": False, "avx2": True, "pmu": False},
    }


def lab06_context(avx2_said, offered):
    facts = f"SSE2 yes, XSAVE yes, AVX yes, AVX2 {'yes' if avx2_said else 'no'}"
    lines = [f"[simd] CPUID: {facts}; XCR0 may hold 0x7", f"[jit] path: {'avx2' if avx2_said else 'sse2'} (CPUID: x)"]
    h = host.Host("6.2.0", "", "max", {"sse2": True, "avx": offered, "avx2": offered})
    return NS(boot=NS(lines=lines), host=h)


def test_a_kernel_that_claims_what_the_emulator_lacks_fails():
    checks = labs.find("06").module("checks")
    with pytest.raises(api.Fail, match="offers no AVX2"):
        checks.widest_path(lab06_context(avx2_said=True, offered=False), False)
    with pytest.raises(api.Fail, match="which has it"):
        checks.widest_path(lab06_context(avx2_said=False, offered=True), True)


@pytest.mark.instructor
def test_an_older_qemu_still_gives_a_correct_lab_06_full_marks(tmp_path):
    env = dict(os.environ, KIT_QEMU_CPU="max,-avx,-avx2", NO_COLOR="1")
    r = subprocess.run(
        [sys.executable, "-m", "grader", "grade", "--lab", "06", "--solutions", "--seed", hex(SEED)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert r.returncode == 0 and "Score: 160/160" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
    assert "graded the sse2 path: this host's QEMU" in r.stdout
    assert "offers no AVX2 under TCG" in r.stdout and "the AVX2 path was not graded on this host" in r.stdout
