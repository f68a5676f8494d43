"""Bootstrap intervals of the hold-out metrics, vectorised with numpy.

A bootstrap resample is a vector of row counts drawn from a multinomial (each
row's weight in that resample), so every metric is computed for all resamples
at once as weighted sums: `weights @ per_row_quantity`. The same weights applied
to two models' predictions on the same rows give a *paired* bootstrap of their
difference, which is what the promotion gate needs: the rows that are hard for
one model are usually hard for the other, and pairing removes that shared noise.

Every function here is deterministic: the resamples come from a seeded
generator (`SEED`), so the same data gives the same interval.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 1000  # bootstrap resamples per interval
CONFIDENCE = 0.95  # two-sided percentile interval
SEED = 20240917  # fixed: the same rows always give the same interval
MAX_ROWS = 20_000  # larger evaluation sets are resampled from this many of their rows
_CHUNK = 100  # resamples per block, to bound memory on large evaluation sets
_CELLS = 2_000_000  # at most this many row counts in one block (16 MB)
_EPS = np.finfo(np.float64).eps  # sklearn's log_loss clipping


@dataclass(frozen=True)
class Predictions:
    """One model's predictions on evaluation rows, with the truth."""

    truth: np.ndarray
    pred: np.ndarray
    proba: np.ndarray | None = None
    classes: list[Any] | None = None  # None for regression

    def __len__(self) -> int:
        return int(self.truth.shape[0])

    def take(self, rows: np.ndarray) -> Predictions:
        proba = None if self.proba is None else np.asarray(self.proba)[rows]
        return Predictions(self.truth[rows], self.pred[rows], proba, self.classes)


def bounded(*predictions: Predictions) -> list[Predictions]:
    """The same seeded MAX_ROWS rows of each when there are more: an interval from
    fewer rows is wider, never narrower, and the cost stays bounded."""
    n = len(predictions[0])
    if n <= MAX_ROWS:
        return list(predictions)
    rows = np.sort(np.random.default_rng(SEED).choice(n, MAX_ROWS, replace=False))
    return [p.take(rows) for p in predictions]


def predict_on(model: Any, frame: Any, target: str) -> Predictions:
    """`model` (a `TrainedModel`) applied to a labelled frame holding `target`."""
    truth = frame[target]
    features = frame.drop(columns=[target])
    pred, proba = model.predict(features)
    classes = model.classes
    if classes is not None:
        truth = truth.astype(str) if isinstance(classes[0], str) else truth
    return Predictions(np.asarray(truth), np.asarray(pred), proba, classes)


@dataclass(frozen=True)
class Resamples:
    """`count` bootstrap resamples of `n` rows, made block by block (so that memory
    stays bounded on large evaluation sets) and the same on every call: two
    models resampled with one `Resamples` are resampled alike (paired)."""

    n: int
    count: int = RESAMPLES
    seed: int = SEED

    def blocks(self) -> Iterator[np.ndarray]:
        """(block size, n) row counts, each row summing to n."""
        size = max(1, min(_CHUNK, _CELLS // max(self.n, 1)))
        for start in range(0, self.count, size):
            rows = min(size, self.count - start)
            rng = np.random.default_rng([self.seed, start])
            drawn = rng.integers(0, self.n, (rows, self.n))
            drawn += np.arange(rows)[:, None] * self.n
            counts = np.bincount(drawn.ravel(), minlength=rows * self.n)
            yield counts.reshape(rows, self.n).astype(np.float64)


def resample_weights(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """All the row counts of `Resamples(n, resamples, seed)` at once (small n)."""
    return np.concatenate(list(Resamples(n, resamples, seed).blocks()))


def percentile_interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The two-sided percentile interval of the finite bootstrap samples."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def metric_samples(
    metric: str, predictions: Predictions, weights: np.ndarray | Resamples
) -> np.ndarray:
    """`metric` on each bootstrap resample (a row of `weights`, or each resample of
    a `Resamples`), vectorised for the metrics the built-in trainers record; others
    are computed resample by resample with the trainers' own metric functions."""
    if isinstance(weights, np.ndarray):
        blocks: Iterable[np.ndarray] = (
            weights[start : start + _CHUNK] for start in range(0, weights.shape[0], _CHUNK)
        )
    else:
        blocks = weights.blocks()
    compute = _VECTORISED.get(metric)
    out = []
    for block in blocks:
        if compute is not None:
            out.append(compute(predictions, block))
        else:
            out.append(_slow(metric, predictions, block))
    return np.concatenate(out)


def full_score(metric: str, predictions: Predictions) -> float:
    """`metric` on all the rows (weights of one)."""
    return float(metric_samples(metric, predictions, np.ones((1, len(predictions))))[0])


# --------------------------------------------------------------------------- metrics


def _sum(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    return weights @ values.astype(np.float64)


def _accuracy(p: Predictions, w: np.ndarray) -> np.ndarray:
    return _sum(w, p.pred == p.truth) / w.sum(axis=1)


def _rmse(p: Predictions, w: np.ndarray) -> np.ndarray:
    error = p.truth.astype(np.float64) - p.pred.astype(np.float64)
    return np.sqrt(_sum(w, error**2) / w.sum(axis=1))


def _mae(p: Predictions, w: np.ndarray) -> np.ndarray:
    error = p.truth.astype(np.float64) - p.pred.astype(np.float64)
    return _sum(w, np.abs(error)) / w.sum(axis=1)


def _r2(p: Predictions, w: np.ndarray) -> np.ndarray:
    truth = p.truth.astype(np.float64)
    total = w.sum(axis=1)
    residual = _sum(w, (truth - p.pred.astype(np.float64)) ** 2)
    spread = _sum(w, truth**2) - _sum(w, truth) ** 2 / total
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread > 0, 1.0 - residual / spread, np.nan)


def _log_loss(p: Predictions, w: np.ndarray) -> np.ndarray:
    if p.proba is None or p.classes is None:
        return np.full(w.shape[0], np.nan)
    proba = np.clip(np.asarray(p.proba, dtype=np.float64), _EPS, 1 - _EPS)
    proba = proba / proba.sum(axis=1, keepdims=True)
    index = _class_index(p)
    known = index >= 0
    loss = np.zeros(len(p))
    loss[known] = -np.log(proba[np.flatnonzero(known), index[known]])
    return _sum(w, loss) / w.sum(axis=1)


def _class_index(p: Predictions) -> np.ndarray:
    position = {c: i for i, c in enumerate(p.classes or [])}
    return np.array([position.get(t, -1) for t in p.truth.tolist()], dtype=np.int64)


def _f1_of(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, 0.0)


def _f1(p: Predictions, w: np.ndarray) -> np.ndarray:
    classes = p.classes or []
    if len(classes) == 2:  # as the trainers: the second class is the positive one
        labels = [classes[1]]
    else:  # macro over the labels present in truth or predictions (sklearn's default)
        labels = sorted(set(p.truth.tolist()) | set(p.pred.tolist()), key=str)
    # tp, fp and fn of every label as the columns of one matrix: one pass over the
    # weights (the costly operand) instead of three per label.
    columns = []
    for label in labels:
        actual, guessed = p.truth == label, p.pred == label
        columns += [actual & guessed, ~actual & guessed, actual & ~guessed]
    sums = w @ np.column_stack(columns).astype(np.float64)
    scores = [
        _f1_of(sums[:, 3 * i], sums[:, 3 * i + 1], sums[:, 3 * i + 2]) for i in range(len(labels))
    ]
    return np.mean(scores, axis=0)


def _binary_auc(score: np.ndarray, positive: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC for each row of `w`: the chance a positive outranks a
    negative, ties counting one half (the Mann-Whitney form of sklearn's AUC).

    Each positive row contributes its weight times the weight of the negatives
    below it plus half the negatives tied with it: with `C` the running sum of
    the negatives' weights in score order, that is (C[lo] + C[hi]) / 2, lo and hi
    being how many negatives score below it and at most its score. Only the
    negatives are summed and only the positives gathered, about half the passes
    over the weights of a cumulative sum over all rows. The weights are counts,
    so every sum is an exact integer in float64 and the order of summing does not
    change the result."""
    positive = np.asarray(positive, dtype=bool)
    pos_rows, neg_rows = np.flatnonzero(positive), np.flatnonzero(~positive)
    neg_order = neg_rows[np.argsort(score[neg_rows], kind="mergesort")]
    neg_scores = score[neg_order]
    pos_scores = score[pos_rows]
    lo = np.searchsorted(neg_scores, pos_scores, side="left")
    hi = np.searchsorted(neg_scores, pos_scores, side="right")
    running = np.zeros((w.shape[0], neg_order.size + 1))
    np.cumsum(w[:, neg_order], axis=1, out=running[:, 1:])
    below = running[:, lo]
    if not np.array_equal(lo, hi):  # ties between a positive and negatives
        below += running[:, hi]
        below *= 0.5
        # (C[lo] + C[hi]) / 2 == C[lo] + (C[hi] - C[lo]) / 2, exactly, for integers
    positive_weight = w[:, pos_rows]
    numerator = np.einsum("ij,ij->i", positive_weight, below)
    n_pos, n_neg = positive_weight.sum(axis=1), running[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), numerator / (n_pos * n_neg), np.nan)


def _roc_auc(p: Predictions, w: np.ndarray) -> np.ndarray:
    if p.proba is None or p.classes is None:
        return np.full(w.shape[0], np.nan)
    proba = np.asarray(p.proba, dtype=np.float64)
    if len(p.classes) == 2:
        return _binary_auc(proba[:, 1], p.truth == p.classes[1], w)
    # One-vs-rest, macro average, as sklearn's multi_class="ovr".
    return np.mean(
        [_binary_auc(proba[:, k], p.truth == c, w) for k, c in enumerate(p.classes)], axis=0
    )


_VECTORISED: dict[str, Callable[[Predictions, np.ndarray], np.ndarray]] = {
    "accuracy": _accuracy,
    "f1": _f1,
    "log_loss": _log_loss,
    "roc_auc": _roc_auc,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
}
VECTORISED_METRICS = frozenset(_VECTORISED)  # computed here in numpy, the rest by sklearn


def _slow(metric: str, p: Predictions, w: np.ndarray) -> np.ndarray:
    from workbench.trainers.cv import score

    task = "classification" if p.classes is not None else "regression"
    out = np.full(w.shape[0], np.nan)
    for i, counts in enumerate(w):
        rows = np.repeat(np.arange(len(p)), counts.astype(np.int64))
        proba = None if p.proba is None else np.asarray(p.proba)[rows]
        try:
            value = score(task, p.truth[rows], p.pred[rows], proba, p.classes).get(metric)
        except ValueError:
            value = None
        out[i] = np.nan if value is None else value
    return out
