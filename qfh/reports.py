"""Evaluation reports as HTML for the console: an SVG equity curve and two tables.

Everything is drawn on the server as inline SVG and plain tables, so the pages render offline with
no chart library or CDN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, MARGIN = 640, 220, 36


def equity_svg(points: Sequence[Sequence[float]]) -> SafeString:
    """Cumulative net P&L in pips against time, with the zero line and the range labelled."""
    if len(points) < 2:
        return format_html("<p>{}</p>", "Too few trades for an equity curve.")
    times = [float(point[0]) for point in points]
    values = [float(point[1]) for point in points]
    low, high = min([*values, 0.0]), max([*values, 0.0])
    span_t = (times[-1] - times[0]) or 1.0
    span_v = (high - low) or 1.0

    def x(t: float) -> float:
        return MARGIN + (t - times[0]) / span_t * (WIDTH - 2 * MARGIN)

    def y(v: float) -> float:
        return HEIGHT - MARGIN - (v - low) / span_v * (HEIGHT - 2 * MARGIN)

    polyline = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times, values, strict=True))
    first = datetime.fromtimestamp(times[0], tz=UTC).strftime("%Y-%m-%d %H:%M")
    last = datetime.fromtimestamp(times[-1], tz=UTC).strftime("%Y-%m-%d %H:%M")
    colour = "#2a7d2a" if values[-1] >= 0 else "#b03030"
    # Every interpolated value is a number formatted here, so the markup cannot be injected.
    return mark_safe(
        f'<svg class="equity-curve" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="equity curve in pips">'
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fff" stroke="#ccc"/>'
        f'<line x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
        f'stroke="#999" stroke-dasharray="4 3"/>'
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{polyline}"/>'
        f'<text x="4" y="{MARGIN - 8}" font-size="11">{high:+.1f} pips</text>'
        f'<text x="4" y="{HEIGHT - 8}" font-size="11">{low:+.1f} pips</text>'
        f'<text x="{MARGIN}" y="{HEIGHT - 20}" font-size="11">{first}Z</text>'
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - 20}" font-size="11" text-anchor="end">'
        f"{last}Z</text></svg>"
    )


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def confidence_table(rows: Sequence[Mapping[str, Any]]) -> SafeString:
    if not rows:
        return format_html("<p>{}</p>", "No trades.")
    body = format_html_join(
        "",
        "<tr><td>{} to {}</td><td>{}</td><td>{} [{}, {}]</td><td>{}</td></tr>",
        (
            (
                f"{row['low']:.3f}",
                f"{row['high']:.3f}",
                row["trades"],
                _percent(row["hit_rate"]),
                _percent(row["hit_low"]),
                _percent(row["hit_high"]),
                f"{row['pnl_pips']:+.1f}",
            )
            for row in rows
        ),
    )
    return format_html(
        '<table class="confidence-buckets"><thead><tr><th>confidence</th><th>trades</th>'
        "<th>hit rate after costs [95%]</th><th>net pips</th></tr></thead><tbody>{}</tbody>"
        "</table>",
        body,
    )


def baseline_table(
    rule: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]]
) -> SafeString:
    """The rule next to random (same signal rate), momentum and always-long, same costs."""
    rows = [("this rule", rule), *baselines.items()]
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{} [{}, {}]</td><td>{}</td><td>{}</td></tr>",
        (
            (
                name,
                figures.get("trades", 0),
                _percent(figures.get("hit_rate")),
                _percent(figures.get("hit_low")),
                _percent(figures.get("hit_high")),
                f"{float(figures.get('pnl_pips', 0.0)):+.1f}",
                "n/a"
                if figures.get("profit_factor") is None
                else f"{float(figures['profit_factor']):.2f}",
            )
            for name, figures in rows
        ),
    )
    return format_html(
        '<table class="baselines"><thead><tr><th>signals</th><th>trades</th>'
        "<th>hit rate after costs [95%]</th><th>net pips</th><th>profit factor</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        body,
    )
