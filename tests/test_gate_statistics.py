"""The promotion gate's statistics: vectorised bootstrap metrics agree with
scikit-learn's, and a challenger whose gain is noise is not promoted while a clearly
better one is. That the decision record keeps the interval and the method, through
real training runs and the CLI, is tested in tests/test_models.py, on the store
its tests share."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics
from workbench.models.evaluation import (
    MAX_ROWS,
    Predictions,
    bounded,
    full_score,
    metric_samples,
    resample_weights,
)
from workbench.models.gate import clears_margin, paired_interval
from workbench.trainers.metrics import classification_metrics, regression_metrics


def _binary(rng: np.random.Generator, n: int, signal: float) -> tuple[np.ndarray, np.ndarray]:
    truth = rng.integers(0, 2, n)
    return truth, rng.normal(0.0, 1.0, n) + signal * truth


def _classifier(truth: np.ndarray, score: np.ndarray) -> Predictions:
    proba1 = 1.0 / (1.0 + np.exp(-score))
    proba = np.column_stack([1.0 - proba1, proba1])
    return Predictions(truth, (proba1 > 0.5).astype(int), proba, [0, 1])


# --------------------------------------------------------------------------- metrics


def test_vectorised_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    truth, score = _binary(rng, 300, 1.0)
    score[:40] = np.round(score[:40])  # ties in the ranking
    binary = _classifier(truth, score)
    expected = classification_metrics(truth, binary.pred, binary.proba, [0, 1])
    for name, value in expected.items():
        assert full_score(name, binary) == pytest.approx(value, abs=1e-12), name

    labels = np.array(["a", "b", "c"])
    multi_truth = labels[rng.integers(0, 3, 300)]
    proba = rng.dirichlet([1, 1, 1], 300)
    proba[np.arange(300), np.searchsorted(labels, multi_truth)] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    multi = Predictions(multi_truth, labels[proba.argmax(axis=1)], proba, list(labels))
    expected = classification_metrics(multi_truth, multi.pred, proba, list(labels))
    for name, value in expected.items():
        assert full_score(name, multi) == pytest.approx(value, abs=1e-12), name

    y = rng.normal(20, 5, 300)
    regression = Predictions(y, y + rng.normal(0, 2, 300))
    for name, value in regression_metrics(y, regression.pred).items():
        assert full_score(name, regression) == pytest.approx(value, abs=1e-12), name


def test_a_resample_is_the_metric_of_the_repeated_rows() -> None:
    rng = np.random.default_rng(2)
    truth, score = _binary(rng, 200, 1.0)
    p = _classifier(truth, score)
    weights = resample_weights(200, resamples=3, seed=7)
    rows = np.repeat(np.arange(200), weights[1].astype(int))
    auc = metrics.roc_auc_score(truth[rows], p.proba[rows, 1])
    f1 = metrics.f1_score(truth[rows], p.pred[rows])
    assert metric_samples("roc_auc", p, weights)[1] == pytest.approx(auc, abs=1e-12)
    assert metric_samples("f1", p, weights)[1] == pytest.approx(f1, abs=1e-12)
    # Seeded: the same rows give the same resamples.
    assert (resample_weights(200, 3, 7) == weights).all()


def test_large_evaluation_sets_are_resampled_from_the_same_bounded_rows() -> None:
    rng = np.random.default_rng(6)
    truth, score = _binary(rng, MAX_ROWS + 5000, 1.0)
    one, other = _classifier(truth, score), _classifier(truth, score + 0.1)
    first, second = bounded(one, other)
    assert len(first) == len(second) == MAX_ROWS
    assert np.array_equal(first.truth, second.truth)  # the same rows of both
    assert np.array_equal(bounded(one)[0].pred, first.pred)  # and the same every time
    small = _classifier(truth[:100], score[:100])
    assert bounded(small)[0] is small


# --------------------------------------------------------------------------- decisions


def test_a_noise_gain_in_roc_auc_is_not_promoted_a_clear_one_is() -> None:
    """Two models of the same quality (scores sharing most of their noise) differ
    by +0.0007 roc_auc on these 2000 rows (seed fixed): the point comparison would
    promote that, the paired bootstrap does not. A truly better one is promoted."""
    rng = np.random.default_rng([3, 1])
    truth, shared = rng.integers(0, 2, 2000), rng.normal(0.0, 1.0, 2000)

    def model(signal: float) -> Predictions:
        return _classifier(truth, signal * truth + 0.95 * shared + 0.31 * rng.normal(0, 1, 2000))

    champion, challenger = model(1.2), model(1.2)
    gain = full_score("roc_auc", challenger) - full_score("roc_auc", champion)
    assert gain == pytest.approx(0.0007, abs=0.0001)
    interval = paired_interval("roc_auc", challenger, champion)
    assert interval[0] < 0.0 < interval[1]
    promoted, (low, _) = clears_margin("roc_auc", interval, 0.0)
    assert promoted is False and low < 0

    better = model(1.6)
    interval = paired_interval("roc_auc", better, champion)
    assert interval[0] > 0.02
    assert clears_margin("roc_auc", interval, 0.0)[0] is True
    assert clears_margin("roc_auc", interval, 0.5)[0] is False  # not past a large margin


def test_a_lower_is_better_metric_must_fall_to_clear_the_margin() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(20, 5, 400)
    champion = Predictions(y, y + rng.normal(0, 3, 400))
    worse = Predictions(y, y + rng.normal(0, 4, 400))
    better = Predictions(y, y + rng.normal(0, 1.5, 400))
    interval = paired_interval("rmse", better, champion)
    assert interval[1] < 0  # challenger minus champion: lower rmse
    promoted, (gain_low, gain_high) = clears_margin("rmse", interval, 0.1)
    assert promoted is True and 0.1 < gain_low <= gain_high
    assert clears_margin("rmse", paired_interval("rmse", worse, champion), 0.0)[0] is False


def test_models_scored_on_different_rows_are_refused() -> None:
    rng = np.random.default_rng(5)
    truth, score = _binary(rng, 50, 1.0)
    other, _ = _binary(rng, 50, 1.0)
    with pytest.raises(ValueError, match="same rows"):
        paired_interval("roc_auc", _classifier(truth, score), _classifier(other, score))
