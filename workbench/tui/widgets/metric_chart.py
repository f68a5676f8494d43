"""A line chart of downsampled metric series, drawn with plotext."""

from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot


class MetricChart(PlotextPlot):
    """Plots one or more series; each is a list of (x, y) already downsampled,
    so a redraw costs the same for a thousand points or a million."""

    # The title is the border's, so it shows however small the chart gets
    # (plotext drops its own title first when short of rows).
    DEFAULT_CSS = """
    MetricChart { height: 1fr; min-height: 6; border-top: solid $primary-background; }
    """

    def __init__(self, title: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._title = title
        self._lines: dict[str, tuple[list, list]] = {}
        self._ylim: tuple[float, float] | None = None

    def plot(
        self,
        lines: dict[str, tuple[list, list]],
        title: str | None = None,
        ylim: tuple[float, float] | None = None,
    ) -> None:
        """`ylim` fixes the y scale (CPU 0-100 %), so a flat 6 % is not drawn
        as a full-height curve."""
        if title is not None and title != self._title:
            self._title = title
            self.border_title = title
        if lines == self._lines and ylim == self._ylim:
            return
        self._lines = lines
        self._ylim = ylim
        self.replot()

    def on_mount(self) -> None:
        self.border_title = self._title

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if self._ylim is not None:
            plt.ylim(*self._ylim)
        for label, (xs, ys) in self._lines.items():
            points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
            if points:
                plt.plot(
                    [p[0] for p in points], [p[1] for p in points], label=label, marker="braille"
                )
        self.refresh()

    def on_resize(self) -> None:
        self.replot()
