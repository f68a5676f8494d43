"""`workbench model report`: the report of a model version for classification
(a LightGBM model of a string target with three classes, trained by a real run;
a scikit-learn model of a 0/1 integer target) and regression, as --json, as
the terminal summary and as the self-contained HTML; the bundle's model card;
the TUI's Report screen."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from wbtest import wb_inprocess as wbi

# --------------------------------------------------------------------------- helpers


def make_project(
    root: Path, name: str, frame: pd.DataFrame, target: str, task: str, train: str = ""
) -> Path:
    """A project whose models come from `wb.log_model` (trainer "script"); `train`
    adds lines to its [train] table."""
    folder = root / name
    (folder / "data").mkdir(parents=True)
    frame.to_csv(folder / "data" / "train.csv", index=False)
    (folder / "train.py").write_text("# models are logged in-process by the test\n")
    (folder / "workbench.toml").write_text(
        f'[project]\nname = "{name}"\ntask = "{task}"\n'
        f'[data]\ntrain = "data/train.csv"\ntarget = "{target}"\n'
        f'[train]\ntrainer = "script"\nscript = "train.py"\n{train}'
    )
    return folder


def log_model(folder: Path, model, x_train, y_train, x_test, y_test) -> None:
    """A model version trained on (x_train, y_train) with its own hold-out rows."""
    import workbench as wb

    with wb.start_run(project=folder):
        wb.log_model(model.fit(x_train, y_train), x_test, y_test, x_train=x_train)


def binary_project(root: Path, name: str = "binary", rows: int = 800) -> Path:
    """0/1 integer target that depends on `signal`, not on `noise`."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    x = pd.DataFrame({"signal": rng.normal(size=rows), "noise": rng.normal(size=rows)})
    y = pd.Series(((x.signal + rng.normal(scale=0.7, size=rows)) > 0).astype(int), name="label")
    folder = make_project(root, name, x.assign(label=y), "label", "classification")
    cut = rows * 3 // 4
    log_model(folder, LogisticRegression(), x[:cut], y[:cut], x[cut:], y[cut:])
    return folder


def report_json(ref: str) -> dict:
    return json.loads(wbi("model", "report", ref, "--json", check=True).stdout)


_EXTERNAL = re.compile(
    r"""(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:|//)|<script[^>]*\bsrc|url\(\s*["']?\s*(?:https?:|//)|@import""",
    re.IGNORECASE,
)


def assert_self_contained(html: str) -> None:
    """No reference that a browser would fetch: no scripts at all, no http(s) or
    protocol-relative URL in src/href/url(), no @import. (A URL in the data, shown
    as escaped text, is not a reference.)"""
    assert not _EXTERNAL.search(html), _EXTERNAL.search(html)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower() and "<iframe" not in html.lower()


# --------------------------------------------------------------------------- tests


@pytest.mark.slow
def test_multiclass_lightgbm_report_json_html_and_bundle_card(tmp_path, tmp_path_factory, wb_home):
    """A real run of the built-in LightGBM trainer on a string target with three
    classes (the penguins sample, from the session's trained store): one-vs-rest
    curves, gain and permutation importance, the training data's profile, the
    lineage and the gate's first decision; the bundle carries the report as its
    model card and still verifies."""
    from tui_support import copy_trained, sql, trained_template

    template = trained_template(tmp_path_factory)
    projects = copy_trained(template, wb_home, tmp_path)
    sql(
        wb_home,
        "UPDATE dataset_versions SET path = replace(path, ?, ?)",
        (str(template / "projects"), str(projects)),
    )
    report = report_json("penguins")
    assert report["ref"] == "penguins@1" and report["task"] == "classification"
    classes = ["Adelie", "Chinstrap", "Gentoo"]
    assert report["classes"] == classes and report["primary_metric"] == "f1"
    rows = report["holdout_rows"]
    assert rows > 50 and report["evaluated_rows"] == rows and report["resamples"] == 1000

    # Metrics: the same point values the run recorded, inside their intervals.
    shown = json.loads(wbi("model", "show", "penguins", "--json", check=True).stdout)
    metrics = {m["name"]: m for m in report["metrics"]}
    assert report["metrics"][0]["name"] == "f1" and report["metrics"][0]["primary"]
    for name in ("accuracy", "f1", "log_loss", "roc_auc"):
        m = metrics[name]
        assert m["value"] == pytest.approx(shown["metrics"][name], rel=1e-9)
        assert m["low"] <= m["value"] <= m["high"], m

    # The confusion matrix counts every hold-out row; its diagonal is the accuracy.
    confusion = report["confusion"]
    assert confusion["labels"] == classes
    counts = np.array(confusion["counts"])
    assert counts.shape == (3, 3) and counts.sum() == rows
    assert np.trace(counts) / rows == pytest.approx(metrics["accuracy"]["value"])

    # One-vs-rest curves, one per class, from (0,0) to (1,1); their mean AUC is roc_auc.
    charts = {c["kind"]: c for c in report["charts"]}
    roc = charts["roc"]["curves"]
    assert [c["label"] for c in roc] == classes
    for curve in roc:
        assert (curve["x"][0], curve["y"][0], curve["x"][-1], curve["y"][-1]) == (0, 0, 1, 1)
        assert len(curve["x"]) <= 200 and 0.5 < curve["area"] <= 1
    assert np.mean([c["area"] for c in roc]) == pytest.approx(metrics["roc_auc"]["value"], abs=1e-9)
    assert [c["label"] for c in charts["pr"]["curves"]] == classes
    for curve in charts["calibration"]["curves"]:
        assert all(0 <= v <= 1 for v in curve["x"] + curve["y"])

    # Importance: LightGBM's gain shares sum to one; the bill and flipper measures matter.
    importance = report["importance"]
    assert report["gain_kind"] == "split gain (LightGBM)" and report["importance_metric"] == "f1"
    assert sum(i["gain"] for i in importance) == pytest.approx(1.0)
    assert {i["feature"] for i in importance} == set(report["features"])
    assert importance[0]["permutation"] > 0.05
    assert importance[0]["feature"] in {
        "bill_length_mm",
        "flipper_length_mm",
        "bill_depth_mm",
        "island",
    }

    # The training data's profile (the data version the run used) and the lineage.
    profile = report["profile"]
    assert profile["source"].startswith("training data train.csv")
    columns = {c["name"]: c for c in profile["columns"]}
    assert columns["species"]["kind"] == "categorical"
    assert columns["bill_length_mm"]["kind"] == "numeric" and columns["bill_length_mm"]["mean"] > 30
    lineage = report["lineage"]
    assert lineage["run_id"] == shown["run_id"] and lineage["run_status"] == "succeeded"
    run = json.loads(wbi("run", "show", str(shown["run_id"]), "--json", check=True).stdout)
    assert lineage["params"] == run["params"] and lineage["params"]["n_estimators"] == 150
    assert [d["sha256"] for d in lineage["datasets"]] == [d["sha256"] for d in shown["datasets"]]
    assert lineage["environment"]["python"] and "lightgbm" in lineage["environment"]["libraries"]
    [decision] = report["decisions"]
    assert decision["promoted"] and decision["alias"] == "champion"

    # The HTML: one self-contained file with the charts drawn inline.
    out = tmp_path / "report.html"
    wbi("model", "report", "penguins@1", "-o", str(out), check=True)
    html = out.read_text()
    assert_self_contained(html)
    for kind in ("importance", "roc", "pr", "calibration"):
        assert f'class="chart" data-kind="{kind}"' in html
    assert "Gentoo" in html and "Confusion matrix" in html and "Promotion gate" in html
    again = wbi("model", "report", "penguins@1", "-o", str(out))
    assert again.returncode == 2 and "--force" in again.stderr

    # The bundle's model card: the same report, hashed, and the bundle verifies.
    bundle = tmp_path / "bundle"
    wbi("model", "export", "penguins", "-o", str(bundle), check=True)
    card = (bundle / "model_card.html").read_text()
    assert_self_contained(card)
    assert "penguins@1" in card and 'data-kind="roc"' in card
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model_card"] == "model_card.html" and "model_card.html" in manifest["files"]
    assert json.loads(wbi("model", "verify", str(bundle), "--json", check=True).stdout)["ok"]
    (bundle / "model_card.html").write_text(card.replace("penguins@1", "penguins@9"))
    tampered = json.loads(wbi("model", "verify", str(bundle), "--json").stdout)
    assert not tampered["ok"] and any("model_card.html" in p for p in tampered["problems"])


def test_binary_integer_target(tmp_path):
    """A 0/1 target: one ROC curve for the positive class 1, whose area is
    scikit-learn's roc_auc on the hold-out; no gain for a linear model, and the
    informative feature's permutation importance beats the noise's."""
    from sklearn.metrics import roc_auc_score

    folder = binary_project(tmp_path)
    report = report_json("binary")
    assert report["classes"] == ["0", "1"] and report["holdout_rows"] == 200
    [roc] = report["charts"][0]["curves"]
    assert report["charts"][0]["kind"] == "roc" and roc["label"] == "1 (positive)"
    frame = pd.read_csv(folder / "data" / "train.csv")[600:]
    from workbench.models.registry import load_model, resolve
    from workbench.store import open_store

    store = open_store()
    try:
        model = load_model(resolve(store, "binary"))
        _, proba = model.predict(frame.drop(columns=["label"]))
    finally:
        store.close()
    expected = roc_auc_score(frame["label"], proba[:, 1])
    assert roc["area"] == pytest.approx(expected)
    metrics = {m["name"]: m for m in report["metrics"]}
    assert metrics["roc_auc"]["value"] == pytest.approx(expected)
    assert metrics["roc_auc"]["low"] < expected <= metrics["roc_auc"]["high"]
    assert report["confusion"]["labels"] == ["0", "1"]
    assert sum(map(sum, report["confusion"]["counts"])) == 200

    importance = {i["feature"]: i for i in report["importance"]}
    assert report["gain_kind"] is None and importance["signal"]["gain"] is None
    assert importance["signal"]["permutation"] > importance["noise"]["permutation"] + 0.1
    assert report["importance"][0]["feature"] == "signal"
    # No data version was linked to this run: the hold-out is profiled, and the report says so.
    assert report["profile"]["source"] == "the hold-out rows"
    assert any("profile is of the hold-out" in n for n in report["notes"])

    # The terminal summary: the tables and where the charts are.
    text = wbi("model", "report", "binary", check=True)
    assert "roc_auc" in text.stdout and "Confusion matrix" in text.stdout
    assert "signal" in text.stdout and "-o report.html" in text.stderr


def test_regression_residuals(tmp_path):
    """Regression: residuals against the prediction (bounded sample) and by
    feature, where the feature the model misses shows its bias per bin."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(3)
    rows = 2400
    x = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.uniform(-1, 1, size=rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
        }
    )
    # y is quadratic in b: a linear model leaves residuals high at both ends of b.
    y = pd.Series(3 * x.a + 4 * x.b**2 + rng.normal(scale=0.1, size=rows), name="y")
    folder = make_project(tmp_path, "reg", x.assign(y=y), "y", "regression")
    numeric = ["a", "b"]
    log_model(folder, LinearRegression(), x[numeric][:1800], y[:1800], x[numeric][1800:], y[1800:])

    report = report_json("reg")
    assert report["task"] == "regression" and report["confusion"] is None
    assert report["charts"] == [] and report["classes"] is None
    metrics = {m["name"]: m for m in report["metrics"]}
    assert set(metrics) == {"rmse", "mae", "r2"}
    assert metrics["rmse"]["low"] <= metrics["rmse"]["value"] <= metrics["rmse"]["high"]
    residuals = report["residuals"]
    assert len(residuals["predicted"]) == len(residuals["residual"]) == 600
    assert abs(residuals["mean"]) < 0.3 and residuals["std"] > 0.5
    by = {f["feature"]: f for f in residuals["by_feature"]}
    assert set(by) == {"a", "b"} and report["importance"][0]["feature"] == "a"
    bins = by["b"]["bins"]
    assert sum(b["rows"] for b in bins) == 600 and len(bins) == 8
    # The model misses b's curve: under-predicts at both ends, over-predicts in the middle.
    assert bins[0]["mean_residual"] > 0.5 and bins[-1]["mean_residual"] > 0.5
    assert min(b["mean_residual"] for b in bins[2:6]) < -0.3

    out = tmp_path / "reg.html"
    wbi("model", "report", "reg", "-o", str(out), check=True)
    html = out.read_text()
    assert_self_contained(html)
    assert 'data-kind="residuals"' in html and 'data-kind="residuals-b"' in html


def test_report_of_a_version_without_a_hold_out_says_why(tmp_path):
    """A version that kept no hold-out still gets a report: lineage and gate, and a
    note instead of metrics."""
    binary_project(tmp_path)
    from workbench.models.registry import resolve
    from workbench.store import open_store

    store = open_store()
    try:
        resolve(store, "binary").holdout_path.unlink()
    finally:
        store.close()
    report = report_json("binary")
    assert report["metrics"] == [] and report["charts"] == [] and report["holdout_rows"] is None
    assert any("kept no hold-out rows" in n for n in report["notes"])
    assert report["lineage"]["run_status"] == "succeeded" and report["decisions"]


def test_unknown_version_is_a_usage_error(tmp_path):
    binary_project(tmp_path)
    result = wbi("model", "report", "binary@7")
    assert result.returncode != 0 and "no model version 7" in result.stderr
    assert "Traceback" not in result.stderr


async def test_tui_report_screen_opens_from_the_models_screen(tmp_path):
    """r on the Models screen pushes the Report screen, which computes in a worker
    behind a loading indicator and then shows the tables and charts; w writes the HTML."""
    from tui_support import plain, wait_for

    from workbench.tui.app import make_app
    from workbench.tui.screens.models import ModelsScreen
    from workbench.tui.screens.project import ProjectScreen
    from workbench.tui.screens.report import ReportScreen

    folder = binary_project(tmp_path)
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        app.open_project("binary")
        await wait_for(pilot, lambda: isinstance(app.screen, ProjectScreen), what="the project")
        await pilot.press("M")
        models = await wait_for(
            pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen, what="Models"
        )
        await wait_for(pilot, lambda: models.selected is not None, what="a version")
        await pilot.press("r")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, ReportScreen) and app.screen, what="Report"
        )
        await wait_for(pilot, lambda: screen.report is not None, timeout=60, what="the report")
        assert not screen.query_one("#report-body").loading
        ids = {w.id for w in screen.query("ReportChart")}
        assert ids == {"chart-importance", "chart-roc", "chart-pr", "chart-calibration"}
        metrics = _shown(screen.query_one("#report-metrics"))
        assert "roc_auc" in metrics and "accuracy (primary)" in metrics
        assert plain(screen.query_one("#report-summary")).startswith("binary@1")
        assert "signal" in _shown(screen.query_one("#report-importance"))
        await pilot.press("w")
        target = folder / "reports" / "binary-v1-report.html"
        await wait_for(pilot, target.exists, what="the HTML file")
        assert_self_contained(target.read_text())
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen), what="Models again")


def _shown(widget) -> str:
    """What a Static shows (markup or a Rich renderable such as a table), as text."""
    import io

    from rich.console import Console
    from rich.text import Text

    content = widget.content
    console = Console(width=200, file=io.StringIO(), record=True, color_system=None)
    console.print(Text.from_markup(content) if isinstance(content, str) else content)
    return console.export_text()
