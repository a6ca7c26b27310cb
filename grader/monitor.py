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
    return talk(sock_path, [("hmp", c) for c in commands], timeout)


def talk(sock_path, requests, timeout=10.0):
    """One QMP conversation: each request is ("hmp", "info tlb") (its text
    comes back), ("pmemsave", addr, size, path) (guest physical memory into a
    file; None comes back), or ("stop",) / ("cont",) (the guest's CPU paused
    and resumed while the grader looks)."""
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
                    if "error" in reply:
                        raise MonitorError(f"QEMU refused {obj['execute']}: {reply['error'].get('desc', '')}")
                    if "return" in reply:
                        return reply["return"]

            f.readline()  # the greeting
            call({"execute": "qmp_capabilities"})
            out = []
            for kind, *args in requests:
                if kind == "hmp":
                    out.append(call({"execute": "human-monitor-command", "arguments": {"command-line": args[0]}}))
                elif kind == "pmemsave":
                    addr, size, path = args
                    call({"execute": "pmemsave", "arguments": {"val": addr, "size": size, "filename": str(path)}})
                    out.append(None)
                else:
                    call({"execute": kind})
                    out.append(None)
            return out
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


SEGMENT = re.compile(r"^(CS|TR) =([0-9a-f]{4}) ([0-9a-f]+) ([0-9a-f]{8}) ([0-9a-f]{8})(.*)$", re.M)
TABLE = re.compile(r"^(GDT|IDT)=\s+([0-9a-f]+) ([0-9a-f]+)", re.M)
VALUE = re.compile(r"\b(R[A-Z0-9]{1,2}|E(?:[A-D]X|[SD]I|[BS]P|IP|FL)|CR[0234]|EFER)\s*=([0-9a-f]+)\b")


def registers(text):
    """`info registers` as {name: value}: the general registers and RIP (EIP
    and the others in 32-bit mode named as in 64-bit mode), RFL, CR0,
    CR2, CR3, CR4, EFER; "IDT" and "GDT" as (base, limit); "CS" and "TR" as
    (selector, base, limit, flags); "CS64" true in a 64-bit code segment."""
    regs = {("R" + name[1:] if name.startswith("E") and name != "EFER" else name): int(v, 16)
            for name, v in VALUE.findall(text)}  # fmt: skip
    for name, base, limit in TABLE.findall(text):
        regs[name] = (int(base, 16), int(limit, 16))
    for name, sel, base, limit, flags, rest in SEGMENT.findall(text):
        regs[name] = (int(sel, 16), int(base, 16), int(limit, 16), int(flags, 16))
        if name == "CS":
            regs["CS64"] = "CS64" in rest
    return regs


class Memory:
    """Pieces of guest physical memory the grader read while the guest
    waited: read(addr, n) answers from them, or raises MonitorError for
    bytes that were not read."""

    def __init__(self):
        self.pieces = []  # (addr, bytes)

    def add(self, addr, data):
        self.pieces.append((addr, bytes(data)))

    def has(self, addr, n=1):
        return any(a <= addr and addr + n <= a + len(d) for a, d in self.pieces)

    def read(self, addr, n):
        for a, d in self.pieces:
            if a <= addr and addr + n <= a + len(d):
                return d[addr - a : addr - a + n]
        raise MonitorError(f"guest memory 0x{addr:x}-0x{addr + n:x} was not read while the kernel waited")

    def u32(self, addr):
        return int.from_bytes(self.read(addr, 4), "little")

    def u64(self, addr):
        return int.from_bytes(self.read(addr, 8), "little")

    def i32s(self, addr, n):
        raw = self.read(addr, 4 * n)
        return [int.from_bytes(raw[i : i + 4], "little", signed=True) for i in range(0, 4 * n, 4)]

    def string(self, addr, limit=4096):
        """The NUL-terminated string at addr (at most `limit` bytes), as text."""
        for a, d in self.pieces:
            if a <= addr < a + len(d):
                raw = d[addr - a : addr - a + limit]
                return raw.split(b"\0", 1)[0].decode("latin-1")
        raise MonitorError(f"guest memory 0x{addr:x} was not read while the kernel waited")


ADDRESS_BITS = 0x000FFFFFFFFFF000  # bits 51..12 of a paging entry
PTE_P, PTE_W, PTE_PS, PTE_NX = 1, 1 << 1, 1 << 7, 1 << 63


def walk(mem, cr3, va):
    """The CPU's walk of four-level page tables for va, read from guest
    memory (Memory): (physical address, writable, executable), or None where
    nothing maps it. A right is the AND of the levels (SDM vol. 3A, 4.5)."""
    table, writable, executable = cr3 & ADDRESS_BITS, True, True
    for shift in (39, 30, 21, 12):
        e = mem.u64(table + 8 * ((va >> shift) & 511))
        if not e & PTE_P:
            return None
        writable, executable = writable and bool(e & PTE_W), executable and not e & PTE_NX
        if shift in (30, 21) and e & PTE_PS:
            size = 1 << shift
            return (e & ADDRESS_BITS & ~(size - 1)) | (va & (size - 1)), writable, executable
        table = e & ADDRESS_BITS
    return table | (va & 0xFFF), writable, executable
