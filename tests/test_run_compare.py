"""`run compare`: the data versions and evaluation set of each run, the
diff-only params, deltas against a baseline run, the metric charted first, and
the overlay's shared x axis (steps or fraction of training).

Runs are made in this process through the tracking API (no training); the
CLI runs in process too."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from wbtest import wb_inprocess

import workbench as wb
from workbench.data.versions import link_run, register
from workbench.runs.compare import (
    baseline_deltas,
    chart_metric,
    compare_runs,
    default_x_axis,
    overlay,
)
from workbench.store import open_store
from workbench.templates import init_project


@pytest.fixture
def cli():
    """These commands only read the store: run them in this process."""
    return wb_inprocess


def _holdout(folder: Path, name: str, rows: int) -> Path:
    path = folder / name
    pd.DataFrame({"x": range(rows), "y": [i % 2 for i in range(rows)]}).to_parquet(path)
    return path


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, int]:
    """Three runs of project `p` (primary metric accuracy): `a` and `b` on the
    same data version and hold-out, `c` on another data version and hold-out.
    `a` logs 200 steps of val_accuracy, `b` 20 and `c` none; all log final
    accuracy and rmse."""
    folder = init_project(tmp_path / "p", "script")
    first = folder / "data" / "train.csv"
    second = tmp_path / "more.csv"
    second.write_text(first.read_text() + first.read_text().split("\n", 1)[1])
    shared = _holdout(tmp_path, "holdout.parquet", 30)
    other = _holdout(tmp_path, "other.parquet", 45)
    plan = {
        "a": ({"lr": 0.1, "layers": 2, "act": "relu", "seed": 0}, 200, 0.90, 0.30, first, shared),
        "b": ({"lr": 0.01, "layers": 2, "act": "relu", "seed": 0}, 20, 0.95, 0.20, first, shared),
        "c": ({"lr": 0.01, "layers": 3, "act": "relu", "seed": 0}, 0, 0.80, 0.40, second, other),
    }
    ids: dict[str, int] = {}
    for name, (params, steps, accuracy, rmse, data, holdout) in plan.items():
        with wb.start_run(project=folder, params=params) as run:
            for step in range(1, steps + 1):
                wb.log_metric("val_accuracy", accuracy * step / steps, step=step)
            wb.log_metrics({"accuracy": accuracy, "rmse": rmse})
            wb.log_artifact(holdout, kind="evaluation")
            ids[name] = run.id
    store = open_store()
    try:
        project_id = store.scalar("SELECT id FROM projects WHERE name = 'p'")
        for name, (*_, data, _holdout_file) in plan.items():
            version = register(store, project_id, data)
            link_run(store, ids[name], version["id"])
    finally:
        store.close()
    return ids


def test_json_shows_data_versions_evaluation_sets_and_the_metric_to_chart(cli, runs):
    a, b, c = runs["a"], runs["b"], runs["c"]
    doc = json.loads(cli("run", "compare", str(a), str(b), str(c), "--json", check=True).stdout)
    assert [r["id"] for r in doc["runs"]] == [a, b, c]
    data = [r["datasets"] for r in doc["runs"]]
    assert [len(d) for d in data] == [1, 1, 1]
    assert data[0][0]["id"] == data[1][0]["id"] != data[2][0]["id"]
    assert data[0][0]["role"] == "train" and data[2][0]["rows"] == 2 * data[0][0]["rows"]
    evaluation = [r["evaluation"] for r in doc["runs"]]
    assert [e["rows"] for e in evaluation] == [30, 30, 45]
    assert {e["kind"] for e in evaluation} == {"artifact"}
    assert evaluation[0]["sha256"] == evaluation[1]["sha256"] != evaluation[2]["sha256"]
    assert doc["data_differs"] and doc["evaluation_differs"]
    # The project's primary metric, drawn as its learning curve.
    assert doc["primary_metric"] == "accuracy"
    assert doc["chart_metric"] == "val_accuracy"
    assert doc["points"]["val_accuracy"] == [200, 20, 0]
    assert doc["directions"] == {"accuracy": "higher", "rmse": "lower", "val_accuracy": "higher"}
    assert doc["best"]["accuracy"] == b and doc["best"]["rmse"] == b
    assert doc["baseline"] is None and doc["deltas"] == {} and not doc["diff_only"]

    same = json.loads(cli("run", "compare", str(a), str(b), "--json", check=True).stdout)
    assert not same["data_differs"] and not same["evaluation_differs"]


def test_diff_only_hides_identical_params(cli, runs):
    ids = [str(runs[n]) for n in ("a", "b", "c")]
    full = json.loads(cli("run", "compare", *ids, "--json", check=True).stdout)
    assert list(full["params"]) == ["act", "layers", "lr", "seed"]
    assert full["differing_params"] == ["layers", "lr"]
    doc = json.loads(cli("run", "compare", *ids, "--diff-only", "--json", check=True).stdout)
    assert doc["diff_only"] and set(doc["params"]) == {"lr", "layers"}
    assert doc["params"]["layers"] == [2, 2, 3]

    human = cli("run", "compare", *ids, "--diff-only", check=True)
    assert "* lr" in human.stdout and "* layers" in human.stdout
    assert "seed" not in human.stdout and "  act " not in human.stdout
    assert "2 identical params hidden" in human.stderr
    # Without the flag the identical ones are there, unmarked, after those that differ.
    table = cli("run", "compare", *ids, check=True).stdout
    order = [table.index(p) for p in ("* layers", "* lr", "  act", "  seed")]
    assert order == sorted(order)


def test_baseline_deltas_are_judged_by_each_metrics_direction(cli, runs):
    a, b, c = runs["a"], runs["b"], runs["c"]
    doc = json.loads(
        cli("run", "compare", str(b), str(c), "--baseline", str(a), "--json", check=True).stdout
    )
    # The baseline joins the comparison, first.
    assert [r["id"] for r in doc["runs"]] == [a, b, c] and doc["baseline"] == a
    assert doc["deltas"]["accuracy"] == pytest.approx([0.0, 0.05, -0.10])
    assert doc["versus_baseline"]["accuracy"] == ["same", "better", "worse"]
    # rmse: lower is better, so b's smaller value is better and c's larger worse.
    assert doc["deltas"]["rmse"] == pytest.approx([0.0, -0.1, 0.1])
    assert doc["versus_baseline"]["rmse"] == ["same", "better", "worse"]
    # c logged no curve: no delta where a value is missing.
    assert doc["versus_baseline"]["val_accuracy"][2] is None

    human = cli("run", "compare", str(a), str(b), "--baseline", str(a), check=True)
    assert f"run {a} (baseline)" in human.stdout
    assert "0.95 (+0.05)" in human.stdout
    assert f"metrics against run {a}" in human.stderr


def test_human_output_has_the_data_and_evaluation_rows_and_warns_of_different_sets(cli, runs):
    a, c = runs["a"], runs["c"]
    shown = cli("run", "compare", str(a), str(c), check=True)
    lines = shown.stdout.splitlines()
    data = next(line for line in lines if "data train" in line)
    assert data.lstrip().startswith("* data train") and data.count(" rows") == 2
    evaluation = next(line for line in lines if "eval set" in line)
    assert "artifact " in evaluation and "30 rows" in evaluation and "45 rows" in evaluation
    assert "not scored on the same evaluation set" in shown.stderr
    primary = next(line for line in lines if "accuracy ↑ ★" in line)
    assert "0.9" in primary


def test_many_runs_are_printed_in_parts_that_fit_the_width(cli, tmp_path, monkeypatch):
    folder = init_project(tmp_path / "p", "script")
    ids = []
    for i in range(8):
        with wb.start_run(project=folder, params={"a_rather_long_param": f"value-{i:04d}"}) as run:
            wb.log_metric("accuracy", 0.5 + i / 100)
            ids.append(str(run.id))
    monkeypatch.setenv("COLUMNS", "80")
    out = cli("run", "compare", *ids, check=True).stdout
    assert all(len(line) <= 80 for line in out.splitlines())
    for run_id in ids:
        assert f"run {run_id}" in out
    assert "…" not in out  # nothing cut off: the runs go to the next part instead
    assert out.count("a_rather_long_param") >= 2


def test_bad_runs_and_baselines_are_one_line_errors(cli, runs):
    a = str(runs["a"])
    lonely = cli("run", "compare", a)
    assert lonely.returncode == 2 and "at least two runs" in lonely.stderr
    repeated = cli("run", "compare", a, a)
    assert repeated.returncode == 2 and "at least two runs" in repeated.stderr
    missing = cli("run", "compare", a, str(runs["b"]), "--baseline", "999")
    assert missing.returncode == 2 and "no run 999" in missing.stderr
    assert "Traceback" not in missing.stderr
    garbage = cli("run", "compare", a, str(runs["b"]), "--baseline", "x[red]")
    assert garbage.returncode == 2 and "whole numbers" in garbage.stderr


# The rules, without the CLI ----------------------------------------------------


@pytest.mark.parametrize(
    ("points", "primary", "chosen"),
    [
        ({"roc_auc": 1, "val_roc_auc": 30, "train_loss": 30}, "roc_auc", "val_roc_auc"),
        ({"roc_auc": 1, "valid_auc": 100}, "roc_auc", "valid_auc"),  # LightGBM's name
        ({"log_loss": 1, "valid_multi_logloss": 100}, "log_loss", "valid_multi_logloss"),
        ({"f1": 1, "valid_multi_logloss": 100}, "f1", "f1"),  # no curve of f1: the value
        ({"loss": 50, "val_loss": 50, "zeta": 1}, "accuracy", "val_loss"),  # primary not logged
        ({"loss": 50, "zeta": 1}, None, "loss"),
        ({"b": 1, "a": 1}, None, "a"),
        ({"val_auc": 1, "auc": 1}, "auc", "auc"),  # a one-point "curve" is no curve
        ({}, "auc", None),
    ],
)
def test_chart_metric_prefers_the_primary_metrics_learning_curve(points, primary, chosen):
    assert chart_metric(points, primary) == chosen


def test_default_x_axis_is_the_fraction_when_lengths_differ_tenfold():
    assert default_x_axis([150, 6000]) == "fraction"
    assert default_x_axis([150, 1499]) == "steps"
    assert default_x_axis([150, 1500]) == "fraction"
    assert default_x_axis([0, 6000]) == "steps"  # a run without the curve does not count
    assert default_x_axis([]) == "steps"


def test_baseline_deltas_leave_missing_and_nan_values_out():
    deltas, verdicts = baseline_deltas(
        [1, 2, 3], {"loss": [0.5, 0.25, float("nan")], "auc": [None, 0.9, 0.8]}, 2
    )
    assert deltas["loss"] == [0.25, 0.0, None] and verdicts["loss"] == ["worse", "same", None]
    assert deltas["auc"][0] is None and verdicts["auc"] == [None, "same", "worse"]
    assert baseline_deltas([1, 2], {"loss": [1.0, 2.0]}, None) == ({}, {})


def test_overlay_scales_each_run_to_its_own_length_on_the_fraction_axis(runs):
    store = open_store()
    try:
        comparison = compare_runs(store, [runs["a"], runs["b"], runs["c"]])
        steps = overlay(store, comparison, "val_accuracy", x_axis="steps")
        a, b, c = (steps.lines[runs[n]] for n in "abc")
        assert (a.xs[0], a.xs[-1], b.xs[-1]) == (1.0, 200.0, 20.0)
        assert len(a.xs) == 200 and c.xs == [] and not steps.points

        fraction = overlay(store, comparison, "val_accuracy", x_axis="fraction")
        a, b = fraction.lines[runs["a"]], fraction.lines[runs["b"]]
        assert a.xs[-1] == b.xs[-1] == 1.0  # both end at the end of their training
        assert b.xs[0] == pytest.approx(1 / 20) and a.xs[0] == pytest.approx(1 / 200)
        assert (a.scale, b.scale) == (200.0, 20.0)

        # Zoom: each run's last steps, or the last share of training.
        tail = overlay(store, comparison, "val_accuracy", x_axis="steps", zoom=100)
        assert tail.lines[runs["a"]].xs[0] == 101.0 and len(tail.lines[runs["b"]].xs) == 20
        share = overlay(store, comparison, "val_accuracy", x_axis="fraction", zoom=0.1)
        assert min(share.lines[runs["a"]].xs) >= 0.9 and min(share.lines[runs["b"]].xs) >= 0.9
        assert len(share.lines[runs["b"]].xs) == 3  # steps 18, 19, 20 of 20

        final = overlay(store, comparison, "accuracy")
        assert final.points and [line.ys for line in final.lines.values()] == [
            [0.90],
            [0.95],
            [0.80],
        ]
    finally:
        store.close()


def test_a_project_whose_config_is_gone_still_compares(cli, runs, tmp_path):
    # The folder moved: no primary metric to read, the first learning curve is charted.
    (tmp_path / "p" / "workbench.toml").rename(tmp_path / "p" / "moved.toml")
    ids = [str(runs["a"]), str(runs["b"])]
    doc = json.loads(cli("run", "compare", *ids, "--json", check=True).stdout)
    assert doc["primary_metric"] is None and doc["chart_metric"] == "val_accuracy"
    # Back in place (a new stamp): read again.
    (tmp_path / "p" / "moved.toml").rename(tmp_path / "p" / "workbench.toml")
    doc = json.loads(cli("run", "compare", *ids, "--json", check=True).stdout)
    assert doc["primary_metric"] == "accuracy"


def test_human_output_draws_each_runs_curve_on_one_axis_and_scale(cli, runs, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    a, b, c = (str(runs[n]) for n in "abc")
    out = cli("run", "compare", a, b, c, check=True).stdout.splitlines()
    # 200 steps beside 20: the fraction axis, each run's curve over its whole width.
    at = next(i for i, line in enumerate(out) if line.startswith("val_accuracy over"))
    assert "fraction of training" in out[at] and out[at].endswith("..0.95)")
    curves = {line.split()[1]: line for line in out[at + 1 :]}
    assert set(curves) == {a, b}  # c logged no curve
    assert curves[a].rstrip().endswith("0.9 (200 points)")
    assert curves[b].rstrip().endswith("0.95 (20 points)")
    blocks = curves[b].split()[2]
    assert blocks[-1] == "█" and blocks[0] == "▁"  # b ends highest; a's start is lowest
    # Both end at the right edge; b's first step is 1/20 of its training, a's 1/200.
    assert len(blocks) < len(curves[a].split()[2]) == 60
    # A metric of one value per run draws no curve; an unknown one is an error.
    assert "over" not in cli("run", "compare", a, b, "--metric", "rmse", check=True).stdout
    unknown = cli("run", "compare", a, b, "--metric", "nope")
    assert unknown.returncode == 2 and "none of these runs logged 'nope'" in unknown.stderr
