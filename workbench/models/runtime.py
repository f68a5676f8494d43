"""Verify, load, predict with and serve a Workbench model bundle.

This one file is the whole runtime of a bundle. Workbench uses it for
`workbench predict` and `workbench serve`, and copies it into every bundle as
`wb_runtime.py`, so a bundle works where Workbench is not installed:

    python wb_runtime.py verify BUNDLE
    python wb_runtime.py predict BUNDLE input.csv -o predictions.csv
    python wb_runtime.py serve BUNDLE --host 127.0.0.1 --port 8080

or from Python: `wb_runtime.load(BUNDLE).predict(frame)`.

It therefore imports only the standard library, numpy and pandas at the top;
lightgbm, skops, pyarrow, starlette and uvicorn are imported when needed.

A bundle is a folder or a .zip holding `manifest.json` (what the model is, its
input schema, and the SHA-256 of every other file), the model in a format that
runs no code when loaded (LightGBM's text model, or skops with only
allow-listed types), this runtime, `requirements.txt` and a README. Loading
always verifies first: a changed, missing or extra file, a path that leaves the
bundle, or a link is refused before anything is read as a model.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import gzip
import hashlib
import importlib.util
import ipaddress
import json
import os
import socket
import stat
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

BUNDLE_FORMAT = 1
MANIFEST = "manifest.json"
RUNTIME_FILE = "wb_runtime.py"
CHUNK_ROWS = 50_000
MAX_REQUEST_BYTES = 64 << 20
_COPY = 1 << 20

# skops refuses any type it does not trust by default; these are trusted on
# top. Module prefixes cover the estimators and their array/sparse state. Of
# `builtins`, only plain data types: a function such as `builtins.eval` stored
# in a pipeline would run at predict time, so it stays refused.
TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.", "lightgbm.", "collections.")
TRUSTED_BUILTINS = frozenset(
    f"builtins.{name}"
    for name in ("bytearray", "bytes", "complex", "frozenset", "range", "set", "slice")
)


class BundleRuntimeError(Exception):
    """An error the user can act on; the command line prints it without a traceback."""

    exit_code = 1


class BundleError(BundleRuntimeError):
    """The bundle is refused (it does not match its manifest) or cannot be loaded."""


class InputError(BundleRuntimeError):
    """The input (a table, a request, an argument) does not fit the model."""

    exit_code = 2


# --- verification ---------------------------------------------------------------------


def sha256_of(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(_COPY):
        digest.update(chunk)
    return digest.hexdigest()


def unsafe_name(name: str) -> str | None:
    """Why `name` cannot be a path inside a bundle, or None when it can. Names are
    relative, '/'-separated and normalised, so they can never point outside."""
    if not name:
        return "empty path"
    if "\\" in name or "\0" in name:
        return "path with a backslash or NUL character"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "path leaving the bundle (..)"
    if any(part in ("", ".") for part in parts):
        return "path that is not normalised"
    return None


Opener = Callable[[], IO[bytes]]


def _folder_files(folder: Path, problems: list[str]) -> dict[str, Opener]:
    files: dict[str, Opener] = {}
    for root, dirs, names in os.walk(folder):
        for name in [*dirs, *names]:
            full = Path(root, name)
            rel = full.relative_to(folder).as_posix()
            mode = full.lstat().st_mode
            if stat.S_ISLNK(mode):
                problems.append(f"symbolic link: {rel}")
            elif stat.S_ISREG(mode):
                files[rel] = functools.partial(full.open, "rb")
            elif not stat.S_ISDIR(mode):
                problems.append(f"not a regular file: {rel}")
        dirs[:] = [d for d in dirs if not Path(root, d).is_symlink()]
    return files


def _zip_files(archive: zipfile.ZipFile, problems: list[str]) -> dict[str, Opener]:
    files: dict[str, Opener] = {}
    for info in archive.infolist():
        name = info.filename
        reason = unsafe_name(name[:-1] if info.is_dir() else name)
        if reason:
            problems.append(f"zip member {name!r}: {reason}")
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            problems.append(f"zip member {name!r}: symbolic link")
        elif info.flag_bits & 0x1:
            problems.append(f"zip member {name!r}: encrypted")
        elif name in files:
            problems.append(f"zip member {name!r}: appears twice")
        elif not info.is_dir():
            files[name] = functools.partial(archive.open, info)
    return files


def _check_manifest(files: dict[str, Opener], problems: list[str]) -> dict[str, Any] | None:
    if MANIFEST not in files:
        problems.append(f"no {MANIFEST}")
        return None
    try:
        with files[MANIFEST]() as fh:
            manifest = json.loads(fh.read())
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        problems.append(f"{MANIFEST} is unreadable: {exc}")
        return None
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict):
        problems.append(f"{MANIFEST} has no 'files' table")
        return None
    found = manifest.get("bundle_format")
    if not isinstance(found, int) or found > BUNDLE_FORMAT:
        problems.append(
            f"bundle format {found!r} is not one this runtime reads (up to {BUNDLE_FORMAT}); "
            "use the wb_runtime.py that came with the bundle"
        )
    for name in sorted(listed):
        reason = unsafe_name(name)
        if name == MANIFEST:
            reason = "the manifest cannot list itself"
        if reason:
            problems.append(f"manifest entry {name!r}: {reason}")
        elif name not in files:
            problems.append(f"missing file: {name}")
        else:
            try:
                with files[name]() as fh:
                    digest = sha256_of(fh)
            except (OSError, zipfile.BadZipFile) as exc:
                problems.append(f"unreadable file: {name} ({exc})")
                continue
            entry = listed[name]
            expected = entry.get("sha256") if isinstance(entry, dict) else None
            if digest != expected:
                problems.append(f"changed file: {name} (its SHA-256 does not match the manifest)")
    for name in sorted(set(files) - set(listed) - {MANIFEST}):
        hint = ""
        if "__pycache__/" in name:
            hint = " (Python wrote it on import: delete it; PYTHONDONTWRITEBYTECODE=1 prevents it)"
        problems.append(f"extra file not in the manifest: {name}{hint}")
    model_file = manifest.get("model_file")
    if not (isinstance(model_file, str) and model_file in listed):
        problems.append(f"{MANIFEST} names no model file among its files")
    return manifest


def verify(path: str | Path) -> dict[str, Any]:
    """Check a bundle folder or .zip against its manifest without extracting anything.

    Returns {"ok", "path", "kind", "files", "problems", "manifest"}; `problems`
    names each refused file with the reason.
    """
    path = Path(path)
    problems: list[str] = []
    files: dict[str, Opener] = {}
    manifest = None
    kind = "folder"
    if path.is_symlink():
        problems.append(f"{path} is a symbolic link")
    elif path.is_dir():
        files = _folder_files(path, problems)
        manifest = _check_manifest(files, problems)
    elif path.is_file() and zipfile.is_zipfile(path):
        kind = "zip"
        try:
            with zipfile.ZipFile(path) as archive:
                files = _zip_files(archive, problems)
                manifest = _check_manifest(files, problems)
        except (zipfile.BadZipFile, OSError) as exc:
            problems.append(f"unreadable zip: {exc}")
    elif path.exists():
        problems.append(f"{path} is neither a bundle folder nor a .zip")
    else:
        problems.append(f"{path} does not exist")
    return {
        "ok": not problems,
        "path": str(path),
        "kind": kind,
        "files": len(files),
        "problems": problems,
        "manifest": manifest,
    }


def _verified(path: Path) -> dict[str, Any]:
    result = verify(path)
    if not result["ok"]:
        raise BundleError(f"refused {path}: " + "; ".join(result["problems"]))
    return result["manifest"]


def extract(
    path: str | Path, target: str | Path, members: list[str] | None = None
) -> dict[str, Any]:
    """Verify a .zip bundle, then write its files (or only `members`), and nothing
    else, under `target`.

    Only names the manifest lists (already checked to stay inside) are written,
    each re-hashed as it is written, into files that must not exist yet.
    """
    path = Path(path)
    manifest = _verified(path)
    _write_members(path, manifest, Path(target), members)
    return manifest


def _write_members(
    path: Path, manifest: dict[str, Any], target: Path, members: list[str] | None
) -> None:
    wanted = sorted(manifest["files"]) if members is None else members
    unknown = [name for name in wanted if name not in manifest["files"]]
    if unknown:
        raise BundleError(f"{path} has no {', '.join(unknown)} in its manifest")
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    with zipfile.ZipFile(path) as archive:
        for name in [MANIFEST, *wanted]:
            dest = target.joinpath(*name.split("/"))
            if not dest.resolve().is_relative_to(root):
                raise BundleError(f"refused {path}: {name!r} would be written outside {target}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with archive.open(name) as src, open(dest, "xb") as out:
                while chunk := src.read(_COPY):
                    digest.update(chunk)
                    out.write(chunk)
            if name != MANIFEST and digest.hexdigest() != manifest["files"][name]["sha256"]:
                raise BundleError(f"refused {path}: {name} changed while it was extracted")


# --- the model ------------------------------------------------------------------------


def load_skops(data: bytes) -> Any:
    """A scikit-learn model from skops bytes, trusting only allow-listed types."""
    import skops.io

    types = skops.io.get_untrusted_types(data=data)
    _check_trusted(types)
    return skops.io.loads(data, trusted=types)


def _check_trusted(types: list[str]) -> None:
    refused = [t for t in types if not (t.startswith(TRUSTED_MODULES) or t in TRUSTED_BUILTINS)]
    if refused:
        raise BundleError(
            "the model file holds types outside the allow-list, so it is not loaded: "
            f"{', '.join(sorted(refused))} (trusted: modules "
            f"{', '.join(m.rstrip('.') for m in TRUSTED_MODULES)} and plain builtins)"
        )


class Model:
    """A model and its input schema (`spec`: framework, features, target).

    `predict` takes a raw table like the training data, extra columns ignored,
    and prepares each feature the way training did.
    """

    def __init__(self, spec: Mapping[str, Any], data: bytes) -> None:
        try:
            self.framework = spec["framework"]
            self.features: list[dict[str, Any]] = list(spec["features"])
            self.names = [f["name"] for f in self.features]
            self.target: dict[str, Any] = dict(spec["target"])
        except (KeyError, TypeError) as exc:
            raise BundleError(f"the model's schema is incomplete: no {exc}") from exc
        self.classes: list[Any] | None = self.target.get("classes")
        self.native = self._load(data)
        self.has_proba = self.classes is not None and (
            self.framework == "lightgbm" or hasattr(self.native, "predict_proba")
        )

    def _load(self, data: bytes) -> Any:
        if self.framework not in ("lightgbm", "sklearn"):
            raise BundleError(f"unknown model framework {self.framework!r}")
        try:
            if self.framework == "sklearn":
                return load_skops(data)
            import lightgbm

            return lightgbm.Booster(model_str=data.decode("utf-8"))
        except BundleError:
            raise
        except Exception as exc:  # noqa: BLE001 - any library's refusal of the file
            raise BundleError(f"cannot load the {self.framework} model: {exc}") from exc

    def check_columns(self, columns: Any) -> None:
        columns = list(columns)
        missing = [n for n in self.names if n not in set(columns)]
        if missing:
            hint = ""
            if len(columns) == 1 and any(sep in str(columns[0]) for sep in ";\t|"):
                hint = " (its header is one column: is it separated by something other than ','?)"
            raise InputError(
                f"the input lacks the model's feature columns: {', '.join(missing)}{hint}"
            )

    def prepare(self, frame: pd.DataFrame, strict: bool) -> tuple[pd.DataFrame, dict[str, int]]:
        """The feature columns as the model saw them in training, and per
        categorical feature the number of values it never saw."""
        self.check_columns(frame.columns)
        out: dict[str, Any] = {}
        unseen: dict[str, int] = {}
        for feature in self.features:
            name = feature["name"]
            column = frame[name]
            if feature["kind"] != "categorical":
                out[name] = _numeric(column, name, strict)
                continue
            categories = feature.get("categories") or []
            lightgbm = self.framework == "lightgbm"
            # LightGBM takes text as it is; scikit-learn gets exactly training's conversion.
            keep = lightgbm and pd.api.types.is_string_dtype(column)
            text = column if keep else _as_text(column)
            codes = pd.Index(categories).get_indexer(text)  # -1: missing or never seen
            out[name] = pd.Categorical.from_codes(codes, categories) if lightgbm else text
            count = int(((codes < 0) & column.notna().to_numpy()).sum())
            if count:
                unseen[name] = count
        return pd.DataFrame(out, index=frame.index), unseen

    def run(
        self, frame: pd.DataFrame, strict: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None, dict[str, int]]:
        """Predictions, class probabilities (None for a regressor) and unseen categories."""
        prepared, unseen = self.prepare(frame, strict)
        if self.framework == "sklearn":
            pred = np.asarray(self.native.predict(prepared))
            proba = None
            if self.has_proba:
                try:
                    proba = np.asarray(self.native.predict_proba(prepared))
                except AttributeError:  # e.g. SVC without probability=True
                    proba = None
            return pred, proba, unseen
        raw = self.native.predict(prepared)
        if self.classes is None:
            return raw, None, unseen
        proba = np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw
        return _labels(self.classes)[proba.argmax(axis=1)], proba, unseen

    def predict(self, frame: pd.DataFrame, strict: bool = True) -> tuple[np.ndarray, Any]:
        """(predictions, class probabilities or None)."""
        pred, proba, _ = self.run(frame, strict)
        return pred, proba


def _labels(classes: list[Any]) -> np.ndarray:
    """Class labels in their own dtype (ints, floats, bools); text or mixed as objects."""
    if len({type(c) for c in classes}) == 1 and type(classes[0]) in (int, float, bool):
        return np.asarray(classes)
    return np.asarray(classes, dtype=object)


def _as_text(column: pd.Series) -> pd.Series:
    """Categories are compared as text, with missing values as None, as in training."""
    return column.astype("string").astype(object).where(column.notna(), None)


def _numeric(column: pd.Series, name: str, strict: bool) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return column.astype("float64")
    try:
        values = pd.to_numeric(column, errors="coerce")
    except (TypeError, ValueError) as exc:
        raise InputError(f"column {name!r} must be numeric: {exc}") from exc
    if strict:
        bad = values.isna() & column.notna()
        if bad.any():
            at = int(np.flatnonzero(bad.to_numpy())[0])
            label = column.index[at]  # chunks keep their rows' numbers in the whole input
            row = label + 1 if isinstance(label, int | np.integer) else label
            raise InputError(
                f"column {name!r} must be numeric; got {column.iloc[at]!r} in row {row}"
            )
    return values.astype("float64")


class Bundle:
    """A verified bundle, its model loaded into memory."""

    def __init__(self, folder: Path, manifest: dict[str, Any], source: Path | None = None) -> None:
        self.manifest = manifest
        self.source = source or folder
        model_file = manifest["model_file"]
        data = (folder / model_file).read_bytes()
        if hashlib.sha256(data).hexdigest() != manifest["files"][model_file]["sha256"]:
            raise BundleError(f"refused {self.source}: {model_file} changed after verification")
        self.model = Model(manifest, data)

    @property
    def name(self) -> str:
        return f"{self.manifest.get('project')}@{self.manifest.get('version')}"

    def predict(self, frame: pd.DataFrame, strict: bool = True) -> tuple[np.ndarray, Any]:
        return self.model.predict(frame, strict)

    def metadata(self) -> dict[str, Any]:
        """The manifest without the file hashes: what a client needs to call the model."""
        return {k: v for k, v in self.manifest.items() if k != "files"}

    def predict_frame(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
        """`frame` with a `prediction` column and, for a classifier, `proba_<class>`."""
        pred, proba, unseen = self.model.run(frame)
        out = frame.copy()
        out["prediction"] = pred
        if proba is not None:
            for i, label in enumerate(self.model.classes or []):
                out[f"proba_{label}"] = proba[:, i]
        return out, unseen


def load(path: str | Path) -> Bundle:
    """Verify, then load a bundle folder or .zip. A zip is verified as it is, then
    extracted into a private temporary folder that is removed once the model is
    in memory."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        return Bundle(path, _verified(path))
    manifest = _verified(path)
    with tempfile.TemporaryDirectory(prefix="wb-bundle-") as tmp:
        # Only the model is needed: wheels and the rest stay in the zip.
        _write_members(path, manifest, Path(tmp), [manifest["model_file"]])
        return Bundle(Path(tmp), manifest, source=path)


# --- tables in and out ----------------------------------------------------------------


def _need(purpose: str, *modules: str) -> None:
    """A clear error, not an ImportError, when an optional package is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise BundleRuntimeError(
            f"{purpose} needs {', '.join(missing)}: pip install -r requirements.txt"
        )


def table_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        _need("Parquet", "pyarrow")
        return "parquet"
    if name.endswith(".csv.gz"):
        return "csv.gz"
    if name.endswith(".csv"):
        return "csv"
    raise InputError(f"{path}: expected a .csv, .csv.gz or .parquet file")


def input_columns(path: Path) -> list[str]:
    """The columns of a table, read from its header or schema only."""
    if table_format(path) == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path} is empty") from exc


def read_chunks(path: Path, rows: int = CHUNK_ROWS) -> Iterator[tuple[pd.DataFrame, float]]:
    """(chunk, fraction of the input read so far): Parquet batch by batch through its
    row groups, CSV `rows` at a time. Each chunk's index is its row numbers."""
    fmt = table_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        total, done = max(parquet.metadata.num_rows, 1), 0
        for batch in parquet.iter_batches(batch_size=rows):
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(done, done + len(frame))
            done += len(frame)
            yield frame, done / total
        return
    size = max(path.stat().st_size, 1)
    with open(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw) if fmt == "csv.gz" else raw
        with pd.read_csv(stream, chunksize=rows) as reader:
            for frame in reader:
                yield frame, min(raw.tell() / size, 1.0)


class TableWriter:
    """Writes chunks to CSV, CSV.gz or Parquet (by suffix), or CSV to stdout when
    `path` is None. A file appears under its name only once it is complete."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.format = table_format(path) if path else "csv"
        self._partial = path.with_name(f".{path.name}.partial") if path else None
        self._files = contextlib.ExitStack()
        self._handle: Any = None
        self._parquet: Any = None
        self._schema: Any = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "parquet":
            self._write_parquet(frame)
        else:
            if self._handle is None:
                if self._partial is None:
                    self._handle = sys.stdout
                else:
                    opener = gzip.open if self.format == "csv.gz" else open
                    self._handle = self._files.enter_context(
                        opener(self._partial, "wt", newline="")
                    )
            frame.to_csv(self._handle, header=self.rows == 0, index=False)
        self.rows += len(frame)

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._parquet is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            self._schema = table.schema
            self._parquet = pq.ParquetWriter(self._partial, self._schema)
        else:
            try:
                table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise InputError(
                    f"a column changed type between chunks of the input ({exc}); "
                    "write CSV instead, or give the input as Parquet"
                ) from exc
        self._parquet.write_table(table)

    def close(self, ok: bool) -> None:
        """Finish the file (`ok`) or remove what was written."""
        if self._parquet is not None:
            self._parquet.close()
        self._files.close()
        if self._handle is sys.stdout:
            sys.stdout.flush()
        if self._partial is None or self.path is None:
            return
        if ok:
            os.replace(self._partial, self.path)
        else:
            self._partial.unlink(missing_ok=True)


def _read_guarded(source: Path, rows: int) -> Iterator[tuple[pd.DataFrame, float]]:
    """`read_chunks`, with a file that cannot be parsed reported as bad input."""
    try:
        yield from read_chunks(source, rows)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{source}: cannot read it: {exc}") from exc


def predict_file(
    bundle: Bundle,
    source: Path,
    output: Path | None,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Predict every row of `source` into `output` (stdout as CSV when None),
    chunk by chunk; the schema is checked before anything is written.
    `progress(rows_done, fraction_read)` hears after each chunk."""
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    columns = input_columns(source)
    bundle.model.check_columns(columns)
    writer = TableWriter(output)
    started, chunks = time.perf_counter(), 0
    unseen: dict[str, int] = {}
    ok = False
    try:
        for frame, fraction in _read_guarded(source, chunk_rows):
            predicted, found = bundle.predict_frame(frame)
            try:
                writer.write(predicted)
            except OSError as exc:
                raise BundleRuntimeError(f"{output or 'stdout'}: cannot write: {exc}") from exc
            chunks += 1
            for name, count in found.items():
                unseen[name] = unseen.get(name, 0) + count
            if progress:
                progress(writer.rows, fraction)
        if not writer.rows:
            raise InputError(f"{source} has no rows")
        ok = True
    finally:
        writer.close(ok)
    seconds = time.perf_counter() - started
    return {
        "model": bundle.name,
        "input": str(source),
        "output": str(output) if output else None,
        "rows": writer.rows,
        "chunks": chunks,
        "seconds": round(seconds, 3),
        "rows_per_s": round(writer.rows / seconds) if seconds > 0 else None,
        "ignored_columns": [c for c in columns if c not in bundle.model.names],
        "unseen_categories": unseen,
    }


# --- serving --------------------------------------------------------------------------


def frame_from_json(payload: Any) -> pd.DataFrame:
    """Rows from a request body: {"rows": [{...}, ...]}, a bare list of row objects,
    or {"columns": {"name": [values...], ...}}. Values must be numbers, strings,
    booleans or null."""
    if isinstance(payload, dict) and "rows" in payload:
        payload = payload["rows"]
    if isinstance(payload, dict) and isinstance(payload.get("columns"), dict):
        columns = payload["columns"]
        if not all(isinstance(v, list) for v in columns.values()):
            raise InputError('"columns" must map each column name to a list of values')
        if len({len(v) for v in columns.values()}) > 1:
            raise InputError('the lists in "columns" have different lengths')
        rows = [
            dict(zip(columns, values, strict=True))
            for values in zip(*columns.values(), strict=True)
        ]
    elif isinstance(payload, list):
        rows = payload
    else:
        raise InputError(
            'expected {"rows": [{"column": value, ...}, ...]}, a list of row objects, '
            'or {"columns": {"column": [values, ...], ...}}'
        )
    if not rows:
        raise InputError("no rows to predict")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"row {i + 1} is not an object of column: value")
        for key, value in row.items():
            if not (value is None or isinstance(value, str | int | float | bool)):
                raise InputError(
                    f"row {i + 1}, column {key!r}: a {type(value).__name__} is not a value; "
                    "expected a number, a string, a boolean or null"
                )
    return pd.DataFrame.from_records(rows)


def _json_values(values: np.ndarray) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]


def predict_json(bundle: Bundle, payload: Any) -> dict[str, Any]:
    """The /predict response for a decoded request body."""
    pred, proba, unseen = bundle.model.run(frame_from_json(payload))
    return {
        "model": bundle.name,
        "predictions": _json_values(pred),
        "classes": bundle.model.classes,
        "probabilities": None if proba is None else np.asarray(proba, dtype=float).tolist(),
        "unseen_categories": unseen,
    }


def make_app(bundle: Bundle) -> Any:
    """The Starlette app: GET /health, GET /metadata, POST /predict."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def problem(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": bundle.name})

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse(bundle.metadata())

    async def predict(request: Request) -> JSONResponse:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                return problem(413, f"the request is larger than {MAX_REQUEST_BYTES} bytes")
        try:
            payload = json.loads(body)
        except ValueError as exc:
            return problem(422, f"the request body is not JSON: {exc}")
        try:
            result = await run_in_threadpool(predict_json, bundle, payload)
        except InputError as exc:
            return problem(422, str(exc))
        return JSONResponse(result)

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/metadata", metadata, methods=["GET"]),
            Route("/predict", predict, methods=["POST"]),
        ]
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, so a taken port or a bad host is a clear error up front."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise InputError(f"cannot listen on {host!r}: {exc.strerror}") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InputError(
                f"port {port} on {host} is already in use; pick another with --port"
            ) from exc
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def is_loopback(host: str) -> bool:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return False
    return all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def serve(
    bundle: Bundle, host: str = "127.0.0.1", port: int = 8080, say: Callable[[str], None] = print
) -> None:
    """Serve `bundle` over HTTP until interrupted. Loopback by default: the server
    has no authentication, so another host is allowed only with a warning."""
    _need("serving", "starlette", "uvicorn")
    import uvicorn

    sock = bind(host, port)
    if not is_loopback(host):
        say(
            f"warning: listening on {host}, reachable from other machines; the server has no "
            "authentication, so put it behind something that has"
        )
    actual = sock.getsockname()[1]
    say(
        f"serving {bundle.name} on http://{host}:{actual} "
        "(GET /health, GET /metadata, POST /predict)"
    )
    config = uvicorn.Config(make_app(bundle), host=host, port=actual, log_level="info")
    with contextlib.closing(sock):
        uvicorn.Server(config).run(sockets=[sock])


# --- command line ---------------------------------------------------------------------


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """`python wb_runtime.py verify|predict|serve ...` for machines without Workbench."""
    parser = argparse.ArgumentParser(prog="wb_runtime.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="check every file against the manifest")
    check.add_argument("bundle", type=Path)
    batch = commands.add_parser("predict", help="predict a CSV, CSV.gz or Parquet file")
    batch.add_argument("bundle", type=Path)
    batch.add_argument("input", type=Path)
    batch.add_argument("-o", "--output", type=Path, help="output file (default: CSV to stdout)")
    web = commands.add_parser("serve", help="serve the model over HTTP")
    web.add_argument("bundle", type=Path)
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            result = verify(args.bundle)
            for problem in result["problems"]:
                _stderr(f"refused: {problem}")
            if result["ok"]:
                _stderr(f"ok: {result['files']} files match {args.bundle}/{MANIFEST}")
            return 0 if result["ok"] else 1
        bundle = load(args.bundle)
        if args.command == "predict":
            summary = predict_file(bundle, args.input, args.output)
            _stderr(json.dumps({k: v for k, v in summary.items() if v is not None}))
        else:
            serve(bundle, args.host, args.port, say=_stderr)
    except BundleRuntimeError as exc:
        _stderr(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
