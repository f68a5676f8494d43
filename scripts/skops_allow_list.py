"""Regenerate the skops allow-list frozen in workbench/models/bundle_runtime.py
(`TRUSTED_TYPES`).

Trains, on a small table with a numeric and a categorical column, every
scikit-learn classifier and regressor that the built-in `sklearn:<estimator>`
trainer can fit with its default parameters, inside the trainer's own Pipeline
(ColumnTransformer, SimpleImputer, OneHotEncoder), plus the shapes
`wb.log_model` commonly gets (StandardScaler + SGDClassifier / LogisticRegression,
LightGBM's scikit-learn wrappers in a Pipeline). Each model is saved with skops
and `skops.io.get_untrusted_types` names what skops would not load by default.
Only classes are kept (never functions), and nothing from a testing module.

    python scripts/skops_allow_list.py            # print the Python literal
    python scripts/skops_allow_list.py --check    # exit 1 if runtime.py's list lacks any
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

import numpy as np
import pandas as pd


def _table(n: int = 120) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": rng.normal(size=n), "c": rng.normal(size=n), "b": rng.choice(["x", "y", "z"], n)}
    )
    frame.loc[::7, "a"] = np.nan
    targets = {
        "binary": np.where(frame["c"] > 0, "yes", "no"),
        "multiclass": rng.choice(["p", "q", "r"], n),
        "regression": frame["c"].to_numpy() * 2 + rng.normal(scale=0.1, size=n),
    }
    return frame, targets


def _pipeline(estimator):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    columns = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median", keep_empty_features=True), ["a", "c"]),
            ("categorical", encode, ["b"]),
        ],
        remainder="drop",
    )
    return Pipeline([("preprocess", columns), ("model", estimator)])


def _models():
    import lightgbm
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import all_estimators

    frame, targets = _table()
    for kind in ("classifier", "regressor"):
        for name, cls in all_estimators(type_filter=kind):
            tasks = ("binary", "multiclass") if kind == "classifier" else ("regression",)
            for task in tasks:
                try:
                    yield name, _pipeline(cls()).fit(frame, targets[task])
                except Exception:  # noqa: BLE001 - needs parameters the trainer cannot guess
                    continue
    numeric = frame[["a", "c"]].fillna(0)
    yield (
        "log_model sgd",
        make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss")).fit(
            numeric, targets["binary"]
        ),
    )
    yield (
        "log_model logistic",
        make_pipeline(StandardScaler(), LogisticRegression()).fit(numeric, targets["multiclass"]),
    )
    for task, cls in (
        ("binary", lightgbm.LGBMClassifier),
        ("multiclass", lightgbm.LGBMClassifier),
        ("regression", lightgbm.LGBMRegressor),
    ):
        model = _pipeline(cls(n_estimators=3, verbose=-1)).fit(frame, targets[task])
        yield f"lightgbm {task}", model


def _is_class(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    try:
        return isinstance(getattr(importlib.import_module(module), attr), type)
    except (ImportError, AttributeError):
        return False


def discover() -> list[str]:
    """Every class skops does not trust by default that these models hold."""
    import skops.io

    found: set[str] = set()
    warnings.filterwarnings("ignore")
    for _, model in _models():
        found.update(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    return sorted(t for t in found if _is_class(t) and "testing" not in t.split("."))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    types = discover()
    if args.check:
        from workbench.models.bundle_runtime import TRUSTED_TYPES

        missing = sorted(set(types) - set(TRUSTED_TYPES))
        print("missing: " + (", ".join(missing) or "none"))
        return 1 if missing else 0
    print("TRUSTED_TYPES = frozenset(\n    {")
    for name in types:
        print(f'        "{name}",')
    print("    }\n)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
