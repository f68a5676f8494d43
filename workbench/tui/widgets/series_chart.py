"""A metric chart with a view: curves of one metric overlaid (train and
validation), smoothed or not, on a linear or log scale."""

from __future__ import annotations

from typing import Any

from workbench.tui.widgets.metric_chart import MetricChart

Series = tuple[list, list]  # xs, ys (None: no value at that x)


def ema(ys: list, weight: float) -> list:
    """An exponential moving average, debiased at the start as TensorBoard's
    smoothing is, so the first points are not pulled towards zero; None stays None."""
    if not weight:
        return list(ys)
    out: list = []
    last, norm = 0.0, 0.0
    for y in ys:
        if y is None:
            out.append(None)
            continue
        last = weight * last + (1 - weight) * y
        norm = weight * norm + (1 - weight)
        out.append(last / norm)
    return out


class SeriesChart(MetricChart):
    """Plots the curves of `show_series` through its view: `smoothing` (an
    EMA weight, 0 for none) and `log_y`; the lines drawn stay in `_lines`."""

    def __init__(self, title: str = "", **kwargs: Any) -> None:
        super().__init__(title, **kwargs)
        self.keys: tuple[str, ...] = ()
        self.smoothing = 0.0
        self.log_y = False
        self.raw: dict[str, Series] = {}
        self.hidden = 0  # points a log scale cannot draw (zero or negative)

    def show_series(
        self,
        series: dict[str, Series],
        title: str | None = None,
        *,
        smoothing: float | None = None,
        log_y: bool | None = None,
    ) -> None:
        if smoothing is not None:
            self.smoothing = smoothing
        if log_y is not None and log_y != self.log_y:
            self.log_y = log_y
            self._lines = {"": ([], [])}  # the same lines on another scale: draw again
        self.raw = series
        self.keys = tuple(series)
        lines: dict[str, Series] = {}
        self.hidden = 0
        for key, (xs, ys) in series.items():
            ys = ema(ys, self.smoothing)
            if self.log_y:
                kept = [(x, y) for x, y in zip(xs, ys, strict=True) if y is None or y > 0]
                self.hidden += len(xs) - len(kept)
                xs, ys = [p[0] for p in kept], [p[1] for p in kept]
            lines[key] = (list(xs), list(ys))
        self.plot(lines, title=title)

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        drawn = {
            label: [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
            for label, (xs, ys) in self._lines.items()
        }
        drawn = {label: points for label, points in drawn.items() if points}
        if self.log_y and drawn:  # (plotext fails on a log scale with nothing drawn)
            plt.yscale("log")
        for label, points in drawn.items():
            plt.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                # One curve: the chart's title names it, no legend needed.
                label=label if len(drawn) > 1 else None,
                marker="braille",
            )
        self.refresh()
