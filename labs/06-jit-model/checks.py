"""Lab 06: every number the model's self-test prints is recomputed here by
the reference (model_ref.py, beside this file) from the committed weights
file and the seed; the bit-exact checks name the first context that differs.
The kernel chooses its widest JIT path from CPUID: the grader recomputes that
choice from the CPUID facts the kernel prints, and a second boot
(tests=jit-sse2) grades the SSE2 fallback, with the AVX state left off.
The widest path's batched code (several contexts a call, each weight loaded
once for all of them) is graded on the seeded contexts and the held-out
positions; a path with no batched form (SSE2) runs them one at a time, and
the report says so. What QEMU shows backs each check: at power-off, while
the kernel waits, the grader reads each engine's logits and each JIT's code
from guest memory and the code pages' permissions from QEMU's walk of the
page tables; the W^X faults are in its -d int log. A diagnosis recognises
faults in the JIT's generated code."""
import re
import struct

from grader.api import (
    Fail,
    Hint,
    at_power_off,
    check,
    end_of_run,
    exceptions_taken,
    observed,
    place,
    precompute,
    seen_memory,
    seen_registers,
    values,
    walk,
)
from . import model_ref

MODEL_FILE = "chars.model"
BOOTS = {"jit-sse2": "jit-sse2"}
CPUID = re.compile(r"^\[simd\] CPUID: (.*); XCR0 may hold 0x([0-9a-f]+)$")
PATH = re.compile(r"^\[jit\] path: (\S+) \((forced by tests=jit-sse2; )?CPUID: ")
JIT_CODE = re.compile(r"^\[jit\] (\S+): (\d+) bytes of code at 0x([0-9a-f]+), sealed r-x$")
XCR0_AVX, XCR0_AVX512 = 0x7, 0xE7  # simd.h
EACH = re.compile(r"^\[model\] (.+): each context: ((?:[0-9a-f]+ ?)+)$")
HELDOUT = re.compile(
    r"^\[model\] held-out \(jit (\S+)\): (\d+) positions (?:in (\d+) calls of up to (\d+)|one at a time), "
    r"logits hash 0x([0-9a-f]+)$"
)
BATCH_NAME = re.compile(r"^(\S+)-batch(\d+)$")
BATCHED = ("avx2", "avx-vnni", "avx512-vnni")  # the paths with a batched form (jit_batch in jit.c)
SAID_RIP = re.compile(r"at rip 0x([0-9a-f]+)")


def load(lab):
    """(the model, or None, and a sentence on why not)."""
    path = lab.dir / MODEL_FILE
    try:
        return model_ref.load(path), ""
    except (OSError, model_ref.ModelError) as e:
        return None, f"(no reference: labs/{lab.name}/{MODEL_FILE}: {e})"


@precompute
def model_file(seed, lab):
    m, bad = load(lab)
    path = lab.dir / MODEL_FILE
    size = path.stat().st_size if path.is_file() else bad
    if m is None:
        return {"good": bad, "total": bad, "size": size, "_heldout_hash": None}
    good, total = model_ref.heldout_top1(m)
    return {"good": good, "total": total, "size": size, "_heldout_hash": model_ref.heldout_hash(m)}


@precompute  # the given interpreter computes these too: a forger can print them, so they prove no JIT work
def model_expected(seed, lab):
    m, bad = load(lab)
    if m is None:
        return {"hash": bad, "words": bad, "_each": [], "_contexts": [], "_logits": []}
    contexts = model_ref.seeded_contexts(seed, m)
    logits = [model_ref.logits(m, c) for c in contexts]
    each = [model_ref.fnv1a(struct.pack(f"<{m.vocab}i", *z)) for z in logits]
    return {
        "hash": f"0x{model_ref.logits_hash(m, contexts):x}",
        "words": " ".join(model_ref.generate(m, seed)),
        "_each": each,
        "_contexts": contexts,
        "_logits": logits,
    }


def spell(context):
    return "".join("." if c == 0 else chr(96 + c) for c in context)


def bit_exact(ctx, engine, single=None):
    """The engine's `each context` line against the reference, context by
    context. `single`: the one-context engine of the same path, for a
    batched engine (the first place to look when only the batch differs)."""
    want = ctx.values["_each"]
    if not want:
        raise Fail(f"no reference values: {ctx.values['hash']}")
    lines = {m.group(1): m.group(2).split() for m in map(EACH.match, ctx.boot.lines) if m}
    if engine not in lines:
        raise Fail(f"no `[model] {engine}: each context: ...` line (the self-test stopped before this engine)")
    got = [int(x, 16) for x in lines[engine]]
    interpreter = [int(x, 16) for x in lines.get("interpreter", [])]
    alone = [int(x, 16) for x in lines.get(single, [])] if single else []
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            where = (
                f"every rounding is specified in labs/{ctx.lab.name}/model_ref.py"
                if engine == "interpreter" or interpreter[: len(want)] != want
                else f"`{single}` (the same path, one context a call) agrees with the reference, so the difference "
                "is in the batched code: each context's inputs and outputs lie a stride apart "
                "(jit_batch_in_stride, jit_batch_out_stride in jit.c; batch_set in jit_wide.c), and each weight "
                "vector is loaded once for every context of the batch"
                if alone[: len(want)] == want
                else "the interpreter agrees with the reference, so the difference is in the code this JIT "
                "generated: check your encoder for every operand form (displacements of 128 and more, "
                "negative ones, r12 and r13 as a base) with `make jit-check`, which compares each form "
                "the emitter supports with llvm-objdump"
            )
            raise Fail(
                f"context {i} (`{spell(ctx.values['_contexts'][i])}`, oldest character first) is the first "
                f"that differs: its logits hash 0x{g:x}, the reference's 0x{w:x}; {where}"
            )
    if len(got) != len(want):
        raise Fail(f"{len(got)} context hashes printed, {len(want)} expected")


@check("model: the interpreter is bit-exact", 15)
def interpreter_exact(ctx):
    bit_exact(ctx, "interpreter")


@check("jit: the scalar JIT is bit-exact", 15)
def scalar_exact(ctx):
    bit_exact(ctx, "jit scalar")


@check("jit: the SSE2 JIT is bit-exact", 15)
def sse2_exact(ctx):
    bit_exact(ctx, "jit sse2")


@values
def path_chosen(ctx):
    """The JIT path the kernel says it chose (the widest lines name it)."""
    m = [m for m in map(PATH.match, ctx.boot.lines) if m]
    return {"path": m[0].group(1) if m else "(no `[jit] path:` line)"}


def best_path(facts, xcr0):
    """The kind simd.c must choose from these CPUID facts."""
    yes = {name for name, v in (f.rsplit(" ", 1) for f in facts.split(", ")) if v == "yes"}
    avx = {"XSAVE", "AVX", "AVX2"} <= yes
    if avx and {"AVX512F", "AVX512BW", "AVX512_VNNI"} <= yes and xcr0 & XCR0_AVX512 == XCR0_AVX512:
        return "avx512-vnni"
    if avx and xcr0 & XCR0_AVX == XCR0_AVX:
        return "avx-vnni" if "AVX-VNNI" in yes else "avx2"
    return "sse2" if "SSE2" in yes else "scalar"


def chosen_path(ctx):
    """(path, forced, expected path) from the `[simd] CPUID` and `[jit] path` lines."""
    facts = [m for m in map(CPUID.match, ctx.boot.lines) if m]
    path = [m for m in map(PATH.match, ctx.boot.lines) if m]
    if not facts or not path:
        raise Fail("no `[simd] CPUID: ...` and `[jit] path: ...` lines (simd_choose in model_selftest.c)")
    return path[0].group(1), bool(path[0].group(2)), best_path(facts[0].group(1), int(facts[0].group(2), 16))


def enabled_line(ctx):
    lines = [ln for ln in ctx.boot.lines if ln.startswith("[simd] enabled: ")]
    if not lines:
        raise Fail("no `[simd] enabled: ...` line (simd_enable in model_selftest.c)")
    return lines[0]


def widest_path(ctx, avx2=None):
    """The path CPUID allows is the one chosen, its state enabled, its code
    sealed, and its logits bit-exact; returns the path. avx2: whether the
    emulator's CPU has AVX2, as the grader asked it (None: not known)."""
    path, forced, best = chosen_path(ctx)
    if avx2 and best == "sse2":
        raise Fail(
            f"the kernel says CPUID has no AVX2, but the grader boots QEMU with `-cpu {ctx.host.cpu}`, which has it"
        )
    if avx2 is False and best not in ("sse2", "scalar"):
        raise Fail(f"the kernel says CPUID allows `{best}`, but {ctx.host.lacks('avx2')}")
    if path != best or forced:
        raise Fail(f"the kernel chose `{path}`{' (forced)' if forced else ''}; its CPUID facts allow `{best}`")
    want = {
        "avx512-vnni": f"XCR0 = 0x{XCR0_AVX512:x}",
        "avx2": f"XCR0 = 0x{XCR0_AVX:x}",
        "avx-vnni": f"XCR0 = 0x{XCR0_AVX:x}",
    }.get(path, "XCR0 not written")
    if want not in enabled_line(ctx):
        raise Fail(f"for {path}, `{enabled_line(ctx)}` should say `{want}`")
    if path != "sse2" and not any(
        ln.startswith(f"[jit] {path}: ") and ln.endswith("sealed r-x") for ln in ctx.boot.lines
    ):
        raise Fail(f"no `[jit] {path}: ... bytes of code at ..., sealed r-x` line")
    bit_exact(ctx, f"jit {path}")
    return path


@check("jit: the widest path QEMU's CPU offers is bit-exact", 15, emulators=("qemu",))
def widest_path_qemu(ctx):
    """Under QEMU 7.2 and later, -cpu max has AVX2 and the AVX2 path is graded;
    on a host whose QEMU has none (an older QEMU), the widest path it offers
    is, and the note says so."""
    avx2 = ctx.host.offers("avx2")
    path = widest_path(ctx, avx2)
    if avx2 is False:
        return f"graded the {path} path: {ctx.host.lacks('avx2')}, so the AVX2 path was not graded on this host"
    if avx2 is None:
        return f"graded the {path} path the kernel's CPUID allows ({ctx.host.problem})"
    return None


@check("jit: the path Bochs's CPUID allows is bit-exact", 15, emulators=("bochs",))
def widest_path_bochs(ctx):
    widest_path(ctx)


def heldout_line(ctx):
    """(engine, positions, calls or None, batch or None, hash) of the `[model] held-out (...)` line."""
    m = [m for m in map(HELDOUT.match, ctx.boot.lines) if m]
    if not m:
        raise Fail("no `[model] held-out (jit ...): ... positions ..., logits hash 0x...` line (selftest_heldout)")
    engine, total, calls, per, got = m[0].groups()
    return engine, int(total), calls and int(calls), per and int(per), int(got, 16)


def heldout_hash_matches(ctx, engine, total, got):
    want, positions = ctx.values["_heldout_hash"], ctx.values["total"]
    if want is None:
        raise Fail(f"no reference values: {ctx.values['good']}")
    if total != positions or got != want:
        raise Fail(
            f"`jit {engine}` hashed the logits of {total} held-out positions to 0x{got:x}; the reference, of "
            f"{positions} positions, to 0x{want:x} (model_ref.py heldout_hash: every position of every held-out "
            "word, in order)"
        )


@check("jit: the batched forward pass is bit-exact", 15)
def batched_exact(ctx):
    """The chosen path's batched engine on the seeded contexts and on every
    held-out position, a batch a call; a path with no batched form passes on
    its one-context held-out run, and says so."""
    path, _, best = chosen_path(ctx)
    engine, total, calls, per, got = heldout_line(ctx)
    if path not in BATCHED:
        said = f"[jit] {path} has no batched form: the held-out positions run one context at a time"
        if path != best or said not in ctx.boot.lines or engine != path or calls is not None:
            raise Fail(f"the {path} path has no batched form: expected `{said}` and its held-out run on `jit {path}`")
        heldout_hash_matches(ctx, engine, total, got)
        return (
            f"{path}, the path this CPU offers, has no batched form: the held-out positions ran one at a time, "
            "and their logits are bit-exact"
        )
    name = BATCH_NAME.match(engine)
    if not name or name.group(1) != path or int(name.group(2)) < 2:
        raise Fail(f"{path} has a batched form, but the held-out positions ran on `jit {engine}`, not its batches")
    batch = int(name.group(2))
    if per != batch or calls != -(-total // batch):
        raise Fail(f"`jit {engine}` should run {total} positions in {-(-total // batch)} calls of up to {batch}")
    bit_exact(ctx, f"jit {engine}", single=f"jit {path}")
    heldout_hash_matches(ctx, engine, total, got)


@check("jit: SSE2 fallback (tests=jit-sse2), no AVX state", 10, boot="jit-sse2")
def sse2_fallback(ctx):
    problem = end_of_run(ctx.boot)
    if problem:
        raise Fail("the boot with tests=jit-sse2: " + problem[0], problem[1])
    path, forced, _ = chosen_path(ctx)
    if path != "sse2" or not forced:
        raise Fail(f"with tests=jit-sse2 the kernel chose `{path}`, not sse2")
    if "XCR0 not written" not in enabled_line(ctx) or "OSXSAVE" in enabled_line(ctx):
        raise Fail(f"with tests=jit-sse2 the AVX state must stay off: `{enabled_line(ctx)}`")
    wide = [ln for ln in ctx.boot.lines if re.match(r"^\[jit\] avx\S*: ", ln)]
    if wide:
        raise Fail(f"with tests=jit-sse2 no AVX code may be built: `{wide[0]}`")
    bit_exact(ctx, "jit sse2")
    words = f"[model] words (jit sse2): {ctx.values['words']}"
    if words not in ctx.boot.lines:
        got = [ln for ln in ctx.boot.lines if ln.startswith("[model] words")]
        raise Fail(f"expected `{words}`, got `{got[0] if got else '(no words line)'}`")


def in_heap(addr, syms):
    r = syms.range("__heap_start", "__heap_end")
    return r is not None and addr is not None and r[0] <= addr < r[1]


def in_jit_code(ev):
    """The kernel's own report names a rip in the heap: the JIT's generated code."""
    m = SAID_RIP.search(ev.said[0]) if ev.said else None
    return bool(m) and in_heap(int(m.group(1), 16), ev.symbols)


def jit_code_at(ev):
    """The name of the JIT whose code holds the rip of the kernel's report
    (from its `[jit] NAME: N bytes of code at ...` lines), or ''."""
    m = SAID_RIP.search(ev.said[0]) if ev.said else None
    for j in filter(None, map(JIT_CODE.match, ev.lines)) if m else ():
        if int(j.group(3), 16) <= int(m.group(1), 16) < int(j.group(3), 16) + int(j.group(2)):
            return j.group(1)
    return ""


@place
def generated_code(addr, ev):
    return (
        "code generated at run time (in the heap: the JIT's pages)" if ev.code and in_heap(addr, ev.symbols) else None
    )


HINTS = [
    Hint(
        lambda ev: ev.said and "#UD invalid opcode" in ev.said[0] and jit_code_at(ev).startswith("avx"),
        "an invalid-opcode fault in the JIT's AVX code, at a VEX or EVEX instruction: AVX is off until the kernel "
        "sets CR4.OSXSAVE and then writes XCR0 with xsetbv (x87, SSE and AVX state; for zmm also opmask, "
        'ZMM_Hi256 and Hi16_ZMM), before the first such instruction. Book: chapter 6, part 2, "Turning AVX on".',
    ),
    Hint(
        lambda ev: ev.said and "#UD invalid opcode" in ev.said[0] and in_jit_code(ev),
        "an invalid-opcode fault in the JIT's code, at an SSE instruction: SSE is off until the kernel sets "
        'CR4.OSFXSR (and CR4.OSXMMEXCPT, CR0.MP, with CR0.EM clear). Book: chapter 6, part 2, "Turning SSE on".',
    ),
    Hint(
        lambda ev: ev.said and "#GP general protection" in ev.said[0] and in_jit_code(ev),
        "a general-protection fault in the JIT's code: a legacy SSE instruction (movdqa, pmaddwd) with a memory "
        'operand that is not 16-byte aligned. Book: chapter 6, part 2, "Turning SSE on".',
    ),
]


# What QEMU saw: each engine's logits and each JIT's code in guest memory, the
# code pages' permissions in its walk of the page tables, the W^X faults.
ENGINES = ("interpreter", "scalar JIT", "SSE2 JIT", "widest JIT", "widest JIT's batched code")  # model_seen.logits
BATCHED_SLOT = 4
CONTEXTS, VOCAB = 16, 27  # model_selftest.c, model.h
CODE_AT = len(ENGINES) * CONTEXTS * VOCAB * 4  # struct model_seen: code[] after the logits


INTERACTION = at_power_off(boots=("default", "jit-sse2"))
# The held-out count and the words are the same for every path that computes
# right, and the given interpreter computes them: they count where the widest
# JIT's own logits are right.
WIDEST = ("jit: the widest path QEMU's CPU offers is bit-exact", "jit: the path Bochs's CPUID allows is bit-exact")
BACKED_BY = {"model: held-out top-1 count": WIDEST, "model: the words generated for this seed": WIDEST}


def seen_logits(ctx, slot):
    """Engine `slot`'s logits of the 16 seeded contexts, as guest memory holds
    them, against the reference's; Fail names the first context that differs."""
    mem = seen_memory(ctx)
    base = ctx.symbols["model_seen"] + slot * CONTEXTS * VOCAB * 4
    want = ctx.values["_logits"]
    if not want:
        raise Fail(f"no reference values: {ctx.values['hash']}")
    for i, z in enumerate(want):
        got = mem.i32s(base + i * VOCAB * 4, VOCAB)
        if got != list(z):
            k = next(j for j in range(VOCAB) if got[j] != z[j])
            raise Fail(
                f"in memory, the {ENGINES[slot]}'s logits of context {i} (`{spell(ctx.values['_contexts'][i])}`) "
                f"differ from the reference's: logit {k} is {got[k]}, not {z[k]}"
                + ("" if any(got) else " (all zero: this engine never ran)")
            )


@observed("model: module found and checked")
def module_seen(ctx):
    """The kernel's record of GRUB's module (struct boot_info) is where its line says, of the file's size."""
    mem, bi = seen_memory(ctx), ctx.symbols["boot_info"]
    start, end = mem.u64(bi + 800), mem.u64(bi + 808)  # modules[0] (mb2.h)
    size = (ctx.lab.dir / MODEL_FILE).stat().st_size
    said = [ln for ln in ctx.boot.lines if ln.startswith("[model] module ")]
    if end - start != size or not said or not said[0].startswith(f"[model] module chars.model at 0x{start:016x}:"):
        raise Fail(
            f"in memory, the module is 0x{start:x}-0x{end:x} ({size} bytes in the file); the kernel said {said[:1]}"
        )


@observed("model: the interpreter's logits hash", "model: the interpreter is bit-exact")
def interpreter_seen(ctx):
    seen_logits(ctx, 0)


@observed("jit: the scalar JIT is bit-exact")
def scalar_seen(ctx):
    seen_logits(ctx, 1)


@observed("jit: the SSE2 JIT is bit-exact", "jit: SSE2 fallback (tests=jit-sse2), no AVX state")
def sse2_seen(ctx):
    seen_logits(ctx, 2)


@observed("jit: the JITs' logits hashes")
def jits_seen(ctx):
    seen_logits(ctx, 1)
    seen_logits(ctx, 2)


@observed(WIDEST[0], WIDEST[1])
def widest_seen(ctx):
    seen_logits(ctx, 3 if chosen_path(ctx)[0] != "sse2" else 2)  # SSE2, when it is the widest, has slot 2 only


@observed("jit: the batched forward pass is bit-exact")
def batched_seen(ctx):
    """The batched code's logits in memory; a path with no batched form ran its one-context code."""
    path = chosen_path(ctx)[0]
    if path in BATCHED:
        seen_logits(ctx, BATCHED_SLOT)
    else:
        seen_logits(ctx, 3 if path != "sse2" else 2)


@observed("jit: the encoder is right and the code is sealed r-x")
def code_seen(ctx):
    """Each JIT's code is where its line says, holds code (SSE2's has
    pmaddwd), and the page tables in CR3, walked in guest memory, give its
    pages r-x."""
    mem, cr3 = seen_memory(ctx), seen_registers(ctx).get("CR3", 0)
    for k, name in enumerate(("scalar", "sse2")):
        addr = mem.u64(ctx.symbols["model_seen"] + CODE_AT + 8 * k)
        said = [m for m in map(JIT_CODE.match, ctx.boot.lines) if m and m.group(1) == name]
        if not addr or not said or int(said[0].group(3), 16) != addr:
            told = said[0].group(0) if said else "nothing"
            raise Fail(f"in memory, the {name} JIT's code is at 0x{addr:x}; the kernel said {told}")
        size = int(said[0].group(2))
        code = mem.read(addr, size)
        if not any(code) or name == "sse2" and b"\x66\x0f\xf5" not in code:
            raise Fail(f"in memory, the {size} bytes at 0x{addr:x} are no {name} code (no pmaddwd in the SSE2 code)")
        for page in range(addr & ~0xFFF, addr + size, 0x1000):
            seen = walk(mem, cr3, page)
            perms = "not mapped" if seen is None else "r" + "-w"[seen[1]] + "-x"[seen[2]]
            if perms != "r-x":
                raise Fail(
                    f"the page tables in CR3 (in guest memory) give the {name} code page 0x{page:x} {perms}, not r-x"
                )


@observed("jit: W^X, sealed code is not writable and data not executable")
def wx_seen(ctx):
    """The CPU refused a write to the SSE2 JIT's code and a fetch from the heap (its weights)."""
    code = seen_memory(ctx).u64(ctx.symbols["model_seen"] + CODE_AT + 8)
    seen = exceptions_taken(ctx)
    if not any(t.vector == 14 and t.error == 3 and t.cr2 == code for t in seen):
        raise Fail(f"QEMU's -d int log shows no write fault (error 0x3) at the SSE2 code, 0x{code:x}")
    if not any(t.vector == 14 and t.error == 0x11 and t.cr2 == t.rip and in_heap(t.rip, ctx.symbols) for t in seen):
        raise Fail("QEMU's -d int log shows no fetch fault (error 0x11) in the heap, where the weights are")
