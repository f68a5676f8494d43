"""What a metric or param key means, decided in one place: which way a metric
is better, which keys are learning curves, and which params are the
workbench's own.

A leaf module (it imports nothing from workbench), so the CLI, the TUI, the
sweep engine, the promotion gate and the store queries can all ask it cheaply.

Keys are made of a metric name and decorations the workbench or a trainer adds:

- `valid_<m>` / `val_<m>`: a learning curve, the metric on the validation rows
  after each step (`valid_` from the built-in trainers, LightGBM's own names;
  `val_` from scripts, the Keras convention). Both prefixes are curves.
- `train_<m>`: the same on the training rows, per step.
- `cv_fold_<m>` (step = fold), `cv_<m>_mean`, `cv_<m>_std`: cross-validation.
- `<m>@<k>`: a ranking metric at a cut-off (LightGBM's `ndcg@5`, `map@10`).

A metric's direction is decided on the bare name `<m>`, case-insensitively: a
known score (accuracy, f1, roc_auc, auc, aucpr, r2, ndcg, map, ...) is
higher-is-better; `neg_<m>` (scikit-learn's negated losses) is higher-is-better;
a name ending in loss, error, nloglik, deviance, entropy or perplexity
(`log_loss`, XGBoost's `mlogloss` and `merror`), or whose last word (words
joined by `_` or `-`) is an error or a regression metric (rmse, mae, mse, l1,
l2, huber, poisson, ...) is lower-is-better; so is `cv_<m>_std` (a spread
across folds); any other name is taken as a score (higher-is-better), so
`glossiness` is not a loss.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

CURVE_PREFIXES = ("valid_", "val_")
TRAIN_CURVE_PREFIX = "train_"
CV_FOLD_PREFIX = "cv_fold_"
# Params whose key starts with this are the workbench's own (`_sweep`, `_trial`,
# `_pipeline`, ...): recorded with the run, never passed to a trainer, not shown
# as the user's params.
INTERNAL_PARAM_PREFIX = "_"

_HIGHER_IS_BETTER = frozenset(
    {
        "accuracy",
        "balanced_accuracy",
        "f1",
        "precision",
        "recall",
        "roc_auc",
        "auc",
        "auc_mu",
        "aucpr",
        "average_precision",
        "ndcg",
        "map",
        "r2",
    }
)
# Endings of lower-is-better names, matched as plain suffixes so that XGBoost's
# `mlogloss`, `merror` and `poisson-nloglik` are losses too.
_LOWER_ENDINGS = ("loss", "error", "nloglik", "deviance", "entropy", "perplexity")
# Last words (split on `_` and `-`) of other lower-is-better names: errors and
# LightGBM's / XGBoost's regression metrics. Whole words, so `ml2` is not `l2`.
_LOWER_WORDS = frozenset(
    {
        "err",
        "rmse",
        "mse",
        "rmsle",
        "msle",
        "mae",
        "mape",
        "smape",
        "mphe",
        "l1",
        "l2",
        "huber",
        "fair",
        "quantile",
        "poisson",
        "gamma",
        "tweedie",
        "xentropy",
        "xentlambda",
        "leibler",
    }
)
# Decorations stripped, in this order, to find the bare metric name.
_PREFIXES = (*CURVE_PREFIXES, TRAIN_CURVE_PREFIX, CV_FOLD_PREFIX, "cv_")


def metric_name(key: str) -> str:
    """The bare metric a key is made from, lower-cased: `valid_auc` -> `auc`,
    `cv_f1_mean` -> `f1`, `ndcg@5` -> `ndcg`."""
    name = key.lower().partition("@")[0]
    for prefix in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix) :]
            break
    return name.removesuffix("_mean")


def higher_is_better(key: str) -> bool:
    """Whether larger values of this metric key are better (see the module's rule)."""
    name = metric_name(key)
    if name.endswith("_std") and key.lower().startswith("cv_"):
        return False  # a spread across folds: smaller is steadier
    if name in _HIGHER_IS_BETTER:
        return True
    if name.startswith("neg_"):
        return True  # scikit-learn's scorers negate losses so that higher is better
    last_word = name.replace("-", "_").rsplit("_", 1)[-1]
    return not (name.endswith(_LOWER_ENDINGS) or last_word in _LOWER_WORDS)


def lower_is_better(key: str) -> bool:
    """Whether smaller values of this metric key are better (losses and errors)."""
    return not higher_is_better(key)


def is_curve(key: str) -> bool:
    """Whether a metric key is a learning curve on the validation rows
    (`valid_*` or `val_*`), logged once per step rather than once per run."""
    return any(key.startswith(p) and len(key) > len(p) for p in CURVE_PREFIXES)


def is_per_step(key: str) -> bool:
    """Whether a metric key is a series over steps or folds rather than a run's
    final value: a learning curve, a `train_*` curve or a `cv_fold_*` score."""
    return is_curve(key) or key.startswith((TRAIN_CURVE_PREFIX, CV_FOLD_PREFIX))


def is_internal_param(key: str) -> bool:
    """Whether a param key is one the workbench records for itself (`_sweep`, ...)."""
    return str(key).startswith(INTERNAL_PARAM_PREFIX)


V = TypeVar("V")


def user_params(params: Mapping[Any, V]) -> dict[Any, V]:
    """The params without the workbench's own."""
    return {k: v for k, v in params.items() if not is_internal_param(k)}


def curve_groups(keys: Iterable[str]) -> list[tuple[str, ...]]:
    """Keys grouped to be drawn in one chart: each validation curve
    (`valid_<m>`, `val_<m>`) with its training curve (`train_<m>`, else the bare
    `<m>` as Keras logs `loss` beside `val_loss`), the training key first; every
    other key alone. Groups come in the order of their first key in `keys`."""
    keys = list(dict.fromkeys(keys))
    present = set(keys)
    group_of: dict[str, str] = {}  # key -> the key its group is filed under
    for key in keys:
        prefix = next((p for p in CURVE_PREFIXES if key.startswith(p) and len(key) > len(p)), None)
        if prefix is None:
            continue
        name = key[len(prefix) :]
        train = next((t for t in (TRAIN_CURVE_PREFIX + name, name) if t in present), None)
        group_of[key] = train or CURVE_PREFIXES[0] + name
        if train:
            group_of[train] = train
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(group_of.get(key, key), []).append(key)
    ordered = []
    for anchor, members in groups.items():
        # The training curve first, then the validation curves in the order given.
        members.sort(key=lambda k: k != anchor)
        ordered.append(tuple(members))
    return ordered


# Params that say how many steps a run will take, most specific first: a
# script's own `total`, boosting rounds (LightGBM's and XGBoost's names), epochs,
# scikit-learn's iterations, and a sweep's trials.
TOTAL_PARAMS = (
    "total",
    "n_estimators",
    "num_boost_round",
    "num_iterations",
    "num_iteration",
    "num_round",
    "n_iter",
    "epochs",
    "max_iter",
    "_trials",
)
# Boosting rounds when the params do not say (LightGBM's default).
DEFAULT_TOTALS = {"lightgbm": 100}


def progress_total(params: Mapping[str, Any], trainer: str | None = None) -> int | None:
    """How many steps a run will take, from its params (see TOTAL_PARAMS) or
    its trainer's default; None when nothing says."""
    for key in TOTAL_PARAMS:
        value = params.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                continue
        if isinstance(value, int | float) and value == value and 0 < value < 2**63:
            return int(value)
    return DEFAULT_TOTALS.get((trainer or "").partition(":")[0])
