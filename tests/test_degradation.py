"""Degradation of the serving model on a labelled batch, judged against a noise
band: the baseline is the cross-validated score with its spread (else a bootstrap
of the hold-out), the batch's own sampling noise widens the band, and the message
says which way the metric moved."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from _data_fixtures import train_inline
from wbtest import REPO, wb_inprocess

from workbench.models.degradation import BAND_Z, assess
from workbench.models.evaluation import Predictions, full_score


def _version(metrics: dict[str, float]) -> SimpleNamespace:
    return SimpleNamespace(metrics=metrics, ref="p@1")


def _regression(rng: np.random.Generator, n: int, noise: float) -> Predictions:
    truth = rng.normal(23.0, 7.0, n)
    return Predictions(truth, truth + rng.normal(0.0, noise, n))


def _classification(rng: np.random.Generator, n: int, signal: float) -> Predictions:
    truth = rng.integers(0, 2, n)
    p1 = 1.0 / (1.0 + np.exp(-(rng.normal(0.0, 1.0, n) + signal * (truth - 0.5))))
    return Predictions(truth, (p1 > 0.5).astype(int), np.column_stack([1 - p1, p1]), [0, 1])


# Cross-validated rmse 4.39 ± 0.08 (3 folds); the hold-out said an optimistic 3.867.
RMSE_CV = {"rmse": 3.867, "cv_rmse_mean": 4.39, "cv_rmse_std": 0.08}
AUC_CV = {"roc_auc": 0.90, "cv_roc_auc_mean": 0.90, "cv_roc_auc_std": 0.01}


@pytest.mark.parametrize("seed", range(5))
def test_a_clean_regression_batch_is_not_degraded(seed: int) -> None:
    """Batches from the model's own error distribution (rmse about 4.4): never an
    alert, though most score worse than the optimistic hold-out's 3.867."""
    batch = _regression(np.random.default_rng([31, seed]), 150, 4.39)
    score = full_score("rmse", batch)
    result = assess(_version(RMSE_CV), "rmse", score, batch)
    assert result["degraded"] is False and result["verdict"] == "within"
    assert result["baseline"] == 4.39 and result["baseline_source"] == "cv"
    low, high = result["band"]
    assert low < 4.39 < high and low <= score <= high
    half = BAND_Z * np.sqrt(0.08**2 + result["batch_spread"] ** 2)
    assert high - low == pytest.approx(2 * half)
    verb = "rose" if score > 4.39 else "fell"
    assert result["message"].startswith(f"rmse {verb} to {score:.4g} from 4.39, within the band")


def test_a_degraded_regression_batch_says_rmse_rose() -> None:
    batch = _regression(np.random.default_rng(32), 150, 7.0)
    score = full_score("rmse", batch)
    result = assess(_version(RMSE_CV), "rmse", score, batch)
    assert result["degraded"] is True and result["direction"] == "lower-is-better"
    low, high = result["band"]
    assert score > high
    assert result["message"].startswith(
        f"rmse rose to {score:.4g} from 4.39 (band {low:.4g}–{high:.4g}, cross-validated 4.39"
    )


def test_a_better_regression_batch_is_not_an_alert() -> None:
    batch = _regression(np.random.default_rng(33), 300, 2.0)
    result = assess(_version(RMSE_CV), "rmse", full_score("rmse", batch), batch)
    assert result["degraded"] is False and result["verdict"] == "improved"
    assert "rmse fell to" in result["message"] and "better than the band" in result["message"]


@pytest.mark.parametrize("seed", range(3))
def test_a_clean_classification_batch_is_not_degraded(seed: int) -> None:
    rng = np.random.default_rng([34, seed])
    # Scores of the two classes 1.81 apart: an expected roc_auc of 0.90, the CV mean.
    batch = _classification(rng, 300, 1.81)
    score = full_score("roc_auc", batch)
    result = assess(_version(AUC_CV), "roc_auc", score, batch)
    assert result["degraded"] is False and result["verdict"] == "within", result["message"]
    assert result["direction"] == "higher-is-better"


def test_a_degraded_classification_batch_says_roc_auc_fell() -> None:
    batch = _classification(np.random.default_rng(35), 300, 1.0)
    score = full_score("roc_auc", batch)
    result = assess(_version(AUC_CV), "roc_auc", score, batch)
    assert result["degraded"] is True and score < result["band"][0]
    assert result["message"].startswith(f"roc_auc fell to {score:.4g} from 0.9 (band ")


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_drift_and_the_pipeline_judge_batches_against_the_cv_band(tmp_path):
    """autompg cross-validated (cv = 3): the clean batch stays quiet, the shifted
    one is degraded, and the pipeline's alert names the drifted columns with their
    statistics and says which way rmse moved.

    The model is trained in this process, and the pipeline (validate only: it
    starts no run) runs here too: what is judged is the baseline the trainer
    recorded, not the processes around it."""
    cli = wb_inprocess
    folder = tmp_path / "autompg"
    shutil.copytree(REPO / "sample_projects" / "autompg-sklearn", folder)
    config = folder / "workbench.toml"
    text = config.read_text().replace("seed = 42", "seed = 42\ncv = 3")
    text = text.replace('on_new_data = "validate-and-retrain"', 'on_new_data = "validate"')
    text = text.replace("n_estimators = 200", "n_estimators = 30")
    config.write_text(text)
    cli("project", "add", str(folder), check=True)
    train_inline(folder)
    incoming = folder / "data" / "incoming"

    clean = json.loads(
        cli("data", "drift", "autompg", str(incoming / "batch_01_clean.csv"), "--json").stdout
    )
    perf = clean["performance"]
    assert perf["baseline_source"] == "cv" and perf["degraded"] is False
    assert perf["band"][0] < perf["batch"] < perf["band"][1]
    assert clean["dataset_drift"] is False

    result = cli("pipeline", "run", "autompg", str(incoming / "batch_02_shifted.csv"), "--json")
    assert result.returncode == 0, result.stderr
    [drift] = [s for s in json.loads(result.stdout)["steps"] if s["step"] == "drift"]
    assert drift["status"] == "alert"
    perf = drift["detail"]["performance"]
    assert perf["degraded"] is True and perf["batch"] > perf["band"][1]
    assert "rmse rose to" in drift["summary"] and "fell" not in drift["summary"]
    assert drift["summary"].startswith("drift: ")
    for column in drift["detail"]["drifted"]:
        assert column["column"] in drift["summary"] or "more" in drift["summary"]
        assert column["method"] and column["threshold"] is not None
    assert "model_year" in {c["column"] for c in drift["detail"]["drifted"] if c["strong"]}
