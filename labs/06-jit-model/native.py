"""Lab 06's own tool: its JIT built for Linux user space (native/), for the
encoder check against llvm-objdump and for the native benchmark.

    python3 labs/06-jit-model/native.py check [--labs|--solutions]    every instruction form vs the disassembler
    python3 labs/06-jit-model/native.py bench [--labs|--solutions] [--path KIND ...]   cycles per multiply-add
    python3 labs/06-jit-model/native.py paths             which JIT kinds this machine can run
(`make jit-check` and `make bench-jit` run the first two.) jit_encode.c comes
from labs/ (your code) or from solutions/ (the reference code); by default
from solutions/ in the course staff's copy, from labs/ in a students' copy.
The harness builds lab 06's own files only: BELOW=solutions (--below)
changes nothing here.
"""
import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__":  # run as a script: the kit's root on the path, for the grader (imported where used)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

LAB_DIR = Path(__file__).resolve().parent
KERNEL_FLAGS = ["-O2", "-mno-sse", "-mno-sse2", "-mno-mmx", "-mno-red-zone", "-fno-stack-protector"]


def build(root=None, solutions=True, outdir=None):
    """build/native/jit_native from the lab's given C files that need no
    kernel (jit*.c, simd.c), the student's (or the reference) jit_encode.c,
    native/*.c, and native/matvec.c compiled twice."""
    from grader import build as build_mod

    root = Path(root) if root else LAB_DIR.parents[1]
    lab = root / "labs" / LAB_DIR.name
    encode = (root / "solutions" / LAB_DIR.name if solutions else lab) / "jit_encode.c"
    if not encode.is_file():
        raise build_mod.BuildError(
            f"{encode.relative_to(root)} is not here: the reference code of lab 06 is not released in this copy",
            "use your own code (make jit-check, make bench-jit without SOLUTIONS=1)",
        )
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
    args = ap.parse_args(argv)
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
    return subprocess.run([str(exe), "bench", str(LAB_DIR / "chars.model")] + args.path, timeout=600).returncode


if __name__ == "__main__":
    sys.exit(main())
