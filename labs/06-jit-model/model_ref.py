"""The character model of lab 06: its file format and the integer rules that
the kernel's interpreter, its JIT and this reference all follow, bit for bit.
Standard library only. This file is the specification; labs/06-jit-model/
model.h says the same in C.

File (little-endian; every array starts at a multiple of 16 bytes, zero-padded):
    0   8 bytes   magic "CHARMLP1"
    8   u32       version (1)
   12   u32 x 5   context (6), vocab (27), embed (16), hidden1 (256), hidden2 (256)
   32   i32 x 2   m1, m2: requantization multipliers of layers 1 and 2
   40   u32       logit_mul: logit difference -> exp-table index, see `sample`
   44   u32 x 2   heldout words (count), heldout bytes (their NUL-separated text)
   52   u32       total size of the file in bytes
   56   8 bytes   reserved, 0
   64   u32 x 256 exp table: round(65536 * exp(-i / 16))
   then int8  embedding[vocab][embed]
        int8  w1[hidden1][context * embed], int32 b1[hidden1]
        int8  w2[hidden2][hidden1],         int32 b2[hidden2]
        int8  w3[vocab][hidden2],           int32 b3[vocab]
        the held-out words, each followed by a NUL
   last u32       FNV-1a (32-bit) of every byte before it

The forward pass. Characters are 0 (end of word, or "before the word" in a
context) and 1..26 (a..z). The input is the embeddings of the 6 previous
characters, oldest first (96 int8 values). Then, in 64-bit arithmetic:
    acc1[i] = b1[i] + sum_j w1[i][j] * x[j]
    h1[i]   = clamp((acc1[i] * m1 + 2^23) >> 24, 0, 127)      (>> rounds toward -inf)
    acc2, h2: the same with w2, b2, m2 on h1
    logit[k] = b3[k] + sum_j w3[k][j] * h2[j]                  (fits in int32)

Choosing: top-1 is the largest logit, the lowest index among equals.
Sampling, with xorshift32 (s ^= s << 13; s ^= s >> 17; s ^= s << 5, 32-bit):
    d[k] = max(logit) - logit[k];  idx = min((d[k] * logit_mul) >> 16, 255)
    w[k] = exp_table[idx];  r = xorshift32() % sum(w)
    the character is the first k whose running sum of w exceeds r.
A word starts from an all-zero context; it ends when 0 is drawn or after
MAX_WORD characters; a word of no characters is printed as "(empty)".
"""
import struct
from dataclasses import dataclass, field

MAGIC = b"CHARMLP1"
VERSION = 1
MAX_WORD = 16
KERNEL_HELDOUT_WORDS = 48  # the held-out words the kernel scores (its file carries them)
SELFTEST_CONTEXTS = 16
SELFTEST_WORDS = 8
MASK32 = (1 << 32) - 1


class ModelError(Exception):
    pass


@dataclass
class Model:
    context: int
    vocab: int
    embed: int
    hidden1: int
    hidden2: int
    m1: int
    m2: int
    logit_mul: int
    exp_table: list
    embedding: list  # [vocab][embed]
    w1: list  # [hidden1][context*embed]
    b1: list
    w2: list  # [hidden2][hidden1]
    b2: list
    w3: list  # [vocab][hidden2]
    b3: list
    heldout: list = field(default_factory=list)
    _cache: dict = field(default_factory=dict, repr=False)


def fnv1a(data):
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & MASK32
    return h


def _pad16(buf):
    buf.extend(b"\0" * (-len(buf) % 16))


def encode(m):
    body = bytearray(64)
    body += struct.pack("<256I", *m.exp_table)
    for rows, bias in ((m.embedding, None), (m.w1, m.b1), (m.w2, m.b2), (m.w3, m.b3)):
        _pad16(body)
        body += bytes(v & 0xFF for row in rows for v in row)
        if bias is not None:
            _pad16(body)
            body += struct.pack(f"<{len(bias)}i", *bias)
    _pad16(body)
    text = b"".join(w.encode() + b"\0" for w in m.heldout)
    body += text
    _pad16(body)
    total = len(body) + 4
    struct.pack_into(
        "<8sIIIIIIiiIIII8x",
        body,
        0,
        MAGIC,
        VERSION,
        m.context,
        m.vocab,
        m.embed,
        m.hidden1,
        m.hidden2,
        m.m1,
        m.m2,
        m.logit_mul,
        len(m.heldout),
        len(text),
        total,
    )
    return bytes(body) + struct.pack("<I", fnv1a(body))


def decode(data):
    if len(data) < 1092 or data[:8] != MAGIC:
        raise ModelError("not a character model (bad magic or too short)")
    (_, version, ctx, vocab, emb, h1, h2, m1, m2, lmul, nheld, heldbytes, total) = struct.unpack_from(
        "<8sIIIIIIiiIIII", data, 0
    )
    if version != VERSION or total != len(data):
        raise ModelError(f"version {version} or size {total} does not match (file has {len(data)} bytes)")
    if fnv1a(data[:-4]) != struct.unpack_from("<I", data, len(data) - 4)[0]:
        raise ModelError("checksum mismatch")
    pos = 64
    exp_table = list(struct.unpack_from("<256I", data, pos))
    pos += 1024

    def int8s(rows, cols):
        nonlocal pos
        pos += -pos % 16
        raw = data[pos : pos + rows * cols]
        pos += rows * cols
        return [[b - 256 if b > 127 else b for b in raw[r * cols : (r + 1) * cols]] for r in range(rows)]

    def int32s(n):
        nonlocal pos
        pos += -pos % 16
        vals = list(struct.unpack_from(f"<{n}i", data, pos))
        pos += 4 * n
        return vals

    embedding = int8s(vocab, emb)
    w1, b1 = int8s(h1, ctx * emb), int32s(h1)
    w2, b2 = int8s(h2, h1), int32s(h2)
    w3, b3 = int8s(vocab, h2), int32s(vocab)
    pos += -pos % 16
    words = data[pos : pos + heldbytes].split(b"\0")[:nheld]
    return Model(
        ctx, vocab, emb, h1, h2, m1, m2, lmul, exp_table, embedding, w1, b1, w2, b2, w3, b3, [w.decode() for w in words]
    )


_LOADED = {}  # the file's bytes -> its Model: each is decoded (and its caches filled) once per process


def load(path):
    """The Model of a weights file; a file with the same bytes gives the same
    Model (every grade of a process, and each mutant's copy of the kit, shares it)."""
    with open(path, "rb") as f:
        data = f.read()
    if data not in _LOADED:
        _LOADED[data] = decode(data)
    return _LOADED[data]


def _layer1_tables(m):
    """acc1 is a sum over the 6 positions of w1's slice times one embedding:
    precomputed per (position, character), it is 6 vector additions."""
    if "t1" not in m._cache:
        t = []
        for p in range(m.context):
            cols = [row[p * m.embed : (p + 1) * m.embed] for row in m.w1]
            t.append([[sum(a * b for a, b in zip(col, m.embedding[c])) for col in cols] for c in range(m.vocab)])
        m._cache["t1"] = t
    return m._cache["t1"]


def _requant(acc, mult):
    return [min(max((a * mult + (1 << 23)) >> 24, 0), 127) for a in acc]


def logits(m, ctx):
    """The int32 logits for a context of m.context character indexes.
    Twin: model_logits_c in labs/06-jit-model/model.c and every JIT path."""
    key = tuple(ctx)
    hit = m._cache.get(key)
    if hit is not None:
        return hit
    t1 = _layer1_tables(m)
    acc1 = list(m.b1)
    for p, c in enumerate(ctx):
        acc1 = [a + b for a, b in zip(acc1, t1[p][c])]
    h1 = _requant(acc1, m.m1)
    h2 = _requant([b + sum(map(int.__mul__, row, h1)) for row, b in zip(m.w2, m.b2)], m.m2)
    out = [b + sum(map(int.__mul__, row, h2)) for row, b in zip(m.w3, m.b3)]
    m._cache[key] = out
    return out


def top1(z):
    return max(range(len(z)), key=lambda k: (z[k], -k))


def xorshift32(s):
    s ^= (s << 13) & MASK32
    s ^= s >> 17
    s ^= (s << 5) & MASK32
    return s & MASK32


def sample(m, z, state):
    """One character from logits z; returns (character, new state).
    Twin: model_sample in labs/06-jit-model/model.c."""
    top = max(z)
    w = [m.exp_table[min(((top - v) * m.logit_mul) >> 16, 255)] for v in z]
    state = xorshift32(state)
    r = state % sum(w)
    run = 0
    for k, wk in enumerate(w):
        run += wk
        if run > r:
            return k, state
    raise AssertionError("unreachable: r < sum(w)")


def word_state(seed):
    s = seed & MASK32
    return s if s else 0x2545F491


def generate(m, seed, count=SELFTEST_WORDS):
    """The words the kernel generates for this seed.
    Twin: selftest_words in labs/06-jit-model/model_selftest.c."""
    state, words = word_state(seed), []
    for _ in range(count):
        ctx, chars = [0] * m.context, []
        while len(chars) < MAX_WORD:
            k, state = sample(m, logits(m, ctx), state)
            if k == 0:
                break
            chars.append(chr(96 + k))
            ctx = ctx[1:] + [k]
        words.append("".join(chars) or "(empty)")
    return words


def heldout_top1(m):
    """(correct, positions) of top-1 over every position of the held-out words.
    Twin: selftest_heldout in labs/06-jit-model/model_selftest.c."""
    positions = heldout_contexts(m)
    return sum(top1(logits(m, c)) == y for c, y in positions), len(positions)


def heldout_contexts(m):
    """Every position of the held-out words, in order: (context, the character that came next)."""
    out = []
    for w in m.heldout:
        ctx = [0] * m.context
        for ch in list(w) + [None]:
            y = 0 if ch is None else ord(ch) - 96
            out.append((ctx, y))
            ctx = ctx[1:] + [y]
    return out


def heldout_hash(m):
    """FNV-1a over the little-endian int32 logits of every held-out position,
    in order: what the kernel's held-out run prints, batched or not.
    Twin: selftest_heldout in labs/06-jit-model/model_selftest.c."""
    return logits_hash(m, [c for c, _ in heldout_contexts(m)])


def seeded_contexts(seed, m, count=SELFTEST_CONTEXTS):
    """The contexts the kernel draws with seed_next (labs/01-boot/cmdline.c).
    Twin: selftest_hash in labs/06-jit-model/model_selftest.c."""
    from grader.seeded import sequence

    r = sequence(seed ^ 0x6D6F64656C)
    return [[next(r) % m.vocab for _ in range(m.context)] for _ in range(count)]


def logits_hash(m, contexts):
    """FNV-1a over the little-endian int32 logits of every context, in order."""
    data = b"".join(struct.pack(f"<{m.vocab}i", *logits(m, c)) for c in contexts)
    return fnv1a(data)
