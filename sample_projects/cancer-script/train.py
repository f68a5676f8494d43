"""Train a logistic-regression SGD classifier on the breast cancer data, epoch by epoch.

Run by workbench as a "script" trainer (`workbench run start cancer --wait`); the
working directory is the project folder. Features are standardised with a
StandardScaler fitted on the training split, then an SGDClassifier(loss="log_loss")
is trained with partial_fit, one pass over the shuffled training rows per epoch.
Per-epoch and final metrics, the parameters and a coefficients file are logged
through the workbench tracking API, and the scaler and classifier are logged as
one scikit-learn Pipeline (`wb.log_model`): the run's model version, which the
promotion gate, `predict`, `serve` and the exports use like a built-in trainer's.

Parameters ([train].params in workbench.toml, overridable with `--set`):
epochs, alpha, learning_rate, eta0 (for non-"optimal" schedules), seed.
"""

import json

import numpy as np
import pandas as pd
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import workbench as wb

POSITIVE = "malignant"

params = wb.params()
cfg = wb.project_config()
project_dir = wb.project_dir()

epochs = int(params.get("epochs", 30))
alpha = float(params.get("alpha", 0.0001))
learning_rate = str(params.get("learning_rate", "optimal"))
eta0 = float(params.get("eta0", 0.01))
seed = int(params.get("seed", 0))

target = cfg["data"]["target"]
# The project's [data] train, or the reference plus accepted new data when the
# workbench's automation retrains.
data_file = wb.train_file()
df = pd.read_parquet(data_file) if data_file.suffix == ".parquet" else pd.read_csv(data_file)
X = df.drop(columns=[target])
y = df[target].astype(str)

# The project's [train] test_size and seed; rows are held out by a hash of their
# content, so a retrained model is scored on rows the champion never saw either.
X_train, X_val, y_train, y_val = wb.holdout_split(X, y)

scaler = StandardScaler().fit(X_train)
Xt, Xv = scaler.transform(X_train), scaler.transform(X_val)
yt, yv = y_train.to_numpy(), y_val.to_numpy()

wb.log_params(
    {
        "epochs": epochs,
        "alpha": alpha,
        "learning_rate": learning_rate,
        "eta0": eta0,
        "seed": seed,
        "n_train": len(yt),
        "n_val": len(yv),
        "n_features": X.shape[1],
    }
)

clf = SGDClassifier(
    loss="log_loss", alpha=alpha, learning_rate=learning_rate, eta0=eta0, random_state=seed
)
classes = np.unique(y)
pos = list(classes).index(POSITIVE)
rng = np.random.default_rng(seed)

for epoch in range(1, epochs + 1):
    order = rng.permutation(len(yt))
    clf.partial_fit(Xt[order], yt[order], classes=classes)

    train_proba = clf.predict_proba(Xt)
    val_proba = clf.predict_proba(Xv)
    metrics = {
        "train_loss": log_loss(yt, train_proba, labels=clf.classes_),
        "val_loss": log_loss(yv, val_proba, labels=clf.classes_),
        "val_accuracy": accuracy_score(yv, clf.predict(Xv)),
        "val_roc_auc": roc_auc_score(yv == POSITIVE, val_proba[:, pos]),
    }
    wb.log_metrics(metrics, step=epoch)
    print(
        f"epoch {epoch:>3}/{epochs}  train_loss={metrics['train_loss']:.4f}  "
        f"val_loss={metrics['val_loss']:.4f}  val_acc={metrics['val_accuracy']:.4f}  "
        f"val_auc={metrics['val_roc_auc']:.4f}",
        flush=True,
    )

val_proba = clf.predict_proba(Xv)
val_pred = clf.predict(Xv)
final = {
    "accuracy": accuracy_score(yv, val_pred),
    "f1": f1_score(yv, val_pred, pos_label=POSITIVE),
    "roc_auc": roc_auc_score(yv == POSITIVE, val_proba[:, pos]),
    "log_loss": log_loss(yv, val_proba, labels=clf.classes_),
}
wb.log_metrics(final)
print("final  " + "  ".join(f"{k}={v:.4f}" for k, v in final.items()), flush=True)

# Coefficients on the standardised features; positive values push towards "malignant".
out_dir = project_dir / "outputs"
out_dir.mkdir(exist_ok=True)
coef_path = out_dir / "coefficients.json"
sign = 1.0 if clf.classes_[1] == POSITIVE else -1.0
coefficients = {col: sign * float(c) for col, c in zip(X.columns, clf.coef_[0], strict=True)}
coef_path.write_text(json.dumps(coefficients, indent=2) + "\n", encoding="utf-8")
wb.log_artifact(str(coef_path), name="coefficients.json")

# Raw feature columns in, labels out: what `workbench predict` and `serve` will call.
wb.log_model(make_pipeline(scaler, clf), X_val, y_val, x_train=X_train)
