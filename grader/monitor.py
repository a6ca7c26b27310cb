"""Asking QEMU what the guest really maps: a QMP client (QEMU's JSON machine
protocol over a Unix socket) and a reader for `info tlb`, turned into the
same ranges the kernel's paging_dump prints."""
import json
import re
import socket
import time

TLB_LINE = re.compile(r"^([0-9a-f]{16}): ([0-9a-f]{16}) ([-X])([-G])([-P])[-D][-A][-C][-T]([-U])([-W])$")


class MonitorError(Exception):
    pass


def human_commands(sock_path, commands, timeout=10.0):
    """Run HMP commands (`info tlb`, ...) through QMP; returns their texts."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(str(sock_path))
            f = s.makefile("rw")

            def call(obj):
                f.write(json.dumps(obj) + "\n")
                f.flush()
                while True:
                    line = f.readline()
                    if not line:
                        raise MonitorError("QEMU closed the QMP socket")
                    reply = json.loads(line)
                    if "return" in reply or "error" in reply:
                        return reply

            f.readline()  # the greeting
            call({"execute": "qmp_capabilities"})
            return [
                call({"execute": "human-monitor-command", "arguments": {"command-line": c}}).get("return", "")
                for c in commands
            ]
    except (OSError, ValueError) as e:
        raise MonitorError(f"could not ask QEMU's monitor: {e}") from None


REGS = re.compile(r"\b(?:RIP|EIP)=([0-9a-f]+) (?:RFL|EFL)=([0-9a-f]+).*?\bHLT=(\d)")
EFER = re.compile(r"\bEFER=([0-9a-f]+)")
RFLAGS_IF = 1 << 9


def sample_registers(sock_path, count=5, interval=0.04, timeout=2.0):
    """`count` looks at the running CPU through the monitor, `interval`
    seconds apart: [{"rip", "interrupts", "halted", "efer"}]; [] if QEMU
    cannot be asked (it has gone, or it never had a monitor)."""
    try:
        texts = []
        for _ in range(count):
            texts += human_commands(sock_path, ["info registers"], timeout=timeout)
            time.sleep(interval)
    except MonitorError:
        return []
    samples = []
    for text in texts:
        m = REGS.search(text)
        if m:
            e = EFER.search(text)
            samples.append(
                {
                    "rip": int(m.group(1), 16),
                    "interrupts": bool(int(m.group(2), 16) & RFLAGS_IF),
                    "halted": m.group(3) == "1",
                    "efer": int(e.group(1), 16) if e else None,
                }
            )
    return samples


def tlb_ranges(text):
    """`info tlb` leaves coalesced into ranges like paging_dump's lines:
    'map 0x...-0x... rwx' (end exclusive), '-> 0x...' when not identity."""
    runs = []
    for line in text.splitlines():
        m = TLB_LINE.match(line.strip())
        if not m:
            continue
        va, pa = int(m.group(1), 16), int(m.group(2), 16)
        size = 0x200000 if m.group(5) == "P" else 0x1000  # we never make 1 GiB pages
        perms = "r" + ("w" if m.group(7) == "W" else "-") + ("-" if m.group(3) == "X" else "x")
        if runs and runs[-1][1] == va and runs[-1][2] + (runs[-1][1] - runs[-1][0]) == pa and runs[-1][3] == perms:
            runs[-1][1] += size
        else:
            runs.append([va, va + size, pa, perms])
    return [f"map 0x{a:016x}-0x{b:016x} {p}" + ("" if pa == a else f" -> 0x{pa:016x}") for a, b, pa, p in runs]
