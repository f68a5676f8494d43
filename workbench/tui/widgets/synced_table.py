"""A DataTable that takes whole snapshots and keeps the cursor where it was."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable


def cell(value: Any) -> Any:
    """A float shown to 4 significant digits (never 0.30000000000000004)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return value


class SyncedTable(DataTable):
    """`show(rows)` replaces the content; the selected row (by key) stays selected,
    so a live refresh never moves the user's cursor."""

    DEFAULT_CSS = """
    SyncedTable { height: 1fr; }
    """
    # Vim-style moves in every table, next to the arrows and Home/End.
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="table.up"),
        Binding("g", "scroll_top", "First row", show=False, id="table.top"),
        Binding("G", "scroll_bottom", "Last row", show=False, id="table.bottom"),
    ]

    class Bottom(Message):
        """G (or ctrl+end) went to the last row: a paged table fetches more."""

        def __init__(self, table: SyncedTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> SyncedTable:
            return self.table

    def action_scroll_bottom(self) -> None:
        super().action_scroll_bottom()
        self.post_message(self.Bottom(self))

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._columns = list(columns)
        self._shown: list[tuple[str, tuple]] = []
        self._sort: tuple[str, bool] | None = None  # (column key, descending)

    def on_mount(self) -> None:
        for key, label in self._columns:
            self.add_column(self._label(key, label), key=key)

    def _label(self, key: str, label: str) -> str | Text:
        if self._sort is None or self._sort[0] != key:
            return label
        return Text(f"{label} {'▼' if self._sort[1] else '▲'}", style="bold")

    def set_sort(self, key: str | None, descending: bool = False) -> None:
        """Mark the column the rows are sorted by in its header (▲ or ▼)."""
        sort = None if key is None else (key, descending)
        if sort == self._sort:
            return
        self._sort = sort
        if not self.columns:
            return  # on_mount labels the columns
        for column_key, label in self._columns:
            column = self.columns.get(column_key)  # type: ignore[call-overload]
            if column is not None:
                marked = self._label(column_key, label)
                column.label = marked if isinstance(marked, Text) else Text.from_markup(marked)
                column.content_width = max(column.content_width, column.label.cell_len)
        self._update_count += 1
        self._clear_caches()
        self._require_update_dimensions = True
        self.refresh()

    async def _on_idle(self, event: events.Idle) -> None:
        # DataTable measures new rows when idle, but lines it drew before that
        # stay cached at the old (header) widths: rows arriving just after mount
        # showed truncated until the cursor repainted them one by one. Once the
        # widths are measured, drop the cached lines so every row is redrawn.
        pending = self._require_update_dimensions or bool(self._updated_cells)
        await super()._on_idle(event)
        if pending:
            self._update_count += 1
            self._clear_caches()
            self.refresh()

    def set_columns(self, columns: Sequence[tuple[str, str]]) -> None:
        """Change the columns (a project's metric names are known only after a
        poll); the next `show` fills the rows again."""
        columns = list(columns)
        if columns == self._columns:
            return
        self._columns = columns
        self._shown = []
        self.clear(columns=True)
        for key, label in columns:
            self.add_column(self._label(key, label), key=key)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:
            return None

    def show(self, rows: Sequence[tuple[str, Sequence[Any]]]) -> None:
        snapshot = [(key, tuple(cell(c) for c in cells)) for key, cells in rows]
        if snapshot == self._shown:
            return  # nothing changed: no redraw
        selected = self.selected_key
        if [k for k, _ in snapshot] == [k for k, _ in self._shown]:
            for (key, cells), (_, old) in zip(snapshot, self._shown, strict=True):
                for (column, _), value, before in zip(self._columns, cells, old, strict=True):
                    if value != before:
                        self.update_cell(key, column, value, update_width=True)
        else:
            self.clear()
            for key, cells in snapshot:
                self.add_row(*cells, key=key)
            if selected is not None:
                keys = [k for k, _ in snapshot]
                if selected in keys:
                    self.move_cursor(row=keys.index(selected))
        self._shown = snapshot
