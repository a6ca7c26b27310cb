"""Lab 06's own tool: its JIT built for Linux user space (native/), for the
encoder check against llvm-objdump and for the native benchmark.

    python3 labs/06-jit-model/native.py check [--labs|--solutions]    every instruction form vs the disassembler
    python3 labs/06-jit-model/native.py bench [--labs|--solutions] [--path KIND ...] [--book]   cycles per multiply-add
    python3 labs/06-jit-model/native.py paths             which JIT kinds this machine can run
(`make jit-check` and `make bench-jit` run the first two.) jit_encode.c comes
from labs/ (your code) or from solutions/ (the reference code); by default
from solutions/ in the course staff's copy, from labs/ in a students' copy.
The harness builds lab 06's own files only: BELOW=solutions (--below)
changes nothing here. It runs a student's jit_encode.c on this machine
itself: it is built and run in the kernel build's sandbox (build() and run()
below), or not at all.

The benchmark also writes this machine's roofline: build/native/roofline.json
(the ceilings and every path's place under them, with the date and the load)
and build/native/roofline.svg, drawn by roofline.py beside this file. With --book (`make
bench-jit BOOK=1`, every path) the figures become the book's: book/roofline.json,
from which `python3 book/build.py --sync` draws book/figures/roofline.svg.
"""
import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import platform
import re
import select
import shutil
import subprocess
import sys
import time
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
    native/*.c, and native/matvec.c compiled twice. The sources are copied
    into outdir/src and compiled and linked in the kernel build's sandbox
    (grader/sandbox.py); a student's jit_encode.c is never compiled or run
    outside it: without one here, BuildError says why (KIT_SANDBOX=off runs
    it anyway)."""
    from grader import build as build_mod, sandbox

    root = Path(root) if root else LAB_DIR.parents[1]
    lab = root / "labs" / LAB_DIR.name
    encode = (root / "solutions" / LAB_DIR.name if solutions else lab) / "jit_encode.c"
    if not solutions and sandbox.mode() is None and os.environ.get("KIT_SANDBOX", "").lower() not in sandbox.OFF:
        raise build_mod.BuildError(
            "your jit_encode.c runs natively only in the sandbox, and there is none here: " + sandbox.why_not(),
            "to run it anyway (your own code, as yourself): KIT_SANDBOX=off",
        )
    if not solutions:
        build_mod.refuse_if_exposed(root, what="a student's jit_encode.c is not built")  # readable by root only?
    if not encode.is_file():
        raise build_mod.BuildError(
            f"{encode.relative_to(root)} is not here: the reference code of lab 06 is not released in this copy",
            "use your own code (make jit-check, make bench-jit without SOLUTIONS=1)",
        )
    out = Path(outdir or root / "build" / "native")
    src = out / "src"
    shutil.rmtree(src, ignore_errors=True)
    (src / "native").mkdir(parents=True)
    given = [p for p in sorted(lab.glob("jit*.c")) if p.name not in ("jit_encode.c", "jit_seal.c")]
    for p in given + [lab / "simd.c"] + sorted(lab.glob("*.h")):
        shutil.copyfile(p, src / p.name)
    for p in sorted((lab / "native").glob("*.[ch]")):
        shutil.copyfile(p, src / "native" / p.name)
    shutil.copyfile(encode, src / "jit_encode.c")
    jobs = [
        ("native/matvec.c", KERNEL_FLAGS + ["-DMATVEC_NAME=matvec_kernel_flags"], "mv_kernel.o"),
        ("native/matvec.c", ["-O3", "-march=native", "-DMATVEC_NAME=matvec_native"], "mv_native.o"),
        ("jit_encode.c", ["-O2"], "jit_encode.o"),
    ]
    jobs += [
        (name, ["-O2"], Path(name).stem + ".o")
        for name in [p.name for p in given]
        + ["simd.c"]
        + [f"native/{p.name}" for p in sorted((lab / "native").glob("*.c"))]
        if name != "native/matvec.c"
    ]
    shown = {"jit_encode.c": encode, "native/matvec.c": lab / "native" / "matvec.c"}
    try:
        for name, flags, obj in jobs:
            cmd = ["clang", "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-I."]
            r = build_mod._run(cmd + flags + ["-c", name, "-o", f"../{obj}"], cwd=src, sealed=out)
            if r.returncode != 0:
                where = shown.get(name, lab / name).relative_to(root)
                raise build_mod.BuildError(
                    f"{where} does not compile (native)", build_mod.first_errors(r.stderr, src, root)
                )
        r = build_mod._run(["clang"] + [obj for _, _, obj in jobs] + ["-o", "jit_native"], cwd=out, sealed=out)
        if r.returncode != 0:
            raise build_mod.BuildError("the native JIT harness does not link", build_mod.first_errors(r.stderr, out))
    finally:
        sandbox.reap(out)
    return out / "jit_native"


def run(exe, args, input=None, timeout=60, workdir=None, stream=None, check=False):
    """Run the harness `exe` in the sandbox, in `workdir` (a private folder
    if None, removed afterwards) where exe and every Path among args are
    linked and named by their file names. `stream` (a text file) gets the
    output as it comes, control characters shown as text; else it is kept.
    Returns a CompletedProcess (text); a timeout kills it with everything
    it started and raises subprocess.TimeoutExpired."""
    from grader import sandbox, scratch

    with contextlib.ExitStack() as stack:
        cell = Path(workdir) if workdir else stack.enter_context(scratch.folder("kit-native-"))
        names = [_bring(cell, a) if isinstance(a, Path) else str(a) for a in [Path(exe)] + list(args)]
        tmp = stack.enter_context(scratch.folder("kit-tool-"))
        argv = sandbox.wrap(["./" + names[0]] + names[1:], rw=[cell], cwd=cell, file_cap=sandbox.FILE_SIZE_CAP)
        proc = scratch.started(
            subprocess.Popen(
                argv,
                cwd=cell,
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE if stream is None else subprocess.STDOUT,
                start_new_session=True,
                env=scratch.tool_env(tmp),
            )
        )
        try:
            if stream is None:
                out, err = proc.communicate(input.encode() if input is not None else None, timeout=timeout)
            else:
                out, err = _pump(proc, stream, timeout), b""  # stderr goes to the stream too
        except subprocess.TimeoutExpired:
            scratch.kill_group(proc.pid)
            proc.communicate()
            raise
        finally:
            scratch.kill_group(proc.pid)
            scratch.ended(proc)
            sandbox.reap(cell)
    r = subprocess.CompletedProcess(argv, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
    if check and r.returncode != 0:
        raise subprocess.CalledProcessError(r.returncode, [str(exe)] + [str(a) for a in args], r.stdout, r.stderr)
    return r


def _bring(cell, path):
    """path copied into the cell (never linked: the program may write there); its name there."""
    dest = Path(cell) / Path(path).name
    if dest.resolve() != Path(path).resolve():
        shutil.copy2(path, dest)
    return dest.name


def _pump(proc, stream, timeout):
    """Copy proc's output to stream as it comes, shown safely; returns it all."""
    from grader import safe

    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    kept = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        if select.select([fd], [], [], min(left, 0.1))[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                return b"".join(kept)
            kept.append(chunk)
            stream.write(safe.output(chunk))
            stream.flush()


def disassemble(binary, workdir):
    """llvm-objdump's Intel-syntax lines for raw bytes (wrapped by
    llvm-objcopy), both run in the sandbox on `binary`, a file in workdir."""
    from grader import build as build_mod

    workdir, name = Path(workdir), Path(binary).name
    objcopy = [
        "llvm-objcopy",
        "-I",
        "binary",
        "-O",
        "elf64-x86-64",
        "--rename-section",
        ".data=.text,code,alloc,load,readonly",
        name,
        "code.o",
    ]
    objdump = ["llvm-objdump", "-d", "-M", "intel", "--no-show-raw-insn", "--no-leading-addr", "code.o"]
    for cmd in (objcopy, objdump):
        r = build_mod._run(cmd, cwd=workdir, sealed=workdir)
        if r.returncode != 0:
            raise subprocess.CalledProcessError(r.returncode, cmd, r.stdout, r.stderr)
    return [
        re.sub(r"\s+", " ", re.sub(r"\s+#.*$", "", ln.strip()))
        for ln in r.stdout.splitlines()
        if ln[:1] in (" ", "\t") and ln.strip()
    ]


def encoder_mismatches(exe, workdir):
    """(intended, disassembled) pairs that differ, for every form the emitter
    supports; the harness and the disassembler work in workdir/encode."""
    cell = Path(workdir) / "encode"
    cell.mkdir(parents=True, exist_ok=True)
    run(exe, ["encode", "code.bin", "intended.txt"], workdir=cell, check=True)
    intended = (cell / "intended.txt").read_text().splitlines()
    got = disassemble(cell / "code.bin", cell)
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
    source = ap.add_mutually_exclusive_group()
    source.add_argument("--labs", action="store_true", help="use labs/ (your jit_encode.c)")
    source.add_argument("--solutions", action="store_true", help="use solutions/ (the reference jit_encode.c)")
    ap.add_argument("--below", "--solutions-below", action="store_true", help="accepted: no lab below 06 is built")
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
    from grader import build as build_mod, labs

    reference = args.solutions or (labs.staff_copy() and not args.labs)
    source = "solutions/ (the reference code)" if reference else "labs/ (your code)"
    print(
        f"native JIT harness: jit_encode.c from {source}"
        + (", and no lab below 06 (BELOW=solutions changes nothing here)" if args.below else ""),
        file=sys.stderr,
    )
    try:
        exe = build(solutions=reference)
    except build_mod.BuildError as e:
        from grader import safe

        print(f"build failed: {safe.text(e.summary)}\n{safe.text(e.details)}", file=sys.stderr)
        return 1
    from grader import safe, scratch

    try:
        if args.command == "check":
            with scratch.folder("kit-native-") as tmp:
                intended, bad = encoder_mismatches(exe, tmp)
            for i, want, got in bad[:10]:
                print(f"form {i}: intended `{safe.line(want)}`, llvm-objdump reads `{safe.line(got)}`")
            print(f"encoder check: {len(intended) - len(bad)} of {len(intended)} forms disassemble as intended")
            return 1 if bad else 0
        if args.command == "paths":
            return run(exe, ["paths"], stream=sys.stdout).returncode
        print("native benchmark (Linux user space, one core)", flush=True)
        r = run(exe, ["bench", LAB_DIR / "chars.model"] + args.path, timeout=600, stream=sys.stdout)
        for line in save_roofline(r.stdout, args.book) if r.returncode == 0 else []:
            print(line)
        return r.returncode
    except subprocess.CalledProcessError as e:
        print(
            f"the native harness failed (exit status {e.returncode}): {safe.block(e.stderr or '', 10)}", file=sys.stderr
        )
    except subprocess.TimeoutExpired as e:
        print(f"the native harness did not finish in {e.timeout:.0f}s: stopped", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
