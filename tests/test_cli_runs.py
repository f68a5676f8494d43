"""`run metrics` and `run compare` on runs recorded through the tracking API."""

from __future__ import annotations

import json

import workbench as wb
from workbench.runs.compare import lower_is_better
from workbench.templates import init_project


def _two_runs(tmp_path) -> list[int]:
    folder = init_project(tmp_path / "p", "script")
    ids = []
    for lr, scale in ((0.1, 1.0), (0.01, 0.5)):
        with wb.start_run(project=folder, params={"lr": lr, "layers": 2}) as run:
            for step in range(5000):
                wb.log_metric("loss", scale / (step + 1), step=step)
            wb.log_metrics({"accuracy": 1 - scale / 10, "rmse": scale})
            ids.append(run.id)
    return ids


def test_metrics_lists_keys_and_downsamples_a_series(cli, tmp_path):
    first, _ = _two_runs(tmp_path)
    keys = json.loads(cli("run", "metrics", str(first), "--json", check=True).stdout)
    loss = next(k for k in keys if k["key"] == "loss")
    assert loss["count"] == 5000 and loss["step"] == 4999
    assert loss["min"] == 1.0 / 5000 and loss["max"] == 1.0
    data = json.loads(
        cli("run", "metrics", str(first), "loss", "--points", "50", "--json", check=True).stdout
    )
    assert data["count"] == 5000
    assert len(data["points"]) == 50
    assert sum(p["count"] for p in data["points"]) == 5000
    assert data["points"][0]["max"] == 1.0
    assert data["points"][-1]["x"] == 4999
    human = cli("run", "metrics", str(first), "loss", "--points", "20", check=True).stdout
    assert human.splitlines()[0][0] == "█"  # the series starts at its maximum
    missing = cli("run", "metrics", str(first), "nope")
    assert missing.returncode == 2 and "keys: accuracy, loss, rmse" in missing.stderr


def test_compare_marks_differing_params_and_best_runs(cli, tmp_path):
    first, second = _two_runs(tmp_path)
    result = json.loads(cli("run", "compare", str(first), str(second), "--json", check=True).stdout)
    assert result["differing_params"] == ["lr"]
    assert result["params"]["layers"] == [2, 2]
    assert result["best"]["accuracy"] == second  # higher is better
    assert result["best"]["rmse"] == second  # lower is better
    assert result["best"]["loss"] == second
    table = cli("run", "compare", str(first), str(second), check=True).stdout
    assert "* lr" in table and "  layers" in table
    lonely = cli("run", "compare", str(first))
    assert lonely.returncode == 2 and "at least two runs" in lonely.stderr


def test_metric_direction():
    assert lower_is_better("val_loss") and lower_is_better("rmse") and lower_is_better("log_loss")
    assert not lower_is_better("accuracy") and not lower_is_better("roc_auc")
    assert not lower_is_better("glossiness")
