"""`workbench serve`: a bundle behind HTTP."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.cli.output import note


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0: any free one).",
)
def serve(path: Path, host: str, port: int) -> None:
    """Serve the bundle at PATH (a folder or .zip) over HTTP until Ctrl-C.

    GET /health, GET /metadata (the manifest without hashes), and POST /predict
    with {"rows": [{"column": value, ...}, ...]} (or a bare list of row objects,
    or {"columns": {"column": [values, ...]}}), answering {"predictions": [...],
    "probabilities": [[...], ...] or null, "classes": [...]}. Bad input gets 422
    with the reason. The bundle is verified before it is loaded. Loopback only
    by default: the server has no authentication, so another --host is warned about.
    """
    from workbench.models import runtime
    from workbench.models.bundle import load_bundle, runtime_errors

    bundle = load_bundle(path)
    with runtime_errors():
        runtime.serve(bundle, host, port, say=lambda message: note(_styled(message)))


def _styled(message: str) -> str:
    from rich.markup import escape

    text = escape(message)
    return f"[yellow]{text}[/]" if message.startswith("warning:") else text
