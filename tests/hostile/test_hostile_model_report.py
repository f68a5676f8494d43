"""`model report` on what a model version can be given: a hold-out with a single
class (no ROC or PR curve: the report says why instead of failing), names and
values that are markup, a damaged hold-out file. Each gets a report and exit 0,
never a traceback, and the HTML shows hostile text as text."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from test_model_report import assert_self_contained, log_model, make_project
from wbtest import wb_inprocess as wbi


def test_a_single_class_hold_out_has_no_roc_and_the_report_says_why(tmp_path):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    x = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = pd.Series((x.a > 0).astype(int), name="label")
    folder = make_project(
        tmp_path, "oneclass", x.assign(label=y), "label", "classification", 'metric = "roc_auc"\n'
    )
    only_zero = y[200:] == 0
    log_model(
        folder, LogisticRegression(), x[:200], y[:200], x[200:][only_zero], y[200:][only_zero]
    )

    result = wbi("model", "report", "oneclass", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    charts = {c["kind"]: c for c in report["charts"]}
    for kind in ("roc", "pr"):
        assert charts[kind]["curves"] == []
        assert "needs both positive and negative rows" in charts[kind]["note"]
        assert "labels are only 0" in charts[kind]["note"]
    assert charts["calibration"]["curves"]  # still defined on one class
    metrics = {m["name"]: m for m in report["metrics"]}
    assert metrics["roc_auc"]["value"] is None and "undefined" in metrics["roc_auc"]["why"]
    assert metrics["accuracy"]["value"] is not None
    # Permutation importance falls back to a metric defined on these rows, and says so.
    assert report["importance_metric"] == "accuracy"
    assert any("roc_auc is undefined" in n for n in report["notes"])

    out = tmp_path / "oneclass.html"
    text = wbi("model", "report", "oneclass", "-o", str(out))
    assert text.returncode == 0 and "Traceback" not in text.stderr
    html = out.read_text()
    assert_self_contained(html)
    assert "needs both positive and negative rows" in html
    assert 'data-kind="roc"' not in html and 'data-kind="calibration"' in html


def test_markup_in_names_and_values_is_shown_as_text(tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(9)
    hostile = '<img src="https://evil.example/x.png" onerror="alert(1)">'
    script = "</table><script>alert(1)</script>"
    x = pd.DataFrame({hostile: rng.normal(size=240), "plain": rng.normal(size=240)})
    y = pd.Series(np.where(x[hostile] > 0, script, "fine"), name="label")
    folder = make_project(tmp_path, "markup", x.assign(label=y), "label", "classification")
    log_model(
        folder,
        RandomForestClassifier(n_estimators=5, random_state=0),
        x[:160],
        y[:160],
        x[160:],
        y[160:],
    )
    out = tmp_path / "markup.html"
    result = wbi("model", "report", "markup", "-o", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert_self_contained(html)
    assert "<img" not in html and "&lt;img" in html and "&lt;/table&gt;&lt;script&gt;" in html
    summary = wbi("model", "report", "markup")
    assert summary.returncode == 0 and hostile in summary.stdout  # the terminal shows it as text


def test_a_damaged_hold_out_is_reported_not_raised(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from workbench.models.registry import resolve
    from workbench.store import open_store

    rng = np.random.default_rng(1)
    x = pd.DataFrame({"a": rng.normal(size=100)})
    y = pd.Series((x.a > 0).astype(int), name="label")
    folder = make_project(tmp_path, "damaged", x.assign(label=y), "label", "classification")
    log_model(folder, LogisticRegression(), x[:70], y[:70], x[70:], y[70:])
    store = open_store()
    try:
        path = resolve(store, "damaged").holdout_path
    finally:
        store.close()
    path.chmod(0o600)
    path.write_bytes(b"PAR1 this is not parquet")
    result = wbi("model", "report", "damaged", "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["metrics"] == [] and any("cannot be read" in n for n in report["notes"])
