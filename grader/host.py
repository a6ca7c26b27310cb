"""What the grading host's emulator offers, asked of it rather than assumed.

QEMU's TCG has AVX and AVX2 only from version 7.2 on (Ubuntu 22.04 ships
6.2), how QEMU was built decides which trace events it has, and the CPU
model the grader asks for decides the CPUID a kernel sees. So the kit asks
the QEMU it will run, through its machine protocol (QMP) on a machine with
no guest: its version (query-version), the features of the CPU model the
grader boots (query-cpu-model-expansion, the CPUID bits `-cpu max` gives
under TCG), and the trace events it knows (`-trace help`). The answer is
kept in build/ for the same QEMU binary and CPU model.

The CPU model is `max`, or KIT_QEMU_CPU (for example `max,-avx,-avx2`,
which imitates an older QEMU: the tests grade lab 06 that way). A check that
needs a feature reads ctx.host and, where the host lacks it, grades what the
host offers and says so in its note.
"""
import functools
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

from . import labs as labs_mod

QEMU = "qemu-system-x86_64"
TIMEOUT = 30
# Trace events the kit's observations may read: a check asks host.trace(name).
TRACE_EVENTS = ("serial_write", "serial_update_parameters")
# Where a feature first came to QEMU's TCG, for the sentence a check says when it is missing.
SINCE = {"avx": "7.2", "avx2": "7.2"}


def cpu_model():
    """The -cpu argument of every QEMU boot: max, or KIT_QEMU_CPU."""
    return os.environ.get("KIT_QEMU_CPU", "").strip() or "max"


def model_request(cpu):
    """query-cpu-model-expansion's model for a -cpu argument ('max,-avx,+x,y=on')."""
    name, *opts = cpu.split(",")
    props = {}
    for o in opts:
        if o.startswith(("+", "-")):
            props[o[1:]] = o[0] == "+"
        elif "=" in o:
            k, v = o.split("=", 1)
            props[k] = v not in ("off", "false", "no")
    return {"name": name, "props": props} if props else {"name": name}


@dataclass(frozen=True)
class Host:
    version: str = ""  # "7.2.22"
    package: str = ""  # how the distribution names its build
    cpu: str = "max"
    features: dict = field(default_factory=dict)  # CPUID feature name (QEMU's spelling) -> on
    trace_events: tuple = ()  # of TRACE_EVENTS, those this QEMU has
    problem: str = ""  # why QEMU could not be asked, or ""

    def offers(self, feature):
        """Does the CPU the grader boots have this CPUID feature? None when unknown."""
        if self.problem:
            return None
        return bool(self.features.get(feature, False))

    def trace(self, event):
        return event in self.trace_events

    def version_tuple(self):
        return tuple(int(x) for x in re.findall(r"\d+", self.version)[:3])

    def lacks(self, feature):
        """The sentence a check says when the host lacks `feature`."""
        since = SINCE.get(feature)
        older = since and self.version and self.version_tuple() < tuple(int(x) for x in since.split("."))
        return (
            f"this host's QEMU ({self.version or 'version unknown'}, -cpu {self.cpu}) offers no "
            f"{feature.upper()} under TCG"
            + (f" (QEMU {since} and later offer it with -cpu max)" if older else " (the CPU model leaves it out)")
        )

    def summary(self):
        if self.problem:
            return f"QEMU could not be asked what it offers: {self.problem}"
        wide = ", ".join(f"{f.upper()} {'yes' if self.offers(f) else 'no'}" for f in ("sse2", "avx", "avx2", "avx512f"))
        return (
            f"QEMU {self.version}{f' ({self.package})' if self.package else ''}, -cpu {self.cpu} under TCG: {wide}; "
            "trace events the kit may read: "
            + ", ".join(f"{e} {'yes' if self.trace(e) else 'no'}" for e in TRACE_EVENTS)
        )


def ask(cpu):
    """A fresh Host from the QEMU on PATH (no cache)."""
    exe = shutil.which(QEMU)
    if exe is None:
        return Host(cpu=cpu, problem=f"{QEMU} is not installed")
    lines = [
        {"execute": "qmp_capabilities"},
        {"execute": "query-version"},
        {"execute": "query-cpu-model-expansion", "arguments": {"type": "full", "model": model_request(cpu)}},
        {"execute": "quit"},
    ]
    try:
        r = subprocess.run(
            [exe, "-machine", "none", "-accel", "tcg", "-nodefaults", "-display", "none", "-S", "-qmp", "stdio"],
            input="".join(json.dumps(x) + "\n" for x in lines),
            capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
        events = subprocess.run([exe, "-trace", "help"], capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return Host(cpu=cpu, problem=f"{QEMU} did not answer within {TIMEOUT} s")
    version = package = ""
    features, errors = None, []
    for line in r.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        got = msg.get("return")
        if isinstance(got, dict) and "qemu" in got:
            q = got["qemu"]
            version, package = f"{q['major']}.{q['minor']}.{q['micro']}", got.get("package", "").strip()
        elif isinstance(got, dict) and "model" in got:
            features = {k: v for k, v in got["model"].get("props", {}).items() if isinstance(v, bool)}
        elif "error" in msg:
            errors.append(msg["error"].get("desc", "an error"))
    known = set(events.stdout.split())
    trace = tuple(e for e in TRACE_EVENTS if e in known)
    if features is None:
        why = errors[0] if errors else (r.stderr.strip().splitlines() or ["no answer"])[-1]
        return Host(version, package, cpu, {}, trace, f"-cpu {cpu}: {why}")
    return Host(version, package, cpu, features, trace)


def _stamp(exe):
    st = os.stat(exe)
    return f"{os.path.realpath(exe)}:{st.st_size}:{int(st.st_mtime)}"


@functools.lru_cache(maxsize=None)
def probe(cpu=None):
    """What this host's QEMU offers for the CPU model the grader boots (kept
    in build/.host-probe.json for the same QEMU binary)."""
    cpu = cpu or cpu_model()
    exe = shutil.which(QEMU)
    kept = labs_mod.ROOT / "build" / ".host-probe.json"
    key = f"{_stamp(exe)}|{cpu}" if exe else ""
    if key:
        try:
            cache = json.loads(kept.read_text())
            if key in cache:
                d = cache[key]
                return Host(d["version"], d["package"], cpu, d["features"], tuple(d["trace_events"]))
        except (OSError, ValueError, KeyError):
            pass
    h = ask(cpu)
    if key and not h.problem:
        try:
            cache = json.loads(kept.read_text()) if kept.is_file() else {}
        except (OSError, ValueError):
            cache = {}
        cache[key] = {
            "version": h.version, "package": h.package, "features": h.features, "trace_events": list(h.trace_events),
        }  # fmt: skip
        try:
            kept.parent.mkdir(exist_ok=True)
            tmp = kept.with_name(f"{kept.name}.{os.getpid()}")
            tmp.write_text(json.dumps(cache))
            tmp.replace(kept)
        except OSError:
            pass
    return h
