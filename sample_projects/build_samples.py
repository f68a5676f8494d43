"""(Re)build the data files of the bundled sample projects.

Each sample project gets a reference ``data/train.csv`` and a ``data/incoming/``
folder of later batches: one clean, one with a real distribution shift and one
(or two) deliberately malformed files.

The raw data comes from real public datasets that ship with these packages
(no network access is needed when loading them):

* ``palmerpenguins`` -> penguins-lightgbm
* ``vega_datasets``  -> autompg-sklearn (the classic UCI Auto MPG table)
* ``scikit-learn``   -> cancer-script (UCI Wisconsin Diagnostic Breast Cancer)

``palmerpenguins`` and ``vega_datasets`` are only needed to run this script;
they are not dependencies of workbench or of the sample projects.

Usage::

    pip install palmerpenguins vega_datasets
    python sample_projects/build_samples.py

The output is deterministic (fixed seed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

SEED = 7
HERE = Path(__file__).resolve().parent


def _dirs(project: str) -> tuple[Path, Path]:
    data = HERE / project / "data"
    incoming = data / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    return data, incoming


def _write_csv(df: pd.DataFrame, path: Path, **kwargs) -> None:
    df.to_csv(path, index=False, lineterminator="\n", **kwargs)


def _split_three(df: pd.DataFrame, stratify_col: str | None) -> tuple[pd.DataFrame, ...]:
    """Split ~70 / 15 / 15 (optionally stratified), keeping the original row order."""
    strat = df[stratify_col] if stratify_col else None
    train, rest = train_test_split(df, train_size=0.70, random_state=SEED, stratify=strat)
    strat = rest[stratify_col] if stratify_col else None
    first, second = train_test_split(rest, test_size=0.5, random_state=SEED, stratify=strat)
    return tuple(part.sort_index() for part in (train, first, second))


# --------------------------------------------------------------------------- penguins


def build_penguins() -> None:
    from palmerpenguins import load_penguins

    df = load_penguins()  # 344 rows, NaN kept (written as empty cells)
    data, incoming = _dirs("penguins-lightgbm")

    # Shifted batch: ~15% of rows, mostly from Biscoe island ...
    n_shift = round(len(df) * 0.15)
    n_biscoe = round(n_shift * 0.8)
    biscoe = df[df["island"] == "Biscoe"].sample(n=n_biscoe, random_state=SEED)
    others = df[df["island"] != "Biscoe"].sample(n=n_shift - n_biscoe, random_state=SEED)
    shifted = pd.concat([biscoe, others]).sort_index()
    pool = df.drop(index=shifted.index)

    # ... the rest is split (stratified by species) into the reference and a clean batch.
    train, clean = train_test_split(
        pool, test_size=n_shift, random_state=SEED, stratify=pool["species"]
    )
    train, clean = train.sort_index(), clean.sort_index()

    # A recording change: scales now read 25% heavy, flippers measured 12 mm longer.
    shifted = shifted.copy()
    shifted["body_mass_g"] = shifted["body_mass_g"] * 1.25
    shifted["flipper_length_mm"] = shifted["flipper_length_mm"] + 12

    _write_csv(train, data / "train.csv")
    _write_csv(clean, incoming / "batch_01_clean.csv")
    _write_csv(shifted, incoming / "batch_02_shifted.csv")

    # Malformed: semicolon-delimited, and the last line is cut in half (ragged row).
    text = df.sample(n=20, random_state=SEED).to_csv(index=False, sep=";", lineterminator="\n")
    lines = text.rstrip("\n").split("\n")
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    (incoming / "batch_03_malformed.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- auto mpg


AUTOMPG_COLUMNS = {
    "Miles_per_Gallon": "mpg",
    "Cylinders": "cylinders",
    "Displacement": "displacement",
    "Horsepower": "horsepower",
    "Weight_in_lbs": "weight_lbs",
    "Acceleration": "acceleration",
    "Year": "model_year",
    "Origin": "origin",
}


def build_autompg() -> None:
    from vega_datasets import data as vega

    raw = vega.cars()  # 406 rows, bundled with the package
    df = raw.drop(columns=["Name"]).rename(columns=AUTOMPG_COLUMNS)
    df = df[list(AUTOMPG_COLUMNS.values())]
    df["model_year"] = pd.to_datetime(df["model_year"]).dt.year.astype(int)
    df = df.dropna(subset=["mpg"]).reset_index(drop=True)  # horsepower NaN are kept
    data, incoming = _dirs("autompg-sklearn")

    # Shifted batch: only the newest cars (1980+), a genuine covariate shift
    # (lighter, smaller engines, better mileage). They never enter the reference pool.
    newer = df["model_year"] >= 1980
    shifted = df[newer]
    pool = df[~newer]
    train, clean = train_test_split(pool, test_size=0.2, random_state=SEED)
    train, clean = train.sort_index(), clean.sort_index()

    _write_csv(train, data / "train.csv")
    _write_csv(clean, incoming / "batch_01_clean.csv")
    _write_csv(shifted, incoming / "batch_02_shifted.csv")

    # Malformed: text in the numeric weight_lbs column, and one row with extra fields.
    bad = pool.sample(n=20, random_state=SEED).copy()
    bad["weight_lbs"] = bad["weight_lbs"].astype(object)
    for pos, word in ((2, "heavy"), (7, "light"), (13, "heavy")):
        bad.iloc[pos, bad.columns.get_loc("weight_lbs")] = word
    lines = bad.to_csv(index=False, lineterminator="\n").rstrip("\n").split("\n")
    lines[11] = lines[11] + ",see notes,1"  # line 11 = 11th data row
    (incoming / "batch_03_malformed.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- breast cancer


def _round_sig(df: pd.DataFrame, digits: int = 5) -> pd.DataFrame:
    out = df.copy()
    for col in out.select_dtypes("number").columns:
        out[col] = [float(f"{v:.{digits}g}") for v in out[col]]
    return out


def build_cancer() -> None:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    df = bunch.data.copy()
    # target 0 = malignant, 1 = benign
    df["diagnosis"] = np.asarray(bunch.target_names)[bunch.target.to_numpy()]
    df = _round_sig(df)
    data, incoming = _dirs("cancer-script")

    train, clean, shifted = _split_three(df, "diagnosis")

    # Different imaging calibration: lengths read 30% larger, so every radius and
    # perimeter feature is x1.3 and every area feature is x1.3**2.
    shifted = shifted.copy()
    for col in shifted.columns:
        if "radius" in col or "perimeter" in col:
            shifted[col] = shifted[col] * 1.3
        elif "area" in col:
            shifted[col] = shifted[col] * 1.3**2
    shifted = _round_sig(shifted)

    _write_csv(train, data / "train.csv")
    _write_csv(clean, incoming / "batch_01_clean.csv")
    _write_csv(shifted, incoming / "batch_02_shifted.csv")

    # Malformed: not valid UTF-8 (latin-1 / stray BOM-like bytes inside values).
    text = df.sample(n=20, random_state=SEED).to_csv(index=False, lineterminator="\n")
    lines = [line.encode("utf-8") for line in text.rstrip("\n").split("\n")]
    lines[3] = lines[3].replace(b",benign", b",b\xe9nign").replace(b",malignant", b",m\xe9lignant")
    lines[9] = b"\xff\xfe" + lines[9]
    lines[15] = lines[15].replace(b",", b",\xff", 1)
    (incoming / "batch_03_malformed.csv").write_bytes(b"\n".join(lines) + b"\n")

    # And an empty (0-byte) file, e.g. an upload that never finished.
    (incoming / "batch_04_empty.csv").write_bytes(b"")


def main() -> None:
    build_penguins()
    build_autompg()
    build_cancer()
    for path in sorted(HERE.glob("*/data/**/*.csv")):
        size = path.stat().st_size
        print(f"{path.relative_to(HERE)}  {size:>7} bytes")


if __name__ == "__main__":
    main()
