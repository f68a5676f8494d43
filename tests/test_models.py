"""The model registry and the promotion gate, through the real CLI and real
training runs: versions, aliases, decisions with both scores, re-scoring the
champion on the challenger's hold-out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _runs_fixtures import TrainedTemplate, train_template
from wbtest import REPO, wb_auto, wb_inprocess

from workbench.core.errors import ConfigError


@pytest.fixture
def cli():
    """Runs, the pipeline, the watcher and the server start real processes; the
    other commands run in this one (a subprocess is not the point here)."""
    return wb_auto

pytestmark = pytest.mark.slow


def _project(cli, tmp_path: Path, replace: dict[str, str] | None = None) -> Path:
    folder = tmp_path / "penguins"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    config = folder / "workbench.toml"
    text = config.read_text()
    for old, new in (replace or {}).items():
        assert old in text
        text = text.replace(old, new)
    config.write_text(text)
    cli("project", "add", str(folder), check=True)
    return folder


def _train(cli, project: str, *sets: str) -> int:
    args = [arg for s in sets for arg in ("--set", s)]
    return int(cli("run", "start", project, "--wait", *args, check=True).stdout.split()[0])


def _versions(cli, project: str) -> list[dict]:
    return json.loads(cli("model", "list", project, "--json", check=True).stdout)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, shared_cache) -> tuple[TrainedTemplate, int, int]:
    """The penguins sample trained twice, once for the module, through `run start`:
    a weak first model (three trees), then one of the project's own params. Each
    test that uses it gets a copy of the store and of the project folder."""
    run_ids: list[int] = []

    def train_twice(cli, folder: Path) -> None:
        run_ids.append(_train(cli, "penguins", "n_estimators=3"))
        run_ids.append(_train(cli, "penguins"))

    template = train_template(
        tmp_path_factory,
        shared_cache,
        REPO / "sample_projects" / "penguins-lightgbm",
        train_twice,
        name="two-runs",
        folder="penguins",
    )
    return template, run_ids[0], run_ids[1]


def test_runs_register_versions_and_the_gate_moves_champion(cli, two_runs, wb_home):
    template, first, second = two_runs
    template.install(wb_home)

    versions = _versions(cli, "penguins")
    assert [(v["version"], v["run_id"], v["aliases"]) for v in versions] == [
        (2, second, ["challenger"]),
        (1, first, ["champion"]),
    ]
    v1 = versions[1]
    assert v1["framework"] == "lightgbm" and v1["framework_version"]
    assert v1["metric"] == "f1" and 0 < v1["metrics"]["f1"] < versions[0]["metrics"]["f1"]
    assert len(v1["model"]["sha256"]) == 64 and v1["holdout_sha256"]

    shown = json.loads(cli("model", "show", "penguins@champion", "--json", check=True).stdout)
    assert shown["version"] == 1
    assert shown["datasets"][0]["role"] == "train"
    assert [f["name"] for f in shown["features"]][:2] == ["island", "bill_length_mm"]
    # A bare project name means its champion.
    assert json.loads(cli("model", "show", "penguins", "--json", check=True).stdout)["version"] == 1

    # Same hold-out (same data, seed and split): compared on recorded scores.
    dry = cli("model", "promote", "penguins", "2", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    decision = json.loads(dry.stdout)
    assert decision["promoted"] and decision["dry_run"] and not decision["rescored"]
    assert decision["challenger_score"] == versions[0]["metrics"]["f1"]
    assert decision["champion_score"] == v1["metrics"]["f1"]
    assert _versions(cli, "penguins")[1]["aliases"] == ["champion"]  # a dry run changes nothing

    # A margin larger than the gain keeps the champion: exit 3, decision recorded.
    kept = cli("model", "promote", "penguins", "2", "--margin", "0.9")
    assert kept.returncode == 3
    assert "does not beat" in kept.stderr
    assert _versions(cli, "penguins")[1]["aliases"] == ["champion"]

    assert cli("model", "promote", "penguins", "2").returncode == 0
    aliases = {v["version"]: v["aliases"] for v in _versions(cli, "penguins")}
    assert aliases == {2: ["champion"], 1: []}
    shown = json.loads(cli("model", "show", "penguins@2", "--json", check=True).stdout)
    decisions = [(p["promoted"], p["margin"]) for p in shown["promotions"]]
    assert decisions == [(1, 0.0), (0, 0.9)]

    # The old champion cannot come back through the gate, only with --force.
    back = cli("model", "promote", "penguins", "1")
    assert back.returncode == 3
    assert cli("model", "promote", "penguins", "1", "--force").returncode == 0
    assert json.loads(cli("model", "show", "penguins", "--json").stdout)["version"] == 1

    # A user-defined alias goes through the same gate; a free one is simply taken.
    assert cli("model", "promote", "penguins", "2", "--alias", "staging").returncode == 0
    assert json.loads(cli("model", "show", "penguins@staging", "--json").stdout)["version"] == 2
    assert cli("model", "unalias", "penguins", "staging").returncode == 0
    missing = cli("model", "show", "penguins@staging")
    assert missing.returncode == 2 and "no model with alias 'staging'" in missing.stderr

    # Listing again loads no model: each version's scores on the evaluation set
    # are kept under a hash of the model, schema and hold-out files.
    listed = _versions(cli, "penguins")
    assert _versions_without_lightgbm() == listed
    # A model file that changed is scored afresh (here: LightGBM cannot be imported).
    model_file = wb_home / "artifacts" / v1["model"]["sha256"][:2] / v1["model"]["sha256"]
    model_file.write_bytes(model_file.read_bytes().replace(b"Tree=0", b"Tree=00"))
    rescored = {v["version"]: v for v in _versions_without_lightgbm()}
    assert rescored[2]["common_score"] == listed[0]["common_score"]  # unchanged: cached
    assert rescored[1]["common_score"] is None and rescored[1]["common_error"]


def test_the_gate_records_its_interval_and_model_list_scores_on_one_set(cli, two_runs, wb_home):
    """The promotion gate's paired bootstrap (tests/test_gate_statistics.py) as
    `model promote` records it, and `model list` scoring all versions on one set."""
    # Version 1 (three trees) is the champion, version 2 the challenger.
    folder = two_runs[0].install(wb_home)

    dry = cli("model", "promote", "penguins", "2", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    decision = json.loads(dry.stdout)
    assert decision["method"] == "bootstrap" and decision["resamples"] == 1000
    low, high = decision["interval"]
    assert 0 < low <= decision["difference"] <= high
    assert decision["evaluation_rows"] > 20
    assert "paired bootstrap" in decision["reason"]

    point = json.loads(
        cli("model", "promote", "penguins", "2", "--gate", "point", "--dry-run", "--json").stdout
    )
    assert point["method"] == "point" and point["interval"] is None

    assert cli("model", "promote", "penguins", "2").returncode == 0
    shown = json.loads(cli("model", "show", "penguins@2", "--json", check=True).stdout)
    [record] = [p for p in shown["promotions"] if p["champion"] == 1]
    assert record["method"] == "bootstrap" and record["promoted"] == 1
    assert (record["interval_low"], record["interval_high"]) == pytest.approx((low, high))

    # Both versions scored on the newest version's hold-out, next to their own scores.
    versions = json.loads(cli("model", "list", "penguins", "--json", check=True).stdout)
    assert [v["version"] for v in versions] == [2, 1]
    for v in versions:
        assert v["primary_metric"] == "f1" and v["own_score"] == v["metrics"]["f1"]
        assert v["common_evaluation"]["ref"] == "penguins@2"
        assert 0 <= v["common_score"] <= 1 and "accuracy" in v["common_metrics"]
    assert versions[0]["common_score"] == pytest.approx(versions[0]["own_score"])
    assert versions[0]["common_score"] > versions[1]["common_score"]
    table = cli("model", "list", "penguins", check=True)
    assert "F1 ON V2 HOLD-OUT" in table.stdout + table.stderr

    # The setting in workbench.toml.
    config = folder / "workbench.toml"
    config.write_text(config.read_text() + 'gate = "point"\n')
    again = json.loads(cli("model", "promote", "penguins", "1", "--dry-run", "--json").stdout)
    assert again["method"] == "point"


def _versions_without_lightgbm() -> list[dict]:
    """`model list penguins --json` in a process where LightGBM cannot be imported."""
    code = (
        "import sys; sys.modules['lightgbm'] = None;"
        " sys.argv = ['workbench', 'model', 'list', 'penguins', '--json'];"
        " from workbench.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_champion_is_rescored_on_the_challengers_holdout(cli, two_runs, wb_home):
    from workbench.models.registry import load_model, resolve
    from workbench.store import open_store
    from workbench.trainers.metrics import classification_metrics

    # Version 1 is the champion, trained on the sample's data.
    folder = two_runs[0].install(wb_home)
    # New training data (more rows): a different hold-out.
    train = pd.read_csv(folder / "data" / "train.csv")
    extra = pd.read_csv(folder / "data" / "incoming" / "batch_01_clean.csv")
    pd.concat([train, extra]).to_csv(folder / "data" / "train.csv", index=False)
    _train(cli, "penguins")

    decision = json.loads(cli("model", "promote", "penguins", "3", "--dry-run", "--json").stdout)
    assert decision["rescored"] is True
    assert "challenger's hold-out" in decision["reason"]

    store = open_store()
    champion, challenger = resolve(store, "penguins@champion"), resolve(store, "penguins@3")
    assert champion.holdout_sha256 != challenger.holdout_sha256
    holdout = pd.read_parquet(challenger.holdout_path)
    truth = holdout.pop("species")
    pred, proba = load_model(champion).predict(holdout)
    expected = classification_metrics(truth, pred, proba, champion.schema["target"]["classes"])
    assert decision["champion_score"] == pytest.approx(expected["f1"])
    assert decision["champion_score"] != champion.metrics["f1"]
    store.close()


def test_runs_without_a_model_register_nothing(cli, tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "train.csv").write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    (folder / "train.py").write_text("import workbench as wb\nwb.log_metric('acc', 0.5)\n")
    (folder / "workbench.toml").write_text(
        '[data]\ntrain = "train.csv"\ntarget = "y"\n[train]\ntrainer = "script"\n'
        'script = "train.py"\n'
    )
    cli("project", "add", str(folder), check=True)
    _train(cli, "plain")
    assert _versions(cli, "plain") == []
    listed = cli("model", "list", "plain")
    assert "no model versions yet" in listed.stderr
    shown = cli("model", "show", "plain")
    assert shown.returncode == 2 and "has no model versions yet" in shown.stderr


def test_failed_runs_and_manual_projects(cli, tmp_path):
    _project(cli, tmp_path, {'promote = "if-better"': 'promote = "manual"'})
    # Parameters LightGBM would refuse fail the run before anything is started,
    # so this `run start` runs in this process (one that started a process would
    # fail here, naming it).
    run = wb_inprocess("run", "start", "penguins", "--wait", "--set", "num_leaves=-3")
    assert run.returncode != 0
    assert _versions(cli, "penguins") == []
    _train(cli, "penguins")
    # With promote = "manual" the first version is only the challenger.
    assert _versions(cli, "penguins")[0]["aliases"] == ["challenger"]
    bad = cli("model", "promote", "penguins", "7")
    assert bad.returncode == 2 and "no model version 7" in bad.stderr
    bad_alias = cli("model", "promote", "penguins", "1", "--alias", "9lives")
    assert bad_alias.returncode == 2 and "bad alias" in bad_alias.stderr


def test_margin_must_not_be_negative(tmp_path):
    from workbench.config.project import load_config

    folder = tmp_path / "p"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    config = folder / "workbench.toml"
    config.write_text(config.read_text().replace('promote = "if-better"', "margin = -0.1"))
    with pytest.raises(ConfigError) as raised:
        load_config(folder)
    assert raised.value.key == "automation.margin"
