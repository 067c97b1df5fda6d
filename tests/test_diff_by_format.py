"""The diff sees content by its format, whatever the kind: tables get the row diff (by key
when there is one), text files a line diff; and it reads only the rows it shows."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from lineage.adapters.tables import ROW_GROUP_ROWS, read_table
from lineage.cli.app import main
from lineage.diff.model import RowChange, ValueChange
from lineage.errors import UnsupportedValue
from lineage.storage.blobs import BlobFile
from lineage.store import Store


def cohort(n: int = 50, seed: int = 1, start: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"pid": np.arange(start, start + n), "age": rng.integers(20, 90, n),
                         "bmi": rng.normal(27, 4, n).round(1),
                         "site": rng.choice(["north", "south"], n),
                         "label": rng.integers(0, 2, n)})


def edited(frame: pd.DataFrame) -> pd.DataFrame:
    """pid 17 one year older, pid 5 and 6 removed, two new patients appended."""
    new = frame.copy()
    new.loc[new.pid == 17, "age"] += 1
    new = new[~new.pid.isin([5, 6])]
    extra = cohort(2, seed=9, start=1000)
    return pd.concat([new, extra], ignore_index=True)


def write(frame: pd.DataFrame, path: Path) -> Path:
    fmt = path.suffix.lstrip(".")
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


@pytest.mark.parametrize("suffix", ["csv", "tsv", "parquet", "jsonl"])
def test_a_table_file_added_without_a_kind_gets_the_row_diff(store: Store, tmp_path: Path,
                                                             suffix: str) -> None:
    old = cohort()
    new = edited(old).rename(columns={"bmi": "bmi_kg_m2"})
    store.add(write(old, tmp_path / f"v1.{suffix}"), name="train", version="v1.0")
    added = store.add(write(new, tmp_path / f"v2.{suffix}"), name="train", version="v1.1")
    assert added.kind == "file"  # kind is what the user said; the diff looks at the format
    assert isinstance(store.load("train@v1.1"), Path)  # kind decides what load returns
    d = store.diff("train@v1.0", "train@v1.1")
    (artifact,) = d.artifacts
    data = artifact.dataset
    assert data is not None and artifact.cause == "data"
    assert (data.rows_old, data.rows_new) == (50, 50)
    assert [c.name for c in data.columns_added] == ["bmi_kg_m2"]
    assert [c.name for c in data.columns_removed] == ["bmi"]
    assert data.rows_compared_on == ("age", "label", "pid", "site")
    # pid is an obvious key (unique, complete, named like one): pid 17 is one row modified
    assert data.key == "pid"
    assert (data.rows_added, data.rows_removed, data.rows_modified) == (2, 2, 1)
    assert data.examples_modified == (RowChange(17, (ValueChange("age", int(old.age[16]),
                                                                 int(old.age[16]) + 1),)),)
    assert sorted(r["pid"] for r in data.examples_removed) == [5, 6]
    assert sorted(r["pid"] for r in data.examples_added) == [1000, 1001]
    text = str(d)
    assert f"pid 17: age {old.age[16]} → {old.age[16] + 1}" in text
    assert "train@v1.0 → train@v1.1: rows +2 −2, 1 modified, columns" in text


def test_a_declared_key_pairs_edited_rows_and_shows_old_and_new_values(
        store: Store, tmp_path: Path) -> None:
    old = cohort().rename(columns={"pid": "record"})  # not a name that looks like an id
    new = old.copy()
    new.loc[new.record == 17, ["age", "site"]] = [45, "east"]
    store.add(write(old, tmp_path / "a.csv"), name="t", version="v1", key="record")
    store.add(write(new, tmp_path / "b.csv"), name="t", version="v2", key="record")
    data = store.diff("t@v1", "t@v2").artifacts[0].dataset
    assert data is not None and data.key == "record"
    assert (data.rows_added, data.rows_removed, data.rows_modified) == (0, 0, 1)
    (row,) = data.examples_modified
    assert row.key == 17
    assert {c.key: (c.old, c.new) for c in row.changes} == {
        "age": (int(old.age[16]), 45), "site": (old.site[16], "east")}
    unkeyed = tmp_path / "unkeyed"
    from lineage import open as open_store

    with open_store(unkeyed) as other:  # without the key, the same edit is -1 +1
        other.add(write(old, tmp_path / "a.csv"), name="t", version="v1")
        other.add(write(new, tmp_path / "b.csv"), name="t", version="v2")
        plain = other.diff("t@v1", "t@v2").artifacts[0].dataset
        assert plain is not None and plain.key is None
        assert (plain.rows_added, plain.rows_removed, plain.rows_modified) == (1, 1, None)


def test_an_id_like_column_that_repeats_is_not_a_key(store: Store) -> None:
    old = cohort().assign(site_id=lambda f: f.pid % 3).drop(columns=["pid"])
    new = old.copy()
    new.loc[10, "age"] = 99
    store.add(old, name="t", version="v1")
    store.add(new, name="t", version="v2")
    data = store.diff("t@v1", "t@v2").artifacts[0].dataset
    assert data is not None and data.key is None
    assert (data.rows_added, data.rows_removed) == (1, 1)


def test_a_key_must_identify_every_row(store: Store, tmp_path: Path) -> None:
    frame = cohort(5)
    with pytest.raises(UnsupportedValue, match="key column 'nope' is not in this dataset"):
        store.add(frame, name="t", key="nope")
    with pytest.raises(UnsupportedValue, match="repeats values"):
        store.add(frame.assign(pid=[1, 1, 2, 3, 4]), name="t", key="pid")
    with pytest.raises(UnsupportedValue, match="missing value"):
        store.add(frame.assign(pid=[1.0, None, 2, 3, 4]), name="t", key="pid")
    with pytest.raises(UnsupportedValue, match="a dict has no rows to key"):
        store.add({"C": 1.0}, name="config", key="pid")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    with pytest.raises(UnsupportedValue, match="not a table file"):
        store.add(notes, key="pid")
    assert store.names() == []  # nothing was added by any refused call


def test_lineage_add_key_declares_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    home = tmp_path / "store"
    old = cohort().rename(columns={"pid": "record"})
    new = old.copy()
    new.loc[new.record == 3, "bmi"] = 40.5
    assert main(["--store", str(home), "init"]) == 0
    for version, frame in (("v1", old), ("v2", new)):
        path = write(frame, tmp_path / f"{version}.csv")
        assert main(["--store", str(home), "add", str(path), "--name", "t", "--version",
                     version, "--key", "record"]) == 0
    capsys.readouterr()
    assert main(["--store", str(home), "diff", "t@v1", "t@v2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["artifacts"][0]["dataset"]
    assert data["key"] == "record" and data["rows_modified"] == 1
    assert data["examples_modified"] == [{"key": 3, "changes": [
        {"key": "bmi", "old": float(old.bmi[2]), "new": 40.5, "status": "changed"}]}]
    assert main(["--store", str(home), "diff", "t@v1", "t@v2"]) == 0
    assert f"record 3: bmi {old.bmi[2]} → 40.5" in capsys.readouterr().out
    bad = write(old.assign(record=0), tmp_path / "bad.csv")
    assert main(["--store", str(home), "add", str(bad), "--key", "record"]) == 1
    assert "repeats values" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "old", "new"), [
    ("params.yaml", "model:\n  C: 1.0\n  max_iter: 100\n", "model:\n  C: 0.5\n  max_iter: 100\n"
     "  penalty: l2\n"),
    ("config.json", '{\n  "C": 1.0,\n  "seed": 7\n}\n', '{\n  "C": 0.5,\n  "seed": 7\n}\n'),
    ("train.py", "def fit(x):\n    return x\n", "def fit(x):\n    return x * 2\n"),
])
def test_a_text_file_gets_a_line_diff_whatever_its_kind(store: Store, tmp_path: Path,
                                                        name: str, old: str, new: str) -> None:
    path = tmp_path / name
    path.write_text(old)
    store.add(path, name="f", version="v1")
    path.write_text(new)
    store.add(path, name="f", version="v2", kind="config" if name.endswith("yaml") else None)
    d = store.diff("f@v1", "f@v2")
    (artifact,) = d.artifacts
    assert artifact.text is not None
    unified = artifact.text.unified
    removed = [line[1:] for line in unified.splitlines()[2:] if line.startswith("-")]
    added = [line[1:] for line in unified.splitlines()[2:] if line.startswith("+")]
    assert removed == sorted(set(old.splitlines()) - set(new.splitlines()), key=old.index)
    assert added == [line for line in new.splitlines() if line not in old.splitlines()]
    payload = d.to_dict()["artifacts"][0]["text"]
    assert (payload["lines_added"], payload["lines_removed"]) == (len(added), len(removed))
    assert "old_text" not in payload and payload["unified_diff"] == unified
    text = str(d)
    assert f"lines +{len(added)} −{len(removed)}" in text
    assert all(f"    +{line}" in text for line in added)
    assert d.reversed() == store.diff("f@v2", "f@v1")


def test_binary_files_are_compared_by_size_only(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "scan.bin"
    path.write_bytes(b"\x00\x01\x02" * 10)
    store.add(path, name="scan")
    path.write_bytes(b"\x00\x01\x02" * 11)
    store.add(path, name="scan")
    (artifact,) = store.diff("scan@v1", "scan@v2").artifacts
    assert artifact.text is None and artifact.dataset is None
    assert "size: 30 → 33 bytes" in str(store.diff("scan@v1", "scan@v2"))


def test_an_unreadable_table_file_is_a_plain_file_unless_it_is_a_dataset(
        store: Store, tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(b'a,b\n"never closed,1\n')
    added = store.add(path, name="broken")
    assert added.summary["profile"] == "not profiled: not readable as a csv table"
    assert "columns" not in added.summary
    with pytest.raises(UnsupportedValue, match="broken.csv"):
        store.add(path, name="broken", kind="dataset")


def test_keyed_diffs_are_antisymmetric(store: Store) -> None:
    old = cohort()
    store.add(old, name="t", version="v1")
    store.add(edited(old), name="t", version="v2")
    forward, backward = store.diff("t@v1", "t@v2"), store.diff("t@v2", "t@v1")
    assert backward == forward.reversed()
    row = backward.artifacts[0].dataset.examples_modified[0]  # type: ignore[union-attr]
    assert row.changes[0].old == int(old.age[16]) + 1


# -- reading only what is shown ------------------------------------------------------------------


def test_large_frames_are_stored_in_row_groups_small_ones_as_before(store: Store) -> None:
    small = cohort(ROW_GROUP_ROWS)
    buffer = io.BytesIO()
    import pyarrow as pa

    table = pa.Table.from_pandas(small, preserve_index=None)
    artifact = store.add(small, name="small")
    stored = store.read_bytes(artifact)
    assert pq.ParquetFile(io.BytesIO(stored)).metadata.num_row_groups == 1
    pq.write_table(table.replace_schema_metadata(
        pq.ParquetFile(io.BytesIO(stored)).schema_arrow.metadata), buffer)
    assert buffer.getvalue() == stored  # same bytes as the writer's default: same digests
    large = store.add(cohort(2 * ROW_GROUP_ROWS + 10), name="large")
    groups = pq.ParquetFile(io.BytesIO(store.read_bytes(large))).metadata.num_row_groups
    assert groups == 3


def test_example_rows_come_from_the_groups_that_hold_them(store: Store) -> None:
    n = 2 * ROW_GROUP_ROWS + 100
    old = cohort(n, seed=3)
    new = old.copy()
    new.loc[n - 7, "age"] = 200  # in the last row group only
    new.loc[5, "bmi"] = -1.0  # and one in the first
    store.add(old, name="big", version="v1")
    store.add(new, name="big", version="v2")
    data = store.diff("big@v1", "big@v2").artifacts[0].dataset
    assert data is not None and data.rows_modified == 2
    shown = {row.key: row.changes for row in data.examples_modified}
    assert shown == {6: (ValueChange("bmi", float(old.bmi[5]), -1.0),),
                     n - 6: (ValueChange("age", int(old.age[n - 7]), 200),)}
    artifact = store.resolve("big@v2")
    with store._read() as txn:
        rows = read_table(BlobFile(store._backend, txn, artifact.blob), "parquet",
                          rows=[n - 7, 0, ROW_GROUP_ROWS], columns=["pid", "age"])
    assert rows.to_dict("list") == {"pid": [n - 6, 1, ROW_GROUP_ROWS + 1],
                                    "age": [200, int(old.age[0]), int(old.age[ROW_GROUP_ROWS])]}


@pytest.mark.parametrize("suffix", ["csv", "tsv", "parquet", "jsonl"])
def test_read_table_reads_rows_and_columns_in_the_order_asked(tmp_path: Path,
                                                              suffix: str) -> None:
    frame = cohort(30)
    path = write(frame, tmp_path / f"t.{suffix}")
    part = read_table(path, suffix, rows=[20, 3, 7], columns=["site", "pid"])
    expected: dict[str, Any] = frame.iloc[[20, 3, 7]][["site", "pid"]].to_dict("list")
    assert part.to_dict("list") == expected
    assert len(read_table(path, suffix)) == 30
    with pytest.raises(UnsupportedValue, match="out of range"):
        read_table(path, suffix, rows=[30])


def test_re_adding_an_unchanged_table_file_does_not_parse_it_again(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(cohort(), tmp_path / "train.csv")
    first = store.add(path, name="train", target="label")
    import lineage.adapters.pandas as adapter

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the table was parsed again")

    monkeypatch.setattr(adapter, "summarize_table_file", refuse)
    again = store.add(path, name="train", target="label")
    assert again == first and again.version == "v1"  # same summary, same digest
    with pytest.raises(AssertionError, match="parsed again"):
        store.add(path, name="train", target="site")  # another target: another profile


def test_table_files_stored_unprofiled_are_profiled_by_the_diff(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a store written before table files were profiled whatever their kind."""
    import lineage.store.ingest as ingest

    monkeypatch.setattr(ingest, "table_format", lambda path: None)
    old = cohort()
    store.add(write(old, tmp_path / "v1.csv"), name="t", version="v1")
    store.add(write(edited(old).drop(columns=["bmi"]), tmp_path / "v2.csv"), name="t",
              version="v2")
    monkeypatch.undo()
    assert "columns" not in store.resolve("t@v1").summary
    d = store.diff("t@v1", "t@v2")
    data = d.artifacts[0].dataset
    assert data is not None and [c.name for c in data.columns_removed] == ["bmi"]
    assert (data.rows_added, data.rows_removed, data.rows_modified) == (2, 2, 1)
    assert d.artifacts[0].old.digest == store.resolve("t@v1").digest  # identity unchanged
