"""`workbench.toml` loading and validation, and `--set` overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from wbtest import wb_inprocess

from workbench.config.project import load_config, parse_overrides
from workbench.core.errors import ConfigError, UsageError
from workbench.models.plugin_names import PluginNames

CSV = "age,income,city,churned\n34,52000,Oslo,yes\n51,61000,Bergen,no\n29,38000,Oslo,no\n"
COLUMNS = ["age", "income", "city", "churned"]

LIGHTGBM = """
[project]
name = "churn"
task = "classification"
description = "Who leaves"

[data]
train = "data/train.csv"
target = "churned"
watch = ["data/incoming"]

[train]
trainer = "lightgbm"
params = { n_estimators = 200, learning_rate = 0.05 }
metric = "roc_auc"
test_size = 0.25
seed = 7

[automation]
on_new_data = "validate-and-retrain"
promote = "if-better"
export = ["bundle", "onnx"]
"""

MINIMAL = """
[data]
train = "data/train.csv"
target = "churned"

[train]
trainer = "lightgbm"
"""

# A TOML syntax error on the line after MINIMAL's last line.
BAD_TOML = "seed = = 3\n"
BAD_LINE = len(MINIMAL.splitlines()) + 1


def make_project(
    folder: Path, toml: str, *, csv: str | None = CSV, files: dict[str, str] | None = None
) -> Path:
    """A project folder with `workbench.toml`, `data/train.csv` and any extra files."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    if csv is not None:
        (folder / "data" / "train.csv").write_text(csv)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / "workbench.toml").write_text(toml)
    return folder


def config_error(folder: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(folder, PluginNames())
    return caught.value


def assert_names_file_and_key(error: ConfigError, folder: Path, key: str) -> None:
    config_file = str((folder / "workbench.toml").resolve())
    assert error.key == key
    assert error.path == config_file
    assert config_file in error.message
    assert key in error.message


# --- valid configs -------------------------------------------------------------


def test_lightgbm_config_loads_every_field(tmp_path):
    folder = make_project(tmp_path / "churn", LIGHTGBM)

    config = load_config(folder)

    root = folder.resolve()
    assert config.file == root / "workbench.toml"
    assert config.root == root
    assert config.name == "churn"
    assert config.task == "classification"
    assert config.description == "Who leaves"
    assert config.train_file == root / "data" / "train.csv"
    assert config.target == "churned"
    assert config.watch == (root / "data" / "incoming",)
    assert config.trainer == "lightgbm"
    assert config.sklearn_estimator is None
    assert config.script is None
    assert config.params == {"n_estimators": 200, "learning_rate": 0.05}
    assert config.metric == "roc_auc"
    assert config.test_size == 0.25
    assert config.seed == 7
    assert config.on_new_data == "validate-and-retrain"
    assert config.promote == "if-better"
    assert config.export == ("bundle", "onnx")
    assert config.raw["train"]["params"]["n_estimators"] == 200


def test_sklearn_config_names_its_estimator(tmp_path):
    toml = MINIMAL.replace('"lightgbm"', '"sklearn:sklearn.linear_model.LogisticRegression"')
    config = load_config(make_project(tmp_path / "p", toml))

    assert config.trainer == "sklearn:sklearn.linear_model.LogisticRegression"
    assert config.sklearn_estimator == "sklearn.linear_model.LogisticRegression"


def test_script_config_resolves_its_script(tmp_path):
    toml = MINIMAL.replace('"lightgbm"', '"script"\nscript = "train.py"\nmetric = "val_loss"')
    folder = make_project(tmp_path / "p", toml, files={"train.py": "print('hi')\n"})

    config = load_config(folder)

    assert config.trainer == "script"
    assert config.script == folder.resolve() / "train.py"
    assert config.metric == "val_loss"  # a script reports metrics of its own choosing


def test_minimal_config_gets_the_defaults(tmp_path):
    config = load_config(make_project(tmp_path / "my-project", MINIMAL))

    assert config.name == "my-project"  # the folder's name
    assert config.task is None
    assert config.params == {}
    assert config.metric is None
    assert config.test_size == 0.2
    assert config.seed == 42
    assert config.watch == ()
    assert config.on_new_data == "validate"
    assert config.promote == "if-better"
    assert config.export == ()


def test_parquet_training_file_loads(tmp_path):
    folder = make_project(tmp_path / "p", MINIMAL.replace("train.csv", "train.parquet"), csv=None)
    pd.DataFrame({"x": [1.0, 2.0], "churned": ["yes", "no"]}).to_parquet(
        folder / "data" / "train.parquet"
    )

    config = load_config(folder)

    assert config.train_file.name == "train.parquet"
    assert config.target == "churned"


def test_gzipped_csv_training_file_loads(tmp_path):
    folder = make_project(tmp_path / "p", MINIMAL.replace("train.csv", "train.csv.gz"), csv=None)
    pd.DataFrame({"x": [1.0, 2.0], "churned": ["yes", "no"]}).to_csv(
        folder / "data" / "train.csv.gz", index=False
    )

    assert load_config(folder).train_file.name == "train.csv.gz"


@pytest.mark.parametrize(
    "header",
    [
        "\ufeffage,income,city,churned",  # a byte-order mark, as Excel writes
        "age, income, city, churned",  # a space after each comma
        '"age","income","city","churned"',  # quoted names
    ],
)
def test_an_accepted_target_is_a_column_the_trainer_can_read(tmp_path, header):
    # load_config's cheap header check and the trainers' pandas reader must agree;
    # otherwise the config is accepted and training fails on the missing column.
    from workbench.trainers.tabular import read_table

    csv = header + "\n34,52000,Oslo,yes\n51,61000,Bergen,no\n"
    folder = make_project(tmp_path / "p", MINIMAL, csv=None)
    (folder / "data" / "train.csv").write_text(csv, encoding="utf-8")

    try:
        config = load_config(folder)
    except ConfigError:
        return  # refusing the file is fine too
    assert config.target in read_table(config.train_file).columns


# --- errors: each names the file and the key -----------------------------------


def test_unknown_trainer(tmp_path):
    folder = make_project(tmp_path / "p", MINIMAL.replace('"lightgbm"', '"nosuchtrainer"'))

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "train.trainer")
    assert "nosuchtrainer" in error.message
    assert "lightgbm" in error.message  # says what was expected


@pytest.mark.parametrize("trainer", ["sklearn:", "sklearn:LogisticRegression", "sklearn:1bad.Path"])
def test_sklearn_trainer_needs_a_dotted_estimator_path(tmp_path, trainer):
    folder = make_project(tmp_path / "p", MINIMAL.replace('"lightgbm"', f'"{trainer}"'))

    assert_names_file_and_key(config_error(folder), folder, "train.trainer")


def test_missing_trainer(tmp_path):
    folder = make_project(tmp_path / "p", MINIMAL.replace('trainer = "lightgbm"', ""))

    assert_names_file_and_key(config_error(folder), folder, "train.trainer")


def test_missing_target_column_lists_the_columns(tmp_path):
    folder = make_project(tmp_path / "p", MINIMAL.replace('"churned"', '"left"'))

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "data.target")
    assert "'left'" in error.message
    for column in COLUMNS:
        assert column in error.message


def test_missing_target_key(tmp_path):
    folder = make_project(tmp_path / "p", MINIMAL.replace('target = "churned"', ""))

    assert_names_file_and_key(config_error(folder), folder, "data.target")


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ('test_size = "big"', "train.test_size", "a number"),
        ("test_size = true", "train.test_size", "a number"),
        ("params = 3", "train.params", "a table"),
        ("seed = 1.5", "train.seed", "an integer"),
        ("metric = 3", "train.metric", "a string"),
    ],
)
def test_wrong_value_type(tmp_path, line, key, expected):
    folder = make_project(tmp_path / "p", MINIMAL + line + "\n")

    error = config_error(folder)

    assert_names_file_and_key(error, folder, key)
    assert expected in error.message


def test_wrong_value_type_in_other_sections(tmp_path):
    toml = MINIMAL.replace('target = "churned"', 'target = "churned"\nwatch = "data/in"')
    folder = make_project(tmp_path / "p", toml)

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "data.watch")
    assert "a list" in error.message


def test_watch_entries_must_be_paths(tmp_path):
    toml = MINIMAL.replace('target = "churned"', 'target = "churned"\nwatch = [1, 2]')

    folder = make_project(tmp_path / "p", toml)
    assert_names_file_and_key(config_error(folder), folder, "data.watch")


def test_toml_syntax_error(tmp_path):
    folder = make_project(tmp_path / "p", MINIMAL + BAD_TOML)

    error = config_error(folder)

    config_file = str((folder / "workbench.toml").resolve())
    assert error.path == config_file
    assert config_file in error.message
    assert "not valid TOML" in error.message
    assert f"line {BAD_LINE}" in error.message  # where the problem is


def test_config_that_is_not_utf8(tmp_path):
    folder = make_project(tmp_path / "p", MINIMAL)
    (folder / "workbench.toml").write_bytes(MINIMAL.encode() + b"# caf\xe9\n")

    error = config_error(folder)

    assert str((folder / "workbench.toml").resolve()) in error.message
    assert "UTF-8" in error.message


def test_unknown_section(tmp_path):
    folder = make_project(tmp_path / "p", MINIMAL + "\n[model]\nkind = 'x'\n")

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "model")
    assert "unknown section" in error.message
    assert "automation" in error.message  # lists the known sections


def test_section_that_is_not_a_table(tmp_path):
    folder = make_project(tmp_path / "p", 'project = "churn"\n' + MINIMAL)

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "project")
    assert "table" in error.message


def test_unknown_key(tmp_path):
    folder = make_project(tmp_path / "p", MINIMAL + "epochs = 3\n")

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "train.epochs")
    assert "unknown key" in error.message
    assert "test_size" in error.message  # lists the known keys


def test_missing_training_file(tmp_path):
    folder = make_project(tmp_path / "p", MINIMAL.replace("train.csv", "nope.csv"))

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "data.train")
    assert "not found" in error.message
    assert "nope.csv" in error.message


def test_training_file_of_an_unknown_kind(tmp_path):
    folder = make_project(
        tmp_path / "p",
        MINIMAL.replace("train.csv", "train.xlsx"),
        files={"data/train.xlsx": "not really"},
    )

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "data.train")
    assert ".parquet" in error.message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("train.csv", ""),  # empty
        ("train.csv.gz", "age,churned\n1,yes\n"),  # named .gz but not gzip
        ("train.parquet", "age,churned\n1,yes\n"),  # named .parquet but CSV
    ],
)
def test_unreadable_training_file(tmp_path, name, content):
    folder = make_project(
        tmp_path / "p",
        MINIMAL.replace("train.csv", name),
        csv=None,
        files={f"data/{name}": content},
    )

    assert_names_file_and_key(config_error(folder), folder, "data.train")


def test_script_trainer_without_script(tmp_path):
    folder = make_project(tmp_path / "p", MINIMAL.replace('"lightgbm"', '"script"'))

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "train.script")
    assert "missing" in error.message


def test_script_file_missing(tmp_path):
    toml = MINIMAL.replace('"lightgbm"', '"script"\nscript = "train.py"')
    folder = make_project(tmp_path / "p", toml)

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "train.script")
    assert "train.py" in error.message


def test_bad_task(tmp_path):
    folder = make_project(tmp_path / "p", '[project]\ntask = "clustering"\n' + MINIMAL)

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "project.task")
    assert "regression" in error.message


@pytest.mark.parametrize(
    ("task", "metric"),
    [("regression", "roc_auc"), ("classification", "rmse"), (None, "bleu")],
)
def test_bad_metric_for_the_task(tmp_path, task, metric):
    head = f'[project]\ntask = "{task}"\n' if task else ""
    folder = make_project(tmp_path / "p", head + MINIMAL + f'metric = "{metric}"\n')

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "train.metric")
    assert metric in error.message


@pytest.mark.parametrize("test_size", ["0", "1", "1.5", "-0.1", "0.0"])
def test_test_size_out_of_range(tmp_path, test_size):
    folder = make_project(tmp_path / "p", MINIMAL + f"test_size = {test_size}\n")

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "train.test_size")
    assert "between 0 and 1" in error.message


@pytest.mark.parametrize("name", ["bad name", "-leading-dash", "", "a/b", "x" * 65])
def test_bad_project_name(tmp_path, name):
    folder = make_project(tmp_path / "p", f'[project]\nname = "{name}"\n' + MINIMAL)

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "project.name")


@pytest.mark.parametrize(
    ("section", "line", "key"),
    [
        ("automation", 'on_new_data = "sometimes"', "automation.on_new_data"),
        ("automation", 'promote = "never"', "automation.promote"),
        ("automation", 'export = ["zip"]', "automation.export"),
    ],
)
def test_bad_automation_choices(tmp_path, section, line, key):
    folder = make_project(tmp_path / "p", MINIMAL + f"\n[{section}]\n{line}\n")

    assert_names_file_and_key(config_error(folder), folder, key)


def test_folder_without_config_is_a_usage_error(tmp_path):
    (tmp_path / "empty").mkdir()

    with pytest.raises(UsageError, match="workbench.toml"):
        load_config(tmp_path / "empty")


def test_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such folder"):
        load_config(tmp_path / "nowhere")


# --- the CLI prints these errors without a traceback ------------------------------

CLI_CASES = {
    "unknown trainer": (MINIMAL.replace('"lightgbm"', '"nosuchtrainer"'), "train.trainer"),
    "missing target column": (MINIMAL.replace('"churned"', '"left"'), "data.target"),
    "wrong value type": (MINIMAL + 'test_size = "big"\n', "train.test_size"),
    "TOML syntax error": (MINIMAL + BAD_TOML, None),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_project_add_reports_a_bad_config_without_a_traceback(tmp_path, cli, case):
    toml, key = CLI_CASES[case]
    folder = make_project(tmp_path / "p", toml)

    result = cli("project", "add", str(folder))

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert str((folder / "workbench.toml").resolve()) in result.stderr
    if key is None:
        assert "not valid TOML" in result.stderr
        assert f"line {BAD_LINE}" in result.stderr
    else:
        assert key in result.stderr
    assert result.stdout == ""


# --- --set key=value ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pair", "key", "value"),
    [
        ("n_estimators=300", "n_estimators", 300),
        ("lr=0.05", "lr", 0.05),
        ("alpha=1e-3", "alpha", 0.001),
        ("offset=-2", "offset", -2),
        ("early_stop=true", "early_stop", True),
        ("shuffle=false", "shuffle", False),
        ("objective=binary", "objective", "binary"),
        ('label="two words"', "label", "two words"),
        ("quoted='single'", "quoted", "single"),
        ('version="3"', "version", "3"),
        ("layers=[64, 32]", "layers", [64, 32]),
        ('names=["a", "b"]', "names", ["a", "b"]),
        ("  depth = 6 ", "depth", 6),
        ("expr=a=b", "expr", "a=b"),
        ("empty=", "empty", ""),
        ("path=data/x.csv", "path", "data/x.csv"),
    ],
)
def test_parse_overrides_reads_toml_literals(pair, key, value):
    parsed = parse_overrides([pair])

    assert parsed == {key: value}
    assert type(parsed[key]) is type(value)


def test_parse_overrides_takes_many_pairs_and_the_last_one_wins():
    assert parse_overrides(("a=1", "b=x", "a=2")) == {"a": 2, "b": "x"}


@pytest.mark.parametrize("pair", ["since=2024-01-01", "at=07:30:00", "when=2024-01-01T07:30:00"])
def test_parse_overrides_values_can_be_stored_as_json(pair):
    # Params are stored as JSON (runs.launch.create_run), so every value must encode.
    parsed = parse_overrides([pair])

    encoded = json.dumps(parsed)
    assert json.loads(encoded) == {pair.split("=")[0]: pair.split("=", 1)[1]}


@pytest.mark.parametrize("pair", ["novalue", "=3", " =3"])
def test_parse_overrides_without_key_and_equals_is_a_usage_error(pair):
    with pytest.raises(UsageError, match="key=value"):
        parse_overrides([pair])


# --- every number range-checked; nothing non-finite anywhere --------------------


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("\n[automation]\nmargin = nan\n", "automation.margin"),
        ("\n[automation]\nmargin = inf\n", "automation.margin"),
        ("\n[automation]\nmargin = -0.1\n", "automation.margin"),
        ("\n[automation]\nmargin = 1e300\n", "automation.margin"),
        ("test_size = nan\n", "train.test_size"),
        ("seed = -1\n", "train.seed"),
        ("seed = 99999999999\n", "train.seed"),
        ("cv = 1\n", "train.cv"),
        ("cv = 1000000\n", "train.cv"),
        ("params = { learning_rate = nan }\n", "train.params.learning_rate"),
        ("params = { n_estimators = -inf }\n", "train.params.n_estimators"),
        ("\n[drift]\nthreshold = inf\n", "drift.threshold"),
        ("\n[drift]\nthreshold = -0.05\n", "drift.threshold"),
        ("\n[drift]\nshare = nan\n", "drift.share"),
        ("\n[drift]\ncolumns = { age = { threshold = 0 } }\n", "drift.columns.age.threshold"),
        ('\n[drift]\ncolumns = { age = { threshold = "x" } }\n', "drift.columns.age.threshold"),
    ],
)
def test_numbers_out_of_range_are_refused(tmp_path, extra, key):
    folder = make_project(tmp_path / "p", MINIMAL + extra)

    assert_names_file_and_key(config_error(folder), folder, key)


REGRESSION_CSV = "x,amount\n" + "".join(f"{i},{i * 1.5 + 0.25}\n" for i in range(30))


def test_a_metric_that_does_not_fit_the_inferred_task(tmp_path):
    folder = make_project(
        tmp_path / "p",
        MINIMAL.replace('"churned"', '"amount"') + 'metric = "roc_auc"\n',
        csv=REGRESSION_CSV,
    )

    error = config_error(folder)

    assert_names_file_and_key(error, folder, "train.metric")
    assert "regression" in error.message and "inferred" in error.message
    for fitting in ("rmse", "mae", "r2"):
        assert fitting in error.message
    assert "[project] task" in error.message  # how to override the inference


def test_a_metric_that_fits_the_inferred_task_loads(tmp_path):
    folder = make_project(
        tmp_path / "p",
        MINIMAL.replace('"churned"', '"amount"') + 'metric = "mae"\n',
        csv=REGRESSION_CSV,
    )

    assert load_config(folder).metric == "mae"


def test_an_explicit_task_wins_over_the_inference(tmp_path):
    toml = '[project]\ntask = "classification"\n' + MINIMAL.replace('"churned"', '"amount"')
    folder = make_project(tmp_path / "p", toml + 'metric = "rmse"\n', csv=REGRESSION_CSV)

    error = config_error(folder)

    assert "[project] task" in error.message and "roc_auc" in error.message


# --- project add imports a sklearn: estimator -------------------------------------


@pytest.mark.parametrize(
    ("trainer", "says"),
    [
        ("sklearn:sklearn.ensemble.NoSuchThing", "has no 'NoSuchThing'"),
        ("sklearn:nosuchpackage.Model", "no module named 'nosuchpackage'"),
        ("sklearn:sklearn.nosuchmodule.Model", "cannot import sklearn.nosuchmodule"),
        ("sklearn:os.path.join", "not a scikit-learn estimator class"),
        ("sklearn:sklearn.ensemble.HistGradientBoostingRegressor", "a regressor cannot learn"),
    ],
)
def test_project_add_refuses_an_estimator_it_cannot_use(tmp_path, trainer, says):
    cli = wb_inprocess  # `project add` starts no process
    folder = make_project(tmp_path / "p", MINIMAL.replace('"lightgbm"', f'"{trainer}"'))

    result = cli("project", "add", str(folder))

    assert result.returncode == 2, result.stderr
    assert trainer in result.stderr and "train.trainer" in result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(cli("project", "list", "--json", check=True).stdout) == []


def test_project_add_accepts_an_estimator_that_fits(tmp_path):
    cli = wb_inprocess  # `project add` starts no process
    trainer = "sklearn:sklearn.linear_model.LogisticRegression"
    folder = make_project(tmp_path / "p", MINIMAL.replace('"lightgbm"', f'"{trainer}"'))

    assert json.loads(cli("project", "add", str(folder), "--json", check=True).stdout)["name"]


# --- the user's config.toml ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[runs]\nsample_interval = nan\n", "runs.sample_interval"),
        ("[runs]\nsample_interval = inf\n", "runs.sample_interval"),
        ("[runs]\nsample_interval = 0.001\n", "runs.sample_interval"),
        ("[runs]\nstop_grace = nan\n", "runs.stop_grace"),
        ("[runs]\nstop_grace = -1\n", "runs.stop_grace"),
        ("[runs]\nmax_parallel = 0\n", "runs.max_parallel"),
        ("[runs]\nmax_parallel = 2.5\n", "runs.max_parallel"),
        ("runs = 3\n", "runs"),
        ('ui = "dark"\n', "ui"),
    ],
)
def test_user_settings_are_range_checked(wb_home, text, key):
    from workbench.config.settings import load_settings

    wb_home.mkdir(parents=True, exist_ok=True)
    (wb_home / "config.toml").write_text(text)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert caught.value.key == key
    assert str(wb_home / "config.toml") in caught.value.message


def test_user_settings_in_range_load(wb_home):
    from workbench.config.settings import load_settings

    wb_home.mkdir(parents=True, exist_ok=True)
    (wb_home / "config.toml").write_text("[runs]\nsample_interval = 0.05\nstop_grace = 0\n")

    settings = load_settings()

    assert settings.sample_interval == 0.05 and settings.stop_grace == 0.0


def test_the_inferred_task_is_cached_per_file_version(tmp_path):
    import subprocess
    import sys

    toml = MINIMAL + 'metric = "roc_auc"\n'
    folder = make_project(tmp_path / "p", toml, csv=CSV)
    probe = (
        "import sys; from pathlib import Path; from workbench.config.project import load_config; "
        f"load_config(Path({str(folder)!r})); print('pandas' in sys.modules)"
    )
    first = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)

    assert first.stdout.strip() == "True", first.stderr  # read the target once
    assert second.stdout.strip() == "False", second.stderr  # then known without pandas
    # A new version of the file is inferred again: now a regression target.
    (folder / "data" / "train.csv").write_text(REGRESSION_CSV.replace("amount", "churned"))
    error = config_error(folder)
    assert error.key == "train.metric" and "regression" in error.message
