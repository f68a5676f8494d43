"""A small SVG chart builder for the model report: line charts, horizontal bar
charts, scatter plots and histogram sparklines, as self-contained `<svg>`
text (no scripts, no fonts fetched, no external references), so the report
stays one file that any browser shows offline.

Honest axes: the scales are linear from the data's range (or the range given,
such as 0 to 1 for rates), ticks at round numbers, and every chart carries its
axis labels and a legend; nothing is smoothed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

# Series colours (colour-blind friendly enough, and distinct in greyscale order).
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
AXIS = "#444444"
GRID = "#e6e6e6"
MUTED = "#9a9a9a"
FONT = "font-family:system-ui,sans-serif;font-size:11px"


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    out = []
    value = first
    while value <= high + step * 1e-9:
        out.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return out


def _label(value: float) -> str:
    return f"{value:.3g}"


def _range(values: Sequence[float], pad: float = 0.05) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if high == low:
        return low - 1.0, high + 1.0
    span = high - low
    return low - span * pad, high + span * pad


class Plot:
    """A plotting area of `width` x `height` pixels with margins for the axes,
    mapping data coordinates onto it."""

    def __init__(
        self,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        *,
        width: int = 520,
        height: int = 320,
        left: int = 56,
        right: int = 16,
        top: int = 14,
        bottom: int = 44,
    ) -> None:
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = left, right, top, bottom
        self.parts: list[str] = []

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (value - self.x0) / span * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return (
            self.height
            - self.bottom
            - (value - self.y0) / span * (self.height - self.top - self.bottom)
        )

    def axes(self, x_label: str, y_label: str, *, x_ticks: bool = True) -> None:
        bottom, left = self.height - self.bottom, self.left
        right, top = self.width - self.right, self.top
        for value in _ticks(self.y0, self.y1):
            y = self.y(value)
            self.parts.append(
                f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{GRID}"/>'
                f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end" fill="{AXIS}">'
                f"{_label(value)}</text>"
            )
        if x_ticks:
            for value in _ticks(self.x0, self.x1):
                x = self.x(value)
                self.parts.append(
                    f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" '
                    f'stroke="{AXIS}"/><text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" '
                    f'fill="{AXIS}">{_label(value)}</text>'
                )
        self.parts.append(
            f'<polyline points="{left},{top} {left},{bottom} {right},{bottom}" fill="none" '
            f'stroke="{AXIS}"/>'
            f'<text x="{(left + right) / 2:.1f}" y="{self.height - 6}" text-anchor="middle" '
            f'fill="{AXIS}">{escape(x_label)}</text>'
            f'<text transform="translate(13,{(top + bottom) / 2:.1f}) rotate(-90)" '
            f'text-anchor="middle" fill="{AXIS}">{escape(y_label)}</text>'
        )

    def line(
        self, xs: Sequence[float], ys: Sequence[float], stroke: str, *, dash: bool = False
    ) -> None:
        points = " ".join(
            f"{self.x(x):.1f},{self.y(y):.1f}"
            for x, y in zip(xs, ys, strict=True)
            if math.isfinite(x) and math.isfinite(y)
        )
        style = ' stroke-dasharray="4 4"' if dash else ""
        width = 1 if dash else 2.5
        self.parts.append(
            f'<polyline points="{points}" fill="none" stroke="{stroke}" '
            f'stroke-width="{width}"{style}/>'
        )

    def dots(
        self, xs: Sequence[float], ys: Sequence[float], fill: str, radius: float = 2.2
    ) -> None:
        self.parts.extend(
            f'<circle cx="{self.x(x):.1f}" cy="{self.y(y):.1f}" r="{radius}" fill="{fill}" '
            'fill-opacity="0.55"/>'
            for x, y in zip(xs, ys, strict=True)
            if math.isfinite(x) and math.isfinite(y)
        )

    def legend(self, labels: Sequence[str], corner: str = "top-right") -> None:
        """Swatches and labels in a corner of the plot that the data leaves free
        (ROC curves hug the top left, so their legend goes bottom right)."""
        labels = labels[:8]
        right = corner.endswith("right")
        x = self.width - self.right - 8 if right else self.left + 24
        first = (
            self.top + 12
            if corner.startswith("top")
            else self.height - self.bottom - 8 - 15 * (len(labels) - 1)
        )
        for i, label in enumerate(labels):
            y = first + i * 15
            swatch = x - 12 if right else x - 16
            text_x, anchor = (x - 16, "end") if right else (x, "start")
            self.parts.append(
                f'<rect x="{swatch}" y="{y - 8}" width="10" height="10" fill="{colour(i)}"/>'
                f'<text x="{text_x}" y="{y + 1}" text-anchor="{anchor}" fill="{AXIS}">'
                f"{escape(label)}</text>"
            )

    def svg(self, kind: str, title: str) -> str:
        return (
            f'<svg class="chart" data-kind="{escape(kind)}" '
            f'width="{self.width}" height="{self.height}" viewBox="0 0 {self.width} '
            f'{self.height}" role="img" aria-label="{escape(title)}" style="{FONT}">'
            f"<title>{escape(title)}</title>{''.join(self.parts)}</svg>"
        )


def line_chart(
    kind: str,
    title: str,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    x_label: str,
    y_label: str,
    *,
    unit_square: bool = False,
    diagonal: bool = False,
    legend: str = "top-right",
) -> str:
    """Lines of (label, xs, ys); `unit_square` fixes both axes to 0..1 (rates),
    `diagonal` draws the chance / perfect-calibration line."""
    if unit_square:
        plot = Plot((0.0, 1.0), (0.0, 1.02))
    else:
        plot = Plot(
            _range([x for _, xs, _ in series for x in xs]),
            _range([y for _, _, ys in series for y in ys]),
        )
    plot.axes(x_label, y_label)
    if diagonal:
        plot.line([0.0, 1.0], [0.0, 1.0], MUTED, dash=True)
    for i, (_, xs, ys) in enumerate(series):
        plot.line(xs, ys, colour(i))
        if len(xs) <= 20:  # few points (calibration bins): mark each
            plot.dots(xs, ys, colour(i), radius=3)
    plot.legend([label for label, _, _ in series], legend)
    return plot.svg(kind, title)


def scatter_chart(
    kind: str,
    title: str,
    xs: Sequence[float],
    ys: Sequence[float],
    x_label: str,
    y_label: str,
    *,
    zero_line: bool = True,
) -> str:
    plot = Plot(_range(xs), _range([*ys, 0.0] if zero_line else ys))
    plot.axes(x_label, y_label)
    if zero_line:
        plot.line([plot.x0, plot.x1], [0.0, 0.0], MUTED, dash=True)
    plot.dots(xs, ys, colour(0))
    return plot.svg(kind, title)


def bar_chart(
    kind: str,
    title: str,
    rows: Sequence[tuple[str, float | None, float | None]],
    value_label: str,
    *,
    second: Sequence[float | None] | None = None,
    legend: Sequence[str] = (),
) -> str:
    """Horizontal bars, one row per (label, value, error); `second` adds a thinner
    bar per row in the second colour (e.g. gain next to permutation importance)."""
    values = [v for _, v, _ in rows if v is not None] + [v for v in (second or []) if v is not None]
    errors = [(v or 0) + (e or 0) for _, v, e in rows]
    low = min([0.0, *values])
    high = max([0.0, *values, *errors]) or 1.0
    row_height = 22
    margin = 30 if legend else 14  # the legend sits above the bars
    height = margin + 44 + row_height * max(len(rows), 1)
    longest = max((len(label) for label, _, _ in rows), default=4)
    plot = Plot(
        (low, high * 1.05),
        (0.0, float(max(len(rows), 1))),
        height=height,
        top=margin,
        left=min(12 + 7 * longest, 220),
    )
    # Bars are rows, not a y scale: only x ticks and a bare left axis.
    for tick in _ticks(plot.x0, plot.x1):
        x = plot.x(tick)
        plot.parts.append(
            f'<line x1="{x:.1f}" y1="{plot.top}" x2="{x:.1f}" y2="{height - plot.bottom}" '
            f'stroke="{GRID}"/><text x="{x:.1f}" y="{height - plot.bottom + 16}" '
            f'text-anchor="middle" fill="{AXIS}">{_label(tick)}</text>'
        )
    zero = plot.x(0.0)
    for i, (label, value, error) in enumerate(rows):
        row_top = plot.top + i * row_height + 3
        plot.parts.append(
            f'<text x="{plot.left - 6}" y="{row_top + 12}" text-anchor="end" fill="{AXIS}">'
            f"{escape(label)}</text>"
        )
        thick = 9 if second is not None else 14
        if value is not None:
            x, end = sorted((zero, plot.x(value)))
            plot.parts.append(
                f'<rect x="{x:.1f}" y="{row_top}" width="{max(end - x, 1):.1f}" height="{thick}" '
                f'fill="{colour(0)}"/>'
            )
            if error:
                a, b = plot.x(value - error), plot.x(value + error)
                mid = row_top + thick / 2
                plot.parts.append(
                    f'<line x1="{a:.1f}" y1="{mid}" x2="{b:.1f}" y2="{mid}" stroke="{AXIS}"/>'
                )
        if second is not None and i < len(second) and second[i] is not None:
            x, end = sorted((zero, plot.x(second[i] or 0.0)))
            plot.parts.append(
                f'<rect x="{x:.1f}" y="{row_top + thick + 1}" width="{max(end - x, 1):.1f}" '
                f'height="6" fill="{colour(3)}"/>'
            )
    bottom = height - plot.bottom
    plot.parts.append(
        f'<line x1="{zero:.1f}" y1="{plot.top}" x2="{zero:.1f}" y2="{bottom}" stroke="{AXIS}"/>'
        f'<text x="{(plot.left + plot.width - plot.right) / 2:.1f}" y="{height - 6}" '
        f'text-anchor="middle" fill="{AXIS}">{escape(value_label)}</text>'
    )
    for i, name in enumerate(legend):
        x = plot.width - plot.right - 8 - 130 * i
        plot.parts.append(
            f'<rect x="{x - 12}" y="6" width="10" height="10" '
            f'fill="{colour(0 if i == 0 else 3)}"/><text x="{x - 16}" y="15" '
            f'text-anchor="end" fill="{AXIS}">{escape(name)}</text>'
        )
    return plot.svg(kind, title)


def sparkline(
    counts: Sequence[int], edges: Sequence[float], *, width: int = 120, height: int = 26
) -> str:
    """A histogram: each bin as wide as its range and as tall as its density
    (count per unit), so equal-frequency bins still show the distribution's shape."""
    if not counts or len(edges) != len(counts) + 1 or edges[-1] <= edges[0]:
        return ""
    span = edges[-1] - edges[0]
    widths = [max(b - a, span * 1e-3) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    density = [c / w for c, w in zip(counts, widths, strict=True)]
    top = max(density) or 1.0
    bars = "".join(
        f'<rect x="{(a - edges[0]) / span * width:.1f}" y="{height - d / top * height:.1f}" '
        f'width="{max(w / span * width - 0.5, 0.8):.1f}" height="{d / top * height:.1f}" '
        f'fill="{colour(0)}"/>'
        for a, w, d in zip(edges[:-1], widths, density, strict=True)
    )
    return (
        f'<svg class="spark" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">{bars}</svg>'
    )
