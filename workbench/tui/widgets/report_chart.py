"""One chart of the model report drawn with plotext: curves (ROC, PR,
calibration), a scatter (residuals) or horizontal bars (importance, residuals by
feature). The points come from `ModelReport`, already bounded there, so a
redraw on resize is cheap."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual_plotext import PlotextPlot


@dataclass(frozen=True)
class ChartData:
    """What to draw: `kind` is "lines", "scatter" or "bars"; lines and scatter
    take `series` of (label, xs, ys), bars take `labels` and `values`."""

    kind: str
    title: str
    x_label: str = ""
    y_label: str = ""
    series: tuple[tuple[str, tuple[float, ...], tuple[float, ...]], ...] = ()
    labels: tuple[str, ...] = ()
    values: tuple[float, ...] = ()
    unit_square: bool = False
    diagonal: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class ReportChart(PlotextPlot):
    DEFAULT_CSS = """
    ReportChart { height: 16; min-height: 10; border-top: solid $primary-background; }
    """

    def __init__(self, data: ChartData, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data = data

    def on_mount(self) -> None:
        self.border_title = self.data.title
        if self.data.kind == "bars":  # a row or two per bar, not a fixed block
            self.styles.height = min(6 + 2 * len(self.data.labels), 30)
        self.replot()

    def on_resize(self) -> None:
        self.replot()

    def replot(self) -> None:
        plt, data = self.plt, self.data
        plt.clear_data()
        plt.clear_figure()
        if data.x_label:
            plt.xlabel(data.x_label)
        if data.y_label:
            plt.ylabel(data.y_label)
        if data.kind == "bars":
            # Largest first reads top-down in plotext's horizontal bars.
            plt.bar(
                list(reversed(data.labels)), list(reversed(data.values)), orientation="horizontal"
            )
        else:
            if data.unit_square:
                plt.xlim(0, 1)
                plt.ylim(0, 1.02)
            if data.diagonal:
                plt.plot([0, 1], [0, 1], color="gray")
            for label, xs, ys in data.series:
                if data.kind == "scatter":
                    plt.scatter(list(xs), list(ys), label=label, marker="braille")
                else:
                    plt.plot(list(xs), list(ys), label=label, marker="braille")
        self.refresh()
