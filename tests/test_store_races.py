"""Interleavings of concurrent writers and gc between an add's staging and its commit.

Each race is played deterministically: content is staged through one store handle, a
conflicting add (or a gc) runs through another, then the first commit runs.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lineage
import lineage.core.hashing
import lineage.storage.blobs
import lineage.storage.lmdb
from lineage.core.hashing import Digest, chunk_buffer, digest_bytes
from lineage.errors import ChunkVanished, CollisionError, IntegrityError
from lineage.storage.blobs import StagedBlob, encode_digests, read_blob
from lineage.storage.files import stage_path
from lineage.storage.schema import manifest
from lineage.storage.staging import stage
from lineage.store import Store
from lineage.testing import collide, snapshot


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Two handles on one real LMDB store."""
    first, second = lineage.open(tmp_path / "store"), lineage.open(tmp_path / "store")
    yield first, second
    second.close()
    first.close()


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)




def chunk_location(store: Store, digest: Digest) -> bytes | None:
    with store._read() as txn:
        return txn.get("chunks", digest)  # type: ignore[no-any-return]


# -- another writer stores the same digest between our stage and our commit --------------


@pytest.mark.parametrize("size", [1000, 600_000], ids=["one-chunk", "many-chunks"])
def test_content_stored_meanwhile_with_the_same_bytes_is_deduplicated(
    two: tuple[Store, Store], size: int
) -> None:
    first, second = two
    data = random_bytes(size, seed=1)
    ours = stage(first._backend, data)
    assert ours.new_locations  # both stagings write: neither sees the other's chunks
    theirs = stage(second._backend, data)
    assert second._write(theirs.commit) is True
    named = {c: chunk_location(second, c) for c in theirs.chunks}
    assert first._write(ours.commit) is False
    assert {c: chunk_location(first, c) for c in ours.chunks} == named
    with first._read() as txn:
        assert read_blob(first._backend, txn, ours.digest) == data


def test_a_colliding_chunk_stored_meanwhile_raises_and_changes_nothing(
    two: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two
    good, evil = random_bytes(1000, seed=2), random_bytes(1000, seed=3)
    collide(monkeypatch, evil, good)
    prepared = first._prepare(good, "good")  # staged: its chunk written, not yet named
    second.add(evil, "evil")  # stored under good's digest meanwhile
    before = snapshot(first._backend)
    with pytest.raises(CollisionError, match=str(digest_bytes(good))):
        first._write(prepared.commit)
    assert snapshot(first._backend) == before
    assert first.load("evil") == evil


def test_a_blob_stored_meanwhile_with_other_bytes_and_chunks_raises(
    two: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two
    good, evil = random_bytes(600_000, seed=4), random_bytes(1000, seed=5)
    collide(monkeypatch, evil, good)
    ours = stage(first._backend, good)
    assert len(ours.chunks) > 1
    second.add(evil, "evil")  # a one-chunk blob under good's whole digest
    before = snapshot(first._backend)
    with pytest.raises(CollisionError):
        first._write(ours.commit)
    assert snapshot(first._backend) == before


def test_a_blob_stored_meanwhile_as_other_chunks_of_the_same_bytes_is_deduplicated(
    two: tuple[Store, Store]
) -> None:
    first, second = two
    data = random_bytes(600_000, seed=6)
    ours = stage(first._backend, data)
    halves = [data[:250_000], data[250_000:]]  # cut where our chunker would not cut
    locations = second._backend.write_chunks([(digest_bytes(h), h) for h in halves])

    def store_cut_differently(txn: Any) -> None:
        for half, location in zip(halves, locations, strict=True):
            txn.put("chunks", digest_bytes(half), location)
        txn.put("blobs", ours.digest,
                encode_digests([len(data), [digest_bytes(h) for h in halves], []]))

    second._write(store_cut_differently)
    before = snapshot(first._backend)
    assert first._write(ours.commit) is False
    assert snapshot(first._backend) == before
    with first._read() as txn:
        assert read_blob(first._backend, txn, ours.digest) == data


def test_a_corrupt_chunk_stored_meanwhile_raises_integrity_error(two: tuple[Store, Store]) -> None:
    first, second = two
    data = random_bytes(1000, seed=7)
    ours = stage(first._backend, data)
    [location] = second._backend.write_chunks([(ours.digest, b"x" * len(data))])

    def store_corrupt(txn: Any) -> None:
        txn.put("chunks", ours.digest, location)
        txn.put("blobs", ours.digest, encode_digests([len(data), [ours.digest], []]))

    second._write(store_corrupt)
    before = snapshot(first._backend)
    with pytest.raises(IntegrityError, match="corrupt"):
        first._write(ours.commit)
    assert snapshot(first._backend) == before


# -- gc removes reused content between our stage and our commit --------------------------


def old_file(path: Path, data: bytes) -> Path:
    """A file whose mtime is old enough for the stat cache to trust it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    old = time.time() - 3600
    os.utime(path, (old, old))
    return path


def add_unnamed(store: Store, path: Path) -> None:
    """Add ``path`` without naming it: its content is garbage for the next gc."""
    store._commit_added(store._prepare(path, path_name=False))


@pytest.mark.parametrize("layout", ["file", "directory"])
def test_a_stat_cache_hit_collected_before_commit_raises_chunk_vanished(
    two: tuple[Store, Store], tmp_path: Path, layout: str
) -> None:
    first, second = two
    file = old_file(tmp_path / "tree" / "scan.bin", random_bytes(300_000, seed=8))
    path = file if layout == "file" else file.parent
    add_unnamed(first, path)
    staged = stage_path(first._backend, path)
    reused = staged.root if layout == "file" else staged.blobs[0]
    assert reused.reused and reused.chunks == []  # a stat-cache hit
    assert second.gc().blobs >= 1
    before = snapshot(first._backend)
    with pytest.raises(ChunkVanished):
        first._write(staged.commit)
    assert snapshot(first._backend) == before
    with first._read() as txn:
        assert manifest(txn, reused.digest) is None  # no chunk-less manifest


def test_add_stages_again_when_gc_collects_a_stat_cache_hit_before_commit(
    two: tuple[Store, Store], tmp_path: Path
) -> None:
    first, second = two
    data = random_bytes(300_000, seed=9)
    file = old_file(tmp_path / "scan.bin", data)
    add_unnamed(first, file)
    prepared = first._prepare(file, "scan")  # the stat cache vouches for stored content
    assert prepared.written == 0
    second.gc()  # collects the content the stat cache just vouched for
    artifact, written = first._commit_added(prepared)
    assert written == len(data)  # the second staging hashed and wrote it again
    assert first.read_bytes("scan") == data
    assert artifact.blob is not None
    with first._read() as txn:
        found = manifest(txn, artifact.blob)
    assert found is not None and found[0] == len(data) and found[1]
    assert first.verify().ok


def test_a_chunkless_manifest_for_nonempty_content_is_refused(
    two: tuple[Store, Store]
) -> None:
    first, _second = two
    blob = StagedBlob(digest_bytes(b"hello"), 5, [], backend=first._backend)
    before = snapshot(first._backend)
    with pytest.raises(IntegrityError, match="without its chunks"):
        first._write(blob.commit)
    assert snapshot(first._backend) == before


# -- pack rotation ------------------------------------------------------------------------


def test_a_rotated_pack_holding_uncommitted_chunks_survives_gc(
    two: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two
    monkeypatch.setattr(lineage.storage.lmdb, "_PACK_ROTATE_BYTES", 1000)
    data = random_bytes(200_000, seed=10)
    ours = stage(first._backend, data)  # fills the first pack past the rotation size
    stage(first._backend, random_bytes(5000, seed=11))  # rotates to a new pack
    packs = {p.name for p in (Path(first.path) / "packs").glob("*.pack")}
    assert len(packs) == 2
    second.gc()
    assert {p.name for p in (Path(first.path) / "packs").glob("*.pack")} == packs
    assert first._write(ours.commit) is True
    with first._read() as txn:
        assert read_blob(first._backend, txn, ours.digest) == data
    assert len(list(chunk_buffer(data))) == len(ours.chunks)
