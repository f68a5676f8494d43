"""A project's model versions: aliases and metrics, the selected version's
details and the latest promotion decisions; promote through the gate, export
with live progress."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.padding import Padding
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Header, Label, ProgressBar, Static

from workbench.core import formatting as fmt
from workbench.core.metric_rules import is_per_step
from workbench.models.registry import CHALLENGER, CHAMPION
from workbench.store.dashboard import TrainingData
from workbench.tui import reads
from workbench.tui.screens.base import LiveScreen
from workbench.tui.screens.model_forms import ExportModal, ExportRequest, PromoteModal
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.screens.report import ReportScreen
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.synced_table import SyncedTable

ALIAS_STYLES = {CHAMPION: "b green", CHALLENGER: "b yellow"}
DECISIONS_SHOWN = 8


class ModelsScreen(LiveScreen):
    POLL_SECONDS = 2.0
    AUTO_FOCUS = "#versions"
    BINDINGS = [
        Binding("p", "promote", "Promote", id="models.promote"),
        Binding("e", "export", "Export", id="models.export"),
        Binding("r", "report", "Report", id="models.report"),
        Binding("m", "monitor", "Monitor", id="models.monitor"),
        Binding("enter", "open_run", "Open run", id="models.open"),
        Binding("escape", "app.pop_screen", "Back", id="models.back"),
    ]

    def __init__(self, project: str) -> None:
        super().__init__()
        self.project = project
        self.title = f"Models of {project}"
        self.snapshot: dict[str, Any] | None = None
        self.exporting: str | None = None  # the ref being exported
        self.export_what = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("", id="models-summary")
        yield SyncedTable(self._columns([], None), id="versions")
        with Horizontal(id="models-body"):
            with VerticalScroll(id="model-detail"):
                yield Static("", id="model-info")
            with VerticalScroll(id="model-gate"):
                yield Static("", id="gate-info")
        with Horizontal(id="export-status"):
            yield ProgressBar(None, show_percentage=False, show_eta=False, id="export-bar")
            yield Label("", id="export-step")
        yield KeyFooter()

    def load(self) -> dict[str, Any]:
        return reads.models_overview(self.project)

    # Showing --------------------------------------------------------------

    def show(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot
        versions = snapshot["versions"]
        metric = next((v.metric for v in versions if v.metric), None)
        others = sorted(
            {k for v in versions for k in v.metrics if k != metric and not is_per_step(k)}
        )
        table = self.query_one("#versions", SyncedTable)
        table.set_columns(self._columns(others, metric))
        best = _best(versions, metric)
        now = time.time()
        table.show(
            [
                (
                    str(v.version),
                    (
                        str(v.version),
                        _aliases(v.aliases),
                        str(v.run_id),
                        v.framework,
                        *(
                            [_highlight(fmt.metric(v.metrics.get(metric)), v.version in best)]
                            if metric
                            else []
                        ),
                        *(fmt.metric(v.metrics.get(k)) for k in others),
                        fmt.ago(now - v.created_at),
                    ),
                )
                for v in versions
            ]
        )
        self.query_one("#models-summary", Label).update(self._summary(versions, metric))
        self._show_selected()

    @staticmethod
    def _columns(others: list[str], metric: str | None) -> list[tuple[str, str]]:
        return [
            ("version", "Version"),
            ("aliases", "Aliases"),
            ("run", "Run"),
            ("framework", "Framework"),
            *([(f"m:{metric}", metric)] if metric else []),
            *((f"m:{k}", k) for k in others),
            ("created", "Created"),
        ]

    def _summary(self, versions: list[Any], metric: str | None) -> str:
        if not versions:
            return (
                f"{escape(self.project)} has no model versions yet: a succeeded training run "
                "registers one"
            )
        holders = {
            alias: v.version for v in versions for alias in v.aliases if alias in ALIAS_STYLES
        }
        parts = [f"{len(versions)} version{'s' if len(versions) > 1 else ''}"]
        if metric:
            parts.append(f"primary metric {metric}")
        parts += [f"{alias} v{holders[alias]}" for alias in ALIAS_STYLES if alias in holders]
        return "  ".join(parts)

    def on_data_table_row_highlighted(self, event: SyncedTable.RowHighlighted) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        version = self.selected
        snapshot = self.snapshot or {}
        detail = (
            _detail(version, snapshot["datasets"].get(version.run_id, []))
            if version
            else ("No version selected." if snapshot.get("versions") else "")
        )
        self.query_one("#model-info", Static).update(detail)
        self.query_one("#gate-info", Static).update(
            _decisions(snapshot.get("promotions", []), version.version if version else None)
        )

    @property
    def selected(self) -> Any:
        """The highlighted ModelVersion, or None."""
        key = self.query_one("#versions", SyncedTable).selected_key
        versions = (self.snapshot or {}).get("versions", [])
        return next((v for v in versions if str(v.version) == key), None)

    # Actions --------------------------------------------------------------

    def action_open_run(self) -> None:
        if self.selected is not None:
            self.app.open_run(self.selected.run_id)

    def on_data_table_row_selected(self, event: SyncedTable.RowSelected) -> None:
        self.action_open_run()

    def action_promote(self) -> None:
        version = self.selected
        if version is None:
            self.notify("No model version to promote yet.", severity="warning")
            return
        self.notify(f"working… asking the gate about {version.ref}", timeout=10)
        self.in_background(
            "Cannot judge the version",
            lambda: reads.judge_for_champion(version.id, dry_run=True),
            self._confirm_promotion,
            busy=self.query_one("#model-gate"),
        )

    def _confirm_promotion(self, decision: Any) -> None:
        def answered(choice: str | None) -> None:
            if choice is None:
                return
            self.in_background(
                "Cannot promote the version",
                lambda: reads.judge_for_champion(
                    decision.challenger.id, dry_run=False, force=choice == "force"
                ),
                self._promoted,
            )

        self.app.push_screen(PromoteModal(decision), answered)

    def _promoted(self, decision: Any) -> None:
        ref = decision.challenger.ref
        if decision.promoted:
            self.notify(f"{ref} is now {decision.alias}: {decision.reason}", timeout=8)
        else:
            self.notify(f"{ref} stays out: {decision.reason}", severity="warning", timeout=8)
        self.poll()

    def action_report(self) -> None:
        version = self.selected
        if version is None:
            self.notify("No model version to report on yet.", severity="warning")
            return
        folder = (self.snapshot or {}).get("project", {}).get("path")
        self.app.push_screen(ReportScreen(version.id, version.ref, folder))

    def action_monitor(self) -> None:
        self.app.push_screen(MonitorScreen(self.project))

    def action_export(self) -> None:
        version = self.selected
        if version is None:
            self.notify("No model version to export yet.", severity="warning")
            return
        if self.exporting:
            self.notify(f"Still exporting {self.exporting}.", severity="warning")
            return
        if self.snapshot is None:
            return
        folder = Path(self.snapshot["project"]["path"]) / "exports"
        self.app.push_screen(
            ExportModal(
                version.ref,
                lambda fmt_: folder / f"{version.project}-v{version.version}-{fmt_}",
                self.snapshot.get("formats"),
            ),
            lambda request: self._export(version, request),
        )

    def _export(self, version: Any, request: ExportRequest | None) -> None:
        if request is None:
            return
        self.exporting = version.ref
        self.export_what = f"exporting {version.ref} as {request.fmt}"
        self._export_step("starting")
        self.query_one("#export-status").add_class("-active")

        def work() -> None:
            def step(message: str) -> None:
                self.app.call_from_thread(self._export_step, message)

            try:
                report = reads.export_version(
                    version.id, request.fmt, request.output, force=request.force, progress=step
                )
            except Exception as exc:
                self.app.call_from_thread(self._export_done, None, exc)
                return
            self.app.call_from_thread(self._export_done, report, None)

        # The export goes on (and reports) even if the user leaves this screen.
        self.app.run_worker(work, thread=True, group="export", exit_on_error=False)

    def _export_step(self, message: str) -> None:
        if self.is_attached:
            self.query_one("#export-step", Label).update(escape(f"{self.export_what}: {message}"))

    def _export_done(self, report: dict[str, Any] | None, error: BaseException | None) -> None:
        ref, self.exporting = self.exporting, None
        if self.is_attached:
            self.query_one("#export-status").remove_class("-active")
        if error is not None or report is None:
            self.app.show_error(f"Cannot export {ref}", error or "the exporter reported nothing")
            return
        notes = "".join(f"\n{line}" for line in report.get("notes", []))
        self.notify(f"exported {ref} as {report['format']} to {report['path']}{notes}", timeout=10)


def _aliases(aliases: list[str]) -> str:
    """Champion first, then challenger, then the user's own names."""
    ordered = sorted(
        aliases, key=lambda a: (list(ALIAS_STYLES).index(a), "") if a in ALIAS_STYLES else (9, a)
    )
    return " ".join(
        f"[{ALIAS_STYLES[a]}]{a}[/]" if a in ALIAS_STYLES else f"[cyan]{a}[/]" for a in ordered
    )


def _best(versions: list[Any], metric: str | None) -> set[int]:
    """The version numbers with the best primary metric (ties share it)."""
    from workbench.core.metric_rules import lower_is_better

    scored = [
        (v.metrics[metric], v.version)
        for v in versions
        if metric and v.metrics.get(metric) is not None
    ]
    if not scored:
        return set()
    best = (min if lower_is_better(metric or "") else max)(s for s, _ in scored)
    return {number for score, number in scored if score == best}


def _highlight(text: str, best: bool) -> str:
    return f"[b green]{text}[/]" if best and text else text


def _when(ts: float) -> str:
    from workbench.runs.queries import iso

    return f"{(iso(ts) or '').replace('T', ' ')} ({fmt.ago(time.time() - ts)})"


def _detail(version: Any, datasets: list[TrainingData]) -> str:
    aliases = _aliases(version.aliases)
    lines = [
        f"[b]{escape(version.ref)}[/b]  {aliases}",
        f"run {version.run_id}  {version.framework} {version.framework_version or ''}"
        f"  {version.task or ''}",
        f"created {_when(version.created_at)}",
        "",
        "[b]Metrics[/b]",
    ]
    for key, value in sorted(
        version.metrics.items(), key=lambda kv: (kv[0] != version.metric, kv[0])
    ):
        primary = "  [dim](primary)[/]" if key == version.metric else ""
        lines.append(f"  {escape(key)} = {fmt.metric(value)}{primary}")
    lines += [
        "",
        "[b]Model[/b]",
        f"  {escape(version.model_name)}  sha256 {version.model_sha256[:16]}",
    ]
    if version.schema_sha256:
        lines.append(f"  schema {version.schema_sha256[:16]}")
    if version.holdout_sha256:
        lines.append(f"  hold-out {version.holdout_sha256[:16]}")
    if datasets:
        lines += ["", "[b]Datasets[/b]"]
        for d in datasets:
            lines += [
                f"  {d.role}  {d.sha256[:12]}  {d.rows} rows",
                f"    {escape(d.path)}",
            ]
    return "\n".join(lines)


def _decisions(promotions: list[dict[str, Any]], selected: int | None) -> Group:
    """The latest gate decisions, reasons indented under each; those about
    other versions than the selected one are dimmed."""
    parts: list[Any] = [Text("Promotion decisions", style="bold")]
    if not promotions:
        parts += [Text(""), Text("None yet. p runs the gate for the selected version.")]
    for p in promotions[:DECISIONS_SHOWN]:
        verdict = "[green]promoted[/]" if p["promoted"] else "[yellow]kept out[/]"
        over = f" over v{p['champion']}" if p["champion"] is not None else ""
        when = fmt.ago(time.time() - p["created_at"])
        head = Text.from_markup(f"v{p['challenger']} → {p['alias']}{over}: {verdict}  {when}")
        reason = Text(p["reason"])
        if selected is not None and selected not in (p["challenger"], p["champion"]):
            head.stylize("dim")
            reason.stylize("dim")
        parts += [Text(""), head, Padding(reason, (0, 0, 0, 2))]
    return Group(*parts)
