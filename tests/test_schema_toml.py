"""schema.toml: checked against its declaration, and updated in place on re-inference."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest

from workbench.core.errors import ConfigError
from workbench.data.schema import infer_schema, load_schema, write_schema

FRAME = pd.DataFrame(
    {
        "age": [31, 45, 27, 52],
        "city": ["Oslo", "Bergen", "Oslo", "Bergen"],
        "plan": ["a", "b", "a", "b"],
        "churned": ["yes", "no", "no", "yes"],
    }
)


def _reinfer(path: Path, frame: pd.DataFrame) -> dict:
    schema = infer_schema(frame, "churned", "classification", previous=load_schema(path))
    write_schema(path, schema, "new.csv")
    return schema


def test_reinference_keeps_the_users_comments_order_and_pinned_edits(tmp_path):
    path = tmp_path / "schema.toml"
    write_schema(path, infer_schema(FRAME, "churned", "classification"), "train.csv")
    text = path.read_text()
    text = text.replace("[dataset]\n", "# My rules for every batch.\n[dataset]\n")
    text = text.replace("min_rows = 1", "min_rows = 3  # we never get fewer")
    text = text.replace(
        '[columns."city"]\n', '# Cities we deliver to.\n[columns."city"]\npinned = true\n'
    )
    text = text.replace('categories = ["Bergen", "Oslo"]', 'categories = ["Bergen", "Oslo", "Bodø"]')
    path.write_text(text)

    newer = pd.concat([FRAME, FRAME.assign(age=90, city="Tromsø", plan="c")], ignore_index=True)
    _reinfer(path, newer)

    after = path.read_text()
    assert "# My rules for every batch.\n[dataset]\n" in after
    assert "min_rows = 3  # we never get fewer" in after
    assert "# Cities we deliver to." in after
    assert 'categories = ["Bergen", "Oslo", "Bodø"]' in after  # pinned: the user's list
    assert "inferred from new.csv" in after and "inferred from train.csv" not in after
    assert after.index("[dataset]") < after.index('[columns."age"]') < after.index('"plan"')
    loaded = load_schema(path)
    assert loaded is not None
    assert loaded["columns"]["age"]["max"] == 90  # not pinned: inferred again
    assert loaded["columns"]["plan"]["categories"] == ["a", "b", "c"]
    assert loaded["columns"]["city"]["categories"] == ["Bergen", "Oslo", "Bodø"]
    assert loaded["dataset"]["min_rows"] == 3


def test_reinference_drops_a_column_that_is_gone_unless_pinned(tmp_path):
    path = tmp_path / "schema.toml"
    write_schema(path, infer_schema(FRAME, "churned", "classification"), "train.csv")
    path.write_text(path.read_text().replace('[columns."plan"]\n', '[columns."plan"]\npinned = true\n'))

    _reinfer(path, FRAME.drop(columns=["city", "plan"]))

    columns = tomllib.loads(path.read_text())["columns"]
    assert "city" not in columns and columns["plan"]["pinned"] is True


def test_a_schema_that_is_not_toml_is_written_afresh(tmp_path):
    path = tmp_path / "schema.toml"
    path.write_text("this is [ not toml\n")

    write_schema(path, infer_schema(FRAME, "churned", "classification"), "train.csv")

    assert load_schema(path)["target"]["labels"] == ["no", "yes"]
    assert not list(tmp_path.glob(".*.tmp"))  # no partial file left behind


BASE = '[dataset]\nmin_rows = 1\n\n[columns."age"]\ntype = "integer"\n'


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ("[extra]\na = 1\n", "extra", "unknown section"),
        ("dataset = 3\n", "dataset", "a table"),
        (BASE + "colour = 1\n", "columns.age.colour", "unknown rule"),
        (BASE.replace("integer", "decimal"), "columns.age.type", "expected one of integer"),
        ('[columns."age"]\nnullable = true\n', "columns.age.type", "missing"),
        ('columns = { age = 3 }\n', "columns.age", "a table of rules"),
        (BASE + "nullable = 1\n", "columns.age.nullable", "true or false"),
        (BASE + 'min = "low"\n', "columns.age.min", "a number"),
        (BASE + "max_null_rate = 2\n", "columns.age.max_null_rate", "from 0 to 1"),
        (BASE + "max = nan\n", "columns.age.max", "finite"),
        (BASE + 'out_of_range = "panic"\n', "columns.age.out_of_range", "error, warn, ignore"),
        ("[dataset]\nmin_rows = -1\n", "dataset.min_rows", "at least 0"),
        ('[dataset]\nduplicates = "drop"\n', "dataset.duplicates", "expected one of"),
        ("[dataset]\nspeed = 1\n", "dataset.speed", "unknown key"),
        ('[target]\nname = 3\n', "target.name", "a string"),
        ("[dataset\n", None, "not valid TOML"),
    ],
)
def test_a_bad_schema_names_the_file_and_key(tmp_path, text, key, says):
    path = tmp_path / "schema.toml"
    path.write_text(text)

    with pytest.raises(ConfigError) as caught:
        load_schema(path)

    assert caught.value.key == key
    assert str(path) in caught.value.message and says in caught.value.message


def test_a_schema_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "schema.toml"
    path.write_bytes(b"# caf\xe9\n[dataset]\n")

    with pytest.raises(ConfigError, match="UTF-8"):
        load_schema(path)


@pytest.mark.parametrize(
    "text",
    [
        'columns = { age = { type = "integer", pinned = true, min = 0, max = 99 } }  # mine\n',
        '[columns]\nage.type = "integer"  # mine\nage.pinned = true\nage.min = 0\nage.max = 99\n',
        'dataset = { min_rows = 2 }  # mine\n[columns."age"]\ntype = "integer"\n',
    ],
)
def test_reinference_keeps_other_valid_layouts(tmp_path, text):
    path = tmp_path / "schema.toml"
    path.write_text(text)

    _reinfer(path, FRAME)

    assert "# mine" in path.read_text()
    loaded = load_schema(path)
    assert set(loaded["columns"]) == {"age", "city", "plan", "churned"}
    assert loaded["target"]["labels"] == ["no", "yes"]
