#!/usr/bin/env python3
"""Maintainer tool (not run in CI): train the character model of lab 06 and
write labs/06-jit-model/chars.model, the file the kernel loads as a Multiboot2
module and the grader's reference (labs/06-jit-model/model_ref.py) reads.

Needs Debian's python3-numpy and wamerican (the word list), only here:
    apt-get install --no-install-recommends python3-numpy wamerican
    /usr/bin/python3 labs/06-jit-model/train_model.py            # about 2 minutes on 2 cores

The model: the 6 previous characters (a-z, and 0 for "before the word"),
each embedded in 16 int8 values; 96 -> 256 ReLU -> 256 ReLU -> 27 logits
(0 = end of word, 1..26 = a..z). Trained in float32, then quantized to the
integer pipeline that labs/06-jit-model/model_ref.py specifies (int8 weights, int32
biases, requantization by multiply-and-shift). The training is seeded: the
same packages give the same file.
"""
import argparse
from pathlib import Path

import model_ref  # beside this script, so on the path of `python3 labs/06-jit-model/train_model.py`
import numpy as np

HERE = Path(__file__).resolve().parent

CTX, VOCAB, EMB, H1, H2 = 6, 27, 16, 256, 256


def load_words(path):
    words = [w.strip() for w in open(path, encoding="utf-8", errors="replace")]
    words = sorted({w for w in words if w.isascii() and w.isalpha() and w.islower() and 2 <= len(w) <= 15})
    return words


def examples(words):
    """(contexts [n, 6] of indexes, targets [n]) for every position of every word."""
    xs, ys = [], []
    for w in words:
        ctx = [0] * CTX
        for ch in list(w) + [None]:
            y = 0 if ch is None else ord(ch) - 96
            xs.append(list(ctx))
            ys.append(y)
            ctx = ctx[1:] + [y]
    return np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64)


def init(rng):
    def he(fan_in, shape):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return {
        "E": (rng.standard_normal((VOCAB, EMB)) * 0.5).astype(np.float32),
        "W1": he(CTX * EMB, (CTX * EMB, H1)),
        "b1": np.zeros(H1, np.float32),
        "W2": he(H1, (H1, H2)),
        "b2": np.zeros(H2, np.float32),
        "W3": he(H2, (H2, VOCAB)) * 0.5,
        "b3": np.zeros(VOCAB, np.float32),
    }


def forward(p, x):
    e = p["E"][x].reshape(len(x), -1)
    a1 = e @ p["W1"] + p["b1"]
    h1 = np.maximum(a1, 0)
    a2 = h1 @ p["W2"] + p["b2"]
    h2 = np.maximum(a2, 0)
    return e, a1, h1, a2, h2, h2 @ p["W3"] + p["b3"]


def loss_and_grads(p, x, y):
    e, a1, h1, a2, h2, z = forward(p, x)
    z = z - z.max(axis=1, keepdims=True)
    prob = np.exp(z)
    prob /= prob.sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.log(prob[np.arange(n), y] + 1e-12).mean()
    dz = prob
    dz[np.arange(n), y] -= 1
    dz /= n
    g = {"W3": h2.T @ dz, "b3": dz.sum(0)}
    dh2 = dz @ p["W3"].T * (a2 > 0)
    g["W2"], g["b2"] = h1.T @ dh2, dh2.sum(0)
    dh1 = dh2 @ p["W2"].T * (a1 > 0)
    g["W1"], g["b1"] = e.T @ dh1, dh1.sum(0)
    de = (dh1 @ p["W1"].T).reshape(n, CTX, EMB)
    g["E"] = np.zeros_like(p["E"])
    np.add.at(g["E"], x, de)
    return loss, g


def train(p, x, y, epochs, rng, batch=512, lr=2e-3):
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    t = 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            loss, g = loss_and_grads(p, x[idx], y[idx])
            total += loss * len(idx)
            t += 1
            rate = lr * (0.3 if epoch == epochs - 1 else 1.0)
            for k in p:
                m[k] = 0.9 * m[k] + 0.1 * g[k]
                v2[k] = 0.999 * v2[k] + 0.001 * g[k] ** 2
                p[k] -= rate * (m[k] / (1 - 0.9**t)) / (np.sqrt(v2[k] / (1 - 0.999**t)) + 1e-8)
        print(f"epoch {epoch + 1}: training loss {total / len(x):.3f} nats/char", flush=True)


def float_quality(p, x, y):
    z = forward(p, x)[-1]
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean(), (z.argmax(1) == y).mean()


def quantize(p, x_calib):
    """Per-layer scales: weights to int8 by their largest magnitude, ReLU
    outputs to 0..127 by a high percentile on calibration data."""

    def q8(w):
        s = float(np.abs(w).max()) / 127.0
        return np.clip(np.round(w / s), -127, 127).astype(np.int8), s

    E, se = q8(p["E"])
    W1, s1 = q8(p["W1"])
    W2, s2 = q8(p["W2"])
    W3, s3 = q8(p["W3"])
    _, a1, h1, a2, h2, _ = forward(p, x_calib)
    sh1 = float(np.percentile(h1[h1 > 0], 99.9)) / 127.0
    sh2 = float(np.percentile(h2[h2 > 0], 99.9)) / 127.0
    return model_ref.Model(
        context=CTX,
        vocab=VOCAB,
        embed=EMB,
        hidden1=H1,
        hidden2=H2,
        m1=int(round(se * s1 / sh1 * (1 << 24))),
        m2=int(round(sh1 * s2 / sh2 * (1 << 24))),
        logit_mul=int(round(sh2 * s3 * 16 * 65536)),
        exp_table=[int(round(65536 * np.exp(-i / 16.0))) for i in range(256)],
        embedding=E.tolist(),
        w1=W1.T.tolist(),
        b1=np.round(p["b1"] / (se * s1)).astype(np.int64).tolist(),
        w2=W2.T.tolist(),
        b2=np.round(p["b2"] / (sh1 * s2)).astype(np.int64).tolist(),
        w3=W3.T.tolist(),
        b3=np.round(p["b3"] / (sh2 * s3)).astype(np.int64).tolist(),
        heldout=[],
    )


def int_quality(model, x, y, limit=20000):
    """The integer pipeline's loss and top-1 (numpy, same arithmetic as model_ref)."""
    x, y = x[:limit], y[:limit]
    E = np.array(model.embedding, np.int64)
    inp = E[x].reshape(len(x), -1)

    def layer(v, w, b, m):
        acc = v @ np.array(w, np.int64).T + np.array(b, np.int64)
        return acc if m is None else np.clip((acc * m + (1 << 23)) >> 24, 0, 127)

    h1 = layer(inp, model.w1, model.b1, model.m1)
    h2 = layer(h1, model.w2, model.b2, model.m2)
    z = layer(h2, model.w3, model.b3, None).astype(np.float64) * (model.logit_mul / 65536 / 16)
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean(), (z.argmax(1) == y).mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", default="/usr/share/dict/american-english")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--out", default=str(HERE / "chars.model"))
    args = ap.parse_args()
    rng = np.random.default_rng(20261121)
    words = load_words(args.words)
    held = words[::20]  # every 20th word is held out
    train_words = [w for i, w in enumerate(words) if i % 20]
    x, y = examples(train_words)
    hx, hy = examples(held)
    print(f"{len(train_words)} training words ({len(x)} positions), {len(held)} held out ({len(hx)} positions)")
    p = init(rng)
    train(p, x, y, args.epochs, rng)
    fl, ft = float_quality(p, hx, hy)
    model = quantize(p, x[rng.permutation(len(x))[:20000]])
    il, it = int_quality(model, hx, hy)
    print(f"held-out, float32: {fl:.3f} nats/char, top-1 {100 * ft:.1f}%")
    print(f"held-out, int8 pipeline (first 20000 positions): {il:.3f} nats/char, top-1 {100 * it:.1f}%")
    model.heldout = [w for w in held if len(w) <= 12][::8][: model_ref.KERNEL_HELDOUT_WORDS]
    Path(args.out).write_bytes(model_ref.encode(model))
    print(
        f"wrote {args.out}: {Path(args.out).stat().st_size} bytes, {len(model.heldout)} held-out words for the kernel"
    )


if __name__ == "__main__":
    main()
