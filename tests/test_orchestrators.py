"""A ``@lineage.step`` pipeline runs unchanged as Prefect tasks (a real flow, run twice)."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

import lineage

# Before Prefect reads its settings: a scratch home (its temporary server's database), no
# telemetry (the network beyond 127.0.0.1 is off limits), and no INFO lines from the
# server it stops at exit, after pytest has closed the streams.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="lineage-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_LOGGING_SERVER_LEVEL", "WARNING")
prefect = pytest.importorskip("prefect")


@lineage.step(ignore=["marks"])
def scale(values: list[float], factor: float, marks: str) -> list[float]:
    Path(marks, uuid.uuid4().hex).touch()
    return [v * factor for v in values]


@lineage.step(ignore=["marks"])
def total(values: list[float], marks: str) -> float:
    Path(marks, uuid.uuid4().hex).touch()
    return sum(values)


def test_steps_run_unchanged_as_prefect_tasks(tmp_path: Path) -> None:
    from prefect import flow, task

    @flow(name="scaled-total")
    def pipeline(factor: float, marks: str) -> float:
        scaled = task(scale)([1.0, 2.0, 3.0], factor, marks)
        return task(total)(scaled, marks)

    marks = tmp_path / "marks"
    marks.mkdir()
    store = lineage.open(tmp_path / "store")
    with store:
        assert pipeline(2.0, str(marks)) == 12.0
        assert pipeline(2.0, str(marks)) == 12.0  # a re-run: every step a cache hit
    assert len(os.listdir(marks)) == 2
    store = lineage.open(tmp_path / "store")
    assert len(store.runs(op="scale")) == 1 and len(store.runs(op="total")) == 1
    assert store.runs(op="total")[0].params == {"values": [2.0, 4.0, 6.0]}
