"""`wb.log_model`: a model from the user's own training script becomes a model
version like a built-in trainer's — registered, gated by the pipeline, exported,
predicted with — and what cannot be logged fails the run with the reason."""

from __future__ import annotations

import contextlib
import io
import json
import runpy
from pathlib import Path

import pandas as pd
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from test_runs_e2e import script_project
from wbtest import wb_auto

from workbench.core import paths


@pytest.fixture
def cli():
    """Runs, the pipeline, the watcher and the server start real processes; the
    other commands run in this one (a subprocess is not the point here)."""
    return wb_auto

pytestmark = pytest.mark.slow


def _versions(cli, project: str) -> list[dict]:
    return json.loads(cli("model", "list", project, "--json", check=True).stdout)


def _run_script_inline(folder: Path) -> None:
    """The project's training script in a run this process owns, with the
    project's `[train]` params, as `run start` would give them: the script's
    `wb.log_model` registers the model when the run ends. The pipeline's retrain
    below runs the same script under a supervisor, in processes of its own."""
    import workbench as wb
    from workbench.config.project import load_config

    config = load_config(folder)
    with (
        contextlib.chdir(folder),
        contextlib.redirect_stdout(io.StringIO()),
        wb.start_run(folder, config.params),
    ):
        runpy.run_path(str(config.script), run_name="__main__")


def test_a_script_model_is_registered_exported_and_retrained_by_the_pipeline(cli, tmp_path):
    folder = tmp_path / "wine"
    cli("project", "init", str(folder), "--template", "script", check=True)
    _run_script_inline(folder)
    [version] = _versions(cli, "wine")
    assert version["framework"] == "sklearn" and version["aliases"] == ["champion"]
    assert version["metrics"]["accuracy"] > 0.8

    # The bundle predicts what the script's own pipeline predicts.
    cli("model", "export", "wine", "--format", "bundle", "-o", str(tmp_path / "b"), check=True)
    train = pd.read_csv(folder / "data" / "train.csv")
    out = tmp_path / "pred.csv"
    cli(
        "predict",
        str(tmp_path / "b"),
        str(folder / "data" / "train.csv"),
        "-o",
        str(out),
        check=True,
    )
    data = (tmp_path / "b" / "model.skops").read_bytes()
    native = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    features = train.drop(columns=["cultivar"])
    expected = native.predict(features)
    assert (pd.read_csv(out)["prediction"].to_numpy() == expected).all()

    # New labelled data: the pipeline retrains through the script and gates the result.
    batch = tmp_path / "batch.csv"
    sample = train.sample(frac=0.4, random_state=1)
    sample.assign(**{c: sample[c] * 1.01 for c in features.columns[:3]}).to_csv(batch, index=False)
    result = cli("pipeline", "run", "wine", str(batch), "--json", timeout=300)
    assert result.returncode in (0, 3), result.stderr
    steps = {s["step"]: s for s in json.loads(result.stdout)["steps"]}
    assert steps["retrain"]["status"] == "ok" and steps["evaluate"]["status"] == "ok"
    assert [v["version"] for v in _versions(cli, "wine")] == [2, 1]
    # A script starts afresh every time: its retrain starts no warm server.
    assert not (paths.home() / "warm.log").exists()


@pytest.mark.parametrize(
    "call, reason",
    [
        ("wb.log_model(model, x.to_numpy(), y)", "x_test must be a pandas DataFrame"),
        ("wb.log_model(Custom().fit(x, y), x, y)", "outside the allow-list"),
        ("wb.log_model(model, x, y[:1])", "x_test has 6 rows, y_test 1"),
        ("wb.log_model(model, x.assign(y=y), y)", "x_test holds the target column 'y'"),
    ],
)
def test_what_cannot_be_logged_fails_the_run_with_the_reason(cli, tmp_path, call, reason):
    body = f"""\
        import pandas as pd
        from sklearn.linear_model import LogisticRegression
        import workbench as wb

        class Custom(LogisticRegression):
            pass

        x = pd.DataFrame({{"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}})
        y = pd.Series([0, 1, 0, 1, 0, 1], name="y")
        model = LogisticRegression().fit(x, y)
        {call}
        """
    script_project(tmp_path / "p", body)
    cli("project", "add", str(tmp_path / "p"), check=True)
    run = cli("run", "start", "scripted", "--wait")
    assert run.returncode != 0
    run_id = json.loads(cli("run", "list", "--json", check=True).stdout)[0]["id"]
    assert reason in cli("run", "logs", str(run_id), check=True).stdout
    assert cli("model", "list", "scripted", "--json", check=True).stdout.strip() == "[]"


def test_a_model_logged_in_a_run_of_ones_own_is_registered_when_the_block_ends(cli, tmp_path):
    import workbench as wb
    from workbench.templates import init_project

    folder = init_project(tmp_path / "nb", "script")
    frame = pd.read_csv(folder / "data" / "train.csv")
    y = frame.pop("cultivar")
    with wb.start_run(project=folder):
        x_train, x_test, y_train, y_test = wb.holdout_split(frame, y)
        model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_train, y_train)
        wb.log_metric("accuracy", model.score(x_test, y_test))
        wb.log_model(model, x_test, y_test)
    # Rows held out by content: the same split for the same rows, whatever their order.
    shuffled = frame.sample(frac=1, random_state=3)
    with wb.start_run(project=folder):
        again = wb.holdout_split(shuffled, y.loc[shuffled.index])[1]
    assert sorted(again.index) == sorted(x_test.index)
    [version] = _versions(cli, folder.name)
    assert version["aliases"] == ["champion"] and version["framework"] == "sklearn"
    assert version["metrics"]["accuracy"] > 0.8
