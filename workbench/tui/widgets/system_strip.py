"""CPU, RAM and GPU sparklines of the whole machine, each on a fixed 0-100 % scale."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Static

HISTORY = 60
BLOCKS = " ▁▂▃▄▅▆▇█"


class Sparkline(Static):
    """Bars of percentages, two rows tall, on a fixed 0-100 scale: 6 % of RAM
    is a short bar, never a full-height one (Textual's Sparkline scales to the
    data's own min and max)."""

    ROWS = 2

    def __init__(self, data: Sequence[float] = (), **kwargs) -> None:
        super().__init__("", **kwargs)
        self._data = list(data)

    @property
    def data(self) -> list[float]:
        return self._data

    @data.setter
    def data(self, values: Sequence[float]) -> None:
        self._data = list(values)
        self.refresh()

    def render(self) -> Text:
        width = max(1, self.size.width)
        values = self._data[-width:]
        steps = (len(BLOCKS) - 1) * self.ROWS
        levels = [round(max(0.0, min(100.0, v)) / 100 * steps) for v in values]
        rows = []
        for row in range(self.ROWS - 1, -1, -1):  # top row first
            base = row * (len(BLOCKS) - 1)
            rows.append("".join(BLOCKS[max(0, min(len(BLOCKS) - 1, lv - base))] for lv in levels))
        return Text("\n".join(rows), style="green")


class SystemStrip(Horizontal):
    DEFAULT_CSS = """
    SystemStrip { height: 4; border-top: solid $primary-background; }
    SystemStrip > Vertical { width: 1fr; padding: 0 1; }
    SystemStrip Sparkline { height: 2; }
    SystemStrip Label { width: 100%; }
    SystemStrip #gpu-box { display: none; }
    SystemStrip.-gpu #gpu-box { display: block; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._series = {
            name: deque([0.0] * HISTORY, maxlen=HISTORY) for name in ("cpu", "ram", "gpu")
        }
        self._labels: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        for name in ("cpu", "ram", "gpu"):
            with Vertical(id=f"{name}-box"):
                yield Label(name.upper(), id=f"{name}-label")
                yield Sparkline(list(self._series[name]), id=f"{name}-spark")

    def update_sample(self, sample: dict) -> None:
        values = {"cpu": sample["cpu"], "ram": sample["ram"]}
        gpus = sample.get("gpus")
        if gpus:
            self.add_class("-gpu")
            values["gpu"] = max(g["utilization"] or 0 for g in gpus)
            used = sum(g["memory_used"] or 0 for g in gpus) / 2**30
            total = sum(g["memory_total"] or 0 for g in gpus) / 2**30
            self._label("gpu", f"GPU {values['gpu']:.0f}%  mem {used:.1f}/{total:.0f} GiB")
        for name, value in values.items():
            self._series[name].append(value)
            self.query_one(f"#{name}-spark", Sparkline).data = list(self._series[name])
        self._label("cpu", f"CPU {values['cpu']:.0f}%")
        self._label("ram", f"RAM {values['ram']:.0f}%")

    def _label(self, name: str, text: str) -> None:
        """A label's new text, redrawn only when it changed, and without a layout
        pass (its width is the column's, whatever the text): an idle Home
        re-laid the whole screen every second for these."""
        label = self.query_one(f"#{name}-label", Label)
        if self._labels.get(name) != text:
            self._labels[name] = text
            label.update(text, layout=False)
