"""Text formatting of values for tables, shared by the CLI and the terminal UI
(both read the same `[colour]...[/]` markup)."""

from __future__ import annotations

STATUS_COLOURS = {
    "succeeded": "green",
    "failed": "red",
    "lost": "red",
    "running": "cyan",
    "stopped": "yellow",
    "queued": "blue",
}


def status(value: str | None) -> str:
    if not value:
        return ""
    return f"[{STATUS_COLOURS.get(value, 'white')}]{value}[/]"


def metric(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def ago(delta: float) -> str:
    if delta < 60:
        return f"{int(delta)}s ago"
    if delta < 3600:
        return f"{int(delta // 60)}m ago"
    if delta < 86400:
        return f"{int(delta // 3600)}h ago"
    return f"{int(delta // 86400)}d ago"


def size(value: float | None) -> str:
    if value is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)
