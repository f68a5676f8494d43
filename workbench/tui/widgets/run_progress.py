"""A run's progress when its total is known: a bar, "step 120/300" and, while
it runs, the time left at the rate of its steps so far."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from workbench.core import formatting as fmt

BAR = 20  # cells of the bar


@dataclass(frozen=True, slots=True)
class Progress:
    step: int
    total: int
    eta: float | None  # seconds left; None: not running, or no rate yet

    @property
    def text(self) -> str:
        done = min(1.0, self.step / self.total) if self.total else 0.0
        line = f"step {self.step}/{self.total} · {done:.0%}"
        if self.eta is not None:
            line += f" · ETA {fmt.seconds(self.eta)}"
        return line


def estimate(
    step: int,
    total: int,
    first: tuple[float, float] | None,
    last: tuple[float, float],
    now: float,
    running: bool,
) -> Progress:
    """Progress from the steps logged: `first` and `last` are (step, time) of
    the series' first and last points; the rate between them gives the time
    left, less what has passed since the last point."""
    eta = None
    if running and first is not None and step < total:
        steps, seconds = last[0] - first[0], last[1] - first[1]
        if steps > 0 and seconds > 0:
            eta = max(0.0, (total - step) * seconds / steps - max(0.0, now - last[1]))
    elif running and step >= total:
        eta = 0.0
    return Progress(step, total, eta)


class RunProgress(Static):
    """Hidden until a progress is shown; `progress` is what it shows."""

    DEFAULT_CSS = """
    RunProgress { height: 1; padding: 0 1; display: none; }
    RunProgress.-known { display: block; }
    """

    progress: Progress | None = None

    def show_progress(self, progress: Progress | None) -> None:
        self.progress = progress
        self.set_class(progress is not None, "-known")
        if progress is None:
            self.update("")
            return
        filled = round(BAR * min(1.0, progress.step / progress.total)) if progress.total else 0
        line = Text()
        line.append("━" * filled, style="bold green")
        line.append("━" * (BAR - filled), style="dim")
        line.append("  " + progress.text)
        self.update(line)
