"""Regression tests for review findings on steps and runs (memo keys, outputs, inputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lineage
from lineage.errors import ChunkVanished
from lineage.store import Store


def test_bytes_and_a_path_with_the_same_content_are_different_calls(
    store: Store, tmp_path: Path
) -> None:
    @lineage.step(store=store)
    def describe(value: Any) -> str:
        return type(value).__name__

    file = tmp_path / "hello.txt"
    file.write_bytes(b"hello")
    assert describe(b"hello") == "bytes"
    assert describe(file) == "PosixPath"


def test_an_output_file_edited_since_it_was_recorded_is_never_silently_restored(
    store: Store, tmp_path: Path
) -> None:
    calls = []
    report = tmp_path / "report.txt"

    @lineage.step(store=store)
    def write_report(n: int) -> Path:
        calls.append(n)
        report.write_text(f"n={n}\n")
        return report

    write_report(1)
    report.unlink()
    assert write_report(1).read_text() == "n=1\n"  # missing: restored from the store
    assert calls == [1]
    report.write_text("n=1\nhand-written notes\n")
    write_report(1)  # edited: a miss, so the step runs (it owns the file), no silent restore
    assert calls == [1, 1]


def test_two_versions_of_one_name_used_in_a_run_are_both_inputs(store: Store) -> None:
    store.add({"rows": 1}, name="testset", version="v1")
    store.add({"rows": 2}, name="testset", version="v2")
    with store.run("evaluate") as run:
        run.log_input("testset@v1")
        run.log_input("testset@v2")
    record = run.record
    assert record is not None
    assert len(record.inputs) == 2
    assert [r.digest for r in store.descendants("testset@v1")] == [record.digest]


def test_a_miss_returns_what_a_hit_returns(store: Store) -> None:
    @lineage.step(store=store)
    def summarize(n: int) -> tuple[Any, ...]:
        return [(1, n)], np.float32(0.5), {"b": 2, "a": (1,)}

    first = summarize(1)
    again = summarize(1)
    assert first == again
    assert [type(v) for v in first] == [type(v) for v in again]


def test_a_run_whose_reused_content_vanishes_is_staged_again_and_kept(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Store._write
    failures = [1]

    def write_once_vanishing(self: Store, apply: Any) -> Any:
        if failures:
            failures.pop()
            raise ChunkVanished("gone")
        return original(self, apply)

    with store.run("train") as run:
        run.log_metric("loss", 0.25)
        run.log_artifact({"w": [1, 2]}, name="weights")
        monkeypatch.setattr(Store, "_write", write_once_vanishing)
    record = run.record
    assert record is not None and record.status == "ok"
    assert store.load("weights") == {"w": [1, 2]}
    assert store.resolve(record.digest).metrics == {"loss": 0.25}


def test_a_csv_dataset_loads_as_a_dataframe_and_as_a_path_on_request(
    store: Store, tmp_path: Path
) -> None:
    source = tmp_path / "cohort.csv"
    source.write_text("age,label\n30,0\n71,1\n")
    store.add(source, name="cohort", kind="dataset", target="label")
    frame = store.load("cohort")
    assert list(frame.columns) == ["age", "label"]
    assert frame["age"].tolist() == [30, 71]
    assert store.load("cohort", as_path=True).read_text() == source.read_text()
    store.add(source, name="plain")  # not a dataset: a file, so a path
    assert isinstance(store.load("plain"), Path)
