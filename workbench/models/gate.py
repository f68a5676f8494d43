"""The promotion gate: a challenger takes an alias (champion by default) when
its primary metric beats the holder's by the project's margin, measured on the
same evaluation data. When the two were scored on different hold-outs, the
holder is scored again on the challenger's."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError
from workbench.models.registry import (
    CHALLENGER,
    CHAMPION,
    ModelVersion,
    alias_target,
    check_alias,
    set_alias,
)
from workbench.store import Store


@dataclass
class Decision:
    promoted: bool
    alias: str
    challenger: ModelVersion
    champion: ModelVersion | None
    metric: str | None
    challenger_score: float | None
    champion_score: float | None
    margin: float
    rescored: bool
    reason: str

    def document(self) -> dict[str, Any]:
        return {
            "promoted": self.promoted,
            "alias": self.alias,
            "challenger": self.challenger.version,
            "champion": self.champion.version if self.champion else None,
            "metric": self.metric,
            "challenger_score": self.challenger_score,
            "champion_score": self.champion_score,
            "margin": self.margin,
            "rescored": self.rescored,
            "reason": self.reason,
        }


def evaluate(
    store: Store,
    challenger: ModelVersion,
    alias: str = CHAMPION,
    *,
    config: Any = None,
    margin: float | None = None,
) -> Decision:
    """Whether `challenger` should take `alias`, and why; changes nothing."""
    from workbench.runs.compare import lower_is_better

    if config is None:
        config = _config(store, challenger.project)
    margin = config.margin if margin is None else margin
    holder = alias_target(store, challenger.project_id, alias)
    metric = config.primary_metric(challenger.task)

    def decide(promoted: bool, reason: str, **scores: Any) -> Decision:
        return Decision(
            promoted=promoted,
            alias=alias,
            challenger=challenger,
            champion=holder,
            metric=metric,
            challenger_score=scores.get("challenger_score"),
            champion_score=scores.get("champion_score"),
            margin=margin,
            rescored=scores.get("rescored", False),
            reason=reason,
        )

    mine = challenger.metrics.get(metric)
    if holder is None:
        return decide(True, f"no {alias} yet", challenger_score=mine)
    if holder.id == challenger.id:
        already = f"version {challenger.version} is already {alias}"
        return decide(False, already, challenger_score=mine)
    if mine is None:
        return decide(False, f"version {challenger.version} has no {metric!r} score")
    theirs, rescored = holder.metrics.get(metric), False
    if challenger.holdout_sha256 and challenger.holdout_sha256 != holder.holdout_sha256:
        try:
            theirs = score_on_holdout(holder, challenger)[metric]
        except (WorkbenchError, KeyError, ValueError) as exc:
            message = exc.message if isinstance(exc, WorkbenchError) else str(exc)
            return decide(
                False,
                f"cannot score {alias} version {holder.version} on the challenger's hold-out: "
                f"{message}",
                challenger_score=mine,
            )
        rescored = True
    if theirs is None:
        return decide(
            True, f"{alias} version {holder.version} has no {metric!r} score", challenger_score=mine
        )
    gain = (theirs - mine) if lower_is_better(metric) else (mine - theirs)
    scores = {"challenger_score": mine, "champion_score": theirs, "rescored": rescored}
    where = "on the challenger's hold-out" if rescored else "on the same hold-out"
    if gain > margin:
        return decide(
            True,
            f"{metric} {mine:.4g} beats {theirs:.4g} by {gain:.4g} (margin {margin:g}) {where}",
            **scores,
        )
    return decide(
        False,
        f"{metric} {mine:.4g} does not beat {theirs:.4g} by more than {margin:g} {where}",
        **scores,
    )


def promote(
    store: Store,
    challenger: ModelVersion,
    alias: str = CHAMPION,
    *,
    config: Any = None,
    force: bool = False,
    dry_run: bool = False,
    margin: float | None = None,
) -> Decision:
    """Judge `challenger` for `alias` and, unless `dry_run`, record the decision
    and move the alias when it passes (or when `force`)."""
    check_alias(alias)
    decision = evaluate(store, challenger, alias, config=config, margin=margin)
    holder = decision.champion
    if force and not decision.promoted and holder is not None and holder.id != challenger.id:
        decision.promoted = True
        decision.reason = f"forced; the gate said: {decision.reason}"
    if dry_run:
        return decision
    now = time.time()
    with store.write() as conn:
        conn.execute(
            "INSERT INTO promotions (project_id, alias, challenger_id, champion_id, metric,"
            " challenger_score, champion_score, margin, rescored, promoted, reason, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                challenger.project_id,
                alias,
                challenger.id,
                decision.champion.id if decision.champion else None,
                decision.metric,
                decision.challenger_score,
                decision.champion_score,
                decision.margin,
                int(decision.rescored),
                int(decision.promoted),
                decision.reason,
                now,
            ),
        )
        verb = "promoted to" if decision.promoted else "not promoted to"
        store.add_event(
            "model.promoted" if decision.promoted else "model.kept",
            f"model version {challenger.version} {verb} {alias}: {decision.reason}",
            ts=now,
            project_id=challenger.project_id,
            run_id=challenger.run_id,
            data=decision.document(),
        )
    if decision.promoted:
        set_alias(store, challenger, alias)
        if alias == CHAMPION:
            _drop_challenger(store, challenger)
    elif alias == CHAMPION and decision.champion and decision.champion.id != challenger.id:
        set_alias(store, challenger, CHALLENGER)
    return decision


def _drop_challenger(store: Store, version: ModelVersion) -> None:
    """The new champion is nobody's challenger any more."""
    with store.write() as conn:
        conn.execute(
            "DELETE FROM model_aliases WHERE project_id = ? AND alias = ? AND version_id = ?",
            (version.project_id, CHALLENGER, version.id),
        )
    version.aliases = [a for a in version.aliases if a != CHALLENGER]


def score_on_holdout(model: ModelVersion, evaluation: ModelVersion) -> dict[str, float]:
    """`model`'s metrics on `evaluation`'s hold-out rows."""
    import pandas as pd

    from workbench.trainers.metrics import classification_metrics, regression_metrics

    if evaluation.holdout_path is None or not evaluation.holdout_path.exists():
        raise WorkbenchError(f"{evaluation.ref} kept no hold-out data")
    frame = pd.read_parquet(evaluation.holdout_path)
    target = model.schema["target"]["name"]
    if target not in frame.columns:
        raise WorkbenchError(f"the hold-out has no target column {target!r}")
    truth = frame.pop(target)
    pred, proba = model.load().predict(frame)
    if model.schema["target"].get("task") == "classification":
        return classification_metrics(truth, pred, proba, model.schema["target"]["classes"])
    return regression_metrics(truth, pred)


def _config(store: Store, project: str) -> Any:
    from workbench.projects import project_config

    return project_config(store, project)[1]
