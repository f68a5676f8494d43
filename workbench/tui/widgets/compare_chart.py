"""The Compare screen's chart: one metric of many runs, each run in its own
colour (the palette cycles), drawn as curves on a shared x axis, or, when each
run logged one value, as one point per run on a real value axis."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workbench.tui.widgets.metric_chart import MetricChart

# Okabe and Ito's colour-blind-safe palette, then grey; run i gets colour i mod 8.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (153, 153, 153),
)


def _finite(value: float | None) -> bool:
    """Whether a value can be drawn (a diverged loss is inf or NaN: left out)."""
    return value is not None and math.isfinite(value)


def colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def swatch(index: int, text: str = "━━") -> str:
    """`text` in run `index`'s colour, as Rich markup (for the legend)."""
    r, g, b = colour(index)
    return f"[rgb({r},{g},{b})]{text}[/]"


@dataclass(frozen=True, slots=True)
class Curve:
    label: str
    xs: list[float]
    ys: list[float | None]
    index: int  # the run's place: its colour


@dataclass(frozen=True, slots=True)
class Value:
    label: str
    value: float | None
    index: int


class CompareChart(MetricChart):
    """`show_curves` for series, `show_values` for one value per run; the
    legend is the screen's (plotext's own would cover the plot with many runs)."""

    def __init__(self, title: str = "", **kwargs: Any) -> None:
        super().__init__(title, **kwargs)
        self.curves: list[Curve] = []
        self.values: list[Value] = []
        self.xlim: tuple[float, float] | None = None
        self.mode = "curves"

    def show_curves(
        self,
        curves: list[Curve],
        title: str | None = None,
        xlim: tuple[float, float] | None = None,
    ) -> None:
        self._set_title(title)
        if self.mode == "curves" and curves == self.curves and xlim == self.xlim:
            return
        self.mode, self.curves, self.values, self.xlim = "curves", curves, [], xlim
        self.replot()

    def show_values(self, values: list[Value], title: str | None = None) -> None:
        self._set_title(title)
        if self.mode == "values" and values == self.values:
            return
        self.mode, self.values, self.curves, self.xlim = "values", values, [], None
        self.replot()

    def _set_title(self, title: str | None) -> None:
        if title is not None and title != self._title:
            self._title = title
            self.border_title = title

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if self.mode == "values":
            self._plot_values()
        else:
            self._plot_curves()
        self.refresh()

    def _plot_curves(self) -> None:
        plt = self.plt
        if self.xlim is not None:
            plt.xlim(*self.xlim)
        for curve in self.curves:
            points = [(x, y) for x, y in zip(curve.xs, curve.ys, strict=True) if _finite(y)]
            if not points:
                continue
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            # A single point drawn in braille is one dot: a disc shows.
            marker = "●" if len(points) == 1 else "braille"
            plt.plot(xs, ys, marker=marker, color=colour(curve.index))

    def _plot_values(self) -> None:
        """One point per run on a value axis padded around the values (not
        from zero: runs a thousandth apart stay apart). A row per run with a
        line up to its point while the runs fit the height; a column per run
        beyond that."""
        plt = self.plt
        present = [v.value for v in self.values if _finite(v.value)]
        if not present:
            return
        low, high = min(present), max(present)
        pad = (high - low) * 0.15 or abs(high) * 0.05 or 1.0
        low, high = low - pad, high + pad
        count = len(self.values)
        rows = max(1, self.size.height - 4)  # less the axis, its labels and the border
        if count <= rows:
            width = max(10, self.size.width)
            steps = [low + (high - low) * k / (2 * width) for k in range(2 * width + 1)]
            for i, item in enumerate(self.values):
                y = count - 1 - i  # the first run at the top
                if not _finite(item.value):
                    continue
                upto = [x for x in steps if x <= item.value]
                if upto:
                    plt.scatter(upto, [y] * len(upto), marker="─", color=colour(item.index))
                plt.scatter([item.value], [y], marker="●", color=colour(item.index))
            labels = [
                f"{v.label} {f'{v.value:.4g}' if v.value is not None else '—'}"
                for v in self.values
            ]
            plt.yticks(list(range(count)), labels[::-1])
            plt.ylim(-0.5, count - 0.5)
            plt.xlim(low, high)
            return
        for i, item in enumerate(self.values):
            if _finite(item.value):
                plt.scatter([i], [item.value], marker="●", color=colour(item.index))
        plt.xticks(list(range(count)), [v.label for v in self.values])
        plt.xlim(-0.5, count - 0.5)
        plt.ylim(low, high)
