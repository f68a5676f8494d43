"""Model bundles: export, verification, tampering, loading (also without
Workbench), and the wheels for an air-gapped install, with real trained models,
real zips and a real `pip install --no-index`."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
import _export_fixtures
from wbtest import REPO, wb_auto

from workbench.core.errors import WorkbenchError
from workbench.models import bundle_runtime as runtime
from workbench.models.bundle import load_bundle, verify_bundle
from workbench.models.registry import load_model
from workbench.models.wheels import Pin, collect_wheels, pinned_requirements, pip_cache_dir


@pytest.fixture
def cli():
    """Runs, the pipeline, the watcher and the server start real processes; the
    other commands run in this one (a subprocess is not the point here)."""
    return wb_auto

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_home(shared_cache: Path) -> Path:
    """A store with penguins (LightGBM) and autompg (scikit-learn) trained once."""
    return _export_fixtures.trained_home(shared_cache, ("penguins", "autompg"))


@pytest.fixture
def trained(trained_home: Path, wb_home: Path) -> Path:
    """This test's own copy of the trained store."""
    return _export_fixtures.copy_home(trained_home, wb_home)


def _version(ref: str):
    from workbench.models.registry import resolve
    from workbench.store import open_store

    store = open_store()
    try:
        return resolve(store, ref)
    finally:
        store.close()


def _export(cli, ref: str, output: Path, *extra: str) -> dict:
    result = cli("model", "export", ref, "-o", str(output), *extra, "--json", check=True)
    return json.loads(result.stdout)


def _native_lightgbm(version, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The booster as LightGBM itself predicts, with the training categories."""
    booster = lightgbm.Booster(model_file=str(version.model_path))
    features = frame[[f["name"] for f in version.schema["features"]]].copy()
    for f in version.schema["features"]:
        if f["kind"] == "categorical":
            features[f["name"]] = pd.Categorical(features[f["name"]], categories=f["categories"])
    proba = booster.predict(features)
    classes = np.asarray(version.schema["target"]["classes"], dtype=object)
    return classes[proba.argmax(axis=1)], proba


def test_lightgbm_bundle_via_the_cli_predicts_like_the_native_model(cli, trained, tmp_path):
    version = _version("penguins")
    folder, archive = tmp_path / "penguins-bundle", tmp_path / "penguins.zip"
    report = _export(cli, "penguins", folder)
    assert report["format"] == "bundle" and report["path"] == str(folder)
    assert any("predicted" in line for line in report["notes"])
    _export(cli, "penguins@1", archive)
    assert {p.name for p in folder.iterdir()} == {
        "manifest.json",
        "manifest.sig",
        "model.txt",
        "wb_runtime.py",
        "requirements.txt",
        "README.md",
        "model_card.html",
    }

    manifest = json.loads((folder / "manifest.json").read_text())
    shown = json.loads(cli("model", "show", "penguins", "--json", check=True).stdout)
    assert manifest["ref"] == "penguins@1" and manifest["run_id"] == shown["run_id"]
    assert (
        manifest["framework"] == "lightgbm"
        and manifest["framework_version"] == lightgbm.__version__
    )
    assert [d["sha256"] for d in manifest["training_data"]] == [
        d["sha256"] for d in shown["datasets"]
    ]
    assert manifest["target"]["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert manifest["primary_metric"] == "f1" and manifest["metrics"] == shown["metrics"]
    assert manifest["files"]["model.txt"]["sha256"] == version.model_sha256
    assert (
        manifest["files"]["wb_runtime.py"]["sha256"]
        == hashlib.sha256(Path(runtime.__file__).read_bytes()).hexdigest()
    )
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert f"lightgbm=={lightgbm.__version__}" in requirements
    assert (
        f"pandas=={pd.__version__}" in requirements and f"numpy=={np.__version__}" in requirements
    )
    readme = (folder / "README.md").read_text()
    assert "python wb_runtime.py serve BUNDLE" in readme and "workbench serve BUNDLE" in readme

    for bundle in (folder, archive):
        verified = json.loads(cli("model", "verify", str(bundle), "--json", check=True).stdout)
        assert verified["ok"] and verified["files"] == 7 and verified["problems"] == []
        assert verified["signer"]["signer"] == "this store"
        assert verified["signature"]["status"] == "valid"

    holdout = tmp_path / "holdout.parquet"
    shutil.copyfile(version.holdout_path, holdout)
    frame = pd.read_parquet(holdout)
    expected, expected_proba = _native_lightgbm(version, frame)
    assert (load_model(version).predict(frame)[0] == expected).all()
    for bundle in (folder, archive):
        out = tmp_path / f"predicted-{bundle.suffix or 'dir'}.csv"
        result = cli("predict", str(bundle), str(holdout), "-o", str(out))
        assert result.returncode == 0, result.stderr
        predicted = pd.read_csv(out)
        assert list(predicted.columns[: len(frame.columns)]) == list(frame.columns)
        assert predicted["prediction"].tolist() == list(expected)
        proba = predicted[["proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]].to_numpy()
        np.testing.assert_allclose(proba, expected_proba, rtol=1e-12)

    # Without Workbench: the bundle's own runtime, with `import workbench` made to fail.
    standalone = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, runpy; sys.modules['workbench'] = None; sys.argv = sys.argv[1:];"
            " runpy.run_path(sys.argv[0], run_name='__main__')",
            str(folder / "wb_runtime.py"),
            "predict",
            str(archive),
            str(holdout),
            "-o",
            str(tmp_path / "standalone.parquet"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert standalone.returncode == 0, standalone.stderr
    standalone_frame = pd.read_parquet(tmp_path / "standalone.parquet")
    assert standalone_frame["prediction"].tolist() == list(expected)

    # The schema is checked first: a missing column exits 2, names it, writes nothing.
    frame.drop(columns=["sex", "island"]).to_csv(tmp_path / "partial.csv", index=False)
    missing = cli(
        "predict", str(folder), str(tmp_path / "partial.csv"), "-o", str(tmp_path / "x.csv")
    )
    assert missing.returncode == 2
    assert "island, sex" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "x.csv").exists()


def test_sklearn_bundle_predicts_like_the_pipeline_and_reproduces_its_metrics(trained, tmp_path):
    import skops.io

    from workbench.models.export import export_model
    from workbench.store import open_store

    version = _version("autompg")
    store = open_store()
    try:
        report = export_model(store, version, "bundle", tmp_path / "autompg.zip", docker=True)
    finally:
        store.close()
    assert zipfile.is_zipfile(report["path"])
    bundle = load_bundle(Path(report["path"]))
    assert bundle.manifest["framework"] == "sklearn" and bundle.manifest["task"] == "regression"
    assert bundle.metadata()["target"]["name"] == "mpg" and "files" not in bundle.metadata()

    holdout = pd.read_parquet(version.holdout_path)
    pipeline = skops.io.load(
        version.model_path, trusted=skops.io.get_untrusted_types(file=version.model_path)
    )
    names = [f["name"] for f in version.schema["features"]]
    pred, proba = bundle.predict(holdout)
    assert proba is None
    np.testing.assert_array_equal(pred, pipeline.predict(holdout[names]))
    rmse = float(np.sqrt(np.mean((pred - holdout["mpg"]) ** 2)))
    assert rmse == pytest.approx(version.metrics["rmse"], rel=1e-9)

    with zipfile.ZipFile(report["path"]) as archive:
        dockerfile = archive.read("Dockerfile").decode()
        requirements = archive.read("requirements.txt").decode().splitlines()
    assert f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim" in dockerfile
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "/health" in dockerfile
    assert '"serve", "/bundle", "--host", "0.0.0.0", "--port", "8080"' in dockerfile
    import sklearn

    assert f"scikit-learn=={sklearn.__version__}" in requirements
    assert f"skops=={skops.__version__}" in requirements


def _rehash(folder: Path) -> None:
    """Rewrite the manifest's hashes, as an attacker who can edit files would."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest["files"]:
        data = (folder / name).read_bytes()
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _zip_of(folder: Path, path: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def _refused(path: Path, reason: str) -> None:
    result = verify_bundle(path)
    assert not result["ok"]
    assert any(reason in problem for problem in result["problems"]), result["problems"]
    with pytest.raises(WorkbenchError, match="refused"):
        load_bundle(path)


def test_tampered_bundles_are_refused(cli, trained, tmp_path):
    good = tmp_path / "good"
    _export(cli, "penguins", good)

    def copy(name: str) -> Path:
        return Path(shutil.copytree(good, tmp_path / name, symlinks=True))

    changed = copy("changed")
    with (changed / "model.txt").open("a") as fh:
        fh.write("\n")
    _refused(changed, "changed file: model.txt")
    _refused(_zip_of(changed, tmp_path / "changed.zip"), "changed file: model.txt")

    extra = copy("extra")
    (extra / "sitecustomize.py").write_text("print('hi')\n")
    _refused(extra, "extra file not in the manifest: sitecustomize.py")
    _refused(_zip_of(extra, tmp_path / "extra.zip"), "extra file not in the manifest")

    missing = copy("missing")
    (missing / "README.md").unlink()
    _refused(missing, "missing file: README.md")
    _refused(_zip_of(missing, tmp_path / "missing.zip"), "missing file: README.md")

    traversal = copy("traversal")
    manifest = json.loads((traversal / "manifest.json").read_text())
    manifest["files"]["../outside.txt"] = {"sha256": "0" * 64, "bytes": 0}
    manifest["files"]["/etc/passwd"] = {"sha256": "0" * 64, "bytes": 0}
    (traversal / "manifest.json").write_text(json.dumps(manifest))
    _refused(traversal, "manifest entry '../outside.txt': path leaving the bundle")
    _refused(traversal, "manifest entry '/etc/passwd': absolute path")
    _refused(
        _zip_of(good, tmp_path / "dotdot.zip", {"../outside.txt": b"x"}),
        "zip member '../outside.txt': path leaving the bundle",
    )
    _refused(
        _zip_of(good, tmp_path / "absolute.zip", {"/tmp/outside.txt": b"x"}),
        "zip member '/tmp/outside.txt': absolute path",
    )

    linked = copy("linked")
    (linked / "README.md").unlink()
    (linked / "README.md").symlink_to(good / "README.md")  # same content, so only the link fails
    _refused(linked, "symbolic link: README.md")
    link_zip = _zip_of(good, tmp_path / "link.zip")
    with zipfile.ZipFile(link_zip, "a") as archive:
        info = zipfile.ZipInfo("notes.txt")
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "/etc/passwd")
    _refused(link_zip, "zip member 'notes.txt': symbolic link")

    # The command line says why, with exit 1 and no traceback.
    result = cli("model", "verify", str(changed))
    assert result.returncode == 1 and "refused" in result.stderr and "model.txt" in result.stderr
    result = cli(
        "predict", str(extra), str(REPO / "sample_projects/penguins-lightgbm/data/train.csv")
    )
    assert result.returncode == 1 and "sitecustomize.py" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert cli("model", "verify", str(tmp_path / "nowhere")).returncode == 2


def test_a_zip_with_dotdot_entries_writes_nothing_outside_its_target(
    cli, trained, tmp_path, monkeypatch
):
    good = tmp_path / "good"
    _export(cli, "penguins", good)
    # The worst case: the manifest lists the escaping member with its true hash.
    evil = Path(shutil.copytree(good, tmp_path / "evil"))
    manifest = json.loads((evil / "manifest.json").read_text())
    payload = b"escaped\n"
    manifest["files"]["../escaped.txt"] = {
        "sha256": hashlib.sha256(payload).hexdigest(),
        "bytes": len(payload),
    }
    (evil / "manifest.json").write_text(json.dumps(manifest))
    archive = _zip_of(
        evil, tmp_path / "evil.zip", {"../escaped.txt": payload, "a/../../escaped2.txt": payload}
    )

    work = tmp_path / "work"
    work.mkdir()
    target = work / "target"
    with pytest.raises(runtime.BundleError, match="path leaving the bundle"):
        runtime.extract(archive, target)
    assert not target.exists()
    assert sorted(p.name for p in work.iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists() and not (work / "escaped.txt").exists()

    # Loading extracts into a private temporary folder: nothing lands next to it either.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(runtime.BundleError, match="refused"):
        runtime.load(archive)
    loaded = runtime.load(_zip_of(good, tmp_path / "good.zip"))
    assert loaded.name == "penguins@1"
    assert list(scratch.iterdir()) == []  # the extracted copy is gone once loaded
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "escaped2.txt").exists()


def test_skops_types_outside_the_allow_list_are_refused_even_when_rehashed(cli, trained, tmp_path):
    import skops.io
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    bundle = tmp_path / "autompg"
    _export(cli, "autompg", bundle)
    assert runtime.load(bundle).model.framework == "sklearn"
    evil = make_pipeline(FunctionTransformer(func=eval), LinearRegression())
    (bundle / "model.skops").write_bytes(skops.io.dumps(evil))
    _rehash(bundle)
    problems = verify_bundle(bundle)["problems"]
    assert any("signature does not match" in p for p in problems), problems
    assert any("builtins.eval" in p and "allow-list" in p for p in problems), problems
    # Unsigned, so trusted only with --trust: the hashes match, only the allow-list stands.
    (bundle / "manifest.sig").unlink()
    with pytest.raises(WorkbenchError, match="unsigned"):
        load_bundle(bundle)
    with pytest.raises(WorkbenchError, match="builtins.eval") as caught:
        load_bundle(bundle, trust=True)
    assert "allow-list" in caught.value.message
    result = cli("serve", str(bundle), "--port", "0", "--trust")
    assert result.returncode == 1 and "builtins.eval" in result.stderr


def _wheel(folder: Path, name: str, version: str, tag: str = "py3-none-any") -> Path:
    """A minimal real wheel: a package, METADATA, WHEEL and a RECORD of hashes."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = name.replace("-", "_")
    info = f"{stem}-{version}.dist-info"
    files = {
        f"{stem}_pkg/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode(),
    }
    record = "".join(
        f"{path},sha256="
        f"{base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
        f"{len(data)}\n"
        for path, data in files.items()
    )
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = folder / f"{stem}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


def _pip_install(wheels: Path, requirements: Path, target: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-index",
            "--find-links",
            str(wheels),
            "--target",
            str(target),
            "--disable-pip-version-check",
            "--no-cache-dir",
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_wheels_come_from_wheelhouses_and_pips_cache_and_install_offline(tmp_path, monkeypatch):
    house, cache = tmp_path / "house", tmp_path / "pip-cache"
    _wheel(house, "tiny-a", "1.0")
    _wheel(house, "tiny-a", "0.9")  # another version: not taken
    _wheel(house, "tiny-e", "1.0", tag="cp27-cp27mu-manylinux1_x86_64")  # wrong platform
    # pip's http-v2 cache: a body file under a hashed name, no .whl anywhere.
    body = _wheel(tmp_path / "built", "tiny-b", "2.0").read_bytes()
    (cache / "http-v2" / "a" / "b").mkdir(parents=True)
    (cache / "http-v2" / "a" / "b" / "0f3c9e1d.body").write_bytes(body)
    (cache / "http-v2" / "a" / "b" / "0f3c9e1d").write_bytes(b"cc=4,headers")
    # The older http cache: the body wrapped in other bytes.
    wrapped = _wheel(tmp_path / "built", "tiny-c", "3.1").read_bytes()
    (cache / "http" / "c").mkdir(parents=True)
    (cache / "http" / "c" / "77aa").write_bytes(b"cc=4,\x81\xa8response" + wrapped + b"\xa4vary")
    _wheel(cache / "wheels" / "ab" / "cd", "tiny-d", "0.1")  # wheels pip built itself

    monkeypatch.setenv("PIP_CACHE_DIR", str(cache))
    assert pip_cache_dir() == cache
    pins = [Pin("tiny-a", "1.0"), Pin("tiny-b", "2.0"), Pin("tiny-c", "3.1"), Pin("tiny-d", "0.1")]
    target = tmp_path / "bundle" / "wheels"
    report = collect_wheels(pins, [house], target, cache=pip_cache_dir())
    assert sorted(p.name for p in target.iterdir()) == [
        "tiny_a-1.0-py3-none-any.whl",
        "tiny_b-2.0-py3-none-any.whl",
        "tiny_c-3.1-py3-none-any.whl",
        "tiny_d-0.1-py3-none-any.whl",
    ]
    assert [r["from"] for r in report] == [
        str(house),
        str(cache / "http-v2"),
        str(cache / "http"),
        str(cache / "wheels"),
    ]
    requirements = tmp_path / "bundle" / "requirements.txt"
    requirements.write_text("# pinned\n" + "\n".join(map(str, pins)) + "\n")
    installed = tmp_path / "site"
    result = _pip_install(target, requirements, installed)
    assert result.returncode == 0, result.stderr
    for stem, version in (("tiny_a", "1.0"), ("tiny_b", "2.0"), ("tiny_c", "3.1")):
        assert (installed / f"{stem}_pkg" / "__init__.py").read_text() == f"VERSION = {version!r}\n"
        assert (installed / f"{stem}-{version}.dist-info" / "METADATA").is_file()

    with pytest.raises(WorkbenchError) as caught:
        collect_wheels([Pin("tiny-a", "2.0"), Pin("tiny-e", "1.0")], [house], tmp_path / "w", cache)
    message = caught.value.message
    assert "no wheel for tiny-a==2.0, tiny-e==1.0" in message
    assert str(house) in message and str(cache) in message
    assert "tiny_e-1.0-cp27-cp27mu-manylinux1_x86_64.whl" in message  # found, wrong platform
    assert "pip download" in message


def test_export_with_wheels_and_docker_installs_offline_or_names_what_is_missing(
    cli, trained, tmp_path, monkeypatch
):
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "empty-cache"))
    # Nor the local wheel folders and file:// indexes this machine's pip may be set up with.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = cli(
        "model", "export", "penguins", "-o", str(tmp_path / "nope"), "--with-wheels",
        "--wheelhouse", str(empty),
    )  # fmt: skip
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "no wheel for" in failed.stderr and f"lightgbm=={lightgbm.__version__}" in failed.stderr
    assert str(empty) in failed.stderr
    assert not (tmp_path / "nope").exists()

    # A wheelhouse with a wheel for every pin (stand-ins with the right names and
    # versions): the export takes them, and pip installs from wheels/ alone.
    pins = pinned_requirements("lightgbm")
    assert {"lightgbm", "numpy", "pandas", "pyarrow", "starlette", "uvicorn", "h11"} <= {
        p.name for p in pins
    }
    assert "uvloop" not in {p.name for p in pins}  # only under uvicorn's [standard] extra
    house = tmp_path / "house"
    for pin in pins:
        _wheel(house, pin.name, pin.version)
    bundle = tmp_path / "with-wheels.zip"
    report = _export(
        cli, "penguins", bundle, "--with-wheels", "--wheelhouse", str(house), "--docker"
    )
    assert len(report["wheels"]) == len(pins)
    assert verify_bundle(bundle)["ok"]
    unpacked = tmp_path / "unpacked"
    runtime.extract(bundle, unpacked)
    assert len(list((unpacked / "wheels").glob("*.whl"))) == len(pins)
    dockerfile = (unpacked / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --no-index --find-links wheels -r requirements.txt" in (
        dockerfile
    )
    assert "HEALTHCHECK" in dockerfile and "USER nobody" in dockerfile
    assert "--no-index --find-links wheels" in (unpacked / "README.md").read_text()
    result = _pip_install(unpacked / "wheels", unpacked / "requirements.txt", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    installed = {p.name.split("-")[0].lower() for p in (tmp_path / "site").glob("*.dist-info")}
    assert installed == {p.name.replace("-", "_") for p in pins}


def test_the_runtime_stands_alone_and_imports_only_what_it_needs():
    code = (
        "import importlib.util, json, sys\n"
        "sys.modules['workbench'] = None\n"
        "spec = importlib.util.spec_from_file_location('wb_runtime', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "heavy = ('lightgbm', 'sklearn', 'skops', 'starlette', 'uvicorn', 'workbench.models')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, runtime.__file__], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []
