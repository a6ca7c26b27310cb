"""The roofline of `make bench-jit`, as SVG: every path placed by its
arithmetic intensity (multiply-adds per byte of weights it streams) and the
multiply-adds per cycle it reached, under the machine's ceilings: the
bandwidth's slanted line and each kind's compute ceiling. Drawn from the
figures native.py reads in the benchmark's output (build/native/roofline.json
on the machine it ran on; book/roofline.json for the book, whose
book/figures.py calls draw). Standard library only; the book's figure style
(640 units wide, 12- and 13-unit text, its fonts and colours)."""
import html
import math

SANS = "DejaVu Sans, Liberation Sans, Arial, sans-serif"
MONO = "DejaVu Sans Mono, Liberation Mono, Consolas, monospace"
INK, MUTED, LINE, GRID = "#1d1f21", "#5c6166", "#6b7075", "#e3e5e8"
FILL = {"C": "#eef0f2", "one": "#dbe7f5", "batch": "#d7efd9"}
LEFT, RIGHT, TOP, BOTTOM = 64, 600, 74, 374  # the plot; intensity 1/4 to 16 across


def text(x, y, s, anchor="start", size=12, bold=False, color=INK, mono=False, angle=0):
    turn = f' transform="rotate({angle:.1f} {x:.1f} {y:.1f})"' if angle else ""
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-family="{MONO if mono else SANS}" '
        f'font-size="{size}" fill="{color}"{weight}{turn}>{html.escape(s)}</text>'
    )


def line(x1, y1, x2, y2, color=LINE, dash=False, arrow=False):
    extra = (' stroke-dasharray="4 3"' if dash else "") + (' marker-end="url(#arrow)"' if arrow else "")
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" stroke-width="1.3"{extra}/>'


def dot(x, y, row):
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{FILL[kind_of(row)]}" stroke="{INK}"/>'


def kind_of(row):
    """C, a one-context JIT path, or a batch."""
    return "C" if row["path"].startswith("C,") else "batch" if row["path"].startswith("JIT, batch") else "one"


def draw(d):
    """The SVG text of the roofline for the figures `d` (native.roofline_data,
    with date and load)."""
    bw, compute, rows = d["bandwidth"], d["compute"], d["rows"]
    peak = compute[d["widest"]]
    ys = [r["macs_per_cycle"] for r in rows] + list(compute.values())
    ylo, yhi = math.floor(math.log2(min(ys) * 0.9)), math.ceil(math.log2(max(ys) * 1.4))
    legend = BOTTOM + 52
    height = legend + 18 * len(rows) + 20

    def px(x):
        return LEFT + (math.log2(x) + 2) / 6 * (RIGHT - LEFT)

    def py(y):
        return BOTTOM - (math.log2(y) - ylo) / (yhi - ylo) * (BOTTOM - TOP)

    title = "A roofline: every path of make bench-jit under the machine's ceilings"
    p = [
        text(320, 22, "A roofline: the 256x256 matvec, each path under this machine's ceilings", "middle", 13, True),
        text(320, 40, f"{d['cpu']}; {d['date']}, load {d['load']}", "middle", color=MUTED),
        text(LEFT, TOP - 12, "multiply-adds per reference cycle (log scale)", color=MUTED),
        f'<rect x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}" fill="#ffffff" stroke="{LINE}"/>',
    ]
    for k in range(-2, 5):
        p += [line(px(2.0**k), TOP, px(2.0**k), BOTTOM, GRID)]
        p += [text(px(2.0**k), BOTTOM + 16, f"1/{2 ** -k}" if k < 0 else str(2**k), "middle", mono=True)]
    for k in range(ylo, yhi + 1):
        p += [line(LEFT, py(2.0**k), RIGHT, py(2.0**k), GRID)]
        p += [text(LEFT - 6, py(2.0**k) + 4, str(2**k) if k >= 0 else f"1/{2 ** -k}", "end", mono=True)]
    p += [text(320, BOTTOM + 34, "multiply-adds per byte of weights streamed (arithmetic intensity)", "middle", 13)]
    ridge = peak / bw
    p += [
        f'<path d="M{px(0.25):.1f},{py(bw * 0.25):.1f} L{px(ridge):.1f},{py(peak):.1f} L{RIGHT},{py(peak):.1f}" '
        f'fill="none" stroke="{INK}" stroke-width="2"/>'
    ]
    slope = math.degrees(math.atan2(py(bw) - py(bw * 2), px(2) - px(1)))
    p += [text(px(0.27), py(bw * 0.27) - 6, f"weights from L2: {bw:.1f} bytes/cycle", angle=-slope)]
    p += [text(RIGHT - 6, py(peak) - 7, f"{d['widest']} in registers: {peak:.0f} MACs/cycle", "end")]
    for kind, c in compute.items():
        if kind != d["widest"]:
            p += [line(max(px(0.25), px(c / bw)), py(c), RIGHT, py(c), MUTED, dash=True)]
            p += [text(RIGHT - 6, py(c) - 5, f"{kind}: {c:.0f}", "end", 11.5, color=MUTED)]
    single = [r for r in rows if kind_of(r) == "one"]
    batch = [r for r in rows if kind_of(r) == "batch"]
    if single and batch:
        a, b = max(single, key=lambda r: r["macs_per_cycle"]), max(batch, key=lambda r: r["macs_per_cycle"])
        x1, y1 = px(a["intensity"]) + 6, py(a["macs_per_cycle"])
        p += [line(x1, y1, px(b["intensity"]) - 7, py(b["macs_per_cycle"]) + 3, arrow=True)]
        note = "Arrow: each weight loaded once per batch (prefill), not once per context (decode)."
        p += [text(LEFT, legend + 18 * len(rows) + 6, note, color=MUTED)]
    placed = []
    for i, r in sorted(enumerate(rows, 1), key=lambda ir: (ir[1]["intensity"], ir[1]["macs_per_cycle"])):
        x, y = px(r["intensity"]), py(r["macs_per_cycle"])
        clash = any(abs(x - a) < 1 and abs(y - b) < 12 and side == "start" for a, b, side in placed)
        placed.append((x, y, "end" if clash else "start"))
        p += [dot(x, y, r), text(x + (-8 if clash else 8), y + 4, str(i), "end" if clash else "start", bold=True)]
    for i, r in enumerate(rows, 1):
        y = legend + 18 * (i - 1)
        what = f"{r['path']}: {r['macs_per_cycle']:.1f} MACs/cycle, {r['share']:.0f}% of the {r['bound']} ceiling"
        p += [dot(LEFT + 4, y - 4, r), text(LEFT + 14, y, str(i), bold=True), text(LEFT + 36, y, what)]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="{height}" viewBox="0 0 640 {height}" '
        f'role="img" aria-label="{html.escape(title)}">\n<title>{html.escape(title)}</title>\n'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{LINE}"/></marker></defs>\n'
        f'<rect x="0" y="0" width="640" height="{height}" fill="#ffffff"/>\n' + "\n".join(p) + "\n</svg>\n"
    )
