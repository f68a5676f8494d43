"""The layers, checked on the real import graph (grimp; function-level imports count).

`lint-imports` enforces the whole contract in CI; these tests hold the rules that
must never need an exception, and keep ARCHITECTURE.md's diagram and the
contract in `pyproject.toml` the same list.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("workbench", cache_dir=None)


def imports_of(graph: grimp.ImportGraph, package: str) -> dict[str, set[str]]:
    """Each module of `package` (itself included) -> the workbench modules it imports."""
    modules = {package} | graph.find_descendants(package)
    return {
        m: {i for i in graph.find_modules_directly_imported_by(m) if i.split(".")[0] == "workbench"}
        for m in modules
    }


def diagram_layers() -> list[list[str]]:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    block = re.search(r"<!-- layers:.*?-->\n```text\n(.*?)```", text, re.S)
    assert block, "ARCHITECTURE.md has no layers block"
    layers = []
    for line in block.group(1).splitlines():
        names = re.match(r"^(\S+(?: \| \S+)*)(?:\s{2,}|$)", line)
        assert names, f"not a layer line: {line!r}"
        layers.append(names.group(1).split(" | "))
    return layers


def contract_layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [contract] = [c for c in config["contracts"] if c["type"] == "layers"]
    assert contract["containers"] == ["workbench"]
    return [[n.strip() for n in re.split(r"[|:]", layer)] for layer in contract["layers"]]


def test_core_imports_nothing_from_workbench_outside_core(graph):
    outside = {
        f"{module} -> {imported}"
        for module, imported_set in imports_of(graph, "workbench.core").items()
        for imported in imported_set
        if imported != "workbench.core" and not imported.startswith("workbench.core.")
    }
    assert not outside


def test_the_hook_specs_import_nothing_from_workbench(graph):
    assert imports_of(graph, "workbench.hookspecs") == {"workbench.hookspecs": set()}


def test_no_module_inside_the_layers_imports_the_root_package(graph):
    # `import workbench` is a chain to the tracking API, whatever layer asks.
    importers = graph.find_modules_that_directly_import("workbench") - {"workbench"}
    assert not importers


def test_the_trainers_import_nothing_above_them(graph):
    above = {"data", "models", "runs", "activity", "tracking", "automation", "sweeps"}
    above |= {"demo", "doctor", "cli", "tui", "templates"}
    reached = {
        f"{module} -> {imported}"
        for module, imported_set in imports_of(graph, "workbench.trainers").items()
        for imported in imported_set
        if imported == "workbench" or imported.split(".")[1] in above
    }
    assert not reached


def test_the_plugin_manager_imports_no_plugin(graph):
    imported = set().union(*imports_of(graph, "workbench.plugins").values())
    assert not {i for i in imported if i.startswith(("workbench.models", "workbench.data"))}


def test_the_diagram_is_the_contract():
    assert diagram_layers() == contract_layers()


def test_every_package_in_the_diagram_exists_and_every_child_is_placed(graph):
    named = {name for layer in diagram_layers() for name in layer}
    children = {m.split(".")[1] for m in graph.find_children("workbench")}
    assert named - children == set(), "named in ARCHITECTURE.md but not in workbench/"
    assert children - named == set(), "in workbench/ but not placed in a layer"


def test_the_one_exception_to_the_layers_is_the_cli_opening_the_tui():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [contract] = [c for c in config["contracts"] if c["type"] == "layers"]
    assert contract.get("ignore_imports", []) == ["workbench.cli.app -> workbench.tui.app"]
    assert contract.get("unmatched_ignore_imports_alerting", "error") == "error"
