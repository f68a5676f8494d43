"""Artifacts a run logged, crafted to trouble the viewer: previews read a
bounded head of any file, and a file that is not what its name says (broken or
too-deep JSON, a CSV with a giant field, binary) is shown as text or named
binary, never raised."""

from __future__ import annotations

from workbench.runs import artifact_view


def test_previews_are_size_limited_and_never_fail(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"line\n" * 200_000)  # 1 MB of text
    shown = artifact_view.preview(big, "log.txt")
    assert shown.kind == "text" and shown.truncated and shown.size == 1_000_000
    assert len(shown.text) <= artifact_view.MAX_BYTES
    rows = tmp_path / "rows"
    rows.write_text("a,b\n" + "1,2\n" * 1000)
    table = artifact_view.preview(rows, "rows.csv")
    assert table.kind == "csv" and len(table.rows) == artifact_view.MAX_ROWS and table.truncated
    broken = tmp_path / "broken"
    broken.write_text('{"not": json')
    assert artifact_view.preview(broken, "x.json").kind == "text"
    deep = tmp_path / "deep"
    deep.write_text("[" * 100_000 + "]" * 100_000)  # too deep to parse: shown as text
    assert artifact_view.preview(deep, "deep.json").kind == "text"
    assert artifact_view.preview(tmp_path / "gone", "gone.txt").kind == "missing"
    giant = tmp_path / "giant"
    giant.write_text("a,b\n" + "x" * 200_000 + ",1\n")  # past csv's field limit
    assert artifact_view.preview(giant, "giant.csv").kind == "text"
    binary = tmp_path / "binary"
    binary.write_bytes(b"a,b\n\x00\x01")
    shown = artifact_view.preview(binary, "data.csv")
    assert shown.kind == "binary" and shown.text == "binary file, 6 bytes"
