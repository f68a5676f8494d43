"""Labels that arrive after the predictions: `workbench data labels PROJECT FILE`.

A labels file (CSV or Parquet) has a `request_id` column, the label (a column
named `label` or the project's target), and optionally `row` (the row's place
in its request; 0 when absent). It is checked, then kept as
`<project>/.workbench/labels/labels-<sha256 prefix>.parquet` with the time it
was received; `workbench monitor` joins the labels to the prediction log on
(request_id, row), the most recently received label winning.

What is refused, with the reason and nothing written: a file that cannot be
read as a table, no request_id or label column, empty request ids, and one
request id given two different labels. Rows without a label are left out,
and a request id given the same label twice counts once. Ids that are not in
the prediction log (yet) are kept and counted: their requests may sit in a
part that is still being written, or lie beyond the log's retention.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from workbench.core.errors import UsageError

LABELS_FOLDER = Path(".workbench") / "labels"
MAX_LABEL_FILE_BYTES = 1 << 30
EXAMPLES = 3


def labels_folder(project_root: Path) -> Path:
    return project_root / LABELS_FOLDER


def receive(project_root: Path, file: Path, target: str, known_ids: set[str]) -> dict[str, Any]:
    """Check and keep a labels file; returns what was received (see the module).
    `known_ids` are the request ids in the prediction log."""
    import pandas as pd

    from workbench.data.reading import Malformed, read_checked

    try:
        size = file.stat().st_size
    except OSError as exc:
        raise UsageError(f"{file}: {exc.strerror or exc}") from None
    if size > MAX_LABEL_FILE_BYTES:
        raise UsageError(f"{file}: {size:,} bytes is larger than a labels file may be (1 GB)")
    try:
        frame = read_checked(file)
    except Malformed as exc:
        raise UsageError(f"cannot read the labels: {exc.message}") from None
    label = "label" if "label" in frame.columns else target
    if "request_id" not in frame.columns or label not in frame.columns:
        raise UsageError(
            f"{file.name}: expected a request_id column and a label column (`label` or "
            f"{target!r}); found {', '.join(map(repr, frame.columns[:10]))}"
        )
    ids = frame["request_id"].astype("string").str.strip()
    if ids.isna().any() or (ids == "").any():
        at = int((ids.isna() | (ids == "")).to_numpy().nonzero()[0][0])
        raise UsageError(f"{file.name}: row {at + 1} has no request_id; nothing was received")
    rows = _rows(frame, file)
    labels = frame[label]
    kept = pd.DataFrame(
        {
            "request_id": ids.astype(str),
            "row": rows,
            "label": labels.map(_text).astype("string"),
        }
    )
    unlabelled = int(kept["label"].isna().sum())
    kept = kept[kept["label"].notna()]
    distinct = kept.drop_duplicates()
    clashes = distinct[distinct.duplicated(["request_id", "row"], keep=False)]
    if len(clashes):
        shown = ", ".join(sorted(set(clashes["request_id"]))[:EXAMPLES])
        count = clashes["request_id"].nunique()
        raise UsageError(
            f"{file.name}: {count} request id(s) have two different labels ({shown}); "
            "fix the file and send it again; nothing was received"
        )
    repeated = len(kept) - len(distinct)
    unknown = sorted(set(distinct["request_id"]) - known_ids)
    digest = _sha256(file)
    target_file = labels_folder(project_root) / f"labels-{digest[:16]}.parquet"
    already = target_file.exists()
    if not already and len(distinct):
        distinct = distinct.assign(received_at=time.time())
        target_file.parent.mkdir(parents=True, exist_ok=True)
        partial = target_file.with_name(f".{target_file.name}.partial")
        distinct.to_parquet(partial, index=False)
        os.replace(partial, target_file)
    return {
        "file": str(file),
        "stored": str(target_file) if len(distinct) else None,
        "already_received": already,
        "labels": len(distinct),
        "unlabelled_rows": unlabelled,
        "repeated_rows": repeated,
        "unknown_ids": len(unknown),
        "unknown_examples": unknown[:EXAMPLES],
    }


def _rows(frame: Any, file: Path) -> Any:
    import pandas as pd

    if "row" not in frame.columns:
        return pd.Series(0, index=frame.index, dtype="int32")
    rows = pd.to_numeric(frame["row"], errors="coerce")
    bad = rows.isna() | (rows < 0) | (rows != rows.round())
    if bad.any():
        at = int(bad.to_numpy().nonzero()[0][0])
        raise UsageError(
            f"{file.name}: row {at + 1}: `row` must be a whole number >= 0, "
            f"got {frame['row'].iloc[at]!r}; nothing was received"
        )
    return rows.astype("int32")


def _text(value: Any) -> str | None:
    """A label as text, so labels of every file join alike: 1.0 and 1 are "1"."""
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item"):
        return _text(value.item())
    return str(value)


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_labels(project_root: Path) -> tuple[Any, list[str]]:
    """Every label received (request_id, row, label), the latest per request row,
    and the label files that could not be read (left in place)."""
    import pandas as pd

    frames, damaged = [], []
    folder = labels_folder(project_root)
    for path in sorted(folder.glob("labels-*.parquet")) if folder.is_dir() else []:
        try:
            frame = pd.read_parquet(path, columns=["request_id", "row", "label", "received_at"])
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds; say which file
            damaged.append(f"{path}: {(str(exc).splitlines() or [type(exc).__name__])[0][:200]}")
            continue
        frames.append(frame)
    if not frames:
        empty = pd.DataFrame({"request_id": [], "row": [], "label": []})
        return empty.astype({"request_id": "string", "row": "int32", "label": "string"}), damaged
    labels = pd.concat(frames, ignore_index=True).sort_values("received_at", kind="stable")
    labels = labels.drop_duplicates(["request_id", "row"], keep="last")
    return labels[["request_id", "row", "label"]].astype(
        {"request_id": "string", "row": "int32", "label": "string"}
    ), damaged
