"""The contract every storage backend must pass.

Subclass :class:`StoreContract` in a pytest module and implement :meth:`~StoreContract.
make_backend` (and, for a backend that persists, :meth:`~StoreContract.reopen` and
:meth:`~StoreContract.corrupt_chunk`)::

    from lineage.storage.lmdb import LmdbBackend
    from lineage.testing import StoreContract

    class TestLmdbBackend(StoreContract):
        def make_backend(self, path):
            return LmdbBackend(path)

The suite checks the backend primitives (namespaced reads and writes, prefix and reverse
iteration, atomic transactions, chunk bytes, compaction, close) and then the whole
:class:`~lineage.store.store.Store` running over the backend (add, load, resolve, tag, promote,
log, gc, verify), in the spirit of zarr's ``zarr.testing.store.StoreTests``.

This module imports pytest and hypothesis; it is meant for test suites only.
"""

# Test methods and fixtures are named as specifications; docstrings would repeat the names.
# ruff: noqa: D102

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lineage.core.hashing import Digest, digest_bytes
from lineage.core.records import Run
from lineage.errors import (
    IntegrityError,
    InvalidName,
    RevisionNotFound,
    StoreError,
)
from lineage.storage.base import Backend, ReadTxn, WriteTxn
from lineage.storage.schema import NAMESPACES, index_record
from lineage.store.store import Store
from lineage.testing.faults import snapshot

__all__ = ["StoreContract"]


class _Boom(Exception):
    """Raised inside a transaction to check it is rolled back."""


# Small alphabets make shared prefixes (and the 0x00/0xff edges) common.
_BYTE = st.sampled_from([0, 1, 0x61, 0xFE, 0xFF])
_KEYS = st.lists(_BYTE, min_size=1, max_size=5).map(bytes)


class StoreContract:
    """Tests every :class:`~lineage.storage.base.Backend` must pass.

    Subclasses implement :meth:`make_backend`; persistent backends also set
    ``persistent = True`` (the default) and implement :meth:`reopen`.
    """

    #: Whether what is written survives closing and reopening the backend.
    persistent: ClassVar[bool] = True

    def make_backend(self, path: Path) -> Backend:
        """A new, empty backend whose files (if any) live under ``path``."""
        raise NotImplementedError

    def reopen(self, backend: Backend, path: Path) -> Backend:
        """Close ``backend`` and open its storage again (persistent backends only)."""
        backend.close()
        return self.make_backend(path)

    def corrupt_chunk(self, backend: Backend, location: bytes) -> None:
        """Change one stored byte of the chunk at ``location``."""
        pytest.skip("this backend offers no way to corrupt a chunk")

    # -- fixtures ---------------------------------------------------------------------

    @pytest.fixture
    def backend_path(self, tmp_path: Path) -> Path:
        return tmp_path / "backend"

    @pytest.fixture
    def backend(self, backend_path: Path) -> Iterator[Backend]:
        made = self.make_backend(backend_path)
        self._opened = [made]
        yield made
        for opened in self._opened:
            opened.close()

    @pytest.fixture
    def store(self, backend: Backend) -> Store:
        return Store(backend)

    def _reopen(self, backend: Backend, path: Path) -> Backend:
        fresh = self.reopen(backend, path) if self.persistent else backend
        self._opened.append(fresh)
        return fresh

    # -- reads and writes -------------------------------------------------------------

    def test_new_backend_is_empty(self, backend: Backend) -> None:
        assert all(not table for table in snapshot(backend).values())

    def test_location_is_a_string(self, backend: Backend) -> None:
        assert isinstance(backend.location, str) and backend.location

    def test_put_is_visible_in_its_transaction_and_after_commit(self, backend: Backend) -> None:
        def apply(txn: WriteTxn) -> bytes | None:
            txn.put("records", b"k", b"v")
            return txn.get("records", b"k")

        assert backend.write(apply) == b"v"
        with backend.read() as txn:
            assert txn.get("records", b"k") == b"v"
            assert txn.get("records", b"missing") is None

    def test_empty_values_are_kept(self, backend: Backend) -> None:
        backend.write(lambda txn: txn.put("edges_out", b"edge", b""))
        with backend.read() as txn:
            assert txn.get("edges_out", b"edge") == b""
            assert list(txn.items("edges_out")) == [(b"edge", b"")]

    def test_namespaces_are_separate(self, backend: Backend) -> None:
        def apply(txn: WriteTxn) -> None:
            for index, namespace in enumerate(NAMESPACES):
                txn.put(namespace, b"same", bytes([index]))

        backend.write(apply)
        with backend.read() as txn:
            for index, namespace in enumerate(NAMESPACES):
                assert txn.get(namespace, b"same") == bytes([index])
                assert len(list(txn.items(namespace))) == 1

    def test_overwrite_and_delete(self, backend: Backend) -> None:
        backend.write(lambda txn: txn.put("tags", b"t", b"1"))
        backend.write(lambda txn: txn.put("tags", b"t", b"2"))
        with backend.read() as txn:
            assert txn.get("tags", b"t") == b"2"
        assert backend.write(lambda txn: txn.delete("tags", b"t")) is True
        assert backend.write(lambda txn: txn.delete("tags", b"t")) is False
        with backend.read() as txn:
            assert txn.get("tags", b"t") is None

    def test_items_and_keys_with_prefix_and_reverse(self, backend: Backend) -> None:
        keys = [b"a", b"a\x00", b"a\x01", b"a\xff", b"a\xff\xff", b"ab", b"b", b"\xff", b"\xff\x01"]

        def apply(txn: WriteTxn) -> None:
            for key in keys:
                txn.put("by_name", key, key + b"!")

        backend.write(apply)
        cases = [b"", b"a", b"a\xff", b"a\xff\xff", b"b", b"\xff", b"c", b"\x00", b"zz"]
        with backend.read() as txn:
            for prefix in cases:
                expected = sorted(k for k in keys if k.startswith(prefix))
                forward = list(txn.items("by_name", prefix))
                assert forward == [(k, k + b"!") for k in expected], prefix
                backward = [k for k, _v in txn.items("by_name", prefix, reverse=True)]
                assert backward == expected[::-1], prefix
                assert list(txn.keys("by_name", prefix)) == expected, prefix
                assert list(txn.keys("by_name", prefix, reverse=True)) == expected[::-1], prefix

    # The backend fixture is reset by each example itself; subclasses share this method.
    @settings(
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
        max_examples=40,
    )
    @given(
        keys=st.sets(_KEYS, max_size=30),
        prefix=st.lists(_BYTE, max_size=3).map(bytes),
        reverse=st.booleans(),
    )
    def test_items_match_a_sorted_dict(
        self, backend: Backend, keys: set[bytes], prefix: bytes, reverse: bool
    ) -> None:
        def replace(txn: WriteTxn) -> None:
            for key, _value in list(txn.items("history")):
                txn.delete("history", key)
            for key in keys:
                txn.put("history", key, key[::-1])

        backend.write(replace)
        expected = sorted((k for k in keys if k.startswith(prefix)), reverse=reverse)
        with backend.read() as txn:
            found = list(txn.items("history", prefix, reverse=reverse))
            found_keys = list(txn.keys("history", prefix, reverse=reverse))
        assert found == [(k, k[::-1]) for k in expected]
        assert found_keys == expected

    def test_items_inside_a_write_see_its_own_changes(self, backend: Backend) -> None:
        def fill(txn: WriteTxn) -> None:
            for key in (b"x1", b"x2", b"x3"):
                txn.put("by_kind", key, b"")

        backend.write(fill)

        def apply(txn: WriteTxn) -> list[bytes]:
            txn.delete("by_kind", b"x2")
            txn.put("by_kind", b"x0", b"")
            return [k for k, _v in txn.items("by_kind", b"x", reverse=True)] + list(
                txn.keys("by_kind", b"x"))

        assert backend.write(apply) == [b"x3", b"x1", b"x0", b"x0", b"x1", b"x3"]

    def test_write_returns_what_apply_returns(self, backend: Backend) -> None:
        assert backend.write(lambda txn: 42) == 42

    def test_an_exception_inside_write_leaves_nothing(self, backend: Backend) -> None:
        backend.write(lambda txn: txn.put("records", b"kept", b"old"))
        before = snapshot(backend)

        def apply(txn: WriteTxn) -> None:
            txn.put("records", b"new", b"value")
            txn.put("records", b"kept", b"changed")
            txn.delete("records", b"kept")
            txn.put("edges_in", b"edge", b"")
            raise _Boom

        with pytest.raises(_Boom):
            backend.write(apply)
        assert snapshot(backend) == before

    def test_a_read_sees_one_consistent_state(self, backend: Backend) -> None:
        backend.write(lambda txn: txn.put("tags", b"t", b"before"))
        def change(txn: WriteTxn) -> None:
            txn.put("tags", b"t", b"after")
            txn.put("tags", b"u", b"")

        with backend.read() as txn:
            backend.write(change)
            assert txn.get("tags", b"t") == b"before"
            assert [k for k, _v in txn.items("tags")] == [b"t"]
        with backend.read() as txn:
            assert txn.get("tags", b"t") == b"after"

    def test_writes_survive_reopening(self, backend: Backend, backend_path: Path) -> None:
        if not self.persistent:
            pytest.skip("backend does not persist")
        backend.write(lambda txn: txn.put("settings", b"schema", b"1"))
        [location] = backend.write_chunks([(b"d" * 16, b"chunk bytes")])
        backend.write(lambda txn: txn.put("chunks", b"d" * 16, location))
        fresh = self._reopen(backend, backend_path)
        with fresh.read() as txn:
            assert txn.get("settings", b"schema") == b"1"
            assert bytes(fresh.read_chunk(txn.get("chunks", b"d" * 16) or b"")) == b"chunk bytes"

    # -- chunk bytes ------------------------------------------------------------------

    def test_write_chunks_then_read_chunk_round_trips(self, backend: Backend) -> None:
        pieces = [bytes([n]) * size for n, size in enumerate((1, 100, 65536, 300_000), 1)]
        pieces.append(memoryview(b"from a view"))  # type: ignore[arg-type]
        locations = backend.write_chunks([(digest_bytes(p), p) for p in pieces])
        assert len(locations) == len(pieces)
        assert len(set(locations)) == len(pieces)
        for piece, location in zip(pieces, locations, strict=True):
            assert bytes(backend.read_chunk(location)) == bytes(piece)
        assert backend.write_chunks([]) == []

    def test_compact_keeps_live_chunks_and_frees_dead_ones(
        self, backend: Backend, backend_path: Path
    ) -> None:
        live = {digest_bytes(bytes([n]) * 5000): bytes([n]) * 5000 for n in range(3)}
        dead = {digest_bytes(bytes([n]) * 7000): bytes([n]) * 7000 for n in range(3)}
        items = [*live.items(), *dead.items()]
        locations = dict(zip(live | dead, backend.write_chunks(items), strict=True))

        def name_live(txn: WriteTxn) -> None:
            for digest in live:
                txn.put("chunks", digest, locations[digest])

        backend.write(name_live)
        backend = self._reopen(backend, backend_path)  # compaction skips a live writer's pack
        freed = backend.compact()
        assert freed >= sum(len(data) for data in dead.values())
        with backend.read() as txn:
            assert sorted(k for k, _v in txn.items("chunks")) == sorted(live)
            for digest, data in live.items():
                location = txn.get("chunks", digest)
                assert location is not None
                assert bytes(backend.read_chunk(location)) == data
        assert backend.compact() == 0

    # -- life cycle -------------------------------------------------------------------

    @pytest.mark.parametrize(
        "use",
        [
            lambda b: b.read().__enter__(),
            lambda b: b.write(lambda txn: None),
            lambda b: b.write_chunks([(b"x" * 16, b"data")]),
            lambda b: b.compact(),
        ],
        ids=["read", "write", "write_chunks", "compact"],
    )
    def test_use_after_close_raises_store_error(
        self, backend: Backend, use: Callable[[Backend], Any]
    ) -> None:
        backend.close()
        backend.close()  # closing twice is harmless
        with pytest.raises(StoreError):
            use(backend)

    def test_read_chunk_after_close_raises_store_error(self, backend: Backend) -> None:
        [location] = backend.write_chunks([(b"x" * 16, b"data")])
        backend.close()
        with pytest.raises(StoreError):
            backend.read_chunk(location)

    # -- the Store over this backend --------------------------------------------------

    def test_store_add_load_and_resolve(self, store: Store) -> None:
        first = store.add(b"hello", name="greeting")
        assert first.version == "v1" and first.name == "greeting"
        assert store.load("greeting") == b"hello"
        for revision in ("greeting", "greeting@v1", first.digest, first.digest[:8]):
            assert store.resolve(revision) == first
        assert store.resolve("greeting@v1").version == "v1"

    def test_store_readding_unchanged_content_adds_no_version(self, store: Store) -> None:
        store.add(b"same", name="data")
        again = store.add(b"same", name="data")
        assert again.version == "v1"
        assert [a.version for a in store.versions("data")] == ["v1"]
        assert len(store.log("data")) == 1

    def test_store_versions_and_going_back(self, store: Store) -> None:
        v1 = store.add(b"one", name="data")
        v2 = store.add(b"two", name="data")
        v3 = store.add(b"three", name="data", version="release-3")
        assert (v2.version, v3.version) == ("v2", "release-3")
        assert store.resolve("data") == v3
        assert store.resolve("data~1") == v2
        assert store.resolve("data~2") == v1
        assert store.resolve("data@release-3~2") == v1
        assert store.load("data@v2") == b"two"
        assert [a.version for a in store.versions("data")] == ["v1", "v2", "release-3"]
        assert store.names() == ["data"]
        with pytest.raises(RevisionNotFound):
            store.resolve("data~3")

    def test_store_explicit_version_is_immutable(self, store: Store) -> None:
        store.add(b"one", name="data", version="v1.0")
        before = snapshot(store._backend)
        with pytest.raises(InvalidName, match="v1.0"):
            store.add(b"other", name="data", version="v1.0")
        assert snapshot(store._backend) == before
        assert store.add(b"one", name="data", version="v1.0").version == "v1.0"

    def test_store_configs_round_trip(self, store: Store) -> None:
        config = {"C": 0.5, "layers": [1, 2, 3], "name": "lr", "none": None, "flag": True}
        added = store.add(config, name="config")
        assert added.kind == "config"
        assert store.load("config") == config

    def test_store_tags_move_and_go(self, store: Store) -> None:
        v1 = store.add(b"one", name="model")
        v2 = store.add(b"two", name="model")
        store.tag("model@v1", "model_best")
        assert store.resolve("model_best") == v1
        store.tag("model@v2", "model_best")
        assert store.resolve("model_best") == v2
        assert store.resolve("model_best~1") == v1
        store.untag("model_best")
        with pytest.raises(RevisionNotFound):
            store.resolve("model_best")
        moves = [(e.ref, e.key, e.target) for e in store.log("model_best")]
        assert moves == [
            ("tag", "model_best", v1.raw_digest),
            ("tag", "model_best", v2.raw_digest),
            ("tag", "model_best", None),
        ]

    def test_store_promote_moves_a_stage_and_keeps_history(self, store: Store) -> None:
        v1 = store.add(b"one", name="model")
        v2 = store.add(b"two", name="model")
        store.promote("model@v1", "production", reason="validated")
        assert store.resolve("model@production") == v1
        assert store.resolve("model@production").version == "v1"
        store.promote("model@v2", "production")
        assert store.resolve("model@production") == v2
        assert store.stages("model") == {"production": v2}
        stage_moves = [
            (e.key, e.target, e.previous, e.reason) for e in store.log("model") if e.ref == "stage"
        ]
        assert stage_moves == [
            ("production", v1.raw_digest, None, "validated"),
            ("production", v2.raw_digest, v1.raw_digest, ""),
        ]
        with pytest.raises(InvalidName):
            store.promote("model@v2", "v1")  # a stage may not shadow a version

    def test_store_gc_removes_only_what_nothing_reaches(self, store: Store) -> None:
        named = store.add(b"named content" * 100, name="data")
        tagged = store.add(b"tagged, unnamed")
        store.tag(tagged, "keep-me")
        used = store.add(b"used by a run")
        garbage = store.add(b"nobody wants this" * 100)
        run = Run(op="train", id="run-1", inputs={"x": used.raw_digest}, started=1.0, ended=2.0)
        store._write(lambda txn: index_record(txn, run))
        report = store.gc()
        assert (report.records, report.blobs, report.chunks) == (1, 1, 1)
        assert store.load("data") == b"named content" * 100
        assert store.read_bytes("keep-me") == b"tagged, unnamed"
        assert store.read_bytes(used.digest) == b"used by a run"
        assert store.resolve(run.digest) == run
        with pytest.raises(RevisionNotFound):
            store.resolve(garbage.digest)
        assert store.gc().records == 0
        assert store.verify().ok
        assert named.raw_digest in {a.raw_digest for a in store.versions("data")}

    def test_store_gc_dry_run_changes_nothing(self, store: Store) -> None:
        store.add(b"garbage")
        before = snapshot(store._backend)
        report = store.gc(dry_run=True)
        assert report.records == 1 and report.dry_run
        assert snapshot(store._backend) == before

    def test_store_verify_is_clean_then_finds_a_corrupt_chunk(self, store: Store) -> None:
        added = store.add(b"precious bytes", name="data")
        assert added.blob is not None
        report = store.verify()
        assert report.ok and report.records == 1 and report.chunks == 1
        with store._read() as txn:
            location = txn.get("chunks", added.blob)
        assert location is not None
        self.corrupt_chunk(store._backend, location)
        report = store.verify()
        assert not report.ok
        assert any(added.blob.hex() in problem for problem in report.problems)
        with pytest.raises(IntegrityError) as caught:
            store.load("data")
        assert added.blob.hex() in str(caught.value)

    def test_store_detects_a_corrupt_record(self, store: Store) -> None:
        added = store.add(b"content", name="data")
        key = added.raw_digest

        def corrupt(txn: WriteTxn) -> None:
            data = bytearray(txn.get("records", key) or b"")
            data[-1] ^= 0x01
            txn.put("records", key, bytes(data))

        store._write(corrupt)
        with pytest.raises(IntegrityError) as caught:
            store.resolve("data")
        assert key.hex() in str(caught.value)
        assert any(key.hex() in problem for problem in store.verify().problems)

    def test_store_index_record_writes_edges_both_ways(self, store: Store) -> None:
        data = store.add(b"input", name="data")
        model = store.add(b"output", name="model")
        run = Run(op="fit", id="r", inputs={"data": data.raw_digest},
                  outputs={"model": model.raw_digest}, started=3.0, ended=4.0)
        store._write(lambda txn: index_record(txn, run))
        with store._read() as txn:
            assert _edges(txn, "edges_out", data.raw_digest) == [(b"u", run.raw_digest)]
            assert _edges(txn, "edges_in", model.raw_digest) == [(b"g", run.raw_digest)]
            assert _edges(txn, "edges_in", run.raw_digest) == [(b"u", data.raw_digest)]
        assert list(store._iter_records("run")) == [run]

    def test_store_closed_raises_store_error(self, store: Store) -> None:
        store.add(b"x", name="data")
        store.close()
        with pytest.raises(StoreError):
            store.add(b"y", name="data")
        with pytest.raises(StoreError):
            store.resolve("data")


def _edges(txn: ReadTxn, namespace: str, node: Digest) -> list[tuple[bytes, Digest]]:
    return [(key[16:17], Digest(key[17:])) for key, _v in txn.items(namespace, node)]
