"""Many processes on one store at once: children forked from a parent that holds it open
(and keeps writing), writers and readers racing, the map growing under load."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _campaign import size
from conftest import Figures

import lineage
from lineage.core.hashing import Digest, digest_bytes
from lineage.errors import LineageError
from lineage.storage.lmdb import LmdbBackend
from lineage.store import Store

fork = multiprocessing.get_context("fork")
TIMEOUT = 300


def _guarded(body: Callable[..., None], *args: Any) -> None:
    """Run ``body`` in a child; any exception is printed and exits non-zero."""
    try:
        body(*args)
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


def _start(body: Callable[..., None], *args: Any) -> multiprocessing.process.BaseProcess:
    child = fork.Process(target=_guarded, args=(body, *args))
    child.start()
    return child


def _payload(owner: str, index: int) -> bytes:
    return f"{owner} {index} ".encode() * (1 + index % 40)


# -- fork --------------------------------------------------------------------------------


def _forked_child(store: Store, index: int, parents: dict[str, bytes]) -> None:
    for revision, content in parents.items():  # the parent's records, read through the
        assert store.read_bytes(revision) == content  # handle inherited across fork
    store.add(_payload("child", index), name=f"child{index}")
    with store.run("child-run", params={"index": index}) as run:
        run.log_metric("m", index)
    assert store.load(f"child{index}") == _payload("child", index)


def test_children_forked_from_a_writing_parent_neither_hang_nor_corrupt(
        tmp_path: Path, figures: Figures) -> None:
    children_count = size(12, 200)
    store = lineage.open(tmp_path / "store")
    parents = {}
    for index in range(5):
        store.add(_payload("parent", index), name="parent")
        parents[f"parent@v{index + 1}"] = _payload("parent", index)
    stop = threading.Event()
    written: list[int] = []

    def keep_writing() -> None:  # the parent writes while it forks: locks held at fork
        index = 0
        while not stop.is_set():
            store.add(_payload("background", index), name="background")
            written.append(index)
            index += 1

    background = threading.Thread(target=keep_writing, name="background-writer")
    background.start()
    children = []
    try:
        for index in range(children_count):
            children.append(_start(_forked_child, store, index, parents))
            if len(children) >= 8:  # at most 8 alive at once
                oldest = children[-8]
                oldest.join(TIMEOUT)
                assert oldest.exitcode == 0, f"child exit {oldest.exitcode}"
        for child in children:
            child.join(TIMEOUT)
            assert child.exitcode == 0, f"child exit {child.exitcode} (a hang if None)"
    finally:
        stop.set()
        background.join(TIMEOUT)
    for index in range(children_count):
        assert store.load(f"child{index}") == _payload("child", index)
    assert len(store.runs(op="child-run")) == children_count
    assert [a.version for a in store.versions("background")] == [
        f"v{i + 1}" for i in range(len(written))]
    report = store.verify()
    assert report.ok, report.problems
    store.close()
    figures.update(children=children_count, background_adds=len(written), hangs=0,
                   missing=0, verify="clean")


# -- writers and readers ---------------------------------------------------------------


def _writer(path: Path, worker: int, adds: int, log: Path) -> None:
    store = lineage.open(path)
    rng = random.Random(worker)
    with open(log, "w") as handle:
        for index in range(adds):
            data = _payload(f"writer{worker}", index)
            if index % 10 == 9:  # a run with several outputs: all of it or none
                with store.run("step", params={"worker": worker, "index": index}) as run:
                    for part in range(3):
                        run.log_artifact(data + bytes([part]), name=f"w{worker}-out{part}")
                    run.log_metric("index", index)
                handle.write(f"run {run.record.digest if run.record else '?'}\n")
            else:
                added = store.add(data, name=f"w{worker}", meta={"index": index,
                                                                 "pad": "x" * rng.randint(0, 500)})
                handle.write(f"add {added.version} {digest_bytes(data).hex()}\n")
    store.close()


def _reader(path: Path, workers: int, stop: Any, report: Path) -> None:
    """Query throughout; every run seen must be whole, every version's content right.
    Any exception fails the child (and so the test)."""
    store = lineage.open(path)
    queries = half_written = 0
    while not stop.is_set():
        for run in store.runs(op="step", limit=20):
            queries += 1
            if len(run.outputs) != 3:
                half_written += 1
            for name, output in run.outputs.items():
                artifact = store.resolve(output)  # every output of a visible run is there
                expected = _payload(f"writer{run.params['worker']}", run.params["index"])
                if store.read_bytes(artifact) != expected + bytes([int(name[-1])]):
                    half_written += 1
        for worker in range(workers):
            try:
                latest = store.resolve(f"w{worker}")
            except LineageError as exc:
                if "no name or tag" in str(exc):
                    continue  # that writer has not committed yet
                raise
            queries += 1
            index = latest.meta["index"]
            assert store.read_bytes(latest) == _payload(f"writer{worker}", index)
    report.write_text(json.dumps([queries, half_written]))
    store.close()


def test_writers_and_readers_racing_see_whole_runs_and_lose_nothing(
        tmp_path: Path, figures: Figures) -> None:
    workers, adds, readers = 8, size(40, 1000), 3
    path = tmp_path / "store"
    lineage.open(path).close()
    stop = fork.Event()
    reports = [tmp_path / f"reader{r}.json" for r in range(readers)]
    reading = [_start(_reader, path, workers, stop, reports[r]) for r in range(readers)]
    logs = [tmp_path / f"log{w}" for w in range(workers)]
    writing = [_start(_writer, path, w, adds, logs[w]) for w in range(workers)]
    for child in writing:
        child.join(TIMEOUT * 4)
        assert child.exitcode == 0, f"writer exit {child.exitcode}"
    stop.set()
    for child in reading:
        child.join(TIMEOUT)
        assert child.exitcode == 0, f"reader exit {child.exitcode}"
    results = [json.loads(report.read_text()) for report in reports]
    missing = 0
    with lineage.open(path) as store:
        for worker, log in enumerate(logs):
            for line in log.read_text().splitlines():
                kind, *rest = line.split()
                if kind == "add":
                    version, digest = rest
                    if digest_bytes(store.read_bytes(f"w{worker}@{version}")).hex() != digest:
                        missing += 1
                elif len(store.resolve(Digest.from_hex(rest[0])).outputs) != 3:
                    missing += 1
        report = store.verify()
        assert report.ok, report.problems
    queries = sum(q for q, _ in results)
    half_written = sum(h for _, h in results)
    figures.update(writers=workers, adds_each=adds, readers=readers, reader_queries=queries,
                   missing=missing, errors=0, half_written_runs_seen=half_written)
    assert missing == 0 and half_written == 0 and queries > 0


# -- map growth ------------------------------------------------------------------------

TINY_MAP = 64 * 1024


def _grower(path: Path, worker: int, adds: int) -> None:
    backend = LmdbBackend(path, map_size=TINY_MAP)  # every process starts from a tiny map
    store = Store(backend)
    for index in range(adds):
        store.add({"worker": worker, "index": index, "pad": "y" * (2000 + index % 3000)},
                  name=f"g{worker}")
        if index % 20 == 0:
            store.versions(f"g{worker}")  # reads racing the resizes too
    backend.close()


def test_writers_racing_across_map_resizes_lose_nothing(tmp_path: Path,
                                                        figures: Figures) -> None:
    workers, adds = size(4, 8), size(60, 600)
    path = tmp_path / "store"
    LmdbBackend(path, map_size=TINY_MAP).close()
    growers = [_start(_grower, path, w, adds) for w in range(workers)]
    for child in growers:
        child.join(TIMEOUT * 4)
        assert child.exitcode == 0, f"writer exit {child.exitcode} (a MapFullError?)"
    backend = LmdbBackend(path, map_size=TINY_MAP)
    try:
        store = Store(backend)
        for worker in range(workers):
            versions = store.versions(f"g{worker}")
            assert len(versions) == adds
            assert [store.load(a)["index"] for a in versions] == list(range(adds))
        assert store.verify().ok
        grown = backend.map_size // TINY_MAP
    finally:
        backend.close()
    doublings = grown.bit_length() - 1
    assert doublings >= size(3, 6), grown  # several resizes, raced by every writer
    figures.update(writers=workers, adds_each=adds, map_doublings=doublings,
                   map_mib=round(grown * TINY_MAP / 2**20, 1), lost=0, map_full_errors=0)

