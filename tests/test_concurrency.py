"""Many processes on one LMDB store; fork after open; the map growing by itself."""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lineage
from lineage.storage.lmdb import LmdbBackend
from lineage.store import Store

WORKERS = 4
ADDS = 500
TINY_MAP = 64 * 1024

fork = multiprocessing.get_context("fork")


def _run_child(body: Callable[..., None], *args: Any) -> None:
    """Run ``body`` in a child; report its exception on stderr and exit non-zero."""
    try:
        body(*args)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


def _start(body: Callable[..., None], *args: Any) -> multiprocessing.process.BaseProcess:
    child = fork.Process(target=_run_child, args=(body, *args))
    child.start()
    return child


def _payload(worker: int, index: int) -> bytes:
    return f"worker {worker} item {index} ".encode() * 8


def _common(index: int) -> bytes:
    return f"shared item {index}".encode()


def _adder(path: Path, worker: int, barrier: Any) -> None:
    store = lineage.open(path)
    barrier.wait()
    for index in range(ADDS):
        added = store.add(_payload(worker, index), name=f"worker-{worker}", meta={"i": index})
        assert added.version == f"v{index + 1}", added
        if index % 25 == 0:  # every worker also adds the same contents under one name
            store.add(_common(index), name="common")
    store.close()


def test_four_processes_adding_500_each_leave_everything_readable(tmp_path: Path) -> None:
    path = tmp_path / "store"
    barrier = fork.Barrier(WORKERS)
    children = [_start(_adder, path, worker, barrier) for worker in range(WORKERS)]
    for child in children:
        child.join(timeout=120)
    assert [child.exitcode for child in children] == [0] * WORKERS
    with lineage.open(path) as store:
        for worker in range(WORKERS):
            versions = store.versions(f"worker-{worker}")
            assert [a.version for a in versions] == [f"v{i + 1}" for i in range(ADDS)]
            for index, artifact in enumerate(versions):
                assert artifact.meta == {"i": index}
                assert store.read_bytes(artifact) == _payload(worker, index)
        common = store.versions("common")
        assert len({a.version for a in common}) == len(common)
        assert {store.read_bytes(a) for a in common} == {_common(i) for i in range(0, ADDS, 25)}
        report = store.verify()
        assert report.ok, report.problems
        assert report.records == WORKERS * ADDS + ADDS // 25


def _forked_child(store: Store, path: Path) -> None:
    assert store.load("before") == b"written by the parent before fork"
    store.add(b"written by the child", name="child")
    assert store.load("child") == b"written by the child"
    again = lineage.open(path)  # the path's shared backend, reopened in this process
    assert again.load("child") == b"written by the child"
    assert again.verify().ok


def test_a_child_forked_after_open_writes_and_reads_and_the_parent_carries_on(
    store: Store, tmp_path: Path
) -> None:
    store.add(b"written by the parent before fork", name="before")
    assert store.load("before") == b"written by the parent before fork"  # maps the pack
    child = _start(_forked_child, store, tmp_path / "store")
    child.join(timeout=60)
    assert child.exitcode == 0
    assert store.load("child") == b"written by the child"
    store.add(b"written by the parent after fork", name="after")
    assert store.load("after") == b"written by the parent after fork"
    assert store.load("before") == b"written by the parent before fork"
    report = store.verify()
    assert report.ok and report.records == 3


def _fill(backend: LmdbBackend, prefix: bytes, count: int, size: int) -> None:
    def apply(txn: Any) -> None:
        for index in range(count):
            txn.put("metrics", prefix + index.to_bytes(4, "big"), bytes([index % 251]) * size)

    backend.write(apply)


def test_a_tiny_map_grows_until_everything_lands(tmp_path: Path) -> None:
    backend = LmdbBackend(tmp_path / "store", map_size=TINY_MAP)
    try:
        _fill(backend, b"big-txn", 2000, 2000)  # ~4 MB in one transaction
        store = Store(backend)
        added = [store.add({"index": i, "pad": "x" * 3000}, name="config") for i in range(100)]
        assert backend.map_size > TINY_MAP
        with backend.read() as txn:
            assert len(list(txn.items("metrics", b"big-txn"))) == 2000
        assert [store.load(a)["index"] for a in added] == list(range(100))
        assert store.verify().ok
    finally:
        backend.close()


def _grow_from_child(backend: LmdbBackend) -> None:
    _fill(backend, b"child", 3000, 2000)  # the inherited backend, reopened in the child
    backend.close()


def test_a_map_grown_by_another_process_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "store"
    backend = LmdbBackend(path, map_size=TINY_MAP)
    try:
        _fill(backend, b"parent", 10, 100)
        before = backend.map_size
        child = _start(_grow_from_child, backend)
        child.join(timeout=60)
        assert child.exitcode == 0
        with backend.read() as txn:
            assert len(list(txn.items("metrics", b"child"))) == 3000
        _fill(backend, b"after", 1000, 2000)
        with backend.read() as txn:
            assert len(list(txn.items("metrics", b"after"))) == 1000
            assert len(list(txn.items("metrics", b"parent"))) == 10
        assert backend.map_size > before
    finally:
        backend.close()
