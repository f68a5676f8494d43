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
import asyncio
import base64
import binascii
import codecs
import contextlib
import csv
import errno
import functools
import gzip
import hashlib
import importlib.util
import io
import ipaddress
import json
import logging
import math
import os
import socket
import stat
import sys
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import pandas as pd

# The same name in Workbench and inside a bundle (where this file is wb_runtime.py).
log = logging.getLogger("wb_runtime")

BUNDLE_FORMAT = 2  # 2: an optional manifest.sig next to the manifest
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
RUNTIME_FILE = "wb_runtime.py"
CHUNK_ROWS = 50_000
# Batches smaller than this are predicted by LightGBM on one thread: for a request's few
# rows, waking its OpenMP pool costs more than walking the trees (about 9 ms against
# 1 ms a request on a busy 2-core machine, and ten times the CPU). Larger batches keep
# LightGBM's default of every core.
ONE_THREAD_ROWS = 2_000
MAX_REQUEST_BYTES = 64 << 20
_COPY = 1 << 20
_MB = 1 << 20

# Size limits, checked before anything is read (a zip member's declared size and
# compression ratio, a file's size on disk) and again while reading. The bundle
# and per-file limits can be raised through these environment variables (MB).
MAX_BUNDLE_ENV, DEFAULT_MAX_BUNDLE_MB = "WORKBENCH_MAX_BUNDLE_MB", 2048
MAX_FILE_ENV, DEFAULT_MAX_FILE_MB = "WORKBENCH_MAX_FILE_MB", 512
MAX_RATIO_ENV, DEFAULT_MAX_RATIO = "WORKBENCH_MAX_ZIP_RATIO", 200
RATIO_FREE_BYTES = 4 * _MB  # a member this small may compress as well as it likes
MAX_MANIFEST_BYTES = 16 * _MB
MAX_SIGNATURE_BYTES = 16 << 10
MAX_FILES = 10_000

# skops loads only the types it trusts by default (plain data, numpy arrays and
# dtypes, scikit-learn's public estimators) plus the exact classes below: what the
# built-in trainers and `wb.log_model` produce, found with skops.io.get_untrusted_types
# on real saved models. Exact names, never module prefixes, never functions: a
# library function stored in a model (numpy's or scikit-learn's test helpers run
# code) would be called at load or predict time. Regenerate with
# `python scripts/skops_allow_list.py` (`--check` compares with this list).
TRUSTED_TYPES = frozenset(
    {
        "collections.OrderedDict",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "numpy.dtype",
        "sklearn._loss.loss.HalfTweedieLossIdentity",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
        "sklearn.gaussian_process.kernels.ConstantKernel",
        "sklearn.gaussian_process.kernels.Product",
        "sklearn.gaussian_process.kernels.RBF",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.tree._tree.Tree",
    }
)
# The skops node kinds those models are made of. Functions, methods, partials,
# operator callables and reduce calls are never among them, whatever they name.
TRUSTED_NODES = frozenset(
    {
        "BytearrayNode",
        "BytesNode",
        "CachedNode",
        "DTypeNode",
        "DefaultDictNode",
        "DictNode",
        "JsonNode",
        "ListNode",
        "LossNode",
        "MaskedArrayNode",
        "NdArrayNode",
        "ObjectNode",
        "RandomGeneratorNode",
        "RandomStateNode",
        "SetNode",
        "SliceNode",
        "SparseMatrixNode",
        "TreeNode",
        "TupleNode",
        "TypeNode",
    }
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


class Limits:
    """How large a bundle and each file in it may be (bytes), and how far a zip
    member may compress: from the environment, else the defaults."""

    def __init__(self) -> None:
        self.bundle = _env_number(MAX_BUNDLE_ENV, DEFAULT_MAX_BUNDLE_MB) * _MB
        self.file = _env_number(MAX_FILE_ENV, DEFAULT_MAX_FILE_MB) * _MB
        self.ratio = _env_number(MAX_RATIO_ENV, DEFAULT_MAX_RATIO)

    def too_big(self, name: str, size: int) -> str | None:
        if size > self.file:
            return (
                f"{name} is {_mb(size)}, over the limit of {_mb(self.file)} a file may have "
                f"({MAX_FILE_ENV} raises it)"
            )
        return None


def _env_number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise InputError(f"{name}={raw!r}: expected a whole number above 0")
    return value


def _mb(size: int) -> str:
    return f"{size / _MB:.1f} MB" if size >= _MB else f"{size} bytes"


def sha256_of(stream: IO[bytes], limit: int | None = None) -> str:
    """The SHA-256 of a stream, refusing (BundleError) to read more than `limit` bytes."""
    digest = hashlib.sha256()
    seen = 0
    while chunk := stream.read(_COPY):
        seen += len(chunk)
        if limit is not None and seen > limit:
            raise BundleError(f"it holds more than the {_mb(limit)} it declared")
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
    if len(name) > 1024:
        return "path longer than 1024 characters"
    return None


Opener = Callable[[], IO[bytes]]
# What reading a zip can raise besides BadZipFile: a damaged deflate stream, a
# truncated file, an unsupported feature.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
)


class _Member:
    """A file of a bundle: how to open it and its size (declared, for a zip)."""

    __slots__ = ("open", "size")

    def __init__(self, opener: Opener, size: int) -> None:
        self.open = opener
        self.size = size


def _folder_files(folder: Path, problems: list[str], limits: Limits) -> dict[str, _Member]:
    files: dict[str, _Member] = {}
    total = 0
    for root, dirs, names in os.walk(folder):
        for name in [*dirs, *names]:
            full = Path(root, name)
            rel = full.relative_to(folder).as_posix()
            info = full.lstat()
            if stat.S_ISLNK(info.st_mode):
                problems.append(f"symbolic link: {rel}")
            elif stat.S_ISREG(info.st_mode):
                files[rel] = _Member(functools.partial(full.open, "rb"), info.st_size)
                total += info.st_size
            elif not stat.S_ISDIR(info.st_mode):
                problems.append(f"not a regular file: {rel}")
            if len(files) > MAX_FILES:
                problems.append(f"more than {MAX_FILES} files")
                return {}
        dirs[:] = [d for d in dirs if not Path(root, d).is_symlink()]
    _check_sizes(files, total, problems, limits)
    return files


def _zip_files(archive: zipfile.ZipFile, problems: list[str], limits: Limits) -> dict[str, _Member]:
    files: dict[str, _Member] = {}
    infos = archive.infolist()
    if len(infos) > MAX_FILES:
        problems.append(f"the zip has {len(infos)} members, more than {MAX_FILES}")
        return {}
    total = 0
    for info in infos:
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
        elif info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problems.append(
                f"zip member {name!r}: compression method {info.compress_type} "
                "(only stored or deflated members are read)"
            )
        elif not info.is_dir():
            files[name] = _Member(functools.partial(archive.open, info), info.file_size)
            total += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_FREE_BYTES and ratio > limits.ratio:
                problems.append(
                    f"zip member {name!r}: {_mb(info.file_size)} compressed {ratio:.0f}:1, "
                    f"more than {limits.ratio}:1 (a zip bomb?); {MAX_RATIO_ENV} raises the limit"
                )
    _check_sizes(files, total, problems, limits)
    return files


def _check_sizes(
    files: dict[str, _Member], total: int, problems: list[str], limits: Limits
) -> None:
    for name, member in files.items():
        reason = limits.too_big(name, member.size)
        if reason:
            problems.append(reason)
    if total > limits.bundle:
        problems.append(
            f"its files hold {_mb(total)}, over the limit of {_mb(limits.bundle)} a bundle may "
            f"have ({MAX_BUNDLE_ENV} raises it)"
        )


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"the key {key!r} appears twice")
        document[key] = value
    return document


def _read_json(member: _Member, name: str, limit: int) -> tuple[Any, bytes]:
    """A small JSON file of the bundle: (document, its bytes). Refuses (ValueError)
    one over `limit` before reading it, a repeated key, or nesting too deep."""
    if member.size > limit:
        raise ValueError(f"{_mb(member.size)}, over the {_mb(limit)} it may have")
    with member.open() as fh:
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        raise ValueError(f"over the {_mb(limit)} it may have")
    try:
        return json.loads(raw, object_pairs_hook=_unique_keys), raw
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


def _file_entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return 'expected {"sha256": "<64 hex digits>", "bytes": <size>}'
    digest, size = entry.get("sha256"), entry.get("bytes")
    if not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= set(_HEX)):
        return "its sha256 is not 64 hex digits"
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        return "its bytes is not a size"
    return None


_HEX = "0123456789abcdef"


def _check_manifest(
    files: dict[str, _Member], problems: list[str], limits: Limits
) -> tuple[dict[str, Any] | None, bytes | None]:
    if MANIFEST not in files:
        problems.append(f"no {MANIFEST}")
        return None, None
    try:
        manifest, raw = _read_json(files[MANIFEST], MANIFEST, MAX_MANIFEST_BYTES)
    except (*_ZIP_ERRORS, UnicodeDecodeError) as exc:
        problems.append(f"{MANIFEST} is unreadable: {exc}")
        return None, None
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(listed, dict):
        problems.append(f"{MANIFEST} has no 'files' table")
        return None, None
    if len(listed) > MAX_FILES:
        problems.append(f"{MANIFEST} lists {len(listed)} files, more than {MAX_FILES}")
        return None, None
    found = manifest.get("bundle_format")
    if not isinstance(found, int) or isinstance(found, bool) or found > BUNDLE_FORMAT:
        problems.append(
            f"bundle format {found!r} is not one this runtime reads (up to {BUNDLE_FORMAT}); "
            "use the wb_runtime.py that came with the bundle"
        )
    for name in sorted(listed):
        reason = unsafe_name(name)
        if name in (MANIFEST, SIGNATURE):
            reason = f"the manifest cannot list {name}"
        entry = listed[name]
        if reason is None:
            reason = _file_entry_problem(entry)
        if reason:
            problems.append(f"manifest entry {name!r}: {reason}")
        elif name not in files:
            problems.append(f"missing file: {name}")
        elif entry.get("bytes") not in (None, files[name].size):
            problems.append(
                f"changed file: {name} ({files[name].size} bytes, the manifest says "
                f"{entry['bytes']})"
            )
        else:
            try:
                with files[name].open() as fh:
                    digest = sha256_of(fh, files[name].size)
            except (*_ZIP_ERRORS, BundleError) as exc:
                problems.append(f"unreadable file: {name} ({exc})")
                continue
            if digest != entry["sha256"]:
                problems.append(f"changed file: {name} (its SHA-256 does not match the manifest)")
    for name in sorted(set(files) - set(listed) - {MANIFEST, SIGNATURE}):
        hint = ""
        if "__pycache__/" in name:
            hint = " (Python wrote it on import: delete it; PYTHONDONTWRITEBYTECODE=1 prevents it)"
        problems.append(f"extra file not in the manifest: {name}{hint}")
    model_file = manifest.get("model_file")
    if not (isinstance(model_file, str) and model_file in listed):
        problems.append(f"{MANIFEST} names no model file among its files")
    problems.extend(f"{MANIFEST}: {p}" for p in schema_problems(manifest))
    return manifest, raw


# --- signatures -------------------------------------------------------------------------


def key_fingerprint(public_key: bytes) -> str:
    """`SHA256:<base64>` of a raw Ed25519 public key, as ssh-keygen shows keys."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(public_key).digest()).decode().rstrip("=")


def parse_signature(data: bytes) -> tuple[bytes, bytes]:
    """(public key, signature) from manifest.sig; ValueError says what is wrong."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("algorithm") != "ed25519":
            raise ValueError("expected a JSON object with algorithm 'ed25519'")
        key = base64.b64decode(document["public_key"], validate=True)
        signature = base64.b64decode(document["signature"], validate=True)
    except (KeyError, TypeError, RecursionError, binascii.Error) as exc:
        raise ValueError(f"expected public_key and signature in base64 ({exc})") from exc
    if len(key) != 32 or len(signature) != 64:
        raise ValueError("an Ed25519 key is 32 bytes and a signature 64")
    return key, signature


def _check_signature(
    files: dict[str, _Member], manifest_bytes: bytes, problems: list[str]
) -> dict[str, Any]:
    """Who signed the manifest: {"status": "unsigned" | "valid" | "unchecked" |
    "invalid", "fingerprint", "public_key"}. "unchecked": the cryptography package
    is not installed, so the signature could not be checked."""
    if SIGNATURE not in files:
        return {"status": "unsigned"}
    try:
        if files[SIGNATURE].size > MAX_SIGNATURE_BYTES:
            raise ValueError(f"{_mb(files[SIGNATURE].size)} is too large for a signature")
        with files[SIGNATURE].open() as fh:
            key, signature = parse_signature(fh.read(MAX_SIGNATURE_BYTES + 1))
    except (*_ZIP_ERRORS, UnicodeDecodeError) as exc:
        problems.append(f"{SIGNATURE} is not a signature: {exc}")
        return {"status": "invalid"}
    signer = {
        "fingerprint": key_fingerprint(key),
        "public_key": base64.b64encode(key).decode(),
    }
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return {"status": "unchecked", **signer}
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, manifest_bytes)
    except InvalidSignature:
        problems.append(
            f"{SIGNATURE}: the signature does not match {MANIFEST} (changed after it was signed)"
        )
        return {"status": "invalid", **signer}
    return {"status": "valid", **signer}


def describe_signature(signature: dict[str, Any]) -> str:
    status = signature.get("status")
    if status == "valid":
        return f"signed by {signature['fingerprint']} (signature checked)"
    if status == "unchecked":
        return (
            f"signed by {signature['fingerprint']}, but the signature was not checked: "
            "the cryptography package is not installed"
        )
    if status == "invalid":
        return "its signature is not valid"
    return "unsigned"


def verify(path: str | Path, model: bool = True) -> dict[str, Any]:
    """Check a bundle folder or .zip against its manifest (and its signature) without
    extracting anything; sizes are checked before anything is read. With `model`,
    the model file is checked as loading would check it (skops' types against the
    allow-list, LightGBM's text against its bounds), without loading it.

    Returns {"ok", "path", "kind", "files", "problems", "manifest", "signature"};
    `problems` names each refused file with the reason.
    """
    path = Path(path)
    limits = Limits()
    problems: list[str] = []
    files: dict[str, _Member] = {}
    manifest: dict[str, Any] | None = None
    signature: dict[str, Any] = {"status": "unsigned"}
    kind = "folder"

    def check(found: dict[str, _Member]) -> None:
        nonlocal manifest, signature
        if problems:  # too large, or not a bundle's shape: read nothing
            return
        manifest, raw = _check_manifest(found, problems, limits)
        intact = not problems  # every file matches the manifest
        if raw is not None:
            signature = _check_signature(found, raw, problems)
        if model and manifest is not None and intact:
            _check_model_file(found, manifest, problems)

    if path.is_symlink():
        problems.append(f"{path} is a symbolic link")
    elif path.is_dir():
        files = _folder_files(path, problems, limits)
        check(files)
    elif path.is_file() and zipfile.is_zipfile(path):
        kind = "zip"
        size = path.stat().st_size
        if size > limits.bundle:
            problems.append(
                f"{path} is {_mb(size)}, over the limit of {_mb(limits.bundle)} a bundle may "
                f"have ({MAX_BUNDLE_ENV} raises it)"
            )
        else:
            try:
                with zipfile.ZipFile(path) as archive:
                    files = _zip_files(archive, problems, limits)
                    check(files)
            except _ZIP_ERRORS as exc:
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
        "signature": signature,
    }


def _check_model_file(
    files: dict[str, _Member], manifest: dict[str, Any], problems: list[str]
) -> None:
    name = manifest["model_file"]
    try:
        with files[name].open() as fh:
            data = fh.read(files[name].size + 1)
        if manifest["framework"] == "sklearn":
            # Loading runs no code once the types passed; the trees need the loaded arrays.
            check_sklearn_trees(loads_skops_checked(data))
        else:
            check_lightgbm_text(
                data.decode("utf-8"), len(manifest["features"]), _outputs(manifest["target"])
            )
    except (*_ZIP_ERRORS, UnicodeDecodeError, BundleError) as exc:
        problems.append(f"{name}: {exc}")
    except Exception as exc:  # noqa: BLE001 - skops' refusal of a malformed file
        problems.append(f"{name}: skops cannot load it: {exc}")


def _outputs(target: dict[str, Any]) -> int:
    """A LightGBM model's outputs: one for a regressor or a binary classifier, else
    one per class."""
    classes = target.get("classes")
    return len(classes) if classes and len(classes) > 2 else 1


def _verified_result(path: Path, model: bool = True) -> dict[str, Any]:
    result = verify(path, model)
    if not result["ok"]:
        raise BundleError(f"refused {path}: " + "; ".join(result["problems"]))
    return result


def _verified(path: Path) -> dict[str, Any]:
    return _verified_result(path)["manifest"]


def extract(
    path: str | Path, target: str | Path, members: list[str] | None = None
) -> dict[str, Any]:
    """Verify a .zip bundle, then write its files (or only `members`), and nothing
    else, under `target`.

    Only names the manifest lists (already checked to stay inside) are written,
    each re-hashed and counted as it is written, into files that must not exist
    yet. When anything fails, what was written is removed again.
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
    made: list[Path] = []
    if not target.exists():
        target.mkdir(parents=True)
        made.append(target)
    root = target.resolve()
    limits = Limits()
    try:
        with zipfile.ZipFile(path) as archive:
            for name in [MANIFEST, *wanted]:
                dest = target.joinpath(*name.split("/"))
                if not dest.resolve().is_relative_to(root):
                    raise BundleError(f"refused {path}: {name!r} would be written outside {target}")
                for parent in reversed(dest.parents):
                    if parent.is_relative_to(target) and not parent.exists():
                        parent.mkdir()
                        made.append(parent)
                expected = manifest["files"].get(name, {}).get("bytes")
                digest = _copy_member(archive, name, dest, made, limits, expected, path)
                if name != MANIFEST and digest != manifest["files"][name]["sha256"]:
                    raise BundleError(f"refused {path}: {name} changed while it was extracted")
    except _ZIP_ERRORS as exc:
        _remove(made)
        raise BundleError(f"refused {path}: cannot extract it: {exc}") from exc
    except BaseException:
        _remove(made)
        raise


def _copy_member(
    archive: zipfile.ZipFile,
    name: str,
    dest: Path,
    made: list[Path],
    limits: Limits,
    expected: int | None,
    path: Path,
) -> str:
    """Copy one member, counting and hashing as it goes; returns its SHA-256."""
    limit = min(limits.file, expected if expected is not None else limits.file)
    digest = hashlib.sha256()
    written = 0
    with archive.open(name) as src, open(dest, "xb") as out:
        made.append(dest)
        while chunk := src.read(_COPY):
            written += len(chunk)
            if written > limit:
                raise BundleError(f"refused {path}: {name} holds more than {_mb(limit)}")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _remove(made: list[Path]) -> None:
    """Undo a failed extraction: the files, then the folders it made."""
    for item in reversed(made):
        with contextlib.suppress(OSError):
            if item.is_dir() and not item.is_symlink():
                item.rmdir()
            else:
                item.unlink()


# --- the model ------------------------------------------------------------------------


def load_skops(data: bytes) -> Any:
    """A scikit-learn model from skops bytes, trusting only allow-listed types."""
    return loads_skops_checked(data)


def check_skops(data: bytes) -> list[str]:
    """Refuse (BundleError) skops bytes that hold anything but data and the
    allow-listed classes: sizes first, then every node of its schema (no function,
    method, partial, operator or reduce call, whatever it names), then the types
    skops itself would not trust, and any LightGBM model inside is bounds-checked.
    Returns the types to pass to skops as trusted."""
    import skops.io

    check_skops_schema(data)
    try:
        types = skops.io.get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - skops' refusal of a malformed file
        raise BundleError(f"the skops model file is malformed: {exc}") from exc
    _check_trusted(types)
    return types


def loads_skops_checked(data: bytes) -> Any:
    """The model in skops bytes, checked as `check_skops` checks it, in one pass.

    `get_untrusted_types` builds skops' whole tree of the file, and `loads` builds it
    again: for a 200-tree forest that is 0.2 s of a 0.3 s load. Here the schema's
    sizes and nodes are checked first, then skops loads with the allow-list as its
    trusted types: it audits the whole tree before constructing anything and refuses
    any type outside its defaults and the allow-list, which is exactly what
    `check_skops` accepts. Only a refused file pays for the second pass, to name
    the types in the same message."""
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    check_skops_schema(data)
    try:
        return skops.io.loads(data, trusted=sorted(TRUSTED_TYPES))
    except UntrustedTypesFoundException:
        check_skops(data)  # raises BundleError naming the types outside the allow-list
        raise


def check_skops_schema(data: bytes) -> None:
    """The sizes of a skops file's members and every node of its schema (see
    `check_skops`), without building skops' tree."""
    limits = Limits()
    problems: list[str] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            files = _zip_files(archive, problems, limits)
            if "schema.json" not in files and not problems:
                problems.append("it has no schema.json")
            if problems:
                raise BundleError("the skops model file is refused: " + "; ".join(problems))
            schema, _ = _read_json(files["schema.json"], "schema.json", limits.file)
    except (*_ZIP_ERRORS, UnicodeDecodeError) as exc:
        raise BundleError(f"the skops model file is unreadable: {exc}") from exc
    _check_skops_nodes(schema)


def _check_skops_nodes(schema: Any) -> None:
    # Only containers go on the stack: a forest's schema has tens of thousands of
    # scalar values, and pushing each to pop and skip it doubled the walk.
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, list | dict))
            continue
        if not isinstance(node, dict):
            continue
        if "__loader__" in node:
            loader = node["__loader__"]
            name = f"{node.get('__module__')}.{node.get('__class__')}"
            if loader not in TRUSTED_NODES:
                raise BundleError(
                    f"the model file holds a {loader} of {name}, outside the allow-list "
                    "(a model holds data and allow-listed classes, never functions or calls), "
                    "so it is not loaded"
                )
            if name == "lightgbm.basic.Booster":
                _check_booster_node(node)
        stack.extend(v for v in node.values() if isinstance(v, list | dict))


def _check_booster_node(node: dict[str, Any]) -> None:
    """A LightGBM Booster inside a skops file is its model text: checked as a bundle's is."""
    state = node.get("content")
    content = state.get("content") if isinstance(state, dict) else None
    if not isinstance(content, dict):
        return  # no state: nothing for LightGBM to parse
    for key in ("_handle", "handle"):
        text = content.get(key)
        if text is None:
            continue
        if not (isinstance(text, dict) and text.get("__loader__") == "JsonNode"):
            raise BundleError("the model file's LightGBM booster is not stored as model text")
        try:
            value = json.loads(text.get("content", "null"))
        except (TypeError, ValueError, RecursionError) as exc:
            raise BundleError(f"the model file's LightGBM booster is unreadable: {exc}") from exc
        if value is not None:
            if not isinstance(value, str):
                raise BundleError("the model file's LightGBM booster is not model text")
            check_lightgbm_text(value)


# scikit-learn's tree predictors (decision trees and forests, HistGradientBoosting)
# walk their node arrays in compiled code without bounds checks, and skops restores
# those arrays as they are stored: a child or feature index out of range would read
# outside memory at predict time. So the loaded model's trees are checked first.
def check_sklearn_trees(model: Any) -> None:
    """Refuse (BundleError) a loaded scikit-learn model with a malformed tree."""
    from sklearn.tree._tree import Tree

    try:
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    except ImportError:  # pragma: no cover - an old scikit-learn
        TreePredictor = ()  # noqa: N806
    seen: set[int] = set()
    stack: list[tuple[Any, int | None]] = [(model, None)]
    while stack:
        obj, features = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | type | None):
            continue
        seen.add(id(obj))
        bound = getattr(obj, "n_features_in_", features)
        bound = bound if isinstance(bound, int | np.integer) else features
        if isinstance(obj, Tree):
            _check_sklearn_tree(obj, features)
        elif isinstance(obj, TreePredictor):
            _check_hist_predictor(obj, features)
        elif isinstance(obj, dict):
            stack.extend((v, bound) for v in obj.values())
        elif isinstance(obj, list | tuple):
            stack.extend((v, bound) for v in obj)
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend((v, bound) for v in obj.ravel())
        elif hasattr(obj, "__dict__"):
            stack.extend((v, bound) for v in vars(obj).values())


def _check_children(what: str, left: np.ndarray, right: np.ndarray, internal: np.ndarray) -> None:
    """Every internal node's children are other nodes, each the child of one node
    only and never the root: every walk from the root ends at a leaf."""
    count = len(left)
    children = np.concatenate([left[internal], right[internal]])
    if ((children < 1) | (children >= count)).any() or len(np.unique(children)) != len(children):
        raise BundleError(f"the model's {what} has child indices outside its nodes")


def _check_sklearn_tree(tree: Any, features: int | None) -> None:
    count = tree.node_count
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    if not (len(left) == len(right) == len(feature) == tree.value.shape[0] == count):
        raise BundleError("the model's decision tree arrays do not match its node count")
    internal = left != -1
    if (right[~internal] != -1).any():
        raise BundleError("the model's decision tree has a leaf with one child")
    _check_children("decision tree", left, right, internal)
    limit = tree.n_features if features is None else min(tree.n_features, features)
    used = feature[internal]
    if len(used) and (used.min() < 0 or used.max() >= limit):
        raise BundleError(f"the model's decision tree splits on features outside 0..{limit - 1}")


def _check_hist_predictor(predictor: Any, features: int | None) -> None:
    nodes = predictor.nodes
    if not len(nodes):
        raise BundleError("the model's gradient-boosting tree has no nodes")
    internal = nodes["is_leaf"] == 0
    _check_children(
        "gradient-boosting tree", nodes["left"].astype(np.int64), nodes["right"].astype(np.int64),
        internal,
    )  # fmt: skip
    used = nodes["feature_idx"][internal]
    if features is not None and len(used) and used.max() >= features:
        raise BundleError(f"the model's gradient-boosting tree splits on features over {features}")
    sets = nodes["bitset_idx"][internal & (nodes["is_categorical"] != 0)]
    rows = min(len(predictor.raw_left_cat_bitsets), len(predictor.binned_left_cat_bitsets))
    if len(sets) and sets.max() >= rows:
        raise BundleError("the model's gradient-boosting tree points at a missing category set")


def _check_trusted(types: list[str]) -> None:
    refused = [t for t in types if t not in TRUSTED_TYPES]
    if refused:
        raise BundleError(
            "the model file holds types outside the allow-list, so it is not loaded: "
            f"{', '.join(sorted(refused))} (allowed: data, scikit-learn's estimators and the "
            "exact classes the built-in trainers save; see TRUSTED_TYPES in wb_runtime.py)"
        )


# LightGBM parses its model text natively, trusting the numbers in it: a tree
# whose child or feature index points outside its arrays reads (or writes) outside
# them at load or predict time. So the text is checked first.
_LGBM_OBJECTIVES = frozenset(
    {
        "regression", "regression_l1", "huber", "fair", "poisson", "quantile", "mape",
        "gamma", "tweedie", "binary", "multiclass", "multiclassova", "cross_entropy",
        "cross_entropy_lambda", "lambdarank", "rank_xendcg", "custom",
    }
)  # fmt: skip
_LGBM_MAX_CLASSES = 10_000
_LGBM_MAX_FEATURES = 1_000_000
_LGBM_MAX_LEAVES = 131_072
_LGBM_MAX_TREES = 10_000_000


class _Malformed(ValueError):
    pass


def check_lightgbm_text(text: str, features: int | None = None, classes: int | None = None) -> None:
    """Refuse (BundleError) LightGBM model text that is not a well-formed model:
    its header, every tree's arrays and indices, and, when given, its number of
    features and of class outputs."""
    try:
        _check_lightgbm(text, features, classes)
    except _Malformed as exc:
        raise BundleError(f"the LightGBM model is malformed, so it is not loaded: {exc}") from exc


def _ints(value: str, what: str, lo: int, hi: int) -> list[int]:
    try:
        numbers = [int(v) for v in value.split()]
    except ValueError as exc:
        raise _Malformed(f"{what} is not a list of whole numbers") from exc
    for n in numbers:
        if not lo <= n <= hi:
            raise _Malformed(f"{what} holds {n}, outside {lo}..{hi}")
    return numbers


def _int(header: dict[str, str], key: str, lo: int, hi: int) -> int:
    if key not in header:
        raise _Malformed(f"no {key} in its header")
    values = _ints(header[key], key, lo, hi)
    if len(values) != 1:
        raise _Malformed(f"{key} is not one number")
    return values[0]


def _check_lightgbm(text: str, features: int | None, classes: int | None) -> None:
    if "\0" in text:
        raise _Malformed("it holds a NUL character")
    start = text.find("\nTree=")
    end = text.find("\nend of trees")
    if not text.startswith("tree\n") or start < 0 or end < start:
        raise _Malformed("expected 'tree', a header, trees and 'end of trees'")
    header: dict[str, str] = {}
    for line in text[:start].splitlines()[1:]:
        key, sep, value = line.partition("=")
        if sep:
            header[key] = value
    num_class = _int(header, "num_class", 1, _LGBM_MAX_CLASSES)
    per_iteration = _int(header, "num_tree_per_iteration", 1, _LGBM_MAX_CLASSES)
    max_feature = _int(header, "max_feature_idx", 0, _LGBM_MAX_FEATURES - 1)
    if per_iteration != num_class:
        raise _Malformed(f"num_tree_per_iteration {per_iteration} is not num_class {num_class}")
    objective = header.get("objective", "custom").split()  # none: a custom objective
    if not objective or objective[0] not in _LGBM_OBJECTIVES:
        raise _Malformed(f"objective {' '.join(objective)!r} is not one LightGBM has")
    for option in objective[1:]:
        if option.startswith("num_class:") and option != f"num_class:{num_class}":
            raise _Malformed(f"its objective says {option}, its header num_class={num_class}")
    for key in ("feature_names", "feature_infos"):
        if key in header and len(header[key].split()) != max_feature + 1:
            raise _Malformed(f"{key} does not name max_feature_idx + 1 = {max_feature + 1}")
    if features is not None and max_feature + 1 != features:
        raise _Malformed(f"it takes {max_feature + 1} features, its schema has {features}")
    if classes is not None and num_class != classes:
        raise _Malformed(f"it has {num_class} class outputs, its schema {classes}")

    blocks = text[start + 1 : end + 1].split("\nTree=")
    blocks[0] = blocks[0][len("Tree=") :]
    if len(blocks) > _LGBM_MAX_TREES or len(blocks) % per_iteration:
        raise _Malformed(f"{len(blocks)} trees is not a whole number of iterations")
    for i, block in enumerate(blocks):
        _check_tree(i, block, max_feature)
    if "tree_sizes" in header:
        sizes = _ints(header["tree_sizes"], "tree_sizes", 1, len(text))
        # LightGBM jumps to each tree by these byte offsets without checking them.
        last = len(blocks) - 1
        # Each tree's bytes run from its "Tree=" to the next one's (the split ate a newline).
        actual = [len(f"Tree={b}".encode()) + (i < last) for i, b in enumerate(blocks)]
        if len(sizes) != len(blocks) or sizes != actual:
            raise _Malformed("tree_sizes do not match its trees")


def _check_tree(i: int, block: str, max_feature: int) -> None:
    index, _, body = block.partition("\n")
    if index.strip() != str(i):
        raise _Malformed(f"tree {i} is numbered {index.strip()!r}")
    tree: dict[str, str] = {}
    for line in body.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            if key in tree:
                raise _Malformed(f"tree {i} has {key} twice")
            tree[key] = value
    where = f"tree {i}"
    leaves = _int(tree, "num_leaves", 1, _LGBM_MAX_LEAVES)
    num_cat = _int(tree, "num_cat", 0, leaves)
    inner = leaves - 1

    def array(key: str, length: int, required: bool = True) -> list[str]:
        values = tree.get(key, "").split()
        if (required or values) and len(values) != length:
            raise _Malformed(f"{where}: {key} has {len(values)} values, expected {length}")
        return values

    def ints(key: str, length: int, lo: int, hi: int) -> list[int]:
        return _ints(" ".join(array(key, length)), f"{where}: {key}", lo, hi)

    for key in ("split_gain", "internal_value", "internal_weight", "internal_count"):
        array(key, inner, required=False)
    for key in ("leaf_weight", "leaf_count"):
        array(key, leaves, required=False)
    _floats(array("leaf_value", leaves), f"{where}: leaf_value")
    if "is_linear" in tree and _int(tree, "is_linear", 0, 1):
        _check_linear(where, tree, leaves, max_feature)
    if leaves == 1:
        return
    ints("split_feature", inner, 0, max_feature)  # a feature of the row, or out of bounds
    decision = ints("decision_type", inner, 0, 255)
    thresholds = _floats(array("threshold", inner), f"{where}: threshold")
    left = ints("left_child", inner, -leaves, inner - 1)
    right = ints("right_child", inner, -leaves, inner - 1)
    _check_shape(where, left, right, leaves)
    if num_cat:
        bounds = ints("cat_boundaries", num_cat + 1, 0, 1 << 31)
        if bounds[0] != 0 or any(b > a for b, a in zip(bounds, bounds[1:], strict=False)):
            raise _Malformed(f"{where}: cat_boundaries are not increasing from 0")
        ints("cat_threshold", bounds[-1], 0, (1 << 32) - 1)
    for n in (n for n in range(inner) if decision[n] & 1):  # categorical: a set's index
        t = thresholds[n]
        if not (t.is_integer() and 0 <= t < num_cat):
            raise _Malformed(f"{where}: categorical split {n} points at set {t}, of {num_cat}")


def _floats(values: list[str], what: str) -> list[float]:
    try:
        return [float(v) for v in values]
    except ValueError as exc:
        raise _Malformed(f"{what} is not a list of numbers") from exc


def _check_shape(where: str, left: list[int], right: list[int], leaves: int) -> None:
    """The children make one tree: from the root, every node and leaf is reached
    exactly once (no cycle, nothing shared), so a prediction always ends at a leaf."""
    seen_nodes = {0}
    seen_leaves: set[int] = set()
    stack = [0]
    while stack:
        node = stack.pop()
        for child in (left[node], right[node]):
            if child >= 0:
                if child in seen_nodes:
                    raise _Malformed(f"{where}: node {child} is reached twice (a cycle?)")
                seen_nodes.add(child)
                stack.append(child)
            else:
                leaf = ~child
                if leaf in seen_leaves:
                    raise _Malformed(f"{where}: leaf {leaf} is reached twice")
                seen_leaves.add(leaf)
    if len(seen_nodes) != leaves - 1 or len(seen_leaves) != leaves:
        raise _Malformed(f"{where}: its nodes do not form one tree")


def _check_linear(where: str, tree: dict[str, str], leaves: int, max_feature: int) -> None:
    counts = _ints(tree.get("num_features", ""), f"{where}: num_features", 0, max_feature + 1)
    if len(counts) != leaves:
        raise _Malformed(f"{where}: num_features has {len(counts)} values, expected {leaves}")
    used = _ints(tree.get("leaf_features", ""), f"{where}: leaf_features", 0, max_feature)
    coefficients = _floats(tree.get("leaf_coeff", "").split(), f"{where}: leaf_coeff")
    if len(used) != sum(counts) or len(coefficients) != sum(counts):
        raise _Malformed(f"{where}: leaf_features and leaf_coeff do not match num_features")
    if len(tree.get("leaf_const", "").split()) != leaves:
        raise _Malformed(f"{where}: leaf_const has not {leaves} values")


def schema_problems(spec: Any) -> list[str]:
    """What is wrong with a model's schema (framework, features, target), if anything."""
    if not isinstance(spec, dict):
        return ["the schema is not a JSON object"]
    problems = []
    if spec.get("framework") not in ("lightgbm", "sklearn"):
        problems.append(f"framework {spec.get('framework')!r} is not lightgbm or sklearn")
    features = spec.get("features")
    if not isinstance(features, list) or not features:
        problems.append("features is not a list of features")
        features = []
    names = set()
    for i, feature in enumerate(features):
        ok = (
            isinstance(feature, dict)
            and isinstance(feature.get("name"), str)
            and feature.get("kind") in ("numeric", "categorical")
            and _scalars(feature.get("categories") or [])
        )
        if not ok:
            problems.append(
                f"feature {i + 1} is not {{name, kind numeric|categorical, categories}}"
            )
        elif feature["name"] in names:
            problems.append(f"feature {feature['name']!r} appears twice")
        else:
            names.add(feature["name"])
    target = spec.get("target")
    if not (isinstance(target, dict) and isinstance(target.get("name"), str | int)):
        problems.append("target is not {name, classes}")
    elif target.get("classes") is not None and not (
        _scalars(target["classes"]) and target["classes"]
    ):
        problems.append("target classes is not a list of labels")
    return problems


def _scalars(values: Any) -> bool:
    return isinstance(values, list) and all(
        v is None or isinstance(v, str | int | float | bool) for v in values
    )


class Model:
    """A model and its input schema (`spec`: framework, features, target).

    `predict` takes a raw table like the training data, extra columns ignored,
    and prepares each feature the way training did.
    """

    def __init__(self, spec: Mapping[str, Any], data: bytes) -> None:
        problems = schema_problems(dict(spec) if isinstance(spec, Mapping) else spec)
        if problems:
            raise BundleError(f"the model's schema is refused: {'; '.join(problems)}")
        self.framework = spec["framework"]
        self.features: list[dict[str, Any]] = list(spec["features"])
        self.names = [f["name"] for f in self.features]
        self.target: dict[str, Any] = dict(spec["target"])
        self.classes: list[Any] | None = self.target.get("classes")
        self.native = self._load(data)
        self.has_proba = self.classes is not None and (
            self.framework == "lightgbm" or hasattr(self.native, "predict_proba")
        )

    def _load(self, data: bytes) -> Any:
        """The native model, only once its file passed the checks for its format:
        skops' types against the allow-list, LightGBM's text against its bounds."""
        limit = Limits().file
        if len(data) > limit:
            raise BundleError(f"the model file is {_mb(len(data))}, over the {_mb(limit)} limit")
        if self.framework == "sklearn":
            pass  # checked as it loads, below (`loads_skops_checked`)
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BundleError(f"the LightGBM model is not text: {exc}") from exc
            check_lightgbm_text(text, len(self.names), _outputs(self.target))
        try:
            if self.framework == "sklearn":
                native = loads_skops_checked(data)
                check_sklearn_trees(native)
                return native
            import lightgbm

            return lightgbm.Booster(model_str=text)
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
        threads = 1 if len(prepared) < ONE_THREAD_ROWS else 0  # 0: LightGBM's default
        raw = self.native.predict(prepared, num_threads=threads)
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

    def __init__(
        self,
        folder: Path,
        manifest: dict[str, Any],
        source: Path | None = None,
        data: bytes | None = None,
        signature: dict[str, Any] | None = None,
    ) -> None:
        self.manifest = manifest
        self.source = source or folder
        self.signature = signature or {"status": "unsigned"}
        model_file = manifest["model_file"]
        if data is None:
            data = _read_bounded(folder / model_file, manifest["files"][model_file])
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


def load(path: str | Path, accept: Callable[[dict[str, Any]], None] | None = None) -> Bundle:
    """Verify, then load a bundle folder or .zip. `accept(verify's result)` may
    refuse it (by raising) before its model is read. A zip's model is read from
    the zip into memory, within its declared size: nothing is extracted to disk."""
    path = Path(path)
    result = _verified_result(path, model=False)  # the model is checked as it loads
    if accept is not None:
        accept(result)
    manifest, signature = result["manifest"], result["signature"]
    if path.is_dir() and not path.is_symlink():
        return Bundle(path, manifest, signature=signature)
    model_file = manifest["model_file"]
    try:
        with zipfile.ZipFile(path) as archive, archive.open(model_file) as fh:
            data = fh.read(Limits().file + 1)
    except _ZIP_ERRORS as exc:
        raise BundleError(f"refused {path}: cannot read {model_file}: {exc}") from exc
    return Bundle(path.parent, manifest, source=path, data=data, signature=signature)


def _read_bounded(path: Path, entry: dict[str, Any]) -> bytes:
    """A verified file's bytes, read no further than its size in the manifest (or
    the per-file limit): the file may have grown since it was hashed."""
    limit = entry.get("bytes")
    limit = Limits().file if limit is None else min(limit, Limits().file)
    with open(path, "rb") as fh:
        return fh.read(limit + 1)


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


def read_chunks(
    path: Path, rows: int = CHUNK_ROWS, skip: Sequence[Rejected] = ()
) -> Iterator[tuple[pd.DataFrame, float]]:
    """(chunk, fraction of the input read so far): Parquet batch by batch through its
    row groups, CSV `rows` at a time, leaving out the `skip` rows (found by
    `check_table`). Each chunk's index is its rows' numbers in the input (from 0)."""
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
    # Rows pandas leaves out, by record (the header is 0, blank lines count), and
    # how to number the rows it keeps as they are numbered in the input.
    records = {r.record for r in skip}
    shift = np.array(sorted(r.row - 1 for r in skip), dtype=np.int64)
    shift -= np.arange(len(shift), dtype=np.int64)
    with open(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw) if fmt == "csv.gz" else raw
        with pd.read_csv(stream, chunksize=rows, skiprows=records or None) as reader:
            for frame in reader:
                if len(shift):
                    kept = frame.index.to_numpy()
                    frame.index = kept + np.searchsorted(shift, kept, side="right")
                yield frame, min(raw.tell() / size, 1.0)


class Rejected(NamedTuple):
    """An input row set aside, and why."""

    row: int  # its number among the input's rows, from 1
    record: int  # its record in the file, for pandas' skiprows (header 0, blank lines count)
    reason: str
    text: str  # the row as the input has it


class TableScan(NamedTuple):
    columns: list[str]
    rows: int  # data rows, blank lines not counted
    rejected: list[Rejected]


SNIFF_BYTES = 64 << 10
_SCAN_BLOCK = 8 << 20
_EXAMPLES = 3


def check_table(path: Path, features: Sequence[str], keep_going: bool = False) -> TableScan:
    """What `data validate` refuses in a file, checked in one pass before anything is
    predicted: an empty or header-only file, binary content, text that is not UTF-8,
    a damaged gzip stream, another delimiter than ',', and rows with the wrong number
    of fields (a truncated last row among them). Such rows raise InputError, or with
    `keep_going` are returned in `rejected` for the caller to set aside."""
    fmt = table_format(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes)")
    if fmt == "parquet":
        return _check_parquet(path)
    try:
        scan = _scan_plain(path, fmt, keep_going)
        if scan is None:  # quoted fields or lone carriage returns: the csv module
            scan = _scan_quoted(path, fmt, keep_going)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: the gzip stream is damaged or cut short ({exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    except csv.Error as exc:
        raise InputError(f"{path} is not valid CSV: {exc}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc}") from None
    columns = scan.columns
    if not any(columns):
        raise InputError(f"{path} has no header and no rows")
    if len(columns) == 1 and len(features) > 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if sep in columns[0]:
                raise InputError(
                    f"{path} seems to be separated by {name}, not commas: its header is one "
                    f"column ({columns[0][:60]!r}); save it as comma-separated CSV"
                )
    if scan.rows == 0:
        raise InputError(f"{path} has a header but no rows")
    if scan.rejected and not keep_going:
        raise InputError(_ragged_message(path, scan))
    return scan


def _ragged_message(path: Path, scan: TableScan) -> str:
    examples = "; ".join(f"row {r.row}: {r.reason}" for r in scan.rejected[:_EXAMPLES])
    more = "" if len(scan.rejected) <= _EXAMPLES else " (and more)"
    return (
        f"{path} has rows with the wrong number of fields, so nothing was predicted: "
        f"{examples}{more}; fix them, or pass --skip-invalid to predict the other rows "
        "and write these to a file of rejected rows"
    )


def _check_parquet(path: Path) -> TableScan:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        names, rows = list(parquet.schema_arrow.names), parquet.metadata.num_rows
    except (ValueError, OSError, TypeError) as exc:  # ArrowInvalid is a ValueError
        raise InputError(f"{path} is not a valid Parquet file: {exc}") from None
    if rows == 0:
        raise InputError(f"{path} has no rows")
    return TableScan(names, rows, [])


def _open_raw(path: Path, fmt: str) -> IO[bytes]:
    return gzip.open(path, "rb") if fmt == "csv.gz" else open(path, "rb")


def _scan_plain(path: Path, fmt: str, keep_going: bool) -> TableScan | None:
    """The fast pass for files without quotes (one record per line): fields counted
    with numpy, block by block. None when the file needs the csv module."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    columns: list[str] | None = None
    width = rows = line = offset = 0
    rejected: list[Rejected] = []
    rest, unterminated = b"", False
    with _open_raw(path, fmt) as fh:
        while True:
            block = fh.read(_SCAN_BLOCK)
            if offset == 0 and b"\0" in block[:SNIFF_BYTES]:
                raise InputError(f"{path} holds binary content (NUL bytes), not CSV text")
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                if not block:
                    raise InputError(f"{path} ends in the middle of a UTF-8 character") from None
                raise InputError(
                    f"{path} is not UTF-8 text: byte 0x{exc.object[exc.start]:02x} near offset "
                    f"{offset + exc.start}; save it as UTF-8"
                ) from None
            offset += len(block)
            if b'"' in block or block.count(b"\r") != block.count(b"\r\n"):
                return None
            data = rest + block
            if block:
                cut = data.rfind(b"\n") + 1
                data, rest = data[:cut], data[cut:]
                if not data:
                    continue
            elif not data:
                break
            elif not data.endswith(b"\n"):
                data += b"\n"  # the last line has no line end
                unterminated = True
            if columns is None:
                first = data.index(b"\n")
                columns = _header(data[:first])
                width, data, line = len(columns), data[first + 1 :], 1
            rows, line = _count_fields(data, width, rows, line, rejected, keep_going)
            if rejected and not keep_going:
                break
            if not block:
                break
    if columns is None:
        raise InputError(f"{path} has no header and no rows")
    if unterminated and rejected and rejected[-1].record == line - 1:
        last = rejected[-1]
        cut = f"{last.reason} (the file ends inside this row: cut short?)"
        rejected[-1] = last._replace(reason=cut)
    return TableScan(columns, rows, rejected)


def _header(raw: bytes) -> list[str]:
    return next(csv.reader([raw.decode("utf-8").removeprefix("\ufeff").rstrip("\r")]), [])


def _count_fields(
    data: bytes, width: int, rows: int, line: int, rejected: list[Rejected], keep_going: bool
) -> tuple[int, int]:
    """Count the fields of every line in `data` (whole lines); rows with another count
    than `width` join `rejected`. Returns the rows and lines counted so far."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if not len(ends):
        return rows, line
    starts = np.concatenate(([0], ends[:-1] + 1))
    commas = np.flatnonzero(buf == 44)
    fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    carriage = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
    blank = ends - starts - carriage == 0
    bad = np.flatnonzero(~blank & (fields != width))
    if len(bad):
        numbers = rows + np.cumsum(~blank)  # each line's row number, from 1
        for i in bad[: None if keep_going else _EXAMPLES]:
            text = data[starts[i] : ends[i] - int(carriage[i])].decode("utf-8")
            reason = f"{fields[i]} fields where the header has {width}"
            rejected.append(Rejected(int(numbers[i]), line + int(i), reason, text))
    return rows + int((~blank).sum()), line + len(ends)


def _scan_quoted(path: Path, fmt: str, keep_going: bool) -> TableScan:
    """The csv module's pass, for quoted fields (which may hold commas and line ends)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(1 << 30)  # pandas takes fields of any size
    try:
        with (
            _open_raw(path, fmt) as raw,
            io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text,
        ):
            reader = csv.reader(text, strict=True)
            columns = next(reader, None)
            if columns is None:
                raise InputError(f"{path} has no header and no rows")
            width, rows, rejected = len(columns), 0, []
            for record, fields in enumerate(reader, start=1):
                if not fields:
                    continue
                rows += 1
                if len(fields) != width:
                    out = io.StringIO()
                    csv.writer(out, lineterminator="").writerow(fields)
                    reason = f"{len(fields)} fields where the header has {width}"
                    rejected.append(Rejected(rows, record, reason, out.getvalue()))
                    if not keep_going and len(rejected) >= _EXAMPLES:
                        break
    finally:
        csv.field_size_limit(limit)
    return TableScan(columns, rows, rejected)


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


def _read_guarded(
    source: Path, rows: int, skip: Sequence[Rejected] = ()
) -> Iterator[tuple[pd.DataFrame, float]]:
    """`read_chunks`, with a file that cannot be parsed reported as bad input."""
    try:
        yield from read_chunks(source, rows, skip)
    except (ValueError, OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{source}: cannot read it: {exc}") from exc


def rejected_file_for(output: Path) -> Path:
    """Where `--skip-invalid` writes the rows it set aside: OUTPUT.rejected.csv."""
    name = output.name
    for suffix in (".csv.gz", ".csv", ".parquet", ".pq"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return output.with_name(f"{name}.rejected.csv")


def _invalid_values(frame: pd.DataFrame, model: Model) -> tuple[pd.DataFrame, list[Rejected]]:
    """The rows of `frame` whose numeric features are all numbers (or missing), and
    the others, each with its first bad value as the reason."""
    bad = pd.Series(False, index=frame.index)
    reasons = pd.Series("", index=frame.index, dtype=object)
    for feature in model.features:
        name = feature["name"]
        column = frame[name]
        if feature["kind"] == "categorical" or pd.api.types.is_numeric_dtype(column):
            continue
        try:
            values = pd.to_numeric(column, errors="coerce")
        except (TypeError, ValueError):
            values = pd.Series(np.nan, index=column.index)
        wrong = values.isna() & column.notna() & ~bad
        if wrong.any():
            reasons[wrong] = [f"column {name!r}: {v!r} is not a number" for v in column[wrong]]
            bad |= wrong
    if not bad.any():
        return frame, []
    texts = frame[bad].to_csv(header=False, index=False, lineterminator="\n").splitlines()
    rejected = [
        Rejected(int(label) + 1, -1, reason, text)
        for label, reason, text in zip(frame.index[bad], reasons[bad], texts, strict=True)
    ]
    return frame[~bad], rejected


def predict_file(
    bundle: Bundle,
    source: Path,
    output: Path | None,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[int, float], None] | None = None,
    skip_invalid: bool = False,
    rejected_path: Path | None = None,
    on_chunk: Callable[[pd.DataFrame, float], pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """Predict every row of `source` into `output` (stdout as CSV when None),
    chunk by chunk. The file is checked first (see `check_table`) and the schema
    before anything is written. With `skip_invalid`, rows with the wrong number of
    fields or a numeric feature that is not a number are set aside, with the
    reason, into `rejected_path` (default: OUTPUT.rejected.csv) and the others
    predicted. `progress(rows_done, fraction_read)` hears after each chunk.
    `on_chunk(predicted, seconds)` sees each predicted chunk and the seconds its
    prediction took, and returns the frame to write (a request log adds its ids)."""
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    if skip_invalid and rejected_path is None:
        if output is None:
            raise InputError(
                "--skip-invalid writes the rows it sets aside next to the output: "
                "give -o OUTPUT (or --rejected FILE)"
            )
        rejected_path = rejected_file_for(output)
    if rejected_path is not None:
        if table_format(rejected_path) == "parquet":
            raise InputError(f"{rejected_path}: the rejected rows are written as CSV")
        taken = {source.resolve(), output.resolve() if output else None}
        if rejected_path.resolve() in taken:
            raise InputError(f"{rejected_path}: the rejected rows need a file of their own")
    scan = check_table(source, bundle.model.names, keep_going=skip_invalid)
    bundle.model.check_columns(scan.columns)
    writer = TableWriter(output)
    rejects = TableWriter(rejected_path) if skip_invalid and rejected_path else None
    set_aside = len(scan.rejected)
    started, chunks = time.perf_counter(), 0
    unseen: dict[str, int] = {}
    ok = False
    try:
        if rejects and scan.rejected:
            rejects.write(_rejected_frame(scan.rejected))
        for frame, fraction in _read_guarded(source, chunk_rows, scan.rejected):
            if skip_invalid:
                frame, found_bad = _invalid_values(frame, bundle.model)
                if found_bad and rejects:
                    rejects.write(_rejected_frame(found_bad))
                set_aside += len(found_bad)
                if frame.empty:
                    continue
            chunk_started = time.perf_counter()
            predicted, found = bundle.predict_frame(frame)
            if on_chunk is not None:
                predicted = on_chunk(predicted, time.perf_counter() - chunk_started)
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
            if set_aside:
                raise InputError(
                    f"none of the {set_aside} rows of {source} can be predicted (wrong number "
                    "of fields, or numeric features that are not numbers); nothing was written"
                )
            raise InputError(f"{source} has no rows")
        ok = True
    finally:
        writer.close(ok)
        if rejects:
            rejects.close(ok and rejects.rows > 0)
    seconds = time.perf_counter() - started
    return {
        "model": bundle.name,
        "input": str(source),
        "output": str(output) if output else None,
        "rows": writer.rows,
        "chunks": chunks,
        "seconds": round(seconds, 3),
        "rows_per_s": round(writer.rows / seconds) if seconds > 0 else None,
        "ignored_columns": [c for c in scan.columns if c not in bundle.model.names],
        "unseen_categories": unseen,
        "rejected": set_aside,
        "rejected_file": str(rejected_path) if rejects and set_aside else None,
    }


def _rejected_frame(rows: Sequence[Rejected]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": [r.row for r in rows],
            "reason": [r.reason for r in rows],
            "record": [r.text for r in rows],
        }
    )


# --- serving --------------------------------------------------------------------------


def frame_from_json(payload: Any) -> pd.DataFrame:
    """Rows from a request body: {"rows": [{...}, ...]}, a bare list of row objects,
    or {"columns": {"name": [values...], ...}}. Values must be numbers, strings,
    booleans or null."""
    return pd.DataFrame.from_records(rows_from_json(payload))


def rows_from_json(payload: Any) -> list[dict[str, Any]]:
    """The row objects of a decoded request body, checked (see `frame_from_json`);
    the prediction log's writer reads logged bodies back with it."""
    if isinstance(payload, dict) and "rows" in payload:
        payload = payload["rows"]
        if not isinstance(payload, list):
            raise InputError('"rows" must be a list of row objects')
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
        if not row:
            raise InputError(f"row {i + 1} is empty: it has no columns")
        for key, value in row.items():
            if not (value is None or isinstance(value, str | int | float | bool)):
                raise InputError(
                    f"row {i + 1}, column {key!r}: a {type(value).__name__} is not a value; "
                    "expected a number, a string, a boolean or null"
                )
    return rows


def _json_values(values: np.ndarray) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]


class _Refused(ValueError):
    """A JSON body that parses but holds what no request may (non-finite numbers,
    duplicate keys)."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else f"{text[:20]}…"
        raise _Refused(f"the number {shown} is out of range (beyond ±1.8e308)")
    return value


def _bounded_int(text: str) -> int | float:
    # Beyond 64 bits an integer is a float to the model anyway; one too large for a
    # float (or longer than Python converts) is refused.
    return int(text) if len(text) <= 18 else _finite(text)


def _no_constant(name: str) -> float:
    raise _Refused(f"{name} is not a number a request may hold; send null for a missing value")


def _unique_request_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return found


def decode_body(body: bytes) -> Any:
    """A request body as JSON, strictly: UTF-8, finite numbers, unique keys."""
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the request body is not UTF-8: byte 0x{body[exc.start]:02x} at offset {exc.start}"
        ) from None
    if not text.strip():
        raise InputError("the request body is empty; send JSON rows")
    try:
        return json.loads(
            text,
            parse_float=_finite,
            parse_int=_bounded_int,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_request_keys,
        )
    except _Refused as exc:
        raise InputError(str(exc)) from None
    except RecursionError:
        raise InputError("the request body is nested too deeply") from None
    except ValueError as exc:
        raise InputError(f"the request body is not JSON: {exc}") from None


def predict_json(
    bundle: Bundle, payload: Any, seen: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The /predict response for a decoded request body (bytes are decoded first).
    `seen`, when given, receives the rows ("frame"), "predictions" and
    "probabilities" for a request log."""
    if isinstance(payload, bytes | bytearray):
        payload = decode_body(bytes(payload))
    frame = frame_from_json(payload)
    names = set(bundle.model.names)
    unknown = [str(c) for c in frame.columns if c not in names]
    if unknown:
        shown = ", ".join(repr(c[:40]) for c in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise InputError(
            f"unknown columns: {shown}; the model's features are {', '.join(bundle.model.names)}"
        )
    _refuse_non_finite(frame, bundle.model)
    pred, proba, unseen = bundle.model.run(frame)
    if seen is not None:
        seen.update(frame=frame, predictions=pred, probabilities=proba)
    return {
        "model": bundle.name,
        "predictions": _json_values(pred),
        "classes": bundle.model.classes,
        "probabilities": None if proba is None else np.asarray(proba, dtype=float).tolist(),
        "unseen_categories": unseen,
    }


def _refuse_non_finite(frame: pd.DataFrame, model: Model) -> None:
    """Numbers sent as text ("inf", "1e999") are converted like the others; a request
    may not hold infinite ones that way either."""
    for feature in model.features:
        name = feature["name"]
        if feature["kind"] == "categorical" or name not in frame.columns:
            continue
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            continue
        try:
            values = pd.to_numeric(column, errors="coerce").astype("float64")
        except (TypeError, ValueError):
            continue  # the model's own conversion says what is wrong
        infinite = np.flatnonzero(np.isinf(values.to_numpy()))
        if len(infinite):
            at = int(infinite[0])
            raise InputError(
                f"row {at + 1}, column {name!r}: {column.iloc[at]!r} is not a finite number"
            )


DEFAULT_MAX_REQUEST_MB = 8
DEFAULT_MAX_IN_FLIGHT = 4
MAX_REQUEST_ENV = "WORKBENCH_MAX_REQUEST_MB"
MAX_IN_FLIGHT_ENV = "WORKBENCH_MAX_IN_FLIGHT"
BODY_TIMEOUT_S = 60.0
RETRY_AFTER_S = 1


def serve_limits(
    max_request_mb: float | None = None, max_in_flight: int | None = None
) -> tuple[int, int]:
    """(largest request body in bytes, requests predicted at once): the arguments,
    else the environment's WORKBENCH_MAX_REQUEST_MB / WORKBENCH_MAX_IN_FLIGHT, else
    the defaults."""

    def setting(value: Any, env: str, default: float, kind: type) -> Any:
        if value is None:
            raw = os.environ.get(env)
            try:
                value = kind(raw) if raw not in (None, "") else default
            except ValueError:
                raise InputError(f"{env}={raw!r}: expected a number") from None
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise InputError(f"{env.lower().removeprefix('workbench_')}: must be above 0")
        return value

    megabytes = setting(max_request_mb, MAX_REQUEST_ENV, DEFAULT_MAX_REQUEST_MB, float)
    in_flight = setting(max_in_flight, MAX_IN_FLIGHT_ENV, DEFAULT_MAX_IN_FLIGHT, int)
    return max(int(megabytes * (1 << 20)), 1), int(in_flight)


Recorder = Callable[[dict[str, Any]], None]


def make_app(
    bundle: Bundle,
    *,
    max_request_bytes: int | None = None,
    max_in_flight: int | None = None,
    recorder: Recorder | None = None,
) -> Any:
    """The Starlette app: GET /health, GET /metadata, POST /predict.

    A request body is read as it streams in and refused (413) once it passes
    `max_request_bytes`, before it is parsed; at most `max_in_flight` predictions
    run at once, and a request beyond them gets 503 with Retry-After. Bad input of
    any kind gets a 4xx with the reason, never a 500.

    With a `recorder`, every /predict request gets an id, returned in the
    X-Request-Id header and as "request_id" in a 200 body, and the recorder hears
    of it once answered: {"request_id", "ts", "status", "latency_s", "error",
    "frame", "predictions", "probabilities", "classes", "model", "body",
    "response"} ("body" and "response" are the request's and the answer's bytes,
    for a recorder that hands bytes to another process rather than objects to a
    thread). It is called on the event loop, so it must only hand the record on
    (a bounded queue, a non-blocking pipe); what it raises is logged once and
    never reaches the client."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    limit_bytes, limit_flight = serve_limits()
    limit_bytes = max_request_bytes or limit_bytes
    limit_flight = max_in_flight or limit_flight
    busy = {"now": 0}
    warned = {"recorder": False}

    def problem(status: int, message: str, **headers: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers or None)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": bundle.name})

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse(bundle.metadata())

    def refuse_headers(request: Request) -> JSONResponse | None:
        kind = request.headers.get("content-type")
        if kind is not None:
            media, _, params = kind.partition(";")
            media = media.strip().lower()
            if media != "application/json" and not media.endswith("+json"):
                return problem(
                    415,
                    f"Content-Type {media[:60]!r} is not JSON; send the rows as application/json",
                )
            for param in params.split(";"):
                key, _, value = param.strip().partition("=")
                charset = value.strip().strip('"').lower()
                if key.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
                    return problem(415, f"charset {charset[:30]!r}: the body must be UTF-8")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit_bytes:
            return problem(
                413,
                f"the request body ({int(length):,} bytes) is larger than the limit of "
                f"{limit_bytes:,} bytes (raise it with --max-request-mb)",
            )
        return None

    async def read_body(request: Request) -> bytes | JSONResponse:
        body = bytearray()
        async with asyncio.timeout(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                if len(body) + len(chunk) > limit_bytes:
                    return problem(
                        413,
                        f"the request body is larger than the limit of {limit_bytes:,} bytes "
                        "(raise it with --max-request-mb)",
                    )
                body += chunk
        return bytes(body)

    async def predict(request: Request) -> JSONResponse:
        if recorder is None:
            return await answer(request, None)
        seen: dict[str, Any] = {"request_id": uuid.uuid4().hex, "ts": time.time()}
        started = time.perf_counter()
        response = await answer(request, seen)
        latency = time.perf_counter() - started
        response.headers["X-Request-Id"] = seen["request_id"]
        error = None
        if response.status_code >= 400:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                error = json.loads(bytes(response.body))["error"]
        record = {
            "status": response.status_code,
            "latency_s": latency,
            "error": error,
            "classes": bundle.model.classes,
            "model": bundle.name,
            "frame": None,
            "predictions": None,
            "probabilities": None,
            "body": None,
            "response": response.body,
            **seen,
        }
        try:
            recorder(record)
        except Exception:  # noqa: BLE001 - the log never costs a client its answer
            if not warned["recorder"]:
                warned["recorder"] = True
                log.exception("the request log failed; requests are still answered")
        return response

    async def answer(request: Request, seen: dict[str, Any] | None) -> JSONResponse:
        if busy["now"] >= limit_flight:
            return problem(
                503,
                f"busy: {limit_flight} requests are being predicted; retry in a moment",
                **{"Retry-After": str(RETRY_AFTER_S)},
            )
        busy["now"] += 1
        try:
            refused = refuse_headers(request)
            if refused is not None:
                return refused
            try:
                body = await read_body(request)
            except TimeoutError:
                return problem(408, f"the request body took longer than {BODY_TIMEOUT_S:g} s")
            except ClientDisconnect:
                return problem(400, "the client went away before the body was complete")
            if isinstance(body, JSONResponse):
                return body
            if seen is not None:
                seen["body"] = body
            try:
                result = await run_in_threadpool(predict_json, bundle, body, seen)
            except InputError as exc:
                return problem(422, str(exc))
            except (ValueError, TypeError, OverflowError) as exc:  # the model refused the rows
                first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
                return problem(422, f"cannot predict these rows: {first}")
            if seen is not None:
                result["request_id"] = seen["request_id"]
            return JSONResponse(result)
        finally:
            busy["now"] -= 1

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
    bundle: Bundle,
    host: str = "127.0.0.1",
    port: int = 8080,
    say: Callable[[str], None] | None = None,
    *,
    max_request_mb: float | None = None,
    max_in_flight: int | None = None,
    recorder: Recorder | None = None,
) -> None:
    """Serve `bundle` over HTTP until interrupted. Loopback by default: the server
    has no authentication, so another host is allowed only with a warning.
    `max_request_mb` and `max_in_flight` bound each request body and the requests
    predicted at once (see `serve_limits` for the defaults). What it has to say
    goes to the `wb_runtime` logger, or to `say` when given (a caller that shows
    it its own way)."""
    _need("serving", "starlette", "uvicorn")
    import uvicorn

    limit_bytes, limit_flight = serve_limits(max_request_mb, max_in_flight)
    sock = bind(host, port)
    if not is_loopback(host):
        (say or log.warning)(
            f"warning: listening on {host}, reachable from other machines; the server has no "
            "authentication, so put it behind something that has"
        )
    actual = sock.getsockname()[1]
    (say or log.info)(
        f"serving {bundle.name} on http://{host}:{actual} "
        "(GET /health, GET /metadata, POST /predict); requests up to "
        f"{limit_bytes / (1 << 20):g} MB, {limit_flight} at a time"
    )
    app = make_app(
        bundle, max_request_bytes=limit_bytes, max_in_flight=limit_flight, recorder=recorder
    )
    config = uvicorn.Config(app, host=host, port=actual, log_level="info")
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
    batch.add_argument(
        "--skip-invalid",
        action="store_true",
        help="predict the valid rows; write the others with the reason to OUTPUT.rejected.csv",
    )
    batch.add_argument("--rejected", type=Path, help="where --skip-invalid writes rejected rows")
    web = commands.add_parser("serve", help="serve the model over HTTP")
    web.add_argument("bundle", type=Path)
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8080)
    web.add_argument(
        "--max-request-mb",
        type=float,
        help=f"largest request body (default: ${MAX_REQUEST_ENV} or {DEFAULT_MAX_REQUEST_MB})",
    )
    web.add_argument(
        "--max-in-flight",
        type=int,
        help=f"requests predicted at once (default: ${MAX_IN_FLIGHT_ENV} or "
        f"{DEFAULT_MAX_IN_FLIGHT})",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            result = verify(args.bundle)
            for problem in result["problems"]:
                _stderr(f"refused: {problem}")
            if result["ok"]:
                _stderr(f"ok: {result['files']} files match {args.bundle}/{MANIFEST}")
                _stderr(f"signature: {describe_signature(result['signature'])}")
            return 0 if result["ok"] else 1
        bundle = load(args.bundle)
        if args.command == "predict":
            summary = predict_file(
                bundle,
                args.input,
                args.output,
                skip_invalid=args.skip_invalid,
                rejected_path=args.rejected,
            )
            _stderr(json.dumps({k: v for k, v in summary.items() if v is not None}))
        else:
            logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
            serve(
                bundle,
                args.host,
                args.port,
                max_request_mb=args.max_request_mb,
                max_in_flight=args.max_in_flight,
            )
    except BundleRuntimeError as exc:
        _stderr(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
