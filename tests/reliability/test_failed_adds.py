"""A failed add takes back what it wrote; what a killed add left is counted by the gc dry run
and reclaimed by gc."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

import lineage
from lineage.cli import main
from lineage.errors import CollisionError, InvalidName
from lineage.storage.staging import stage
from lineage.store import Store
from lineage.testing import collide, snapshot


def _pack_files(store: Store) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in (Path(store.path) / "packs").glob("*.pack")}


def test_an_add_refused_at_commit_takes_back_its_chunks(store: Store) -> None:
    store.add(os.urandom(300_000), name="model", version="v1")
    before, packs = snapshot(store._backend), _pack_files(store)
    with pytest.raises(InvalidName):  # v1 names other content: found only at commit
        store.add(os.urandom(500_000), name="model", version="v1")
    assert snapshot(store._backend) == before
    assert _pack_files(store) == packs


def test_a_first_add_that_fails_leaves_no_empty_pack(tmp_path: Path) -> None:
    with lineage.open(tmp_path / "store") as store:
        store.add(b"first", name="model", version="v1")
    with lineage.open(tmp_path / "store") as store:  # a new process-wide pack on first write
        packs = _pack_files(store)
        with pytest.raises(InvalidName):
            store.add(os.urandom(100_000), name="model", version="v1")
        assert _pack_files(store) == packs


def test_a_collision_found_while_staging_leaves_nothing(store: Store,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    good = b"approved" * 10
    store.add(good, name="data")
    packs = _pack_files(store)
    evil = os.urandom(400_000) + b"tampered"
    collide(monkeypatch, evil, good)
    with pytest.raises(CollisionError):
        store.add(evil, name="other")
    assert _pack_files(store) == packs


def _stage_and_die(path: Path) -> None:
    store = lineage.open(path)
    stage(store._backend, os.urandom(700_000))  # written and synced, never committed
    os._exit(0)  # as a kill -9 would: no cleanup


def test_bytes_a_killed_add_left_are_counted_by_the_dry_run_and_reclaimed(
        store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store.add(b"kept", name="kept")
    child = multiprocessing.get_context("fork").Process(target=_stage_and_die,
                                                        args=(tmp_path / "store",))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    dry = store.gc(dry_run=True)
    assert dry.orphaned_bytes >= 700_000 and dry.records == 0
    assert main(["--store", store.path, "gc"]) == 0
    assert "in packs left by failed or interrupted adds" in capsys.readouterr().out
    freed = store.gc()
    assert freed.bytes_freed >= 700_000
    assert store.gc(dry_run=True).orphaned_bytes == 0
    assert store.load("kept") == b"kept"
    assert store.verify().ok
