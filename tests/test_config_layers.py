"""`workbench.config` sits just above `workbench.core`: it imports nothing else
from workbench, function-level imports included."""

from __future__ import annotations

import grimp


def test_config_imports_only_config_and_core():
    graph = grimp.build_graph("workbench")
    allowed = ("workbench.config", "workbench.core")
    outside = sorted(
        (module, imported)
        for module in graph.find_descendants("workbench.config") | {"workbench.config"}
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.split(".")[0] == "workbench"
        and not any(imported == a or imported.startswith(a + ".") for a in allowed)
    )
    assert outside == []


def test_the_check_sees_function_level_imports():
    # The graph must hold imports made inside functions, or the test above proves nothing.
    graph = grimp.build_graph("workbench")
    assert graph.direct_import_exists(
        importer="workbench.config.project", imported="workbench.config.task"
    )
    assert graph.direct_import_exists(
        importer="workbench.config.task", imported="workbench.core.paths"
    )  # imported inside `_infer_cached`
