"""Every JIT kind, run natively (labs/06-jit-model/native), bit-exact
against the reference: the model's logits for seeded contexts, and random
layers with extreme values (saturation, the clamp, the +128 offset of a
signed input, a row count that is no multiple of a vector); the same for
the batched code of the wide kinds, with full and partial batches. A kind
this CPU or its OS does not offer is skipped, with the reason."""
import random
import subprocess

import pytest

from grader import labs


pytestmark = [pytest.mark.instructor, pytest.mark.slow]  # it needs solutions/
LAB = labs.lab_of(__file__)
native = LAB.module("native")
model_ref = LAB.module("model_ref")

MODEL = LAB.dir / "chars.model"
KINDS = ["scalar", "sse2", "avx2", "avx-vnni", "avx512-vnni"]
BATCHED = {"avx2": 4, "avx-vnni": 5, "avx512-vnni": 6}  # contexts per call (jit_batch)
SEED = 0x5EED1234


@pytest.fixture(scope="module")
def exe(tmp_path_factory):
    return native.build(outdir=tmp_path_factory.mktemp("native"))


@pytest.fixture(scope="module")
def paths(exe):
    out = subprocess.run([str(exe), "paths"], capture_output=True, text=True, timeout=60, check=True).stdout
    lines = out.splitlines()
    usable = {k: v == "yes" for k, v in (ln.split() for ln in lines[1:] if not ln.startswith(("best", "batch")))}
    assert {k: int(b) for _, k, b in (ln.split() for ln in lines if ln.startswith("batch "))} == BATCHED
    return lines[0], usable


def need(kind, paths):
    cpuid, usable = paths
    if not usable[kind]:
        pytest.skip(f"{kind}: this machine cannot run it ({cpuid})")


@pytest.fixture(scope="module")
def model():
    return model_ref.load(MODEL)


@pytest.mark.parametrize("kind", KINDS + ["best"] + [f"{k} batch" for k in BATCHED] + ["best batch"])
def test_each_kind_gives_the_reference_logits(exe, paths, model, kind):
    """32 contexts: batches of 4 and of 6 leave a partial one at the end (32 = 5 x 6 + 2)."""
    if not kind.startswith("best"):
        need(kind.split()[0], paths)
    rnd = random.Random(SEED)
    contexts = model_ref.seeded_contexts(SEED, model) + [[0] * 6, [26] * 6]
    contexts += [[rnd.randrange(27) for _ in range(6)] for _ in range(14)]
    text = "".join(" ".join(map(str, c)) + "\n" for c in contexts)
    r = subprocess.run(
        [str(exe), "logits", str(MODEL)] + kind.split(), input=text, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    got = [[int(v) for v in ln.split()] for ln in r.stdout.splitlines()]
    assert len(got) == len(contexts)
    for c, g in zip(contexts, got):
        assert g == model_ref.logits(model, c), f"{kind}, context {c}"


def reference_layer(w, b, x, mult):
    acc = [bi + sum(wi * xi for wi, xi in zip(row, x)) for row, bi in zip(w, b)]
    return [min(max((a * mult + (1 << 23)) >> 24, 0), 127) for a in acc] if mult else acc


def random_layer(rnd, rows, cols, signed_in):
    """Random weights in -127..127 with extreme rows, and inputs at the ends of their range."""
    w = [[rnd.randint(-127, 127) for _ in range(cols)] for _ in range(rows)]
    w[0] = [127] * cols
    w[1 % rows] = [-127] * cols
    w[2 % rows] = [127 if c % 2 else -127 for c in range(cols)]
    lo = -127 if signed_in else 0
    x = [rnd.choice([lo, 127, rnd.randint(lo, 127)]) for _ in range(cols)]
    b = [rnd.randint(-(1 << 20), 1 << 20) for _ in range(rows)]
    return w, b, x


SHAPES = [
    (27, 256, 0, 0),
    (256, 96, 64454, 1),
    (37, 64, 81671, 0),
    (5, 8, 64454, 1),
    (19, 256, 1 << 24, 0),
    (33, 96, 1, 1),
    (16, 32, 300000, 0),
]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_computes_random_layers_exactly(exe, paths, kind):
    need(kind, paths)
    rnd = random.Random(SEED)
    for rows, cols, mult, signed_in in SHAPES:
        w, b, x = random_layer(rnd, rows, cols, signed_in)
        text = f"{rows} {cols} {mult} {signed_in}\n" + " ".join(str(v) for row in w for v in row) + "\n"
        text += " ".join(map(str, b)) + "\n" + " ".join(map(str, x)) + "\n"
        r = subprocess.run([str(exe), "layer", kind], input=text, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert [int(v) for v in r.stdout.split()] == reference_layer(w, b, x, mult), (kind, rows, cols, mult)


@pytest.mark.parametrize("kind", list(BATCHED))
def test_each_batched_kind_computes_random_layers_exactly(exe, paths, kind):
    """Every context of a batch its own inputs (extreme ones among them), and
    a last batch that is not full: each context's outputs must be its own."""
    need(kind, paths)
    rnd = random.Random(SEED + 1)
    for rows, cols, mult, signed_in in SHAPES:
        w, b, x = random_layer(rnd, rows, cols, signed_in)
        lo = -127 if signed_in else 0
        xs = [x] + [[rnd.choice([lo, 127, rnd.randint(lo, 127)]) for _ in range(cols)] for _ in range(BATCHED[kind])]
        text = f"{rows} {cols} {mult} {signed_in}\n" + " ".join(str(v) for row in w for v in row) + "\n"
        text += " ".join(map(str, b)) + "\n" + "".join(" ".join(map(str, v)) + "\n" for v in xs)
        r = subprocess.run([str(exe), "layer", kind, "batch"], input=text, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        got = [[int(v) for v in ln.split()] for ln in r.stdout.splitlines()]
        assert got == [reference_layer(w, b, v, mult) for v in xs], (kind, rows, cols, mult)


def test_scalar_and_sse2_have_no_batched_form(exe):
    for kind in ("scalar", "sse2"):
        r = subprocess.run(
            [str(exe), "logits", str(MODEL), kind, "batch"], input="", capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 1 and f"{kind} has no batched form" in r.stderr


def test_a_kind_refuses_a_layer_it_cannot_compute_exactly(exe, paths):
    need("avx2", paths)
    text = "1 4 33554432 0\n1 2 3 4\n0\n1 1 1 1\n"  # mult 2^25: the 32-bit requantization would overflow
    r = subprocess.run([str(exe), "layer", "avx2"], input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "cannot run this layer exactly" in r.stderr


def test_bench_forces_a_kind_and_refuses_an_unknown_one(exe, paths):
    need("avx2", paths)
    r = subprocess.run([str(exe), "bench", str(MODEL), "sse2", "avx2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "JIT, SSE2 pmaddwd" in r.stdout and "JIT, AVX2" in r.stdout and "JIT, scalar" not in r.stdout
    assert "rdtsc counts reference cycles" in r.stdout and "ceiling (" in r.stdout and "AVX2 " in r.stdout
    assert "JIT, batch 4, AVX2" in r.stdout and "JIT, batch 5" not in r.stdout and "ceiling of a batch (" in r.stdout
    data = native.roofline_data(r.stdout)  # what make bench-jit draws the roofline from
    assert [(row["path"].split(",")[0], row["intensity"]) for row in data["rows"]] == [
        ("C", 1.0), ("C", 1.0), ("JIT", 0.5), ("JIT", 1.0), ("JIT", 4.0)
    ]  # fmt: skip
    assert data["bandwidth"] > 0 and {"sse2", "avx2"} <= set(data["compute"])
    svg = native.draw(dict(data, date="today", load="0.00 0.00 0.00"))
    assert svg.count("<circle") == 2 * len(data["rows"]) and "JIT, batch 4, AVX2 vpmaddubsw: " in svg
    r = subprocess.run([str(exe), "bench", str(MODEL), "avx9"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no JIT kind `avx9`" in r.stderr
