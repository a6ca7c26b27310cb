"""Lab 06: every number the model's self-test prints is recomputed here by
the reference (model_ref.py, beside this file) from the committed weights
file and the seed; the bit-exact checks name the first context that differs.
A diagnosis recognises faults in the JIT's generated code."""
import re
import struct

from grader.api import Fail, Hint, check, place, precompute
from . import model_ref

MODEL_FILE = "chars.model"
EACH = re.compile(r"^\[model\] (.+): each context: ((?:[0-9a-f]+ ?)+)$")
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
        return {"good": bad, "total": bad, "size": size}
    good, total = model_ref.heldout_top1(m)
    return {"good": good, "total": total, "size": size}


@precompute(seeded=True)
def model_expected(seed, lab):
    m, bad = load(lab)
    if m is None:
        return {"hash": bad, "words": bad, "_each": [], "_contexts": []}
    contexts = model_ref.seeded_contexts(seed, m)
    each = [model_ref.fnv1a(struct.pack(f"<{m.vocab}i", *model_ref.logits(m, c))) for c in contexts]
    return {"hash": f"0x{model_ref.logits_hash(m, contexts):x}", "words": " ".join(model_ref.generate(m, seed)),
            "_each": each, "_contexts": contexts}


def spell(context):
    return "".join("." if c == 0 else chr(96 + c) for c in context)


def bit_exact(ctx, engine):
    want = ctx.values["_each"]
    if not want:
        raise Fail(f"no reference values: {ctx.values['hash']}")
    lines = {m.group(1): m.group(2).split() for m in map(EACH.match, ctx.boot.lines) if m}
    if engine not in lines:
        raise Fail(f"no `[model] {engine}: each context: ...` line (the self-test stopped before this engine)")
    got = [int(x, 16) for x in lines[engine]]
    interpreter = [int(x, 16) for x in lines.get("interpreter", [])]
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            where = (f"every rounding is specified in labs/{ctx.lab.name}/model_ref.py"
                     if engine == "interpreter" or interpreter[:len(want)] != want else
                     "the interpreter agrees with the reference, so the difference is in the code this JIT "
                     "generated: check your encoder for every operand form (displacements of 128 and more, "
                     "negative ones, r12 and r13 as a base) with `make jit-check`, which compares each form "
                     "the emitter supports with llvm-objdump")
            raise Fail(f"context {i} (`{spell(ctx.values['_contexts'][i])}`, oldest character first) is the first "
                       f"that differs: its logits hash 0x{g:x}, the reference's 0x{w:x}; {where}")
    if len(got) != len(want):
        raise Fail(f"{len(got)} context hashes printed, {len(want)} expected")


@check("model: the interpreter is bit-exact", 15, seeded=True)
def interpreter_exact(ctx):
    bit_exact(ctx, "interpreter")


@check("jit: the scalar JIT is bit-exact", 15, seeded=True)
def scalar_exact(ctx):
    bit_exact(ctx, "jit scalar")


@check("jit: the SSE2 JIT is bit-exact", 15, seeded=True)
def sse2_exact(ctx):
    bit_exact(ctx, "jit sse2")


def in_heap(addr, syms):
    r = syms.range("__heap_start", "__heap_end")
    return r is not None and addr is not None and r[0] <= addr < r[1]


def in_jit_code(ev):
    """The kernel's own report names a rip in the heap: the JIT's generated code."""
    m = SAID_RIP.search(ev.said[0]) if ev.said else None
    return bool(m) and in_heap(int(m.group(1), 16), ev.symbols)


@place
def generated_code(addr, ev):
    return "code generated at run time (in the heap: the JIT's pages)" if ev.code and in_heap(addr, ev.symbols) \
        else None


HINTS = [
    Hint(lambda ev: ev.said and "#UD invalid opcode" in ev.said[0] and in_jit_code(ev),
         "an invalid-opcode fault in the JIT's code, at an SSE instruction: SSE is off until the kernel sets "
         "CR4.OSFXSR (and CR4.OSXMMEXCPT, CR0.MP, with CR0.EM clear). Book: chapter 6, \"Turning SSE on\"."),
    Hint(lambda ev: ev.said and "#GP general protection" in ev.said[0] and in_jit_code(ev),
         "a general-protection fault in the JIT's code: a legacy SSE instruction (movdqa, pmaddwd) with a memory "
         "operand that is not 16-byte aligned. Book: chapter 6, \"Turning SSE on\"."),
]
