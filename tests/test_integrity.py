"""Corruption is detected on read and by verify; crafted collisions are refused."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import lineage.core.hashing
import lineage.core.records
from lineage.core import encoding
from lineage.core.hashing import Digest, chunk_buffer, digest_bytes
from lineage.errors import CollisionError, IntegrityError
from lineage.store import Store
from lineage.testing import collide, flip_chunk_byte, snapshot


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def pack_sizes(store: Store) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in (Path(store.path) / "packs").glob("*.pack")}


# -- flipped bytes ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [100, 10_000, 600_000],
                         ids=["inline-chunk", "one-chunk", "many-chunks"])
def test_a_flipped_byte_in_a_pack_is_detected_on_load_and_by_verify(
    store: Store, size: int
) -> None:
    data = random_bytes(size)
    added = store.add(data, name="scan")
    chunk = list(chunk_buffer(data))[-1]
    length = len(chunk.data)
    flip_chunk_byte(store._backend, chunk.digest, length // 2)
    corrupted = bytearray(chunk.data)
    corrupted[length // 2] ^= 0xFF
    with pytest.raises(IntegrityError) as caught:
        store.load("scan")
    message = str(caught.value)
    assert chunk.digest.hex() in message and digest_bytes(corrupted).hex() in message
    report = store.verify()
    assert not report.ok
    assert any(chunk.digest.hex() in problem for problem in report.problems)
    assert any(str(added.blob) in problem for problem in report.problems)


def test_a_flipped_byte_in_a_file_is_detected_on_checkout(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(b"patient cohort notes" * 10)
    added = store.add(source, name="notes")
    assert added.blob is not None
    flip_chunk_byte(store._backend, added.blob, 0)
    target = tmp_path / "restored.txt"
    with pytest.raises(IntegrityError):
        store.checkout("notes", target)
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".lineage")] == []


def test_a_flipped_byte_in_a_stored_record_is_detected(store: Store) -> None:
    added = store.add(b"content", name="data", meta={"origin": "ward 7"})
    key = added.raw_digest

    def flip(txn: Any) -> None:
        data = bytearray(txn.get("records", key))
        data[len(data) // 2] ^= 0x20
        txn.put("records", key, bytes(data))

    store._write(flip)
    for revision in ("data", "data@v1", added.digest):
        with pytest.raises(IntegrityError) as caught:
            store.resolve(revision)
        assert key.hex() in str(caught.value)
    assert any(key.hex() in problem for problem in store.verify().problems)


def test_a_blob_manifest_naming_the_wrong_chunk_is_detected(store: Store) -> None:
    store.add(b"the real content", name="data")
    other = store.add(b"other content", name="other")
    assert other.blob is not None
    real = store.resolve("data")
    assert isinstance(real, lineage.core.records.Artifact) and real.blob is not None
    swapped = encoding.encode([len(b"other content"), [other.blob], []])
    store._write(lambda txn: txn.put("blobs", real.blob, swapped))
    with pytest.raises(IntegrityError) as caught:
        store.load("data")
    assert str(real.blob) in str(caught.value)
    assert not store.verify().ok


# -- crafted collisions ----------------------------------------------------------------


def test_a_colliding_small_chunk_raises_collision_error_and_stores_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, evil = b"the approved training set", b"a tampered training set!"
    store.add(good, name="data")
    before, packs = snapshot(store._backend), pack_sizes(store)
    collide(monkeypatch, evil, good)
    with pytest.raises(CollisionError, match=str(digest_bytes(good))):
        store.add(evil, name="data")
    with pytest.raises(CollisionError):
        store.add(evil, name="elsewhere")
    assert snapshot(store._backend) == before
    assert pack_sizes(store) == packs
    assert store.load("data") == good


def test_a_colliding_chunk_inside_large_content_raises_collision_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = random_bytes(1024 * 1024, seed=5)
    store.add(original, name="data")
    edited = original[:500_000] + b"EDIT" + original[500_004:]
    old = {c.digest: bytes(c.data) for c in chunk_buffer(original)}
    new = [bytes(c.data) for c in chunk_buffer(edited) if c.digest not in old]
    assert new, "the edit must produce at least one new chunk"
    victim = next(data for data in old.values() if len(data) != len(new[0]) or data != new[0])
    before, packs = snapshot(store._backend), pack_sizes(store)
    collide(monkeypatch, new[0], victim)
    with pytest.raises(CollisionError):
        store.add(edited, name="data")
    assert snapshot(store._backend) == before
    assert pack_sizes(store) == packs


def test_two_colliding_chunks_within_one_content_raise_collision_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random_bytes(1024 * 1024, seed=6)
    chunks = [bytes(c.data) for c in chunk_buffer(data)]
    before = snapshot(store._backend)
    collide(monkeypatch, chunks[2], chunks[1])
    with pytest.raises(CollisionError):
        store.add(data, name="data")
    assert snapshot(store._backend) == before


def test_colliding_whole_contents_with_different_chunks_raise_collision_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = random_bytes(600_000, seed=7)
    evil = random_bytes(600_000, seed=8)
    store.add(good, name="data")
    before = snapshot(store._backend)
    collide(monkeypatch, evil, good)
    with pytest.raises(CollisionError):
        store.add(evil, name="other")
    assert snapshot(store._backend) == before
    assert store.load("data") == good


def test_a_colliding_record_raises_collision_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store.add(b"first", name="data")
    before = snapshot(store._backend)
    real_digest_bytes = lineage.core.records.digest_bytes

    def crafted(data: Any) -> Digest:
        digest = real_digest_bytes(data)
        decoded = encoding.decode(data)
        if isinstance(decoded, list) and decoded[0] == "lineage/artifact":
            if decoded[2].get("name") == "intruder":
                return first.raw_digest
        return digest

    monkeypatch.setattr(lineage.core.records, "digest_bytes", crafted)
    with pytest.raises(CollisionError):
        store.add(b"second", name="intruder")
    assert snapshot(store._backend) == before


def test_re_adding_content_heals_a_corrupt_record(store: Store) -> None:
    added = store.add(b"content", name="data")
    key = added.raw_digest
    store._write(lambda txn: txn.put("records", key, bytes(txn.get("records", key))[:-1] + b"?"))
    assert not store.verify().ok
    store.add(b"content", name="data", version="v1")
    assert store.verify().ok
    assert store.load("data") == b"content"


def test_a_partial_read_verifies_every_chunk_it_touches_and_only_those(store: Store) -> None:
    from lineage.storage.blobs import BlobFile

    data = random_bytes(600_000, seed=3)
    added = store.add(data, name="scan")
    chunks = list(chunk_buffer(data))
    assert len(chunks) > 3
    last = chunks[-1]
    flip_chunk_byte(store._backend, last.digest, len(last.data) // 2)
    with store._read() as txn:
        assert added.blob is not None
        blob = BlobFile(store._backend, txn, added.blob)
        assert blob.size() == len(data)
        assert blob.read(1000) == data[:1000]  # the first chunk: intact, verified
        blob.seek(len(chunks[0].data) + 10)
        assert blob.read(50) == data[len(chunks[0].data) + 10:len(chunks[0].data) + 60]
        blob.seek(-10, 2)  # the corrupt last chunk: refused, naming both digests
        with pytest.raises(IntegrityError) as caught:
            blob.read()
    assert caught.value.expected == last.digest and caught.value.actual != last.digest
