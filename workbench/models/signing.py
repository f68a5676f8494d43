"""Signed exports: each store has an Ed25519 signing key, and trusts the public
keys put in its `trusted_keys/` folder.

An export's `manifest.sig` signs the exact bytes of its `manifest.json`, which
holds the SHA-256 of every other file, so the signature covers the whole bundle.
`workbench model verify` says who signed; `predict` and `serve` load only bundles
signed by this store or a trusted key unless told `--trust`.

    $WORKBENCH_HOME/keys/signing.key        the private key (PKCS#8 PEM, mode 0600)
    $WORKBENCH_HOME/trusted_keys/NAME.pub   `workbench-ed25519 <base64 key> NAME`

The checking itself lives in the runtime (`bundle_runtime.verify`), which a bundle
carries without Workbench; this module holds the keys.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from workbench.core import paths
from workbench.core.errors import UsageError, WorkbenchError
from workbench.models import bundle_runtime

KEYS_DIR = "keys"
KEY_FILE = "signing.key"
TRUSTED_DIR = "trusted_keys"
KEY_KIND = "workbench-ed25519"
THIS_STORE = "this store"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_PUBLIC_FILE = 4096


def key_path() -> Path:
    return paths.home() / KEYS_DIR / KEY_FILE


def trusted_dir() -> Path:
    return paths.home() / TRUSTED_DIR


def _private_key() -> Any:
    """The store's signing key, made (mode 0600) on first use."""
    from cryptography.hazmat.primitives import serialization

    path = key_path()
    if not path.exists():
        _create_key(path)
    mode = path.stat().st_mode
    if mode & 0o077:
        raise WorkbenchError(
            f"{path} can be read by other users (mode {stat.S_IMODE(mode):o}); "
            f"`chmod 600 {path}` before it signs anything"
        )
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise WorkbenchError(f"{path} is not a signing key ({exc})") from exc


def _create_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Not files.atomic_write_bytes: it would replace a key; os.link below never does.
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process made one first
            os.link(staging, path)  # never replaces a key
    finally:
        staging.unlink(missing_ok=True)


def _raw_public(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def own_fingerprint() -> str | None:
    """This store's key's fingerprint, or None while it has none (none is made)."""
    if not key_path().exists():
        return None
    return bundle_runtime.key_fingerprint(_raw_public(_private_key().public_key()))


def public_key_line(name: str | None = None) -> str:
    """This store's public key as one line, for another store's `keys import`."""
    raw = _raw_public(_private_key().public_key())
    label = name or _default_name()
    return f"{KEY_KIND} {base64.b64encode(raw).decode()} {label}\n"


def _default_name() -> str:
    import socket

    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()) or "workbench"
    return f"{host}"[:64]


def sign_folder(folder: Path) -> dict[str, Any]:
    """Write `folder`/manifest.sig over the exact bytes of its manifest.json."""
    key = _private_key()
    manifest = (folder / bundle_runtime.MANIFEST).read_bytes()
    raw = _raw_public(key.public_key())
    document = {
        "algorithm": "ed25519",
        "signed": bundle_runtime.MANIFEST,
        "public_key": base64.b64encode(raw).decode(),
        "fingerprint": bundle_runtime.key_fingerprint(raw),
        "signature": base64.b64encode(key.sign(manifest)).decode(),
    }
    (folder / bundle_runtime.SIGNATURE).write_text(json.dumps(document, indent=2) + "\n")
    return document


def parse_public_key(text: str, source: str) -> tuple[bytes, str | None]:
    """(raw key, its label) from a `workbench-ed25519 <base64> [label]` line."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    parts = lines[0].split() if len(lines) == 1 else []
    if len(parts) not in (2, 3) or parts[0] != KEY_KIND:
        raise UsageError(
            f"{source}: expected one line `{KEY_KIND} <base64 key> [name]`, "
            "as `workbench keys export` writes"
        )
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except ValueError as exc:
        raise UsageError(f"{source}: the key is not base64 ({exc})") from exc
    if len(raw) != 32:
        raise UsageError(f"{source}: an Ed25519 public key is 32 bytes, this one {len(raw)}")
    return raw, parts[2] if len(parts) == 3 else None


def trusted_keys() -> list[dict[str, Any]]:
    """The keys this store trusts: name, fingerprint, file (and error, for a bad file)."""
    folder = trusted_dir()
    found = []
    for path in sorted(folder.glob("*.pub")) if folder.is_dir() else []:
        entry: dict[str, Any] = {"name": path.stem, "file": str(path)}
        try:
            if path.stat().st_size > _MAX_PUBLIC_FILE:
                raise UsageError(f"{path}: larger than a public key file")
            raw, _ = parse_public_key(path.read_text(errors="replace"), str(path))
            entry["fingerprint"] = bundle_runtime.key_fingerprint(raw)
        except (UsageError, OSError) as exc:
            entry["error"] = getattr(exc, "message", str(exc))
        found.append(entry)
    return found


def import_key(file: Path, name: str | None = None) -> dict[str, Any]:
    """Trust the public key in `file` under `name` (default: its label, else the
    file's name). Importing a key already trusted changes nothing."""
    if not file.is_file():
        raise UsageError(f"{file}: no such file")
    if file.stat().st_size > _MAX_PUBLIC_FILE:
        raise UsageError(f"{file}: larger than a public key file ({_MAX_PUBLIC_FILE} bytes)")
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{file}: cannot read it as text ({exc})") from exc
    raw, label = parse_public_key(text, str(file))
    chosen = name or label or file.stem.removesuffix(".pub")
    if not _NAME.fullmatch(chosen):
        raise UsageError(
            f"key name {chosen!r}: expected 1-64 letters, digits, '.', '_' or '-' "
            "(give one with --name)"
        )
    fingerprint = bundle_runtime.key_fingerprint(raw)
    for entry in trusted_keys():
        if entry.get("fingerprint") == fingerprint:
            return {"name": entry["name"], "fingerprint": fingerprint, "imported": False}
        if entry["name"] == chosen:
            raise UsageError(
                f"a different key is trusted as {chosen!r} already; pick another --name"
            )
    folder = trusted_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{chosen}.pub"
    # Not files.atomic_write_text, which adds an fsync this write never had.
    staging = folder / f".{chosen}.pub.{os.getpid()}"
    staging.write_text(f"{KEY_KIND} {base64.b64encode(raw).decode()} {chosen}\n")
    os.replace(staging, target)
    return {"name": chosen, "fingerprint": fingerprint, "imported": True}


def signer(signature: dict[str, Any]) -> dict[str, Any]:
    """Who signed a verified bundle, from `bundle_runtime.verify`'s `signature`:
    {"signer": "this store" | "trusted key NAME" | "unknown signer" | "unsigned" |
    "invalid signature", "trusted": bool, "fingerprint"}."""
    status = signature.get("status")
    fingerprint = signature.get("fingerprint")
    if status == "unsigned":
        return {"signer": "unsigned", "trusted": False, "fingerprint": None}
    if status != "valid":
        return {"signer": "invalid signature", "trusted": False, "fingerprint": fingerprint}
    if fingerprint == own_fingerprint():
        return {"signer": THIS_STORE, "trusted": True, "fingerprint": fingerprint}
    for entry in trusted_keys():
        if entry.get("fingerprint") == fingerprint:
            name = entry["name"]
            return {"signer": f"trusted key {name}", "trusted": True, "fingerprint": fingerprint}
    return {"signer": "unknown signer", "trusted": False, "fingerprint": fingerprint}


def refusal(who: dict[str, Any]) -> str:
    """Why `predict` / `serve` will not load a bundle from `who`."""
    if who["signer"] == "unsigned":
        return "it is unsigned, so where it comes from is unknown"
    return (
        f"it is signed by {who['fingerprint']}, neither this store's key nor a trusted one "
        "(`workbench keys import FILE` trusts its maker's public key)"
    )
