"""Charts drawn on the server as inline SVG (no script, no inline style: the page's CSP holds),
e.g. a partner's score over the last periods."""

from __future__ import annotations

from markupsafe import Markup, escape


def trend_svg(
    points: list[tuple[str, float]],
    *,
    low: float = 0,
    high: float = 100,
    width: int = 360,
    height: int = 120,
    title: str = "Score by period",
) -> Markup:
    """A line through `(label, value)` points, oldest first, on a `low`..`high` scale, each point
    with its label and value (also as text for screen readers)."""
    if not points:
        return Markup("")
    pad_x, pad_top, pad_bottom = 28, 12, 22
    span = (high - low) or 1
    step = (width - 2 * pad_x) / max(len(points) - 1, 1)

    def xy(i: int, value: float) -> tuple[float, float]:
        clamped = min(max(value, low), high)
        y = pad_top + (height - pad_top - pad_bottom) * (1 - (clamped - low) / span)
        return round(pad_x + i * step, 1), round(y, 1)

    coords = [xy(i, v) for i, (_, v) in enumerate(points)]
    summary = ", ".join(f"{label}: {value:g}" for label, value in points)
    parts = [
        f'<svg class="trend" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}: {escape(summary)}</title>',
        f'<line x1="{pad_x}" y1="{height - pad_bottom}" x2="{width - pad_x}" y2="{height - pad_bottom}" '
        'stroke="#d9dde5"/>',
        '<polyline fill="none" stroke="#1f5fbf" stroke-width="2" points="'
        + " ".join(f"{x},{y}" for x, y in coords)
        + '"/>',
    ]
    for (label, value), (x, y) in zip(points, coords, strict=True):
        parts.append(
            f'<circle cx="{x}" cy="{y}" r="3.5" fill="#1f5fbf"><title>{escape(label)}: {value:g}</title></circle>'
        )
        parts.append(f'<text x="{x}" y="{y - 7}" font-size="10" text-anchor="middle">{value:g}</text>')
        parts.append(f'<text x="{x}" y="{height - 6}" font-size="10" text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
