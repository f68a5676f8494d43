"""A LightGBM model predicts small batches (a request to `serve`) on one thread, large
ones on LightGBM's default pool, and the answers are the same either way."""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd

from workbench.models import bundle_runtime as runtime


def _model(rows: int = 300) -> tuple[runtime.Model, pd.DataFrame]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    y = (x["a"] + 0.5 * x["b"] > 0).astype(int)
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7}, lightgbm.Dataset(x, y), 10
    )
    spec = {
        "framework": "lightgbm",
        "features": [{"name": name, "kind": "numeric"} for name in x.columns],
        "target": {"name": "y", "classes": [0, 1]},
    }
    return runtime.Model(spec, booster.model_to_string().encode()), x


def test_small_batches_use_one_thread_and_large_ones_the_default(monkeypatch):
    model, x = _model()
    seen: list[int] = []
    predict = model.native.predict

    def recording(data, **kwargs):
        seen.append(kwargs.get("num_threads"))
        return predict(data, **kwargs)

    monkeypatch.setattr(model.native, "predict", recording)
    small = x.head(3)
    large = pd.concat([x] * (runtime.ONE_THREAD_ROWS // len(x) + 1), ignore_index=True)
    assert len(large) >= runtime.ONE_THREAD_ROWS
    labels_small, proba_small = model.predict(small)
    labels_large, proba_large = model.predict(large)
    assert seen == [1, 0]
    # One thread or many, the trees give the same answer.
    assert np.array_equal(labels_small, labels_large[:3])
    assert np.allclose(proba_small, proba_large[:3])
    assert np.allclose(proba_large[:, 1], predict(large))
