"""Lab 06's own tool: its JIT built for Linux user space (native/), for the
encoder check against llvm-objdump and for the native benchmark.

    python3 labs/06-jit-model/native.py check [--labs]    every instruction form vs the disassembler
    python3 labs/06-jit-model/native.py bench [--labs] [--path KIND ...] [--book]   cycles per multiply-add, each path
    python3 labs/06-jit-model/native.py paths             which JIT kinds this machine can run
(`make jit-check` and `make bench-jit` run the first two.)

The benchmark also writes this machine's roofline: build/native/roofline.json
(the ceilings and every path's place under them, with the date and the load)
and build/native/roofline.svg, drawn by roofline.py beside this file. With --book (`make
bench-jit BOOK=1`, every path) the figures become the book's: book/roofline.json,
from which `python3 book/build.py --sync` draws book/figures/roofline.svg.
"""
import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__":  # run as a script: the kit's root on the path, for the grader (imported where used)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

LAB_DIR = Path(__file__).resolve().parent
ROOT = LAB_DIR.parents[1]
BOOK_DATA = ROOT / "book" / "roofline.json"
KERNEL_FLAGS = ["-O2", "-mno-sse", "-mno-sse2", "-mno-mmx", "-mno-red-zone", "-fno-stack-protector"]


def build(root=None, solutions=True, outdir=None):
    """build/native/jit_native from the lab's given C files that need no
    kernel (jit*.c, simd.c), the student's (or the reference) jit_encode.c,
    native/*.c, and native/matvec.c compiled twice."""
    from grader import build as build_mod

    root = Path(root) if root else LAB_DIR.parents[1]
    lab = root / "labs" / LAB_DIR.name
    encode = (root / "solutions" / LAB_DIR.name if solutions else lab) / "jit_encode.c"
    out = Path(outdir or root / "build" / "native")
    out.mkdir(parents=True, exist_ok=True)
    objs = []
    jobs = [
        (lab / "native" / "matvec.c", KERNEL_FLAGS + ["-DMATVEC_NAME=matvec_kernel_flags"], "mv_kernel.o"),
        (lab / "native" / "matvec.c", ["-O3", "-march=native", "-DMATVEC_NAME=matvec_native"], "mv_native.o"),
        (encode, ["-O2"], "jit_encode.o"),
    ]
    jobs += [
        (src, ["-O2"], src.stem + ".o")
        for src in sorted(lab.glob("jit*.c")) + [lab / "simd.c"] + sorted((lab / "native").glob("*.c"))
        if src.name not in ("jit_encode.c", "jit_seal.c", "matvec.c")
    ]
    for src, flags, obj in jobs:
        r = subprocess.run(
            ["clang", "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", f"-I{lab}"]
            + flags
            + ["-c", str(src), "-o", str(out / obj)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if r.returncode != 0:
            raise build_mod.BuildError(
                f"{src.relative_to(root)} does not compile (native)", build_mod.first_errors(r.stderr, root)
            )
        objs.append(str(out / obj))
    exe = out / "jit_native"
    r = subprocess.run(["clang"] + objs + ["-o", str(exe)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise build_mod.BuildError("the native JIT harness does not link", r.stderr)
    return exe


def disassemble(binary, workdir):
    """llvm-objdump's Intel-syntax lines for raw bytes (wrapped by llvm-objcopy)."""
    obj = Path(workdir) / "code.o"
    subprocess.run(
        [
            "llvm-objcopy",
            "-I",
            "binary",
            "-O",
            "elf64-x86-64",
            "--rename-section",
            ".data=.text,code,alloc,load,readonly",
            str(binary),
            str(obj),
        ],
        check=True,
        timeout=60,
    )
    out = subprocess.run(
        ["llvm-objdump", "-d", "-M", "intel", "--no-show-raw-insn", "--no-leading-addr", str(obj)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [
        re.sub(r"\s+", " ", re.sub(r"\s+#.*$", "", ln.strip()))
        for ln in out.splitlines()
        if ln[:1] in (" ", "\t") and ln.strip()
    ]


def encoder_mismatches(exe, workdir):
    """(intended, disassembled) pairs that differ, for every form the emitter supports."""
    workdir = Path(workdir)
    subprocess.run(
        [str(exe), "encode", str(workdir / "code.bin"), str(workdir / "intended.txt")], check=True, timeout=60
    )
    intended = (workdir / "intended.txt").read_text().splitlines()
    got = disassemble(workdir / "code.bin", workdir)
    bad = [(i, w, g) for i, (w, g) in enumerate(zip(intended, got)) if w != g]
    if len(got) != len(intended) and not bad:
        bad = [(min(len(got), len(intended)), "(as many instructions as intended)", f"{len(got)} decoded")]
    return intended, bad


CEILING = re.compile(
    r"^ceiling \((\S+)\): multiply-adds in registers ([\d.]+) MACs/cycle .*? from L1/L2 ([\d.]+) bytes/cycle"
)
OTHERS = "compute ceilings of the other paths, MACs/cycle in registers: "
ROW = re.compile(r"^(C|JIT), .{26}")
NAME_WIDTH = 31  # bench.c prints each path's name in 31 columns


def roofline_data(text):
    """The roofline in the benchmark's printed figures: the bandwidth, each
    kind's compute ceiling, and every path's intensity, multiply-adds per
    cycle, bound and share. None if the text has no ceiling line."""
    lines = text.splitlines()
    top = [m for m in map(CEILING.match, lines) if m]
    if not top:
        return None
    widest, peak, bandwidth = top[0].group(1), float(top[0].group(2)), float(top[0].group(3))
    compute = {widest: peak}
    for ln in lines:
        if ln.startswith(OTHERS):
            compute.update((k, float(v)) for k, v in (part.rsplit(" ", 1) for part in ln[len(OTHERS) :].split(", ")))
    rows = []
    for ln in filter(ROW.match, lines):
        matvec, _, intensity, bound, share, forward, _ = ln[NAME_WIDTH:].split()
        rows.append(
            {
                "path": ln[:NAME_WIDTH].strip(),
                "intensity": float(intensity),
                "macs_per_cycle": round(256 * 256 / float(matvec), 2),
                "bound": bound,
                "share": float(share.rstrip("%")),
                "matvec_cycles": float(matvec),
                "forward_cycles": float(forward),
            }
        )
    cpu = next((ln[len("CPU: ") :].split(";")[0] for ln in lines if ln.startswith("CPU: ")), platform.machine())
    return {"cpu": cpu, "widest": widest, "bandwidth": bandwidth, "compute": compute, "rows": rows}


def draw(data):
    """The roofline as SVG text (roofline.py, beside this file)."""
    spec = importlib.util.spec_from_file_location("kit_roofline", LAB_DIR / "roofline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.draw(data)


def save_roofline(text, book=False):
    """Write this run's roofline (build/native/roofline.json and .svg) and,
    for the book, book/roofline.json; returns the lines to print."""
    data = roofline_data(text)
    if data is None:
        return []
    now = datetime.datetime.now(datetime.timezone.utc)
    data["date"] = now.strftime("%Y-%m-%d %H:%M UTC")
    data["load"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    out = ROOT / "build" / "native"
    out.mkdir(parents=True, exist_ok=True)
    (out / "roofline.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "roofline.svg").write_text(draw(data))
    said = [
        f"roofline of this machine (load {data['load']}): build/native/roofline.svg, from build/native/roofline.json"
    ]
    if book:
        BOOK_DATA.write_text(json.dumps(data, indent=1) + "\n")
        said.append("the book's figures: book/roofline.json (python3 book/build.py --sync redraws the figure)")
    return said


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python3 labs/06-jit-model/native.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("command", choices=["bench", "check", "paths"])
    ap.add_argument("--labs", action="store_true", help="use labs/ (your jit_encode.c) instead of solutions/")
    ap.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="KIND",
        help="bench only this JIT kind (scalar, sse2, avx2, avx-vnni, avx512-vnni); repeatable",
    )
    ap.add_argument(
        "--book", action="store_true", help="bench: this machine's figures become the book's (book/roofline.json)"
    )
    args = ap.parse_args(argv)
    if args.book and (args.path or args.command != "bench"):
        ap.error("--book goes with `bench` and every path (no --path)")
    from grader import build as build_mod

    try:
        exe = build(solutions=not args.labs)
    except build_mod.BuildError as e:
        print(f"build failed: {e.summary}\n{e.details}", file=sys.stderr)
        return 1
    if args.command == "check":
        with tempfile.TemporaryDirectory() as tmp:
            intended, bad = encoder_mismatches(exe, tmp)
        for i, want, got in bad[:10]:
            print(f"form {i}: intended `{want}`, llvm-objdump reads `{got}`")
        print(f"encoder check: {len(intended) - len(bad)} of {len(intended)} forms disassemble as intended")
        return 1 if bad else 0
    if args.command == "paths":
        return subprocess.run([str(exe), "paths"], timeout=60).returncode
    print("native benchmark (Linux user space, one core)", flush=True)
    r = subprocess.run(
        [str(exe), "bench", str(LAB_DIR / "chars.model")] + args.path, capture_output=True, text=True, timeout=600
    )
    print(r.stdout, end="")
    print(r.stderr, end="", file=sys.stderr)
    for line in save_roofline(r.stdout, args.book) if r.returncode == 0 else []:
        print(line)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
