"""The model report as one self-contained HTML file: inline CSS and inline SVG
charts (`report_svg`), no scripts, no fonts or images fetched, no links out; so
it opens offline, in a bundle on another machine, or attached to a ticket, and
shows exactly what `ModelReport` holds (the numbers come from `report.py`,
never computed here).

Everything from the data (feature names, categories, paths, params, reasons)
is escaped: a hostile column name is shown as text, never as markup.
"""

from __future__ import annotations

import json
import math
import time
from html import escape
from typing import Any

from workbench.models import report_svg as svg
from workbench.models.report import Chart, ModelReport

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d1d1f;
 background:#fff;margin:0 auto;max-width:1140px;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:28px 0 8px;
 border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:14px;margin:14px 0 6px}
.sub{color:#555}.tag{display:inline-block;padding:0 7px;border-radius:9px;background:#eef;
 margin-left:6px;font-size:12px}.tag.champion{background:#dcf5dc}.tag.challenger{background:#fff1c9}
.notes{background:#fff8e5;border:1px solid #f0d890;padding:8px 14px;border-radius:6px}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:14px}
figure{margin:0;border:1px solid #e3e3e3;border-radius:6px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}figure .why{color:#8a5a00;font-size:13px}
table{border-collapse:collapse;margin:4px 0 8px}th,td{padding:3px 10px;text-align:left;
 border-bottom:1px solid #eee;vertical-align:top}th{background:#f6f6f6;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#777}
table.cm td{text-align:right;min-width:44px}code{font-size:12px;word-break:break-all}
.ok{color:#17692e}.no{color:#9a5b00}
"""


def render_html(report: ModelReport) -> str:
    """The whole report as HTML text."""
    body = [
        _header(report),
        _notes(report),
        _charts(report),
        _metrics(report),
        _confusion(report),
        _importance(report),
        _residual_tables(report),
        _profile(report),
        _lineage(report),
        _decisions(report),
        f'<p class="muted">Generated {_when(report.generated_at)} in {report.seconds:.2f} s '
        "by Workbench. This file is self-contained: it loads nothing.</p>",
    ]
    title = escape(f"Model report: {report.ref}")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{CSS}</style></head><body>{''.join(p for p in body if p)}</body></html>\n"
    )


# --------------------------------------------------------------------------- helpers


def _n(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return escape(str(value))


def _when(ts: float | None) -> str:
    if ts is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """Cells are already HTML (escaped by the caller)."""
    attr = f' class="{cls}"' if cls else ""
    return (
        f"<table{attr}><thead><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr></thead><tbody>"
        + "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
        + "</tbody></table>"
    )


def _td(value: Any, numeric: bool = False) -> str:
    return f'<td class="n">{_n(value)}</td>' if numeric else f"<td>{value}</td>"


# --------------------------------------------------------------------------- sections


def _header(report: ModelReport) -> str:
    tags = "".join(f'<span class="tag {escape(a)}">{escape(a)}</span>' for a in report.aliases)
    what = " ".join(
        escape(str(p))
        for p in (report.framework, report.framework_version or "", report.task or "")
        if p
    )
    target = f" of <b>{escape(report.target)}</b>" if report.target else ""
    classes = f" · classes {escape(', '.join(report.classes[:12]))}" if report.classes else ""
    rows = f" · {report.holdout_rows:,} hold-out rows" if report.holdout_rows is not None else ""
    return (
        f"<h1>{escape(report.ref)}{tags}</h1>"
        f'<div class="sub">{what} model{target}{classes}{rows} · '
        f"{len(report.features)} features · registered {_when(report.created_at)}</div>"
    )


def _notes(report: ModelReport) -> str:
    if not report.notes:
        return ""
    items = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    return f'<h2>Notes</h2><ul class="notes">{items}</ul>'


def _figure(title: str, chart: str, why: str | None = None) -> str:
    note = f'<div class="why">{escape(why)}</div>' if why else ""
    return f"<figure><figcaption>{escape(title)}</figcaption>{chart}{note}</figure>"


def _curve_figure(chart: Chart | None, *, diagonal: bool, legend: str) -> str:
    if chart is None:
        return ""
    series = [
        (
            c.label + (f" (area {c.area:.3f})" if c.area is not None else ""),
            list(c.x),
            list(c.y),
        )
        for c in chart.curves
    ]
    if not series:
        return _figure(chart.title, "", chart.note or "nothing to draw")
    drawn = svg.line_chart(
        chart.kind,
        chart.title,
        series,
        chart.x_label,
        chart.y_label,
        unit_square=True,
        diagonal=diagonal,
        legend=legend,
    )
    return _figure(chart.title, drawn, chart.note)


def _charts(report: ModelReport) -> str:
    figures = []
    if report.importance:
        shown = report.importance[:15]
        permutation = [i.permutation for i in shown]
        has_gain = any(i.gain is not None for i in shown)
        label = f"worsening of {report.importance_metric} when shuffled"
        figures.append(
            _figure(
                "Feature importance",
                svg.bar_chart(
                    "importance",
                    "Feature importance",
                    [
                        (i.feature, v, i.permutation_std)
                        for i, v in zip(shown, permutation, strict=True)
                    ],
                    label,
                    second=[i.gain for i in shown] if has_gain else None,
                    legend=("permutation", "gain share") if has_gain else (),
                ),
            )
        )
    figures.append(_curve_figure(report.chart("roc"), diagonal=True, legend="bottom-right"))
    figures.append(_curve_figure(report.chart("pr"), diagonal=False, legend="bottom-left"))
    figures.append(_curve_figure(report.chart("calibration"), diagonal=True, legend="top-left"))
    residuals = report.residuals
    if residuals is not None and residuals.predicted:
        figures.append(
            _figure(
                "Residuals against the prediction",
                svg.scatter_chart(
                    "residuals",
                    "Residuals against the prediction",
                    residuals.predicted,
                    residuals.residual,
                    "predicted",
                    "truth − predicted",
                ),
                f"{len(residuals.predicted):,} rows shown; mean residual {_n(residuals.mean)}, "
                f"standard deviation {_n(residuals.std)}",
            )
        )
        for feature in residuals.by_feature[:3]:
            figures.append(
                _figure(
                    f"Residuals by {feature.feature}",
                    svg.bar_chart(
                        f"residuals-{feature.feature}",
                        f"Mean residual by {feature.feature}",
                        [(b.label, b.mean_residual, None) for b in feature.bins],
                        "mean residual (truth − predicted)",
                    ),
                )
            )
    figures = [f for f in figures if f]
    if not figures:
        return ""
    return f'<h2>Charts</h2><div class="grid">{"".join(figures)}</div>'


def _metrics(report: ModelReport) -> str:
    if not report.metrics:
        return ""
    confidence = f"{report.confidence:.0%}" if report.confidence else "95%"
    rows = [
        [
            f"<td>{escape(m.name)}{' <b>(primary)</b>' if m.primary else ''}</td>",
            _td(m.value, True),
            _td(m.low, True),
            _td(m.high, True),
            f'<td class="muted">{escape(m.why or "")}</td>',
        ]
        for m in report.metrics
    ]
    about = (
        f"On {report.holdout_rows:,} hold-out rows; intervals from {report.resamples} bootstrap "
        f"resamples of {report.evaluated_rows:,} rows (the promotion gate's resampling)."
        if report.evaluated_rows
        else ""
    )
    return f'<h2>Metrics</h2><p class="sub">{escape(about)}</p>' + _table(
        ["metric", "value", f"{confidence} low", f"{confidence} high", ""], rows
    )


def _confusion(report: ModelReport) -> str:
    matrix = report.confusion
    if matrix is None:
        return ""
    labels = matrix.labels
    head = ["truth ↓ / predicted →", *(escape(label) for label in labels)]
    rows = []
    for label, counts in zip(labels, matrix.counts, strict=True):
        total = sum(counts) or 1
        cells = [f"<th>{escape(label)}</th>"]
        for j, count in enumerate(counts):
            share = count / total
            # Diagonal cells in green, errors in red, darker for a larger share of the row.
            base = (40, 150, 70) if labels[j] == label else (210, 60, 50)
            mix = [round(255 - (255 - c) * share * 0.85) for c in base]
            cells.append(f'<td style="background:rgb({mix[0]},{mix[1]},{mix[2]})">{count:,}</td>')
        rows.append(cells)
    return "<h2>Confusion matrix</h2>" + _table(head, rows, "cm")


def _importance(report: ModelReport) -> str:
    if not report.importance:
        return ""
    gain = f"gain share ({escape(report.gain_kind)})" if report.gain_kind else "gain"
    rows = [
        [
            f"<td>{escape(i.feature)}</td>",
            _td(i.permutation, True),
            _td(i.permutation_std, True),
            _td(i.gain, True),
        ]
        for i in report.importance
    ]
    about = (
        f"Permutation importance: how much {report.importance_metric} worsens when a "
        f"feature's values are shuffled, on {report.permutation_rows:,} hold-out rows "
        "(mean ± spread over repeats)."
    )
    if report.gain_kind is None:
        about += " The model has no gain of its own."
    return f'<h2>Feature importance</h2><p class="sub">{escape(about)}</p>' + _table(
        ["feature", "permutation", "±", gain], rows
    )


def _residual_tables(report: ModelReport) -> str:
    residuals = report.residuals
    if residuals is None or not residuals.by_feature:
        return ""
    parts = ["<h2>Residuals by feature</h2>"]
    for feature in residuals.by_feature:
        rows = [
            [
                f"<td>{escape(b.label)}</td>",
                _td(b.rows, True),
                _td(b.mean_residual, True),
                _td(b.mean_abs_residual, True),
            ]
            for b in feature.bins
        ]
        parts.append(
            f"<h3>{escape(feature.feature)} "
            f'<span class="muted">({escape(feature.kind)})</span></h3>'
        )
        parts.append(_table(["values", "rows", "mean residual", "mean |residual|"], rows))
    return "".join(parts)


def _profile(report: ModelReport) -> str:
    profile = report.profile
    if profile is None:
        return ""
    rows = []
    for c in profile.columns:
        if c.kind == "numeric":
            shape = svg.sparkline(c.histogram, c.edges)
            summary = f"mean {_n(c.mean)} · std {_n(c.std)} · {_n(c.min)} to {_n(c.max)}"
        else:
            shape = ""
            summary = ", ".join(f"{escape(v)} ({n:,})" for v, n in c.top)
        rows.append(
            [
                f"<td>{escape(c.name)}</td>",
                f"<td>{escape(c.kind)}</td>",
                f"<td>{escape(c.dtype)}</td>",
                _td(c.count, True),
                _td(c.nulls, True),
                _td(c.unique, True),
                f"<td>{summary}</td>",
                f"<td>{shape}</td>",
            ]
        )
    return (
        f'<h2>Training data profile</h2><p class="sub">{escape(profile.source)}: '
        f"{profile.rows:,} rows.</p>"
        + _table(
            ["column", "kind", "dtype", "values", "nulls", "distinct", "summary", "shape"], rows
        )
    )


def _lineage(report: ModelReport) -> str:
    lineage = report.lineage
    if lineage is None:
        return ""
    facts = [
        (
            "run",
            f"{lineage.run_id} ({escape(lineage.run_status or '?')}, trainer "
            f"{escape(lineage.trainer or '?')})",
        ),
        ("started / ended", f"{_when(lineage.started_at)} / {_when(lineage.ended_at)}"),
        ("model", f"<code>{escape(lineage.model_sha256)}</code>"),
        ("feature schema", f"<code>{escape(lineage.schema_sha256 or '–')}</code>"),
        ("hold-out", f"<code>{escape(lineage.holdout_sha256 or '–')}</code>"),
    ]
    for d in lineage.datasets:
        facts.append(
            (
                f"data ({escape(d.role or '?')})",
                f"<code>{escape(d.sha256)}</code> {d.rows:,} rows {escape(d.path)}",
            )
        )
    rows = [[f"<th>{k}</th>", f"<td>{v}</td>"] for k, v in facts]
    params = [
        [
            f"<td>{escape(str(k))}</td>",
            f"<td><code>{escape(json.dumps(v, default=str))}</code></td>",
        ]
        for k, v in sorted(lineage.params.items())
    ]
    environment = [
        [f"<td>{escape(str(k))}</td>", f"<td><code>{escape(_short(v))}</code></td>"]
        for k, v in lineage.environment.items()
    ]
    out = "<h2>Lineage</h2>" + _table(["", ""], rows)
    if params:
        out += "<h3>Parameters</h3>" + _table(["param", "value"], params)
    if environment:
        out += "<h3>Environment</h3>" + _table(["", ""], environment)
    return out


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return "; ".join(_short(v) for v in value) or "none"
    return str(value)


def _decisions(report: ModelReport) -> str:
    if report.lineage is None:
        return ""
    if not report.decisions:
        return '<h2>Promotion gate</h2><p class="sub">No decision about this version yet.</p>'
    rows = []
    for d in report.decisions:
        verdict = (
            '<span class="ok">promoted</span>' if d.promoted else '<span class="no">kept out</span>'
        )
        interval = (
            f"{_n(d.interval_low)} to {_n(d.interval_high)}"
            if d.interval_low is not None and d.interval_high is not None
            else "–"
        )
        over = f"v{d.champion}" if d.champion is not None else "–"
        rows.append(
            [
                f"<td>{_when(d.created_at)}</td>",
                f"<td>v{d.challenger} → {escape(d.alias)}</td>",
                f"<td>{over}</td>",
                f"<td>{verdict}</td>",
                f"<td>{escape(d.method or '')}</td>",
                f"<td>{interval}</td>",
                f"<td>{escape(d.reason)}</td>",
            ]
        )
    return "<h2>Promotion gate</h2>" + _table(
        ["when", "decision", "over", "verdict", "method", "interval", "reason"], rows
    )
