"""Bochs, the stricter emulator: what it catches that QEMU lets pass, how its
log is read, and that a run leaves no listener reachable and no process."""
import os
from pathlib import Path

from grader import build, diagnosis, emulators, grade, report, run
from grader.checks import lab06_model
from conftest import SEED, check

FIX = Path(__file__).parent / "fixtures"
L_AND_D = ("labs/01-boot/boot.S", "    .quad 0x00af9b000000ffff", "    .quad 0x00ef9b000000ffff   /* mutant: L=1, D=1 */")


def test_code_segment_with_l_and_d_fails_only_under_bochs(mutant):
    under_qemu = mutant([L_AND_D], "01")
    under_bochs = mutant([L_AND_D], "01", emulator="bochs")
    assert under_qemu.full
    assert not under_bochs.full and "triple fault" in under_bochs.stopped
    diag = "\n".join(under_bochs.diagnoses["default"])
    assert "#GP (general protection, vector 13)" in diag and "in _start (labs/01-boot/boot.S:" in diag
    assert "error 0x8: refers to GDT selector 0x8" in diag
    assert "bochs says: check_cs(0x0008): Both CS.L and CS.D_B bits enabled !" in diag
    assert "With L=1, D must be 0" in diag
    assert report.disagreements([under_qemu, under_bochs]) == [
        "Stage 01-boot passes under qemu but fails under bochs: the kernel depends on something the "
        "stricter emulator refuses (see its diagnosis above)"]


def test_paging_before_pae_fails_only_under_bochs(mutant):
    patch = ("solutions/01-boot/longmode.S", "    mov %cr4, %eax                    /* 1. PAE */",
             "    mov 4(%esp), %eax\n    mov %eax, %cr3\n    mov $MSR_EFER, %ecx\n    rdmsr\n"
             "    or $(EFER_LME | EFER_NXE), %eax\n    wrmsr\n    mov %cr0, %eax\n    or $CR0_PG, %eax\n"
             "    mov %eax, %cr0                    /* mutant: paging before PAE */\n    mov %cr4, %eax")
    assert mutant([patch], "01").full                      # QEMU 7.2 accepts it
    st = mutant([patch], "01", emulator="bochs")
    diag = "\n".join(st.diagnoses["default"])
    assert "#GP" in diag and "in lm_enable (solutions/01-boot/longmode.S:" in diag
    assert "PAE and CR3 before CR0.PG" in diag


def test_bochs_log_parser_on_a_real_triple_fault():
    chain = diagnosis.parse_bochs_log((FIX / "bochs-int3-null-idt.log").read_text())
    assert chain.triple
    assert [f.vector for f in chain.faults] == [3, 13, 13, 8, 13]
    assert chain.faults[0].software and chain.faults[1].error == 0x1a
    assert chain.faults[0].rip == 0x101B14 and chain.faults[0].regs["CR3"] == 0x105000
    assert any("IDT table limits" in m for m in chain.messages)


def test_bochs_outcomes():
    shutdown = "00096440249p[UNMAP ] >>PANIC<< Shutdown port: shutdown requested"
    assert emulators.bochs_outcome(1, shutdown, ["[power] off: ok"]).ok
    assert emulators.bochs_outcome(1, shutdown, ["[power] off: panic"]).kind == "panic"
    assert emulators.bochs_outcome(1, shutdown, []).kind == "other"
    triple = (FIX / "bochs-int3-null-idt.log").read_text()
    assert emulators.bochs_outcome(1, triple, ["[power] off: ok"]).kind == "triple fault"
    assert emulators.bochs_outcome(1, "", []).text == "Bochs exited with status 1"


def listening_ports(netfile):
    ports = set()
    for path in (netfile, netfile + "6"):
        try:
            rows = Path(path).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A":                              # LISTEN
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def bochs_pids(mark="kit-run-"):
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith((b"bochs", b"bochs-bin")) and any(mark.encode() in c for c in cmd):
                pids.append(int(d.name))
    return pids


def test_bochs_run_leaves_no_listener_and_no_process(tmp_path, monkeypatch):
    from grader import build
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # our runs only: their paths name tmp_path
    b = build.build(2, solutions=True)
    seen = {}

    def during(_data):
        if "host" not in seen:
            pids = bochs_pids(str(tmp_path))
            seen["host"] = listening_ports("/proc/net/tcp")
            seen["inside"] = set().union(*(listening_ports(f"/proc/{p}/net/tcp") for p in pids)) if pids else set()
    r = grade.boot(b, SEED, "all", emulator="bochs", on_output=during)
    assert r.outcome.ok
    rfb = set(range(5900, 5911))
    assert seen["inside"] & rfb, "the rfb listener was not found in Bochs's own namespace: the check is blind"
    assert not seen["host"] & rfb, f"an rfb port listens on the host: {seen['host'] & rfb}"
    assert bochs_pids(str(tmp_path)) == []


def test_stage_skeleton_fails_the_same_under_bochs():
    st = grade.grade_stage("02", seed=SEED, emulator="bochs", solutions_below=True)
    assert "got `[kprintf] d=%d u=%u x=%x`" in check(st, "kprintf: %d %u %x").message
    assert check(st, "serial: divisor").message.endswith("got `[serial] COM1: divisor 3 (38400 baud), LCR 0x03, FIFO off`")


def test_a_tigerlake_cpu_runs_the_avx512_vnni_jit_bit_exactly():
    """Bochs's tigerlake model has AVX-512 VNNI: the kernel enables opmask,
    ZMM_Hi256 and Hi16_ZMM in XCR0 (0xe7) and its zmm code matches the reference."""
    b = build.build(6, solutions=True)
    kargs = grade.kargs_for(SEED, "all")
    r = run.run(lambda tmp: emulators.bochs(b.iso, tmp, kargs, memory_mb=grade.memory_for(SEED),
                                            cpu_model="tigerlake"), total_timeout=120, progress_timeout=60)
    assert "[power] off: ok" in r.lines, r.last_lines(5)
    assert "[jit] path: avx512-vnni (CPUID: AVX2 yes, AVX-VNNI no, AVX-512 VNNI yes)" in r.lines
    assert any(ln.startswith("[simd] enabled: ") and "CR4.OSXSAVE, XCR0 = 0xe7" in ln for ln in r.lines)
    want = " ".join(f"{h:x}" for h in lab06_model.values(SEED, b.lab.dir.parent.parent)["_each"])
    assert f"[model] jit avx512-vnni: each context: {want}" in r.lines
