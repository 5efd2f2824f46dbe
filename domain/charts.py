"""Charts drawn as inline SVG: one trend chart for every place that shows one, the workspace pages
and the emails (the QBR pre-read).

Pure (no I/O): the API draws the pages and the worker the emails, neither may import the other,
and both may import this bottom layer. Two forms of the same drawing: "page" (classed and titled,
no inline style, so the page's CSP holds; the page's stylesheet does the rest) and "email"
(self-contained: mail clients apply no stylesheet)."""

from __future__ import annotations

from typing import Literal

from markupsafe import Markup, escape

Form = Literal["page", "email"]
# (left, right, top, bottom) margins around the plot, and the default size, of each form.
_MARGINS: dict[str, tuple[int, int, int, int]] = {"page": (28, 28, 12, 22), "email": (0, 0, 10, 10)}
_SIZE: dict[str, tuple[int, int]] = {"page": (360, 120), "email": (320, 100)}


def trend_svg(
    points: list[tuple[str, float]],
    *,
    form: Form = "page",
    low: float = 0,
    high: float = 100,
    width: int | None = None,
    height: int | None = None,
    title: str = "Score by period",
) -> Markup:
    """A line through `(label, value)` points, oldest first, on a `low`..`high` scale (values
    outside are drawn at the edge), each point with its label; empty without points."""
    if not points:
        return Markup("")
    w, h = width or _SIZE[form][0], height or _SIZE[form][1]
    left, right, top, bottom = _MARGINS[form]
    span = (high - low) or 1
    step = (w - left - right) / max(len(points) - 1, 1)
    coords = [
        (round(left + i * step, 1), round(top + (h - top - bottom) * (1 - (min(max(v, low), high) - low) / span), 1))
        for i, (_, v) in enumerate(points)
    ]
    line = " ".join(f"{x},{y}" for x, y in coords)
    marks = list(zip(points, coords, strict=True))
    if form == "email":
        return Markup(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w + 40}" height="{h + 5}" role="img" '
            f'aria-label="score trend"><polyline points="{line}" fill="none" stroke="#c28a00" stroke-width="2"/>'
            + "".join(f'<circle cx="{x}" cy="{y}" r="3" fill="#c28a00"/>' for _, (x, y) in marks)
            + "".join(f'<text x="{x}" y="{h}" font-size="9">{escape(label)}</text>' for (label, _), (x, _) in marks)
            + "</svg>"
        )
    summary = ", ".join(f"{label}: {value:g}" for label, value in points)
    parts = [
        f'<svg class="trend" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}: {escape(summary)}</title>',
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="#d9dde5"/>',
        f'<polyline fill="none" stroke="#1f5fbf" stroke-width="2" points="{line}"/>',
    ]
    for (label, value), (x, y) in marks:
        parts.append(
            f'<circle cx="{x}" cy="{y}" r="3.5" fill="#1f5fbf"><title>{escape(label)}: {value:g}</title></circle>'
        )
        parts.append(f'<text x="{x}" y="{y - 7}" font-size="10" text-anchor="middle">{value:g}</text>')
        parts.append(f'<text x="{x}" y="{h - 6}" font-size="10" text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def pair_bars_svg(label: str, current: float, draft: float, *, width: int = 220) -> Markup:
    """Two small horizontal bars, the current policy's value and the draft's, on the larger of the
    two (the what-if report, docs/simulator.md); the draft's bar is highlighted when it differs."""
    top = max(abs(current), abs(draft)) or 1
    bar = width - 70
    rows = []
    for i, (name, value) in enumerate((("current", current), ("draft", draft))):
        y = 4 + i * 16
        length = round(bar * abs(value) / top, 1)
        fill = "#1f5fbf" if name == "current" or value == current else "#c28a00"
        rows.append(
            f'<text x="0" y="{y + 9}" font-size="10">{name}</text>'
            f'<rect x="44" y="{y}" width="{length}" height="11" fill="{fill}"/>'
            f'<text x="{44 + length + 4}" y="{y + 9}" font-size="10">{value:g}</text>'
        )
    return Markup(
        f'<svg class="bars" role="img" viewBox="0 0 {width} 38" width="{width}" height="38" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}: current {current:g}, draft {draft:g}</title>'
        + "".join(rows)
        + "</svg>"
    )
