"""One pipeline's flow: the per-file data steps, then retrain → evaluate →
promote → export, each step recorded durably and skipped when the store says
it already ended (so a pipeline resumed after a crash redoes nothing)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.automation import data_steps, model_steps
from workbench.core.errors import WorkbenchError
from workbench.projects import project_config
from workbench.store import Store
from workbench.store import pipelines as rows
from workbench.store.pipelines import Pipeline

EXIT_OK, EXIT_REJECTED, EXIT_KEPT, EXIT_FAILED = 0, 1, 3, 4
StepListener = Callable[[int, dict[str, Any]], None]
# A step's work: (status, summary, detail).
StepResult = tuple[str, str, dict[str, Any]]


class Runner:
    """One pipeline's steps, each skipped when the store says it already ended."""

    def __init__(self, store: Store, pipeline: Pipeline, on_step: StepListener | None) -> None:
        self.store = store
        self.id = pipeline.id
        self.project = pipeline.project
        self.project_id = pipeline.project_id
        self.files = [Path(f) for f in pipeline.files]
        self.trigger = pipeline.trigger
        self.on_step = on_step
        _, self.config = project_config(store, self.project)

    def step(
        self, name: str, work: Callable[[], StepResult], file: str = ""
    ) -> tuple[str, dict[str, Any]]:
        """Run `work` as step `name` (of `file`), or return how it ended before."""
        done = rows.ended_step(self.store, self.id, name, file)
        if done:
            return done.status, done.detail or {}
        rows.start_step(self.store, self.id, name, file, time.time())
        self.tell({"step": name, "file": file, "status": "running"})
        try:
            status, summary, detail = work()
        except WorkbenchError as exc:
            status, summary, detail = "failed", exc.message, {"error": exc.message}
        self.record(name, file, status, summary, detail)
        return status, detail

    def record(self, name: str, file: str, status: str, summary: str, detail: dict) -> None:
        kind = {"rejected": "data.rejected", "alert": "data.alert"}.get(status, "pipeline.step")
        where = f" {Path(file).name}" if file else ""
        note = rows.Note(
            kind,
            f"pipeline {self.id} {name}{where}: {summary}",
            self.project_id,
            {"pipeline": self.id, "step": name, "file": file, "status": status},
            run_id=detail.get("run") if isinstance(detail.get("run"), int) else None,
        )
        rows.end_step(
            self.store,
            self.id,
            name,
            file,
            status=status,
            summary=summary,
            detail=detail,
            now=time.time(),
            note=note,
        )
        self.tell({"step": name, "file": file, "status": status, "summary": summary})
        if status == "rejected":
            from workbench.automation.notify import notify

            notify(
                self.store,
                "data.rejected",
                self.project,
                f"{Path(file).name}: {summary}",
                {"pipeline": self.id, "file": file, **detail},
            )

    def tell(self, step: dict[str, Any]) -> None:
        if self.on_step is not None:
            self.on_step(self.id, step)

    # -- the flow ---------------------------------------------------------------

    def run(self) -> tuple[str, int]:
        rejected, alerts, labelled, accepted = [], [], [], []
        for file in self.files:
            verdict, has_labels = self.per_file(file)
            if verdict == "rejected":
                rejected.append(file)
            elif verdict in ("accepted", "alert"):
                accepted.append(file)
                if verdict == "alert":
                    alerts.append(file)
                if has_labels:
                    labelled.append(file)
        policy = self.config
        if policy.retrain_on == "monitor":
            # Only `workbench monitor` decides, from served traffic (automation.monitoring).
            wanted = self.trigger == "monitor" and bool(labelled)
        else:
            wanted = bool(labelled) if policy.retrain_on == "new-data" else bool(alerts)
        retrain = policy.on_new_data == "validate-and-retrain" and wanted
        if not retrain:
            if rejected:
                return "rejected", EXIT_REJECTED
            if alerts:
                return "drift alert", EXIT_OK
            return ("validated" if accepted else "nothing to do"), EXIT_OK
        outcome, code = self.retrain_and_ship()
        if rejected and code == EXIT_OK:
            return f"{outcome}; data rejected", EXIT_REJECTED
        return outcome, code

    def per_file(self, file: Path) -> tuple[str, bool]:
        """register → validate → drift for one file; its verdict and whether it
        has labels (only labelled rows can be trained on)."""
        key = str(file)
        status, detail = self.step("register", lambda: data_steps.register(self, file), key)
        if status == "failed":
            return "rejected", False
        if status == "skipped":
            return "duplicate", False
        status, _ = self.step("validate", lambda: data_steps.validate(self, file, detail), key)
        if status != "ok":
            return "rejected", False
        status, drift = self.step("drift", lambda: data_steps.drift(self, file, detail), key)
        if status == "failed":
            return "rejected", False
        return ("alert" if status == "alert" else "accepted"), bool(drift.get("labelled"))

    def retrain_and_ship(self) -> tuple[str, int]:
        status, detail = self.step("retrain", lambda: model_steps.retrain(self))
        if status != "ok":
            return "training failed", EXIT_FAILED
        run_id = detail["run"]
        status, decision = self.step("evaluate", lambda: model_steps.evaluate(self, run_id))
        if status == "failed":
            return "evaluation failed", EXIT_FAILED
        if status == "skipped":
            return "retrained (no model to promote)", EXIT_OK
        status, promoted = self.step(
            "promote", lambda: model_steps.promote(self, decision, run_id)
        )
        if promoted.get("superseded"):
            return "not promoted: trained on superseded data", EXIT_KEPT
        if not promoted.get("promoted"):
            return "kept champion", EXIT_KEPT
        failed = []
        version_id = decision["version_id"]
        for fmt in self.config.export:
            export = functools.partial(model_steps.export, self, version_id, fmt)
            status, _ = self.step("export", export, fmt)
            if status != "ok":
                failed.append(fmt)
        if failed:
            return f"promoted; export failed ({', '.join(failed)})", EXIT_FAILED
        return "promoted", EXIT_OK
