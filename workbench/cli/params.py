"""Parameter types shared by the commands."""

from __future__ import annotations

import math
from typing import Any

import click


class Seconds(click.FloatRange):
    """A finite number of seconds within bounds: `inf` and `nan` slip past a
    plain FloatRange (nan compares false with everything)."""

    name = "seconds"

    def __init__(
        self, bounds: tuple[float, float | None], *, min_open: bool = False
    ) -> None:
        super().__init__(min=bounds[0], max=bounds[1], min_open=min_open)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds.", param, ctx)
        return super().convert(number, param, ctx)
