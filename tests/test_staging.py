"""The batched, background staging of large content and directories (lineage.storage.staging).

Thresholds are lowered so that content of a few MiB takes the paths a multi-GiB file takes:
background whole hash, comparisons of reused chunks joined into runs, writes in batches while
chunking, and taking written chunks back when the add fails.
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import lineage.core.hashing
import lineage.storage.blobs
import lineage.storage.files
import lineage.storage.staging
from lineage.core import encoding
from lineage.core.hashing import Digest, chunk_buffer
from lineage.errors import CollisionError, IntegrityError, PathError
from lineage.store import Store
from lineage.testing import collide, flip_byte, snapshot

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lineage.storage.staging, "_BACKGROUND", 256 * 1024)
    monkeypatch.setattr(lineage.storage.staging, "_WRITE_BATCH", 512 * 1024)
    monkeypatch.setattr(lineage.storage.staging, "_RUN", 384 * 1024)
    monkeypatch.setattr(lineage.storage.files, "_READ_WHOLE", 256 * 1024)


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def edit(data: bytes, seed: int, places: int = 3, length: int = 2000) -> bytes:
    rng = random.Random(seed)
    out = bytearray(data)
    for place in range(places):
        offset = place * len(data) // places + rng.randrange(len(data) // places - length)
        out[offset : offset + length] = rng.randbytes(length)
    return bytes(out)


def pack_sizes(store: Store) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in (Path(store.path) / "packs").glob("*.pack")}


def stored_bytes(store: Store) -> int:
    return sum(pack_sizes(store).values())




def test_large_content_and_an_edited_version_round_trip_and_share_chunks(store: Store) -> None:
    v1 = random_bytes(4 * MiB, seed=1)
    store.add(v1, name="data")
    before = stored_bytes(store)
    v2 = edit(v1, seed=2)
    store.add(v2, name="data")
    assert store.load("data@v1") == v1
    assert store.load("data@v2") == v2
    assert 0 < stored_bytes(store) - before < 1 * MiB  # only the chunks around the edits
    assert store.verify().ok


def test_a_large_file_and_its_edit_round_trip_from_disk(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    v1 = random_bytes(3 * MiB, seed=3)
    source.write_bytes(v1)
    store.add(source, name="big")
    source.write_bytes(edit(v1, seed=4))
    store.add(source, name="big", version="v2")
    restored = store.checkout("big@v1", tmp_path / "v1.bin")
    assert restored.read_bytes() == v1
    assert store.checkout("big@v2", tmp_path / "v2.bin").read_bytes() == source.read_bytes()
    assert store.verify().ok


def test_a_collision_in_a_reused_run_of_large_content_stores_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = random_bytes(4 * MiB, seed=5)
    store.add(v1, name="data")
    # New content: a long new part (written in background batches before the check ends),
    # then an edit of v1 whose last new chunk is crafted to share an old chunk's digest.
    tampered = random_bytes(3 * MiB, seed=6) + edit(v1, seed=66)
    old = {c.digest: bytes(c.data) for c in chunk_buffer(v1)}
    evil = [bytes(c.data) for c in chunk_buffer(tampered) if c.digest not in old][-1]
    victim = next(data for data in old.values() if data != evil)
    before, packs = snapshot(store._backend), pack_sizes(store)
    collide(monkeypatch, evil, victim)
    with pytest.raises(CollisionError):
        store.add(tampered, name="data")
    assert snapshot(store._backend) == before
    assert stored_bytes(store) == sum(packs.values())  # what was written meanwhile: taken back
    assert store.load("data") == v1


def test_a_repeated_chunk_with_other_bytes_in_large_content_raises(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random_bytes(4 * MiB, seed=7)
    chunks = [bytes(c.data) for c in chunk_buffer(data)]
    before, packs = snapshot(store._backend), pack_sizes(store)
    collide(monkeypatch, chunks[-2], chunks[3])
    with pytest.raises(CollisionError):
        store.add(data, name="data")
    assert snapshot(store._backend) == before
    assert stored_bytes(store) == sum(packs.values())


def test_a_corrupt_stored_chunk_in_a_reused_run_raises_integrity_error(store: Store) -> None:
    v1 = random_bytes(4 * MiB, seed=8)
    store.add(v1, name="data")
    chunk = list(chunk_buffer(v1))[5]
    with store._read() as txn:
        location = txn.get("chunks", chunk.digest)
    assert location is not None
    offset, length = struct.unpack_from(">QQ", location)
    flip_byte(Path(store.path) / "packs" / f"{location[16:].decode()}.pack", offset + length // 2)
    with pytest.raises(IntegrityError) as caught:
        store.add(edit(v1, seed=9), name="data")
    assert chunk.digest.hex() in str(caught.value)


def test_a_directory_stores_shared_content_once_with_one_pack_write(
    store: Store, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "b").mkdir()
    shared = random_bytes(600 * 1024, seed=10)
    for name in ("a/one.bin", "a/two.bin", "b/three.bin"):
        (tree / name).write_bytes(shared)
    for index in range(50):
        (tree / "b" / f"small-{index}.txt").write_bytes(f"record {index}\n".encode() * 10)
    added = store.add(tree, name="tree")
    assert added.summary["files"] == 53
    assert stored_bytes(store) < len(shared) + 100 * 1024  # the shared file once
    out = store.checkout("tree", tmp_path / "out")
    for name in ("a/one.bin", "a/two.bin", "b/three.bin"):
        assert (out / name).read_bytes() == shared
    assert (out / "b" / "small-7.txt").read_bytes() == b"record 7\n" * 10
    assert store.verify().ok


def test_a_directory_failing_midway_stores_nothing(store: Store, tmp_path: Path) -> None:
    store.add(b"something already there", name="first")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a-large.bin").write_bytes(random_bytes(2 * MiB, seed=11))  # written, then taken back
    (tree / "b-small.txt").write_bytes(b"small")
    (tree / "sub").mkdir()  # walked after the files beside it
    os.mkfifo(tree / "sub" / "fifo")
    before, packs = snapshot(store._backend), pack_sizes(store)
    with pytest.raises(PathError, match="special file"):
        store.add(tree, name="tree")
    assert snapshot(store._backend) == before
    assert stored_bytes(store) == sum(packs.values())


def test_staging_on_the_memory_backend_takes_the_same_paths(memory_store: Store) -> None:
    v1 = random_bytes(2 * MiB, seed=12)
    memory_store.add(v1, name="data")
    v2 = edit(v1, seed=13)
    memory_store.add(v2, name="data")
    assert memory_store.load("data@v1") == v1
    assert memory_store.load("data@v2") == v2
    assert memory_store.verify().ok


@given(
    st.lists(
        st.one_of(
            st.integers(min_value=-(2**70), max_value=2**70),
            st.sampled_from([0, 127, 128, -32, -33, 255, 256, 2**16, 2**32, 2**64 - 1, -(2**63)]),
            st.binary(min_size=16, max_size=16).map(Digest),
            st.lists(st.binary(min_size=16, max_size=16).map(Digest), max_size=20),
            st.binary(max_size=4),
        ),
        max_size=17,
    )
)
def test_encode_digests_gives_the_canonical_encoding(value: list[Any]) -> None:
    assert lineage.storage.blobs.encode_digests(value) == encoding.encode(value)


def test_staged_chunks_are_fsynced_before_the_transaction_naming_them(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    prepared = [store._prepare(f"config {i}".encode() * 300) for i in range(20)]
    pack = store._backend._pack  # type: ignore[attr-defined]
    assert pack is not None and pack.unsynced  # staged, not yet durable
    monkeypatch.setattr(os, "fsync", spy)
    store._write(lambda txn: [p.commit(txn) for p in prepared])
    assert not pack.unsynced and len(synced) == 1  # one fsync for all twenty, before commit
    assert [store.load(p.artifact) for p in prepared[:2]] == [b"config 0" * 300,
                                                               b"config 1" * 300]


def test_small_content_is_kept_in_lmdb_and_costs_no_pack_fsync(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    added = store.add({"C": 0.5, "penalty": "l2"}, name="config")
    assert synced == []  # durable through the LMDB commit alone, which syncs by itself
    assert store._backend._pack is None  # type: ignore[attr-defined]
    assert not list((Path(store.path) / "packs").glob("*.pack"))
    assert store.load("config") == {"C": 0.5, "penalty": "l2"}
    with store._read() as txn:
        assert (txn.get("chunks", added.blob) or b"").startswith(b"=")
    assert store.verify().ok


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=40),
            st.sampled_from(["f", "x", "l", "d"]),
            st.binary(min_size=16, max_size=16).map(Digest),
            st.text(max_size=20),
            st.integers(min_value=0, max_value=2**63),
        ),
        max_size=30,
    )
)
def test_a_tree_is_encoded_canonically(raw: list[tuple[str, str, Digest, str, int]]) -> None:
    entries: list[list[Any]] = [
        [path, kind, digest if kind in "fx" else target if kind == "l" else "", size]
        for path, kind, digest, target, size in raw
    ]
    try:
        expected = encoding.encode([lineage.storage.files.TREE_TAG, 1, entries])
    except Exception as exc:  # names that cannot be encoded raise the same error
        with pytest.raises(type(exc)):
            lineage.storage.files._encode_tree(entries)
        return
    assert lineage.storage.files._encode_tree(entries) == expected


@pytest.mark.parametrize("with_memcmp", [True, False], ids=["memcmp", "numpy"])
def test_large_buffers_compare_byte_for_byte(
    monkeypatch: pytest.MonkeyPatch, with_memcmp: bool
) -> None:
    if not with_memcmp:
        monkeypatch.setattr(lineage.storage.blobs, "_memcmp", lambda: None)
    same = lineage.storage.blobs.same_bytes
    data = random_bytes(3 * MiB + 5, seed=14)
    assert same(data, bytes(data)) and same(memoryview(data), memoryview(bytes(data)))
    for position in (0, MiB - 1, MiB, len(data) - 1):
        changed = bytearray(data)
        changed[position] ^= 0x01
        assert not same(data, bytes(changed))
    assert not same(data, data[:-1])
