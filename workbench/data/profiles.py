"""Drift profiles of dataset versions, kept as files in the store folder.

A version's profile (`workbench.data.drift.reference_profile` of the file) is
computed when the version is added (`data add`, the watcher's intake), so that
the first `data drift` against it reads the profile instead of reading and
summarising the reference. The file is named by the content's SHA-256 and the
profile format's version (`cache/drift-profiles/<sha256>.v<N>.json`), and holds
both keys again: a profile is used only when its file parses and both keys
match; anything else (missing, cut short, edited, another format) is computed
again and rewritten. It is a cache: a backup leaves it out, and deleting the
folder costs only the time to compute the profiles again.

pandas is imported only to compute a profile: listing versions stays light.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from workbench.core import paths
from workbench.core.files import atomic_write_text

# A profile of a 1M-row, 20-column table is about 0.5 MB; far larger than this
# is not a profile this code wrote.
MAX_BYTES = 256 << 20


def profile_version() -> int:
    from workbench.data.drift.profile import PROFILE_VERSION

    return PROFILE_VERSION


def profile_file(sha256: str) -> Path:
    """Where the profile of the content with this SHA-256 is kept."""
    return paths.home() / "cache" / "drift-profiles" / f"{sha256}.v{profile_version()}.json"


def load(sha256: str) -> dict[str, Any] | None:
    """The stored profile of this content, or None when there is none that can be
    trusted: missing, unreadable, too large, not JSON, or keyed otherwise."""
    path = profile_file(sha256)
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        document = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    version = profile_version()
    if not (
        isinstance(document, dict)
        and document.get("sha256") == sha256
        and document.get("profile_version") == version
    ):
        return None
    profile = document.get("profile")
    if not (
        isinstance(profile, dict)
        and profile.get("version") == version
        and isinstance(profile.get("columns"), dict)
    ):
        return None
    return profile


def save(sha256: str, profile: dict[str, Any]) -> None:
    """Keep the profile for later checks; a store folder that cannot be written
    only means it is computed again next time."""
    path = profile_file(sha256)
    document = {"sha256": sha256, "profile_version": profile["version"], "profile": profile}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(document, separators=(",", ":")))


def compute(path: Path) -> dict[str, Any]:
    """The drift profile of a data file; `reading.Malformed` when it cannot be read."""
    from workbench.data.drift import reference_profile
    from workbench.data.reading import read_checked

    return reference_profile(read_checked(path))


def profile_for(sha256: str, path: Path) -> dict[str, Any]:
    """The profile of `path`, whose content has this SHA-256: the stored one when
    it can be trusted, else computed now and stored."""
    found = load(sha256)
    if found is not None:
        return found
    profile = compute(path)
    save(sha256, profile)
    return profile


def ensure(sha256: str, path: Path) -> bool:
    """Compute and store the profile of a version being added, unless it is
    stored already; returns whether the version has a profile now.

    Adding a version never fails for its profile: a file that cannot be read as
    a table, or whose profile cannot be computed, is still a version (validation
    and drift say what is wrong with it when they read it), and drift computes
    the profile itself should the file become a reference."""
    try:
        profile_for(sha256, path)
    except Exception:  # noqa: BLE001 - see above: drift reports it, with the reason
        return False
    return True
