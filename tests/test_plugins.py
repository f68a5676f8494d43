"""Plugins through the real CLI: a project's own plugins/*.py adds a trainer that
`run start` uses, a drift test and a validator; broken plugins are listed as failed
while everything else works; the shell notifier hears about a promotion."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _runs_fixtures import TrainedTemplate, train_template
from wbtest import REPO, wb_auto, wb_inprocess

pytestmark = pytest.mark.slow


@pytest.fixture
def cli():
    """Runs start real processes; the other commands run in this one."""
    return wb_auto


CENTROID = '''
"""Nearest class centroid on the numeric features, saved as JSON."""
import json
from pathlib import Path

import numpy as np

from workbench import hookimpl


class CentroidModel:
    def __init__(self, state):
        self.state = state

    def predict(self, frame):
        s = self.state
        x = frame[s["features"]].apply(lambda c: c.astype(float)).to_numpy()
        x = np.where(np.isnan(x), s["means"], x)
        z = (x - np.asarray(s["means"])) / np.asarray(s["scale"])
        d = ((z[:, None, :] - np.asarray(s["centroids"])[None]) ** 2).sum(axis=2)
        proba = np.exp(-d) / np.exp(-d).sum(axis=1, keepdims=True)
        return np.asarray(s["classes"], dtype=object)[d.argmin(axis=1)], proba


class CentroidTrainer:
    framework = "centroid"

    def __init__(self, table, params, seed):
        self.numeric = list(table.numeric)
        self.classes = None
        self.state = {}

    def fit(self, x_train, y_train, x_valid, y_valid):
        x = x_train[self.numeric].astype(float)
        means, scale = x.mean(), x.std().replace(0, 1)
        z = (x.fillna(means) - means) / scale
        self.classes = sorted(y_train.unique().tolist())
        self.state = {
            "features": self.numeric,
            "means": means.tolist(),
            "scale": scale.tolist(),
            "classes": self.classes,
            "centroids": [z[(y_train == c).to_numpy()].mean().tolist() for c in self.classes],
        }
        return {"valid_spread": [2.0, 1.0, 0.5]}

    def predict(self, features):
        return CentroidModel(self.state).predict(features)

    def framework_version(self):
        return "1.0"

    def save(self, folder):
        path = Path(folder) / "centroids.json"
        path.write_text(json.dumps(self.state))
        return path

    @classmethod
    def load(cls, schema, model_file):
        return CentroidModel(json.loads(Path(model_file).read_text()))


@hookimpl
def workbench_trainers():
    return {"centroid": CentroidTrainer}
'''

CHECKS = """
import numpy as np

from workbench import hookimpl
from workbench.data.drift import DriftTest, NotApplicable


def mean_shift(profile, values):
    if profile["kind"] != "numeric":
        raise NotApplicable("mean_shift needs a numeric column")
    return abs(float(np.mean(values)) - profile["mean"]) / max(profile["std"], 1e-9), None


def explode(profile, values):
    raise RuntimeError("kaboom")


@hookimpl
def workbench_drift_tests():
    return {
        "mean_shift": DriftTest(mean_shift, statistic="distance", threshold=0.5),
        "explode": DriftTest(explode),
    }


def heavy_penguins(frame, schema):
    heavy = int((frame["body_mass_g"] > 7000).sum())
    return [{"check": "heavy_penguins", "severity": "error", "passed": heavy == 0,
             "message": f"{heavy} penguins heavier than 7 kg", "column": "body_mass_g"}]


def confused_validator(frame, schema):
    raise KeyError("no such thing")


@hookimpl
def workbench_validators():
    return [heavy_penguins, confused_validator]
"""

BROKEN = {
    "syntax_error.py": "def broken(:\n",
    "raising_import.py": "raise RuntimeError('boom at import')\n",
    "raising_hook.py": (
        "from workbench import hookimpl\n\n@hookimpl\ndef workbench_trainers():\n"
        "    raise ValueError('no trainers today')\n"
    ),
    "unknown_hook.py": (
        "from workbench import hookimpl\n\n@hookimpl\ndef workbench_trainer():\n    return {}\n"
    ),
}


def _folder(tmp_path: Path, plugins: dict[str, str], trainer: str = "centroid") -> Path:
    """The penguins sample with `trainer` and the project plugin files `plugins`."""
    folder = tmp_path / "penguins"
    shutil.copytree(REPO / "sample_projects" / "penguins-lightgbm", folder)
    config = folder / "workbench.toml"
    lines = [ln for ln in config.read_text().splitlines() if not ln.startswith("params")]
    config.write_text("\n".join(lines).replace('trainer = "lightgbm"', f'trainer = "{trainer}"'))
    (folder / "plugins").mkdir()
    for name, code in plugins.items():
        (folder / "plugins" / name).write_text(code)
    return folder


def _project(cli, tmp_path: Path, plugins: dict[str, str], trainer: str = "centroid") -> Path:
    folder = _folder(tmp_path, plugins, trainer)
    cli("project", "add", str(folder), check=True)
    return folder


def _shown(cli, run_id: str) -> dict:
    return json.loads(cli("run", "show", run_id, "--json", check=True).stdout)


@pytest.fixture(scope="module")
def centroid_template(tmp_path_factory, shared_cache) -> tuple[TrainedTemplate, str]:
    """The penguins project with the centroid plugin trainer and the broken plugin
    files, trained once for the module through `run start`, and the run's id;
    tests get a copy of its store."""
    run_ids: list[str] = []

    def train(cli, folder: Path) -> None:
        run_ids.append(cli("run", "start", "penguins", "--wait", check=True).stdout.split()[0])

    plugins = {"centroid.py": CENTROID, **BROKEN}
    source = _folder(tmp_path_factory.mktemp("centroid-source"), plugins)
    template = train_template(tmp_path_factory, shared_cache, source, train, name="centroid")
    return template, run_ids[0]


@pytest.fixture
def with_broken_plugins(centroid_template, wb_home: Path) -> tuple[Path, str]:
    """This test's copy of the trained project, broken plugins and all: its folder
    and run id."""
    template, run_id = centroid_template
    return template.install(wb_home), run_id


@pytest.fixture
def centroid_trained(with_broken_plugins) -> tuple[Path, str]:
    """This test's copy of the trained project with the centroid plugin alone (the
    broken files are removed): its folder and run id."""
    folder, run_id = with_broken_plugins
    for name in BROKEN:
        (folder / "plugins" / name).unlink()
    return folder, run_id


def _listed(cli) -> dict[str, dict]:
    out = cli("plugins", "list", "penguins", "--json", check=True).stdout
    return {p["name"]: p for p in json.loads(out)}


def test_a_project_plugin_trainer_trains_registers_and_loads(cli, centroid_trained):
    folder, run_id = centroid_trained

    run = _shown(cli, run_id)
    assert run["status"] == "succeeded", Path(run["log"]).read_text()
    assert run["trainer"] == "centroid"
    assert run["metrics"]["accuracy"] > 0.8 and "valid_spread" in run["metrics"]
    versions = json.loads(cli("model", "list", "penguins", "--json", check=True).stdout)
    assert [(v["version"], v["framework"], v["aliases"]) for v in versions] == [
        (1, "centroid", ["champion"])
    ]
    shown = json.loads(cli("model", "show", "penguins@1", "--json", check=True).stdout)
    assert shown["framework"] == "centroid" and shown["model"]["name"] == "centroids.json"
    # The registered model loads back through the plugin's `load`: drift scores it on
    # a labelled batch.
    batch = folder / "data" / "incoming" / "batch_01_clean.csv"
    drift = json.loads(cli("data", "drift", "penguins", str(batch), "--json", check=True).stdout)
    assert drift["performance"]["available"], drift["performance"]
    assert drift["performance"]["batch"] > 0.8

    plugin = _listed(cli)["centroid"]
    assert (plugin["source"], plugin["status"]) == ("project file", "ok")
    assert plugin["origin"].endswith("centroid.py")
    assert plugin["contributes"]["trainers"] == ["centroid"]


def test_an_unknown_trainer_lists_the_plugin_trainers(cli, tmp_path):
    folder = _project(cli, tmp_path, {"centroid.py": CENTROID})
    config = folder / "workbench.toml"
    config.write_text(config.read_text().replace('"centroid"', '"nosuchtrainer"'))

    # Refused before anything starts: in this process (one that started a process
    # would fail here, naming it).
    result = wb_inprocess("run", "start", "penguins")

    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nosuchtrainer" in result.stderr and "lightgbm" in result.stderr
    assert "'centroid'" in result.stderr and "'xgboost'" in result.stderr


def test_broken_plugins_are_listed_as_failed_and_the_rest_still_works(cli, with_broken_plugins):
    _, run_id = with_broken_plugins

    listed = _listed(cli)
    assert {name: p["status"] for name, p in listed.items()} == {
        "builtin": "ok",
        "xgboost": "ok",
        "notify-shell": "ok",
        "centroid": "ok",
        "raising_hook": "failed",
        "raising_import": "failed",
        "syntax_error": "failed",
        "unknown_hook": "failed",
    }
    assert "SyntaxError" in listed["syntax_error"]["error"]
    assert "RuntimeError: boom at import" in listed["raising_import"]["error"]
    assert (
        "workbench_trainers raised ValueError: no trainers today"
        in (listed["raising_hook"]["error"])
    )
    assert "workbench_trainer" in listed["unknown_hook"]["error"]
    assert listed["builtin"]["contributes"]["exporters"] == ["bundle", "mlflow", "onnx"]
    human = cli("plugins", "list", "penguins", check=True).stdout
    assert "raising_import" in human and "failed: cannot import" in human

    # The project's run, trained with these files in place.
    run = _shown(cli, run_id)
    assert run["status"] == "succeeded", Path(run["log"]).read_text()
    log = Path(run["log"]).read_text()
    assert "plugin 'raising_import' skipped" in log  # warned, not fatal
    assert json.loads(cli("model", "list", "penguins", "--json", check=True).stdout)


def test_the_shell_notifier_hears_a_promotion(cli, tmp_path, wb_home, centroid_trained):
    _, run_id = centroid_trained
    assert _shown(cli, run_id)["status"] == "succeeded"
    events = tmp_path / "events.jsonl"
    command = f"cat >> {shlex.quote(str(events))}"
    (wb_home / "config.toml").write_text(
        f'[plugins.notify-shell]\ncommand = {json.dumps(command)}\nevents = ["model.promoted"]\n'
    )

    promoted = cli("model", "promote", "penguins", "1", "--alias", "staging")

    assert promoted.returncode == 0, promoted.stderr
    event = json.loads(events.read_text())
    assert event["kind"] == "model.promoted" and event["project"] == "penguins"
    assert event["data"]["alias"] == "staging" and event["data"]["challenger"] == 1
    assert "version 1 is staging" in event["message"]

    # A failing hook is reported, and the promotion stands.
    (wb_home / "config.toml").write_text(
        '[plugins.notify-shell]\ncommand = "echo hook down >&2; exit 4"\n'
    )
    again = cli("model", "promote", "penguins", "1", "--alias", "prod")
    assert again.returncode == 0
    assert "notifier notify-shell" in again.stderr and "code 4: hook down" in again.stderr
    shown = json.loads(cli("model", "show", "penguins@1", "--json", check=True).stdout)
    assert {"staging", "prod"} <= set(shown["aliases"])


def test_a_plugin_drift_test_is_used_by_data_drift(cli, tmp_path):
    folder = _project(cli, tmp_path, {"checks.py": CHECKS}, trainer="lightgbm")
    config = folder / "workbench.toml"
    config.write_text(
        config.read_text()
        + '\n[drift]\nmethod = "mean_shift"\n[drift.columns.bill_length_mm]\nmethod = "explode"\n'
    )
    shifted = folder / "data" / "incoming" / "batch_02_shifted.csv"

    result = cli("data", "drift", "penguins", str(shifted), "--json")

    report = json.loads(result.stdout)
    columns = {c["column"]: c for c in report["columns"]}
    assert {c["method"] for c in columns.values()} == {"mean_shift", "explode"}
    drifted = {name for name, c in columns.items() if c["drifted"]}
    assert drifted == {"bill_depth_mm", "flipper_length_mm", "body_mass_g"}
    assert columns["body_mass_g"]["statistic"] > 1.5 and columns["body_mass_g"]["p_value"] is None
    assert columns["island"]["skipped"] and "needs a numeric column" in columns["island"]["reason"]
    exploded = columns["bill_length_mm"]
    assert exploded["skipped"] and "RuntimeError: kaboom" in exploded["reason"]
    clean = folder / "data" / "incoming" / "batch_01_clean.csv"
    report = json.loads(cli("data", "drift", "penguins", str(clean), "--json").stdout)
    assert report["drifted_columns"] == 0


def test_a_plugin_validator_check_shows_in_data_validate(cli, tmp_path):
    folder = _project(cli, tmp_path, {"checks.py": CHECKS}, trainer="lightgbm")
    incoming = folder / "data" / "incoming"

    clean = cli("data", "validate", "penguins", str(incoming / "batch_01_clean.csv"), "--json")
    assert clean.returncode == 0, clean.stdout
    checks = {c["check"]: c for c in json.loads(clean.stdout)["checks"]}
    assert checks["heavy_penguins"]["passed"]
    assert checks["heavy_penguins"]["details"]["plugin"] == "checks"
    assert checks["plugin_validator"]["severity"] == "warn"  # the validator that raised
    assert "KeyError" in checks["plugin_validator"]["message"]

    shifted = cli("data", "validate", "penguins", str(incoming / "batch_02_shifted.csv"))
    assert shifted.returncode == 1
    assert "heavy_penguins" in shifted.stdout + shifted.stderr
    assert "heavier than 7 kg" in shifted.stdout + shifted.stderr


MARKER = """
from pathlib import Path

Path(__file__).with_name("imported.marker").write_text("yes")
"""


def test_plugins_load_only_when_a_hook_needs_them(cli, tmp_path):
    # A command that needs no hook loads neither the plugin manager nor any entry
    # point; `from workbench import hookimpl` (what a plugin writes) loads only the specs.
    code = (
        "import sys\nfrom workbench.cli import cli\n"
        "cli.main(['project', 'list', '--json'], standalone_mode=False)\n"
        "watched = ('workbench.hookspecs', 'workbench.plugins', 'workbench_xgboost')\n"
        "print([m for m in watched if m in sys.modules])\n"
        "from workbench import hookimpl\n"
        "print([m for m in watched if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["[]", "['workbench.hookspecs']"]

    # A project's plugin files are not run by commands that need no hook.
    folder = _project(cli, tmp_path, {"marker.py": MARKER}, trainer="lightgbm")
    cli("project", "show", "penguins", check=True)
    cli("run", "list", "--json", check=True)
    assert not (folder / "plugins" / "imported.marker").exists()
    cli("plugins", "list", "penguins", check=True)
    assert (folder / "plugins" / "imported.marker").exists()
