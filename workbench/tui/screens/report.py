"""A model version's report: the same `ModelReport` as `workbench model report`
and the bundle's model card, shown as tables and plotext charts. Computing it
loads the model and predicts its hold-out, so it runs in a thread worker while a
loading indicator covers the body; `w` writes the HTML next to the project."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Header, Label, Static
from textual.worker import get_current_worker

from workbench.core import formatting as fmt
from workbench.tui.screens.base import WorkbenchScreen, describe
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.report_chart import ChartData, ReportChart

if TYPE_CHECKING:  # the report module (numpy, pandas) loads when a report is computed
    from workbench.models.report import ModelReport

IMPORTANCE_SHOWN = 12
PROFILE_SHOWN = 40


def compute(version_id: int, progress: Any = None) -> ModelReport:
    """The report of a version, read and computed in the calling (worker) thread."""
    from workbench.models.registry import get_version_by_id
    from workbench.models.report import build_report
    from workbench.tui import reads

    store = reads.store()
    return build_report(store, get_version_by_id(store, version_id), progress=progress)


def write_html(report: ModelReport, folder: Path) -> Path:
    """The report as HTML in `folder` (the project's reports/), replacing an older one."""
    from workbench.core.files import atomic_write_text
    from workbench.models.report_html import render_html

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{report.project}-v{report.version}-report.html"
    atomic_write_text(path, render_html(report))
    return path


class ReportScreen(WorkbenchScreen):
    CSS_PATH = "report.tcss"
    BINDINGS = [
        Binding("w", "write_html", "Write HTML", id="report.write"),
        Binding("r", "recompute", "Recompute", id="report.recompute"),
        Binding("escape", "app.pop_screen", "Back", id="report.back"),
    ]

    def __init__(self, version_id: int, ref: str, project_path: str | None = None) -> None:
        super().__init__()
        self.version_id = version_id
        self.ref = ref
        self.project_path = project_path
        self.title = f"Report of {ref}"
        self.report: ModelReport | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("", id="report-summary")
        with VerticalScroll(id="report-body"):
            yield Static("", id="report-waiting")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.action_recompute()

    # Computing ------------------------------------------------------------

    def action_recompute(self) -> None:
        self.query_one("#report-body").loading = True
        self._step("loading the model")
        self.run_worker(
            self._compute, thread=True, exclusive=True, group="report", exit_on_error=False
        )

    def _compute(self) -> None:
        worker = get_current_worker()

        def step(message: str) -> None:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._step, message)

        try:
            report = compute(self.version_id, step)
        except Exception as exc:  # shown, never swallowed
            if not worker.is_cancelled:
                self.app.call_from_thread(self._failed, exc)
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show, report)

    def _step(self, message: str) -> None:
        if self.is_attached:
            self.query_one("#report-summary", Label).update(
                escape(f"{self.ref}: computing the report… {message}")
            )

    def _failed(self, error: BaseException) -> None:
        if not self.is_attached:
            return
        self.query_one("#report-body").loading = False
        self.query_one("#report-summary", Label).update(
            escape(f"{self.ref}: no report: {describe(error)}")
        )
        self.app.show_error(f"Cannot report on {self.ref}", error)

    # Showing --------------------------------------------------------------

    def _show(self, report: ModelReport) -> None:
        if not self.is_attached:
            return
        self.report = report
        body = self.query_one("#report-body", VerticalScroll)
        body.loading = False
        body.remove_children()
        body.mount_all(_sections(report))
        rows = f"  {report.holdout_rows:,} hold-out rows" if report.holdout_rows is not None else ""
        aliases = f"  ({', '.join(report.aliases)})" if report.aliases else ""
        self.query_one("#report-summary", Label).update(
            escape(
                f"{report.ref}{aliases}  {report.framework} {report.task or ''}{rows}"
                f"  computed in {report.seconds:.1f} s"
            )
        )

    def action_write_html(self) -> None:
        report = self.report
        if report is None:
            self.notify("The report is still being computed.", severity="warning")
            return
        folder = Path(self.project_path or ".") / "reports"

        def work() -> None:
            try:
                path = write_html(report, folder)
            except Exception as exc:
                self.app.call_from_thread(self.app.show_error, "Cannot write the report", exc)
                return
            self.app.call_from_thread(self.notify, f"wrote {path}", timeout=8)

        self.run_worker(work, thread=True, group="report-write", exit_on_error=False)


# --------------------------------------------------------------------------- sections


def _heading(text: str) -> Static:
    return Static(Text(text, style="bold"), classes="report-heading")


def _table(*columns: str) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column)
    return table


def _sections(report: ModelReport) -> list[Any]:
    out: list[Any] = []
    if report.notes:
        out.append(
            Static(
                Group(*(Text(f"• {n}", style="yellow") for n in report.notes)), id="report-notes"
            )
        )
    if report.metrics:
        about = (
            f"  ({report.confidence:.0%} bootstrap intervals, {report.resamples} resamples of "
            f"{report.evaluated_rows:,} rows)"
            if report.evaluated_rows and report.confidence
            else ""
        )
        out.append(_heading(f"Metrics{about}"))
        table = _table("metric", "value", "low", "high", "")
        for m in report.metrics:
            table.add_row(
                m.name + (" (primary)" if m.primary else ""),
                fmt.metric(m.value),
                fmt.metric(m.low),
                fmt.metric(m.high),
                m.why or "",
            )
        out.append(Static(table, id="report-metrics"))
    if report.importance:
        shown = [i for i in report.importance[:IMPORTANCE_SHOWN] if i.permutation is not None]
        if shown:
            out.append(
                ReportChart(
                    ChartData(
                        "bars",
                        f"Permutation importance: how much {report.importance_metric} worsens",
                        labels=tuple(i.feature for i in shown),
                        values=tuple(i.permutation or 0.0 for i in shown),
                    ),
                    id="chart-importance",
                )
            )
        table = _table("feature", "permutation", "±", f"gain ({report.gain_kind or 'none'})")
        for i in report.importance:
            table.add_row(
                i.feature,
                fmt.metric(i.permutation),
                fmt.metric(i.permutation_std),
                fmt.metric(i.gain),
            )
        out.append(Static(table, id="report-importance"))
    if report.confusion is not None:
        out.append(_heading("Confusion matrix (rows: truth, columns: predicted)"))
        labels = report.confusion.labels
        table = _table("", *labels)
        for label, counts in zip(labels, report.confusion.counts, strict=True):
            table.add_row(
                Text(label, style="bold"),
                *(
                    Text(f"{c:,}", style="green" if labels[j] == label else ("red" if c else "dim"))
                    for j, c in enumerate(counts)
                ),
            )
        out.append(Static(table, id="report-confusion"))
    for chart in report.charts:
        if chart.curves:
            out.append(
                ReportChart(
                    ChartData(
                        "lines",
                        chart.title
                        + "".join(
                            f"  {c.label}: {c.area:.3f}"
                            for c in chart.curves[:4]
                            if c.area is not None
                        ),
                        chart.x_label,
                        chart.y_label,
                        series=tuple((c.label, c.x, c.y) for c in chart.curves),
                        unit_square=True,
                        diagonal=chart.kind != "pr",
                    ),
                    id=f"chart-{chart.kind}",
                )
            )
        if chart.note:
            out.append(Static(Text(f"{chart.title}: {chart.note}", style="yellow")))
    out += _residuals(report)
    out += _profile(report)
    out += _lineage(report)
    out += _decisions(report)
    return out


def _residuals(report: ModelReport) -> list[Any]:
    residuals = report.residuals
    if residuals is None:
        return []
    out: list[Any] = []
    if residuals.predicted:
        out.append(
            ReportChart(
                ChartData(
                    "scatter",
                    f"Residuals against the prediction (mean {residuals.mean:.4g}, "
                    f"std {residuals.std:.4g})",
                    "predicted",
                    "truth − predicted",
                    series=(("residual", residuals.predicted, residuals.residual),),
                ),
                id="chart-residuals",
            )
        )
    for feature in residuals.by_feature:
        out.append(_heading(f"Residuals by {feature.feature} ({feature.kind})"))
        table = _table("values", "rows", "mean residual", "mean |residual|")
        for b in feature.bins:
            table.add_row(
                b.label, f"{b.rows:,}", fmt.metric(b.mean_residual), fmt.metric(b.mean_abs_residual)
            )
        out.append(Static(table))
    return out


def _profile(report: ModelReport) -> list[Any]:
    profile = report.profile
    if profile is None:
        return []
    table = _table("column", "kind", "values", "nulls", "distinct", "summary")
    for c in profile.columns[:PROFILE_SHOWN]:
        if c.kind == "numeric":
            summary = (
                f"mean {fmt.metric(c.mean)}  std {fmt.metric(c.std)}"
                f"  {fmt.metric(c.min)} to {fmt.metric(c.max)}"
            )
        else:
            summary = ", ".join(f"{v} ({n:,})" for v, n in c.top[:5])
        table.add_row(c.name, c.kind, f"{c.count:,}", f"{c.nulls:,}", f"{c.unique:,}", summary)
    more = len(profile.columns) - PROFILE_SHOWN
    return [
        _heading(f"Training data profile: {profile.source}, {profile.rows:,} rows"),
        Static(table, id="report-profile"),
        *([Static(f"… and {more} more columns (all in the HTML report)")] if more > 0 else []),
    ]


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _lineage(report: ModelReport) -> list[Any]:
    lineage = report.lineage
    if lineage is None:
        return []
    table = _table("", "")
    table.add_row("run", f"{lineage.run_id} ({lineage.run_status}, trainer {lineage.trainer})")
    table.add_row("started / ended", f"{_when(lineage.started_at)} / {_when(lineage.ended_at)}")
    table.add_row("model", lineage.model_sha256[:16])
    table.add_row("hold-out", (lineage.holdout_sha256 or "-")[:16])
    for d in lineage.datasets:
        table.add_row(f"data ({d.role})", f"{d.sha256[:12]}  {d.rows:,} rows  {d.path}")
    for key, value in sorted(lineage.params.items()):
        table.add_row(f"param {key}", str(value))
    for key in ("python", "platform", "hostname"):
        if key in lineage.environment:
            table.add_row(key, str(lineage.environment[key]))
    return [_heading("Lineage"), Static(table, id="report-lineage")]


def _decisions(report: ModelReport) -> list[Any]:
    if report.lineage is None:
        return []
    if not report.decisions:
        return [_heading("Promotion gate"), Static("No decision about this version yet.")]
    lines = []
    for d in report.decisions:
        verdict = "[green]promoted[/]" if d.promoted else "[yellow]kept out[/]"
        over = f" over v{d.champion}" if d.champion is not None else ""
        lines.append(
            Text.from_markup(
                f"v{d.challenger} → {escape(d.alias)}{over}: {verdict}  {_when(d.created_at)}"
            )
        )
        lines.append(Text(f"  {d.reason}"))
    return [_heading("Promotion gate"), Static(Group(*lines), id="report-gate")]
