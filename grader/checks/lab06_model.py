"""Lab 06: every number the model's self-test prints is recomputed here by
the reference (grader/model_ref.py) from the committed weights file and the
seed; the bit-exact checks name the first context that differs."""
import re
import struct

from . import Fail, check, precompute
from .. import labs, model_ref

LAB = "06-jit-model"
EACH = re.compile(r"^\[model\] (.+): each context: ((?:[0-9a-f]+ ?)+)$")
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


for engine, title, points in ENGINES:
    check(LAB, title, points)(lambda ctx, engine=engine: bit_exact(ctx, engine))
