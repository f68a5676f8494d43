"""Loading a model never runs foreign code; bundles are signed; sizes are limited.

Crafted skops files (built here in skops' own schema format) that call code at
load or predict time, crafted LightGBM model texts that crash or hang LightGBM's
native code, zip bombs, and signatures: each is refused by `model verify`,
`predict`, `serve` and the bundle's own `wb_runtime.py`, and no marker file
written by a payload ever appears."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pandas as pd
import pytest
from bundle_craft import (
    FEATURES,
    lightgbm_payloads,
    lightgbm_text,
    rehash,
    sklearn_bytes,
    skops_payloads,
    tree_digest,
    write_bundle,
    zip_bundle,
)
from wbtest import REPO, wb_inprocess

from workbench.core.errors import WorkbenchError
from workbench.models import bundle_runtime as runtime
from workbench.models.bundle import load_bundle, verify_bundle

BLOCK_WORKBENCH = (
    "import sys, runpy; sys.modules['workbench'] = None; sys.argv = sys.argv[1:];"
    " runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


def _standalone(bundle: Path, *args: str, env: dict[str, str] | None = None):
    """The bundle's own runtime, with Workbench made impossible to import."""
    return _run("-c", BLOCK_WORKBENCH, str(bundle / "wb_runtime.py"), *args, env=env)


# One process that runs several commands one after the other, each as its own process
# would (exit status, stdout, stderr, a traceback for an uncaught exception), and prints
# their results as JSON: a command that crashed the interpreter (a segfault in native
# code) takes the process down, which its exit status shows. argv: a JSON list of commands.
_SEVERAL_CLI = """
import json, sys
sys.path.insert(0, sys.argv[2])
from wbtest import wb_inprocess
results = [wb_inprocess(*args) for args in json.loads(sys.argv[1])]
print(json.dumps([[r.returncode, r.stdout, r.stderr] for r in results]))
"""
_SEVERAL_RUNTIME = """
import contextlib, io, json, runpy, sys, traceback
sys.modules["workbench"] = None
main = runpy.run_path(sys.argv[2])["main"]
results = []
for args in json.loads(sys.argv[1]):
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append([code, stdout.getvalue(), stderr.getvalue()])
print(json.dumps(results))
"""


def _several(driver: str, path: Path, commands: list[list[str]], env: dict[str, str]) -> list:
    """Each command's exit status, stdout and stderr, run by `driver` in one process
    (whose own stdout must be their JSON alone)."""
    result = _run("-c", driver, json.dumps(commands), str(path), env=env)
    assert result.returncode == 0, result.stderr
    return [
        subprocess.CompletedProcess(args, code, stdout, stderr)
        for args, (code, stdout, stderr) in zip(commands, json.loads(result.stdout), strict=True)
    ]


@pytest.fixture
def cli():
    """The CLI in this process: a refusal is the same exit code and message either
    way, and a payload that ran would still leave its marker file. `serve` too: it
    verifies and loads the bundle before it binds a port, so a refused bundle ends
    the command at once (one that were not refused would serve until the test's
    timeout, and fail it). The bundle's own runtime runs as a process of its own."""
    return wb_inprocess


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    pd.DataFrame({"a": [0.1, 0.5, -1.0], "b": [1.0, 2.0, 3.0]}).to_csv(path, index=False)
    return path


# --- skops: no foreign code ----------------------------------------------------------------


def test_a_crafted_skops_payload_is_real(tmp_path):
    """Without the allow-list (skops trusting what the file names), loading runs it."""
    marker = tmp_path / "ran"
    data, _ = skops_payloads(marker)["numpy runstring at load"]
    (tmp_path / "evil.skops").write_bytes(data)
    code = (
        "import skops.io, sys\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))\n"
    )
    _run("-c", code, str(tmp_path / "evil.skops"))
    assert marker.exists()


@pytest.mark.parametrize("case", sorted(skops_payloads(Path("x"))))
def test_crafted_skops_payloads_are_refused_naming_the_type(case, tmp_path):
    marker = tmp_path / "ran"
    data, named = skops_payloads(marker)[case]
    bundle = write_bundle(tmp_path / "bundle", data, framework="sklearn")  # signed: trusted

    result = verify_bundle(bundle)
    assert not result["ok"]
    assert any(named in p and "allow-list" in p for p in result["problems"]), result["problems"]
    for trust in (False, True):
        with pytest.raises(WorkbenchError, match="allow-list") as caught:
            load_bundle(bundle, trust=trust)
        assert named in caught.value.message
    with pytest.raises(runtime.BundleError, match="allow-list"):
        runtime.load(zip_bundle(bundle, tmp_path / "bundle.zip"))
    with pytest.raises(runtime.BundleError, match="allow-list"):
        runtime.Model({"framework": "sklearn", "features": FEATURES, "target": {"name": "y"}}, data)
    assert not marker.exists()


def test_every_entry_point_refuses_a_payload_and_it_never_runs(tmp_path, table, cli):
    marker = tmp_path / "ran"
    payloads = skops_payloads(marker)
    data, named = payloads["numpy runstring at load"]
    folder = write_bundle(tmp_path / "runstring", data, framework="sklearn")
    archive = zip_bundle(folder, tmp_path / "runstring.zip")
    before = tree_digest(tmp_path)
    runs = {
        "verify": cli("model", "verify", str(archive)),
        "verify folder": cli("model", "verify", str(folder)),
        "predict": cli("predict", str(archive), str(table), "--trust"),
        "predict folder": cli("predict", str(folder), str(table)),
        "serve": cli("serve", str(archive), "--port", "0", "--trust"),
    }
    # The bundle's own runtime, in one process of its own with Workbench impossible to import.
    standalone = {
        "runtime verify": ["verify", str(archive)],
        "runtime predict": ["predict", str(archive), str(table)],
        "runtime serve": ["serve", str(folder), "--port", "0"],
    }
    ran = _several(_SEVERAL_RUNTIME, folder / "wb_runtime.py", list(standalone.values()), {})
    runs.update(zip(standalone, ran, strict=True))
    for case in ("sklearn script runner at load", "os.system at load"):
        data, other = payloads[case]
        bundle = write_bundle(tmp_path / case.replace(" ", "-"), data, framework="sklearn")
        before.update({f"{bundle.name}/{k}": v for k, v in tree_digest(bundle).items()})
        runs[case] = cli("predict", str(bundle), str(table))
        assert other in runs[case].stderr
    for name, result in runs.items():
        assert result.returncode == 1, (name, result.stderr)
        assert "allow-list" in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr and result.stdout == ""
    assert all(named in runs[name].stderr for name in list(runs)[:8])
    assert tree_digest(tmp_path) == before  # nothing written, nothing changed
    assert not marker.exists()


def test_the_mlflow_loader_refuses_a_payload(tmp_path, monkeypatch):
    """The loader as MLflow runs it: the export's code/ folder on sys.path, its
    `workbench_pyfunc` imported by name (it imports `wb_runtime` beside it)."""
    from workbench.models import workbench_pyfunc

    marker = tmp_path / "ran"
    data, named = skops_payloads(marker)["builtins.exec at load"]
    code, model = tmp_path / "code", tmp_path / "data" / "model"
    code.mkdir()
    model.mkdir(parents=True)
    shutil.copyfile(runtime.__file__, code / "wb_runtime.py")
    shutil.copyfile(workbench_pyfunc.__file__, code / "workbench_pyfunc.py")
    (model / "model.skops").write_bytes(data)
    schema = {"framework": "sklearn", "model_file": "model.skops", "features": FEATURES}
    (model / "feature_schema.json").write_text(json.dumps({**schema, "target": {"name": "y"}}))
    monkeypatch.syspath_prepend(str(code))
    copies = ("workbench_pyfunc", "wb_runtime")  # the copies' names, not the package's
    for name in copies:
        monkeypatch.delitem(sys.modules, name, raising=False)
    try:
        loader = importlib.import_module("workbench_pyfunc")
        with pytest.raises(Exception) as caught:
            loader._load_pyfunc(str(model))
        assert type(caught.value) is sys.modules["wb_runtime"].BundleError
    finally:
        for name in copies:
            sys.modules.pop(name, None)
    assert named in str(caught.value)
    assert not marker.exists()


def test_real_models_of_the_built_in_shapes_still_load(tmp_path, table):
    """The allow-list is exact, and still loads what the trainers and log_model save."""
    import lightgbm
    import numpy as np
    import skops.io
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(120, 2)), columns=["a", "b"])
    y = np.where(x["a"] > 0, "yes", "no")
    for model in (
        HistGradientBoostingClassifier(max_iter=5).fit(x, y),
        make_pipeline(StandardScaler(), lightgbm.LGBMClassifier(n_estimators=3, verbose=-1)).fit(
            x, y
        ),
    ):
        data = skops.io.dumps(model)
        assert set(runtime.check_skops(data)) <= runtime.TRUSTED_TYPES
        spec = {"framework": "sklearn", "features": FEATURES}
        loaded = runtime.Model({**spec, "target": {"name": "y", "classes": ["no", "yes"]}}, data)
        assert list(loaded.predict(x)[0]) == list(model.predict(x))
    bundle = write_bundle(tmp_path / "linear", sklearn_bytes(), framework="sklearn")
    assert verify_bundle(bundle)["ok"]
    assert len(load_bundle(bundle).predict(pd.read_csv(table))[0]) == 3


def test_the_allow_list_is_what_the_discovery_script_finds():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import skops_allow_list
    finally:
        sys.path.pop(0)
    assert skops_allow_list._is_class("sklearn.tree._tree.Tree")
    assert not skops_allow_list._is_class("numpy.testing._private.utils.runstring")
    assert all(skops_allow_list._is_class(name) for name in runtime.TRUSTED_TYPES)
    assert not any("testing" in name.split(".") for name in runtime.TRUSTED_TYPES)


# --- LightGBM model text -------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(lightgbm_payloads()))
def test_crafted_lightgbm_text_is_refused_before_lightgbm_reads_it(case, tmp_path):
    text, words = lightgbm_payloads()[case]
    with pytest.raises(runtime.BundleError, match="LightGBM model is malformed") as caught:
        runtime.check_lightgbm_text(text, 2, 1)
    assert words in str(caught.value)
    bundle = write_bundle(tmp_path / "bundle", text)
    result = verify_bundle(bundle)
    assert not result["ok"] and any(words in p for p in result["problems"])
    with pytest.raises(WorkbenchError, match="malformed"):
        load_bundle(bundle)


def test_crafted_lightgbm_text_never_crashes_predict_and_leaves_no_temp_files(tmp_path, table, cli):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {"TMPDIR": str(scratch)}
    payloads = lightgbm_payloads()
    commands, expected = [], []
    for case in ("huge num_leaves", "a cycle", "objective num_class", "NUL byte"):
        text, words = payloads[case]
        folder = write_bundle(tmp_path / case.replace(" ", "-"), text)
        archive = zip_bundle(folder, tmp_path / f"{folder.name}.zip")
        for bundle in (folder, archive):
            commands.append(["predict", str(bundle), str(table)])
            expected.append((case, words))
    # Outside this process (native code that crashed would take it down): `workbench
    # predict`, and the bundle's own runtime with Workbench impossible to import.
    results = [
        *_several(_SEVERAL_CLI, REPO / "tests", commands, env),
        *_several(_SEVERAL_RUNTIME, folder / "wb_runtime.py", commands, env),
    ]
    for (case, words), result in zip(expected * 2, results, strict=True):
        assert result.returncode == 1, (case, result.args, result.returncode, result.stderr)
        assert "malformed" in result.stderr and words in result.stderr
        assert "Traceback" not in result.stderr
    assert list(scratch.iterdir()) == []
    good = write_bundle(tmp_path / "good", lightgbm_text())
    assert cli("predict", str(good), str(table)).returncode == 0


def test_the_schema_must_match_the_lightgbm_model(tmp_path):
    three = {"features": [*FEATURES, {"name": "c", "kind": "numeric"}]}
    bundle = write_bundle(tmp_path / "bundle", lightgbm_text(), manifest=three)
    assert any("its schema has 3" in p for p in verify_bundle(bundle)["problems"])


# --- sizes ---------------------------------------------------------------------------------


def _bomb(path: Path, member: str, megabytes: int) -> Path:
    """A zip with `megabytes` MB of zeros in `member` (deflated), after a small
    manifest.json. Written by hand, not with zipfile, which would deflate the whole
    GiB (seconds of CPU): after a full flush deflate starts afresh, so every MB of
    zeros compresses to the same bytes, and the one compressed MB is repeated. The
    sizes fit in 32 bits: a plain zip, no ZIP64 records."""
    block = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, as a zip holds it
    one_mb = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(block, crc)
    members = [  # name, method (0 stored, 8 deflated), CRC-32, data, size
        (b"manifest.json", 0, zlib.crc32(b"{}"), b"{}", 2),
        (member.encode(), 8, crc, one_mb * megabytes + deflate.flush(), megabytes << 20),
    ]
    local, central = bytearray(), bytearray()
    for name, method, checksum, data, size in members:
        # version needed, flags, method, time, date (1980-01-01), CRC, sizes, name's length
        fields = (20, 0, method, 0, 0x21, checksum, len(data), size, len(name))
        # central directory entry: made by, the fields, no extra/comment, disk 0,
        # no attributes, where the local header starts
        central += struct.pack("<I6H3I5H2I", 0x02014B50, 20, *fields, 0, 0, 0, 0, 0, len(local))
        central += name
        local += struct.pack("<I5H3I2H", 0x04034B50, *fields, 0) + name + data
    count = len(members)
    end = struct.pack("<I4H2IH", 0x06054B50, 0, 0, count, count, len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path


def test_a_zip_bomb_is_refused_before_anything_is_extracted(tmp_path):
    bomb = _bomb(tmp_path / "bomb.zip", "model.txt", 1024)
    assert bomb.stat().st_size < 4 << 20
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    code = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run([sys.executable, '-m', 'workbench', 'model', 'verify', sys.argv[1]],"
        " capture_output=True, text=True)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "print(r.stderr)\n"
    )
    result = _run("-c", code, str(bomb), env={"TMPDIR": str(scratch)})
    status, max_rss_kb = map(int, result.stdout.split("\n")[0].split())
    assert status == 1
    assert "model.txt" in result.stdout and "zip bomb" in result.stdout
    assert max_rss_kb < 400_000  # never inflated: 1 GiB would show
    assert list(scratch.iterdir()) == []
    with pytest.raises(runtime.BundleError, match="zip bomb"):
        runtime.extract(bomb, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_size_limits_apply_to_files_and_bundles_and_can_be_raised(tmp_path, monkeypatch, cli):
    folder = write_bundle(tmp_path / "bundle", lightgbm_text())
    (folder / "wheels").mkdir()
    (folder / "wheels" / "big.whl").write_bytes(os.urandom(3 << 20))
    rehash(folder)
    archive = zip_bundle(folder, tmp_path / "bundle.zip")
    for bundle in (folder, archive):
        assert verify_bundle(bundle)["ok"]
        monkeypatch.setenv("WORKBENCH_MAX_FILE_MB", "2")
        problems = verify_bundle(bundle)["problems"]
        assert any(
            "wheels/big.whl is 3.0 MB" in p and "WORKBENCH_MAX_FILE_MB" in p for p in problems
        )
        monkeypatch.setenv("WORKBENCH_MAX_FILE_MB", "4")
        monkeypatch.setenv("WORKBENCH_MAX_BUNDLE_MB", "2")
        problems = verify_bundle(bundle)["problems"]
        assert any("WORKBENCH_MAX_BUNDLE_MB" in p for p in problems), problems
        monkeypatch.delenv("WORKBENCH_MAX_FILE_MB")
        monkeypatch.delenv("WORKBENCH_MAX_BUNDLE_MB")
    monkeypatch.setenv("WORKBENCH_MAX_FILE_MB", "lots")
    result = cli("model", "verify", str(folder))
    assert result.returncode == 2 and "WORKBENCH_MAX_FILE_MB='lots'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_member_larger_than_it_declares_is_refused(tmp_path):
    folder = write_bundle(tmp_path / "bundle", lightgbm_text())
    archive = zip_bundle(folder, tmp_path / "bundle.zip")
    data = bytearray(archive.read_bytes())
    # README.md's entry in the central directory: its uncompressed size is at +24.
    at = next(
        i
        for i in range(len(data))
        if data[i : i + 4] == b"PK\x01\x02" and data[i + 46 : i + 55] == b"README.md"
    )
    size = int.from_bytes(data[at + 24 : at + 28], "little")
    data[at + 24 : at + 28] = (size - 5).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with zipfile.ZipFile(archive) as opened:
        assert opened.getinfo("README.md").file_size == size - 5
    result = verify_bundle(archive)
    assert not result["ok"] and any("README.md" in p for p in result["problems"]), result
    # The manifest's size is not there to catch it: reading still stops at the declared size.
    document = json.loads((folder / "manifest.json").read_text())
    del document["files"]["README.md"]["bytes"]
    (folder / "manifest.json").write_text(json.dumps(document))
    data = bytearray(zip_bundle(folder, tmp_path / "again.zip").read_bytes())
    at = next(
        i
        for i in range(len(data))
        if data[i : i + 4] == b"PK\x01\x02" and data[i + 46 : i + 55] == b"README.md"
    )
    data[at + 24 : at + 28] = (size - 5).to_bytes(4, "little")
    (tmp_path / "again.zip").write_bytes(bytes(data))
    problems = verify_bundle(tmp_path / "again.zip")["problems"]
    assert any("unreadable file: README.md" in p for p in problems), problems


# --- signatures ----------------------------------------------------------------------------


def _other_store(tmp_path: Path, name: str) -> dict[str, str]:
    return {"WORKBENCH_HOME": str(tmp_path / name)}


def _in_store(other: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The CLI, in this process, on another store than the test's."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_HOME", other["WORKBENCH_HOME"])
        return wb_inprocess(*args)


def test_signing_keys_are_private_and_exports_name_their_signer(tmp_path, wb_home, cli, table):
    from workbench.models import signing

    bundle = write_bundle(tmp_path / "bundle", lightgbm_text())
    key = wb_home / "keys" / "signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    result = cli("model", "verify", str(bundle))
    assert result.returncode == 0 and "signed by: this store (SHA256:" in result.stderr
    document = json.loads(cli("model", "verify", str(bundle), "--json").stdout)
    assert document["signer"] == {
        "signer": "this store",
        "trusted": True,
        "fingerprint": signing.own_fingerprint(),
    }
    assert cli("predict", str(bundle), str(table)).returncode == 0
    standalone = _standalone(bundle, "verify", str(bundle))
    assert standalone.returncode == 0 and "signature checked" in standalone.stderr
    without = _run(
        "-c",
        "import sys; sys.modules['cryptography'] = None; " + BLOCK_WORKBENCH,
        str(bundle / "wb_runtime.py"),
        "verify",
        str(bundle),
    )
    assert without.returncode == 0 and "signature was not checked" in without.stderr


def test_tampered_unsigned_and_foreign_bundles(tmp_path, cli, table):
    good = write_bundle(tmp_path / "good", lightgbm_text())

    tampered = Path(shutil.copytree(good, tmp_path / "tampered"))
    manifest = json.loads((tampered / "manifest.json").read_text())
    manifest["metrics"] = {"r2": 0.99}
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    for bundle in (tampered, zip_bundle(tampered, tmp_path / "tampered.zip")):
        result = cli("model", "verify", str(bundle))
        assert result.returncode == 1 and "signature does not match" in result.stderr
        result = cli("predict", str(bundle), str(table), "--trust")
        assert result.returncode == 1 and "signature does not match" in result.stderr
    garbage = Path(shutil.copytree(good, tmp_path / "garbage"))
    (garbage / "manifest.sig").write_text("not a signature")
    assert cli("model", "verify", str(garbage)).returncode == 1

    unsigned = Path(shutil.copytree(good, tmp_path / "unsigned"))
    (unsigned / "manifest.sig").unlink()
    result = cli("model", "verify", str(unsigned))
    assert result.returncode == 0 and "signed by: unsigned" in result.stderr
    result = cli("predict", str(unsigned), str(table))
    assert result.returncode == 1 and "unsigned" in result.stderr and "--trust" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert cli("predict", str(unsigned), str(table), "--trust").returncode == 0

    # Another store signs: an unknown signer until its public key is imported.
    from workbench.models import signing

    other = _other_store(tmp_path, "other-home")
    foreign = Path(shutil.copytree(unsigned, tmp_path / "foreign"))
    with pytest.MonkeyPatch.context() as env:  # signed with the other store's key
        env.setenv("WORKBENCH_HOME", other["WORKBENCH_HOME"])
        signing.sign_folder(foreign)
    result = cli("model", "verify", str(foreign))
    assert result.returncode == 0 and "signed by: unknown signer (SHA256:" in result.stderr
    result = cli("predict", str(foreign), str(table))
    assert result.returncode == 1 and "neither this store's key nor a trusted one" in result.stderr
    assert cli("serve", str(foreign), "--port", "0").returncode == 1
    assert cli("predict", str(foreign), str(table), "--trust").returncode == 0

    exported = _in_store(other, "keys", "export", "-o", str(tmp_path / "o.pub"))
    assert exported.returncode == 0, exported.stderr
    imported = cli("keys", "import", str(tmp_path / "o.pub"), "--name", "alice", "--json")
    assert imported.returncode == 0 and json.loads(imported.stdout)["imported"] is True
    assert json.loads(cli("keys", "import", str(tmp_path / "o.pub"), "--json").stdout) == {
        **json.loads(imported.stdout),
        "imported": False,
    }
    result = cli("model", "verify", str(foreign))
    assert result.returncode == 0 and "signed by: trusted key alice" in result.stderr
    assert cli("predict", str(foreign), str(table)).returncode == 0
    listed = json.loads(cli("keys", "list", "--json").stdout)
    assert [k["name"] for k in listed] == ["this store", "alice"]
    assert listed[1]["fingerprint"] == json.loads(imported.stdout)["fingerprint"]


def test_keys_import_refuses_what_is_not_a_key(tmp_path, cli):
    cases = {
        "empty.pub": "",
        "short.pub": "workbench-ed25519 AAAA\n",
        "ssh.pub": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk alice\n",
        "two.pub": "workbench-ed25519 a\nworkbench-ed25519 b\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        result = cli("keys", "import", str(tmp_path / name))
        assert result.returncode == 2, (name, result.stderr)
        assert str(tmp_path / name) in result.stderr and "Traceback" not in result.stderr
    assert cli("keys", "import", str(tmp_path / "missing.pub")).returncode == 2
    other = _other_store(tmp_path, "h2")
    _in_store(other, "keys", "export", "-o", str(tmp_path / "a.pub"))
    _in_store(_other_store(tmp_path, "h3"), "keys", "export", "-o", str(tmp_path / "b.pub"))
    assert cli("keys", "import", str(tmp_path / "a.pub"), "--name", "bob").returncode == 0
    clash = cli("keys", "import", str(tmp_path / "b.pub"), "--name", "bob")
    assert clash.returncode == 2 and "another --name" in clash.stderr
    bad = cli("keys", "import", str(tmp_path / "b.pub"), "--name", "../evil")
    assert bad.returncode == 2 and not (tmp_path / "evil.pub").exists()
    again = _in_store(other, "keys", "export", "-o", str(tmp_path / "a.pub"))
    assert again.returncode == 2 and "exists already" in again.stderr


def test_scikit_learn_trees_pointing_outside_their_arrays_are_refused(tmp_path, table, cli):
    """skops restores a tree's node arrays as stored; predict would walk them unchecked."""
    import numpy as np
    import skops.io
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(100, 2)), columns=["a", "b"])
    y = x["a"] * 2 + x["b"]

    def forest(field: str, value: int) -> bytes:
        model = RandomForestRegressor(n_estimators=2, max_depth=3, random_state=0).fit(x, y)
        tree = model.estimators_[1].tree_
        state = tree.__getstate__()
        nodes = state["nodes"].copy()
        nodes[field][0] = value
        tree.__setstate__({**state, "nodes": nodes})
        return skops.io.dumps(model)

    hist = HistGradientBoostingRegressor(max_iter=3).fit(x, y)
    hist._predictors[1][0].nodes["feature_idx"][0] = 40
    cases = {
        "child out of range": (forest("left_child", 10**6), "child indices"),
        "child is the root": (forest("right_child", 0), "child indices"),
        "feature out of range": (forest("feature", 7), "features outside 0..1"),
        "hist feature out of range": (skops.io.dumps(hist), "splits on features over 2"),
    }
    spec = {"framework": "sklearn", "features": FEATURES, "target": {"name": "y"}}
    for case, (data, words) in cases.items():
        with pytest.raises(runtime.BundleError, match=words):
            runtime.Model(spec, data)
        bundle = write_bundle(tmp_path / case.replace(" ", "-"), data, framework="sklearn")
        with pytest.raises(WorkbenchError, match=words):
            load_bundle(bundle)
        assert any(words in p for p in verify_bundle(bundle)["problems"])
    result = cli("predict", str(bundle), str(table))
    assert result.returncode == 1 and "splits on features over 2" in result.stderr
    assert "Traceback" not in result.stderr
