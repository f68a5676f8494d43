"""Hostile model bundles.

Every case is a bundle (folder or .zip) someone could hand over: paths that leave
the bundle, links, duplicate or missing or extra files, changed hashes, broken
or huge manifests, zip bombs, crafted skops and LightGBM model files, and bad
signatures. `workbench model verify` refuses each with exit 1 and one line per
reason (exit 2 for a bad limit setting), no traceback; loading it (what
`predict` and `serve` do, even with --trust) refuses it too; the user's files
are unchanged and nothing is extracted anywhere.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from bundle_craft import (
    lightgbm_payloads,
    lightgbm_text,
    skops_file,
    skops_payloads,
    tree_digest,
    write_bundle,
    zip_bundle,
)
from wbtest import wb_inprocess as wb  # verifying starts no process: run it in this one

from workbench.core.errors import WorkbenchError
from workbench.models.bundle import load_bundle

Build = Callable[[Path], Path]


def _base(root: Path, framework: str = "lightgbm", model: bytes | str | None = None) -> Path:
    return write_bundle(root / "bundle", model if model is not None else lightgbm_text(),
                        framework=framework)  # fmt: skip


def _zip_with(extra: dict[str, bytes]) -> Build:
    def build(root: Path) -> Path:
        return zip_bundle(_base(root), root / "bundle.zip", extra)

    return build


def _listed_escape(name: str) -> Build:
    """The worst case: the manifest lists the escaping member with its true hash."""

    def build(root: Path) -> Path:
        folder = _base(root)
        payload = b"escaped\n"
        manifest = json.loads((folder / "manifest.json").read_text())
        import hashlib

        manifest["files"][name] = {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": 8}
        (folder / "manifest.json").write_text(json.dumps(manifest))
        return zip_bundle(folder, root / "bundle.zip", {name: payload})

    return build


def _zip_member_attr(name: str, mode: int) -> Build:
    def build(root: Path) -> Path:
        archive = zip_bundle(_base(root), root / "bundle.zip")
        with zipfile.ZipFile(archive, "a") as opened:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            opened.writestr(info, "/etc/passwd")
        return archive

    return build


def _zip_duplicate(root: Path) -> Path:
    archive = zip_bundle(_base(root), root / "bundle.zip")
    with pytest.warns(UserWarning), zipfile.ZipFile(archive, "a") as opened:
        opened.writestr("model.txt", "tree\n")
    return archive


def _zip_flagged(root: Path) -> Path:
    """README.md's entry claims to be encrypted."""
    archive = zip_bundle(_base(root), root / "bundle.zip")
    data = bytearray(archive.read_bytes())
    at = _central_entry(data, b"README.md")
    data[at + 8] |= 0x1
    archive.write_bytes(bytes(data))
    return archive


def _zip_bzip2(root: Path) -> Path:
    folder = _base(root)
    path = root / "bundle.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as archive:
        for file in sorted(folder.rglob("*")):
            archive.write(file, file.relative_to(folder).as_posix())
    return path


def _central_entry(data: bytearray, name: bytes) -> int:
    return next(
        i
        for i in range(len(data))
        if data[i : i + 4] == b"PK\x01\x02" and data[i + 46 : i + 46 + len(name)] == name
    )


def _folder(change: Callable[[Path], None], zipped: bool = False) -> Build:
    def build(root: Path) -> Path:
        folder = _base(root)
        change(folder)
        return zip_bundle(folder, root / "bundle.zip") if zipped else folder

    return build


def _manifest(change: Callable[[dict], object], raw: bytes | None = None) -> Build:
    """The manifest changed; the signature is left as it was (so it no longer matches)."""

    def edit(folder: Path) -> None:
        if raw is not None:
            (folder / "manifest.json").write_bytes(raw)
            return
        document = json.loads((folder / "manifest.json").read_text())
        change(document)
        (folder / "manifest.json").write_text(json.dumps(document))

    return _folder(edit)


def _model(
    data: bytes | str | Callable[[], bytes | str], framework: str = "lightgbm", zipped: bool = True
) -> Build:
    """A crafted model file, hashed and signed by this very store: only the
    model checks stand in its way. `data` may be a function that makes the file,
    called when the case is built: each xdist worker imports this module to
    collect it, and only the one that runs a case should pay for making it."""

    def build(root: Path) -> Path:
        folder = _base(root, framework, data() if callable(data) else data)
        return zip_bundle(folder, root / "bundle.zip") if zipped else folder

    return build


def _unlink(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)

    return write


def _symlink_file(folder: Path) -> None:
    target = folder.parent / "outside.txt"
    target.write_text("# a test bundle\n")
    (folder / "README.md").unlink()
    (folder / "README.md").symlink_to(target)


def _symlink_dir(folder: Path) -> None:
    outside = folder.parent / "outside"
    outside.mkdir()
    (folder / "docs").symlink_to(outside)


def _bundle_is_link(root: Path) -> Path:
    (root / "link").symlink_to(_base(root))
    return root / "link"


def _signature(document: dict | bytes) -> Callable[[Path], None]:
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    return _write("manifest.sig", data)


def _forged_key(folder: Path) -> None:
    """The signature names another key than the one that signed."""
    import base64

    sig = json.loads((folder / "manifest.sig").read_text())
    sig["public_key"] = base64.b64encode(bytes(range(32))).decode()
    (folder / "manifest.sig").write_text(json.dumps(sig))


def _bomb(member: str, megabytes: int) -> Build:
    """`member` (replaced, if the bundle has it) as `megabytes` MB of zeros."""

    def build(root: Path) -> Path:
        folder = _base(root)
        (folder / member).unlink(missing_ok=True)
        archive = zip_bundle(folder, root / "bundle.zip")
        block = bytes(1 << 20)
        with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as opened:
            info = zipfile.ZipInfo(member)
            info.compress_type = zipfile.ZIP_DEFLATED
            with opened.open(info, "w", force_zip64=True) as out:
                for _ in range(megabytes):
                    out.write(block)
        return archive

    return build


def _many_members(root: Path) -> Path:
    archive = zip_bundle(_base(root), root / "bundle.zip")
    with zipfile.ZipFile(archive, "a") as opened:
        for i in range(10_001):
            opened.writestr(f"f/{i}", b"")
    return archive


def _truncated(root: Path) -> Path:
    """A stretch cut out of the middle: the central directory points past the data."""
    archive = zip_bundle(_base(root), root / "bundle.zip")
    data = archive.read_bytes()
    archive.write_bytes(data[:1000] + data[3000:])
    return archive


def _corrupt_deflate(root: Path) -> Path:
    """wb_runtime.py's compressed bytes damaged (its CRC and hash would differ)."""
    archive = zip_bundle(_base(root), root / "bundle.zip")
    data = bytearray(archive.read_bytes())
    start = data.index(b"wb_runtime.py") + len("wb_runtime.py") + 200
    data[start : start + 64] = bytes(64)
    archive.write_bytes(bytes(data))
    return archive


def _not_a_bundle(root: Path) -> Path:
    (root / "notes.txt").write_text("hello\n")
    return root / "notes.txt"


def _skops_bomb() -> bytes:
    """A skops file whose schema.json inflates to 600 MB of spaces."""
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("schema.json")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as out:
            for _ in range(600):
                out.write(b" " * (1 << 20))
    return buffer.getvalue()


def _skops_without_schema() -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("other.json", "{}")
    return buffer.getvalue()


_SKOPS = skops_payloads(Path(tempfile.gettempdir()) / "wb-hostile-marker-never-written")


def _lgbm(case: str) -> Callable[[], str]:
    """The crafted LightGBM text of `case`, made (training a small model) when first built."""
    return lambda: _lightgbm_payloads()[case][0]


_lightgbm_payloads = functools.cache(lightgbm_payloads)

# id -> (how to build it, a piece of the one-line reason, exit code, extra environment)
CASES: dict[str, tuple[Build, str, int, dict[str, str]]] = {
    "zip member ../": (_listed_escape("../escaped.txt"), "path leaving the bundle", 1, {}),
    "zip member a/../../": (_listed_escape("a/../../x.txt"), "path leaving the bundle", 1, {}),
    "zip member absolute": (_listed_escape("/tmp/escaped.txt"), "absolute path", 1, {}),
    "zip member backslash": (_listed_escape("..\\escaped.txt"), "backslash", 1, {}),
    "zip member drive letter": (_listed_escape("C:/escaped.txt"), "absolute path", 1, {}),
    "zip member not normalised": (_listed_escape("./x/./y.txt"), "not normalised", 1, {}),
    "zip member NUL": (_zip_with({"a\0b.txt": b"x"}), "extra file not in the manifest: a", 1, {}),
    "zip symlink member": (_zip_member_attr("notes.txt", 0o120777), "symbolic link", 1, {}),
    "zip duplicate names": (_zip_duplicate, "appears twice", 1, {}),
    "zip encrypted member": (_zip_flagged, "encrypted", 1, {}),
    "zip bzip2 members": (_zip_bzip2, "compression method", 1, {}),
    "zip truncated": (_truncated, "unreadable", 1, {}),
    "zip damaged deflate data": (_corrupt_deflate, "wb_runtime.py", 1, {}),
    "zip bomb model": (_bomb("model.txt", 300), "zip bomb", 1, {}),
    "zip bomb extra member": (_bomb("wheels/x.whl", 300), "zip bomb", 1, {}),
    "zip 10001 members": (_many_members, "more than 10000", 1, {}),
    "zip extra member": (_zip_with({"sitecustomize.py": b"print(1)\n"}), "extra file", 1, {}),
    "folder symlinked file": (_folder(_symlink_file), "symbolic link: README.md", 1, {}),
    "folder symlinked dir": (_folder(_symlink_dir), "symbolic link: docs", 1, {}),
    "bundle path is a symlink": (_bundle_is_link, "is a symbolic link", 1, {}),
    "not a bundle": (_not_a_bundle, "neither a bundle folder nor a .zip", 1, {}),
    "missing file": (_folder(_unlink("README.md")), "missing file: README.md", 1, {}),
    "missing manifest": (_folder(_unlink("manifest.json"), True), "no manifest.json", 1, {}),
    "extra file": (_folder(_write("sitecustomize.py", b"x")), "extra file", 1, {}),
    "extra pycache": (
        _folder(_write("__pycache__/wb_runtime.cpython-311.pyc", b"x")),
        "PYTHONDONTWRITEBYTECODE",
        1,
        {},
    ),
    "changed model": (_folder(_write("model.txt", b"tree\n")), "changed file: model.txt", 1, {}),
    "changed size": (_folder(_write("README.md", b"# x\n")), "the manifest says", 1, {}),
    "file over the size limit": (
        _folder(_write("big.bin", os.urandom(2 << 20))),
        "WORKBENCH_MAX_FILE_MB",
        1,
        {"WORKBENCH_MAX_FILE_MB": "1"},
    ),
    "size limit not a number": (
        _folder(lambda f: None),
        "WORKBENCH_MAX_FILE_MB",
        2,
        {"WORKBENCH_MAX_FILE_MB": "-3"},
    ),  # fmt: skip
    "manifest not JSON": (_manifest(None, b"{not json"), "manifest.json is unreadable", 1, {}),
    "manifest a list": (_manifest(None, b"[1, 2]"), "no 'files' table", 1, {}),
    "manifest huge": (
        _manifest(None, b'{"pad": "' + b"x" * (17 << 20) + b'"}'),
        "over the 16.0 MB",
        1,
        {},
    ),
    "manifest nested deep": (_manifest(None, b"[" * 100_000), "nested too deeply", 1, {}),
    "manifest duplicate key": (
        _manifest(None, b'{"files": {}, "files": {}}'),
        "appears twice",
        1,
        {},
    ),
    "manifest files a list": (_manifest(lambda m: m.update(files=[])), "no 'files'", 1, {}),
    "manifest hash not hex": (
        _manifest(lambda m: m["files"]["README.md"].update(sha256="zz" * 32)),
        "64 hex digits",
        1,
        {},
    ),
    "manifest entry a string": (
        _manifest(lambda m: m["files"].update({"README.md": "abc"})),
        "expected {",
        1,
        {},
    ),
    "manifest lists itself": (
        _manifest(lambda m: m["files"].update({"manifest.json": {"sha256": "0" * 64}})),
        "cannot list manifest.json",
        1,
        {},
    ),
    "manifest lists its signature": (
        _manifest(lambda m: m["files"].update({"manifest.sig": {"sha256": "0" * 64}})),
        "cannot list manifest.sig",
        1,
        {},
    ),
    "manifest 10001 files": (
        _manifest(lambda m: m["files"].update({f"f{i}": {} for i in range(10_001)})),
        "more than 10000",
        1,
        {},
    ),
    "manifest future format": (_manifest(lambda m: m.update(bundle_format=99)), "format 99", 1, {}),
    "manifest format a string": (
        _manifest(lambda m: m.update(bundle_format="1")),
        "bundle format '1'",
        1,
        {},
    ),
    "manifest no model file": (
        _manifest(lambda m: m.update(model_file="x")),
        "no model file",
        1,
        {},
    ),  # fmt: skip
    "manifest framework pickle": (
        _manifest(lambda m: m.update(framework="pickle")),
        "framework 'pickle'",
        1,
        {},
    ),
    "manifest features wrong": (_manifest(lambda m: m.update(features="a,b")), "features", 1, {}),
    "manifest feature kind": (
        _manifest(lambda m: m["features"][0].update(kind="python")),
        "feature 1",
        1,
        {},
    ),
    "manifest classes not a list": (
        _manifest(lambda m: m["target"].update(classes={"a": 1})),
        "target classes",
        1,
        {},
    ),
    "signature tampered manifest": (
        _manifest(lambda m: m.update(metrics={"r2": 1.0})),
        "signature does not match",
        1,
        {},
    ),
    "signature garbage": (_folder(_signature(b"\x00\xff")), "not a signature", 1, {}),
    "signature short key": (
        _folder(_signature({"algorithm": "ed25519", "public_key": "AAAA", "signature": "AAAA"})),
        "32 bytes",
        1,
        {},
    ),
    "signature rsa": (
        _folder(_signature({"algorithm": "rsa", "public_key": "", "signature": ""})),
        "ed25519",
        1,
        {},
    ),
    "signature huge": (_folder(_signature(b" " * (1 << 20))), "too large", 1, {}),
    "signature forged key": (_folder(_forged_key, zipped=True), "signature does not match", 1, {}),
    "skops runstring at load": (
        _model(_SKOPS["numpy runstring at load"][0], "sklearn"),
        "numpy.testing._private.utils.runstring",
        1,
        {},
    ),
    "skops script runner": (
        _model(_SKOPS["sklearn script runner at load"][0], "sklearn", zipped=False),
        "assert_run_python_script_without_output",
        1,
        {},
    ),
    "skops eval transformer": (
        _model(_SKOPS["eval in a FunctionTransformer"][0], "sklearn"),
        "builtins.eval",
        1,
        {},
    ),
    "skops partial": (
        _model(_SKOPS["functools.partial of os.system"][0], "sklearn"),
        "functools.partial",
        1,
        {},
    ),
    "skops popen": (
        _model(_SKOPS["subprocess.Popen at load"][0], "sklearn"),
        "subprocess.Popen",
        1,
        {},
    ),
    "skops bomb": (_model(_skops_bomb, "sklearn"), "zip bomb", 1, {}),
    "skops without schema": (_model(_skops_without_schema(), "sklearn"), "no schema.json", 1, {}),
    "skops not a zip": (_model(b"\x80\x04pickle", "sklearn"), "unreadable", 1, {}),
    "skops schema not JSON": (
        _model(skops_file({})[:-1], "sklearn"),
        "model.skops",
        1,
        {},
    ),
    "lightgbm huge num_leaves": (_model(_lgbm("huge num_leaves")), "num_leaves", 1, {}),
    "lightgbm cycle": (_model(_lgbm("a cycle"), zipped=False), "reached twice", 1, {}),
    "lightgbm feature out of range": (
        _model(_lgbm("feature index out of range")),
        "split_feature",
        1,
        {},
    ),
    "lightgbm tree_sizes lie": (_model(_lgbm("tree_sizes lie")), "tree_sizes", 1, {}),
    "lightgbm truncated": (_model(_lgbm("truncated trees")), "end of trees", 1, {}),
    "lightgbm not UTF-8": (_model(b"tree\n\xff\xfe"), "utf-8", 1, {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_bundle_is_refused(case, tmp_path, monkeypatch):
    build, reason, code, env = CASES[case]
    root = tmp_path / "user"
    root.mkdir()
    bundle = build(root)
    before = tree_digest(root)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for name, value in {**env, "TMPDIR": str(scratch)}.items():
        monkeypatch.setenv(name, value)

    result = wb("model", "verify", str(bundle))
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith(("refused: ", "error: ")) for line in lines), lines
    assert any(reason in line for line in lines), (reason, lines)

    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(WorkbenchError):
        load_bundle(bundle, trust=True)  # what predict and serve do, --trust or not
    assert tree_digest(root) == before  # the user's files are unchanged
    assert list(scratch.iterdir()) == []  # nothing was extracted
    assert not (Path(tempfile.gettempdir()) / "wb-hostile-marker-never-written").exists()
    assert not (tmp_path / "escaped.txt").exists() and not (root / "x.txt").exists()


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 35
