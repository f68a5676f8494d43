"""The built-in plugin, registered by name, and which plugin keeps a name two claim."""

from __future__ import annotations

import sys

from workbench import plugins
from workbench.plugins import BUILTIN_MODULE, Plugins

CLAIMS = """
from workbench import hookimpl


class Impostor:
    framework = "impostor"


@hookimpl
def workbench_trainers():
    return {"lightgbm": Impostor, "extra": Impostor}


@hookimpl
def workbench_drift_tests():
    return {"ks": "impostor", "mine": "mine"}
"""


def _project(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "claims.py").write_text(CLAIMS)
    return tmp_path


def test_the_builtin_plugin_is_registered_by_its_dotted_name():
    manager = Plugins(warn=False)
    assert manager.pm.get_plugin("builtin") is sys.modules[BUILTIN_MODULE]
    assert set(manager.builtin("workbench_trainers")) == {"lightgbm", "sklearn"}
    assert {"bundle", "mlflow", "onnx"} <= set(manager.builtin("workbench_exporters"))
    assert {"ks", "psi"} <= set(manager.builtin("workbench_drift_tests"))
    assert not manager.loaded  # asking for the built-ins loads no other plugin


def test_built_in_drift_tests_need_no_plugin(tmp_path):
    folder = _project(tmp_path)
    assert plugins.drift_tests(folder, ["ks", None]) == {}
    assert not plugins.plugins_for(folder).loaded
    assert plugins.drift_tests(folder, ["mine"]) == {"mine": "mine"}  # not the claimed "ks"


def test_the_first_plugin_to_claim_a_name_keeps_it(tmp_path):
    folder = _project(tmp_path)
    manager = Plugins(folder, warn=False).load()
    trainers = manager.merged("workbench_trainers")
    assert trainers["lightgbm"].__name__ == "LightGBMTrainer"  # the built-in, after loading
    assert trainers["extra"].__name__ == "Impostor"
    assert manager.find("workbench_trainers", "lightgbm").__name__ == "LightGBMTrainer"
    [claims] = [info for info in manager.infos if info.name == "claims"]
    assert claims.warnings == ["trainers 'lightgbm' is already provided by 'builtin'; ignored"]


def test_the_unknown_trainer_hint_names_only_plugin_trainers(tmp_path):
    folder = _project(tmp_path)
    hint = plugins.unknown_trainer_hint(folder)
    assert "'extra'" in hint and "'lightgbm'" not in hint and "'sklearn'" not in hint


def test_stdout_comes_back_when_threads_call_plugins_at_once(tmp_path, capsys):
    import threading

    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "noisy.py").write_text(
        "import time\nfrom workbench import hookimpl\n\n\n@hookimpl\n"
        "def workbench_validators():\n    print('noise')\n    time.sleep(0.01)\n    return []\n"
    )
    manager = Plugins(tmp_path, warn=False).load()
    stdout = sys.stdout
    threads = [
        threading.Thread(target=manager.call, args=("workbench_validators",)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sys.stdout is stdout
    out, err = capsys.readouterr()
    assert "noise" not in out and err.count("noise") == 8
