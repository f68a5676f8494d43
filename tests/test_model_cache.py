"""A process loads a model version once while its file is unchanged: a pipeline
reads the champion and the challenger several times over (drift, the gate's
evaluation, its promotion, the model card)."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest
from _data_fixtures import train_inline
from wbtest import REPO, wb_inprocess

from workbench.models import registry
from workbench.store import open_store


@pytest.fixture
def version(tmp_path):
    folder = tmp_path / "penguins"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    wb_inprocess("project", "add", str(folder), check=True)
    train_inline(folder, {"n_estimators": 10})
    registry.load_model.cache_clear()
    store = open_store()
    try:
        yield registry.resolve(store, "penguins")
    finally:
        store.close()
        registry.load_model.cache_clear()


def test_a_version_is_loaded_once_until_its_file_changes(version):
    first = registry.load_model(version)
    assert registry.load_model(version) is first
    holdout = pd.read_parquet(version.holdout_path).drop(columns=["species"])
    before = first.predict(holdout)[0]
    assert list(registry.load_model(version).predict(holdout)[0]) == list(before)

    # The same file written again (a new change time): loaded afresh.
    path = version.model_path
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    again = registry.load_model(version)
    assert again is not first
    assert registry.load_model(version) is again

    # A broken file is refused on load, never served from the cache.
    path.write_text("tree\nnot a model\n")
    with pytest.raises(Exception, match="(?i)model"):
        registry.load_model(version)


def test_only_the_last_few_models_are_kept(version, tmp_path, monkeypatch):
    train_inline(tmp_path / "penguins", {"n_estimators": 12})
    store = open_store()
    try:
        second = registry.resolve(store, "penguins@2")
    finally:
        store.close()
    monkeypatch.setattr(registry, "_LOADED_MAX", 1)
    first = registry.load_model(version)
    assert registry.load_model(second) is not first
    assert registry.load_model(version) is not first  # put out by the second


def test_installed_distributions_are_read_once_and_again_for_a_new_module(monkeypatch):
    from importlib import metadata

    from workbench.models import wheels

    installed = {"numpy": ["numpy"], "sklearn": ["scikit-learn"]}
    reads = []

    def packages_distributions():
        reads.append(1)
        return {module: list(names) for module, names in installed.items()}

    monkeypatch.setattr(metadata, "packages_distributions", packages_distributions)
    wheels._packages_distributions.cache_clear()
    monkeypatch.setattr(wheels, "model_types", lambda framework, path: ["sklearn.Thing"])
    assert "scikit-learn" in wheels.model_distributions("sklearn", None)
    assert "scikit-learn" in wheels.model_distributions("sklearn", None)
    assert len(reads) == 1
    # A module installed since (the watcher runs for days): read again, once.
    installed["newlib"] = ["new-lib"]
    monkeypatch.setattr(wheels, "model_types", lambda framework, path: ["newlib.Model"])
    assert "new-lib" in wheels.model_distributions("sklearn", None)
    assert len(reads) == 2
    # Still missing after a fresh read: the error names the module.
    monkeypatch.setattr(wheels, "model_types", lambda framework, path: ["gone.Model"])
    with pytest.raises(Exception, match="'gone'"):
        wheels.model_distributions("sklearn", None)
    wheels._packages_distributions.cache_clear()
