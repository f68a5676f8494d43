"""A line chart of downsampled metric series, drawn with plotext."""

from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot


class MetricChart(PlotextPlot):
    """Plots one or more series; each is a list of (x, y) already downsampled,
    so a redraw costs the same for a thousand points or a million."""

    DEFAULT_CSS = """
    MetricChart { height: 1fr; min-height: 6; }
    """

    def __init__(self, title: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._title = title
        self._lines: dict[str, tuple[list, list]] = {}

    def plot(self, lines: dict[str, tuple[list, list]], title: str | None = None) -> None:
        if title is not None:
            self._title = title
        if lines == self._lines:
            return
        self._lines = lines
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self._title)
        for label, (xs, ys) in self._lines.items():
            points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
            if points:
                plt.plot(
                    [p[0] for p in points], [p[1] for p in points], label=label, marker="braille"
                )
        self.refresh()

    def on_resize(self) -> None:
        self.replot()
