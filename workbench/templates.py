"""`project init` templates: a config, a small real dataset and, for scripts, a training script.

The data comes from the datasets bundled with scikit-learn, so a new project
trains offline straight away.
"""

from __future__ import annotations

from pathlib import Path

from workbench.config import default_name
from workbench.errors import UsageError

_CONFIG = """\
[project]
name = "{name}"
task = "{task}"
description = "{description}"

[data]
train = "data/train.csv"
target = "{target}"
watch = ["data/incoming"]

[train]
trainer = "{trainer}"
{script_line}metric = "{metric}"
test_size = 0.2
seed = 42
params = {params}

[automation]
on_new_data = "validate-and-retrain"
promote = "if-better"
export = ["bundle"]
"""

_SCRIPT = '''\
"""Trains a logistic regression epoch by epoch and reports to the workbench.

Run it with `workbench run start {name}`; override params with
`--set epochs=20`. The fitted pipeline is logged with `wb.log_model`, so each
run that succeeds is a model version: gated, promoted, exported and served.
"""

import pandas as pd
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import workbench as wb

params = wb.params()
config = wb.project_config()
# [data] train, or the reference plus accepted new data (Parquet) when automation retrains.
data_file = wb.train_file()
frame = pd.read_parquet(data_file) if data_file.suffix == ".parquet" else pd.read_csv(data_file)
y = frame.pop(config["data"]["target"])
# [train] test_size and seed; rows held out by a hash of their content, so a
# retrained model and the champion are compared on rows neither trained on.
x_train, x_test, y_train, y_test = wb.holdout_split(frame, y)
scaler = StandardScaler().fit(x_train)
scaled_train, scaled_test = scaler.transform(x_train), scaler.transform(x_test)

model = SGDClassifier(loss="log_loss", alpha=float(params.get("alpha", 0.001)), random_state=0)
classes = sorted(y.unique())
for epoch in range(1, int(params.get("epochs", 15)) + 1):
    model.partial_fit(scaled_train, y_train, classes=classes)
    loss = log_loss(y_test, model.predict_proba(scaled_test), labels=classes)
    accuracy = model.score(scaled_test, y_test)
    wb.log_metrics({{"val_loss": loss, "val_accuracy": accuracy}}, step=epoch)
    print(f"epoch {{epoch}}: val_loss={{loss:.4f}}", flush=True)

predicted = model.predict(scaled_test)
wb.log_metrics({{
    "accuracy": accuracy_score(y_test, predicted),
    "f1": f1_score(y_test, predicted, average="macro"),
}})
# Raw feature columns in, labels out: what `workbench predict` and `serve` will call.
wb.log_model(make_pipeline(scaler, model), x_test, y_test, x_train=x_train)
'''

TEMPLATES = {
    "lightgbm": dict(
        dataset="load_breast_cancer",
        target="diagnosis",
        task="classification",
        trainer="lightgbm",
        metric="roc_auc",
        params="{ n_estimators = 100, learning_rate = 0.05, num_leaves = 15 }",
        description="Breast cancer diagnosis from cell measurements (LightGBM)",
    ),
    "sklearn": dict(
        dataset="load_diabetes",
        target="progression",
        task="regression",
        trainer="sklearn:sklearn.ensemble.HistGradientBoostingRegressor",
        metric="rmse",
        params="{ max_iter = 200, learning_rate = 0.05 }",
        description="Diabetes progression after one year (scikit-learn)",
    ),
    "script": dict(
        dataset="load_wine",
        target="cultivar",
        task="classification",
        trainer="script",
        metric="accuracy",
        params="{ epochs = 15, alpha = 0.001 }",
        description="Wine cultivar from chemical analysis (your own training script)",
    ),
}


def init_project(path: Path, template: str, name: str | None = None) -> Path:
    """Create a ready-to-train project folder; refuses to write into a non-empty one."""
    if template not in TEMPLATES:
        raise UsageError(f"unknown template {template!r}; expected one of {', '.join(TEMPLATES)}")
    folder = path.expanduser().resolve()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"{folder} already exists and is not an empty folder")
    name = name or default_name(folder.name)
    spec = TEMPLATES[template]
    (folder / "data" / "incoming").mkdir(parents=True)
    _write_dataset(folder / "data" / "train.csv", spec["dataset"], spec["target"])
    script_line = 'script = "train.py"\n' if template == "script" else ""
    (folder / "workbench.toml").write_text(
        _CONFIG.format(name=name, script_line=script_line, **spec)
    )
    if template == "script":
        (folder / "train.py").write_text(_SCRIPT.format(name=name))
    return folder


def _write_dataset(target_file: Path, loader: str, target: str) -> None:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)(as_frame=True)
    frame = bunch.frame.rename(columns={"target": target})
    if hasattr(bunch, "target_names") and frame[target].dtype.kind in "iu":
        names = list(bunch.target_names)
        frame[target] = frame[target].map(lambda i: str(names[i]))
    frame.round(5).to_csv(target_file, index=False)
