"""Model bundles: predict throughput against the native model, and load time
including verification, for LightGBM (the penguins sample) and scikit-learn (the
autompg sample's random-forest pipeline).

Targets: on --rows rows (default 100,000), a bundle's predict keeps at least
0.9x the native model's throughput; loading a bundle (verifying every file's
SHA-256, then deserialising the model) takes at most 0.5 s.

Both samples are trained once in a temporary store and exported as a folder and a
.zip with `workbench model export`. The input is the sample's training table
resampled with replacement to --rows rows (fixed seed), written as CSV. Each
framework is then measured in a fresh interpreter:

  native   LightGBM: `lightgbm.Booster(model_file=...)`, the categorical columns
           made `pd.Categorical` with the training categories, `predict`, argmax
           to labels. scikit-learn: `skops.io.load` of the pipeline, `predict`.
  bundle   `runtime.load(BUNDLE)` then `bundle.predict(frame)`: the schema check,
           the same column preparation as training, and the model's predict.

The two predicts alternate --repeat times (after one untimed warm-up each); the
medians are compared. Load is timed --repeat times for the folder and for the
zip with the model's library already imported (so it is verification plus
deserialisation), in wall time and in CPU time (which another program on a busy
machine does not inflate), and from a cold interpreter (imports included, median
of 3) for reference. Last, `workbench predict` of the whole CSV into Parquet is timed end
to end (process start, verification, chunked read, predict, write).

Verifying a signed 50 MB bundle (target: at most 0.3 s): the penguins bundle
with --filler-mb (default 50) of incompressible bytes added as a wheel, rehashed
and signed again with the store's key, as a folder and as a .zip (wheels
stored, as `model export` writes them). `bundle.verify_bundle` is timed
--repeat times in one warm interpreter (every file's size and SHA-256, the
Ed25519 signature, the model file's checks, and who signed it); `workbench
model verify` of the zip is timed end to end for reference.

Timing is not a test: exits 0 either way, printing "target met" / "target missed".

    python benchmarks/bench_bundle.py [--rows 100000] [--repeat 5] [--filler-mb 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cli_command, emit, log, machine_info, run_embedded  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RATIO_TARGET = 0.9
LOAD_TARGET_S = 0.5
VERIFY_TARGET_S = 0.3
SAMPLES = {"lightgbm": ("penguins-lightgbm", "penguins"), "sklearn": ("autompg-sklearn", "autompg")}

CHILD = r"""
import json, statistics, sys, time
cfg = json.loads(sys.argv[1])
t0 = time.perf_counter()
import numpy as np, pandas as pd
if cfg["framework"] == "lightgbm":
    import lightgbm
else:
    import sklearn, skops.io
from workbench.models import bundle_runtime as runtime
imports_s = time.perf_counter() - t0
from workbench.core import paths
cfg["model"] = str(paths.artifact_file(cfg["model_sha256"]))

frame = pd.read_csv(cfg["data"])
manifest = json.load(open(cfg["folder"] + "/manifest.json"))
features = manifest["features"]
names = [f["name"] for f in features]

def native_loader():
    if cfg["framework"] == "lightgbm":
        return lightgbm.Booster(model_file=cfg["model"])
    return skops.io.load(cfg["model"], trusted=skops.io.get_untrusted_types(file=cfg["model"]))

def native_predict(model):
    if cfg["framework"] == "sklearn":
        return model.predict(frame[names])
    x = frame[names].copy()
    for f in features:
        if f["kind"] == "categorical":
            x[f["name"]] = pd.Categorical(x[f["name"]], categories=f["categories"])
    proba = model.predict(x)
    return np.asarray(manifest["target"]["classes"], dtype=object)[proba.argmax(axis=1)]

def timed(fn):
    t = time.perf_counter(); value = fn(); return time.perf_counter() - t, value

def cpu(fn):
    t = time.process_time(); fn(); return time.process_time() - t

out = {"imports_s": imports_s, "rows": len(frame)}
load = {"native": [], "folder": [], "zip": [], "verify_folder": [], "verify_zip": []}
for _ in range(cfg["repeat"]):
    load["native"].append(timed(native_loader)[0])
    load["verify_folder"].append(timed(lambda: runtime.verify(cfg["folder"]))[0])
    load["verify_zip"].append(timed(lambda: runtime.verify(cfg["zip"]))[0])
    load["folder"].append(timed(lambda: runtime.load(cfg["folder"]))[0])
    load["zip"].append(timed(lambda: runtime.load(cfg["zip"]))[0])
out["load_s"] = {k: statistics.median(v) for k, v in load.items()}
out["load_cpu_s"] = {
    k: statistics.median(cpu(lambda: runtime.load(cfg[k])) for _ in range(cfg["repeat"]))
    for k in ("folder", "zip")
}
out["load_max_s"] = {k: max(v) for k, v in load.items()}

native, bundle = native_loader(), runtime.load(cfg["folder"])
native_predict(native); bundle.predict(frame)  # warm-up
times = {"native": [], "bundle": []}
for _ in range(cfg["repeat"]):
    t, expected = timed(lambda: native_predict(native)); times["native"].append(t)
    t, (got, _) = timed(lambda: bundle.predict(frame)); times["bundle"].append(t)
out["predict_s"] = {k: statistics.median(v) for k, v in times.items()}
out["same_predictions"] = bool(np.array_equal(np.asarray(expected), np.asarray(got)))
print("BENCH_RESULT " + json.dumps(out))
"""

VERIFY = r"""
import json, statistics, sys, time
from pathlib import Path
from workbench.models.bundle import verify_bundle
cfg = json.loads(sys.argv[1])
out = {}
for kind in ("folder", "zip"):
    path = Path(cfg[kind])
    first = verify_bundle(path)  # warm-up: imports, the key's fingerprint
    times = []
    for _ in range(cfg["repeat"]):
        t = time.perf_counter(); result = verify_bundle(path); times.append(time.perf_counter() - t)
    out[kind] = {"median_s": statistics.median(times), "max_s": max(times), "ok": result["ok"],
                 "signer": result["signer"]["signer"], "problems": result["problems"]}
print("BENCH_RESULT " + json.dumps(out))
"""

SIGN = r"""
import json, sys
from pathlib import Path
from workbench.models import bundle, bundle_runtime as runtime, signing
folder = Path(sys.argv[1])
manifest = json.loads((folder / runtime.MANIFEST).read_text())
for name in bundle._relative_files(folder):
    if name not in (runtime.MANIFEST, runtime.SIGNATURE):
        manifest["files"][name] = {"sha256": bundle._sha256(folder / name),
                                   "bytes": (folder / name).stat().st_size}
(folder / runtime.MANIFEST).write_text(json.dumps(manifest, indent=2))
signing.sign_folder(folder)
bundle.zip_folder(folder, Path(sys.argv[2]))
print("BENCH_RESULT {}")
"""

COLD = r"""
import json, sys, time
t0 = time.perf_counter()
from workbench.models import bundle_runtime as runtime
bundle = runtime.load(sys.argv[1])
print("BENCH_RESULT " + json.dumps({"cold_load_s": time.perf_counter() - t0}))
"""


def prepare(root: Path, rows: int, frameworks: tuple[str, ...] = tuple(SAMPLES)) -> dict[str, dict]:
    """Train the samples in a temporary store, export them, write the inputs."""
    import pandas as pd

    env = dict(os.environ, WORKBENCH_HOME=str(root / "home"), NO_COLOR="1")
    cli = cli_command()

    def wb(*args: str) -> str:
        return subprocess.run(
            [*cli, *args], env=env, check=True, capture_output=True, text=True
        ).stdout

    parts = {}
    for framework in frameworks:
        sample, project = SAMPLES[framework]
        log(f"training and exporting {project} ({framework})")
        shutil.copytree(REPO / "sample_projects" / sample, root / sample)
        wb("project", "add", str(root / sample))
        wb("run", "start", project, "--wait")
        version = json.loads(wb("model", "show", project, "--json"))
        folder, archive = root / f"{project}-bundle", root / f"{project}.zip"
        wb("model", "export", project, "-o", str(folder))
        wb("model", "export", project, "-o", str(archive))
        train = pd.read_csv(root / sample / "data" / "train.csv")
        data = root / f"{project}-{rows}.csv"
        train.sample(n=rows, replace=True, random_state=0).to_csv(data, index=False)
        parts[framework] = {
            "framework": framework,
            "project": project,
            "folder": str(folder),
            "zip": str(archive),
            "data": str(data),
            "model_sha256": version["model"]["sha256"],
            "env": env,
            "cli": cli,
        }
    return parts


def measure(part: dict, repeat: int, rows: int) -> dict:
    config = {k: part[k] for k in ("framework", "folder", "zip", "data", "model_sha256")}
    config["repeat"] = repeat
    log(f"measuring {part['project']} ({part['framework']})")
    found = run_embedded(sys.executable, CHILD, [json.dumps(config)], part["env"], REPO)
    if "error" in found:
        return found
    cold = [
        run_embedded(sys.executable, COLD, [part["folder"]], part["env"], REPO).get("cold_load_s")
        for _ in range(3)
    ]
    found["cold_load_s"] = sorted(c for c in cold if c is not None)[len(cold) // 2]
    output = Path(part["data"]).with_suffix(".out.parquet")
    started = time.perf_counter()
    subprocess.run(
        [*part["cli"], "predict", part["folder"], part["data"], "-o", str(output)],
        env=part["env"],
        check=True,
        capture_output=True,
    )
    found["cli_predict_s"] = time.perf_counter() - started
    predict = found["predict_s"]
    found["native_rows_per_s"] = rows / predict["native"]
    found["bundle_rows_per_s"] = rows / predict["bundle"]
    found["ratio"] = predict["native"] / predict["bundle"]
    return found


def measure_verify(part: dict, root: Path, filler_mb: int, repeat: int) -> dict:
    """A signed bundle of about `filler_mb` MB (the penguins bundle plus a filler
    wheel), verified as a folder and a zip."""
    folder, archive = root / "signed-big", root / "signed-big.zip"
    shutil.copytree(part["folder"], folder)
    (folder / "wheels").mkdir()
    with open(folder / "wheels" / "filler-1.0-py3-none-any.whl", "wb") as fh:
        for _ in range(filler_mb):
            fh.write(os.urandom(1 << 20))
    log(f"verifying a signed {filler_mb} MB bundle")
    signed = run_embedded(sys.executable, SIGN, [str(folder), str(archive)], part["env"], REPO)
    if "error" in signed:
        return signed
    config = {"folder": str(folder), "zip": str(archive), "repeat": repeat}
    found = run_embedded(sys.executable, VERIFY, [json.dumps(config)], part["env"], REPO)
    if "error" in found:
        return found
    started = time.perf_counter()
    subprocess.run(
        [*part["cli"], "model", "verify", str(archive)],
        env=part["env"],
        check=True,
        capture_output=True,
    )
    found["cli_verify_zip_s"] = time.perf_counter() - started
    found["bytes"] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return found


def report(result: dict) -> str:
    lines = [
        f"bundle benchmark, {result['rows']:,} rows, median of {result['repeat']}",
        "",
        "| framework | native predict | bundle predict | bundle / native throughput | "
        "load folder (max) | load zip (max) | load CPU time folder / zip | "
        "verify folder / zip | native load | "
        "cold start + load | `workbench predict` CSV→Parquet |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ok = True
    for framework, r in result["frameworks"].items():
        if "error" in r:
            lines.append(f"| {framework} | error: {r['error']} |")
            ok = False
            continue
        load, worst = r["load_s"], r["load_max_s"]
        ok = ok and r["ratio"] >= RATIO_TARGET and max(load["folder"], load["zip"]) <= LOAD_TARGET_S
        predict = r["predict_s"]
        cells = [
            framework,
            f"{predict['native'] * 1e3:.0f} ms ({r['native_rows_per_s'] / 1e3:.0f}k rows/s)",
            f"{predict['bundle'] * 1e3:.0f} ms ({r['bundle_rows_per_s'] / 1e3:.0f}k rows/s)",
            f"**{r['ratio']:.2f}x**",
            f"**{load['folder'] * 1e3:.0f} ms** ({worst['folder'] * 1e3:.0f})",
            f"**{load['zip'] * 1e3:.0f} ms** ({worst['zip'] * 1e3:.0f})",
            f"{r['load_cpu_s']['folder'] * 1e3:.0f} / {r['load_cpu_s']['zip'] * 1e3:.0f} ms",
            f"{load['verify_folder'] * 1e3:.1f} / {load['verify_zip'] * 1e3:.1f} ms",
            f"{load['native'] * 1e3:.0f} ms",
            f"{r['cold_load_s']:.2f} s",
            f"{r['cli_predict_s']:.2f} s",
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if not r["same_predictions"]:
            lines.append(f"  {framework}: the bundle's predictions differ from the native model's")
            ok = False
    big = result.get("verify_signed")
    if big is not None:
        lines.append("")
        if "error" in big:
            lines.append(f"verify signed bundle: error: {big['error']}")
            ok = False
        else:
            for kind in ("folder", "zip"):
                v = big[kind]
                ok = ok and v["ok"] and v["median_s"] <= VERIFY_TARGET_S
                lines.append(
                    f"verify a signed {big['bytes'] / 1e6:.0f} MB bundle ({kind}): "
                    f"**{v['median_s'] * 1e3:.0f} ms** (max {v['max_s'] * 1e3:.0f} ms), "
                    f"{'ok' if v['ok'] else 'refused'}, signed by {v['signer']}"
                )
            lines.append(
                f"`workbench model verify` of the zip, process start included: "
                f"{big['cli_verify_zip_s']:.2f} s"
            )
    lines.append("")
    lines.append(
        f"targets: throughput >= {RATIO_TARGET}x native, load <= {LOAD_TARGET_S} s, "
        f"verify a signed bundle <= {VERIFY_TARGET_S} s: "
        + ("target met" if ok else "target missed")
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--filler-mb", type=int, default=50)
    parser.add_argument("--verify-only", action="store_true", help="Only the signed-bundle check.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wb-bench-bundle-"))
    try:
        parts = prepare(root, args.rows, ("lightgbm",) if args.verify_only else tuple(SAMPLES))
        frameworks = {} if args.verify_only else parts
        result = {
            "rows": args.rows,
            "repeat": args.repeat,
            "frameworks": {k: measure(p, args.repeat, args.rows) for k, p in frameworks.items()},
            "verify_signed": measure_verify(
                parts["lightgbm"], root, args.filler_mb, max(args.repeat, 5)
            ),
            "machine": machine_info(),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    emit(result, report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
