"""Bochs, the stricter emulator: how its log and its end are read, and that a
run leaves no listener reachable and no process. (What it catches that QEMU
lets pass is in the labs' mutants.)"""
import os
from pathlib import Path

import pytest

from grader import build, diagnosis, emulators, grade, stage
from conftest import SEED

pytestmark = pytest.mark.slow  # a long end-to-end test: `make test` runs it, `make check` not

FIX = Path(__file__).parent / "fixtures"


def test_bochs_log_parser_on_a_real_triple_fault():
    chain = diagnosis.parse_bochs_log((FIX / "bochs-int3-null-idt.log").read_text())
    assert chain.triple
    assert [f.vector for f in chain.faults] == [3, 13, 13, 8, 13]
    assert chain.faults[0].software and chain.faults[1].error == 0x1A
    assert chain.faults[0].rip == 0x101B14 and chain.faults[0].regs["CR3"] == 0x105000
    assert any("IDT table limits" in m for m in chain.messages)


EXITS = {"OK": 0x10, "PANIC": 0x11, "BOOT_FAILURE": 0x12}


def test_bochs_outcomes():
    shutdown = "00096440249p[UNMAP ] >>PANIC<< Shutdown port: shutdown requested"
    assert emulators.bochs_outcome(1, shutdown, ["[power] off: ok"], EXITS).ok
    assert emulators.bochs_outcome(1, shutdown, ["[power] off: panic"], EXITS).kind == "panic"
    assert emulators.bochs_outcome(1, shutdown, ["[power] off: boot failure"], EXITS).kind == "boot failure"
    assert emulators.bochs_outcome(1, shutdown, [], EXITS).kind == "other"
    triple = (FIX / "bochs-int3-null-idt.log").read_text()
    assert emulators.bochs_outcome(1, triple, ["[power] off: ok"], EXITS).kind == "triple fault"
    assert emulators.bochs_outcome(1, "", []).text == "Bochs exited with status 1"
    # killed by a signal: the signal's name and the log's last error line
    log = "00000000000i[      ] Bochs x86 Emulator 2.7\n00000000000e[RFB   ] bind() failed\n"
    assert emulators.bochs_outcome(-6, log, []).text == (
        "Bochs was killed by SIGABRT (status -6); its log's last error: bind() failed"
    )


def listening_ports(netfile):
    ports = set()
    for path in (netfile, netfile + "6"):
        try:
            rows = Path(path).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A":  # LISTEN
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def working_folder(proc):
    """The working folder of a process (an emulator names its run's files relative to it), or ""."""
    try:
        return os.readlink(proc / "cwd")
    except OSError:
        return ""


def bochs_pids(mark="kit-run-"):
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (
                cmd
                and cmd[0].endswith((b"bochs", b"bochs-bin"))
                and (any(mark.encode() in c for c in cmd) or mark in working_folder(d))
            ):
                pids.append(int(d.name))
    return pids


@pytest.mark.instructor
def test_bochs_run_leaves_no_listener_and_no_process(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # our runs only: their paths name tmp_path
    b = build.build(stage.make("02", stage.Origin("solutions")))
    seen = {}

    def during(_data):
        if "host" not in seen:
            pids = bochs_pids(str(tmp_path))
            seen["host"] = listening_ports("/proc/net/tcp")
            seen["inside"] = set().union(*(listening_ports(f"/proc/{p}/net/tcp") for p in pids)) if pids else set()

    r = grade.boot(b, stage.Run(SEED, emulator="bochs"), on_output=during)
    assert r.outcome.ok
    # no sound card is opened: where ALSA finds none (a chroot), its failure made Bochs 2.7 abort at random
    assert "libbx_sounddummy" in r.log and "libbx_soundalsa" not in r.log
    rfb = set(range(5900, 5911))
    assert seen["inside"] & rfb, "the rfb listener was not found in Bochs's own namespace: the check is blind"
    assert not seen["host"] & rfb, f"an rfb port listens on the host: {seen['host'] & rfb}"
    assert bochs_pids(str(tmp_path)) == []
