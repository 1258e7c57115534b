"""Charts as inline SVG, drawn on the server: no script, no library at run time, and they print.
Hand-written because the console needs three plain shapes (lines, stacked bars, bars) and no
charting library renders SVG on the server without pulling in a plotting stack."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 720, 220, 56, 36, 12
COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")


def _frame(buckets: Sequence[str], top: float, label: str, body: list[str], legend: Sequence[str]) -> str:
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    out = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + 18 * ((len(legend) + 3) // 4)}" role="img" '
           f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">']  # fmt: skip
    for i in range(5):
        y = PAD_TOP + plot_h * i / 4
        value = top * (4 - i) / 4
        out.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(
            f'<text x="{PAD_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(_tick(value))}</text>'
        )
    step = max(1, len(buckets) // 8)
    for i, bucket in enumerate(buckets):
        if i % step == 0:
            x = _x(i, len(buckets))
            y = HEIGHT - PAD_BOTTOM + 16
            out.append(f'<text x="{x:.1f}" y="{y}" text-anchor="middle">{escape(bucket)}</text>')
    out += body
    for i, name in enumerate(legend):
        x, y = 8 + (i % 4) * 180, HEIGHT + 4 + 18 * (i // 4)
        colour = COLOURS[i % len(COLOURS)]
        out.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14}" y="{y + 9}">{escape(name[:28])}</text>')
    out.append("</svg>")
    return "".join(out)


def _tick(value: float) -> str:
    if value >= 10:
        return f"{value:,.0f}"
    if value == 0 or value >= 0.01:
        return f"{value:.2g}"
    return f"{value:.7f}".rstrip("0")  # small amounts (a cost in USD) without an exponent


def _x(i: int, n: int) -> float:
    return PAD_LEFT + (WIDTH - PAD_LEFT - 10) * (i + 0.5) / max(n, 1)


def _y(value: float, top: float) -> float:
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    return PAD_TOP + plot_h * (1 - (value / top if top else 0))


def lines(buckets: Sequence[str], series: dict[str, dict[str, float]], label: str) -> str:
    """One line per series over the buckets (a missing bucket leaves a gap)."""
    top = max([*(v for s in series.values() for v in s.values()), 0]) or 1.0
    body = []
    for i, values in enumerate(series.values()):
        colour = COLOURS[i % len(COLOURS)]
        points = [(_x(j, len(buckets)), _y(values[b], top)) for j, b in enumerate(buckets) if b in values]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
    return _frame(buckets, top, label, body, list(series))


def stacked(buckets: Sequence[str], series: dict[str, dict[str, float]], label: str) -> str:
    """Bars per bucket, one segment per series, stacked."""
    totals = [sum(s.get(b, 0) for s in series.values()) for b in buckets]
    top = max([*totals, 0]) or 1.0
    width = max(2.0, (WIDTH - PAD_LEFT - 10) / max(len(buckets), 1) * 0.7)
    body = []
    for j, bucket in enumerate(buckets):
        base = 0.0
        for i, values in enumerate(series.values()):
            value = values.get(bucket, 0)
            if value:
                y0, y1 = _y(base, top), _y(base + value, top)
                x = _x(j, len(buckets)) - width / 2
                colour = COLOURS[i % len(COLOURS)]
                size = f'width="{width:.1f}" height="{y0 - y1:.1f}"'
                body.append(f'<rect x="{x:.1f}" y="{y1:.1f}" {size} fill="{colour}"/>')
                base += value
    return _frame(buckets, top, label, body, list(series))
