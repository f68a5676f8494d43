"""The cache of a model's scores on a hold-out: keyed by the files as they are,
never trusted when damaged, and never holding what is not a finite number."""

from __future__ import annotations

from workbench.models import score_cache

SCHEMA = {"framework": "lightgbm", "target": {"name": "y"}}


def test_the_key_follows_the_model_the_schema_and_the_holdout(tmp_path):
    model = tmp_path / "model.txt"
    model.write_text("tree")
    first = score_cache.key(SCHEMA, model, "a" * 64)
    assert first == score_cache.key(dict(SCHEMA), model, "a" * 64)
    assert first != score_cache.key(SCHEMA, model, "b" * 64)
    assert first != score_cache.key({**SCHEMA, "features": []}, model, "a" * 64)
    model.write_text("tree!")
    assert first != score_cache.key(SCHEMA, model, "a" * 64)
    # A plugin's predictions depend on its code: not cached. A missing file: not cached.
    assert score_cache.key({**SCHEMA, "framework": "xgboost"}, model, "a" * 64) is None
    assert score_cache.key(SCHEMA, tmp_path / "gone.txt", "a" * 64) is None


def test_scores_round_trip_and_a_damaged_entry_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "model.txt"
    model.write_text("tree")
    key = score_cache.key(SCHEMA, model, "a" * 64)
    assert score_cache.get(key) is None
    score_cache.put(key, {"f1": 0.5, "accuracy": 1})
    assert score_cache.get(key) == {"f1": 0.5, "accuracy": 1.0}
    [entry] = (tmp_path / "cache" / "scores").glob("*.json")
    for damaged in ('{"f1": "0.5"}', '{"f1": true}', "[1, 2]", "{not json"):
        entry.write_text(damaged)
        assert score_cache.get(key) is None
    entry.unlink()
    score_cache.put(key, {"f1": 0.5, "roc_auc": float("nan")})  # not kept
    assert score_cache.get(key) is None
    assert score_cache.get(None) is None
