"""Retraining from monitored traffic: `[automation] retrain_on = "monitor"`.

When `workbench monitor` finds the newest window of served traffic drifting
or degraded, and the project's policy is `on_new_data =
"validate-and-retrain"` with `retrain_on = "monitor"`, the labelled served
rows (`workbench.monitor.service.labelled_traffic`) are written to one file
under the project, `.workbench/monitor/served-labelled.parquet`, and handed to
a pipeline (trigger "monitor"). That pipeline takes the same steps as data
dropped in a watched folder: register, validate, drift, retrain on the
reference plus the accepted batches, the promotion gate, export. The file is
rewritten with all labelled traffic each time, so a later pipeline's batch
supersedes the earlier one and no served row is trained on twice; unchanged
traffic is not handed over again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from workbench.automation.intake import submit
from workbench.projects import project_config
from workbench.store import Store

SERVED_FILE = Path(".workbench") / "monitor" / "served-labelled.parquet"


def served_file(root: Path) -> Path:
    return root / SERVED_FILE


def retrain_from_monitor(store: Store, project: str, report: dict[str, Any]) -> dict[str, Any]:
    """Queue a retraining pipeline when the policy asks for it and `report` (of
    `workbench.monitor.report.monitor`) saw drift or degradation; says what it
    did: {"triggered", "reason", "pipeline", "rows", "file"}."""
    from workbench.monitor.service import labelled_traffic

    _, config = project_config(store, project)
    if config.retrain_on != "monitor" or config.on_new_data != "validate-and-retrain":
        return {"triggered": False, "reason": "the policy does not retrain from monitoring"}
    if not (report.get("drift") or report.get("degraded")):
        return {"triggered": False, "reason": "no drift or degradation in the newest window"}
    rows = labelled_traffic(store, project)
    if not len(rows):
        return {"triggered": False, "reason": "no served request has a label yet"}
    target = served_file(config.root)
    changed = _write_if_changed(rows, target)
    pipeline_id = submit(store, project, [target], "monitor") if changed else None
    if pipeline_id is None:
        return {
            "triggered": False,
            "reason": "the labelled traffic was handed to a pipeline already",
            "rows": len(rows),
            "file": str(target),
        }
    return {
        "triggered": True,
        "reason": "drift" if report.get("drift") else "degraded",
        "pipeline": pipeline_id,
        "rows": len(rows),
        "file": str(target),
    }


def _write_if_changed(rows: Any, target: Path) -> bool:
    """Write the rows unless the file already holds the same ones (same mtime:
    the pipeline intake then sees nothing new)."""
    import pandas as pd

    digest = hashlib.sha256(pd.util.hash_pandas_object(rows, index=False).to_numpy()).hexdigest()
    stamp = target.with_name(f".{target.name}.sha256")
    if target.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    rows.to_parquet(partial, index=False)
    os.replace(partial, target)
    stamp.write_text(digest)
    return True
