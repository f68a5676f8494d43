"""A grid of small metric charts, one per metric (a train/validation pair in
one chart), as many columns as the terminal's width allows; one is selected."""

from __future__ import annotations

import math

from textual.containers import Grid, VerticalScroll

from workbench.tui.widgets.series_chart import Series, SeriesChart

MIN_CELL_HEIGHT = 7  # rows of one chart: its title and a few rows of curve


def columns_for(width: int) -> int:
    """Chart columns for a terminal `width`: 1 below 70, 2 up to 119, 3 up to
    159, then 4."""
    return 1 if width < 70 else 2 if width < 120 else 3 if width < 160 else 4


class MetricGrid(VerticalScroll, can_focus=True, inherit_bindings=False):
    """The charts are `SeriesChart`s named `cells`, in the order of `groups`;
    the screen's keys move `selected`. It takes no keys of its own (arrows go
    to the screen), and scrolls when the charts need more rows than it has."""

    DEFAULT_CSS = """
    MetricGrid { height: 1fr; }
    MetricGrid > Grid { height: auto; grid-gutter: 0 1; }
    MetricGrid SeriesChart { height: 100%; min-height: 6; }
    MetricGrid SeriesChart.-selected { border-top: heavy $accent; }
    MetricGrid:focus SeriesChart.-selected { border-top: heavy $accent-lighten-2; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.groups: list[tuple[str, ...]] = []
        self.selected = 0
        self.cells: list[SeriesChart] = []
        self._grid = Grid()
        self._layout: tuple[int, int, int] | None = None

    def compose(self):
        yield self._grid

    @property
    def columns(self) -> int:
        return columns_for(self.app.size.width)

    def show_groups(
        self,
        groups: list[tuple[str, ...]],
        series: dict[str, Series],
        titles: list[str],
        selected: int,
    ) -> None:
        """One chart per group, titled, its keys' curves overlaid."""
        if groups != self.groups:
            self.groups = list(groups)
            for cell in self.cells[len(groups) :]:
                cell.remove()
            del self.cells[len(groups) :]
            while len(self.cells) < len(groups):
                cell = SeriesChart()
                self.cells.append(cell)
                self._grid.mount(cell)
            self._layout = None
        for cell, group, title in zip(self.cells, groups, titles, strict=True):
            cell.show_series({k: series[k] for k in group if k in series}, title=title)
        self.select(selected)
        self._fit()

    def select(self, index: int) -> None:
        """Mark the chart at `index`; a newly selected one is scrolled into view
        (a poll that keeps the selection leaves the scroll where it is)."""
        moved = index != self.selected
        self.selected = index
        for i, cell in enumerate(self.cells):
            cell.set_class(i == index, "-selected")
        if moved and 0 <= index < len(self.cells):
            self.call_after_refresh(self.scroll_to_widget, self.cells[index], animate=False)

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """Columns by the terminal's width; rows share the height, but are
        never shorter than MIN_CELL_HEIGHT (the grid scrolls then)."""
        columns = self.columns
        rows = max(1, math.ceil(len(self.cells) / columns))
        height = max(MIN_CELL_HEIGHT, self.size.height // rows) if self.size.height else 0
        layout = (columns, rows, height)
        if layout == self._layout or not height:
            return
        self._layout = layout
        self._grid.styles.grid_size_columns = columns
        self._grid.styles.grid_size_rows = rows
        self._grid.styles.grid_rows = str(height)
        self._grid.styles.height = rows * height
