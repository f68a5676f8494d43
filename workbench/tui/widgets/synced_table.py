"""A DataTable that takes whole snapshots and keeps the cursor where it was."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.widgets import DataTable


class SyncedTable(DataTable):
    """`show(rows)` replaces the content; the selected row (by key) stays selected,
    so a live refresh never moves the user's cursor."""

    DEFAULT_CSS = """
    SyncedTable { height: 1fr; }
    """

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._columns = list(columns)
        self._shown: list[tuple[str, tuple]] = []

    def on_mount(self) -> None:
        for key, label in self._columns:
            self.add_column(label, key=key)

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
            self.add_column(label, key=key)

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:
            return None

    def show(self, rows: Sequence[tuple[str, Sequence[Any]]]) -> None:
        snapshot = [(key, tuple(cells)) for key, cells in rows]
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
