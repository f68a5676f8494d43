"""`workbench project init --data FILE --target COLUMN` on real public tables."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from _data_fixtures import train_inline
from wbtest import wb, wb_inprocess

from workbench.core.errors import UsageError
from workbench.templates import create, plan_project


@pytest.fixture
def cli():
    """In this process, but for `run start`: a supervised run is a real process."""

    def run(*args: str, **options):
        return (wb if args[:2] == ("run", "start") else wb_inprocess)(*args, **options)

    return run


def cancer(folder: Path) -> Path:
    from sklearn.datasets import load_breast_cancer

    path = folder / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(path, index=False)
    return path


def penguins(folder: Path) -> Path:
    from palmerpenguins import load_penguins

    path = folder / "penguins.csv"
    load_penguins().to_csv(path, index=False)
    return path


def doctor_visits(folder: Path, rows: int = 1500) -> Path:
    """RAND health insurance experiment: `mdvis`, a count of doctor visits (59 values)."""
    # The dataset module alone: `statsmodels.api` imports all of statsmodels (seconds).
    from statsmodels.datasets import randhie

    path = folder / "visits.csv"
    randhie.load_pandas().data.head(rows).to_csv(path, index=False)
    return path


TABLES = {
    # table, target, template -> task, metric, trainer
    "cancer": (cancer, "target", "lightgbm", "classification", "roc_auc", "lightgbm"),
    "penguins": (penguins, "species", "lightgbm", "classification", "f1", "lightgbm"),
    "visits": (
        doctor_visits,
        "mdvis",
        "sklearn",
        "regression",
        "rmse",
        "sklearn:sklearn.ensemble.HistGradientBoostingRegressor",
    ),
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_init_from_data_infers_task_and_metric(cli, tmp_path, table):
    make, target, template, task, metric, trainer = TABLES[table]
    source = make(tmp_path)
    before = source.read_bytes()

    result = cli(
        "project",
        "init",
        str(tmp_path / "mine"),
        "--data",
        str(source),
        "--target",
        target,
        "--template",
        template,
        "--json",
        check=True,
    )

    doc = json.loads(result.stdout)
    assert doc["name"] == "mine"
    assert doc["inferred"]["task"] == task
    assert doc["inferred"]["metric"] == metric
    assert doc["inferred"]["rows"] == len(pd.read_csv(source))
    assert target in doc["inferred"]["task_reason"] or "target" in doc["inferred"]["task_reason"]
    config = tomllib.loads((tmp_path / "mine" / "workbench.toml").read_text())
    assert config["project"]["task"] == task
    assert config["train"]["metric"] == metric
    assert config["train"]["trainer"] == trainer
    assert config["data"] == {
        "train": "data/train.csv",
        "target": target,
        "watch": ["data/incoming"],
    }
    copied = tmp_path / "mine" / "data" / "train.csv"
    assert not copied.is_symlink() and copied.read_bytes() == before
    assert source.read_bytes() == before
    listed = json.loads(cli("project", "list", "--json", check=True).stdout)
    assert [p["name"] for p in listed] == ["mine"]


def test_init_says_what_it_inferred_and_how_to_override(cli, tmp_path):
    source = doctor_visits(tmp_path, rows=300)

    result = cli(
        "project",
        "init",
        str(tmp_path / "visits"),
        "--data",
        str(source),
        "--target",
        "mdvis",
        check=True,
    )

    assert "task: regression" in result.stderr
    assert "[project] task" in result.stderr  # the setting that overrides it
    assert "metric: rmse" in result.stderr and "[train] metric" in result.stderr
    assert "workbench run start visits" in result.stderr
    text = (tmp_path / "visits" / "workbench.toml").read_text()
    assert "# Inferred from 'mdvis'" in text  # the reason, as a comment next to the setting


def test_a_count_target_trains_a_regressor_end_to_end(cli, tmp_path):
    source = doctor_visits(tmp_path, rows=600)
    cli(
        "project",
        "init",
        str(tmp_path / "visits"),
        "--data",
        str(source),
        "--target",
        "mdvis",
        "--template",
        "sklearn",
        "--name",
        "visits",
        check=True,
    )

    # What is checked is the trainer the inferred task chose and what it reports:
    # the run is trained here (its params checked as `run start --set` checks
    # them), not by a supervisor, which the script template's test below keeps.
    run_id, printed = train_inline(tmp_path / "visits", {"max_iter": 20})

    run = json.loads(cli("run", "show", str(run_id), "--json", check=True).stdout)
    assert run["status"] == "succeeded", printed
    assert {"rmse", "mae", "r2"} <= set(run["metrics"])
    assert "roc_auc" not in run["metrics"]


def test_script_template_on_text_features_and_missing_values_end_to_end(cli, tmp_path):
    source = penguins(tmp_path)  # island and sex are text; some rows have gaps
    cli(
        "project",
        "init",
        str(tmp_path / "p"),
        "--data",
        str(source),
        "--target",
        "species",
        "--template",
        "script",
        "--name",
        "pens",
        check=True,
    )

    run_id = cli(
        "run", "start", "pens", "--set", "epochs=3", "--wait", check=True, timeout=300
    ).stdout.split()[0]

    run = json.loads(cli("run", "show", run_id, "--json", check=True).stdout)
    assert run["status"] == "succeeded", cli("run", "logs", run_id).stdout
    assert {"accuracy", "f1", "log_loss", "val_loss"} <= set(run["metrics"])
    models = json.loads(cli("model", "list", "pens", "--json", check=True).stdout)
    assert len(models) == 1  # the logged pipeline is a model version


def test_link_points_at_the_users_file(cli, tmp_path):
    source = cancer(tmp_path)

    cli(
        "project",
        "init",
        str(tmp_path / "linked"),
        "--data",
        str(source),
        "--target",
        "target",
        "--link",
        check=True,
    )

    train = tmp_path / "linked" / "data" / "train.csv"
    assert train.is_symlink() and train.resolve() == source.resolve()


def test_parquet_data_keeps_its_format(cli, tmp_path):
    from palmerpenguins import load_penguins

    source = tmp_path / "penguins.parquet"
    load_penguins().to_parquet(source)

    doc = json.loads(
        cli(
            "project",
            "init",
            str(tmp_path / "pq"),
            "--data",
            str(source),
            "--target",
            "species",
            "--json",
            check=True,
        ).stdout
    )

    assert doc["inferred"]["task"] == "classification"
    config = tomllib.loads((tmp_path / "pq" / "workbench.toml").read_text())
    assert config["data"]["train"] == "data/train.parquet"
    assert (tmp_path / "pq" / "data" / "train.parquet").is_file()


def test_an_empty_existing_folder_is_used_and_left_empty_on_failure(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    source = cancer(tmp_path)

    failed = cli("project", "init", str(tmp_path / "empty"), "--data", str(source), "--target", "x")
    assert failed.returncode == 2
    assert list((tmp_path / "empty").iterdir()) == []  # the folder itself stays: it was there

    cli(
        "project",
        "init",
        str(tmp_path / "empty"),
        "--data",
        str(source),
        "--target",
        "target",
        check=True,
    )
    assert (tmp_path / "empty" / "workbench.toml").is_file()


def test_a_failure_while_creating_removes_every_folder_it_made(tmp_path):
    source = cancer(tmp_path)
    plan = plan_project(tmp_path / "a" / "b" / "c", "lightgbm", data=source, target="target")
    os.unlink(source)  # gone between the checks and the copy

    with pytest.raises(UsageError, match="cannot create the project"):
        create(plan)

    assert not (tmp_path / "a").exists()


def test_templates_infer_the_task_instead_of_fixing_it(cli, tmp_path):
    cli("project", "init", str(tmp_path / "t"), "--template", "lightgbm", check=True)
    config_file = tmp_path / "t" / "workbench.toml"
    assert "task" not in tomllib.loads(config_file.read_text())["project"]
    # Pointed at a count target, its classification metric no longer fits: said at once.
    doctor_visits(tmp_path / "t" / "data", rows=300)
    text = (
        config_file.read_text().replace("train.csv", "visits.csv").replace('"diagnosis"', '"mdvis"')
    )
    config_file.write_text(text)

    # Refused before any process starts, so in this process (it would fail, naming
    # the process, if one were left running).
    result = wb_inprocess("run", "start", "t")

    assert result.returncode == 2
    assert "train.metric" in result.stderr and "roc_auc" in result.stderr
    assert "rmse" in result.stderr  # the metrics that fit
    assert "Traceback" not in result.stderr
    assert json.loads(cli("run", "list", "--json", check=True).stdout) == []


def test_a_hostile_column_name_is_written_as_a_value_not_as_toml(cli, tmp_path):
    target = 'la"bel # x\n[evil]\nkey = 1'
    source = tmp_path / "weird.csv"
    pd.DataFrame({"a": range(40), target: ["p", "q"] * 20}).to_csv(source, index=False)

    cli(
        "project", "init", str(tmp_path / "w"), "--data", str(source), "--target", target,
        "--name", "w", check=True,
    )  # fmt: skip

    config = tomllib.loads((tmp_path / "w" / "workbench.toml").read_text())
    assert set(config) == {"project", "data", "train", "automation"}
    assert config["data"]["target"] == target
    assert config["project"]["name"] == "w"
