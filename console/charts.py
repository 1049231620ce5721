"""Server-side SVG charts for the console: a pair's candles with signals and trades, and its QFH
metrics (pure: no ORM).

Drawn as inline SVG like the evaluation reports (``qfh/reports.py``), so the pages render offline
with no chart library or CDN. Every interpolated value is a number formatted here or text passed
through ``escape``, so nothing from the database can inject markup.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from septrader.formatting import price, signed_money, significant

WIDTH = 960
PRICE_HEIGHT = 380
METRICS_HEIGHT = 200
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 28
UP, DOWN = "#2a7d2a", "#b03030"
METRIC_COLOURS = {"coherence": "#1f5fa8", "stability": "#d08a00", "entropy": "#7a3fa0"}


class CandleLike(Protocol):
    # Read-only properties, so NamedTuples and frozen dataclasses match.
    @property
    def time(self) -> datetime: ...
    @property
    def open(self) -> Decimal: ...
    @property
    def high(self) -> Decimal: ...
    @property
    def low(self) -> Decimal: ...
    @property
    def close(self) -> Decimal: ...


class SignalLike(Protocol):
    @property
    def time(self) -> datetime: ...
    @property
    def direction(self) -> str: ...
    @property
    def confidence(self) -> float: ...
    @property
    def status(self) -> str: ...


class TradeLike(Protocol):
    @property
    def broker_trade_id(self) -> str: ...
    @property
    def units(self) -> Decimal: ...
    @property
    def opened_at(self) -> datetime: ...
    @property
    def open_price(self) -> Decimal: ...
    @property
    def closed_at(self) -> datetime | None: ...
    @property
    def close_price(self) -> Decimal | None: ...
    @property
    def realized_pl(self) -> Decimal: ...


class MetricsLike(Protocol):
    @property
    def time(self) -> datetime: ...
    @property
    def coherence(self) -> float: ...
    @property
    def stability(self) -> float: ...
    @property
    def entropy(self) -> float: ...


@dataclass(frozen=True)
class _Scale:
    """Maps times and values onto the plot area of one chart."""

    start: float
    end: float
    low: float
    high: float
    width: int
    height: int

    def x(self, moment: datetime) -> float:
        span = (self.end - self.start) or 1.0
        return LEFT + (moment.timestamp() - self.start) / span * (self.width - LEFT - RIGHT)

    def y(self, value: float) -> float:
        span = (self.high - self.low) or 1.0
        return TOP + (self.high - value) / span * (self.height - TOP - BOTTOM)


def _label(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") + "Z"


def _frame(width: int, height: int, label: str, css_class: str) -> str:
    return (
        f'<svg class="{css_class}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        'xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff" stroke="#ccc"/>'
    )


def _time_axis(
    scale: _Scale, start: datetime, end: datetime, height: int, *, ticks: int = 0
) -> str:
    """Start and end labelled in full, and ``ticks`` evenly spaced times between them."""
    parts = [
        f'<text x="{LEFT}" y="{height - 8}" font-size="11">{_label(start)}</text>'
        f'<text x="{scale.width - RIGHT}" y="{height - 8}" font-size="11" text-anchor="end">'
        f"{_label(end)}</text>"
    ]
    for step in range(1, ticks + 1):
        moment = start + (end - start) * step / (ticks + 1)
        x = scale.x(moment)
        text = moment.strftime("%H:%M" if end - start <= timedelta(days=2) else "%m-%d %H:%M")
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{height - BOTTOM}" stroke="#eee"/>'
            f'<text x="{x:.1f}" y="{height - 8}" font-size="11" text-anchor="middle">{text}</text>'
        )
    return "".join(parts)


def _grid(scale: _Scale, values: Sequence[float], digits: int) -> str:
    parts = []
    for value in values:
        y = scale.y(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{scale.width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#eee"/><text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" '
            f'text-anchor="end">{value:.{digits}f}</text>'
        )
    return "".join(parts)


def candle_chart_svg(
    candles: Sequence[CandleLike],
    *,
    start: datetime,
    end: datetime,
    signals: Sequence[SignalLike] = (),
    trades: Sequence[TradeLike] = (),
    digits: int = 5,
    width: int = WIDTH,
    height: int = PRICE_HEIGHT,
) -> SafeString:
    """Candles (one ``g.candle`` each: wick and body), BUY/SELL signals as triangles below/above
    their candle, and trades as an entry circle joined to an exit square by a dashed line."""
    if not candles:
        return mark_safe(
            _frame(width, height, "no candles", "price-chart empty")
            + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="13">'
            "No candles in this window.</text></svg>"
        )
    lows = [float(bar.low) for bar in candles]
    highs = [float(bar.high) for bar in candles]
    prices = [
        float(price)
        for trade in trades
        for price in (trade.open_price, trade.close_price)
        if price is not None
    ]
    low, high = min(lows + prices), max(highs + prices)
    pad = (high - low) * 0.08 or 10.0**-digits * 10
    scale = _Scale(start.timestamp(), end.timestamp(), low - pad, high + pad, width, height)
    slot = (width - LEFT - RIGHT) / max(1.0, (end - start).total_seconds()) * _period(candles)
    parts = [_frame(width, height, f"{len(candles)} candles", "price-chart")]
    parts.append(_grid(scale, [low + (high - low) * step / 4 for step in range(5)], digits))
    parts.append(_time_axis(scale, start, end, height, ticks=3))
    parts.extend(_candle_marks(candles, scale, slot, digits))
    parts.extend(_signal_marks(signals, candles, scale, slot))
    parts.extend(_trade_marks(trades, scale, digits))
    parts.append("</svg>")
    # Every piece above is a formatted number or escaped text.
    return mark_safe("".join(parts))


def _candle_marks(
    candles: Sequence[CandleLike], scale: _Scale, slot: float, digits: int
) -> list[str]:
    """One ``g.candle`` per candle: its wick and its body, ``slot`` wide less a gap."""
    body = max(1.0, slot * 0.7)
    parts = []
    for bar in candles:
        centre = scale.x(bar.time) + slot / 2
        rising = bar.close >= bar.open
        colour = UP if rising else DOWN
        top = scale.y(float(max(bar.open, bar.close)))
        bottom = scale.y(float(min(bar.open, bar.close)))
        parts.append(
            f'<g class="candle {"up" if rising else "down"}">'
            f"<title>{_label(bar.time)} O {price(bar.open, digits)} H {price(bar.high, digits)} "
            f"L {price(bar.low, digits)} C {price(bar.close, digits)}</title>"
            f'<line x1="{centre:.1f}" x2="{centre:.1f}" y1="{scale.y(float(bar.high)):.1f}" '
            f'y2="{scale.y(float(bar.low)):.1f}" stroke="{colour}"/>'
            f'<rect x="{centre - body / 2:.1f}" y="{top:.1f}" width="{body:.1f}" '
            f'height="{max(1.0, bottom - top):.1f}" fill="{colour}"/></g>'
        )
    return parts


def _signal_marks(
    signals: Sequence[SignalLike], candles: Sequence[CandleLike], scale: _Scale, slot: float
) -> list[str]:
    """A triangle per signal: a BUY below its candle pointing up, a SELL above pointing down."""
    by_time = {bar.time: bar for bar in candles}
    parts = []
    for signal in signals:
        bar = by_time.get(signal.time) or min(
            candles, key=lambda candle: abs((candle.time - signal.time).total_seconds())
        )
        centre = scale.x(signal.time) + slot / 2
        buy = signal.direction == "BUY"
        size = 6.0
        if buy:
            tip = scale.y(float(bar.low)) + 4
            points = f"{centre:.1f},{tip:.1f} {centre - size:.1f},{tip + 2 * size:.1f} "
            points += f"{centre + size:.1f},{tip + 2 * size:.1f}"
        else:
            tip = scale.y(float(bar.high)) - 4
            points = f"{centre:.1f},{tip:.1f} {centre - size:.1f},{tip - 2 * size:.1f} "
            points += f"{centre + size:.1f},{tip - 2 * size:.1f}"
        parts.append(
            f'<polygon class="signal {"buy" if buy else "sell"}" points="{points}" '
            f'fill="{UP if buy else DOWN}" stroke="#000" stroke-width="0.5">'
            f"<title>{escape(signal.direction)} signal {_label(signal.time)} confidence "
            f"{significant(signal.confidence)} ({escape(signal.status)})</title></polygon>"
        )
    return parts


def _trade_marks(trades: Sequence[TradeLike], scale: _Scale, digits: int) -> list[str]:
    """An entry circle per trade and, once it is closed, a dashed line to an exit square."""
    parts = []
    for trade in trades:
        x_open, y_open = scale.x(trade.opened_at), scale.y(float(trade.open_price))
        side = "long" if trade.units > 0 else "short"
        parts.append(
            f'<circle class="trade-entry {side}" cx="{x_open:.1f}" cy="{y_open:.1f}" r="5" '
            f'fill="none" stroke="#1f5fa8" stroke-width="2"><title>trade '
            f"{escape(trade.broker_trade_id)} {side} {trade.units} opened {_label(trade.opened_at)}"
            f" at {price(trade.open_price, digits)}</title></circle>"
        )
        if trade.closed_at is not None and trade.close_price is not None:
            x_close, y_close = scale.x(trade.closed_at), scale.y(float(trade.close_price))
            parts.append(
                f'<line class="trade-path" x1="{x_open:.1f}" y1="{y_open:.1f}" '
                f'x2="{x_close:.1f}" y2="{y_close:.1f}" stroke="#1f5fa8" '
                'stroke-dasharray="4 3"/>'
                f'<rect class="trade-exit" x="{x_close - 4:.1f}" y="{y_close - 4:.1f}" '
                'width="8" height="8" fill="#1f5fa8"><title>trade '
                f"{escape(trade.broker_trade_id)} closed {_label(trade.closed_at)} at "
                f"{price(trade.close_price, digits)}, P&amp;L {signed_money(trade.realized_pl)}"
                "</title></rect>"
            )
    return parts


def _period(candles: Sequence[CandleLike]) -> float:
    """Seconds between candles: the smallest gap, so gaps (weekends) do not widen the bodies."""
    gaps = [
        (later.time - earlier.time).total_seconds()
        for earlier, later in itertools.pairwise(candles)
    ]
    return min(gaps, default=60.0) or 60.0


def metrics_chart_svg(
    points: Sequence[MetricsLike],
    *,
    start: datetime,
    end: datetime,
    width: int = WIDTH,
    height: int = METRICS_HEIGHT,
) -> SafeString:
    """Coherence, stability (1 - rupture ratio) and entropy as lines on a 0..1 scale."""
    if not points:
        return mark_safe(
            _frame(width, height, "no QFH metrics", "metrics-chart empty")
            + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="13">'
            "No QFH metrics for this timeframe in this window.</text></svg>"
        )
    scale = _Scale(start.timestamp(), end.timestamp(), 0.0, 1.0, width, height)
    parts = [_frame(width, height, "QFH metrics", "metrics-chart")]
    parts.append(_grid(scale, [0.0, 0.25, 0.5, 0.75, 1.0], 2))
    for offset, (name, colour) in enumerate(METRIC_COLOURS.items()):
        values: list[Any] = [getattr(point, name) for point in points]
        line = " ".join(
            f"{scale.x(point.time):.1f},{scale.y(min(1.0, max(0.0, float(value)))):.1f}"
            for point, value in zip(points, values, strict=True)
        )
        parts.append(
            f'<polyline class="metric {name}" fill="none" stroke="{colour}" stroke-width="1.2" '
            f'points="{line}"/>'
            # The legend sits on the time axis line, between the start and end labels.
            f'<text x="{width / 2 - 165 + offset * 120:.0f}" y="{height - 8}" font-size="11" '
            f'fill="{colour}">{name} {significant(values[-1])}</text>'
        )
    parts.append(_time_axis(scale, start, end, height))
    parts.append("</svg>")
    return mark_safe("".join(parts))


PARITY_HEIGHT = 260
PARITY_COLOURS = {"replay": "#1f5fa8", "live": "#2a7d2a"}


def parity_equity_svg(points: Sequence[dict[str, Any]]) -> SafeString:
    """A parity report's replayed and live P&L, cumulative, as two step lines against time
    (``ParityReport.equity``: {"time", "replay", "live"}); the page's fallback without JavaScript
    and the picture the interactive chart replaces."""
    if not points:
        return mark_safe('<p class="muted">No trade on either side: nothing to draw.</p>')
    times = [datetime.fromisoformat(str(point["time"])) for point in points]
    series = {
        name: [float(Decimal(str(point[name]))) for point in points] for name in PARITY_COLOURS
    }
    low = min([0.0, *series["replay"], *series["live"]])
    high = max([0.0, *series["replay"], *series["live"]])
    start = times[0] - timedelta(minutes=1)
    span = (times[-1] - start).total_seconds() or 60.0
    inner_width, inner_height = WIDTH - LEFT - RIGHT, PARITY_HEIGHT - TOP - BOTTOM
    padding = ((high - low) or 1.0) * 0.05

    def x(moment: datetime) -> float:
        return LEFT + (moment - start).total_seconds() / span * inner_width

    def y(value: float) -> float:
        top, bottom = high + padding, low - padding
        return TOP + (top - value) / (top - bottom) * inner_height

    parts = [_frame(WIDTH, PARITY_HEIGHT, "replayed and live P&L", "parity-equity")]
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0.0):.1f}" y2="{y(0.0):.1f}" '
        'stroke="#999" stroke-dasharray="4 3"/>'
    )
    for name, colour in PARITY_COLOURS.items():
        # Steps: each total holds until the next close changes it.
        corners = [(x(start), y(0.0))]
        for moment, value in zip(times, series[name], strict=True):
            corners += [(x(moment), corners[-1][1]), (x(moment), y(value))]
        line = " ".join(f"{px:.1f},{py:.1f}" for px, py in corners)
        parts.append(
            f'<polyline class="parity-{name}" fill="none" stroke="{colour}" stroke-width="1.5" '
            f'points="{line}"/>'
        )
    parts.append(f'<text x="4" y="{y(high) + 4:.1f}" font-size="11">{high:+.2f}</text>')
    parts.append(f'<text x="4" y="{y(low) + 4:.1f}" font-size="11">{low:+.2f}</text>')
    parts.append(
        f'<text x="{LEFT}" y="{PARITY_HEIGHT - 8}" font-size="11">{escape(_label(start))}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{PARITY_HEIGHT - 8}" font-size="11" text-anchor="end">'
        f"{escape(_label(times[-1]))}</text>"
    )
    for row, (name, colour) in enumerate(PARITY_COLOURS.items()):
        parts.append(
            f'<text x="{LEFT + 8}" y="{TOP + 14 + 14 * row}" font-size="11" fill="{colour}">'
            f"{name} {series[name][-1]:+.2f}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
