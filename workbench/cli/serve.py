"""`workbench serve`: a bundle behind HTTP."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
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
@click.option(
    "--max-request-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Largest request body in MB; larger ones get 413 "
    "(default: $WORKBENCH_MAX_REQUEST_MB or 8).",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=None,
    help="Requests predicted at once; more get 503 with Retry-After "
    "(default: $WORKBENCH_MAX_IN_FLIGHT or 4).",
)
@click.option(
    "--trust",
    is_flag=True,
    help="Load the bundle even if it is unsigned or signed by a key this store does not trust.",
)
@click.option(
    "--log/--no-log",
    "log_requests",
    default=None,
    help="Log requests for `workbench monitor` under the bundle's project (default: when "
    "the project is registered here and its [monitor] log is on; --log requires it).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    path: Path,
    host: str,
    port: int,
    max_request_mb: float | None,
    max_in_flight: int | None,
    trust: bool,
    log_requests: bool | None,
) -> None:
    """Serve the bundle at PATH (a folder or .zip) over HTTP until Ctrl-C.

    GET /health, GET /metadata (the manifest without hashes), and POST /predict
    with {"rows": [{"column": value, ...}, ...]} (or a bare list of row objects,
    or {"columns": {"column": [values, ...]}}), answering {"predictions": [...],
    "probabilities": [[...], ...] or null, "classes": [...]}. Bad input gets a 4xx
    with the reason: 422 for a body that is not strict JSON (UTF-8, finite numbers,
    unique keys) or does not fit the model (missing or unknown columns, values that
    are not numbers), 415 for another Content-Type, 413 for a body over
    --max-request-mb (checked as it streams in). Beyond --max-in-flight requests
    at once, 503 with Retry-After. The bundle is verified before it is loaded,
    and refused (exit 1) when unsigned or signed by a key this store does not
    trust (`workbench keys`), unless --trust.
    Loopback only by default: the server has no authentication, so another --host
    is warned about.

    Requests are logged (inputs, outputs, version, latency, status, request id) to
    per-day Parquet files under the bundle's project, .workbench/predictions/, as
    its [monitor] settings bound them (sample_rate, max_mb, retention_days); each
    answer carries its id in the X-Request-Id header and as "request_id". The log
    is written by a process of its own: a request only hands its bytes to a pipe,
    never blocks (a full pipe drops records, counted) and never waits on the
    writer; what was sent is written on shutdown, even when the server is killed.
    Nothing leaves the machine.
    """
    from workbench.models import bundle_runtime as runtime
    from workbench.models.bundle import load_bundle, runtime_errors

    with runtime_errors():
        runtime.serve_limits(max_request_mb, max_in_flight)  # a bad setting before loading
    bundle = load_bundle(path, trust=trust)
    request_log = None
    if log_requests is not False:
        from workbench.cli.common import store_for
        from workbench.monitor.service import open_log

        request_log, where = open_log(
            store_for(ctx), bundle.manifest, required=bool(log_requests)
        )
        note(_styled(where))
    restore = _stop_on_sigterm()
    try:
        with runtime_errors():
            runtime.serve(
                bundle,
                host,
                port,
                say=lambda message: note(_styled(message)),
                max_request_mb=max_request_mb,
                max_in_flight=max_in_flight,
                recorder=request_log.record if request_log else None,
            )
    finally:
        restore()
        if request_log is not None:
            stats = request_log.close()
            failed = f", {stats.failures} writes failed: {stats.last_error}"
            note(
                f"prediction log: {stats.written_rows:,} rows in {stats.parts} parts"
                + (f", {stats.dropped:,} requests dropped (queue full)" if stats.dropped else "")
                + (failed if stats.failures else "")
            )


def _stop_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM (`kill`, `docker stop`) end the server as Ctrl-C does: uvicorn
    shuts down gracefully, then raises the signal again, and Python's default
    action would end the process before the prediction log's note. Returns what
    puts the previous handler back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None:  # installed outside Python: nothing to put back but the default
        previous = signal.SIG_DFL

    def terminated(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    signal.signal(signal.SIGTERM, terminated)
    return restore


def _styled(message: str) -> str:
    from rich.markup import escape

    text = escape(message)
    return f"[yellow]{text}[/]" if message.startswith("warning:") else text
