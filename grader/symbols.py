"""The kernel's symbols, read once per build from the kernel.sym the build
wrote (`llvm-nm -n -S`), and shared by the checks, the diagnosis, the report
and the book."""
import re
from dataclasses import dataclass
from pathlib import Path

LINE = re.compile(r"^([0-9a-fA-F]+)(?:\s+([0-9a-fA-F]+))?\s+(\S)\s+(\S+)$")


@dataclass(frozen=True)
class Symbol:
    name: str
    addr: int
    size: int
    kind: str  # llvm-nm's type letter: T t (code), D d, B b, R r, A ...


class Symbols(dict):
    """{name: address}, with each symbol's size and type beside it."""

    def __init__(self, symbols=()):
        self.all = sorted(symbols, key=lambda s: s.addr)
        super().__init__((s.name, s.addr) for s in self.all)
        self.by_name = {s.name: s for s in self.all}

    @classmethod
    def parse(cls, text):
        found = []
        for line in text.splitlines():
            m = LINE.match(line.strip())
            if m:
                found.append(Symbol(m.group(4), int(m.group(1), 16), int(m.group(2) or "0", 16), m.group(3)))
        return cls(found)

    @classmethod
    def read(cls, path):
        path = Path(path)
        return cls.parse(path.read_text()) if path.is_file() else cls()

    def size(self, name):
        return self.by_name[name].size if name in self.by_name else 0

    def range(self, start, end):
        """(start, end) addresses of two symbols, or None if either is missing."""
        return (self[start], self[end]) if start in self and end in self else None

    def code_symbol(self, addr):
        """The nearest label at or below addr, skipping the linker script's
        __markers that share an address with the real function."""
        best = None
        for s in self.all:
            if s.addr > addr:
                break
            if not s.name.startswith("__"):
                best = s.name
        return best

    @property
    def kernel_range(self):
        return self.range("__kernel_start", "__kernel_end")
