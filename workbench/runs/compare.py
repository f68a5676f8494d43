"""Comparing runs, for `run compare` and the TUI's Compare screen alike.

Params side by side (and which differ), the latest value of every metric with
the best run of each, and, against a pinned baseline run, every other run's
deltas judged better or worse by the metric's direction. Each run's data
versions and evaluation set come with it, so a comparison says whether the
runs learned from, and were scored on, the same rows.

It also decides what to chart first (the project's primary metric, its
learning curve when the runs have one) and reads the overlaid series on a
shared x axis: steps, or the fraction of each run's training.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.config.project import ProjectConfig, load_config
from workbench.core import formatting as fmt
from workbench.core import paths
from workbench.core.errors import UsageError, WorkbenchError
from workbench.core.metric_rules import (
    CURVE_PREFIXES,
    higher_is_better,
    is_curve,
    is_internal_param,
    lower_is_better,
    progress_total,
)
from workbench.runs.queries import find_run, iso, lost_runs, shown_status
from workbench.store import Store
from workbench.store import compare as compare_store
from workbench.store import runs as run_store
from workbench.store.compare import RunDataset
from workbench.store.dashboard import series_of, series_tail
from workbench.store.metrics import series
from workbench.store.runs import Run, RunStatus

__all__ = [
    "Comparison",
    "Overlay",
    "chart_metric",
    "compare_runs",
    "default_x_axis",
    "lower_is_better",  # see workbench.core.metric_rules
    "overlay",
    "resample",
]

X_AXES = ("steps", "fraction")
# A shared x axis in steps squeezes a short run into a sliver beside a long
# one; from this ratio of lengths on, a comparison opens on the fraction axis.
FRACTION_RATIO = 10
# The names LightGBM gives its learning curves (`valid_<name>`) for a primary
# metric named the scikit-learn way.
CURVE_ALIASES = {
    "roc_auc": ("auc",),
    "log_loss": ("binary_logloss", "multi_logloss", "logloss", "mlogloss"),
    "rmse": ("l2_root",),
    "mse": ("l2",),
    "mae": ("l1",),
    "average_precision": ("average_precision", "aucpr"),
}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The rows a run's final metrics were measured on: the hold-out its model
    version keeps in the registry, or an evaluation file the run logged."""

    kind: str  # "hold-out" (the registry's) or "artifact" (an evaluation file the run logged)
    sha256: str
    rows: int | None
    model: str | None = None  # PROJECT@VERSION whose hold-out it is

    def describe(self) -> str:
        rows = f" {self.rows} rows" if self.rows is not None else ""
        return f"{self.kind} {self.sha256[:8]}{rows}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "sha256": self.sha256, "rows": self.rows, "model": self.model}


@dataclass(frozen=True, slots=True)
class ComparedRun:
    """One run of a comparison: what identifies it and what it learned from."""

    id: int
    project: str | None
    status: str
    trainer: str
    started_at: float | None
    duration_s: float | None
    total: int | None  # steps it was set to take, when its params say
    datasets: tuple[RunDataset, ...] = ()
    evaluation: Evaluation | None = None

    def data_by_role(self) -> dict[str, str]:
        """Each role's versions as one cell: `v3 1a2b3c4d 569 rows`."""
        out: dict[str, list[str]] = {}
        for d in self.datasets:
            out.setdefault(d.role, []).append(f"v{d.version_id} {d.sha256[:8]} {d.rows} rows")
        return {role: ", ".join(cells) for role, cells in out.items()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "status": self.status,
            "trainer": self.trainer,
            "started_at": iso(self.started_at),
            "duration_s": self.duration_s,
            "datasets": [
                {
                    "id": d.version_id,
                    "sha256": d.sha256,
                    "path": d.path,
                    "rows": d.rows,
                    "role": d.role,
                }
                for d in self.datasets
            ],
            "evaluation": self.evaluation.as_dict() if self.evaluation else None,
        }


@dataclass(frozen=True, slots=True)
class TableRow:
    """A row of the comparison table: `key` names it (`status`, `data:train`,
    `evaluation`, `param:<k>`, `metric:<k>`); `differs` when the runs do not
    agree on it; `marks` per cell: `best`, `baseline`, `better`, `worse`,
    `same` or None."""

    key: str
    label: str
    cells: tuple[str, ...]
    differs: bool = False
    marks: tuple[str | None, ...] = ()

    @property
    def marked_label(self) -> str:
        """The label as shown: `* ` before it when the runs differ, else
        indented to line up; the rows that say what the runs are, as they are."""
        if self.key in ("status", "project", "duration"):
            return self.label
        return ("* " if self.differs else "  ") + self.label


def cell_value(value: Any) -> Any:
    """A float to 4 significant digits (never 0.30000000000000004)."""
    return f"{value:.4g}" if isinstance(value, float) else value


@dataclass(frozen=True, slots=True)
class Comparison:
    """Runs side by side. Lists hold one entry per run, in the runs' order."""

    runs: tuple[ComparedRun, ...]
    params: dict[str, list[Any]]
    differing_params: list[str]
    metrics: dict[str, list[float | None]]
    points: dict[str, list[int]]  # how many points each run logged of each metric
    best: dict[str, int]
    primary_metric: str | None
    chart_metric: str | None
    baseline: int | None = None
    deltas: dict[str, list[float | None]] = field(default_factory=dict)
    verdicts: dict[str, list[str | None]] = field(default_factory=dict)
    diff_only: bool = False

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.runs]

    @property
    def shown_params(self) -> dict[str, list[Any]]:
        """The params to show: only those that differ under `diff_only`."""
        if not self.diff_only:
            return self.params
        differing = set(self.differing_params)
        return {k: v for k, v in self.params.items() if k in differing}

    @property
    def data_differs(self) -> bool:
        """Whether the runs did not all use the same dataset versions."""
        return len({frozenset((d.role, d.version_id) for d in r.datasets) for r in self.runs}) > 1

    @property
    def evaluation_differs(self) -> bool:
        """Whether the runs were not all scored on the same evaluation rows
        (a run without a recorded evaluation set counts as different)."""
        return len({r.evaluation.sha256 if r.evaluation else None for r in self.runs}) > 1

    def with_baseline(self, run_id: int | None) -> Comparison:
        """The same comparison with `run_id` pinned as the baseline (None: unpinned)."""
        deltas, verdicts = baseline_deltas(self.ids, self.metrics, run_id)
        return replace(self, baseline=run_id, deltas=deltas, verdicts=verdicts)

    def with_diff_only(self, diff_only: bool) -> Comparison:
        return replace(self, diff_only=diff_only)

    def table(self) -> list[TableRow]:
        """The comparison as rows of a table, one cell per run, for the CLI and
        the TUI alike (each styles the cells by their `marks`): what the runs
        are, the data they used, their params (those that differ first), then
        their metrics (the primary metric first)."""
        rows = [TableRow("status", "status", tuple(r.status for r in self.runs))]
        if len({r.project for r in self.runs}) > 1:
            rows.append(TableRow("project", "project", tuple(r.project or "" for r in self.runs)))
        rows.append(
            TableRow("duration", "duration", tuple(fmt.seconds(r.duration_s) for r in self.runs))
        )
        by_role = [r.data_by_role() for r in self.runs]
        for role in sorted({role for cells in by_role for role in cells}):
            cells = tuple(c.get(role, "none") for c in by_role)
            rows.append(TableRow(f"data:{role}", f"data {role}", cells, len(set(cells)) > 1))
        if not any(by_role):
            rows.append(TableRow("data:none", "data", ("not recorded",) * len(self.runs)))
        evaluations = tuple(
            r.evaluation.describe() if r.evaluation else "not recorded" for r in self.runs
        )
        rows.append(TableRow("evaluation", "eval set", evaluations, self.evaluation_differs))
        differing = set(self.differing_params)
        # The params that differ first: on a short screen they are the ones in view.
        for key, values in sorted(self.shown_params.items(), key=lambda kv: kv[0] not in differing):
            cells = tuple("" if v is None else str(cell_value(v)) for v in values)
            rows.append(TableRow(f"param:{key}", key, cells, key in differing))
        for key in self.metric_order():
            rows.append(self._metric_row(key))
        return rows

    def metric_order(self) -> list[str]:
        """Metric keys, the primary metric and its curves first, then the rest
        in alphabetical order."""
        first = [
            k for k in (self.primary_metric, self.chart_metric) if k and k in self.metrics
        ]
        return list(dict.fromkeys([*first, *sorted(self.metrics)]))

    def _metric_row(self, key: str) -> TableRow:
        values = self.metrics[key]
        arrow = "↑" if higher_is_better(key) else "↓"
        label = f"{key} {arrow}" + (" ★" if key == self.primary_metric else "")
        if self.baseline is None:
            best = self.best.get(key)
            marks = tuple("best" if rid == best else None for rid in self.ids)
            return TableRow(f"metric:{key}", label, tuple(map(fmt.metric, values)), marks=marks)
        cells = []
        marks_: list[str | None] = []
        for rid, value, delta, verdict in zip(
            self.ids, values, self.deltas[key], self.verdicts[key], strict=True
        ):
            if rid == self.baseline:
                cells.append(fmt.metric(value))
                marks_.append("baseline")
            elif delta is None:
                cells.append(fmt.metric(value))
                marks_.append(None)
            else:
                cells.append(f"{fmt.metric(value)} ({delta:+.3g})")
                marks_.append(verdict)
        return TableRow(f"metric:{key}", label, tuple(cells), marks=tuple(marks_))

    def as_dict(self) -> dict[str, Any]:
        """The `run compare --json` document."""
        return {
            "runs": [r.as_dict() for r in self.runs],
            "params": self.shown_params,
            "differing_params": self.differing_params,
            "diff_only": self.diff_only,
            "metrics": self.metrics,
            "points": self.points,
            "directions": {
                k: "higher" if higher_is_better(k) else "lower" for k in self.metrics
            },
            "best": self.best,
            "primary_metric": self.primary_metric,
            "chart_metric": self.chart_metric,
            "data_differs": self.data_differs,
            "evaluation_differs": self.evaluation_differs,
            "baseline": self.baseline,
            "deltas": self.deltas,
            "versus_baseline": self.verdicts,
        }


def compare_runs(
    store: Store,
    run_ids: Sequence[int | str],
    *,
    baseline: int | str | None = None,
    diff_only: bool = False,
) -> Comparison:
    """Compare runs (ids as typed; repeats count once). A baseline not among
    them joins the comparison first. Reads only, in a few batched queries."""
    runs = _unique([find_run(store, rid) for rid in run_ids])
    base: Run | None = None
    if baseline is not None:
        base = find_run(store, baseline)
        if base.id not in {r.id for r in runs}:
            runs.insert(0, base)
    if len(runs) < 2:
        raise UsageError("compare needs at least two runs")
    ids = [r.id for r in runs]
    lost = lost_runs(store) if any(r.status is RunStatus.RUNNING for r in runs) else set()
    params_of = {r.id: run_store.params(store, r.id) for r in runs}
    found = series_of(store, ids)
    latest: dict[int, dict[str, float | None]] = {}
    counts: dict[int, dict[str, int]] = {}
    for s in found:
        latest.setdefault(s.run_id, {})[s.key] = s.value
        counts.setdefault(s.run_id, {})[s.key] = s.count

    param_keys = sorted({k for p in params_of.values() for k in p if not is_internal_param(k)})
    params = {k: [params_of[i].get(k) for i in ids] for k in param_keys}
    metric_keys = sorted({s.key for s in found})
    metrics = {k: [latest.get(i, {}).get(k) for i in ids] for k in metric_keys}
    points = {k: [counts.get(i, {}).get(k, 0) for i in ids] for k in metric_keys}
    primary = primary_metric(store, runs)
    most = {k: max(v) for k, v in points.items()}
    datasets = compare_store.datasets_of(store, ids)
    evaluations = _evaluations(store, ids)
    compared = tuple(
        ComparedRun(
            id=r.id,
            project=r.project,
            status=shown_status(r, lost).value,
            trainer=r.trainer,
            started_at=r.started_at,
            duration_s=r.duration(),
            total=progress_total(params_of[r.id], r.trainer),
            datasets=tuple(datasets.get(r.id, [])),
            evaluation=evaluations.get(r.id),
        )
        for r in runs
    )
    comparison = Comparison(
        runs=compared,
        params=params,
        differing_params=[k for k, v in params.items() if len({repr(x) for x in v}) > 1],
        metrics=metrics,
        points=points,
        best={k: b for k, v in metrics.items() if (b := best_run(k, ids, v)) is not None},
        primary_metric=primary,
        chart_metric=chart_metric(most, primary),
        diff_only=diff_only,
    )
    return comparison.with_baseline(base.id) if base is not None else comparison


def _unique(runs: list[Run]) -> list[Run]:
    """The runs without repeats, in their first places."""
    return list({r.id: r for r in runs}.values())  # a dict keeps each id's first place


def best_run(key: str, ids: Sequence[int], values: Sequence[float | None]) -> int | None:
    """The run with the best value of `key` by its direction; on a tie, the
    earlier run. None when no run has a value."""
    scored = [(v, i) for v, i in zip(values, ids, strict=True) if v is not None and v == v]
    if not scored:
        return None
    if lower_is_better(key):
        return min(scored, key=lambda vi: (vi[0], vi[1]))[1]
    return max(scored, key=lambda vi: (vi[0], -vi[1]))[1]


def baseline_deltas(
    ids: Sequence[int], metrics: Mapping[str, Sequence[float | None]], baseline: int | None
) -> tuple[dict[str, list[float | None]], dict[str, list[str | None]]]:
    """Each run's value minus the baseline's, per metric, and whether that is
    `better`, `worse` or the `same` by the metric's direction (None where
    either value is missing). Empty without a baseline."""
    if baseline is None:
        return {}, {}
    if baseline not in ids:
        shown = ", ".join(map(str, ids))
        raise UsageError(f"the baseline run {baseline} is not among the compared runs ({shown})")
    at = list(ids).index(baseline)
    deltas: dict[str, list[float | None]] = {}
    verdicts: dict[str, list[str | None]] = {}
    for key, values in metrics.items():
        base = values[at]
        row: list[float | None] = []
        judged: list[str | None] = []
        for value in values:
            if base is None or value is None or not math.isfinite(base) or not math.isfinite(value):
                row.append(None)
                judged.append(None)
                continue
            delta = value - base
            row.append(delta)
            if delta == 0:
                judged.append("same")
            else:
                judged.append("better" if (delta > 0) == higher_is_better(key) else "worse")
        deltas[key], verdicts[key] = row, judged
    return deltas, verdicts


# What to chart -----------------------------------------------------------------


def primary_metric(store: Store, runs: Sequence[Run]) -> str | None:
    """The primary metric of the project most of the runs belong to, as its
    workbench.toml names it; else the one their model versions were registered
    with; else the task's default. None when nothing says."""
    names = Counter(r.project for r in runs if r.project)
    folders = {r.project: r.project_path for r in runs}
    config = None
    for name, _ in names.most_common():
        config = _config(folders.get(name))
        if config is None:  # a moved or broken project: ask the registry
            continue
        if config.metric:
            return config.metric
        break
    registered = compare_store.registered_metrics(store, [r.id for r in runs])
    if registered:
        return Counter(registered.values()).most_common(1)[0][0]
    return config.primary_metric(None) if config is not None else None


# workbench.toml read and checked by folder, again only when the file changes:
# the TUI compares every two seconds, and checking a config can read its data.
_configs: dict[str, tuple[tuple[int, int], ProjectConfig | None]] = {}


def _config(folder: str | None) -> ProjectConfig | None:
    """The project's checked workbench.toml, or None when it cannot be read."""
    if not folder:
        return None
    try:
        stat = (Path(folder) / "workbench.toml").stat()
    except OSError:
        return None
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _configs.get(folder)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        config: ProjectConfig | None = load_config(Path(folder))
    except WorkbenchError:
        config = None
    _configs[folder] = (stamp, config)
    return config


def chart_metric(most_points: Mapping[str, int], primary: str | None) -> str | None:
    """The metric to chart first, from each key's largest point count over the
    runs: the primary metric's learning curve (`valid_<m>`, `val_<m>`, or
    LightGBM's name for it), else the primary metric itself, else the first
    learning curve, else the first series of many points, else the first key."""
    keys = sorted(most_points)
    if not keys:
        return None
    if primary:
        names = (primary, *CURVE_ALIASES.get(primary.lower(), ()))
        for name in names:
            for prefix in CURVE_PREFIXES:
                if most_points.get(prefix + name, 0) > 1:
                    return prefix + name
        if primary in most_points:
            return primary
    curves = [k for k in keys if is_curve(k) and most_points[k] > 1]
    many = [k for k in keys if most_points[k] > 1]
    return (curves or many or keys)[0]


def default_x_axis(lengths: Sequence[float]) -> str:
    """`fraction` when the longest run is FRACTION_RATIO times the shortest
    or more (in steps it would be a sliver), else `steps`."""
    present = [n for n in lengths if n and n > 0]
    if len(present) < 2:
        return "steps"
    return "fraction" if max(present) >= FRACTION_RATIO * min(present) else "steps"


# The overlay ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One run's curve of the charted metric: its points as drawn, how many
    it logged and the step its fraction of training is measured against."""

    run_id: int
    xs: list[float]
    ys: list[float | None]
    count: int
    last_step: float | None
    scale: float | None = None  # the step that is 1.0 on the fraction axis


@dataclass(frozen=True, slots=True)
class Overlay:
    """The charted metric for every run, on one x axis. `points` when no run
    logged more than one point of it (one value per run: a point chart)."""

    key: str
    x_axis: str
    zoom: float | None
    lines: dict[int, Line]

    @property
    def points(self) -> bool:
        return all(line.count <= 1 for line in self.lines.values())


ZOOMS: dict[str, tuple[float | None, ...]] = {
    # Each run's last N steps, or the last share of training.
    "steps": (None, 1000, 100),
    "fraction": (None, 0.5, 0.1),
}


def zoom_label(x_axis: str, zoom: float | None) -> str:
    if zoom is None:
        return "all"
    return f"last {zoom:.0%}" if x_axis == "fraction" else f"last {int(zoom)} steps"


def overlay(
    store: Store,
    comparison: Comparison,
    key: str,
    *,
    x_axis: str = "steps",
    zoom: float | None = None,
    max_points: int = 300,
) -> Overlay:
    """`key` of every compared run, downsampled to `max_points` a run, on the
    shared x axis: steps, or the fraction of each run's training (its last
    step; for a run still going, the steps it was set to take when known)."""
    if x_axis not in X_AXES:
        raise UsageError(f"the x axis is one of {', '.join(X_AXES)}; got {x_axis!r}")
    counts = comparison.points.get(key) or [0] * len(comparison.runs)
    lines = {}
    for run, count in zip(comparison.runs, counts, strict=True):
        lines[run.id] = read_line(store, run, key, count, x_axis, zoom, max_points)
    return Overlay(key, x_axis, zoom, lines)


def read_line(
    store: Store,
    run: ComparedRun,
    key: str,
    count: int,
    x_axis: str,
    zoom: float | None,
    max_points: int,
) -> Line:
    """One run's curve of `key`, as `overlay` describes."""
    if count == 0:
        return Line(run.id, [], [], 0, None)
    if x_axis == "steps" and zoom is not None and count > zoom:
        xs, ys = _tail(store, run.id, key, int(zoom), max_points)
        last = xs[-1] if xs else None
        return Line(run.id, xs, ys, count, last)
    # The fraction axis zooms on the last share of training: read enough
    # buckets that the share kept still has about `max_points`.
    wanted = max_points if zoom is None or x_axis == "steps" else int(max_points / zoom)
    found = series(store.conn, run.id, key, wanted)
    xs = [float(p["x"]) for p in found["points"]]
    ys = [p["mean"] for p in found["points"]]
    last = xs[-1] if xs else None
    if x_axis == "steps":
        return Line(run.id, xs, ys, count, last)
    scale = last
    if run.status in ("running", "queued") and run.total and (last is None or run.total > last):
        scale = float(run.total)  # a run still going is shown short of the end
    if not scale or scale <= 0:
        fractions = [1.0] * len(xs)  # one point at step 0: its final value
    else:
        fractions = [x / scale for x in xs]
    if zoom is not None:
        kept = [(f, y) for f, y in zip(fractions, ys, strict=True) if f >= 1 - zoom]
        fractions, ys = [k[0] for k in kept], [k[1] for k in kept]
    return Line(run.id, fractions, ys, count, last, scale)


def resample(
    line: Line, columns: int, low: float, high: float
) -> list[float | None]:
    """A curve as `columns` values over the x range low..high, for a text
    chart: each column the mean of its points, a column without points between
    two that have some the value before it, None outside the curve's range."""
    sums = [0.0] * columns
    counts = [0] * columns
    span = (high - low) or 1.0
    for x, y in zip(line.xs, line.ys, strict=True):
        if y is None or not math.isfinite(y) or not low <= x <= high:
            continue
        column = min(columns - 1, int((x - low) / span * columns))
        sums[column] += y
        counts[column] += 1
    out = [total / n if n else None for total, n in zip(sums, counts, strict=True)]
    present = [i for i, v in enumerate(out) if v is not None]
    for i in range(present[0] + 1, present[-1]) if present else ():
        if out[i] is None:
            out[i] = out[i - 1]  # a sparse curve drawn without holes
    return out


def _tail(
    store: Store, run_id: int, key: str, points: int, max_points: int
) -> tuple[list[float], list[float | None]]:
    """The last `points` points of a series, averaged down to `max_points`."""
    tail = series_tail(store, run_id, key, points)
    groups = min(len(tail), max_points)
    xs: list[float] = []
    ys: list[float | None] = []
    for g in range(groups):
        part = tail[len(tail) * g // groups : len(tail) * (g + 1) // groups]
        values = [p.value for p in part if p.value is not None]
        xs.append(float(part[-1].x))
        ys.append(sum(values) / len(values) if values else None)
    return xs, ys


# Evaluation sets ----------------------------------------------------------------

_rows_cache: dict[str, int] = {}


def _evaluations(store: Store, run_ids: Sequence[int]) -> dict[int, Evaluation]:
    out = {}
    for run_id, record in compare_store.evaluation_sets(store, run_ids).items():
        rows = _parquet_rows(record.sha256)
        if rows is None:
            rows = record.gate_rows
        if record.source == "model":
            model = f"{record.project}@{record.model_version}" if record.project else None
            out[run_id] = Evaluation("hold-out", record.sha256, rows, model)
        else:
            out[run_id] = Evaluation("artifact", record.sha256, rows)
    return out


def _parquet_rows(sha256: str) -> int | None:
    """Rows of a stored Parquet artifact, from its footer (content-addressed,
    so read once); None when it is missing or not Parquet."""
    if sha256 in _rows_cache:
        return _rows_cache[sha256]
    path = paths.artifact_file(sha256)
    try:
        with open(path, "rb") as fh:
            fh.seek(-4, 2)
            if fh.read(4) != b"PAR1":
                return None
        import pyarrow.parquet as pq

        rows = int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:  # missing, short or damaged: the count is left out, not the comparison
        return None
    _rows_cache[sha256] = rows  # only what was read: a file may yet arrive
    return rows
