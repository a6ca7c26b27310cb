"""Lab 06: every number the model's self-test prints is recomputed here by
the reference (grader/model_ref.py) from the committed weights file and the
seed; the bit-exact checks name the first context that differs. The kernel
chooses its widest JIT path from CPUID: the grader recomputes that choice
from the CPUID facts the kernel prints, and a second boot (tests=jit-sse2)
grades the SSE2 fallback, with the AVX state left off."""
import re
import struct

from . import Fail, boot, check, precompute
from .common import end_of_run
from .. import labs, model_ref

LAB = "06-jit-model"
EACH = re.compile(r"^\[model\] (.+): each context: ((?:[0-9a-f]+ ?)+)$")
CPUID = re.compile(r"^\[simd\] CPUID: (.*); XCR0 may hold 0x([0-9a-f]+)$")
PATH = re.compile(r"^\[jit\] path: (\S+) \((forced by tests=jit-sse2; )?CPUID: ")
XCR0_AVX, XCR0_AVX512 = 0x7, 0xE7
boot(LAB, "jit-sse2", "jit-sse2")
ENGINES = (("interpreter", "model: the interpreter is bit-exact", 15),
           ("jit scalar", "jit: the scalar JIT is bit-exact", 15),
           ("jit sse2", "jit: the SSE2 JIT is bit-exact", 15))


@precompute(LAB)
def values(seed, root):
    path = root / "labs" / LAB / "chars.model"
    try:
        m = model_ref.load(path)
    except (OSError, model_ref.ModelError) as e:
        bad = f"(no reference: labs/{LAB}/chars.model: {e})"
        size = path.stat().st_size if path.is_file() else bad
        return {"hash": bad, "good": bad, "total": bad, "words": bad, "size": size, "_each": [], "_contexts": []}
    contexts = model_ref.seeded_contexts(seed, m)
    good, total = model_ref.heldout_top1(m)
    each = [model_ref.fnv1a(struct.pack(f"<{m.vocab}i", *model_ref.logits(m, c))) for c in contexts]
    return {"hash": f"0x{model_ref.logits_hash(m, contexts):x}", "good": good, "total": total,
            "words": " ".join(model_ref.generate(m, seed)), "size": (root / "labs" / LAB / "chars.model").stat().st_size,
            "_each": each, "_contexts": contexts}


def spell(ctx):
    return "".join("." if c == 0 else chr(96 + c) for c in ctx)


def bit_exact(ctx, engine):
    want = ctx.values["_each"]
    if not want:
        raise Fail(f"no reference values: {ctx.values['hash']}")
    lines = {m.group(1): m.group(2).split() for m in map(EACH.match, ctx.run.lines) if m}
    if engine not in lines:
        raise Fail(f"no `[model] {engine}: each context: ...` line (the self-test stopped before this engine)")
    got = [int(x, 16) for x in lines[engine]]
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            raise Fail(f"context {i} (`{spell(ctx.values['_contexts'][i])}`, oldest character first) is the first "
                       f"that differs: its logits hash 0x{g:x}, the reference's 0x{w:x}; every rounding is "
                       "specified in grader/model_ref.py")
    if len(got) != len(want):
        raise Fail(f"{len(got)} context hashes printed, {len(want)} expected")


def best_path(facts, xcr0):
    """The kind labs/06-jit-model/simd.c must choose from these CPUID facts."""
    yes = {name for name, v in (f.rsplit(" ", 1) for f in facts.split(", ")) if v == "yes"}
    avx = {"XSAVE", "AVX", "AVX2"} <= yes
    if avx and {"AVX512F", "AVX512BW", "AVX512_VNNI"} <= yes and xcr0 & XCR0_AVX512 == XCR0_AVX512:
        return "avx512-vnni"
    if avx and xcr0 & XCR0_AVX == XCR0_AVX:
        return "avx-vnni" if "AVX-VNNI" in yes else "avx2"
    return "sse2" if "SSE2" in yes else "scalar"


def chosen_path(ctx):
    """(path, forced, expected path) from the `[simd] CPUID` and `[jit] path` lines."""
    facts = [m for m in map(CPUID.match, ctx.run.lines) if m]
    path = [m for m in map(PATH.match, ctx.run.lines) if m]
    if not facts or not path:
        raise Fail("no `[simd] CPUID: ...` and `[jit] path: ...` lines (simd_choose in model_selftest.c)")
    return path[0].group(1), bool(path[0].group(2)), best_path(facts[0].group(1), int(facts[0].group(2), 16))


def enabled_line(ctx):
    lines = [ln for ln in ctx.run.lines if ln.startswith("[simd] enabled: ")]
    if not lines:
        raise Fail("no `[simd] enabled: ...` line (simd_enable in model_selftest.c)")
    return lines[0]


def widest_path(ctx, need_avx2):
    """The path CPUID allows is the one chosen, its state enabled, its code
    sealed, and its logits bit-exact."""
    path, forced, best = chosen_path(ctx)
    if need_avx2 and best == "sse2":
        raise Fail("the kernel says CPUID has no AVX2, but the grader boots QEMU with `-cpu max`, which has it")
    if path != best or forced:
        raise Fail(f"the kernel chose `{path}`{' (forced)' if forced else ''}; its CPUID facts allow `{best}`")
    want = {"avx512-vnni": f"XCR0 = 0x{XCR0_AVX512:x}", "avx2": f"XCR0 = 0x{XCR0_AVX:x}",
            "avx-vnni": f"XCR0 = 0x{XCR0_AVX:x}"}.get(path, "XCR0 not written")
    if want not in enabled_line(ctx):
        raise Fail(f"for {path}, `{enabled_line(ctx)}` should say `{want}`")
    if path != "sse2" and not any(ln.startswith(f"[jit] {path}: ") and ln.endswith("sealed r-x")
                                  for ln in ctx.run.lines):
        raise Fail(f"no `[jit] {path}: ... bytes of code at ..., sealed r-x` line")
    bit_exact(ctx, f"jit {path}")


@check(LAB, "jit: the AVX2 path QEMU -cpu max offers is bit-exact", 15, emulators=("qemu",))
def widest_path_qemu(ctx):
    widest_path(ctx, need_avx2=True)


@check(LAB, "jit: the path Bochs's CPUID allows is bit-exact", 15, emulators=("bochs",))
def widest_path_bochs(ctx):
    widest_path(ctx, need_avx2=False)


@check(LAB, "jit: SSE2 fallback (tests=jit-sse2), no AVX state", 10, boot="jit-sse2")
def sse2_fallback(ctx):
    problem = end_of_run(ctx.run)
    if problem:
        raise Fail("the boot with tests=jit-sse2: " + problem[0], problem[1])
    path, forced, _ = chosen_path(ctx)
    if path != "sse2" or not forced:
        raise Fail(f"with tests=jit-sse2 the kernel chose `{path}`, not sse2")
    if "XCR0 not written" not in enabled_line(ctx) or "OSXSAVE" in enabled_line(ctx):
        raise Fail(f"with tests=jit-sse2 the AVX state must stay off: `{enabled_line(ctx)}`")
    wide = [ln for ln in ctx.run.lines if re.match(r"^\[jit\] avx\S*: ", ln)]
    if wide:
        raise Fail(f"with tests=jit-sse2 no AVX code may be built: `{wide[0]}`")
    bit_exact(ctx, "jit sse2")
    words = f"[model] words (jit sse2): {ctx.values['words']}"
    if words not in ctx.run.lines:
        got = [ln for ln in ctx.run.lines if ln.startswith("[model] words")]
        raise Fail(f"expected `{words}`, got `{got[0] if got else '(no words line)'}`")


for engine, title, points in ENGINES:
    check(LAB, title, points)(lambda ctx, engine=engine: bit_exact(ctx, engine))
