"""Processes killed with SIGKILL: writers in the middle of their transactions, readers
holding read transactions. Nothing whose commit returned is lost, the store opens and
verifies clean, dead readers are cleared at the next open and the file stays bounded."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _campaign import size
from conftest import Figures

import lineage
from lineage.storage import schema
from lineage.store import Store

fork = multiprocessing.get_context("fork")
ROUNDS_PER_STORE = 25  # a fresh store after this many rounds keeps verify's cost bounded


def _writer(path: Path, log: Path, seed: int) -> None:
    """Add forever, writing one line per add *after* its commit returned."""
    rng = random.Random(seed)
    store = lineage.open(path)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    name = f"w{seed}"
    index = 0
    while True:
        choice = rng.random()
        if choice < 0.55:
            added = store.add(rng.randbytes(rng.randint(1, 3000)), name=name,
                              meta={"index": index})
            line = f"artifact {added.name}@{added.version} {added.digest}"
        elif choice < 0.7:
            added = store.add(rng.randbytes(rng.randint(200_000, 900_000)), name=f"{name}-big")
            line = f"artifact {added.name}@{added.version} {added.digest}"
        else:
            with store.run("train", params={"writer": seed, "index": index}) as run:
                for step in range(rng.randint(1, 50)):
                    run.log_metric("loss", 1 / (step + 1), step)
                run.log_artifact(rng.randbytes(rng.randint(10, 50_000)), name=f"{name}-out")
            assert run.record is not None
            line = f"run {run.record.digest}"
        os.write(fd, (line + "\n").encode())
        index += 1


def _committed(logs: list[Path]) -> list[tuple[str, str]]:
    """Every complete line the writers wrote (a line cut by the kill is ignored)."""
    found = []
    for log in logs:
        if not log.exists():
            continue
        text = log.read_text()
        lines = text.split("\n")[:-1]  # the part after the last newline is incomplete
        for line in lines:
            kind, *rest = line.split()
            found.append((kind, " ".join(rest)))
    return found


def _check_round(path: Path, committed: list[tuple[str, str]]) -> dict[str, int]:
    with lineage.open(path) as store:
        for kind, detail in committed:
            if kind == "artifact":
                revision, digest = detail.split()
                assert store.resolve(revision).digest == digest, revision
                store.read_bytes(revision)  # content intact, re-hashed
            else:
                run = store.resolve(lineage.core.hashing.Digest.from_hex(detail))
                for output in run.outputs.values():
                    store.read_bytes(output)
        report = store.verify()
        assert report.ok, report.problems
        with store._read() as txn:
            runs = len(schema.record_digests(txn, "run"))
        return {"records": report.records, "runs": runs,
                "orphaned": store.gc(dry_run=True).orphaned_bytes}


@pytest.mark.parametrize("writers", [1, 4, 8])
def test_writers_killed_mid_transaction_lose_nothing_that_committed(
        tmp_path: Path, writers: int, figures: Figures) -> None:
    rounds = size(3, 200)
    rng = random.Random(writers)
    totals: Counter[str] = Counter()
    orphaned: dict[Path, int] = {}  # the last gc dry run of each store
    for round_ in range(rounds):
        path = tmp_path / f"store{round_ // ROUNDS_PER_STORE}"
        logs = [tmp_path / f"log{round_}-{w}" for w in range(writers)]
        children = [fork.Process(target=_writer, args=(path, logs[w], round_ * 100 + w))
                    for w in range(writers)]
        for child in children:
            child.start()
        time.sleep(rng.uniform(0.2, 0.8))
        for child in children:  # staggered, so that some die while others still write
            time.sleep(rng.uniform(0, 0.05))
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        for child in children:
            child.join(30)
            assert child.exitcode == -signal.SIGKILL
        committed = _committed(logs)
        found = _check_round(path, committed)
        totals["committed"] += len(committed)
        orphaned[path] = found["orphaned"]
        totals["rounds"] += 1
    figures.update(writers=writers, rounds=totals["rounds"], committed_checked=totals[
        "committed"], missing=0, verify_failures=0,
        orphaned_mib=round(sum(orphaned.values()) / 2**20, 1))


# -- stale readers --------------------------------------------------------------------------


def _reader(path: Path, ready: Any) -> None:
    """Hold a read transaction until killed."""
    store = lineage.open(path)
    with store._read() as txn:
        next(txn.items("records"), None)
        ready.release()
        time.sleep(3600)


def _churn(store: Store, count: int) -> None:
    """Transactions that change nothing in size: each copies pages on write, freeing the
    old ones, which LMDB reuses only once no reader holds a snapshot older than them."""
    for index in range(count):
        store._write(lambda txn, i=index: schema.put_setting(txn, "churn", i))
    store._write(lambda txn: schema.put_setting(txn, "churn", None))


def _live(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


def _reader_pids(store: Store) -> list[int]:
    table = store._backend._environment().readers().splitlines()[1:]
    return [int(line.split()[0]) for line in table if line.split()]


def test_killed_readers_are_cleared_never_block_writers_and_the_file_stays_bounded(
        tmp_path: Path, figures: Figures, monkeypatch: pytest.MonkeyPatch) -> None:
    readers = 20
    churn = size(300, 3000)
    path = tmp_path / "store"
    with lineage.open(path) as store:
        for index in range(50):
            store.add(f"record {index}".encode() * 20, name="data")
    ready = fork.Semaphore(0)
    children = [fork.Process(target=_reader, args=(path, ready)) for _ in range(readers)]
    for child in children:
        child.start()
    for _ in children:
        assert ready.acquire(timeout=60)
    data = path / "data.mdb"
    writer = lineage.open(path)  # a long-lived writer, open before the readers die
    writer.add(b"written while 20 readers hold old snapshots", name="during")  # not blocked
    for child in children:
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(30)
    dead = {child.pid for child in children}
    assert dead <= set(_reader_pids(writer))  # their slots outlive them
    before = data.stat().st_size
    _churn(writer, churn)  # the dead readers pin their snapshot: no page can be reused
    grown_while_stale = data.stat().st_size - before
    monkeypatch.setattr(lineage.storage.lmdb, "_READER_CHECK_S", 0.0)  # its next check is due
    _churn(writer, 1)
    assert not dead & set(_reader_pids(writer))
    settled = data.stat().st_size
    _churn(writer, churn)
    grown_after = data.stat().st_size - settled
    writer.close()
    assert grown_after <= 64 * 4096, grown_after  # pages are reused: bounded
    children = [fork.Process(target=_reader, args=(path, ready)) for _ in range(readers)]
    for child in children:
        child.start()
    for _ in children:
        assert ready.acquire(timeout=60)
    for child in children:
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(30)
    with lineage.open(path) as store:  # the next open clears them too
        assert not {child.pid for child in children} & set(_reader_pids(store))
        assert all(_live([pid]) for pid in _reader_pids(store))
        assert store.load("during") == b"written while 20 readers hold old snapshots"
        assert store.verify().ok
    figures.update(readers_killed=2 * readers, churn_transactions=churn,
                   grown_while_stale_kib=grown_while_stale // 1024,
                   grown_after_clear_kib=grown_after // 1024, stale_after_open=0)
