"""The model file and the integer rules of model_ref.py (beside this file),
which the kernel's interpreter and JIT must follow bit for bit."""
import pytest

from grader import labs

LAB = labs.lab_of(__file__)
M = LAB.module("model_ref")
MODEL = LAB.dir / "chars.model"


@pytest.fixture(scope="module")
def model():
    return M.load(MODEL)


def test_file_round_trips(model):
    assert M.encode(model) == MODEL.read_bytes()
    assert (model.context, model.vocab, model.embed, model.hidden1, model.hidden2) == (6, 27, 16, 256, 256)
    assert len(model.heldout) == M.KERNEL_HELDOUT_WORDS and all(w.isalpha() for w in model.heldout)


@pytest.mark.parametrize("where", [0, 9, 5000, -1])
def test_any_corrupt_byte_is_refused(where):
    data = bytearray(MODEL.read_bytes())
    data[where] ^= 0x40
    with pytest.raises(M.ModelError):
        M.decode(bytes(data))


def test_truncated_file_is_refused():
    with pytest.raises(M.ModelError):
        M.decode(MODEL.read_bytes()[:-16])


def test_xorshift32_matches_marsaglias_sequence():
    # Marsaglia (2003), 13/17/5 triple: from 1 the first outputs are 270369 and 67634689.
    assert M.xorshift32(1) == 270369 and M.xorshift32(270369) == 67634689


def test_top1_ties_go_to_the_lowest_index():
    assert M.top1([3, 7, 7, 1]) == 1 and M.top1([5]) == 0


def test_sampling_follows_the_exp_table(model):
    z = [0] * model.vocab
    z[5] = 10**7  # every other weight is exp(-15.9...) * 65536 = 8
    picks = []
    state = 1
    for _ in range(200):
        k, state = M.sample(model, z, state)
        picks.append(k)
    assert picks.count(5) > 180  # 65536 against 26 * 8
    flat = [0] * model.vocab
    seen = set()
    for _ in range(2000):
        k, state = M.sample(model, flat, state)
        seen.add(k)
    assert seen == set(range(model.vocab))  # equal logits: every character can come


def test_requantization_rounds_half_up_and_clamps():
    assert M._requant([0, 1 << 23, -(1 << 30), 1 << 40], 1 << 24) == [0, 127, 0, 127]
    assert M._requant([3], 1 << 23) == [2]  # 3 * 0.5 = 1.5 -> 2 (half up)
    assert M._requant([-3], 1 << 23) == [0]  # negative: clamped after the shift


def test_words_are_deterministic_and_seeded(model):
    a, b, c = M.generate(model, 7), M.generate(model, 7), M.generate(model, 8)
    assert a == b and a != c and len(a) == M.SELFTEST_WORDS
    assert all(w == "(empty)" or (w.isalpha() and len(w) <= M.MAX_WORD) for w in a)


@pytest.mark.slow
def test_the_model_predicts_better_than_chance(model):
    good, total = M.heldout_top1(model)
    assert total > 300 and good / total > 0.3  # chance is 1/27
