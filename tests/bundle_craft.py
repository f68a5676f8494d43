"""Bundles and model files made by hand for the security tests: a real manifest,
a real signature by the test's store, a real tiny LightGBM or scikit-learn model,
and crafted payloads in skops' own schema format (a zip holding schema.json)."""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from workbench.models import bundle_runtime as runtime

FEATURES = [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "numeric"}]
TARGET = {"name": "y", "task": "regression"}
_ids = itertools.count(1)


@functools.cache
def lightgbm_text() -> str:
    """A real LightGBM regressor on two numeric features, three small trees."""
    import lightgbm

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    data = lightgbm.Dataset(x, x[:, 0] * 2 + x[:, 1], params={"verbose": -1})
    params = {"objective": "regression", "num_leaves": 4, "verbose": -1, "min_data_in_leaf": 5}
    return lightgbm.train(params, data, num_boost_round=3).model_to_string()


@functools.cache
def sklearn_bytes() -> bytes:
    """A real scikit-learn LinearRegression on the same two features, as skops."""
    import pandas as pd
    import skops.io
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(50, 2)), columns=["a", "b"])
    return skops.io.dumps(LinearRegression().fit(x, x["a"] * 2 + x["b"]))


def write_bundle(
    folder: Path,
    model: bytes | str,
    *,
    framework: str = "lightgbm",
    sign: bool = True,
    manifest: dict[str, Any] | None = None,
) -> Path:
    """A bundle folder as `model export` writes it (model, runtime, README,
    manifest), signed with this store's key unless `sign` is false."""
    from workbench.models import signing

    folder.mkdir(parents=True)
    model_file = "model.txt" if framework == "lightgbm" else "model.skops"
    data = model.encode() if isinstance(model, str) else model
    (folder / model_file).write_bytes(data)
    shutil.copyfile(runtime.__file__, folder / runtime.RUNTIME_FILE)
    (folder / "README.md").write_text("# a test bundle\n")
    document = {
        "bundle_format": runtime.BUNDLE_FORMAT,
        "name": "craft",
        "project": "craft",
        "version": 1,
        "ref": "craft@1",
        "framework": framework,
        "model_file": model_file,
        "features": FEATURES,
        "target": TARGET,
        **(manifest or {}),
    }
    document["files"] = _hashes(folder)
    (folder / runtime.MANIFEST).write_text(json.dumps(document, indent=2))
    if sign:
        signing.sign_folder(folder)
    return folder


def _hashes(folder: Path) -> dict[str, Any]:
    return {
        p.relative_to(folder).as_posix(): {
            "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
            "bytes": p.stat().st_size,
        }
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in (runtime.MANIFEST, runtime.SIGNATURE)
    }


def rehash(folder: Path, sign: bool = True) -> None:
    """Rewrite the manifest's hashes (and the signature), as someone holding the
    store's key could."""
    from workbench.models import signing

    document = json.loads((folder / runtime.MANIFEST).read_text())
    document["files"] = _hashes(folder)
    (folder / runtime.MANIFEST).write_text(json.dumps(document, indent=2))
    if sign:
        signing.sign_folder(folder)


def zip_bundle(folder: Path, path: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under `root` with its SHA-256: to show nothing changed."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- skops schema nodes ------------------------------------------------------------------


def _node(module: str, name: str, loader: str, **fields: Any) -> dict[str, Any]:
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": loader,
        **fields,
        "__id__": next(_ids),
    }


def json_node(value: Any) -> dict[str, Any]:
    return _node(
        "builtins", type(value).__name__, "JsonNode", content=json.dumps(value), is_json=True
    )


def tuple_node(*items: dict[str, Any]) -> dict[str, Any]:
    return _node("builtins", "tuple", "TupleNode", content=list(items))


def list_node(*items: dict[str, Any]) -> dict[str, Any]:
    return _node("builtins", "list", "ListNode", content=list(items))


def dict_node(**items: dict[str, Any]) -> dict[str, Any]:
    keys = [_node("builtins", "str", "TypeNode") for _ in items]
    return _node("builtins", "dict", "DictNode", content=items, key_types=list_node(*keys))


def type_node(dotted: str) -> dict[str, Any]:
    module, _, name = dotted.rpartition(".")
    return _node(module, name, "TypeNode")


def call_node(dotted: str, *args: dict[str, Any]) -> dict[str, Any]:
    """skops' ConstructorFromReduceNode: `dotted(*args)` is called at load time."""
    module, _, name = dotted.rpartition(".")
    return _node(module, name, "ConstructorFromReduceNode", content=tuple_node(*args))


def function_transformer(func: dict[str, Any]) -> dict[str, Any]:
    """A FunctionTransformer whose `func` runs at predict time."""
    state = dict_node(
        func=func,
        inverse_func=json_node(None),
        validate=json_node(False),
        accept_sparse=json_node(False),
        check_inverse=json_node(True),
        feature_names_out=json_node(None),
        kw_args=json_node(None),
        inv_kw_args=json_node(None),
    )
    return _node(
        "sklearn.preprocessing._function_transformer",
        "FunctionTransformer",
        "ObjectNode",
        content=state,
    )


def skops_file(root: dict[str, Any], extra: dict[str, bytes] | None = None) -> bytes:
    """A skops file: schema.json holding `root`, as skops.io.dumps writes it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        schema = {**root, "protocol": 2, "_skops_version": "0.16.0"}
        archive.writestr("schema.json", json.dumps(schema))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def python_writing(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')"


def skops_payloads(marker: Path) -> dict[str, tuple[bytes, str]]:
    """Crafted skops files, each of which would create `marker` when loaded (or
    predicted with) by a loader that trusted it: {case: (bytes, the type named)}."""
    code = python_writing(marker)
    shell = f"touch {marker}"
    cases = {
        "numpy runstring at load": call_node(
            "numpy.testing._private.utils.runstring", json_node(code), dict_node()
        ),
        "sklearn script runner at load": call_node(
            "sklearn.utils._testing.assert_run_python_script_without_output", json_node(code)
        ),
        "builtins.eval at load": call_node("builtins.eval", json_node(code)),
        "builtins.exec at load": call_node("builtins.exec", json_node(code)),
        "os.system at load": call_node("os.system", json_node(shell)),
        "subprocess.Popen at load": call_node(
            "subprocess.Popen", list_node(json_node("sh"), json_node("-c"), json_node(shell))
        ),
        "functools.partial of os.system": _node(
            "functools",
            "partial",
            "PartialNode",
            content=dict_node(func=type_node("os.system"), args=tuple_node(json_node(shell))),
        ),
        "operator.methodcaller": _node(
            "operator",
            "methodcaller",
            "OperatorFuncNode",
            attrs=tuple_node(json_node("system"), json_node(shell)),
        ),
        "FunctionNode of builtins.exec": _node("builtins", "exec", "FunctionNode"),
        "eval in a FunctionTransformer": function_transformer(type_node("builtins.eval")),
        "numpy runstring in a FunctionTransformer": function_transformer(
            type_node("numpy.testing._private.utils.runstring")
        ),
        "os.system as a type": type_node("os.system"),
    }
    named = {
        "numpy runstring at load": "numpy.testing._private.utils.runstring",
        "sklearn script runner at load": "assert_run_python_script_without_output",
        "builtins.eval at load": "builtins.eval",
        "builtins.exec at load": "builtins.exec",
        "os.system at load": "os.system",
        "subprocess.Popen at load": "subprocess.Popen",
        "functools.partial of os.system": "functools.partial",
        "operator.methodcaller": "operator.methodcaller",
        "FunctionNode of builtins.exec": "builtins.exec",
        "eval in a FunctionTransformer": "builtins.eval",
        "numpy runstring in a FunctionTransformer": "numpy.testing._private.utils.runstring",
        "os.system as a type": "os.system",
    }
    return {case: (skops_file(root), named[case]) for case, root in cases.items()}


# --- LightGBM model text ------------------------------------------------------------------


def with_tree_sizes(text: str) -> str:
    """`text` with its header's tree_sizes recomputed, so LightGBM itself would
    parse every (crafted) tree instead of stopping at a size mismatch."""
    start = text.index("\nTree=") + 1
    end = text.index("\nend of trees") + 1
    offsets = [m.start() for m in re.finditer(r"^Tree=", text[start:end], flags=re.M)]
    region = text[start:end].encode()
    byte_offsets = [len(text[start : start + o].encode()) for o in offsets] + [len(region)]
    sizes = " ".join(str(b - a) for a, b in itertools.pairwise(byte_offsets))
    return re.sub(r"^tree_sizes=.*$", f"tree_sizes={sizes}", text, count=1, flags=re.M)


def _sub(text: str, pattern: str, replacement: str) -> str:
    changed = re.sub(pattern, replacement, text, count=1, flags=re.M)
    assert changed != text, pattern
    return with_tree_sizes(changed)


def lightgbm_payloads() -> dict[str, tuple[str, str]]:
    """Crafted LightGBM model texts (most crash or hang LightGBM's native code when
    loaded or predicted with): {case: (text, words of the refusal)}."""
    t = lightgbm_text()
    first = t.index("Tree=0")
    categorical = _sub(t, r"^decision_type=\d+", "decision_type=1")
    return {
        "huge num_leaves": (_sub(t, r"^num_leaves=\d+", "num_leaves=2000000000"), "num_leaves"),
        "negative num_leaves": (_sub(t, r"^num_leaves=\d+", "num_leaves=-5"), "num_leaves"),
        "feature index out of range": (
            _sub(t, r"^split_feature=\d+", "split_feature=4000"),
            "split_feature",
        ),
        "negative feature index": (
            _sub(t, r"^split_feature=\d+", "split_feature=-3"),
            "split_feature",
        ),
        "child index out of range": (_sub(t, r"^left_child=-?\d+", "left_child=77"), "left_child"),
        "leaf index out of range": (
            _sub(t, r"^right_child=-?\d+", "right_child=-99"),
            "right_child",
        ),
        "a cycle": (_sub(t, r"^left_child=-?\d+", "left_child=0"), "reached twice"),
        "leaf_value too short": (_sub(t, r"^leaf_value=\S+ ", "leaf_value="), "leaf_value"),
        "truncated trees": (t[: first + 120], "end of trees"),
        "tree_sizes lie": (
            re.sub(r"^tree_sizes=\d+", "tree_sizes=99999", t, count=1, flags=re.M),
            "tree_sizes",
        ),
        "num_class mismatch": (
            _sub(t, r"^num_class=1", "num_class=3"),
            "num_tree_per_iteration",
        ),
        "objective num_class": (
            _sub(t, r"^objective=regression", "objective=multiclass num_class:9"),
            "num_class",
        ),
        "max_feature_idx huge": (
            _sub(t, r"^max_feature_idx=\d+", "max_feature_idx=999999999"),
            "max_feature_idx",
        ),
        "categorical set out of range": (
            _sub(categorical, r"^threshold=\S+", "threshold=5"),
            "categorical split",
        ),
        "NUL byte": (t.replace("Tree=1", "Tree=\0", 1), "NUL"),
        "not a model": ("hello\n", "expected 'tree'"),
    }
